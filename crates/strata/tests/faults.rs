//! Fault injection: a full disk, killed processes, hostile sizes. Whatever happens, the store
//! stays usable and nothing is left half-done, and a killed build leaves no mount or process.
//! Root only (tmpfs and overlay mounts).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// SIGKILLs the monitor of a running container; returns the container's init pid.
fn kill_monitor(env: &Env, name: &str) -> i32 {
    let state = common::inspect(env, name);
    let id = state["Id"].as_str().unwrap().to_owned();
    let pid = state["State"]["Pid"].as_i64().unwrap() as i32;
    assert!(pid > 0, "{name} runs");
    let monitor = common::find_monitor(&id).expect("monitor process");
    // SAFETY: kill(2) of a process this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    wait_until("the monitor to die", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{monitor}")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    pid
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// The container's cgroup directories left in any hierarchy.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("strata").join(id))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_container_whose_monitor_was_killed_is_stopped_started_and_removed() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "busybox:local",
        "sleep",
        "300",
    ]);
    let id = common::inspect(&env, "orphan")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let init = kill_monitor(&env, "orphan");
    assert!(alive(init), "the container outlives its monitor");
    let ps = env.ok(&["ps", "-a"]);
    assert!(
        ps.lines()
            .any(|l| l.contains("orphan") && l.contains("Dead")),
        "{ps}"
    );
    assert!(env.fails(&["start", "orphan"]).contains("unobserved"));

    // stop acts on the recorded pid, then records the end.
    env.ok(&["stop", "-t", "1", "orphan"]);
    assert!(!alive(init), "stop killed the orphaned init");
    let state = &common::inspect(&env, "orphan")["State"];
    assert_eq!(state["Status"], "exited");
    // As with Docker: a pid 1 without a handler ignores SIGTERM, SIGKILL follows the timeout.
    assert_eq!(state["ExitCode"], 137);
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));

    // start works again (no leftover runtime state), and so does kill after another crash.
    env.ok(&["start", "orphan"]);
    let init = kill_monitor(&env, "orphan");
    env.ok(&["kill", "orphan"]);
    assert!(!alive(init));
    assert_eq!(common::inspect(&env, "orphan")["State"]["ExitCode"], 137);
    assert!(env.fails(&["kill", "orphan"]).contains("not running"));

    // A crash, then the init ends by itself: exited, code unknown; start cleans up and runs.
    env.ok(&["start", "orphan"]);
    let init = kill_monitor(&env, "orphan");
    // SAFETY: kill(2) of a process this test started.
    unsafe { libc::kill(init, libc::SIGKILL) };
    wait_until("the init to end", Duration::from_secs(10), || !alive(init));
    assert_eq!(common::inspect(&env, "orphan")["State"]["Status"], "exited");
    env.ok(&["start", "orphan"]);
    assert_eq!(
        common::inspect(&env, "orphan")["State"]["Status"],
        "running"
    );

    // rm -f of a running orphan leaves no process and no cgroup.
    let init = kill_monitor(&env, "orphan");
    env.ok(&["rm", "-f", "orphan"]);
    assert!(!alive(init));
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
    assert!(!env.root().join("containers").join(&id).exists());
}

/// A docker-save archive whose layer is fine but whose config is not JSON: `load` ingests
/// the layer, then fails.
fn archive_with_a_broken_config(layer_bytes: usize) -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    let data = vec![0x5a; layer_bytes];
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    layer.append_data(&mut h, "big", &data[..]).unwrap();
    let layer = layer.into_inner().unwrap();
    let manifest = br#"[{"Config":"config.json","RepoTags":["broken:1"],"Layers":["layer.tar"]}]"#;
    let mut archive = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("layer.tar", &layer[..]),
        ("config.json", &b"{not json"[..]),
        ("manifest.json", &manifest[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        archive.append_data(&mut h, name, body).unwrap();
    }
    archive.into_inner().unwrap()
}

#[test]
fn space_left_by_failed_commands_is_shown_and_freed() {
    let env = Env::new();
    env.import_busybox();
    let before = env.ok(&["system", "df"]);
    let archive = env.path("broken.tar");
    std::fs::write(&archive, archive_with_a_broken_config(3 << 20)).unwrap();
    env.fails(&["load", "-i", archive.to_str().unwrap()]);
    // A snapshot dir no record names, as a process killed between its steps leaves.
    let orphan = env.root().join("snapshots/overlay/987654");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("f"), vec![1u8; 2 << 20]).unwrap();

    let df = env.ok(&["system", "df"]);
    assert_ne!(df, before);
    let unreferenced = df
        .lines()
        .find(|l| l.starts_with("Unreferenced"))
        .unwrap_or_default();
    // The failed load's layer blob (3 MiB) and the orphan dir (2 MiB).
    assert!(unreferenced.contains("5.2"), "{df}");
    let verbose = env.ok(&["system", "df", "-v"]);
    assert!(
        verbose.contains("Unreferenced (left by interrupted commands)"),
        "{verbose}"
    );
    let check = env.run(&["system", "check"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("unreferenced blobs and snapshots"), "{text}");
    assert!(text.contains("987654 has no record"), "{text}");

    let pruned = env.ok(&["system", "prune", "-f"]);
    let freed = pruned
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap();
    assert!(freed.ends_with("MB"), "{pruned}");
    let mb: f64 = freed.trim_end_matches("MB").parse().unwrap();
    assert!(mb > 5.0, "the layer blob and the orphan dir: {pruned}");
    assert!(!orphan.exists());
    assert!(!env.ok(&["system", "df"]).contains("Unreferenced"));
    env.ok(&["system", "check"]);

    // container prune says what it freed.
    env.ok(&[
        "run",
        "--name",
        "big",
        "busybox:local",
        "dd",
        "if=/dev/zero",
        "of=/f",
        "bs=1M",
        "count=3",
    ]);
    let pruned = env.ok(&["container", "prune", "-f"]);
    assert!(!pruned.contains("Total reclaimed space: 0B"), "{pruned}");
}

/// A docker-save archive of a three-layer image whose middle layer's bytes no longer match
/// the diff_id its config names.
fn archive_with_a_corrupt_middle_layer() -> Vec<u8> {
    use sha2::{Digest as _, Sha256};
    let layer = |name: &str, size: usize| {
        let mut b = tar::Builder::new(Vec::new());
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = tar::Header::new_ustar();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
        b.into_inner().unwrap()
    };
    let mut layers = vec![
        layer("a", 1 << 20),
        layer("b", 1 << 20),
        layer("c", 1 << 20),
    ];
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| {
            let hex: String = Sha256::digest(l)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("sha256:{hex}")
        })
        .collect();
    layers[1][4096] ^= 0xff;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    })
    .to_string();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": ["corrupt:1"],
        "Layers": ["l0/layer.tar", "l1/layer.tar", "l2/layer.tar"],
    }])
    .to_string();
    let mut archive = tar::Builder::new(Vec::new());
    let mut files: Vec<(String, Vec<u8>)> = layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| (format!("l{i}/layer.tar"), l))
        .collect();
    files.push(("config.json".into(), config.into_bytes()));
    files.push(("manifest.json".into(), manifest.into_bytes()));
    for (name, body) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        archive.append_data(&mut h, name, &body[..]).unwrap();
    }
    archive.into_inner().unwrap()
}

#[test]
fn a_load_failing_on_a_corrupt_middle_layer_records_no_snapshot_above_it() {
    for driver in ["overlay", "vfs"] {
        let env = Env::new();
        env.ok(&["--storage-driver", driver, "system", "df"]);
        let archive = env.path("corrupt.tar");
        std::fs::write(&archive, archive_with_a_corrupt_middle_layer()).unwrap();
        let err = env.fails(&["load", "-i", archive.to_str().unwrap()]);
        assert!(
            err.contains("not the layer it claims to be"),
            "{driver}: {err}"
        );
        assert!(env.ok(&["images", "-a", "-q"]).trim().is_empty());
        // Nothing recorded above the bad layer: the store is consistent...
        let check = env.ok(&["system", "check"]);
        assert!(check.contains("no problems found"), "{driver}: {check}");
        // ...and what the load left is shown and freed.
        assert!(
            env.ok(&["system", "df"]).contains("Unreferenced"),
            "{driver}"
        );
        env.ok(&["system", "prune", "-f"]);
        assert!(
            !env.ok(&["system", "check"]).contains("unreferenced"),
            "{driver}"
        );
    }
}

// A build killed during RUN (issue 13 item 1).

/// Mount points under `root` in this process's mount namespace (the host's).
fn mounts_under(root: &Path) -> Vec<String> {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let prefix = format!("{}/", root.display());
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .filter(|point| point.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Pids of processes whose command line mentions `text` (pasta names its pid file in the root).
fn pids_mentioning(text: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(text))
        })
        .collect()
}

/// Pids of processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Lazily unmounts whatever is left under a root, so a failing test leaks nothing.
struct UnmountLeftovers(std::path::PathBuf);

impl Drop for UnmountLeftovers {
    fn drop(&mut self) {
        for point in mounts_under(&self.0).iter().rev() {
            let _ = std::process::Command::new("umount")
                .args(["-l", point])
                .status();
        }
    }
}

#[test]
fn a_build_killed_during_run_leaves_no_mount_behind() {
    let env = Env::new();
    let _cleanup = UnmountLeftovers(env.root());
    env.import_busybox();
    for (round, signal) in [libc::SIGKILL, libc::SIGINT, libc::SIGTERM]
        .into_iter()
        .enumerate()
    {
        // A distinct sleep per round, so its process names this round's RUN step.
        let seconds = format!("{}", 4242 + round);
        let dockerfile = format!("FROM busybox:local\nRUN echo {round} && sleep {seconds}\n");
        let dir = common::context(&env, &[("Dockerfile", dockerfile.as_str())]);
        let mut build = env
            .cmd(&["build", "-q", "-t", "killed:1", dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the RUN step", Duration::from_secs(30), || {
            !pids_running(&["sleep", &seconds]).is_empty()
        });
        // SAFETY: kill(2) of a process this test started.
        unsafe { libc::kill(build.id() as i32, signal) };
        build.wait().unwrap();
        // The step's container goes with its build.
        wait_until("the RUN step to end", Duration::from_secs(30), || {
            pids_running(&["sleep", &seconds]).is_empty()
        });
        assert_eq!(
            mounts_under(&env.root()),
            Vec::<String>::new(),
            "signal {signal} left mounts"
        );
        // Nor a process: the step's network (pasta) goes with the build.
        let root = env.root().to_string_lossy().into_owned();
        wait_until(
            "the build's processes to end",
            Duration::from_secs(10),
            || pids_mentioning(&root).is_empty(),
        );
    }
    // The next build works and cleans the killed builds' areas; the root can be removed.
    let dir = common::context(
        &env,
        &[("Dockerfile", "FROM busybox:local\nRUN echo ok >/ok\n")],
    );
    env.ok(&["build", "-q", "-t", "after:1", dir.to_str().unwrap()]);
    let leftovers: Vec<_> = std::fs::read_dir(env.root().join("build-tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "stale build areas: {leftovers:?}");
    env.ok(&["system", "check"]);
    std::fs::remove_dir_all(env.root()).expect("rm -rf of the store root");
}

#[test]
fn system_check_reports_a_mount_left_under_the_root() {
    let env = Env::new();
    env.import_busybox();
    let point = env.root().join("build-tmp/build-1-0/run-1-0/rootfs");
    std::fs::create_dir_all(&point).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "leftover", point.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success());
    let out = env.run(&["system", "check"]);
    let _ = std::process::Command::new("umount").arg(&point).status();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("mount") && stdout.contains(point.to_str().unwrap()),
        "{stdout}"
    );
}
