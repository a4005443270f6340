//! End-to-end tests of the container verbs (`run`, `ps`, `logs`, `stop`, `exec`, `rm`…) on a
//! busybox image made from Debian's busybox-static. Root only (namespaces, overlay, cgroups).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{inspect, Env};

/// A busybox image whose command serves `Hello $WHO` over HTTP on 8080 (the seed walkthrough).
fn hello_image(env: &Env) {
    env.import_busybox();
    let dir = env.path("hello");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\n\
         ENV WHO=world\n\
         EXPOSE 8080\n\
         CMD [\"sh\", \"-c\", \"mkdir -p /www && echo \\\"Hello $WHO\\\" > /www/index.html && echo serving on 8080 && exec httpd -f -v -p 8080 -h /www\"]\n",
    )
    .unwrap();
    env.ok(&["build", "-q", "-t", "hello", dir.to_str().unwrap()]);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / on 127.0.0.1:port, retried while the server starts.
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match attempt {
            Ok(body) if body.contains("200") => return body,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no HTTP answer on port {port}: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn code(env: &Env, args: &[&str]) -> i32 {
    env.run(args).status.code().unwrap_or(-1)
}

#[test]
fn the_seed_walkthrough_runs_serves_lists_logs_stops_and_removes() {
    let env = Env::new();
    hello_image(&env);
    let port = free_port();
    let publish = format!("{port}:8080");
    let id = env
        .ok(&[
            "run",
            "-d",
            "-p",
            &publish,
            "-e",
            "WHO=Sean and Karl",
            "--name",
            "web",
            "hello",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");

    let body = http_get(port);
    assert!(body.contains("Hello Sean and Karl"), "{body}");

    let ps = env.ok(&["ps"]);
    let line = ps
        .lines()
        .find(|l| l.contains("web"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(line.starts_with(&id[..12]), "{line}");
    assert!(line.contains("Up "), "{line}");
    assert!(
        line.contains(&format!("0.0.0.0:{port}->8080/tcp")),
        "{line}"
    );
    assert!(line.contains("hello"), "{line}");

    let logs = env.run(&["logs", "web"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    assert!(all.contains("serving on 8080"), "{all}");

    // httpd ignores nothing: SIGTERM ends it well within the timeout.
    let started = Instant::now();
    env.ok(&["stop", "-t", "5", "web"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let ps = env.ok(&["ps"]);
    assert!(!ps.contains("web"), "{ps}");
    let ps_all = env.ok(&["ps", "-a"]);
    assert!(ps_all.contains("Exited ("), "{ps_all}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is released"
    );

    env.ok(&["rm", "web"]);
    assert!(!env.root().join("containers").join(&id).exists());
    assert!(!env.ok(&["ps", "-a"]).contains("web"));
}

#[test]
fn exit_codes_isolation_and_removal() {
    let env = Env::new();
    env.import_busybox();
    assert_eq!(
        code(
            &env,
            &["run", "--rm", "busybox:local", "sh", "-c", "exit 3"]
        ),
        3
    );
    assert!(
        env.ok(&["ps", "-a", "-q"]).trim().is_empty(),
        "--rm removed it"
    );
    assert_eq!(
        code(&env, &["run", "--rm", "busybox:local", "nosuchcommand"]),
        127
    );
    assert_eq!(code(&env, &["run", "--rm", "nosuchimage"]), 125);

    env.ok(&[
        "run",
        "--name",
        "writer",
        "busybox:local",
        "sh",
        "-c",
        "echo data > /written",
    ]);
    assert_eq!(
        code(
            &env,
            &["run", "--rm", "busybox:local", "test", "-e", "/written"]
        ),
        1,
        "another container from the same image does not see the file"
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (0)"), "{ps}");
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "writer"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);
    assert_eq!(inspect[0]["Name"], "/writer");
    // The writable layer holds just the container's file.
    let id = inspect[0]["Id"].as_str().unwrap();
    let upper = env.root().join("containers").join(id).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("written")).unwrap(),
        "data\n"
    );

    // diff lists it, commit makes it a layer, and a container of the new image sees it.
    let diff = env.ok(&["diff", "writer"]);
    assert!(diff.lines().any(|l| l == "A /written"), "{diff}");
    env.ok(&["commit", "-m", "with data", "writer", "withdata:1"]);
    assert_eq!(
        env.ok(&["run", "--rm", "withdata:1", "cat", "/written"]),
        "data\n"
    );
    assert!(
        env.fails(&["rmi", "busybox:local"]).contains("container"),
        "image in use"
    );

    // The name is taken until removed; rm of a stopped container works without -f.
    assert!(env
        .fails(&["create", "--name", "writer", "busybox:local"])
        .contains("already in use"));
    env.ok(&["rm", "writer"]);
    assert!(!upper.exists());
    assert!(env.fails(&["rm", "writer"]).contains("no such container"));
}

#[test]
fn a_container_cannot_reach_the_host() {
    let env = Env::new();
    env.import_busybox();
    let secret = env.path("secret-ctx");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(
        secret.join("Dockerfile"),
        "FROM busybox:local\nRUN echo secret > /secret && chmod 600 /secret\n",
    )
    .unwrap();
    env.ok(&["build", "-q", "-t", "secret", secret.to_str().unwrap()]);

    // Only its own processes: sh and ps.
    let ps = env.ok(&["run", "--rm", "secret", "ps", "-o", "pid,comm"]);
    let procs: Vec<&str> = ps.lines().skip(1).collect();
    assert!(procs.len() <= 2, "{ps}");
    assert!(procs[0].trim().starts_with('1'), "{ps}");

    assert_ne!(
        code(
            &env,
            &["run", "--rm", "secret", "mount", "-o", "remount,rw", "/sys"]
        ),
        0
    );
    let status = env.ok(&["run", "--rm", "secret", "cat", "/proc/self/status"]);
    let cap = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(cap.ends_with("00000000a80425fb"), "{cap}");

    let denied = env.run(&["run", "--rm", "-u", "1000", "secret", "cat", "/secret"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    assert_eq!(
        env.ok(&["run", "--rm", "secret", "cat", "/secret"]),
        "secret\n"
    );
}

#[test]
fn exec_start_kill_wait_and_restart() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "-e",
        "FROM_RUN=1",
        "busybox:local",
        "sleep",
        "300",
    ]);
    assert_eq!(env.ok(&["exec", "sleeper", "echo", "hi"]), "hi\n");
    assert_eq!(
        env.ok(&["exec", "sleeper", "sh", "-c", "echo $FROM_RUN"]),
        "1\n"
    );
    assert_eq!(
        env.ok(&["exec", "-e", "X=2", "sleeper", "sh", "-c", "echo $X"]),
        "2\n"
    );
    assert_eq!(
        env.ok(&["exec", "-u", "1000", "sleeper", "id", "-u"]),
        "1000\n"
    );
    assert_eq!(env.ok(&["exec", "-w", "/tmp", "sleeper", "pwd"]), "/tmp\n");
    assert_eq!(code(&env, &["exec", "sleeper", "sh", "-c", "exit 4"]), 4);
    let top = env.ok(&["exec", "sleeper", "cat", "/proc/1/cmdline"]);
    assert!(top.starts_with("sleep"), "{top:?}");

    // sleep as pid 1 has no SIGTERM handler, so (as in Docker) only KILL ends it.
    env.ok(&["kill", "sleeper"]);
    assert_eq!(env.ok(&["wait", "sleeper"]).trim(), "137");
    assert!(env
        .fails(&["exec", "sleeper", "true"])
        .contains("not running"));

    env.ok(&["start", "sleeper"]);
    assert!(env.ok(&["ps"]).contains("sleeper"));
    env.ok(&["restart", "-t", "1", "sleeper"]);
    assert!(env.ok(&["ps"]).contains("sleeper"));
    assert!(env.fails(&["rm", "sleeper"]).contains("stop it first"));
    env.ok(&["rm", "-f", "sleeper"]);
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

#[test]
fn restart_policy_logs_and_a_dead_monitor() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox:local",
        "sh",
        "-c",
        "echo attempt; exit 1",
    ]);
    assert_eq!(env.ok(&["wait", "flaky"]).trim(), "1");
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "flaky"])).unwrap();
    assert_eq!(inspect[0]["RestartCount"], 2);
    let logs = env.ok(&["logs", "flaky"]);
    assert_eq!(logs.matches("attempt").count(), 3, "{logs}");
    assert_eq!(env.ok(&["logs", "--tail", "1", "flaky"]), "attempt\n");
    assert!(env.ok(&["logs", "-t", "flaky"]).starts_with("20"));

    // logs -f follows until the container ends.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox:local",
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick$i; sleep 0.3; done",
    ]);
    let followed = env.ok(&["logs", "-f", "ticker"]);
    assert_eq!(followed, "tick1\ntick2\ntick3\n");

    // A monitor killed behind strata's back: reported dead, never running; rm -f cleans up.
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "orphan",
            "busybox:local",
            "sleep",
            "300",
        ])
        .trim()
        .to_owned();
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "orphan"])).unwrap();
    let pid = inspect[0]["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    let monitor = common::find_monitor(&id).expect("monitor process");
    // SAFETY: kill(2) of a process this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    let ps = env.ok(&["ps", "-a"]);
    let line = ps.lines().find(|l| l.contains("orphan")).unwrap();
    assert!(line.contains("Dead"), "{line}");
    assert!(!env.ok(&["ps"]).contains("orphan"));
    env.ok(&["rm", "-f", "orphan"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || !is_sleep(pid),
        "container init killed"
    );
}

fn is_sleep(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map(|c| c.starts_with("sleep"))
        .unwrap_or(false)
}

#[test]
fn volumes_networks_and_terminals() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox:local",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data:ro",
            "busybox:local",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
    assert_ne!(
        code(
            &env,
            &[
                "run",
                "--rm",
                "-v",
                "data:/data:ro",
                "busybox:local",
                "touch",
                "/data/g"
            ]
        ),
        0,
        "read-only volume"
    );
    let host_dir = env.path("bind");
    env.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/mnt", host_dir.display()),
        "busybox:local",
        "sh",
        "-c",
        "echo out > /mnt/x",
    ]);
    assert_eq!(
        std::fs::read_to_string(host_dir.join("x")).unwrap(),
        "out\n"
    );
    assert!(env.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"));
    env.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "data:/data",
        "busybox:local",
    ]);
    assert!(env.fails(&["volume", "rm", "data"]).contains("in use"));
    env.ok(&["rm", "holder"]);
    env.ok(&["volume", "rm", "data"]);
    assert!(!env.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"));

    let none = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:local",
        "cat",
        "/proc/net/dev",
    ]);
    let ifaces: Vec<&str> = none
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(ifaces, ["lo"], "{none}");

    // A terminal: one stream from a pty, even with no terminal here.
    let tty = env.ok(&["run", "--rm", "-t", "busybox:local", "tty"]);
    assert_eq!(tty, "/dev/pts/0\r\n");
    let hostname = env.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "busybox:local",
        "hostname",
    ]);
    assert_eq!(hostname, "box\n");
    let workdir = env.ok(&["run", "--rm", "-w", "/new/dir", "busybox:local", "pwd"]);
    assert_eq!(workdir, "/new/dir\n");
}

#[test]
fn bridge_containers_reach_the_host_and_others_ports() {
    let env = Env::new();
    env.import_busybox();
    // Outbound: a listener on this host's non-loopback address.
    let Some(addr) = host_address() else {
        return; // no non-loopback IPv4 address on this machine
    };
    let listener = TcpListener::bind((addr.as_str(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        got
    });
    env.ok(&[
        "run",
        "--rm",
        "busybox:local",
        "sh",
        "-c",
        &format!("echo from-container | nc -w 3 {addr} {port}"),
    ]);
    assert_eq!(server.join().unwrap(), "from-container\n");
}

/// The first non-loopback IPv4 address of this host.
fn host_address() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| a.contains('.') && !a.starts_with("127."))
        .map(str::to_owned)
}

#[test]
fn words_after_the_image_belong_to_the_container() {
    // As with Docker: `run IMAGE --help` runs the image with `--help`; strata's own flags end
    // at the image.
    let env = Env::new();
    env.import_busybox();
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            "busybox:local",
            "--help",
            "-d",
            "--rm"
        ]),
        "--help -d --rm\n"
    );
    env.ok(&["create", "--name", "h", "busybox:local", "--help", "-v"]);
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "h"])).unwrap();
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        serde_json::json!(["--help", "-v"])
    );
    env.ok(&["rm", "h"]);
    env.ok(&["run", "-d", "--name", "e", "busybox:local", "sleep", "60"]);
    assert_eq!(
        env.ok(&["exec", "e", "echo", "--help", "-i"]),
        "--help -i\n"
    );
    env.ok(&["rm", "-f", "e"]);
}

#[test]
fn a_refused_create_leaves_no_volume_or_directory_behind() {
    let env = Env::new();
    env.import_busybox();
    let dir = env.path("vol-image");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM busybox:local\nVOLUME /data\n").unwrap();
    env.ok(&["build", "-q", "-t", "withvol", dir.to_str().unwrap()]);
    let bind = env.path("never-created");
    let bind_arg = format!("{}:/b", bind.display());
    assert!(env
        .fails(&["create", "-w", "rel", "-v", &bind_arg, "-v", "/anon", "withvol"])
        .contains("absolute"));
    env.ok(&["create", "--name", "taken", "withvol"]);
    let volumes = env.ok(&["volume", "ls", "-q"]);
    assert!(env
        .fails(&["create", "--name", "taken", "-v", "/anon", "withvol"])
        .contains("already in use"));
    assert_eq!(
        env.ok(&["volume", "ls", "-q"]),
        volumes,
        "only taken's volume"
    );
    assert_eq!(volumes.lines().count(), 1);
    assert!(
        !bind.exists(),
        "the bind source of a refused create is not made"
    );
    let containers = std::fs::read_dir(env.root().join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 1);
}

#[test]
fn logs_rotate_stream_and_follow_stops_with_its_reader() {
    let env = Env::new();
    env.import_busybox();
    // 3,000 numbered lines into a log capped at 4 KiB × 3 files.
    env.ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=4k",
        "--log-opt",
        "max-file=3",
        "busybox:local",
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done",
    ]);
    let id = inspect(&env, "chatty")["Id"].as_str().unwrap().to_owned();
    let dir = env.root().join("containers").join(&id);
    let log = dir.join("container.log");
    for n in ["", ".1", ".2"] {
        let file = dir.join(format!("container.log{n}"));
        assert!(std::fs::metadata(&file).unwrap().len() <= 4096, "{n}");
    }
    assert!(!dir.join("container.log.3").exists());
    let all = env.ok(&["logs", "chatty"]);
    assert!(all.ends_with("line 2999\n"), "{all}");
    let first: u32 = all.lines().next().unwrap()[5..].parse().unwrap();
    assert!(first > 2700, "older lines rotated away: {first}");
    assert_eq!(all.lines().count() as u32, 3000 - first);
    assert_eq!(
        env.ok(&["logs", "--tail", "3", "chatty"]),
        "line 2997\nline 2998\nline 2999\n"
    );
    let inspected = inspect(&env, "chatty");
    assert_eq!(inspected["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(
        inspected["HostConfig"]["LogConfig"]["Config"]["max-file"],
        "3"
    );
    assert_eq!(inspected["LogPath"], log.to_str().unwrap());

    // `logs -f | head -1` ends while the container still runs.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox:local",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ]);
    let mut follow = env
        .cmd(&["logs", "-f", "ticker"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = [0u8; 5];
    follow
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut first_line)
        .unwrap();
    // The pipe is closed now (dropped): the follower must notice on its next write.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = follow.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs -f kept running after its reader left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(&first_line, b"tick\n");
    env.ok(&["rm", "-f", "ticker"]);

    // --log-driver none keeps nothing, and says so.
    env.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox:local",
        "echo",
        "hi",
    ]);
    assert!(env.fails(&["logs", "quiet"]).contains("--log-driver none"));
    assert_eq!(
        inspect(&env, "quiet")["HostConfig"]["LogConfig"]["Type"],
        "none"
    );
    assert!(env
        .fails(&["create", "--log-opt", "max-size=huge", "busybox:local"])
        .contains("max-size"));
    assert!(env
        .fails(&["create", "--log-driver", "syslog", "busybox:local"])
        .contains("json-file"));
}

#[test]
fn stop_kill_and_rm_of_many_containers_answer_in_the_order_given() {
    let env = Env::new();
    env.import_busybox();
    let names: Vec<String> = (0..6).map(|i| format!("many{i}")).collect();
    for name in &names {
        env.ok(&["run", "-d", "--name", name, "busybox:local", "sleep", "300"]);
    }
    let mut args = vec!["stop", "-t", "1"];
    // Named in an order unlike their creation, and one that does not exist.
    let order = [
        "many3", "many0", "nosuch", "many5", "many1", "many4", "many2",
    ];
    args.extend(order);
    let out = env.run(&args);
    assert!(!out.status.success(), "one name is unknown");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want: Vec<&str> = order.iter().copied().filter(|n| *n != "nosuch").collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), want);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch"));
    for name in &names {
        assert_eq!(inspect(&env, name)["State"]["Status"], "exited", "{name}");
    }
    for name in &names[..3] {
        env.ok(&["start", name]);
    }
    let killed = env.ok(&["kill", "many2", "many0", "many1"]);
    assert_eq!(killed, "many2\nmany0\nmany1\n");
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    assert_eq!(env.ok(&rm).lines().count(), names.len());
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
}

/// Polls `inspect` until the container's health status is `want` (or the deadline passes).
fn wait_for_health(env: &Env, name: &str, want: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = inspect(env, name);
        if v["State"]["Health"]["Status"] == want || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn healthchecks_run_in_the_container_and_show_in_ps_and_inspect() {
    let env = Env::new();
    env.import_busybox();
    // The image's HEALTHCHECK runs: healthy once the file it checks exists.
    let dir = common::context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             HEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD test -f /tmp/ready && echo ok\n\
             CMD [\"sh\", \"-c\", \"sleep 1; touch /tmp/ready; sleep 300\"]\n",
        )],
    );
    common::build(&env, &dir, "health:img");
    env.ok(&["run", "-d", "--name", "h1", "health:img"]);
    let v = inspect(&env, "h1");
    assert_eq!(v["State"]["Health"]["Status"], "starting", "{v}");
    assert!(env.ok(&["ps"]).contains("(health: starting)"));
    let v = wait_for_health(&env, "h1", "healthy");
    assert_eq!(v["State"]["Health"]["Status"], "healthy", "{v}");
    let log = v["State"]["Health"]["Log"].as_array().unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (last["ExitCode"].as_i64(), last["Output"].as_str()),
        (Some(0), Some("ok\n"))
    );
    assert!(log.len() <= 5);
    assert!(env.ok(&["ps"]).contains("(healthy)"));
    assert_eq!(v["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL", "{v}");

    // A failing --health-cmd makes it unhealthy after --health-retries failures.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "h2",
        "--health-cmd",
        "echo no; exit 3",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "busybox:local",
        "sleep",
        "300",
    ]);
    let v = wait_for_health(&env, "h2", "unhealthy");
    assert_eq!(v["State"]["Health"]["Status"], "unhealthy", "{v}");
    assert!(
        v["State"]["Health"]["FailingStreak"].as_i64().unwrap() >= 2,
        "{v}"
    );
    assert!(env.ok(&["ps"]).contains("(unhealthy)"));

    // A check that outlives its timeout fails with Docker's message.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "h3",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "200ms",
        "--health-retries",
        "1",
        "busybox:local",
        "sleep",
        "300",
    ]);
    let v = wait_for_health(&env, "h3", "unhealthy");
    let output = v["State"]["Health"]["Log"][0]["Output"]
        .as_str()
        .unwrap_or("");
    assert!(output.contains("exceeded timeout"), "{v}");

    // --no-healthcheck turns the image's off; with --health-cmd it is refused up front.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "h4",
        "--no-healthcheck",
        "health:img",
    ]);
    assert!(inspect(&env, "h4")["State"].get("Health").is_none());
    let err = env.fails(&[
        "create",
        "--no-healthcheck",
        "--health-cmd",
        "true",
        "busybox:local",
    ]);
    assert!(err.contains("--no-healthcheck"), "{err}");
    let err = env.fails(&["create", "--health-interval", "soon", "busybox:local"]);
    assert!(err.contains("--health-interval"), "{err}");

    // A stopped container keeps its last health; a restart starts over.
    env.ok(&["kill", "h1"]);
    env.ok(&["wait", "h1"]);
    assert!(!env.ok(&["ps", "-a"]).contains("(health: starting)"));
    env.ok(&["rm", "-f", "h1", "h2", "h3", "h4"]);
}
