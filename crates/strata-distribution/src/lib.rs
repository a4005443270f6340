//! strata-distribution: the registry protocol, client side.
//!
//! Owns talking to registries (OCI distribution spec v1.1 / Docker Registry HTTP API v2):
//! registry settings ([`RegistriesConfig`]: mirrors for any registry, plain HTTP and CA
//! files per host), credentials where Docker keeps them ([`DockerCredentials`]:
//! `config.json` auths and `docker-credential-*` helpers), `WWW-Authenticate` challenges and
//! the anonymous / Basic / Bearer-token flows with cached tokens, and per repository
//! ([`Repository`]): manifests and indexes as served, blob streams with HTTP ranges, blob
//! existence, uploads (monolithic, streamed or chunked, resumable, cross-repository mounts),
//! manifest puts and tag lists.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use strata_distribution::{Access, DockerCredentials, RegistriesConfig, RegistryClient};
//!
//! let client = RegistryClient::new(RegistriesConfig::load()?, Box::new(DockerCredentials::from_env()));
//! let repo = client.repository("docker.io", "library/busybox", Access::Pull);
//! let manifest = repo.manifest("latest")?;
//! println!("{} {}", manifest.media_type, manifest.digest);
//! # Ok(()) }
//! ```
//!
//! Must not: know about the local store, images as strata records them, or the terminal
//! (the image flows in strata-image drive it; only the binary prints). The registry server
//! reuses its settings, credentials, challenge parsing and token flow for its upstreams.

mod auth;
mod blob;
mod challenge;
mod client;
mod config;
mod credentials;
mod error;
mod repository;
mod transport;
mod upload;

pub use blob::BlobStream;
pub use challenge::{parse_challenges, Challenge};
pub use client::{Access, RegistryClient, RetryPolicy};
pub use config::{
    is_loopback, parse_mirror, HostSettings, Mirror, RegistriesConfig, Scheme, DEFAULT_DOWNLOADS,
    DEFAULT_UPLOADS,
};
pub use credentials::{
    auth_key, Anonymous, Credential, CredentialSource, DockerCredentials, StaticCredentials,
    DOCKER_HUB_AUTH_KEY,
};
pub use error::{DistributionError, RegistryErrorBody};
pub use repository::{FetchedManifest, Repository, MANIFEST_LIMIT};
pub use upload::{Upload, UploadStart};
