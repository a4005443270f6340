//! Online garbage collection: collections (scheduled in the server and run by
//! `strata registry gc` from another process) while pushes go on never break a push that
//! completed, and unreferenced blobs are gone afterwards.

#[path = "common/registry.rs"]
mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use registry::*;

/// The blob files of the storage.
fn stored_blobs(s: &Served) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for shard in std::fs::read_dir(s.storage().join("blobs/sha256")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.insert(format!(
                "sha256:{}",
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[test]
fn pushes_during_repeated_collections_all_survive_and_garbage_goes() {
    let s = Served::start("[gc]\ninterval = \"1s\"\ngrace = \"0s\"\nuntagged = \"delete\"\n");
    // what each tag must name at the end
    let expected: Expected = Mutex::new(BTreeMap::new());
    let stop = AtomicBool::new(false);
    let base = format!("http://{}", s.addr);
    let retries = Mutex::new(0u32);
    std::thread::scope(|scope| {
        for t in 0..3u64 {
            let (base, stop, expected, retries) = (&base, &stop, &expected, &retries);
            scope.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let repo = format!("gc/t{t}");
                    // "latest" moves on every push, leaving the old manifest untagged;
                    // every fourth push also gets a tag of its own that must survive.
                    let keep = i.is_multiple_of(4);
                    let layer = unique_layer(t * 100_000 + i, 20_000 + (i as usize % 5) * 30_000);
                    // With a zero grace period a collection may take a blob uploaded a
                    // moment ago: the push then uploads it again.
                    let keep_as = keep.then(|| format!("keep{i}"));
                    push_during_gc(base, &repo, &layer, keep_as, expected, retries);
                    i += 1;
                }
            });
        }
        let started = Instant::now();
        let mut cli_runs = 0;
        while started.elapsed() < Duration::from_secs(6) {
            gc_until_done(&s, &[]);
            cli_runs += 1;
            std::thread::sleep(Duration::from_millis(400));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(cli_runs >= 3);
    });
    let text = gc_until_done(&s, &[]);
    assert!(text.starts_with("deleted "), "{text}");
    // a dry run after a full collection finds nothing
    let dry = gc_until_done(&s, &["--dry-run"]);
    assert!(dry.starts_with("would delete 0 blobs"), "{dry}");

    let expected = expected.into_inner().unwrap();
    assert!(expected.len() > 6, "too few pushes: {}", expected.len());
    let needed = assert_expected(&s, &expected);
    assert_consistent(&s);
    // exactly what the tags need is left: the untagged manifests and their layers are gone
    assert_eq!(stored_blobs(&s), needed);
    let runs = gc_runs(&s);
    assert!(runs >= 1, "the scheduled collection never ran");
}

#[test]
fn the_default_policy_keeps_untagged_manifests_and_young_blobs() {
    let s = Served::start("");
    let (m1, d1) = s.push_image("keep/app", "v1", b"first");
    s.push_image("keep/app", "v1", b"second");
    let loose = s.push_blob("keep/app", b"uploaded, never referenced");
    let out = gc_until_done(&s, &[]);
    assert!(out.starts_with("deleted 0 blobs"), "{out}");
    assert_eq!(s.get(&format!("/v2/keep/app/manifests/{d1}")).body, m1);
    assert_eq!(s.get(&format!("/v2/keep/app/blobs/{loose}")).status, 200);
}

#[test]
fn deleting_a_repository_then_collecting_frees_its_blobs_but_not_shared_ones() {
    let s = Served::start("[gc]\ngrace = \"0s\"\n");
    let shared = b"shared layer".to_vec();
    s.push_image("a", "v1", &shared);
    s.push_image("b", "v1", &shared);
    s.push_image("b", "v2", b"only in b");
    assert_eq!(s.call("DELETE", "/v2/b/", &[], b"").status, 202);
    let out = gc_until_done(&s, &[]);
    // b's own manifests (2), its config of v2 and its private layer go; a keeps the rest
    assert!(out.starts_with("deleted 3 blobs"), "{out}");
    assert_consistent(&s);
    assert_eq!(s.get("/v2/a/manifests/v1").status, 200);
}
