//! End to end: `strata build` through the real binary, RUN steps in real containers, on a
//! busybox base made from Debian's busybox-static.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use common::{inspect, Env};

/// Every layer of `image` as (path → (mode, content)), read back from `strata save`.
fn layers(env: &Env, image: &str) -> Vec<BTreeMap<String, (u32, Vec<u8>)>> {
    let archive = env.path("saved.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), image]);
    let bytes = std::fs::read(&archive).unwrap();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut layer = BTreeMap::new();
            let data = &files[l.as_str().unwrap()];
            for entry in tar::Archive::new(&data[..]).entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string();
                let mode = entry.header().mode().unwrap();
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                layer.insert(name, (mode, content));
            }
            layer
        })
        .collect()
}

fn context(env: &Env, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = env.path("ctx");
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn build(env: &Env, dir: &Path, tag: &str) -> String {
    env.ok(&["build", "-q", "-t", tag, dir.to_str().unwrap()])
        .trim()
        .to_string()
}

#[test]
fn the_seed_dockerfile_builds_runs_its_steps_and_caches() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                "FROM busybox:local\n\
                LABEL \"rating\"=\"Five Stars\" \"class\"=\"First Class\"\n\
                USER root\n\
                ENV AP /data/app\n\
                ENV SCPATH /etc/supervisor/conf.d\n\
                RUN mkdir -p /var/log/supervisor\n\
                ADD ./supervisord/conf.d/* $SCPATH/\n\
                ADD *.js* $AP/\n\
                WORKDIR $AP\n\
                RUN echo \"installed\" > node_modules.txt && ls -la\n\
                CMD [\"sh\", \"-c\", \"echo Hello ${WHO:-World}\"]\n",
            ),
            ("index.js", "console.log('hi')\n"),
            ("package.json", "{}\n"),
            ("supervisord/conf.d/node.conf", "[program:node]\n"),
            ("ignored.txt", "x"),
            (".dockerignore", "ignored.txt\n"),
        ],
    );
    let id = build(&env, &dir, "seed:1");
    let v = inspect(&env, "seed:1");
    assert_eq!(v["Id"], id);
    assert_eq!(v["Config"]["Labels"]["rating"], "Five Stars");
    assert_eq!(v["Config"]["WorkingDir"], "/data/app");
    assert_eq!(
        v["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo Hello ${WHO:-World}"])
    );
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("AP=/data/app")));

    let layers = layers(&env, "seed:1");
    let all: BTreeMap<String, (u32, Vec<u8>)> = layers
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(all["data/app/node_modules.txt"].1, b"installed\n");
    assert_eq!(all["data/app/index.js"].1, b"console.log('hi')\n");
    assert!(all.contains_key("etc/supervisor/conf.d/node.conf"));
    assert!(all.contains_key("var/log/supervisor"));
    // Host files provided to RUN never land in a layer; ignored files are not copied.
    for layer in &layers[1..] {
        for name in [
            "etc/hosts",
            "etc/resolv.conf",
            "etc/hostname",
            "data/app/ignored.txt",
        ] {
            assert!(!layer.contains_key(name), "{name} leaked into a layer");
        }
    }

    // A rebuild is all cache hits and the same image.
    let out = env.run(&["build", "-t", "seed:1", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("CACHED") && !progress.contains("DONE"),
        "{progress}"
    );
    assert_eq!(inspect(&env, "seed:1")["Id"], id);
    env.ok(&["system", "check"]);
}

#[test]
fn deletions_become_whiteouts_and_failures_say_what_failed() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[("Dockerfile", "FROM busybox:local\nRUN echo keep > /k && echo gone > /g\nRUN rm /g && ln -s /k /l && chmod 0700 /k\n")],
    );
    build(&env, &dir, "wh:1");
    let layers = layers(&env, "wh:1");
    let top = layers.last().unwrap();
    assert!(
        top.contains_key(".wh.g"),
        "{:?}",
        top.keys().collect::<Vec<_>>()
    );
    assert_eq!(top["k"].0 & 0o7777, 0o700);

    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nRUN echo before\nRUN echo broken >&2; exit 3\n",
    )
    .unwrap();
    let out = env.run(&["build", "-t", "broken:1", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exited with code 3") && stderr.contains("broken"),
        "{stderr}"
    );
    assert!(env.run(&["inspect", "broken:1"]).status.code() != Some(0));
}

#[test]
fn multi_stage_copies_from_an_earlier_stage() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local AS a\nRUN echo from-a > /a.txt\n\
            FROM busybox:local AS unused\nRUN exit 1\n\
            FROM busybox:local\nCOPY --from=a /a.txt /out/a.txt\n",
        )],
    );
    build(&env, &dir, "ms:1");
    let layers = layers(&env, "ms:1");
    assert_eq!(layers.last().unwrap()["out/a.txt"].1, b"from-a\n");
}
