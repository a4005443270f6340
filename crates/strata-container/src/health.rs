//! `HEALTHCHECK`: Docker's container health, run by a checker process beside the monitor.
//!
//! The container's health check (the image's `HEALTHCHECK`, changed by `--health-*` flags) is
//! fixed at create. While the container runs, its monitor keeps one checker child (strata
//! re-executed, entered through [`HEALTH_ENV`]; it dies with the monitor): every interval it
//! runs the test in the container through the runtime's exec helper, with the timeout, and
//! records the result in the container's state as Docker does — `starting` until the first
//! success (failures in the start period do not count), `healthy`, or `unhealthy` after
//! `retries` failures in a row, with the last five probes and their output. A child process,
//! not a thread: the monitor must stay single-threaded for the runtime.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use strata_oci::HealthConfig;
use strata_runtime::{exec_helper_command, ExecRequest, ExecSpec};
use strata_store::{Store, StoreOptions};

use crate::error::ContainerError;
use crate::lifecycle::{monitor_alive, reload, update_state};
use crate::record::{now_rfc3339, Container, Status};

/// Environment variable that turns a strata process into a container's health checker.
pub const HEALTH_ENV: &str = "STRATA_CONTAINER_HEALTH";

/// Docker's defaults for what the health check leaves unset.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Probes kept in the state, and output bytes kept per probe (Docker's limits).
const KEPT_PROBES: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// `--health-*` and `--no-healthcheck` as given (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthOptions {
    /// `--health-cmd`: run with `/bin/sh -c`.
    pub cmd: Option<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub start_period: Option<i64>,
    pub retries: Option<u32>,
    /// `--no-healthcheck`.
    pub disabled: bool,
}

impl HealthOptions {
    fn any_set(&self) -> bool {
        self.cmd.is_some()
            || self.interval.is_some()
            || self.timeout.is_some()
            || self.start_period.is_some()
            || self.retries.is_some()
    }
}

/// The check a container runs: the image's, changed field by field by the flags (Docker's
/// merge); `None` when there is none or it is disabled (`NONE`, `--no-healthcheck`).
pub(crate) fn effective_healthcheck(
    image: Option<&HealthConfig>,
    opts: &HealthOptions,
) -> Result<Option<HealthConfig>, ContainerError> {
    if opts.disabled {
        if opts.any_set() {
            return Err(ContainerError::InvalidOption {
                option: "--no-healthcheck",
                value: String::new(),
                reason: "conflicts with --health-* options".to_owned(),
            });
        }
        return Ok(None);
    }
    for (option, value) in [
        ("--health-interval", opts.interval),
        ("--health-timeout", opts.timeout),
        ("--health-start-period", opts.start_period),
    ] {
        if let Some(ns) = value.filter(|ns| *ns != 0 && *ns < 1_000_000) {
            return Err(ContainerError::InvalidOption {
                option,
                value: format!("{ns}ns"),
                reason: "must be at least 1ms, or 0 for the default".to_owned(),
            });
        }
    }
    let mut check = image.cloned().unwrap_or_default();
    if let Some(cmd) = &opts.cmd {
        check.test = vec!["CMD-SHELL".to_owned(), cmd.clone()];
    }
    let set = |field: &mut i64, value: Option<i64>| {
        if let Some(v) = value.filter(|v| *v != 0) {
            *field = v;
        }
    };
    set(&mut check.interval, opts.interval);
    set(&mut check.timeout, opts.timeout);
    set(&mut check.start_period, opts.start_period);
    if let Some(r) = opts.retries.filter(|r| *r != 0) {
        check.retries = i64::from(r);
    }
    Ok(match check.test.first().map(String::as_str) {
        None | Some("NONE") => None,
        Some(_) => Some(check),
    })
}

/// Docker's `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// One probe, as `inspect` shows it in `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// A running container's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<HealthProbe>,
}

impl Health {
    pub(crate) fn starting() -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Folds one probe in, as Docker does: a success makes it healthy; a failure counts
    /// unless the container is still starting within its start period.
    fn record(&mut self, probe: HealthProbe, retries: u32, in_start_period: bool) {
        if probe.exit_code == 0 {
            self.status = HealthStatus::Healthy;
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == HealthStatus::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(probe);
        let extra = self.log.len().saturating_sub(KEPT_PROBES);
        self.log.drain(..extra);
    }
}

/// What the monitor asks of a checker; passed as JSON in [`HEALTH_ENV`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthRequest {
    pub root: PathBuf,
    pub id: String,
    /// The container's init: the checker stops when the container runs another one.
    pub pid: i32,
}

impl HealthRequest {
    /// The request in this process's environment, if it is a health checker.
    pub fn from_env() -> Option<Result<Self, ContainerError>> {
        let text = std::env::var_os(HEALTH_ENV)?;
        Some(
            serde_json::from_slice(text.as_encoded_bytes()).map_err(|e| {
                ContainerError::CorruptRecord {
                    id: String::new(),
                    reason: format!("{HEALTH_ENV}: {e}"),
                }
            }),
        )
    }
}

/// Starts the checker for a container the monitor has just started; it is killed when the
/// monitor dies (parent-death signal) and by the monitor when the container ends.
pub(crate) fn spawn_checker(store: &Store, c: &Container, pid: i32) -> Option<Child> {
    c.config.healthcheck.as_ref()?;
    let request = HealthRequest {
        root: store.root().to_owned(),
        id: c.id.clone(),
        pid,
    };
    let program = std::env::current_exe().ok()?;
    let mut command = Command::new(program);
    command
        .env(HEALTH_ENV, serde_json::to_string(&request).ok()?)
        .env_remove(crate::lifecycle::MONITOR_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            Ok(())
        });
    }
    command.spawn().ok()
}

/// Ends a checker the monitor started.
pub(crate) fn stop_checker(checker: Option<Child>) {
    if let Some(mut child) = checker {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The checker's life: probe every interval while the container runs the same init.
pub fn run_health_checker(req: &HealthRequest) -> Result<(), ContainerError> {
    let store = Store::open(&req.root, &StoreOptions::default())?;
    let Some(c) = reload(&store, &req.id)? else {
        return Ok(());
    };
    let Some(check) = c.config.healthcheck.clone() else {
        return Ok(());
    };
    let nanos = |ns: i64, default: Duration| {
        u64::try_from(ns)
            .ok()
            .filter(|n| *n > 0)
            .map_or(default, Duration::from_nanos)
    };
    let interval = nanos(check.interval, DEFAULT_INTERVAL);
    let timeout = nanos(check.timeout, DEFAULT_TIMEOUT);
    let start_period = nanos(check.start_period, Duration::ZERO);
    let retries = u32::try_from(check.retries)
        .ok()
        .filter(|r| *r > 0)
        .unwrap_or(DEFAULT_RETRIES);
    let args = match check.test.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]
        }
        Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
        _ => return Ok(()),
    };
    let program = std::env::current_exe()
        .map_err(|e| ContainerError::io("finding the strata executable", "/proc/self/exe")(e))?;
    let started = Instant::now();
    loop {
        std::thread::sleep(interval);
        let Some(now) = reload(&store, &req.id)? else {
            return Ok(());
        };
        let running = now.state.status == Status::Running
            && now.state.pid == req.pid
            && monitor_alive(&now.paths().monitor_lock);
        if !running {
            return Ok(());
        }
        let probe = probe(&program, &now, &args, timeout);
        let in_start_period = started.elapsed() < start_period;
        update_state(&store, &req.id, |s| {
            if s.pid == req.pid {
                s.health.get_or_insert_with(Health::starting).record(
                    probe.clone(),
                    retries,
                    in_start_period,
                );
            }
        })?;
    }
}

/// Runs the test once in the container, with the timeout; its exit code and output.
fn probe(program: &Path, c: &Container, args: &[String], timeout: Duration) -> HealthProbe {
    let start = now_rfc3339();
    let (exit_code, output) = match run_probe(program, c, args, timeout) {
        Ok(result) => result,
        Err(message) => (-1, message),
    };
    HealthProbe {
        start,
        end: now_rfc3339(),
        exit_code,
        output,
    }
}

fn run_probe(
    program: &Path,
    c: &Container,
    args: &[String],
    timeout: Duration,
) -> Result<(i32, String), String> {
    let request = ExecRequest {
        dir: c.paths().runtime,
        id: c.id.clone(),
        spec: ExecSpec::new(args.to_vec()),
    };
    let mut command = exec_helper_command(program, &request).map_err(|e| e.to_string())?;
    // The helper is this binary too: without this it would start as another checker.
    command.env_remove(HEALTH_ENV);
    let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let writer2 = writer.try_clone().map_err(|e| e.to_string())?;
    command.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    // Our copies of the write end must go, or the reader never sees the end.
    drop(command);
    let collector = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = MAX_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let output = collector.join().unwrap_or_default();
    match status {
        Some(status) => Ok((status.code().unwrap_or(-1), output)),
        None => Err(format!(
            "Health check exceeded timeout ({})",
            humantime_secs(timeout)
        )),
    }
}

/// `30s`, `1.5s`: how Docker's message names the timeout.
fn humantime_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> HealthProbe {
        HealthProbe {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn flags_change_the_image_check_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 5_000_000_000,
            retries: 2,
            ..HealthConfig::default()
        };
        let opts = HealthOptions {
            timeout: Some(1_000_000_000),
            ..HealthOptions::default()
        };
        let got = effective_healthcheck(Some(&image), &opts).unwrap().unwrap();
        assert_eq!(got.test, ["CMD", "true"]);
        assert_eq!(
            (got.interval, got.timeout, got.retries),
            (5_000_000_000, 1_000_000_000, 2)
        );
        let opts = HealthOptions {
            cmd: Some("curl -f localhost".into()),
            ..HealthOptions::default()
        };
        let got = effective_healthcheck(None, &opts).unwrap().unwrap();
        assert_eq!(got.test, ["CMD-SHELL", "curl -f localhost"]);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        assert_eq!(
            effective_healthcheck(Some(&none), &HealthOptions::default()).unwrap(),
            None
        );
        let off = HealthOptions {
            disabled: true,
            ..HealthOptions::default()
        };
        assert_eq!(effective_healthcheck(Some(&image), &off).unwrap(), None);
        let both = HealthOptions {
            disabled: true,
            cmd: Some("true".into()),
            ..HealthOptions::default()
        };
        assert!(effective_healthcheck(None, &both).is_err());
        let tiny = HealthOptions {
            interval: Some(10),
            ..HealthOptions::default()
        };
        assert!(effective_healthcheck(Some(&image), &tiny).is_err());
    }

    #[test]
    fn status_follows_docker_rules() {
        let mut h = Health::starting();
        // Failures in the start period do not count while starting.
        h.record(probe(1), 2, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(probe(0), 2, true);
        assert_eq!(h.status, HealthStatus::Healthy);
        h.record(probe(1), 2, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        h.record(probe(7), 2, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        for _ in 0..10 {
            h.record(probe(0), 2, false);
        }
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        assert_eq!(h.log.len(), KEPT_PROBES);
    }
}
