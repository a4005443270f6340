//! Runs one container to completion: create, start, wait, delete — through libcontainer.

use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use rustix::process::{Pid, WaitOptions};

use crate::bundle::write_bundle;
use crate::error::RuntimeError;
use crate::executor::ContainerExecutor;
use crate::loopback::bring_up_loopback;
use crate::mount_stubs::{MountStubs, MountTarget};
use crate::observer::{RunObserver, StdioRouter};
use crate::oci::{oci_spec, HostFacts};
use crate::pasta::start_network;
use crate::spec::{ContainerSpec, InputMode, Network, OutputMode};
use crate::stdio::{container_stdio, stdout_is_stderr, ContainerEnds, Route};
use crate::supervise::{supervise, wait_for, SignalGuard, Streams, Until};
use crate::terminal::{ConsoleSocket, PtyProxy};

/// How the container's init process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// Normal exit with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl Termination {
    /// The shell-style code Docker reports: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled(signal) => 128 + signal,
        }
    }

    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }
}

/// Result of [`run`]: the exit status and whatever was captured ([`OutputMode::Capture`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub status: Termination,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Creates, starts, waits for and deletes the container described by `spec`.
///
/// Must be called from a single-threaded process (libcontainer clones with raw `clone3`, runs
/// Rust in the child and `chdir`s the process): strata re-executes itself as a helper for this
/// (see [`crate::helper_command`]). Returns [`RuntimeError::NotSingleThreaded`] otherwise.
/// The container's cgroup and libcontainer state are removed before returning, also on error,
/// and so are the mount points it had to create in the rootfs (see `mount_stubs`).
/// Under a terminal (`spec.process.terminal`) the pty's output is routed by `stdio.stdout`.
pub fn run(spec: &ContainerSpec) -> Result<RunOutput, RuntimeError> {
    run_watching_parent(spec, None)
}

/// [`run`], killing the container if `parent` stops being this process's parent (it died).
pub(crate) fn run_watching_parent(
    spec: &ContainerSpec,
    parent: Option<Pid>,
) -> Result<RunOutput, RuntimeError> {
    let mut router = StdioRouter::new(&spec.stdio);
    let modes = [spec.stdio.stdout, spec.stdio.stderr];
    // Inherited streams are piped too and copied to ours by the router.
    let routes = modes.map(|mode| match mode {
        OutputMode::Null => Route::Null,
        OutputMode::Inherit | OutputMode::Capture => Route::Pipe,
    });
    let merged = modes == [OutputMode::Inherit; 2] && stdout_is_stderr();
    let status = run_container(spec, parent, routes, merged, &mut router)?;
    let [stdout, stderr] = router.collected;
    Ok(RunOutput {
        status,
        stdout,
        stderr,
    })
}

/// Runs the container like [`run`], reporting to `observer` as it goes: `created` before
/// the user process starts (an error there aborts and cleans up), `started`, then every
/// chunk of output as it arrives (stdout and stderr through pipes whatever `spec.stdio`
/// says, or the pty under a terminal). Stdin follows `spec.stdio.stdin`; under a terminal
/// with [`InputMode::Inherit`](crate::InputMode::Inherit) our stdin is copied into the pty
/// (raw mode while it runs when it is a terminal). The container outlives nobody: it is not
/// tied to this process's parent (see [`run_observed_watching_parent`]).
pub fn run_observed(
    spec: &ContainerSpec,
    observer: &mut dyn RunObserver,
) -> Result<Termination, RuntimeError> {
    run_container(spec, None, [Route::Pipe, Route::Pipe], false, observer)
}

/// [`run_observed`], killing the container when `parent` stops being this process's parent:
/// for a run that must not outlive the process that asked for it.
pub fn run_observed_watching_parent(
    spec: &ContainerSpec,
    parent: i32,
    observer: &mut dyn RunObserver,
) -> Result<Termination, RuntimeError> {
    let parent = Pid::from_raw(parent).ok_or_else(|| RuntimeError::InvalidSpec {
        id: spec.id.clone(),
        reason: format!("parent pid {parent} is not a process id"),
    })?;
    run_container(
        spec,
        Some(parent),
        [Route::Pipe, Route::Pipe],
        false,
        observer,
    )
}

/// The one path every run takes: bundle, mount stubs, create → observe → start → supervise →
/// delete, stubs removed.
fn run_container(
    spec: &ContainerSpec,
    parent: Option<Pid>,
    routes: [Route; 2],
    merged: bool,
    observer: &mut dyn RunObserver,
) -> Result<Termination, RuntimeError> {
    ensure_single_threaded()?;
    let host = HostFacts::probe(spec)?;
    let oci = oci_spec(spec, &host)?;
    write_bundle(spec, &oci)?;
    prepare_runtime_process();
    let stubs = MountStubs::find(&spec.rootfs, &mount_targets(&oci)).map_err(|source| {
        RuntimeError::MountStubs {
            rootfs: spec.rootfs.clone(),
            source,
        }
    })?;
    let result = run_created_bundle(spec, parent, routes, merged, observer);
    // The container is gone (deleted, or killed on an error path): nothing recreates the stubs.
    let removed = stubs.remove().map_err(|source| RuntimeError::MountStubs {
        rootfs: spec.rootfs.clone(),
        source,
    });
    let status = result?;
    removed?;
    Ok(status)
}

/// Mount destinations of `oci`, and whether each bind source is a file (bind targets mirror it).
fn mount_targets(oci: &oci_spec::runtime::Spec) -> Vec<MountTarget> {
    oci.mounts()
        .iter()
        .flatten()
        .map(|m| MountTarget {
            destination: m.destination().clone(),
            is_file: m.typ().as_deref() == Some("bind")
                && m.source().as_ref().is_some_and(|s| s.is_file()),
        })
        .collect()
}

/// Name of the console socket in the per-container directory.
const CONSOLE_SOCKET: &str = "console.sock";

/// create → start → wait → delete of a container whose bundle is written.
fn run_created_bundle(
    spec: &ContainerSpec,
    parent: Option<Pid>,
    routes: [Route; 2],
    merged: bool,
    observer: &mut dyn RunObserver,
) -> Result<Termination, RuntimeError> {
    let stdio_err = |source| RuntimeError::Stdio {
        id: spec.id.clone(),
        source,
    };
    let terminal_err = |source| RuntimeError::Terminal {
        id: spec.id.clone(),
        source,
    };
    let mut builder = ContainerBuilder::new(spec.id.clone(), SyscallType::default())
        .with_root_path(spec.state_root())
        .map_err(|source| RuntimeError::Create {
            id: spec.id.clone(),
            source: Box::new(source),
        })?
        .with_executor(ContainerExecutor::default());
    let console = if spec.process.terminal {
        let console = ConsoleSocket::bind(&spec.dir, CONSOLE_SOCKET).map_err(terminal_err)?;
        builder = builder.with_console_socket(Some(console.path()));
        Some(console)
    } else {
        None
    };
    let (ends, ours) = container_stdio(spec.stdio.stdin, routes, merged, spec.process.terminal)
        .map_err(stdio_err)?;
    builder = with_container_ends(builder, ends);

    let created = builder
        .as_init(&spec.dir)
        .with_systemd(false)
        .with_detach(true)
        .build();
    // The builder has dropped its copies of the pipes' write ends, so the readers see EOF
    // once every process in the container is gone.
    let container = match created {
        Ok(container) => container,
        Err(source) => {
            remove_failed_container(&spec.state_root(), &spec.id);
            return Err(RuntimeError::Create {
                id: spec.id.clone(),
                source: Box::new(source),
            });
        }
    };
    let mut running = RunningContainer::new(container, &spec.id)?;
    let pid = running.pid;
    // The init sent the master while it was being created; the socket is no longer needed.
    let pty = match console {
        Some(console) => {
            let master = console.receive_master().map_err(terminal_err)?;
            let forward_stdin = spec.stdio.stdin == InputMode::Inherit;
            Some(PtyProxy::new(master, forward_stdin).map_err(terminal_err)?)
        }
        None => None,
    };
    let mut streams = Streams::new(ours, pty);
    if spec.network == Network::None && spec.network_namespace.is_none() {
        bring_up_loopback(pid.as_raw_pid()).map_err(|source| RuntimeError::Loopback {
            id: spec.id.clone(),
            source,
        })?;
    }
    // Bridge: pasta configures the namespace and binds the ports before the init starts; it is
    // stopped once the init is reaped, and killed if anything below returns early.
    let network = start_network(spec, pid.as_raw_pid())?;
    observer
        .created(pid.as_raw_pid())
        .map_err(|source| RuntimeError::Observer {
            id: spec.id.clone(),
            source,
        })?;

    let wait_err = |source| RuntimeError::Wait {
        id: spec.id.clone(),
        pid: pid.as_raw_pid(),
        source,
    };
    let signals = SignalGuard::block().map_err(wait_err)?;
    if let Some(container) = running.container_mut() {
        container.start().map_err(|source| RuntimeError::Start {
            id: spec.id.clone(),
            source: Box::new(source),
        })?;
    }
    observer.started(pid.as_raw_pid());
    // All on this thread (no reader threads: the process must stay single-threaded for the
    // next container). Output reaches EOF once the init exits: the kernel then kills the rest
    // of its pid namespace, closing every copy of the pipes' write ends and of the pty slave.
    let status = supervise(
        pid,
        &signals,
        parent,
        &mut streams,
        Until::StreamsClosed,
        &mut |stream, bytes| {
            observer.output(stream, bytes);
            observer.wants(stream)
        },
    )
    .map_err(wait_err)?;
    running.reaped = true;
    let mut network = network;
    if let Some(pasta) = network.as_mut() {
        pasta.signal_stop();
    }
    drop(signals);
    // Restores our terminal before anything else can fail.
    drop(streams);
    let deleted = running.delete();
    // Reaped only now, so its exit overlapped the deletion; the host ports are free on return.
    if let Some(pasta) = network {
        pasta.stop();
    }
    deleted?;
    Ok(status)
}

/// A created container that is killed and deleted if dropped before [`RunningContainer::delete`].
struct RunningContainer {
    container: Option<Container>,
    id: String,
    pid: Pid,
    reaped: bool,
}

impl RunningContainer {
    fn new(container: Container, id: &str) -> Result<Self, RuntimeError> {
        let pid = container.pid().and_then(|pid| Pid::from_raw(pid.as_raw()));
        let mut running = Self {
            container: Some(container),
            id: id.to_owned(),
            pid: Pid::INIT,
            reaped: true,
        };
        match pid {
            Some(pid) => {
                running.pid = pid;
                running.reaped = false;
                Ok(running)
            }
            None => Err(RuntimeError::NoPid { id: id.to_owned() }),
        }
    }

    fn container_mut(&mut self) -> Option<&mut Container> {
        self.container.as_mut()
    }

    fn delete(mut self) -> Result<(), RuntimeError> {
        let Some(mut container) = self.container.take() else {
            return Ok(());
        };
        container
            .refresh_status()
            .and_then(|()| container.delete(true))
            .map_err(|source| RuntimeError::Delete {
                id: self.id.clone(),
                source: Box::new(source),
            })
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        // Best effort on an error path. Killing and reaping the init first tears the whole pid
        // namespace down, so the cgroup is empty by the time delete removes it.
        if !self.reaped {
            let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::KILL);
            let _ = wait_for(self.pid);
            self.reaped = true;
        }
        if let Some(mut container) = self.container.take() {
            let _ = container.delete(true);
        }
    }
}

/// libcontainer may leave its state dir (and cgroup) behind when `build` fails half-way.
fn remove_failed_container(state_root: &Path, id: &str) {
    let dir = state_root.join(id);
    if let Ok(mut container) = Container::load(dir.clone()) {
        let _ = container.delete(true);
        if let Some(pid) = container.pid().and_then(|p| Pid::from_raw(p.as_raw())) {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

pub(crate) fn ensure_single_threaded() -> Result<(), RuntimeError> {
    let path = Path::new("/proc/self/status");
    let status = std::fs::read_to_string(path).map_err(|source| RuntimeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let threads = status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(1);
    if threads == 1 {
        Ok(())
    } else {
        Err(RuntimeError::NotSingleThreaded { threads })
    }
}

/// Hands the container its ends of the standard streams.
pub(crate) fn with_container_ends(
    mut builder: ContainerBuilder,
    ends: ContainerEnds,
) -> ContainerBuilder {
    if let Some(fd) = ends.stdin {
        builder = builder.with_stdin(fd);
    }
    if let Some(fd) = ends.stdout {
        builder = builder.with_stdout(fd);
    }
    if let Some(fd) = ends.stderr {
        builder = builder.with_stderr(fd);
    }
    builder
}

/// What the process that clones the container must look like, since the container's
/// process starts as a copy of it: no supplementary groups of whoever started strata (the
/// container's own are set from its spec), not dumpable (so a container process cannot open
/// `/proc/<pid>/fd/…` of a runtime process joining it), and no socket-activation
/// variables that would make libcontainer keep descriptors open.
pub(crate) fn prepare_runtime_process() {
    // SAFETY: setgroups with an empty list; prctl with a plain flag. Both only change this
    // (single-threaded) process's credentials.
    unsafe {
        libc::setgroups(0, std::ptr::null());
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_codes_follow_docker() {
        let cases = [
            (Termination::Exited(0), 0, true),
            (Termination::Exited(3), 3, false),
            (Termination::Signaled(9), 137, false),
            (Termination::Signaled(15), 143, false),
        ];
        for (status, code, success) in cases {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(status.success(), success, "{status:?}");
        }
    }

    #[test]
    fn run_refuses_a_multi_threaded_caller() {
        // The test harness runs tests on worker threads, so this process has several.
        let spec = ContainerSpec::new("t", "/nonexistent", "/nonexistent-dir", vec!["true".into()]);
        assert!(matches!(
            run(&spec),
            Err(RuntimeError::NotSingleThreaded { threads }) if threads > 1
        ));
    }
}
