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
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body.to_vec()).expect("request");
        let mut resp = agent().run(req).expect("http request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .expect("read body")
        };
        Reply {
            status,
            headers,
            body,
        }
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
