//! htpasswd files with bcrypt hashes (`user:$2y$…`), as Distribution and Apache's
//! `htpasswd -B` write them. Other hash kinds are refused, never compared.
//!
//! bcrypt is slow on purpose (tens of milliseconds per check), so a successful check is
//! remembered for a few minutes, keyed by user, a sha256 of the password and the stored
//! hash: a changed password or a reloaded file invalidates it. Checks run on the blocking pool.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use strata_oci::Digest;

use crate::error::RegistryError;

/// How long a verified password is remembered.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// How often the file's modification time is looked at.
const RELOAD_CHECK: Duration = Duration::from_secs(2);
/// bcrypt cost of hashes this module writes (Distribution's and Apache's default is 5–10;
/// 10 takes ~60 ms here).
pub const DEFAULT_COST: u32 = 10;

struct Loaded {
    users: HashMap<String, String>,
    modified: Option<SystemTime>,
    checked: Instant,
}

pub(crate) struct Htpasswd {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    /// (user, sha256 of the password, stored hash) → when it was verified.
    verified: Mutex<HashMap<(String, Digest, String), Instant>>,
}

/// A hash no password matches in practice, checked for unknown users.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut salt = [0u8; 32];
        let _ = getrandom::fill(&mut salt);
        bcrypt::hash(salt, DEFAULT_COST).unwrap_or_default()
    })
}

/// Parses htpasswd text; lines that are blank, comments or not bcrypt are skipped (and named
/// in the returned warnings).
fn parse(text: &str) -> (HashMap<String, String>, Vec<String>) {
    let mut users = HashMap::new();
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, hash))
                if !user.is_empty()
                    && (hash.starts_with("$2y$")
                        || hash.starts_with("$2a$")
                        || hash.starts_with("$2b$")) =>
            {
                users.insert(user.to_string(), hash.to_string());
            }
            _ => warnings.push(format!("line {}: not user:bcrypt-hash, ignored", i + 1)),
        }
    }
    (users, warnings)
}

fn read(path: &Path) -> Result<(HashMap<String, String>, Option<SystemTime>), RegistryError> {
    let err = |message: String| RegistryError::Htpasswd {
        path: path.to_path_buf(),
        message,
    };
    let meta = fs::metadata(path).map_err(|e| err(e.to_string()))?;
    let text = fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let (users, warnings) = parse(&text);
    for w in warnings {
        tracing::warn!(file = %path.display(), "{w}");
    }
    Ok((users, meta.modified().ok()))
}

impl Htpasswd {
    pub(crate) fn open(path: &Path) -> Result<Htpasswd, RegistryError> {
        let (users, modified) = read(path)?;
        Ok(Htpasswd {
            path: path.to_path_buf(),
            loaded: Mutex::new(Loaded {
                users,
                modified,
                checked: Instant::now(),
            }),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The stored hash of a user, re-reading the file when it changed.
    fn hash_of(&self, user: &str) -> Option<String> {
        let mut l = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if l.checked.elapsed() >= RELOAD_CHECK {
            l.checked = Instant::now();
            let now = fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if now != l.modified {
                match read(&self.path) {
                    Ok((users, modified)) => {
                        tracing::info!(file = %self.path.display(), users = users.len(), "htpasswd reloaded");
                        l.users = users;
                        l.modified = modified;
                    }
                    Err(e) => tracing::error!(error = %e, "htpasswd not reloaded"),
                }
            }
        }
        l.users.get(user).cloned()
    }

    /// Whether `password` is `user`'s.
    pub(crate) async fn verify(self: &Arc<Self>, user: &str, password: &str) -> bool {
        let Some(hash) = self.hash_of(user) else {
            // As slow as a real check, so response times do not tell which users exist.
            let password = password.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                bcrypt::verify(password, unknown_user_hash()).ok()
            })
            .await;
            return false;
        };
        let key = (
            user.to_string(),
            Digest::sha256_of(password.as_bytes()),
            hash.clone(),
        );
        {
            let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key) {
                Some(t) if t.elapsed() < CACHE_TTL => return true,
                Some(_) => {
                    cache.remove(&key);
                }
                None => {}
            }
        }
        let password = password.to_string();
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if ok {
            let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() > 10_000 {
                cache.retain(|_, t| t.elapsed() < CACHE_TTL);
            }
            cache.insert(key, Instant::now());
        }
        ok
    }
}

/// Adds or replaces a user in an htpasswd file (created 0600 when missing), atomically.
pub fn set_password(
    path: &Path,
    user: &str,
    password: &str,
    cost: u32,
) -> Result<(), RegistryError> {
    let err = |message: String| RegistryError::Htpasswd {
        path: path.to_path_buf(),
        message,
    };
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err(err(format!("invalid user name {user:?}")));
    }
    if password.is_empty() {
        return Err(err("empty password".into()));
    }
    let hash = bcrypt::hash(password, cost).map_err(|e| err(e.to_string()))?;
    let old = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut out = String::new();
    let mut replaced = false;
    for line in old.lines() {
        if line.split_once(':').is_some_and(|(u, _)| u == user) {
            if !replaced {
                out.push_str(&format!("{user}:{hash}\n"));
                replaced = true;
            }
        } else if !line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("htpasswd"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        err(e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bcrypt_lines_count() {
        let (users, warnings) = parse("# c\nalice:$2y$05$abc\nbob:{SHA}xyz\n\ncarol:$apr1$x\n");
        assert_eq!(users.len(), 1);
        assert!(users.contains_key("alice"));
        assert_eq!(warnings.len(), 2);
    }

    #[tokio::test]
    async fn set_then_verify_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        set_password(&path, "alice", "s3cret", 4).unwrap();
        set_password(&path, "bob", "other", 4).unwrap();
        let h = Arc::new(Htpasswd::open(&path).unwrap());
        assert!(h.verify("alice", "s3cret").await);
        assert!(h.verify("alice", "s3cret").await); // cached
        assert!(!h.verify("alice", "wrong").await);
        assert!(!h.verify("nobody", "s3cret").await);
        set_password(&path, "alice", "new", 4).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let h = Arc::new(Htpasswd::open(&path).unwrap());
        assert!(!h.verify("alice", "s3cret").await);
        assert!(h.verify("alice", "new").await);
        assert!(set_password(&path, "a:b", "x", 4).is_err());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
