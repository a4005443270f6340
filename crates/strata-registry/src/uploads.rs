//! Blob upload sessions: monolithic, streamed and chunked pushes, verified while streaming.
//!
//! A session is an ingest in the storage plus a state document (`uploads/<id>/state`): its
//! repository, how many bytes it holds and the sha256 state after them. Each chunk is
//! appended all-or-nothing and the state written after it, so a session survives a server
//! restart (or, on an object store, moves to another replica) and the final digest check
//! costs nothing: the bytes were hashed as they arrived. The blob becomes visible under its
//! digest only after that check, through `ingest_commit`.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_oci::{Digest, Sha256Hasher};

use crate::api_error::{ApiError, ErrorCode};
use crate::layout;
use crate::metrics::add;
use crate::registry::Registry;
use crate::storage::{ByteStream, Guard, StorageError};
use tokio::sync::OwnedMutexGuard;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct UploadState {
    repository: String,
    offset: u64,
    /// Hex of the sha256 state after `offset` bytes.
    hash: String,
    /// Unix seconds.
    started: u64,
    /// Not charged to a quota while streaming (a monolithic push of a blob already linked).
    #[serde(skip)]
    unmetered: bool,
}

impl UploadState {
    fn new(repository: &str) -> UploadState {
        UploadState {
            repository: repository.to_string(),
            offset: 0,
            hash: hex_encode(&Sha256Hasher::new().save_state()),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            unmetered: false,
        }
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A new session id: 128 random bits in UUID form, as Distribution's.
fn new_upload_id() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| {
        tracing::error!(error = %e, "no randomness for an upload id");
        ApiError::new(ErrorCode::Unknown, "internal error")
    })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex_encode(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Hashes a body as it streams into the storage.
struct HashingStream {
    inner: ByteStream,
    hasher: Arc<Mutex<Sha256Hasher>>,
}

impl futures_util::Stream for HashingStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        let item = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &item {
            self.hasher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .update(chunk);
        }
        item
    }
}

/// `Content-Range` of a chunk: first and last byte (inclusive).
pub(crate) type ChunkRange = (u64, u64);

/// Where an upload stands, for the `Range` and `Location` headers.
#[derive(Debug)]
pub struct UploadStatus {
    pub id: String,
    pub offset: u64,
}

impl Registry {
    /// Starts a session.
    pub async fn start_upload(&self, name: &str) -> Result<UploadStatus, ApiError> {
        let id = new_upload_id()?;
        self.save_upload(&id, &UploadState::new(name)).await?;
        add(&self.metrics.uploads_started, 1);
        Ok(UploadStatus { id, offset: 0 })
    }

    /// One request at a time on a session: in this process, then across the processes
    /// sharing the storage (replicas on one bucket).
    async fn lock_session(&self, id: &str) -> Result<(OwnedMutexGuard<()>, Guard), ApiError> {
        if !valid_upload_id(id) {
            return Err(ApiError::upload_unknown());
        }
        let local = self.lock_upload(id).await;
        match self.storage.ingest_lock(id).await? {
            Some(shared) => Ok((local, shared)),
            None => Err(ApiError::new(
                ErrorCode::TooManyRequests,
                format!("upload {id} is busy with another request: retry it"),
            )),
        }
    }

    async fn save_upload(&self, id: &str, state: &UploadState) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(state).unwrap_or_default();
        self.storage
            .put(&layout::upload_state(id), Bytes::from(bytes))
            .await?;
        Ok(())
    }

    async fn load_upload(&self, name: &str, id: &str) -> Result<UploadState, ApiError> {
        if !valid_upload_id(id) {
            return Err(ApiError::upload_unknown());
        }
        let Some(bytes) = self.storage.get(&layout::upload_state(id)).await? else {
            return Err(ApiError::upload_unknown());
        };
        let state: UploadState = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(upload = id, error = %e, "unreadable upload state");
                return Err(ApiError::upload_unknown());
            }
        };
        // A session belongs to the repository it was started in.
        if state.repository != name {
            return Err(ApiError::upload_unknown());
        }
        Ok(state)
    }

    /// How many bytes a session holds.
    pub async fn upload_status(&self, name: &str, id: &str) -> Result<UploadStatus, ApiError> {
        let state = self.load_upload(name, id).await?;
        Ok(UploadStatus {
            id: id.to_string(),
            offset: state.offset,
        })
    }

    /// Appends a chunk (PATCH).
    pub async fn append_upload(
        &self,
        name: &str,
        id: &str,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> Result<UploadStatus, ApiError> {
        let _lock = self.lock_session(id).await?;
        let mut state = self.load_upload(name, id).await?;
        self.append_to(id, &mut state, range, body).await?;
        self.save_upload(id, &state).await?;
        Ok(UploadStatus {
            id: id.to_string(),
            offset: state.offset,
        })
    }

    /// Finishes a session (PUT `?digest=`), with an optional last chunk.
    pub async fn finish_upload(
        &self,
        name: &str,
        id: &str,
        digest: &Digest,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> Result<(), ApiError> {
        let _lock = self.lock_session(id).await?;
        let mut state = self.load_upload(name, id).await?;
        self.append_to(id, &mut state, range, body).await?;
        self.verify_and_commit(name, id, &state, digest).await
    }

    /// A whole blob in one request (POST `?digest=`): no session state is written.
    pub async fn put_blob(
        &self,
        name: &str,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<(), ApiError> {
        let id = new_upload_id()?;
        let mut state = UploadState::new(name);
        add(&self.metrics.uploads_started, 1);
        // A blob the repository already has costs no quota (it is verified all the same).
        state.unmetered = self.blob_meta(name, digest).await?.is_some();
        let result = match self.append_to(&id, &mut state, None, body).await {
            Ok(()) => self.verify_and_commit(name, &id, &state, digest).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = self.storage.ingest_abort(&id).await;
        }
        result
    }

    /// Cancels a session (DELETE).
    pub async fn cancel_upload(&self, name: &str, id: &str) -> Result<(), ApiError> {
        let _lock = self.lock_session(id).await?;
        self.load_upload(name, id).await?;
        self.storage.ingest_abort(id).await?;
        add(&self.metrics.uploads_cancelled, 1);
        Ok(())
    }

    async fn hasher_of(&self, id: &str, state: &UploadState) -> Result<Sha256Hasher, ApiError> {
        if let Some(h) = hex_decode(&state.hash).and_then(|b| Sha256Hasher::restore_state(&b)) {
            if h.len() == state.offset {
                return Ok(h);
            }
        }
        // The state is unreadable (written by another version?): hash the stored bytes again.
        tracing::warn!(
            upload = id,
            "rebuilding an upload's hash state from its data"
        );
        let mut h = Sha256Hasher::new();
        let mut data = self.storage.ingest_read(id, state.offset).await?;
        use futures_util::StreamExt;
        while let Some(chunk) = data.next().await {
            h.update(&chunk.map_err(|e| StorageError::io(id, e))?);
        }
        Ok(h)
    }

    async fn append_to(
        &self,
        id: &str,
        state: &mut UploadState,
        range: Option<ChunkRange>,
        body: ByteStream,
    ) -> Result<(), ApiError> {
        if let Some((start, end)) = range {
            if start != state.offset || end < start {
                return Err(ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!(
                        "chunk range {start}-{end} does not continue the upload, which has {} bytes",
                        state.offset
                    ),
                )
                .with_status(416));
            }
        }
        let hasher = Arc::new(Mutex::new(self.hasher_of(id, state).await?));
        let mut stream: ByteStream = Box::pin(HashingStream {
            inner: body,
            hasher: hasher.clone(),
        });
        let quota = if state.unmetered {
            None
        } else {
            self.quotas.remaining(self, &state.repository).await?
        };
        let limit = quota.as_ref().map_or(u64::MAX, |q| q.remaining);
        add(&self.metrics.uploads_in_progress, 1);
        let appended = self
            .storage
            .ingest_append(id, state.offset, &mut stream, limit)
            .await;
        self.metrics
            .uploads_in_progress
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let offset = match appended {
            Ok(n) => n,
            Err(StorageError::IngestTooLarge { .. }) if quota.is_some() => {
                add(&self.metrics.quota_denied, 1);
                let q = quota.unwrap_or_else(|| unreachable!());
                return Err(ApiError::new(
                    ErrorCode::Denied,
                    format!(
                        "quota exceeded: {} may store {} bytes and has {} left",
                        q.scope, q.limit, q.remaining
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        add(&self.metrics.bytes_received, offset - state.offset);
        if let Some((start, end)) = range {
            if offset != end + 1 {
                // Not recorded: the next append cuts the ingest back to the old offset.
                return Err(ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!(
                        "chunk range {start}-{end} announced {} bytes, the body had {}",
                        end - start + 1,
                        offset - start
                    ),
                )
                .with_status(416));
            }
        }
        let h = hasher.lock().unwrap_or_else(|p| p.into_inner()).clone();
        state.offset = offset;
        state.hash = hex_encode(&h.save_state());
        Ok(())
    }

    async fn verify_and_commit(
        &self,
        name: &str,
        id: &str,
        state: &UploadState,
        digest: &Digest,
    ) -> Result<(), ApiError> {
        let actual = self.hasher_of(id, state).await?.finish();
        if &actual != digest {
            let _ = self.storage.ingest_abort(id).await;
            add(&self.metrics.uploads_cancelled, 1);
            return Err(ApiError::digest_invalid(format!(
                "the uploaded content has digest {actual}, not {digest}"
            ))
            .with_detail(serde_json::json!({ "digest": digest.to_string() })));
        }
        let _guard = self.storage.reference_guard().await?;
        if !self.links(name, digest).await? {
            if let Err(e) = self.check_quota(name, state.offset).await {
                let _ = self.storage.ingest_abort(id).await;
                add(&self.metrics.quota_denied, 1);
                return Err(e);
            }
        }
        self.storage
            .ingest_commit(id, state.offset, &layout::blob(digest))
            .await?;
        self.link_blob(name, digest, state.offset).await?;
        add(&self.metrics.uploads_completed, 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_look_like_uuids_and_are_checked() {
        let id = new_upload_id().unwrap();
        assert!(valid_upload_id(&id), "{id}");
        assert_eq!(id.len(), 36);
        assert!(!valid_upload_id("../../etc"));
        assert!(!valid_upload_id(""));
        assert_eq!(hex_decode(&hex_encode(&[1, 255, 0])).unwrap(), [1, 255, 0]);
        assert!(hex_decode("zz").is_none());
    }
}
