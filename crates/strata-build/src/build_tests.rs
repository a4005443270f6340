//! End-to-end tests of `Builder` against temp stores: config and history as BuildKit writes
//! them, the build cache, reproducibility, RUN through an executor, stage scheduling.

use std::collections::BTreeMap;
use std::sync::Mutex;

use strata_oci::{to_canonical_json, Digest};

use crate::test_support::{listing, sde, write, Recorder};
use crate::{BuildError, BuildOptions, Builder, RunExecutor, RunOutcome, RunRequest};
use strata_testkit::temp_store;

const METADATA_DOCKERFILE: &str = r#"FROM scratch
MAINTAINER me <me@x>
ARG V=1
ENV A=1 B="two words"
LABEL l1=v1 "l 2"=v2
USER 1000:1000
EXPOSE 80 443/udp
VOLUME /data /other
VOLUME ["/j"]
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost
ONBUILD RUN echo hi
CMD echo hi
ENTRYPOINT ["/bin/echo"]
"#;

#[test]
fn metadata_config_matches_buildkit() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let out = Builder::new(&store)
        .build(METADATA_DOCKERFILE, ctx.path(), &sde(1_700_000_000))
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&to_canonical_json(&out.config)).unwrap();
    // The `config` object of Docker 20.10 + BuildKit for the same instructions, in its order.
    let want = r#"{"User":"1000:1000","ExposedPorts":{"443/udp":{},"80/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=two words"],"Entrypoint":["/bin/echo"],"Cmd":["/bin/sh","-ec","echo hi"],"Volumes":{"/data":{},"/j":{},"/other":{}},"Labels":{"l 2":"v2","l1":"v1"},"StopSignal":"SIGTERM","Healthcheck":{"Test":["CMD-SHELL","wget -q localhost"],"Interval":5000000000,"Retries":2},"ArgsEscaped":true,"OnBuild":["RUN echo hi"],"Shell":["/bin/sh","-ec"]}"#;
    let bytes = to_canonical_json(&out.config);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(want), "{text}");
    assert_eq!(json["author"], "me <me@x>");
    assert_eq!(json["created"], "2023-11-14T22:13:20Z");
    let history = json["history"].as_array().unwrap();
    // ONBUILD writes no history entry.
    assert_eq!(history.len(), 13);
    for h in history {
        assert_eq!(h["comment"], "buildkit.dockerfile.v0");
        assert_eq!(h["empty_layer"], true);
        assert_eq!(h["created"], "2023-11-14T22:13:20Z");
    }
    assert_eq!(history[0]["created_by"], "MAINTAINER me <me@x>");
    assert_eq!(history[2]["created_by"], "ENV A=1 B=two words");
    assert!(out.layers.is_empty());
    assert_eq!(store.image(&out.image_id).unwrap().unwrap().layers, vec![]);
}

/// `ARG V` and `ARG V=d` given the same `--build-arg V=cli` resolve to the same value but are
/// recorded differently (BuildKit's history: `ARG V`, `ARG V=d`): no cache hit across them.
/// And an ARG's name is expanded, as BuildKit does (`ARG $N=v`).
#[test]
fn arg_history_keeps_the_instruction_and_expands_the_name() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let opts = BuildOptions {
        build_args: [("V".to_string(), "cli".to_string())].into(),
        ..sde(1)
    };
    let history = |dockerfile: &str| {
        let out = Builder::new(&store)
            .build(dockerfile, ctx.path(), &opts)
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&to_canonical_json(&out.config)).unwrap();
        let lines: Vec<String> = json["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["created_by"].as_str().unwrap().to_string())
            .collect();
        (out.image_id, lines)
    };
    let (with_default, lines) = history("FROM scratch\nARG V=d\nLABEL v=\"[$V]\"\n");
    assert_eq!(lines, ["ARG V=d", "LABEL v=[cli]"]);
    let (without, lines) = history("FROM scratch\nARG V\nLABEL v=\"[$V]\"\n");
    assert_eq!(lines, ["ARG V", "LABEL v=[cli]"]);
    assert_ne!(with_default, without);
    let (_, lines) = history("FROM scratch\nENV N=NAME\nARG $N=v\nLABEL v=\"[$NAME]\"\n");
    assert_eq!(lines, ["ENV N=NAME", "ARG NAME=v", "LABEL v=[v]"]);
}

#[test]
fn second_build_reuses_every_step() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("a", "1"), ("b/c", "2")]);
    let df = "FROM scratch\nENV X=1\nCOPY a /a\nWORKDIR /w\nCOPY b /b/\nCMD [\"x\"]\n";
    let first = Builder::new(&store).build(df, ctx.path(), &sde(5)).unwrap();
    assert_eq!((first.cached_steps, first.executed_steps), (0, 5));
    let second = Builder::new(&store).build(df, ctx.path(), &sde(5)).unwrap();
    assert_eq!((second.cached_steps, second.executed_steps), (5, 0));
    assert_eq!(first.image_id, second.image_id);
    // Changing a file only re-runs the steps from its COPY on.
    write(ctx.path(), &[("b/c", "3")]);
    let third = Builder::new(&store).build(df, ctx.path(), &sde(5)).unwrap();
    assert_eq!((third.cached_steps, third.executed_steps), (3, 2));
    assert_ne!(third.image_id, first.image_id);
    // Step dirs were committed or removed; the build's temp area is gone.
    let left = std::fs::read_dir(store.root().join("build-tmp"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
}

#[test]
fn a_fully_cached_rebuild_without_source_date_epoch_keeps_the_image_id() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("a", "1")]);
    let df = "FROM scratch\nCOPY a /a\nENV X=1\n";
    let opts = BuildOptions::default();
    let first = Builder::new(&store).build(df, ctx.path(), &opts).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = Builder::new(&store).build(df, ctx.path(), &opts).unwrap();
    assert_eq!(second.executed_steps, 0);
    assert_eq!(first.image_id, second.image_id);
}

#[test]
fn same_inputs_in_two_stores_give_the_same_image() {
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("a", "1"), ("b/c", "2"), ("b/d", "3")]);
    std::os::unix::fs::symlink("a", ctx.path().join("b/link")).unwrap();
    let df = "FROM scratch\nLABEL x=y\nCOPY a b /dst/\nWORKDIR /w/v\nCOPY --chmod=700 b .\n";
    let mut ids = Vec::new();
    // Two stores, one per snapshot driver: the driver never changes the bytes.
    for driver in [None, Some(strata_store::DriverKind::Vfs)] {
        let dir = tempfile::tempdir().unwrap();
        let store =
            strata_store::Store::open(dir.path(), &strata_store::StoreOptions { driver }).unwrap();
        let out = Builder::new(&store)
            .build(df, ctx.path(), &sde(1_000))
            .unwrap();
        let layers: Vec<Digest> = out.layers.iter().map(|l| l.diff_id.clone()).collect();
        ids.push((out.image_id, layers));
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].1.len(), 3);
    // SOURCE_DATE_EPOCH given as a build arg, as BuildKit accepts it, is the same build.
    let (_d, store) = temp_store();
    let opts = BuildOptions {
        build_args: [("SOURCE_DATE_EPOCH".to_string(), "1000".to_string())].into(),
        ..BuildOptions::default()
    };
    let out = Builder::new(&store).build(df, ctx.path(), &opts).unwrap();
    assert_eq!(out.image_id, ids[0].0);
}

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_edits_never_give_a_stale_hit() {
    let (_d, cached_store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let names = ["a", "b", "dir/c", "dir/d"];
    let mut files: BTreeMap<&str, String> = names.iter().map(|n| (*n, "0".to_string())).collect();
    let mut env = 0;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..8 {
        match rng.next(4) {
            0 => env = rng.next(3),
            1 => {
                files.insert(names[rng.next(4) as usize], rng.next(3).to_string());
            }
            2 => {
                let name = names[rng.next(4) as usize];
                let mode = if rng.next(2) == 0 { 0o600 } else { 0o644 };
                std::fs::set_permissions(
                    ctx.path().join(name),
                    std::os::unix::fs::PermissionsExt::from_mode(mode),
                )
                .ok();
            }
            _ => {}
        }
        for (name, body) in &files {
            let p = ctx.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            if std::fs::read_to_string(&p).ok().as_deref() != Some(body.as_str()) {
                std::fs::write(&p, body).unwrap();
            }
        }
        let df = format!("FROM scratch\nENV E={env}\nCOPY a /a\nCOPY dir /d/\nCOPY b* /x/\n");
        let cached = Builder::new(&cached_store)
            .build(&df, ctx.path(), &sde(9))
            .unwrap();
        let (_d2, fresh_store) = temp_store();
        let fresh = Builder::new(&fresh_store)
            .build(
                &df,
                ctx.path(),
                &BuildOptions {
                    no_cache: true,
                    ..sde(9)
                },
            )
            .unwrap();
        assert_eq!(cached.image_id, fresh.image_id, "round {round}");
    }
}

/// Writes one file into a fresh upper dir, or fails with the given exit code.
struct FakeRun {
    exit: i32,
    seen: Mutex<Vec<Vec<String>>>,
}

impl RunExecutor for FakeRun {
    fn run(&self, req: &RunRequest<'_>) -> Result<RunOutcome, String> {
        self.seen.lock().unwrap().push(req.args.clone());
        let upper = req.temp_dir.join("fake-upper");
        std::fs::create_dir_all(upper.join("out")).map_err(|e| e.to_string())?;
        std::fs::write(upper.join("out/file"), "ran").map_err(|e| e.to_string())?;
        Ok(RunOutcome {
            upper,
            exit_code: self.exit,
            log: b"line 1\nboom\n".to_vec(),
        })
    }
}

#[test]
fn run_goes_through_the_executor() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let df = "FROM scratch\nARG V=2\nARG W\nRUN echo $V > /out/file\n";
    let err = Builder::new(&store)
        .build(df, ctx.path(), &sde(0))
        .unwrap_err();
    assert!(
        matches!(err, BuildError::NoRunExecutor { line: 4 }),
        "{err}"
    );

    let ok = FakeRun {
        exit: 0,
        seen: Mutex::new(Vec::new()),
    };
    let out = Builder::new(&store)
        .with_run_executor(&ok)
        .build(df, ctx.path(), &sde(0))
        .unwrap();
    assert_eq!(
        ok.seen.lock().unwrap()[0],
        ["/bin/sh", "-c", "echo $V > /out/file"]
    );
    assert_eq!(
        out.config.history[2].created_by.as_deref(),
        Some("RUN |2 V=2 W= /bin/sh -c echo $V > /out/file # buildkit")
    );
    assert_eq!(
        listing(&store, &out.layers[0].diff_id),
        ["out/ d 755 0/0 0", "out/file - 644 0/0 3"]
    );

    let failing = FakeRun {
        exit: 3,
        seen: Mutex::new(Vec::new()),
    };
    let err = Builder::new(&store)
        .with_run_executor(&failing)
        .build(&df.replace("$V", "$V "), ctx.path(), &sde(0))
        .unwrap_err();
    let BuildError::StepFailed { source, .. } = err else {
        panic!("{err}");
    };
    match *source {
        BuildError::RunExit { line, code, tail } => {
            assert_eq!((line, code), (4, 3));
            assert!(tail.ends_with("boom"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn independent_stages_build_in_one_wave_and_combine() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("a", "1"), ("b", "22")]);
    let df = "FROM scratch AS one\nCOPY a /a\n\
              FROM scratch AS two\nCOPY b /b\n\
              FROM scratch AS unused\nRUN never\n\
              FROM scratch\nCOPY --from=one /a /x/\nCOPY --from=two /b /x/\n";
    let rec = Recorder::default();
    let out = Builder::new(&store)
        .with_reporter(&rec)
        .build(df, ctx.path(), &sde(0))
        .unwrap();
    // The unused stage (which would fail: no executor) is never built.
    assert_eq!(out.executed_steps, 4);
    let events = rec.events.lock().unwrap().clone();
    assert!(events.iter().all(|e| !e.starts_with("2.")), "{events:?}");
    let files: Vec<String> = out
        .layers
        .iter()
        .flat_map(|l| listing(&store, &l.diff_id))
        .collect();
    assert_eq!(
        files,
        [
            "x/ d 755 0/0 0",
            "x/a - 644 0/0 1",
            "x/ d 755 0/0 0",
            "x/b - 644 0/0 2"
        ]
    );
}

#[test]
fn onbuild_triggers_of_a_base_run_after_from_and_are_cleared() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("x"), "x").unwrap();
    let base = Builder::new(&store)
        .build(
            "FROM scratch\nONBUILD COPY x /x\n",
            ctx.path(),
            &BuildOptions {
                tags: vec!["trig:1".into()],
                ..sde(0)
            },
        )
        .unwrap();
    assert_eq!(
        base.config.config.unwrap().on_build,
        Some(vec!["COPY x /x".to_string()])
    );
    let child = Builder::new(&store)
        .build("FROM trig:1\n", ctx.path(), &sde(0))
        .unwrap();
    assert_eq!(child.layers.len(), 1);
    assert_eq!(child.config.config.unwrap().on_build, None);
    let history = child.config.history.last().unwrap();
    assert_eq!(history.created_by.as_deref(), Some("COPY x /x # buildkit"));
}

#[test]
fn foreign_platforms_are_refused() {
    let (_d, store) = temp_store();
    let ctx = tempfile::tempdir().unwrap();
    let host = strata_oci::Platform::host();
    let ok = format!(
        "FROM --platform={}/{} scratch\n",
        host.os, host.architecture
    );
    Builder::new(&store)
        .build(&ok, ctx.path(), &sde(0))
        .unwrap();
    let err = Builder::new(&store)
        .build("FROM --platform=linux/s390x scratch\n", ctx.path(), &sde(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Unsupported {
                line: 1,
                instruction: "FROM",
                ..
            }
        ),
        "{err}"
    );
}
