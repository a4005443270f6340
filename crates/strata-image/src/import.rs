//! `strata import`: a rootfs tar (plain, gzip or zstd) → a one-layer image, as `docker import`.
//!
//! The layer is the decompressed input, byte for byte (so the same tar gives the same
//! diff_id as Docker's import), stored once and then unpacked as the image's snapshot.

use std::io::{self, Read};

use strata_oci::{
    media_type, to_canonical_json, ContainerConfig, Digest, History, ImageConfig, Platform,
    Reference, RootFs,
};
use strata_store::{ImageRecord, LayerRecord, Store};

use crate::ImageError;

pub struct ImportOptions {
    /// Dockerfile instructions applied to the config (`-c 'CMD ["sh"]'`).
    pub changes: Vec<String>,
    /// Commit message (`-m`); Docker's default is "Imported from <source>".
    pub message: Option<String>,
    /// Where the tar came from, for the default message ("-" or the path).
    pub source: String,
    pub tag: Option<Reference>,
    /// Requested platform (`--platform`); only the host's is accepted.
    pub platform: Option<String>,
}

/// Imports a rootfs tar and returns the new image's ID.
pub fn import_rootfs(
    store: &Store,
    input: impl Read,
    opts: &ImportOptions,
) -> Result<Digest, ImageError> {
    let host = Platform::host();
    if let Some(p) = &opts.platform {
        Platform::host_only(p)?;
    }
    // Validate the changes before any bytes are stored.
    let mut container_config = ContainerConfig::default();
    crate::change::apply_all(&mut container_config, &opts.changes)?;

    let _lease = store.writer_lease()?;
    let plain = crate::tar_input::open_tar(input, "the rootfs")?;
    let mut writer = store.content().writer()?;
    io::copy(&mut { plain }, &mut writer)
        .map_err(|e| ImageError::io("reading the rootfs tar", e))?;
    let (diff_id, size) = writer.commit(None)?;

    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let config = ImageConfig {
        architecture: host.architecture.clone(),
        os: host.os.clone(),
        variant: host.variant.clone(),
        created: Some(created.clone()),
        comment: Some(comment.clone()),
        config: Some(container_config),
        history: vec![History {
            created: Some(created.clone()),
            comment: Some(comment),
            ..History::default()
        }],
        rootfs: RootFs::layers(vec![diff_id.clone()]),
        ..ImageConfig::default()
    };
    let config_bytes = to_canonical_json(&config);
    let (id, _) = store.content().ingest(&config_bytes[..], None)?;
    let record = ImageRecord {
        id: id.clone(),
        manifest: None,
        layers: vec![LayerRecord {
            diff_id: diff_id.clone(),
            blob: diff_id,
            media_type: media_type::OCI_LAYER_TAR.to_string(),
            blob_size: size,
        }],
        created: Some(created),
        added_at: chrono::Utc::now().timestamp(),
        parent: None,
    };
    // A tar that is not a valid layer fails here, before anything is recorded.
    store.unpack_image(&record)?;
    let tags: Vec<String> = opts.tag.iter().map(|t| t.to_string()).collect();
    store.put_image(&record, &tags)?;
    Ok(id)
}
