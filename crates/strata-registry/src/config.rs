//! The registry's configuration: one TOML file, every key optional, documented in
//! `docs/registry.md`. Unknown keys are refused so a typo never silently does nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::error::RegistryError;

/// Default listen address: loopback, where plain HTTP is allowed.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";
/// Default storage directory.
pub const DEFAULT_STORAGE: &str = "/var/lib/strata-registry";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The filesystem storage directory (unused with `[s3]`).
    pub storage: PathBuf,
    /// An S3-compatible object store instead of the directory: several replicas may serve
    /// one bucket.
    pub s3: Option<S3Config>,
    pub http: HttpConfig,
    pub tls: Option<TlsConfig>,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub gc: GcConfig,
    #[serde(rename = "quota")]
    pub quotas: Vec<QuotaConfig>,
    pub limits: LimitsConfig,
    /// `[[mirror]]`: the pull-through caches this server is, one per upstream registry.
    #[serde(rename = "mirror")]
    pub mirrors: Vec<MirrorConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: DEFAULT_ADDR
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 5000))),
            storage: PathBuf::from(DEFAULT_STORAGE),
            s3: None,
            http: HttpConfig::default(),
            tls: None,
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            gc: GcConfig::default(),
            quotas: Vec::new(),
            limits: LimitsConfig::default(),
            mirrors: Vec::new(),
        }
    }
}

/// `[s3]`: where and how to reach the bucket. Credentials not given here come from the
/// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` variables,
/// the region from `AWS_REGION` / `AWS_DEFAULT_REGION`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// `https://host:port` of a self-hosted store (Garage, MinIO, Ceph); default: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Every key is put under this prefix (`registry` → `registry/blobs/…`).
    #[serde(default)]
    pub prefix: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `endpoint/bucket/key` URLs instead of `bucket.endpoint/key`; default: on with an
    /// `endpoint`, off for AWS.
    pub path_style: Option<bool>,
    /// PEM certificates trusted for the endpoint, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Size of the parts uploads are streamed in (S3's minimum is 5 MiB; at most 10,000
    /// parts per blob, so 8 MiB allows 78 GiB blobs).
    #[serde(default = "default_part_size")]
    pub part_size: ByteSize,
}

fn default_part_size() -> ByteSize {
    ByteSize(8 << 20)
}

impl fmt::Debug for S3Config {
    // Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("path_style", &self.path_style)
            .field("ca_file", &self.ca_file)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// One `[[mirror]]`: an upstream registry served under a namespace of this one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The namespace: `docker.io` serves `/v2/docker.io/library/node/...` and containerd's
    /// `?ns=docker.io`.
    pub prefix: String,
    /// The upstream registry as `host[:port]` (default: the prefix; `docker.io` is Docker
    /// Hub).
    #[serde(default)]
    pub registry: Option<String>,
    /// Credentials for the upstream (Basic, or given to its token service).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// How long a tag is served from the cache before the upstream is asked again.
    #[serde(default = "default_tag_ttl")]
    pub tag_ttl: Dur,
    /// Plain HTTP, or TLS without verification (loopback upstreams are plain by default).
    #[serde(default)]
    pub insecure: Option<bool>,
    /// Extra CA certificates (PEM) trusted for the upstream.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_tag_ttl() -> Dur {
    Dur(Duration::from_secs(300))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve plain HTTP on a non-loopback address (without it, such an address needs `[tls]`).
    pub plain_http: bool,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Dur,
    /// Worker threads of the server (0: one per core).
    pub workers: usize,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            plain_http: false,
            shutdown_grace: Dur(Duration::from_secs(30)),
            workers: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// How often the files are checked for a change (then reloaded without a restart);
    /// 0 turns reloading off.
    #[serde(default = "default_reload")]
    pub reload_interval: Dur,
}

fn default_reload() -> Dur {
    Dur(Duration::from_secs(10))
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// error, warn, info, debug or trace.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Everyone may do everything (a registry on loopback or behind another gate).
    #[default]
    None,
    /// HTTP Basic against the htpasswd file on every request.
    Basic,
    /// Docker's Bearer token flow: the built-in `/token` service, or trusted issuers.
    Token,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// htpasswd file with bcrypt hashes (`strata registry htpasswd` writes it).
    pub htpasswd: Option<PathBuf>,
    /// The realm of Basic challenges.
    pub realm: String,
    pub token: TokenConfig,
    /// Named groups of users, for access rules.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Who may do what where. Empty: every authenticated user may pull, push and delete
    /// everywhere, and anonymous clients nothing.
    pub access: Vec<AccessRule>,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::None,
            htpasswd: None,
            realm: "strata registry".into(),
            token: TokenConfig::default(),
            groups: BTreeMap::new(),
            access: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// The token endpoint clients are sent to. Default: this server's `/token`, from the
    /// request's `Host` (https when TLS is on).
    pub realm: Option<String>,
    /// The `service` tokens are issued for and must name (their `aud`).
    pub service: String,
    /// The `iss` of tokens this server issues.
    pub issuer: String,
    /// Lifetime of issued tokens.
    pub expiry: Dur,
    /// PEM private key (EC P-256 or RSA) to sign tokens with. Default: a P-256 key generated
    /// once and kept in the storage directory (`auth/token-key.pem`, mode 0600).
    pub signing_key: Option<PathBuf>,
    /// External issuers whose tokens are accepted too.
    pub trusted: Vec<TrustedIssuer>,
}

impl Default for TokenConfig {
    fn default() -> TokenConfig {
        TokenConfig {
            realm: None,
            service: "strata-registry".into(),
            issuer: "strata-registry".into(),
            expiry: Dur(Duration::from_secs(300)),
            signing_key: None,
            trusted: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The `iss` claim of its tokens.
    pub issuer: String,
    /// A JWKS file (`{"keys":[…]}`) with its public keys.
    pub jwks: Option<PathBuf>,
    /// A PEM bundle of its certificates or public keys (Distribution's `rootcertbundle`).
    pub certificates: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Repository globs (`team/*`, `team/**`, `**`).
    pub repositories: Vec<String>,
    /// User names; `*` is any authenticated user.
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The rule also applies to clients without credentials.
    #[serde(default)]
    pub anonymous: bool,
    pub actions: Vec<Action>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UntaggedPolicy {
    /// Untagged manifests are kept (and so are their blobs) until deleted by digest.
    #[default]
    Keep,
    /// Untagged manifests older than the grace period are collected, unless an index or a
    /// kept manifest's referrers need them.
    Delete,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Time between collections in the server; 0 turns scheduled collection off.
    pub interval: Dur,
    /// Blobs and manifests written or referenced more recently than this are never collected
    /// (an image being pushed has its layers uploaded before its manifest).
    pub grace: Dur,
    pub untagged: UntaggedPolicy,
    /// Upload sessions idle for longer than this are removed.
    pub upload_expiry: Dur,
}

impl Default for GcConfig {
    fn default() -> GcConfig {
        GcConfig {
            interval: Dur(Duration::from_secs(24 * 3600)),
            grace: Dur(Duration::from_secs(3600)),
            untagged: UntaggedPolicy::Keep,
            upload_expiry: Dur(Duration::from_secs(24 * 3600)),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Each repository matching this glob may store up to `limit`.
    pub repositories: Option<String>,
    /// Everything under this namespace (`team` → `team/**`) together may store up to `limit`.
    pub namespace: Option<String>,
    pub limit: ByteSize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest manifest accepted.
    pub max_manifest_size: ByteSize,
    /// Requests per second allowed from one client address (0: unlimited); past it the
    /// client gets 429 TOOMANYREQUESTS.
    pub requests_per_second: u32,
    /// Burst above that rate.
    pub burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_manifest_size: ByteSize(4 * 1024 * 1024),
            requests_per_second: 0,
            burst: 100,
        }
    }
}

impl Config {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Config, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|message| RegistryError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and checks a config text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// What serde cannot say: combinations that make no sense.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s3) = &self.s3 {
            if s3.bucket.is_empty() {
                return Err("s3.bucket is empty".into());
            }
            if let Some(e) = &s3.endpoint {
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(format!(
                        "s3.endpoint {e:?} must be a URL: http://host:port or https://host:port"
                    ));
                }
            }
            if s3.part_size.0 < 5 << 20 || s3.part_size.0 > 5 << 30 {
                return Err(format!(
                    "s3.part_size {} is outside S3's limits (5 MiB to 5 GiB)",
                    s3.part_size.0
                ));
            }
            if s3.prefix.starts_with('/') || s3.prefix.split('/').any(|c| c == "." || c == "..") {
                return Err(format!(
                    "s3.prefix {:?} is not a relative key prefix",
                    s3.prefix
                ));
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err("s3.access_key_id and s3.secret_access_key go together".into());
            }
            if self.auth.mode == AuthMode::Token
                && self.auth.htpasswd.is_some()
                && self.auth.token.signing_key.is_none()
            {
                return Err("auth.token.signing_key is required with [s3] storage: every replica must sign tokens with the same key".into());
            }
        }
        if self.auth.mode == AuthMode::Basic && self.auth.htpasswd.is_none() {
            return Err("auth.mode = \"basic\" needs auth.htpasswd".into());
        }
        if self.auth.mode == AuthMode::Token
            && self.auth.htpasswd.is_none()
            && self.auth.token.trusted.is_empty()
        {
            return Err(
                "auth.mode = \"token\" needs auth.htpasswd (the built-in token service) or auth.token.trusted issuers"
                    .into(),
            );
        }
        for t in &self.auth.token.trusted {
            if t.jwks.is_none() && t.certificates.is_none() {
                return Err(format!(
                    "auth.token.trusted issuer {:?} needs jwks or certificates",
                    t.issuer
                ));
            }
        }
        for (i, rule) in self.auth.access.iter().enumerate() {
            if rule.repositories.is_empty() {
                return Err(format!("auth.access[{i}] has no repositories"));
            }
            for g in &rule.groups {
                if !self.auth.groups.contains_key(g) {
                    return Err(format!("auth.access[{i}] names unknown group {g:?}"));
                }
            }
        }
        for (i, q) in self.quotas.iter().enumerate() {
            if q.repositories.is_some() == q.namespace.is_some() {
                return Err(format!(
                    "quota[{i}] needs exactly one of repositories or namespace"
                ));
            }
        }
        let mut prefixes = std::collections::HashSet::new();
        for (i, m) in self.mirrors.iter().enumerate() {
            let component_ok = !m.prefix.is_empty()
                && !m.prefix.starts_with(['.', '-'])
                && m.prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-:".contains(&b));
            if !component_ok {
                return Err(format!(
                    "mirror[{i}].prefix {:?} must be one path component such as \"docker.io\"",
                    m.prefix
                ));
            }
            if !prefixes.insert(m.prefix.as_str()) {
                return Err(format!("mirror prefix {:?} is configured twice", m.prefix));
            }
            if let Some(r) = &m.registry {
                if r.is_empty() || r.contains(['/', ' ']) {
                    return Err(format!(
                        "mirror[{i}].registry {r:?} must be host[:port], e.g. \"ghcr.io\""
                    ));
                }
            }
            if m.username.is_some() != m.password.is_some() {
                return Err(format!(
                    "mirror[{i}] needs both username and password, or neither"
                ));
            }
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(format!(
                "log.level {:?} is not one of error, warn, info, debug, trace",
                self.log.level
            ));
        }
        Ok(())
    }
}

fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(": ")
}

/// A duration written as `30s`, `5m`, `1h`, `7d`, `250ms` or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn parse(s: &str) -> Option<Dur> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().ok()?;
        let secs = match unit.trim() {
            "" | "s" => n,
            "ms" => return Some(Dur(Duration::from_millis(n))),
            "m" => n.checked_mul(60)?,
            "h" => n.checked_mul(3600)?,
            "d" => n.checked_mul(86400)?,
            _ => return None,
        };
        Some(Dur(Duration::from_secs(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\", \"1h\", \"7d\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|s| Dur(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).ok_or_else(|| E::custom(format!("invalid duration {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size written as `4MiB`, `10GB`, `512k` or a number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Option<ByteSize> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num.parse().ok()?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            "t" | "tb" => 1000u64.pow(4),
            "tib" => 1 << 40,
            _ => return None,
        };
        let v = n * mult as f64;
        (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(ByteSize(v as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"4MiB\", \"10GB\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).ok_or_else(|| E::custom(format!("invalid size {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_a_working_config() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(c.auth.mode, AuthMode::None);
        assert_eq!(c.gc.grace.0, Duration::from_secs(3600));
        assert_eq!(c.limits.max_manifest_size.0, 4 << 20);
    }

    #[test]
    fn a_full_config_parses() {
        let c = Config::parse(
            r#"
addr = "0.0.0.0:5443"
storage = "/srv/registry"
[tls]
cert = "/c.pem"
key = "/k.pem"
[log]
format = "json"
[auth]
mode = "token"
htpasswd = "/etc/htpasswd"
[auth.groups]
devs = ["alice"]
[[auth.access]]
repositories = ["public/**"]
anonymous = true
actions = ["pull"]
[[auth.access]]
repositories = ["**"]
groups = ["devs"]
actions = ["pull", "push", "delete"]
[gc]
interval = "6h"
grace = "30m"
untagged = "delete"
[[quota]]
namespace = "team"
limit = "10GiB"
"#,
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().reload_interval.0, Duration::from_secs(10));
        assert_eq!(c.auth.access.len(), 2);
        assert_eq!(c.gc.untagged, UntaggedPolicy::Delete);
        assert_eq!(c.quotas[0].limit.0, 10 << 30);
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn mistakes_are_named() {
        let e = Config::parse("adr = \"x\"").unwrap_err();
        assert!(e.contains("adr"), "{e}");
        let e = Config::parse("[auth]\nmode = \"basic\"").unwrap_err();
        assert!(e.contains("htpasswd"), "{e}");
        let e = Config::parse("[gc]\ngrace = \"soon\"").unwrap_err();
        assert!(e.contains("soon"), "{e}");
        let e = Config::parse("[[quota]]\nlimit = 5").unwrap_err();
        assert!(e.contains("quota[0]"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn s3_section_defaults_and_mistakes() {
        let c = Config::parse(
            "[s3]\nbucket = \"reg\"\nendpoint = \"https://garage:3900\"\naccess_key_id = \"GK1\"\nsecret_access_key = \"hush\"\n",
        )
        .unwrap();
        let s3 = c.s3.unwrap();
        assert_eq!(s3.part_size.0, 8 << 20);
        assert_eq!((s3.prefix.as_str(), s3.path_style), ("", None));
        // the secret never reaches a log
        assert!(!format!("{s3:?}").contains("hush"));
        for (text, said) in [
            ("[s3]\nbucket = \"\"", "s3.bucket"),
            ("[s3]\nbucket = \"b\"\npart_size = \"1MiB\"", "part_size"),
            (
                "[s3]\nbucket = \"b\"\nendpoint = \"garage:3900\"",
                "s3.endpoint",
            ),
            ("[s3]\nbucket = \"b\"\nprefix = \"../x\"", "s3.prefix"),
            ("[s3]\nbucket = \"b\"\naccess_key_id = \"k\"", "go together"),
            ("[s3]\nbucket = \"b\"\nregoin = \"x\"", "regoin"),
            (
                "[s3]\nbucket = \"b\"\n[auth]\nmode = \"token\"\nhtpasswd = \"/h\"",
                "signing_key",
            ),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.contains(said), "{text}: {e}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(ByteSize::parse("4MiB"), Some(ByteSize(4 << 20)));
        assert_eq!(ByteSize::parse("1.5 GB"), Some(ByteSize(1_500_000_000)));
        assert_eq!(ByteSize::parse("12"), Some(ByteSize(12)));
        assert_eq!(ByteSize::parse("x"), None);
        assert_eq!(Dur::parse("90s"), Some(Dur(Duration::from_secs(90))));
        assert_eq!(Dur::parse("2d"), Some(Dur(Duration::from_secs(172800))));
        assert_eq!(Dur::parse("0"), Some(Dur(Duration::ZERO)));
        assert_eq!(Dur::parse("1y"), None);
    }
}
