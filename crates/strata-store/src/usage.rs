//! `system df`: how much space images, layers, blobs and containers take.

use std::collections::HashMap;

use serde::Serialize;
use strata_oci::Digest;

use crate::error::StoreError;
use crate::gc::{orphan_snapshot_dirs, reachable};
use crate::store::abandoned_temps;
use crate::store::Store;

/// One image's share of the disk. Sizes count the image's blobs (config, manifest,
/// layer blobs as stored), each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUsage {
    pub id: Digest,
    pub tags: Vec<String>,
    pub size: u64,
    /// Bytes of blobs that other images use too.
    pub shared_size: u64,
    /// `size - shared_size`: what removing only this image would free.
    pub unique_size: u64,
    pub containers: usize,
}

/// Totals for `system df`. Plain data: the CLI renders it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Distinct bytes of all images' blobs.
    pub images_size: u64,
    /// Images without containers: their unique bytes (what `image prune -a` would free).
    pub images_reclaimable: u64,
    pub active_images: usize,
    pub layers_count: usize,
    /// Bytes of every snapshot dir (the unpacked layers).
    pub layers_size: u64,
    pub blobs_count: usize,
    /// Bytes of every blob in the content store.
    pub blobs_size: u64,
    pub containers_count: usize,
    /// Bytes of the containers' own directories (writable layers, logs).
    pub containers_size: u64,
    /// Bytes no record accounts for: snapshot dirs without a record and the temps of dead
    /// processes (a killed pull, load or rmi). `system prune` frees them.
    pub unreferenced_size: u64,
    /// Bytes gc would free now: blobs and snapshots no record reaches, and the unreferenced.
    pub reclaimable: u64,
}

impl Store {
    pub fn disk_usage(&self) -> Result<DiskUsage, StoreError> {
        let images = self.images()?;
        let blob_size = |d: &Digest, recorded: u64| self.content().size(d).unwrap_or(recorded);
        let mut users: HashMap<Digest, usize> = HashMap::new();
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        for img in &images {
            let mut recorded: HashMap<&Digest, u64> =
                img.layers.iter().map(|l| (&l.blob, l.blob_size)).collect();
            recorded.entry(&img.id).or_insert(0);
            for b in img.blobs() {
                *users.entry(b.clone()).or_default() += 1;
                let s = blob_size(&b, recorded.get(&b).copied().unwrap_or(0));
                sizes.insert(b, s);
            }
        }
        let mut out = DiskUsage::default();
        for img in &images {
            let (mut size, mut shared) = (0, 0);
            for b in img.blobs() {
                let s = sizes.get(&b).copied().unwrap_or(0);
                size += s;
                if users.get(&b).copied().unwrap_or(0) > 1 {
                    shared += s;
                }
            }
            let containers = self.containers_using(&img.id)?.len();
            if containers > 0 {
                out.active_images += 1;
            } else {
                out.images_reclaimable += size - shared;
            }
            out.images.push(ImageUsage {
                id: img.id.clone(),
                tags: self.tags_of(&img.id)?,
                size,
                shared_size: shared,
                unique_size: size - shared,
                containers,
            });
        }
        out.images_size = sizes.values().sum();

        let keep = reachable(self)?;
        for s in self.snapshotter().list()? {
            let bytes = self.snapshotter().usage(&s.chain_id).unwrap_or(0);
            out.layers_count += 1;
            out.layers_size += bytes;
            if !keep.chains.contains(&s.chain_id) {
                out.reclaimable += bytes;
            }
        }
        for b in self.content().list()? {
            let bytes = self.content().size(&b).unwrap_or(0);
            out.blobs_count += 1;
            out.blobs_size += bytes;
            if !keep.blobs.contains(&b) {
                out.reclaimable += bytes;
            }
        }
        out.containers_count = self.db().container_count()?;
        for row in self.containers()? {
            out.containers_size += tree_size(&self.container_dir(&row.id));
        }
        for dir in orphan_snapshot_dirs(self)? {
            out.unreferenced_size += tree_size(&dir);
        }
        // Claimed only to be measured: a live writer's temp is not claimable, so not counted.
        for (temp, _claim) in abandoned_temps(self)? {
            out.unreferenced_size += tree_size(&temp);
        }
        out.reclaimable += out.unreferenced_size;
        Ok(out)
    }
}

/// Bytes of the files under `path` (a file's own size for a file; 0 when it is gone), each
/// hardlinked inode counted once.
pub fn tree_size(path: &std::path::Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => crate::snapshot::dir_usage(path).unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{ingest_image, open_store};
    use crate::DriverKind;

    #[test]
    fn shared_and_unique_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let a = ingest_image(&store, b"cfg-a", &[b"shared-layer", b"aaaa"]);
        let b = ingest_image(&store, b"cfg-bb", &[b"shared-layer"]);
        store.put_image(&a, &["a:1".into()]).unwrap();
        store.put_image(&b, &[]).unwrap();
        store.content().ingest(&b"unreferenced"[..], None).unwrap();
        let du = store.disk_usage().unwrap();
        let ua = du.images.iter().find(|i| i.id == a.id).unwrap();
        assert_eq!(
            (ua.size, ua.shared_size, ua.unique_size),
            (5 + 12 + 4, 12, 9)
        );
        assert_eq!(ua.tags, vec!["a:1".to_string()]);
        let ub = du.images.iter().find(|i| i.id == b.id).unwrap();
        assert_eq!((ub.size, ub.shared_size, ub.unique_size), (6 + 12, 12, 6));
        assert_eq!(du.images_size, 5 + 6 + 12 + 4);
        assert_eq!(du.blobs_count, 5);
        assert_eq!(du.blobs_size, 5 + 6 + 12 + 4 + 12);
        assert_eq!(du.reclaimable, 12);
        assert_eq!(du.images_reclaimable, 9 + 6);
    }
}
