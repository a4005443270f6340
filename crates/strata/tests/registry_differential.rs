//! `strata registry serve` with the reference clients: `docker push`/`pull` (Docker 20.10
//! treats 127.0.0.0/8 as an insecure registry, so plain HTTP on loopback works unchanged),
//! `docker login` against the built-in token service, `podman pull`.
//! Ignored in the default suite: `scripts/differential rust` runs them (after
//! `../shared/tools/anchors-up`).
//! Docker's credentials go to a temporary `DOCKER_CONFIG`, never to the machine's.

#[path = "common/registry.rs"]
mod registry;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use registry::*;

const DOCKER: &str = "/usr/bin/docker";

fn docker(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(DOCKER);
    c.env("DOCKER_CONFIG", config).args(args);
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("docker");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn image_id(config: &Path, image: &str) -> String {
    ok(
        docker(config, &["image", "inspect", "-f", "{{.Id}}", image], None),
        "docker inspect",
    )
}

#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn docker_push_then_pull_and_podman_pull() {
    let s = Served::start("");
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    let want = image_id(c, "busybox:local");
    let name = format!("{}/diff/busybox:1", s.addr);
    ok(
        docker(c, &["tag", "busybox:local", &name], None),
        "docker tag",
    );
    ok(docker(c, &["push", &name], None), "docker push");
    let m = s.get("/v2/diff/busybox/manifests/1");
    assert_eq!(m.header("content-type"), Some(DOCKER_MANIFEST));
    assert_consistent(&s);
    // pushing again finds every layer there
    let again = ok(docker(c, &["push", &name], None), "docker push again");
    assert!(again.contains("Layer already exists"), "{again}");

    ok(docker(c, &["rmi", &name], None), "docker rmi");
    ok(docker(c, &["pull", &name], None), "docker pull");
    assert_eq!(
        image_id(c, &name),
        want,
        "the pulled image is the pushed one"
    );
    let out = ok(
        docker(
            c,
            &["run", "--rm", "--network", "none", &name, "echo", "pulled"],
            None,
        ),
        "docker run",
    );
    assert_eq!(out, "pulled");
    ok(docker(c, &["rmi", &name], None), "docker rmi");

    let podman = Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "pull",
            "--tls-verify=false",
            &name,
        ])
        .output()
        .unwrap();
    let podman_id = ok(podman, "podman pull");
    assert_eq!(format!("sha256:{podman_id}"), want);
    let _ = Command::new("podman").args(["rmi", &name]).output();
}

#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn docker_login_against_the_token_service() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    add_user(&htpasswd, "alice");
    let s = Served::start(&format!(
        "[auth]\nmode = \"token\"\nhtpasswd = \"{}\"\n",
        htpasswd.display()
    ));
    let cfg = tempfile::tempdir().unwrap();
    let c = cfg.path();
    let name = format!("{}/private/busybox:1", s.addr);
    ok(
        docker(c, &["tag", "busybox:local", &name], None),
        "docker tag",
    );

    // without logging in: refused
    let out = docker(c, &["push", &name], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
    // a wrong password is refused at login
    let out = docker(
        c,
        &["login", "-u", "alice", "--password-stdin", &s.addr],
        Some("nope\n"),
    );
    assert!(!out.status.success());
    // the right one logs in, and push and pull work with the token
    let out = ok(
        docker(
            c,
            &["login", "-u", "alice", "--password-stdin", &s.addr],
            Some("alice-pw\n"),
        ),
        "docker login",
    );
    assert!(out.contains("Login Succeeded"), "{out}");
    ok(
        docker(c, &["push", &name], None),
        "docker push with a token",
    );
    ok(docker(c, &["rmi", &name], None), "docker rmi");
    ok(
        docker(c, &["pull", &name], None),
        "docker pull with a token",
    );
    ok(docker(c, &["rmi", &name], None), "docker rmi");
    ok(docker(c, &["logout", &s.addr], None), "docker logout");
    let out = docker(c, &["pull", &name], None);
    assert!(
        !out.status.success(),
        "an anonymous pull of a private image worked"
    );
    assert!(s.log().contains("\"user\":\"alice\""));
}
