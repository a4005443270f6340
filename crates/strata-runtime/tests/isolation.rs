//! Real containers on a busybox rootfs (needs root): exit codes, output, isolation, overlay, limits.
//!
//! `harness = false`: libtest runs tests on worker threads, but libcontainer must be driven from
//! a single-threaded process. So this binary is its own runner: `main` stays single-threaded,
//! and most cases re-execute this very binary as the runtime helper, the way `strata` does.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a test runner reports on its streams

#[path = "support/busybox.rs"]
mod busybox;

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Output, Stdio};
use std::time::Instant;

use strata_exit::ErrorChain;
use strata_runtime::{
    exec_helper_command, exec_in_helper, exec_request_from_env, helper_command,
    helper_spec_from_env, resolve_user, run, run_in_helper, run_observed,
    run_observed_watching_parent, ContainerSpec, ExecRequest, ExecSpec, InputMode, Limits, Network,
    ObserverError, OutputMode, OutputStream, RunObserver, RuntimeError, Termination,
};

type CaseResult = Result<(), String>;
type Case = fn(&Fixture) -> CaseResult;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// After `ensure!`, which it uses.
#[path = "support/network.rs"]
mod network;

struct Fixture {
    tmp: tempfile::TempDir,
    rootfs: PathBuf,
    ids: RefCell<Vec<String>>,
}

impl Fixture {
    fn new() -> std::io::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let rootfs = tmp.path().join("rootfs");
        busybox::make_busybox_rootfs(&rootfs)?;
        Ok(Self {
            tmp,
            rootfs,
            ids: RefCell::new(Vec::new()),
        })
    }

    /// A spec for a container named after the case, on the shared busybox rootfs.
    fn spec(&self, name: &str, args: &[&str]) -> ContainerSpec {
        let id = format!("strata-test-{}-{name}", std::process::id());
        self.ids.borrow_mut().push(id.clone());
        ContainerSpec::new(
            id,
            self.rootfs.clone(),
            self.tmp.path().join(format!("c-{name}")),
            args.iter().map(|a| (*a).to_owned()).collect(),
        )
    }

    /// Runs `spec` in a re-executed copy of this binary, capturing its streams.
    fn helper(&self, spec: &ContainerSpec) -> Result<Output, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        helper_command(exe, spec)
            .map_err(|e| e.to_string())?
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())
    }

    /// What the runtime must have removed once a container is gone.
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for id in self.ids.borrow().iter() {
            for controller in [
                "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio",
            ] {
                let dir = Path::new("/sys/fs/cgroup")
                    .join(controller)
                    .join("strata")
                    .join(id);
                if dir.exists() {
                    left.push(dir);
                }
            }
        }
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let tmp = self.tmp.path().to_string_lossy().into_owned();
            left.extend(
                mounts
                    .lines()
                    .filter_map(|l| l.split(' ').nth(4))
                    .filter(|point| point.starts_with(&tmp))
                    .map(PathBuf::from),
            );
        }
        if let Ok(entries) = std::fs::read_dir(self.tmp.path()) {
            for entry in entries.flatten() {
                for inner in std::fs::read_dir(entry.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let name = inner.file_name().to_string_lossy().into_owned();
                    if name == "console.sock" || name.starts_with("exec-") {
                        left.push(inner.path());
                    }
                }
                let state = entry.path().join("state");
                if let Ok(mut inner) = std::fs::read_dir(&state) {
                    if let Some(Ok(e)) = inner.next() {
                        left.push(e.path());
                    }
                }
            }
        }
        left
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn exit_code_is_the_containers(fx: &Fixture) -> CaseResult {
    let out = fx.helper(&fx.spec("exit3", &["sh", "-c", "exit 3"]))?;
    ensure!(out.status.code() == Some(3), "{}", describe(&out));
    let out = fx.helper(&fx.spec("true", &["true"]))?;
    ensure!(out.status.code() == Some(0), "{}", describe(&out));
    Ok(())
}

fn output_is_captured(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec("echo", &["sh", "-c", "echo hi; echo oops >&2"]);
    spec.stdio.stdout = OutputMode::Capture;
    spec.stdio.stderr = OutputMode::Capture;
    // In-process: this runner's main thread is the only thread.
    let out = run(&spec).map_err(|e| ErrorChain(&e).to_string())?;
    ensure!(out.status.success(), "status {:?}", out.status);
    ensure!(out.stdout == b"hi\n", "stdout {:?}", text(&out.stdout));
    ensure!(out.stderr == b"oops\n", "stderr {:?}", text(&out.stderr));
    // stdin from /dev/null: `cat` ends at once instead of reading this runner's stdin.
    let mut null_stdin = fx.spec("nullstdin", &["sh", "-c", "cat; echo done"]);
    null_stdin.stdio.stdin = strata_runtime::InputMode::Null;
    null_stdin.stdio.stdout = OutputMode::Capture;
    let out = run(&null_stdin).map_err(|e| ErrorChain(&e).to_string())?;
    ensure!(
        out.status.success() && out.stdout == b"done\n",
        "null stdin: {:?} {:?}",
        out.status,
        text(&out.stdout)
    );
    // Through the helper, whose pipes the container inherits.
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.success() && out.stdout == b"hi\n" && out.stderr == b"oops\n",
        "{}",
        describe(&out)
    );
    Ok(())
}

fn hostname_is_the_one_set(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec("hostname", &["sh", "-c", "hostname; cat /etc/hostname"]);
    spec.hostname = "strata-box".into();
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.success() && out.stdout == b"strata-box\nstrata-box\n",
        "{}",
        describe(&out)
    );
    Ok(())
}

fn only_the_containers_processes_are_visible(fx: &Fixture) -> CaseResult {
    let out = fx.helper(&fx.spec("pidns", &["sh", "-c", "echo $$; ls /proc"]))?;
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    ensure!(
        lines.next() == Some("1"),
        "shell is not pid 1: {}",
        describe(&out)
    );
    let pids: Vec<u32> = lines.filter_map(|l| l.trim().parse().ok()).collect();
    ensure!(
        pids.contains(&1) && pids.len() <= 3,
        "container sees pids {pids:?}"
    );
    Ok(())
}

fn sys_is_read_only(fx: &Fixture) -> CaseResult {
    // The container's own cgroups are visible (as under Docker) but read-only: a root process
    // with a writable cgroupfs could lift its own limits.
    let script = "mount -o remount,rw /sys && echo remounted; \
                  touch /sys/strata-probe && echo touched; \
                  mount -t cgroup -o pids cgroup /mnt && echo cgroupfs; \
                  echo max > /sys/fs/cgroup/pids/pids.max && echo pids-written; \
                  mkdir /sys/fs/cgroup/memory/escape && echo cgroup-created; \
                  touch /sys/fs/cgroup/file && echo tmpfs-written; \
                  ls -A /sys/fs/cgroup/systemd | grep -q . && echo host-tree-visible; \
                  test -f /sys/fs/cgroup/pids/pids.max && echo own-cgroups; \
                  grep ' /sys ' /proc/mounts";
    let out = fx.helper(&fx.spec("sysro", &["sh", "-c", script]))?;
    let stdout = text(&out.stdout);
    ensure!(
        ![
            "remounted",
            "touched",
            "cgroupfs",
            "pids-written",
            "cgroup-created",
            "tmpfs-written",
            "host-tree-visible"
        ]
        .iter()
        .any(|bad| stdout.contains(bad))
            && stdout.contains("own-cgroups"),
        "/sys writable or cgroups reachable: {}",
        describe(&out)
    );
    let sys_line = stdout
        .lines()
        .find(|l| l.contains(" /sys "))
        .unwrap_or_default();
    let options = sys_line.split_whitespace().nth(3).unwrap_or_default();
    ensure!(
        options.split(',').any(|o| o == "ro"),
        "/sys mount options {options:?}"
    );
    Ok(())
}

/// Docker's default set as a CapEff mask: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
/// SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_CAP_MASK: u64 = 0xa80425fb;
const CAP_SYS_ADMIN_BIT: u32 = 21;

fn status_field(status: &str, field: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim_start_matches(':').trim().to_owned())
}

fn capabilities_are_dockers_default(fx: &Fixture) -> CaseResult {
    let out = fx.helper(&fx.spec("caps", &["cat", "/proc/self/status"]))?;
    let status = text(&out.stdout);
    let cap_eff = status_field(&status, "CapEff")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .ok_or_else(|| describe(&out))?;
    ensure!(
        cap_eff & (1 << CAP_SYS_ADMIN_BIT) == 0,
        "CAP_SYS_ADMIN present: {cap_eff:x}"
    );
    ensure!(cap_eff == DOCKER_CAP_MASK, "CapEff {cap_eff:x}");
    let no_new_privs = status_field(&status, "NoNewPrivs");
    ensure!(
        no_new_privs.as_deref() == Some("1"),
        "NoNewPrivs {no_new_privs:?}"
    );
    Ok(())
}

fn non_root_user_cannot_read_root_only_file(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec(
        "user",
        &[
            "sh",
            "-c",
            "id -u; grep CapEff /proc/self/status; cat /secret",
        ],
    );
    spec.process.user.uid = 1000;
    spec.process.user.gid = 1000;
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.code() == Some(1)
            && text(&out.stdout) == "1000\nCapEff:\t0000000000000000\n"
            && text(&out.stderr).contains("Permission denied"),
        "{}",
        describe(&out)
    );
    Ok(())
}

fn image_user_groups_env_and_cwd_apply(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec(
        "identity",
        &["sh", "-c", "id -u; id -G; echo $WHO; echo $HOME; pwd"],
    );
    let resolved = resolve_user(&fx.rootfs, "app").map_err(|e| ErrorChain(&e).to_string())?;
    spec.process.apply_user(&resolved);
    spec.process.env.push("WHO=Sean and Karl".into());
    spec.process.cwd = "/tmp".into();
    let out = fx.helper(&spec)?;
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let mut groups: Vec<&str> = lines.get(1).unwrap_or(&"").split_whitespace().collect();
    groups.sort_unstable();
    ensure!(
        out.status.success()
            && lines.first() == Some(&"1000")
            && groups == ["10", "100", "1000"]
            && lines.get(2..) == Some(&["Sean and Karl", "/home/app", "/tmp"][..]),
        "{}",
        describe(&out)
    );
    Ok(())
}

fn dev_is_minimal_and_proc_is_masked(fx: &Fixture) -> CaseResult {
    // /proc/interrupts is not empty on the host (checked below); masked, it reads as empty.
    let script = "ls /dev; echo --; wc -c < /proc/interrupts; wc -c < /proc/timer_list; \
                  echo 1 > /proc/sys/kernel/ns_last_pid && echo wrote-proc-sys; \
                  echo x > /dev/null && echo devnull-ok";
    let out = fx.helper(&fx.spec("devproc", &["sh", "-c", script]))?;
    let stdout = text(&out.stdout);
    let (dev, rest) = stdout.split_once("--\n").ok_or_else(|| describe(&out))?;
    let dev: Vec<&str> = dev.lines().collect();
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue",
    ] {
        ensure!(dev.contains(&node), "/dev lacks {node}: {dev:?}");
    }
    for absent in ["sda", "vda", "mem", "kmsg"] {
        ensure!(
            !dev.contains(&absent),
            "/dev has host node {absent}: {dev:?}"
        );
    }
    let host = std::fs::read("/proc/interrupts").map_err(|e| e.to_string())?;
    ensure!(
        !host.is_empty(),
        "host /proc/interrupts is empty: the check proves nothing"
    );
    let rest: Vec<&str> = rest.lines().map(str::trim).collect();
    ensure!(
        rest == ["0", "0", "devnull-ok"],
        "masked/readonly proc paths: {rest:?}, stderr {:?}",
        text(&out.stderr)
    );
    Ok(())
}

fn extra_bind_mounts_honour_readonly(fx: &Fixture) -> CaseResult {
    let shared = fx.tmp.path().join("shared");
    let output = fx.tmp.path().join("output");
    for dir in [&shared, &output] {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(shared.join("input"), "from host\n").map_err(|e| e.to_string())?;
    let mut spec = fx.spec(
        "binds",
        &[
            "sh",
            "-c",
            "cat /in/input; touch /in/x && echo wrote-ro; echo out > /out/result",
        ],
    );
    spec.mounts = vec![
        strata_runtime::BindMount {
            source: shared.clone(),
            destination: "/in".into(),
            readonly: true,
        },
        strata_runtime::BindMount {
            source: output.clone(),
            destination: "/out".into(),
            readonly: false,
        },
    ];
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.success() && out.stdout == b"from host\n",
        "{}",
        describe(&out)
    );
    ensure!(!shared.join("x").exists(), "wrote through a read-only bind");
    let result = std::fs::read(output.join("result")).map_err(|e| e.to_string())?;
    ensure!(result == b"out\n", "result {:?}", text(&result));
    Ok(())
}

fn network_modes(fx: &Fixture) -> CaseResult {
    // Namespace identity, not interface lists: other processes may add veths meanwhile.
    let host_ns = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    let host_ns = host_ns.to_string_lossy();
    let script = "readlink /proc/self/ns/net; ls /sys/class/net; cat /sys/class/net/lo/flags; \
                  ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok";
    let out = fx.helper(&fx.spec("netnone", &["sh", "-c", script]))?;
    let stdout = text(&out.stdout);
    let (ns, rest) = stdout.split_once('\n').unwrap_or_default();
    ensure!(ns.starts_with("net:[") && ns != host_ns, "none: in {ns:?}");
    // 0x9 = IFF_UP | IFF_LOOPBACK: loopback is up, as in Docker's `none` network.
    ensure!(rest == "lo\n0x9\nping-ok\n", "none: {}", describe(&out));

    let mut spec = fx.spec("nethost", &["readlink", "/proc/self/ns/net"]);
    spec.network = Network::Host;
    let out = fx.helper(&spec)?;
    ensure!(
        text(&out.stdout).trim_end() == host_ns,
        "host: {} vs {host_ns}",
        describe(&out)
    );
    Ok(())
}

fn overlay_upper_receives_writes(fx: &Fixture) -> CaseResult {
    let base = fx.tmp.path().join("overlay");
    let overlay = busybox::Overlay::mount(&fx.rootfs, &base).map_err(|e| e.to_string())?;
    let mut spec = fx.spec(
        "overlay",
        &["sh", "-c", "echo data > /newfile; cat /etc/hosts"],
    );
    spec.rootfs = overlay.merged.clone();
    spec.etc_files.hosts = Some("127.0.0.1\tlocalhost\n".into());
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.success() && out.stdout == b"127.0.0.1\tlocalhost\n",
        "{}",
        describe(&out)
    );
    let upper = busybox::tree(&overlay.upper).map_err(|e| e.to_string())?;
    ensure!(
        upper == ["newfile"],
        "upper dir holds {upper:?}, want only the written file"
    );
    let data = std::fs::read(overlay.upper.join("newfile")).map_err(|e| e.to_string())?;
    ensure!(data == b"data\n", "newfile holds {:?}", text(&data));
    ensure!(
        !fx.rootfs.join("newfile").exists(),
        "write went to the lower dir"
    );
    Ok(())
}

fn created_mount_points_do_not_reach_the_upper_dir(fx: &Fixture) -> CaseResult {
    // A rootfs with nothing but busybox: no /proc, /dev, /sys, /etc, nor the -v target.
    let bare = fx.tmp.path().join("bare");
    std::fs::create_dir_all(bare.join("bin")).map_err(|e| e.to_string())?;
    std::fs::copy(fx.rootfs.join("bin/busybox"), bare.join("bin/busybox"))
        .map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("busybox", bare.join("bin/sh")).map_err(|e| e.to_string())?;
    let overlay = busybox::Overlay::mount(&bare, &fx.tmp.path().join("bare-overlay"))
        .map_err(|e| e.to_string())?;
    let mut spec = fx.spec(
        "stubs",
        &[
            "sh",
            "-c",
            "echo data > /newfile; read h < /etc/hostname; echo $h",
        ],
    );
    spec.rootfs = overlay.merged.clone();
    spec.hostname = "stubby".into();
    spec.etc_files = strata_runtime::EtcFiles::docker_defaults(Network::None)
        .map_err(|e| ErrorChain(&e).to_string())?;
    spec.mounts.push(strata_runtime::BindMount {
        source: fx.tmp.path().to_owned(),
        destination: "/mnt/host".into(),
        readonly: true,
    });
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.success() && out.stdout == b"stubby\n",
        "{}",
        describe(&out)
    );
    let upper = busybox::tree(&overlay.upper).map_err(|e| e.to_string())?;
    ensure!(upper == ["newfile"], "upper dir holds {upper:?}");
    Ok(())
}

fn readonly_rootfs_refuses_writes(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec("readonly", &["touch", "/probe"]);
    spec.readonly_rootfs = true;
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.code() == Some(1) && !fx.rootfs.join("probe").exists(),
        "{}",
        describe(&out)
    );
    Ok(())
}

fn limits_apply_and_cgroups_are_removed(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec("limits", &["sh", "-c", "echo ready; read x; echo got $x"]);
    spec.limits = Limits {
        memory_bytes: Some(64 << 20),
        memory_swap_bytes: Some(128 << 20),
        pids: Some(32),
        nano_cpus: Some(500_000_000),
    };
    let cgroup = |controller: &str, file: &str| {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("strata")
            .join(&spec.id)
            .join(file)
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = helper_command(exe, &spec)
        .map_err(|e| e.to_string())?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("no pipes to the helper".into());
    };
    // "ready" comes from inside the container, so create (limits included) has finished.
    let mut stdout = std::io::BufReader::new(stdout);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).map_err(|e| e.to_string())?;
    let read = |controller: &str, file: &str| {
        std::fs::read_to_string(cgroup(controller, file))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let (memory, swap, pids, quota) = (
        read("memory", "memory.limit_in_bytes"),
        read("memory", "memory.memsw.limit_in_bytes"),
        read("pids", "pids.max"),
        read("cpu", "cpu.cfs_quota_us"),
    );
    stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    ensure!(
        status.success() && first == "ready\n" && rest == "got go\n",
        "status {status}, stdout {first:?} {rest:?}"
    );
    ensure!(memory == "67108864", "memory.limit_in_bytes {memory:?}");
    ensure!(
        swap == "134217728"
            || !Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
        "memory.memsw.limit_in_bytes {swap:?}"
    );
    ensure!(pids == "32", "pids.max {pids:?}");
    ensure!(quota == "50000", "cpu.cfs_quota_us {quota:?}");
    ensure!(
        !cgroup("pids", "").exists() && !cgroup("memory", "").exists(),
        "cgroup left behind"
    );
    Ok(())
}

fn signals_to_the_helper_reach_the_container(fx: &Fixture) -> CaseResult {
    // busybox sh as pid 1 gets SIGTERM only because it installs a handler (as under Docker).
    let spec = fx.spec(
        "signals",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = helper_command(exe, &spec)
        .map_err(|e| e.to_string())?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let Some(stdout) = child.stdout.take() else {
        return Err("no stdout pipe".into());
    };
    let mut stdout = std::io::BufReader::new(stdout);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).map_err(|e| e.to_string())?;
    let helper = rustix::process::Pid::from_raw(child.id() as i32).ok_or("bad pid")?;
    rustix::process::kill_process(helper, rustix::process::Signal::TERM)
        .map_err(|e| e.to_string())?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    ensure!(
        first == "ready\n" && rest == "got-term\n" && status.code() == Some(7),
        "status {status}, stdout {first:?} {rest:?}"
    );
    Ok(())
}

/// Env var that makes this binary a "middle" process: it spawns the helper, then waits to be killed.
const MIDDLE_ENV: &str = "STRATA_TEST_MIDDLE_SPEC";

fn orphaned_helper_kills_its_container(fx: &Fixture) -> CaseResult {
    let spec = fx.spec("orphan", &["sleep", "1000"]);
    let procs = Path::new("/sys/fs/cgroup/pids/strata")
        .join(&spec.id)
        .join("cgroup.procs");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
    let mut middle = std::process::Command::new(exe)
        .env(MIDDLE_ENV, json)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let running =
        wait_until(|| std::fs::read_to_string(&procs).is_ok_and(|p| !p.trim().is_empty()));
    // Whatever happened, the middle process goes: the case is about what follows.
    let _ = middle.kill();
    let _ = middle.wait();
    ensure!(running, "the container never started");
    ensure!(
        wait_until(|| !procs.exists()),
        "container still running after its helper's parent died"
    );
    Ok(())
}

/// Polls `condition` for up to 10 s.
fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// The middle role: spawn the helper for the spec in [`MIDDLE_ENV`], then sleep until killed.
fn middle_main(json: &str) -> ExitCode {
    let Ok(spec) = serde_json::from_str::<ContainerSpec>(json) else {
        return ExitCode::FAILURE;
    };
    let Ok(exe) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    let Ok(mut command) = helper_command(exe, &spec) else {
        return ExitCode::FAILURE;
    };
    let spawned = command
        .env_remove(MIDDLE_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if spawned.is_err() {
        return ExitCode::FAILURE;
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
    ExitCode::SUCCESS
}

fn runtime_failures_exit_like_docker(fx: &Fixture) -> CaseResult {
    let mut no_rootfs = fx.spec("norootfs", &["true"]);
    no_rootfs.rootfs = fx.tmp.path().join("no-such-rootfs");
    let cases = [
        (fx.spec("missing", &["/no/such/binary"]), 127, "not found"),
        (fx.spec("notexec", &["/secret"]), 126, "permissions"),
        (no_rootfs, 125, "No such file"),
    ];
    for (spec, code, message) in cases {
        let out = fx.helper(&spec)?;
        ensure!(
            out.status.code() == Some(code) && text(&out.stderr).contains(message),
            "{}: {}",
            spec.id,
            describe(&out)
        );
    }
    Ok(())
}

/// What an observer saw, with arrival times.
#[derive(Default)]
struct Recorder {
    events: Vec<(Instant, String)>,
    out: [Vec<u8>; 2],
    fail_created: bool,
}

impl RunObserver for Recorder {
    fn created(&mut self, pid: i32) -> Result<(), ObserverError> {
        self.events.push((Instant::now(), format!("created {pid}")));
        if self.fail_created {
            return Err("network set-up failed".into());
        }
        Ok(())
    }

    fn started(&mut self, pid: i32) {
        self.events.push((Instant::now(), format!("started {pid}")));
    }

    fn output(&mut self, stream: OutputStream, bytes: &[u8]) {
        let index = match stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        self.out[index].extend_from_slice(bytes);
        self.events
            .push((Instant::now(), format!("{stream:?} {}", text(bytes))));
    }
}

fn observed_run_delivers_streams_separately_and_live(fx: &Fixture) -> CaseResult {
    let spec = fx.spec(
        "observed",
        &["sh", "-c", "echo a; sleep 1; echo b >&2; exit 5"],
    );
    let mut recorder = Recorder::default();
    let status = run_observed(&spec, &mut recorder).map_err(|e| ErrorChain(&e).to_string())?;
    let ended = Instant::now();
    ensure!(status == Termination::Exited(5), "status {status:?}");
    ensure!(
        recorder.out == [b"a\n".to_vec(), b"b\n".to_vec()],
        "streams {:?} {:?}",
        text(&recorder.out[0]),
        text(&recorder.out[1])
    );
    let names: Vec<&str> = recorder
        .events
        .iter()
        .map(|(_, e)| e.split(' ').next().unwrap_or_default())
        .collect();
    ensure!(
        names == ["created", "started", "Stdout", "Stderr"],
        "events {names:?}"
    );
    let (pids, first_output) = (
        recorder.events[0].1.split(' ').nth(1) == recorder.events[1].1.split(' ').nth(1),
        recorder.events[2].0,
    );
    ensure!(pids, "created and started name different pids");
    // "a" reached the observer while the container was still sleeping.
    let lead = ended.duration_since(first_output);
    ensure!(
        lead >= std::time::Duration::from_millis(700),
        "first line arrived only {lead:?} before the end"
    );
    Ok(())
}

fn observer_error_aborts_and_cleans_up(fx: &Fixture) -> CaseResult {
    let out = fx.tmp.path().join("abort-out");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut spec = fx.spec("abort", &["touch", "/out/ran"]);
    spec.mounts.push(strata_runtime::BindMount {
        source: out.clone(),
        destination: "/out".into(),
        readonly: false,
    });
    let mut recorder = Recorder {
        fail_created: true,
        ..Recorder::default()
    };
    let result = run_observed(&spec, &mut recorder);
    ensure!(
        matches!(&result, Err(RuntimeError::Observer { .. })),
        "result {:?}",
        result.map_err(|e| ErrorChain(&e).to_string())
    );
    let message = result
        .err()
        .map(|e| ErrorChain(&e).to_string())
        .unwrap_or_default();
    ensure!(
        message.contains("network set-up failed"),
        "message {message:?}"
    );
    ensure!(
        recorder.events.len() == 1 && !out.join("ran").exists(),
        "the user process ran: {:?}",
        recorder.events.iter().map(|(_, e)| e).collect::<Vec<_>>()
    );
    Ok(())
}

fn terminal_run_gives_a_pty_and_one_stream(fx: &Fixture) -> CaseResult {
    let script = "tty; test -t 0 && echo in-tty; echo err >&2; echo $TERM";
    let mut spec = fx.spec("tty", &["sh", "-c", script]);
    spec.process.terminal = true;
    spec.stdio.stdin = InputMode::Null;
    let mut recorder = Recorder::default();
    let status = run_observed(&spec, &mut recorder).map_err(|e| ErrorChain(&e).to_string())?;
    let expected = "/dev/pts/0\r\nin-tty\r\nerr\r\nxterm\r\n";
    ensure!(
        status.success() && text(&recorder.out[0]) == expected && recorder.out[1].is_empty(),
        "status {status:?}, stdout {:?}, stderr {:?}",
        text(&recorder.out[0]),
        text(&recorder.out[1])
    );
    // Through the helper, whose stdout the pty is copied to.
    let out = fx.helper(&spec)?;
    ensure!(
        out.status.success() && text(&out.stdout) == expected && out.stderr.is_empty(),
        "helper: {}",
        describe(&out)
    );
    Ok(())
}

/// Env var that makes this binary a "holder": it runs the spec with `run_observed`, prints
/// `started` once the container runs, and exits with its status.
const HOLDER_ENV: &str = "STRATA_TEST_HOLDER_SPEC";

struct HolderObserver;

impl RunObserver for HolderObserver {
    fn created(&mut self, _pid: i32) -> Result<(), ObserverError> {
        Ok(())
    }

    fn started(&mut self, pid: i32) {
        println!("started {pid}");
        let _ = std::io::stdout().flush();
    }

    fn output(&mut self, _stream: OutputStream, _bytes: &[u8]) {}
}

fn holder_main(json: &str) -> ExitCode {
    let Ok(spec) = serde_json::from_str::<ContainerSpec>(json) else {
        return ExitCode::FAILURE;
    };
    // Tied to the runner: a failing case must not leave the container running.
    let parent = rustix::process::getppid().map_or(1, |p| p.as_raw_nonzero().get());
    match run_observed_watching_parent(&spec, parent, &mut HolderObserver) {
        Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(u8::MAX)),
        Err(err) => {
            eprintln!("error: {}", ErrorChain(&err));
            ExitCode::from(strata_exit::ExitStatus::StrataFailed)
        }
    }
}

/// A container kept running by a holder process until the holder is sent SIGTERM.
struct Held {
    child: std::process::Child,
}

impl Held {
    fn start(spec: &ContainerSpec) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        let mut child = std::process::Command::new(exe)
            .env(HOLDER_ENV, json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let mut reader = std::io::BufReader::new(stdout);
            std::io::BufRead::read_line(&mut reader, &mut line).map_err(|e| e.to_string())?;
        }
        let held = Self { child };
        ensure!(line.starts_with("started "), "holder said {line:?}");
        Ok(held)
    }

    /// SIGTERM (forwarded to the container's init), then the holder's exit code.
    fn stop(mut self) -> Result<Option<i32>, String> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).ok_or("bad pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .map_err(|e| e.to_string())?;
        let status = self.child.wait().map_err(|e| e.to_string())?;
        Ok(status.code())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Only reached when `stop` was not: the container dies with its holder's parent
        // watch only if the runner dies, so kill it through the holder's signal forwarding.
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = self.child.wait();
        }
    }
}

/// Runs `spec` in container `id` (dir `dir`) through an exec helper with `stdin` bytes.
fn exec_helper(dir: &Path, id: &str, spec: ExecSpec, stdin: &[u8]) -> Result<Output, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let request = ExecRequest {
        dir: dir.to_owned(),
        id: id.to_owned(),
        spec,
    };
    let mut child = exec_helper_command(exe, &request)
        .map_err(|e| e.to_string())?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin).map_err(|e| e.to_string())?;
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

fn exec_runs_in_the_running_container(fx: &Fixture) -> CaseResult {
    let mut spec = fx.spec(
        "exec",
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while :; do sleep 0.05; done",
        ],
    );
    spec.process.env.push("FOO=bar".into());
    let held = Held::start(&spec)?;
    let run = |args: &[&str], edit: &dyn Fn(&mut ExecSpec), stdin: &[u8]| {
        let mut exec = ExecSpec::new(args.iter().map(|a| (*a).to_owned()).collect());
        edit(&mut exec);
        exec_helper(&spec.dir, &spec.id, exec, stdin)
    };
    let none = |_: &mut ExecSpec| {};
    type Check = (
        &'static str,
        &'static [&'static str],
        Box<dyn Fn(&mut ExecSpec)>,
        Option<i32>,
        &'static str,
    );
    let cases: Vec<Check> = vec![
        (
            "init",
            &["cat", "/proc/1/cmdline"],
            Box::new(none),
            Some(0),
            "sh\0-c\0trap",
        ),
        (
            "exit 3",
            &["sh", "-c", "exit 3"],
            Box::new(none),
            Some(3),
            "",
        ),
        (
            "exit 127",
            &["sh", "-c", "exit 127"],
            Box::new(none),
            Some(127),
            "",
        ),
        (
            "env",
            &["sh", "-c", "echo $FOO $X"],
            Box::new(|e: &mut ExecSpec| e.env.push("X=1".into())),
            Some(0),
            "bar 1\n",
        ),
        (
            "user",
            &["id", "-u"],
            Box::new(|e: &mut ExecSpec| {
                e.user = Some(strata_runtime::User {
                    uid: 1000,
                    gid: 0,
                    additional_gids: Vec::new(),
                })
            }),
            Some(0),
            "1000\n",
        ),
        (
            "cwd",
            &["pwd"],
            Box::new(|e: &mut ExecSpec| e.cwd = Some("/tmp".into())),
            Some(0),
            "/tmp\n",
        ),
        (
            "terminal",
            &["sh", "-c", "tty; test -t 1 && echo out-tty"],
            Box::new(|e: &mut ExecSpec| e.terminal = true),
            Some(0),
            "/dev/pts/0\r\nout-tty\r\n",
        ),
    ];
    for (name, args, edit, code, stdout) in &cases {
        let out = run(args, edit.as_ref(), b"")?;
        ensure!(
            out.status.code() == *code && text(&out.stdout).contains(stdout),
            "{name}: {}",
            describe(&out)
        );
    }
    // -i -t: our stdin is copied into the pty (and echoed by it, as a terminal does).
    let interactive = |e: &mut ExecSpec| {
        e.terminal = true;
        e.stdin = InputMode::Inherit;
    };
    let out = run(&["sh", "-c", "read x; echo got-$x"], &interactive, b"abc\n")?;
    ensure!(
        out.status.success() && text(&out.stdout).contains("got-abc\r\n"),
        "-i -t: {}",
        describe(&out)
    );
    // -i without a terminal: the process reads our stdin directly.
    let out = run(
        &["cat"],
        &|e: &mut ExecSpec| e.stdin = InputMode::Inherit,
        b"piped\n",
    )?;
    ensure!(
        out.status.success() && out.stdout == b"piped\n",
        "-i: {}",
        describe(&out)
    );
    // Docker 20.10's `docker exec` gives 126 when the command cannot be started at all.
    let out = run(&["/no/such/binary"], &none, b"")?;
    ensure!(
        out.status.code() == Some(126) && text(&out.stderr).contains("not found"),
        "missing binary: {}",
        describe(&out)
    );
    let out = run(&["/secret"], &none, b"")?;
    ensure!(
        out.status.code() == Some(126),
        "not executable: {}",
        describe(&out)
    );

    let state = spec.dir.join("state").join(&spec.id);
    let tenant_left: Vec<_> = std::fs::read_dir(&state)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tenant-"))
        .collect();
    ensure!(
        tenant_left.is_empty(),
        "exec left {tenant_left:?} in {state:?}"
    );

    let code = held.stop()?;
    ensure!(code == Some(0), "holder exited {code:?}");
    // Stopped: a typed error in-process, exit code 1 through the helper (as `docker exec`).
    let result = strata_runtime::exec(&spec.dir, &spec.id, &ExecSpec::new(vec!["true".into()]));
    ensure!(
        matches!(result, Err(RuntimeError::NotRunning { .. })),
        "exec after stop: {result:?}"
    );
    let out = run(&["true"], &none, b"")?;
    ensure!(
        out.status.code() == Some(1) && text(&out.stderr).contains("not running"),
        "exec after stop through the helper: {}",
        describe(&out)
    );
    Ok(())
}

const CASES: &[(&str, Case)] = &[
    ("exit_code_is_the_containers", exit_code_is_the_containers),
    ("output_is_captured", output_is_captured),
    ("hostname_is_the_one_set", hostname_is_the_one_set),
    (
        "only_the_containers_processes_are_visible",
        only_the_containers_processes_are_visible,
    ),
    ("sys_is_read_only", sys_is_read_only),
    (
        "capabilities_are_dockers_default",
        capabilities_are_dockers_default,
    ),
    (
        "non_root_user_cannot_read_root_only_file",
        non_root_user_cannot_read_root_only_file,
    ),
    (
        "image_user_groups_env_and_cwd_apply",
        image_user_groups_env_and_cwd_apply,
    ),
    (
        "dev_is_minimal_and_proc_is_masked",
        dev_is_minimal_and_proc_is_masked,
    ),
    (
        "extra_bind_mounts_honour_readonly",
        extra_bind_mounts_honour_readonly,
    ),
    ("network_modes", network_modes),
    (
        "overlay_upper_receives_writes",
        overlay_upper_receives_writes,
    ),
    (
        "created_mount_points_do_not_reach_the_upper_dir",
        created_mount_points_do_not_reach_the_upper_dir,
    ),
    (
        "readonly_rootfs_refuses_writes",
        readonly_rootfs_refuses_writes,
    ),
    (
        "limits_apply_and_cgroups_are_removed",
        limits_apply_and_cgroups_are_removed,
    ),
    (
        "signals_to_the_helper_reach_the_container",
        signals_to_the_helper_reach_the_container,
    ),
    (
        "orphaned_helper_kills_its_container",
        orphaned_helper_kills_its_container,
    ),
    (
        "runtime_failures_exit_like_docker",
        runtime_failures_exit_like_docker,
    ),
    (
        "observed_run_delivers_streams_separately_and_live",
        observed_run_delivers_streams_separately_and_live,
    ),
    (
        "observer_error_aborts_and_cleans_up",
        observer_error_aborts_and_cleans_up,
    ),
    (
        "terminal_run_gives_a_pty_and_one_stream",
        terminal_run_gives_a_pty_and_one_stream,
    ),
    (
        "exec_runs_in_the_running_container",
        exec_runs_in_the_running_container,
    ),
    (
        "bridge_published_port_reaches_the_container",
        network::published_port_reaches_the_container,
    ),
    (
        "bridge_two_containers_publish_different_ports",
        network::two_containers_publish_different_ports,
    ),
    (
        "bridge_container_reaches_the_host_network",
        network::container_reaches_the_host_network,
    ),
    (
        "bridge_publishing_a_busy_port_is_a_typed_error",
        network::publishing_a_busy_port_is_a_typed_error,
    ),
    (
        "bridge_killed_helper_leaves_no_pasta",
        network::killed_helper_leaves_no_pasta,
    ),
    (
        "bridge_missing_pasta_says_what_to_install",
        network::missing_pasta_says_what_to_install,
    ),
];

/// The exec helper role: run the request, exit with the process's code.
fn exec_helper_main(request: &ExecRequest) -> ExitCode {
    match exec_in_helper(request) {
        Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(u8::MAX)),
        Err(err) => {
            eprintln!("error: {}", ErrorChain(&err));
            ExitCode::from(err.exit_status())
        }
    }
}

/// The helper role: run the container this process was re-executed for, exit with its code.
fn helper_main(spec: &ContainerSpec) -> ExitCode {
    match run_in_helper(spec) {
        Ok(status) => ExitCode::from(u8::try_from(status.code()).unwrap_or(u8::MAX)),
        Err(err) => {
            eprintln!("error: {}", ErrorChain(&err));
            ExitCode::from(err.exit_status())
        }
    }
}

fn main() -> ExitCode {
    if let Ok(json) = std::env::var(MIDDLE_ENV) {
        return middle_main(&json);
    }
    if let Ok(json) = std::env::var(HOLDER_ENV) {
        return holder_main(&json);
    }
    match exec_request_from_env() {
        Ok(Some(request)) => return exec_helper_main(&request),
        Ok(None) => {}
        Err(err) => {
            eprintln!("error: {}", ErrorChain(&err));
            return ExitCode::from(strata_exit::ExitStatus::StrataFailed);
        }
    }
    match helper_spec_from_env() {
        Ok(Some(spec)) => return helper_main(&spec),
        Ok(None) => {}
        Err(err) => {
            eprintln!("error: {}", ErrorChain(&err));
            return ExitCode::from(err.exit_status());
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<_> = CASES
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    if !rustix::process::geteuid().is_root() {
        println!("containers need root: skipping all");
        println!(
            "\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; 0 filtered out\n",
            selected.len()
        );
        return ExitCode::SUCCESS;
    }
    let fixture = match Fixture::new() {
        Ok(fixture) => fixture,
        Err(err) => {
            eprintln!("cannot build the busybox rootfs: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.iter().any(|a| a == "--measure-network") {
        return match network::measure_start_latency(&fixture) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("measurement failed: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, case) in &selected {
        let started = Instant::now();
        let mut result = case(&fixture);
        let left = fixture.leftovers();
        if result.is_ok() && !left.is_empty() {
            result = Err(format!("left behind: {left:?}"));
        }
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({} ms)", started.elapsed().as_millis());
            }
            Err(why) => {
                println!("test {name} ... FAILED\n    {why}");
                failed.push(*name);
            }
        }
    }
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out\n",
        failed.len(),
        CASES.len() - selected.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
