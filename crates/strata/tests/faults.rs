//! Fault injection: a full disk, killed processes, hostile sizes. Whatever happens, the store
//! stays usable and nothing is left half-done. Root only (tmpfs and overlay mounts).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Env;

/// A size-limited tmpfs mounted at `dir` for the test's store root; unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs at {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }

    fn free_bytes(&self) -> u64 {
        let fs = rustix::fs::statvfs(&self.0).unwrap();
        fs.f_bavail * fs.f_frsize
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_container_filling_the_disk_can_still_be_stopped_and_removed() {
    let env = Env::new();
    let disk = SmallDisk::mount(&env.root(), "96m");
    env.import_busybox();
    // One container floods its log (unlimited), another fills the disk through its own files.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flood",
        "--log-opt",
        "max-size=-1",
        "busybox:local",
        "sh",
        "-c",
        "while true; do echo 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz; done",
    ]);
    // The log stops short of the last 16 MiB by itself...
    wait_until("the log to pause", Duration::from_secs(60), || {
        disk.free_bytes() < 20 << 20
    });
    let id = common::inspect(&env, "flood")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let monitor_log = env.root().join("containers").join(&id).join("monitor.log");
    wait_until("the monitor to say so", Duration::from_secs(10), || {
        std::fs::read_to_string(&monitor_log).is_ok_and(|t| t.contains("no space left"))
    });
    // ...then a container writing files takes the rest.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "filler",
        "busybox:local",
        "sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=1M; sleep 1000",
    ]);
    wait_until("the disk to be full", Duration::from_secs(60), || {
        disk.free_bytes() < 64 << 10
    });
    // Every state change that frees space still commits.
    env.ok(&["stop", "-t", "1", "flood"]);
    env.ok(&["kill", "filler"]);
    env.ok(&["rm", "-f", "flood", "filler"]);
    env.ok(&["rmi", "busybox:local"]);
    env.ok(&["system", "check"]);
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // With the space back, the reserve is made again and the store works as before.
    env.import_busybox();
    assert_eq!(
        env.ok(&["run", "--rm", "busybox:local", "echo", "ok"]),
        "ok\n"
    );
    assert!(env.root().join("space-reserve").exists());
}
