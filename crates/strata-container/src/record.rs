//! What strata records about a container: its config (fixed when it is created) and its state
//! (changed by the monitor and by lifecycle commands), both stored as JSON in the store's
//! containers table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::log::LogConfig;
use strata_oci::Digest;
use strata_oci::HealthConfig;
use strata_store::{ContainerRow, Store};

use crate::error::ContainerError;
use crate::security::SecurityConfig;

/// How the container is networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace with outbound access and published ports (Docker's default).
    #[default]
    Bridge,
    Host,
    None,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for NetworkMode {
    type Err = ContainerError;
    fn from_str(s: &str) -> Result<Self, ContainerError> {
        match s {
            "bridge" | "default" => Ok(Self::Bridge),
            "host" => Ok(Self::Host),
            "none" => Ok(Self::None),
            other => Err(ContainerError::InvalidOption {
                option: "--network",
                value: other.to_owned(),
                reason: "expected bridge, host or none".to_owned(),
            }),
        }
    }
}

/// One `-p`/`-P` mapping, as given and as the host saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Empty for all addresses.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl PortBinding {
    /// Docker's `ps` form: `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        let ip = if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        };
        format!(
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// What a container mounts besides its rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum MountSpec {
    /// `-v /host/dir:/ctr[:ro]`.
    Bind {
        source: PathBuf,
        destination: String,
        readonly: bool,
    },
    /// `-v name:/ctr[:ro]`, or an image `VOLUME` (anonymous: removed by `rm -v`).
    Volume {
        name: String,
        destination: String,
        readonly: bool,
        anonymous: bool,
    },
}

impl MountSpec {
    pub fn destination(&self) -> &str {
        match self {
            Self::Bind { destination, .. } | Self::Volume { destination, .. } => destination,
        }
    }
}

/// `--restart`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        /// 0 = unlimited.
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// Docker's spelling: `no`, `always`, `unless-stopped`, `on-failure`.
    pub fn name(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure { .. } => "on-failure",
        }
    }

    /// Whether a container that exited with `code` after `restarts` restarts should run again.
    pub fn restarts_after(self, code: i32, restarts: u32) -> bool {
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max_retries } => {
                code != 0 && (max_retries == 0 || restarts < max_retries)
            }
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = ContainerError;
    fn from_str(s: &str) -> Result<Self, ContainerError> {
        let bad = |reason: &str| ContainerError::InvalidOption {
            option: "--restart",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        match (name, count) {
            ("no" | "", None) => Ok(Self::No),
            ("always", None) => Ok(Self::Always),
            ("unless-stopped", None) => Ok(Self::UnlessStopped),
            ("on-failure", None) => Ok(Self::OnFailure { max_retries: 0 }),
            ("on-failure", Some(c)) => c
                .parse()
                .map(|max_retries| Self::OnFailure { max_retries })
                .map_err(|_| bad("the retry count must be a non-negative number")),
            (_, Some(_)) => Err(bad("only on-failure takes a retry count")),
            _ => Err(bad("expected no, always, unless-stopped or on-failure[:N]")),
        }
    }
}

/// cgroup limits (`--memory`, `--memory-swap`, `--cpus`, `--pids-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResourceLimits {
    pub memory_bytes: Option<i64>,
    /// Memory plus swap, Docker's `MemorySwap`: twice `memory_bytes` unless given, -1 for
    /// unlimited swap (see `create`).
    #[serde(default)]
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<u64>,
    pub pids: Option<i64>,
}

/// Everything fixed when a container is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The image as the user named it (shown by `ps`).
    pub image: String,
    pub image_id: Digest,
    /// The image's top snapshot (None for an image without layers).
    pub chain_id: Option<Digest>,
    /// The effective entrypoint and command; the process is `entrypoint + cmd`.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `user[:group]` as given (resolved against the container's own /etc/passwd at start).
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    /// `-i`: stdin stays open (only for a foreground run).
    pub interactive: bool,
    pub network: NetworkMode,
    pub ports: Vec<PortBinding>,
    pub mounts: Vec<MountSpec>,
    pub read_only: bool,
    pub limits: ResourceLimits,
    pub restart: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    pub labels: BTreeMap<String, String>,
    /// Signal name or number; empty = SIGTERM.
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL; None = 10.
    pub stop_timeout: Option<i64>,
    /// The image's exposed ports (`80/tcp`), for `inspect`.
    pub exposed_ports: Vec<String>,
    /// `--init`: the process runs under strata's init (`/sbin/docker-init -- entrypoint cmd…`).
    /// Absent in records written before the flag existed.
    #[serde(default)]
    pub init: bool,
    /// Capabilities, seccomp, privileged mode, devices, added groups (Docker's defaults in
    /// records written before these options existed).
    #[serde(default)]
    pub security: SecurityConfig,
    /// `--log-driver` / `--log-opt`; records written before rotation existed get the default cap.
    #[serde(default)]
    pub log: LogConfig,
    /// The health check the monitor runs (the image's `HEALTHCHECK` and `--health-*`).
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
}

impl ContainerConfig {
    /// The process to start: entrypoint followed by cmd.
    pub fn process_args(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Restarting,
    Exited,
    /// Its monitor died while the container was running: nothing watches it any more.
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

/// What changes while a container lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContainerState {
    pub status: Status,
    /// The container's init pid on the host while running, else 0.
    pub pid: i32,
    /// That process's start time (`/proc/<pid>/stat` field 22, clock ticks after boot), so
    /// a recycled pid is never taken for the container's init.
    #[serde(default)]
    pub pid_start_time: u64,
    /// The monitor process's pid while it runs, else 0.
    pub monitor_pid: i32,
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds; empty until first started.
    pub started_at: String,
    pub finished_at: String,
    /// Why the last start failed (strata's own error), empty otherwise.
    pub error: String,
    pub restart_count: u32,
    /// Set by `stop`/`kill`/`rm -f`: the monitor must not restart the container.
    pub stop_requested: bool,
    /// The host ports actually bound (after choosing free ones for `-P`).
    pub ports: Vec<PortBinding>,
    /// Set from the start of a run of a container with a health check.
    #[serde(default)]
    pub health: Option<Health>,
}

/// A container as read from the store.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// Unix nanoseconds.
    pub created: i64,
    pub config: ContainerConfig,
    pub state: ContainerState,
    /// `<root>/containers/<id>`.
    pub dir: PathBuf,
}

impl Container {
    pub(crate) fn from_row(store: &Store, row: ContainerRow) -> Result<Self, ContainerError> {
        let corrupt = |what: &str, e: serde_json::Error| ContainerError::CorruptRecord {
            id: row.id.clone(),
            reason: format!("{what}: {e}"),
        };
        let config = serde_json::from_str(&row.config).map_err(|e| corrupt("config", e))?;
        let state = serde_json::from_str(&row.state).map_err(|e| corrupt("state", e))?;
        Ok(Self {
            dir: store.container_dir(&row.id),
            id: row.id,
            name: row.name,
            created: row.created,
            config,
            state,
        })
    }

    /// The first 12 characters of the id, as Docker shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    pub fn paths(&self) -> ContainerPaths {
        ContainerPaths::new(&self.dir)
    }
}

/// The files and directories under a container's own directory.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// overlay upper dir: the container's writable layer.
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the monitor mounts the root filesystem (in its private mount namespace).
    pub rootfs: PathBuf,
    /// strata-runtime's per-container directory (bundle, /etc files, libcontainer state).
    pub runtime: PathBuf,
    /// Docker json-file format log.
    pub log: PathBuf,
    /// Held (flock) by the monitor for its whole life: free lock = no monitor.
    pub monitor_lock: PathBuf,
    /// A detached monitor's stderr and its notes (e.g. a log paused by a full disk).
    pub monitor_log: PathBuf,
}

impl ContainerPaths {
    /// The upper and work dirs as the snapshotter mounts them (`volatile` for a container
    /// whose changes are thrown away, like Podman's `--rm`).
    pub fn writable_layer(&self, volatile: bool) -> strata_store::WritableLayer {
        strata_store::WritableLayer {
            upper: self.upper.clone(),
            work: self.work.clone(),
            volatile,
        }
    }

    pub fn new(dir: &Path) -> Self {
        Self {
            upper: dir.join("upper"),
            work: dir.join("work"),
            rootfs: dir.join("rootfs"),
            runtime: dir.join("runtime"),
            log: dir.join("container.log"),
            monitor_lock: dir.join("monitor.lock"),
            monitor_log: dir.join("monitor.log"),
        }
    }
}

/// A record part as stored JSON (serialising these types cannot fail but for a bug).
pub(crate) fn to_json<T: Serialize>(id: &str, value: &T) -> Result<String, ContainerError> {
    serde_json::to_string(value).map_err(|e| ContainerError::CorruptRecord {
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

/// Current time as Docker writes it: RFC 3339, nanoseconds, UTC.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide_like_docker() {
        let cases = [
            ("no", RestartPolicy::No, [false, false, false]),
            ("always", RestartPolicy::Always, [true, true, true]),
            (
                "unless-stopped",
                RestartPolicy::UnlessStopped,
                [true, true, true],
            ),
            (
                "on-failure",
                RestartPolicy::OnFailure { max_retries: 0 },
                [false, true, true],
            ),
            (
                "on-failure:2",
                RestartPolicy::OnFailure { max_retries: 2 },
                [false, true, false],
            ),
        ];
        for (text, policy, [ok_exit, fail_first, fail_third]) in cases {
            assert_eq!(text.parse::<RestartPolicy>().unwrap(), policy, "{text}");
            assert_eq!(policy.restarts_after(0, 0), ok_exit, "{text} exit 0");
            assert_eq!(policy.restarts_after(1, 0), fail_first, "{text} exit 1");
            assert_eq!(policy.restarts_after(1, 2), fail_third, "{text} 3rd");
        }
        for bad in ["sometimes", "always:3", "on-failure:x"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_display_like_docker_ps() {
        let p = PortBinding {
            host_ip: String::new(),
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        };
        assert_eq!(p.display(), "0.0.0.0:8080->80/tcp");
    }
}
