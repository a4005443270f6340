//! Per-registry settings: `registries.toml` (format in docs/registries.md).
//!
//! ```toml
//! max_concurrent_downloads = 6      # layers fetched at once by one pull
//! max_concurrent_uploads = 5        # layers sent at once by one push
//!
//! [registry."docker.io"]
//! mirrors = ["mirror.internal:5000", "https://mirror.example.com/prefix"]
//!
//! [registry."registry.internal:5000"]
//! insecure = true                   # plain HTTP allowed, TLS certificates not verified
//! ca_file = "/etc/ssl/internal-ca.pem"
//! upload_chunk_size = 16777216      # PATCH blobs in pieces of at most 16 MiB
//! ```
//!
//! Files: `$STRATA_REGISTRIES_CONFIG` alone when set, else `/etc/strata/registries.toml`
//! then the user's `$XDG_CONFIG_HOME/strata/registries.toml` (default
//! `~/.config/strata/registries.toml`), the user's settings for a host replacing the
//! system's. Loopback registries (`localhost`, 127.0.0.0/8, `::1`) may use plain HTTP
//! without any setting, as with Docker; a host's `*.crt` files in `/etc/docker/certs.d/<host>/`
//! or `/etc/containers/certs.d/<host>/` are trusted for it, as Docker and Podman do.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::DistributionError;

/// Layers one pull downloads at once unless configured (containers/image's default).
pub const DEFAULT_DOWNLOADS: usize = 6;
/// Layers one push uploads at once unless configured (Docker's default).
pub const DEFAULT_UPLOADS: usize = 5;

const SYSTEM_FILE: &str = "/etc/strata/registries.toml";
const CERTS_DIRS: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
    #[serde(default)]
    registry: BTreeMap<String, HostShape>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostShape {
    #[serde(default)]
    mirrors: Vec<String>,
    insecure: Option<bool>,
    ca_file: Option<PathBuf>,
    upload_chunk_size: Option<u64>,
}

/// Smallest `upload_chunk_size` accepted.
const MIN_CHUNK: u64 = 64 << 10;

/// A mirror tried before a registry: where it is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]`.
    pub host: String,
    /// Forced scheme from the configured URL (`http://…` or `https://…`); else as the host's settings say.
    pub scheme: Option<Scheme>,
    /// Path before `/v2/` (`""` or `/prefix`).
    pub prefix: String,
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// The settings that apply to one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    pub mirrors: Vec<Mirror>,
    /// Plain HTTP allowed and TLS certificates not verified.
    pub insecure: bool,
    /// Extra CA certificates trusted for this host, besides the system's.
    pub ca_files: Vec<PathBuf>,
    /// Send blobs in PATCH requests of at most this many bytes (for proxies and registries
    /// that limit request sizes); one streamed request when None.
    pub upload_chunk_size: Option<u64>,
}

/// Registry settings for every host, plus transfer limits.
#[derive(Debug, Clone)]
pub struct RegistriesConfig {
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    hosts: BTreeMap<String, HostShape>,
    /// Where each host's settings came from, for error messages.
    origin: BTreeMap<String, PathBuf>,
    /// Directories searched for `<host>/*.crt` (Docker's certs.d).
    certs_dirs: Vec<PathBuf>,
}

impl Default for RegistriesConfig {
    fn default() -> Self {
        RegistriesConfig {
            max_concurrent_downloads: DEFAULT_DOWNLOADS,
            max_concurrent_uploads: DEFAULT_UPLOADS,
            hosts: BTreeMap::new(),
            origin: BTreeMap::new(),
            certs_dirs: CERTS_DIRS.iter().map(PathBuf::from).collect(),
        }
    }
}

/// `index.docker.io` and `registry-1.docker.io` are Docker Hub, spelled `docker.io`.
pub(crate) fn canonical_host(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    }
}

impl RegistriesConfig {
    /// The files named in the module docs; missing files are fine, broken ones are errors.
    pub fn load() -> Result<RegistriesConfig, DistributionError> {
        if let Some(path) = std::env::var_os("STRATA_REGISTRIES_CONFIG").filter(|p| !p.is_empty()) {
            return RegistriesConfig::load_files(&[PathBuf::from(path)]);
        }
        let user = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".config"),
        }
        .join("strata/registries.toml");
        RegistriesConfig::load_files(&[PathBuf::from(SYSTEM_FILE), user])
    }

    /// Reads `paths` in order (later hosts replace earlier ones); absent files are skipped.
    pub fn load_files(paths: &[PathBuf]) -> Result<RegistriesConfig, DistributionError> {
        let mut config = RegistriesConfig::default();
        for path in paths {
            match std::fs::read_to_string(path) {
                Ok(text) => config.merge(&text, path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(DistributionError::ConfigIo {
                        path: path.clone(),
                        source,
                    })
                }
            }
        }
        Ok(config)
    }

    /// Parses one file's text on top of what is there.
    pub fn merge(&mut self, text: &str, path: &Path) -> Result<(), DistributionError> {
        let bad = |reason: String| DistributionError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let file: FileShape = toml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        for (key, value) in [
            ("max_concurrent_downloads", file.max_concurrent_downloads),
            ("max_concurrent_uploads", file.max_concurrent_uploads),
        ] {
            if value == Some(0) || value.is_some_and(|v| v > 64) {
                return Err(bad(format!("{key} must be between 1 and 64")));
            }
        }
        if let Some(n) = file.max_concurrent_downloads {
            self.max_concurrent_downloads = n;
        }
        if let Some(n) = file.max_concurrent_uploads {
            self.max_concurrent_uploads = n;
        }
        for (host, settings) in file.registry {
            check_host(&host)
                .map_err(|_| bad(format!("[registry.{host:?}]: not a host[:port]")))?;
            if settings.upload_chunk_size.is_some_and(|c| c < MIN_CHUNK) {
                return Err(bad(format!(
                    "[registry.{host:?}]: upload_chunk_size must be at least {MIN_CHUNK} bytes"
                )));
            }
            for m in &settings.mirrors {
                parse_mirror(m)
                    .map_err(|reason| bad(format!("[registry.{host:?}] mirror {m:?}: {reason}")))?;
            }
            let host = canonical_host(&host).to_string();
            self.origin.insert(host.clone(), path.to_path_buf());
            self.hosts.insert(host, settings);
        }
        Ok(())
    }

    /// Only these directories are searched for `<host>/*.crt` (tests use an empty list).
    pub fn with_certs_dirs(mut self, dirs: Vec<PathBuf>) -> RegistriesConfig {
        self.certs_dirs = dirs;
        self
    }

    /// The settings for `host` (`docker.io`, `localhost:5000`): configured ones, loopback's
    /// plain-HTTP default, and certs.d CA files.
    pub fn host(&self, host: &str) -> HostSettings {
        let host = canonical_host(host);
        let shape = self.hosts.get(host).cloned().unwrap_or_default();
        let mut ca_files: Vec<PathBuf> = shape.ca_file.into_iter().collect();
        for dir in &self.certs_dirs {
            // Docker keys certs.d by host[:port]; a host name cannot climb out with '/'.
            if host.contains('/') || host.starts_with('.') {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(dir.join(host)) {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                    .collect();
                found.sort();
                ca_files.extend(found);
            }
        }
        HostSettings {
            mirrors: shape
                .mirrors
                .iter()
                .filter_map(|m| parse_mirror(m).ok())
                .collect(),
            insecure: shape.insecure.unwrap_or_else(|| is_loopback(host)),
            ca_files,
            upload_chunk_size: shape.upload_chunk_size,
        }
    }

    /// The file a host's settings came from, if any.
    pub fn origin(&self, host: &str) -> Option<&Path> {
        self.origin.get(canonical_host(host)).map(PathBuf::as_path)
    }
}

/// `localhost`, 127.0.0.0/8 or `::1`, with or without a port: Docker lets these use plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let name = strip_port(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` → `host`; `[::1]:5000` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn check_host(host: &str) -> Result<(), ()> {
    let ok = !host.is_empty()
        && !host.starts_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// `host[:port]`, or a URL `http(s)://host[:port][/prefix]`.
pub fn parse_mirror(text: &str) -> Result<Mirror, String> {
    let (scheme, rest) = if let Some(r) = text.strip_prefix("https://") {
        (Some(Scheme::Https), r)
    } else if let Some(r) = text.strip_prefix("http://") {
        (Some(Scheme::Http), r)
    } else if text.contains("://") {
        return Err("only http:// and https:// mirrors are supported".into());
    } else {
        (None, text)
    };
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (rest, ""),
    };
    check_host(host).map_err(|()| "expected host[:port] with an optional path".to_string())?;
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Err("the path must not contain . or .. components".into());
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    Ok(Mirror {
        host: host.to_string(),
        scheme,
        prefix,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_merge_and_hosts_get_defaults() {
        let mut c = RegistriesConfig::default().with_certs_dirs(Vec::new());
        c.merge(
            r#"
max_concurrent_downloads = 3
[registry."docker.io"]
mirrors = ["mirror.local:5000", "https://m.example/cache/"]
[registry."reg.internal"]
insecure = true
"#,
            Path::new("/etc/strata/registries.toml"),
        )
        .unwrap();
        c.merge(
            "[registry.\"reg.internal\"]\nca_file = \"/ca.pem\"\n",
            Path::new("user.toml"),
        )
        .unwrap();
        assert_eq!(c.max_concurrent_downloads, 3);
        assert_eq!(c.max_concurrent_uploads, DEFAULT_UPLOADS);
        let hub = c.host("index.docker.io");
        assert_eq!(
            hub.mirrors,
            vec![
                Mirror {
                    host: "mirror.local:5000".into(),
                    scheme: None,
                    prefix: String::new()
                },
                Mirror {
                    host: "m.example".into(),
                    scheme: Some(Scheme::Https),
                    prefix: "/cache".into()
                }
            ]
        );
        assert!(!hub.insecure);
        // The user's file replaced the system's entry for the host.
        let internal = c.host("reg.internal");
        assert!(!internal.insecure);
        assert_eq!(internal.ca_files, vec![PathBuf::from("/ca.pem")]);
        assert_eq!(c.origin("reg.internal"), Some(Path::new("user.toml")));
        assert!(c.host("localhost:5000").insecure);
        assert!(c.host("127.0.0.7:80").insecure);
        assert!(c.host("[::1]:5000").insecure);
        assert!(!c.host("example.com").insecure);
    }

    #[test]
    fn bad_files_are_refused_with_the_file_named() {
        for text in [
            "max_concurrent_downloads = 0",
            "unknown_key = 1",
            "[registry.\"x\"]\nmirrors = [\"ftp://m\"]",
            "[registry.\"x\"]\nmirrors = [\"m/../etc\"]",
            "[registry.\"a/b\"]\ninsecure = true",
            "[registry.\"x\"]\nupload_chunk_size = 10",
            "not toml",
        ] {
            let err = RegistriesConfig::default()
                .merge(text, Path::new("/x.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("\"/x.toml\""), "{text}: {err}");
        }
    }

    #[test]
    fn certs_d_files_are_trusted_for_their_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("reg:5000")).unwrap();
        std::fs::write(dir.path().join("reg:5000/ca.crt"), "x").unwrap();
        std::fs::write(dir.path().join("reg:5000/client.key"), "x").unwrap();
        let c = RegistriesConfig::default().with_certs_dirs(vec![dir.path().to_path_buf()]);
        assert_eq!(
            c.host("reg:5000").ca_files,
            vec![dir.path().join("reg:5000/ca.crt")]
        );
        assert!(c.host("other").ca_files.is_empty());
    }
}
