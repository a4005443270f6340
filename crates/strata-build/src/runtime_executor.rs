//! `RuntimeExecutor`: RUN steps executed by strata-runtime, in a container whose rootfs is an
//! overlay of the parent snapshot chain plus a fresh upper dir on the store's filesystem.
//!
//! The builder runs stages on several threads, and the runtime must be driven from a
//! single-threaded process, so every RUN re-executes the strata binary as a helper
//! (`strata_runtime::helper_command`); the binary recognises the helper environment before
//! anything else. `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` are bind-mounted by the
//! runtime from the per-container dir and never reach the upper dir.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use strata_runtime::{
    helper_command, resolve_user, BindMount, ContainerSpec, EtcFiles, InputMode, Network,
};
use strata_store::{unmount, WritableLayer};

use crate::run_executor::{OutputSink, RunExecutor, RunNetwork, RunOutcome, RunRequest};

/// Runs RUN steps through a helper copy of `program` (the `strata` binary itself).
pub struct RuntimeExecutor {
    program: PathBuf,
    next: AtomicU64,
}

impl RuntimeExecutor {
    pub fn new(program: impl Into<PathBuf>) -> RuntimeExecutor {
        RuntimeExecutor {
            program: program.into(),
            next: AtomicU64::new(0),
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
            // Builds use the host's network by default so package managers work, as BuildKit does.
            RunNetwork::Default | RunNetwork::Host => Network::Host,
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
        spec.etc_files = EtcFiles::docker_defaults(network).map_err(|e| e.to_string())?;
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
        drop(mounted);
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_dir_all(&ctr);
        let exit_code = status.code().unwrap_or(125);
        Ok(RunOutcome {
            upper,
            exit_code,
            log,
        })
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
