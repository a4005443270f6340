//! The pull-through cache: upstream registries served under namespaces of this one.
//!
//! Each `[[mirror]]` of the config is an [`Upstream`], reached through strata-distribution's
//! client (one implementation of credentials, `WWW-Authenticate`, the token flow, retries
//! and TLS settings in the project). [`Upstreams::route`] picks the upstream of a request:
//! by the repository's first path component (`/v2/docker.io/library/node/...`) or by
//! containerd's `?ns=docker.io` parameter; the cached copy lives in this registry under the
//! prefixed name, so pushes to every other namespace work beside it.
//!
//! - Manifests: by digest, a cached copy is final; by tag, the cached copy is served for
//!   `tag_ttl` after it was last confirmed, then the upstream is asked again. An upstream
//!   that cannot answer (unreachable, 429, 5xx, refusing our credentials) leaves the cached
//!   copy in service, with an `X-Strata-Mirror: stale` header and a warning in the log.
//! - Blobs stream to the client while they are written through the same verified ingest as
//!   a push (`Registry::put_blob`): nothing is visible under a digest before its bytes hash
//!   to it, and the client gets the last chunk only after that check, so a corrupt upstream
//!   answer never completes at the client either. Concurrent requests for a blob being
//!   fetched wait for that one fetch and are served from the cache.
//!
//! The distribution client is synchronous: every upstream call runs on tokio's blocking
//! pool, so the server's workers never wait on the network.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use strata_distribution::{
    Access, Credential, DistributionError, FetchedManifest, RegistriesConfig, RegistryClient,
    RetryPolicy, StaticCredentials,
};
use strata_oci::Digest;
use tokio::sync::{mpsc, oneshot, watch};

use crate::api_error::{ApiError, ErrorCode};
use crate::config::MirrorConfig;
use crate::error::RegistryError;
use crate::layout;
use crate::manifests::{ManifestRef, StoredManifest};
use crate::metrics::add;
use crate::registry::Registry;
use crate::storage::ByteStream;

/// The header that says a response came from the cache because the upstream failed.
pub(crate) const STALE_HEADER: &str = "x-strata-mirror";

/// Bytes read from an upstream blob per chunk.
const CHUNK: usize = 256 << 10;

/// One upstream registry.
pub struct Upstream {
    prefix: String,
    /// `host[:port]` of the upstream (`docker.io` is Docker Hub).
    registry: String,
    client: Arc<RegistryClient>,
    tag_ttl: Duration,
}

/// Why an upstream could not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// It answered that the manifest, blob or repository does not exist.
    #[error("not found upstream: {0}")]
    NotFound(String),
    /// It could not answer: unreachable, 429, 5xx, our credentials refused, a bad answer.
    #[error("{0}")]
    Unavailable(String),
}

impl From<DistributionError> for UpstreamError {
    fn from(e: DistributionError) -> UpstreamError {
        match &e {
            DistributionError::ManifestUnknown { .. }
            | DistributionError::NameUnknown { .. }
            | DistributionError::BlobUnknown { .. } => UpstreamError::NotFound(e.to_string()),
            DistributionError::Status { status: 404, .. } => UpstreamError::NotFound(e.to_string()),
            _ => UpstreamError::Unavailable(e.to_string()),
        }
    }
}

/// A request routed to an upstream.
#[derive(Clone)]
pub(crate) struct MirrorRoute {
    pub(crate) upstream: Arc<Upstream>,
    /// The repository in this registry's storage (`docker.io/library/node`).
    pub(crate) local: String,
    /// The repository on the upstream (`library/node`).
    pub(crate) remote: String,
}

/// The configured upstreams, and the blob fetches in flight.
#[derive(Default)]
pub(crate) struct Upstreams {
    by_prefix: Vec<Arc<Upstream>>,
    /// One fetch per blob: later requests wait for the receiver to close.
    inflight: Mutex<HashMap<Digest, watch::Receiver<()>>>,
}

impl Upstreams {
    pub(crate) fn from_config(mirrors: &[MirrorConfig]) -> Result<Upstreams, RegistryError> {
        let mut by_prefix = Vec::new();
        for m in mirrors {
            let registry = m.registry.clone().unwrap_or_else(|| m.prefix.clone());
            // The client's settings come from registries.toml text: the same parser and
            // checks as `strata pull`'s.
            let mut host = toml::Table::new();
            if let Some(insecure) = m.insecure {
                host.insert("insecure".into(), insecure.into());
            }
            if let Some(ca) = &m.ca_file {
                host.insert("ca_file".into(), ca.to_string_lossy().into_owned().into());
            }
            let mut hosts = toml::Table::new();
            hosts.insert(registry.clone(), host.into());
            let mut settings = toml::Table::new();
            settings.insert("registry".into(), hosts.into());
            let mut config = RegistriesConfig::default();
            config
                .merge(&settings.to_string(), std::path::Path::new("[[mirror]]"))
                .map_err(|e| RegistryError::InvalidConfig(format!("mirror {:?}: {e}", m.prefix)))?;
            let mut credentials = StaticCredentials::default();
            if let (Some(username), Some(password)) = (&m.username, &m.password) {
                credentials.0.insert(
                    registry.clone(),
                    Credential::Basic {
                        username: username.clone(),
                        password: password.clone(),
                    },
                );
            }
            // A mirror answers from its cache when the upstream fails: a short retry budget
            // keeps such answers quick.
            let client =
                RegistryClient::new(config, Box::new(credentials)).with_retry(RetryPolicy {
                    attempts: 2,
                    base: Duration::from_millis(200),
                    max_wait: Duration::from_secs(2),
                });
            by_prefix.push(Arc::new(Upstream {
                prefix: m.prefix.clone(),
                registry,
                client: Arc::new(client),
                tag_ttl: m.tag_ttl.0,
            }));
        }
        Ok(Upstreams {
            by_prefix,
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// The upstream serving `name` and the names on both sides: `ns` (containerd's `?ns=`)
    /// names the registry directly; otherwise the first path component does. `None` for
    /// repositories pushed to this registry.
    pub(crate) fn route(&self, name: &str, ns: Option<&str>) -> Option<MirrorRoute> {
        if let Some(ns) = ns {
            let up = self.by_prefix.iter().find(|u| u.prefix == ns)?;
            let remote = name
                .strip_prefix(&format!("{ns}/"))
                .unwrap_or(name)
                .to_string();
            return Some(MirrorRoute {
                upstream: up.clone(),
                local: format!("{ns}/{remote}"),
                remote,
            });
        }
        let (first, rest) = name.split_once('/')?;
        let up = self.by_prefix.iter().find(|u| u.prefix == first)?;
        Some(MirrorRoute {
            upstream: up.clone(),
            local: name.to_string(),
            remote: rest.to_string(),
        })
    }
}

impl Upstream {
    /// `host[:port]` of the upstream registry.
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// Runs a client call on the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        remote: &str,
        op: impl FnOnce(&strata_distribution::Repository<'_>) -> Result<T, DistributionError>
            + Send
            + 'static,
    ) -> Result<T, UpstreamError> {
        let client = self.client.clone();
        let (registry, remote) = (self.registry.clone(), remote.to_string());
        tokio::task::spawn_blocking(move || {
            let repo = client.repository(&registry, &remote, Access::Pull);
            op(&repo)
        })
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("upstream call failed: {e}")))?
        .map_err(UpstreamError::from)
    }

    async fn manifest(
        &self,
        remote: &str,
        reference: &str,
    ) -> Result<FetchedManifest, UpstreamError> {
        let reference = reference.to_string();
        self.call(remote, move |repo| repo.manifest(&reference))
            .await
    }

    async fn blob_size(&self, remote: &str, digest: &Digest) -> Result<Option<u64>, UpstreamError> {
        let digest = digest.clone();
        self.call(remote, move |repo| repo.blob_size(&digest)).await
    }

    async fn tags(&self, remote: &str) -> Result<Vec<String>, UpstreamError> {
        self.call(remote, |repo| repo.tags()).await
    }

    /// Opens a blob on the upstream: its announced size and its bytes, pumped from a
    /// blocking thread through a small channel (back-pressure on a slow reader).
    async fn blob(
        &self,
        remote: &str,
        digest: &Digest,
    ) -> Result<(Option<u64>, ByteStream), UpstreamError> {
        let client = self.client.clone();
        let (registry, remote, digest) =
            (self.registry.clone(), remote.to_string(), digest.clone());
        let (opened_tx, opened_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        tokio::task::spawn_blocking(move || {
            let repo = client.repository(&registry, &remote, Access::Pull);
            let mut stream = match repo.blob(&digest, None, 0) {
                Ok(s) => {
                    let _ = opened_tx.send(Ok(s.announced_size()));
                    s
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(UpstreamError::from(e)));
                    return;
                }
            };
            loop {
                let mut buf = vec![0u8; CHUNK];
                match io::Read::read(&mut stream, &mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let size = opened_rx
            .await
            .map_err(|_| UpstreamError::Unavailable("upstream fetch ended early".into()))??;
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok((size, Box::pin(stream)))
    }
}

/// A manifest the mirror serves, and why it is served from the cache if the upstream failed.
pub(crate) struct MirroredManifest {
    pub(crate) manifest: StoredManifest,
    pub(crate) bytes: Bytes,
    pub(crate) stale: Option<String>,
}

/// GET/HEAD of a manifest in a mirrored repository.
pub(crate) async fn manifest(
    registry: &Registry,
    route: &MirrorRoute,
    reference: &ManifestRef,
) -> Result<Option<MirroredManifest>, ApiError> {
    let up = &route.upstream;
    let cached = registry.get_manifest(&route.local, reference).await?;
    let fresh = match (reference, &cached) {
        (ManifestRef::Digest(_), Some(_)) => true,
        (ManifestRef::Tag(tag), Some(_)) => {
            let seen = registry
                .storage
                .head(&layout::tag(&route.local, tag))
                .await?
                .map(|m| m.modified);
            seen.is_some_and(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .map_or(true, |age| age < up.tag_ttl)
            })
        }
        _ => false,
    };
    if fresh {
        add(&registry.metrics.cache_hits, 1);
        return Ok(cached.map(|(manifest, bytes)| MirroredManifest {
            manifest,
            bytes,
            stale: None,
        }));
    }
    add(&registry.metrics.cache_misses, 1);
    let text = match reference {
        ManifestRef::Tag(t) => t.clone(),
        ManifestRef::Digest(d) => d.to_string(),
    };
    match up.manifest(&route.remote, &text).await {
        Ok(fetched) => {
            let tag = match reference {
                ManifestRef::Tag(t) => Some(t.as_str()),
                ManifestRef::Digest(_) => None,
            };
            let digest = registry
                .cache_manifest(&route.local, tag, &fetched.media_type, &fetched.bytes)
                .await?;
            Ok(Some(MirroredManifest {
                manifest: StoredManifest {
                    digest,
                    media_type: fetched.media_type,
                    size: fetched.bytes.len() as u64,
                },
                bytes: Bytes::from(fetched.bytes),
                stale: None,
            }))
        }
        Err(UpstreamError::NotFound(_)) => Ok(None),
        Err(UpstreamError::Unavailable(why)) => match cached {
            Some((manifest, bytes)) => {
                tracing::warn!(
                    repository = %route.local,
                    reference = %text,
                    upstream = %up.registry,
                    error = %why,
                    "upstream failed: serving the cached manifest"
                );
                Ok(Some(MirroredManifest {
                    manifest,
                    bytes,
                    stale: Some(format!("stale; upstream {} failed", up.registry)),
                }))
            }
            None => Err(unavailable(up, &why)),
        },
    }
}

fn unavailable(up: &Upstream, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Unknown,
        format!(
            "upstream {} failed and nothing is cached: {why}",
            up.registry
        ),
    )
    .with_status(502)
}

/// The tags of a mirrored repository: the upstream's, or the cached ones when it fails.
pub(crate) async fn tags(
    registry: &Registry,
    route: &MirrorRoute,
) -> Result<Vec<String>, ApiError> {
    match route.upstream.tags(&route.remote).await {
        Ok(mut tags) => {
            tags.sort();
            tags.dedup();
            Ok(tags)
        }
        Err(UpstreamError::NotFound(_)) => Err(ApiError::name_unknown(&route.local)),
        Err(UpstreamError::Unavailable(why)) => {
            tracing::warn!(
                repository = %route.local,
                upstream = %route.upstream.registry,
                error = %why,
                "upstream failed: serving the cached tags"
            );
            Ok(registry.tags(&route.local, None, None).await?.items)
        }
    }
}

/// The size of a blob the cache does not hold, asked of the upstream (HEAD).
pub(crate) async fn blob_size(
    registry: &Registry,
    route: &MirrorRoute,
    digest: &Digest,
) -> Result<Option<u64>, ApiError> {
    add(&registry.metrics.cache_misses, 1);
    match route.upstream.blob_size(&route.remote, digest).await {
        Ok(size) => Ok(size),
        Err(UpstreamError::NotFound(_)) => Ok(None),
        Err(UpstreamError::Unavailable(why)) => Err(unavailable(&route.upstream, &why)),
    }
}

/// What a blob GET on a miss answers with.
pub(crate) enum BlobFetch {
    /// Another request fetched it meanwhile: serve it from the cache.
    Cached,
    /// Streaming from the upstream (size when announced).
    Streaming(Option<u64>, ByteStream),
}

/// GET of a blob the cache does not hold: one upstream fetch per digest, written through
/// the verified ingest while it streams to the client.
pub(crate) async fn fetch_blob(
    registry: &Arc<Registry>,
    upstreams: &Arc<Upstreams>,
    route: &MirrorRoute,
    digest: &Digest,
) -> Result<Option<BlobFetch>, ApiError> {
    loop {
        // Either wait for the fetch in flight or become the one fetch (the guard must not
        // live across an await).
        let waiting: Result<watch::Receiver<()>, watch::Sender<()>> = {
            let mut inflight = upstreams.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match inflight.get(digest) {
                Some(rx) if rx.has_changed().is_ok() => Ok(rx.clone()),
                _ => {
                    let (done_tx, done_rx) = watch::channel(());
                    inflight.insert(digest.clone(), done_rx);
                    Err(done_tx)
                }
            }
        };
        match waiting {
            Err(done) => return start_fetch(registry, upstreams, route, digest, done).await,
            Ok(mut rx) => {
                // Closed when the fetch ends, whichever way.
                while rx.changed().await.is_ok() {}
                if registry.blob_meta(&route.local, digest).await?.is_some() {
                    add(&registry.metrics.cache_hits, 1);
                    return Ok(Some(BlobFetch::Cached));
                }
            }
        }
    }
}

async fn start_fetch(
    registry: &Arc<Registry>,
    upstreams: &Arc<Upstreams>,
    route: &MirrorRoute,
    digest: &Digest,
    done: watch::Sender<()>,
) -> Result<Option<BlobFetch>, ApiError> {
    add(&registry.metrics.cache_misses, 1);
    let forget = |upstreams: &Upstreams| {
        upstreams
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(digest);
    };
    let (size, upstream) = match route.upstream.blob(&route.remote, digest).await {
        Ok(opened) => opened,
        Err(e) => {
            forget(upstreams);
            return match e {
                UpstreamError::NotFound(_) => Ok(None),
                UpstreamError::Unavailable(why) => Err(unavailable(&route.upstream, &why)),
            };
        }
    };
    // The client's copy of each chunk goes out one chunk late: the last one waits for the
    // digest check, so a corrupt answer never completes at the client.
    let (client_tx, client_rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let held: Arc<Mutex<Option<Bytes>>> = Arc::new(Mutex::new(None));
    let tee_tx = client_tx.clone();
    let tee_held = held.clone();
    let tee: ByteStream = Box::pin(upstream.then(move |item| {
        let tx = tee_tx.clone();
        let held = tee_held.clone();
        async move {
            if let Ok(chunk) = &item {
                let previous = held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .replace(chunk.clone());
                if let Some(previous) = previous {
                    // A client that went away does not stop the cache from filling.
                    let _ = tx.send(Ok(previous)).await;
                }
            }
            item
        }
    }));
    let registry = registry.clone();
    let upstreams = upstreams.clone();
    let (local, digest) = (route.local.clone(), digest.clone());
    let remote = format!("{}/{}", route.upstream.registry, route.remote);
    // The fetch is not tied to the client's request: it finishes (and fills the cache)
    // when the client disconnects, and wakes the requests waiting for it at the end.
    tokio::spawn(async move {
        let result = registry.put_blob(&local, &digest, tee).await;
        let last = held.lock().unwrap_or_else(|p| p.into_inner()).take();
        upstreams
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest);
        drop(done);
        match result {
            Ok(()) => {
                if let Some(last) = last {
                    let _ = client_tx.send(Ok(last)).await;
                }
            }
            Err(e) => {
                tracing::warn!(
                    repository = %local,
                    digest = %digest,
                    upstream = %remote,
                    error = %e.message,
                    "caching a blob from the upstream failed"
                );
                let _ = client_tx
                    .send(Err(io::Error::other(format!(
                        "fetching {digest} from {remote}: {}",
                        e.message
                    ))))
                    .await;
            }
        }
    });
    let body = futures_util::stream::unfold(client_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(Some(BlobFetch::Streaming(size, Box::pin(body))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, MirrorConfig};

    fn mirror(prefix: &str, registry: Option<&str>) -> MirrorConfig {
        MirrorConfig {
            prefix: prefix.into(),
            registry: registry.map(str::to_string),
            username: None,
            password: None,
            tag_ttl: Dur(Duration::from_secs(300)),
            insecure: None,
            ca_file: None,
        }
    }

    #[test]
    fn routes_by_prefix_or_ns_and_leaves_other_names_alone() {
        let ups = Upstreams::from_config(&[
            mirror("docker.io", None),
            mirror("corp", Some("registry.corp.example:5000")),
        ])
        .unwrap();
        let r = ups.route("docker.io/library/node", None).unwrap();
        assert_eq!(
            (r.local.as_str(), r.remote.as_str()),
            ("docker.io/library/node", "library/node")
        );
        assert_eq!(r.upstream.registry(), "docker.io");
        let r = ups.route("library/node", Some("docker.io")).unwrap();
        assert_eq!(
            (r.local.as_str(), r.remote.as_str()),
            ("docker.io/library/node", "library/node")
        );
        let r = ups.route("corp/team/app", None).unwrap();
        assert_eq!(r.upstream.registry(), "registry.corp.example:5000");
        assert_eq!(r.remote, "team/app");
        // Pushed repositories, one-component names and unknown namespaces are not mirrored.
        assert!(ups.route("team/app", None).is_none());
        assert!(ups.route("docker.io", None).is_none());
        assert!(ups.route("library/node", Some("quay.io")).is_none());
    }

    #[test]
    fn upstream_settings_reach_the_client_whatever_the_characters() {
        let mut m = mirror("corp", Some("registry.corp.example:5000"));
        m.insecure = Some(true);
        m.ca_file = Some(r#"/etc/ssl/a "quoted" \ name.pem"#.into());
        let ups = Upstreams::from_config(&[m]).unwrap();
        let host = ups.by_prefix[0]
            .client
            .config()
            .host("registry.corp.example:5000");
        assert!(host.insecure);
        assert_eq!(
            host.ca_files
                .first()
                .map(|p| p.to_string_lossy().into_owned()),
            Some(r#"/etc/ssl/a "quoted" \ name.pem"#.to_string())
        );
    }

    #[test]
    fn upstream_failures_are_told_apart_from_absence() {
        let missing = DistributionError::ManifestUnknown {
            reference: "x:1".into(),
        };
        assert!(matches!(
            UpstreamError::from(missing),
            UpstreamError::NotFound(_)
        ));
        let down = DistributionError::Connect {
            url: "http://127.0.0.1:1/v2/".into(),
            reason: "refused".into(),
            retry: true,
        };
        assert!(matches!(
            UpstreamError::from(down),
            UpstreamError::Unavailable(_)
        ));
    }
}
