//! strata as a registry client against real servers started here: Debian's
//! `docker-registry` (no auth, htpasswd Basic auth, token auth with a token issuer in the
//! test), images pushed by `skopeo`, a mirror, a credential helper script, kill -9 during
//! big transfers, and a hostile server for bad input.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::distribution::{
    oci_layout, one_file_tar, skopeo, Auth, HttpServer, LayoutImage, Proxy, Registry, Response,
    TokenIssuer,
};
use common::{inspect, write_files, Env};
use strata_oci::{media_type, to_canonical_json, Descriptor, Digest, Manifest};

fn busybox_tar() -> Vec<u8> {
    std::fs::read(strata_testkit::busybox::rootfs_tar()).unwrap()
}

fn busybox_image(marker: &str) -> LayoutImage {
    LayoutImage {
        arch: host_arch(),
        layers: vec![busybox_tar(), one_file_tar("from", marker.as_bytes())],
        cmd: vec!["sh"],
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => Box::leak(other.to_string().into_boxed_str()),
    }
}

/// Writes `images` as an OCI layout in the test dir and has skopeo push it to `dest`.
fn skopeo_push(env: &Env, images: &[LayoutImage], dest: &str, extra: &[&str]) {
    let dir = env.path(&format!("layout-{}", dest.replace(['/', ':'], "_")));
    oci_layout(&dir, images, "t");
    let src = format!("oci:{}:t", dir.display());
    let dst = format!("docker://{dest}");
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
}

/// The digest the registry serves `name` as (manifest or index).
fn served_digest(name: &str, creds: Option<&str>) -> Digest {
    let target = format!("docker://{name}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&target);
    Digest::sha256_of(skopeo(&args).as_bytes())
}

fn stderr_line(err: &str) -> String {
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    lines[0].to_string()
}

fn assert_clean(env: &Env) {
    let out = env.ok(&["system", "check"]);
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn pull_run_build_push_and_pull_back_through_a_plain_registry() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let env = Env::new();
    let base = format!("{host}/base/busybox:1");
    skopeo_push(&env, &[busybox_image("registry")], &base, &[]);
    skopeo_push(
        &env,
        &[busybox_image("second tag")],
        &format!("{host}/base/busybox:2"),
        &[],
    );

    let out = env.ok(&["pull", &base]);
    assert!(out.contains(": Pull complete"), "{out}");
    let digest = served_digest(&base, None);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {base}")),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(base.as_str()));
    let image = inspect(&env, &base);
    let id = image["Id"].as_str().unwrap().to_string();
    assert_eq!(
        image["RepoDigests"],
        serde_json::json!([format!("{host}/base/busybox@{digest}")])
    );
    let listed = env.ok(&["images", "--digests"]);
    assert!(listed.contains(digest.as_str()), "{listed}");

    // Up to date: nothing fetched, nothing changed.
    let again = env.ok(&["pull", &base]);
    assert!(again.contains("Already exists"), "{again}");
    assert!(
        again.contains(&format!("Status: Image is up to date for {base}")),
        "{again}"
    );
    assert!(env
        .ok(&["run", "--rm", "--network", "none", &base, "cat", "/from"])
        .contains("registry"));
    // The manifest exactly as served.
    let raw = env.ok(&["manifest", "inspect", &base]);
    assert_eq!(
        Digest::sha256_of(raw.trim_end_matches('\n').as_bytes()),
        digest
    );

    // FROM pulls what is missing, once; --pull=never refuses.
    env.ok(&["rmi", &base]);
    let ctx = env.path("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            format!("FROM {base}\nRUN echo built > /built\nCOPY --from={base} /from /copied\nCMD [\"cat\", \"/built\"]\n"),
        )],
    );
    let err = env.fails(&[
        "build",
        "--pull=never",
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(err.contains("no such image"), "{err}");
    let built = env.run(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ]);
    let built_err = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{built_err}");
    assert_eq!(
        built_err.matches("Pulling from base/busybox").count(),
        1,
        "{built_err}"
    );
    assert_eq!(inspect(&env, &base)["Id"].as_str(), Some(id.as_str()));

    // Push, then the registry serves what strata says it pushed.
    let pushed_name = format!("{host}/apps/built:1");
    env.ok(&["tag", "app:1", &pushed_name]);
    let out = env.ok(&["push", &pushed_name]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{host}/apps/built]"
        )),
        "{out}"
    );
    assert!(out.contains("Mounted from base/busybox"), "{out}");
    assert!(out.contains(": Pushed"), "{out}");
    let pushed = served_digest(&pushed_name, None);
    assert!(
        out.contains(&format!("1: digest: {pushed} size: ")),
        "{out}"
    );
    let seen = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{pushed_name}"),
    ]);
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["Layers"].as_array().map(Vec::len), Some(4));
    let built_id = inspect(&env, "app:1")["Id"].as_str().unwrap().to_string();
    assert!(inspect(&env, &pushed_name)["RepoDigests"]
        .to_string()
        .contains(pushed.as_str()));

    // A second push compresses and sends nothing.
    let again = env.ok(&["push", &pushed_name]);
    assert_eq!(again.matches("Layer already exists").count(), 4, "{again}");

    // Pulled back into another store: the same image ID, and it runs.
    let other = Env::new();
    other.ok(&["pull", "-q", &pushed_name]);
    assert_eq!(
        inspect(&other, &pushed_name)["Id"].as_str(),
        Some(built_id.as_str())
    );
    assert_eq!(
        other
            .ok(&["run", "--rm", "--network", "none", &pushed_name])
            .trim(),
        "built"
    );
    // -a takes every tag.
    other.ok(&["pull", "-a", &format!("{host}/base/busybox")]);
    let tags = other.ok(&[
        "images",
        "--format",
        "{{.Tag}}",
        &format!("{host}/base/busybox"),
    ]);
    assert_eq!(tags.lines().count(), 2, "{tags}");
    assert_clean(&env);
    assert_clean(&other);
}

#[test]
fn zstd_layers_and_a_multi_platform_index() {
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    let name = format!("{}/multi/img:1", reg.host());
    let other_arch = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let images = [
        busybox_image("host"),
        LayoutImage {
            arch: other_arch,
            layers: vec![one_file_tar("from", b"other")],
            cmd: vec!["sh"],
        },
    ];
    skopeo_push(
        &env,
        &images,
        &name,
        &["--all", "--dest-compress-format", "zstd", "--format", "oci"],
    );
    let index: serde_json::Value =
        serde_json::from_str(&env.ok(&["manifest", "inspect", &name])).unwrap();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{index}"
    );

    env.ok(&["pull", &name]);
    let image = inspect(&env, &name);
    assert_eq!(image["Architecture"], host_arch());
    assert!(image["RepoDigests"]
        .to_string()
        .contains(served_digest(&name, None).as_str()));
    assert!(env
        .ok(&["run", "--rm", "--network", "none", &name, "cat", "/from"])
        .contains("host"));

    env.ok(&["pull", "--platform", &format!("linux/{other_arch}"), &name]);
    assert_eq!(inspect(&env, &name)["Architecture"], other_arch);
    let err = env.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        stderr_line(&err)
            .contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{err}"
    );
    assert_clean(&env);
}

/// Writes `docker-credential-strata-test`, a helper keeping one credential in a file.
fn credential_helper(env: &Env) -> std::path::PathBuf {
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store = env.path("helper-store.json");
    let calls = env.path("helper-calls");
    let script = format!(
        r#"#!/bin/sh
echo "$1" >> '{calls}'
case "$1" in
  store) cat > '{store}' ;;
  get)
    read -r url
    if [ -f '{store}' ] && grep -q "\"ServerURL\":\"$url\"" '{store}'; then cat '{store}'; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) rm -f '{store}' ;;
  *) exit 1 ;;
esac
"#,
        calls = calls.display(),
        store = store.display()
    );
    let path = bin.join("docker-credential-strata-test");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn login(
    env: &Env,
    host: &str,
    user: &str,
    password: &str,
    path: Option<&Path>,
) -> std::process::Output {
    let mut cmd = env.cmd(&["login", "-u", user, "--password-stdin", host]);
    if let Some(bin) = path {
        cmd.env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn htpasswd_registry_login_push_pull_logout() {
    let reg = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let host = reg.host();
    let env = Env::new();
    let base = format!("{host}/alice/base:1");
    skopeo_push(
        &env,
        &[busybox_image("private")],
        &base,
        &["--dest-creds", "alice:s3cret"],
    );

    let err = env.fails(&["pull", &base]);
    assert!(stderr_line(&err).contains("unauthorized"), "{err}");

    let config = env.path("docker-config/config.json");
    let wrong = login(&env, &host, "alice", "wrong", None);
    assert_eq!(wrong.status.code(), Some(1));
    let wrong_err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr_line(&wrong_err).contains("incorrect username or password"),
        "{wrong_err}"
    );
    assert!(!config.exists(), "nothing written after a failed login");

    let ok = login(&env, &host, "alice", "s3cret", None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Login Succeeded"));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(saved["auths"][&host]["auth"], "YWxpY2U6czNjcmV0");

    env.ok(&["pull", &base]);
    // Pushed in PATCHes of 64 KiB, each authenticated.
    std::fs::write(
        env.path("registries.toml"),
        format!("[registry.\"{host}\"]\nupload_chunk_size = 65536\n"),
    )
    .unwrap();
    let ctx = env.path("ctx");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            format!("FROM {base}\nRUN head -c 300000 /dev/urandom > /r\n"),
        )],
    );
    env.ok(&[
        "build",
        "-q",
        "-t",
        &format!("{host}/alice/copy:1"),
        ctx.to_str().unwrap(),
    ]);
    env.ok(&["push", &format!("{host}/alice/copy:1")]);
    served_digest(&format!("{host}/alice/copy:1"), Some("alice:s3cret"));

    let out = env.ok(&["logout", &host]);
    assert!(
        out.contains(&format!("Removing login credentials for {host}")),
        "{out}"
    );
    env.ok(&["rmi", &base]);
    let err = env.fails(&["pull", &base]);
    assert!(stderr_line(&err).contains("unauthorized"), "{err}");
    assert!(env.ok(&["logout", &host]).contains("Not logged in"));
}

#[test]
fn a_registry_with_a_private_ca_is_trusted_through_its_ca_file_or_insecure() {
    let env = Env::new();
    let (ca, tls) = common::distribution::private_ca_cert(env.dir.path());
    let reg = Registry::start_with(Auth::None, Some(tls));
    let host = reg.host();
    let name = format!("{host}/tls/img:1");
    skopeo_push(&env, &[busybox_image("tls")], &name, &[]);
    let settings = |extra: &str| {
        std::fs::write(
            env.path("registries.toml"),
            format!("[registry.\"{host}\"]\ninsecure = false\n{extra}"),
        )
        .unwrap();
    };
    settings("");
    let err = env.fails(&["pull", &name]);
    assert!(
        stderr_line(&err).to_lowercase().contains("certificate"),
        "{err}"
    );
    settings(&format!("ca_file = \"{}\"\n", ca.display()));
    env.ok(&["pull", &name]);
    env.ok(&["rmi", &name]);
    std::fs::write(
        env.path("registries.toml"),
        format!("[registry.\"{host}\"]\ninsecure = true\n"),
    )
    .unwrap();
    env.ok(&["pull", &name]);
    assert_clean(&env);
}

#[test]
fn token_auth_registry_with_scopes_and_mounts() {
    let issuer = TokenIssuer::start("bob", "pw");
    let reg = Registry::start(Auth::Token(issuer.clone()));
    let host = reg.host();
    let env = Env::new();
    let base = format!("{host}/team/base:1");
    skopeo_push(
        &env,
        &[busybox_image("token")],
        &base,
        &["--dest-creds", "bob:pw"],
    );

    let err = env.fails(&["pull", &base]);
    assert!(stderr_line(&err).contains("unauthorized"), "{err}");
    let bad = login(&env, &host, "bob", "nope", None);
    assert_eq!(bad.status.code(), Some(1));
    let ok = login(&env, &host, "bob", "pw", None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let before = issuer.requests();
    env.ok(&["pull", &base]);
    // One token for the repository, reused for the manifest, config and layers.
    assert!(
        issuer.requests() - before <= 2,
        "{} token requests",
        issuer.requests() - before
    );
    let copy = format!("{host}/team/app:1");
    env.ok(&["tag", &base, &copy]);
    let out = env.ok(&["push", &copy]);
    assert_eq!(out.matches("Mounted from team/base").count(), 2, "{out}");
    assert_eq!(
        served_digest(&copy, Some("bob:pw")),
        served_digest(&base, Some("bob:pw"))
    );
}

#[test]
fn credential_helper_stores_serves_and_erases() {
    let reg = Registry::start(Auth::Basic {
        user: "carol".into(),
        password: "helper-pw".into(),
    });
    let host = reg.host();
    let env = Env::new();
    let bin = credential_helper(&env);
    std::fs::create_dir_all(env.path("docker-config")).unwrap();
    std::fs::write(
        env.path("docker-config/config.json"),
        r#"{"credsStore": "strata-test"}"#,
    )
    .unwrap();
    let base = format!("{host}/carol/base:1");
    skopeo_push(
        &env,
        &[busybox_image("helper")],
        &base,
        &["--dest-creds", "carol:helper-pw"],
    );

    let ok = login(&env, &host, "carol", "helper-pw", Some(&bin));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let stored = std::fs::read_to_string(env.path("helper-store.json")).unwrap();
    assert!(
        stored.contains("helper-pw") && stored.contains(&host),
        "{stored}"
    );
    let config = std::fs::read_to_string(env.path("docker-config/config.json")).unwrap();
    assert!(
        !config.contains("helper-pw"),
        "the password stays in the helper: {config}"
    );

    let with_path = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        c.output().unwrap()
    };
    let pulled = with_path(&["pull", &base]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let calls = std::fs::read_to_string(env.path("helper-calls")).unwrap();
    assert!(calls.lines().any(|l| l == "get"), "{calls}");
    let out = with_path(&["logout", &host]);
    assert!(out.status.success());
    assert!(!env.path("helper-store.json").exists());
}

#[test]
fn a_mirror_is_used_first_and_its_failure_falls_back_to_the_registry() {
    let upstream = Registry::start(Auth::None);
    let mirror = Registry::start(Auth::None);
    let env = Env::new();
    skopeo_push(
        &env,
        &[busybox_image("mirror")],
        &format!("{}/lib/app:1", mirror.host()),
        &[],
    );
    skopeo_push(
        &env,
        &[busybox_image("upstream")],
        &format!("{}/lib/app:1", upstream.host()),
        &[],
    );
    skopeo_push(
        &env,
        &[busybox_image("only upstream")],
        &format!("{}/lib/other:1", upstream.host()),
        &[],
    );
    let name = format!("{}/lib/app:1", upstream.host());
    let from = |env: &Env, name: &str| {
        env.ok(&["run", "--rm", "--network", "none", name, "cat", "/from"])
            .trim()
            .to_string()
    };
    std::fs::write(
        env.path("registries.toml"),
        format!(
            "[registry.\"{}\"]\nmirrors = [\"{}\"]\n",
            upstream.host(),
            mirror.host()
        ),
    )
    .unwrap();
    env.ok(&["pull", &name]);
    assert_eq!(from(&env, &name), "mirror");
    assert!(inspect(&env, &name)["RepoDigests"]
        .to_string()
        .contains(&upstream.host()));
    // Not on the mirror: the registry itself has it.
    let other = format!("{}/lib/other:1", upstream.host());
    env.ok(&["pull", &other]);
    assert_eq!(from(&env, &other), "only upstream");

    // A dead mirror: fall back to the registry.
    let dead = common::distribution::free_port();
    std::fs::write(
        env.path("registries.toml"),
        format!(
            "[registry.\"{}\"]\nmirrors = [\"127.0.0.1:{dead}\"]\n",
            upstream.host()
        ),
    )
    .unwrap();
    env.ok(&["rmi", &name]);
    env.ok(&["pull", &name]);
    assert_eq!(from(&env, &name), "upstream");

    // --pull=always sees the tag move; missing keeps what is there.
    skopeo_push(
        &env,
        &[busybox_image("moved")],
        &format!("{}/lib/app:1", upstream.host()),
        &[],
    );
    assert_eq!(from(&env, &name), "upstream");
    let moved = env.ok(&[
        "run",
        "--rm",
        "--pull",
        "always",
        "--network",
        "none",
        &name,
        "cat",
        "/from",
    ]);
    assert_eq!(moved.trim(), "moved");
}

/// 256 MiB of incompressible bytes.
fn big_file() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(256 << 20);
    while out.len() < 256 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// An image with a 256 MiB layer on busybox, built in `env`; returns the file's sha256.
fn big_image(env: &Env, tag: &str) -> String {
    env.import_busybox();
    let data = big_file();
    let sum = Digest::sha256_of(&data).hex().to_string();
    let ctx = env.path("big-ctx");
    write_files(
        &ctx,
        &[
            ("big", data),
            (
                "Dockerfile",
                b"FROM busybox:local\nCOPY big /big\n".to_vec(),
            ),
        ],
    );
    env.ok(&["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
    sum
}

/// Runs `strata args` and kills it with SIGKILL once `ready` says so.
fn kill_when(env: &Env, args: &[&str], ready: impl Fn() -> bool) {
    let mut child = env.cmd(args).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "strata {args:?} ended before it could be killed"
        );
        assert!(
            Instant::now() < deadline,
            "strata {args:?} made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn partial_bytes(env: &Env) -> u64 {
    std::fs::read_dir(env.root().join("ingest"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("partial-"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_pull_killed_halfway_resumes_from_the_bytes_on_disk() {
    let reg = Registry::start(Auth::None);
    let pusher = Env::new();
    let sum = big_image(&pusher, "big:1");
    let pusher_name = format!("{}/big/img:1", reg.host());
    pusher.ok(&["tag", "big:1", &pusher_name]);
    pusher.ok(&["push", "-q", &pusher_name]);

    let proxy = Proxy::start(reg.port, Some(48 << 20));
    let name = format!("{}/big/img:1", proxy.host());
    let env = Env::new();
    kill_when(&env, &["pull", "-q", &name], || {
        partial_bytes(&env) > 100 << 20
    });
    let kept = partial_bytes(&env);
    assert!(kept > 100 << 20, "{kept}");
    assert!(
        env.ok(&["images", "-q"]).trim().is_empty(),
        "nothing visible"
    );
    assert_clean(&env);

    proxy.reset();
    let out = env.ok(&["pull", &name]);
    assert!(out.contains("Resuming download from"), "{out}");
    let fetched = proxy.down.load(Ordering::Relaxed);
    assert!(
        fetched < (256 << 20) - (90 << 20),
        "the second pull fetched {fetched} bytes of 256 MiB"
    );
    assert_clean(&env);
    let seen = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "sha256sum",
        "/big",
    ]);
    assert!(seen.starts_with(&sum), "{seen}");
}

/// Layers Distribution has linked into `repo` (what a HEAD there finds).
fn linked_layers(reg: &Registry, repo: &str) -> usize {
    let dir = reg
        .dir
        .path()
        .join("data/docker/registry/v2/repositories")
        .join(repo)
        .join("_layers/sha256");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("link").exists())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_push_killed_halfway_does_not_send_again_what_the_registry_has() {
    // Distribution cancels an upload whose request broke off (its upload state is bound to
    // the offset of the last complete request), so against it a killed push continues
    // layer by layer: what was committed is not sent again.
    let reg = Registry::start(Auth::None);
    let env = Env::new();
    env.import_busybox();
    let ctx = env.path("two-big");
    let second: Vec<u8> = big_file()
        .into_iter()
        .take(64 << 20)
        .map(|b| b ^ 0x5a)
        .collect();
    write_files(
        &ctx,
        &[
            ("big", big_file()),
            ("second", second),
            (
                "Dockerfile",
                b"FROM busybox:local\nCOPY big /big\nCOPY second /second\n".to_vec(),
            ),
        ],
    );
    env.ok(&["build", "-q", "-t", "two:1", ctx.to_str().unwrap()]);
    std::fs::write(env.path("registries.toml"), "max_concurrent_uploads = 1\n").unwrap();
    let proxy = Proxy::start(reg.port, Some(48 << 20));
    let name = format!("{}/two/up:1", proxy.host());
    env.ok(&["tag", "two:1", &name]);
    kill_when(&env, &["push", "-q", &name], || {
        linked_layers(&reg, "two/up") >= 2
    });
    proxy.reset();
    let out = env.ok(&["push", &name]);
    assert_eq!(out.matches("Layer already exists").count(), 2, "{out}");
    let sent = proxy.up.load(Ordering::Relaxed);
    assert!(sent < 100 << 20, "the second push sent {sent} bytes");
    assert_clean(&env);
    let other = Env::new();
    other.ok(&["pull", "-q", &name]);
    assert_eq!(inspect(&other, &name)["Id"], inspect(&env, "two:1")["Id"]);
}

#[test]
fn a_push_killed_mid_layer_continues_its_upload_session() {
    // A registry that keeps what an interrupted upload received (the OCI spec's resumable
    // push): the next push asks how far the session got and sends only the rest.
    let server = common::distribution::resumable_registry();
    let env = Env::new();
    let sum = big_image(&env, "big:1");
    let proxy = Proxy::start(server.port, Some(48 << 20));
    let name = format!("{}/big/up:1", proxy.host());
    env.ok(&["tag", "big:1", &name]);
    kill_when(&env, &["push", "-q", &name], || {
        proxy.up.load(Ordering::Relaxed) > 100 << 20
    });
    // The (slowed) proxy still delivers what the killed push had sent, and this registry
    // stores a request's body when it ends: let that land before the session is asked how
    // far it got. (Asked earlier, it answers too little and the bytes land after the next
    // push's: the push then sends the stored blob again through a new session.)
    let mut last = proxy.up.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = proxy.up.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    std::thread::sleep(Duration::from_millis(300));
    proxy.reset();
    env.ok(&["push", &name]);
    let sent = proxy.up.load(Ordering::Relaxed);
    assert!(
        sent < (256 << 20) - (90 << 20),
        "the second push sent {sent} bytes of 256 MiB"
    );
    assert_clean(&env);
    let other = Env::new();
    other.ok(&["pull", "-q", &name]);
    assert_eq!(inspect(&other, &name)["Id"], inspect(&env, "big:1")["Id"]);
    let seen = other.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "sha256sum",
        "/big",
    ]);
    assert!(seen.starts_with(&sum), "{seen}");
}

/// A registry that serves broken images under `bad/<case>:1`.
fn hostile_registry() -> HttpServer {
    let layer = one_file_tar("f", b"honest content");
    let layer_digest = Digest::sha256_of(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    }))
    .unwrap();
    let config_digest = Digest::sha256_of(&config);
    let manifest = |layer_type: &str, urls: Option<Vec<String>>| {
        let mut l = Descriptor::new(layer_type, layer_digest.clone(), layer.len() as u64);
        l.urls = urls;
        to_canonical_json(&Manifest::new_docker(
            Descriptor::new(
                media_type::DOCKER_CONFIG,
                config_digest.clone(),
                config.len() as u64,
            ),
            vec![l],
        ))
    };
    let plain = manifest(media_type::DOCKER_LAYER_TAR, None);
    let foreign = manifest(
        media_type::DOCKER_FOREIGN_LAYER_TAR,
        Some(vec!["https://example.invalid/layer".into()]),
    );
    let throttled = std::sync::atomic::AtomicUsize::new(0);
    HttpServer::start(move |req| {
        let path = req.path().to_string();
        let case = path
            .strip_prefix("/v2/bad/")
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
            .to_string();
        if path == "/v2/" {
            return Response::new(200).json("{}");
        }
        if path.contains("/manifests/") {
            let docker = media_type::DOCKER_MANIFEST;
            return match case.as_str() {
                "foreign" => Response::new(200)
                    .header("content-type", docker)
                    .body(foreign.clone()),
                "huge" => Response::new(200)
                    .header("content-type", docker)
                    .body(vec![b' '; 20 << 20]),
                "schema1" => Response::new(200)
                    .header("content-type", media_type::DOCKER_MANIFEST_V1_SIGNED)
                    .body(r#"{"schemaVersion":1,"name":"bad/schema1","tag":"1","fsLayers":[]}"#),
                "busy" if throttled.fetch_add(1, Ordering::Relaxed) == 0 => {
                    Response::new(429).header("retry-after", "1")
                }
                _ => Response::new(200)
                    .header("content-type", docker)
                    .body(plain.clone()),
            };
        }
        if path.ends_with(config_digest.as_str()) {
            return Response::new(200).body(config.clone());
        }
        if path.ends_with(layer_digest.as_str()) {
            return match case.as_str() {
                "digest" => {
                    let mut wrong = layer.clone();
                    wrong[600] ^= 1;
                    Response::new(200).body(wrong)
                }
                "truncated" => {
                    let mut r = Response::new(200).body(layer[..layer.len() / 2].to_vec());
                    r.declared = Some(layer.len() as u64);
                    r
                }
                "longer" => {
                    let mut more = layer.clone();
                    more.extend_from_slice(&[0; 4096]);
                    Response::new(200).body(more)
                }
                "redirect" => Response::new(302).header("location", &path),
                _ => Response::new(200).body(layer.clone()),
            };
        }
        Response::new(404).json(r#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#)
    })
}

#[test]
fn bad_registry_answers_are_one_line_errors_and_leave_nothing_behind() {
    let server = hostile_registry();
    let host = server.host();
    let env = Env::new();
    let cases = [
        ("digest", "hashing to"),
        ("truncated", "broke off after"),
        ("longer", "the registry is sending"),
        ("foreign", "foreign layer"),
        ("huge", "larger than"),
        ("redirect", "redirect loop"),
        ("schema1", "schema 1"),
    ];
    for (case, expected) in cases {
        let out = env.run(&["pull", &format!("{host}/bad/{case}:1")]);
        assert_eq!(out.status.code(), Some(1), "{case}");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = stderr_line(&err);
        assert!(line.contains(expected), "{case}: {line}");
        assert!(
            env.ok(&["images", "-q"]).trim().is_empty(),
            "{case}: nothing visible"
        );
        assert_clean(&env);
    }
    // 429 with Retry-After: waited for, then it works.
    let started = Instant::now();
    env.ok(&["pull", &format!("{host}/bad/busy:1")]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_clean(&env);
}
