//! The `pasta` process that gives a bridged container its network: start, wait until ready, stop.
//!
//! pasta (Debian's `passt` package, 0.0~git20230309 and later) attaches to the created
//! container's network namespace, configures a tap interface in it ([`BRIDGE_ADDRESS`], default
//! route via [`BRIDGE_GATEWAY`]), carries its TCP/UDP traffic through ordinary host sockets and
//! listens on the published host ports. Facts of that version this module relies on:
//! - it cannot open `/proc/<pid>/ns/net` of a root process once it has dropped capabilities, so
//!   it gets the namespace as an inherited descriptor (`--netns /proc/self/fd/N`), and it must
//!   stay uid 0 (`--runas 0:0`, keeping only CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN, under its
//!   own seccomp filter) to `setns` into a namespace owned by the initial user namespace;
//! - it never notices that a `/proc` namespace is gone (it watches only bind-mounted ones), so
//!   the runtime kills it when the container is deleted;
//! - in the foreground (`-f`) it writes its pid file only after every port is bound and the
//!   interface is configured: the pid file is a FIFO and its first bytes mean "ready";
//! - a port it cannot bind ends it with `Failed to bind any port for '-t SPEC', exiting`.
//!
//! It runs as a child of the process that runs the container, with `PR_SET_PDEATHSIG=SIGKILL`
//! (kept: pasta changes neither uid nor gid and has no file capabilities), so a killed strata
//! never leaves a pasta holding a host port.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::RuntimeError;
use crate::network::{PortMapping, Protocol, BRIDGE_ADDRESS, BRIDGE_GATEWAY, BRIDGE_PREFIX_LEN};
use crate::spec::{ContainerSpec, Network};

/// The program run for bridge networking, looked up in `PATH`.
const PASTA: &str = "pasta";

/// How long pasta may take to configure the namespace and bind the ports.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the readiness wait checks whether pasta has exited instead.
const EXIT_CHECK_MS: libc::c_int = 5;

/// A running pasta, killed and reaped by [`Pasta::stop`] or on drop.
pub(crate) struct Pasta {
    child: Option<Child>,
}

impl Pasta {
    /// Starts pasta for the created (not yet started) container whose init is `init_pid`, and
    /// returns once the container's network is configured and the ports are bound.
    pub(crate) fn start(spec: &ContainerSpec, init_pid: i32) -> Result<Self, RuntimeError> {
        let netns_path = PathBuf::from(format!("/proc/{init_pid}/ns/net"));
        let netns: OwnedFd = File::open(&netns_path)
            .map_err(|source| RuntimeError::Read {
                path: netns_path,
                source,
            })?
            .into();
        Self::attach(netns, &spec.id, &spec.dir, &spec.ports)
    }

    /// Starts pasta on the network namespace `netns` for `id` (pid file and log in `dir`,
    /// publishing `ports`), and returns once the namespace is configured and the ports bound.
    /// pasta dies with the *thread* that calls this (`PR_SET_PDEATHSIG`).
    pub(crate) fn attach(
        netns: OwnedFd,
        id: &str,
        dir: &Path,
        ports: &[PortMapping],
    ) -> Result<Self, RuntimeError> {
        let ready_path = dir.join("pasta.pid");
        let log_path = dir.join("pasta.log");
        let ready = make_fifo(&ready_path)?;
        let log = File::create(&log_path).map_err(|source| RuntimeError::Write {
            path: log_path.clone(),
            source,
        })?;

        let mut command = Command::new(PASTA);
        command
            .args(pasta_args(ports, &ready_path, netns.as_raw_fd()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let netns_fd = netns.as_raw_fd();
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (fcntl, prctl, getppid) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // The namespace descriptor must survive exec; everything else stays CLOEXEC.
                if libc::fcntl(netns_fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then nobody would kill pasta.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RuntimeError::PastaMissing
            } else {
                RuntimeError::PastaSpawn {
                    id: id.to_owned(),
                    source,
                }
            }
        })?;
        drop(netns);
        let mut pasta = Self { child: Some(child) };
        let waited = pasta.wait_ready(&ready);
        let _ = std::fs::remove_file(&ready_path);
        match waited {
            Ok(()) => Ok(pasta),
            Err(status) => {
                pasta.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(failure(id, ports, status, &log))
            }
        }
    }

    /// Waits for pasta's pid to appear in the FIFO; on failure, its exit status if it exited.
    fn wait_ready(&mut self, ready: &File) -> Result<(), Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut received = Vec::new();
        loop {
            let mut poll = libc::pollfd {
                fd: ready.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut poll, 1, EXIT_CHECK_MS) };
            if n > 0 && poll.revents & libc::POLLIN != 0 {
                let mut buf = [0u8; 32];
                match (&*ready).read(&mut buf) {
                    Ok(len) if len > 0 => received.extend_from_slice(&buf[..len]),
                    _ => {}
                }
                if received.contains(&b'\n') {
                    return Ok(());
                }
            }
            let Some(child) = self.child.as_mut() else {
                return Err(None);
            };
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(Some(status));
            }
            if Instant::now() >= deadline {
                return Err(None);
            }
        }
    }

    /// Kills pasta and reaps it: the published host ports are free when this returns.
    pub(crate) fn stop(mut self) {
        self.kill();
    }

    /// Sends pasta SIGKILL without waiting for it: the caller goes on tearing the container
    /// down while pasta exits, and [`Pasta::stop`] (or drop) reaps it after (≈15–25 ms saved).
    pub(crate) fn signal_stop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL: pasta keeps no state worth flushing, and must not linger.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pasta {
    fn drop(&mut self) {
        self.kill();
    }
}

/// For a [`Network::Bridge`] container, its pasta, ready; `None` for other networks and for
/// a container joining a namespace someone else connects ([`ContainerSpec::network_namespace`]).
pub(crate) fn start_network(
    spec: &ContainerSpec,
    init_pid: i32,
) -> Result<Option<Pasta>, RuntimeError> {
    if spec.network == Network::Bridge && spec.network_namespace.is_none() {
        Pasta::start(spec, init_pid).map(Some)
    } else {
        Ok(None)
    }
}

/// pasta's command line for a container whose namespace is inherited as descriptor `netns_fd`.
fn pasta_args(ports: &[PortMapping], ready: &Path, netns_fd: i32) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--foreground",
        "--quiet",
        "--runas",
        "0:0",
        "--config-net",
        "--ipv4-only",
        "--address",
        &BRIDGE_ADDRESS.to_string(),
        "--netmask",
        &BRIDGE_PREFIX_LEN.to_string(),
        "--gateway",
        &BRIDGE_GATEWAY.to_string(),
        // Docker's bridge does not reach the host's loopback through the gateway.
        "--no-map-gw",
        // No automatic forwarding from the container to the host's ports.
        "--tcp-ns",
        "none",
        "--udp-ns",
        "none",
        // The namespace is a /proc descriptor: nothing to watch, the runtime stops pasta.
        "--no-netns-quit",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let flag = match protocol {
            Protocol::Tcp => "--tcp-ports",
            Protocol::Udp => "--udp-ports",
        };
        let specs: Vec<String> = ports
            .iter()
            .filter(|m| m.protocol == protocol)
            .map(forward_spec)
            .collect();
        if specs.is_empty() {
            // pasta's default is "auto": every port bound in the namespace. Docker: none.
            args.extend([flag.into(), "none".into()]);
        }
        // One option per mapping: pasta fails only when no port of an option binds.
        for spec in specs {
            args.extend([flag.into(), spec.into()]);
        }
    }
    args.push("--pid".into());
    args.push(ready.into());
    args.push("--netns".into());
    args.push(format!("/proc/self/fd/{netns_fd}").into());
    args
}

/// pasta's `[address/]hostPort:containerPort` for one mapping.
fn forward_spec(mapping: &PortMapping) -> String {
    let ports = format!("{}:{}", mapping.host_port, mapping.container_port);
    match mapping.host_ip {
        Some(ip) => format!("{ip}/{ports}"),
        None => ports,
    }
}

/// The typed error for a pasta that exited (or hung) before it was ready.
fn failure(
    id: &str,
    ports: &[PortMapping],
    status: Option<std::process::ExitStatus>,
    log: &str,
) -> RuntimeError {
    for line in log.lines() {
        // Some builds prefix a timestamp: look for the message anywhere in the line.
        const BIND_FAILED: &str = "Failed to bind any port for '";
        let Some(at) = line.find(BIND_FAILED) else {
            continue;
        };
        let rest = &line[at + BIND_FAILED.len()..];
        let option = rest.split('\'').next().unwrap_or_default();
        let (flag, value) = option.split_once(' ').unwrap_or_default();
        let protocol = if flag == "-u" || flag == "--udp-ports" {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        if let Some(mapping) = ports
            .iter()
            .find(|m| m.protocol == protocol && forward_spec(m) == value)
        {
            return RuntimeError::PortInUse { mapping: *mapping };
        }
    }
    let message = log
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_owned();
    RuntimeError::PastaFailed {
        id: id.to_owned(),
        status: status.map_or_else(
            || format!("not ready after {} s", READY_TIMEOUT.as_secs()),
            |s| s.to_string(),
        ),
        message,
    }
}

/// A fresh FIFO at `path`, opened for reading without blocking (pasta opens the write side).
fn make_fifo(path: &Path) -> Result<File, RuntimeError> {
    let err = |source| RuntimeError::Write {
        path: path.to_owned(),
        source,
    };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(|e| err(e.into()))?;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: a valid NUL-terminated path; the result is checked before use.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: open returned a new descriptor that nobody else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(
        host_ip: Option<&str>,
        host_port: u16,
        container_port: u16,
        protocol: Protocol,
    ) -> PortMapping {
        PortMapping {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port,
            container_port,
            protocol,
        }
    }

    fn args(ports: &[PortMapping]) -> Vec<String> {
        pasta_args(ports, Path::new("/run/c1/pasta.pid"), 7)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    fn values_of(args: &[String], flag: &str) -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    #[test]
    fn each_mapping_is_its_own_forward_option() {
        let a = args(&[
            mapping(None, 8080, 80, Protocol::Tcp),
            mapping(Some("127.0.0.1"), 8443, 443, Protocol::Tcp),
            mapping(None, 5353, 53, Protocol::Udp),
        ]);
        assert_eq!(
            values_of(&a, "--tcp-ports"),
            ["8080:80", "127.0.0.1/8443:443"]
        );
        assert_eq!(values_of(&a, "--udp-ports"), ["5353:53"]);
        assert_eq!(values_of(&a, "--netns"), ["/proc/self/fd/7"]);
        assert_eq!(values_of(&a, "--pid"), ["/run/c1/pasta.pid"]);
        assert_eq!(values_of(&a, "--address"), ["10.88.0.2"]);
        for flag in ["--foreground", "--config-net", "--no-map-gw", "--ipv4-only"] {
            assert!(a.iter().any(|x| x == flag), "{flag}");
        }
    }

    #[test]
    fn no_mappings_forward_nothing_instead_of_pastas_auto() {
        let a = args(&[]);
        assert_eq!(values_of(&a, "--tcp-ports"), ["none"]);
        assert_eq!(values_of(&a, "--udp-ports"), ["none"]);
        assert_eq!(values_of(&a, "--tcp-ns"), ["none"]);
        assert_eq!(values_of(&a, "--udp-ns"), ["none"]);
    }

    #[test]
    fn bind_failures_name_the_mapping() {
        let mut spec = ContainerSpec::new("c1", "/r", "/d", vec!["true".into()]);
        spec.ports = vec![
            mapping(None, 8080, 80, Protocol::Tcp),
            mapping(Some("127.0.0.1"), 5353, 53, Protocol::Udp),
        ];
        let cases = [
            (
                "Failed to bind any port for '-t 8080:80', exiting\n",
                Some(spec.ports[0]),
            ),
            (
                "Failed to bind any port for '-u 127.0.0.1/5353:53', exiting\n",
                Some(spec.ports[1]),
            ),
            ("Couldn't open network namespace /proc/self/fd/7\n", None),
        ];
        for (log, expected) in cases {
            match (failure(&spec.id, &spec.ports, None, log), expected) {
                (RuntimeError::PortInUse { mapping }, Some(want)) => assert_eq!(mapping, want),
                (RuntimeError::PastaFailed { message, .. }, None) => {
                    assert_eq!(message, log.trim())
                }
                (other, _) => panic!("{log:?}: {other:?}"),
            }
        }
    }
}
