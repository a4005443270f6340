//! The pull-through cache of `strata registry serve` in front of two real upstream
//! registries (Debian's docker-registry, CNCF Distribution): pulls through it, a second pull
//! served from the cache with the upstreams stopped, containerd's `?ns=`, one upstream fetch
//! for concurrent clients, read-only mirror namespaces beside pushable ones.

mod common;
#[path = "common/registry.rs"]
mod registry;

use common::distribution::{Auth, Registry};
use common::{inspect, write_files, Env};
use registry::{sha256, Served};

const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

#[test]
fn a_mirror_caches_two_upstreams_and_serves_them_when_they_are_down() {
    let up1 = Registry::start(Auth::None);
    let up2 = Registry::start(Auth::None);
    let env = Env::new();
    env.import_busybox();
    let ctx = env.path("app");
    write_files(
        &ctx,
        &[
            ("hello", b"hello from upstream two\n".to_vec()),
            (
                "Dockerfile",
                b"FROM busybox:local\nCOPY hello /hello\nCMD [\"cat\", \"/hello\"]\n".to_vec(),
            ),
        ],
    );
    env.ok(&["build", "-q", "-t", "app:1", ctx.to_str().unwrap()]);
    let bb_up = format!("{}/library/bb:1", up1.host());
    let app_up = format!("{}/team/app:2", up2.host());
    env.ok(&["tag", "busybox:local", &bb_up]);
    env.ok(&["tag", "app:1", &app_up]);
    env.ok(&["push", "-q", &bb_up]);
    env.ok(&["push", "-q", &app_up]);

    // "one" revalidates its tags on every request; "two" keeps them for the default TTL.
    let mirror = Served::start(&format!(
        "[[mirror]]\nprefix = \"one\"\nregistry = \"{}\"\ntag_ttl = \"0s\"\n\n\
         [[mirror]]\nprefix = \"two\"\nregistry = \"{}\"\n",
        up1.host(),
        up2.host()
    ));
    let bb = format!("{}/one/library/bb:1", mirror.addr);
    let app = format!("{}/two/team/app:2", mirror.addr);

    // Concurrent clients of a blob the cache does not have yet all get its bytes.
    let manifest = mirror.call(
        "GET",
        "/v2/two/team/app/manifests/2",
        &[("accept", ACCEPT)],
        b"",
    );
    assert_eq!(manifest.status, 200, "{}", manifest.text());
    let layers: Vec<String> = manifest.json()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let top = layers.last().unwrap().clone();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| mirror.get(&format!("/v2/two/team/app/blobs/{top}"))))
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(sha256(&r.body), top);
        }
    });

    let a = Env::new();
    a.ok(&["pull", "-q", &bb]);
    a.ok(&["pull", "-q", &app]);
    assert_eq!(inspect(&a, &bb)["Id"], inspect(&env, "busybox:local")["Id"]);
    assert_eq!(inspect(&a, &app)["Id"], inspect(&env, "app:1")["Id"]);
    // containerd asks with the upstream's own name and `?ns=`: the same cached repository.
    let r = mirror.call(
        "GET",
        "/v2/team/app/manifests/2?ns=two",
        &[("accept", ACCEPT)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, manifest.body);

    // Pushes go to namespaces that are not mirrored; a mirrored one is read-only.
    let mine = format!("{}/mine/app:1", mirror.addr);
    a.ok(&["tag", &app, &mine]);
    a.ok(&["push", "-q", &mine]);
    let into_mirror = format!("{}/one/library/bb:mine", mirror.addr);
    a.ok(&["tag", &app, &into_mirror]);
    let err = a.fails(&["push", "-q", &into_mirror]);
    assert!(err.contains("denied"), "{err}");

    // Both upstreams gone: what was pulled comes from the cache, and says so when stale.
    drop(up1);
    drop(up2);
    let b = Env::new();
    b.ok(&["pull", "-q", &bb]);
    b.ok(&["pull", "-q", &app]);
    assert_eq!(inspect(&b, &app)["Id"], inspect(&env, "app:1")["Id"]);
    let out = b.ok(&["run", "--rm", "--network", "none", &app]);
    assert_eq!(out, "hello from upstream two\n");
    let r = mirror.call(
        "GET",
        "/v2/one/library/bb/manifests/1",
        &[("accept", ACCEPT)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let stale = r.header("x-strata-mirror").unwrap_or("");
    assert!(stale.contains("stale"), "{stale:?}");
    assert!(mirror.log().contains("serving the cached manifest"));
    // Not cached and the upstream down: an error that says so.
    let r = mirror.call(
        "GET",
        "/v2/one/library/other/manifests/1",
        &[("accept", ACCEPT)],
        b"",
    );
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert!(r.text().contains("upstream"), "{}", r.text());
    let metrics = mirror.get("/metrics").text();
    let hits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("strata_registry_cache_hits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(hits > 0, "{metrics}");
}

#[test]
fn a_mirror_config_with_mistakes_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("[[mirror]]\nprefix = \"a/b\"\n", "one path component"),
        (
            "[[mirror]]\nprefix = \"x\"\n[[mirror]]\nprefix = \"x\"\n",
            "configured twice",
        ),
        (
            "[[mirror]]\nprefix = \"x\"\nusername = \"u\"\n",
            "both username and password",
        ),
    ] {
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!("storage = \"{}\"\n{text}", dir.path().join("s").display()),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["registry", "serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text}: {err}");
    }
}
