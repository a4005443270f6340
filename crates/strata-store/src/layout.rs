//! The store's on-disk layout: every name directly under the store root, in one table.
//!
//! Components keep their own files in the store (a build's temp areas, volumes, the `--init`
//! executable…), but they never invent a directory name: they ask the store for one of these
//! ([`crate::Store::private_dir`]). So the whole layout is read here, every directory gets the
//! same private mode, and nothing collides.

/// A directory directly under the store root. All are private to root (0700).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDir {
    /// `blobs/sha256/<hex>`: the content store's verified blobs.
    Blobs,
    /// `ingest/`: blobs being written (partial, flocked, resumable).
    Ingest,
    /// `snapshots/<driver>/<id>`: unpacked layers and containers' upper dirs.
    Snapshots,
    /// `containers/<id>/`: a container's config, state, log, runtime state and mounts.
    Containers,
    /// `volumes/<name>/_data`: named and anonymous volumes.
    Volumes,
    /// `init/strata-init`: the `--init` executable, bind-mounted into containers.
    Init,
    /// `build-tmp/build-<pid>-<n>/`: a running build's scratch space, removed when it ends.
    BuildTmp,
    /// `build-context/`: the build context stat cache, one file per context directory.
    BuildContext,
    /// `build-cache-mounts/<id>`: `RUN --mount=type=cache` directories.
    BuildCacheMounts,
    /// `build-copy-files/<diff_id>`: the file index of a COPY layer, for reuse by the next
    /// build of the same step.
    BuildCopyFiles,
}

impl StoreDir {
    /// Every directory, in the order `Store::open` creates the ones it always needs.
    pub const ALL: [StoreDir; 10] = [
        StoreDir::Blobs,
        StoreDir::Ingest,
        StoreDir::Snapshots,
        StoreDir::Containers,
        StoreDir::Volumes,
        StoreDir::Init,
        StoreDir::BuildTmp,
        StoreDir::BuildContext,
        StoreDir::BuildCacheMounts,
        StoreDir::BuildCopyFiles,
    ];

    /// The directory's name under the store root.
    pub fn name(self) -> &'static str {
        match self {
            StoreDir::Blobs => "blobs",
            StoreDir::Ingest => "ingest",
            StoreDir::Snapshots => "snapshots",
            StoreDir::Containers => "containers",
            StoreDir::Volumes => "volumes",
            StoreDir::Init => "init",
            StoreDir::BuildTmp => "build-tmp",
            StoreDir::BuildContext => "build-context",
            StoreDir::BuildCacheMounts => "build-cache-mounts",
            StoreDir::BuildCopyFiles => "build-copy-files",
        }
    }

    /// Created by `Store::open` (the others when first used).
    pub(crate) fn always_present(self) -> bool {
        matches!(
            self,
            StoreDir::Blobs | StoreDir::Ingest | StoreDir::Snapshots | StoreDir::Containers
        )
    }
}

/// The SQLite metadata database (with its `-wal` and `-shm` files beside it).
pub(crate) const METADATA_DB: &str = "metadata.db";
/// The file whose flock is the store-wide writer lease.
pub(crate) const LOCK_FILE: &str = "lock";
/// Blobs are kept under their digest algorithm's name.
pub(crate) const BLOB_ALGORITHM: &str = "sha256";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_plain() {
        let mut names: Vec<&str> = StoreDir::ALL.iter().map(|d| d.name()).collect();
        names.extend([METADATA_DB, LOCK_FILE]);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(names
            .iter()
            .all(|n| !n.contains('/') && !n.starts_with('.')));
    }
}
