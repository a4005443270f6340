//! Real servers for the registry tests: Debian's `docker-registry` (CNCF Distribution) on a
//! free loopback port, with no auth, htpasswd Basic auth or token auth (a small token
//! issuer here signs the JWTs with an openssl key the registry trusts), a counting and
//! throttling TCP proxy, a tiny HTTP server for hostile answers, and OCI layouts that
//! `skopeo` pushes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use strata_oci::{media_type, to_canonical_json, Descriptor, Digest, Index, Manifest, Platform};

/// Fails with an actionable message when the reference tools are missing.
pub(crate) fn require_tools() {
    for tool in ["docker-registry", "skopeo", "openssl"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the registry tests need {tool}: run ./scripts/test, which installs docker-registry and skopeo"
        );
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// How the registry checks who is asking.
pub(crate) enum Auth {
    None,
    /// htpasswd Basic auth with one user.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from a [`TokenIssuer`].
    Token(Arc<TokenIssuer>),
}

/// A `docker-registry serve` process; killed and reaped when dropped.
pub(crate) struct Registry {
    child: Child,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
}

/// A private CA and a server certificate it signed for 127.0.0.1, in `dir`:
/// `(ca, (server cert, server key))`.
pub(crate) fn private_ca_cert(dir: &Path) -> (PathBuf, (PathBuf, PathBuf)) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=strata-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (p("ca.pem"), (p("server.pem"), p("server.key")))
}

impl Registry {
    pub(crate) fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, None)
    }

    /// With `tls` (certificate, key), the registry serves HTTPS only.
    pub(crate) fn start_with(auth: Auth, tls: Option<(PathBuf, PathBuf)>) -> Registry {
        require_tools();
        let dir = tempfile::Builder::new()
            .prefix("strata-registry-")
            .tempdir()
            .expect("registry dir");
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let hash = bcrypt::hash(password, 4).expect("bcrypt");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token(issuer) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                issuer.realm(),
                TokenIssuer::SERVICE,
                TokenIssuer::ISSUER,
                issuer.cert.display()
            ),
        };
        let tls_yaml = match &tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_yaml}{auth_yaml}",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry { child, port, dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed request of the tiny HTTP server.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query.
    pub(crate) target: String,
    pub(crate) headers: BTreeMap<String, String>,
    /// The body as far as it arrived (all of it unless the client went away).
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub(crate) fn query(&self, name: &str) -> Vec<String> {
        let q = self.target.split_once('?').map_or("", |(_, q)| q);
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the tiny server answers.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Content-Length to announce (more than `body` to send a truncated answer).
    pub(crate) declared: Option<u64>,
}

impl Response {
    pub(crate) fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            declared: None,
        }
    }

    pub(crate) fn header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub(crate) fn body(mut self, b: impl Into<Vec<u8>>) -> Response {
        self.body = b.into();
        self
    }

    pub(crate) fn json(self, b: impl Into<Vec<u8>>) -> Response {
        self.header("content-type", "application/json").body(b)
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A tiny threaded HTTP/1.1 server (one request per connection).
pub(crate) struct HttpServer {
    pub(crate) port: u16,
    stop: Arc<AtomicBool>,
    pub(crate) hits: Arc<AtomicUsize>,
}

impl HttpServer {
    pub(crate) fn start(
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, h) = (stop.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                h.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || serve_one(conn, &*handler));
            }
        });
        HttpServer { port, stop, hits }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(conn: TcpStream, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        read_chunked(&mut reader, &mut body);
    } else if let Some(len) = headers
        .get("content-length")
        .and_then(|l| l.parse::<u64>().ok())
    {
        let _ = (&mut reader).take(len).read_to_end(&mut body);
    }
    let req = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body,
    };
    let resp = handler(&req);
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let declared = resp.declared.unwrap_or(resp.body.len() as u64);
    head.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
    let _ = out.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = out.write_all(&resp.body);
    }
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Both);
}

/// Decodes a chunked body into `out`, keeping what arrived if the client goes away.
fn read_chunked(reader: &mut impl BufRead, out: &mut Vec<u8>) {
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
            return;
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .unwrap_or(0);
        if size == 0 {
            let mut trailer = String::new();
            let _ = reader.read_line(&mut trailer);
            return;
        }
        let before = out.len();
        let _ = reader.take(size as u64).read_to_end(out);
        if out.len() - before < size {
            return;
        }
        let mut crlf = String::new();
        let _ = reader.read_line(&mut crlf);
    }
}

/// A minimal registry that keeps what an interrupted upload sent and reports it on the
/// session's status, as the OCI distribution spec's resumable pushes expect (Distribution
/// 2.8 instead cancels such a session). Blobs, uploads and manifests live in memory.
pub(crate) fn resumable_registry() -> HttpServer {
    #[derive(Default)]
    struct State {
        uploads: BTreeMap<String, Vec<u8>>,
        blobs: BTreeMap<String, Vec<u8>>,
        manifests: BTreeMap<String, (String, Vec<u8>)>,
        next: u64,
    }
    let state = std::sync::Mutex::new(State::default());
    HttpServer::start(move |req| {
        let mut st = state.lock().unwrap();
        let path = req.path().to_string();
        if path == "/v2/" {
            return Response::new(200).json("{}");
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Response::new(404);
        };
        let range = |len: usize| format!("0-{}", len.saturating_sub(1));
        if let Some(idx) = rest.rfind("/blobs/uploads") {
            let name = &rest[..idx];
            let id = rest[idx + "/blobs/uploads".len()..]
                .trim_matches('/')
                .to_string();
            if req.method == "POST" {
                st.next += 1;
                let id = format!("u{}", st.next);
                st.uploads.insert(id.clone(), Vec::new());
                return Response::new(202)
                    .header("location", &format!("/v2/{name}/blobs/uploads/{id}"))
                    .header("range", "0-0");
            }
            let Some(data) = st.uploads.get_mut(&id) else {
                return Response::new(404)
                    .json(r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"unknown"}]}"#);
            };
            match req.method.as_str() {
                "GET" => {
                    let len = data.len();
                    return Response::new(204).header("range", &range(len));
                }
                "PATCH" => {
                    data.extend_from_slice(&req.body);
                    let len = data.len();
                    return Response::new(202)
                        .header("location", &format!("/v2/{name}/blobs/uploads/{id}"))
                        .header("range", &range(len));
                }
                "PUT" => {
                    data.extend_from_slice(&req.body);
                    let want = req.query("digest").pop().unwrap_or_default();
                    let got = Digest::sha256_of(data).to_string();
                    let data = st.uploads.remove(&id).unwrap_or_default();
                    if got != want {
                        return Response::new(400).json(r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}"#);
                    }
                    st.blobs.insert(got.clone(), data);
                    return Response::new(201).header("docker-content-digest", &got);
                }
                _ => return Response::new(405),
            }
        }
        if let Some(idx) = rest.rfind("/blobs/") {
            let digest = &rest[idx + "/blobs/".len()..];
            return match st.blobs.get(digest) {
                Some(b) => Response::new(200).body(b.clone()),
                None => Response::new(404)
                    .json(r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}"#),
            };
        }
        if let Some(idx) = rest.rfind("/manifests/") {
            let name = &rest[..idx];
            let reference = &rest[idx + "/manifests/".len()..];
            if req.method == "PUT" {
                let digest = Digest::sha256_of(&req.body).to_string();
                let media = req.headers.get("content-type").cloned().unwrap_or_default();
                st.manifests.insert(
                    format!("{name}:{reference}"),
                    (media.clone(), req.body.clone()),
                );
                st.manifests
                    .insert(format!("{name}:{digest}"), (media, req.body.clone()));
                return Response::new(201).header("docker-content-digest", &digest);
            }
            return match st.manifests.get(&format!("{name}:{reference}")) {
                Some((media, bytes)) => Response::new(200)
                    .header("content-type", media)
                    .header(
                        "docker-content-digest",
                        &Digest::sha256_of(bytes).to_string(),
                    )
                    .body(bytes.clone()),
                None => Response::new(404)
                    .json(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#),
            };
        }
        Response::new(404)
    })
}

/// Signs registry tokens (RS256 JWTs with the issuer's certificate in `x5c`) for one user,
/// granting what is asked to that user and nothing to anyone else.
pub(crate) struct TokenIssuer {
    server: Option<HttpServer>,
    pub(crate) cert: PathBuf,
    key: PathBuf,
    x5c: String,
    _dir: tempfile::TempDir,
}

impl TokenIssuer {
    pub(crate) const SERVICE: &'static str = "strata-test-registry";
    pub(crate) const ISSUER: &'static str = "strata-test-issuer";

    pub(crate) fn start(user: &str, password: &str) -> Arc<TokenIssuer> {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null()));
        ok(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-new",
                "-days",
                "2",
                "-subj",
                "/CN=strata-test-issuer",
                "-key",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let mut issuer = TokenIssuer {
            server: None,
            cert,
            key,
            x5c,
            _dir: dir,
        };
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let signer = SignerParts {
            key: issuer.key.clone(),
            x5c: issuer.x5c.clone(),
        };
        let user = user.to_string();
        issuer.server = Some(HttpServer::start(move |req| {
            let auth = req.headers.get("authorization");
            let granted = match auth {
                Some(a) if *a == expected => true,
                Some(_) => {
                    return Response::new(401)
                        .json(r#"{"details":"incorrect username or password"}"#)
                }
                None => false,
            };
            let mut access = Vec::new();
            if granted {
                for scope in req.query("scope") {
                    let mut parts = scope.splitn(3, ':');
                    let (Some(kind), Some(name), Some(actions)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    access.push(serde_json::json!({
                        "type": kind, "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    }));
                }
            }
            let token = signer.sign(&user, access);
            Response::new(200).json(
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                    .to_string(),
            )
        }));
        Arc::new(issuer)
    }

    pub(crate) fn realm(&self) -> String {
        format!(
            "http://127.0.0.1:{}/token",
            self.server.as_ref().map_or(0, |s| s.port)
        )
    }

    /// Token requests served so far.
    pub(crate) fn requests(&self) -> usize {
        self.server
            .as_ref()
            .map_or(0, |s| s.hits.load(Ordering::Relaxed))
    }
}

struct SignerParts {
    key: PathBuf,
    x5c: String,
}

impl SignerParts {
    fn sign(&self, user: &str, access: Vec<serde_json::Value>) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": TokenIssuer::ISSUER, "sub": user, "aud": TokenIssuer::SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", rand_u64()), "access": access,
        });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let sig = child.wait_with_output().unwrap().stdout;
        format!("{input}.{}", b64(&sig))
    }
}

fn rand_u64() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ std::process::id() as u64
}

/// A TCP proxy to `upstream` counting the bytes each way, optionally slowed down to
/// `rate` bytes per second per connection.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    pub(crate) down: Arc<AtomicU64>,
    pub(crate) up: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub(crate) fn start(upstream: u16, rate: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicU64::new(0));
        let up = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, u, s) = (down.clone(), up.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (d, u) = (d.clone(), u.clone());
                std::thread::spawn(move || pump(server, client, &d, rate));
                std::thread::spawn(move || pump(c2, s2, &u, rate));
            }
        });
        Proxy {
            port,
            down,
            up,
            stop,
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn reset(&self) {
        self.down.store(0, Ordering::Relaxed);
        self.up.store(0, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: &AtomicU64, rate: Option<u64>) {
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut moved = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        moved += n as u64;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(moved as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// One image of an OCI layout: its platform, layers (uncompressed tars) and command.
pub(crate) struct LayoutImage {
    pub(crate) arch: &'static str,
    pub(crate) layers: Vec<Vec<u8>>,
    pub(crate) cmd: Vec<&'static str>,
}

/// Writes an OCI layout at `dir` holding `images` (gzip layers) under `tag`: one manifest,
/// or an index of them when there are several. Returns the top digest.
pub(crate) fn oci_layout(dir: &Path, images: &[LayoutImage], tag: &str) -> Digest {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| -> Digest {
        let d = Digest::sha256_of(bytes);
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        d
    };
    let mut manifests = Vec::new();
    for image in images {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in &image.layers {
            let mut w =
                strata_layer::CompressWriter::new(Vec::new(), strata_layer::Compression::Gzip)
                    .unwrap();
            w.write_all(tar).unwrap();
            let gz = w.finish().unwrap();
            diff_ids.push(Digest::sha256_of(tar).to_string());
            layers.push(Descriptor::new(
                media_type::OCI_LAYER_TAR_GZIP,
                put(&gz),
                gz.len() as u64,
            ));
        }
        let config = serde_json::json!({
            "architecture": image.arch, "os": "linux",
            "config": {"Cmd": image.cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = Manifest::new_oci(
            Descriptor::new(media_type::OCI_CONFIG, put(&config), config.len() as u64),
            layers,
        );
        let bytes = to_canonical_json(&manifest);
        manifests.push(
            Descriptor::new(media_type::OCI_MANIFEST, put(&bytes), bytes.len() as u64)
                .with_platform(Platform::new("linux", image.arch, None)),
        );
    }
    let top = if manifests.len() == 1 {
        let mut only = manifests.remove(0);
        only.platform = None;
        only
    } else {
        let bytes = to_canonical_json(&Index::new_oci(manifests));
        Descriptor::new(media_type::OCI_INDEX, put(&bytes), bytes.len() as u64)
    };
    let digest = top.digest.clone();
    let mut ann = BTreeMap::new();
    ann.insert(
        "org.opencontainers.image.ref.name".to_string(),
        tag.to_string(),
    );
    let index = Index::new_oci(vec![top.with_annotations(ann)]);
    std::fs::write(dir.join("index.json"), to_canonical_json(&index)).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    digest
}

/// `skopeo copy` with plain HTTP to loopback registries; panics with skopeo's output.
pub(crate) fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tar with one file.
pub(crate) fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    strata_testkit::tar_of(&[(name, data)])
}
