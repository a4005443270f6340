//! Tests of COPY reuse: a miss of a COPY from the context links the unchanged files of the
//! step's previous layer, gives the layer a `--no-cache` build gives, and never lets a later
//! write reach the previous snapshot.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use strata_oci::chain_ids;
use strata_store::{DriverKind, Store, WritableLayer};

use crate::test_support::{sde, write};
use crate::{BuildOptions, BuildOutput, Builder};
use strata_testkit::temp_store;

const DF: &str = "FROM scratch\nCOPY . /src/\n";

/// The snapshot dir of the top layer of `out`.
fn snapshot_dir(store: &Store, out: &BuildOutput) -> PathBuf {
    let chain = chain_ids(&out.config.rootfs.diff_ids).pop().unwrap();
    store.snapshotter().info(&chain).unwrap().unwrap().path
}

fn ino(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

fn build(store: &Store, ctx: &Path, no_cache: bool) -> BuildOutput {
    // SOURCE_DATE_EPOCH: the directories the COPY creates are dated alike in every build.
    let opts = BuildOptions {
        no_cache,
        ..sde(1_700_000_000)
    };
    Builder::new(store).build(DF, ctx, &opts).unwrap()
}

#[test]
fn a_changed_file_is_copied_and_the_rest_linked_from_the_previous_layer() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("a", "one"), ("b", "bee"), ("d/c", "sea"), ("d/e", "eee")],
    );
    fs::hard_link(ctx.path().join("d/e"), ctx.path().join("d/e2")).unwrap();
    let first = build(&store, ctx.path(), false);
    assert_eq!(first.reused_files, 0);
    let old = snapshot_dir(&store, &first);
    let old_b = ino(&old.join("src/b"));

    // Same size, and the same mtime second (set back): only the content digest differs.
    let mtime = fs::metadata(ctx.path().join("a"))
        .unwrap()
        .modified()
        .unwrap();
    fs::write(ctx.path().join("a"), "two").unwrap();
    fs::File::options()
        .append(true)
        .open(ctx.path().join("a"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let second = build(&store, ctx.path(), false);
    assert_eq!(second.executed_steps, 1, "the COPY missed");
    // b and d/c; never the changed file, never the context's own hard links.
    assert_eq!(second.reused_files, 2);
    let new = snapshot_dir(&store, &second);
    assert_ne!(new, old);
    assert_eq!(ino(&new.join("src/b")), old_b);
    assert_ne!(ino(&new.join("src/a")), ino(&old.join("src/a")));
    assert_eq!(fs::read_to_string(new.join("src/a")).unwrap(), "two");
    assert_ne!(ino(&new.join("src/d/e")), ino(&old.join("src/d/e")));
    assert_eq!(ino(&new.join("src/d/e")), ino(&new.join("src/d/e2")));
    assert_eq!(fs::read_to_string(old.join("src/a")).unwrap(), "one");

    let fresh = build(&store, ctx.path(), true);
    assert_eq!(fresh.reused_files, 0);
    assert_eq!(fresh.config.rootfs.diff_ids, second.config.rootfs.diff_ids);
}

#[test]
fn mode_owner_and_mtime_changes_are_not_linked() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("m", "m"), ("o", "o"), ("t", "t"), ("same", "s")],
    );
    build(&store, ctx.path(), false);
    fs::set_permissions(ctx.path().join("m"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::lchown(ctx.path().join("o"), Some(7), Some(8)).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    fs::File::options()
        .append(true)
        .open(ctx.path().join("t"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = build(&store, ctx.path(), false);
    // `o` too: without --chown a COPY gives root:root whatever the context's owner.
    assert_eq!(
        out.reused_files, 2,
        "only the files whose layer entry is unchanged"
    );
    let fresh = build(&store, ctx.path(), true);
    assert_eq!(fresh.config.rootfs.diff_ids, out.config.rootfs.diff_ids);
}

/// A write through a container's overlay (a later RUN) to a linked file copies it up: the
/// previous snapshot, which shares the inode, keeps its bytes, mode and layer digest.
#[test]
#[allow(clippy::print_stderr)] // says visibly that it skipped
fn a_write_over_a_linked_file_never_reaches_the_previous_snapshot() {
    let (_d, store) = temp_store();
    if store.driver() != DriverKind::Overlay {
        eprintln!("skipped: overlay is not available");
        return;
    }
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("keep", "original\n"), ("change", "1")]);
    let first = build(&store, ctx.path(), false);
    write(ctx.path(), &[("change", "2")]);
    let second = build(&store, ctx.path(), false);
    assert_eq!(second.reused_files, 1);
    let old = snapshot_dir(&store, &first);
    let new = snapshot_dir(&store, &second);
    assert_eq!(ino(&old.join("src/keep")), ino(&new.join("src/keep")));

    let scratch = tempfile::tempdir().unwrap();
    let (rootfs, upper, work) = (
        scratch.path().join("rootfs"),
        scratch.path().join("upper"),
        scratch.path().join("work"),
    );
    for d in [&rootfs, &upper, &work] {
        fs::create_dir(d).unwrap();
    }
    let chain = chain_ids(&second.config.rootfs.diff_ids).pop().unwrap();
    let writable = WritableLayer {
        upper: upper.clone(),
        work,
        volatile: false,
    };
    // In a private mount namespace of a child thread would be cleaner; the mount is undone
    // right after the writes.
    store
        .snapshotter()
        .mount(&chain, &rootfs, Some(&writable))
        .unwrap();
    let wrote = (|| {
        use std::io::Write;
        let mut f = fs::File::options()
            .append(true)
            .open(rootfs.join("src/keep"))?;
        f.write_all(b"appended\n")?;
        fs::set_permissions(
            rootfs.join("src/keep"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        fs::read_to_string(rootfs.join("src/keep"))
    })();
    strata_store::unmount(&rootfs).unwrap();
    assert_eq!(wrote.unwrap(), "original\nappended\n");
    assert!(upper.join("src/keep").is_file(), "copied up");
    for dir in [&old, &new] {
        let md = fs::metadata(dir.join("src/keep")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("src/keep")).unwrap(),
            "original\n"
        );
        assert_eq!(md.mode() & 0o7777, 0o644);
    }
    // Both layers still tar to their recorded digests.
    for (dir, out) in [(&old, &first), (&new, &second)] {
        let mut tar = Vec::new();
        let opts = strata_layer::WriteOptions {
            source: strata_layer::ChangeSource::PlainTree,
            mtime_clamp: Some(1_700_000_000),
        };
        strata_layer::write_layer(dir, &mut tar, &opts).unwrap();
        assert_eq!(
            &strata_oci::Digest::sha256_of(&tar),
            out.config.rootfs.diff_ids.last().unwrap()
        );
    }
}
