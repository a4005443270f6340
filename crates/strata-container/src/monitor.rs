//! The per-container monitor (Podman's conmon, in-process): one single-threaded strata process
//! per running container. It mounts the container's root filesystem in a private mount
//! namespace, runs the container through strata-runtime, writes its log, records its pid and
//! exit code in the store, restarts it per `--restart`, and removes it after a `--rm` run.
//!
//! Detached (`run -d`, `start`), it was spawned in its own session with stdout a pipe to the
//! starting command, which it closes once the container runs (or failed to): that is how
//! `start` knows when to return. Attached (a foreground `run`), the CLI *became* the monitor
//! by exec, so the user's terminal is its stdio, signals reach it directly and its exit code
//! is the container's.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use strata_exit::ExitStatus;
use strata_runtime::{
    resolve_user, run_observed, BindMount, ContainerSpec, EtcFiles, InputMode, Limits,
    ObserverError, OutputMode, OutputStream, RunObserver,
};
use strata_store::{Store, StoreOptions};

use crate::error::ContainerError;
use crate::health::{spawn_checker, stop_checker, Health};
use crate::init::{init_args, init_mount, installed_init};
use crate::lifecycle::{purge, reload, update_state, MonitorRequest, MONITOR_ENV};
use crate::log::{LogPause, LogStream, LogWriter};
use crate::network::runtime_network;
use crate::record::{now_rfc3339, Container, MountSpec, Status};
use crate::rootfs::mkdir_in_root;
use crate::volume::volume_path;

/// Runs the monitor to the end; returns the exit code the process should exit with (the
/// container's last exit code, or 125 when strata itself failed).
pub fn run_monitor(req: &MonitorRequest) -> Result<i32, ContainerError> {
    // Children must not inherit it: a restarted monitor is a new request.
    std::env::remove_var(MONITOR_ENV);
    let store = Store::open(&req.root, &StoreOptions::default())?;
    let Some(container) = reload(&store, &req.id)? else {
        return Err(ContainerError::NotFound(req.id.clone()));
    };
    let paths = container.paths();
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.monitor_lock)
        .map_err(ContainerError::io("opening", &paths.monitor_lock))?;
    if flock(lock.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
        return Err(ContainerError::AlreadyRunning(container.name.clone()));
    }
    // A monitor before us may have died (SIGKILL): clean what it left, or refuse (changing
    // nothing) when the container it ran still runs.
    if let Err(e) = crate::orphan::recover_from_dead_monitor(&store, &container) {
        signal_ready(req.attach);
        return Err(e);
    }
    let result = monitor_locked(&store, &container, req.attach);
    let code = match &result {
        Ok(code) => *code,
        Err(e) => {
            // Recorded so `start`/`ps`/`inspect` can say why.
            let message = strata_exit::ErrorChain(e).to_string();
            let _ = update_state(&store, &container.id, |s| {
                s.status = Status::Exited;
                s.error = message.clone();
                s.exit_code = 125;
                s.pid = 0;
                s.finished_at = now_rfc3339();
            });
            125
        }
    };
    let _ = update_state(&store, &container.id, |s| s.monitor_pid = 0);
    signal_ready(req.attach);
    if container.config.auto_remove {
        // Anonymous volumes go with an --rm container, as in Docker. Why it failed to run
        // matters more than a failed clean-up.
        let purged = purge(&store, &container, true);
        if result.is_ok() {
            purged?;
        }
    }
    drop(lock);
    result.map(|_| code)
}

fn monitor_locked(store: &Store, c: &Container, attach: bool) -> Result<i32, ContainerError> {
    let paths = c.paths();
    let rootfs = mount_rootfs(store, c)?;
    let result = run_loop(store, c, &rootfs, attach);
    if rootfs != paths.upper {
        // Also on errors: an --rm container's directory is removed next.
        let _ = strata_store::unmount(&rootfs);
    }
    result
}

/// Runs the container, again and again as its restart policy says; the last exit code.
fn run_loop(
    store: &Store,
    c: &Container,
    rootfs: &Path,
    attach: bool,
) -> Result<i32, ContainerError> {
    let paths = c.paths();
    update_state(store, &c.id, |s| {
        s.monitor_pid = std::process::id() as i32;
    })?;
    let mut log = LogWriter::open(&paths.log, c.config.log)?;
    let mut code;
    loop {
        let spec = container_spec(store, c, rootfs, attach)?;
        let begun = Instant::now();
        let mut observer = MonitorObserver {
            store,
            id: &c.id,
            container: c,
            log: &mut log,
            monitor_log: &paths.monitor_log,
            attach,
            checker: None,
            error: None,
            broken: [false; 2],
        };
        let outcome = run_observed(&spec, &mut observer);
        stop_checker(observer.checker.take());
        let record_error = observer.error.take();
        if let Ok(Some(pause)) = log.flush_partial() {
            note_log_pause(&paths.monitor_log, &pause);
        }
        let (status_code, error) = match outcome {
            Ok(status) => (status.code(), String::new()),
            Err(e) => (
                i32::from(e.exit_status().code()),
                strata_exit::ErrorChain(&e).to_string(),
            ),
        };
        code = status_code;
        let failed_to_start = !error.is_empty();
        let state = update_state(store, &c.id, |s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.pid_start_time = 0;
            s.exit_code = status_code;
            s.finished_at = now_rfc3339();
            s.error = error.clone();
        })?;
        if let Some(e) = record_error {
            return Err(e);
        }
        if failed_to_start && attach {
            return Err(ContainerError::StartFailed {
                id: c.id.clone(),
                message: error,
                status: ExitStatus::of_failed_start(status_code),
            });
        }
        let Some(state) = state else { break };
        if failed_to_start
            || state.stop_requested
            || !c.config.restart.restarts_after(code, state.restart_count)
        {
            break;
        }
        update_state(store, &c.id, |s| {
            s.status = Status::Restarting;
            s.restart_count += 1;
        })?;
        // Docker's back-off: doubling from 100 ms, reset after a run of 10 s or more.
        let n = if begun.elapsed() >= Duration::from_secs(10) {
            0
        } else {
            state.restart_count.min(10)
        };
        std::thread::sleep(Duration::from_millis(100u64 << n).min(Duration::from_secs(60)));
        if reload(store, &c.id)?.is_none_or(|now| now.state.stop_requested) {
            break;
        }
    }
    Ok(code)
}

/// Mounts the image's snapshot chain under the container's upper dir at `rootfs`, in a mount
/// namespace of our own: the mount vanishes with this process, whatever kills it.
fn mount_rootfs(store: &Store, c: &Container) -> Result<PathBuf, ContainerError> {
    let paths = c.paths();
    let Some(chain) = &c.config.chain_id else {
        // An image without layers: the writable layer is the whole root.
        return Ok(paths.upper);
    };
    strata_store::enter_private_mount_namespace()?;
    let writable = paths.writable_layer(c.config.auto_remove);
    store
        .snapshotter()
        .mount(chain, &paths.rootfs, Some(&writable))?;
    Ok(paths.rootfs)
}

/// The runtime's description of this container's process.
fn container_spec(
    store: &Store,
    c: &Container,
    rootfs: &Path,
    attach: bool,
) -> Result<ContainerSpec, ContainerError> {
    let cfg = &c.config;
    let args = if cfg.init {
        init_args(cfg.process_args())
    } else {
        cfg.process_args()
    };
    let mut spec = ContainerSpec::new(c.id.clone(), rootfs, c.paths().runtime, args);
    let mut env = cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(0, format!("HOSTNAME={}", cfg.hostname));
    }
    spec.process.env = env;
    spec.process.cwd = if cfg.working_dir.is_empty() {
        "/".to_owned()
    } else {
        cfg.working_dir.clone()
    };
    // Docker creates a missing working directory (resolved inside the root). Not under
    // /proc or /sys: the kernel's files hide the rootfs there, so it could only leave junk in
    // the layer; the runtime refuses a cwd that leads out of the container.
    if !under_kernel_filesystem(&spec.process.cwd) {
        mkdir_in_root(rootfs, &spec.process.cwd)?;
    }
    let user = if cfg.user.is_empty() { "0" } else { &cfg.user };
    let resolved = resolve_user(rootfs, user)?;
    spec.process.apply_user(&resolved);
    spec.process
        .user
        .additional_gids
        .extend(cfg.security.added_groups(rootfs)?);
    spec.security = cfg.security.runtime_security()?;
    spec.process.terminal = cfg.tty;
    spec.hostname = cfg.hostname.clone();
    let network = runtime_network(cfg.network);
    spec.network = network;
    spec.etc_files = EtcFiles::docker_defaults_for(network, &cfg.hostname)?;
    crate::network::apply_ports(&mut spec, store, c)?;
    spec.readonly_rootfs = cfg.read_only;
    spec.mounts = cfg
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind {
                source,
                destination,
                readonly,
            } => BindMount {
                source: source.clone(),
                destination: destination.clone(),
                readonly: *readonly,
            },
            MountSpec::Volume {
                name,
                destination,
                readonly,
                ..
            } => BindMount {
                source: volume_path(store, name),
                destination: destination.clone(),
                readonly: *readonly,
            },
        })
        .collect();
    if cfg.init {
        spec.mounts.push(init_mount(installed_init(store.root())?));
    }
    spec.limits = Limits {
        memory_bytes: cfg.limits.memory_bytes,
        memory_swap_bytes: cfg.limits.memory_swap,
        pids: cfg.limits.pids,
        nano_cpus: cfg.limits.nano_cpus,
    };
    spec.stdio.stdin = if attach && cfg.interactive {
        InputMode::Inherit
    } else {
        InputMode::Null
    };
    spec.stdio.stdout = OutputMode::Capture;
    spec.stdio.stderr = OutputMode::Capture;
    Ok(spec)
}

/// Whether `path` (absolute) lies in the container's /proc or /sys.
fn under_kernel_filesystem(path: &str) -> bool {
    let first = Path::new(path).components().find_map(|c| match c {
        std::path::Component::Normal(name) => Some(name),
        _ => None,
    });
    first.is_some_and(|name| name == "proc" || name == "sys")
}

/// Records the run as it happens and copies output to the log (and the terminal when attached).
struct MonitorObserver<'a> {
    store: &'a Store,
    id: &'a str,
    container: &'a Container,
    log: &'a mut LogWriter,
    monitor_log: &'a Path,
    attach: bool,
    /// The health checker while the container runs.
    checker: Option<std::process::Child>,
    /// A failure to record state or write the log: reported after the run.
    error: Option<ContainerError>,
    /// The attached terminal's stream turned out closed (`strata run img yes | head -1`).
    broken: [bool; 2],
}

impl RunObserver for MonitorObserver<'_> {
    fn created(&mut self, pid: i32) -> Result<(), ObserverError> {
        let start_time = crate::orphan::process_start_time(pid).unwrap_or(0);
        update_state(self.store, self.id, |s| {
            s.pid = pid;
            s.pid_start_time = start_time;
        })?;
        Ok(())
    }

    fn started(&mut self, pid: i32) {
        let checked = self.container.config.healthcheck.is_some();
        let recorded = update_state(self.store, self.id, |s| {
            s.status = Status::Running;
            s.pid = pid;
            s.started_at = now_rfc3339();
            s.finished_at.clear();
            s.exit_code = 0;
            s.error.clear();
            s.health = checked.then(Health::starting);
        });
        if let Err(e) = recorded {
            self.error.get_or_insert(e);
        }
        self.checker = spawn_checker(self.store, self.container, pid);
        signal_ready(self.attach);
    }

    fn output(&mut self, stream: OutputStream, bytes: &[u8]) {
        let stream = match stream {
            OutputStream::Stdout => LogStream::Stdout,
            OutputStream::Stderr => LogStream::Stderr,
        };
        match self.log.write(stream, bytes) {
            Ok(Some(pause)) => note_log_pause(self.monitor_log, &pause),
            Ok(None) => {}
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        if self.attach {
            use std::io::Write;
            let written = match stream {
                LogStream::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(bytes).and_then(|()| out.flush())
                }
                LogStream::Stderr => {
                    let mut err = std::io::stderr().lock();
                    err.write_all(bytes).and_then(|()| err.flush())
                }
            };
            // A closed pipe downstream closes the container's stream too, as if it wrote to
            // it directly (the pipeline ends, `yes` dies of SIGPIPE). Other failures of the
            // user's terminal do not stop the container.
            if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
                self.broken[usize::from(stream == LogStream::Stderr)] = true;
            }
        }
    }

    fn wants(&self, stream: OutputStream) -> bool {
        let index = match stream {
            OutputStream::Stdout => 0,
            OutputStream::Stderr => 1,
        };
        !self.broken[index]
    }
}

/// A full disk paused the container's log, or writing works again: said in `monitor.log`
/// (best effort: the disk may still be full), and in the log itself once it is back.
fn note_log_pause(monitor_log: &Path, pause: &LogPause) {
    use std::io::Write;
    let line = match pause {
        LogPause::Started => format!(
            "{} container log paused: no space left on device; output is dropped until space is free\n",
            now_rfc3339()
        ),
        LogPause::Ended { dropped } => format!(
            "{} container log resumed: {dropped} bytes of output were dropped while the disk was full\n",
            now_rfc3339()
        ),
    };
    if let Ok(mut f) = std::fs::File::options()
        .create(true)
        .append(true)
        .open(monitor_log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Tells a waiting `start` that the container runs (or will not): closes our stdout pipe by
/// pointing fd 1 at /dev/null. Attached monitors keep their terminal.
fn signal_ready(attach: bool) {
    if attach {
        return;
    }
    if let Ok(null) = std::fs::File::options().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto fd 1, which this process owns; `null` stays valid for the call.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}
