//! Unpacking an image's layers from the content store into snapshots.

use std::sync::atomic::{AtomicUsize, Ordering};

use strata_layer::decompress;
use strata_oci::Digest;

use crate::error::StoreError;
use crate::images::ImageRecord;
use crate::snapshot::DriverKind;
use crate::store::Store;

impl Store {
    /// Makes sure every layer of `image` is unpacked, reading (and decompressing: gzip,
    /// zstd or none, sniffed) each missing layer's blob from the content store. Each layer
    /// is verified against its diff id before it is recorded. overlay unpacks missing
    /// layers in parallel (one worker per core, at most 4); vfs goes bottom first.
    /// Returns the top chain id to mount (None for an image without layers).
    /// Hold a [`writer_lease`](Store::writer_lease) until the image is recorded.
    pub fn unpack_image(&self, image: &ImageRecord) -> Result<Option<Digest>, StoreError> {
        let chain = image.chain_ids();
        let snap = self.snapshotter();
        let mut missing = Vec::new();
        for (i, chain_id) in chain.iter().enumerate() {
            if !snap.exists(chain_id)? {
                missing.push(i);
            }
        }
        let unpack_one = |i: usize| -> Result<(), StoreError> {
            let layer = &image.layers[i];
            let parent = i.checked_sub(1).map(|p| &chain[p]);
            // Large reads: the tar reader asks for 512-byte headers and small file bodies.
            let blob =
                std::io::BufReader::with_capacity(1 << 20, self.content().open(&layer.blob)?);
            let (_, mut tar) = decompress(blob).map_err(|source| StoreError::Unpack {
                chain_id: chain[i].clone(),
                diff_id: layer.diff_id.clone(),
                source,
            })?;
            snap.unpack_layer(&chain[i], parent, &layer.diff_id, &mut tar)?;
            Ok(())
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        if snap.kind() == DriverKind::Vfs || missing.len() < 2 || workers < 2 {
            for i in missing {
                unpack_one(i)?;
            }
        } else {
            let next = AtomicUsize::new(0);
            let failed = std::sync::Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for _ in 0..workers.min(missing.len()) {
                    s.spawn(|| loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = missing.get(k) else { break };
                        if let Err(e) = unpack_one(i) {
                            failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((i, e));
                        }
                    });
                }
            });
            let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
            failed.sort_by_key(|(i, _)| *i);
            if let Some((lowest, _)) = failed.first() {
                // Layers above the failed one were unpacked in parallel and recorded on a
                // parent that will not exist: take them back (top first, children before
                // parents), so what stays recorded is a complete chain from the bottom.
                for &i in missing.iter().rev().filter(|&&i| i > *lowest) {
                    if snap.exists(&chain[i])? {
                        let _ = snap.remove(&chain[i]);
                    }
                }
            }
            if let Some((_, e)) = failed.into_iter().next() {
                return Err(e);
            }
        }
        Ok(chain.last().cloned())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::test_support::{layer_tar, open_store, Entry};
    use crate::{DriverKind, ImageRecord, LayerRecord, StoreError};

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut w =
            strata_layer::CompressWriter::new(Vec::new(), strata_layer::Compression::Gzip).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn unpacks_compressed_layers_and_rejects_a_wrong_diff_id() {
        for driver in [DriverKind::Overlay, DriverKind::Vfs] {
            unpack_image_with(driver);
        }
    }

    fn unpack_image_with(driver: DriverKind) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), driver);
        let base = layer_tar(&[Entry::File("etc/os", b"strata")]);
        let top = layer_tar(&[Entry::File("app", b"1")]);
        let layer = |tar: &[u8], compressed: Vec<u8>| {
            let (blob, blob_size) = store.content().ingest(&compressed[..], None).unwrap();
            LayerRecord {
                diff_id: Digest::sha256_of(tar),
                blob,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                blob_size,
            }
        };
        let (config, _) = store.content().ingest(&b"{}"[..], None).unwrap();
        let mut img = ImageRecord {
            id: config,
            manifest: None,
            layers: vec![layer(&base, gzip(&base)), layer(&top, top.clone())],
            created: None,
            added_at: 0,
            parent: None,
        };
        let top_chain = store.unpack_image(&img).unwrap().unwrap();
        assert_eq!(Some(&top_chain), img.chain_ids().last());
        let target = dir.path().join("view");
        std::fs::create_dir(&target).unwrap();
        store
            .snapshotter()
            .mount(&top_chain, &target, None)
            .unwrap();
        let seen = (
            std::fs::read(target.join("etc/os")),
            std::fs::read(target.join("app")),
        );
        crate::unmount(&target).unwrap();
        assert_eq!(
            (seen.0.unwrap(), seen.1.unwrap()),
            (b"strata".to_vec(), b"1".to_vec())
        );
        assert_eq!(store.snapshotter().list().unwrap().len(), 2);
        // Already there: nothing to do.
        assert_eq!(store.unpack_image(&img).unwrap(), Some(top_chain));

        img.layers[1].diff_id = Digest::sha256_of(b"a lie");
        let err = store.unpack_image(&img).unwrap_err();
        assert!(matches!(err, StoreError::DiffIdMismatch { .. }), "{err}");
        assert_eq!(store.snapshotter().list().unwrap().len(), 2);
        assert!(store.check().unwrap().is_clean());
    }
}
