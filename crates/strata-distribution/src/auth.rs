//! Registry authentication: what each host asked for (anonymous, Basic, or Bearer tokens
//! from a token server), and the tokens themselves, cached per (realm, service, scopes)
//! until shortly before they expire.
//!
//! The Bearer flow is Docker's (distribution's `docs/spec/auth/token.md`): a 401 names the
//! token server (`realm`), `service` and `scope`; a GET to the realm with those (and Basic
//! credentials when we have a password) returns `{"token"|"access_token", "expires_in"}`;
//! an identity token (OAuth2 refresh token, what `docker login` may store) is exchanged by
//! a form POST with `grant_type=refresh_token`, falling back to the GET when the server has
//! no OAuth2 endpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ureq::http::{self, Response};
use ureq::Body;

use crate::challenge::Challenge;
use crate::credentials::Credential;
use crate::error::DistributionError;
use crate::transport::{self, Request, SMALL_BODY_LIMIT};

/// How long a token lives when the server does not say (the spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// What a host asked for in its last challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl HostAuth {
    /// The first challenge strata can answer, Bearer preferred.
    pub(crate) fn from_challenges(challenges: &[Challenge]) -> Option<HostAuth> {
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        if let Some(c) = bearer {
            if let Some(realm) = c.param("realm").filter(|r| !r.is_empty()) {
                return Some(HostAuth::Bearer {
                    realm: realm.to_string(),
                    service: c.param("service").map(str::to_string),
                });
            }
        }
        challenges
            .iter()
            .any(|c| c.scheme == "basic")
            .then_some(HostAuth::Basic)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: String,
    scopes: String,
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    renew_at: Instant,
}

/// Per-client authentication state, shared by every request and thread.
#[derive(Debug, Default)]
pub(crate) struct Authenticator {
    hosts: Mutex<HashMap<String, HostAuth>>,
    tokens: Mutex<HashMap<TokenKey, Token>>,
}

impl Authenticator {
    pub(crate) fn host_auth(&self, host: &str) -> Option<HostAuth> {
        lock(&self.hosts).get(host).cloned()
    }

    pub(crate) fn set_host_auth(&self, host: &str, auth: HostAuth) {
        lock(&self.hosts).insert(host.to_string(), auth);
    }

    /// A cached, still valid token for these scopes.
    pub(crate) fn cached_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Option<String> {
        let key = token_key(realm, service, scopes);
        let tokens = lock(&self.tokens);
        let token = tokens.get(&key)?;
        (Instant::now() < token.renew_at).then(|| token.value.clone())
    }

    pub(crate) fn forget_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) {
        lock(&self.tokens).remove(&token_key(realm, service, scopes));
    }

    fn store_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        value: String,
        lifetime: Duration,
    ) {
        let renew_at = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        lock(&self.tokens).insert(token_key(realm, service, scopes), Token { value, renew_at });
    }

    /// Gets a token from the token server (and caches it). `send` sends one request to the
    /// realm's host with the right TLS settings.
    pub(crate) fn fetch_token(
        &self,
        send: &dyn Fn(Request<'_>) -> Result<Response<Body>, DistributionError>,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
        registry: &str,
    ) -> Result<String, DistributionError> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(DistributionError::Protocol {
                url: realm.to_string(),
                reason: "the token realm is not an http(s) URL".into(),
            });
        }
        let resp = match credential {
            Some(Credential::IdentityToken { token, .. }) => {
                let resp = send(oauth_request(realm, service, scopes, token))?;
                // No OAuth2 endpoint: Docker falls back to the plain GET (without a password).
                if resp.status() == 404 || resp.status() == 405 {
                    send(get_request(realm, service, scopes, None))?
                } else {
                    resp
                }
            }
            other => send(get_request(realm, service, scopes, other))?,
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let detail = transport::error_body(resp, realm);
            let message = match (credential, detail) {
                (Some(_), _) => "incorrect username or password".to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => "authentication required".to_string(),
            };
            return Err(DistributionError::Unauthorized {
                registry: registry.to_string(),
                message,
            });
        }
        if !(200..300).contains(&status) {
            return Err(transport::status_error("GET", realm, resp));
        }
        let body = transport::read_limited(resp, realm, "token answer", SMALL_BODY_LIMIT)?;
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            expires_in: u64,
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|e| DistributionError::Protocol {
                url: realm.to_string(),
                reason: format!("the token answer is not JSON: {e}"),
            })?;
        let value = if answer.access_token.is_empty() {
            answer.token
        } else {
            answer.access_token
        };
        if value.is_empty() || value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(DistributionError::Protocol {
                url: realm.to_string(),
                reason: "the token answer holds no usable token".into(),
            });
        }
        let lifetime = if answer.expires_in == 0 {
            DEFAULT_TOKEN_LIFETIME
        } else {
            Duration::from_secs(answer.expires_in.max(DEFAULT_TOKEN_LIFETIME.as_secs()))
        };
        self.store_token(realm, service, scopes, value.clone(), lifetime);
        Ok(value)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn token_key(realm: &str, service: Option<&str>, scopes: &[String]) -> TokenKey {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    TokenKey {
        realm: realm.to_string(),
        service: service.unwrap_or_default().to_string(),
        scopes: sorted.join(" "),
    }
}

fn get_request<'a>(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credential: Option<&Credential>,
) -> Request<'a> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = service {
        query.push(("service", s));
    }
    for scope in scopes {
        query.push(("scope", scope));
    }
    if let Some(Credential::Basic { username, .. }) = credential {
        query.push(("account", username));
    }
    let url = with_query(realm, &query);
    let req = Request::new(http::Method::GET, url);
    match credential {
        Some(Credential::Basic { username, password }) => {
            req.header("authorization", basic_header(username, password))
        }
        _ => req,
    }
}

fn oauth_request<'a>(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    refresh_token: &str,
) -> Request<'a> {
    let scope = scopes.join(" ");
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "strata"),
    ];
    if let Some(s) = service {
        form.push(("service", s));
    }
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    Request::new(http::Method::POST, realm.to_string())
        .header("content-type", "application/x-www-form-urlencoded")
        .payload(transport::Payload::Owned(encode_pairs(&form).into_bytes()))
}

/// `Basic base64(user:password)`.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `url` with `pairs` appended to its query, percent-encoded.
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", encode_pairs(pairs))
}

fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::parse_challenges;

    #[test]
    fn bearer_is_preferred_and_basic_understood() {
        let c =
            parse_challenges(r#"Basic realm="x", Bearer realm="https://t/token",service="reg""#);
        assert_eq!(
            HostAuth::from_challenges(&c),
            Some(HostAuth::Bearer {
                realm: "https://t/token".into(),
                service: Some("reg".into())
            })
        );
        assert_eq!(
            HostAuth::from_challenges(&parse_challenges(r#"Basic realm="registry""#)),
            Some(HostAuth::Basic)
        );
        assert_eq!(
            HostAuth::from_challenges(&parse_challenges("Negotiate")),
            None
        );
        // A Bearer challenge without a realm cannot be answered.
        assert_eq!(
            HostAuth::from_challenges(&parse_challenges("Bearer service=x")),
            None
        );
    }

    #[test]
    fn tokens_are_cached_per_scope_set_until_renewal() {
        let a = Authenticator::default();
        let scopes = vec!["repository:a:pull".to_string(), "repository:b:pull".into()];
        let reversed: Vec<String> = scopes.iter().rev().cloned().collect();
        a.store_token(
            "r",
            Some("s"),
            &scopes,
            "t1".into(),
            Duration::from_secs(300),
        );
        assert_eq!(
            a.cached_token("r", Some("s"), &reversed).as_deref(),
            Some("t1")
        );
        assert_eq!(a.cached_token("r", Some("s"), &scopes[..1]), None);
        a.store_token("r", None, &scopes, "t2".into(), Duration::from_secs(5));
        assert_eq!(
            a.cached_token("r", None, &scopes),
            None,
            "expires within the margin"
        );
        a.forget_token("r", Some("s"), &scopes);
        assert_eq!(a.cached_token("r", Some("s"), &scopes), None);
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            with_query(
                "https://t/token?x=1",
                &[("scope", "repository:a/b:pull,push"), ("service", "r s")]
            ),
            "https://t/token?x=1&scope=repository%3Aa%2Fb%3Apull%2Cpush&service=r%20s"
        );
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
    }
}
