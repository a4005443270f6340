//! The one error type of strata-context.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading ignore files, walking, selecting or hashing a context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A `.dockerignore` line that Docker would refuse too.
    #[error("invalid .dockerignore pattern {pattern:?} on line {line}: {reason}")]
    BadIgnorePattern {
        line: usize,
        pattern: String,
        reason: String,
    },
    /// A COPY/ADD source pattern with broken glob syntax.
    #[error("invalid source pattern {pattern:?}: syntax error in pattern")]
    BadSourcePattern { pattern: String },
    /// A literal COPY source that is not in the (filtered) context.
    #[error("{pattern:?} not found in build context or excluded by .dockerignore")]
    SourceNotFound { pattern: String },
    /// A wildcard COPY source that matched nothing.
    #[error("no source files were specified: {pattern:?} matched nothing in the build context")]
    NoSourceFiles { pattern: String },
    /// A name using the characters strata reserves to carry non-UTF-8 bytes (U+10FF00–U+10FFFF).
    #[error("file name {path:?} uses characters U+10FF00 to U+10FFFF, which strata reserves: rename it or add it to .dockerignore")]
    ReservedName { path: PathBuf },
    #[error("failed to read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ContextError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> ContextError {
        ContextError::Io {
            path: path.into(),
            source,
        }
    }
}
