//! The errors of strata-oci: bad references, malformed image documents and archives.

use crate::digest::DigestError;

/// Why a string is not an image reference. Messages follow Docker's
/// ("invalid reference format: …") and name the part that is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: {reason}")]
    InvalidFormat { input: String, reason: String },
    #[error("invalid reference format: registry host ({domain}) is not valid")]
    InvalidDomain { input: String, domain: String },
    #[error(
        "invalid reference format: tag ({tag}) must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
    )]
    InvalidTag { input: String, tag: String },
    #[error("invalid reference format: digest: {source}")]
    InvalidDigest { input: String, source: DigestError },
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase { input: String, name: String },
    #[error("invalid reference format: repository name must not be more than 255 characters (got {len})")]
    NameTooLong { input: String, len: usize },
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier { input: String },
    /// A valid reference that cannot be used as a local tag (see `Reference::check_taggable`).
    #[error("{reason}")]
    NotTaggable { input: String, reason: String },
}

impl ReferenceError {
    /// The text the user gave.
    pub fn input(&self) -> &str {
        match self {
            ReferenceError::InvalidFormat { input, .. }
            | ReferenceError::InvalidDomain { input, .. }
            | ReferenceError::InvalidTag { input, .. }
            | ReferenceError::InvalidDigest { input, .. }
            | ReferenceError::Uppercase { input, .. }
            | ReferenceError::NameTooLong { input, .. }
            | ReferenceError::NotTaggable { input, .. }
            | ReferenceError::HexIdentifier { input } => input,
        }
    }
}

/// Why an image document, archive file or platform string is not usable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document is not the JSON it should be (`what`: "image config", "manifest.json", …).
    #[error("{what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    /// A file of a `docker save` archive or OCI layout is malformed.
    #[error("{file}: {reason}")]
    InvalidArchive { file: String, reason: String },
    /// A tag in an archive is not a valid reference.
    #[error("{file}: {tag:?}: {source}")]
    InvalidArchiveTag {
        file: String,
        tag: String,
        source: ReferenceError,
    },
    #[error("invalid platform {platform:?}: {reason}")]
    InvalidPlatform { platform: String, reason: String },
    /// A valid platform this machine cannot run (no emulation).
    #[error("platform {requested} is not this machine's ({host}): strata builds and runs {host} images only")]
    ForeignPlatform { requested: String, host: String },
}
