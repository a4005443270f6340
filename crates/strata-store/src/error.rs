//! The one error type of strata-store.

use std::io;
use std::path::PathBuf;

use strata_oci::Digest;

use crate::snapshot::DriverKind;

/// Everything that can go wrong opening, reading, writing or maintaining a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path:?}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("metadata database {path:?}: {context}")]
    Db {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata database {path:?} has schema version {found}, newer than this strata supports ({supported}): upgrade strata")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("metadata database holds an invalid digest {value:?} in {table}")]
    CorruptRecord { table: &'static str, value: String },
    #[error("content does not match its digest: expected {expected}, got {actual} ({size} bytes)")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("layer unpacked as snapshot {chain_id} is not the layer it claims to be: diff id {expected} expected, content hashes to {actual}")]
    DiffIdMismatch {
        chain_id: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {0} not found in the content store")]
    BlobNotFound(Digest),
    #[error("image {0} not found")]
    ImageNotFound(Digest),
    #[error("image {id} is used by {containers} container(s): remove them first")]
    ImageInUse { id: Digest, containers: usize },
    #[error("the container name {name:?} is already in use by container {id}: remove or rename that container, or choose another name")]
    ContainerNameInUse { name: String, id: String },
    #[error("snapshot {0} not found")]
    SnapshotNotFound(Digest),
    #[error("snapshot {chain_id} still has {children} child snapshot(s) on top of it")]
    SnapshotHasChildren { chain_id: Digest, children: usize },
    #[error(
        "invalid image id prefix {0:?}: expected hex characters, optionally after \"sha256:\""
    )]
    InvalidIdPrefix(String),
    #[error("unknown storage driver {0:?}: expected \"overlay\" (or \"overlay2\") or \"vfs\"")]
    UnknownDriver(String),
    #[error("the store at {root:?} was created with the {recorded} driver, not {requested}: drop the driver option to keep using {recorded}, or use another --root for {requested}")]
    DriverMismatch {
        root: PathBuf,
        recorded: DriverKind,
        requested: DriverKind,
    },
    #[error("the overlay driver cannot be used at {root:?}: {reason}")]
    OverlayUnsupported { root: PathBuf, reason: String },
    #[error("mounting {what} at {target:?}")]
    Mount {
        what: &'static str,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unpacking layer {diff_id} as snapshot {chain_id}")]
    Unpack {
        chain_id: Digest,
        diff_id: Digest,
        #[source]
        source: strata_layer::LayerError,
    },
    #[error("unpacking a layer ahead of its chain")]
    Stage {
        #[source]
        source: strata_layer::LayerError,
    },
    #[error("another strata command is writing to the store at {root:?}; gc waited {waited_secs} s, try again when it has finished")]
    Busy { root: PathBuf, waited_secs: u64 },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Attaches the action and path an I/O error happened on.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for Result<T, io::Error> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(action, path, e))
    }
}

impl<T> IoContext<T> for Result<T, rustix::io::Errno> {
    fn ctx(self, action: &'static str, path: &std::path::Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(action, path, e.into()))
    }
}
