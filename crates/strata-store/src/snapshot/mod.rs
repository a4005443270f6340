//! Snapshotters: unpacked layers on disk, one directory per chain id, and how to mount them.

#[cfg(test)]
mod conformance;
mod mount;
mod overlay;
mod records;
mod tree;
mod vfs;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use strata_oci::Digest;

use crate::error::StoreError;

pub(crate) use mount::probe_overlay;
pub use mount::{enter_private_mount_namespace, mount_points_under, unmount};
pub(crate) use overlay::OverlaySnapshotter;
pub(crate) use records::{SnapshotDir, LOCK_PREFIX, TEMP_PREFIX};
pub(crate) use tree::dir_usage;
pub(crate) use vfs::VfsSnapshotter;

/// Which snapshotter a store uses. Fixed when the store is first opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DriverKind {
    /// overlayfs: each snapshot holds only its layer's changes (with overlay whiteouts);
    /// a view is an overlay mount of the chain.
    Overlay,
    /// Plain copies: each snapshot holds the complete tree. Works on any filesystem.
    Vfs,
}

impl DriverKind {
    /// The name used on disk (`snapshots/<name>`) and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::Overlay => "overlay",
            DriverKind::Vfs => "vfs",
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DriverKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "overlay" | "overlay2" | "overlayfs" => Ok(DriverKind::Overlay),
            "vfs" => Ok(DriverKind::Vfs),
            other => Err(StoreError::UnknownDriver(other.to_string())),
        }
    }
}

/// A layer unpacked by [`Snapshotter::stage_layer`], not yet part of any chain. Its temp
/// dir is locked for as long as this lives; dropping it uncommitted removes the dir.
#[derive(Debug)]
pub struct StagedLayer {
    path: PathBuf,
    /// Held for its flock: marks the temp dir as owned by a live process.
    _lock: std::fs::File,
}

impl StagedLayer {
    pub(crate) fn new(path: PathBuf, lock: std::fs::File) -> StagedLayer {
        StagedLayer { path, _lock: lock }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        // After a commit the dir has been renamed away and this finds nothing.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One recorded snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub chain_id: Digest,
    /// The snapshot below this one; None for a base layer.
    pub parent: Option<Digest>,
    /// The layer this snapshot added on top of its parent.
    pub diff_id: Digest,
    pub kind: DriverKind,
    /// The directory of this snapshot: `<root>/snapshots/<driver>/<n>`.
    pub path: PathBuf,
    /// When it was recorded, unix seconds.
    pub created: i64,
}

/// The private, writable part of a container or RUN step on top of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableLayer {
    /// Changes land here (overlay upperdir; for vfs the full writable copy).
    pub upper: PathBuf,
    /// overlay's workdir: an empty dir on the same filesystem as `upper` (unused by vfs).
    pub work: PathBuf,
    /// The changes are thrown away after use (`run --rm`): overlay's `volatile` option, so
    /// unmounting does not sync the whole filesystem (where the kernel supports it).
    pub volatile: bool,
}

/// Unpacked layers, named by chain id, and views of them.
///
/// The lifecycle follows containerd's snapshotter, without its separate active/committed
/// states: a snapshot is only ever created complete.
///
/// **Importing a layer.** To unpack image layers `L0..Ln`, compute their chain ids
/// (`strata_oci::chain_ids` of the diff ids). For each layer bottom first, if
/// [`exists`](Snapshotter::exists) says the chain id is present, move on; otherwise call
/// [`unpack_layer`](Snapshotter::unpack_layer) with the chain id, the previous chain id as
/// parent and the uncompressed layer tar. The layer is applied into a private temp dir,
/// then renamed into place and recorded in one step, so a crash never leaves a half
/// snapshot visible and two processes unpacking the same layer end with one snapshot.
/// With overlay, layers of one image can be unpacked in parallel (each is applied into an
/// empty dir); with vfs each layer starts as a copy of its parent, so parents come first.
///
/// **Running a container.** To get a root filesystem for image `I`, take the chain id of
/// its top layer and [`mount`](Snapshotter::mount) it at the rootfs path with a
/// [`WritableLayer`] (an upper and a work dir owned by the container). Reads come from the
/// snapshot chain, writes land in `upper`, the snapshots themselves are never modified.
/// Without a writable layer the mount is a read-only view (for `COPY --from`, inspection).
/// When the container is done, [`unmount`] the target; the upper dir is the container's
/// diff (a RUN step can turn it into the next snapshot with
/// [`commit_dir`](Snapshotter::commit_dir) instead of re-extracting its layer tar).
///
/// **Removing.** [`remove`](Snapshotter::remove) deletes one snapshot; it refuses while
/// child snapshots are recorded on top. Store gc removes unreferenced snapshots top down.
pub trait Snapshotter: Send + Sync {
    fn kind(&self) -> DriverKind;

    fn exists(&self, chain_id: &Digest) -> Result<bool, StoreError>;

    /// The record of one snapshot, if present.
    fn info(&self, chain_id: &Digest) -> Result<Option<SnapshotInfo>, StoreError>;

    /// Unpacks one UNCOMPRESSED layer tar as snapshot `chain_id` on top of `parent` (None
    /// for the base layer). Idempotent: an existing snapshot is left alone, but the reader
    /// is still drained to EOF so a caller hashing the stream sees every byte. Applies into
    /// a temp dir, checks the stream hashes to `diff_id` (else `DiffIdMismatch`, nothing
    /// recorded), then renames and records it, so a crash never leaves a half snapshot
    /// visible. overlay: applies into an empty dir with overlay whiteout markers; vfs:
    /// copies the parent tree (modes, owners, xattrs, hardlinks, devices, mtimes) and
    /// applies with whiteouts removing files.
    fn unpack_layer(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        tar: &mut dyn Read,
    ) -> Result<SnapshotInfo, StoreError>;

    /// Records the directory `dir` (on the store's filesystem) as snapshot `chain_id` by
    /// renaming it into place: an overlay upper dir for overlay, a complete tree for vfs.
    /// If the snapshot already exists, `dir` is removed and the existing one returned.
    fn commit_dir(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        dir: &Path,
    ) -> Result<SnapshotInfo, StoreError>;

    /// Unpacks an UNCOMPRESSED layer tar into a locked temp dir before its place in a
    /// chain is known, so a layer can unpack while it is still arriving (a `docker save`
    /// archive names its layers' order only at its end). Only drivers whose snapshot of a
    /// layer does not depend on its parent can do this (overlay); others return `None` and
    /// the caller unpacks with [`Snapshotter::unpack_layer`] once the chain is known.
    fn stage_layer(&self, tar: &mut dyn Read) -> Result<Option<StagedLayer>, StoreError> {
        let _ = tar;
        Ok(None)
    }

    /// Records a staged layer as snapshot `chain_id`. `content` is the digest of exactly the
    /// bytes that were staged, computed by the caller as they streamed (the content store
    /// computes it while ingesting the same bytes); it must equal `diff_id`, or nothing is
    /// recorded. An existing snapshot wins and the staged copy is dropped.
    fn commit_staged(
        &self,
        staged: StagedLayer,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        content: &Digest,
    ) -> Result<SnapshotInfo, StoreError> {
        if content != diff_id {
            return Err(StoreError::DiffIdMismatch {
                chain_id: chain_id.clone(),
                expected: diff_id.clone(),
                actual: content.clone(),
            });
        }
        let out = self.commit_dir(chain_id, parent, diff_id, &staged.path);
        drop(staged);
        out
    }

    /// Mounts the read-only view of `chain_id` (or a writable one if `writable` is given)
    /// at `target`. overlay: lowerdirs are the chain, top first, passed one by one through
    /// the new mount API so the chain length is not limited by one mount option page
    /// (falls back to short relative lowerdir paths on kernels without `lowerdir+`);
    /// a one-layer read-only view is a read-only bind mount. vfs: a read-only bind mount,
    /// or for a writable view a copy of the snapshot into `upper` (if empty) bind-mounted.
    fn mount(
        &self,
        chain_id: &Digest,
        target: &Path,
        writable: Option<&WritableLayer>,
    ) -> Result<(), StoreError>;

    /// Removes one snapshot (record first, then its dir). Fails while children exist.
    fn remove(&self, chain_id: &Digest) -> Result<(), StoreError>;

    /// Bytes in this snapshot's own dir (hardlinked files counted once).
    fn usage(&self, chain_id: &Digest) -> Result<u64, StoreError>;

    /// Every recorded snapshot of this driver.
    fn list(&self) -> Result<Vec<SnapshotInfo>, StoreError>;
}
