//! `strata build --debug-on-fail` driven through a real pseudo-terminal, and the build cache
//! kept within a disk budget (`builder prune --keep-storage / --filter until=`, the
//! `build-cache-max` setting and `STRATA_BUILD_CACHE_MAX`, `system df -v`).

mod common;

use std::time::Duration;

use common::{context, Env, Pty};

const FAILING: &str = "FROM busybox:local
ENV DEBUG_ME=hello-env
WORKDIR /tmp/wd
RUN chmod 777 /tmp/wd
USER 1000:1000
RUN --mount=type=cache,target=/cache,uid=1000 --mount=type=secret,id=tok \
    echo from-step > left-behind && echo cached > /cache/c && echo step-says-hi && exit 3
";

#[test]
fn debug_on_fail_opens_a_shell_in_the_failed_steps_container() {
    let env = Env::new();
    env.import_busybox();
    let ctx = context(&env, &[("Dockerfile", FAILING)]);
    let secret = env.path("tok");
    std::fs::write(&secret, "s3cret").unwrap();
    let mut command = env.cmd(&[
        "build",
        "--debug-on-fail",
        "--progress=plain",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
        "-t",
        "dbg:1",
        ctx.to_str().unwrap(),
    ]);
    command.env_remove("STRATA_BUILD_CACHE_MAX");
    let mut pty = Pty::spawn(command);
    pty.wait_for("opening a debug shell", Duration::from_secs(120));
    assert!(pty.text().contains("step-says-hi"), "{}", pty.text());
    // The failed step's files, env, working directory, user, mounts and sandbox.
    pty.send(
        "echo \"F=$(cat left-behind) E=$DEBUG_ME W=$(pwd) U=$(id -u):$(id -g) \
         C=$(cat /cache/c) S=$(ls /run/secrets) H=$(hostname) T=$(tty)\"\n",
    );
    pty.wait_for(
        "F=from-step E=hello-env W=/tmp/wd U=1000:1000 C=cached S=tok H=buildkitsandbox T=/dev/pts/0",
        Duration::from_secs(30),
    );
    // Isolation as a RUN step's: no capabilities for user 1000, no host mount table.
    pty.send("echo \"CAP=$(grep CapEff /proc/self/status)\"; touch /debug-was-here; exit 5\n");
    let status = pty.wait(Duration::from_secs(60));
    let screen = pty.text();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert!(screen.contains("CAP=CapEff:\t0000000000000000"), "{screen}");
    assert!(screen.contains("exited with code 3"), "{screen}");
    assert!(
        !screen.contains("--debug-on-fail: no shell opened"),
        "{screen}"
    );

    // Everything the shell did went with the step: a fixed Dockerfile builds without it,
    // the store is consistent and nothing is left mounted under the root.
    let fixed = FAILING.replace("&& exit 3", "&& ls /");
    std::fs::write(ctx.join("Dockerfile"), fixed).unwrap();
    let out = env.ok(&[
        "build",
        "--progress=plain",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
        "-t",
        "dbg:2",
        ctx.to_str().unwrap(),
    ]);
    let _ = out;
    let listing = env.ok(&["run", "--rm", "dbg:2", "ls", "/"]);
    assert!(!listing.contains("debug-was-here"), "{listing}");
    env.ok(&["system", "check"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(env.root().to_str().unwrap()),
        "mounts left under the root:\n{mounts}"
    );
}

#[test]
fn json_progress_marks_the_debug_shell_and_a_custom_shell_runs() {
    let env = Env::new();
    env.import_busybox();
    let ctx = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo partial > /p; exit 9\n",
        )],
    );
    let command = env.cmd(&[
        "build",
        "--debug-on-fail",
        "--debug-shell",
        "/bin/busybox sh",
        "--progress=json",
        ctx.to_str().unwrap(),
    ]);
    let mut pty = Pty::spawn(command);
    pty.wait_for("\"debug_shell_start\"", Duration::from_secs(120));
    pty.send("echo \"P=$(cat /p) A=$(cat /proc/1/cmdline | tr '\\0' ' ')\"; exit\n");
    pty.wait_for("P=partial A=/bin/busybox sh", Duration::from_secs(30));
    let status = pty.wait(Duration::from_secs(60));
    let screen = pty.text();
    assert_eq!(status.code(), Some(1), "{screen}");
    let events: Vec<serde_json::Value> = screen
        .lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(at("debug_shell_start") < at("debug_shell_end"), "{names:?}");
    assert!(at("debug_shell_end") < at("step_failed"), "{names:?}");
    assert_eq!(events[at("debug_shell_start")]["exit_code"], 9);
}

#[test]
fn debug_on_fail_without_a_terminal_says_how_and_fails_as_usual() {
    let env = Env::new();
    env.import_busybox();
    let ctx = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo before\nRUN echo oops >&2; exit 4\n",
        )],
    );
    let out = env.run(&[
        "build",
        "--debug-on-fail",
        "--debug-shell",
        "/bin/sh -l",
        "--progress=plain",
        ctx.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("--debug-on-fail"))
        .collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains("standard input is not a terminal")
            && notes[0].contains("interactive terminal"),
        "{stderr}"
    );
    assert!(stderr.contains("exited with code 4"), "{stderr}");

    // A build that succeeds says nothing about it; an empty shell is refused up front.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox:local\nRUN true\n").unwrap();
    let out = env.run(&["build", "--debug-on-fail", ctx.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--debug-on-fail"));
    let err = env.fails(&[
        "build",
        "--debug-on-fail",
        "--debug-shell",
        " ",
        ctx.to_str().unwrap(),
    ]);
    assert!(err.contains("--debug-shell needs a command"), "{err}");
}

/// Builds a one-RUN image writing `kb` KiB into `/<name>`; returns the image id.
fn build_sized(env: &Env, name: &str, kb: usize, extra: &[(&str, &str)]) -> String {
    let dir = env.path(&format!("ctx-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM busybox:local\nRUN head -c {} /dev/urandom > /{name}\n",
            kb * 1024
        ),
    )
    .unwrap();
    let mut cmd = env.cmd(&["build", "-q", dir.to_str().unwrap()]);
    cmd.env_remove("STRATA_BUILD_CACHE_MAX");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether rebuilding `name` (same Dockerfile) is fully cached.
fn cached(env: &Env, name: &str) -> bool {
    let dir = env.path(&format!("ctx-{name}"));
    let mut cmd = env.cmd(&["build", "--progress=plain", dir.to_str().unwrap()]);
    // A budget no check can reach: looking must not prune.
    cmd.env("STRATA_BUILD_CACHE_MAX", "1t");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr.contains(" 0 executed)")
}

fn settle() {
    // Last use is kept in whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn builder_prune_keeps_storage_and_filters_by_last_use() {
    let env = Env::new();
    env.import_busybox();
    build_sized(&env, "a", 300, &[]);
    settle();
    build_sized(&env, "b", 300, &[]);
    settle();
    assert!(cached(&env, "a"), "a is now the most recently used");

    let df = env.ok(&["system", "df", "-v"]);
    assert!(df.contains("Build cache usage:"), "{df}");
    assert!(df.contains("LAST USED"), "{df}");
    let rows = df.lines().filter(|l| l.contains(" regular ")).count();
    assert_eq!(rows, 2, "{df}");
    assert!(
        df.lines()
            .any(|l| l.contains(" regular ") && l.contains("kB")),
        "{df}"
    );

    // Nothing is unused for an hour: nothing goes.
    env.ok(&["builder", "prune", "-f", "--filter", "until=1h"]);
    assert!(cached(&env, "a") && cached(&env, "b"));
    settle();
    assert!(cached(&env, "a"));

    // 400 KiB holds one layer: the least recently used (b) goes, a stays.
    let out = env.ok(&["builder", "prune", "-f", "--keep-storage", "400k"]);
    assert!(out.contains("Deleted build cache objects:"), "{out}");
    assert!(cached(&env, "a"), "a was used last and fits");
    assert!(!cached(&env, "b"), "b was the least recently used");

    // Combined: only what is unused for the age is a candidate, whatever the budget.
    settle();
    settle();
    assert!(cached(&env, "b"));
    env.ok(&[
        "builder",
        "prune",
        "-f",
        "--filter",
        "until=2s",
        "--keep-storage",
        "0",
    ]);
    assert!(cached(&env, "b"), "b was just used");
    assert!(!cached(&env, "a"), "a was unused for more than 2s");

    for (args, says) in [
        (
            vec!["--keep-storage", "lots"],
            "invalid --keep-storage value",
        ),
        (vec!["--filter", "until=soon"], "invalid filter"),
        (vec!["--filter", "label=x"], "until=DURATION only"),
    ] {
        let mut all = vec!["builder", "prune", "-f"];
        all.extend(args);
        let err = env.fails(&all);
        assert!(err.contains(says), "{err}");
        assert!(
            err.lines().count() <= 2,
            "one error line and a hint at most: {err}"
        );
    }
    env.ok(&["system", "check"]);
}

#[test]
fn a_build_enforces_the_configured_cache_budget() {
    let env = Env::new();
    env.import_busybox();
    let err = env.fails(&["system", "config", "build-cache-max", "big"]);
    assert!(err.contains("invalid build-cache-max value"), "{err}");
    env.ok(&["system", "config", "build-cache-max", "700k"]);
    assert_eq!(env.ok(&["system", "config", "build-cache-max"]), "700k\n");

    build_sized(&env, "a", 300, &[]);
    settle();
    build_sized(&env, "b", 300, &[]);
    settle();
    // The third layer takes the cache past 700 KiB: the oldest (a) goes, never the new one.
    let c = build_sized(&env, "c", 300, &[]);
    env.ok(&["inspect", &c]);
    assert!(cached(&env, "b") && cached(&env, "c"));
    assert!(!cached(&env, "a"), "a was the least recently used");

    // The environment overrides the setting for one build; unset, no budget at all.
    settle();
    build_sized(&env, "d", 300, &[("STRATA_BUILD_CACHE_MAX", "0")]);
    let df = env.ok(&["system", "df", "-v"]);
    let rows = df.lines().filter(|l| l.contains(" regular ")).count();
    assert_eq!(rows, 1, "only the new build's own step stays:\n{df}");
    env.ok(&["system", "config", "build-cache-max", "--unset"]);
    build_sized(&env, "e", 300, &[]);
    build_sized(&env, "f", 300, &[]);
    let df = env.ok(&["system", "df", "-v"]);
    assert_eq!(
        df.lines().filter(|l| l.contains(" regular ")).count(),
        3,
        "{df}"
    );
    env.ok(&["system", "check"]);
}
