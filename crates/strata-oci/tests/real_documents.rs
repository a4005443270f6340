//! Documents written by the reference tools (Docker 20.10, skopeo) parse into strata's types,
//! and their digests are of the exact bytes, not of a re-serialization.

use strata_oci::{
    document_kind, layout_reference, media_type, parse_oci_layout, Digest, DocumentKind,
    ImageConfig, Index, LayerCompression, Manifest,
};

const SKOPEO_INDEX: &[u8] = include_bytes!("fixtures/skopeo-oci-index.json");
const SKOPEO_MANIFEST: &[u8] = include_bytes!("fixtures/skopeo-oci-manifest.json");
const SKOPEO_CONFIG: &[u8] = include_bytes!("fixtures/skopeo-oci-config.json");
const SKOPEO_LAYOUT: &[u8] = include_bytes!("fixtures/skopeo-oci-layout");
const DOCKER_V2S2: &[u8] = include_bytes!("fixtures/skopeo-docker-v2s2-manifest.json");
const DOCKER_IMPORT_CONFIG: &[u8] = include_bytes!("fixtures/docker-20.10-import-config.json");

#[test]
fn skopeo_oci_layout_resolves_index_to_manifest_to_config() {
    parse_oci_layout(SKOPEO_LAYOUT).unwrap();
    assert_eq!(document_kind(SKOPEO_INDEX), Some(DocumentKind::Index));
    let index: Index = serde_json::from_slice(SKOPEO_INDEX).unwrap();
    let entry = &index.manifests[0];
    assert_eq!(entry.digest, Digest::sha256_of(SKOPEO_MANIFEST));
    assert_eq!(entry.size, SKOPEO_MANIFEST.len() as u64);
    // skopeo names the entry by tag only: no repository to take from it.
    assert_eq!(layout_reference(entry), None);

    let manifest: Manifest = serde_json::from_slice(SKOPEO_MANIFEST).unwrap();
    assert_eq!(manifest.config.digest, Digest::sha256_of(SKOPEO_CONFIG));
    assert_eq!(
        media_type::layer_compression(&manifest.layers[0].media_type),
        Some(LayerCompression::Gzip)
    );
    let config: ImageConfig = serde_json::from_slice(SKOPEO_CONFIG).unwrap();
    assert_eq!(config.rootfs.diff_ids.len(), manifest.layers.len());
    assert_eq!(config.platform().to_string(), "linux/amd64");
}

#[test]
fn docker_schema2_manifest_points_at_the_docker_config() {
    assert_eq!(document_kind(DOCKER_V2S2), Some(DocumentKind::Manifest));
    let manifest: Manifest = serde_json::from_slice(DOCKER_V2S2).unwrap();
    assert_eq!(
        manifest.media_type.as_deref(),
        Some(media_type::DOCKER_MANIFEST)
    );
    assert!(media_type::is_config(&manifest.config.media_type));
    assert_eq!(
        manifest.config.digest,
        Digest::sha256_of(DOCKER_IMPORT_CONFIG)
    );
    assert_eq!(manifest.config.size, DOCKER_IMPORT_CONFIG.len() as u64);
    let config: ImageConfig = serde_json::from_slice(DOCKER_IMPORT_CONFIG).unwrap();
    // An uncompressed layer in a schema2 manifest: its blob digest is the diff_id.
    assert_eq!(manifest.layers[0].digest, config.rootfs.diff_ids[0]);
}
