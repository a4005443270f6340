//! Rules about single instructions and stages: MAINTAINER, USER, ADD, CMD/ENTRYPOINT, FROM,
//! EXPOSE, WORKDIR.

use crate::ast::{Args, Dockerfile, Instruction, Kind};
use crate::expand::Lexer;
use crate::lint::{
    Sink, StageView, ADD_FOR_COPY, BASE_UNPINNED, INVALID_EXPOSE, MAINTAINER, MULTIPLE_CMD,
    RELATIVE_WORKDIR, SHELL_FORM_CMD, USER_MISSING, USER_ROOT,
};
use crate::scope::{arg_pair, words, EnvList};

pub(crate) fn check(
    df: &Dockerfile,
    global: &[Instruction],
    stages: &[StageView<'_>],
    sink: &mut Sink<'_>,
) {
    let lexer = Lexer::new(df.directives.escape);
    let global_defaults = global_defaults(&lexer, global);
    for (i, stage) in stages.iter().enumerate() {
        base_image(&lexer, &global_defaults, stages, i, sink);
        let mut cmd: Option<&Instruction> = None;
        let mut entrypoint: Option<&Instruction> = None;
        for inst in stage.body {
            match inst.kind {
                Kind::Maintainer => sink.report(
                    MAINTAINER,
                    inst,
                    "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=\"...\"",
                ),
                Kind::Add => add_for_copy(inst, sink),
                Kind::Expose => expose(inst, sink),
                Kind::Cmd | Kind::Entrypoint => {
                    let previous = if inst.kind == Kind::Cmd {
                        &mut cmd
                    } else {
                        &mut entrypoint
                    };
                    if let Some(prev) = previous.replace(inst) {
                        sink.report(
                            MULTIPLE_CMD,
                            prev,
                            format!(
                                "{} is overridden by the one on line {}: only the last one takes effect",
                                inst.kind, inst.span.start_line
                            ),
                        );
                    }
                    if matches!(inst.args, Args::Shell(_)) {
                        sink.report(
                            SHELL_FORM_CMD,
                            inst,
                            format!(
                                "{} in shell form runs under /bin/sh -c, which does not pass signals on: use the JSON form [\"program\", \"arg\"]",
                                inst.kind
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        relative_workdir(stages, i, sink);
    }
    final_user(stages, sink);
}

/// Global ARG defaults, to see through `FROM image:$VERSION`.
fn global_defaults(lexer: &Lexer, global: &[Instruction]) -> EnvList {
    let mut env = EnvList::default();
    for inst in global.iter().filter(|i| i.kind == Kind::Arg) {
        for w in words(inst) {
            if let (name, Some(default)) = arg_pair(w) {
                if let Ok(v) = lexer.expand_word(default, &env) {
                    env.set(name, &v);
                }
            }
        }
    }
    env
}

/// The stage named `name` among the stages before `before`.
fn earlier_stage(stages: &[StageView<'_>], before: usize, name: &str) -> Option<usize> {
    let lower = name.to_lowercase();
    stages[..before]
        .iter()
        .rposition(|s| s.name().as_deref() == Some(lower.as_str()))
}

fn base_image(
    lexer: &Lexer,
    defaults: &EnvList,
    stages: &[StageView<'_>],
    i: usize,
    sink: &mut Sink<'_>,
) {
    let from = stages[i].from;
    let Some(word) = words(from).first() else {
        return;
    };
    // Only judge what the defaults fully determine.
    let Ok(expansion) = lexer.expand_word_with_matches(word, defaults) else {
        return;
    };
    if !expansion.unmatched.is_empty() {
        return;
    }
    let image = expansion.value;
    if image.eq_ignore_ascii_case("scratch")
        || earlier_stage(stages, i, &image).is_some()
        || image.contains('@')
    {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(&image);
    match last.split_once(':') {
        None => sink.report(
            BASE_UNPINNED,
            from,
            format!("base image {image} has no tag: pin a version (image:1.2) or a digest (image@sha256:...)"),
        ),
        Some((_, "latest")) => sink.report(
            BASE_UNPINNED,
            from,
            format!("base image {image} uses :latest: pin a version so rebuilds are reproducible"),
        ),
        Some(_) => {}
    }
}

const ARCHIVE_SUFFIXES: [&str; 12] = [
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".gz", ".bz2",
    ".xz", ".tar.zst",
];

fn add_for_copy(inst: &Instruction, sink: &mut Sink<'_>) {
    // Checksums and git options only make sense for remote sources; heredocs are inline files.
    if !inst.heredocs.is_empty()
        || inst
            .flags
            .iter()
            .any(|f| f.name == "checksum" || f.name == "keep-git-dir")
    {
        return;
    }
    let list = match &inst.args {
        Args::Words(w) | Args::Exec(w) => w,
        _ => return,
    };
    let Some((_, sources)) = list.split_last() else {
        return;
    };
    let local = |s: &String| {
        let lower = s.trim_matches(|c| c == '"' || c == '\'').to_lowercase();
        !lower.contains("://")
            && !lower.starts_with("git@")
            && !lower.contains('$')
            && !ARCHIVE_SUFFIXES.iter().any(|a| lower.ends_with(a))
    };
    if !sources.is_empty() && sources.iter().all(local) {
        sink.report(
            ADD_FOR_COPY,
            inst,
            "ADD of local files that are not archives: use COPY, which only copies",
        );
    }
}

/// Checks one EXPOSE word: `port[-port][/protocol]`.
pub(crate) fn expose_problem(word: &str) -> Option<String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, Some(proto)),
        None => (word, None),
    };
    if let Some(proto) = proto {
        if !["tcp", "udp", "sctp"].contains(&proto.to_ascii_lowercase().as_str()) {
            return Some(format!(
                "invalid protocol {proto:?} in EXPOSE {word}: expected tcp, udp or sctp"
            ));
        }
    }
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (a, b),
        None => (ports, ports),
    };
    let parse = |p: &str| p.parse::<u32>().ok().filter(|&n| n <= 65535);
    match (parse(start), parse(end)) {
        (Some(a), Some(b)) if a <= b => None,
        (Some(_), Some(_)) => Some(format!(
            "invalid port range {ports} in EXPOSE: the start is above the end"
        )),
        _ => Some(format!(
            "invalid port {ports:?} in EXPOSE: expected a number from 0 to 65535"
        )),
    }
}

fn expose(inst: &Instruction, sink: &mut Sink<'_>) {
    for w in words(inst) {
        // Variables are only known at build time.
        if w.contains('$') {
            continue;
        }
        if let Some(problem) = expose_problem(w.trim_matches('"')) {
            sink.report(INVALID_EXPOSE, inst, problem);
        }
    }
}

fn is_absolute(path: &str) -> bool {
    let p = path.trim_matches(|c| c == '"' || c == '\'');
    let windows_drive =
        p.len() >= 2 && p.as_bytes()[1] == b':' && p.as_bytes()[0].is_ascii_alphabetic();
    p.starts_with('/') || p.starts_with('$') || windows_drive
}

fn relative_workdir(stages: &[StageView<'_>], i: usize, sink: &mut Sink<'_>) {
    // A base stage's absolute WORKDIR counts.
    let mut absolute_seen = false;
    let mut base = base_stage(stages, i);
    while let Some(b) = base {
        if stages[b].body.iter().any(|inst| {
            inst.kind == Kind::Workdir && words(inst).first().is_some_and(|p| is_absolute(p))
        }) {
            absolute_seen = true;
            break;
        }
        base = base_stage(stages, b);
    }
    for inst in stages[i]
        .body
        .iter()
        .filter(|inst| inst.kind == Kind::Workdir)
    {
        let Some(path) = words(inst).first() else {
            continue;
        };
        if is_absolute(path) {
            absolute_seen = true;
        } else if !absolute_seen {
            sink.report(
                RELATIVE_WORKDIR,
                inst,
                format!("WORKDIR {path} is relative to the base image's directory: use an absolute path"),
            );
        }
    }
}

/// The earlier stage stage `i` is built FROM, if any.
fn base_stage(stages: &[StageView<'_>], i: usize) -> Option<usize> {
    words(stages[i].from)
        .first()
        .and_then(|w| earlier_stage(stages, i, w))
}

fn final_user(stages: &[StageView<'_>], sink: &mut Sink<'_>) {
    let Some(last) = stages.len().checked_sub(1) else {
        return;
    };
    let mut stage = Some(last);
    while let Some(s) = stage {
        if let Some(user) = stages[s]
            .body
            .iter()
            .rev()
            .find(|inst| inst.kind == Kind::User)
        {
            let name = words(user).first().map(String::as_str).unwrap_or("");
            let who = name.trim_matches('"').split(':').next().unwrap_or("");
            if who == "root" || who == "0" {
                sink.report(
                    USER_ROOT,
                    user,
                    "the final USER is root: switch to an unprivileged user for the running container",
                );
            }
            return;
        }
        stage = base_stage(stages, s);
    }
    sink.report(
        USER_MISSING,
        stages[last].from,
        "the final stage sets no USER: the container runs as the base image's user, often root",
    );
}
