//! Who a request comes from and what it may do.
//!
//! Three modes (config `auth.mode`): `none` (everything allowed), `basic` (htpasswd on every
//! request) and `token` (Docker's Bearer flow: clients get a JWT from the built-in `/token`
//! service or a trusted external issuer; Basic credentials are also accepted directly).
//! Authorization happens before the storage is consulted, and a refusal looks the same
//! whether the repository exists or not, so an unauthorised client learns nothing.

mod htpasswd;
mod rules;
mod token;

use std::path::Path;
use std::sync::Arc;

use http::HeaderMap;

use crate::config::{Action, AuthMode, Config};
use crate::error::RegistryError;
use crate::names;

use htpasswd::Htpasswd;
pub use htpasswd::{set_password, DEFAULT_COST};
use rules::Rules;
pub(crate) use token::{ResourceActions, Scope};
use token::{TokenIssuer, TokenVerifier, VerifiedToken};

/// The client of one request.
#[derive(Clone, Debug)]
pub(crate) enum Identity {
    /// Authentication is off.
    Open,
    Anonymous,
    /// Basic credentials checked against htpasswd.
    User(String),
    Token(VerifiedToken),
}

impl Identity {
    /// The name for logs (`-` when none).
    pub(crate) fn name(&self) -> &str {
        match self {
            Identity::User(u) => u,
            Identity::Token(t) if !t.subject.is_empty() => &t.subject,
            _ => "-",
        }
    }
}

/// Credentials were given and are wrong.
#[derive(Debug)]
pub(crate) struct BadCredentials;

pub(crate) struct Auth {
    mode: AuthMode,
    realm: String,
    htpasswd: Option<Arc<Htpasswd>>,
    rules: Rules,
    issuer: Option<TokenIssuer>,
    verifier: Option<TokenVerifier>,
    token_realm: Option<String>,
    pub(crate) service: String,
}

/// `Authorization: Basic …` → (user, password).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), BadCredentials>> {
    use base64::Engine;
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = match base64::engine::general_purpose::STANDARD.decode(rest.trim()) {
        Ok(d) => d,
        Err(_) => return Some(Err(BadCredentials)),
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Some(Err(BadCredentials));
    };
    Some(match text.split_once(':') {
        Some((u, p)) => Ok((u.to_string(), p.to_string())),
        None => Err(BadCredentials),
    })
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

impl Auth {
    /// Builds the authorizer; `storage_dir` holds the generated token key when none is set.
    pub(crate) fn new(config: &Config, storage_dir: &Path) -> Result<Auth, RegistryError> {
        let a = &config.auth;
        let htpasswd = match (&a.mode, &a.htpasswd) {
            (AuthMode::None, _) | (_, None) => None,
            (_, Some(path)) => Some(Arc::new(Htpasswd::open(path)?)),
        };
        let (issuer, verifier) = if a.mode == AuthMode::Token {
            let mut keys = Vec::new();
            let mut issuer = None;
            if htpasswd.is_some() {
                let path = a
                    .token
                    .signing_key
                    .clone()
                    .unwrap_or_else(|| storage_dir.join("auth/token-key.pem"));
                let (i, key) = TokenIssuer::load_or_create(&a.token, &path)?;
                issuer = Some(i);
                keys.push(key);
            }
            for t in &a.token.trusted {
                keys.extend(token::trusted_keys(t)?);
            }
            (issuer, Some(TokenVerifier::new(keys, &a.token.service)))
        } else {
            (None, None)
        };
        Ok(Auth {
            mode: a.mode,
            realm: a.realm.clone(),
            htpasswd,
            rules: Rules::new(&a.access, &a.groups),
            issuer,
            verifier,
            token_realm: a.token.realm.clone(),
            service: a.token.service.clone(),
        })
    }

    pub(crate) fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Checks Basic credentials.
    pub(crate) async fn check_password(&self, user: &str, password: &str) -> bool {
        match &self.htpasswd {
            Some(h) => h.verify(user, password).await,
            None => false,
        }
    }

    /// Who the request comes from.
    pub(crate) async fn identify(&self, headers: &HeaderMap) -> Result<Identity, BadCredentials> {
        if self.mode == AuthMode::None {
            return Ok(Identity::Open);
        }
        if self.mode == AuthMode::Token {
            if let Some(token) = bearer_token(headers) {
                return match self.verifier.as_ref().and_then(|v| v.verify(token)) {
                    Some(t) => Ok(Identity::Token(t)),
                    None => Err(BadCredentials),
                };
            }
        }
        Ok(match self.identify_basic(headers).await? {
            Some(user) => Identity::User(user),
            None => Identity::Anonymous,
        })
    }

    /// The user of Basic credentials (`None` without any), for the token service.
    pub(crate) async fn identify_basic(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<String>, BadCredentials> {
        match basic_credentials(headers) {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok((user, password))) => {
                if self.check_password(&user, &password).await {
                    Ok(Some(user))
                } else {
                    Err(BadCredentials)
                }
            }
        }
    }

    /// Whether the client may do `action` in `repository`.
    pub(crate) fn allows(&self, who: &Identity, repository: &str, action: Action) -> bool {
        match who {
            Identity::Open => true,
            Identity::Anonymous => self.rules.allows(None, repository, action),
            Identity::User(u) => self.rules.allows(Some(u), repository, action),
            Identity::Token(t) => t.grants("repository", repository, action.as_str()),
        }
    }

    /// Whether the client may list the catalog at all (and then sees what it may pull).
    pub(crate) fn may_list_catalog(&self, who: &Identity) -> bool {
        match who {
            Identity::Token(t) => t.grants("registry", "catalog", "*"),
            _ => true,
        }
    }

    /// Whether a repository shows in the client's catalog.
    pub(crate) fn catalog_shows(&self, who: &Identity, repository: &str) -> bool {
        match who {
            // A token from this registry names its user: the rules decide, as for Basic.
            Identity::Token(t) if t.local => {
                let user = (!t.subject.is_empty()).then_some(t.subject.as_str());
                self.rules.allows(user, repository, Action::Pull)
            }
            other => self.allows(other, repository, Action::Pull),
        }
    }

    /// The `WWW-Authenticate` value of a 401; `scope` like `repository:a:pull,push`.
    pub(crate) fn challenge(
        &self,
        host: Option<&str>,
        tls: bool,
        scope: Option<&str>,
        insufficient: bool,
    ) -> Option<String> {
        match self.mode {
            AuthMode::None => None,
            AuthMode::Basic => Some(format!("Basic realm=\"{}\"", quote(&self.realm))),
            AuthMode::Token => {
                let realm = match &self.token_realm {
                    Some(r) => r.clone(),
                    None => format!(
                        "{}://{}/token",
                        if tls { "https" } else { "http" },
                        host.unwrap_or("localhost")
                    ),
                };
                let mut v = format!(
                    "Bearer realm=\"{}\",service=\"{}\"",
                    quote(&realm),
                    quote(&self.service)
                );
                if let Some(s) = scope {
                    v.push_str(&format!(",scope=\"{}\"", quote(s)));
                }
                if insufficient {
                    v.push_str(",error=\"insufficient_scope\"");
                }
                Some(v)
            }
        }
    }

    /// The built-in token service: a token for `user` (`None`: anonymous) with what it asked
    /// for and the rules allow. `None` when this registry issues no tokens.
    pub(crate) fn issue_token(
        &self,
        user: Option<&str>,
        scopes: &[Scope],
    ) -> Option<Result<(String, u64, u64), String>> {
        let issuer = self.issuer.as_ref()?;
        let mut access: Vec<ResourceActions> = Vec::new();
        for s in scopes {
            let granted: Vec<String> = match s.kind.as_str() {
                "repository" if names::valid_repository(&s.name) => {
                    let allowed = self.rules.actions(user, &s.name);
                    s.actions
                        .iter()
                        .filter(|a| {
                            // `*` asks for everything allowed
                            a.as_str() == "*"
                                || Action::parse(a).is_some_and(|x| allowed.contains(&x))
                        })
                        .flat_map(|a| {
                            if a == "*" {
                                allowed.iter().map(|x| x.as_str().to_string()).collect()
                            } else {
                                vec![a.clone()]
                            }
                        })
                        .collect()
                }
                // What the catalog shows is filtered by the rules when it is listed.
                "registry" if s.name == "catalog" => vec!["*".to_string()],
                _ => Vec::new(),
            };
            if granted.is_empty() {
                continue;
            }
            match access
                .iter_mut()
                .find(|a| a.kind == s.kind && a.name == s.name)
            {
                Some(a) => {
                    for g in granted {
                        if !a.actions.contains(&g) {
                            a.actions.push(g);
                        }
                    }
                }
                None => access.push(ResourceActions {
                    kind: s.kind.clone(),
                    name: s.name.clone(),
                    actions: granted,
                }),
            }
        }
        Some(
            issuer
                .issue(user.unwrap_or(""), access)
                .map_err(|e| e.to_string()),
        )
    }
}

/// Escapes a value for a quoted-string of a challenge.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Basic YWxpY2U6cDpx".parse().unwrap(),
        );
        let (u, p) = basic_credentials(&h).unwrap().unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("alice", "p:q"));
        h.insert(http::header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&h).unwrap().is_err());
        h.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(basic_credentials(&h).is_none());
        assert_eq!(bearer_token(&h), Some("abc"));
    }

    #[test]
    fn challenges() {
        let mut config = Config::default();
        config.auth.mode = AuthMode::Token;
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        set_password(&htpasswd, "alice", "pw", 4).unwrap();
        config.auth.htpasswd = Some(htpasswd);
        let auth = Auth::new(&config, dir.path()).unwrap();
        assert_eq!(
            auth.challenge(Some("reg:5000"), false, Some("repository:a:pull"), false)
                .unwrap(),
            "Bearer realm=\"http://reg:5000/token\",service=\"strata-registry\",scope=\"repository:a:pull\""
        );
        config.auth.mode = AuthMode::Basic;
        let auth = Auth::new(&config, dir.path()).unwrap();
        assert_eq!(
            auth.challenge(None, true, None, false).unwrap(),
            "Basic realm=\"strata registry\""
        );
        config.auth.mode = AuthMode::None;
        let auth = Auth::new(&config, dir.path()).unwrap();
        assert!(auth.challenge(None, false, None, false).is_none());
    }
}
