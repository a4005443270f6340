//! `ADD <http(s) URL>`: downloading a remote file as BuildKit does. The file is named after
//! the URL path's last segment (`__unnamed__` when there is none), gets mode 0600 (unless
//! `--chmod`) and the server's Last-Modified as mtime (0 without one, as BuildKit), and is
//! never extracted.
//!
//! Cache: like BuildKit, a URL is fetched again on every build (no conditional request yet);
//! the step's cache key holds the content's digest, so unchanged content is a cache hit and
//! a changed one a miss. `--checksum=sha256:…` is verified before anything is written.
//! HTTPS uses rustls with the system's CA store (the platform verifier reads
//! `/etc/ssl/certs`), so an intercepting proxy's CA installed there is trusted.

use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use strata_oci::{Digest, Sha256Hasher};

use strata_context::{hash_selection, StatCache};

use crate::builder::{Builder, Session};
use crate::op::{is_http, CopyOp, PlannedStep};
use crate::temp_area::TempArea;
use crate::BuildError;

/// A downloaded URL in the build's temp area.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) path: PathBuf,
    /// The name the file gets in the image.
    pub(crate) name: String,
    /// Last-Modified, in seconds since the epoch.
    pub(crate) mtime: Option<i64>,
    pub(crate) digest: Digest,
}

/// Downloads `url` once per build (later calls reuse the file) and checks `checksum`.
pub(crate) fn fetch(
    area: &TempArea,
    url: &str,
    checksum: Option<&str>,
    line: usize,
) -> Result<Fetched, BuildError> {
    let name = file_name(url);
    let dir = area
        .path()
        .join(format!("url-{}", Digest::sha256_of(url.as_bytes()).hex()));
    let path = dir.join("data");
    let meta = dir.join("meta");
    if let (Ok(bytes), true) = (fs::read(&meta), path.exists()) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut parts = text.splitn(2, '\n');
        let digest = parts.next().and_then(|d| Digest::parse(d).ok());
        let mtime = parts.next().and_then(|m| m.trim().parse().ok());
        if let Some(digest) = digest {
            verify(url, &digest, checksum, line)?;
            return Ok(Fetched {
                path,
                name,
                mtime,
                digest,
            });
        }
    }
    fs::create_dir_all(&dir).map_err(BuildError::io("creating", &dir))?;
    let failed = |m: String| BuildError::at(line, format!("ADD {url}: {m}"));
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .timeout_connect(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("server answered {status}")));
    }
    let mtime = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.timestamp());
    let mut body = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader();
    // Written aside and renamed: stages fetching the same URL in parallel never see half a file.
    let mut file =
        tempfile::NamedTempFile::new_in(&dir).map_err(BuildError::io("creating in", &dir))?;
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(format!("reading the response: {e}"))),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(BuildError::io("writing", &path))?;
    }
    let digest = hasher.finish();
    verify(url, &digest, checksum, line)?;
    let record = format!(
        "{digest}\n{}",
        mtime.map_or(String::new(), |m| m.to_string())
    );
    file.persist(&path)
        .map_err(|e| BuildError::io("writing", &path)(e.error))?;
    let mut meta_file =
        tempfile::NamedTempFile::new_in(&dir).map_err(BuildError::io("creating in", &dir))?;
    meta_file
        .write_all(record.as_bytes())
        .map_err(BuildError::io("writing", &meta))?;
    meta_file
        .persist(&meta)
        .map_err(|e| BuildError::io("writing", &meta)(e.error))?;
    Ok(Fetched {
        path,
        name,
        mtime,
        digest,
    })
}

fn verify(url: &str, got: &Digest, checksum: Option<&str>, line: usize) -> Result<(), BuildError> {
    match checksum {
        Some(want) if want != got.as_str() => Err(BuildError::at(
            line,
            format!("ADD {url}: checksum mismatch: expected {want}, downloaded content is {got}"),
        )),
        _ => Ok(()),
    }
}

/// BuildKit's name for a downloaded file: the URL path's base name (Go's `path.Base`).
pub(crate) fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    match path.rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

impl Builder<'_> {
    /// The cache-key content of an ADD with URL sources: each URL's downloaded digest, and
    /// the selected context files of any local sources.
    pub(crate) fn url_content(
        &self,
        s: &Session<'_>,
        step: &PlannedStep,
        c: &CopyOp,
    ) -> Result<Digest, BuildError> {
        let mut h = Sha256Hasher::new();
        let locals: Vec<&str> = c
            .sources
            .iter()
            .filter(|p| !is_http(p))
            .map(String::as_str)
            .collect();
        for url in c.sources.iter().filter(|p| is_http(p)) {
            let f = fetch(&s.area, url, c.checksum.as_deref(), step.line)?;
            for part in [url.as_str(), f.digest.as_str(), &format!("{:?}", f.mtime)] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
        if !locals.is_empty() {
            let mut cache = StatCache::in_memory();
            let d = hash_selection(
                &s.context,
                &locals,
                &mut cache,
                s.opts.source_date_epoch.is_none(),
            )
            .map_err(|source| BuildError::Context {
                line: step.line,
                source,
            })?;
            h.update(d.as_str().as_bytes());
        }
        Ok(h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        for (url, want) in [
            ("https://example.com/a/b.tar.gz", "b.tar.gz"),
            ("http://example.com/a/b?x=1#f", "b"),
            ("http://example.com", "__unnamed__"),
            ("http://example.com/", "__unnamed__"),
            ("http://example.com/dir/", "dir"),
        ] {
            assert_eq!(file_name(url), want, "{url}");
        }
    }
}
