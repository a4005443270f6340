//! The one pipeline that turns image documents and layer streams into recorded images, for
//! `load` and `pull` alike: pick the manifest for the platform from an index, match the
//! manifest's layers with the config's diff_ids, stream each layer blob into the content
//! store while (with overlay) unpacking it on a second thread, then commit the snapshots
//! unpacked while streaming, unpack the rest from their blobs, and only then record the
//! images, tags and repo digests.

use std::collections::BTreeMap;
use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use strata_oci::{
    media_type, Descriptor, Digest, ImageConfig, Index, Manifest, Platform, Reference,
};
use strata_store::{ImageRecord, LayerRecord, StagedLayer, Store};

use crate::channel::ChannelReader;
use crate::ImageError;

/// Chunks in flight between a layer's reader and its unpacking thread.
const STAGE_QUEUE: usize = 4;

/// A layer unpacked while its blob streamed in, and the digest of the tar it unpacked.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) layer: StagedLayer,
    pub(crate) diff_id: Digest,
}

/// Layers staged so far, by the digest of the blob they came from.
pub(crate) type StagedLayers = BTreeMap<Digest, Staged>;

/// Feeds one layer blob, chunk by chunk, to an unpacking thread (when the store's driver
/// can stage layers), while the caller writes the same chunks to the content store. The
/// blob may be compressed (sniffed). Call within `std::thread::scope`.
pub(crate) struct LayerStager<'scope> {
    tx: Option<SyncSender<Arc<Vec<u8>>>>,
    handle: Option<std::thread::ScopedJoinHandle<'scope, Option<Staged>>>,
}

impl<'scope> LayerStager<'scope> {
    /// Starts the unpacking thread if `stage` and the driver can stage; otherwise a no-op.
    pub(crate) fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &'env Store,
        stage: bool,
    ) -> LayerStager<'scope> {
        if !stage || store.driver() != strata_store::DriverKind::Overlay {
            return LayerStager {
                tx: None,
                handle: None,
            };
        }
        let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(STAGE_QUEUE);
        let handle = scope.spawn(move || stage_from(store, rx));
        LayerStager {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Hands the next chunk of the blob to the unpacking thread (which may have given up:
    /// then the layer is unpacked from its blob later).
    pub(crate) fn send(&mut self, chunk: Arc<Vec<u8>>) {
        if let Some(tx) = &self.tx {
            if tx.send(chunk).is_err() {
                self.tx = None;
            }
        }
    }

    /// Ends the stream and waits for the unpacking thread: the staged layer, if it worked.
    pub(crate) fn finish(mut self) -> Option<Staged> {
        self.tx = None;
        self.handle.take().and_then(|h| h.join().ok().flatten())
    }
}

fn stage_from(store: &Store, rx: Receiver<Arc<Vec<u8>>>) -> Option<Staged> {
    let mut blob = ChannelReader::new(rx);
    let staged = (|| {
        let (_, tar) = strata_layer::decompress(&mut blob).ok()?;
        let mut tar = strata_layer::DigestReader::new(tar);
        let layer = store.snapshotter().stage_layer(&mut tar).ok()??;
        // The diff_id covers every byte of the tar, padding after its end marker included.
        io::copy(&mut tar, &mut io::sink()).ok()?;
        Some(Staged {
            layer,
            diff_id: tar.digest(),
        })
    })();
    // Keep receiving until the sender is done, so it never blocks on a full queue.
    io::copy(&mut blob, &mut io::sink()).ok();
    staged
}

/// The manifest an index names for `wanted`, as Docker picks it (attestations skipped,
/// first match wins); Docker's message when none matches.
pub(crate) fn select_platform<'i>(
    index: &'i Index,
    wanted: &Platform,
) -> Result<&'i Descriptor, ImageError> {
    index
        .find_platform(wanted)
        .ok_or_else(|| ImageError::NoMatchingPlatform {
            platform: wanted.to_string(),
        })
}

/// Checks what a manifest's descriptors claim before anything is fetched: a container
/// image config, and layers strata can unpack (foreign layers refused).
pub(crate) fn check_manifest(manifest: &Manifest, reference: &str) -> Result<(), ImageError> {
    let config_type = manifest.config.media_type.as_str();
    if !media_type::is_config(config_type) {
        return Err(ImageError::NotAnImage {
            reference: reference.to_string(),
            reason: format!("its config has media type {config_type:?}"),
        });
    }
    for layer in &manifest.layers {
        if media_type::is_foreign_layer(&layer.media_type) {
            let from = layer
                .urls
                .as_ref()
                .and_then(|u| u.first())
                .map(|u| format!(" (served from {u})"))
                .unwrap_or_default();
            return Err(ImageError::ForeignLayer {
                reference: reference.to_string(),
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
                from,
            });
        }
        if !media_type::is_layer(&layer.media_type) {
            return Err(ImageError::NotAnImage {
                reference: reference.to_string(),
                reason: format!(
                    "layer {} has media type {:?}",
                    layer.digest, layer.media_type
                ),
            });
        }
    }
    Ok(())
}

/// The layer records of an image: each manifest layer with its config diff_id.
pub(crate) fn layer_records(
    manifest: &Manifest,
    config: &ImageConfig,
    what: &str,
) -> Result<Vec<LayerRecord>, ImageError> {
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::InvalidImage(format!(
            "{what}: {} layers, its config has {} diff_ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    Ok(manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(layer, diff_id)| LayerRecord {
            diff_id: diff_id.clone(),
            blob: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            blob_size: layer.size,
        })
        .collect())
}

pub(crate) fn parse_config(id: &Digest, bytes: &[u8]) -> Result<ImageConfig, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::InvalidConfig {
        digest: id.clone(),
        reason: e.to_string(),
    })
}

/// An image ready to be recorded once its layers are in place.
pub(crate) struct ImagePlan {
    pub(crate) record: ImageRecord,
    pub(crate) tags: Vec<Reference>,
    /// `name@sha256:…` the registry knows it by.
    pub(crate) repo_digests: Vec<String>,
}

/// A new image record (added now).
pub(crate) fn new_record(
    id: Digest,
    manifest: Option<Digest>,
    layers: Vec<LayerRecord>,
    config: &ImageConfig,
) -> ImageRecord {
    ImageRecord {
        id,
        manifest,
        layers,
        created: config.created.clone(),
        added_at: chrono::Utc::now().timestamp(),
        parent: None,
    }
}

/// The last steps of load and pull: commits the layers staged while streaming (when the
/// tar they unpacked is the layer the config names), unpacks the others from their blobs
/// (each verified against its diff_id), then records each image with its tags and repo
/// digests. Hold a writer lease.
pub(crate) fn finish_images(
    store: &Store,
    plans: &[ImagePlan],
    staged: &mut StagedLayers,
) -> Result<(), ImageError> {
    for plan in plans {
        commit_staged(store, &plan.record, staged)?;
        store.unpack_image(&plan.record)?;
    }
    for plan in plans {
        let names: Vec<String> = plan.tags.iter().map(|t| t.to_string()).collect();
        store.put_image(&plan.record, &names)?;
        for name in &plan.repo_digests {
            store.add_repo_digest(&plan.record.id, name)?;
        }
    }
    Ok(())
}

fn commit_staged(
    store: &Store,
    record: &ImageRecord,
    staged: &mut StagedLayers,
) -> Result<(), ImageError> {
    let chain = record.chain_ids();
    for (i, layer) in record.layers.iter().enumerate() {
        if store.snapshotter().exists(&chain[i])? {
            continue;
        }
        // Only on a complete chain: a layer without a staging, or whose tar is not the
        // config's layer (corrupt), is unpacked from its blob by `unpack_image`, which
        // verifies it first; nothing above it may be recorded before it is.
        let stage = match staged.remove(&layer.blob) {
            Some(stage) if stage.diff_id == layer.diff_id => stage,
            _ => break,
        };
        let parent = i.checked_sub(1).map(|p| &chain[p]);
        store.snapshotter().commit_staged(
            stage.layer,
            &chain[i],
            parent,
            &layer.diff_id,
            &stage.diff_id,
        )?;
    }
    Ok(())
}
