//! The registry killed with SIGKILL: upload sessions resume after a restart, and pushes
//! interrupted at any point leave nothing corrupt or half-visible.

#[path = "common/registry.rs"]
mod registry;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use registry::*;

#[test]
fn an_upload_session_survives_a_restart() {
    let mut s = Served::start("");
    let data = unique_layer(1, 300_000);
    let d = sha256(&data);
    let r = s.call("POST", "/v2/resume/blobs/uploads/", &[], b"");
    let loc = r.header("location").unwrap().to_string();
    let r = s.call(
        "PATCH",
        &loc,
        &[("content-range", "0-99999")],
        &data[..100_000],
    );
    assert_eq!(r.status, 202);
    s.restart();
    let st = s.get(&loc);
    assert_eq!(st.status, 204);
    assert_eq!(st.header("range"), Some("0-99999"));
    let r = s.call(
        "PATCH",
        &loc,
        &[("content-range", "100000-199999")],
        &data[100_000..200_000],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    s.stop();
    s.restart();
    let r = s.call(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("content-range", "200000-299999")],
        &data[200_000..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.get(&format!("/v2/resume/blobs/{d}")).body, data);
}

#[test]
fn kill_9_during_pushes_leaves_nothing_corrupt_and_retries_complete() {
    let mut s = Served::start("");
    let pushed: Mutex<Vec<(String, String, Vec<u8>)>> = Mutex::new(Vec::new());
    let failed: Mutex<Vec<(String, String, u64)>> = Mutex::new(Vec::new());
    for round in 0..3u64 {
        let stop = AtomicBool::new(false);
        let base = format!("http://{}", s.addr);
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let (base, stop, pushed, failed) = (&base, &stop, &pushed, &failed);
                scope.spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let seed = round * 1_000_000 + t * 1000 + i;
                        let repo = format!("crash/t{t}");
                        let tag = format!("r{round}-{i}");
                        let layer = unique_layer(seed, 200_000 + (seed as usize % 7) * 100_000);
                        match push_image_at(base, &repo, &tag, &layer) {
                            Ok(m) => pushed.lock().unwrap().push((repo, tag, m)),
                            Err(_) => {
                                failed.lock().unwrap().push((repo, tag, seed));
                                break;
                            }
                        }
                        i += 1;
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(700 + round * 300));
            s.kill_now();
            stop.store(true, Ordering::Relaxed);
        });
        s.restart();
        assert_consistent(&s);
        for (repo, tag, m) in pushed.lock().unwrap().iter() {
            let r = s.get(&format!("/v2/{repo}/manifests/{tag}"));
            assert_eq!(&r.body, m, "a completed push of {repo}:{tag} was lost");
        }
    }
    assert!(
        pushed.lock().unwrap().len() >= 4,
        "the pushers made no progress"
    );
    // every interrupted push completes when retried
    let base = format!("http://{}", s.addr);
    for (repo, tag, seed) in failed.lock().unwrap().iter() {
        let layer = unique_layer(*seed, 200_000 + (*seed as usize % 7) * 100_000);
        push_image_at(&base, repo, tag, &layer).expect("retry after the crash");
    }
    assert_consistent(&s);
}
