//! Finding containers and changing their lives from any strata process: list, look up, start
//! (spawn a monitor), stop, kill, wait, remove, prune.
//!
//! The truth is the store's record plus one liveness test: a container's monitor holds an
//! exclusive `flock` on `monitor.lock` for as long as it lives, so a record that says
//! "running" while that lock is free belongs to a monitor that died — reported as
//! [`Status::Dead`], never as running.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};
use strata_exit::ExitStatus;
use strata_store::Store;

use crate::error::ContainerError;
use crate::orphan::{
    finish_orphan, orphan_alive, remove_cgroups, signal_orphan, wait_orphan_gone, UNKNOWN_EXIT,
};
use crate::record::{to_json, Container, ContainerPaths, ContainerState, MountSpec, Status};
use crate::volume::{remove_tree, volume_path};

/// Environment variable that turns a strata process into a container's monitor.
pub const MONITOR_ENV: &str = "STRATA_CONTAINER_MONITOR";

/// What the monitor is asked to do; passed as JSON in [`MONITOR_ENV`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorRequest {
    pub root: PathBuf,
    pub id: String,
    pub attach: bool,
}

impl MonitorRequest {
    pub(crate) fn to_env(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The request in this process's environment, if it is a monitor.
    pub fn from_env() -> Option<Result<Self, ContainerError>> {
        let text = std::env::var_os(MONITOR_ENV)?;
        Some(
            serde_json::from_slice(text.as_encoded_bytes()).map_err(|e| {
                ContainerError::CorruptRecord {
                    id: String::new(),
                    reason: format!("{MONITOR_ENV}: {e}"),
                }
            }),
        )
    }
}

/// How long `start` waits for a monitor to report the container running (or failed).
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// Every container, newest first, with [`Status::Dead`] for those whose monitor died.
pub fn list(store: &Store) -> Result<Vec<Container>, ContainerError> {
    store
        .containers()?
        .into_iter()
        .map(|row| Container::from_row(store, row).map(refresh))
        .collect()
}

/// The container a user named: full id, unique id prefix, or name (Docker's order: exact id,
/// exact name, then prefix).
pub fn lookup(store: &Store, name_or_id: &str) -> Result<Container, ContainerError> {
    let wanted = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
    if wanted.is_empty() {
        return Err(ContainerError::NotFound(name_or_id.to_owned()));
    }
    let rows = store.containers()?;
    let pick = rows
        .iter()
        .position(|r| r.id == wanted)
        .or_else(|| rows.iter().position(|r| r.name == wanted));
    let index = match pick {
        Some(i) => i,
        None => {
            let matches: Vec<usize> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.id.starts_with(wanted))
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [i] => *i,
                [] => return Err(ContainerError::NotFound(name_or_id.to_owned())),
                _ => {
                    return Err(ContainerError::Ambiguous {
                        prefix: wanted.to_owned(),
                        count: matches.len(),
                    })
                }
            }
        }
    };
    let row = rows
        .into_iter()
        .nth(index)
        .ok_or_else(|| ContainerError::NotFound(name_or_id.to_owned()))?;
    Container::from_row(store, row).map(refresh)
}

/// Re-reads one container by exact id (None once removed).
pub fn reload(store: &Store, id: &str) -> Result<Option<Container>, ContainerError> {
    store
        .container(id)?
        .map(|row| Container::from_row(store, row).map(refresh))
        .transpose()
}

/// Applies the liveness test to what the record says: a running record whose monitor died is
/// [`Status::Dead`] while its init still runs unobserved, and exited (code unknown) once it
/// does not.
fn refresh(mut c: Container) -> Container {
    if matches!(c.state.status, Status::Running | Status::Restarting)
        && !monitor_alive(&c.paths().monitor_lock)
    {
        if orphan_alive(&c) {
            c.state.status = Status::Dead;
            if c.state.error.is_empty() {
                c.state.error = ContainerError::OrphanRunning(c.name.clone()).to_string();
            }
        } else {
            c.state.status = Status::Exited;
            c.state.exit_code = UNKNOWN_EXIT;
            if c.state.error.is_empty() {
                c.state.error = "its monitor died; the container has ended, how is unknown".into();
            }
        }
    }
    c
}

/// Whether a monitor holds `lock`.
pub fn monitor_alive(lock: &Path) -> bool {
    let Ok(file) = File::open(lock) else {
        return false;
    };
    match flock(file.as_fd(), FlockOperation::NonBlockingLockShared) {
        Ok(()) => false,
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        // Cannot tell: do not claim it died.
        Err(_) => true,
    }
}

/// Changes the recorded state of container `id` in one transaction.
pub(crate) fn update_state(
    store: &Store,
    id: &str,
    mut change: impl FnMut(&mut ContainerState),
) -> Result<Option<ContainerState>, ContainerError> {
    let updated = store.update_container_state(id, |json| {
        let mut state: ContainerState =
            serde_json::from_str(json).map_err(|e| ContainerError::CorruptRecord {
                id: id.to_owned(),
                reason: format!("state: {e}"),
            })?;
        change(&mut state);
        to_json(id, &state)
    })?;
    updated
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| ContainerError::CorruptRecord {
                id: id.to_owned(),
                reason: format!("state: {e}"),
            })
        })
        .transpose()
}

/// The command that runs `program` as container `id`'s monitor. A foreground `run` execs it
/// (`attach`: the container's streams are this terminal's); [`start`] spawns it detached.
pub fn monitor_command(program: &Path, store: &Store, id: &str, attach: bool) -> Command {
    let request = MonitorRequest {
        root: store.root().to_owned(),
        id: id.to_owned(),
        attach,
    };
    let mut command = Command::new(program);
    command.env(MONITOR_ENV, request.to_env());
    command
}

/// Starts a created or stopped container in the background: spawns its monitor (which
/// outlives this process) and returns once the container runs — or with the reason it could
/// not start. Starting a running container does nothing, as in Docker.
pub fn start(store: &Store, container: &Container, program: &Path) -> Result<(), ContainerError> {
    let paths = container.paths();
    if monitor_alive(&paths.monitor_lock) {
        return Ok(());
    }
    if container.state.status == Status::Dead {
        return Err(ContainerError::OrphanRunning(container.name.clone()));
    }
    update_state(store, &container.id, |s| {
        s.stop_requested = false;
        s.error.clear();
    })?;
    let monitor_log = paths.monitor_log.clone();
    let stderr = File::options()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&monitor_log)
        .map_err(ContainerError::io("opening", &monitor_log))?;
    let mut command = monitor_command(program, store, &container.id, false);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe; the monitor leaves our session so a terminal
    // hang-up or Ctrl-C here never reaches it.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|source| ContainerError::MonitorSpawn {
            id: container.id.clone(),
            source,
        })?;
    // The monitor closes its stdout once the container runs or failed to start.
    let mut ready = child.stdout.take();
    let deadline = Instant::now() + START_TIMEOUT;
    if let Some(pipe) = ready.as_mut() {
        let mut sink = Vec::new();
        let _ = pipe.take(1 << 16).read_to_end(&mut sink);
    }
    // Reap it if it already ended (a start failure); otherwise it runs on without us.
    let _ = child.try_wait();
    loop {
        let Some(now) = reload(store, &container.id)? else {
            // An --rm container that already ran and was removed.
            return Ok(());
        };
        match now.state.status {
            Status::Running | Status::Restarting => return Ok(()),
            Status::Exited if now.state.error.is_empty() => return Ok(()),
            Status::Exited | Status::Dead => {
                return Err(ContainerError::StartFailed {
                    id: container.id.clone(),
                    message: now.state.error.clone(),
                    status: ExitStatus::of_failed_start(now.state.exit_code),
                })
            }
            Status::Created => {
                if !monitor_alive(&paths.monitor_lock) && child.try_wait().ok().flatten().is_some()
                {
                    return Err(ContainerError::StartFailed {
                        id: container.id.clone(),
                        message: format!(
                            "its monitor exited before starting it (see {})",
                            monitor_log.display()
                        ),
                        status: ExitStatus::StrataFailed,
                    });
                }
            }
        }
        if Instant::now() > deadline {
            return Err(ContainerError::MonitorTimeout(container.id.clone()));
        }
        std::thread::sleep(POLL);
    }
}

/// Parses a signal as Docker accepts it: `SIGTERM`, `TERM`, `term`, `15`.
pub fn parse_signal(text: &str) -> Result<i32, ContainerError> {
    let bad = || ContainerError::InvalidSignal(text.to_owned());
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let table = [
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("IOT", libc::SIGIOT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("STKFLT", libc::SIGSTKFLT),
        ("CHLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("PWR", libc::SIGPWR),
        ("SYS", libc::SIGSYS),
    ];
    if let Some(rt) = name.strip_prefix("RTMIN") {
        let offset: i32 = match rt.strip_prefix('+') {
            Some(n) => n.parse().map_err(|_| bad())?,
            None if rt.is_empty() => 0,
            None => return Err(bad()),
        };
        return Ok(libc::SIGRTMIN() + offset);
    }
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(bad)
}

/// Sends `signal` to the container's init if it is running.
fn signal_init(c: &Container, signal: i32) -> Result<(), ContainerError> {
    if c.state.status != Status::Running || c.state.pid <= 0 {
        return Err(ContainerError::NotRunning(c.name.clone()));
    }
    // SAFETY: kill(2) with a pid the live monitor has not reaped yet.
    let rc = unsafe { libc::kill(c.state.pid, signal) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        // Exited in between: the monitor is recording it.
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(ContainerError::io(
                "signalling",
                format!("pid {}", c.state.pid),
            )(err));
        }
    }
    Ok(())
}

/// `kill -s SIGNAL`: no restart follows (Docker treats it as a manual stop). A container
/// whose monitor died is signalled through its verified pid; if that ends it, it is recorded
/// as exited.
pub fn kill(store: &Store, c: &Container, signal: i32) -> Result<(), ContainerError> {
    if c.state.status == Status::Dead {
        if !signal_orphan(c, signal) {
            return Err(ContainerError::NotRunning(c.name.clone()));
        }
        if wait_orphan_gone(c, Duration::from_secs(1)) {
            finish_orphan(store, c, 128 + signal)?;
        }
        return Ok(());
    }
    if c.state.status != Status::Running {
        return Err(ContainerError::NotRunning(c.name.clone()));
    }
    update_state(store, &c.id, |s| s.stop_requested = true)?;
    signal_init(c, signal)
}

/// `stop -t`: the stop signal (STOPSIGNAL or SIGTERM), then SIGKILL after `timeout` seconds
/// (default: the container's stop timeout, else 10). Returns once the monitor is done, so
/// the container's mounts are gone. Stopping a stopped container does nothing.
pub fn stop(store: &Store, c: &Container, timeout: Option<i64>) -> Result<(), ContainerError> {
    let paths = c.paths();
    update_state(store, &c.id, |s| s.stop_requested = true)?;
    let signal = if c.config.stop_signal.is_empty() {
        libc::SIGTERM
    } else {
        parse_signal(&c.config.stop_signal)?
    };
    let secs = timeout.or(c.config.stop_timeout).unwrap_or(10).max(0) as u64;
    if c.state.status == Status::Dead {
        // No monitor will see it end: signal the verified pid, then record it.
        let mut last = signal;
        signal_orphan(c, signal);
        if !wait_orphan_gone(c, Duration::from_secs(secs)) {
            last = libc::SIGKILL;
            signal_orphan(c, libc::SIGKILL);
            wait_orphan_gone(c, Duration::from_secs(30));
        }
        return finish_orphan(store, c, 128 + last);
    }
    if c.state.status == Status::Running {
        let _ = signal_init(c, signal);
        if wait_monitor_gone(&paths, Duration::from_secs(secs)) {
            return Ok(());
        }
        if let Some(now) = reload(store, &c.id)? {
            let _ = signal_init(&now, libc::SIGKILL);
        }
    }
    wait_monitor_gone(&paths, Duration::from_secs(30));
    Ok(())
}

fn wait_monitor_gone(paths: &ContainerPaths, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !monitor_alive(&paths.monitor_lock) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// `wait`: blocks until the container stops; its exit code.
pub fn wait(store: &Store, c: &Container) -> Result<i32, ContainerError> {
    let mut last = c.state.exit_code;
    loop {
        let Some(now) = reload(store, &c.id)? else {
            return Ok(last);
        };
        last = now.state.exit_code;
        let busy = matches!(now.state.status, Status::Running | Status::Restarting)
            || monitor_alive(&now.paths().monitor_lock);
        if !busy {
            return Ok(now.state.exit_code);
        }
        std::thread::sleep(POLL);
    }
}

/// `rm [-f] [-v]`: deletes the container's writable layer and record (and with `volumes`
/// its anonymous volumes). A running container needs `force` (killed first).
pub fn remove(
    store: &Store,
    c: &Container,
    force: bool,
    volumes: bool,
) -> Result<(), ContainerError> {
    let paths = c.paths();
    let live = monitor_alive(&paths.monitor_lock);
    if live || c.state.status == Status::Dead {
        if !force {
            return Err(ContainerError::RemoveRunning(c.name.clone()));
        }
        update_state(store, &c.id, |s| s.stop_requested = true)?;
        if signal_orphan(c, libc::SIGKILL) {
            wait_orphan_gone(c, Duration::from_secs(30));
        }
        wait_monitor_gone(&paths, Duration::from_secs(30));
    }
    purge(store, c, volumes)
}

/// Deletes a container that nothing runs any more: its directory, cgroups, record and (with
/// `volumes`) anonymous volumes.
pub(crate) fn purge(store: &Store, c: &Container, volumes: bool) -> Result<(), ContainerError> {
    remove_cgroups(&c.id);
    // Renamed aside first, so a crash midway never leaves a half container under its id.
    remove_tree(&c.dir)?;
    store.delete_container(&c.id)?;
    if volumes {
        for mount in &c.config.mounts {
            if let MountSpec::Volume {
                name,
                anonymous: true,
                ..
            } = mount
            {
                if let Some(dir) = volume_path(store, name).parent() {
                    remove_tree(dir)?;
                }
            }
        }
    }
    Ok(())
}

/// `container prune`: removes every stopped container; returns the removed ids with the
/// bytes each freed (its writable layer and logs).
pub fn prune(store: &Store) -> Result<Vec<(String, u64)>, ContainerError> {
    let mut removed = Vec::new();
    for c in list(store)? {
        let stopped = matches!(c.state.status, Status::Created | Status::Exited)
            && !monitor_alive(&c.paths().monitor_lock);
        if stopped {
            let bytes = strata_store::tree_size(&c.dir);
            remove(store, &c, false, false)?;
            removed.push((c.id, bytes));
        }
    }
    Ok(removed)
}

/// Replaces this process with `command` (a foreground run becoming its container's monitor).
pub fn exec_monitor(mut command: Command) -> ContainerError {
    let err = command.exec();
    ContainerError::MonitorSpawn {
        id: String::new(),
        source: err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        for (text, n) in [
            ("SIGTERM", libc::SIGTERM),
            ("TERM", libc::SIGTERM),
            ("term", libc::SIGTERM),
            ("9", 9),
            ("KILL", libc::SIGKILL),
            ("SIGUSR1", libc::SIGUSR1),
            ("RTMIN+2", libc::SIGRTMIN() + 2),
        ] {
            assert_eq!(parse_signal(text).unwrap(), n, "{text}");
        }
        for bad in ["", "SIGFOO", "0", "65", "-1", "RTMIN+x"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_lock_nobody_holds_means_no_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("monitor.lock");
        assert!(!monitor_alive(&lock), "missing file");
        let held = File::create(&lock).unwrap();
        assert!(!monitor_alive(&lock), "unlocked file");
        flock(held.as_fd(), FlockOperation::NonBlockingLockExclusive).unwrap();
        assert!(monitor_alive(&lock), "locked by a live holder");
        drop(held);
        assert!(!monitor_alive(&lock), "released when the holder goes");
    }
}
