//! Errors of image-level flows; each says which image, file or digest it is about.

use strata_oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    #[error("{context}: {source}")]
    Layer {
        context: String,
        #[source]
        source: strata_layer::LayerError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidReference(#[from] strata_oci::ReferenceError),
    #[error("image reference {input:?} is ambiguous: it matches {count} image IDs; type more characters")]
    Ambiguous { input: String, count: usize },
    #[error("{0} is not a tar archive (plain, gzip or zstd compressed)")]
    NotATar(String),
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("invalid image config {digest}: {reason}")]
    InvalidConfig { digest: Digest, reason: String },
    #[error("layer {index} of image {image}: content has digest {actual}, the image config says {expected}")]
    DiffIdMismatch {
        image: Digest,
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid --change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    #[error("conflict: unable to delete {image} (must be forced) - {reason}")]
    Conflict { image: String, reason: String },
    #[error(transparent)]
    Platform(#[from] strata_oci::Error),
    #[error(transparent)]
    Registry(Box<strata_distribution::DistributionError>),
    #[error("{context}: {source}")]
    Transfer {
        context: String,
        #[source]
        source: Box<strata_distribution::DistributionError>,
    },
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    #[error("image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    #[error("{reference} is a Docker image manifest schema 1, which strata does not support (Docker removed it too): push the image again with a current client, or pull a newer tag")]
    Schema1 { reference: String },
    #[error("{reference} is not a container image: {reason}")]
    NotAnImage { reference: String, reason: String },
    #[error("{reference}: layer {digest} is a foreign layer ({media_type}){from}: strata does not fetch foreign layers")]
    ForeignLayer {
        reference: String,
        digest: Digest,
        media_type: String,
        from: String,
    },
    #[error("layer {digest}: {reason}")]
    Download { digest: Digest, reason: String },
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchTag(String),
}

impl From<strata_distribution::DistributionError> for ImageError {
    fn from(e: strata_distribution::DistributionError) -> ImageError {
        ImageError::Registry(Box::new(e))
    }
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn layer(
        context: impl Into<String>,
        source: strata_layer::LayerError,
    ) -> ImageError {
        ImageError::Layer {
            context: context.into(),
            source,
        }
    }
}
