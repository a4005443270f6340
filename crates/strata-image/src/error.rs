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
    #[error("unsupported platform {0:?}: this strata builds and runs {1} images only")]
    UnsupportedPlatform(String, String),
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
