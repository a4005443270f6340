//! `RunExecutor`: the contract a container runtime fulfils so the builder can execute RUN.
//!
//! The builder never isolates processes itself. It hands the executor the snapshot chain to
//! run on and the process description; the executor runs it in a container whose writable
//! layer is an overlay upper dir on the store's filesystem, and returns that dir. The builder
//! turns the upper dir into the next snapshot (rename, not re-extract).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use strata_oci::Digest;
use strata_store::Store;

/// RUN `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunNetwork {
    /// The runtime's default (a private network with outbound access).
    #[default]
    Default,
    /// Loopback only.
    None,
    /// The host's network namespace.
    Host,
}

/// One RUN to execute.
#[derive(Debug)]
pub struct RunRequest<'a> {
    pub store: &'a Store,
    /// A directory on the store's filesystem, private to this build, for the upper and work
    /// dirs (so the upper can be renamed into a snapshot). Removed when the build ends.
    pub temp_dir: &'a Path,
    /// Top chain id of the rootfs snapshot chain (None: an empty rootfs, `FROM scratch`).
    pub parent_chain: Option<&'a Digest>,
    /// The full argv (shell form already wrapped in the stage's SHELL).
    pub args: Vec<String>,
    /// `NAME=value` pairs, the step's env plus proxy build args.
    pub env: Vec<String>,
    /// `USER` (name or uid, optionally `:group`), empty for root.
    pub user: String,
    /// Absolute working directory.
    pub workdir: String,
    pub network: RunNetwork,
    /// Host paths bind-mounted into the container (RUN `--mount`, heredoc scripts).
    pub mounts: Vec<RunMount>,
    /// Where output goes as it is produced (the executor also returns all of it).
    pub output: Option<OutputSink<'a>>,
    /// `--debug-on-fail`: if the process exits non-zero, run this shell in the same
    /// container before returning.
    pub debug: Option<DebugRequest<'a>>,
}

/// `strata build --debug-on-fail`: an interactive shell in a failed RUN's own container (its
/// rootfs as the command left it, its env, working directory, user, mounts and network),
/// discarded when it exits. The caller hands over its terminal; the builder never decides
/// what a terminal is.
#[derive(Debug)]
pub struct DebugOnFail {
    /// The shell's argv (`sh`, or `--debug-shell`'s command).
    pub command: Vec<String>,
    /// The terminal the shell reads (its stdin).
    pub input: OwnedFd,
    /// The terminal the shell writes to.
    pub output: OwnedFd,
    /// Held while a shell runs: one at a time, and only for the first failure of a build
    /// (parallel stages may fail together; the build stops at the first anyway).
    used: Mutex<bool>,
}

impl DebugOnFail {
    pub fn new(command: Vec<String>, input: OwnedFd, output: OwnedFd) -> DebugOnFail {
        DebugOnFail {
            command,
            input,
            output,
            used: Mutex::new(false),
        }
    }

    /// Runs `shell` unless a shell already ran in this build (the lock is held meanwhile, so
    /// a second failing stage waits and then gets none). Returns whether it ran.
    pub fn once(&self, shell: impl FnOnce()) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if *used {
            return false;
        }
        *used = true;
        shell();
        true
    }
}

/// What a [`RunRequest`] carries for `--debug-on-fail`.
#[derive(Clone, Copy)]
pub struct DebugRequest<'a> {
    pub shell: &'a DebugOnFail,
    /// Called with the failed command's exit code right before the shell takes the
    /// terminal (a progress display must stop drawing), and with `None` once it has exited.
    pub attach: &'a (dyn Fn(Option<i32>) + Sync),
}

impl std::fmt::Debug for DebugRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugRequest")
            .field("shell", self.shell)
            .finish_non_exhaustive()
    }
}

/// A host file or directory bind-mounted into a RUN's container; never part of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
}

/// A callback taking each chunk of a RUN's output as it arrives (for live progress).
#[derive(Clone, Copy)]
pub struct OutputSink<'a>(pub &'a (dyn Fn(&[u8]) + Sync));

impl std::fmt::Debug for OutputSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputSink")
    }
}

/// What a finished RUN left.
#[derive(Debug)]
pub struct RunOutcome {
    /// The overlay upper dir with the process's changes, on the store's filesystem
    /// (whiteouts as overlayfs writes them). The builder takes ownership of it.
    pub upper: PathBuf,
    pub exit_code: i32,
    /// Combined stdout and stderr.
    pub log: Vec<u8>,
}

/// Executes RUN steps in isolation. Implemented by the runtime crate.
pub trait RunExecutor: Send + Sync {
    /// Runs the process to completion. An `Err` is a failure to run at all; a non-zero exit
    /// is an `Ok` with its `exit_code` (after the request's debug shell, if it has one).
    fn run(&self, request: &RunRequest<'_>) -> Result<RunOutcome, String>;
}
