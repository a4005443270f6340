//! End to end: `strata build` through the real binary, RUN steps in real containers, on a
//! busybox base made from Debian's busybox-static.

mod common;

use std::collections::BTreeMap;

use common::{build, context, inspect, write_files, Env};

/// Every layer of `image` as (path → (mode, content)), read back from `strata save`.
fn layers(env: &Env, image: &str) -> Vec<BTreeMap<String, (u32, Vec<u8>)>> {
    common::saved_layers(env, image)
        .into_iter()
        .map(|layer| {
            layer
                .into_iter()
                .map(|(path, node)| (path, (node.mode, node.data)))
                .collect()
        })
        .collect()
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

/// Runs `strata args…` with `input` on stdin.
fn run_with_stdin(env: &Env, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = env
        .cmd(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A command that fails before reading its input closes the pipe: not an error here.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn labels_network_and_outputs() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\nLABEL base=1\nRUN ls /sys/class/net > /nets\n",
        )],
    );
    let ctx = dir.to_str().unwrap();
    let plain = build(&env, &dir, "plain:1");
    let id = env
        .ok(&[
            "build",
            "-q",
            "-t",
            "lab:1",
            "--label",
            "a=b",
            "--label",
            "base=2",
            "--network",
            "none",
            ctx,
        ])
        .trim()
        .to_string();
    let v = inspect(&env, "lab:1");
    assert_eq!(v["Id"], id);
    assert_eq!(
        v["Config"]["Labels"],
        serde_json::json!({"a": "b", "base": "2"})
    );
    // --label adds no history entry (as BuildKit); --network none leaves only loopback.
    let hist = |name: &str| env.ok(&["history", "-q", name]).lines().count();
    assert_eq!(hist("lab:1"), hist("plain:1"));
    let nets = layers(&env, "lab:1").last().unwrap()["nets"].1.clone();
    assert_eq!(String::from_utf8_lossy(&nets), "lo\n");
    assert!(
        String::from_utf8_lossy(&layers(&env, "plain:1").last().unwrap()["nets"].1)
            .lines()
            .count()
            > 1,
        "host network by default"
    );
    assert_ne!(plain, id);

    // -o writes archives that load back as the same image, and the file tree.
    let docker_tar = env.path("out-docker.tar");
    let oci_tar = env.path("out-oci.tar");
    let tree = env.path("tree");
    let out = env.run(&[
        "build",
        "-t",
        "lab:1",
        "--label",
        "a=b",
        "--label",
        "base=2",
        "--network",
        "none",
        "-o",
        &format!("type=docker,dest={}", docker_tar.display()),
        "-o",
        &format!("type=oci,dest={}", oci_tar.display()),
        "-o",
        &format!("type=local,dest={}", tree.display()),
        "-o",
        "type=docker,dest=-",
        ctx,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(tree.join("nets")).unwrap(), b"lo\n");
    assert!(tree.join("bin/busybox").exists());
    let stdout_tar = env.path("stdout.tar");
    std::fs::write(&stdout_tar, &out.stdout).unwrap();
    for archive in [&docker_tar, &oci_tar, &stdout_tar] {
        let other = Env::new();
        other.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(inspect(&other, "lab:1")["Id"], id, "{}", archive.display());
    }
    assert!(env
        .fails(&["build", "-o", "type=tar,dest=x", ctx])
        .contains("type=tar is not supported"));
}

#[test]
fn context_from_stdin() {
    let env = Env::new();
    env.import_busybox();
    let src = env.path("src");
    write_files(
        &src,
        &[
            (
                "sub/build.Dockerfile",
                "FROM busybox:local\nCOPY hello.txt /\n",
            ),
            ("hello.txt", "hi\n"),
        ],
    );
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &src).unwrap();
    let archive = tar.into_inner().unwrap();
    let out = run_with_stdin(
        &env,
        &[
            "build",
            "-q",
            "-t",
            "stdin:1",
            "-f",
            "sub/build.Dockerfile",
            "-",
        ],
        &archive,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        layers(&env, "stdin:1").last().unwrap()["hello.txt"].1,
        b"hi\n"
    );

    // A lone Dockerfile on stdin: no context files.
    let out = run_with_stdin(
        &env,
        &["build", "-q", "-t", "stdin:2", "-"],
        b"FROM busybox:local\nENV A=1\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(inspect(&env, "stdin:2")["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("A=1")));

    // -f names a file inside the archive, never one of the host.
    let out = run_with_stdin(&env, &["build", "-f", "/etc/passwd", "-"], &archive);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the context archive"));

    let out = run_with_stdin(&env, &["build", "-f", "-", "-"], &archive);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("both the build context and the Dockerfile")
    );
}

/// Every line of `--progress=json` stderr as a JSON value.
fn events(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn json_progress_step_images_and_the_last_good_step() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo one > /one && echo said-one\nRUN echo two > /two\n",
        )],
    );
    let ctx = dir.to_str().unwrap();
    let out = env.run(&["build", "--progress=json", "-t", "j:1", ctx]);
    assert!(out.status.success());
    let ev = events(&out.stderr);
    let output: String = ev
        .iter()
        .filter(|e| e["event"] == "step_output")
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(output, "said-one\n");
    let ev: Vec<serde_json::Value> = ev
        .into_iter()
        .filter(|e| e["event"] != "step_output")
        .collect();
    let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "build_start",
            "base_resolved",
            "step_start",
            "step_done",
            "step_start",
            "step_done",
            "build_done"
        ]
    );
    // BuildKit's names: the FROM is step 1 of 3, with the normalized image name.
    assert_eq!(ev[1]["label"], "[1/3]");
    assert_eq!(ev[1]["text"], "FROM docker.io/library/busybox:local");
    assert_eq!(ev[2]["label"], "[2/3]");
    assert!(ev[2]["cache_key"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(ev[2]["text"], "RUN echo one > /one && echo said-one");
    assert_eq!(ev[4]["label"], "[3/3]");
    let final_id = ev[6]["image_id"].as_str().unwrap();
    assert_eq!(inspect(&env, "j:1")["Id"], final_id);
    // The last step's image is the result; the first is an intermediate, runnable image.
    assert_eq!(ev[5]["image_id"], final_id);
    let first = ev[3]["image_id"].as_str().unwrap().to_string();
    assert_eq!(
        inspect(&env, &first)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let all = env.ok(&["images", "-a", "-q", "--no-trunc"]);
    assert!(all.contains(&first), "{all}");
    assert!(
        !env.ok(&["images", "-q", "--no-trunc"]).contains(&first),
        "intermediates hidden without -a"
    );
    env.ok(&["image", "prune", "-f"]);
    assert!(
        env.ok(&["images", "-a", "-q", "--no-trunc"])
            .contains(&first),
        "kept while j:1 descends from it"
    );

    // A rebuild reports cached steps with the same images.
    let ev = events(
        &env.run(&["build", "--progress=json", "-t", "j:1", ctx])
            .stderr,
    );
    assert_eq!(ev[3]["event"], "step_cached");
    assert_eq!(ev[3]["image_id"], first.as_str());

    // A failed RUN names its command, exit code, last lines and the last good step.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nRUN echo one > /one && echo said-one\nRUN echo fell over >&2; exit 7\n",
    )
    .unwrap();
    let out = env.run(&["build", "--progress=json", "-t", "j:2", ctx]);
    assert!(!out.status.success());
    let ev = events(&out.stderr);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["exit_code"], 7);
    assert_eq!(failed["last_good_image_id"], first.as_str());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let short = &first["sha256:".len().."sha256:".len() + 12];
    assert!(
        stderr.contains("RUN echo fell over >&2; exit 7: exited with code 7"),
        "{stderr}"
    );
    assert!(stderr.contains("fell over"), "{stderr}");
    assert!(
        stderr.contains(&format!("last good step: {first}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("strata run --rm -it {short} sh")),
        "{stderr}"
    );
    inspect(&env, short);
}

/// The `cache miss:` reasons plain progress printed for the step whose text contains `step`.
fn misses(stderr: &[u8], step: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr);
    // Metadata steps are not shown: their reasons name them as `(TEXT) cache miss: …`.
    let hidden = format!("({step}) cache miss: ");
    if text.lines().any(|l| l.starts_with(&hidden)) {
        return text
            .lines()
            .filter_map(|l| l.strip_prefix(&hidden))
            .map(str::to_string)
            .collect();
    }
    let number = text
        .lines()
        .find(|l| l.contains(step) && l.contains("] "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no step {step} in {text}"))
        .to_string();
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{number} cache miss: ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn explain_cache_says_why_each_step_missed() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            ("Dockerfile", "FROM busybox:local\nARG V=1\nARG API_TOKEN=a\nCOPY files/ /f/\nRUN echo $V $API_TOKEN > /v\n"),
            ("files/a", "a"),
            ("files/b", "b"),
        ],
    );
    let ctx = dir.to_str().unwrap();
    let explain = |args: &[&str]| {
        let mut all = vec!["build", "--progress=plain", "--explain-cache", "-t", "x:1"];
        all.extend_from_slice(args);
        all.push(ctx);
        let out = env.run(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stderr
    };
    let first = explain(&[]);
    assert_eq!(
        misses(&first, "COPY files/"),
        ["no earlier build of this step"]
    );
    assert!(
        misses(&explain(&[]), "COPY files/").is_empty(),
        "all cached"
    );

    write_files(&dir, &[("files/a", "A"), ("files/c", "c")]);
    std::fs::remove_file(dir.join("files/b")).unwrap();
    let out = explain(&[]);
    assert_eq!(
        misses(&out, "COPY files/"),
        ["context files changed: added files/c; removed files/b; changed files/a"]
    );
    assert_eq!(misses(&out, "RUN echo"), ["parent step missed"]);

    let out = explain(&[
        "--build-arg",
        "V=2",
        "--build-arg",
        "API_TOKEN=secret-value",
    ]);
    let run = misses(&out, "RUN echo");
    assert!(
        run.contains(&"build arg V changed: \"1\" -> \"2\"".to_string()),
        "{run:?}"
    );
    assert!(
        run.contains(&"build arg API_TOKEN changed (secret: values not shown)".to_string()),
        "{run:?}"
    );
    assert!(!String::from_utf8_lossy(&out).contains("secret-value: values"));

    std::fs::write(dir.join("Dockerfile"), "FROM busybox:local\nARG V=1\nARG API_TOKEN=a\nCOPY files/ /g/\nRUN echo $V $API_TOKEN > /v\n").unwrap();
    let out = explain(&[
        "--build-arg",
        "V=2",
        "--build-arg",
        "API_TOKEN=secret-value",
    ]);
    assert_eq!(
        misses(&out, "COPY files/"),
        ["instruction changed: \"COPY files/ /f/\" -> \"COPY files/ /g/\""]
    );

    // A different image under the base's name.
    let tar = strata_testkit::busybox::rootfs_tar();
    let other = env
        .ok(&[
            "import",
            "-c",
            "ENV OTHER=1",
            tar.to_str().unwrap(),
            "busybox:local",
        ])
        .trim()
        .to_string();
    let out = explain(&[
        "--build-arg",
        "V=2",
        "--build-arg",
        "API_TOKEN=secret-value",
    ]);
    // ARG V=1 is not recorded on its own (the next step is metadata too): the run of
    // metadata steps is explained at its last step.
    let arg = misses(&out, "ARG API_TOKEN=a");
    assert_eq!(arg[1], "env OTHER changed: (unset) -> \"1\"", "{arg:?}");
    assert!(
        arg[0].starts_with("base changed: busybox:local sha256:")
            && arg[0].ends_with(&format!("busybox:local {other}")),
        "{arg:?}"
    );

    assert_eq!(
        misses(
            &explain(&["--no-cache", "--build-arg", "V=2"]),
            "COPY files/"
        ),
        ["--no-cache"]
    );

    // Another Dockerfile sharing the prefix: compared with the step on the same parent.
    std::fs::write(
        dir.join("other.Dockerfile"),
        "FROM busybox:local\nARG V=1\nARG API_TOKEN=a\nCOPY files/ /g/\nRUN echo other\n",
    )
    .unwrap();
    let other_file = dir.join("other.Dockerfile");
    let out = env.run(&[
        "build",
        "--progress=plain",
        "--explain-cache",
        "--build-arg",
        "V=2",
        "-f",
        other_file.to_str().unwrap(),
        ctx,
    ]);
    assert!(out.status.success());
    assert_eq!(
        misses(&out.stderr, "RUN echo other"),
        ["instruction changed: \"RUN echo $V $API_TOKEN > /v\" -> \"RUN echo other\""]
    );
}

#[test]
fn builder_prune_and_df_show_the_build_cache() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY f /f\nRUN echo x > /x\n",
            ),
            ("f", "1"),
        ],
    );
    build(&env, &dir, "keep:1");
    let other = env.path("ctx2");
    write_files(
        &other,
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY f /f\nRUN echo x > /x\n",
            ),
            ("f", "2"),
        ],
    );
    let ctx = dir.to_str().unwrap();
    let dropped = env
        .ok(&["build", "-q", other.to_str().unwrap()])
        .trim()
        .to_string();
    let df = env.ok(&["system", "df"]);
    let row = df.lines().find(|l| l.starts_with("Build Cache")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[2..4], ["4", "4"], "{df}");
    assert_ne!(
        cols[5], "0B",
        "the untagged build's layers are reclaimable: {df}"
    );

    let out = env.ok(&["builder", "prune", "-f"]);
    assert!(
        out.contains("Deleted build cache objects:") && out.contains("Total reclaimed space: "),
        "{out}"
    );
    assert!(!env
        .ok(&["images", "-a", "-q", "--no-trunc"])
        .contains(&dropped));
    // What keep:1 needs stays cached.
    let again = env.run(&["build", "-t", "keep:1", ctx]);
    let progress = String::from_utf8_lossy(&again.stderr);
    assert!(
        progress.contains("CACHED") && !progress.contains("DONE"),
        "{progress}"
    );
    env.ok(&["system", "prune", "-a", "-f"]);
    let df = env.ok(&["system", "df"]);
    let row = df.lines().find(|l| l.starts_with("Build Cache")).unwrap();
    assert_eq!(row.split_whitespace().nth(2), Some("0"), "{df}");
    env.ok(&["system", "check"]);
}

/// Differential: `-o type=docker` loads into Docker with the same image ID and runs there;
/// `type=oci` loads into podman.
#[test]
#[ignore = "differential: needs the reference tools (../shared/tools/anchors-up); run scripts/differential"]
fn build_outputs_load_in_docker_and_podman() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                "FROM busybox:local\nCOPY a /a\nRUN echo hi > /hi\n",
            ),
            ("a", "from-context\n"),
        ],
    );
    let docker_tar = env.path("d.tar");
    let oci_tar = env.path("o.tar");
    let id = env
        .ok(&[
            "build",
            "-q",
            "-t",
            "strata-diff/build-out:1",
            "-o",
            &format!("type=docker,dest={}", docker_tar.display()),
            "-o",
            &format!("type=oci,dest={}", oci_tar.display()),
            dir.to_str().unwrap(),
        ])
        .trim()
        .to_string();
    let sh = |cmd: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sh(&format!("/usr/bin/docker load -i {}", docker_tar.display()));
    let docker_id = sh("/usr/bin/docker inspect -f '{{.Id}}' strata-diff/build-out:1");
    let ran = sh("/usr/bin/docker run --rm strata-diff/build-out:1 cat /a /hi");
    sh("/usr/bin/docker rmi strata-diff/build-out:1");
    assert_eq!(docker_id.trim(), id);
    assert_eq!(ran, "from-context\nhi\n");
    let loaded = sh(&format!("podman load -i {}", oci_tar.display()));
    sh("podman rmi -f docker.io/strata-diff/build-out:1");
    assert!(loaded.contains("strata-diff/build-out:1"), "{loaded}");
}

#[test]
fn a_failed_step_log_is_never_clipped() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN i=0; while [ $i -lt 3000 ]; do echo output-line-$i; i=$((i+1)); done; exit 5\n",
        )],
    );
    for progress in ["plain", "tty"] {
        let out = env.run(&["build", "--progress", progress, dir.to_str().unwrap()]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The live view shows a tail; the full log follows once it is erased.
        let log = match progress {
            "tty" => stderr
                .split("full output of")
                .nth(1)
                .unwrap_or_else(|| panic!("{stderr}")),
            _ => &stderr,
        };
        for i in [0, 1500, 2999] {
            assert!(
                log.contains(&format!("output-line-{i}\n")),
                "{progress}: line {i}"
            );
        }
        assert!(stderr.contains("exited with code 5"), "{stderr}");
    }
}

#[test]
fn rmi_of_a_built_image_deletes_its_untagged_step_images() {
    let env = Env::new();
    let base = env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local\nRUN echo a > /a\nRUN echo b > /b\nENV X=1\n",
        )],
    );
    build(&env, &dir, "steps:1");
    build(&env, &dir, "steps:2");
    let all = |env: &Env| {
        env.ok(&["images", "-a", "-q", "--no-trunc"])
            .lines()
            .count()
    };
    assert_eq!(
        all(&env),
        4,
        "busybox + three step images, the last one tagged twice"
    );
    // Another tag keeps everything.
    let out = env.ok(&["rmi", "steps:1"]);
    assert!(out.contains("Untagged: steps:1"), "{out}");
    assert_eq!(all(&env), 4);
    // --no-prune keeps the untagged parents, as Docker.
    let out = env.ok(&["rmi", "--no-prune", "steps:2"]);
    assert_eq!(out.matches("Deleted:").count(), 1, "{out}");
    assert_eq!(all(&env), 3);
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted"), "{out}");

    // Without --no-prune, the step images go with the image; the base stays.
    build(&env, &dir, "steps:3");
    assert_eq!(all(&env), 4);
    let out = env.ok(&["rmi", "steps:3"]);
    assert_eq!(out.matches("Deleted:").count(), 3, "{out}");
    let left = env.ok(&["images", "-a", "-q", "--no-trunc"]);
    assert_eq!(left.trim(), base.trim(), "only the base is left");
}

#[test]
fn plain_progress_names_steps_as_buildkit() {
    // Docker 20.10's BuildKit printed these names for the same Dockerfile: the FROM of an image
    // is step 1 of its stage; a stage FROM another stage or scratch starts at its first
    // instruction; stage names only in multi-stage builds; indexes padded to the total's width.
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            "FROM busybox:local AS build\nRUN echo a > /a\nFROM build\nRUN echo b\n\
             FROM scratch\nCOPY --from=1 /a /a\n",
        )],
    );
    let out = env.run(&["build", "--progress=plain", dir.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    let names: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" ["))
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        names,
        [
            "[build 1/2] FROM docker.io/library/busybox:local",
            "[build 2/2] RUN echo a > /a",
            "[stage-1 1/1] RUN echo b",
            "[stage-2 1/1] COPY --from=1 /a /a",
        ],
        "{text}"
    );
    // Metadata instructions are neither shown nor counted (Docker 20.10 printed `[ 1/11]` for
    // FROM, ten ENV, ten RUN and a USER).
    let mut df = String::from("FROM busybox:local\n");
    df.extend((0..10).map(|i| format!("ENV V{i}=1\n")));
    df.extend((0..10).map(|i| format!("RUN true {i}\n")));
    df.push_str("USER nobody\n");
    let dir = context(&env, &[("Dockerfile", df.as_str())]);
    let out = env.run(&["build", "--progress=plain", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("#1 [ 1/11] FROM docker.io/library/busybox:local\n"),
        "{text}"
    );
    assert!(text.contains("#2 [ 2/11] RUN true 0\n"), "{text}");
    assert!(text.contains("#11 [11/11] RUN true 9\n"), "{text}");
    assert!(!text.contains("ENV") && !text.contains("USER"), "{text}");
}

/// Issue 12: a one-file change of a `COPY .` links the unchanged files from the step's
/// previous layer. The result must equal a `--no-cache` build, and writes over a linked file
/// (a later RUN, a container) must never reach the earlier image.
#[test]
fn one_changed_file_rebuilds_as_no_cache_and_leaves_the_old_image_alone() {
    let env = Env::new();
    env.import_busybox();
    let mut files: Vec<(String, String)> = (0..40)
        .map(|i| (format!("d{}/f{i}.txt", i % 4), format!("file {i}\n")))
        .collect();
    files.push(("keep".into(), "original\n".into()));
    files.push(("flag".into(), "0\n".into()));
    files.push((
        "Dockerfile".into(),
        "FROM busybox:local\nCOPY . /src\n\
         RUN if grep -q 1 /src/flag; then echo changed >> /src/keep; chmod 600 /src/keep; fi\n"
            .into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let dir = context(&env, &refs);
    let ctx = dir.to_str().unwrap();
    let sde = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    let build_as = |tag: &str, extra: &[&str]| {
        let mut args = vec!["build", "-q", "-t", tag];
        args.extend_from_slice(&sde);
        args.extend_from_slice(extra);
        args.push(ctx);
        env.ok(&args).trim().to_string()
    };
    let v1 = build_as("app:1", &[]);
    let v1_layers = common::saved_layers(&env, "app:1");
    let show = "cat /src/keep; stat -c %a /src/keep; cat /src/d1/f1.txt";
    let v1_view = env.ok(&["run", "--rm", "app:1", "sh", "-c", show]);
    assert_eq!(v1_view, "original\n644\nfile 1\n");

    std::fs::write(dir.join("flag"), "1\n").unwrap();
    let v2 = build_as("app:2", &[]);
    assert_ne!(v2, v1);
    let v3 = build_as("app:3", &["--no-cache"]);
    assert_eq!(v2, v3, "the rebuilt image equals a --no-cache build");
    assert_eq!(
        env.ok(&["run", "--rm", "app:2", "sh", "-c", show]),
        "original\nchanged\n600\nfile 1\n"
    );
    // A container of the new image writes over files it shares with the old one.
    env.ok(&[
        "run",
        "--rm",
        "app:2",
        "sh",
        "-c",
        "echo more >> /src/d1/f1.txt; chmod 700 /src/d1/f1.txt; rm /src/keep",
    ]);

    // The old image: same layers, and its snapshots still hold the old files.
    assert_eq!(inspect(&env, "app:1")["Id"], v1);
    assert_eq!(common::saved_layers(&env, "app:1"), v1_layers);
    assert_eq!(env.ok(&["run", "--rm", "app:1", "sh", "-c", show]), v1_view);
    assert_eq!(
        env.ok(&["run", "--rm", "app:2", "sh", "-c", show]),
        "original\nchanged\n600\nfile 1\n"
    );
    env.ok(&["system", "check"]);
}

/// Issue 12: a COPY and the context read report files and bytes done (every report here:
/// the interval is 0; users get one a second after the first second).
#[test]
fn copy_and_context_progress_count_files_and_bytes() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            ("Dockerfile", "FROM busybox:local\nCOPY . /src\n"),
            ("a", "aaaa"),
            ("d/b", "bb"),
        ],
    );
    let progress = |mode: &str| {
        let out = env
            .cmd(&["build", "--progress", mode, dir.to_str().unwrap()])
            .env("STRATA_BUILD_PROGRESS_INTERVAL_MS", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stderr
    };
    let last = |events: &[serde_json::Value], kind: &str| {
        let all: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == kind).collect();
        assert!(all.len() >= 2, "{kind}: {events:?}");
        assert!(all[..all.len() - 1].iter().all(|e| e["done"] == false));
        all[all.len() - 1].clone()
    };
    let first = events(&progress("json"));
    let read = last(&first, "context_progress");
    assert_eq!(
        (read["files"].as_u64(), read["done"].as_bool()),
        (Some(3), Some(true))
    );
    let df = "FROM busybox:local\nCOPY . /src\n".len() as u64;
    assert_eq!(read["bytes"].as_u64(), Some(df + 4 + 2));
    let copy = last(&first, "step_progress");
    assert_eq!(copy["step"], 0);
    assert_eq!(
        (
            copy["files"].as_u64(),
            copy["bytes"].as_u64(),
            copy["linked"].as_u64()
        ),
        (Some(3), Some(df + 4 + 2), Some(0))
    );

    // One changed file: one file read, the other two linked from the previous build.
    std::fs::write(dir.join("a"), "AAAAA").unwrap();
    let second = events(&progress("json"));
    let read = last(&second, "context_progress");
    assert_eq!(
        (read["files"].as_u64(), read["bytes"].as_u64()),
        (Some(1), Some(5))
    );
    let copy = last(&second, "step_progress");
    assert_eq!(
        (copy["files"].as_u64(), copy["linked"].as_u64()),
        (Some(3), Some(2))
    );

    std::fs::write(dir.join("a"), "again").unwrap();
    let plain = String::from_utf8_lossy(&progress("plain")).into_owned();
    assert!(
        plain.contains("#0 transferring context: 1 file, 5B done\n"),
        "{plain}"
    );
    let copied = format!(
        "#2 copying: 3 files, {}B (2 linked from the previous build) done\n",
        df + 5 + 2
    );
    assert!(plain.contains(&copied), "{plain}");
}
