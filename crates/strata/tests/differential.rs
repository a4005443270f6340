//! Differential round trips with the reference tools (Docker 20.10, podman, skopeo).
//! Ignored in the default suite: `scripts/differential rust` runs them (after
//! `../shared/tools/anchors-up`).

mod common;

use std::process::Command;

use common::{inspect, Env};

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const DOCKER: &str = "/usr/bin/docker";

#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn docker_save_strata_load_save_docker_load_run() {
    let env = Env::new();
    let docker_id = sh(&format!(
        "{DOCKER} image inspect -f '{{{{.Id}}}}' busybox:local"
    ));
    let from_docker = env.path("from-docker.tar");
    sh(&format!(
        "{DOCKER} save busybox:local -o {}",
        from_docker.display()
    ));
    env.ok(&["load", "-i", from_docker.to_str().unwrap()]);
    assert_eq!(inspect(&env, "busybox:local")["Id"], docker_id);

    let back = env.path("back.tar");
    env.ok(&["tag", "busybox:local", "strata-roundtrip:docker"]);
    env.ok(&[
        "save",
        "-o",
        back.to_str().unwrap(),
        "strata-roundtrip:docker",
    ]);
    sh(&format!(
        "{DOCKER} rmi -f strata-roundtrip:docker >/dev/null 2>&1 || true"
    ));
    let loaded = sh(&format!("{DOCKER} load -i {}", back.display()));
    assert!(loaded.contains("strata-roundtrip:docker"), "{loaded}");
    assert_eq!(
        sh(&format!(
            "{DOCKER} image inspect -f '{{{{.Id}}}}' strata-roundtrip:docker"
        )),
        docker_id
    );
    assert_eq!(
        sh(&format!(
            "{DOCKER} run --rm strata-roundtrip:docker echo works"
        )),
        "works"
    );

    // podman loads the docker archive too, with the same ID (it names familiar RepoTags
    // `localhost/…`, as it does for Docker's own archives).
    sh("podman rmi -f localhost/strata-roundtrip:docker >/dev/null 2>&1 || true");
    let podman_out = sh(&format!("podman load -i {} 2>&1", back.display()));
    assert!(podman_out.contains("Loaded image"), "{podman_out}");
    let podman_id = sh("podman image inspect -f '{{.Id}}' localhost/strata-roundtrip:docker");
    assert_eq!(format!("sha256:{podman_id}"), docker_id);
    sh("podman rmi -f localhost/strata-roundtrip:docker >/dev/null 2>&1 || true");

    // OCI layout: podman loads it with the same ID; skopeo reads it.
    let oci = env.path("back.oci.tar");
    env.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "strata-roundtrip:docker",
    ]);
    let podman_out = sh(&format!("podman load -i {} 2>&1", oci.display()));
    assert!(podman_out.contains("Loaded image"), "{podman_out}");
    let podman_id =
        sh("podman image inspect -f '{{.Id}}' docker.io/library/strata-roundtrip:docker");
    assert_eq!(format!("sha256:{podman_id}"), docker_id);
    sh(&format!(
        "skopeo inspect oci-archive:{} >/dev/null",
        oci.display()
    ));
    // And podman's docker-archive is loadable by strata again.
    let podman_save = env.path("podman.tar");
    sh(&format!(
        "podman save -o {} docker.io/library/strata-roundtrip:docker",
        podman_save.display()
    ));
    let again = Env::new();
    again.ok(&["load", "-i", podman_save.to_str().unwrap()]);
    assert_eq!(inspect(&again, "strata-roundtrip:docker")["Id"], docker_id);
}

#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn strata_import_matches_docker_import_layer_and_runs_in_docker() {
    let env = Env::new();
    let rootfs = "/var/tmp/anchors/busybox-rootfs.tar";
    env.ok(&[
        "import",
        "-c",
        r#"CMD ["echo","from strata"]"#,
        rootfs,
        "strata-import:1",
    ]);
    let ours = inspect(&env, "strata-import:1");
    let theirs: serde_json::Value =
        serde_json::from_str(&sh(&format!("{DOCKER} image inspect busybox:local"))).unwrap();
    assert_eq!(
        ours["RootFS"], theirs[0]["RootFS"],
        "same tar, same diff_id"
    );
    assert_eq!(
        ours["Size"], theirs[0]["Size"],
        "Docker counts the same unpacked size"
    );

    let archive = env.path("imported.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "strata-import:1"]);
    sh(&format!("{DOCKER} load -i {}", archive.display()));
    assert_eq!(
        sh(&format!(
            "{DOCKER} image inspect -f '{{{{.Id}}}}' strata-import:1"
        )),
        ours["Id"].as_str().unwrap()
    );
    assert_eq!(
        sh(&format!("{DOCKER} run --rm strata-import:1")),
        "from strata"
    );
    sh(&format!("{DOCKER} rmi strata-import:1 >/dev/null"));
}

#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn strata_push_then_docker_and_podman_pull_and_run_the_same_image_id() {
    let reg = common::distribution::Registry::start(common::distribution::Auth::None);
    let env = Env::new();
    env.import_busybox();
    let ctx = common::context(
        &env,
        &[(
            "Dockerfile",
            // Random bytes too: gzip stores the blocks that do not compress.
            "FROM busybox:local\nRUN echo from-strata > /origin && head -c 3000000 /dev/urandom > /noise\nCMD [\"cat\", \"/origin\"]\n",
        )],
    );
    let id = common::build(&env, &ctx, "diff-push:1");
    for (compression, tag) in [("gzip", "gz"), ("zstd", "zst")] {
        let name = format!("{}/diff/push:{tag}", reg.host());
        env.ok(&["tag", "diff-push:1", &name]);
        env.ok(&["push", "--compression", compression, &name]);
        // podman reads both; Docker 20.10 only gzip.
        sh(&format!("podman rmi -f {name} >/dev/null 2>&1 || true"));
        sh(&format!("podman pull -q --tls-verify=false {name}"));
        assert_eq!(
            format!(
                "sha256:{}",
                sh(&format!("podman image inspect -f '{{{{.Id}}}}' {name}"))
            ),
            id
        );
        assert_eq!(
            sh(&format!(
                // Podman's default rlimits are refused to this machine's root (see bench/run).
                "podman --runtime runc --cgroup-manager cgroupfs run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 {name}"
            )),
            "from-strata"
        );
        sh(&format!("podman rmi -f {name} >/dev/null 2>&1 || true"));
        if compression == "gzip" {
            sh(&format!("{DOCKER} rmi -f {name} >/dev/null 2>&1 || true"));
            sh(&format!("{DOCKER} pull -q {name}"));
            assert_eq!(
                sh(&format!("{DOCKER} image inspect -f '{{{{.Id}}}}' {name}")),
                id
            );
            assert_eq!(sh(&format!("{DOCKER} run --rm {name}")), "from-strata");
            sh(&format!("{DOCKER} rmi -f {name} >/dev/null 2>&1 || true"));
        }
    }
}

#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn docker_push_then_strata_pull_keeps_the_image_id() {
    let reg = common::distribution::Registry::start(common::distribution::Auth::None);
    let env = Env::new();
    let name = format!("{}/diff/from-docker:1", reg.host());
    let docker_id = sh(&format!(
        "{DOCKER} image inspect -f '{{{{.Id}}}}' busybox:local"
    ));
    sh(&format!("{DOCKER} tag busybox:local {name}"));
    sh(&format!("{DOCKER} push {name} >/dev/null"));
    sh(&format!("{DOCKER} rmi {name} >/dev/null"));
    env.ok(&["pull", &name]);
    assert_eq!(inspect(&env, &name)["Id"], docker_id);
    let digest = sh(&format!(
        "skopeo inspect --tls-verify=false --format '{{{{.Digest}}}}' docker://{name}"
    ));
    assert!(inspect(&env, &name)["RepoDigests"]
        .to_string()
        .contains(&digest));
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", &name, "echo", "works"])
            .trim(),
        "works"
    );
}
