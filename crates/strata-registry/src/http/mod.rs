//! HTTP in front of [`Registry`]: every request is routed, identified, authorized (before the
//! storage is touched), handled, counted in the metrics and logged with its request id.

mod body;
mod handlers;
mod limit;
mod routes;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::api_error::{ApiError, ErrorCode};
use crate::auth::{Auth, Identity};
use crate::config::Action;
use crate::mirror::Upstreams;
use crate::names;
use crate::registry::Registry;

pub(crate) use body::Body;
pub(crate) use limit::RateLimiter;
pub(crate) use routes::Route;

/// Everything a request handler needs.
pub(crate) struct App {
    pub(crate) registry: Arc<Registry>,
    pub(crate) auth: Auth,
    /// Whether clients reach us over TLS (for the token realm).
    pub(crate) tls: bool,
    pub(crate) limiter: Option<RateLimiter>,
    /// The pull-through caches' upstreams (see mirror.rs).
    pub(crate) upstreams: Arc<Upstreams>,
    request_seed: u64,
    request_seq: AtomicU64,
}

impl App {
    pub(crate) fn new(
        registry: Arc<Registry>,
        auth: Auth,
        tls: bool,
        limiter: Option<RateLimiter>,
        upstreams: Upstreams,
    ) -> App {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        App {
            registry,
            auth,
            tls,
            limiter,
            upstreams: Arc::new(upstreams),
            request_seed: u64::from_le_bytes(seed),
            request_seq: AtomicU64::new(0),
        }
    }

    /// The client's request id when it is a sane token, else a new one.
    fn request_id(&self, req: &Request<Incoming>) -> String {
        if let Some(v) = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            if !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return v.to_string();
            }
        }
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", (self.request_seed >> 32) as u32)
    }
}

/// The answer to one request, with what the access log wants to know.
pub(crate) struct Outcome {
    pub(crate) response: Response<Body>,
    pub(crate) user: String,
    /// For a failure: the code and message (logged; the client has them in the body).
    pub(crate) error: Option<(ErrorCode, String)>,
}

/// Handles one request end to end.
pub(crate) async fn serve_request(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, std::convert::Infallible> {
    let started = Instant::now();
    let id = app.request_id(&req);
    let route = Route::parse(req.uri().path());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let outcome = match app.limiter.as_ref().map(|l| l.admit(peer.ip())) {
        Some(false) => {
            crate::metrics::add(&app.registry.metrics.rate_limited, 1);
            let e = ApiError::new(
                ErrorCode::TooManyRequests,
                "too many requests from this address: slow down",
            );
            let mut o = error_outcome(e, "-".into());
            o.response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            o
        }
        _ => dispatch(&app, req, &route).await,
    };
    let mut response = outcome.response;
    let status = response.status().as_u16();
    let headers = response.headers_mut();
    headers.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    app.registry
        .metrics
        .request(route.label(), method.as_str(), status, elapsed);
    let ms = elapsed.as_secs_f64() * 1000.0;
    match &outcome.error {
        Some((code, message)) if status >= 500 => tracing::error!(
            request_id = %id, %peer, method = %method, path = %path, status, user = %outcome.user,
            duration_ms = ms, code = code.as_str(), error = %message, "request failed"
        ),
        Some((code, message)) => tracing::info!(
            request_id = %id, %peer, method = %method, path = %path, status, user = %outcome.user,
            duration_ms = ms, code = code.as_str(), error = %message, "request"
        ),
        None => tracing::info!(
            request_id = %id, %peer, method = %method, path = %path, status, user = %outcome.user,
            duration_ms = ms, "request"
        ),
    }
    Ok(response)
}

pub(crate) fn error_outcome(e: ApiError, user: String) -> Outcome {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = e.body();
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body::full(body))
        .unwrap_or_else(|_| Response::new(body::empty()));
    Outcome {
        response,
        user,
        error: Some((e.code, e.message)),
    }
}

/// What a route needs: the repository and the actions in it.
fn required_actions(route: &Route, method: &Method) -> Vec<Action> {
    let read = matches!(*method, Method::GET | Method::HEAD);
    match route {
        Route::Tags { .. } | Route::Referrers { .. } => vec![Action::Pull],
        Route::Manifest { .. } | Route::Blob { .. } if read => vec![Action::Pull],
        Route::Manifest { .. } | Route::Blob { .. } | Route::Repository { .. }
            if *method == Method::DELETE =>
        {
            vec![Action::Delete]
        }
        Route::Manifest { .. } | Route::UploadStart { .. } | Route::Upload { .. } => {
            vec![Action::Pull, Action::Push]
        }
        _ => Vec::new(),
    }
}

fn scope_of(name: &str, actions: &[Action]) -> String {
    let list: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    format!("repository:{name}:{}", list.join(","))
}

/// A refusal that looks the same whether the repository exists or not: 401 with a
/// challenge for anonymous and token clients, 403 for a user whose credentials are fine.
fn refuse(app: &App, req: &Request<Incoming>, who: &Identity, scope: Option<&str>) -> Outcome {
    unauthorized(app, req, who, scope, "authentication required")
}

fn unauthorized(
    app: &App,
    req: &Request<Incoming>,
    who: &Identity,
    scope: Option<&str>,
    message: &str,
) -> Outcome {
    let host = req.headers().get("host").and_then(|h| h.to_str().ok());
    match who {
        Identity::User(u) => error_outcome(
            ApiError::new(
                ErrorCode::Denied,
                "requested access to the resource is denied",
            ),
            u.clone(),
        ),
        _ => {
            let insufficient = matches!(who, Identity::Token(_));
            let mut o = error_outcome(
                ApiError::new(ErrorCode::Unauthorized, message),
                who.name().to_string(),
            );
            if let Some(c) = app.auth.challenge(host, app.tls, scope, insufficient) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    o.response.headers_mut().insert("www-authenticate", v);
                }
            }
            o
        }
    }
}

async fn dispatch(app: &Arc<App>, req: Request<Incoming>, route: &Route) -> Outcome {
    match route {
        Route::Health => return handlers::health(app, &req).await,
        Route::Metrics => return handlers::metrics(app, &req),
        Route::Token => return handlers::token(app, req).await,
        Route::NotFound => {
            return error_outcome(
                ApiError::new(ErrorCode::Unsupported, "no such route").with_status(404),
                "-".into(),
            )
        }
        _ => {}
    }
    let who = match app.auth.identify(req.headers()).await {
        Ok(w) => w,
        Err(_) => {
            let scope = route
                .repository()
                .map(|name| scope_of(name, &required_actions(route, req.method())));
            return unauthorized(
                app,
                &req,
                &Identity::Anonymous,
                scope.as_deref(),
                "invalid credentials",
            );
        }
    };
    if let Some(name) = route.repository() {
        if !names::valid_repository(name) {
            return error_outcome(
                ApiError::new(ErrorCode::NameInvalid, "invalid repository name")
                    .with_detail(serde_json::json!({ "name": name })),
                who.name().to_string(),
            );
        }
        let needed = required_actions(route, req.method());
        if needed.is_empty() {
            return method_not_allowed(&who);
        }
        if !needed.iter().all(|a| app.auth.allows(&who, name, *a)) {
            return refuse(app, &req, &who, Some(&scope_of(name, &needed)));
        }
    }
    match route {
        Route::Base => {
            if matches!(who, Identity::Anonymous) {
                return refuse(app, &req, &who, None);
            }
            handlers::base(&req, &who)
        }
        Route::Catalog => {
            if matches!(who, Identity::Anonymous) || !app.auth.may_list_catalog(&who) {
                return refuse(app, &req, &who, Some("registry:catalog:*"));
            }
            handlers::catalog(app, &req, &who).await
        }
        _ => handlers::repository_route(app, req, route, &who).await,
    }
}

pub(crate) fn method_not_allowed(who: &Identity) -> Outcome {
    error_outcome(
        ApiError::new(ErrorCode::Unsupported, "method not allowed on this route"),
        who.name().to_string(),
    )
}
