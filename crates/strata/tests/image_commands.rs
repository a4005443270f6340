//! End to end: import, images, tag, rmi, history, inspect, save, load and prune through the
//! real binary, against a fresh store root per test.

mod common;

use common::{fixture, inspect, Env};

const DOCKER_FIXTURE_ID: &str =
    "sha256:01c802e5a73ccd06063fc0257cc4d7125d5523e8ae0202f35a0407abe3eb600f";
const OCI_FIXTURE_ID: &str =
    "sha256:445e66775954608046a5e99c1febf9edbd69c2ba3f2b369769c39c55b259edb7";

fn sha256_file(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    strata_oci::Digest::sha256_of(&bytes).to_string()
}

#[test]
fn import_keeps_the_tar_as_the_layer_and_shows_docker_shapes() {
    let env = Env::new();
    let tar = strata_testkit::busybox::rootfs_tar();
    let id = env.ok(&[
        "import",
        "-c",
        r#"CMD ["sh"]"#,
        "-c",
        "ENV A=1 B=\"two words\"",
        "-c",
        "EXPOSE 8080",
        "-c",
        "WORKDIR /srv",
        "-m",
        "base image",
        tar.to_str().unwrap(),
        "busybox:local",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let v = inspect(&env, "busybox:local");
    assert_eq!(v["Id"], id);
    assert_eq!(v["RepoTags"], serde_json::json!(["busybox:local"]));
    assert_eq!(v["Comment"], "base image");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(
        v["Config"]["Env"],
        serde_json::json!(["A=1", "B=two words"])
    );
    assert_eq!(
        v["Config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(v["Config"]["WorkingDir"], "/srv");
    assert_eq!(v["Os"], "linux");
    // Docker's import keeps the bytes: the layer's diff_id is the tar's digest.
    assert_eq!(v["RootFS"]["Layers"][0], sha256_file(tar));
    let size = v["Size"].as_u64().unwrap();
    assert!(size > 500_000, "busybox is bigger than {size} bytes");

    let images = env.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{images}"
    );
    assert!(lines[1].starts_with("busybox      local     "), "{images}");
    assert!(lines[1].contains(&id[7..19]));
    assert_eq!(env.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]).trim(), id);

    let json: serde_json::Value =
        serde_json::from_str(env.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(json["Repository"], "busybox");
    assert_eq!(json["Tag"], "local");
    assert_eq!(
        env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .trim(),
        "busybox:local"
    );

    let history = env.ok(&["history", "busybox:local"]);
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), 2, "{history}");
    assert!(rows[0].starts_with("IMAGE          CREATED"), "{history}");
    assert!(
        rows[1].starts_with(&id[7..19]) && rows[1].ends_with("base image"),
        "{history}"
    );
    assert_eq!(
        env.ok(&["history", "-q", "--no-trunc", "busybox:local"])
            .trim(),
        id
    );

    // By ID prefix, by full ID, by template.
    assert_eq!(env.ok(&["inspect", "-f", "{{.Id}}", &id[7..15]]).trim(), id);
    assert_eq!(
        env.ok(&["inspect", "--format", "{{json .Config.Cmd}}", id])
            .trim(),
        r#"["sh"]"#
    );
    env.ok(&["system", "check"]);
}

#[test]
fn import_reads_compressed_tars_from_stdin_with_the_same_layer() {
    let env = Env::new();
    let tar = strata_testkit::busybox::rootfs_tar();
    let gz = env.path("rootfs.tar.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", tar.display(), gz.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let out = env
        .cmd(&["import", "-", "piped:1"])
        .stdin(std::fs::File::open(&gz).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = inspect(&env, "piped:1");
    assert_eq!(v["RootFS"]["Layers"][0], sha256_file(tar));
    assert_eq!(v["Comment"], "Imported from -");
}

#[test]
fn tag_and_rmi_follow_dockers_rules() {
    let env = Env::new();
    let id = env.import_busybox();
    env.ok(&["tag", "busybox:local", "example.com/team/app:1"]);
    env.ok(&["tag", &id[7..19], "other"]);
    let v = inspect(&env, "other:latest");
    let mut tags: Vec<String> = v["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        ["busybox:local", "example.com/team/app:1", "other:latest"]
    );

    // One of several tags: untag only.
    assert_eq!(env.ok(&["rmi", "other"]), "Untagged: other:latest\n");
    // By ID while tagged twice: refused without -f.
    let err = env.fails(&["rmi", &id[7..19]]);
    assert!(
        err.contains("must be forced") && err.contains("multiple repositories"),
        "{err}"
    );
    let out = env.ok(&["rmi", "-f", &id[7..19]]);
    assert!(
        out.contains("Untagged: busybox:local") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(env.ok(&["images", "-q"]), "");
    env.ok(&["system", "check"]);
    // Everything the image held is collected.
    let df = env.ok(&["system", "df"]);
    assert!(df.contains("Images          0"), "{df}");
    let blobs = std::fs::read_dir(env.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "blobs left after rmi");
}

#[test]
fn bad_input_gets_one_clear_line_and_changes_nothing() {
    let env = Env::new();
    env.import_busybox();
    let not_tar = env.path("not-a-tar");
    std::fs::write(
        &not_tar,
        b"this is not a tar archive, just some text that is long enough",
    )
    .unwrap();
    let err = env.fails(&["import", not_tar.to_str().unwrap(), "broken:1"]);
    assert!(
        err.starts_with("error: ") && err.contains("is not a tar archive"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let err = env.fails(&["tag", "busybox:local", "Upper/Case"]);
    assert!(err.contains("must be lowercase"), "{err}");
    let err = env.fails(&["inspect", "nosuch:image"]);
    assert!(err.contains("no such image: nosuch:image"), "{err}");
    let err = env.fails(&[
        "import",
        "-c",
        "RUN echo hi",
        strata_testkit::busybox::rootfs_tar().to_str().unwrap(),
    ]);
    assert!(err.contains("RUN") && err.contains("change"), "{err}");
    let err = env.fails(&["load", "-i", not_tar.to_str().unwrap()]);
    assert!(
        err.starts_with("error: ") && err.contains("is not a tar archive"),
        "{err}"
    );
    let err = env.fails(&["--storage-driver", "zfs", "images"]);
    assert!(err.contains("zfs"), "{err}");

    assert_eq!(
        env.ok(&["images", "--format", "{{.Repository}}"]).trim(),
        "busybox"
    );
    env.ok(&["system", "check"]);
}

#[test]
fn loads_what_docker_save_writes_and_saves_it_back_with_the_same_id() {
    let env = Env::new();
    let out = env.ok(&[
        "load",
        "-i",
        fixture("two-layers.docker.tar").to_str().unwrap(),
    ]);
    assert_eq!(out, "Loaded image: fixture/two-layers:v1\n");
    let v = inspect(&env, "fixture/two-layers:v1");
    assert_eq!(v["Id"], DOCKER_FIXTURE_ID);
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("GREETING=hello")));
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let history = env.ok(&["history", "--no-trunc", "fixture/two-layers:v1"]);
    assert!(
        history.contains("COPY two.txt link /data/ # buildkit"),
        "{history}"
    );

    // docker format, twice: byte-identical archives.
    let a = env.path("a.tar");
    let b = env.path("b.tar");
    env.ok(&["save", "-o", a.to_str().unwrap(), "fixture/two-layers:v1"]);
    env.ok(&["save", "-o", b.to_str().unwrap(), "fixture/two-layers:v1"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let other = Env::new();
    assert_eq!(
        other.ok(&["load", "-i", a.to_str().unwrap()]),
        "Loaded image: fixture/two-layers:v1\n"
    );
    assert_eq!(
        inspect(&other, "fixture/two-layers:v1")["Id"],
        DOCKER_FIXTURE_ID
    );

    // OCI format round trip, through stdin.
    let oci = env.path("img.oci.tar");
    env.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "fixture/two-layers:v1",
    ]);
    let third = Env::new();
    let out = third
        .cmd(&["load"])
        .stdin(std::fs::File::open(&oci).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        inspect(&third, "fixture/two-layers:v1")["Id"],
        DOCKER_FIXTURE_ID
    );
    third.ok(&["system", "check"]);
}

#[test]
fn loads_oci_archives_with_gzip_layers() {
    let env = Env::new();
    let out = env.ok(&[
        "load",
        "-i",
        fixture("two-layers.oci.tar").to_str().unwrap(),
    ]);
    assert_eq!(out, "Loaded image: fixture/two-layers:v1\n");
    assert_eq!(inspect(&env, "fixture/two-layers:v1")["Id"], OCI_FIXTURE_ID);
    // Saved as a docker archive, the gzip layers are written uncompressed under their diff_ids.
    let out_tar = env.path("docker.tar");
    env.ok(&[
        "save",
        "-o",
        out_tar.to_str().unwrap(),
        "fixture/two-layers:v1",
    ]);
    let other = Env::new();
    other.ok(&["load", "-i", out_tar.to_str().unwrap()]);
    assert_eq!(
        inspect(&other, "fixture/two-layers:v1")["Id"],
        OCI_FIXTURE_ID
    );
    other.ok(&["system", "check"]);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let env = Env::new();
    // Rewrite the fixture with one byte of a layer changed (its diff_id no longer matches).
    let src = std::fs::read(fixture("two-layers.docker.tar")).unwrap();
    let mut archive = tar::Archive::new(&src[..]);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path.to_string_lossy().ends_with("layer.tar") {
            if let Some(pos) = data.windows(5).position(|w| w == b"hello") {
                data[pos] = b'j';
            }
        }
        builder.append_data(&mut header, &path, &data[..]).unwrap();
    }
    let bad = env.path("bad.tar");
    std::fs::write(&bad, builder.into_inner().unwrap()).unwrap();
    let err = env.fails(&["load", "-i", bad.to_str().unwrap()]);
    assert!(err.contains("diff") || err.contains("digest"), "{err}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    env.ok(&["system", "check"]);
}

#[test]
fn prune_removes_dangling_images_and_reports_reclaimed_space() {
    let env = Env::new();
    let tar = strata_testkit::busybox::rootfs_tar();
    env.ok(&["import", tar.to_str().unwrap()]);
    env.import_busybox();
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(env.ok(&["images", "--format", "{{.Tag}}"]).trim(), "local");
    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: busybox:local"), "{out}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    env.ok(&["system", "check"]);
}

#[test]
fn system_df_separates_shared_and_unique_sizes() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&[
        "load",
        "-i",
        fixture("two-layers.docker.tar").to_str().unwrap(),
    ]);
    let df = env.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(df.contains("Images          2"), "{df}");
    let verbose = env.ok(&["system", "df", "-v"]);
    assert!(
        verbose.contains("SHARED SIZE") && verbose.contains("UNIQUE SIZE"),
        "{verbose}"
    );
}

#[test]
fn vfs_driver_gives_the_same_images() {
    let env = Env::new();
    let out = env.run(&[
        "--storage-driver",
        "vfs",
        "load",
        "-i",
        fixture("two-layers.docker.tar").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        inspect(&env, "fixture/two-layers:v1")["Id"],
        DOCKER_FIXTURE_ID
    );
    // The driver is recorded: asking for another one later is refused.
    let err = env.fails(&["--storage-driver", "overlay", "images"]);
    assert!(err.contains("vfs"), "{err}");
    env.ok(&["system", "check"]);
}

#[test]
fn prunes_ask_first_unless_forced_and_system_prune_takes_stopped_containers() {
    let env = Env::new();
    env.import_busybox();
    env.ok(&["create", "--name", "stopped", "busybox:local", "true"]);
    // No answer on stdin: refused, nothing removed.
    let refused = env.fails(&["system", "prune", "-a"]);
    assert!(refused.contains("--force"), "{refused}");
    assert!(env.ok(&["ps", "-a", "-q"]).lines().count() == 1);
    // Answered on a pipe, as `yes | docker system prune`.
    let mut cmd = env.cmd(&["system", "prune", "-a"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Deleted Containers:"), "{text}");
    assert!(text.contains("Deleted Images:"), "{text}");
    assert_eq!(text.matches("Total reclaimed space").count(), 1, "{text}");
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(env.ok(&["images", "-a", "-q"]).trim().is_empty());
}
