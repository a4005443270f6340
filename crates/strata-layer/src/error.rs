//! The one error type of strata-layer.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading, applying, writing or (de)compressing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading layer tar at byte offset {offset}")]
    ReadTar {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?} at byte offset {offset} tries to escape the root: {reason}")]
    Breakout {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    #[error("layer entry {path:?} at byte offset {offset} is invalid: {reason}")]
    InvalidEntry {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("applying layer entry {path:?} at byte offset {offset}")]
    Apply {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("opening layer root {path:?}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {path:?} for the layer tar")]
    ReadSource {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing layer tar entry {path:?}")]
    WriteTar {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path:?} is not representable in a layer tar: {reason}")]
    Unrepresentable { path: PathBuf, reason: String },
    #[error("starting {codec} compression")]
    CompressStart {
        codec: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("finishing {codec} compression")]
    CompressFinish {
        codec: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("sniffing layer compression")]
    Sniff {
        #[source]
        source: io::Error,
    },
}
