//! One conformance suite run against every snapshotter (as containerd's testsuite does).

use std::path::Path;

use strata_oci::{chain_ids, Digest};

use crate::snapshot::{unmount, OverlaySnapshotter, SnapshotDir, Snapshotter, WritableLayer};
use crate::test_support::{layer_tar, open_store, CountingReader, Entry};
use crate::{DriverKind, StoreError};

/// Unmounts on drop so a failed assertion does not leave mounts behind.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = unmount(self.0);
    }
}

fn layers() -> Vec<Vec<u8>> {
    vec![
        layer_tar(&[
            Entry::Dir("a/"),
            Entry::File("a/keep", b"1"),
            Entry::File("a/gone", b"g"),
            Entry::Dir("o/"),
            Entry::File("o/old", b"old"),
            Entry::File("top", b"t1"),
        ]),
        layer_tar(&[
            Entry::Dir("a/"),
            Entry::File("a/.wh.gone", b""),
            Entry::Dir("o/"),
            Entry::File("o/.wh..wh..opq", b""),
            Entry::File("o/new", b"new"),
            Entry::File("top", b"t2"),
        ]),
        layer_tar(&[
            Entry::Dir("b/"),
            Entry::File("b/f", b"3"),
            Entry::File(".wh.top", b""),
        ]),
    ]
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn assert_merged_view(root: &Path) {
    assert_eq!(read(&root.join("a/keep")).as_deref(), Some("1"));
    assert!(!root.join("a/gone").exists(), "whiteout hides a/gone");
    assert_eq!(read(&root.join("o/new")).as_deref(), Some("new"));
    assert!(!root.join("o/old").exists(), "opaque dir hides o/old");
    assert!(!root.join("top").exists(), "whiteout in layer 3 hides top");
    assert_eq!(read(&root.join("b/f")).as_deref(), Some("3"));
}

/// The suite: unpack a 3-layer chain with whiteouts and an opaque dir, mount read-only
/// and writable, check the views, remove.
pub(crate) fn run_suite(snap: &dyn Snapshotter, scratch: &Path) {
    let tars = layers();
    let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::sha256_of(t)).collect();
    let chain = chain_ids(&diff_ids);
    let mut parent: Option<&Digest> = None;
    for (i, tar) in tars.iter().enumerate() {
        let info = snap
            .unpack_layer(&chain[i], parent, &diff_ids[i], &mut &tar[..])
            .unwrap();
        assert_eq!(info.chain_id, chain[i]);
        assert_eq!(info.parent.as_ref(), parent);
        assert!(info.path.is_dir());
        parent = Some(&chain[i]);
    }
    assert!(snap.exists(&chain[2]).unwrap());
    assert_eq!(snap.list().unwrap().len(), 3);

    // Idempotent, and the stream is still drained.
    let mut counting = CountingReader {
        inner: &tars[0][..],
        count: 0,
    };
    let again = snap
        .unpack_layer(&chain[0], None, &diff_ids[0], &mut counting)
        .unwrap();
    assert_eq!(again.path, snap.info(&chain[0]).unwrap().unwrap().path);
    assert_eq!(counting.count, tars[0].len() as u64);
    assert_eq!(snap.list().unwrap().len(), 3);

    // A missing parent: vfs refuses to unpack, overlay unpacks (layers may come in any
    // order) but cannot mount the incomplete chain.
    let bogus = Digest::sha256_of(b"nope");
    let orphan_top = Digest::sha256_of(b"orphan top");
    let result = snap.unpack_layer(&orphan_top, Some(&bogus), &diff_ids[2], &mut &tars[2][..]);
    match snap.kind() {
        DriverKind::Vfs => assert!(matches!(result, Err(StoreError::SnapshotNotFound(_)))),
        DriverKind::Overlay => {
            result.unwrap();
            let err = snap.mount(&orphan_top, scratch, None).unwrap_err();
            assert!(
                matches!(err, StoreError::SnapshotNotFound(ref d) if *d == bogus),
                "{err}"
            );
            snap.remove(&orphan_top).unwrap();
        }
    }
    // A stream that is not the layer it claims to be is refused, nothing recorded.
    let err = snap
        .unpack_layer(&orphan_top, None, &diff_ids[1], &mut &tars[2][..])
        .unwrap_err();
    assert!(matches!(err, StoreError::DiffIdMismatch { .. }), "{err}");
    assert_eq!(snap.list().unwrap().len(), 3);

    // Read-only view of the chain.
    let ro = scratch.join("ro");
    std::fs::create_dir(&ro).unwrap();
    {
        snap.mount(&chain[2], &ro, None).unwrap();
        let _m = Mounted(&ro);
        assert_merged_view(&ro);
        let err = std::fs::write(ro.join("x"), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }
    // One-layer read-only view.
    {
        snap.mount(&chain[0], &ro, None).unwrap();
        let _m = Mounted(&ro);
        assert_eq!(read(&ro.join("a/gone")).as_deref(), Some("g"));
        assert_eq!(read(&ro.join("top")).as_deref(), Some("t1"));
    }

    // Writable view: writes land in upper, snapshots stay untouched.
    let rw = scratch.join("rw");
    let w = WritableLayer {
        upper: scratch.join("upper"),
        work: scratch.join("work"),
        volatile: false,
    };
    for d in [&rw, &w.upper, &w.work] {
        std::fs::create_dir(d).unwrap();
    }
    {
        snap.mount(&chain[2], &rw, Some(&w)).unwrap();
        let _m = Mounted(&rw);
        assert_merged_view(&rw);
        std::fs::write(rw.join("new-file"), b"hi").unwrap();
        std::fs::remove_file(rw.join("a/keep")).unwrap();
    }
    assert_eq!(read(&w.upper.join("new-file")).as_deref(), Some("hi"));
    {
        snap.mount(&chain[2], &ro, None).unwrap();
        let _m = Mounted(&ro);
        assert_merged_view(&ro);
        assert!(!ro.join("new-file").exists());
    }

    // Removal: refused under children, then top down.
    let err = snap.remove(&chain[0]).unwrap_err();
    assert!(
        matches!(err, StoreError::SnapshotHasChildren { children: 1, .. }),
        "{err}"
    );
    let paths: Vec<_> = snap.list().unwrap().into_iter().map(|s| s.path).collect();
    // Usage is measured once and then read from the record: a committed snapshot never
    // changes, so a second call must not walk it (a file added behind its back is not seen).
    let top = snap.info(&chain[2]).unwrap().unwrap();
    let measured = snap.usage(&chain[2]).unwrap();
    std::fs::write(top.path.join("added-behind-its-back"), vec![0u8; 4096]).unwrap();
    assert_eq!(snap.usage(&chain[2]).unwrap(), measured);
    std::fs::remove_file(top.path.join("added-behind-its-back")).unwrap();
    for c in chain.iter().rev() {
        assert!(snap.usage(c).unwrap() > 0);
        snap.remove(c).unwrap();
    }
    assert!(snap.list().unwrap().is_empty());
    assert!(paths.iter().all(|p| !p.exists()));
    assert!(matches!(
        snap.remove(&chain[0]),
        Err(StoreError::SnapshotNotFound(_))
    ));
}

#[test]
fn overlay_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("root"), DriverKind::Overlay);
    assert_eq!(store.snapshotter().kind(), DriverKind::Overlay);
    run_suite(store.snapshotter(), dir.path());
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn overlay_with_legacy_mounts_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("root"), DriverKind::Overlay);
    let legacy = OverlaySnapshotter::with_legacy_mounts(SnapshotDir::new(
        store.db_arc(),
        store.root(),
        DriverKind::Overlay,
    ));
    run_suite(&legacy, dir.path());
}

#[test]
fn vfs_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("root"), DriverKind::Vfs);
    assert_eq!(store.snapshotter().kind(), DriverKind::Vfs);
    run_suite(store.snapshotter(), dir.path());
    assert!(store.check().unwrap().is_clean());
}

/// Chains longer than one mount option page: 120 layers × ~70-byte absolute paths.
#[test]
fn overlay_mounts_a_chain_longer_than_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("root"), DriverKind::Overlay);
    let snap = store.snapshotter();
    let tars: Vec<Vec<u8>> = (0..120)
        .map(|i| layer_tar(&[Entry::File(&format!("f{i}"), format!("{i}").as_bytes())]))
        .collect();
    let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::sha256_of(t)).collect();
    let chain = chain_ids(&diff_ids);
    for i in 0..tars.len() {
        let parent = if i == 0 { None } else { Some(&chain[i - 1]) };
        snap.unpack_layer(&chain[i], parent, &diff_ids[i], &mut &tars[i][..])
            .unwrap();
    }
    let total: usize = snap
        .list()
        .unwrap()
        .iter()
        .map(|s| s.path.as_os_str().len() + 1)
        .sum();
    assert!(total > 4096, "absolute lowerdirs would need {total} bytes");
    let target = dir.path().join("m");
    std::fs::create_dir(&target).unwrap();
    snap.mount(chain.last().unwrap(), &target, None).unwrap();
    let _m = Mounted(&target);
    assert_eq!(read(&target.join("f0")).as_deref(), Some("0"));
    assert_eq!(read(&target.join("f119")).as_deref(), Some("119"));
}

/// Layers staged before their chain is known (overlay) commit into the same merged view;
/// a wrong content digest records nothing; an uncommitted stage leaves no temp behind.
#[test]
fn staged_layers_commit_into_a_chain_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("root"), DriverKind::Overlay);
    let snap = store.snapshotter();
    let tars = layers();
    let diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::sha256_of(t)).collect();
    let chain = chain_ids(&diff_ids);
    let mut staged: Vec<_> = tars
        .iter()
        .map(|t| {
            snap.stage_layer(&mut &t[..])
                .unwrap()
                .expect("overlay stages")
        })
        .collect();

    // The wrong content for layer 1 is refused and leaves nothing recorded.
    let wrong = snap.stage_layer(&mut &tars[0][..]).unwrap().unwrap();
    assert!(matches!(
        snap.commit_staged(
            wrong,
            &chain[1],
            Some(&chain[0]),
            &diff_ids[1],
            &diff_ids[0]
        ),
        Err(StoreError::DiffIdMismatch { .. })
    ));
    assert!(!snap.exists(&chain[1]).unwrap());

    // Top first: overlay does not need the parent to be there yet.
    for i in (0..3).rev() {
        let layer = staged.remove(i);
        let parent = i.checked_sub(1).map(|p| &chain[p]);
        snap.commit_staged(layer, &chain[i], parent, &diff_ids[i], &diff_ids[i])
            .unwrap();
    }
    let target = dir.path().join("view");
    std::fs::create_dir(&target).unwrap();
    snap.mount(&chain[2], &target, None).unwrap();
    let _mounted = Mounted(&target);
    assert_merged_view(&target);

    // Dropping a stage removes its temp dir: check finds no leftovers.
    drop(snap.stage_layer(&mut &tars[2][..]).unwrap());
    assert!(
        store.check().unwrap().is_clean(),
        "{:?}",
        store.check().unwrap()
    );

    // vfs needs parents first and does not stage.
    let vfs = open_store(&dir.path().join("vfs-root"), DriverKind::Vfs);
    assert!(vfs
        .snapshotter()
        .stage_layer(&mut &tars[0][..])
        .unwrap()
        .is_none());
}
