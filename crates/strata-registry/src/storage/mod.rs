//! Where the registry keeps its bytes: a small object-store-shaped trait, so that the
//! filesystem (the default, [`FsStorage`]) and an S3-compatible store ([`S3Storage`], through
//! the `object_store` crate; several replicas on one bucket) are interchangeable under the
//! same registry logic.
//!
//! The registry's life cycle in terms of this trait:
//! - **Pushing a blob**: the upload session's bytes go to an *ingest* (`ingest_append`, once per
//!   chunk, each call all-or-nothing), the session's state (offset, hash state, repository)
//!   to a small document (`put`). When the client finishes, `ingest_commit` makes the ingest
//!   visible under the blob's key in one step (a rename on disk, a multipart completion plus
//!   server-side copy on an object store). Nothing ever appears under a digest key before the
//!   registry has verified the digest.
//! - **Pushing a manifest**: the manifest is `put` under its digest key, then the repository's
//!   link and tag documents are `put`, in that order, each atomically, so a reader never finds
//!   a tag naming a manifest that is not there.
//! - **Pulling**: `get` of the small documents, `read` (with an optional byte range) of blobs.
//! - **Garbage collection**: `gc_lease` (one collector at a time, across processes and
//!   replicas), `list`/`last_used` to mark and to find candidates, `reference_guard` /
//!   `sweep_guard` so a manifest pushed during a sweep never loses a blob it references
//!   (see `gc.rs`), `touch` to record that a blob was referenced again.
//!
//! Keys are `/`-separated paths of the layout in `layout.rs`; a backend maps them onto files
//! or object names and never interprets them.

mod fs;
mod s3;

use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::Stream;

pub use fs::FsStorage;
pub use s3::S3Storage;

/// A stream of bytes with I/O errors: request bodies going in, blob contents coming out.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// What a backend knows about one stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// The last write or [`Storage::touch`].
    pub modified: SystemTime,
}

/// One level of a listing: object names and sub-prefixes directly under the prefix, each
/// relative to it, sorted by byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub objects: Vec<String>,
    pub prefixes: Vec<String>,
}

/// A failure of the storage itself (not a missing object: those are `Ok(None)`/`Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage i/o on {key}: {source}")]
    Io { key: String, source: io::Error },
    #[error("storage key {0:?} is not valid")]
    InvalidKey(String),
    /// An upload's data is shorter than its recorded state (lost by a crash before it
    /// was synced): the session cannot continue.
    #[error("upload {id} lost data: {have} bytes stored, {expected} expected")]
    IngestLost {
        id: String,
        have: u64,
        expected: u64,
    },
    /// An ingest grew past the limit the caller set (a quota, a manifest size cap).
    #[error("upload {id} exceeds {limit} bytes")]
    IngestTooLarge { id: String, limit: u64 },
    /// The request body failed while streaming (the client went away).
    #[error("reading the request body: {0}")]
    Body(io::Error),
    /// The storage cannot be set up as configured.
    #[error("{0}")]
    Config(String),
}

impl StorageError {
    pub(crate) fn io(key: impl Into<String>, source: io::Error) -> StorageError {
        StorageError::Io {
            key: key.into(),
            source,
        }
    }
}

/// Keys are relative, `/`-separated, without empty, `.` or `..` components.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    let trimmed = key.trim_end_matches('/');
    if trimmed.is_empty()
        || trimmed.starts_with('/')
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || trimmed.contains('\0')
    {
        return Err(StorageError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// Held while an operation that adds references to blobs runs (see [`Storage::reference_guard`]).
pub struct Guard {
    _held: Box<dyn Send + Sync>,
}

impl Guard {
    pub fn new(held: impl Send + Sync + 'static) -> Guard {
        Guard {
            _held: Box::new(held),
        }
    }
}

/// The right to run a garbage collection; released on drop.
pub struct Lease {
    _held: Box<dyn Send + Sync>,
}

impl Lease {
    pub fn new(held: impl Send + Sync + 'static) -> Lease {
        Lease {
            _held: Box::new(held),
        }
    }
}

/// The registry's storage. Every write is atomic to readers and durable when it returns.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// A short name for logs and `/healthz` (`filesystem /var/lib/strata-registry`).
    fn describe(&self) -> String;

    /// Proves the storage is reachable and usable (credentials, bucket) before serving.
    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// A small document, whole; `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError>;

    /// Writes a small document, replacing any previous one atomically (readers see the old
    /// or the new bytes, never a mix); durable on return. Concurrent writers: the last wins.
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError>;

    /// Size and time of an object; `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError>;

    /// Removes an object; `false` when it was not there.
    async fn delete(&self, key: &str) -> Result<bool, StorageError>;

    /// Removes every object under `prefix` (a whole repository).
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError>;

    /// One level under `prefix` (which ends with `/`); empty when nothing is there.
    async fn list(&self, prefix: &str) -> Result<Listing, StorageError>;

    /// Records that an object is referenced now; `false` when it is absent.
    async fn touch(&self, key: &str) -> Result<bool, StorageError>;

    /// The later of an object's last write and last [`Storage::touch`], never earlier than
    /// the truth (the collector keeps what was used at or after its cutoff); `None` when the
    /// object is absent.
    async fn last_used(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        Ok(self.head(key).await?.map(|m| m.modified))
    }

    /// The current time in the clock of [`Storage::last_used`], never later than the truth
    /// (the collector's mark epoch). Replicas' clocks may differ from the store's.
    async fn now(&self) -> Result<SystemTime, StorageError> {
        Ok(SystemTime::now())
    }

    /// Streams an object, or the `range` of it (already clamped to its size by the caller).
    async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ObjectMeta, ByteStream)>, StorageError>;

    /// Appends `data` to ingest `id` at `offset` (creating it when `offset` is 0 and it does
    /// not exist) and returns the new size. All or nothing: when the stream fails or passes
    /// `limit` total bytes, the ingest is cut back to `offset` and the error returned. Data
    /// past `offset` left by a crash is discarded first; data shorter than `offset` is
    /// [`StorageError::IngestLost`].
    async fn ingest_append(
        &self,
        id: &str,
        offset: u64,
        data: &mut ByteStream,
        limit: u64,
    ) -> Result<u64, StorageError>;

    /// Streams an ingest's first `len` bytes (to rebuild a hash state that was lost).
    async fn ingest_read(&self, id: &str, len: u64) -> Result<ByteStream, StorageError>;

    /// Makes ingest `id`'s first `len` bytes the object `key` in one atomic step and removes
    /// the ingest. When `key` already exists (the same blob pushed twice), the ingest is just
    /// removed and the existing object touched.
    async fn ingest_commit(&self, id: &str, len: u64, key: &str) -> Result<(), StorageError>;

    /// Removes an ingest and its documents (everything under `uploads/<id>/`).
    async fn ingest_abort(&self, id: &str) -> Result<(), StorageError>;

    /// Keeps other processes out of upload session `id` (its appends, state writes, commit)
    /// while the guard lives; `None` when another holds it after a short wait. Within one
    /// process the registry serializes a session itself; a backend served by one process
    /// only (the filesystem's serve lock) needs nothing more.
    async fn ingest_lock(&self, id: &str) -> Result<Option<Guard>, StorageError> {
        let _ = id;
        Ok(Some(Guard::new(())))
    }

    /// Ingests in progress with their last activity, for expiry by the collector.
    async fn ingest_list(&self) -> Result<Vec<(String, SystemTime)>, StorageError>;

    /// Taken (shared) by every operation that makes a blob referenced — a manifest push, a
    /// blob mount or upload commit — around "touch, check it exists, write the reference".
    /// Shared holders run concurrently.
    async fn reference_guard(&self) -> Result<Guard, StorageError>;

    /// Taken (exclusive) by the collector around each batch of deletions, so a reference is
    /// either written before the batch (and the touched blob is kept) or finds the blob gone.
    async fn sweep_guard(&self) -> Result<Guard, StorageError>;

    /// The right to collect garbage, or `None` when another collector holds it. `ttl` bounds
    /// how long a lease of a dead holder blocks others (where the backend needs that).
    async fn gc_lease(&self, ttl: Duration) -> Result<Option<Lease>, StorageError>;

    /// Removes what killed processes left behind (temp files older than `older_than`);
    /// returns how many. Backends without such leftovers do nothing.
    async fn remove_stale_temp(&self, older_than: Duration) -> Result<u64, StorageError> {
        let _ = older_than;
        Ok(0)
    }

    /// Finishes background work (releasing guards and leases) before the process exits.
    async fn close(&self) {}
}

#[cfg(test)]
pub(crate) mod conformance;
