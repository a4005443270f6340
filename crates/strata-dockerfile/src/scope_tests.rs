//! Tests of ARG/ENV scoping; expected values are what Docker 20.10's BuildKit produced for the
//! same Dockerfiles (`tests/differential/expand.sh scope`), except TARGETSTAGE, which that version
//! predates (current BuildKit sets it to the target name or `default`).

use super::*;
use crate::parse;

fn opts(build_args: &[(&str, &str)]) -> ResolveOptions {
    ResolveOptions {
        build_args: build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ResolveOptions::default()
    }
}

fn resolve_with(src: &str, o: &ResolveOptions) -> Resolved {
    let df = parse(src).unwrap();
    resolve(&df, o).unwrap()
}

fn target(r: &Resolved) -> &ResolvedStage {
    &r.stages[r.target]
}

/// The value of label `key` in the target stage.
fn label(r: &Resolved, key: &str) -> String {
    target(r)
        .steps
        .iter()
        .filter_map(|s| match &s.args {
            Args::KeyValues(kv) if s.kind == Kind::Label => {
                kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
            }
            _ => None,
        })
        .next_back()
        .unwrap_or_else(|| panic!("no label {key}"))
}

fn first_step(r: &Resolved, kind: Kind) -> &Step {
    target(r).steps.iter().find(|s| s.kind == kind).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (case, build args, Dockerfile, label v)
type LabelCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn label_values_follow_buildkit_scoping() {
    let cases: &[LabelCase] = &[
        ("global arg only in FROM", &[], "ARG V=1\nFROM busybox\nLABEL v=\"[$V]\"\n", "[]"),
        ("global arg re-declared", &[], "ARG V=1\nFROM busybox\nARG V\nLABEL v=\"[$V]\"\n", "[1]"),
        ("re-declared gets build arg", &[("V", "cli")], "ARG V=1\nFROM busybox\nARG V\nLABEL v=\"[$V]\"\n", "[cli]"),
        ("stage arg default", &[], "FROM busybox\nARG V=d\nLABEL v=\"[$V]\"\n", "[d]"),
        ("build arg beats default", &[("V", "cli")], "FROM busybox\nARG V=d\nLABEL v=\"[$V]\"\n", "[cli]"),
        ("build arg verbatim", &[("V", "$X 'q'")], "FROM busybox\nARG V\nLABEL v=\"[$V]\"\n", "[$X 'q']"),
        ("undeclared build arg", &[("U", "cli")], "FROM busybox\nLABEL v=\"[$U]\"\n", "[]"),
        ("env after arg", &[("V", "cli")], "FROM busybox\nARG V\nENV V=env\nLABEL v=\"[$V]\"\n", "[env]"),
        ("arg after env wins", &[("V", "cli")], "FROM busybox\nENV V=env\nARG V\nLABEL v=\"[$V]\"\n", "[cli]"),
        ("arg default after env", &[], "FROM busybox\nENV V=env\nARG V=d\nLABEL v=\"[$V]\"\n", "[d]"),
        ("arg without value keeps env", &[], "FROM busybox\nENV V=env\nARG V\nLABEL v=\"[$V]\"\n", "[env]"),
        ("arg default uses env", &[], "FROM busybox\nENV E=e\nARG V=${E}x\nLABEL v=\"[$V]\"\n", "[ex]"),
        ("arg default quoted", &[], "FROM busybox\nARG V=\"a b\"\nLABEL v=\"[$V]\"\n", "[a b]"),
        ("arg ends with stage", &[], "FROM busybox AS a\nARG V=1\nFROM busybox\nLABEL v=\"[$V]\"\n", "[]"),
        (
            "arg and env inherited from base stage",
            &[],
            "FROM busybox AS a\nARG V=1\nENV E=2\nFROM a\nLABEL v=\"[$V][$E]\"\n",
            "[1][2]",
        ),
        ("proxy undeclared", &[("HTTP_PROXY", "http://p")], "FROM busybox\nLABEL v=\"[$HTTP_PROXY]\"\n", "[]"),
        (
            "proxy declared",
            &[("HTTP_PROXY", "http://p")],
            "FROM busybox\nARG HTTP_PROXY\nLABEL v=\"[$HTTP_PROXY]\"\n",
            "[http://p]",
        ),
        ("platform arg undeclared", &[], "FROM busybox\nLABEL v=\"[$TARGETARCH]\"\n", "[]"),
        (
            "platform args declared",
            &[],
            "FROM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\nARG BUILDOS\nLABEL v=\"[$TARGETARCH][$TARGETPLATFORM][$BUILDOS]\"\n",
            "[amd64][linux/amd64][linux]",
        ),
        ("targetstage default", &[], "FROM busybox\nARG TARGETSTAGE\nLABEL v=\"[$TARGETSTAGE]\"\n", "[default]"),
        ("env sees env before the line", &[], "FROM busybox\nENV A=1 B=$A\nLABEL v=\"[$A][$B]\"\n", "[1][]"),
        ("env legacy form", &[], "FROM busybox\nENV A hello  world $HOME\nLABEL v=\"[$A]\"\n", "[hello  world ]"),
        ("global default sees earlier global", &[], "ARG A=x\nARG B=${A}y\nFROM busybox\nARG B\nLABEL v=$B\n", "xy"),
        ("global sees platform args", &[], "ARG P=$TARGETOS\nFROM busybox\nARG P\nLABEL v=$P\n", "linux"),
        ("arg name expanded", &[], "FROM busybox\nENV N=NAME\nARG $N=v\nLABEL v=\"[$NAME]\"\n", "[v]"),
        ("arg name expanded gets build arg", &[("NAME", "cli")], "FROM busybox\nENV N=NAME\nARG $N=v\nLABEL v=\"[$NAME]\"\n", "[cli]"),
    ];
    for (name, build_args, src, want) in cases {
        let r = resolve_with(src, &opts(build_args));
        assert_eq!(label(&r, "v"), *want, "{name}");
    }
}

#[test]
fn from_sees_global_args_and_build_args() {
    let src = "ARG TAG=1.0\nARG REG\nFROM ${REG:-docker.io}/app:$TAG AS a\nFROM --platform=$BUILDPLATFORM busybox:$TARGETARCH\n";
    let r = resolve_with(src, &opts(&[("TAG", "2.0")]));
    assert_eq!(r.stages[0].base_name, "docker.io/app:2.0");
    assert_eq!(
        r.stages[0].base,
        Base::Image("docker.io/app:2.0".to_string())
    );
    assert_eq!(r.stages[1].base_name, "busybox:amd64");
    assert_eq!(r.stages[1].platform.as_deref(), Some("linux/amd64"));
    assert!(r
        .global_args
        .contains(&("TAG".to_string(), "2.0".to_string())));
    assert!(
        !r.global_args.iter().any(|(k, _)| k == "REG"),
        "declared without value stays unset"
    );
}

#[test]
fn platform_args_follow_options_and_overrides() {
    let o = ResolveOptions {
        target_platform: "linux/arm64/v8".parse().unwrap(),
        build_platform: "linux/amd64".parse().unwrap(),
        target: Some("b".to_string()),
        build_args: [("BUILDOS".to_string(), "plan9".to_string())].into(),
        ..ResolveOptions::default()
    };
    let src = "FROM busybox AS b\nARG TARGETPLATFORM TARGETVARIANT BUILDOS TARGETSTAGE\nLABEL v=$TARGETPLATFORM,$TARGETVARIANT,$BUILDOS,$TARGETSTAGE\n";
    let r = resolve_with(src, &o);
    assert_eq!(label(&r, "v"), "linux/arm64/v8,v8,plan9,b");
    assert!(r.unused_build_args.is_empty());
    assert!("linux".parse::<Platform>().is_err());
    assert!("linux//x".parse::<Platform>().is_err());
}

#[test]
fn run_sees_args_env_and_proxies() {
    let src = "FROM busybox\nARG A\nARG B=2\nENV C=3\nRUN echo $A $B $C\n";
    let r = resolve_with(src, &opts(&[("A", "1"), ("http_proxy", "http://p")]));
    let run = first_step(&r, Kind::Run);
    assert_eq!(run.build_args, pairs(&[("A", "1"), ("B", "2")]));
    assert_eq!(run.proxy_env, pairs(&[("http_proxy", "http://p")]));
    assert_eq!(
        run.env,
        pairs(&[("PATH", DEFAULT_PATH), ("A", "1"), ("B", "2"), ("C", "3")])
    );
    // The command itself is left to the shell.
    assert_eq!(run.args, Args::Shell("echo $A $B $C".to_string()));
    // ARG and proxy args never reach the image config.
    assert_eq!(
        target(&r).image_env,
        pairs(&[("PATH", DEFAULT_PATH), ("C", "3")])
    );
}

#[test]
fn run_build_args_take_values_from_env() {
    // `ENV V=env` then `ARG V` with --build-arg: history says `|1 V=cli`, config keeps V=env.
    let src = "FROM busybox\nENV V=env\nARG V\nRUN true\nARG W\nRUN true\n";
    let r = resolve_with(src, &opts(&[("V", "cli")]));
    let runs: Vec<&Step> = target(&r)
        .steps
        .iter()
        .filter(|s| s.kind == Kind::Run)
        .collect();
    assert_eq!(runs[0].build_args, pairs(&[("V", "cli")]));
    assert_eq!(runs[1].build_args, pairs(&[("V", "cli"), ("W", "")]));
    assert_eq!(
        target(&r).image_env,
        pairs(&[("PATH", DEFAULT_PATH), ("V", "env")])
    );
    // Redeclared global ARG reaches RUN; an undeclared one does not.
    let r = resolve_with(
        "ARG G=1\nFROM busybox\nRUN true\nARG G\nRUN true\n",
        &opts(&[]),
    );
    let runs: Vec<&Step> = target(&r)
        .steps
        .iter()
        .filter(|s| s.kind == Kind::Run)
        .collect();
    assert!(runs[0].build_args.is_empty() && runs[0].env.iter().all(|(k, _)| k != "G"));
    assert_eq!(runs[1].build_args, pairs(&[("G", "1")]));
}

#[test]
fn expands_the_instructions_buildkit_expands() {
    let src = "FROM busybox\n\
        ENV D=/data U=nobody P=80 PS=\"90 91/udp\" S=SIGINT K=key O=1000\n\
        WORKDIR $D\n\
        USER ${U}:${G:-100}\n\
        EXPOSE $P ${P}1/udp $PS\n\
        STOPSIGNAL $S\n\
        LABEL $K=v \"${K}2\"=\"a b\"\n\
        VOLUME $D /x\n\
        COPY --chown=$O --from=$K a$P \"$D/\"\n\
        ADD --chmod=$O [\"$K\", \"$D\"]\n\
        RUN --mount=type=cache,target=$D echo $D\n\
        CMD echo $D\n\
        ONBUILD RUN echo $D\n";
    let r = resolve_with(src, &opts(&[]));
    let steps = &target(&r).steps;
    let words = |i: usize| match &steps[i].args {
        Args::Words(w) | Args::Exec(w) => w.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(words(1), ["/data"]);
    assert_eq!(words(2), ["nobody:100"]);
    assert_eq!(words(3), ["80", "801/udp", "90", "91/udp"]);
    assert_eq!(words(4), ["SIGINT"]);
    assert_eq!(
        steps[5].args,
        Args::KeyValues(pairs(&[("key", "v"), ("key2", "a b")]))
    );
    assert_eq!(words(6), ["/data", "/x"]);
    assert_eq!(words(7), ["a80", "/data/"]);
    let flag = |i: usize, name: &str| {
        steps[i]
            .flags
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.clone())
    };
    assert_eq!(flag(7, "chown").as_deref(), Some("1000"));
    assert_eq!(
        flag(7, "from").as_deref(),
        Some("$K"),
        "--from is not expanded"
    );
    assert_eq!(words(8), ["key", "/data"]);
    assert_eq!(flag(8, "chmod").as_deref(), Some("1000"));
    assert_eq!(flag(9, "mount").as_deref(), Some("type=cache,target=/data"));
    assert_eq!(steps[9].args, Args::Shell("echo $D".to_string()));
    assert_eq!(steps[10].args, Args::Shell("echo $D".to_string()));
    assert!(matches!(&steps[11].args, Args::Trigger(_)));
    assert!(steps[2].unmatched.contains("G") && steps[2].matched.contains("U"));
}

#[test]
fn copy_heredocs_expand_unless_quoted() {
    let src = "FROM busybox\nENV N=world\nCOPY <<A <<\"B\" /dst/\nhello '$N'\nA\nbye $N\nB\n";
    let r = resolve_with(src, &opts(&[]));
    let copy = first_step(&r, Kind::Copy);
    assert_eq!(copy.heredocs[0].content, "hello 'world'\n");
    assert_eq!(copy.heredocs[1].content, "bye $N\n");
}

#[test]
fn base_env_and_stage_inheritance() {
    let mut o = opts(&[]);
    o.base_env.insert(
        "img".to_string(),
        pairs(&[("PATH", "/bin"), ("HOME", "/root")]),
    );
    let src = "FROM img AS a\nENV V=1\nARG V=2\nLABEL v=$HOME:$V\nFROM a\nLABEL v=$HOME:$V:$PATH\n";
    let r = resolve_with(src, &o);
    assert_eq!(
        label(&r, "v"),
        "/root:1:/bin",
        "the base stage's ENV wins again over its ARG"
    );
    assert_eq!(r.stages[1].base, Base::Stage(0));
    let first = &r.stages[0].steps;
    assert!(matches!(&first[2].args, Args::KeyValues(kv) if kv[0].1 == "/root:2"));
    assert_eq!(
        r.stages[1].image_env,
        pairs(&[("PATH", "/bin"), ("HOME", "/root"), ("V", "1")])
    );
}

#[test]
fn stage_graph_target_and_order() {
    let src = "FROM busybox AS base\n\
        FROM scratch AS tools\n\
        FROM base AS build\nCOPY --from=tools /a /a\nRUN --mount=type=bind,from=Extra,target=/x true\n\
        FROM alpine AS extra\n\
        FROM busybox AS unused\n\
        FROM build\nCOPY --from=1 /b /b\nCOPY --from=nginx:latest /c /c\n";
    let r = resolve_with(src, &opts(&[]));
    assert_eq!(r.target, 5);
    assert_eq!(r.stages[1].base, Base::Scratch);
    assert_eq!(r.stages[2].base, Base::Stage(0));
    assert_eq!(r.stages[2].depends_on, [0, 1, 3].into());
    assert_eq!(r.stages[5].depends_on, [1, 2].into());
    assert_eq!(r.build_order, [1, 0, 3, 2, 5]);
    assert!(!r.stages[4].needed && r.stages[4].steps.is_empty());
    assert!(r.stages[2].needed);
    let r = resolve_with(
        src,
        &ResolveOptions {
            target: Some("TOOLS".to_string()),
            ..opts(&[])
        },
    );
    assert_eq!((r.target, r.build_order.clone()), (1, vec![1]));
}

#[test]
fn graph_errors() {
    let cases = [
        (
            "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /x /x\n",
            None,
            "circular",
        ),
        ("FROM busybox AS a\nCOPY --from=a /x /x\n", None, "circular"),
        (
            "FROM busybox\nCOPY --from=3 /x /x\n",
            None,
            "invalid stage index 3",
        ),
        (
            "FROM busybox AS a\n",
            Some("b"),
            "target stage \"b\" could not be found",
        ),
        (
            "ARG IMG\nFROM $IMG\n",
            None,
            "base name ($IMG) should not be blank",
        ),
        (
            "ARG P\nFROM --platform=$P busybox\n",
            None,
            "empty platform value from expression $P",
        ),
        (
            "FROM busybox\nLABEL a=\"${X:?must be set}\"\n",
            None,
            "X: must be set",
        ),
    ];
    for (src, target, want) in cases {
        let df = parse(src).unwrap();
        let o = ResolveOptions {
            target: target.map(str::to_string),
            ..opts(&[])
        };
        let err = resolve(&df, &o).unwrap_err().to_string();
        assert!(err.contains(want), "{src:?}: {err}");
    }
}

#[test]
fn unused_build_args_are_reported() {
    let src = "ARG G\nFROM busybox AS a\nARG A\nFROM busybox AS b\nARG B\n";
    let o = opts(&[
        ("G", "1"),
        ("A", "1"),
        ("B", "1"),
        ("X", "1"),
        ("HTTPS_PROXY", "p"),
        ("TARGETOS", "linux"),
        ("SOURCE_DATE_EPOCH", "0"),
        ("BUILDKIT_INLINE_CACHE", "1"),
    ]);
    let r = resolve_with(src, &o);
    // Stage a is not needed by target b, so its ARG A does not consume the build arg.
    assert_eq!(r.unused_build_args, ["A", "X"]);
    // A name given through a variable declares what it expands to.
    let r = resolve_with(
        "FROM busybox\nENV N=NAME\nARG $N\n",
        &opts(&[("NAME", "1"), ("N", "1")]),
    );
    assert_eq!(r.unused_build_args, ["N"]);
}
