//! Online garbage collection: collections (scheduled in the server and run by
//! `strata registry gc` from another process) while pushes go on never break a push that
//! completed, and unreferenced blobs are gone afterwards.

#[path = "common/registry.rs"]
mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use registry::*;

fn gc_cli(s: &Served, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["registry", "gc", "--config"])
        .arg(s.config_path())
        .args(extra)
        .output()
        .expect("run strata registry gc")
}

/// Runs `strata registry gc` until it is not refused for a concurrent collection.
fn gc_until_done(s: &Served, extra: &[&str]) -> String {
    for _ in 0..100 {
        let out = gc_cli(s, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            err.contains("another garbage collection"),
            "gc failed: {err}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gc never got the lease");
}

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
    let expected: Mutex<BTreeMap<(String, String), Vec<u8>>> = Mutex::new(BTreeMap::new());
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
                    let mut attempt = 0;
                    let m = loop {
                        // With a zero grace period a collection may take a blob uploaded a
                        // moment ago: the manifest push then fails and the client uploads
                        // again, as Docker does on a retry.
                        match push_image_at(base, &repo, "latest", &layer) {
                            Ok(m) => break m,
                            Err(e) => {
                                assert!(e.contains("MANIFEST_BLOB_UNKNOWN"), "push failed: {e}");
                                *retries.lock().unwrap() += 1;
                                attempt += 1;
                                assert!(attempt < 20, "push never got through: {e}");
                            }
                        }
                    };
                    let mut exp = expected.lock().unwrap();
                    exp.insert((repo.clone(), "latest".into()), m.clone());
                    drop(exp);
                    if keep {
                        let tag = format!("keep{i}");
                        let r = call_url(
                            &format!("{base}/v2/{repo}/manifests/{tag}"),
                            "PUT",
                            &[("content-type", OCI_MANIFEST)],
                            &m,
                        )
                        .unwrap();
                        // the manifest was just pushed, so it is young and cannot be gone
                        assert_eq!(r.status, 201, "{}", r.text());
                        expected.lock().unwrap().insert((repo, tag), m);
                    }
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
    let mut needed = BTreeSet::new();
    for ((repo, tag), m) in &expected {
        let r = s.get(&format!("/v2/{repo}/manifests/{tag}"));
        assert_eq!(&r.body, m, "{repo}:{tag} changed or vanished");
        needed.insert(sha256(m));
        let v: serde_json::Value = serde_json::from_slice(m).unwrap();
        let mut blobs = vec![v["config"]["digest"].as_str().unwrap().to_string()];
        blobs.push(v["layers"][0]["digest"].as_str().unwrap().to_string());
        for b in blobs {
            let r = s.get(&format!("/v2/{repo}/blobs/{b}"));
            assert_eq!(r.status, 200, "{repo}:{tag} lost {b}");
            assert_eq!(sha256(&r.body), b);
            needed.insert(b);
        }
    }
    assert_consistent(&s);
    // exactly what the tags need is left: the untagged manifests and their layers are gone
    assert_eq!(stored_blobs(&s), needed);
    let metrics = s.get("/metrics").text();
    let runs: u64 = metrics
        .lines()
        .find(|l| l.starts_with("strata_registry_gc_runs_total "))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
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
