//! `strata save`: images → a `docker save` archive (what Docker 20.10 writes and `docker load`
//! / `podman load` read) or an OCI image-layout archive.
//!
//! Blobs are copied as stored; config bytes are never re-serialized, so an image keeps its ID.
//! The archive itself is deterministic: fixed entry order, owners and mtimes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use strata_oci::{
    media_type, to_canonical_json, Descriptor, Digest, DockerArchiveEntry, Index, Manifest,
    Reference,
};
use strata_store::{ImageRecord, Store};

use crate::ImageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `manifest.json` + `<config>.json` + `<v1id>/layer.tar` (uncompressed layers).
    Docker,
    /// `oci-layout` + `index.json` + `blobs/sha256/…`, blobs exactly as stored.
    Oci,
}

/// An image to save and the names to save it under (empty when named by ID).
pub struct SaveItem {
    pub image: ImageRecord,
    pub tags: Vec<Reference>,
}

pub fn save_archive(
    store: &Store,
    items: &[SaveItem],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<(), ImageError> {
    let mut tar = tar::Builder::new(out);
    match format {
        ArchiveFormat::Docker => write_docker(store, items, &mut tar)?,
        ArchiveFormat::Oci => write_oci(store, items, &mut tar)?,
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| ImageError::io("finishing the archive", e))
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    // ustar leaves these blank; readers then fail to parse them.
    let _ = h.set_device_major(0);
    let _ = h.set_device_minor(0);
    h
}

fn add_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ImageError> {
    let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
    tar.append_data(&mut h, name, bytes)
        .map_err(|e| ImageError::io(format!("writing {name}"), e))
}

fn add_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> Result<(), ImageError> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, name, io::empty())
        .map_err(|e| ImageError::io(format!("writing {name}"), e))
}

fn add_stream<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
) -> Result<(), ImageError> {
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    tar.append_data(&mut h, name, data)
        .map_err(|e| ImageError::io(format!("writing {name}"), e))
}

/// The uncompressed bytes of a layer blob, with their length (a compressed blob is read twice:
/// once to learn the length a tar header needs).
fn plain_layer(store: &Store, blob: &Digest) -> Result<(u64, Box<dyn Read>), ImageError> {
    let open = || -> Result<Box<dyn Read>, ImageError> {
        let file = store.content().open(blob)?;
        let (_, r) = strata_layer::decompress(io::BufReader::with_capacity(1 << 20, file))
            .map_err(|e| ImageError::layer(format!("reading layer blob {blob}"), e))?;
        Ok(r)
    };
    if crate::tar_input::blob_compression(store, blob)? == strata_layer::Compression::None {
        return Ok((store.content().size(blob)?, open()?));
    }
    let size = io::copy(&mut open()?, &mut io::sink())
        .map_err(|e| ImageError::io(format!("reading blob {blob}"), e))?;
    Ok((size, open()?))
}

fn write_docker<W: Write>(
    store: &Store,
    items: &[SaveItem],
    tar: &mut tar::Builder<W>,
) -> Result<(), ImageError> {
    let mut manifest: Vec<DockerArchiveEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut written: BTreeSet<String> = BTreeSet::new();
    for item in items {
        let config_bytes = store.content().read_all(&item.image.id)?;
        let config = crate::resolve::load_config(store, &item.image.id)?;
        let v1 = strata_oci::v1_layer_json(&config);
        let mut layer_paths = Vec::new();
        for (layer, (v1_id, v1_json)) in item.image.layers.iter().zip(&v1) {
            let path = format!("{v1_id}/layer.tar");
            if written.insert(v1_id.clone()) {
                add_dir(tar, &format!("{v1_id}/"))?;
                add_bytes(tar, &format!("{v1_id}/VERSION"), b"1.0")?;
                add_bytes(tar, &format!("{v1_id}/json"), v1_json)?;
                let (size, data) = plain_layer(store, &layer.blob)?;
                add_stream(tar, &path, size, data)?;
            }
            layer_paths.push(path);
        }
        let config_name = format!("{}.json", item.image.id.hex());
        if written.insert(config_name.clone()) {
            add_bytes(tar, &config_name, &config_bytes)?;
        }
        let top = v1.last().map(|(id, _)| id.clone());
        for tag in &item.tags {
            if let (Some(t), Some(top)) = (tag.tag(), &top) {
                repositories
                    .entry(tag.familiar_name())
                    .or_default()
                    .insert(t.to_string(), top.clone());
            }
        }
        manifest.push(DockerArchiveEntry::new(
            config_name,
            item.tags.iter().map(|t| t.familiar()).collect(),
            layer_paths,
        ));
    }
    let manifest_json =
        serde_json::to_vec(&manifest).map_err(|e| ImageError::InvalidArchive(e.to_string()))?;
    add_bytes(tar, "manifest.json", &manifest_json)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories)
            .map_err(|e| ImageError::InvalidArchive(e.to_string()))?;
        add_bytes(tar, "repositories", &repos)?;
    }
    Ok(())
}

/// The manifest of an image: the stored one when it came with one, else a deterministic OCI
/// manifest over its stored blobs.
fn manifest_of(store: &Store, image: &ImageRecord) -> Result<(Vec<u8>, String), ImageError> {
    if let Some(digest) = &image.manifest {
        if store.content().contains(digest) {
            let bytes = store.content().read_all(digest)?;
            let media = serde_json::from_slice::<Manifest>(&bytes)
                .ok()
                .and_then(|m| m.media_type)
                .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
            return Ok((bytes, media));
        }
    }
    let config_size = store.content().size(&image.id)?;
    let manifest = Manifest::new_oci(
        Descriptor::new(media_type::OCI_CONFIG, image.id.clone(), config_size),
        image
            .layers
            .iter()
            .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.blob_size))
            .collect(),
    );
    Ok((
        to_canonical_json(&manifest),
        media_type::OCI_MANIFEST.to_string(),
    ))
}

fn write_oci<W: Write>(
    store: &Store,
    items: &[SaveItem],
    tar: &mut tar::Builder<W>,
) -> Result<(), ImageError> {
    add_bytes(tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add_dir(tar, "blobs/")?;
    add_dir(tar, "blobs/sha256/")?;
    let mut written: BTreeSet<Digest> = BTreeSet::new();
    let mut index_entries: Vec<Descriptor> = Vec::new();
    for item in items {
        let (manifest_bytes, manifest_media) = manifest_of(store, &item.image)?;
        let manifest_digest = Digest::sha256_of(&manifest_bytes);
        let mut blobs: Vec<Digest> = vec![item.image.id.clone()];
        blobs.extend(item.image.layers.iter().map(|l| l.blob.clone()));
        for blob in blobs {
            if written.insert(blob.clone()) {
                let size = store.content().size(&blob)?;
                let file = store.content().open(&blob)?;
                add_stream(tar, &format!("blobs/sha256/{}", blob.hex()), size, file)?;
            }
        }
        if written.insert(manifest_digest.clone()) {
            add_bytes(
                tar,
                &format!("blobs/sha256/{}", manifest_digest.hex()),
                &manifest_bytes,
            )?;
        }
        let descriptor = Descriptor::new(
            &manifest_media,
            manifest_digest,
            manifest_bytes.len() as u64,
        );
        if item.tags.is_empty() {
            index_entries.push(descriptor.clone());
        }
        for tag in &item.tags {
            let mut annotations = BTreeMap::new();
            annotations.insert("io.containerd.image.name".to_string(), tag.to_string());
            if let Some(t) = tag.tag() {
                annotations.insert(
                    "org.opencontainers.image.ref.name".to_string(),
                    t.to_string(),
                );
            }
            index_entries.push(descriptor.clone().with_annotations(annotations));
        }
    }
    let index = Index::new_oci(index_entries);
    add_bytes(tar, "index.json", &to_canonical_json(&index))
}
