//! Registry credentials where Docker keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` entries (base64 `user:password` in `auth`, or an
//! `identitytoken`), and credential helpers (`credsStore` for every registry,
//! `credHelpers` per registry) run as `docker-credential-<name> get|store|erase`.
//!
//! Keys are Docker's: `https://index.docker.io/v1/` for Docker Hub, the bare `host[:port]`
//! for any other registry; when reading, a key with a scheme or path (`https://host/v1/`)
//! matches its host, as Docker's `ConvertToHostname` does. Writing keeps every other field
//! of the file as it was and replaces the file atomically with mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::DistributionError;

/// Docker Hub's key in `auths` and for credential helpers.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// What a registry may be given to prove who we are.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or personal access token), sent as Basic auth or to the
    /// token server.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token server.
    IdentityToken { username: String, token: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even in debug output.
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, ***)")
            }
        }
    }
}

impl Credential {
    pub fn username(&self) -> &str {
        match self {
            Credential::Basic { username, .. } | Credential::IdentityToken { username, .. } => {
                username
            }
        }
    }
}

/// Where credentials come from; the registry client asks it per registry host.
pub trait CredentialSource: Send + Sync {
    /// Credentials for `registry` (`docker.io`, `localhost:5000`), if any are configured.
    fn get(&self, registry: &str) -> Result<Option<Credential>, DistributionError>;
}

/// No credentials at all (anonymous access only).
#[derive(Debug, Default)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn get(&self, _: &str) -> Result<Option<Credential>, DistributionError> {
        Ok(None)
    }
}

/// Docker's credential configuration directory and its helpers.
#[derive(Debug, Clone)]
pub struct DockerCredentials {
    dir: PathBuf,
}

/// The key Docker files a registry's credentials under.
pub fn auth_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// `https://host:5000/v1/` → `host:5000`, as Docker's `ConvertToHostname`.
fn key_hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

impl DockerCredentials {
    /// `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub fn from_env() -> DockerCredentials {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => home_dir().join(".docker"),
        };
        DockerCredentials { dir }
    }

    pub fn at(dir: impl Into<PathBuf>) -> DockerCredentials {
        DockerCredentials { dir: dir.into() }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn read_config(&self) -> Result<Map<String, Value>, DistributionError> {
        let path = self.config_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => return Err(DistributionError::ConfigIo { path, source }),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(DistributionError::Config {
                path,
                reason: "not a JSON object".into(),
            }),
            Err(e) => Err(DistributionError::Config {
                path,
                reason: e.to_string(),
            }),
        }
    }

    fn write_config(&self, map: &Map<String, Value>) -> Result<(), DistributionError> {
        let path = self.config_path();
        let io = |source| DistributionError::ConfigIo {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut text = serde_json::to_vec_pretty(map).map_err(|e| DistributionError::Config {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        let temp = self
            .dir
            .join(format!(".config.json.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            // A config.json that is a symlink (dotfile managers) is replaced through it.
            let target = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            std::fs::rename(&temp, target)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            io(e)
        })
    }

    /// The helper configured for `registry`: its `credHelpers` entry, else `credsStore`.
    fn helper_for(config: &Map<String, Value>, registry: &str) -> Option<String> {
        let key = auth_key(registry);
        let per_host = config
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.get(&key).or_else(|| h.get(registry)))
            .and_then(Value::as_str);
        let helper = per_host.or_else(|| config.get("credsStore").and_then(Value::as_str))?;
        (!helper.is_empty()).then(|| helper.to_string())
    }

    /// Stores `credential` for `registry` where Docker would: in its helper when one is
    /// configured (leaving an empty `auths` entry, as Docker does), else base64 in `auths`.
    pub fn store(&self, registry: &str, credential: &Credential) -> Result<(), DistributionError> {
        let mut config = self.read_config()?;
        let key = auth_key(registry);
        let entry = match Self::helper_for(&config, registry) {
            Some(helper) => {
                let (username, secret) = match credential {
                    Credential::Basic { username, password } => (username.as_str(), password),
                    Credential::IdentityToken { token, .. } => ("<token>", token),
                };
                let input = serde_json::json!({
                    "ServerURL": key,
                    "Username": username,
                    "Secret": secret,
                });
                run_helper(&helper, "store", input.to_string().as_bytes())?;
                Map::new()
            }
            None => {
                let mut entry = Map::new();
                match credential {
                    Credential::Basic { username, password } => {
                        let auth = base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:{password}"));
                        entry.insert("auth".into(), Value::String(auth));
                    }
                    Credential::IdentityToken { username, token } => {
                        let auth = base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:"));
                        entry.insert("auth".into(), Value::String(auth));
                        entry.insert("identitytoken".into(), Value::String(token.clone()));
                    }
                }
                entry
            }
        };
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            auths.insert(key, Value::Object(entry));
        }
        self.write_config(&config)
    }

    /// Removes `registry`'s credentials (from its helper too). False when there were none.
    pub fn erase(&self, registry: &str) -> Result<bool, DistributionError> {
        let mut config = self.read_config()?;
        let key = auth_key(registry);
        let mut found = false;
        if let Some(helper) = Self::helper_for(&config, registry) {
            found |= self.helper_get(&helper, &key)?.is_some();
            if found {
                run_helper(&helper, "erase", key.as_bytes())?;
            }
        }
        if let Some(Value::Object(auths)) = config.get_mut("auths") {
            let keys: Vec<String> = auths
                .keys()
                .filter(|k| *k == &key || key_hostname(k) == key_hostname(&key))
                .cloned()
                .collect();
            for k in keys {
                auths.remove(&k);
                found = true;
            }
        }
        if found {
            self.write_config(&config)?;
        }
        Ok(found)
    }

    /// True when `store` would write `registry`'s password into config.json (base64, not
    /// encrypted) rather than hand it to a credential helper.
    pub fn stores_in_file(&self, registry: &str) -> bool {
        match self.read_config() {
            Ok(config) => Self::helper_for(&config, registry).is_none(),
            Err(_) => true,
        }
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<Credential>, DistributionError> {
        let out = match run_helper(helper, "get", key.as_bytes()) {
            Ok(out) => out,
            // Docker's helpers say so on stdout and exit 1 when nothing is stored.
            Err(DistributionError::CredentialHelper { reason, .. })
                if reason.contains("credentials not found") =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let reply: Reply =
            serde_json::from_slice(&out).map_err(|e| DistributionError::CredentialHelper {
                helper: helper.to_string(),
                action: "get",
                reason: format!("its answer is not JSON: {e}"),
            })?;
        if reply.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if reply.username == "<token>" {
            Credential::IdentityToken {
                username: String::new(),
                token: reply.secret,
            }
        } else {
            Credential::Basic {
                username: reply.username,
                password: reply.secret,
            }
        }))
    }
}

impl CredentialSource for DockerCredentials {
    fn get(&self, registry: &str) -> Result<Option<Credential>, DistributionError> {
        let config = self.read_config()?;
        let key = auth_key(registry);
        if let Some(helper) = Self::helper_for(&config, registry) {
            return self.helper_get(&helper, &key);
        }
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let entry = auths.get(&key).or_else(|| {
            let host = key_hostname(&key);
            auths
                .iter()
                .find(|(k, _)| key_hostname(k) == host)
                .map(|(_, v)| v)
        });
        let Some(entry) = entry.and_then(Value::as_object) else {
            return Ok(None);
        };
        let path = self.config_path();
        let bad = |reason: String| DistributionError::Config {
            path: path.clone(),
            reason: format!("auths entry {key:?}: {reason}"),
        };
        let (mut username, mut password) = (String::new(), String::new());
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            if !auth.is_empty() {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| bad(format!("auth is not base64: {e}")))?;
                let text = String::from_utf8(raw).map_err(|_| bad("auth is not UTF-8".into()))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| bad("auth is not user:password".into()))?;
                username = u.to_string();
                password = p.to_string();
            }
        }
        // Older files spell them out.
        if let Some(u) = entry.get("username").and_then(Value::as_str) {
            username = u.to_string();
        }
        if let Some(p) = entry.get("password").and_then(Value::as_str) {
            password = p.to_string();
        }
        if let Some(token) = entry.get("identitytoken").and_then(Value::as_str) {
            if !token.is_empty() {
                return Ok(Some(Credential::IdentityToken {
                    username,
                    token: token.to_string(),
                }));
            }
        }
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credential::Basic { username, password }))
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout on success.
fn run_helper(
    helper: &str,
    action: &'static str,
    input: &[u8],
) -> Result<Vec<u8>, DistributionError> {
    let fail = |reason: String| DistributionError::CredentialHelper {
        helper: helper.to_string(),
        action,
        reason,
    };
    if helper.contains('/') || helper.is_empty() {
        return Err(fail("the helper name must not contain '/'".into()));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {program}: {e} (is it installed and in PATH?)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input fails below with its own message.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for {program}: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .trim()
        .to_string();
        return Err(fail(if said.is_empty() {
            format!("it exited with {}", out.status)
        } else {
            said
        }));
    }
    Ok(out.stdout)
}

fn home_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from("/root"),
    }
}

/// Fixed credentials by registry host, for tests and embedding callers.
#[derive(Debug, Default, Clone)]
pub struct StaticCredentials(pub BTreeMap<String, Credential>);

impl CredentialSource for StaticCredentials {
    fn get(&self, registry: &str) -> Result<Option<Credential>, DistributionError> {
        Ok(self.0.get(registry).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn reads_docker_config_auths_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{
              "auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "https://localhost:5000/v2/": {"auth": "bG9jYWw6cHc="},
                "tok.example": {"auth": "dTo=", "identitytoken": "refresh-me"},
                "empty.example": {}
              },
              "psFormat": "keep me"
            }"#,
        )
        .unwrap();
        let c = DockerCredentials::at(dir.path());
        assert_eq!(c.get("docker.io").unwrap(), Some(basic("hub", "secret")));
        assert_eq!(c.get("localhost:5000").unwrap(), Some(basic("local", "pw")));
        assert_eq!(
            c.get("tok.example").unwrap(),
            Some(Credential::IdentityToken {
                username: "u".into(),
                token: "refresh-me".into()
            })
        );
        assert_eq!(c.get("empty.example").unwrap(), None);
        assert_eq!(c.get("other.example").unwrap(), None);
    }

    #[test]
    fn store_and_erase_keep_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"psFormat":"x"}"#).unwrap();
        let c = DockerCredentials::at(dir.path());
        c.store("localhost:5000", &basic("u", "p:w")).unwrap();
        c.store("docker.io", &basic("h", "s")).unwrap();
        assert_eq!(c.get("localhost:5000").unwrap(), Some(basic("u", "p:w")));
        let text = std::fs::read_to_string(c.config_path()).unwrap();
        assert!(text.contains("\"psFormat\": \"x\""), "{text}");
        assert!(text.contains(DOCKER_HUB_AUTH_KEY), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.config_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(c.erase("localhost:5000").unwrap());
        assert!(!c.erase("localhost:5000").unwrap());
        assert_eq!(c.get("localhost:5000").unwrap(), None);
        assert_eq!(c.get("docker.io").unwrap(), Some(basic("h", "s")));
    }

    #[test]
    fn a_broken_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let c = DockerCredentials::at(dir.path());
        let err = c.get("x").unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"x":{"auth":"!!"}}}"#,
        )
        .unwrap();
        assert!(c.get("x").unwrap_err().to_string().contains("base64"));
    }

    #[test]
    fn a_registry_s_own_helper_wins_over_the_store_for_everything() {
        let config: Map<String, Value> = serde_json::from_str(
            r#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud","https://index.docker.io/v1/":"hub"}}"#,
        )
        .unwrap();
        let helper = |r| DockerCredentials::helper_for(&config, r);
        assert_eq!(helper("gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(helper("docker.io").as_deref(), Some("hub"));
        assert_eq!(helper("localhost:5000").as_deref(), Some("desktop"));
        let none: Map<String, Value> = serde_json::from_str(r#"{"credsStore":""}"#).unwrap();
        assert_eq!(DockerCredentials::helper_for(&none, "x"), None);
        let err = run_helper("../evil", "get", b"").unwrap_err().to_string();
        assert!(err.contains("must not contain"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        assert!(!format!("{:?}", basic("u", "hunter2")).contains("hunter2"));
    }
}
