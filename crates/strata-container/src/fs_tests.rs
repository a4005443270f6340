//! Tests of diff, cp, export and commit over a real store: an image imported from a
//! hand-made tar (with symlinks pointing at host paths), containers created from it, no
//! monitor (the containers are never started).

use std::io::Read;
use std::path::{Path, PathBuf};

use strata_image::{import_rootfs, ImportOptions};
use strata_oci::Reference;
use strata_store::{DriverKind, Store, StoreOptions};
use tar::{EntryType, Header};

use crate::{
    changes, commit, copy_from_container, copy_from_container_to_tar, copy_into_container,
    copy_tar_into_container, create, export, CommitOptions, Container, CopyOptions, CreateOptions,
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    /// Host-side scratch space, outside the store.
    host: PathBuf,
}

fn entry(tar: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, body: &str) {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    if kind == EntryType::Symlink {
        h.set_size(0);
        tar.append_link(&mut h, name, body).unwrap();
    } else {
        h.set_size(body.len() as u64);
        tar.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
}

/// An image whose symlinks all try to lead out: `/evil -> /etc/shadow`, `/up -> /`,
/// `/escape -> ../../../../etc`, `/hostlink -> <a real host file>`.
fn fixture(driver: Option<DriverKind>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host secret").unwrap();
    let store = Store::open(&dir.path().join("root"), &StoreOptions { driver }).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    for d in ["bin", "etc", "tmp", "srv", "srv/www"] {
        entry(&mut tar, d, EntryType::Directory, "");
    }
    entry(&mut tar, "bin/sh", EntryType::Regular, "not really a shell");
    entry(
        &mut tar,
        "etc/passwd",
        EntryType::Regular,
        "root:x:0:0:root:/root:/bin/sh\n",
    );
    entry(
        &mut tar,
        "etc/shadow",
        EntryType::Regular,
        "container shadow",
    );
    entry(&mut tar, "srv/www/index.html", EntryType::Regular, "hello");
    entry(&mut tar, "evil", EntryType::Symlink, "/etc/shadow");
    entry(&mut tar, "up", EntryType::Symlink, "/");
    entry(&mut tar, "escape", EntryType::Symlink, "../../../../etc");
    let secret = host.join("secret");
    entry(
        &mut tar,
        "hostlink",
        EntryType::Symlink,
        secret.to_str().unwrap(),
    );
    let bytes = tar.into_inner().unwrap();
    let opts = ImportOptions {
        changes: vec![r#"CMD ["sh"]"#.to_owned()],
        message: None,
        source: "-".to_owned(),
        tag: Some(Reference::parse("base:1").unwrap()),
        platform: None,
    };
    import_rootfs(&store, &bytes[..], &opts).unwrap();
    Fixture {
        _dir: dir,
        store,
        host,
    }
}

impl Fixture {
    fn container(&self, image: &str) -> Container {
        let opts = CreateOptions {
            image: image.to_owned(),
            cmd: vec!["sh".into(), "-c".into(), "echo hi > /tmp/x".into()],
            ..CreateOptions::default()
        };
        create(&self.store, &opts).unwrap()
    }

    fn read_out(
        &self,
        c: &Container,
        path: &str,
        follow: bool,
    ) -> Result<String, crate::ContainerError> {
        let dest = self.host.join(format!("out-{}", rand_suffix()));
        let opts = CopyOptions {
            archive: false,
            follow_link: follow,
        };
        copy_from_container(&self.store, c, path, &dest, opts)?;
        Ok(std::fs::read_to_string(&dest).unwrap())
    }

    fn write_in(&self, c: &Container, body: &str, dest: &str) -> Result<(), crate::ContainerError> {
        let src = self.host.join(format!("in-{}", rand_suffix()));
        std::fs::write(&src, body).unwrap();
        copy_into_container(&self.store, c, &src, dest, CopyOptions::default())
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn diff_lines(f: &Fixture, c: &Container) -> Vec<String> {
    changes(&f.store, c)
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path.display()))
        .collect()
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn copies_follow_dockers_placement_rules_and_show_in_diff() {
    let f = fixture(None);
    let c = f.container("base:1");
    assert!(
        diff_lines(&f, &c).is_empty(),
        "a new container changed nothing"
    );

    // A file into an existing dir keeps its name; to a missing path it takes that name.
    let src = f.host.join("note.txt");
    std::fs::write(&src, "note").unwrap();
    copy_into_container(&f.store, &c, &src, "/tmp", CopyOptions::default()).unwrap();
    copy_into_container(&f.store, &c, &src, "/srv/renamed", CopyOptions::default()).unwrap();
    assert_eq!(f.read_out(&c, "/tmp/note.txt", false).unwrap(), "note");
    assert_eq!(f.read_out(&c, "/srv/renamed", false).unwrap(), "note");
    // An existing file is overwritten.
    f.write_in(&c, "new passwd", "/etc/passwd").unwrap();
    assert_eq!(f.read_out(&c, "/etc/passwd", false).unwrap(), "new passwd");
    // A missing destination ending in / must exist.
    let err = copy_into_container(&f.store, &c, &src, "/nowhere/", CopyOptions::default());
    assert!(err.unwrap_err().to_string().contains("must exist"));

    // Directories: into an existing dir by name, `/.` for the contents, never onto a file.
    let tree = f.host.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f"), "f").unwrap();
    copy_into_container(&f.store, &c, &tree, "/srv", CopyOptions::default()).unwrap();
    assert_eq!(f.read_out(&c, "/srv/tree/sub/f", false).unwrap(), "f");
    let contents = format!("{}/.", tree.display());
    copy_into_container(
        &f.store,
        &c,
        Path::new(&contents),
        "/srv/www",
        CopyOptions::default(),
    )
    .unwrap();
    assert_eq!(f.read_out(&c, "/srv/www/sub/f", false).unwrap(), "f");
    let err = copy_into_container(&f.store, &c, &tree, "/etc/passwd", CopyOptions::default());
    assert!(err.unwrap_err().to_string().contains("directory to a file"));
    let err = f.read_out(&c, "/etc/passwd/", false).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");

    assert_eq!(
        diff_lines(&f, &c),
        [
            "C /etc",
            "C /etc/passwd",
            "C /srv",
            "A /srv/renamed",
            "A /srv/tree",
            "A /srv/tree/sub",
            "A /srv/tree/sub/f",
            "C /srv/www",
            "A /srv/www/sub",
            "A /srv/www/sub/f",
            "C /tmp",
            "A /tmp/note.txt",
        ]
    );
}

#[test]
fn container_symlinks_never_reach_host_paths() {
    let f = fixture(None);
    let c = f.container("base:1");
    // Reading: -L follows links inside the container only.
    assert_eq!(f.read_out(&c, "/evil", true).unwrap(), "container shadow");
    assert_eq!(
        f.read_out(&c, "/up/etc/shadow", false).unwrap(),
        "container shadow"
    );
    assert_eq!(
        f.read_out(&c, "/../../../etc/shadow", false).unwrap(),
        "container shadow"
    );
    let err = f.read_out(&c, "/hostlink", true).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
    // Without -L a symlink is copied as a symlink.
    let dest = f.host.join("copied-link");
    copy_from_container(&f.store, &c, "/evil", &dest, CopyOptions::default()).unwrap();
    assert_eq!(std::fs::read_link(&dest).unwrap(), Path::new("/etc/shadow"));

    // Writing: through links to / and ../.., and with ../ in the path, lands inside.
    let marker = format!("strata-cp-test-{}", std::process::id());
    f.write_in(&c, "a", &format!("/up/tmp/{marker}")).unwrap();
    f.write_in(&c, "b", &format!("/escape/{marker}")).unwrap();
    f.write_in(&c, "c", &format!("/../../tmp/{marker}-dots"))
        .unwrap();
    for host_path in [
        format!("/tmp/{marker}"),
        format!("/etc/{marker}"),
        format!("/tmp/{marker}-dots"),
    ] {
        assert!(
            !Path::new(&host_path).exists(),
            "{host_path} written on the host"
        );
    }
    assert_eq!(
        f.read_out(&c, &format!("/etc/{marker}"), false).unwrap(),
        "b"
    );
    // A destination link is followed inside the container: to a path it lacks, or to its
    // own /etc/shadow, never to the host's.
    assert!(f.write_in(&c, "replaced", "/hostlink").is_err());
    assert_eq!(
        std::fs::read_to_string(f.host.join("secret")).unwrap(),
        "host secret"
    );
    f.write_in(&c, "pwned", "/evil").unwrap();
    assert_eq!(f.read_out(&c, "/etc/shadow", false).unwrap(), "pwned");
    let host_shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    assert!(!host_shadow.contains("pwned"));

    // A tar stream with escaping names is refused; one with a link-then-file trick stays in.
    let mut tar = tar::Builder::new(Vec::new());
    entry(&mut tar, "l", EntryType::Symlink, "/");
    entry(
        &mut tar,
        &format!("l/tmp/{marker}-tar"),
        EntryType::Regular,
        "t",
    );
    let bytes = tar.into_inner().unwrap();
    copy_tar_into_container(&f.store, &c, &bytes[..], "/srv", CopyOptions::default()).unwrap();
    assert!(!Path::new(&format!("/tmp/{marker}-tar")).exists());
    let mut raw = Header::new_gnu();
    raw.as_old_mut().name[..16].copy_from_slice(b"../../outside-x\0");
    raw.set_size(1);
    raw.set_entry_type(EntryType::Regular);
    raw.set_cksum();
    let mut bytes = raw.as_bytes().to_vec();
    bytes.extend_from_slice(&[b'x'; 512]);
    bytes.extend_from_slice(&[0; 1024]);
    let err = copy_tar_into_container(&f.store, &c, &bytes[..], "/srv", CopyOptions::default());
    assert!(err.is_err(), "a ../ entry must be refused");
    let err = copy_tar_into_container(
        &f.store,
        &c,
        &b""[..],
        "/etc/passwd",
        CopyOptions::default(),
    );
    assert!(err.unwrap_err().to_string().contains("existing directory"));
}

#[test]
fn export_and_tar_output_hold_the_merged_filesystem() {
    let f = fixture(None);
    let c = f.container("base:1");
    f.write_in(&c, "added", "/srv/added").unwrap();
    let mut out = Vec::new();
    export(&f.store, &c, &mut out).unwrap();
    let names = tar_names(&out);
    for want in [
        "bin",
        "bin/sh",
        "etc/passwd",
        "evil",
        "srv/added",
        "srv/www/index.html",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let mut out = Vec::new();
    copy_from_container_to_tar(&f.store, &c, "/srv", &mut out, CopyOptions::default()).unwrap();
    assert_eq!(
        tar_names(&out),
        ["srv", "srv/added", "srv/www", "srv/www/index.html"]
    );
}

#[test]
fn commit_makes_an_image_with_the_container_changes() {
    let f = fixture(None);
    if f.store.driver() != DriverKind::Overlay {
        return;
    }
    let c = f.container("base:1");
    f.write_in(&c, "committed", "/srv/new-file").unwrap();
    let opts = CommitOptions {
        changes: vec!["ENV STAGE=2".to_owned()],
        message: Some("a message".to_owned()),
        author: Some("me".to_owned()),
        pause: true,
        tag: Some(Reference::parse("next:1").unwrap()),
    };
    let id = commit(&f.store, &c, &opts).unwrap();
    let image = strata_image::resolve_image(&f.store, "next:1").unwrap();
    assert_eq!(image.record.id, id);
    assert_eq!(image.record.layers.len(), 2);
    let config = image.config.config.clone().unwrap();
    assert_eq!(config.cmd.unwrap(), ["sh", "-c", "echo hi > /tmp/x"]);
    assert_eq!(config.env.unwrap(), ["STAGE=2"]);
    let last = image.config.history.last().unwrap();
    assert_eq!(last.created_by.as_deref(), Some("sh -c echo hi > /tmp/x"));
    assert_eq!(last.comment.as_deref(), Some("a message"));
    assert!(!last.empty_layer);

    let child = f.container("next:1");
    assert_eq!(
        f.read_out(&child, "/srv/new-file", false).unwrap(),
        "committed"
    );
    assert!(diff_lines(&f, &child).is_empty());
    // Committing an unchanged container adds no layer.
    let again = commit(&f.store, &child, &CommitOptions::default()).unwrap();
    let image = strata_image::resolve_image(&f.store, again.as_str()).unwrap();
    assert_eq!(image.record.layers.len(), 2);
    assert!(image.config.history.last().unwrap().empty_layer);
    let err = commit(
        &f.store,
        &child,
        &CommitOptions {
            changes: vec!["RUN rm -rf /".to_owned()],
            ..CommitOptions::default()
        },
    );
    assert!(err.is_err());
}

#[test]
fn vfs_containers_copy_and_diff_against_the_image() {
    let f = fixture(Some(DriverKind::Vfs));
    let c = f.container("base:1");
    assert!(diff_lines(&f, &c).is_empty());
    assert_eq!(
        f.read_out(&c, "/srv/www/index.html", false).unwrap(),
        "hello"
    );
    f.write_in(&c, "v", "/srv/www/v").unwrap();
    assert_eq!(diff_lines(&f, &c), ["C /srv", "C /srv/www", "A /srv/www/v"]);
    let mut body = String::new();
    let mut out = Vec::new();
    copy_from_container_to_tar(&f.store, &c, "/srv/www/v", &mut out, CopyOptions::default())
        .unwrap();
    let mut archive = tar::Archive::new(&out[..]);
    let mut first = archive.entries().unwrap().next().unwrap().unwrap();
    first.read_to_string(&mut body).unwrap();
    assert_eq!(body, "v");
    assert!(commit(&f.store, &c, &CommitOptions::default()).is_err());
}
