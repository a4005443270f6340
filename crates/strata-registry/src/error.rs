//! The errors of strata-registry as a library (starting the server, the collector, the
//! htpasswd helper). Errors of one request are [`crate::ApiError`]s, sent to the client.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("reading the config {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("another registry is already serving {0}")]
    StorageBusy(PathBuf),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("plain HTTP on the non-loopback address {0}: give [tls] cert and key, or allow it with --plain-http")]
    PlainHttpRefused(SocketAddr),
    #[error("tls: {path}: {message}")]
    Tls { path: PathBuf, message: String },
    #[error("htpasswd {path}: {message}")]
    Htpasswd { path: PathBuf, message: String },
    #[error("token key {path}: {message}")]
    TokenKey { path: PathBuf, message: String },
    #[error("trusted issuer {issuer}: {message}")]
    TrustedIssuer { issuer: String, message: String },
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("another garbage collection is running on this storage")]
    GcBusy,
}
