//! Real clients against `strata registry serve`: skopeo copies both ways (a multi-platform
//! index with zstd layers, a Docker schema 2 image with gzip layers, tag listing, deletion),
//! and TLS with certificate reloading. skopeo and openssl come from Debian (`.ci/run` and
//! `scripts/test` install them).

#[path = "common/registry.rs"]
mod registry;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use registry::*;

fn need(tool: &str) {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false),
        "these tests need {tool}: run ./scripts/test, which installs it"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a client");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An OCI layout with `multi` (an index of linux/amd64 and linux/arm64, sharing the busybox
/// layer, uncompressed) and `single` (the amd64 manifest).
fn oci_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let blob = |data: &[u8]| -> (String, usize) {
        let d = sha256(data);
        std::fs::write(layout.join("blobs/sha256").join(&d[7..]), data).unwrap();
        (d, data.len())
    };
    let tar = std::fs::read(strata_testkit::busybox::rootfs_tar()).unwrap();
    let (ld, ls) = blob(&tar);
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{ld}"]}}}}"#
        );
        let (cd, cs) = blob(config.as_bytes());
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{ls}}}]}}"#
        );
        let (md, ms) = blob(m.as_bytes());
        entries.push((md, ms, arch));
    }
    let list: Vec<String> = entries
        .iter()
        .map(|(d, s, a)| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{s},"platform":{{"architecture":"{a}","os":"linux"}}}}"#
            )
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        list.join(",")
    );
    let (id, is) = blob(index.as_bytes());
    let (md, ms, _) = &entries[0];
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_INDEX}","digest":"{id}","size":{is},"annotations":{{"org.opencontainers.image.ref.name":"multi"}}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{md}","size":{ms},"annotations":{{"org.opencontainers.image.ref.name":"single"}}}}]}}"#
        ),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

#[test]
fn skopeo_copies_both_ways() {
    need("skopeo");
    // Two servers: skopeo's blob cache reuses a layer already in a registry whatever the
    // compression asked for, so each image goes to a registry that has none of its layers.
    let s = Served::start("");
    let v2 = Served::start("");
    let dir = tempfile::tempdir().unwrap();
    let layout = oci_layout(dir.path());
    let dest = |r: &str| format!("docker://{}/{r}", s.addr);
    let dest2 = |r: &str| format!("docker://{}/{r}", v2.addr);

    // Docker schema 2 with gzip layers
    run(Command::new("skopeo").args([
        "copy",
        "--format",
        "v2s2",
        "--dest-compress-format",
        "gzip",
        "--dest-tls-verify=false",
        &format!("oci:{}:single", layout.display()),
        &dest2("skopeo/single:v2s2"),
    ]));
    let m = v2.get("/v2/skopeo/single/manifests/v2s2");
    assert_eq!(m.header("content-type"), Some(DOCKER_MANIFEST));
    let v = m.json();
    assert_eq!(
        v["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let tags = run(Command::new("skopeo").args([
        "list-tags",
        "--tls-verify=false",
        &dest2("skopeo/single"),
    ]));
    assert!(tags.contains("\"v2s2\""), "{tags}");

    // a multi-platform index with zstd layers
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--dest-compress-format",
        "zstd",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &dest("skopeo/multi:v1"),
    ]));
    let idx = s.get("/v2/skopeo/multi/manifests/v1");
    assert_eq!(idx.header("content-type"), Some(OCI_INDEX));
    let children = idx.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(children.len(), 2);
    for child in &children {
        let d = child["digest"].as_str().unwrap();
        let m = s.get(&format!("/v2/skopeo/multi/manifests/{d}")).json();
        let layer = &m["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        let b = s.get(&format!(
            "/v2/skopeo/multi/blobs/{}",
            layer["digest"].as_str().unwrap()
        ));
        assert_eq!(&b.body[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    }

    // and back: the same index, byte for byte
    let out = dir.path().join("out");
    run(Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        &dest("skopeo/multi:v1"),
        &format!("oci:{}:multi", out.display()),
    ]));
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let pulled = top["manifests"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(Some(pulled.as_str()), idx.header("docker-content-digest"));
    let bytes = std::fs::read(out.join("blobs/sha256").join(&pulled[7..])).unwrap();
    assert_eq!(bytes, idx.body);
    let inspect = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        &dest("skopeo/multi:v1"),
    ]));
    assert!(inspect.contains("\"Architecture\": \"arm64\""), "{inspect}");

    // skopeo delete deletes the manifest by digest
    run(Command::new("skopeo").args([
        "delete",
        "--tls-verify=false",
        &dest2("skopeo/single:v2s2"),
    ]));
    assert_eq!(v2.get("/v2/skopeo/single/manifests/v2s2").status, 404);
    assert_consistent(&s);
    assert_consistent(&v2);
}

fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    (cert, key)
}

fn https_get(url: &str, trusted: &Path) -> Result<u16, String> {
    let pem = std::fs::read(trusted).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        )
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    agent
        .get(url)
        .call()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[test]
fn tls_serves_and_reloads_a_replaced_certificate() {
    need("openssl");
    let dir = tempfile::tempdir().unwrap();
    let (c1, k1) = self_signed(dir.path(), "one");
    let (c2, k2) = self_signed(dir.path(), "two");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::copy(&c1, &cert).unwrap();
    std::fs::copy(&k1, &key).unwrap();
    let s = Served::start(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nreload_interval = \"1s\"\n",
        cert.display(),
        key.display()
    ));
    let url = format!("https://{}/v2/", s.addr);
    assert_eq!(https_get(&url, &c1), Ok(200));
    assert!(
        https_get(&url, &c2).is_err(),
        "an untrusted certificate passed"
    );
    // plain HTTP on the TLS port gets nothing useful
    assert!(call_url(&format!("http://{}/v2/", s.addr), "GET", &[], b"")
        .map(|r| r.status != 200)
        .unwrap_or(true));

    // a renewed pair is picked up without a restart
    std::thread::sleep(Duration::from_millis(1100)); // a new mtime
    std::fs::copy(&c2, dir.path().join("new.crt")).unwrap();
    std::fs::copy(&k2, dir.path().join("new.key")).unwrap();
    std::fs::rename(dir.path().join("new.key"), &key).unwrap();
    std::fs::rename(dir.path().join("new.crt"), &cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while https_get(&url, &c2) != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(https_get(&url, &c1).is_err());
    // a broken replacement is refused and the good pair kept
    std::fs::write(&cert, "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(https_get(&url, &c2), Ok(200));
    assert!(s.log().contains("not reloaded"));
}

#[test]
fn plain_http_on_a_public_address_needs_to_be_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["registry", "serve", "--addr", "0.0.0.0:0", "--storage"])
        .arg(dir.path().join("s"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain HTTP on the non-loopback address"),
        "{err}"
    );
    assert!(err.contains("--plain-http"), "{err}");
    // a second server on the same storage is refused
    let s = Served::start("");
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--storage"])
        .arg(s.storage())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another registry is already serving"));
    // a bad config names the problem
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[gc]\ninterval = \"often\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["registry", "gc", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: config ") && err.contains("often"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
