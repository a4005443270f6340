//! Hand-built malicious tars: nothing outside the root may change, whatever the tar says.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use common::{RawTar, World};
use strata_layer::{apply_layer, ApplyOptions, ApplyStats, LayerError, WhiteoutMode};
use tar::EntryType;

const MODES: [WhiteoutMode; 2] = [WhiteoutMode::Remove, WhiteoutMode::OverlayMarkers];

fn opts(whiteouts: WhiteoutMode) -> ApplyOptions {
    ApplyOptions {
        whiteouts,
        preserve_owners: true,
    }
}

/// Applies `tar` and asserts the sentinel outside the root is exactly as before.
fn attack(w: &World, tar: &RawTar, mode: WhiteoutMode) -> Result<ApplyStats, LayerError> {
    let before = w.sentinel();
    let result = apply_layer(&tar.finish()[..], &w.root, &opts(mode));
    assert_eq!(before, w.sentinel(), "something outside the root changed");
    result
}

/// Dir entries recreating the absolute path of `outside` inside the root.
fn outside_dirs_in_root(w: &World, tar: &mut RawTar) {
    let rel = w.outside_rel();
    let mut prefix = String::new();
    for comp in rel.split('/') {
        prefix.push_str(comp);
        prefix.push('/');
        tar.dir(&prefix);
    }
}

#[test]
fn absolute_names_are_relative_to_the_root() {
    let w = World::new();
    let rel = w.outside_rel();
    let mut tar = RawTar::new();
    tar.file(&format!("/{rel}/secret"), b"pwned")
        .file("/etc/passwd", b"root:x:0:0")
        .file(&format!("/../../{rel}/dir/inner"), b"pwned too");
    attack(&w, &tar, WhiteoutMode::Remove).unwrap();
    assert_eq!(
        fs::read(w.root.join(&rel).join("secret")).unwrap(),
        b"pwned"
    );
    assert_eq!(fs::read(w.root.join("etc/passwd")).unwrap(), b"root:x:0:0");
    assert_eq!(
        fs::read(w.root.join(&rel).join("dir/inner")).unwrap(),
        b"pwned too"
    );
}

#[test]
fn dotdot_out_of_the_root_is_a_breakout() {
    for name in [
        "../outside/secret",
        "a/../../outside/secret",
        "./../outside/pwn",
        "..",
    ] {
        let w = World::new();
        let mut tar = RawTar::new();
        tar.file("before", b"x").file(name, b"pwned");
        let err = attack(&w, &tar, WhiteoutMode::Remove).unwrap_err();
        assert!(matches!(err, LayerError::Breakout { .. }), "{name}: {err}");
        // Entries before the bad one were applied; nothing of the bad one exists.
        assert_eq!(fs::read_dir(&w.root).unwrap().count(), 1, "{name}");
    }
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    let w = World::new();
    let rel = w.outside_rel();
    let mut tar = RawTar::new();
    outside_dirs_in_root(&w, &mut tar);
    tar.symlink("a", "/")
        .file("a/pwn-a", b"a")
        .symlink("b", "../../../../../../../../..")
        .file("b/pwn-b", b"b")
        .symlink("c", w.outside.to_str().unwrap())
        .file("c/secret", b"c")
        .dir("run/")
        .dir("var/")
        .symlink("var/run", "/run")
        .file("var/run/x.pid", b"42");
    attack(&w, &tar, WhiteoutMode::Remove).unwrap();
    assert_eq!(fs::read(w.root.join("pwn-a")).unwrap(), b"a");
    assert_eq!(fs::read(w.root.join("pwn-b")).unwrap(), b"b");
    assert_eq!(fs::read(w.root.join(&rel).join("secret")).unwrap(), b"c");
    assert_eq!(fs::read(w.root.join("run/x.pid")).unwrap(), b"42");
    assert!(fs::symlink_metadata(w.root.join("a")).unwrap().is_symlink());
}

#[test]
fn symlink_to_a_missing_dir_is_an_error_not_an_escape() {
    let w = World::new();
    let mut tar = RawTar::new();
    tar.symlink("c", w.outside.to_str().unwrap())
        .file("c/secret", b"pwned");
    let err = attack(&w, &tar, WhiteoutMode::Remove).unwrap_err();
    assert!(matches!(err, LayerError::Apply { .. }), "{err}");
}

#[test]
fn a_planted_symlink_is_replaced_never_written_through() {
    let w = World::new();
    let secret = w.outside.join("secret");
    let secret = secret.to_str().unwrap();
    let outside = w.outside.to_str().unwrap();
    let mut tar = RawTar::new();
    tar.symlink("evil", secret)
        .file("evil", b"pwned")
        .symlink("d", outside)
        .entry(b"d/", EntryType::Directory, 0o700, b"", b"")
        .symlink("fifo", secret)
        .entry(b"fifo", EntryType::Fifo, 0o666, b"", b"")
        .symlink("dev", secret)
        .entry(b"dev", EntryType::Char, 0o600, b"", b"")
        .symlink("x", secret)
        .hardlink("y", "x")
        .entry(b"./", EntryType::Directory, 0o750, b"", b"");
    attack(&w, &tar, WhiteoutMode::Remove).unwrap();
    assert_eq!(fs::read(w.root.join("evil")).unwrap(), b"pwned");
    let d = fs::symlink_metadata(w.root.join("d")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o700);
    assert!(fs::symlink_metadata(w.root.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(fs::symlink_metadata(w.root.join("dev"))
        .unwrap()
        .file_type()
        .is_char_device());
    // A hardlink to a symlink links the symlink itself.
    let y = fs::symlink_metadata(w.root.join("y")).unwrap();
    assert!(y.is_symlink());
    assert_eq!(
        y.ino(),
        fs::symlink_metadata(w.root.join("x")).unwrap().ino()
    );
    assert_eq!(fs::metadata(&w.root).unwrap().mode() & 0o7777, 0o750);
}

#[test]
fn hardlinks_cannot_reach_outside() {
    let w = World::new();
    let rel = w.outside_rel();
    let outside = w.outside.to_str().unwrap();

    let mut tar = RawTar::new();
    tar.hardlink("h", "../outside/secret");
    let err = attack(&w, &tar, WhiteoutMode::Remove).unwrap_err();
    assert!(matches!(err, LayerError::Breakout { .. }), "{err}");

    // Absolute and symlinked targets resolve inside the root, where there is nothing.
    for (prelude, target) in [
        (None, format!("/{rel}/secret")),
        (Some(("s", outside.to_string())), "s/secret".to_string()),
        (Some(("s", "/".to_string())), format!("s/{rel}/secret")),
    ] {
        let mut tar = RawTar::new();
        if let Some((name, to)) = &prelude {
            tar.symlink(name, to);
        }
        tar.hardlink("h", &target);
        let err = attack(&w, &tar, WhiteoutMode::Remove).unwrap_err();
        assert!(matches!(err, LayerError::Apply { .. }), "{target}: {err}");
        assert!(!w.root.join("h").exists());
    }

    // With an in-root copy, the link lands on it.
    let mut tar = RawTar::new();
    outside_dirs_in_root(&w, &mut tar);
    tar.file(&format!("{rel}/secret"), b"inside")
        .symlink("s2", outside)
        .hardlink("h2", "s2/secret");
    attack(&w, &tar, WhiteoutMode::Remove).unwrap();
    let inside = fs::metadata(w.root.join(&rel).join("secret")).unwrap();
    assert_eq!(fs::metadata(w.root.join("h2")).unwrap().ino(), inside.ino());
    assert_eq!(fs::read(w.root.join("h2")).unwrap(), b"inside");
}

#[test]
fn whiteouts_cannot_reach_outside() {
    for mode in MODES {
        let w = World::new();
        let rel = w.outside_rel();
        let mut tar = RawTar::new();
        tar.file("../.wh.secret", b"");
        let err = attack(&w, &tar, mode).unwrap_err();
        assert!(
            matches!(err, LayerError::Breakout { .. }),
            "{mode:?}: {err}"
        );

        for bad in [".wh.", "sub/.wh..", "sub/.wh..."] {
            let mut tar = RawTar::new();
            tar.file(bad, b"");
            let err = attack(&w, &tar, mode).unwrap_err();
            assert!(
                matches!(err, LayerError::InvalidEntry { .. }),
                "{bad}: {err}"
            );
        }

        // A lower layer that has a copy of `outside` inside the root.
        let mut lower = RawTar::new();
        outside_dirs_in_root(&w, &mut lower);
        lower
            .file(&format!("{rel}/secret"), b"lower")
            .dir(&format!("{rel}/dir/"))
            .file(&format!("{rel}/dir/inner"), b"lower");
        attack(&w, &lower, WhiteoutMode::Remove).unwrap();

        let mut tar = RawTar::new();
        tar.symlink("s", w.outside.to_str().unwrap())
            .file("s/.wh.secret", b"")
            .symlink("t", "../../../../../../..")
            .file(&format!("t/{rel}/dir/.wh..wh..opq"), b"");
        attack(&w, &tar, mode).unwrap();
        let copy = w.root.join(&rel);
        match mode {
            WhiteoutMode::Remove => {
                assert!(!copy.join("secret").exists());
                assert!(copy.join("dir").is_dir());
                assert!(!copy.join("dir/inner").exists());
            }
            WhiteoutMode::OverlayMarkers => {
                let md = fs::symlink_metadata(copy.join("secret")).unwrap();
                assert!(md.file_type().is_char_device() && md.rdev() == 0);
                let x = common::xattrs(&copy.join("dir"));
                assert_eq!(
                    x.get(&b"trusted.overlay.opaque"[..]).map(|v| &v[..]),
                    Some(&b"y"[..])
                );
            }
        }
    }
}

#[test]
fn a_replaced_parent_is_resolved_again() {
    let w = World::new();
    let mut tar = RawTar::new();
    tar.dir("a/")
        .file("a/x", b"x")
        .dir("b/")
        .symlink("a", "b")
        .file("a/y", b"y");
    attack(&w, &tar, WhiteoutMode::Remove).unwrap();
    assert_eq!(fs::read(w.root.join("b/y")).unwrap(), b"y");
    assert!(fs::symlink_metadata(w.root.join("a")).unwrap().is_symlink());
}

#[test]
fn overlay_xattrs_in_a_tar_are_not_applied() {
    let w = World::new();
    let mut tar = RawTar::new();
    tar.pax(&[
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.user.ok", b"1"),
    ])
    .dir("d/");
    attack(&w, &tar, WhiteoutMode::OverlayMarkers).unwrap();
    let x = common::xattrs(&w.root.join("d"));
    assert_eq!(
        x.keys().cloned().collect::<Vec<_>>(),
        vec![b"user.ok".to_vec()]
    );
}

#[test]
fn symlink_metadata_lands_on_the_link_not_its_target() {
    let w = World::new();
    let secret = w.outside.join("secret");
    let mut tar = RawTar::new();
    tar.pax(&[("SCHILY.xattr.trusted.evil", b"1"), ("uid", b"4242")])
        .symlink("xl", secret.to_str().unwrap());
    // The sentinel snapshot includes xattrs, owners and mtimes of everything outside.
    attack(&w, &tar, WhiteoutMode::Remove).unwrap();
    let link = w.root.join("xl");
    assert_eq!(fs::symlink_metadata(&link).unwrap().uid(), 4242);
    assert_eq!(
        common::xattrs(&link)
            .get(&b"trusted.evil"[..])
            .map(|v| &v[..]),
        Some(&b"1"[..])
    );
}
