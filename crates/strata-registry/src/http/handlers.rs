//! One function per route: parse what the request says, call the registry, shape the
//! response headers the spec and Docker expect.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use strata_oci::{Digest, DigestError};

use super::body::{self, Body};
use super::{error_outcome, method_not_allowed, App, Outcome, Route};
use crate::api_error::{ApiError, ErrorCode};
use crate::auth::{Identity, Scope};
use crate::config::{Action, AuthMode};
use crate::manifests::ManifestRef;
use crate::metrics::add;
use crate::mirror::{self, BlobFetch, MirrorRoute, STALE_HEADER};
use crate::names;
use crate::registry::Page;
use crate::uploads::ChunkRange;

/// Most entries one page of tags or catalog holds.
const MAX_PAGE: usize = 10_000;

/// Query parameters, percent-decoded (`+` as space).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Query(
            query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn ok(response: Response<Body>, who: &Identity) -> Outcome {
    Outcome {
        response,
        user: who.name().to_string(),
        error: None,
    }
}

fn fail(e: ApiError, who: &Identity) -> Outcome {
    error_outcome(e, who.name().to_string())
}

fn builder(status: StatusCode) -> http::response::Builder {
    Response::builder().status(status)
}

fn finish(b: http::response::Builder, body: Body) -> Response<Body> {
    b.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    finish(
        builder(status)
            .header("content-type", "application/json")
            .header("content-length", bytes.len()),
        body::full(bytes),
    )
}

pub(super) async fn health(app: &App, req: &Request<Incoming>) -> Outcome {
    let who = Identity::Anonymous;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return method_not_allowed(&who);
    }
    match app.registry.storage().check().await {
        Ok(_) => ok(
            json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
            &who,
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: storage unavailable");
            ok(
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({ "status": "storage unavailable" }),
                ),
                &who,
            )
        }
    }
}

pub(super) fn metrics(app: &App, req: &Request<Incoming>) -> Outcome {
    let who = Identity::Anonymous;
    if *req.method() != Method::GET {
        return method_not_allowed(&who);
    }
    let text = app.registry.metrics().render();
    ok(
        finish(
            builder(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4")
                .header("content-length", text.len()),
            body::full(text),
        ),
        &who,
    )
}

pub(super) fn base(_req: &Request<Incoming>, who: &Identity) -> Outcome {
    ok(json(StatusCode::OK, &serde_json::json!({})), who)
}

/// The built-in token service (Docker's `GET /token`, and OAuth2's `POST /token` with
/// `grant_type=password`).
pub(super) async fn token(app: &App, req: Request<Incoming>) -> Outcome {
    let anon = Identity::Anonymous;
    if app.auth.mode() != AuthMode::Token {
        return fail(
            ApiError::new(ErrorCode::Unsupported, "this registry issues no tokens")
                .with_status(404),
            &anon,
        );
    }
    let (parts, incoming) = req.into_parts();
    let (query, user) = match parts.method {
        Method::GET => {
            let q = Query::parse(parts.uri.query());
            let user = match basic_user(app, &parts.headers).await {
                Ok(u) => u,
                Err(o) => return o,
            };
            (q, user)
        }
        Method::POST => {
            let form = match body::collect_limited(incoming, 64 * 1024).await {
                Ok(b) => Query::parse(Some(&String::from_utf8_lossy(&b))),
                Err(_) => {
                    return fail(
                        ApiError::new(ErrorCode::Unsupported, "token request body too large")
                            .with_status(400),
                        &anon,
                    )
                }
            };
            if form.get("grant_type") != Some("password") {
                return ok(
                    json(
                        StatusCode::BAD_REQUEST,
                        &serde_json::json!({ "error": "unsupported_grant_type" }),
                    ),
                    &anon,
                );
            }
            let (Some(u), Some(p)) = (form.get("username"), form.get("password")) else {
                return ok(
                    json(
                        StatusCode::BAD_REQUEST,
                        &serde_json::json!({ "error": "invalid_request" }),
                    ),
                    &anon,
                );
            };
            if !app.auth.check_password(u, p).await {
                return ok(
                    json(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({ "error": "invalid_grant" }),
                    ),
                    &anon,
                );
            }
            let user = Some(u.to_string());
            (form, user)
        }
        _ => return method_not_allowed(&anon),
    };
    if let Some(service) = query.get("service") {
        if service != app.auth.service {
            return fail(
                ApiError::new(ErrorCode::Denied, format!("unknown service {service:?}"))
                    .with_status(400),
                &anon,
            );
        }
    }
    let scopes: Vec<Scope> = query.all("scope").flat_map(Scope::parse_all).collect();
    let who = match &user {
        Some(u) => Identity::User(u.clone()),
        None => anon,
    };
    match app.auth.issue_token(user.as_deref(), &scopes) {
        Some(Ok((token, expires_in, issued_at))) => {
            let issued = chrono::DateTime::from_timestamp(issued_at as i64, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let mut resp = json(
                StatusCode::OK,
                &serde_json::json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": expires_in,
                    "issued_at": issued,
                }),
            );
            resp.headers_mut()
                .insert("cache-control", http::HeaderValue::from_static("no-store"));
            ok(resp, &who)
        }
        Some(Err(e)) => {
            tracing::error!(error = %e, "signing a token");
            fail(
                ApiError::new(ErrorCode::Unknown, "cannot sign a token"),
                &who,
            )
        }
        None => fail(
            ApiError::new(ErrorCode::Unsupported, "this registry issues no tokens")
                .with_status(404),
            &who,
        ),
    }
}

/// The user of Basic credentials on a token request (`None`: anonymous); wrong ones are 401.
async fn basic_user(app: &App, headers: &HeaderMap) -> Result<Option<String>, Outcome> {
    match app.auth.identify_basic(headers).await {
        Ok(u) => Ok(u),
        Err(_) => {
            let mut o = fail(
                ApiError::new(ErrorCode::Unauthorized, "invalid credentials"),
                &Identity::Anonymous,
            );
            o.response.headers_mut().insert(
                "www-authenticate",
                http::HeaderValue::from_static("Basic realm=\"strata registry token service\""),
            );
            Err(o)
        }
    }
}

fn page_params(q: &Query) -> Result<(Option<usize>, Option<String>), ApiError> {
    let n = match q.get("n") {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| {
                    ApiError::new(ErrorCode::Unsupported, format!("invalid page size n={v}"))
                        .with_status(400)
                })?
                .min(MAX_PAGE),
        ),
    };
    Ok((
        n,
        q.get("last").filter(|l| !l.is_empty()).map(str::to_string),
    ))
}

/// A `Link` to the next page: `</v2/…?n=N&last=X>; rel="next"`.
fn next_link(path: &str, page: &Page, n: Option<usize>) -> Option<String> {
    if !page.more {
        return None;
    }
    let last = page.items.last()?;
    // RFC 3986 unreserved characters stay as they are.
    const VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let enc = percent_encoding::utf8_percent_encode(last, VALUE);
    Some(match n {
        Some(n) => format!("<{path}?n={n}&last={enc}>; rel=\"next\""),
        None => format!("<{path}?last={enc}>; rel=\"next\""),
    })
}

pub(super) async fn catalog(app: &App, req: &Request<Incoming>, who: &Identity) -> Outcome {
    if *req.method() != Method::GET {
        return method_not_allowed(who);
    }
    let q = Query::parse(req.uri().query());
    let (n, last) = match page_params(&q) {
        Ok(p) => p,
        Err(e) => return fail(e, who),
    };
    let page = match app
        .registry
        .catalog(n, last.as_deref(), |r| app.auth.catalog_shows(who, r))
        .await
    {
        Ok(p) => p,
        Err(e) => return fail(e, who),
    };
    let mut resp = json(
        StatusCode::OK,
        &serde_json::json!({ "repositories": page.items }),
    );
    if let Some(link) = next_link("/v2/_catalog", &page, n) {
        if let Ok(v) = http::HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    ok(resp, who)
}

pub(super) async fn repository_route(
    app: &Arc<App>,
    req: Request<Incoming>,
    route: &Route,
    who: &Identity,
) -> Outcome {
    let result = match route {
        Route::Tags { name } => tags(app, &req, name).await,
        Route::Manifest { name, reference } => manifest(app, req, name, reference).await,
        Route::Blob { name, digest } => blob(app, &req, name, digest).await,
        Route::UploadStart { name } => upload_start(app, req, name, who).await,
        Route::Upload { name, id } => upload(app, req, name, id).await,
        Route::Referrers { name, digest } => referrers(app, &req, name, digest).await,
        Route::Repository { name } if *req.method() == Method::DELETE => app
            .registry
            .delete_repository(name)
            .await
            .map(|()| finish(builder(StatusCode::ACCEPTED), body::empty())),
        _ => return method_not_allowed(who),
    };
    match result {
        Ok(r) => ok(r, who),
        Err(e) if e.code == ErrorCode::Unsupported && e.status.is_none() => method_not_allowed(who),
        Err(e) => fail(e, who),
    }
}

fn unsupported_method() -> ApiError {
    ApiError::new(ErrorCode::Unsupported, "method not allowed on this route")
}

async fn tags(app: &App, req: &Request<Incoming>, name: &str) -> Result<Response<Body>, ApiError> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(unsupported_method());
    }
    let q = Query::parse(req.uri().query());
    let (n, last) = page_params(&q)?;
    let page = match app.upstreams.route(name, q.get("ns")) {
        Some(route) => Page::of(
            mirror::tags(&app.registry, &route).await?,
            n,
            last.as_deref(),
        ),
        None => app.registry.tags(name, n, last.as_deref()).await?,
    };
    let mut resp = json(
        StatusCode::OK,
        &serde_json::json!({ "name": name, "tags": page.items }),
    );
    if let Some(link) = next_link(&format!("/v2/{name}/tags/list"), &page, n) {
        if let Ok(v) = http::HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    Ok(resp)
}

async fn manifest(
    app: &App,
    req: Request<Incoming>,
    name: &str,
    reference: &str,
) -> Result<Response<Body>, ApiError> {
    let parsed = ManifestRef::parse(reference);
    match *req.method() {
        Method::GET | Method::HEAD => {
            let Some(r) = parsed else {
                return Err(ApiError::manifest_unknown(reference));
            };
            let head = *req.method() == Method::HEAD;
            let ns = Query::parse(req.uri().query())
                .get("ns")
                .map(str::to_string);
            if let Some(route) = app.upstreams.route(name, ns.as_deref()) {
                return mirrored_manifest(app, &route, &r, reference, head).await;
            }
            let found = if head {
                app.registry
                    .resolve_manifest(name, &r)
                    .await?
                    .map(|m| (m, None))
            } else {
                app.registry
                    .get_manifest(name, &r)
                    .await?
                    .map(|(m, b)| (m, Some(b)))
            };
            let Some((m, bytes)) = found else {
                return Err(ApiError::manifest_unknown(reference));
            };
            let b = builder(StatusCode::OK)
                .header("content-type", &m.media_type)
                .header("content-length", m.size)
                .header("docker-content-digest", m.digest.as_str())
                .header("etag", format!("\"{}\"", m.digest));
            Ok(match bytes {
                Some(bytes) => {
                    add(&app.registry.metrics.bytes_sent, bytes.len() as u64);
                    finish(b, body::full(bytes))
                }
                None => finish(b, body::empty()),
            })
        }
        Method::PUT => {
            refuse_push_to_mirror(app, name, Query::parse(req.uri().query()).get("ns"))?;
            let Some(r) = parsed else {
                return Err(ApiError::manifest_invalid(format!(
                    "invalid tag or digest {reference:?}"
                )));
            };
            let tags: Vec<String> = Query::parse(req.uri().query())
                .all("tag")
                .map(str::to_string)
                .collect();
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let limit = app.registry.limits.max_manifest_size;
            let bytes = match body::collect_limited(req.into_body(), limit).await {
                Ok(b) => b,
                Err(None) => {
                    return Err(ApiError::manifest_invalid(format!(
                        "manifest larger than {limit} bytes"
                    ))
                    .with_status(413))
                }
                Err(Some(e)) => {
                    return Err(ApiError::manifest_invalid(format!(
                        "reading the manifest: {e}"
                    )))
                }
            };
            let pushed = app
                .registry
                .put_manifest(name, &r, &tags, content_type.as_deref(), bytes)
                .await?;
            let mut b = builder(StatusCode::CREATED)
                .header(
                    "location",
                    format!("/v2/{name}/manifests/{}", pushed.digest),
                )
                .header("docker-content-digest", pushed.digest.as_str())
                .header("content-length", 0);
            if let Some(s) = &pushed.subject {
                b = b.header("oci-subject", s.as_str());
            }
            for tag in &tags {
                b = b.header("oci-tag", tag.as_str());
            }
            Ok(finish(b, body::empty()))
        }
        Method::DELETE => {
            let Some(r) = parsed else {
                return Err(ApiError::manifest_unknown(reference));
            };
            app.registry.delete_manifest(name, &r).await?;
            Ok(finish(builder(StatusCode::ACCEPTED), body::empty()))
        }
        _ => Err(unsupported_method()),
    }
}

/// A digest of a URL or query: malformed is DIGEST_INVALID; another algorithm is unknown
/// content (`unknown`) rather than a client error.
fn parse_digest(s: &str, unknown: impl FnOnce() -> ApiError) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| match e {
        DigestError::UnsupportedAlgorithm(_) => unknown(),
        DigestError::Malformed(_) => ApiError::digest_invalid(format!("invalid digest {s:?}")),
    })
}

/// A single `Range: bytes=…` of an object of `size` bytes: `Ok(None)` for the whole object
/// (no header, or several ranges), `Err(())` when it cannot be satisfied.
fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(h) = header else {
        return Ok(None);
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size
        } else {
            let e: u64 = b.parse().map_err(|_| ())?;
            if e < start {
                return Err(());
            }
            (e + 1).min(size)
        };
        if start >= size {
            return Err(());
        }
        start..end
    };
    Ok(Some(range))
}

async fn blob(
    app: &App,
    req: &Request<Incoming>,
    name: &str,
    digest: &str,
) -> Result<Response<Body>, ApiError> {
    let d = parse_digest(digest, || ApiError::blob_unknown(&digest))?;
    let route = app
        .upstreams
        .route(name, Query::parse(req.uri().query()).get("ns"));
    let name = match &route {
        Some(route) if matches!(*req.method(), Method::GET | Method::HEAD) => {
            if app.registry.blob_meta(&route.local, &d).await?.is_none() {
                if let Some(answer) = mirrored_blob(app, req, route, &d).await? {
                    return Ok(answer);
                }
            } else {
                add(&app.registry.metrics.cache_hits, 1);
            }
            route.local.as_str()
        }
        Some(route) => route.local.as_str(),
        None => name,
    };
    match *req.method() {
        Method::HEAD => {
            let Some(meta) = app.registry.blob_meta(name, &d).await? else {
                return Err(ApiError::blob_unknown(&d));
            };
            Ok(finish(
                blob_headers(builder(StatusCode::OK), &d).header("content-length", meta.size),
                body::empty(),
            ))
        }
        Method::GET => {
            let range_header = req.headers().get("range").and_then(|v| v.to_str().ok());
            let Some(meta) = app.registry.blob_meta(name, &d).await? else {
                return Err(ApiError::blob_unknown(&d));
            };
            let range = match parse_range(range_header, meta.size) {
                Ok(r) => r,
                Err(()) => {
                    return Ok(finish(
                        blob_headers(builder(StatusCode::RANGE_NOT_SATISFIABLE), &d)
                            .header("content-range", format!("bytes */{}", meta.size))
                            .header("content-length", 0),
                        body::empty(),
                    ))
                }
            };
            let Some((meta, stream)) = app.registry.read_blob(name, &d, range.clone()).await?
            else {
                return Err(ApiError::blob_unknown(&d));
            };
            let (status, len, b) = match &range {
                Some(r) => (
                    StatusCode::PARTIAL_CONTENT,
                    r.end - r.start,
                    Some(format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)),
                ),
                None => (StatusCode::OK, meta.size, None),
            };
            add(&app.registry.metrics.bytes_sent, len);
            let mut builder = blob_headers(builder(status), &d).header("content-length", len);
            if let Some(cr) = b {
                builder = builder.header("content-range", cr);
            }
            Ok(finish(builder, body::streaming(stream)))
        }
        Method::DELETE => {
            app.registry.delete_blob(name, &d).await?;
            Ok(finish(
                builder(StatusCode::ACCEPTED).header("content-length", 0),
                body::empty(),
            ))
        }
        _ => Err(unsupported_method()),
    }
}

/// A mirrored repository takes no pushes: its content is the upstream's.
fn refuse_push_to_mirror(app: &App, name: &str, ns: Option<&str>) -> Result<(), ApiError> {
    match app.upstreams.route(name, ns) {
        Some(route) => Err(ApiError::new(
            ErrorCode::Denied,
            format!(
                "{name} is a read-only mirror of {}; push to a repository outside its namespace",
                route.upstream.registry()
            ),
        )),
        None => Ok(()),
    }
}

async fn mirrored_manifest(
    app: &App,
    route: &MirrorRoute,
    r: &ManifestRef,
    reference: &str,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let Some(m) = mirror::manifest(&app.registry, route, r).await? else {
        return Err(ApiError::manifest_unknown(reference));
    };
    let mut b = builder(StatusCode::OK)
        .header("content-type", &m.manifest.media_type)
        .header("content-length", m.manifest.size)
        .header("docker-content-digest", m.manifest.digest.as_str())
        .header("etag", format!("\"{}\"", m.manifest.digest));
    if let Some(stale) = &m.stale {
        b = b.header(STALE_HEADER, stale.as_str());
    }
    Ok(if head {
        finish(b, body::empty())
    } else {
        add(&app.registry.metrics.bytes_sent, m.bytes.len() as u64);
        finish(b, body::full(m.bytes))
    })
}

/// A blob the cache does not hold: its size from the upstream (HEAD), or its bytes as they
/// stream from there (GET). `None` when another request cached it meanwhile.
async fn mirrored_blob(
    app: &App,
    req: &Request<Incoming>,
    route: &MirrorRoute,
    d: &Digest,
) -> Result<Option<Response<Body>>, ApiError> {
    if *req.method() == Method::HEAD {
        let Some(size) = mirror::blob_size(&app.registry, route, d).await? else {
            return Err(ApiError::blob_unknown(d));
        };
        return Ok(Some(finish(
            blob_headers(builder(StatusCode::OK), d).header("content-length", size),
            body::empty(),
        )));
    }
    match mirror::fetch_blob(&app.registry, &app.upstreams, route, d).await? {
        None => Err(ApiError::blob_unknown(d)),
        Some(BlobFetch::Cached) => Ok(None),
        Some(BlobFetch::Streaming(size, stream)) => {
            // A Range on a miss is answered with the whole blob, as the spec allows.
            let mut b = blob_headers(builder(StatusCode::OK), d);
            if let Some(size) = size {
                add(&app.registry.metrics.bytes_sent, size);
                b = b.header("content-length", size);
            }
            Ok(Some(finish(b, body::streaming(stream))))
        }
    }
}

fn blob_headers(b: http::response::Builder, d: &Digest) -> http::response::Builder {
    b.header("content-type", "application/octet-stream")
        .header("docker-content-digest", d.as_str())
        .header("etag", format!("\"{d}\""))
        .header("accept-ranges", "bytes")
        .header("cache-control", "max-age=31536000")
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// 202 with where the upload stands.
fn upload_accepted(status: StatusCode, name: &str, id: &str, offset: u64) -> Response<Body> {
    finish(
        builder(status)
            .header("location", upload_location(name, id))
            .header("range", format!("0-{}", offset.saturating_sub(1)))
            .header("docker-upload-uuid", id)
            .header("content-length", 0),
        body::empty(),
    )
}

fn blob_created(name: &str, d: &Digest) -> Response<Body> {
    finish(
        builder(StatusCode::CREATED)
            .header("location", format!("/v2/{name}/blobs/{d}"))
            .header("docker-content-digest", d.as_str())
            .header("content-length", 0),
        body::empty(),
    )
}

async fn upload_start(
    app: &App,
    req: Request<Incoming>,
    name: &str,
    who: &Identity,
) -> Result<Response<Body>, ApiError> {
    if *req.method() != Method::POST {
        return Err(unsupported_method());
    }
    let q = Query::parse(req.uri().query());
    refuse_push_to_mirror(app, name, q.get("ns"))?;
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        // Mounting needs pull on the source; without it the client just uploads, and learns
        // nothing about the source repository.
        if let Ok(d) = Digest::parse(mount) {
            if names::valid_repository(from)
                && app.auth.allows(who, from, Action::Pull)
                && app.registry.mount_blob(name, &d, from).await?
            {
                return Ok(blob_created(name, &d));
            }
        }
    }
    if let Some(digest) = q.get("digest") {
        let d = parse_digest(digest, || {
            ApiError::digest_invalid(format!("unsupported digest {digest:?}"))
        })?;
        app.registry
            .put_blob(name, &d, body::request_stream(req.into_body()))
            .await?;
        return Ok(blob_created(name, &d));
    }
    let status = app.registry.start_upload(name).await?;
    Ok(upload_accepted(StatusCode::ACCEPTED, name, &status.id, 0))
}

/// `Content-Range: <start>-<end>` (also `bytes <start>-<end>/<total>` and `bytes=…`).
fn parse_content_range(h: &HeaderMap) -> Result<Option<ChunkRange>, ApiError> {
    let Some(v) = h.get("content-range") else {
        return Ok(None);
    };
    let bad =
        || ApiError::new(ErrorCode::BlobUploadInvalid, "invalid Content-Range").with_status(416);
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    Ok(Some((a, b)))
}

fn has_body(req: &Request<Incoming>) -> bool {
    use http_body::Body as _;
    !req.body().is_end_stream()
}

async fn upload(
    app: &App,
    req: Request<Incoming>,
    name: &str,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    match *req.method() {
        Method::GET | Method::HEAD => {
            let s = app.registry.upload_status(name, id).await?;
            Ok(upload_accepted(StatusCode::NO_CONTENT, name, id, s.offset))
        }
        Method::PATCH => {
            let range = parse_content_range(req.headers())?;
            let s = app
                .registry
                .append_upload(name, id, range, body::request_stream(req.into_body()))
                .await?;
            Ok(upload_accepted(StatusCode::ACCEPTED, name, id, s.offset))
        }
        Method::PUT => {
            let q = Query::parse(req.uri().query());
            let Some(digest) = q.get("digest") else {
                return Err(ApiError::digest_invalid(
                    "finishing an upload needs ?digest=",
                ));
            };
            let d = parse_digest(digest, || {
                ApiError::digest_invalid(format!("unsupported digest {digest:?}"))
            })?;
            let range = if has_body(&req) {
                parse_content_range(req.headers())?
            } else {
                None
            };
            let stream = body::request_stream(req.into_body());
            app.registry
                .finish_upload(name, id, &d, range, stream)
                .await?;
            Ok(blob_created(name, &d))
        }
        Method::DELETE => {
            app.registry.cancel_upload(name, id).await?;
            Ok(finish(
                builder(StatusCode::NO_CONTENT).header("content-length", 0),
                body::empty(),
            ))
        }
        _ => Err(unsupported_method()),
    }
}

async fn referrers(
    app: &App,
    req: &Request<Incoming>,
    name: &str,
    digest: &str,
) -> Result<Response<Body>, ApiError> {
    if *req.method() != Method::GET {
        return Err(unsupported_method());
    }
    let d = parse_digest(digest, || {
        ApiError::digest_invalid(format!("unsupported digest {digest:?}"))
    })?;
    let q = Query::parse(req.uri().query());
    let artifact_type = q.get("artifactType").filter(|t| !t.is_empty());
    let index = app.registry.referrers(name, &d, artifact_type).await?;
    let mut b = builder(StatusCode::OK)
        .header("content-type", strata_oci::media_type::OCI_INDEX)
        .header("content-length", index.len());
    if artifact_type.is_some() {
        b = b.header("oci-filters-applied", "artifactType");
    }
    Ok(finish(b, body::full(Bytes::from(index))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Ok(Some(0..5)));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some(5..10)));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ok(Some(8..10)));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
    }

    #[test]
    fn queries_decode() {
        let q = Query::parse(Some("scope=repository%3Aa%2Fb%3Apull&scope=x+y&n=2&flag"));
        assert_eq!(
            q.all("scope").collect::<Vec<_>>(),
            ["repository:a/b:pull", "x y"]
        );
        assert_eq!(q.get("n"), Some("2"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("none"), None);
    }

    #[test]
    fn links() {
        let page = Page {
            items: vec!["a".into(), "b/c".into()],
            more: true,
        };
        assert_eq!(
            next_link("/v2/_catalog", &page, Some(2)).unwrap(),
            "</v2/_catalog?n=2&last=b%2Fc>; rel=\"next\""
        );
        assert!(next_link(
            "/v2/_catalog",
            &Page {
                items: vec![],
                more: false
            },
            None
        )
        .is_none());
    }
}
