//! Harness of the registry tests: a `strata registry serve` process on a free loopback port
//! with its own storage, and a small HTTP client that never treats a status as an error.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::Digest as _;

pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&sha2::Sha256::digest(data)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A running server. Dropping it kills the process.
pub(crate) struct Served {
    child: Option<Child>,
    pub(crate) addr: String,
    pub(crate) dir: tempfile::TempDir,
    config: String,
    log: PathBuf,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: ureq::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The spec error code of an error body.
    pub(crate) fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

impl Served {
    /// Starts a server with `config` (TOML; `storage` and `addr` are added).
    pub(crate) fn start(config: &str) -> Served {
        let dir = tempfile::Builder::new()
            .prefix("strata-registry-")
            .tempdir()
            .expect("temp dir");
        let mut s = Served {
            child: None,
            addr: String::new(),
            log: dir.path().join("server.log"),
            dir,
            config: config.to_string(),
        };
        s.spawn();
        s
    }

    pub(crate) fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn spawn(&mut self) {
        let text = format!(
            "addr = \"127.0.0.1:0\"\nstorage = \"{}\"\n{}",
            self.storage().display(),
            self.config
        );
        std::fs::write(self.config_path(), text).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["registry", "serve", "--log-format", "json", "--config"])
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata registry serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("log file");
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                if !sent {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        if v["message"] == "registry listening" {
                            let _ = tx.send(Ok(v["addr"].as_str().unwrap_or("").to_string()));
                            sent = true;
                        }
                    } else {
                        let _ = tx.send(Err(line));
                        sent = true;
                    }
                }
            }
            if !sent {
                let _ = tx.send(Err("server exited".into()));
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(addr)) => self.addr = addr,
            other => {
                let _ = child.kill();
                panic!(
                    "registry did not start: {other:?}\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        }
        self.child = Some(child);
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// kill -9.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().expect("wait")
    }

    /// Starts again on the same storage (on a new port).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Any request; `headers` as (name, value).
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.try_call(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Any request; connection failures are errors, not panics.
    pub(crate) fn try_call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ureq::Error> {
        call_url(&self.url(path), method, headers, body)
    }

    /// SIGKILL without waiting (other threads may be using the server).
    pub(crate) fn kill_now(&self) {
        unsafe { libc::kill(self.pid() as i32, libc::SIGKILL) };
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], b"")
    }

    /// Pushes a blob in one POST; asserts 201.
    pub(crate) fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let r = self.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[],
            data,
        );
        assert_eq!(r.status, 201, "push blob: {}", r.text());
        d
    }

    /// Pushes a manifest; returns the reply.
    pub(crate) fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Reply {
        self.call(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            body,
        )
    }

    /// Pushes a one-layer OCI image (config + layer + manifest) tagged `tag`; returns the
    /// manifest's bytes and digest.
    pub(crate) fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (Vec<u8>, String) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            sha256(layer)
        );
        let c = self.push_blob(repo, config.as_bytes());
        let l = self.push_blob(repo, layer);
        let m = oci_manifest(&c, config.len(), &[(&l, layer.len())]);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, m.as_bytes());
        assert_eq!(r.status, 201, "push manifest: {}", r.text());
        let d = sha256(m.as_bytes());
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        (m.into_bytes(), d)
    }
}

/// A request to a full URL.
pub(crate) fn call_url(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, ureq::Error> {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body.to_vec()).expect("request");
    let mut resp = agent().run(req)?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        resp.body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()?
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An OCI manifest text.
pub(crate) fn oci_manifest(config: &str, config_size: usize, layers: &[(&str, usize)]) -> String {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, n)| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":{n}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{}]}}"#,
        layers.join(",")
    )
}

/// Every blob file under a storage is named by the sha256 of its bytes.
pub(crate) fn assert_blobs_verify(storage: &Path) {
    let root = storage.join("blobs/sha256");
    let Ok(shards) = std::fs::read_dir(&root) else {
        return;
    };
    for shard in shards {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let f = f.unwrap();
            let mut data = Vec::new();
            std::fs::File::open(f.path())
                .unwrap()
                .read_to_end(&mut data)
                .unwrap();
            assert_eq!(
                sha256(&data),
                format!("sha256:{}", f.file_name().to_string_lossy()),
                "blob {} does not match its name",
                f.path().display()
            );
        }
    }
}

/// Pushes `data` as a blob through a chunked session (`chunk` bytes per PATCH) at `base`
/// (`http://host:port`); any failure is an `Err` (the server may be killed meanwhile).
pub(crate) fn push_blob_chunked(
    base: &str,
    repo: &str,
    data: &[u8],
    chunk: usize,
) -> Result<String, String> {
    let d = sha256(data);
    let r = call_url(
        &format!("{base}/v2/{repo}/blobs/uploads/"),
        "POST",
        &[],
        b"",
    )
    .map_err(|e| e.to_string())?;
    if r.status != 202 {
        return Err(format!("start: {} {}", r.status, r.text()));
    }
    let loc = r.header("location").unwrap_or("").to_string();
    let mut offset = 0;
    for piece in data.chunks(chunk.max(1)) {
        let range = format!("{}-{}", offset, offset + piece.len() - 1);
        let r = call_url(
            &format!("{base}{loc}"),
            "PATCH",
            &[("content-range", &range)],
            piece,
        )
        .map_err(|e| e.to_string())?;
        if r.status != 202 {
            return Err(format!("patch: {} {}", r.status, r.text()));
        }
        offset += piece.len();
    }
    let r =
        call_url(&format!("{base}{loc}?digest={d}"), "PUT", &[], b"").map_err(|e| e.to_string())?;
    if r.status != 201 {
        return Err(format!("put: {} {}", r.status, r.text()));
    }
    Ok(d)
}

/// Pushes a one-layer image (layer chunked) at `base`; returns the manifest bytes.
pub(crate) fn push_image_at(
    base: &str,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> Result<Vec<u8>, String> {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(layer)
    );
    let c = push_blob_chunked(base, repo, config.as_bytes(), 1 << 20)?;
    let l = push_blob_chunked(base, repo, layer, 64 << 10)?;
    let m = oci_manifest(&c, config.len(), &[(&l, layer.len())]);
    let r = call_url(
        &format!("{base}/v2/{repo}/manifests/{tag}"),
        "PUT",
        &[("content-type", OCI_MANIFEST)],
        m.as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    if r.status != 201 {
        return Err(format!("manifest: {} {}", r.status, r.text()));
    }
    Ok(m.into_bytes())
}

/// A layer of `len` bytes that no other call returns.
pub(crate) fn unique_layer(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every tag of every repository names a manifest whose blobs are all there and verify.
pub(crate) fn assert_consistent(s: &Served) {
    assert_blobs_verify(&s.storage());
    let catalog = s.get("/v2/_catalog").json();
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags = s.get(&format!("/v2/{repo}/tags/list")).json();
        for tag in tags["tags"].as_array().unwrap() {
            let tag = tag.as_str().unwrap();
            let m = s.get(&format!("/v2/{repo}/manifests/{tag}"));
            assert_eq!(m.status, 200, "{repo}:{tag} names a missing manifest");
            assert_eq!(m.header("docker-content-digest").unwrap(), sha256(&m.body));
            assert_manifest_complete(s, repo, &m.json(), tag);
        }
    }
}

/// A manifest's blobs (or an index's child manifests, recursively) are all there and verify.
pub(crate) fn assert_manifest_complete(s: &Served, repo: &str, v: &serde_json::Value, what: &str) {
    if let Some(children) = v["manifests"].as_array() {
        for c in children {
            let d = c["digest"].as_str().unwrap();
            let m = s.get(&format!("/v2/{repo}/manifests/{d}"));
            assert_eq!(m.status, 200, "{repo}:{what} lost child manifest {d}");
            assert_eq!(sha256(&m.body), d);
            assert_manifest_complete(s, repo, &m.json(), what);
        }
        return;
    }
    let mut blobs = vec![v["config"]["digest"].as_str().unwrap().to_string()];
    for l in v["layers"].as_array().unwrap() {
        blobs.push(l["digest"].as_str().unwrap().to_string());
    }
    for b in blobs {
        let r = s.get(&format!("/v2/{repo}/blobs/{b}"));
        assert_eq!(r.status, 200, "{repo}:{what} lost blob {b}");
        assert_eq!(sha256(&r.body), b);
    }
}

/// Adds `user` with password `<user>-pw` to an htpasswd file through `strata registry htpasswd`.
pub(crate) fn add_user(file: &Path, user: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["registry", "htpasswd", "--cost", "4", "-f"])
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("strata registry htpasswd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{user}-pw\n").as_bytes())
        .expect("write the password");
    assert!(child.wait().expect("wait").success());
}

/// `strata registry gc` with the server's configuration.
pub(crate) fn gc_cli(s: &Served, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["registry", "gc", "--config"])
        .arg(s.config_path())
        .args(extra)
        .output()
        .expect("run strata registry gc")
}

/// Runs `strata registry gc` until it is not refused for a concurrent collection.
pub(crate) fn gc_until_done(s: &Served, extra: &[&str]) -> String {
    for _ in 0..200 {
        let out = gc_cli(s, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            err.contains("another garbage collection"),
            "gc failed: {err}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gc never got the lease");
}

/// What each `(repository, tag)` must name at the end of a test.
pub(crate) type Expected = std::sync::Mutex<std::collections::BTreeMap<(String, String), Vec<u8>>>;

/// One push of a client racing the collector: a one-layer image as `repo:latest` (uploaded
/// again when a collection took a blob between its upload and the manifest push, as Docker
/// does on a retry; `retries` counts those), and when `keep_as` is given under that tag too.
/// Records what the tags must name in `expected`.
pub(crate) fn push_during_gc(
    base: &str,
    repo: &str,
    layer: &[u8],
    keep_as: Option<String>,
    expected: &Expected,
    retries: &std::sync::Mutex<u32>,
) {
    let mut attempt = 0;
    let m = loop {
        match push_image_at(base, repo, "latest", layer) {
            Ok(m) => break m,
            Err(e) => {
                assert!(e.contains("MANIFEST_BLOB_UNKNOWN"), "push failed: {e}");
                *retries.lock().unwrap() += 1;
                attempt += 1;
                assert!(attempt < 20, "push never got through: {e}");
            }
        }
    };
    expected
        .lock()
        .unwrap()
        .insert((repo.to_string(), "latest".into()), m.clone());
    if let Some(tag) = keep_as {
        let r = call_url(
            &format!("{base}/v2/{repo}/manifests/{tag}"),
            "PUT",
            &[("content-type", OCI_MANIFEST)],
            &m,
        )
        .unwrap();
        // the manifest was just pushed, so it is young and cannot be gone
        assert_eq!(r.status, 201, "{}", r.text());
        expected.lock().unwrap().insert((repo.to_string(), tag), m);
    }
}

/// Every expected tag names its manifest through `s`, with its config and layer there and
/// verifying; returns the digests the tags need (manifests and blobs).
pub(crate) fn assert_expected(
    s: &Served,
    expected: &std::collections::BTreeMap<(String, String), Vec<u8>>,
) -> std::collections::BTreeSet<String> {
    let mut needed = std::collections::BTreeSet::new();
    for ((repo, tag), m) in expected {
        let r = s.get(&format!("/v2/{repo}/manifests/{tag}"));
        assert_eq!(&r.body, m, "{repo}:{tag} changed or vanished");
        needed.insert(sha256(m));
        let v: serde_json::Value = serde_json::from_slice(m).unwrap();
        let mut blobs = vec![v["config"]["digest"].as_str().unwrap().to_string()];
        blobs.push(v["layers"][0]["digest"].as_str().unwrap().to_string());
        for b in blobs {
            let r = s.get(&format!("/v2/{repo}/blobs/{b}"));
            assert_eq!(r.status, 200, "{repo}:{tag} lost {b}");
            assert_eq!(sha256(&r.body), b);
            needed.insert(b);
        }
    }
    needed
}

/// How many collections the server ran (`strata_registry_gc_runs_total`).
pub(crate) fn gc_runs(s: &Served) -> u64 {
    s.get("/metrics")
        .text()
        .lines()
        .find(|l| l.starts_with("strata_registry_gc_runs_total "))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
