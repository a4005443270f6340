//! Container isolation, tried as an attacker would (issue 9, and issue 13's signal and
//! environment-size items): an inherited host descriptor as working directory, syscalls
//! Docker's seccomp profile refuses, cgroup limits rewritten from inside, supplementary groups
//! and descriptors of the caller, swap, signal dispositions, huge environments, and the
//! options that loosen isolation on purpose. Then the probes strata already passed (masked
//! paths, capabilities, no_new_privs, device nodes, /proc/1/root, symlinked paths).
//!
//! `tests/differential/security.sh` runs the same probes under Docker 20.10 side by side.
//! Root only. The syscall probe (`tests/probe/syscall_probe.c`) is compiled once per run with
//! the system C compiler as a static executable.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use common::{build, Env};

/// What Docker 20.10's default profile gives each probe (checked against it by
/// `tests/differential/security.sh`).
const DOCKER_SYSCALL_RESULTS: [(&str, &str); 22] = [
    ("getpid", "ok"),
    ("clone(fork)", "ok"),
    ("clone(CLONE_NEWUSER)", "EPERM"),
    ("clone3", "ENOSYS"),
    ("unshare(CLONE_NEWUSER)", "EPERM"),
    ("unshare(CLONE_NEWNS)", "EPERM"),
    ("keyctl", "EPERM"),
    ("add_key", "EPERM"),
    ("request_key", "EPERM"),
    ("perf_event_open", "EPERM"),
    ("userfaultfd", "EPERM"),
    ("personality(ADDR_NO_RANDOMIZE)", "EPERM"),
    ("personality(query)", "ok"),
    ("name_to_handle_at", "EPERM"),
    ("open_by_handle_at", "EPERM"),
    ("move_pages", "EPERM"),
    ("set_mempolicy", "EPERM"),
    ("mount", "EPERM"),
    ("bpf", "EPERM"),
    ("syslog", "EPERM"),
    ("kcmp", "EPERM"),
    ("chroot", "ok"),
];

/// Docker's default capability set as a CapEff mask.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// The probe, compiled once per test process.
fn probe_binary() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("strata-probe-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join("syscall_probe");
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/syscall_probe.c");
            let status = std::process::Command::new("cc")
                .args(["-static", "-O2", "-o"])
                .arg(&out)
                .arg(&source)
                .status()
                .expect("run cc (./scripts/test installs gcc and libc6-dev)");
            assert!(status.success(), "compiling {}", source.display());
            out
        })
        .clone()
}

/// `busybox:local` plus the probe at `/probe`, as image `probe`.
fn probe_image(env: &Env) {
    env.import_busybox();
    let dir = env.path("probe-ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(probe_binary(), dir.join("probe")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nCOPY probe /probe\n",
    )
    .unwrap();
    build(env, &dir, "probe");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {}, stdout {:?}, stderr {:?}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `name result` lines of the probe.
fn probe_results(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn assert_docker_syscall_results(output: &str, context: &str) {
    let got = probe_results(output);
    for (name, expected) in DOCKER_SYSCALL_RESULTS {
        assert_eq!(
            got.get(name).map(String::as_str),
            Some(expected),
            "{context}: {name}\n{output}"
        );
    }
}

/// The value of `Field:` in a `/proc/<pid>/status` text.
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Builds `dockerfile` (with `files` in the context) as `tag`.
fn build_image(env: &Env, tag: &str, dockerfile: &str, files: &[(&str, &str)]) {
    let dir = env.path(&format!("ctx-{}", tag.replace(':', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    common::write_files(&dir, files);
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    build(env, &dir, tag);
}

// ----- 1. a host directory descriptor as working directory (CVE-2024-21626 class) -----

#[test]
fn a_working_directory_through_an_inherited_descriptor_is_refused() {
    let env = Env::new();
    env.import_busybox();
    let secret = format!("host-secret-{}", std::process::id());
    let marker = env.path("host-secret");
    std::fs::write(&marker, &secret).unwrap();
    // From any host directory, enough ".." reach the host's root.
    let escape = format!("{}{}", "../".repeat(16), marker.display());
    let read = format!("cat {escape}; echo > {escape}.written");
    let leaked = |out: &Output| {
        text(&out.stdout).contains(&secret) || env.path("host-secret.written").exists()
    };

    // Whichever descriptors the runtime holds open, none may serve as a way out; the ones
    // that are directories are refused by name.
    let mut refused = 0;
    for fd in 3..=12 {
        let workdir = format!("/proc/self/fd/{fd}");
        let out = env.run(&[
            "run",
            "--rm",
            "-w",
            &workdir,
            "busybox:local",
            "sh",
            "-c",
            &read,
        ]);
        assert!(!leaked(&out), "-w {workdir}: {}", describe(&out));
        assert_eq!(
            out.status.code(),
            Some(125),
            "-w {workdir}: {}",
            describe(&out)
        );
        if text(&out.stderr).contains(&format!(
            "working directory {workdir} resolves outside the container"
        )) {
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "no descriptor was a directory: the probe proves nothing"
    );

    // The same from an image's config.
    let tar = strata_testkit::busybox::rootfs_tar();
    for fd in [3, 8] {
        let tag = format!("evil-workdir:{fd}");
        env.ok(&[
            "import",
            "-c",
            &format!("WORKDIR /proc/self/fd/{fd}"),
            tar.to_str().unwrap(),
            &tag,
        ]);
        let out = env.run(&["run", "--rm", &tag, "sh", "-c", &read]);
        assert!(!leaked(&out), "image WORKDIR fd {fd}: {}", describe(&out));
        assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    }

    // And in a build's RUN step.
    for fd in [3, 4, 8] {
        let dir = env.path(&format!("ctx-workdir-{fd}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            format!("FROM busybox:local\nWORKDIR /proc/self/fd/{fd}\nRUN {read}\n"),
        )
        .unwrap();
        let out = env.run(&["build", "--progress", "plain", dir.to_str().unwrap()]);
        assert!(
            !leaked(&out),
            "RUN in /proc/self/fd/{fd}: {}",
            describe(&out)
        );
        assert!(!out.status.success(), "{}", describe(&out));
    }
}

// ----- 2. Docker's seccomp profile -----

#[test]
fn seccomp_refuses_what_dockers_default_profile_refuses_in_run_exec_and_build() {
    let env = Env::new();
    probe_image(&env);
    let out = env.ok(&["run", "--rm", "probe", "/probe"]);
    assert_docker_syscall_results(&out, "run");
    let status = env.ok(&["run", "--rm", "probe", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&status, "Seccomp"), "2");

    env.ok(&["run", "-d", "--name", "sc", "probe", "sleep", "60"]);
    let out = env.ok(&["exec", "sc", "/probe"]);
    assert_docker_syscall_results(&out, "exec");
    let status = env.ok(&["exec", "sc", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&status, "Seccomp"), "2");
    env.ok(&["rm", "-f", "sc"]);

    build_image(
        &env,
        "probed",
        "FROM probe\nRUN /probe > /syscalls && grep Seccomp: /proc/self/status > /seccomp\n",
        &[],
    );
    let out = env.ok(&["run", "--rm", "probed", "cat", "/syscalls"]);
    assert_docker_syscall_results(&out, "RUN");
    let seccomp = env.ok(&["run", "--rm", "probed", "cat", "/seccomp"]);
    assert_eq!(status_field(&seccomp, "Seccomp"), "2");
}

#[test]
fn cgroup_limits_cannot_be_lifted_from_inside() {
    let env = Env::new();
    probe_image(&env);
    // The attack of issue 9: a user namespace with a cgroup namespace and a v1 mount.
    let script = "/probe escape pids pids.max max; /probe fork 200; \
                  /probe escape memory memory.limit_in_bytes -1; /probe alloc 200; \
                  echo max > /sys/fs/cgroup/pids/pids.max || echo pids.max-readonly; \
                  echo 999999999 > /sys/fs/cgroup/memory/memory.limit_in_bytes || echo memory-readonly; \
                  cat /sys/fs/cgroup/pids/pids.max /proc/self/cgroup";
    let out = env.run(&[
        "run",
        "--rm",
        "--pids-limit",
        "50",
        "--memory",
        "64m",
        "probe",
        "sh",
        "-c",
        script,
    ]);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("escape write ok"), "{}", describe(&out));
    assert!(
        stdout.contains("escape unshare EPERM"),
        "{}",
        describe(&out)
    );
    let forked: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("forked "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert!(forked < 50, "forked {forked} under --pids-limit 50");
    assert!(
        stdout.contains("alloc killed by signal 9"),
        "200 MiB under --memory 64m: {}",
        describe(&out)
    );
    assert!(stdout.contains("pids.max-readonly") && stdout.contains("memory-readonly"));
    // Its own cgroups, read-only, at the root of a private cgroup namespace.
    assert!(stdout.lines().any(|l| l == "50"), "{stdout}");
    for line in stdout
        .lines()
        .filter(|l| l.contains(":pids:") || l.contains(":memory:"))
    {
        assert!(line.ends_with(":/"), "cgroup namespace not private: {line}");
    }
}

// ----- 5. supplementary groups of the caller -----

/// Runs strata as a process that is also in supplementary group 42 (Debian's `shadow`).
fn as_member_of_42(env: &Env, args: &[&str]) -> Output {
    let mut command = env.cmd(args);
    // SAFETY: setgroups only changes the child's credentials, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let groups = [42 as libc::gid_t];
            if libc::setgroups(1, groups.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().unwrap()
}

#[test]
fn supplementary_groups_come_from_the_image_never_from_the_caller() {
    let env = Env::new();
    env.import_busybox();
    build_image(
        &env,
        "groups",
        "FROM busybox:local\n\
         RUN echo 'shadow:x:42:' >> /etc/group && echo 'audio:x:29:app' >> /etc/group \\\n\
          && echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd \\\n\
          && echo top-secret > /secret && chown 0:42 /secret && chmod 0640 /secret\n",
        &[],
    );
    let check = "grep Groups: /proc/self/status; cat /secret";
    let out = as_member_of_42(
        &env,
        &[
            "run",
            "--rm",
            "-u",
            "1000:1000",
            "groups",
            "sh",
            "-c",
            check,
        ],
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("top-secret"), "{}", describe(&out));
    assert_eq!(
        status_field(&stdout, "Groups"),
        "1000",
        "{}",
        describe(&out)
    );

    // Docker's list: primary group, then the image's memberships, then --group-add.
    let groups = |user: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(user);
        args.extend_from_slice(&["groups", "grep", "Groups:", "/proc/self/status"]);
        let out = as_member_of_42(&env, &args);
        status_field(&text(&out.stdout), "Groups")
    };
    assert_eq!(groups(&["-u", "app"]), "29 1000");
    assert_eq!(groups(&[]), "0");
    let out = as_member_of_42(
        &env,
        &[
            "run",
            "--rm",
            "-u",
            "1000:1000",
            "--group-add",
            "shadow",
            "--group-add",
            "7",
            "groups",
            "sh",
            "-c",
            check,
        ],
    );
    assert!(
        text(&out.stdout).contains("top-secret"),
        "{}",
        describe(&out)
    );
    assert_eq!(status_field(&text(&out.stdout), "Groups"), "7 42 1000");
    let err = env.fails(&["run", "--rm", "--group-add", "nope", "groups", "true"]);
    assert!(err.contains("unable to find group nope"), "{err}");

    // A detached container and an exec started from the same shell.
    let out = as_member_of_42(
        &env,
        &[
            "run",
            "-d",
            "--name",
            "g",
            "-u",
            "1000:1000",
            "groups",
            "sleep",
            "60",
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = as_member_of_42(&env, &["exec", "g", "sh", "-c", check]);
    assert!(
        !text(&out.stdout).contains("top-secret"),
        "{}",
        describe(&out)
    );
    assert_eq!(status_field(&text(&out.stdout), "Groups"), "1000");
    env.ok(&["rm", "-f", "g"]);
    // --group-add applies to an exec'd user too (Docker's rule).
    env.ok(&[
        "run",
        "-d",
        "--name",
        "g2",
        "--group-add",
        "shadow",
        "groups",
        "sleep",
        "60",
    ]);
    let out = as_member_of_42(&env, &["exec", "-u", "1000:1000", "g2", "sh", "-c", check]);
    assert!(
        text(&out.stdout).contains("top-secret"),
        "{}",
        describe(&out)
    );
    assert_eq!(status_field(&text(&out.stdout), "Groups"), "42 1000");
    env.ok(&["rm", "-f", "g2"]);
}

// ----- 6. the caller's descriptors -----

#[test]
fn containers_get_pipes_never_the_callers_descriptors() {
    let env = Env::new();
    env.import_busybox();
    let log = env.path("caller.log");
    std::fs::write(&log, "caller-log-secret\n").unwrap();
    let dir = env.path("host-dir");
    std::fs::create_dir_all(dir.join("host-dir-marker")).unwrap();
    env.ok(&["run", "-d", "--name", "f", "busybox:local", "sleep", "60"]);

    // `strata exec f sh -c … 2>>caller.log`
    let mut exec = env.cmd(&[
        "exec",
        "f",
        "sh",
        "-c",
        "readlink /proc/self/fd/2; test -f /proc/self/fd/2 && echo regular-file",
    ]);
    let append = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let out = exec.stderr(append).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("pipe:["), "{}", describe(&out));
    assert!(!stdout.contains("regular-file") && !stdout.contains("caller.log"));

    // stdin redirected from a host directory, for exec -i and run -i.
    let list = "ls /proc/self/fd/0/; readlink /proc/self/fd/0";
    for args in [
        vec!["exec", "-i", "f", "sh", "-c", list],
        vec!["run", "--rm", "-i", "busybox:local", "sh", "-c", list],
    ] {
        let out = env
            .cmd(&args)
            .stdin(std::fs::File::open(&dir).unwrap())
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(
            !stdout.contains("host-dir-marker"),
            "{args:?}: {}",
            describe(&out)
        );
        assert!(stdout.contains("pipe:["), "{args:?}: {}", describe(&out));
    }

    // Foreground, detached and RUN containers: /dev/null or pipes only.
    let fds = "for f in 0 1 2; do readlink /proc/self/fd/$f; done";
    let out = env.ok(&["run", "--rm", "busybox:local", "sh", "-c", fds]);
    assert_pipes_or_null(&out, "/dev/null");
    let id = env.ok(&["run", "-d", "busybox:local", "sh", "-c", fds]);
    env.ok(&["wait", id.trim()]);
    assert_pipes_or_null(&env.ok(&["logs", id.trim()]), "/dev/null");
    // A RUN step, listing its own descriptors into the build's log.
    let dir = env.path("ctx-fds");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nRUN [\"ls\", \"-l\", \"/proc/self/fd/\"]\n",
    )
    .unwrap();
    let out = env.run(&["build", "--progress", "plain", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let listing = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let targets: String = ["0", "1", "2"]
        .iter()
        .map(|fd| {
            let line = listing
                .lines()
                .find(|l| l.contains(&format!(" {fd} -> ")))
                .unwrap_or_else(|| panic!("fd {fd} in {listing}"));
            format!("{}\n", line.rsplit(" -> ").next().unwrap_or_default())
        })
        .collect();
    assert_pipes_or_null(&targets, "/dev/null");
    env.ok(&["rm", "-f", "f"]);
}

fn assert_pipes_or_null(output: &str, stdin: &str) {
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 3, "{output}");
    assert_eq!(lines[0], stdin, "{output}");
    for line in &lines[1..] {
        assert!(line.starts_with("pipe:["), "{output}");
    }
}

#[test]
fn pipelines_end_of_input_and_exit_codes_go_through_the_pipes() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&["run", "-d", "--name", "p", "busybox:local", "sleep", "60"]);

    // `yes | strata run -i … head -2`: the container's end closes, so does ours.
    for args in [
        vec!["run", "--rm", "-i", "busybox:local", "head", "-2"],
        vec!["exec", "-i", "p", "head", "-2"],
    ] {
        let mut child = env
            .cmd(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || while stdin.write_all(b"y\n").is_ok() {});
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert_eq!(text(&out.stdout), "y\ny\n", "{args:?}");
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    // End of input reaches the container; both streams keep their own way.
    for args in [
        vec![
            "run",
            "--rm",
            "-i",
            "busybox:local",
            "sh",
            "-c",
            "cat; echo done; echo err >&2; exit 3",
        ],
        vec![
            "exec",
            "-i",
            "p",
            "sh",
            "-c",
            "cat; echo done; echo err >&2; exit 3",
        ],
    ] {
        let mut child = env
            .cmd(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"a\nb").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(text(&out.stdout), "a\nbdone\n", "{args:?}");
        assert_eq!(text(&out.stderr), "err\n", "{args:?}");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
    }
    // A terminal still works.
    let out = env.ok(&["exec", "-t", "p", "sh", "-c", "tty; exit 0"]);
    assert!(out.starts_with("/dev/pts/"), "{out}");
    env.ok(&["rm", "-f", "p"]);
}

// ----- 8. swap -----

#[test]
fn memory_limits_swap_too_as_docker() {
    let env = Env::new();
    env.import_busybox();
    let memsw = "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes";
    let accounted = Path::new(memsw).exists();
    let read = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--memory", "64m"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox:local", "cat", memsw]);
        env.ok(&args).trim().to_owned()
    };
    if accounted {
        assert_eq!(read(&[]), (128u64 << 20).to_string());
        assert_eq!(read(&["--memory-swap", "100m"]), (100u64 << 20).to_string());
        let unlimited: u64 = read(&["--memory-swap", "-1"]).parse().unwrap();
        assert!(unlimited > 1 << 50, "{unlimited}");
    }
    let id = env.ok(&["create", "--memory", "64m", "busybox:local", "true"]);
    let view = common::inspect(&env, id.trim());
    assert_eq!(view["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(view["HostConfig"]["MemorySwap"], 128 << 20);

    let out = env.run(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--memory-swap",
        "32m",
        "busybox:local",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("minimum memoryswap limit should be larger than memory limit")
    );
    let out = env.run(&[
        "run",
        "--rm",
        "--memory-swap",
        "32m",
        "busybox:local",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("you should always set the memory limit"));
}

// ----- issue 13: signals and big environments -----

#[test]
fn processes_start_with_default_signal_dispositions_in_run_exec_and_build() {
    let env = Env::new();
    env.import_busybox();
    let zero = "0000000000000000";
    let check = |status: &str, what: &str| {
        assert_eq!(status_field(status, "SigIgn"), zero, "{what}: {status}");
        assert_eq!(status_field(status, "SigBlk"), zero, "{what}: {status}");
    };
    check(
        &env.ok(&["run", "--rm", "busybox:local", "cat", "/proc/self/status"]),
        "run",
    );
    check(
        &env.ok(&[
            "run",
            "--rm",
            "-t",
            "busybox:local",
            "cat",
            "/proc/self/status",
        ]),
        "run -t",
    );
    env.ok(&["run", "-d", "--name", "s", "busybox:local", "sleep", "60"]);
    check(&env.ok(&["exec", "s", "cat", "/proc/self/status"]), "exec");
    env.ok(&["rm", "-f", "s"]);
    build_image(
        &env,
        "sig",
        // Exec form: a shell's own children may see it ignore SIGQUIT (busybox ash does, under
        // Docker too).
        "FROM busybox:local\nRUN [\"cp\", \"/proc/self/status\", \"/status\"]\nRUN yes | head -1 > /yes 2> /yes.err\n",
        &[],
    );
    check(&env.ok(&["run", "--rm", "sig", "cat", "/status"]), "RUN");
    assert_eq!(
        env.ok(&["run", "--rm", "sig", "cat", "/yes", "/yes.err"]),
        "y\n"
    );

    // SIGPIPE at its default: `yes` dies quietly once `head` is gone.
    let out = env.run(&["run", "--rm", "busybox:local", "sh", "-c", "yes | head -1"]);
    assert_eq!(text(&out.stdout), "y\n");
    assert_eq!(text(&out.stderr), "", "{}", describe(&out));
}

#[test]
fn a_200_kib_environment_builds_and_runs() {
    let env = Env::new();
    env.import_busybox();
    let mut dockerfile = String::from("FROM busybox:local\n");
    for i in 0..200 {
        dockerfile.push_str(&format!("ENV V{i}={}\n", "x".repeat(1024)));
    }
    dockerfile.push_str("RUN env | wc -c > /env-size\n");
    build_image(&env, "bigenv", &dockerfile, &[]);
    let size: usize = env
        .ok(&["run", "--rm", "bigenv", "cat", "/env-size"])
        .trim()
        .parse()
        .unwrap();
    assert!(size > 200 << 10, "{size}");
    let out = env.ok(&["run", "--rm", "bigenv", "sh", "-c", "echo ${#V199}"]);
    assert_eq!(out.trim(), "1024");
}

// ----- loosening isolation on purpose -----

#[test]
fn security_options_loosen_isolation_only_as_asked() {
    let env = Env::new();
    probe_image(&env);
    let status = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["probe", "cat", "/proc/self/status"]);
        env.ok(&all)
    };
    let default = status(&[]);
    assert_eq!(status_field(&default, "CapEff"), DOCKER_CAPS);
    assert_eq!(status_field(&default, "NoNewPrivs"), "1");

    let only = status(&["--cap-drop", "ALL", "--cap-add", "net_bind_service"]);
    assert_eq!(status_field(&only, "CapEff"), "0000000000000400");
    let fewer = status(&["--cap-drop", "CAP_CHOWN", "--cap-drop", "kill"]);
    assert_eq!(status_field(&fewer, "CapEff"), "00000000a80425da");
    let err = env.fails(&["run", "--rm", "--cap-add", "NOPE", "probe", "true"]);
    assert!(err.contains("unknown capability: \"CAP_NOPE\""), "{err}");

    // CAP_SYS_ADMIN opens the syscalls the profile ties to it, no others.
    let admin =
        probe_results(&env.ok(&["run", "--rm", "--cap-add", "SYS_ADMIN", "probe", "/probe"]));
    assert_eq!(admin["unshare(CLONE_NEWNS)"], "ok");
    assert_eq!(admin["clone3"], "ok");
    assert_eq!(admin["keyctl"], "EPERM");

    let unconfined = status(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(status_field(&unconfined, "Seccomp"), "0");
    let nnp_off = status(&["--security-opt", "no-new-privileges=false"]);
    assert_eq!(status_field(&nnp_off, "NoNewPrivs"), "0");
    assert_eq!(status_field(&nnp_off, "Seccomp"), "2");

    // A profile in Docker's format: mkdir refused with EACCES, everything else allowed.
    let profile = env.path("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = env.run(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "probe",
        "mkdir",
        "/x",
    ]);
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        status_field(&status(&["--security-opt", &opt]), "Seccomp"),
        "2"
    );
    for bad in [
        "bogus",
        "seccomp=/nonexistent.json",
        "no-new-privileges=maybe",
    ] {
        let out = env.run(&["run", "--rm", "--security-opt", bad, "probe", "true"]);
        assert_eq!(out.status.code(), Some(125), "{bad}: {}", describe(&out));
    }

    // --device: the node, and only the access asked for. A node with numbers of no driver
    // (240 is for local use): the devices cgroup decides first (EPERM), the kernel then finds
    // no device (ENXIO).
    let node = env.path("fake-device");
    let made = std::process::Command::new("mknod")
        .arg(&node)
        .args(["c", "240", "0"])
        .status()
        .unwrap();
    assert!(made.success());
    let device = format!("{}:/dev/xdev:r", node.display());
    let out = env.run(&[
        "run",
        "--rm",
        "--device",
        &device,
        "probe",
        "sh",
        "-c",
        "ls -l /dev/xdev; head -c1 /dev/xdev; echo x > /dev/xdev",
    ]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("240,   0"), "{}", describe(&out));
    assert!(
        all.contains("No such device or address"),
        "read not allowed: {all}"
    );
    assert!(
        all.contains("Operation not permitted"),
        "write allowed: {all}"
    );
    let out = env.run(&[
        "run",
        "--rm",
        "--device",
        "/dev/strata-nope",
        "probe",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));

    // --privileged: every capability, no filter, host devices, /sys writable, nothing masked.
    let script =
        "cat /proc/self/status; grep ' /sys ' /proc/mounts; ls /dev; wc -c < /proc/timer_list";
    let privileged = env.ok(&["run", "--rm", "--privileged", "probe", "sh", "-c", script]);
    assert_eq!(status_field(&privileged, "Seccomp"), "0");
    // Every capability the kernel has that strata itself holds (the test runs as strata does).
    let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = u64::from_str_radix(&status_field(&ours, "CapBnd"), 16).unwrap();
    let all_caps = format!("{:016x}", bounding & ((1u64 << (last_cap.min(40) + 1)) - 1));
    assert_eq!(status_field(&privileged, "CapEff"), all_caps);
    assert!(privileged.contains("sysfs /sys sysfs rw"), "{privileged}");
    assert!(privileged.lines().any(|l| l == "kmsg") || !Path::new("/dev/kmsg").exists());
    assert!(
        privileged.lines().last().is_some_and(|l| l.trim() != "0"),
        "timer_list masked"
    );

    // inspect tells what was loosened.
    let id = env.ok(&[
        "create",
        "--cap-add",
        "net_admin",
        "--cap-drop",
        "chown",
        "--security-opt",
        "seccomp=unconfined",
        "--device",
        "/dev/null:/dev/xnull:r",
        "--group-add",
        "27",
        "probe",
    ]);
    let host = common::inspect(&env, id.trim())["HostConfig"].clone();
    assert_eq!(host["CapAdd"], serde_json::json!(["CAP_NET_ADMIN"]));
    assert_eq!(host["CapDrop"], serde_json::json!(["CAP_CHOWN"]));
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["seccomp=unconfined"])
    );
    assert_eq!(host["GroupAdd"], serde_json::json!(["27"]));
    assert_eq!(host["Privileged"], false);
    assert_eq!(
        host["Devices"],
        serde_json::json!([{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "r"}])
    );
    assert_eq!(host["CgroupnsMode"], "private");
}

// ----- probes strata already passed -----

#[test]
fn proc_and_sys_are_masked_and_read_only() {
    let env = Env::new();
    env.import_busybox();
    // Masked files read empty (or are absent when the kernel has none).
    let script = "for p in kcore keys timer_list sched_debug; do \
                    if [ -e /proc/$p ]; then wc -c < /proc/$p; else echo 0; fi; done; \
                  ls -A /sys/firmware | wc -l; \
                  echo 1 > /proc/sys/kernel/domainname && echo sysctl-written; \
                  echo 1 > /proc/sys/vm/drop_caches && echo vm-written; \
                  touch /sys/kernel/x && echo sys-written";
    let out = env.run(&["run", "--rm", "busybox:local", "sh", "-c", script]);
    let stdout = text(&out.stdout);
    let counts: Vec<&str> = stdout.lines().take(5).map(str::trim).collect();
    assert_eq!(counts, ["0", "0", "0", "0", "0"], "{}", describe(&out));
    assert!(!stdout.contains("written"), "{}", describe(&out));
}

#[test]
fn capabilities_and_no_new_privileges_are_dockers() {
    let env = Env::new();
    env.import_busybox();
    let status = env.ok(&["run", "--rm", "busybox:local", "cat", "/proc/self/status"]);
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&status, field), DOCKER_CAPS, "{field}");
    }
    assert_eq!(status_field(&status, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&status, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    // A non-root user keeps nothing.
    let status = env.ok(&[
        "run",
        "--rm",
        "-u",
        "65534",
        "busybox:local",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
}

#[test]
fn device_nodes_are_the_minimal_set_and_others_cannot_be_opened() {
    let env = Env::new();
    env.import_busybox();
    let out = env.ok(&["run", "--rm", "busybox:local", "sh", "-c", "ls /dev; mknod /tmp/sda b 8 0 && head -c1 /tmp/sda && echo disk-read; mknod /tmp/mem c 1 1 && head -c1 /tmp/mem && echo mem-read; true"]);
    let nodes: Vec<&str> = out.lines().filter(|l| !l.contains("read")).collect();
    for node in [
        "full", "null", "ptmx", "pts", "random", "shm", "tty", "urandom", "zero",
    ] {
        assert!(nodes.contains(&node), "{node} missing: {out}");
    }
    for host_only in ["sda", "vda", "kmsg", "mem", "loop0", "nvme0"] {
        assert!(!nodes.contains(&host_only), "{host_only} present: {out}");
    }
    assert!(
        !out.contains("disk-read") && !out.contains("mem-read"),
        "{out}"
    );
}

#[test]
fn proc_1_root_and_symlinks_stay_inside_the_container() {
    let env = Env::new();
    env.import_busybox();
    let host_dir = env.path("host-side");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("secret"), "host-file").unwrap();
    let host = host_dir.display().to_string();
    // Image symlinks that name host paths: absolute, and one climbing with "..".
    build_image(
        &env,
        "links",
        &format!(
            "FROM busybox:local\nRUN ln -s {host} /abs && ln -s ../../../../../../..{host} /rel && mkdir -p {host}\n"
        ),
        &[],
    );
    let out = env.run(&[
        "run",
        "--rm",
        "links",
        "sh",
        "-c",
        &format!("cat /proc/1/root{host}/secret; ls /proc/1/root/; cat /abs/secret /rel/secret"),
    ]);
    assert!(
        !text(&out.stdout).contains("host-file"),
        "{}",
        describe(&out)
    );

    // WORKDIR through a symlink: created and used inside.
    let out = env.run(&[
        "run",
        "--rm",
        "-w",
        "/abs/work",
        "links",
        "sh",
        "-c",
        "touch made-here; pwd",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !host_dir.join("work").exists(),
        "the working directory was made on the host"
    );

    // -v onto a symlinked destination lands inside the container.
    let src = env.path("volume-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("from-volume"), "v").unwrap();
    let volume = format!("{}:/abs/mnt", src.display());
    let out = env.run(&["run", "--rm", "-v", &volume, "links", "ls", "/abs/mnt"]);
    assert!(
        text(&out.stdout).contains("from-volume"),
        "{}",
        describe(&out)
    );
    assert!(
        !host_dir.join("mnt").exists(),
        "-v mounted on the host path"
    );

    // cp through the same symlinks stays inside the container.
    env.ok(&["create", "--name", "cpc", "links"]);
    let out = env.path("cp-out");
    let copied = env.run(&["cp", "cpc:/abs/secret", out.to_str().unwrap()]);
    assert!(
        !copied.status.success()
            || !std::fs::read_to_string(&out)
                .unwrap_or_default()
                .contains("host-file")
    );
    let upload = env.path("upload");
    std::fs::write(&upload, "from-cp").unwrap();
    env.ok(&["cp", upload.to_str().unwrap(), "cpc:/rel/uploaded"]);
    assert!(!host_dir.join("uploaded").exists(), "cp wrote on the host");
}
