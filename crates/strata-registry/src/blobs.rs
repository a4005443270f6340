//! Blobs seen through a repository: a blob is served by a repository only when the
//! repository links it (pushed there, mounted there, or referenced by a manifest pushed
//! there), so knowing a digest never reveals another repository's content.

use std::ops::Range;

use strata_oci::Digest;

use crate::api_error::{ApiError, ErrorCode};
use crate::layout;
use crate::registry::Registry;
use crate::storage::{ByteStream, ObjectMeta};

impl Registry {
    /// Whether the repository links the blob.
    pub(crate) async fn links(&self, name: &str, digest: &Digest) -> Result<bool, ApiError> {
        Ok(self
            .storage
            .head(&layout::blob_link(name, digest))
            .await?
            .is_some())
    }

    /// Size and time of a blob the repository links; `None` when it does not (or the bytes
    /// are gone).
    pub async fn blob_meta(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<ObjectMeta>, ApiError> {
        if !self.links(name, digest).await? {
            return Ok(None);
        }
        Ok(self.storage.head(&layout::blob(digest)).await?)
    }

    /// A blob's bytes, or the range of them.
    pub async fn read_blob(
        &self,
        name: &str,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ObjectMeta, ByteStream)>, ApiError> {
        if !self.links(name, digest).await? {
            return Ok(None);
        }
        Ok(self.storage.read(&layout::blob(digest), range).await?)
    }

    /// Unlinks a blob from a repository (the bytes go when no repository needs them).
    pub async fn delete_blob(&self, name: &str, digest: &Digest) -> Result<(), ApiError> {
        if !self
            .storage
            .delete(&layout::blob_link(name, digest))
            .await?
        {
            return Err(ApiError::blob_unknown(digest));
        }
        self.quotas.forget(name);
        Ok(())
    }

    /// Cross-repository mount: links into `name` a blob that `from` links. `false` when
    /// `from` does not have it (the client then uploads it).
    pub async fn mount_blob(
        &self,
        name: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, ApiError> {
        if !self.links(from, digest).await? {
            return Ok(false);
        }
        let _guard = self.storage.reference_guard().await?;
        // Touch first, then check: a collector sweeping concurrently either saw the touch or
        // already removed the blob (and we answer "upload it").
        let key = layout::blob(digest);
        if !self.storage.touch(&key).await? {
            return Ok(false);
        }
        let Some(meta) = self.storage.head(&key).await? else {
            return Ok(false);
        };
        self.link_blob(name, digest, meta.size).await?;
        Ok(true)
    }

    /// Links a blob into a repository, charging its quota. Called under the reference guard.
    pub(crate) async fn link_blob(
        &self,
        name: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<(), ApiError> {
        if self.links(name, digest).await? {
            return Ok(());
        }
        self.check_quota(name, size).await?;
        self.storage
            .put(&layout::blob_link(name, digest), bytes::Bytes::new())
            .await?;
        self.quotas.charge(name, size);
        Ok(())
    }

    /// Refuses with DENIED when `size` more bytes would take `name` past a quota.
    pub(crate) async fn check_quota(&self, name: &str, size: u64) -> Result<(), ApiError> {
        if let Some(q) = self.quotas.remaining(self, name).await? {
            if size > q.remaining {
                return Err(ApiError::new(
                    ErrorCode::Denied,
                    format!(
                        "quota exceeded: {} may store {} bytes and has {} left; this needs {size}",
                        q.scope, q.limit, q.remaining
                    ),
                ));
            }
        }
        Ok(())
    }
}
