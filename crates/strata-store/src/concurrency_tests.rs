//! Whole-store tests across threads and processes: concurrent writers, concurrent
//! unpacks of one layer, and processes SIGKILLed mid-ingest and mid-unpack.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use strata_oci::Digest;

use crate::test_support::{child_role, ingest_image, layer_tar, spawn_child, wait_for, Entry};
use crate::{DriverKind, Store, StoreOptions};

const CHILD_TEST: &str = "concurrency_tests::child_entry";

fn open(root: &Path) -> Store {
    Store::open(
        root,
        &StoreOptions {
            driver: Some(DriverKind::Overlay),
        },
    )
    .unwrap()
}

/// put_image / tag / untag / ingest of shared and private blobs, `rounds` times.
fn churn(store: &Store, who: &str, rounds: usize) {
    for i in 0..rounds {
        let _lease = store.writer_lease().unwrap();
        let private = format!("{who}-{i}");
        let img = ingest_image(
            store,
            private.as_bytes(),
            &[b"common base layer", private.as_bytes()],
        );
        // The same blob ingested from everywhere at once.
        store.content().ingest(&b"common blob"[..], None).unwrap();
        store
            .put_image(&img, &[format!("shared:{}", i % 3), "shared:latest".into()])
            .unwrap();
        store.tag(&format!("{who}:latest"), &img.id).unwrap();
        if i % 4 == 0 {
            store.untag(&format!("shared:{}", i % 3)).unwrap();
        }
    }
}

fn big_layer() -> Vec<u8> {
    let names: Vec<String> = (0..400).map(|i| format!("d{}/f{i}", i % 20)).collect();
    let data = vec![7u8; 4096];
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let dirs: Vec<String> = (0..20).map(|d| format!("d{d}/")).collect();
    entries.extend(dirs.iter().map(|d| Entry::Dir(d)));
    entries.extend(names.iter().map(|n| Entry::File(n, &data)));
    layer_tar(&entries)
}

/// Gives the first half of `data`, then blocks forever (until the process is killed).
struct StallingReader {
    data: Vec<u8>,
    pos: usize,
}

impl Read for StallingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.data.len() / 2 {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
        let n = buf.len().min(self.data.len() / 2 - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Runs a child role when this binary was re-executed by a test below; a no-op otherwise.
#[test]
fn child_entry() {
    let Some((role, root)) = child_role() else {
        return;
    };
    let store = open(&root);
    match role.as_str() {
        "churn" => churn(&store, &format!("p{}", std::process::id()), 25),
        "unpack" => {
            let tar = big_layer();
            let d = Digest::sha256_of(&tar);
            store
                .snapshotter()
                .unpack_layer(&d, None, &d, &mut &tar[..])
                .unwrap();
        }
        "slow-ingest" => {
            let mut w = store.content().writer().unwrap();
            let chunk = vec![1u8; 1 << 20];
            loop {
                w.write_all(&chunk).unwrap();
                w.flush().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        "slow-unpack" => {
            let tar = big_layer();
            let d = Digest::sha256_of(&tar);
            let mut r = StallingReader { data: tar, pos: 0 };
            let _ = store.snapshotter().unpack_layer(&d, None, &d, &mut r);
        }
        other => panic!("unknown child role {other}"),
    }
}

fn assert_consistent(store: &Store) {
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    for (name, id) in store.tags().unwrap() {
        let img = store
            .image(&id)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} points at a missing image"));
        for d in img.blobs() {
            assert!(store.content().contains(&d), "{name}: blob {d} missing");
        }
    }
}

#[test]
fn threads_and_processes_write_at_once() {
    if child_role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = Arc::new(open(&root));
    let children: Vec<_> = (0..2)
        .map(|_| spawn_child(CHILD_TEST, "churn", &root))
        .collect();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || churn(&store, &format!("t{t}"), 25))
        })
        .collect();
    // A second Store on the same root in this process, too.
    churn(&open(&root), "main", 10);
    for t in threads {
        t.join().unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_consistent(&store);
    assert_eq!(store.images().unwrap().len(), 2 * 25 + 2 * 25 + 10);
    assert!(store.resolve_tag("shared:latest").unwrap().is_some());
}

#[test]
fn processes_unpacking_one_layer_end_with_one_snapshot() {
    if child_role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = open(&root);
    let children: Vec<_> = (0..3)
        .map(|_| spawn_child(CHILD_TEST, "unpack", &root))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let snaps = store.snapshotter().list().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        std::fs::read_dir(store.snapshot_dir().dir())
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read(snaps[0].path.join("d3/f3")).unwrap(),
        vec![7u8; 4096]
    );
    assert_consistent(&store);
}

#[test]
fn killed_ingest_leaves_nothing_visible() {
    if child_role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    drop(open(&root));
    let mut child = spawn_child(CHILD_TEST, "slow-ingest", &root);
    let ingest = root.join("ingest");
    let big_enough = wait_for(30, || {
        std::fs::read_dir(&ingest)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 8 << 20).unwrap_or(false))
            })
            .unwrap_or(false)
    });
    // While the writer lives its temp is not "leftover".
    assert!(open(&root).check().unwrap().is_clean());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(big_enough, "child never wrote 8 MiB");
    let store = open(&root);
    assert_consistent(&store);
    assert!(store.content().list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&ingest).unwrap().count(), 0);
}

#[test]
fn killed_unpack_leaves_no_snapshot() {
    if child_role().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let snaps_dir = open(&root).snapshot_dir().dir().to_path_buf();
    let mut child = spawn_child(CHILD_TEST, "slow-unpack", &root);
    let started = wait_for(30, || {
        std::fs::read_dir(&snaps_dir)
            .map(|d| {
                d.flatten().any(|e| {
                    std::fs::read_dir(e.path())
                        .map(|mut x| x.next().is_some())
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false)
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "child never started unpacking");
    let store = open(&root);
    assert_consistent(&store);
    assert!(store.snapshotter().list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&snaps_dir).unwrap().count(), 0);
}

#[test]
fn removing_snapshots_while_other_stores_open_never_fails() {
    // Store::open cleans temps of dead processes: a snapshot being removed (renamed to a
    // temp name) must not be taken for one, and removals must not trip over each other.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = Arc::new(open(&root));
    let img = ingest_image(&store, b"cfg", &[&big_layer()]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let openers: Vec<_> = (0..2)
        .map(|_| {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut opened = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    drop(open(&root));
                    opened += 1;
                }
                opened
            })
        })
        .collect();
    for _ in 0..25 {
        let top = store.unpack_image(&img).unwrap().unwrap();
        store.snapshotter().remove(&top).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for o in openers {
        assert!(o.join().unwrap() > 0);
    }
    assert!(store.check().unwrap().problems.is_empty());
}
