//! Bridge networking cases (pasta): published ports, outbound, port conflicts, no pasta left behind.
//!
//! All on the runner's single thread: servers and clients use non-blocking sockets polled
//! with deadlines, never helper threads.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use strata_exit::ErrorChain;
use strata_runtime::{
    allocate_host_ports, helper_command, parse_publish, run, ContainerSpec, EtcFiles, Network,
    OutputMode, PortMapping, RuntimeError,
};

use super::{describe, text, wait_until, CaseResult, Fixture};

/// A bridged spec publishing `publish` (Docker syntax; host port 0 resolved to a free one).
fn bridged(
    fx: &Fixture,
    name: &str,
    args: &[&str],
    publish: &[&str],
) -> Result<ContainerSpec, String> {
    let mut spec = fx.spec(name, args);
    spec.network = Network::Bridge;
    for value in publish {
        spec.ports
            .extend(parse_publish(value).map_err(|e| ErrorChain(&e).to_string())?);
    }
    allocate_host_ports(&mut spec.ports).map_err(|e| ErrorChain(&e).to_string())?;
    spec.etc_files = EtcFiles::docker_defaults_for(Network::Bridge, &spec.hostname)
        .map_err(|e| ErrorChain(&e).to_string())?;
    Ok(spec)
}

fn spawn_helper(spec: &ContainerSpec) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    helper_command(exe, spec)
        .map_err(|e| e.to_string())?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())
}

fn host_addr(mapping: &PortMapping) -> SocketAddr {
    SocketAddr::new(
        mapping.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        mapping.host_port,
    )
}

/// Connects to `addr` until a reply containing `want` arrives (the server may not listen yet:
/// pasta then accepts and closes).
fn fetch(addr: SocketAddr, want: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::from("nothing yet");
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut stream) => {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                if reply.contains(want) {
                    return Ok(reply);
                }
                last = format!("reply {reply:?}");
            }
            Err(err) => last = err.to_string(),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("no {want:?} from {addr}: {last}"))
}

/// pids of pasta processes started for `spec` (its runtime dir is in their command line).
fn pastas_for(spec: &ContainerSpec) -> Vec<u32> {
    let marker = spec.dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie is gone for our purposes: it holds no socket.
            cmdline.contains("pasta") && cmdline.contains(&marker) && !stat.contains(") Z ")
        })
        .collect()
}

fn port_is_free(mapping: &PortMapping) -> bool {
    TcpListener::bind(host_addr(mapping)).is_ok()
}

/// What must hold once a bridged container is gone.
fn released(spec: &ContainerSpec) -> CaseResult {
    ensure!(
        wait_until(|| pastas_for(spec).is_empty()),
        "pasta still running for {}: {:?}",
        spec.id,
        pastas_for(spec)
    );
    for mapping in &spec.ports {
        // A dying process's cmdline reads empty before its sockets are closed: wait for both.
        ensure!(
            wait_until(|| port_is_free(mapping)),
            "host port of {mapping} still bound"
        );
    }
    Ok(())
}

pub(crate) fn published_port_reaches_the_container(fx: &Fixture) -> CaseResult {
    let spec = bridged(
        fx,
        "publish",
        &[
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf >&2; nc -l -p 80 -e echo hello-from-container",
        ],
        &["127.0.0.1::80"],
    )?;
    let mut child = spawn_helper(&spec)?;
    let fetched = fetch(host_addr(&spec.ports[0]), "hello-from-container");
    if fetched.is_err() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    fetched?;
    ensure!(out.status.success(), "{}", describe(&out));
    let etc = text(&out.stderr);
    let own = format!("10.88.0.2\t{}\n", spec.hostname);
    ensure!(etc.contains(&own), "/etc/hosts lacks {own:?}: {etc}");
    ensure!(
        etc.contains("nameserver ") && !etc.contains("nameserver 127."),
        "resolv.conf: {etc}"
    );
    released(&spec)
}

pub(crate) fn two_containers_publish_different_ports(fx: &Fixture) -> CaseResult {
    let one = bridged(
        fx,
        "pub-one",
        &["nc", "-l", "-p", "8080", "-e", "echo", "one"],
        &["127.0.0.1::8080"],
    )?;
    let mut two = bridged(
        fx,
        "pub-two",
        &["nc", "-l", "-p", "8080", "-e", "echo", "two"],
        &["127.0.0.1::8080"],
    )?;
    // Allocated one after the other, both may get the same free port: pick again then.
    while two.ports[0].host_port == one.ports[0].host_port {
        two.ports[0].host_port = 0;
        allocate_host_ports(&mut two.ports).map_err(|e| ErrorChain(&e).to_string())?;
    }
    let mut first = spawn_helper(&one)?;
    let mut second = spawn_helper(&two)?;
    let replies = (
        fetch(host_addr(&one.ports[0]), "one"),
        fetch(host_addr(&two.ports[0]), "two"),
    );
    for (child, reply) in [(&mut first, &replies.0), (&mut second, &replies.1)] {
        if reply.is_err() {
            let _ = child.kill();
        }
    }
    let outs = (
        first.wait_with_output().map_err(|e| e.to_string())?,
        second.wait_with_output().map_err(|e| e.to_string())?,
    );
    // A missing reply says why: the helper's own output (its start may have failed).
    replies
        .0
        .map_err(|e| format!("{e}; container one: {}", describe(&outs.0)))?;
    replies
        .1
        .map_err(|e| format!("{e}; container two: {}", describe(&outs.1)))?;
    ensure!(outs.0.status.success(), "one: {}", describe(&outs.0));
    ensure!(outs.1.status.success(), "two: {}", describe(&outs.1));
    released(&one)?;
    released(&two)
}

/// The first non-loopback IPv4 address of the host.
fn host_ipv4() -> Option<Ipv4Addr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and its family says how to read it.
            let family = unsafe { (*entry.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    found = Some(ip);
                    break;
                }
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    found
}

pub(crate) fn container_reaches_the_host_network(fx: &Fixture) -> CaseResult {
    let ip = host_ipv4().ok_or("the host has no non-loopback IPv4 address")?;
    let listener = TcpListener::bind((ip, 0)).map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let script = format!("echo ping-from-container | nc {ip} {port}");
    let spec = bridged(fx, "outbound", &["sh", "-c", &script], &[])?;
    let mut child = spawn_helper(&spec)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut received = String::new();
    while Instant::now() < deadline && !received.contains('\n') {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.read_to_string(&mut received);
                let _ = stream.write_all(b"");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    if !received.contains('\n') {
        let _ = child.kill();
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    ensure!(
        received == "ping-from-container\n",
        "host listener on {ip}:{port} got {received:?}; {}",
        describe(&out)
    );
    ensure!(out.status.success(), "{}", describe(&out));
    released(&spec)
}

pub(crate) fn publishing_a_busy_port_is_a_typed_error(fx: &Fixture) -> CaseResult {
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    let port = busy.local_addr().map_err(|e| e.to_string())?.port();
    let mut spec = bridged(fx, "busy", &["true"], &[&format!("127.0.0.1:{port}:80")])?;
    spec.stdio.stdout = OutputMode::Capture;
    // In-process, for the typed error (this runner's main thread is its only thread).
    match run(&spec) {
        Err(RuntimeError::PortInUse { mapping }) => {
            ensure!(mapping.host_port == port, "wrong mapping {mapping}")
        }
        other => return Err(format!("expected PortInUse, got {other:?}")),
    }
    // Through the helper: Docker's 125 and a line naming the port.
    let out = spawn_helper(&spec)?
        .wait_with_output()
        .map_err(|e| e.to_string())?;
    let stderr = text(&out.stderr);
    ensure!(
        out.status.code() == Some(125)
            && stderr.contains(&format!("host port {port}/tcp is already in use")),
        "{}",
        describe(&out)
    );
    drop(busy);
    ensure!(
        wait_until(|| pastas_for(&spec).is_empty()),
        "pasta left after the failure"
    );
    Ok(())
}

pub(crate) fn killed_helper_leaves_no_pasta(fx: &Fixture) -> CaseResult {
    let spec = bridged(fx, "crash", &["sleep", "1000"], &["127.0.0.1::80"])?;
    let mut child = spawn_helper(&spec)?;
    let running = wait_until(|| !pastas_for(&spec).is_empty() && !port_is_free(&spec.ports[0]));
    let _ = child.kill(); // SIGKILL: no cleanup code runs in the helper
    let _ = child.wait();
    let result = if running {
        released(&spec)
    } else {
        Err("pasta never came up".to_owned())
    };
    // The orphaned container itself is the caller's to reap (what `strata rm` will do).
    remove_orphan(&spec);
    result
}

/// Kills an orphaned container's processes and removes its cgroups and runtime state.
fn remove_orphan(spec: &ContainerSpec) {
    let cgroup = |controller: &str| {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("strata")
            .join(&spec.id)
    };
    let procs = cgroup("pids").join("cgroup.procs");
    for pid in std::fs::read_to_string(&procs).unwrap_or_default().lines() {
        if let Some(pid) = pid
            .trim()
            .parse()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    wait_until(|| std::fs::read_to_string(&procs).map_or(true, |p| p.trim().is_empty()));
    for controller in [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio",
    ] {
        let _ = std::fs::remove_dir(cgroup(controller));
    }
    let _ = std::fs::remove_dir_all(spec.dir.join("state").join(&spec.id));
}

/// Opt-in figure (`isolation --measure-network`): median wall time of create → start → wait →
/// delete of `true` with no network and with the bridge, 20 in-process runs each.
pub(crate) fn measure_start_latency(fx: &Fixture) -> Result<String, String> {
    const RUNS: usize = 20;
    let mut report = String::new();
    for network in [Network::None, Network::Bridge] {
        let mut times = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let mut spec = fx.spec(&format!("measure-{network:?}-{i}"), &["true"]);
            spec.network = network;
            spec.etc_files = EtcFiles::docker_defaults_for(network, &spec.hostname)
                .map_err(|e| ErrorChain(&e).to_string())?;
            let started = Instant::now();
            let out = run(&spec).map_err(|e| ErrorChain(&e).to_string())?;
            times.push(started.elapsed());
            ensure!(out.status.success(), "{network:?}: {:?}", out.status);
        }
        times.sort();
        report.push_str(&format!(
            "{network:?}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({RUNS} runs of true)\n",
            times[RUNS / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3,
        ));
    }
    Ok(report)
}

pub(crate) fn missing_pasta_says_what_to_install(fx: &Fixture) -> CaseResult {
    let spec = bridged(fx, "nopasta", &["true"], &[])?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = helper_command(exe, &spec)
        .map_err(|e| e.to_string())?
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        out.status.code() == Some(125)
            && text(&out.stderr).contains("install the passt package (apt-get install passt)"),
        "{}",
        describe(&out)
    );
    Ok(())
}
