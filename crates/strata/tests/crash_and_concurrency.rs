//! Crash safety and concurrent use, through the real binary: a `strata` killed with SIGKILL in
//! the middle of an import or a load leaves a store that `system check` finds clean, and
//! several `strata` processes importing and tagging at once never corrupt anything.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{fixture, Env};

/// A rootfs tar with one large file of incompressible data, so an import takes a while.
fn big_rootfs(env: &Env, megabytes: usize) -> std::path::PathBuf {
    let path = env.path("big.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = vec![0u8; megabytes << 20];
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, "big.bin", &data[..])
        .unwrap();
    builder.into_inner().unwrap().flush().unwrap();
    path
}

#[test]
fn killed_imports_and_loads_leave_a_clean_store() {
    let env = Env::new();
    env.import_busybox();
    let big = big_rootfs(&env, 96);
    let archive = env.path("big-archive.tar");
    // An archive to load: the big image, saved.
    env.ok(&["import", big.to_str().unwrap(), "big:1"]);
    env.ok(&["save", "-o", archive.to_str().unwrap(), "big:1"]);
    env.ok(&["rmi", "big:1"]);

    for (round, delay_ms) in [5u64, 40, 120, 300].into_iter().enumerate() {
        for args in [
            vec!["import", big.to_str().unwrap(), "killed:1"],
            vec!["load", "-i", archive.to_str().unwrap()],
        ] {
            let mut child = env
                .cmd(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            let check = env.run(&["system", "check"]);
            assert!(
                check.status.success(),
                "round {round}, {args:?} killed after {delay_ms} ms: system check failed:\n{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            // A tag, when present, names a complete image.
            for name in ["killed:1", "big:1"] {
                let out = env.run(&["inspect", name]);
                if out.status.success() {
                    env.ok(&["history", name]);
                }
            }
        }
    }
    // And the store still works.
    env.ok(&["load", "-i", archive.to_str().unwrap()]);
    env.ok(&["image", "prune", "-a", "-f"]);
    env.ok(&["system", "check"]);
}

#[test]
fn parallel_processes_import_tag_and_remove_without_corruption() {
    let env = Env::new();
    let tar = strata_testkit::busybox::rootfs_tar();
    let fixture_tar = fixture("two-layers.docker.tar");
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let root = env.root();
            let fixture_tar = fixture_tar.clone();
            std::thread::spawn(move || {
                let strata = |args: &[&str]| {
                    std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
                        .arg("--root")
                        .arg(&root)
                        .args(args)
                        .stdin(Stdio::null())
                        .output()
                        .unwrap()
                };
                for i in 0..4 {
                    let name = format!("w{w}/img:{i}");
                    let out = strata(&["import", tar.to_str().unwrap(), &name]);
                    assert!(
                        out.status.success(),
                        "import: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let out = strata(&["load", "-i", fixture_tar.to_str().unwrap()]);
                    assert!(
                        out.status.success(),
                        "load: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let out = strata(&["tag", &name, &format!("shared:{w}")]);
                    assert!(
                        out.status.success(),
                        "tag: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    if i % 2 == 1 {
                        let out = strata(&["rmi", &name]);
                        assert!(
                            out.status.success(),
                            "rmi: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    env.ok(&["system", "check"]);
    for w in 0..4 {
        for i in [0, 2] {
            env.ok(&["history", &format!("w{w}/img:{i}")]);
        }
        env.ok(&["history", &format!("shared:{w}")]);
    }
    env.ok(&["history", "fixture/two-layers:v1"]);
}

#[test]
fn many_processes_creating_one_store_at_once_all_succeed() {
    for _ in 0..5 {
        let env = Env::new();
        let children: Vec<_> = (0..8)
            .map(|_| {
                env.cmd(&["images", "-q"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        env.ok(&["system", "check"]);
    }
}
