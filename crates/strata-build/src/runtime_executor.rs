//! `RuntimeExecutor`: RUN steps executed by strata-runtime, in a container whose rootfs is an
//! overlay of the parent snapshot chain plus a fresh upper dir on the store's filesystem.
//!
//! The builder runs stages on several threads, and the runtime must be driven from a
//! single-threaded process, so every RUN re-executes the strata binary as a helper
//! (`strata_runtime::helper_command`); the binary recognises the helper environment before
//! anything else. `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` are bind-mounted by the
//! runtime from the per-container dir and never reach the upper dir.
//!
//! Networks, as BuildKit's: by default a step gets a private network with outbound access
//! and no route to the host's loopback (the runtime's bridge network; all steps of a build
//! share one namespace and one pasta), `--network=none` only `lo`, and `--network=host` the
//! host's own namespace, only when asked for.
//!
//! `--debug-on-fail`: when the step exits non-zero and the request carries a
//! [`crate::DebugRequest`], the shell runs as a second container with the step's own spec
//! (env, cwd, user, mounts, network, isolation) on the still-mounted rootfs, whose upper dir
//! is as the command left it, with a pty on the caller's terminal; then everything is
//! unmounted and the upper dir discarded as for any failed step.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use strata_runtime::{
    helper_command, resolve_user, BindMount, ContainerSpec, EtcFiles, InputMode, Network,
    OutputMode, SharedNetwork, TERMINAL_TERM_ENV,
};
use strata_store::{unmount, WritableLayer};

use crate::run_executor::{
    DebugRequest, OutputSink, RunExecutor, RunNetwork, RunOutcome, RunRequest,
};

/// Runs RUN steps through a helper copy of `program` (the `strata` binary itself).
///
/// Steps on the default network join one [`SharedNetwork`] (a namespace and its pasta),
/// started at the first such step and stopped when the executor is dropped, as BuildKit
/// reuses namespaces from a pool: a step pays a `setns`, not a pasta start.
pub struct RuntimeExecutor {
    program: PathBuf,
    next: AtomicU64,
    network: OnceLock<Result<SharedNetwork, String>>,
}

impl RuntimeExecutor {
    pub fn new(program: impl Into<PathBuf>) -> RuntimeExecutor {
        RuntimeExecutor {
            program: program.into(),
            next: AtomicU64::new(0),
            network: OnceLock::new(),
        }
    }

    /// The shared network's namespace, started on first use (its files in `temp_dir`).
    fn shared_network(&self, temp_dir: &Path) -> Result<PathBuf, String> {
        let network = self.network.get_or_init(|| {
            let dir = temp_dir.join("network");
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let id = format!("strata-build-{}", std::process::id());
            SharedNetwork::start(&id, &dir).map_err(|e| strata_exit::ErrorChain(&e).to_string())
        });
        match network {
            Ok(network) => Ok(network.namespace_path()),
            Err(message) => Err(message.clone()),
        }
    }
}

/// Unmounts the step's rootfs however the step ends.
struct MountGuard<'a>(&'a Path);

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        let _ = unmount(self.0);
    }
}

impl RunExecutor for RuntimeExecutor {
    fn run(&self, request: &RunRequest<'_>) -> Result<RunOutcome, String> {
        let Some(parent) = request.parent_chain else {
            return Err(
                "RUN needs a base image with a filesystem: FROM scratch has no shell or programs"
                    .into(),
            );
        };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let step_dir = request
            .temp_dir
            .join(format!("run-{}-{n}", std::process::id()));
        let (upper, work, rootfs, ctr) = (
            step_dir.join("upper"),
            step_dir.join("work"),
            step_dir.join("rootfs"),
            step_dir.join("ctr"),
        );
        for d in [&upper, &work, &rootfs, &ctr] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        request
            .store
            .snapshotter()
            .mount(
                parent,
                &rootfs,
                Some(&WritableLayer {
                    upper: upper.clone(),
                    work: work.clone(),
                    volatile: false,
                }),
            )
            .map_err(|e| format!("mounting the step's rootfs: {e}"))?;
        let mounted = MountGuard(&rootfs);

        let network = match request.network {
            RunNetwork::None => Network::None,
            RunNetwork::Default => Network::Bridge,
            RunNetwork::Host => Network::Host,
        };
        let id = format!("strata-build-{}-{n}", std::process::id());
        let mut spec = ContainerSpec::new(&id, &rootfs, &ctr, request.args.clone());
        spec.process.env = request.env.clone();
        spec.process.cwd = if request.workdir.is_empty() {
            "/".into()
        } else {
            request.workdir.clone()
        };
        if !request.user.is_empty() {
            let resolved = resolve_user(&rootfs, &request.user).map_err(|e| e.to_string())?;
            spec.process.apply_user(&resolved);
        }
        spec.hostname = "buildkitsandbox".into();
        spec.network = network;
        if network == Network::Bridge {
            spec.network_namespace = Some(self.shared_network(request.temp_dir)?);
        }
        spec.etc_files =
            EtcFiles::docker_defaults_for(network, &spec.hostname).map_err(|e| e.to_string())?;
        // BuildKit gives RUN steps /etc/hosts and /etc/resolv.conf, not /etc/hostname.
        spec.etc_files.hostname = false;
        spec.stdio.stdin = InputMode::Null;
        spec.mounts = request
            .mounts
            .iter()
            .map(|m| BindMount {
                source: m.source.clone(),
                destination: m.destination.clone(),
                readonly: m.readonly,
            })
            .collect();

        // stdout and stderr share one pipe so the log keeps their interleaving.
        let (mut reader, writer) = std::io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
        let writer_err = writer
            .try_clone()
            .map_err(|e| format!("creating a pipe: {e}"))?;
        let mut command = helper_command(&self.program, &spec).map_err(|e| e.to_string())?;
        command
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer_err);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        drop(command);
        let mut log = Vec::new();
        let read = read_output(&mut reader, &mut log, request.output);
        let status = child
            .wait()
            .map_err(|e| format!("waiting for the RUN helper: {e}"))?;
        read.map_err(|e| format!("reading the RUN output: {e}"))?;
        let exit_code = status.code().unwrap_or(125);
        if exit_code != 0 {
            if let Some(debug) = request.debug {
                let debug_dir = step_dir.join("ctr-debug");
                debug.shell.once(|| {
                    (debug.attach)(Some(exit_code));
                    // The shell's own failures (no `sh` in the image…) reach the terminal
                    // from the helper; the build fails with the step's error either way.
                    let _ = self.debug_shell(&spec, &debug_dir, debug);
                    (debug.attach)(None);
                });
                let _ = std::fs::remove_dir_all(&debug_dir);
            }
        }
        drop(mounted);
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_dir_all(&ctr);
        Ok(RunOutcome {
            upper,
            exit_code,
            log,
        })
    }
}

impl RuntimeExecutor {
    /// Runs the debug shell in the failed step's container: the same rootfs (still mounted,
    /// its upper dir as the command left it), env, working directory, user, mounts, network
    /// and isolation, with a terminal. Everything it changes goes with the upper dir.
    fn debug_shell(
        &self,
        step: &ContainerSpec,
        dir: &Path,
        debug: DebugRequest<'_>,
    ) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut spec = step.clone();
        spec.id = format!("{}-debug", step.id);
        spec.dir = dir.to_owned();
        spec.process.args = debug.shell.command.clone();
        spec.process.terminal = true;
        if !spec.process.env.iter().any(|e| e.starts_with("TERM=")) {
            spec.process.env.push(TERMINAL_TERM_ENV.to_owned());
        }
        spec.stdio.stdin = InputMode::Inherit;
        spec.stdio.stdout = OutputMode::Inherit;
        spec.stdio.stderr = OutputMode::Inherit;
        let dup = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone()
                .map_err(|e| format!("duplicating the terminal: {e}"))
        };
        let mut command = helper_command(&self.program, &spec).map_err(|e| e.to_string())?;
        command
            .stdin(dup(&debug.shell.input)?)
            .stdout(dup(&debug.shell.output)?)
            .stderr(dup(&debug.shell.output)?);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        drop(command);
        child
            .wait()
            .map_err(|e| format!("waiting for the debug shell: {e}"))?;
        Ok(())
    }
}

/// Reads the RUN's output to its end into `log`, handing each chunk to `sink` as it comes.
fn read_output(
    reader: &mut impl Read,
    log: &mut Vec<u8>,
    sink: Option<OutputSink<'_>>,
) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if let Some(OutputSink(f)) = sink {
                    f(&buf[..n]);
                }
                log.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
