//! The overlay snapshotter: each snapshot holds one layer's changes with overlay whiteout
//! markers; views are overlay mounts of the chain.

use std::io::Read;
use std::path::Path;

use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};
use strata_oci::Digest;

use crate::error::StoreError;
use crate::snapshot::mount::{self, OverlayApi};
use crate::snapshot::{
    DriverKind, SnapshotDir, SnapshotInfo, Snapshotter, StagedLayer, WritableLayer, TEMP_PREFIX,
};

#[derive(Debug)]
pub(crate) struct OverlaySnapshotter {
    dir: SnapshotDir,
    api: OverlayApi,
}

impl OverlaySnapshotter {
    pub(crate) fn new(dir: SnapshotDir) -> OverlaySnapshotter {
        OverlaySnapshotter {
            dir,
            api: OverlayApi::New,
        }
    }

    /// Forces mount(2) with relative lowerdirs, as on kernels without `lowerdir+` (tests).
    #[cfg(test)]
    pub(crate) fn with_legacy_mounts(dir: SnapshotDir) -> OverlaySnapshotter {
        OverlaySnapshotter {
            dir,
            api: OverlayApi::Legacy,
        }
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn kind(&self) -> DriverKind {
        DriverKind::Overlay
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
        self.dir
            .create(chain_id, parent, diff_id, tar, |temp, tar| {
                let opts = ApplyOptions {
                    whiteouts: WhiteoutMode::OverlayMarkers,
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

    fn stage_layer(&self, tar: &mut dyn Read) -> Result<Option<StagedLayer>, StoreError> {
        let (lock, temp) = crate::lock::create_owned_temp_dir(self.dir.dir(), TEMP_PREFIX)?;
        let staged = StagedLayer::new(temp, lock);
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::OverlayMarkers,
            preserve_owners: true,
        };
        apply_layer(tar, staged.path(), &opts).map_err(|source| StoreError::Stage { source })?;
        Ok(Some(staged))
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
        let chain = self.dir.chain(chain_id)?;
        if chain.len() == 1 && writable.is_none() {
            return mount::bind(&chain[0].path, target, true);
        }
        // Dir names only: the legacy path resolves them relative to the snapshots dir.
        let lowers: Vec<String> = chain
            .iter()
            .filter_map(|s| s.path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        mount::overlay(self.dir.dir(), &lowers, writable, target, self.api)
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
