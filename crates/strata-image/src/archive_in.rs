//! `strata load`: a `docker save` archive or an OCI image-layout archive → images in the store.
//!
//! The archive is read once, as a stream: every file is ingested into the content store
//! while it is hashed (so a layer is written once, never buffered), small JSON documents are
//! kept in memory. Only then are the documents interpreted, the layers unpacked as snapshots
//! (verifying their diff_ids) and, last, the images and tags recorded. Paths inside the
//! archive are only ever used as names, never as filesystem paths.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;

use strata_oci::{media_type, Digest, DockerArchiveEntry, Index, Manifest, Reference};
use strata_store::{LayerRecord, Store};

use crate::assemble::{
    finish_images, layer_records, new_record, parse_config, select_platform, ImagePlan,
    LayerStager, StagedLayers,
};
use crate::ImageError;

/// How much of a layer is read, written and handed to the stager at a time.
const CHUNK: usize = 1 << 20;

/// Documents larger than this are layers, not JSON to keep in memory.
const MAX_DOCUMENT: u64 = 4 << 20;

/// One image recorded by a load, with the tags it received.
pub struct LoadedImage {
    pub id: Digest,
    pub tags: Vec<Reference>,
}

/// A file of the archive: what it was ingested as.
struct ArchiveFile {
    digest: Digest,
    size: u64,
    /// Kept for small files: manifests, configs, index.
    bytes: Option<Vec<u8>>,
}

pub fn load_archive(store: &Store, input: impl Read) -> Result<Vec<LoadedImage>, ImageError> {
    let _lease = store.writer_lease()?;
    let plain = crate::tar_input::open_tar(input, "the archive")?;
    let (files, mut staged) = ingest_entries(store, plain)?;
    let plans = if files.contains_key("manifest.json") {
        docker_images(store, &files)?
    } else if files.contains_key("index.json") {
        oci_images(&files)?
    } else {
        return Err(ImageError::InvalidArchive(
            "neither manifest.json (docker save) nor index.json (OCI layout) found: is this an image archive?".into(),
        ));
    };
    finish_images(store, &plans, &mut staged)?;
    Ok(plans
        .into_iter()
        .map(|p| LoadedImage {
            id: p.record.id,
            tags: p.tags,
        })
        .collect())
}

/// The archive's files by name, and the layers unpacked while they streamed, by digest.
type Ingested = (BTreeMap<String, ArchiveFile>, StagedLayers);

/// Streams every regular file of the archive into the content store. With a driver that can
/// stage layers (overlay), each file that looks like a layer (a tar, plain or compressed) is
/// also unpacked while it streams, on a second thread, so a layer is read once and written
/// to its blob and its snapshot at the same time; the staged snapshots are keyed by the
/// digest of the blob they were made from.
fn ingest_entries(store: &Store, plain: impl Read) -> Result<Ingested, ImageError> {
    let mut archive = tar::Archive::new(plain);
    let mut files: BTreeMap<String, ArchiveFile> = BTreeMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut staged = StagedLayers::new();
    let entries = archive
        .entries()
        .map_err(|e| ImageError::io("reading the archive", e))?;
    std::thread::scope(|scope| -> Result<(), ImageError> {
        for entry in entries {
            let mut entry = entry.map_err(|e| ImageError::io("reading the archive", e))?;
            let path = entry
                .path()
                .map_err(|e| ImageError::io("reading an archive entry name", e))?;
            let name = normalize(&path.to_string_lossy());
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                // docker save links a layer shared by two images to its first copy.
                if let Some(target) = entry
                    .link_name()
                    .map_err(|e| ImageError::io(format!("reading link {name}"), e))?
                {
                    let target = target.to_string_lossy().into_owned();
                    let resolved = if kind.is_symlink() {
                        resolve_relative(&name, &target)
                    } else {
                        normalize(&target)
                    };
                    links.push((name, resolved));
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.size();
            if size <= MAX_DOCUMENT && is_document_name(&name) {
                let mut bytes = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| ImageError::io(format!("reading {name} from the archive"), e))?;
                let (digest, size) = store.content().ingest(&bytes[..], None)?;
                files.insert(
                    name,
                    ArchiveFile {
                        digest,
                        size,
                        bytes: Some(bytes),
                    },
                );
                continue;
            }
            let reading = |e| ImageError::io(format!("reading {name} from the archive"), e);
            let mut writer = store.content().writer()?;
            let mut head = [0u8; 512];
            let head_len = crate::tar_input::read_up_to(&mut entry, &mut head).map_err(reading)?;
            writer
                .write_all(&head[..head_len])
                .map_err(|e| ImageError::io("writing a blob", e))?;
            let layer_like = head_len == head.len() && strata_layer::is_tar_header(&head)
                || strata_layer::Compression::detect(&head[..head_len])
                    != strata_layer::Compression::None;
            let mut stager = LayerStager::start(scope, store, layer_like);
            stager.send(Arc::new(head[..head_len].to_vec()));
            loop {
                // A fresh chunk per read, shared with the stager rather than copied.
                let mut chunk = Vec::with_capacity(CHUNK);
                (&mut entry)
                    .take(CHUNK as u64)
                    .read_to_end(&mut chunk)
                    .map_err(reading)?;
                if chunk.is_empty() {
                    break;
                }
                writer
                    .write_all(&chunk)
                    .map_err(|e| ImageError::io("writing a blob", e))?;
                stager.send(Arc::new(chunk));
            }
            let (digest, size) = writer.commit(None)?;
            // A layer that fails to stage is unpacked from its blob later, with the
            // error reported then if it is real.
            if let Some(layer) = stager.finish() {
                staged.entry(digest.clone()).or_insert(layer);
            }
            files.insert(
                name,
                ArchiveFile {
                    digest,
                    size,
                    bytes: None,
                },
            );
        }
        Ok(())
    })?;
    for (name, target) in links {
        if let Some(file) = files.get(&target) {
            let copy = ArchiveFile {
                digest: file.digest.clone(),
                size: file.size,
                bytes: file.bytes.clone(),
            };
            files.insert(name, copy);
        }
    }
    Ok((files, staged))
}

fn is_document_name(name: &str) -> bool {
    name.ends_with(".json")
        || name == "repositories"
        || name == "oci-layout"
        || name.starts_with("blobs/")
}

/// `./a//b` → `a/b`.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The archive path a symlink at `link` pointing to `target` names (`../x/layer.tar`).
fn resolve_relative(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn document<'a>(
    files: &'a BTreeMap<String, ArchiveFile>,
    name: &str,
) -> Result<&'a ArchiveFile, ImageError> {
    files.get(name).ok_or_else(|| {
        ImageError::InvalidArchive(format!("{name} is listed but not in the archive"))
    })
}

fn document_bytes<'a>(
    files: &'a BTreeMap<String, ArchiveFile>,
    name: &str,
) -> Result<&'a [u8], ImageError> {
    document(files, name)?.bytes.as_deref().ok_or_else(|| {
        ImageError::InvalidArchive(format!("{name} is too large to be a JSON document"))
    })
}

fn docker_images(
    store: &Store,
    files: &BTreeMap<String, ArchiveFile>,
) -> Result<Vec<ImagePlan>, ImageError> {
    let entries: Vec<DockerArchiveEntry> =
        serde_json::from_slice(document_bytes(files, "manifest.json")?)
            .map_err(|e| ImageError::InvalidArchive(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let config_file = document(files, &normalize(&entry.config))?;
        let id = config_file.digest.clone();
        let config = parse_config(&id, document_bytes(files, &normalize(&entry.config))?)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != entry.layers.len() {
            return Err(ImageError::InvalidArchive(format!(
                "manifest.json entry {n}: {} layers listed, the config has {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
            let file = document(files, &normalize(path))?;
            layers.push(layer_record(store, file, diff_id)?);
        }
        let mut tags = Vec::new();
        for tag in &entry.repo_tags {
            tags.push(Reference::parse(tag)?);
        }
        out.push(ImagePlan {
            record: new_record(id, None, layers, &config),
            tags,
            repo_digests: Vec::new(),
        });
    }
    Ok(out)
}

/// A layer as found in an archive; media type from its compression (Docker archives carry none).
fn layer_record(
    store: &Store,
    file: &ArchiveFile,
    diff_id: &Digest,
) -> Result<LayerRecord, ImageError> {
    let media_type = match crate::tar_input::blob_compression(store, &file.digest)? {
        strata_layer::Compression::None => media_type::OCI_LAYER_TAR,
        strata_layer::Compression::Gzip => media_type::OCI_LAYER_TAR_GZIP,
        strata_layer::Compression::Zstd => media_type::OCI_LAYER_TAR_ZSTD,
    };
    Ok(LayerRecord {
        diff_id: diff_id.clone(),
        blob: file.digest.clone(),
        media_type: media_type.to_string(),
        blob_size: file.size,
    })
}

fn oci_images(files: &BTreeMap<String, ArchiveFile>) -> Result<Vec<ImagePlan>, ImageError> {
    let index: Index = serde_json::from_slice(document_bytes(files, "index.json")?)
        .map_err(|e| ImageError::InvalidArchive(format!("index.json: {e}")))?;
    let mut out: Vec<ImagePlan> = Vec::new();
    for descriptor in &index.manifests {
        let tags: Vec<Reference> = descriptor
            .annotations
            .as_ref()
            .and_then(|a| {
                a.get("io.containerd.image.name")
                    .or_else(|| a.get("org.opencontainers.image.ref.name"))
            })
            .and_then(|name| Reference::parse(name).ok())
            .into_iter()
            .collect();
        let (manifest_digest, manifest) =
            resolve_manifest(files, &descriptor.digest, &descriptor.media_type)?;
        let config_file = blob_file(files, &manifest.config.digest)?;
        let id = config_file.digest.clone();
        let config = parse_config(&id, document_bytes(files, &blob_name(&id))?)?;
        let layers = layer_records(&manifest, &config, &format!("manifest {manifest_digest}"))
            .map_err(|e| ImageError::InvalidArchive(e.to_string()))?;
        for layer in &manifest.layers {
            let file = blob_file(files, &layer.digest)?;
            if file.size != layer.size {
                return Err(ImageError::InvalidArchive(format!(
                    "blob {} has {} bytes, the manifest says {}",
                    layer.digest, file.size, layer.size
                )));
            }
        }
        // Several index entries may name one image under different tags.
        if let Some(existing) = out.iter_mut().find(|p| p.record.id == id) {
            existing.tags.extend(tags);
            continue;
        }
        out.push(ImagePlan {
            record: new_record(id, Some(manifest_digest), layers, &config),
            tags,
            repo_digests: Vec::new(),
        });
    }
    Ok(out)
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A blob of an OCI layout, checked to hold the bytes its name promises.
fn blob_file<'a>(
    files: &'a BTreeMap<String, ArchiveFile>,
    d: &Digest,
) -> Result<&'a ArchiveFile, ImageError> {
    let file = document(files, &blob_name(d))?;
    if file.digest != *d {
        return Err(ImageError::InvalidArchive(format!(
            "{} holds content with digest {}",
            blob_name(d),
            file.digest
        )));
    }
    Ok(file)
}

/// The image manifest an index entry names; a nested index picks the host platform.
fn resolve_manifest(
    files: &BTreeMap<String, ArchiveFile>,
    digest: &Digest,
    media: &str,
) -> Result<(Digest, Manifest), ImageError> {
    let bytes = document_bytes(files, &blob_name(digest))?;
    blob_file(files, digest)?;
    if media_type::is_index(media) {
        let nested: Index = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::InvalidArchive(format!("index {digest}: {e}")))?;
        let chosen = select_platform(&nested, &strata_oci::Platform::host())?;
        return resolve_manifest(files, &chosen.digest, &chosen.media_type);
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::InvalidArchive(format!("manifest {digest}: {e}")))?;
    Ok((digest.clone(), manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_normalized_and_links_resolved() {
        assert_eq!(normalize("./a//b/"), "a/b");
        assert_eq!(
            resolve_relative("x/layer.tar", "../y/layer.tar"),
            "y/layer.tar"
        );
        assert_eq!(
            resolve_relative("x/layer.tar", "../../../etc/passwd"),
            "etc/passwd"
        );
    }
}
