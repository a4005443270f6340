//! The engine's vocabulary: `Op`s in per-stage chains (`StagePlan`), and turning a resolved
//! Dockerfile into them. The executor knows ops, not Dockerfile syntax.

use strata_dockerfile::{
    Args, Base, Command, Dockerfile, Flag, Kind, Lexer, Network, Resolved, Step, TypedInstruction,
};

use crate::BuildError;

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromOp {
    Scratch,
    /// A store image by name or ID.
    Image(String),
    /// The result of an earlier stage, by index.
    Stage(usize),
}

/// A change to the image config only (no layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataOp {
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    StopSignal(String),
    /// `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<HealthSpec>),
    /// The `NAME[=value]` words as history shows them.
    Arg(Vec<String>),
    /// The trigger as written (`RUN echo hi`).
    Onbuild(String),
    Maintainer(String),
}

/// `HEALTHCHECK CMD` with its options, durations in nanoseconds (0: unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub command: Command,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// Where COPY takes its files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    Context,
    Stage(usize),
    Image(String),
}

/// COPY or ADD of local files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOp {
    /// ADD: history says `ADD` and local tar archives are extracted; URLs are refused for now.
    pub add: bool,
    pub sources: Vec<String>,
    pub dest: String,
    pub from: CopySource,
    pub chown: Option<String>,
    pub chmod: Option<String>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOp {
    pub command: Command,
    pub network: Option<Network>,
}

/// One operation of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Metadata(MetadataOp),
    /// WORKDIR: sets the working dir and creates it (a layer, as BuildKit does).
    Workdir(String),
    Copy(CopyOp),
    Run(RunOp),
}

/// An op with what the cache key and the executor need to know about its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// 1-based Dockerfile line.
    pub line: usize,
    pub op: Op,
    /// The instruction as written (its logical line), for progress display.
    pub text: String,
    /// The instruction as expanded, canonically encoded: the cache key's view of the step.
    pub key_text: String,
    /// Declared ARGs with values (BuildKit's `|N A=b` of RUN, part of the key).
    pub build_args: Vec<(String, String)>,
    /// The environment the step sees.
    pub env: Vec<(String, String)>,
    /// Proxy args (RUN only), never in the key or history.
    pub proxy_env: Vec<(String, String)>,
}

/// The chain of one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    pub index: usize,
    pub name: Option<String>,
    pub from: FromOp,
    /// `FROM --platform=`, expanded.
    pub platform: Option<String>,
    /// Line of the FROM instruction.
    pub line: usize,
    pub steps: Vec<PlannedStep>,
}

/// The stages to build, in build order (each after the stages it needs); the last is the target.
pub fn plan(df: &Dockerfile, resolved: &Resolved) -> Result<Vec<StagePlan>, BuildError> {
    let mut out = Vec::new();
    for &i in &resolved.build_order {
        let stage = &resolved.stages[i];
        let line = df.instructions[stage.from_instruction].span.start_line;
        let from = match &stage.base {
            Base::Scratch => FromOp::Scratch,
            Base::Image(name) => FromOp::Image(name.clone()),
            Base::Stage(j) => FromOp::Stage(*j),
        };
        let steps = stage
            .steps
            .iter()
            .map(|s| plan_step(df, resolved, i, s))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(StagePlan {
            index: i,
            name: stage.name.clone(),
            from,
            platform: stage.platform.clone(),
            line,
            steps,
        });
    }
    Ok(out)
}

fn plan_step(
    df: &Dockerfile,
    resolved: &Resolved,
    stage: usize,
    step: &Step,
) -> Result<PlannedStep, BuildError> {
    let inst = &df.instructions[step.instruction];
    let line = inst.span.start_line;
    let words = || match &step.args {
        Args::Words(w) | Args::Exec(w) => w.clone(),
        _ => Vec::new(),
    };
    let pairs = || match &step.args {
        Args::KeyValues(p) => p.clone(),
        _ => Vec::new(),
    };
    let unsupported = |what: &str| BuildError::Unsupported {
        line,
        instruction: step.kind.as_str(),
        what: what.to_string(),
    };
    let op = match step.kind {
        Kind::Env => Op::Metadata(MetadataOp::Env(pairs())),
        Kind::Label => Op::Metadata(MetadataOp::Label(pairs())),
        Kind::User => Op::Metadata(MetadataOp::User(words().join(" "))),
        Kind::Stopsignal => Op::Metadata(MetadataOp::StopSignal(words().join(" "))),
        Kind::Maintainer => Op::Metadata(MetadataOp::Maintainer(words().join(" "))),
        Kind::Expose => Op::Metadata(MetadataOp::Expose(words())),
        Kind::Volume => Op::Metadata(MetadataOp::Volume(words())),
        Kind::Arg => Op::Metadata(MetadataOp::Arg(arg_history_words(df, step)?)),
        Kind::Workdir => Op::Workdir(words().join(" ")),
        Kind::Onbuild => {
            // `original` is the logical line; the trigger is everything after the keyword.
            let text = inst.original.trim_start();
            let trigger = text
                .split_once(char::is_whitespace)
                .map_or("", |(_, rest)| rest.trim_start());
            Op::Metadata(MetadataOp::Onbuild(trigger.to_string()))
        }
        Kind::Cmd | Kind::Entrypoint | Kind::Shell | Kind::Healthcheck | Kind::Run => {
            match inst.typed()? {
                TypedInstruction::Cmd(c) => Op::Metadata(MetadataOp::Cmd(c)),
                TypedInstruction::Entrypoint(c) => Op::Metadata(MetadataOp::Entrypoint(c)),
                TypedInstruction::Shell(s) => Op::Metadata(MetadataOp::Shell(s)),
                TypedInstruction::Healthcheck(h) => {
                    let ns = |d: Option<std::time::Duration>| {
                        d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                    };
                    Op::Metadata(MetadataOp::Healthcheck(h.command.map(|command| {
                        HealthSpec {
                            command,
                            interval: ns(h.interval),
                            timeout: ns(h.timeout),
                            start_period: ns(h.start_period),
                            start_interval: ns(h.start_interval),
                            retries: i64::from(h.retries.unwrap_or(0)),
                        }
                    })))
                }
                TypedInstruction::Run(r) => {
                    if !r.mounts.is_empty() {
                        return Err(unsupported("--mount"));
                    }
                    if !r.heredocs.is_empty() {
                        return Err(unsupported("heredocs"));
                    }
                    Op::Run(RunOp {
                        command: r.command,
                        network: r.network,
                    })
                }
                _ => return Err(BuildError::at(line, "unexpected instruction form")),
            }
        }
        Kind::Copy | Kind::Add => Op::Copy(plan_copy(resolved, stage, step, line)?),
        Kind::From => return Err(BuildError::at(line, "FROM inside a stage")),
    };
    let key_text =
        serde_json::to_string(&(step.kind.as_str(), &step.flags, &step.args, &step.heredocs))
            .map_err(|e| BuildError::at(line, format!("encoding the cache key: {e}")))?;
    Ok(PlannedStep {
        line,
        op,
        text: inst.original.clone(),
        key_text,
        build_args: step.build_args.clone(),
        env: step.env.clone(),
        proxy_env: step.proxy_env.clone(),
    })
}

/// The words of BuildKit's `ARG` history line: each name with its Dockerfile default expanded
/// (`ARG V=1` even when `--build-arg V=9` overrides it; `ARG W` for no default).
fn arg_history_words(df: &Dockerfile, step: &Step) -> Result<Vec<String>, BuildError> {
    let inst = &df.instructions[step.instruction];
    let raw = match &inst.args {
        Args::Words(w) => w.as_slice(),
        _ => &[],
    };
    let resolved = match &step.args {
        Args::Words(w) => w.as_slice(),
        _ => &[],
    };
    let lexer = Lexer::new(df.directives.escape);
    let mut env = step.env.clone();
    let mut out = Vec::new();
    for (i, word) in raw.iter().enumerate() {
        match word.split_once('=') {
            None => out.push(word.clone()),
            Some((name, default)) => {
                let value = lexer.expand_word(default, &env).map_err(|e| {
                    BuildError::at(inst.span.start_line, format!("expanding {word:?}: {e}"))
                })?;
                out.push(format!("{name}={value}"));
            }
        }
        // Later words of the same ARG see the value this one got.
        if let Some((name, value)) = resolved.get(i).and_then(|w| w.split_once('=')) {
            match env.iter_mut().find(|(k, _)| k == name) {
                Some(entry) => entry.1 = value.to_string(),
                None => env.push((name.to_string(), value.to_string())),
            }
        }
    }
    Ok(out)
}

fn flag<'a>(flags: &'a [Flag], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .rev()
        .find(|f| f.name == name)
        .and_then(|f| f.value.as_deref())
}

fn plan_copy(
    resolved: &Resolved,
    stage: usize,
    step: &Step,
    line: usize,
) -> Result<CopyOp, BuildError> {
    let add = step.kind == Kind::Add;
    let unsupported = |what: &str| BuildError::Unsupported {
        line,
        instruction: step.kind.as_str(),
        what: what.to_string(),
    };
    if !step.heredocs.is_empty() {
        return Err(unsupported("heredoc sources"));
    }
    for f in &step.flags {
        if matches!(
            f.name.as_str(),
            "parents" | "exclude" | "checksum" | "keep-git-dir"
        ) {
            return Err(unsupported(&format!("--{}", f.name)));
        }
    }
    let mut words = match &step.args {
        Args::Words(w) | Args::Exec(w) => w.clone(),
        _ => Vec::new(),
    };
    let dest = match words.pop() {
        Some(d) if !words.is_empty() => d,
        _ => {
            return Err(BuildError::at(
                line,
                format!("{} requires at least two arguments", step.kind),
            ))
        }
    };
    let from = match flag(&step.flags, "from") {
        None => CopySource::Context,
        Some(name) => stage_ref(resolved, stage, name),
    };
    Ok(CopyOp {
        add,
        sources: words,
        dest,
        from,
        chown: flag(&step.flags, "chown").map(str::to_string),
        chmod: flag(&step.flags, "chmod").map(str::to_string),
    })
}

/// `--from=<name|index|image>`: an earlier stage by name or index, else an image.
fn stage_ref(resolved: &Resolved, stage: usize, name: &str) -> CopySource {
    let lower = name.to_lowercase();
    if let Some(j) = resolved.stages[..stage]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return CopySource::Stage(j);
    }
    match name.parse::<usize>() {
        Ok(j) if j < stage => CopySource::Stage(j),
        _ => CopySource::Image(name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_dockerfile::{parse, resolve, ResolveOptions};

    fn planned(text: &str) -> Vec<StagePlan> {
        let df = parse(text).unwrap();
        let r = resolve(&df, &ResolveOptions::default()).unwrap();
        plan(&df, &r).unwrap()
    }

    #[test]
    fn stages_become_op_chains_in_build_order() {
        let p = planned(
            "FROM scratch AS a\nARG X=1\nENV E=$X\nCOPY f /g\n\
             FROM busybox\nCOPY --from=a --chown=1:2 /g /h/\nWORKDIR w\nCMD [\"x\"]\nONBUILD RUN echo hi\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].from, FromOp::Scratch);
        assert_eq!(
            p[0].steps[1].op,
            Op::Metadata(MetadataOp::Env(vec![("E".into(), "1".into())]))
        );
        assert_eq!(p[1].from, FromOp::Image("busybox".into()));
        let Op::Copy(c) = &p[1].steps[0].op else {
            panic!("not a copy")
        };
        assert_eq!(c.from, CopySource::Stage(0));
        assert_eq!(c.chown.as_deref(), Some("1:2"));
        assert_eq!(c.sources, vec!["/g".to_string()]);
        assert_eq!(c.dest, "/h/");
        assert_eq!(p[1].steps[1].op, Op::Workdir("w".into()));
        assert_eq!(
            p[1].steps[3].op,
            Op::Metadata(MetadataOp::Onbuild("RUN echo hi".into()))
        );
    }

    #[test]
    fn arg_history_shows_defaults_not_overrides() {
        let df = parse("FROM scratch\nARG V=1\nARG W\nARG X=$V Y=$X\n").unwrap();
        let opts = ResolveOptions {
            build_args: [("V", "9"), ("W", "5")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            ..ResolveOptions::default()
        };
        let r = resolve(&df, &opts).unwrap();
        let p = plan(&df, &r).unwrap();
        let words: Vec<Op> = p[0].steps.iter().map(|s| s.op.clone()).collect();
        // Docker 20.10 + BuildKit with --build-arg V=9 --build-arg W=5: `ARG V=1`, `ARG W`,
        // `ARG X=9`.
        let arg =
            |w: &[&str]| Op::Metadata(MetadataOp::Arg(w.iter().map(|s| s.to_string()).collect()));
        assert_eq!(words, [arg(&["V=1"]), arg(&["W"]), arg(&["X=9", "Y=9"])]);
    }

    #[test]
    fn unsupported_forms_are_typed_errors() {
        for text in [
            "FROM scratch\nRUN --mount=type=cache,target=/c true\n",
            "FROM scratch\nCOPY --parents a /b\n",
            "FROM scratch\nCOPY <<EOF /x\nhi\nEOF\n",
        ] {
            let df = parse(text).unwrap();
            let r = resolve(&df, &ResolveOptions::default()).unwrap();
            assert!(
                matches!(plan(&df, &r), Err(BuildError::Unsupported { line: 2, .. })),
                "{text}"
            );
        }
    }
}
