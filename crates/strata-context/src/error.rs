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
    /// Context file names must be UTF-8 so patterns can match them.
    #[error("file name is not valid UTF-8: {path}")]
    NonUtf8Path { path: PathBuf },
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
