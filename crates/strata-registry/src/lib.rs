//! strata-registry: the registry server behind `strata registry serve` (OCI distribution
//! spec v1.1 plus Docker's expectations).
//!
//! Owns the HTTP routes (`http/`), upload sessions (`uploads.rs`), manifest validation and
//! referrers (`manifests.rs`), repository-scoped blob access (`blobs.rs`), authentication
//! and the token service (`auth/`), online garbage collection (`gc.rs`), quotas, metrics,
//! TLS, the [`Storage`] trait with its filesystem backend, and the pull-through cache of
//! upstream registries (`mirror.rs`, on strata-distribution's client).
//!
//! ```no_run
//! let config = strata_registry::Config::parse("addr = \"127.0.0.1:5001\"\nstorage = \"/tmp/reg\"").unwrap();
//! let server = strata_registry::Server::bind(&config).unwrap();
//! println!("listening on {}", server.local_addr());
//! server.run().unwrap(); // until SIGTERM / SIGINT
//! ```
//!
//! Must not: start an async runtime anywhere but [`Server::run`] and [`run_gc`] (the rest of
//! strata is synchronous and re-executes itself as single-threaded helpers); make anything
//! visible under a digest before its bytes are verified; hold a request body or blob in
//! memory (only manifests, capped, are read whole); answer an unauthorised client
//! differently for a repository that exists and one that does not; print (it logs through
//! `tracing`; the binary installs the subscriber).

mod api_error;
mod auth;
mod blobs;
mod config;
mod error;
mod gc;
mod http;
mod layout;
mod manifests;
mod metrics;
mod mirror;
mod names;
mod quota;
mod registry;
mod server;
pub mod storage;
#[cfg(any(test, feature = "test-s3-server"))]
pub mod test_s3;
mod tls;
mod uploads;

pub use api_error::{ApiError, ErrorCode};
pub use auth::{set_password, DEFAULT_COST as HTPASSWD_COST};
pub use config::{
    Action, AuthMode, ByteSize, Config, Dur, LogFormat, MirrorConfig, S3Config, UntaggedPolicy,
    DEFAULT_ADDR, DEFAULT_STORAGE,
};
pub use error::RegistryError;
pub use gc::{collect, GcOptions, GcReport};
pub use mirror::{Upstream, UpstreamError};
pub use names::glob_matches;
pub use registry::Registry;
pub use server::Server;
pub use storage::{FsStorage, S3Storage, Storage};

/// Runs one garbage collection on the configured storage (`strata registry gc`), on a
/// single-threaded runtime of its own. Safe while a server serves the same storage.
pub fn run_gc(config: &Config, dry_run: bool) -> Result<GcReport, RegistryError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RegistryError::Runtime)?;
    rt.block_on(async {
        let (registry, _) = server::open_registry(config)?;
        registry.storage().check().await?;
        let report = gc::collect(&registry, &GcOptions::from_config(&config.gc, dry_run)).await;
        registry.storage().close().await;
        report
    })
}
