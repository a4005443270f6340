//! End to end: the Dockerfile semantics BuildKit has beyond the basics (ADD of bzip2/xz
//! archives and URLs, heredocs, COPY --parents/--exclude/--link, RUN mounts, ONBUILD, RUN on
//! the vfs driver), through the real binary on a busybox base made from Debian's busybox-static.
//! Each expectation was checked against Docker 20.10 + BuildKit.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use common::{build, inspect, saved_layers as layers, Env, LayerNode as Node};
use strata_testkit::TarBuilder;

/// Contexts here mix text and binary files: the byte-slice form of `common::context`.
fn context(env: &Env, files: &[(&str, &[u8])]) -> PathBuf {
    common::context(env, files)
}

/// Files of mode 0640 (not the builder's default 0644, so the test sees modes kept).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    files
        .iter()
        .fold(TarBuilder::new(), |b, (name, body)| {
            b.file_owned(name, body, 0o640, 0, 0)
        })
        .finish()
}

#[test]
fn add_extracts_bzip2_and_xz_archives_but_copy_does_not() {
    let env = Env::new();
    env.import_busybox();
    let tar = tar_of(&[("d/a.txt", b"from the archive\n")]);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    bz.write_all(&tar).unwrap();
    let bz = bz.finish().unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                b"FROM busybox:local\nADD a.tar.bz2 /bz/\nADD a.tar.xz /xz/\nCOPY a.tar.xz /copied/\n",
            ),
            ("a.tar.bz2", &bz),
            ("a.tar.xz", &xz),
        ],
    );
    build(&env, &dir, "arch:1");
    let layers = layers(&env, "arch:1");
    let n = layers.len();
    for (layer, root) in [(&layers[n - 3], "bz"), (&layers[n - 2], "xz")] {
        let file = &layer[&format!("{root}/d/a.txt")];
        assert_eq!(file.data, b"from the archive\n");
        // The archive's own mode and mtime are kept, as BuildKit keeps them.
        assert_eq!((file.mode, file.mtime), (0o640, 1_000_000));
    }
    assert_eq!(layers[n - 1]["copied/a.tar.xz"].data, xz);
}

#[test]
fn heredocs_in_copy_and_run() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            b"FROM busybox:local\nARG NAME=world\n\
COPY <<EOF /hello.txt\nhello $NAME\nEOF\n\
COPY <<\"EOF\" /raw.txt\nhello $NAME\nEOF\n\
COPY --chmod=0755 <<a.sh <<b.txt /dir/\necho a\na.sh\nb $NAME\nb.txt\n\
RUN <<EOF\necho \"plain $NAME\" > /r1\nEOF\n\
RUN <<EOF\n#!/bin/sh -e\necho \"shebang $0\" > /r2\nEOF\n\
RUN cat <<A > /r3 && sh <<B\nx $NAME\nA\necho y > /r4\nB\n",
        )],
    );
    build(&env, &dir, "hd:1");
    let all: BTreeMap<String, Node> = layers(&env, "hd:1").into_iter().flatten().collect();
    assert_eq!(all["hello.txt"].data, b"hello world\n");
    assert_eq!(all["hello.txt"].mode, 0o644);
    // A quoted delimiter keeps the body verbatim.
    assert_eq!(all["raw.txt"].data, b"hello $NAME\n");
    assert_eq!(
        (all["dir/a.sh"].mode, &all["dir/b.txt"].data[..]),
        (0o755, &b"b world\n"[..])
    );
    // RUN bodies are run by the shell (which expands them), a `#!` body as /dev/pipes/EOF.
    assert_eq!(all["r1"].data, b"plain world\n");
    assert_eq!(all["r2"].data, b"shebang /dev/pipes/EOF\n");
    assert_eq!(all["r3"].data, b"x world\n");
    assert_eq!(all["r4"].data, b"y\n");
    assert!(
        !all.keys().any(|k| k.starts_with("dev/")),
        "{:?}",
        all.keys()
    );
    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "hd:1",
    ]);
    assert!(
        history
            .lines()
            .any(|h| h == "COPY <<a.sh <<b.txt /dir/ # buildkit"),
        "{history}"
    );
}

#[test]
fn copy_parents_exclude_and_link() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                b"FROM busybox:local\n\
COPY --parents a/b/*.txt x/./y/z.txt /p/\n\
COPY --exclude=*.md --exclude=skip src /e/\n\
COPY --link src/keep.txt /l/\n",
            ),
            ("a/b/one.txt", b"1"),
            ("a/b/two.md", b"2"),
            ("x/y/z.txt", b"z"),
            ("src/keep.txt", b"k"),
            ("src/doc.md", b"d"),
            ("src/sub/deep.md", b"d"),
            ("src/skip/f", b"f"),
        ],
    );
    std::fs::set_permissions(
        dir.join("a/b"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    build(&env, &dir, "pe:1");
    let layers = layers(&env, "pe:1");
    let n = layers.len();
    let names = |l: &BTreeMap<String, Node>| l.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&layers[n - 3]),
        ["p", "p/a", "p/a/b", "p/a/b/one.txt", "p/y", "p/y/z.txt"]
    );
    // Parent directories come from the context, with its modes.
    assert_eq!(layers[n - 3]["p/a/b"].mode, 0o750);
    // `*.md` does not cross `/`: sub/deep.md stays; an excluded directory takes its contents.
    assert_eq!(
        names(&layers[n - 2]),
        ["e", "e/keep.txt", "e/sub", "e/sub/deep.md"]
    );
    assert_eq!(names(&layers[n - 1]), ["l", "l/keep.txt"]);
}

#[test]
fn run_mounts_cache_tmpfs_bind_and_secret() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                b"FROM busybox:local AS tools\nRUN echo tool > /tool\n\
FROM busybox:local\n\
RUN --mount=type=cache,target=/cache,mode=0700,uid=5 ls -ldn /cache | cut -c1-20 > /o1 && echo x >> /cache/n\n\
RUN --mount=type=cache,target=/cache,mode=0700,uid=5,sharing=locked cat /cache/n > /o2\n\
RUN --mount=type=tmpfs,target=/scratch touch /scratch/a && ls /scratch > /o3\n\
RUN --mount=source=sub,target=/b cat /b/f > /o4 && (touch /b/w 2>/dev/null || echo ro > /o5)\n\
RUN --mount=source=sub,target=/c,rw touch /c/w && ls /c > /o6\n\
RUN --mount=from=tools,source=/tool,target=/t cat /t > /o7\n\
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /o8 && ls -ln /run/secrets | grep tok | cut -c1-10 > /o9\n\
RUN --mount=type=secret,id=tok,env=TOKEN echo \"$TOKEN\" > /o10\n\
RUN --mount=type=secret,id=absent echo fine > /o11\n",
            ),
            ("sub/f", b"ctx\n"),
            ("sub/ignored", b"no\n"),
            (".dockerignore", b"sub/ignored\n"),
        ],
    );
    let secret = env.path("token.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let secret_flag = format!("id=tok,src={}", secret.display());
    env.ok(&[
        "build",
        "-q",
        "--secret",
        &secret_flag,
        "-t",
        "mnt:1",
        dir.to_str().unwrap(),
    ]);
    let mnt_layers = layers(&env, "mnt:1");
    let all: BTreeMap<String, Node> = mnt_layers
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let text = |k: &str| String::from_utf8_lossy(&all[k].data).into_owned();
    assert_eq!(text("o1"), "drwx------    2 5   \n");
    assert_eq!(text("o2"), "x\n");
    assert_eq!(text("o3"), "a\n");
    assert_eq!((text("o4"), text("o5")), ("ctx\n".into(), "ro\n".into()));
    // The context as the build sees it (.dockerignore applies); rw writes are discarded.
    assert_eq!(text("o6"), "f\nw\n");
    assert!(!dir.join("sub/w").exists());
    assert_eq!(text("o7"), "tool\n");
    assert_eq!(text("o8"), "s3cret");
    assert_eq!(text("o9"), "-r--------\n");
    assert_eq!(text("o10"), "s3cret\n");
    assert_eq!(text("o11"), "fine\n");
    // Nothing of the mounts is in any layer: no targets, no cache or secret contents.
    for layer in &mnt_layers[1..] {
        for k in layer.keys() {
            assert!(
                !["cache", "scratch", "b", "c", "t", "run"]
                    .iter()
                    .any(|m| k == m || k.starts_with(&format!("{m}/"))),
                "{k} leaked into a layer"
            );
        }
    }
    // A bound context file is an input of the RUN: changing it is a cache miss.
    std::fs::write(dir.join("sub/f"), "ctx2\n").unwrap();
    env.ok(&[
        "build",
        "-q",
        "--secret",
        &secret_flag,
        "-t",
        "mnt:1b",
        dir.to_str().unwrap(),
    ]);
    let again: BTreeMap<String, Node> = layers(&env, "mnt:1b").into_iter().flatten().collect();
    assert_eq!(again["o4"].data, b"ctx2\n");
    // The cache persists across builds.
    std::fs::write(dir.join("Dockerfile"), "FROM busybox:local\nRUN --mount=type=cache,target=/cache,mode=0700,uid=5 cat /cache/n > /again\n").unwrap();
    build(&env, &dir, "mnt:2");
    assert_eq!(layers(&env, "mnt:2").pop().unwrap()["again"].data, b"x\n");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nRUN --mount=type=ssh true\n",
    )
    .unwrap();
    let err = env.fails(&["build", "-q", "-t", "mnt:3", dir.to_str().unwrap()]);
    assert!(err.contains("type=ssh"), "{err}");
    env.ok(&["system", "check"]);
}

#[test]
fn onbuild_triggers_run_after_from_and_are_cleared() {
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[
            (
                "Dockerfile",
                b"FROM busybox:local\nONBUILD COPY trig.txt /trig.txt\nONBUILD RUN echo ran > /ran\n",
            ),
            ("trig.txt", b"t\n"),
        ],
    );
    build(&env, &dir, "parent:1");
    let v = inspect(&env, "parent:1");
    assert_eq!(v["Config"]["OnBuild"].as_array().unwrap().len(), 2);
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM parent:1\nRUN cat /trig.txt /ran > /both\n",
    )
    .unwrap();
    build(&env, &dir, "child:1");
    let all: BTreeMap<String, Node> = layers(&env, "child:1").into_iter().flatten().collect();
    assert_eq!(all["both"].data, b"t\nran\n");
    assert!(inspect(&env, "child:1")["Config"]["OnBuild"].is_null());
    let history = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "child:1",
    ]);
    assert!(
        history.contains("COPY trig.txt /trig.txt # buildkit"),
        "{history}"
    );

    // Triggers of an earlier stage run in a stage built FROM it.
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local AS base\nONBUILD RUN echo staged > /s\nFROM base\nRUN cat /s > /t\n",
    )
    .unwrap();
    build(&env, &dir, "child:2");
    let all: BTreeMap<String, Node> = layers(&env, "child:2").into_iter().flatten().collect();
    assert_eq!(all["t"].data, b"staged\n");
}

#[test]
fn run_on_vfs_gives_the_same_layers_as_on_overlay() {
    let dockerfile = b"FROM busybox:local\n\
RUN mkdir -p /app/sub && echo a > /app/a && echo b > /app/sub/b && ln /app/sub/b /app/hard && ln -s a /app/soft && echo gone > /app/gone\n\
RUN echo changed > /app/a && rm /app/gone && chmod 0700 /app/sub && rm /bin/true && mkdir /new\n";
    let mut results = Vec::new();
    for driver in ["overlay", "vfs"] {
        let env = Env::new();
        let tar = strata_testkit::busybox::rootfs_tar();
        env.ok(&[
            "--storage-driver",
            driver,
            "import",
            tar.to_str().unwrap(),
            "busybox:local",
        ]);
        let dir = context(&env, &[("Dockerfile", dockerfile)]);
        let out = env
            .cmd(&["build", "-q", "-t", "v:1", dir.to_str().unwrap()])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{driver}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = inspect(&env, "v:1");
        let top = layers(&env, "v:1").pop().unwrap();
        assert!(
            top.contains_key("app/.wh.gone") && top.contains_key("bin/.wh.true"),
            "{driver}: {:?}",
            top.keys()
        );
        assert_eq!(top["app/a"].data, b"changed\n");
        assert_eq!(top["app/sub"].mode, 0o700);
        assert!(top.contains_key("new"));
        env.ok(&["system", "check"]);
        // (Image IDs differ: the imported base is dated at import time.)
        results.push((top, v["RootFS"]["Layers"].clone()));
    }
    // (Modifying a hardlinked file is left out: overlayfs breaks the link on copy-up, a plain
    // tree does not, so the two drivers rightly differ there.)
    assert_eq!(results[0].0, results[1].0, "the RUN's layer");
    assert_eq!(results[0], results[1]);
}

/// A tiny HTTP/1.1 server on 127.0.0.1 answering every GET with `body` (a 404 for paths
/// ending in `missing`), Last-Modified fixed; returns its base URL.
fn serve(body: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> String {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap_or(0);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let data = body.lock().unwrap().clone();
            let head = if first.split(' ').nth(1).unwrap_or("").ends_with("missing") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                    data.len()
                )
            };
            let _ = conn.write_all(head.as_bytes());
            if head.contains("200") {
                let _ = conn.write_all(&data);
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_downloads_urls_with_checksums_and_last_modified() {
    let env = Env::new();
    env.import_busybox();
    let tar = tar_of(&[("inside.txt", b"not extracted")]);
    let body = std::sync::Arc::new(std::sync::Mutex::new(tar.clone()));
    let base = serve(body.clone());
    let sum: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&tar)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let dockerfile = format!(
        "FROM busybox:local\nADD {base}/files/data.tar /d/\nADD --checksum=sha256:{sum} {base}/files/data.tar?x=1 /named\nADD --chmod=0644 {base}/ /root.bin\n"
    );
    let dir = context(&env, &[("Dockerfile", dockerfile.as_bytes())]);
    build(&env, &dir, "url:1");
    let all: BTreeMap<String, Node> = layers(&env, "url:1").into_iter().flatten().collect();
    let file = &all["d/data.tar"];
    assert_eq!(
        (file.mode, file.mtime, &file.data),
        (0o600, 1_445_412_480, &tar)
    );
    assert_eq!(all["named"].data, tar);
    assert_eq!(all["root.bin"].mode, 0o644);
    // Checked against Docker 20.10 + BuildKit: 0600, Last-Modified as mtime, not extracted.
    assert!(!all.contains_key("d/inside.txt"));

    // Same content: a cached rebuild. New content: the steps run again.
    let out = env.run(&["build", "-t", "url:1", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("CACHED"));
    let id1 = inspect(&env, "url:1")["Id"].clone();
    *body.lock().unwrap() = b"changed".to_vec();
    let err = env.fails(&["build", "-q", "-t", "url:2", dir.to_str().unwrap()]);
    assert!(err.contains("checksum mismatch"), "{err}");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM busybox:local\nADD {base}/files/data.tar /d/\n"),
    )
    .unwrap();
    build(&env, &dir, "url:3");
    assert_ne!(inspect(&env, "url:3")["Id"], id1);
    assert_eq!(
        layers(&env, "url:3").pop().unwrap()["d/data.tar"].data,
        b"changed"
    );

    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM busybox:local\nADD {base}/missing /m\n"),
    )
    .unwrap();
    let err = env.fails(&["build", "-q", "-t", "url:4", dir.to_str().unwrap()]);
    assert!(err.contains("404"), "{err}");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox:local\nADD https://github.com/a/b.git /src\n",
    )
    .unwrap();
    let err = env.fails(&["build", "-q", "-t", "url:5", dir.to_str().unwrap()]);
    assert!(err.contains("git"), "{err}");
}

#[test]
fn locked_cache_mounts_serialise_parallel_stages() {
    let env = Env::new();
    env.import_busybox();
    let run = |n: &str| {
        format!(
            "RUN --mount=type=cache,target=/c,sharing=locked echo start-{n} >> /c/log && sleep 1 && echo end-{n} >> /c/log && cp /c/log /out\n"
        )
    };
    let dockerfile = format!(
        "FROM busybox:local AS a\n{}FROM busybox:local AS b\n{}FROM busybox:local\nCOPY --from=a /out /a\nCOPY --from=b /out /b\n",
        run("a"),
        run("b")
    );
    let dir = context(&env, &[("Dockerfile", dockerfile.as_bytes())]);
    build(&env, &dir, "locked:1");
    let all: BTreeMap<String, Node> = layers(&env, "locked:1").into_iter().flatten().collect();
    let (a, b) = (
        String::from_utf8_lossy(&all["a"].data).into_owned(),
        String::from_utf8_lossy(&all["b"].data).into_owned(),
    );
    let longer = if a.len() > b.len() { a } else { b };
    let lines: Vec<&str> = longer.lines().collect();
    assert_eq!(lines.len(), 4, "{longer}");
    // Each step's start and end are adjacent: the second waited for the first.
    assert_eq!(lines[0].replace("start", "end"), lines[1], "{longer}");
    assert_eq!(lines[2].replace("start", "end"), lines[3], "{longer}");
}

#[test]
fn context_names_that_are_not_utf8_are_copied_and_special_files_skipped_as_buildkit() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.import_busybox();
    let dir = context(
        &env,
        &[(
            "Dockerfile",
            b"FROM busybox:local\nCOPY . /src/\nCOPY pipe /f\n\
              RUN test -f \"/src/$(printf 'caf\\351.txt')\" && test ! -e /src/pipe && test ! -e /f\n",
        )],
    );
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(dir.join(name), "x").unwrap();
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Docker 20.10 + BuildKit: the name's bytes are kept; a FIFO is not copied (no error).
    build(&env, &dir, "names:1");
}
