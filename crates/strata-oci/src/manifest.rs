//! Descriptors, image manifests and indexes (OCI and Docker schema 2), in OCI field order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::media_type;
use crate::platform::Platform;

/// Annotation on index entries: the tag (`latest`) an OCI layout names the image by.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation on index entries: the full image name containerd and Docker write
/// (`docker.io/library/busybox:latest`).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation BuildKit puts on attestation manifests inside an index.
pub const ANNOTATION_DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// A pointer to a blob: its media type, digest and size, plus optional metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Base64 of the blob itself, for tiny blobs (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            platform: None,
            artifact_type: None,
            extra: BTreeMap::new(),
        }
    }

    /// The descriptor of `bytes` as a blob of `media_type`.
    pub fn of_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::sha256_of(bytes), bytes.len() as u64)
    }

    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Descriptor {
        self.annotations = Some(annotations);
        self
    }

    pub fn with_platform(mut self, platform: Platform) -> Descriptor {
        self.platform = Some(platform);
        self
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// True for the attestation manifests BuildKit adds to an index (platform `unknown/unknown`),
    /// which are not runnable images.
    pub fn is_attestation(&self) -> bool {
        self.annotation(ANNOTATION_DOCKER_REFERENCE_TYPE) == Some("attestation-manifest")
    }
}

/// An image manifest: one config and its layers. Both OCI and Docker schema 2 use this shape;
/// `media_type` tells them apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Manifest {
    /// A new OCI image manifest.
    pub fn new_oci(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest::new(media_type::OCI_MANIFEST, config, layers)
    }

    /// A new Docker schema 2 manifest (config and layers should carry Docker media types).
    pub fn new_docker(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest::new(media_type::DOCKER_MANIFEST, config, layers)
    }

    fn new(media_type: &str, config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }
}

/// A list of manifests, usually one per platform: OCI image index or Docker manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Index {
    /// A new OCI image index.
    pub fn new_oci(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    /// The entry for `wanted` (runnable images only; attestations skipped), first match wins
    /// as in containerd. Entries without a platform never match.
    pub fn find_platform(&self, wanted: &Platform) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|d| !d.is_attestation() && d.platform.as_ref().is_some_and(|p| p.matches(wanted)))
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Descriptor>, D::Error> {
    Ok(Option::<Vec<Descriptor>>::deserialize(d)?.unwrap_or_default())
}

/// Which of the two document kinds a manifest-ish JSON is, from its `mediaType` field or,
/// when absent (allowed by OCI), from its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    Manifest,
    Index,
}

/// Sniffs `bytes` (a manifest or index) without fully parsing it.
pub fn document_kind(bytes: &[u8]) -> Option<DocumentKind> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    match probe.media_type.as_deref() {
        Some(m) if media_type::is_index(m) => Some(DocumentKind::Index),
        Some(m) if media_type::is_manifest(m) => Some(DocumentKind::Manifest),
        _ if probe.manifests.is_some() => Some(DocumentKind::Index),
        _ if probe.config.is_some() => Some(DocumentKind::Manifest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_canonical_json;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    #[test]
    fn manifest_serializes_in_oci_order() {
        let m = Manifest::new_oci(
            Descriptor::new(media_type::OCI_CONFIG, d(1), 10),
            vec![Descriptor::new(media_type::OCI_LAYER_TAR_GZIP, d(2), 20)],
        );
        let text = String::from_utf8(to_canonical_json(&m)).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":10}},"layers":[{{"mediaType":"{}","digest":"{}","size":20}}]}}"#,
                media_type::OCI_MANIFEST,
                media_type::OCI_CONFIG,
                d(1),
                media_type::OCI_LAYER_TAR_GZIP,
                d(2)
            )
        );
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn docker_distribution_manifest_parses_and_keeps_unknown_fields() {
        // Docker's registry writes size before digest; order does not matter when reading.
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":1469,"digest":"{}"}},"layers":[{{"mediaType":"{}","size":2,"digest":"{}","urls":["https://x"],"future":true}}]}}"#,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_CONFIG,
            d(1),
            media_type::DOCKER_FOREIGN_LAYER_GZIP,
            d(2)
        );
        let m: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(m.config.size, 1469);
        assert_eq!(
            m.layers[0].urls.as_deref(),
            Some(&["https://x".to_string()][..])
        );
        assert_eq!(m.layers[0].extra["future"], true);
        assert_eq!(document_kind(text.as_bytes()), Some(DocumentKind::Manifest));
    }

    #[test]
    fn index_picks_the_platform_and_skips_attestations() {
        let amd = Descriptor::new(media_type::OCI_MANIFEST, d(1), 1)
            .with_platform(Platform::new("linux", "amd64", None));
        let arm = Descriptor::new(media_type::OCI_MANIFEST, d(2), 1).with_platform(Platform::new(
            "linux",
            "arm64",
            Some("v8"),
        ));
        let mut att_ann = BTreeMap::new();
        att_ann.insert(
            ANNOTATION_DOCKER_REFERENCE_TYPE.to_string(),
            "attestation-manifest".to_string(),
        );
        let att = Descriptor::new(media_type::OCI_MANIFEST, d(3), 1)
            .with_platform(Platform::new("unknown", "unknown", None))
            .with_annotations(att_ann);
        let index = Index::new_oci(vec![att, amd, arm]);
        let text = to_canonical_json(&index);
        let index: Index = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            index
                .find_platform(&Platform::parse("linux/arm64").unwrap())
                .unwrap()
                .digest,
            d(2)
        );
        assert_eq!(
            index
                .find_platform(&Platform::parse("linux/amd64").unwrap())
                .unwrap()
                .digest,
            d(1)
        );
        assert!(index
            .find_platform(&Platform::parse("linux/s390x").unwrap())
            .is_none());
        assert!(index.manifests[0].is_attestation());
        assert_eq!(document_kind(&text), Some(DocumentKind::Index));
    }

    #[test]
    fn document_kind_without_media_type_uses_the_shape() {
        assert_eq!(
            document_kind(br#"{"schemaVersion":2,"manifests":[]}"#),
            Some(DocumentKind::Index)
        );
        assert_eq!(
            document_kind(br#"{"schemaVersion":2,"config":{}}"#),
            Some(DocumentKind::Manifest)
        );
        assert_eq!(document_kind(b"{}"), None);
        assert_eq!(document_kind(b"not json"), None);
    }

    #[test]
    fn a_descriptor_with_a_bad_digest_is_refused() {
        let text = r#"{"mediaType":"x","digest":"sha256:abc","size":1}"#;
        assert!(serde_json::from_str::<Descriptor>(text).is_err());
    }
}
