//! strata-oci: the vocabulary of container images, as data.
//!
//! Owns digests, descriptors, media types, image config / manifest / index types
//! (deterministic serde types with Docker's field order), image references parsed
//! exactly as Docker parses them, and the file shapes of OCI image layouts and
//! `docker save` archives.
//!
//! ```
//! use strata_oci::{to_canonical_json, ImageConfig, Reference};
//!
//! let r = Reference::parse("busybox").unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
//! assert_eq!(r.familiar(), "busybox:latest");
//!
//! let text = br#"{"architecture":"amd64","os":"linux"}"#;
//! let config: ImageConfig = serde_json::from_slice(text).unwrap();
//! assert_eq!(to_canonical_json(&config), text);
//! ```
//!
//! Must not: touch the filesystem or network, know about the store, or re-serialize
//! JSON it was handed in order to digest it (digests are always of the exact bytes;
//! the types are for reading, and for writing new documents).

mod config;
mod container_config;
mod digest;
mod docker_archive;
mod error;
mod json;
mod manifest;
pub mod media_type;
mod oci_layout;
mod platform;
mod reference;
mod v1_image;

pub use config::{History, ImageConfig, RootFs};
pub use container_config::{
    ConfigShape, ContainerConfig, Empty, EmptySet, HealthConfig, ShapedConfig,
};
pub use digest::{chain_ids, Digest, DigestError, Sha256Hasher};
pub use docker_archive::{
    parse_docker_manifest, DockerArchiveEntry, Repositories, DOCKER_MANIFEST_FILE,
    DOCKER_REPOSITORIES_FILE, V1_LAYER_VERSION,
};
pub use error::{Error, ReferenceError};
pub use json::{to_canonical_json, to_go_json, to_indented_json, CanonicalJson};
pub use manifest::{
    document_kind, Descriptor, DocumentKind, Index, Manifest, ANNOTATION_DOCKER_REFERENCE_TYPE,
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
};
pub use media_type::LayerCompression;
pub use oci_layout::{
    blob_path, blob_path_digest, layout_annotations, layout_reference, parse_oci_layout, OciLayout,
    OCI_INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION,
};
pub use platform::Platform;
pub use reference::{is_repository_path, Reference, DEFAULT_DOMAIN, DEFAULT_TAG};
pub use v1_image::{v1_layer_ids, v1_layer_json};
