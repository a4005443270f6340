//! `BuildError`: everything that can stop a build, with the line or path it is about.

use std::path::PathBuf;

use strata_oci::Digest;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("dockerfile: {0}")]
    Parse(#[from] strata_dockerfile::ParseError),
    #[error("dockerfile: {0}")]
    Resolve(#[from] strata_dockerfile::ResolveError),
    #[error("line {line}: {message}")]
    Instruction { line: usize, message: String },
    #[error("line {line}: image {name:?}: {source}")]
    BaseImage {
        line: usize,
        name: String,
        source: Box<strata_image::ImageError>,
    },
    #[error("line {line}: {instruction} is not supported yet: {what}")]
    Unsupported {
        line: usize,
        instruction: &'static str,
        what: String,
    },
    #[error("line {line}: RUN needs a run executor and none is configured")]
    NoRunExecutor { line: usize },
    #[error("line {line}: RUN failed: {message}")]
    RunFailed { line: usize, message: String },
    #[error(
        "line {line}: RUN exited with code {code}{}",
        if tail.is_empty() { String::new() } else { format!(": {tail}") }
    )]
    RunExit {
        line: usize,
        code: i32,
        tail: String,
    },
    #[error("line {line}: build context: {source}")]
    Context {
        line: usize,
        source: strata_context::ContextError,
    },
    #[error("reading the build context {path}: {source}")]
    ContextWalk {
        path: PathBuf,
        source: strata_context::ContextError,
    },
    #[error("line {line}: unknown user or group {name:?} in --chown (no match in the stage's /etc/passwd or /etc/group)")]
    UnknownOwner { line: usize, name: String },
    #[error("line {line}: invalid --chmod value {value:?}")]
    BadChmod { line: usize, value: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the layer of line {line}: {source}")]
    Layer {
        line: usize,
        source: strata_layer::LayerError,
    },
    #[error("invalid tag {tag:?}: {source}")]
    BadTag {
        tag: String,
        source: strata_oci::ReferenceError,
    },
    #[error("store: {0}")]
    Store(#[from] strata_store::StoreError),
    /// A step failed: names it and the image of the last good step to debug from.
    #[error(
        "{text}: {source}{}",
        match last_good {
            Some(id) => format!("; last good step: {id} (debug with: strata run --rm -it {} sh)", id.short()),
            None => String::new(),
        }
    )]
    StepFailed {
        text: String,
        last_good: Option<Digest>,
        source: Box<BuildError>,
    },
    #[error("image config {digest} of a cached step is unreadable: {message}")]
    CachedConfig { digest: Digest, message: String },
}

impl BuildError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { what, path, source }
    }

    pub(crate) fn at(line: usize, message: impl Into<String>) -> BuildError {
        BuildError::Instruction {
            line,
            message: message.into(),
        }
    }
}
