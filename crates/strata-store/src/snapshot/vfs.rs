//! The vfs snapshotter: each snapshot is a complete copy of its tree. Slow and large,
//! but works on any filesystem and needs no overlay support.

use std::io::Read;
use std::path::Path;

use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};
use strata_oci::Digest;

use crate::error::{IoContext, StoreError};
use crate::snapshot::mount;
use crate::snapshot::tree::copy_tree;
use crate::snapshot::{DriverKind, SnapshotDir, SnapshotInfo, Snapshotter, WritableLayer};

#[derive(Debug)]
pub(crate) struct VfsSnapshotter {
    dir: SnapshotDir,
}

impl VfsSnapshotter {
    pub(crate) fn new(dir: SnapshotDir) -> VfsSnapshotter {
        VfsSnapshotter { dir }
    }
}

impl Snapshotter for VfsSnapshotter {
    fn kind(&self) -> DriverKind {
        DriverKind::Vfs
    }

    fn exists(&self, chain_id: &Digest) -> Result<bool, StoreError> {
        Ok(self.dir.get(chain_id)?.is_some())
    }

    fn info(&self, chain_id: &Digest) -> Result<Option<SnapshotInfo>, StoreError> {
        self.dir.get(chain_id)
    }

    fn unpack_layer(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        tar: &mut dyn Read,
    ) -> Result<SnapshotInfo, StoreError> {
        let parent_path = match parent {
            Some(p) => Some(
                self.dir
                    .get(p)?
                    .ok_or_else(|| StoreError::SnapshotNotFound(p.clone()))?
                    .path,
            ),
            None => None,
        };
        self.dir
            .create(chain_id, parent, diff_id, tar, |temp, tar| {
                if let Some(p) = &parent_path {
                    copy_tree(p, temp)?;
                }
                let opts = ApplyOptions {
                    whiteouts: WhiteoutMode::Remove,
                    preserve_owners: true,
                };
                apply_layer(tar, temp, &opts).map_err(|source| StoreError::Unpack {
                    chain_id: chain_id.clone(),
                    diff_id: diff_id.clone(),
                    source,
                })?;
                Ok(())
            })
    }

    fn commit_dir(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        dir: &Path,
    ) -> Result<SnapshotInfo, StoreError> {
        self.dir.commit(chain_id, parent, diff_id, dir)
    }

    fn mount(
        &self,
        chain_id: &Digest,
        target: &Path,
        writable: Option<&WritableLayer>,
    ) -> Result<(), StoreError> {
        let info = self
            .dir
            .get(chain_id)?
            .ok_or_else(|| StoreError::SnapshotNotFound(chain_id.clone()))?;
        match writable {
            None => mount::bind(&info.path, target, true),
            Some(w) => {
                // The upper dir is the container's full private copy; fill it once.
                let empty = std::fs::read_dir(&w.upper)
                    .ctx("listing", &w.upper)?
                    .next()
                    .is_none();
                if empty {
                    copy_tree(&info.path, &w.upper)?;
                }
                mount::bind(&w.upper, target, false)
            }
        }
    }

    fn remove(&self, chain_id: &Digest) -> Result<(), StoreError> {
        self.dir.remove(chain_id)
    }

    fn usage(&self, chain_id: &Digest) -> Result<u64, StoreError> {
        self.dir.usage(chain_id)
    }

    fn list(&self) -> Result<Vec<SnapshotInfo>, StoreError> {
        self.dir.list()
    }
}
