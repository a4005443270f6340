//! Attacks on `strata build` and on the store, through the real binary: a hostile Dockerfile
//! or build context must not reach the host's network or files, and an unprivileged local
//! user must not read what the store keeps (issue 9, items 3, 4 and 7).
#![allow(clippy::print_stderr)] // a test that cannot run here says why it did nothing

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{context, write_files, Env};

/// The content of `path` in `image`: the topmost layer that has it.
fn file_in_image(env: &Env, image: &str, path: &str) -> Option<String> {
    common::saved_layers(env, image)
        .iter()
        .rev()
        .find_map(|layer| layer.get(path))
        .map(|node| String::from_utf8_lossy(&node.data).into_owned())
}

/// Builds `dir` as `tag` and returns the text a RUN step left in `/out`.
fn build_out(env: &Env, dir: &Path, tag: &str) -> String {
    env.ok(&["build", "-q", "-t", tag, dir.to_str().unwrap()]);
    file_in_image(env, tag, "out").unwrap_or_default()
}

/// A TCP listener that answers every connection with `reply` and counts them.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

fn listen(ip: Ipv4Addr, reply: &'static str) -> Listener {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    Listener { port, accepted }
}

/// The host's address on its default route (no packet is sent), if it has one.
fn host_address() -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect(("192.0.2.1", 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

fn net_namespace_of_self() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn run_steps_get_their_own_network_without_the_host_loopback() {
    let env = Env::new();
    env.import_busybox();
    let host = listen(Ipv4Addr::LOCALHOST, "host-loopback-secret\n");
    let dockerfile = format!(
        "FROM busybox:local\n\
         RUN (readlink /proc/self/ns/net; cat /proc/net/dev; \
              timeout 10 nc -w 2 127.0.0.1 {port} </dev/null; echo rc=$?) >/out 2>&1\n",
        port = host.port
    );
    let dir = context(&env, &[("Dockerfile", dockerfile.as_str())]);
    let out = build_out(&env, &dir, "net:default");
    assert!(
        !out.contains("host-loopback-secret"),
        "a RUN step reached a service on the host's loopback:\n{out}"
    );
    assert_eq!(host.accepted.load(Ordering::SeqCst), 0, "{out}");
    assert!(
        !out.contains(&net_namespace_of_self()),
        "a RUN step ran in the host's network namespace:\n{out}"
    );
    // Nothing of the network set-up lands in a layer.
    let layers = common::saved_layers(&env, "net:default");
    for name in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        assert!(
            !layers[1].contains_key(name),
            "{name} leaked into the layer"
        );
    }

    // `--network=host` stays an explicit choice, in the Dockerfile and on the command line.
    let dockerfile = format!(
        "FROM busybox:local\n\
         RUN --network=host nc -w 2 127.0.0.1 {port} </dev/null >/out 2>&1\n",
        port = host.port
    );
    write_files(&dir, &[("Dockerfile", dockerfile.as_str())]);
    assert_eq!(
        build_out(&env, &dir, "net:run-host"),
        "host-loopback-secret\n"
    );
    let dockerfile = format!(
        "FROM busybox:local\n\
         RUN nc -w 2 127.0.0.1 {port} </dev/null >/out 2>&1\n",
        port = host.port
    );
    write_files(&dir, &[("Dockerfile", dockerfile.as_str())]);
    env.ok(&[
        "build",
        "-q",
        "--network",
        "host",
        "-t",
        "net:flag-host",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        file_in_image(&env, "net:flag-host", "out").as_deref(),
        Some("host-loopback-secret\n")
    );
    let before = host.accepted.load(Ordering::SeqCst);
    // `--network=none`: loopback only.
    let dockerfile = format!(
        "FROM busybox:local\n\
         RUN --network=none (nc -w 2 127.0.0.1 {port} </dev/null; cat /proc/net/dev) >/out 2>&1 || true\n",
        port = host.port
    );
    write_files(&dir, &[("Dockerfile", dockerfile.as_str())]);
    let out = build_out(&env, &dir, "net:none");
    assert!(!out.contains("host-loopback-secret"), "{out}");
    assert_eq!(host.accepted.load(Ordering::SeqCst), before);
}

#[test]
fn run_steps_reach_the_host_on_its_other_addresses() {
    let Some(ip) = host_address() else {
        eprintln!("skipped: this host has no default route, so no outbound address to try");
        return;
    };
    let env = Env::new();
    env.import_busybox();
    let outside = listen(ip, "reached-from-the-build\n");
    // The client keeps its side open until the reply came (pasta 2023-03 can lose a FIN
    // when both sides close at once), and `timeout` bounds the step whatever happens.
    let dockerfile = format!(
        "FROM busybox:local\n\
         RUN timeout 20 sh -c 'sleep 1 | nc -w 5 {ip} {port}' >/out 2>&1\n",
        port = outside.port
    );
    let dir = context(&env, &[("Dockerfile", dockerfile.as_str())]);
    assert_eq!(
        build_out(&env, &dir, "net:outbound"),
        "reached-from-the-build\n"
    );
    assert_eq!(outside.accepted.load(Ordering::SeqCst), 1);
}

/// A context whose links point out of it (at `host`, a directory outside the context standing
/// in for the host's `/etc`) and at a `.dockerignore`d file.
fn hostile_context(env: &Env, dockerfile: &str) -> std::path::PathBuf {
    let host = env.path("host-side");
    write_files(&host, &[("hostname", "HOST-FILE-CONTENT\n")]);
    let dir = context(
        env,
        &[
            ("Dockerfile", dockerfile),
            ("secret.txt", "IGNORED-SECRET\n"),
            (".dockerignore", "secret.txt\n"),
            ("sub/x", "inside\n"),
            ("etc/hostname", "context-hostname\n"),
        ],
    );
    symlink(&host, dir.join("dirlink")).unwrap();
    symlink(host.join("hostname"), dir.join("filelink")).unwrap();
    symlink("/secret.txt", dir.join("abslink")).unwrap();
    symlink(dir.join("secret.txt"), dir.join("hostabslink")).unwrap();
    symlink("/etc", dir.join("etclink")).unwrap();
    symlink("sub", dir.join("rel")).unwrap();
    symlink("../../..", dir.join("up")).unwrap();
    dir
}

#[test]
fn bind_mount_sources_resolve_inside_the_context() {
    let env = Env::new();
    env.import_busybox();
    // Links that leave the context: the build fails or reads nothing of the host, never the
    // host's file.
    for (source, path) in [
        ("dirlink", "/x/hostname"),
        ("filelink", "/x"),
        ("up", "/x/etc/hostname"),
        ("abslink", "/x"),
        ("hostabslink", "/x"),
        ("/proc/self/root", "/x/etc/os-release"),
        ("/proc/self/cwd/../../..", "/x/etc/os-release"),
    ] {
        let dockerfile = format!(
            "FROM busybox:local\n\
             RUN --mount=type=bind,source={source},target=/x cat {path} >/out 2>&1 || true\n"
        );
        let dir = hostile_context(&env, &dockerfile);
        let tag = format!("bind:{}", source.replace(['/', '.'], "-").trim_matches('-'));
        let result = env.run(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
        if result.status.success() {
            let out = file_in_image(&env, &tag, "out").unwrap_or_default();
            for secret in ["HOST-FILE-CONTENT", "IGNORED-SECRET", "PRETTY_NAME"] {
                assert!(
                    !out.contains(secret),
                    "source={source} read a file outside the context: {out}"
                );
            }
        } else {
            let stderr = String::from_utf8_lossy(&result.stderr);
            assert!(stderr.contains("not found"), "source={source}: {stderr}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(env.path("host-side")).unwrap();
    }
    // Links inside the context are followed inside it, as BuildKit does.
    let dir = hostile_context(
        &env,
        "FROM busybox:local\n\
         RUN --mount=type=bind,source=rel,target=/r --mount=type=bind,source=etclink,target=/e \
             cat /r/x /e/hostname >/out\n",
    );
    assert_eq!(
        build_out(&env, &dir, "bind:inside"),
        "inside\ncontext-hostname\n"
    );

    // A stage's links resolve inside that stage's rootfs, for bind and cache mounts alike.
    write_files(
        &dir,
        &[(
            "Dockerfile",
            "FROM busybox:local AS evil\n\
             RUN echo stage-file >/etc/probe && ln -s /etc /hostetc && ln -s ../../../.. /up\n\
             FROM busybox:local\n\
             RUN --mount=type=bind,from=evil,source=/hostetc,target=/x \
                 --mount=type=cache,from=evil,source=/up/etc,target=/c \
                 --mount=type=bind,from=evil,source=/up/hostetc,target=/y,rw \
                 (cat /x/probe /c/probe /y/probe; cat /x/os-release /y/os-release) >/out 2>&1 || true\n",
        )],
    );
    let out = build_out(&env, &dir, "bind:stage");
    assert!(
        out.starts_with("stage-file\nstage-file\nstage-file\n"),
        "{out}"
    );
    assert!(
        !out.contains("PRETTY_NAME"),
        "a stage link reached the host: {out}"
    );
}

#[test]
fn rw_bind_mounts_never_write_to_the_context_or_the_host() {
    let env = Env::new();
    env.import_busybox();
    let dir = hostile_context(
        &env,
        "FROM busybox:local\n\
         RUN --mount=type=bind,source=dirlink,target=/x,rw \
             sh -c 'echo owned >/x/written; echo owned >/x/hostname' || true\n\
         RUN --mount=type=bind,target=/c,rw \
             sh -c 'echo owned >/c/new; echo owned >/c/sub/x; rm -f /c/Dockerfile'\n\
         RUN --mount=type=bind,source=sub,target=/s,rw sh -c 'echo owned >/s/x; ls /s >/out'\n",
    );
    let before = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    env.run(&["build", "-q", "-t", "bind:rw", dir.to_str().unwrap()]);
    let host = env.path("host-side");
    assert!(
        !host.join("written").exists(),
        "a rw bind wrote on the host"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("hostname")).unwrap(),
        "HOST-FILE-CONTENT\n"
    );
    assert!(
        !dir.join("new").exists(),
        "a rw bind wrote into the context"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/x")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        before
    );
}

#[test]
fn copy_and_add_never_take_host_files_through_context_links() {
    let env = Env::new();
    env.import_busybox();
    let dir = hostile_context(
        &env,
        "FROM busybox:local\n\
         COPY filelink /copied-file\n\
         COPY dirlink /copied-dir\n\
         ADD filelink /added-file\n",
    );
    env.ok(&["build", "-q", "-t", "copy:links", dir.to_str().unwrap()]);
    for layer in common::saved_layers(&env, "copy:links") {
        for (path, node) in layer {
            assert!(
                !String::from_utf8_lossy(&node.data).contains("HOST-FILE-CONTENT"),
                "{path} holds a host file's content"
            );
        }
    }
}

#[test]
fn hostile_context_entries_do_not_hang_or_leak_the_build() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY . /ctx/\nRUN ls -la /ctx > /out\n",
            ),
            ("plain", "x\n"),
        ],
    );
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let node = std::ffi::CString::new(dir.join("zero").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; a character device like /dev/zero.
    let dev = libc::makedev(1, 5);
    assert_eq!(
        unsafe { libc::mknod(node.as_ptr(), libc::S_IFCHR | 0o644, dev) },
        0
    );
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
    let mut child = env
        .cmd(&["build", "-q", "-t", "hostile:ctx", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a build of a context with a fifo and a device node hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let out = file_in_image(&env, "hostile:ctx", "out").unwrap();
    assert!(out.contains("plain"), "{out}");
    for special in ["fifo", "zero", "socket"] {
        assert!(!out.contains(special), "{special} was copied: {out}");
    }
}

/// Runs `args` as the unprivileged user nobody (uid/gid 65534, no supplementary groups).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn the_store_keeps_logs_env_and_secrets_from_other_users() {
    let env = Env::new();
    // The test's own temp dir is 0700: open it up so only the store's modes protect the store.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.import_busybox();
    let root = env.root();
    let root_str = root.to_str().unwrap();

    // A container with an environment value and a log line; a build with a secret given as
    // an environment variable, inspected while its step runs.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "private",
        "-e",
        "PROBE_ENV=env-value-7c1e",
        "busybox:local",
        "sh",
        "-c",
        "echo log-line-7c1e; sleep 60",
    ]);
    let secret = env.path("token");
    std::fs::write(&secret, "secret-value-7c1e").unwrap();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN --mount=type=secret,id=tok,env=TOKEN --mount=type=secret,id=tok \
                 sh -c 'touch /started; sleep 4'\n",
        )],
    );
    let mut build = env
        .cmd(&[
            "build",
            "-q",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
            "-t",
            "secret:1",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the step runs: its upper dir holds the marker.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !walk_finds(&root.join("build-tmp"), "started") {
        assert!(Instant::now() < deadline, "the RUN step never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let grep = as_nobody(&[
        "grep",
        "-r",
        "-l",
        "-a",
        "-e",
        "env-value-7c1e",
        "-e",
        "log-line-7c1e",
        "-e",
        "secret-value-7c1e",
        root_str,
    ]);
    let listing = as_nobody(&["ls", "-la", root_str]);
    assert!(build.wait().unwrap().success());
    // Below the root too, in case someone opens the root up by hand.
    let id = env.ok(&["inspect", "--format", "{{.Id}}", "private"]);
    let container = root.join("containers").join(id.trim());
    assert_eq!(mode_of(&container.join("container.log")), 0o640);
    assert_eq!(mode_of(&container.join("runtime/config.json")), 0o600);
    env.ok(&["rm", "-f", "private"]);
    assert!(
        grep.stdout.is_empty(),
        "nobody can read private data in the store:\n{}",
        String::from_utf8_lossy(&grep.stdout)
    );
    assert!(
        !listing.status.success(),
        "nobody can list the store root:\n{}",
        String::from_utf8_lossy(&listing.stdout)
    );

    // Docker's modes, also below the root (in case the root is opened up by hand).
    assert_eq!(mode_of(&root), 0o710);
    for name in ["metadata.db", "metadata.db-wal", "metadata.db-shm"] {
        let path = root.join(name);
        if path.exists() {
            assert_eq!(mode_of(&path), 0o600, "{name}");
        }
    }
    for name in ["blobs", "snapshots", "containers", "build-tmp", "ingest"] {
        let path = root.join(name);
        if path.exists() {
            assert_eq!(mode_of(&path), 0o700, "{name}");
        }
    }
}

#[test]
fn opening_an_old_world_readable_store_closes_it() {
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.import_busybox();
    let root = env.root();
    // What stores written before the fix look like.
    let opened_up = Command::new("chmod")
        .args(["-R", "go+rX", root.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(opened_up.success());
    env.ok(&["images"]);
    assert_eq!(mode_of(&root), 0o710);
    assert_eq!(mode_of(&root.join("metadata.db")), 0o600);
    for name in ["blobs", "snapshots", "ingest"] {
        assert_eq!(mode_of(&root.join(name)), 0o700, "{name}");
    }
    let grep = as_nobody(&["cat", root.join("metadata.db").to_str().unwrap()]);
    assert!(!grep.status.success());
}

fn walk_finds(dir: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        e.file_name() == name
            || (e.file_type().is_ok_and(|t| t.is_dir()) && walk_finds(&path, name))
    })
}
