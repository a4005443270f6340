//! `ContainerSpec`: strata's own description of one container process, independent of OCI.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::network::{bridge_hosts, bridge_resolv_conf, PortMapping};
use crate::security::Security;

/// Docker's `PATH` for containers whose image sets none (libcontainer's validator requires one).
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's `TERM` for processes given a terminal (`-t`) whose environment sets none.
pub const TERMINAL_TERM_ENV: &str = "TERM=xterm";

/// Everything needed to run one process in an isolated container.
///
/// The caller owns both directories: `rootfs` is already prepared (a plain directory or a mounted
/// overlay), and `dir` is a per-container directory outside the rootfs where the runtime writes
/// `config.json`, the `/etc` files it bind-mounts and libcontainer's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container id: `[A-Za-z0-9_.+-]`, also the last component of the cgroup path.
    pub id: String,
    /// Root filesystem, absolute.
    pub rootfs: PathBuf,
    /// Per-container runtime directory, absolute and outside `rootfs`.
    pub dir: PathBuf,
    pub process: ProcessSpec,
    pub hostname: String,
    pub network: Network,
    /// Join this existing network namespace (a path `setns` accepts, e.g. `/proc/<pid>/fd/<n>`)
    /// instead of creating one: its owner keeps it alive and connected for as long as the
    /// container runs (a build's [`crate::SharedNetwork`]), so the runtime neither starts
    /// `pasta` nor touches `lo`. `network` still says what the namespace is (`Bridge` or
    /// `None`) for the `/etc` files; never with `Host`.
    #[serde(default)]
    pub network_namespace: Option<PathBuf>,
    /// Published ports (`-p`); only with [`Network::Bridge`], every host port resolved (non-zero).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    pub readonly_rootfs: bool,
    /// Extra bind mounts (`-v host:ctr[:ro]`), applied after the standard mounts.
    pub mounts: Vec<BindMount>,
    pub etc_files: EtcFiles,
    pub limits: Limits,
    pub stdio: StdioSpec,
    /// Capabilities, seccomp, no-new-privileges, privileged mode and devices (Docker's
    /// defaults unless the user loosened them).
    #[serde(default)]
    pub security: Security,
}

/// The process started as the container's pid 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    /// `KEY=value` entries; [`DEFAULT_PATH_ENV`] is added when no `PATH` is set.
    pub env: Vec<String>,
    /// Absolute working directory inside the container.
    pub cwd: String,
    pub user: User,
    /// Give the process a pseudo-terminal as stdin/stdout/stderr (`-t`); its master is read by
    /// the runtime, so output arrives as one stream with `\n` turned into `\r\n`.
    #[serde(default)]
    pub terminal: bool,
}

/// Numeric identity of the process; names are resolved by the caller from the image's files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups besides `gid` (the image's memberships, `--group-add`).
    pub additional_gids: Vec<u32>,
}

impl User {
    /// The supplementary group list the process gets, as Docker sets it: the primary group,
    /// then `additional_gids`, without repeats. Never empty, so the runtime always calls
    /// setgroups and nothing of the caller's own groups survives.
    pub fn groups(&self) -> Vec<u32> {
        let mut groups = vec![self.gid];
        for gid in &self.additional_gids {
            if !groups.contains(gid) {
                groups.push(*gid);
            }
        }
        groups
    }
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// Share the host's network namespace (builds' default, `--network host`).
    Host,
    /// A new network namespace holding only a loopback device (`--network none`).
    None,
    /// A new network namespace with outbound TCP/UDP and published ports through `pasta`
    /// (`strata run`'s default, Docker's `bridge` in behaviour; see `docs/networking.md`).
    Bridge,
}

/// A host path bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
}

/// Contents of `/etc/hosts` and `/etc/resolv.conf` (and whether to provide `/etc/hostname`).
///
/// They are written to the per-container directory and bind-mounted over the rootfs's files, so
/// they never land in an overlay's upper dir and so never in a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFiles {
    pub hostname: bool,
    pub hosts: Option<String>,
    pub resolv_conf: Option<String>,
}

/// Optional cgroup limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `--memory`, in bytes.
    pub memory_bytes: Option<i64>,
    /// Memory plus swap (`--memory-swap`; -1 for unlimited swap), applied with
    /// `memory_bytes` where the kernel accounts swap.
    #[serde(default)]
    pub memory_swap_bytes: Option<i64>,
    /// `--pids-limit`.
    pub pids: Option<i64>,
    /// `--cpus` × 10⁹ (Docker's `NanoCpus`).
    pub nano_cpus: Option<u64>,
}

/// Where the container's standard streams go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioSpec {
    pub stdin: InputMode,
    pub stdout: OutputMode,
    pub stderr: OutputMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputMode {
    /// The calling process's stdin.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputMode {
    /// The calling process's stream.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// Collected through a pipe and returned by [`crate::run`].
    Capture,
}

impl ContainerSpec {
    /// A spec with Docker's defaults: root user, cwd `/`, hostname = the first 12 characters of the
    /// id, network `None`, writable rootfs, `/etc/hostname` provided, inherited stdio, no limits.
    pub fn new(
        id: impl Into<String>,
        rootfs: impl Into<PathBuf>,
        dir: impl Into<PathBuf>,
        args: Vec<String>,
    ) -> Self {
        let id = id.into();
        let hostname = id.chars().take(12).collect();
        Self {
            id,
            rootfs: rootfs.into(),
            dir: dir.into(),
            process: ProcessSpec {
                args,
                env: vec![DEFAULT_PATH_ENV.to_owned()],
                cwd: "/".to_owned(),
                user: User::default(),
                terminal: false,
            },
            hostname,
            network: Network::None,
            network_namespace: None,
            ports: Vec::new(),
            readonly_rootfs: false,
            mounts: Vec::new(),
            etc_files: EtcFiles {
                hostname: true,
                hosts: None,
                resolv_conf: None,
            },
            limits: Limits::default(),
            stdio: StdioSpec::default(),
            security: Security::default(),
        }
    }

    /// Checks what libcontainer would otherwise reject late or misinterpret.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let invalid = |reason: String| RuntimeError::InvalidSpec {
            id: self.id.clone(),
            reason,
        };
        let id_ok = !self.id.is_empty()
            && self.id != "."
            && self.id != ".."
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
        if !id_ok {
            return Err(invalid(
                "id must be non-empty and use only letters, digits, '_', '.', '+', '-'".to_owned(),
            ));
        }
        if self.process.args.is_empty() {
            return Err(invalid("no command given".to_owned()));
        }
        if !self.process.cwd.starts_with('/') {
            return Err(invalid(format!(
                "working directory {:?} is not absolute",
                self.process.cwd
            )));
        }
        for (what, path) in [("rootfs", &self.rootfs), ("runtime dir", &self.dir)] {
            if !path.is_absolute() {
                return Err(invalid(format!(
                    "{what} {} is not absolute",
                    path.display()
                )));
            }
        }
        if self.dir.starts_with(&self.rootfs) {
            return Err(invalid(format!(
                "runtime dir {} is inside the rootfs {}",
                self.dir.display(),
                self.rootfs.display()
            )));
        }
        if let Some(entry) = self.process.env.iter().find(|e| !e.contains('=')) {
            return Err(invalid(format!("environment entry {entry:?} has no '='")));
        }
        for mount in &self.mounts {
            if !mount.destination.starts_with('/') {
                return Err(invalid(format!(
                    "mount destination {:?} is not absolute",
                    mount.destination
                )));
            }
            if !mount.source.is_absolute() {
                return Err(invalid(format!(
                    "mount source {} is not absolute",
                    mount.source.display()
                )));
            }
        }
        self.validate_ports().map_err(invalid)
    }

    fn validate_ports(&self) -> Result<(), String> {
        if let Some(path) = &self.network_namespace {
            if self.network == Network::Host {
                return Err("the host network cannot join another network namespace".to_owned());
            }
            if !path.is_absolute() {
                return Err(format!(
                    "network namespace {} is not absolute",
                    path.display()
                ));
            }
            if !self.ports.is_empty() {
                return Err("ports cannot be published on a joined network namespace".to_owned());
            }
        }
        if !self.ports.is_empty() && self.network != Network::Bridge {
            return Err(format!(
                "ports can only be published on the bridge network, not {:?}",
                self.network
            ));
        }
        for (i, m) in self.ports.iter().enumerate() {
            if m.host_port == 0 {
                return Err(format!(
                    "host port of {m} is 0: resolve it with allocate_host_ports first"
                ));
            }
            if m.container_port == 0 {
                return Err(format!("container port of {m} is 0"));
            }
            if m.host_ip.is_some_and(|ip| ip.is_ipv6()) {
                return Err(format!(
                    "{m}: the bridge network is IPv4-only, IPv6 host addresses are not supported"
                ));
            }
            let clash = self.ports[..i].iter().any(|o| {
                o.protocol == m.protocol && o.host_port == m.host_port && o.host_ip == m.host_ip
            });
            if clash {
                return Err(format!("{m}: the host port is published twice"));
            }
        }
        Ok(())
    }

    /// The environment with [`DEFAULT_PATH_ENV`] added when `PATH` is missing, and, like
    /// Docker, `TERM=xterm` under a terminal when `TERM` is missing.
    pub(crate) fn env_with_path(&self) -> Vec<String> {
        let mut env = self.process.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(DEFAULT_PATH_ENV.to_owned());
        }
        if self.process.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push(TERMINAL_TERM_ENV.to_owned());
        }
        env
    }

    /// `cgroupsPath` of the container: `/strata/<id>` (libcontainer's default would be created literally).
    pub fn cgroup_path(&self) -> PathBuf {
        Path::new("/strata").join(&self.id)
    }

    /// Where libcontainer keeps its state for this container (`<dir>/state/<id>`).
    pub(crate) fn state_root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Where the generated `/etc` files are written (`<dir>/etc`).
    pub(crate) fn etc_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }
}

impl ProcessSpec {
    /// Runs the process as `resolved` and, like Docker, sets `HOME` to its home directory
    /// unless the environment already has one.
    pub fn apply_user(&mut self, resolved: &crate::user::ResolvedUser) {
        self.user = resolved.user.clone();
        if !self.env.iter().any(|e| e.starts_with("HOME=")) {
            self.env.push(format!("HOME={}", resolved.home));
        }
    }
}

impl EtcFiles {
    /// Docker's choice: for `Host`, copies of the host's `/etc/hosts` and `/etc/resolv.conf`; for
    /// `None`, loopback-only hosts and the host's resolv.conf; for `Bridge`, loopback-only hosts
    /// (see [`EtcFiles::docker_defaults_for`] for the hostname line) and the host's resolv.conf
    /// without the nameservers the container cannot reach. A missing host file gives `None`.
    pub fn docker_defaults(network: Network) -> Result<Self, RuntimeError> {
        Self::docker_defaults_for(network, "")
    }

    /// [`EtcFiles::docker_defaults`], with `/etc/hosts` of a `Bridge` container naming its own
    /// address as `hostname`, like Docker's.
    pub fn docker_defaults_for(network: Network, hostname: &str) -> Result<Self, RuntimeError> {
        let host_resolv = read_optional(Path::new("/etc/resolv.conf"))?;
        let (hosts, resolv_conf) = match network {
            Network::Host => (read_optional(Path::new("/etc/hosts"))?, host_resolv),
            Network::None => (Some(LOOPBACK_HOSTS.to_owned()), host_resolv),
            Network::Bridge => {
                let systemd = read_optional(Path::new(SYSTEMD_RESOLVED_UPSTREAM))?;
                let resolv = bridge_resolv_conf(
                    host_resolv.as_deref().unwrap_or_default(),
                    systemd.as_deref(),
                );
                (Some(bridge_hosts(hostname)), Some(resolv))
            }
        };
        Ok(Self {
            hostname: true,
            hosts,
            resolv_conf,
        })
    }
}

/// systemd-resolved's list of upstream servers, used when the host's resolv.conf names only its
/// 127.0.0.53 stub (as Docker does).
const SYSTEMD_RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// `/etc/hosts` of a container without the host's network, as Docker writes it.
pub const LOOPBACK_HOSTS: &str =
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

fn read_optional(path: &Path) -> Result<Option<String>, RuntimeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RuntimeError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::new(
            "abcdef0123456789",
            "/var/lib/strata/rootfs",
            "/run/strata/c1",
            vec!["true".into()],
        )
    }

    #[test]
    fn new_applies_docker_defaults() {
        let s = spec();
        assert_eq!(s.hostname, "abcdef012345");
        assert_eq!(s.process.cwd, "/");
        assert_eq!(s.process.user, User::default());
        assert_eq!(s.network, Network::None);
        assert!(s.etc_files.hostname);
        assert_eq!(s.cgroup_path(), PathBuf::from("/strata/abcdef0123456789"));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn validate_rejects_bad_specs() {
        type Edit = Box<dyn Fn(&mut ContainerSpec)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("empty id", Box::new(|s| s.id = String::new())),
            ("slash in id", Box::new(|s| s.id = "a/b".into())),
            ("dot-dot id", Box::new(|s| s.id = "..".into())),
            ("no args", Box::new(|s| s.process.args.clear())),
            ("relative cwd", Box::new(|s| s.process.cwd = "tmp".into())),
            ("relative rootfs", Box::new(|s| s.rootfs = "rootfs".into())),
            ("relative dir", Box::new(|s| s.dir = "c1".into())),
            (
                "dir inside rootfs",
                Box::new(|s| s.dir = s.rootfs.join("run")),
            ),
            (
                "env without =",
                Box::new(|s| s.process.env.push("FOO".into())),
            ),
            (
                "relative mount destination",
                Box::new(|s| {
                    s.mounts.push(BindMount {
                        source: "/tmp".into(),
                        destination: "data".into(),
                        readonly: false,
                    })
                }),
            ),
            (
                "relative mount source",
                Box::new(|s| {
                    s.mounts.push(BindMount {
                        source: "tmp".into(),
                        destination: "/data".into(),
                        readonly: false,
                    })
                }),
            ),
        ];
        for (name, edit) in cases {
            let mut s = spec();
            edit(&mut s);
            let err = s.validate().expect_err(name);
            assert!(
                matches!(err, RuntimeError::InvalidSpec { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn path_is_added_only_when_missing() {
        let mut s = spec();
        s.process.env = vec!["A=1".into()];
        assert_eq!(
            s.env_with_path(),
            vec!["A=1".to_owned(), DEFAULT_PATH_ENV.to_owned()]
        );
        s.process.env = vec!["PATH=/bin".into()];
        assert_eq!(s.env_with_path(), vec!["PATH=/bin".to_owned()]);
        s.process.terminal = true;
        assert_eq!(
            s.env_with_path(),
            vec!["PATH=/bin".to_owned(), TERMINAL_TERM_ENV.to_owned()]
        );
        s.process.env = vec!["PATH=/bin".into(), "TERM=vt100".into()];
        assert_eq!(s.env_with_path(), s.process.env);
    }

    #[test]
    fn terminal_defaults_to_off_in_older_json() {
        let mut value = serde_json::to_value(spec()).unwrap();
        value["process"].as_object_mut().unwrap().remove("terminal");
        let back: ContainerSpec = serde_json::from_value(value).unwrap();
        assert!(!back.process.terminal);
    }

    #[test]
    fn apply_user_sets_ids_and_home_once() {
        let resolved = crate::user::ResolvedUser {
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10],
            },
            home: "/home/app".into(),
        };
        let mut s = spec();
        s.process.apply_user(&resolved);
        assert_eq!(s.process.user, resolved.user);
        assert!(s.process.env.contains(&"HOME=/home/app".to_owned()));

        let mut s = spec();
        s.process.env.push("HOME=/custom".into());
        s.process.apply_user(&resolved);
        let homes: Vec<_> = s
            .process
            .env
            .iter()
            .filter(|e| e.starts_with("HOME="))
            .collect();
        assert_eq!(homes, ["HOME=/custom"]);
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut s = spec();
        s.limits.memory_bytes = Some(64 << 20);
        s.stdio.stdout = OutputMode::Capture;
        let json = serde_json::to_string(&s).unwrap();
        let back: ContainerSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn ports_are_validated_against_the_network() {
        let port = |host_port, host_ip: Option<&str>| crate::network::PortMapping {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port,
            container_port: 80,
            protocol: crate::network::Protocol::Tcp,
        };
        let cases: Vec<(Network, Vec<_>, bool)> = vec![
            (Network::Bridge, vec![port(8080, None)], true),
            (Network::Bridge, vec![], true),
            (Network::None, vec![port(8080, None)], false),
            (Network::Host, vec![port(8080, None)], false),
            (Network::Bridge, vec![port(0, None)], false),
            (Network::Bridge, vec![port(8080, Some("::1"))], false),
            (
                Network::Bridge,
                vec![port(8080, None), port(8080, None)],
                false,
            ),
            (
                Network::Bridge,
                vec![port(8080, None), port(8080, Some("127.0.0.1"))],
                true,
            ),
        ];
        for (network, ports, ok) in cases {
            let mut s = spec();
            s.network = network;
            s.ports = ports.clone();
            assert_eq!(s.validate().is_ok(), ok, "{network:?} {ports:?}");
        }
    }

    #[test]
    fn a_joined_network_namespace_is_checked() {
        let cases: Vec<(Network, &str, bool)> = vec![
            (Network::Bridge, "/proc/1/fd/3", true),
            (Network::None, "/proc/1/fd/3", true),
            (Network::Host, "/proc/1/fd/3", false),
            (Network::Bridge, "fd/3", false),
        ];
        for (network, path, ok) in cases {
            let mut s = spec();
            s.network = network;
            s.network_namespace = Some(path.into());
            assert_eq!(s.validate().is_ok(), ok, "{network:?} {path}");
        }
        let mut s = spec();
        s.network = Network::Bridge;
        s.network_namespace = Some("/proc/1/fd/3".into());
        s.ports = vec![crate::network::PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: crate::network::Protocol::Tcp,
        }];
        assert!(s.validate().is_err(), "ports on a joined namespace");
    }

    #[test]
    fn specs_without_ports_still_deserialize() {
        let mut value = serde_json::to_value(spec()).unwrap();
        value.as_object_mut().unwrap().remove("ports");
        let back: ContainerSpec = serde_json::from_value(value).unwrap();
        assert!(back.ports.is_empty());
    }

    #[test]
    fn bridge_etc_files_name_the_container() {
        let etc = EtcFiles::docker_defaults_for(Network::Bridge, "abcdef012345").unwrap();
        let hosts = etc.hosts.unwrap();
        assert!(hosts.ends_with("10.88.0.2\tabcdef012345\n"), "{hosts}");
        let resolv = etc.resolv_conf.unwrap();
        assert!(resolv.contains("nameserver "), "{resolv}");
        assert!(!resolv.contains("nameserver 127."), "{resolv}");
    }

    #[test]
    fn docker_default_etc_files_for_no_network_are_loopback_only() {
        let etc = EtcFiles::docker_defaults(Network::None).unwrap();
        assert_eq!(etc.hosts.as_deref(), Some(LOOPBACK_HOSTS));
        assert!(etc.hostname);
    }
}
