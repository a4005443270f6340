//! HTTP for the registry client: `ureq` agents per TLS setting (the system's CA store through
//! rustls' platform verifier; a host's extra CA files on top of the system bundle; no
//! verification for `insecure` hosts), one request → one response with every transport
//! failure turned into a [`DistributionError`], bounded reads of JSON bodies, and the
//! registry's error body decoded.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::Body;

use crate::error::{DistributionError, RegistryErrorBody};

/// Redirects a GET or HEAD follows before it is called a loop (Docker's Go client: 10).
pub(crate) const MAX_REDIRECTS: u32 = 10;
/// Largest error body or token answer read.
pub(crate) const SMALL_BODY_LIMIT: u64 = 1 << 20;

/// How to check a host's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Tls {
    /// The system's CA store (platform verifier).
    System,
    /// The system bundle plus these CA files.
    ExtraCa(Vec<PathBuf>),
    /// No verification (`insecure` hosts).
    NoVerify,
}

/// A request body.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Owned(Vec<u8>),
    /// Streamed (chunked unless a Content-Length header is given); cannot be sent twice.
    Reader(&'a mut dyn Read),
}

/// One request.
pub(crate) struct Request<'a> {
    pub(crate) method: http::Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) payload: Payload<'a>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: http::Method, url: String) -> Request<'a> {
        Request {
            method,
            url,
            headers: Vec::new(),
            payload: Payload::Empty,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn payload(mut self, payload: Payload<'a>) -> Self {
        self.payload = payload;
        self
    }
}

/// The agents, one per TLS setting, made when first needed.
#[derive(Default)]
pub(crate) struct Agents {
    agents: Mutex<HashMap<Tls, ureq::Agent>>,
    user_agent: String,
}

impl Agents {
    pub(crate) fn new() -> Agents {
        Agents {
            agents: Mutex::new(HashMap::new()),
            user_agent: format!("strata/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    fn agent(&self, tls: &Tls) -> Result<ureq::Agent, DistributionError> {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = agents.get(tls) {
            return Ok(a.clone());
        }
        let tls_config = match tls {
            Tls::System => ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
            Tls::NoVerify => ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
            Tls::ExtraCa(files) => ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots_with(files)?)))
                .build(),
        };
        let agent = ureq::Agent::config_builder()
            .tls_config(tls_config)
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .user_agent(self.user_agent.as_str())
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            // A stalled transfer fails instead of hanging forever; a slow one is fine.
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(8)
            .build()
            .new_agent();
        agents.insert(tls.clone(), agent.clone());
        Ok(agent)
    }

    /// Sends one request. `follow` lets a GET/HEAD follow redirects (to blob storage).
    pub(crate) fn send(
        &self,
        tls: &Tls,
        req: Request<'_>,
        follow: bool,
    ) -> Result<Response<Body>, DistributionError> {
        let agent = self.agent(tls)?;
        let url = req.url.clone();
        let method = req.method.clone();
        let mut builder = http::Request::builder().method(method).uri(url.as_str());
        let mut has_length = false;
        for (name, value) in &req.headers {
            has_length |= name.eq_ignore_ascii_case("content-length");
            builder = builder.header(*name, value.as_str());
        }
        let connect = |e: ureq::Error| connect_error(&url, e);
        let result = match req.payload {
            Payload::Empty => {
                let r = builder.body(()).map_err(|e| bad_url(&url, e))?;
                run(&agent, r, follow)
            }
            Payload::Bytes(b) => {
                if !has_length {
                    builder = builder.header("content-length", b.len().to_string());
                }
                let r = builder.body(b).map_err(|e| bad_url(&url, e))?;
                run(&agent, r, follow)
            }
            Payload::Owned(b) => {
                if !has_length {
                    builder = builder.header("content-length", b.len().to_string());
                }
                let r = builder.body(b).map_err(|e| bad_url(&url, e))?;
                run(&agent, r, follow)
            }
            Payload::Reader(reader) => {
                let body = ureq::SendBody::from_reader(reader);
                let r = builder.body(body).map_err(|e| bad_url(&url, e))?;
                run(&agent, r, follow)
            }
        };
        result.map_err(|e| match e {
            ureq::Error::TooManyRedirects => DistributionError::TooManyRedirects {
                url: url.clone(),
                max: MAX_REDIRECTS,
            },
            e => connect(e),
        })
    }
}

fn run<B: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: http::Request<B>,
    follow: bool,
) -> Result<Response<Body>, ureq::Error> {
    if follow {
        agent.run(request)
    } else {
        let request = agent.configure_request(request).max_redirects(0).build();
        agent.run(request)
    }
}

fn bad_url(url: &str, e: http::Error) -> DistributionError {
    DistributionError::Protocol {
        url: url.to_string(),
        reason: format!("not a usable URL: {e}"),
    }
}

fn connect_error(url: &str, e: ureq::Error) -> DistributionError {
    let reason = e.to_string();
    let retry = match &e {
        ureq::Error::HostNotFound
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::BadUri(_)
        | ureq::Error::RequireHttpsOnly(_) => false,
        ureq::Error::Io(io) => !io.to_string().contains("lookup address"),
        _ => true,
    };
    DistributionError::Connect {
        url: url.to_string(),
        reason,
        retry,
    }
}

/// The system CA bundle plus `files`, for a host with its own CA.
fn roots_with(
    files: &[PathBuf],
) -> Result<Vec<ureq::tls::Certificate<'static>>, DistributionError> {
    let mut certs = Vec::new();
    let system = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    if let Some(bundle) = system.iter().find_map(|p| std::fs::read(p).ok()) {
        certs.extend(pem_certs(&bundle));
    }
    for file in files {
        let bytes = std::fs::read(file).map_err(|source| DistributionError::ConfigIo {
            path: file.clone(),
            source,
        })?;
        let found = pem_certs(&bytes);
        if found.is_empty() {
            return Err(DistributionError::Config {
                path: file.clone(),
                reason: "no PEM certificate in the CA file".into(),
            });
        }
        certs.extend(found);
    }
    Ok(certs)
}

fn pem_certs(bytes: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(bytes)
        .filter_map(Result::ok)
        .filter_map(|item| match item {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// A response header as text.
pub(crate) fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Every value of a header.
pub(crate) fn headers<'r>(resp: &'r Response<Body>, name: &str) -> Vec<&'r str> {
    resp.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// `Retry-After` as a delay: seconds, or an HTTP date.
pub(crate) fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    let value = header(resp, "retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) fn read_limited(
    resp: Response<Body>,
    url: &str,
    what: &'static str,
    limit: u64,
) -> Result<Vec<u8>, DistributionError> {
    if resp.body().content_length().is_some_and(|len| len > limit) {
        return Err(DistributionError::TooLarge {
            what,
            url: url.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut reader = resp.into_body().into_reader().take(limit + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|source| DistributionError::Read {
            url: url.to_string(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(DistributionError::TooLarge {
            what,
            url: url.to_string(),
            limit,
        });
    }
    Ok(out)
}

/// The first error of a registry's JSON error body, if it has one.
pub(crate) fn error_body(resp: Response<Body>, url: &str) -> Option<RegistryErrorBody> {
    let bytes = read_limited(resp, url, "error body", SMALL_BODY_LIMIT).ok()?;
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<OneError>,
    }
    #[derive(serde::Deserialize)]
    struct OneError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Errors = serde_json::from_slice(&bytes).ok()?;
    let first = parsed.errors.into_iter().next()?;
    Some(RegistryErrorBody {
        code: first.code.chars().take(100).collect(),
        message: first.message.chars().take(300).collect(),
    })
}

/// A response status that is not what the caller expected, as an error with the registry's
/// own explanation.
pub(crate) fn status_error(
    method: &'static str,
    url: &str,
    resp: Response<Body>,
) -> DistributionError {
    let status = resp.status().as_u16();
    let retry_after = retry_after(&resp);
    DistributionError::Status {
        method,
        url: url.to_string(),
        status,
        detail: error_body(resp, url),
        retry_after,
    }
}

/// Resolves a `Location` header against the URL it answered.
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return format!("{}{location}", &base[..host_end]);
    }
    let path = base[..base.find('?').unwrap_or(base.len())].to_string();
    let dir = path.rfind('/').map_or(path.as_str(), |i| &path[..=i]);
    format!("{dir}{location}")
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_a_browser() {
        let base = "http://r:5000/v2/a/blobs/uploads/";
        assert_eq!(
            resolve_location(base, "/v2/a/blobs/uploads/u1?_state=x"),
            "http://r:5000/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            resolve_location(base, "https://other/up"),
            "https://other/up"
        );
        assert_eq!(
            resolve_location(base, "u2"),
            "http://r:5000/v2/a/blobs/uploads/u2"
        );
        assert_eq!(url_host("https://h:1/x?y"), "h:1");
        assert_eq!(url_host("http://h"), "h");
    }
}
