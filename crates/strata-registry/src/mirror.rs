//! Where the pull-through cache plugs in (issue 11's mirror section, built on the registry
//! client of `strata-distribution` once it lands; nothing here talks to a network yet).
//!
//! The shape it will take:
//! - An [`Upstream`] per mirrored registry (Docker Hub, ghcr.io, …), built from the config's
//!   `[[mirror]]` entries with the client crate's auth/config code (one implementation of
//!   WWW-Authenticate parsing, token flow and credentials in the project).
//! - [`Upstreams::route`] picks the upstream of a repository: by namespace prefix
//!   (`/v2/docker.io/library/node/...`) or by containerd's `?ns=docker.io` parameter.
//! - On a manifest or blob miss (and, for tags, when the cached copy is older than the TTL)
//!   the handlers in `http/handlers.rs` ask the upstream, stream the answer to the client
//!   while writing it through the same upload path as a push (so it is verified and
//!   committed like any blob), and record the tag with the time it was last seen; an
//!   unreachable upstream or a 429/5xx answer falls back to what is cached, with a response
//!   header and a log line saying so.

use std::sync::Arc;

use bytes::Bytes;

use crate::storage::ByteStream;

/// One upstream registry (implemented on strata-distribution's client).
#[async_trait::async_trait]
pub trait Upstream: Send + Sync {
    /// The manifest `reference` of `repository` (name on the upstream), with its media type.
    async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(String, Bytes)>, UpstreamError>;
    /// A blob's bytes.
    async fn blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ByteStream>, UpstreamError>;
}

/// Why an upstream could not answer; the caller then serves from the cache.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream answered {0}")]
    Status(u16),
}

/// The configured upstreams, by namespace.
#[derive(Default)]
pub(crate) struct Upstreams {
    by_prefix: Vec<(String, Arc<dyn Upstream>)>,
}

impl Upstreams {
    /// The upstream serving `repository` and the name to ask it for: `ns` (containerd's
    /// `?ns=` parameter) names the registry directly; otherwise the first path component
    /// does. `None` for repositories pushed to this registry.
    #[allow(dead_code)] // used by the mirror handlers
    pub(crate) fn route<'a>(
        &self,
        repository: &'a str,
        ns: Option<&str>,
    ) -> Option<(Arc<dyn Upstream>, &'a str)> {
        if let Some(ns) = ns {
            let (_, up) = self.by_prefix.iter().find(|(p, _)| p == ns)?;
            return Some((up.clone(), repository));
        }
        let (first, rest) = repository.split_once('/')?;
        let (_, up) = self.by_prefix.iter().find(|(p, _)| p == first)?;
        Some((up.clone(), rest))
    }
}
