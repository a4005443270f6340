//! The data behind `images`, `history` and `inspect`, computed from records and configs.
//! Plain structs and JSON values; the CLI decides how they look.

use std::collections::HashMap;

use serde::Serialize;
use strata_oci::{chain_ids, ContainerConfig, Digest, Reference};
use strata_store::{ImageRecord, Store};

use crate::resolve::{load_config, ResolvedImage};
use crate::ImageError;

/// The unpacked size of each layer of `image`, bottom first (what Docker calls a layer's
/// size: the bytes of its files, not of its tar). Falls back to the blob size for a layer
/// that is not unpacked.
fn layer_sizes(
    store: &Store,
    image: &ImageRecord,
    cache: &mut HashMap<Digest, u64>,
) -> Result<Vec<u64>, ImageError> {
    let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
    let mut sizes = Vec::new();
    for (chain, layer) in chain_ids(&diff_ids).iter().zip(&image.layers) {
        if let Some(size) = cache.get(chain) {
            sizes.push(*size);
            continue;
        }
        let size = if store.snapshotter().exists(chain)? {
            store.snapshotter().usage(chain)?
        } else {
            layer.blob_size
        };
        cache.insert(chain.clone(), size);
        sizes.push(size);
    }
    Ok(sizes)
}

/// Total unpacked size of an image (Docker's `Size`).
pub fn image_size(store: &Store, image: &ImageRecord) -> Result<u64, ImageError> {
    Ok(layer_sizes(store, image, &mut HashMap::new())?.iter().sum())
}

/// One row of `strata images`.
pub struct ImageSummary {
    pub id: Digest,
    /// Full normalized references (`docker.io/library/busybox:latest`).
    pub tags: Vec<Reference>,
    pub repo_digests: Vec<Reference>,
    pub created: Option<String>,
    pub size: u64,
    pub parent: Option<Digest>,
    /// Has children among the stored images (an intermediate build image).
    pub has_children: bool,
    pub containers: usize,
}

pub fn image_summaries(store: &Store) -> Result<Vec<ImageSummary>, ImageError> {
    let images = store.images()?;
    let mut cache = HashMap::new();
    let mut out = Vec::new();
    for image in &images {
        let tags = store
            .tags_of(&image.id)?
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .collect();
        let repo_digests = store
            .repo_digests_of(&image.id)?
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .collect();
        out.push(ImageSummary {
            id: image.id.clone(),
            tags,
            repo_digests,
            created: image.created.clone(),
            size: layer_sizes(store, image, &mut cache)?.iter().sum(),
            parent: image.parent.clone(),
            has_children: images.iter().any(|i| i.parent.as_ref() == Some(&image.id)),
            containers: store.containers_using(&image.id)?.len(),
        });
    }
    // Newest first, as Docker lists them.
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// One row of `strata history`, newest first.
pub struct HistoryRow {
    /// The image this step produced, where it is in the store (`<missing>` otherwise).
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

pub fn history(store: &Store, image: &ResolvedImage) -> Result<Vec<HistoryRow>, ImageError> {
    let sizes = layer_sizes(store, &image.record, &mut HashMap::new())?;
    let mut rows = Vec::new();
    let mut next_layer = 0;
    if image.config.history.is_empty() {
        // Images without history (some hand-made ones): one row per layer.
        for size in &sizes {
            rows.push(HistoryRow {
                id: None,
                created: image.config.created.clone(),
                created_by: String::new(),
                size: *size,
                comment: String::new(),
                empty_layer: false,
            });
        }
    }
    for h in &image.config.history {
        let empty = h.empty_layer;
        let size = if empty {
            0
        } else {
            next_layer += 1;
            sizes.get(next_layer - 1).copied().unwrap_or(0)
        };
        rows.push(HistoryRow {
            id: None,
            created: h.created.clone(),
            created_by: h.created_by.clone().unwrap_or_default(),
            size,
            comment: h.comment.clone().unwrap_or_default(),
            empty_layer: empty,
        });
    }
    rows.reverse();
    // The top row is the image itself; rows further down are its build parents, where stored.
    let mut current = Some(image.record.clone());
    while let Some(record) = current {
        let history_len = load_config(store, &record.id)?.history.len().max(1);
        if let Some(row) = rows
            .len()
            .checked_sub(history_len)
            .and_then(|i| rows.get_mut(i))
        {
            row.id = Some(record.id.clone());
        }
        current = match &record.parent {
            Some(p) => store.image(p)?,
            None => None,
        };
    }
    Ok(rows)
}

/// `docker image inspect`'s object for one image, fields in Docker's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectImage {
    id: Digest,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    container: String,
    container_config: ContainerConfig,
    docker_version: String,
    author: String,
    config: ContainerConfig,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    virtual_size: u64,
    graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    root_fs: InspectRootFs,
    metadata: Metadata,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GraphDriver {
    data: Option<HashMap<String, String>>,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectRootFs {
    #[serde(rename = "Type")]
    kind: String,
    layers: Vec<Digest>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    last_tag_time: String,
}

/// `docker image inspect`'s JSON object for one image.
pub fn inspect(store: &Store, image: &ResolvedImage) -> Result<InspectImage, ImageError> {
    let config = &image.config;
    let size = image_size(store, &image.record)?;
    let repo_tags = store
        .tags_of(&image.record.id)?
        .iter()
        .map(|t| Reference::parse(t).map_or_else(|_| t.clone(), |r| r.familiar()))
        .collect();
    let repo_digests = store
        .repo_digests_of(&image.record.id)?
        .iter()
        .map(|t| Reference::parse(t).map_or_else(|_| t.clone(), |r| r.familiar()))
        .collect();
    let last_tag_time = chrono::DateTime::from_timestamp(image.record.added_at, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    Ok(InspectImage {
        id: image.record.id.clone(),
        repo_tags,
        repo_digests,
        parent: image
            .record
            .parent
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        comment: config.comment.clone().unwrap_or_default(),
        created: config
            .created
            .clone()
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
        container: config.container.clone().unwrap_or_default(),
        container_config: config.container_config.clone().unwrap_or_default(),
        docker_version: config.docker_version.clone().unwrap_or_default(),
        author: config.author.clone().unwrap_or_default(),
        config: config.config_or_default(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        os: config.os.clone(),
        size,
        virtual_size: size,
        graph_driver: GraphDriver {
            data: None,
            name: store.driver().to_string(),
        },
        root_fs: InspectRootFs {
            kind: config.rootfs.kind.clone(),
            layers: config.rootfs.diff_ids.clone(),
        },
        metadata: Metadata { last_tag_time },
    })
}
