//! The one error type of strata-container.

use std::io;
use std::path::PathBuf;

use strata_exit::ExitStatus;

/// Everything that can go wrong creating, running, inspecting or removing a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    #[error(transparent)]
    Image(#[from] strata_image::ImageError),
    #[error(transparent)]
    Runtime(#[from] strata_runtime::RuntimeError),
    #[error(transparent)]
    Layer(#[from] strata_layer::LayerError),
    #[error("{action} {path:?}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container id prefix {prefix:?} matches {count} containers: give more characters")]
    Ambiguous { prefix: String, count: usize },
    #[error("invalid {option} value {value:?}: {reason}")]
    InvalidOption {
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error(
        "container {0} still runs unobserved since its monitor died: stop, kill or rm -f it first"
    )]
    OrphanRunning(String),
    #[error("you cannot remove a running container {0}: stop it first or use rm -f")]
    RemoveRunning(String),
    #[error("container record {id} is unreadable: {reason}")]
    CorruptRecord { id: String, reason: String },
    #[error("could not start the monitor of container {id}")]
    MonitorSpawn {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("container {id} did not start: {message}")]
    StartFailed {
        id: String,
        message: String,
        /// Docker's status for the failure: 125 strata's error, 126 not executable, 127 not found.
        status: ExitStatus,
    },
    #[error("the monitor of container {0} did not report within 30 s")]
    MonitorTimeout(String),
    #[error("volume {name} is in use by container(s) {containers}: remove them first")]
    VolumeInUse { name: String, containers: String },
    #[error("no such volume: {0}")]
    VolumeNotFound(String),
    #[error("invalid volume name {0:?}: use letters, digits, '_', '.', '-' (starting with a letter or digit)")]
    InvalidVolumeName(String),
    #[error("invalid signal {0:?}: use a name like SIGTERM, TERM or a number")]
    InvalidSignal(String),
    #[error("path {path:?} in container {id}: {reason}")]
    ContainerPath {
        id: String,
        path: String,
        reason: String,
    },
    #[error("{path:?}: {reason}")]
    HostPath { path: PathBuf, reason: String },
    #[error("{what} is not supported yet")]
    Unsupported { what: String },
    #[error("{action} of container {id}")]
    Archive {
        action: &'static str,
        id: String,
        #[source]
        source: io::Error,
    },
}

impl ContainerError {
    /// The status a command that failed this way exits with: a failed start keeps Docker's
    /// 126/127, everything else is strata's own failure (125).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::StartFailed { status, .. } => *status,
            _ => ExitStatus::StrataFailed,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
