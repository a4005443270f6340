//! Turning a directory of changes into a layer: the deterministic tar goes into the content
//! store (its sha256 is the diff_id) and the directory itself becomes the snapshot.

use std::path::{Path, PathBuf};

use strata_layer::{write_layer, ChangeSource, WriteOptions};
use strata_oci::{chain_ids, media_type, Digest};
use strata_store::{DriverKind, LayerRecord, Store};

use crate::temp_area::TempArea;
use crate::tree_diff::diff_trees;
use crate::BuildError;

/// Commits `dir` as the layer on top of `diff_ids`.
pub(crate) fn commit_layer(
    store: &Store,
    diff_ids: &[Digest],
    dir: &Path,
    source: ChangeSource,
    mtime_clamp: Option<i64>,
    line: usize,
) -> Result<LayerRecord, BuildError> {
    let mut writer = store.content().writer()?;
    let opts = WriteOptions {
        source,
        mtime_clamp,
    };
    write_layer(dir, &mut writer, &opts).map_err(|source| BuildError::Layer { line, source })?;
    let (diff_id, size) = writer.commit(None)?;
    let mut all = diff_ids.to_vec();
    all.push(diff_id.clone());
    let chain = chain_ids(&all);
    let (chain_id, parent) = (
        &chain[chain.len() - 1],
        chain.len().checked_sub(2).map(|i| &chain[i]),
    );
    let snap = store.snapshotter();
    if !snap.exists(chain_id)? {
        if snap.kind() == DriverKind::Overlay {
            // The change dir is exactly an overlay upper dir: rename it into place.
            snap.commit_dir(chain_id, parent, &diff_id, dir)?;
        } else {
            // vfs snapshots are complete trees: apply the layer onto a copy of the parent.
            let mut tar = store.content().open(&diff_id)?;
            snap.unpack_layer(chain_id, parent, &diff_id, &mut tar)?;
        }
    }
    Ok(LayerRecord {
        diff_id: diff_id.clone(),
        blob: diff_id,
        media_type: media_type::OCI_LAYER_TAR.to_string(),
        blob_size: size,
    })
}

/// Commits a RUN on the vfs driver: `tree` is the container's full copy of the parent
/// snapshot after the run. Its differences from the parent, as an overlay-style change dir,
/// give the layer (the same tar, so the same diff_id, as on overlay); `tree` itself becomes
/// the snapshot (rename, no second copy).
pub(crate) fn commit_tree(
    store: &Store,
    area: &TempArea,
    diff_ids: &[Digest],
    parent_tree: &Path,
    tree: &Path,
    mtime_clamp: Option<i64>,
    line: usize,
) -> Result<LayerRecord, BuildError> {
    let changes = area.scratch()?;
    diff_trees(parent_tree, tree, changes.path())?;
    let mut writer = store.content().writer()?;
    let opts = WriteOptions {
        source: ChangeSource::OverlayUpper,
        mtime_clamp,
    };
    write_layer(changes.path(), &mut writer, &opts)
        .map_err(|source| BuildError::Layer { line, source })?;
    let (diff_id, size) = writer.commit(None)?;
    let mut all = diff_ids.to_vec();
    all.push(diff_id.clone());
    let chain = chain_ids(&all);
    let parent = chain.len().checked_sub(2).map(|i| &chain[i]);
    store
        .snapshotter()
        .commit_dir(&chain[chain.len() - 1], parent, &diff_id, tree)?;
    Ok(LayerRecord {
        diff_id: diff_id.clone(),
        blob: diff_id,
        media_type: media_type::OCI_LAYER_TAR.to_string(),
        blob_size: size,
    })
}

/// The read-only root filesystem of a chain as a plain directory: the vfs snapshot itself,
/// or an overlay mount that is undone on drop.
pub(crate) struct MountedRootfs {
    path: PathBuf,
    mounted: bool,
    _dir: Option<tempfile::TempDir>,
}

impl MountedRootfs {
    pub(crate) fn open(
        store: &Store,
        area: &TempArea,
        chain: Option<&Digest>,
    ) -> Result<MountedRootfs, BuildError> {
        let snap = store.snapshotter();
        let Some(chain) = chain else {
            let dir = area.scratch()?;
            return Ok(MountedRootfs {
                path: dir.path().to_path_buf(),
                mounted: false,
                _dir: Some(dir),
            });
        };
        if snap.kind() == DriverKind::Vfs {
            let info = snap
                .info(chain)?
                .ok_or_else(|| BuildError::at(0, format!("snapshot {chain} is missing")))?;
            return Ok(MountedRootfs {
                path: info.path,
                mounted: false,
                _dir: None,
            });
        }
        let dir = area.scratch()?;
        snap.mount(chain, dir.path(), None)?;
        Ok(MountedRootfs {
            path: dir.path().to_path_buf(),
            mounted: true,
            _dir: Some(dir),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MountedRootfs {
    fn drop(&mut self) {
        if self.mounted {
            // Nothing useful to do on failure: the lazy detach leaves no busy mount behind.
            let _ = strata_store::unmount(&self.path);
        }
    }
}
