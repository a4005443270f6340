//! [`RegistryClient`]: one per process, shared by every transfer. It knows the registry
//! settings and credentials, picks the endpoints of a registry (its mirrors in order, then
//! the registry itself), learns which scheme each host speaks (HTTPS; plain HTTP only where
//! allowed) and how it authenticates, and sends requests with retries: a failing mirror is
//! skipped for the next endpoint, the registry itself is retried on network errors, 429
//! and 5xx with bounded exponential back-off that honours `Retry-After`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::Body;

use crate::auth::{basic_header, Authenticator, HostAuth};
use crate::challenge::parse_challenges;
use crate::config::{canonical_host, HostSettings, RegistriesConfig, Scheme};
use crate::credentials::{Credential, CredentialSource};
use crate::error::DistributionError;
use crate::repository::Repository;
use crate::transport::{self, Agents, Request, Tls};

/// How hard to try the registry itself before giving up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First back-off; doubled for each further attempt.
    pub base: Duration,
    /// Longest wait, also the cap on `Retry-After`.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (0-based), honouring the server's wish.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base.saturating_mul(1u32 << attempt.min(16));
        retry_after.unwrap_or(backoff).min(self.max_wait)
    }
}

/// What a repository is opened for: the token scope asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

/// One place a registry's API is served: the registry itself or one of its mirrors.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host[:port]` as configured (for credentials, TLS and scheme memory).
    pub(crate) host: String,
    /// Path before `/v2/`.
    pub(crate) prefix: String,
    pub(crate) forced: Option<Scheme>,
    pub(crate) settings: HostSettings,
}

impl Endpoint {
    /// The host requests go to: Docker Hub's API lives at registry-1.docker.io.
    pub(crate) fn api_host(&self) -> &str {
        if canonical_host(&self.host) == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.host
        }
    }

    pub(crate) fn tls(&self) -> Tls {
        tls_for(&self.settings)
    }
}

fn tls_for(settings: &HostSettings) -> Tls {
    if settings.insecure {
        Tls::NoVerify
    } else if !settings.ca_files.is_empty() {
        Tls::ExtraCa(settings.ca_files.clone())
    } else {
        Tls::System
    }
}

/// The registry client.
pub struct RegistryClient {
    config: RegistriesConfig,
    credentials: Box<dyn CredentialSource>,
    agents: Agents,
    pub(crate) auth: Authenticator,
    schemes: Mutex<HashMap<String, Scheme>>,
    dead_mirrors: Mutex<HashSet<String>>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    pub fn new(config: RegistriesConfig, credentials: Box<dyn CredentialSource>) -> RegistryClient {
        RegistryClient {
            config,
            credentials,
            agents: Agents::new(),
            auth: Authenticator::default(),
            schemes: Mutex::new(HashMap::new()),
            dead_mirrors: Mutex::new(HashSet::new()),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> RegistryClient {
        self.retry = retry;
        self
    }

    pub fn config(&self) -> &RegistriesConfig {
        &self.config
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// A repository (`library/busybox`) of registry `domain` (`docker.io`), for `access`.
    pub fn repository(&self, domain: &str, path: &str, access: Access) -> Repository<'_> {
        Repository::new(self, domain, path, access)
    }

    /// Checks `credential` against `registry` as `docker login` does: the API root must
    /// accept it (directly with Basic, or through its token server). Nothing is stored.
    pub fn login(&self, registry: &str, credential: &Credential) -> Result<(), DistributionError> {
        let ep = self.upstream(registry);
        let registry_name = canonical_host(registry).to_string();
        let (resp, url) = self.first_contact(&ep, "/v2/", None)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        if status != 401 {
            return Err(transport::status_error("GET", &url, resp));
        }
        let challenges =
            parse_challenges(&transport::headers(&resp, "www-authenticate").join(", "));
        let header = match HostAuth::from_challenges(&challenges) {
            Some(HostAuth::Basic) => match credential {
                Credential::Basic { username, password } => basic_header(username, password),
                Credential::IdentityToken { .. } => {
                    return Err(DistributionError::Unauthorized {
                        registry: registry_name,
                        message: "this registry takes a password, not an identity token".into(),
                    })
                }
            },
            Some(HostAuth::Bearer { realm, service }) => {
                let token = self.auth.fetch_token(
                    &|req| self.send_to_url(req),
                    &realm,
                    service.as_deref(),
                    &[],
                    Some(credential),
                    &registry_name,
                )?;
                format!("Bearer {token}")
            }
            None => {
                return Err(DistributionError::Unauthorized {
                    registry: registry_name,
                    message: "the registry asks for an authentication scheme strata does not speak"
                        .into(),
                })
            }
        };
        let resp = self.agents.send(
            &ep.tls(),
            Request::new(http::Method::GET, url.clone()).header("authorization", header),
            true,
        )?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(DistributionError::Unauthorized {
                registry: registry_name,
                message: "incorrect username or password".into(),
            }),
            _ => Err(transport::status_error("GET", &url, resp)),
        }
    }

    pub(crate) fn upstream(&self, domain: &str) -> Endpoint {
        Endpoint {
            host: domain.to_string(),
            prefix: String::new(),
            forced: None,
            settings: self.config.host(domain),
        }
    }

    /// The mirrors that have not failed to connect in this process, in order, and the
    /// registry itself.
    pub(crate) fn read_endpoints(&self, domain: &str) -> (Vec<Endpoint>, Endpoint) {
        let upstream = self.upstream(domain);
        let dead = lock(&self.dead_mirrors).clone();
        let mirrors = upstream
            .settings
            .mirrors
            .iter()
            .filter(|m| !dead.contains(&m.host))
            .map(|m| Endpoint {
                host: m.host.clone(),
                prefix: m.prefix.clone(),
                forced: m.scheme,
                settings: self.config.host(&m.host),
            })
            .collect();
        (mirrors, upstream)
    }

    /// Runs `op` on each endpoint in turn until one succeeds: a mirror gets one try, the
    /// registry itself the retry policy. The registry's error is the one reported.
    pub(crate) fn on_read_endpoints<T>(
        &self,
        domain: &str,
        op: &dyn Fn(&Endpoint) -> Result<T, DistributionError>,
    ) -> Result<T, DistributionError> {
        let (mirrors, upstream) = self.read_endpoints(domain);
        for ep in &mirrors {
            match op(ep) {
                Ok(t) => return Ok(t),
                Err(DistributionError::Connect { .. }) => {
                    lock(&self.dead_mirrors).insert(ep.host.clone());
                }
                Err(_) => {}
            }
        }
        self.retrying(&|| op(&upstream))
    }

    /// Runs `op` under the retry policy.
    pub(crate) fn retrying<T>(
        &self,
        op: &dyn Fn() -> Result<T, DistributionError>,
    ) -> Result<T, DistributionError> {
        let mut attempt = 0;
        loop {
            match op() {
                Err(e) if e.is_transient() && attempt + 1 < self.retry.attempts => {
                    let wait = match &e {
                        DistributionError::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    std::thread::sleep(self.retry.delay(attempt, wait));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `scheme://api-host/prefix` for an endpoint whose scheme is known or settled now.
    fn schemes_to_try(&self, ep: &Endpoint) -> Vec<Scheme> {
        if let Some(s) = ep.forced {
            return vec![s];
        }
        if let Some(s) = lock(&self.schemes).get(&ep.host) {
            return vec![*s];
        }
        if ep.settings.insecure {
            vec![Scheme::Https, Scheme::Http]
        } else {
            vec![Scheme::Https]
        }
    }

    pub(crate) fn base_url(&self, ep: &Endpoint, scheme: Scheme) -> String {
        format!("{}://{}{}", scheme.as_str(), ep.api_host(), ep.prefix)
    }

    /// Sends `GET path` to an endpoint whose scheme may not be settled yet, trying HTTPS
    /// and then (where allowed) plain HTTP; returns the response and the URL that answered.
    fn first_contact(
        &self,
        ep: &Endpoint,
        path: &str,
        auth: Option<String>,
    ) -> Result<(Response<Body>, String), DistributionError> {
        let mut last = None;
        for scheme in self.schemes_to_try(ep) {
            let url = format!("{}{path}", self.base_url(ep, scheme));
            let mut req = Request::new(http::Method::GET, url.clone());
            if let Some(a) = &auth {
                req = req.header("authorization", a.clone());
            }
            match self.agents.send(&ep.tls(), req, true) {
                Ok(resp) => {
                    lock(&self.schemes).insert(ep.host.clone(), scheme);
                    return Ok((resp, url));
                }
                Err(e @ DistributionError::Connect { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| DistributionError::Connect {
            url: ep.host.clone(),
            reason: "no scheme to try".into(),
            retry: false,
        }))
    }

    /// The URL of `path` on `ep`, settling its scheme with a ping first if needed.
    pub(crate) fn url(&self, ep: &Endpoint, path: &str) -> Result<String, DistributionError> {
        let schemes = self.schemes_to_try(ep);
        if let [only] = schemes.as_slice() {
            return Ok(format!("{}{path}", self.base_url(ep, *only)));
        }
        let (resp, _) = self.first_contact(ep, "/v2/", None)?;
        self.learn(ep, &resp);
        let scheme = self.schemes_to_try(ep)[0];
        Ok(format!("{}{path}", self.base_url(ep, scheme)))
    }

    /// Remembers what a 401 asked for; true when it named a scheme strata can answer.
    fn learn(&self, ep: &Endpoint, resp: &Response<Body>) -> bool {
        if resp.status() != 401 {
            return false;
        }
        let challenges = parse_challenges(&transport::headers(resp, "www-authenticate").join(", "));
        match HostAuth::from_challenges(&challenges) {
            Some(auth) => {
                self.auth.set_host_auth(&ep.host, auth);
                true
            }
            None => false,
        }
    }

    /// The extra scope a 401's Bearer challenge names, if any.
    fn challenge_scope(resp: &Response<Body>) -> Option<String> {
        parse_challenges(&transport::headers(resp, "www-authenticate").join(", "))
            .into_iter()
            .find(|c| c.scheme == "bearer")
            .and_then(|c| c.param("scope").map(str::to_string))
    }

    pub(crate) fn credential(
        &self,
        ep: &Endpoint,
    ) -> Result<Option<Credential>, DistributionError> {
        self.credentials.get(canonical_host(&ep.host))
    }

    /// The `Authorization` header for `ep` and `scopes` from what the host asked for before
    /// (fetching a token when none is cached, or when `fresh`).
    pub(crate) fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<String>, DistributionError> {
        match self.auth.host_auth(&ep.host) {
            None => Ok(None),
            Some(HostAuth::Basic) => match self.credential(ep)? {
                Some(Credential::Basic { username, password }) => {
                    Ok(Some(basic_header(&username, &password)))
                }
                _ => Ok(None),
            },
            Some(HostAuth::Bearer { realm, service }) => {
                if fresh {
                    self.auth.forget_token(&realm, service.as_deref(), scopes);
                } else if let Some(t) = self.auth.cached_token(&realm, service.as_deref(), scopes) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let credential = self.credential(ep)?;
                let token = self.auth.fetch_token(
                    &|req| self.send_to_url(req),
                    &realm,
                    service.as_deref(),
                    scopes,
                    credential.as_ref(),
                    canonical_host(&ep.host),
                )?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends a request to any URL (a token realm), with that host's TLS settings.
    fn send_to_url(&self, req: Request<'_>) -> Result<Response<Body>, DistributionError> {
        let host = transport::url_host(&req.url).to_string();
        let tls = tls_for(&self.config.host(&host));
        self.agents.send(&tls, req, true)
    }

    /// Sends a request built by `build` (given the full URL) to `ep` with authentication:
    /// once with what is known, and once more after a 401 taught us the challenge. Only for
    /// requests that can be built twice (no streamed body).
    pub(crate) fn send<'a>(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        url: &str,
        follow: bool,
        build: &dyn Fn(String) -> Request<'a>,
    ) -> Result<Response<Body>, DistributionError> {
        let same_host = transport::url_host(url) == ep.api_host();
        let mut req = build(url.to_string());
        if same_host {
            if let Some(a) = self.authorization(ep, scopes, false)? {
                req = req.header("authorization", a);
            }
        }
        let resp = self.agents.send(&ep.tls(), req, follow)?;
        if resp.status() != 401 || !same_host {
            return Ok(resp);
        }
        let had = self.auth.host_auth(&ep.host);
        if !self.learn(ep, &resp) {
            return Ok(resp);
        }
        let mut scopes = scopes.to_vec();
        if let Some(extra) = Self::challenge_scope(&resp) {
            if !scopes.contains(&extra) {
                scopes.push(extra);
            }
        }
        // Nothing new to try: the credentials we sent were refused.
        if had == self.auth.host_auth(&ep.host) && matches!(had, Some(HostAuth::Basic)) {
            return Ok(resp);
        }
        let Some(a) = self.authorization(ep, &scopes, true)? else {
            return Ok(resp);
        };
        let req = build(url.to_string()).header("authorization", a);
        self.agents.send(&ep.tls(), req, follow)
    }

    /// Makes sure the scheme and authentication scheme of `ep` are known (a GET of `/v2/`
    /// the first time), so a request that cannot be repeated goes out with credentials.
    pub(crate) fn prepare(&self, ep: &Endpoint) -> Result<(), DistributionError> {
        if self.auth.host_auth(&ep.host).is_some() && self.schemes_to_try(ep).len() == 1 {
            return Ok(());
        }
        let (resp, _) = self.first_contact(ep, "/v2/", None)?;
        self.learn(ep, &resp);
        Ok(())
    }

    /// Sends a request with a streamed body exactly once, with the authorization already
    /// learned for `ep` (learn it first with a bodiless request).
    pub(crate) fn send_once(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        mut req: Request<'_>,
    ) -> Result<Response<Body>, DistributionError> {
        if transport::url_host(&req.url) == ep.api_host() {
            if let Some(a) = self.authorization(ep, scopes, false)? {
                req = req.header("authorization", a);
            }
        }
        self.agents.send(&ep.tls(), req, false)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_are_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, None), Duration::from_millis(500));
        assert_eq!(p.delay(2, None), Duration::from_secs(2));
        assert_eq!(p.delay(10, None), Duration::from_secs(10));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn mirrors_come_first_and_hub_uses_its_api_host() {
        let mut config = RegistriesConfig::default().with_certs_dirs(Vec::new());
        config
            .merge(
                "[registry.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:1/p\", \"m2.example\"]\n",
                std::path::Path::new("t.toml"),
            )
            .unwrap();
        let client =
            RegistryClient::new(config, Box::new(crate::Anonymous)).with_retry(RetryPolicy {
                attempts: 1,
                ..RetryPolicy::default()
            });
        let (mirrors, upstream) = client.read_endpoints("docker.io");
        let hosts: Vec<&str> = mirrors.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(hosts, ["127.0.0.1:1", "m2.example"]);
        assert_eq!(upstream.host, "docker.io");
        assert_eq!(upstream.api_host(), "registry-1.docker.io");
        assert_eq!(
            client.base_url(&mirrors[0], Scheme::Http),
            "http://127.0.0.1:1/p"
        );
        // A mirror that cannot be reached is skipped from then on.
        let err = client
            .on_read_endpoints("docker.io", &|ep| -> Result<(), DistributionError> {
                Err(DistributionError::Connect {
                    url: ep.host.clone(),
                    reason: "refused".into(),
                    retry: true,
                })
            })
            .unwrap_err();
        assert!(err.to_string().contains("docker.io"), "{err}");
        assert!(client.read_endpoints("docker.io").0.is_empty());
    }
}
