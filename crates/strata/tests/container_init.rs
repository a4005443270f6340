//! End-to-end tests of `strata run --init`: strata's static init is pid 1 at
//! `/sbin/docker-init`, runs the command as its child, reaps orphans, forwards `stop`'s
//! SIGTERM and passes the exit code through — each compared with the same container without
//! `--init` where the difference is the point. Root only, like the other container tests.

mod common;

use std::time::{Duration, Instant};

use common::{inspect, Env};

fn code(env: &Env, args: &[&str]) -> i32 {
    env.run(args).status.code().unwrap_or(-1)
}

/// `ps -o pid,ppid,stat,comm` inside a running container, as (pid, ppid, stat, comm) rows.
fn processes(env: &Env, name: &str) -> Vec<(u32, u32, String, String)> {
    env.ok(&["exec", name, "ps", "-o", "pid,ppid,stat,comm"])
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_owned(),
                f[3].to_owned(),
            )
        })
        .collect()
}

/// Polls `processes` until `done` holds (or 10 s pass); the last table.
fn wait_for_processes(
    env: &Env,
    name: &str,
    done: impl Fn(&[(u32, u32, String, String)]) -> bool,
) -> Vec<(u32, u32, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = processes(env, name);
        if done(&table) || Instant::now() > deadline {
            return table;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_init_is_pid_1_and_the_command_its_child() {
    let env = Env::new();
    env.import_busybox();
    let out = env.ok(&[
        "run",
        "--rm",
        "--init",
        "busybox:local",
        "ps",
        "-o",
        "pid,ppid,comm,args",
    ]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "1",
            "0",
            "docker-init",
            "/sbin/docker-init",
            "--",
            "ps",
            "-o",
            "pid,ppid,comm,args"
        ],
        "{out}"
    );
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[1][1], rows[1][2]), ("1", "ps"), "{out}");
    assert!(
        env.root().join("init/strata-init").is_file(),
        "installed under the root"
    );

    // Without --init the command itself is pid 1.
    let out = env.ok(&["run", "--rm", "busybox:local", "ps", "-o", "pid,comm"]);
    assert!(out.lines().nth(1).unwrap().contains("1 ps"), "{out}");
}

#[test]
fn the_init_is_read_only_and_a_missing_command_fails_like_docker() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&["run", "--rm", "--init", "busybox:local", "true"]);
    let installed = env.root().join("init/strata-init");
    let before = std::fs::read(&installed).unwrap();
    assert_eq!(&before[..4], b"\x7fELF");
    let out = env.run(&[
        "run",
        "--rm",
        "--init",
        "busybox:local",
        "sh",
        "-c",
        "echo x > /sbin/docker-init",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert!(std::fs::read(&installed).unwrap() == before, "unchanged");

    // The init starts, its exec fails: 127 and the reason, as with Docker's tini.
    let out = env.run(&["run", "--rm", "--init", "busybox:local", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-command") && stderr.contains("No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn a_foreground_run_passes_sigterm_through_the_init() {
    let env = Env::new();
    env.import_busybox();
    let mut child = env
        .cmd(&["run", "--rm", "--init", "busybox:local", "sleep", "60"])
        .spawn()
        .unwrap();
    // Wait until the command runs under the init, then signal the foreground strata process.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(Instant::now() < deadline, "the container never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let begun = Instant::now();
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "{:?}",
        begun.elapsed()
    );
}

#[test]
fn exit_codes_pass_through_the_init() {
    let env = Env::new();
    env.import_busybox();
    let cases = [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
    ];
    for (script, expected) in cases {
        let got = code(
            &env,
            &["run", "--rm", "--init", "busybox:local", "sh", "-c", script],
        );
        assert_eq!(got, expected, "{script}");
    }
}

#[test]
fn orphans_are_reaped_by_the_init_and_stay_zombies_without_it() {
    let env = Env::new();
    env.import_busybox();
    // The subshell's `sleep 0.1` is orphaned to pid 1; `sleep 30` as pid 1 never reaps it.
    let script = "(sleep 0.1 &); exec sleep 30";
    let zombie = |t: &[(u32, u32, String, String)]| t.iter().any(|p| p.2.starts_with('Z'));
    let sleeps = |t: &[(u32, u32, String, String)]| t.iter().filter(|p| p.3 == "sleep").count();

    env.ok(&[
        "run",
        "-d",
        "--name",
        "bare",
        "busybox:local",
        "sh",
        "-c",
        script,
    ]);
    let table = wait_for_processes(&env, "bare", zombie);
    assert!(zombie(&table), "the control run shows a zombie: {table:?}");

    env.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "init",
        "busybox:local",
        "sh",
        "-c",
        script,
    ]);
    let table = wait_for_processes(&env, "init", |t| sleeps(t) == 1);
    assert_eq!(sleeps(&table), 1, "the orphan is gone: {table:?}");
    assert!(!zombie(&table), "{table:?}");
    // The command is the init's child, the init is pid 1.
    assert!(table.iter().any(|p| p.0 == 1 && p.3 == "docker-init"));
    assert!(table.iter().any(|p| p.1 == 1 && p.3 == "sleep"));

    env.ok(&["rm", "-f", "bare", "init"]);
}

#[test]
fn stop_returns_promptly_because_the_init_forwards_sigterm() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "init",
        "busybox:local",
        "sleep",
        "60",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "bare",
        "busybox:local",
        "sleep",
        "60",
    ]);

    let begun = Instant::now();
    env.ok(&["stop", "-t", "10", "init"]);
    let with_init = begun.elapsed();
    // SIGTERM killed sleep; the init exits with 128+15 (Docker says 143 too).
    assert_eq!(inspect(&env, "init")["State"]["ExitCode"], 143);

    // sleep as pid 1 has no SIGTERM handler, so the kernel drops the signal: SIGKILL after -t.
    let begun = Instant::now();
    env.ok(&["stop", "-t", "2", "bare"]);
    let without = begun.elapsed();
    assert_eq!(inspect(&env, "bare")["State"]["ExitCode"], 137);

    assert!(with_init < Duration::from_secs(2), "{with_init:?}");
    assert!(without >= Duration::from_secs(2), "{without:?}");
    env.ok(&["rm", "init", "bare"]);
}

#[test]
fn inspect_shows_init_and_the_users_command_like_docker() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "create",
        "--init",
        "--name",
        "with",
        "busybox:local",
        "sleep",
        "5",
    ]);
    env.ok(&["create", "--name", "without", "busybox:local", "sleep", "5"]);
    let with = inspect(&env, "with");
    assert_eq!(with["HostConfig"]["Init"], true);
    // Docker shows the user's command, not the init, as Path/Args.
    assert_eq!(with["Path"], "sleep");
    assert_eq!(with["Args"], serde_json::json!(["5"]));
    assert_eq!(
        inspect(&env, "without")["HostConfig"]["Init"],
        serde_json::Value::Null
    );
}
