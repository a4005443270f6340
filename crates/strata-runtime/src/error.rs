//! The one error type of strata-runtime.

use std::io;
use std::path::PathBuf;

use strata_exit::{ErrorChain, ExitStatus};

/// Everything that can go wrong while preparing, running or cleaning up a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid container spec for {id}: {reason}")]
    InvalidSpec { id: String, reason: String },

    #[error("the container runtime must be called from a single-threaded process, this one has {threads} threads")]
    NotSingleThreaded { threads: usize },

    #[error("failed to build the oci runtime spec of container {id}")]
    OciSpec {
        id: String,
        #[source]
        source: oci_spec::OciSpecError,
    },

    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to set up stdio of container {id}")]
    Stdio {
        id: String,
        #[source]
        source: io::Error,
    },

    #[error("failed to create container {id}")]
    Create {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },

    #[error("failed to start container {id}")]
    Start {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },

    #[error("failed to wait for container {id} (pid {pid})")]
    Wait {
        id: String,
        pid: i32,
        #[source]
        source: io::Error,
    },

    #[error("failed to delete container {id}")]
    Delete {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },

    #[error("invalid user {user:?}: {reason}")]
    InvalidUser { user: String, reason: String },

    #[error("unable to find user {user}: no matching entries in passwd file")]
    UnknownUser { user: String },

    #[error("unable to find group {group}: no matching entries in group file")]
    UnknownGroup { group: String },

    #[error("failed to track or remove the mount points created in rootfs {rootfs}")]
    MountStubs {
        rootfs: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("failed to bring up the loopback device of container {id}")]
    Loopback {
        id: String,
        #[source]
        source: io::Error,
    },

    #[error("failed to set up the shared network {id}")]
    SharedNetwork {
        id: String,
        #[source]
        source: io::Error,
    },

    #[error("invalid published port {value:?}: {reason}")]
    InvalidPublish { value: String, reason: String },

    #[error("failed to find a free host port on {address}")]
    AllocatePort {
        address: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },

    #[error("bridge networking needs pasta, which was not found in PATH: install the passt package (apt-get install passt)")]
    PastaMissing,

    #[error("failed to start pasta for container {id}")]
    PastaSpawn {
        id: String,
        #[source]
        source: io::Error,
    },

    #[error("pasta failed to set up the network of container {id} ({status}): {message}")]
    PastaFailed {
        id: String,
        status: String,
        message: String,
    },

    #[error("host port {port}/{protocol} is already in use (publishing {mapping})", port = mapping.host_port, protocol = mapping.protocol.as_str())]
    PortInUse {
        mapping: crate::network::PortMapping,
    },

    #[error("container {id} has no init process id after creation")]
    NoPid { id: String },

    #[error("the helper environment variable {var} does not hold a valid request")]
    HelperSpec {
        var: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("failed to set up the terminal of container {id}")]
    Terminal {
        id: String,
        #[source]
        source: io::Error,
    },

    #[error("run of container {id} aborted by its observer")]
    Observer {
        id: String,
        #[source]
        source: crate::observer::ObserverError,
    },

    #[error("container {id} is not running ({status})")]
    NotRunning { id: String, status: String },

    #[error("invalid exec in container {id}: {reason}")]
    InvalidExec { id: String, reason: String },

    #[error("failed to read the runtime config {path}")]
    ContainerConfig {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },

    #[error("unknown capability: {name:?}")]
    UnknownCapability { name: String },

    #[error("invalid --device {value:?}: {reason}")]
    InvalidDevice { value: String, reason: String },

    #[error("error gathering device information while adding custom device {path:?}")]
    Device {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("invalid seccomp profile")]
    SeccompProfile(#[from] crate::seccomp::SeccompProfileError),

    #[error("failed to exec in container {id}")]
    Exec {
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
}

impl RuntimeError {
    /// The exit code Docker's CLI reports for this failure: for a container's command, 127
    /// when it was not found, 126 when it is not executable; for `exec`, 126 whenever the
    /// process could not be started and 1 when the container is not running (measured on
    /// Docker 20.10); 125 for every other runtime failure.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::Exec { .. } => ExitStatus::CannotInvoke,
            Self::NotRunning { .. } | Self::InvalidExec { .. } => ExitStatus::Failure,
            // libcontainer reports its executable check only as text.
            Self::Create { .. } => {
                let message = ErrorChain(self).to_string();
                if message.contains("not found in $PATH") {
                    ExitStatus::CommandNotFound
                } else if message.contains("does not have correct permissions") {
                    ExitStatus::CannotInvoke
                } else {
                    ExitStatus::StrataFailed
                }
            }
            _ => ExitStatus::StrataFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libcontainer::error::LibcontainerError;

    #[test]
    fn chain_shows_sources_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = RuntimeError::OciSpec {
            id: "c".into(),
            source: oci_spec::OciSpecError::Io(io),
        };
        assert_eq!(
            ErrorChain(&err).to_string(),
            "failed to build the oci runtime spec of container c: io operation failed: no such file"
        );
    }

    #[test]
    fn exit_codes_follow_docker() {
        let create = |message: &str| RuntimeError::Create {
            id: "c".into(),
            source: Box::new(LibcontainerError::Other(message.into())),
        };
        let cases = [
            (create("executable '/nope' not found in $PATH"), 127),
            (
                create("executable 'x' at path '\"/x\"' does not have correct permissions"),
                126,
            ),
            (create("failed to prepare rootfs"), 125),
            (RuntimeError::NotSingleThreaded { threads: 2 }, 125),
            (
                RuntimeError::Exec {
                    id: "c".into(),
                    source: Box::new(LibcontainerError::Other(
                        "executable 'nope' not found in $PATH".into(),
                    )),
                },
                126,
            ),
            (
                RuntimeError::NotRunning {
                    id: "c".into(),
                    status: "Stopped".into(),
                },
                1,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_status().code(), code, "{err}");
        }
    }
}
