//! End-to-end tests of COPY/ADD: the layers' file lists compared with what Docker 20.10 +
//! BuildKit wrote for the same cases (`tests/differential/cases/`).

use std::path::Path;
use std::process::Command;

use strata_store::{Store, StoreOptions};

use crate::test_support::{listing, sde, write, Recorder};
use crate::{BuildError, BuildOptions, Builder};
use strata_testkit::{busybox, temp_store};

#[test]
fn copy_layers_match_buildkit_file_lists() {
    let (_d, store) = temp_store();
    busybox::import_into(&store);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("a.txt", "hello\n"), ("d/e/f", "x\n"), ("d/g", "y\n")],
    );
    let df = "FROM busybox:local\nWORKDIR /work/sub\nWORKDIR /etc\n\
              COPY a.txt /dst/\nCOPY --chown=1:2 --chmod=600 d /dd\nCOPY d/ a.txt /many/\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    let lists: Vec<Vec<String>> = out.layers[1..]
        .iter()
        .map(|l| listing(&store, &l.diff_id))
        .collect();
    // From `tar -tv --numeric-owner` of the layers Docker 20.10 + BuildKit wrote.
    let want: [&[&str]; 5] = [
        &["work/ d 755 0/0 0", "work/sub/ d 755 0/0 0"],
        &[],
        &["dst/ d 755 0/0 0", "dst/a.txt - 644 0/0 6"],
        &[
            "dd/ d 755 1/2 0",
            "dd/e/ d 600 1/2 0",
            "dd/e/f - 600 1/2 2",
            "dd/g - 600 1/2 2",
        ],
        &[
            "many/ d 755 0/0 0",
            "many/a.txt - 644 0/0 6",
            "many/e/ d 755 0/0 0",
            "many/e/f - 644 0/0 2",
            "many/g - 644 0/0 2",
        ],
    ];
    for (got, want) in lists.iter().zip(want) {
        assert_eq!(got, want);
    }
    // An existing WORKDIR still makes a layer: the empty tar.
    assert_eq!(
        out.layers[2].diff_id.as_str(),
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
    let created_by: Vec<&str> = out.config.history[1..]
        .iter()
        .map(|h| h.created_by.as_deref().unwrap())
        .collect();
    assert_eq!(
        created_by,
        [
            "WORKDIR /work/sub",
            "WORKDIR /etc",
            "COPY a.txt /dst/ # buildkit",
            "COPY d /dd # buildkit",
            "COPY d/ a.txt /many/ # buildkit",
        ]
    );
    assert!(out.config.history[1..].iter().all(|h| !h.empty_layer));
}

#[test]
fn chown_names_come_from_the_stage_rootfs_and_from_stages_copy() {
    let (_d, store) = temp_store();
    busybox::import_into(&store);
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("f", "1"), ("sub/x", "22")]);
    let df = "FROM scratch AS files\nCOPY sub /s/\n\
              FROM busybox:local\nWORKDIR /app\nCOPY --chown=nobody f rel\n\
              COPY --from=files --chown=root:nogroup /s /from/\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    let n = out.layers.len();
    assert_eq!(
        listing(&store, &out.layers[n - 2].diff_id),
        ["app/ d 755 0/0 0", "app/rel - 644 65534/65534 1"]
    );
    assert_eq!(
        listing(&store, &out.layers[n - 1].diff_id),
        ["from/ d 755 0/65534 0", "from/x - 644 0/65534 2"]
    );
    let err = Builder::new(&store)
        .build(
            "FROM busybox:local\nCOPY --chown=ghost f /f\n",
            ctx.path(),
            &sde(0),
        )
        .unwrap_err();
    assert!(
        matches!(err, BuildError::UnknownOwner { line: 2, .. }),
        "{err}"
    );
}

#[test]
fn missing_sources_and_bases_are_clear_errors() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let err = Builder::new(&store)
        .build("FROM scratch\nCOPY nothere /x\n", ctx.path(), &sde(0))
        .unwrap_err();
    assert!(matches!(err, BuildError::Context { line: 2, .. }), "{err}");
    let err = Builder::new(&store)
        .build("FROM nosuch:image\n", ctx.path(), &sde(0))
        .unwrap_err();
    assert!(
        matches!(err, BuildError::BaseImage { line: 1, .. }),
        "{err}"
    );
}

#[test]
fn copy_rules_match_buildkit_for_globs_renames_links_and_stages() {
    for driver in [None, Some(strata_store::DriverKind::Vfs)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions { driver }).unwrap();
        busybox::import_into(&store);
        let ctx = tempfile::tempdir().unwrap();
        write(
            ctx.path(),
            &[
                ("src/one.txt", "a\n"),
                ("src/two.txt", "bb\n"),
                ("src/sub/three", "c\n"),
                ("plain", "z\n"),
            ],
        );
        std::os::unix::fs::symlink("one.txt", ctx.path().join("src/link")).unwrap();
        // Same Dockerfile as tests/differential/cases/copy-rules.
        let df = "FROM busybox:local AS first\nCOPY src/*.txt /globbed/\nCOPY plain /renamed\n\
                  COPY plain /etc\nCOPY src /srcdir\n\
                  FROM busybox:local\nLABEL a=b\nCOPY --from=first /srcdir/sub /fromstage\n\
                  COPY --from=0 /renamed /r2\nADD plain /added/\n\
                  COPY --chown=nobody:nogroup plain relfile\nENTRYPOINT echo hi\n";
        let first = Builder::new(&store)
            .build(
                df,
                ctx.path(),
                &BuildOptions {
                    target: Some("first".into()),
                    ..sde(0)
                },
            )
            .unwrap();
        let lists: Vec<Vec<String>> = first.layers[1..]
            .iter()
            .map(|l| listing(&store, &l.diff_id))
            .collect();
        // `tar -tv --numeric-owner` of Docker 20.10 + BuildKit's layers.
        let want: [&[&str]; 4] = [
            &[
                "globbed/ d 755 0/0 0",
                "globbed/one.txt - 644 0/0 2",
                "globbed/two.txt - 644 0/0 3",
            ],
            &["renamed - 644 0/0 2"],
            &["etc/ d 755 0/0 0", "etc/plain - 644 0/0 2"],
            &[
                "srcdir/ d 755 0/0 0",
                "srcdir/link l 777 0/0 0",
                "srcdir/one.txt - 644 0/0 2",
                "srcdir/sub/ d 755 0/0 0",
                "srcdir/sub/three - 644 0/0 2",
                "srcdir/two.txt - 644 0/0 3",
            ],
        ];
        assert_eq!(
            lists,
            want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        );

        let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
        let lists: Vec<Vec<String>> = out.layers[1..]
            .iter()
            .map(|l| listing(&store, &l.diff_id))
            .collect();
        let want: [&[&str]; 4] = [
            &["fromstage/ d 755 0/0 0", "fromstage/three - 644 0/0 2"],
            &["r2 - 644 0/0 2"],
            &["added/ d 755 0/0 0", "added/plain - 644 0/0 2"],
            &["relfile - 644 65534/65534 2"],
        ];
        assert_eq!(
            lists,
            want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        );
        let created_by: Vec<&str> = out.config.history[1..]
            .iter()
            .map(|h| h.created_by.as_deref().unwrap())
            .collect();
        assert_eq!(
            created_by,
            [
                "LABEL a=b",
                "COPY /srcdir/sub /fromstage # buildkit",
                "COPY /renamed /r2 # buildkit",
                "ADD plain /added/ # buildkit",
                "COPY plain relfile # buildkit",
                r#"ENTRYPOINT ["/bin/sh" "-c" "echo hi"]"#,
            ]
        );
        let config = out.config.config.clone().unwrap();
        assert!(!config.args_escaped);
        assert_eq!(config.cmd, None);
    }
}

#[test]
fn dockerignored_files_are_neither_copied_nor_part_of_the_key() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (".dockerignore", "*.log\n"),
            ("app.txt", "1"),
            ("debug.log", "x"),
        ],
    );
    let df = "FROM scratch\nCOPY . /app/\n";
    let first = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    assert_eq!(
        listing(&store, &first.layers[0].diff_id),
        [
            "app/ d 755 0/0 0",
            "app/.dockerignore - 644 0/0 6",
            "app/app.txt - 644 0/0 1",
        ]
    );
    write(ctx.path(), &[("debug.log", "changed")]);
    let rec = Recorder::default();
    let second = Builder::new(&store)
        .with_reporter(&rec)
        .build(df, ctx.path(), &sde(0))
        .unwrap();
    assert_eq!(second.image_id, first.image_id);
    assert_eq!(
        *rec.events.lock().unwrap(),
        ["0.0 COPY . /app/", "0.0 cached"]
    );
}

#[test]
fn destinations_follow_symlinks_of_the_rootfs() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("root/usr/lib/keep", "k"), ("f", "1")]);
    std::os::unix::fs::symlink("usr/lib", ctx.path().join("root/lib")).unwrap();
    // A merged-/usr base: /lib is a symlink, as on Debian 12.
    let df = "FROM scratch AS base\nCOPY root /\n\
              FROM base\nCOPY f /lib/\nWORKDIR /lib/w\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    assert_eq!(
        listing(&store, &out.layers[1].diff_id),
        [
            "usr/ d 755 0/0 0",
            "usr/lib/ d 755 0/0 0",
            "usr/lib/f - 644 0/0 1"
        ]
    );
    assert_eq!(
        listing(&store, &out.layers[2].diff_id),
        [
            "usr/ d 755 0/0 0",
            "usr/lib/ d 755 0/0 0",
            "usr/lib/w/ d 755 0/0 0"
        ]
    );
    // The config keeps the path as written.
    assert_eq!(out.config.config.unwrap().working_dir, "/lib/w");
}

#[test]
fn add_extracts_local_tars_like_buildkit() {
    let (_d, store) = temp_store();
    busybox::import_into(&store);
    let ctx = tempfile::tempdir().unwrap();
    let setup = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/differential/cases/add-archives/setup.sh");
    let ok = Command::new("bash")
        .arg(setup)
        .current_dir(ctx.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let df = "FROM busybox:local\nADD a.tar /x\nADD --chown=1:2 a.tar.gz /y/\nADD notar.gz /z/\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    let lists: Vec<Vec<String>> = out.layers[1..]
        .iter()
        .map(|l| listing(&store, &l.diff_id))
        .collect();
    // `tar -tv --numeric-owner` of Docker 20.10 + BuildKit's layers.
    let want: [&[&str]; 3] = [
        &[
            "x/ d 755 0/0 0",
            "x/top/ d 755 1000/1000 0",
            "x/top/g - 600 1000/1000 3",
            "x/top/in/ d 755 1000/1000 0",
            "x/top/in/f - 644 1000/1000 3",
        ],
        &[
            "y/ d 755 1/2 0",
            "y/top/ d 755 1000/1000 0",
            "y/top/g - 600 1000/1000 3",
            "y/top/in/ d 755 1000/1000 0",
            "y/top/in/f - 644 1000/1000 3",
        ],
        &["z/ d 755 0/0 0", "z/notar.gz - 644 0/0 6"],
    ];
    assert_eq!(
        lists,
        want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
}

#[test]
fn hardlinks_in_the_context_stay_hardlinks() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("d/a", "same\n")]);
    std::fs::hard_link(ctx.path().join("d/a"), ctx.path().join("d/b")).unwrap();
    let out = Builder::new(&store)
        .build("FROM scratch\nCOPY d /d/\n", ctx.path(), &sde(0))
        .unwrap();
    let mut ar = tar::Archive::new(store.content().open(&out.layers[0].diff_id).unwrap());
    let entries: Vec<(String, tar::EntryType, Option<String>)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
                link,
            )
        })
        .collect();
    // Docker 20.10 + BuildKit: `hrw-r--r-- d/b link to d/a`.
    assert_eq!(
        entries,
        [
            ("d/".to_string(), tar::EntryType::Directory, None),
            ("d/a".to_string(), tar::EntryType::Regular, None),
            (
                "d/b".to_string(),
                tar::EntryType::Link,
                Some("d/a".to_string())
            ),
        ]
    );
}

#[test]
fn a_directory_source_gives_its_contents_not_its_mode() {
    let (_d, store) = temp_store();
    busybox::import_into(&store);
    let ctx = tempfile::tempdir().unwrap();
    let setup = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/differential/cases/copy-dir-modes/setup.sh");
    let ok = Command::new("bash")
        .arg(setup)
        .current_dir(ctx.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let df = "FROM busybox:local\nCOPY d /dd\nCOPY d /etc/\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    let lists: Vec<Vec<String>> = out.layers[1..]
        .iter()
        .map(|l| listing(&store, &l.diff_id))
        .collect();
    // Docker 20.10 + BuildKit: the destination is 0755 whatever the source dir's mode.
    assert_eq!(
        lists,
        [
            [
                "dd/ d 755 0/0 0",
                "dd/sub/ d 750 0/0 0",
                "dd/sub/f - 644 0/0 2"
            ],
            [
                "etc/ d 755 0/0 0",
                "etc/sub/ d 750 0/0 0",
                "etc/sub/f - 644 0/0 2"
            ],
        ]
    );
}

#[test]
fn workdir_creates_missing_directories_as_the_stage_user() {
    // Owners observed with Docker 20.10 + BuildKit for the same steps: every directory the
    // WORKDIR creates belongs to USER (a name from the stage's passwd gets its primary group,
    // a bare number the same number as group, an unknown name falls back to root); existing
    // directories keep their owner.
    let (_d, store) = temp_store();
    busybox::import_into(&store);
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "passwd",
                "root:x:0:0:root:/root:/bin/sh\nusr:x:1234:1234::/home/usr:/bin/sh\n",
            ),
            ("group", "root:x:0:\nusr:x:1234:\ngrp:x:777:\n"),
        ],
    );
    let df = "FROM busybox:local\nCOPY passwd group /etc/\n\
              USER usr\nWORKDIR /opt/node_app/sub\nWORKDIR rel\n\
              USER 1234:777\nWORKDIR /num/a\nUSER 4444\nWORKDIR /unknown\n\
              USER usr:grp\nWORKDIR /named\nUSER nosuch\nWORKDIR /x\nWORKDIR /tmp\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    let layers: Vec<Vec<String>> = out.layers[2..]
        .iter()
        .map(|l| listing(&store, &l.diff_id))
        .collect();
    let want: [&[&str]; 7] = [
        &[
            "opt/ d 755 1234/1234 0",
            "opt/node_app/ d 755 1234/1234 0",
            "opt/node_app/sub/ d 755 1234/1234 0",
        ],
        &[
            "opt/ d 755 1234/1234 0",
            "opt/node_app/ d 755 1234/1234 0",
            "opt/node_app/sub/ d 755 1234/1234 0",
            "opt/node_app/sub/rel/ d 755 1234/1234 0",
        ],
        &["num/ d 755 1234/777 0", "num/a/ d 755 1234/777 0"],
        &["unknown/ d 755 4444/4444 0"],
        &["named/ d 755 1234/777 0"],
        &["x/ d 755 0/0 0"],
        // An existing directory: an empty layer, its owner untouched.
        &[],
    ];
    assert_eq!(layers, want);
}

#[test]
fn copy_from_a_stage_keeps_the_source_owners_unless_chown() {
    // npm as root keeps the uid/gid of its tarballs (501:20) and BuildKit's COPY --from keeps
    // them; only the directories the copy creates, and --chown, give other owners.
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind) in [
        ("package/", tar::EntryType::Directory),
        ("package/a.js", tar::EntryType::Regular),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(501);
        h.set_gid(20);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, path, &[][..]).unwrap();
    }
    std::fs::write(ctx.path().join("pkg.tar"), b.into_inner().unwrap()).unwrap();
    let df = "FROM scratch AS deps\nADD pkg.tar /src/node_modules/pkg/\n\
              FROM scratch\nCOPY --from=deps /src/node_modules /app/node_modules\n\
              COPY --from=deps --chown=7:8 /src/node_modules/pkg/package/a.js /chowned.js\n\
              COPY pkg.tar /ctx.tar\n";
    let out = Builder::new(&store).build(df, ctx.path(), &sde(0)).unwrap();
    let layers: Vec<Vec<String>> = out
        .layers
        .iter()
        .map(|l| listing(&store, &l.diff_id))
        .collect();
    assert_eq!(
        layers,
        [
            vec![
                "app/ d 755 0/0 0",
                "app/node_modules/ d 755 0/0 0",
                "app/node_modules/pkg/ d 755 0/0 0",
                "app/node_modules/pkg/package/ d 755 501/20 0",
                "app/node_modules/pkg/package/a.js - 644 501/20 0",
            ],
            vec!["chowned.js - 644 7/8 0"],
            vec!["ctx.tar - 644 0/0 2048"],
        ]
    );
}
