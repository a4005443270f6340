//! One repository of a registry (`docker.io` + `library/busybox`): manifests, blobs and
//! tags, read through the registry's mirrors, written to the registry itself.

use std::io::Read;

use strata_oci::{media_type, Digest};
use ureq::http::{self, Response};
use ureq::Body;

use crate::blob::BlobStream;
use crate::client::{Access, Endpoint, RegistryClient};
use crate::config::canonical_host;
use crate::error::DistributionError;
use crate::transport::{self, Request, SMALL_BODY_LIMIT};
use crate::upload::{Upload, UploadStart};

/// Largest manifest or index accepted (containerd's limit; OCI asks registries for ≥ 4 MiB).
pub const MANIFEST_LIMIT: u64 = 8 << 20;
/// Most tags `tags` lists (pages of a paginated answer included).
const TAGS_LIMIT: usize = 100_000;

/// Every manifest type strata reads, best first (schema 1 only so it can be refused clearly).
const MANIFEST_ACCEPT: &str = concat!(
    "application/vnd.oci.image.index.v1+json, ",
    "application/vnd.docker.distribution.manifest.list.v2+json, ",
    "application/vnd.oci.image.manifest.v1+json, ",
    "application/vnd.docker.distribution.manifest.v2+json, ",
    "application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, ",
    "application/vnd.docker.distribution.manifest.v1+json;q=0.1, ",
    "application/json;q=0.1"
);

/// A manifest or index exactly as served.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    /// From Content-Type (parameters dropped), or the document's own `mediaType`.
    pub media_type: String,
    /// The sha256 of `bytes`, checked against the digest asked for and the registry's
    /// `Docker-Content-Digest`.
    pub digest: Digest,
}

/// A repository, opened for pulling or pushing.
pub struct Repository<'c> {
    pub(crate) client: &'c RegistryClient,
    pub(crate) domain: String,
    pub(crate) path: String,
    pub(crate) scopes: Vec<String>,
}

impl<'c> Repository<'c> {
    pub(crate) fn new(
        client: &'c RegistryClient,
        domain: &str,
        path: &str,
        access: Access,
    ) -> Repository<'c> {
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        Repository {
            client,
            domain: canonical_host(domain).to_string(),
            path: path.to_string(),
            scopes: vec![format!("repository:{path}:{actions}")],
        }
    }

    /// The client this repository talks through.
    pub fn client(&self) -> &'c RegistryClient {
        self.client
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn api(&self, rest: &str) -> String {
        format!("/v2/{}/{rest}", self.path)
    }

    /// Turns a 401/403/404 and the like into the error a person can act on.
    pub(crate) fn refused(
        &self,
        method: &'static str,
        url: &str,
        resp: Response<Body>,
        what: Refusal,
    ) -> DistributionError {
        let status = resp.status().as_u16();
        let retry_after = transport::retry_after(&resp);
        let detail = transport::error_body(resp, url);
        let message = detail.as_ref().map(|d| d.to_string());
        let code = detail.as_ref().map(|d| d.code.as_str()).unwrap_or("");
        let reading = method == "GET" || method == "HEAD";
        match (status, what) {
            // A registry answers 401 for a repository that does not exist as for one we may
            // not read, so say both, as Docker does.
            (401, Refusal::Manifest(_) | Refusal::Tags) if reading => DistributionError::Denied {
                what: "pull access",
                name: self.name(),
                registry: self.domain.clone(),
                message: message.unwrap_or_else(|| "unauthorized: authentication required".into()),
            },
            (401, _) => DistributionError::Unauthorized {
                registry: self.domain.clone(),
                message: message.unwrap_or_else(|| "authentication required".into()),
            },
            (403, _) => DistributionError::Denied {
                what: if reading {
                    "pull access"
                } else {
                    "push access"
                },
                name: self.name(),
                registry: self.domain.clone(),
                message: message
                    .unwrap_or_else(|| "requested access to the resource is denied".into()),
            },
            (404, Refusal::Manifest(reference)) if code != "NAME_UNKNOWN" => {
                DistributionError::ManifestUnknown {
                    reference: format!("{}{reference}", self.name()),
                }
            }
            (404, Refusal::Blob(digest)) if code != "NAME_UNKNOWN" => {
                DistributionError::BlobUnknown {
                    name: self.name(),
                    digest,
                }
            }
            (404, _) => DistributionError::NameUnknown { name: self.name() },
            _ => DistributionError::Status {
                method,
                url: url.to_string(),
                status,
                detail,
                retry_after,
            },
        }
    }

    /// Fetches a manifest or index by tag or digest.
    pub fn manifest(&self, reference: &str) -> Result<FetchedManifest, DistributionError> {
        let path = self.api(&format!("manifests/{reference}"));
        self.client
            .on_read_endpoints(&self.domain, &|ep| self.manifest_from(ep, &path, reference))
    }

    fn manifest_from(
        &self,
        ep: &Endpoint,
        path: &str,
        reference: &str,
    ) -> Result<FetchedManifest, DistributionError> {
        let url = self.client.url(ep, path)?;
        let resp = self.client.send(ep, &self.scopes, &url, true, &|u| {
            Request::new(http::Method::GET, u).header("accept", MANIFEST_ACCEPT)
        })?;
        if !resp.status().is_success() {
            let sep = if reference.starts_with("sha256:") {
                "@"
            } else {
                ":"
            };
            return Err(self.refused(
                "GET",
                &url,
                resp,
                Refusal::Manifest(format!("{sep}{reference}")),
            ));
        }
        let content_type = transport::header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let announced = transport::header(&resp, "docker-content-digest").map(str::to_string);
        let bytes = transport::read_limited(resp, &url, "manifest", MANIFEST_LIMIT)?;
        let digest = Digest::sha256_of(&bytes);
        let mismatch = |expected: Digest| DistributionError::DigestMismatch {
            what: "manifest",
            reference: format!("{}@{reference}", self.name()),
            expected,
            actual: digest.clone(),
        };
        if let Ok(wanted) = Digest::parse(reference) {
            if wanted != digest {
                return Err(mismatch(wanted));
            }
        } else if let Some(announced) = announced.as_deref().and_then(|a| Digest::parse(a).ok()) {
            // Schema 1 manifests are signed, and the digest covers the unsigned payload: the
            // caller refuses those anyway.
            if announced != digest && !media_type::is_schema1(&content_type) {
                return Err(mismatch(announced));
            }
        }
        let media_type = if content_type.is_empty() || content_type == "application/json" {
            sniff_media_type(&bytes).unwrap_or(content_type)
        } else {
            content_type
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Streams blob `digest` of `size` bytes (when known) from byte `offset` on; the
    /// stream's `offset()` says where it really starts (0 when the server ignored the range).
    pub fn blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        offset: u64,
    ) -> Result<BlobStream, DistributionError> {
        let path = self.api(&format!("blobs/{digest}"));
        self.client.on_read_endpoints(&self.domain, &|ep| {
            let url = self.client.url(ep, &path)?;
            let resp = self.client.send(ep, &self.scopes, &url, true, &|u| {
                let req = Request::new(http::Method::GET, u);
                if offset > 0 {
                    req.header("range", format!("bytes={offset}-"))
                } else {
                    req
                }
            })?;
            let status = resp.status().as_u16();
            if status == 416 && offset > 0 {
                // What we have is not a prefix the server can continue: start over.
                return self.blob_from_start(ep, &url, digest, size);
            }
            if !resp.status().is_success() {
                return Err(self.refused("GET", &url, resp, Refusal::Blob(digest.clone())));
            }
            BlobStream::new(resp, url, digest.clone(), size, offset)
        })
    }

    fn blob_from_start(
        &self,
        ep: &Endpoint,
        url: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<BlobStream, DistributionError> {
        let resp = self.client.send(ep, &self.scopes, url, true, &|u| {
            Request::new(http::Method::GET, u)
        })?;
        if !resp.status().is_success() {
            return Err(self.refused("GET", url, resp, Refusal::Blob(digest.clone())));
        }
        BlobStream::new(resp, url.to_string(), digest.clone(), size, 0)
    }

    /// Reads a whole small blob (a config), verified, refusing more than `limit` bytes.
    pub fn small_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, DistributionError> {
        let mut stream = self.blob(digest, None, 0)?;
        let url = stream.url().to_string();
        let mut out = Vec::new();
        (&mut stream)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|source| DistributionError::Read {
                url: url.clone(),
                source,
            })?;
        if out.len() as u64 > limit {
            return Err(DistributionError::TooLarge {
                what: "blob",
                url,
                limit,
            });
        }
        let actual = Digest::sha256_of(&out);
        if actual != *digest {
            return Err(DistributionError::DigestMismatch {
                what: "blob",
                reference: format!("{}@{digest}", self.name()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(out)
    }

    /// The size of blob `digest` in this repository (HEAD on the registry), or None.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DistributionError> {
        let ep = self.client.upstream(&self.domain);
        let path = self.api(&format!("blobs/{digest}"));
        self.client.retrying(&|| {
            let url = self.client.url(&ep, &path)?;
            let resp = self.client.send(&ep, &self.scopes, &url, true, &|u| {
                Request::new(http::Method::HEAD, u)
            })?;
            match resp.status().as_u16() {
                200..=299 => Ok(Some(
                    transport::header(&resp, "content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0),
                )),
                404 => Ok(None),
                _ => Err(self.refused("HEAD", &url, resp, Refusal::Blob(digest.clone()))),
            }
        })
    }

    /// Starts a blob upload, asking the registry to mount `digest` from `from` (another
    /// repository of the same registry) when given.
    pub fn start_upload(
        &self,
        mount: Option<(&Digest, &str)>,
    ) -> Result<UploadStart<'c>, DistributionError> {
        let mut scopes = self.scopes.clone();
        if let Some((_, from)) = mount {
            scopes.push(format!("repository:{from}:pull"));
        }
        let ep = self.client.upstream(&self.domain);
        let path = self.api("blobs/uploads/");
        let path = match mount {
            Some((digest, from)) => {
                crate::auth::with_query(&path, &[("mount", digest.as_str()), ("from", from)])
            }
            None => path,
        };
        self.client.retrying(&|| {
            let url = self.client.url(&ep, &path)?;
            let resp = self.client.send(&ep, &scopes, &url, false, &|u| {
                Request::new(http::Method::POST, u).header("content-length", "0")
            })?;
            match resp.status().as_u16() {
                201 => Ok(UploadStart::Mounted),
                202 => {
                    let location = transport::header(&resp, "location").ok_or_else(|| {
                        DistributionError::Protocol {
                            url: url.clone(),
                            reason: "upload started without a Location".into(),
                        }
                    })?;
                    Ok(UploadStart::Session(Box::new(Upload::new(
                        self.client,
                        ep.clone(),
                        scopes.clone(),
                        self.name(),
                        transport::resolve_location(&url, location),
                        0,
                    ))))
                }
                _ => Err(self.refused("POST", &url, resp, Refusal::Upload)),
            }
        })
    }

    /// Picks up an upload started earlier (possibly by another process) at `location`:
    /// None when the registry no longer knows it.
    pub fn resume_upload(&self, location: &str) -> Result<Option<Upload<'c>>, DistributionError> {
        let ep = self.client.upstream(&self.domain);
        self.client.prepare(&ep)?;
        let resp = self.client.send(&ep, &self.scopes, location, false, &|u| {
            Request::new(http::Method::GET, u)
        })?;
        match resp.status().as_u16() {
            204 | 200 => {
                // Distribution says `0-0` for both 0 and 1 bytes received: assume 0, a
                // wrong guess fails the next PATCH and the push starts a new session.
                let next = transport::header(&resp, "range")
                    .and_then(crate::upload::range_end)
                    .map_or(0, |end| if end == 0 { 0 } else { end + 1 });
                let location = transport::header(&resp, "location")
                    .map(|l| transport::resolve_location(location, l))
                    .unwrap_or_else(|| location.to_string());
                Ok(Some(Upload::new(
                    self.client,
                    ep,
                    self.scopes.clone(),
                    self.name(),
                    location,
                    next,
                )))
            }
            404 | 400 | 410 => Ok(None),
            _ => Err(self.refused("GET", location, resp, Refusal::Upload)),
        }
    }

    /// Puts a manifest under `reference` (a tag or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, DistributionError> {
        let ep = self.client.upstream(&self.domain);
        let path = self.api(&format!("manifests/{reference}"));
        let digest = Digest::sha256_of(bytes);
        self.client.retrying(&|| {
            let url = self.client.url(&ep, &path)?;
            let resp = self.client.send(&ep, &self.scopes, &url, false, &|u| {
                Request::new(http::Method::PUT, u)
                    .header("content-type", media_type)
                    .payload(transport::Payload::Bytes(bytes))
            })?;
            if !resp.status().is_success() {
                return Err(self.refused("PUT", &url, resp, Refusal::Upload));
            }
            if let Some(said) = transport::header(&resp, "docker-content-digest")
                .and_then(|d| Digest::parse(d).ok())
            {
                if said != digest {
                    return Err(DistributionError::DigestMismatch {
                        what: "pushed manifest",
                        reference: format!("{}:{reference}", self.name()),
                        expected: digest.clone(),
                        actual: said,
                    });
                }
            }
            Ok(digest.clone())
        })
    }

    /// Every tag of the repository, following pagination.
    pub fn tags(&self) -> Result<Vec<String>, DistributionError> {
        let first = self.api("tags/list");
        self.client.on_read_endpoints(&self.domain, &|ep| {
            let mut out = Vec::new();
            let mut next = Some(self.client.url(ep, &first)?);
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                let resp = self.client.send(ep, &self.scopes, &url, true, &|u| {
                    Request::new(http::Method::GET, u)
                })?;
                if !resp.status().is_success() {
                    return Err(self.refused("GET", &url, resp, Refusal::Tags));
                }
                let link = transport::header(&resp, "link").and_then(next_link);
                let body = transport::read_limited(resp, &url, "tag list", 16 * SMALL_BODY_LIMIT)?;
                #[derive(serde::Deserialize)]
                struct Tags {
                    #[serde(default)]
                    tags: Option<Vec<String>>,
                }
                let page: Tags =
                    serde_json::from_slice(&body).map_err(|e| DistributionError::Protocol {
                        url: url.clone(),
                        reason: format!("the tag list is not JSON: {e}"),
                    })?;
                out.extend(page.tags.unwrap_or_default());
                if out.len() > TAGS_LIMIT || pages > 1000 {
                    return Err(DistributionError::TooLarge {
                        what: "tag list",
                        url,
                        limit: TAGS_LIMIT as u64,
                    });
                }
                next = link.map(|l| transport::resolve_location(&url, &l));
            }
            Ok(out)
        })
    }
}

/// What a refused request was about, for the error message.
pub(crate) enum Refusal {
    Manifest(String),
    Blob(Digest),
    Upload,
    Tags,
}

/// `<url>; rel="next"` → url.
fn next_link(link: &str) -> Option<String> {
    for part in link.split(',') {
        let (target, params) = part.split_once(';')?;
        if params.contains("rel=\"next\"") || params.contains("rel=next") {
            let t = target.trim().trim_start_matches('<').trim_end_matches('>');
            return Some(t.to_string());
        }
    }
    None
}

/// The `mediaType` a document declares, or what its shape says.
fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        schema_version: Option<u32>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    if let Some(m) = probe.media_type {
        return Some(m);
    }
    if probe.schema_version == Some(1) {
        return Some(media_type::DOCKER_MANIFEST_V1_SIGNED.to_string());
    }
    match strata_oci::document_kind(bytes)? {
        strata_oci::DocumentKind::Index => Some(media_type::OCI_INDEX.to_string()),
        strata_oci::DocumentKind::Manifest => Some(media_type::OCI_MANIFEST.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_and_media_types() {
        assert_eq!(
            next_link("</v2/a/tags/list?n=2&last=b>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link("<x>; rel=\"prev\""), None);
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":1,"name":"x"}"#).as_deref(),
            Some(media_type::DOCKER_MANIFEST_V1_SIGNED)
        );
        assert_eq!(
            sniff_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media_type::OCI_INDEX)
        );
    }
}
