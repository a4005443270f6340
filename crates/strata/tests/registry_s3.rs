//! Several `strata registry serve` replicas on one S3 bucket (an in-process S3-compatible
//! server, `strata_registry::test_s3`): what one replica accepted, every other serves at once;
//! an upload session moves between replicas; concurrent pushes of one tag through different
//! replicas leave one whole manifest; collections run while pushes go on through another
//! replica and keep every pushed image.

#[path = "common/registry.rs"]
mod registry;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use registry::*;
use strata_registry::test_s3::TestS3;

const BUCKET: &str = "registry";

/// Where the replicas keep their objects: the in-process S3 server, or, with
/// `STRATA_S3_ENDPOINT` set (`scripts/registry-garage` sets it), an external S3-compatible
/// store: `STRATA_S3_BUCKET`, `STRATA_S3_REGION` and the credentials in `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY`, which the replicas take from the environment.
enum Bucket {
    Local {
        server: TestS3,
        dir: tempfile::TempDir,
        prefix: String,
    },
    External {
        endpoint: String,
        bucket: String,
        region: String,
        prefix: String,
    },
}

impl Bucket {
    fn start() -> Bucket {
        // a prefix of its own, so tests sharing an external bucket never meet
        let prefix = format!(
            "t{}-{}",
            std::process::id(),
            unique_layer(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64,
                4
            )
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
        );
        if let Ok(endpoint) = std::env::var("STRATA_S3_ENDPOINT") {
            return Bucket::External {
                endpoint,
                bucket: std::env::var("STRATA_S3_BUCKET").unwrap_or_else(|_| BUCKET.into()),
                region: std::env::var("STRATA_S3_REGION").unwrap_or_else(|_| "garage".into()),
                prefix,
            };
        }
        let dir = tempfile::Builder::new()
            .prefix("strata-s3-")
            .tempdir()
            .expect("temp dir");
        let server = TestS3::start(dir.path(), BUCKET);
        Bucket::Local {
            server,
            dir,
            prefix,
        }
    }

    /// A replica on the bucket; `extra` is more configuration (before the `[s3]` table).
    fn replica(&self, extra: &str) -> Served {
        let s3 = match self {
            Bucket::Local { server, prefix, .. } => server.config(BUCKET, prefix),
            Bucket::External {
                endpoint,
                bucket,
                region,
                prefix,
            } => format!(
                "[s3]\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\nregion = \"{region}\"\nprefix = \"{prefix}\"\n"
            ),
        };
        Served::start(&format!("{extra}\n{s3}part_size = \"5MiB\"\n"))
    }

    /// Every blob object in the bucket verifies (the in-process server keeps objects as files).
    fn assert_blobs_verify(&self) {
        if let Bucket::Local { dir, prefix, .. } = self {
            assert_blobs_verify(&dir.path().join(BUCKET).join(prefix));
        }
    }

    /// The blob objects in the bucket; `None` for an external store.
    fn stored_blobs(&self) -> Option<BTreeSet<String>> {
        let Bucket::Local { dir, prefix, .. } = self else {
            return None;
        };
        let mut out = BTreeSet::new();
        let root = dir.path().join(BUCKET).join(prefix).join("blobs/sha256");
        let Ok(shards) = std::fs::read_dir(root) else {
            return Some(out);
        };
        for shard in shards {
            for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                out.insert(format!(
                    "sha256:{}",
                    f.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        Some(out)
    }
}

fn base(s: &Served) -> String {
    format!("http://{}", s.addr)
}

#[test]
fn a_push_through_one_replica_is_served_by_another_at_once() {
    let bucket = Bucket::start();
    let a = bucket.replica("");
    let b = bucket.replica("");
    // a layer bigger than one part (5 MiB), so it goes through a multipart upload
    let layer = unique_layer(1, 6 << 20 | 12_345);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let c = push_blob_chunked(&base(&a), "team/app", config, 1 << 20).unwrap();
    let l = push_blob_chunked(&base(&a), "team/app", &layer, 2 << 20).unwrap();
    let m = oci_manifest(&c, config.len(), &[(&l, layer.len())]);
    let r = a.put_manifest("team/app", "v1", OCI_MANIFEST, m.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    // the other replica serves all of it as soon as the PUT returned
    let got = b.get("/v2/team/app/manifests/v1");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, m.as_bytes());
    assert_eq!(
        got.header("docker-content-digest"),
        Some(sha256(m.as_bytes()).as_str())
    );
    let blob = b.get(&format!("/v2/team/app/blobs/{l}"));
    assert_eq!(blob.status, 200);
    assert_eq!(sha256(&blob.body), l);
    // a range is passed through to the store
    let part = b.call(
        "GET",
        &format!("/v2/team/app/blobs/{l}"),
        &[("range", "bytes=5242870-5242889")],
        b"",
    );
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.body, &layer[5_242_870..5_242_890]);
    assert_eq!(b.get("/v2/_catalog").json()["repositories"][0], "team/app");
    assert_eq!(b.get("/v2/team/app/tags/list").json()["tags"][0], "v1");

    // an upload session started on one replica continues and finishes on the other
    let data = unique_layer(2, (5 << 20) + 300_000);
    let start = a.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202);
    let loc = start.header("location").unwrap().to_string();
    let cut = 3 << 20;
    let r = a.call(
        "PATCH",
        &loc,
        &[("content-range", &format!("0-{}", cut - 1))],
        &data[..cut],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let status = b.call("GET", &loc, &[], b"");
    assert_eq!(status.status, 204);
    assert_eq!(
        status.header("range"),
        Some(format!("0-{}", cut - 1).as_str())
    );
    let r = b.call(
        "PATCH",
        &loc,
        &[("content-range", &format!("{cut}-{}", data.len() - 1))],
        &data[cut..],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let d = sha256(&data);
    let r = a.call("PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(sha256(&b.get(&format!("/v2/team/app/blobs/{d}")).body), d);
    // a wrong digest is refused and nothing appears under it
    let wrong = sha256(b"something else");
    let start = b.call("POST", "/v2/team/app/blobs/uploads/", &[], b"");
    let loc = start.header("location").unwrap().to_string();
    let r = a.call("PUT", &format!("{loc}?digest={wrong}"), &[], b"not that");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        b.call("HEAD", &format!("/v2/team/app/blobs/{wrong}"), &[], b"")
            .status,
        404
    );

    // a tag moved through one replica names the new manifest on the other at once
    let (m2, d2) = b.push_image("team/app", "v1", b"second");
    let got = a.get("/v2/team/app/manifests/v1");
    assert_eq!(got.body, m2);
    assert_eq!(got.header("docker-content-digest"), Some(d2.as_str()));
    // a delete through one is seen by the other
    let r = a.call("DELETE", &format!("/v2/team/app/manifests/{d2}"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(b.get(&format!("/v2/team/app/manifests/{d2}")).status, 404);
    assert_eq!(b.get("/v2/team/app/manifests/v1").status, 404);
}

#[test]
fn a_replica_killed_mid_push_leaves_nothing_and_the_retry_goes_through_another() {
    let bucket = Bucket::start();
    let mut a = bucket.replica("");
    let b = bucket.replica("");
    let layer = unique_layer(3, 12 << 20);
    std::thread::scope(|scope| {
        let base_a = base(&a);
        let pushing = scope.spawn(move || push_image_at(&base_a, "crash/app", "v1", &layer));
        std::thread::sleep(Duration::from_millis(400));
        a.kill_now();
        // whatever state the push reached, it did not succeed silently half-way
        let _ = pushing.join().unwrap();
    });
    a.kill();
    // the client retries through the other replica (a new session, as docker does)
    let layer = unique_layer(3, 12 << 20);
    let m = push_image_at(&base(&b), "crash/app", "v1", &layer).unwrap();
    assert_eq!(b.get("/v2/crash/app/manifests/v1").body, m);
    assert_consistent(&b);
    bucket.assert_blobs_verify();
    // and a replica restarted on the bucket serves it
    a.restart();
    assert_eq!(a.get("/v2/crash/app/manifests/v1").body, m);
}

#[test]
fn concurrent_pushes_of_one_tag_through_two_replicas_leave_one_whole_manifest() {
    let bucket = Bucket::start();
    let a = bucket.replica("");
    let b = bucket.replica("");
    let pushed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (t, replica) in [&a, &b, &a, &b].into_iter().enumerate() {
            let (base, pushed) = (base(replica), &pushed);
            scope.spawn(move || {
                for i in 0..4u64 {
                    let layer = unique_layer(100 + t as u64 * 10 + i, 30_000);
                    let m = push_image_at(&base, "race/app", "latest", &layer).unwrap();
                    pushed.lock().unwrap().push(m);
                }
            });
        }
    });
    let pushed = pushed.into_inner().unwrap();
    let through_a = a.get("/v2/race/app/manifests/latest");
    let through_b = b.get("/v2/race/app/manifests/latest");
    assert_eq!(through_a.status, 200);
    assert_eq!(
        through_a.body, through_b.body,
        "replicas disagree on the tag"
    );
    assert!(
        pushed.contains(&through_a.body),
        "the tag names a manifest nobody pushed (torn?)"
    );
    assert_eq!(
        through_a.header("docker-content-digest").unwrap(),
        sha256(&through_a.body)
    );
    // every manifest pushed is there by digest, whole, with its blobs
    for m in &pushed {
        let r = b.get(&format!("/v2/race/app/manifests/{}", sha256(m)));
        assert_eq!(&r.body, m);
    }
    assert_consistent(&a);
    assert_consistent(&b);
}

#[test]
fn racing_chunks_through_two_replicas_never_commit_bytes_under_another_digest() {
    // A client (or an attacker with push rights) sends different chunks of one length to
    // one session through two replicas at once, then finishes with the digest of one of
    // them: whatever wins, the blob stored under that digest must have that digest.
    let bucket = Bucket::start();
    let a = bucket.replica("");
    let b = bucket.replica("");
    for round in 0..4u64 {
        let start = a.call("POST", "/v2/race/blob/blobs/uploads/", &[], b"");
        let loc = start.header("location").unwrap().to_string();
        let one = unique_layer(1000 + round, 300_000);
        let two = unique_layer(2000 + round, 300_000);
        let range = format!("0-{}", one.len() - 1);
        std::thread::scope(|scope| {
            for (s, data) in [(&a, &one), (&b, &two)] {
                let (loc, range) = (&loc, &range);
                scope.spawn(move || {
                    let r = s.call("PATCH", loc, &[("content-range", range)], data);
                    // one of them may be told to retry (429) or that it does not continue
                    // the upload (416); neither is an error here
                    assert!(
                        [202, 416, 429].contains(&r.status),
                        "{} {}",
                        r.status,
                        r.text()
                    );
                });
            }
        });
        for (data, via) in [(&one, &b), (&two, &a)] {
            let d = sha256(data);
            let r = via.call("PUT", &format!("{loc}?digest={d}"), &[], b"");
            if r.status == 201 {
                let got = a.get(&format!("/v2/race/blob/blobs/{d}"));
                assert_eq!(
                    sha256(&got.body),
                    d,
                    "round {round}: bytes committed under another digest"
                );
            }
        }
        for d in [sha256(&one), sha256(&two)] {
            let got = b.get(&format!("/v2/race/blob/blobs/{d}"));
            assert!(
                got.status == 404 || sha256(&got.body) == d,
                "round {round}: {d} is poisoned"
            );
        }
    }
}

#[test]
fn collections_on_one_replica_while_pushing_through_others_keep_every_pushed_image() {
    let bucket = Bucket::start();
    // replica a collects on a schedule; `strata registry gc` runs against the bucket too
    let a = bucket.replica("[gc]\ninterval = \"2s\"\ngrace = \"0s\"\nuntagged = \"delete\"\n");
    let b = bucket.replica("[gc]\ngrace = \"0s\"\nuntagged = \"delete\"\n");
    let expected: Expected = Mutex::new(BTreeMap::new());
    let stop = AtomicBool::new(false);
    let retries = Mutex::new(0u32);
    std::thread::scope(|scope| {
        for (t, replica) in [&a, &b].into_iter().enumerate() {
            let base = base(replica);
            let (stop, expected, retries) = (&stop, &expected, &retries);
            scope.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let repo = format!("gc/t{t}");
                    let keep = i.is_multiple_of(4);
                    let layer =
                        unique_layer(t as u64 * 100_000 + i, 20_000 + (i as usize % 4) * 25_000);
                    let keep_as = keep.then(|| format!("keep{i}"));
                    push_during_gc(&base, &repo, &layer, keep_as, expected, retries);
                    i += 1;
                }
            });
        }
        // `strata registry gc` on the other replica's configuration, competing with a's
        // schedule for the lease
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(8) {
            let out = gc_cli(&b, &[]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() || err.contains("another garbage collection"),
                "gc failed: {err}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });
    // S3 times have whole seconds and the collector keeps what is not provably older than
    // its start: let the last pushes age past that before the final collection
    std::thread::sleep(Duration::from_millis(2500));
    let text = gc_until_done(&b, &[]);
    assert!(text.starts_with("deleted "), "{text}");
    let dry = gc_until_done(&b, &["--dry-run"]);
    assert!(dry.starts_with("would delete 0 blobs"), "{dry}");

    let expected = expected.into_inner().unwrap();
    assert!(expected.len() > 4, "too few pushes: {}", expected.len());
    let needed = assert_expected(&a, &expected);
    assert_eq!(assert_expected(&b, &expected), needed);
    assert_consistent(&a);
    bucket.assert_blobs_verify();
    // exactly what the tags need is left in the bucket
    if let Some(stored) = bucket.stored_blobs() {
        assert_eq!(stored, needed);
    }
    let runs = gc_runs(&a);
    assert!(runs >= 1, "the scheduled collection never ran");
}

#[test]
fn a_pull_through_cache_filled_through_one_replica_serves_through_another() {
    let mut upstream = Served::start("");
    let (m, d) = upstream.push_image("library/app", "1", b"layer from upstream");
    let bucket = Bucket::start();
    let mirror = format!(
        "[[mirror]]\nprefix = \"up\"\nregistry = \"{}\"\ntag_ttl = \"0s\"\n",
        upstream.addr
    );
    let a = bucket.replica(&mirror);
    let b = bucket.replica(&mirror);
    let accept = [("accept", OCI_MANIFEST)];
    let got = a.call("GET", "/v2/up/library/app/manifests/1", &accept, b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, m);
    let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
    let layer = v["layers"][0]["digest"].as_str().unwrap();
    let blob = a.get(&format!("/v2/up/library/app/blobs/{layer}"));
    assert_eq!(sha256(&blob.body), layer);
    // the upstream goes away: the other replica serves the bucket's copy
    upstream.kill();
    let got = b.call("GET", "/v2/up/library/app/manifests/1", &accept, b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, m);
    assert_eq!(b.get(&format!("/v2/up/library/app/manifests/{d}")).body, m);
    let blob = b.get(&format!("/v2/up/library/app/blobs/{layer}"));
    assert_eq!(sha256(&blob.body), layer);
}
