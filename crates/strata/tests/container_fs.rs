//! End to end: `diff`, `commit`, `export`, `cp` and `top` through the real binary, on
//! containers made from the busybox image. Containers are created through the library
//! (`strata_container::create`) so these tests do not depend on `strata create`'s flags.

mod common;

use std::io::Read;
use std::path::Path;

use common::Env;
use strata_container::{create, CreateOptions};
use strata_store::{Store, StoreOptions};

fn container(env: &Env, image: &str, cmd: &[&str]) -> String {
    let store = Store::open(&env.root(), &StoreOptions::default()).unwrap();
    let opts = CreateOptions {
        image: image.to_owned(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..CreateOptions::default()
    };
    create(&store, &opts).unwrap().name
}

fn tar_entries(bytes: &[u8]) -> Vec<(String, String)> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut body = String::new();
            let _ = e.read_to_string(&mut body);
            (name, body)
        })
        .collect()
}

#[test]

fn cp_diff_commit_export_round_trip() {
    let env = Env::new();
    env.import_busybox();
    let ctr = container(&env, "busybox:local", &["sh", "-c", "echo hi > /tmp/x"]);
    assert_eq!(env.ok(&["diff", &ctr]), "");

    let greeting = env.path("greeting");
    std::fs::write(&greeting, "hello from the host").unwrap();
    env.ok(&["cp", greeting.to_str().unwrap(), &format!("{ctr}:/etc/")]);
    assert_eq!(env.ok(&["diff", &ctr]), "C /etc\nA /etc/greeting\n");
    let back = env.path("back");
    env.ok(&[
        "cp",
        &format!("{ctr}:/etc/greeting"),
        back.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "hello from the host"
    );

    let id = env.ok(&[
        "commit",
        "-m",
        "added a greeting",
        "-c",
        "ENV STAGE=2",
        &ctr,
        "greeted:1",
    ]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    let image = common::inspect(&env, "greeted:1");
    assert_eq!(image["Id"].as_str().unwrap(), id.trim());
    assert_eq!(image["Config"]["Env"][0], "STAGE=2");
    assert_eq!(image["Config"]["Cmd"][2], "echo hi > /tmp/x");
    assert_eq!(image["Comment"], "added a greeting");

    let child = container(&env, "greeted:1", &["true"]);
    assert_eq!(
        env.ok(&["diff", &child]),
        "",
        "the committed file is the image's now"
    );
    let out = env
        .cmd(&["cp", &format!("{child}:/etc/greeting"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        tar_entries(&out.stdout),
        [("greeting".to_owned(), "hello from the host".to_owned())]
    );

    let exported = env.path("fs.tar");
    env.ok(&["export", "-o", exported.to_str().unwrap(), &child]);
    let entries = tar_entries(&std::fs::read(&exported).unwrap());
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    for want in ["bin/busybox", "etc/greeting", "etc/passwd", "tmp"] {
        assert!(names.contains(&want), "{want} not exported: {names:?}");
    }
    let out = env.cmd(&["export", &child]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(tar_entries(&out.stdout).len(), entries.len());
}

#[test]

fn cp_never_reads_or_writes_host_paths() {
    let env = Env::new();
    env.import_busybox();
    let ctr = container(&env, "busybox:local", &["true"]);
    // Plant hostile links in the container: to the host's shadow file, to /, and upwards.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, target) in [
        ("evil", "/etc/shadow"),
        ("up", "/"),
        ("escape", "../../../../etc"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        tar.append_link(&mut h, name, target).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(16);
    tar.append_data(&mut h, "etc/shadow", &b"container shadow"[..])
        .unwrap();
    let planted = env.path("planted.tar");
    std::fs::write(&planted, tar.into_inner().unwrap()).unwrap();
    let status = env
        .cmd(&["cp", "-", &format!("{ctr}:/")])
        .stdin(std::fs::File::open(&planted).unwrap())
        .status()
        .unwrap();
    assert!(status.success());

    for src in [
        "/evil",
        "/up/etc/shadow",
        "../../../etc/shadow",
        "/escape/shadow",
    ] {
        let dest = env.path("read");
        let _ = std::fs::remove_file(&dest);
        env.ok(&["cp", "-L", &format!("{ctr}:{src}"), dest.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(&dest).unwrap(),
            "container shadow",
            "{src}"
        );
    }
    let marker = format!("strata-e2e-cp-{}", std::process::id());
    let src = env.path("payload");
    std::fs::write(&src, "payload").unwrap();
    for dest in [
        format!("/up/tmp/{marker}"),
        format!("/escape/{marker}"),
        format!("../../../../tmp/{marker}"),
    ] {
        env.ok(&["cp", src.to_str().unwrap(), &format!("{ctr}:{dest}")]);
    }
    for host in [format!("/tmp/{marker}"), format!("/etc/{marker}")] {
        assert!(!Path::new(&host).exists(), "{host} was written on the host");
    }
    let diff = env.ok(&["diff", &ctr]);
    assert!(diff.contains(&format!("A /etc/{marker}")), "{diff}");
    assert!(diff.contains(&format!("A /tmp/{marker}")), "{diff}");
}

#[test]

fn errors_are_one_actionable_line() {
    let env = Env::new();
    env.import_busybox();
    let ctr = container(&env, "busybox:local", &["true"]);
    let cases: [(&[&str], &str); 6] = [
        (&["diff", "nope"], "no such container: nope"),
        (&["top", &ctr], "is not running"),
        (&["cp", "/etc/hostname", "/tmp/x"], "at least one container"),
        (
            &["cp", &format!("{ctr}:/missing"), "/tmp/x"],
            "no such file or directory",
        ),
        (
            &["cp", &format!("{ctr}:/bin"), &format!("{ctr}:/tmp")],
            "between containers",
        ),
        (
            &["commit", "-c", "RUN true", &ctr],
            "not a valid change command",
        ),
    ];
    for (args, want) in cases {
        let err = env.fails(args);
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1);
    }
}
