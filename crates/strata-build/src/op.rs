//! The engine's vocabulary: `Op`s in per-stage chains (`StagePlan`), and turning a resolved
//! Dockerfile into them. The executor knows ops, not Dockerfile syntax.

use strata_dockerfile::{
    parse_mount, Args, Base, Command, Dockerfile, Flag, Kind, Lexer, Mount, Network, Resolved,
    Source, Step, TypedInstruction,
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
    /// Path sources (patterns), in order; heredoc sources are in `inline`.
    pub sources: Vec<String>,
    /// Heredoc sources (`COPY <<EOF /dest`): files of mode 0644 named after the delimiter.
    pub inline: Vec<InlineFile>,
    pub dest: String,
    pub from: CopySource,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `--link`: the same files as a plain COPY (see `docs/build.md`).
    pub link: bool,
    /// `--parents`: sources keep their path (below an optional `/./` pivot) under `dest`.
    pub parents: bool,
    /// `--exclude` patterns (Docker's pattern syntax).
    pub exclude: Vec<String>,
    /// ADD `--checksum=sha256:…` of a URL source.
    pub checksum: Option<String>,
}

/// A file given inline as a heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The delimiter word, quotes removed: the file's name.
    pub name: String,
    pub content: String,
}

impl CopyOp {
    /// The history line BuildKit writes: `COPY a <<EOF /dest # buildkit`.
    pub fn history_text(&self) -> String {
        let verb = if self.add { "ADD" } else { "COPY" };
        let mut words: Vec<String> = self.sources.clone();
        words.extend(self.inline.iter().map(|f| format!("<<{}", f.name)));
        words.push(self.dest.clone());
        format!("{verb} {} # buildkit", words.join(" "))
    }
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOp {
    /// The command with heredocs already folded in, BuildKit's way.
    pub command: Command,
    pub network: Option<Network>,
    /// A heredoc script with a `#!` line: written to `/dev/pipes/<name>` (0755, a read-only
    /// mount, never in the layer) and run as the command.
    pub script: Option<InlineFile>,
    /// `--mount`s, values expanded.
    pub mounts: Vec<RunMountOp>,
}

/// One `RUN --mount`, with its `from=` resolved to a stage or image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMountOp {
    pub mount: Mount,
    /// None: the build context (bind) or an empty directory (cache).
    pub from: Option<CopySource>,
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
    /// How BuildKit names the stage in progress lines: its `AS` name or `stage-N`, and only
    /// when the Dockerfile has several stages.
    pub display_name: Option<String>,
    pub from: FromOp,
    /// `FROM --platform=`, expanded.
    pub platform: Option<String>,
    /// Line of the FROM instruction.
    pub line: usize,
    pub steps: Vec<PlannedStep>,
}

impl StagePlan {
    /// BuildKit's `[name i/total]` for a step (`None`: the stage's FROM). Only steps that
    /// change the filesystem count, as in BuildKit: the FROM of an image (step 1; scratch and
    /// an earlier stage are not steps of their own), RUN, COPY, ADD, WORKDIR. Metadata
    /// instructions (ENV, LABEL, USER, CMD…) have no label: BuildKit does not show them.
    pub fn label(&self, step: Option<usize>) -> Option<StepLabel<'_>> {
        let from = usize::from(matches!(self.from, FromOp::Image(_)));
        let shown = |s: &PlannedStep| !matches!(s.op, Op::Metadata(_));
        let index = match step {
            None => 1,
            Some(n) => {
                if !shown(self.steps.get(n)?) {
                    return None;
                }
                from + self.steps[..=n].iter().filter(|s| shown(s)).count()
            }
        };
        Some(StepLabel {
            stage: self.display_name.as_deref(),
            index,
            total: from + self.steps.iter().filter(|s| shown(s)).count(),
        })
    }
}

/// BuildKit's name of a step in progress output: `[build 2/4]`, or `[ 2/12]` in a one-stage
/// build (the index padded to the width of the total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLabel<'a> {
    pub stage: Option<&'a str>,
    /// 1-based.
    pub index: usize,
    pub total: usize,
}

impl std::fmt::Display for StepLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.total.to_string().len();
        match self.stage {
            Some(name) => write!(f, "[{name} {:>width$}/{}]", self.index, self.total),
            None => write!(f, "[{:>width$}/{}]", self.index, self.total),
        }
    }
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
        let display_name = (resolved.stages.len() > 1)
            .then(|| stage.name.clone().unwrap_or_else(|| format!("stage-{i}")));
        out.push(StagePlan {
            index: i,
            name: stage.name.clone(),
            display_name,
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
        // `original` is the logical line; the trigger is everything after the keyword.
        Kind::Onbuild => Op::Metadata(MetadataOp::Onbuild(crate::onbuild::trigger_text(inst))),
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
                    let (command, script) = fold_heredocs(r.command, &r.heredocs, line)?;
                    Op::Run(RunOp {
                        command,
                        network: r.network,
                        script,
                        mounts: expand_mounts(resolved, stage, step, line)?,
                    })
                }
                _ => return Err(BuildError::at(line, "unexpected instruction form")),
            }
        }
        Kind::Copy | Kind::Add => Op::Copy(plan_copy(resolved, stage, step, inst, line)?),
        Kind::From => return Err(BuildError::at(line, "FROM inside a stage")),
    };
    // An ARG's history line is part of its result: `ARG V` and `ARG V=d` given the same
    // --build-arg resolve alike but are recorded differently, so they must not share a key.
    let history = match &op {
        Op::Metadata(MetadataOp::Arg(words)) => Some(words),
        _ => None,
    };
    let key_text = match history {
        Some(words) => serde_json::to_string(&(step.kind.as_str(), &step.args, words)),
        None => {
            serde_json::to_string(&(step.kind.as_str(), &step.flags, &step.args, &step.heredocs))
        }
    }
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
        // The name as the scope resolved it (BuildKit expands `ARG $N=v`'s name too).
        let resolved_name = resolved
            .get(i)
            .map(|w| w.split_once('=').map_or(w.as_str(), |(n, _)| n));
        match word.split_once('=') {
            None => out.push(resolved_name.unwrap_or(word).to_string()),
            Some((raw_name, default)) => {
                let name = resolved_name.unwrap_or(raw_name);
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
    inst: &strata_dockerfile::Instruction,
    line: usize,
) -> Result<CopyOp, BuildError> {
    let add = step.kind == Kind::Add;
    let unsupported = |what: &str| BuildError::Unsupported {
        line,
        instruction: step.kind.as_str(),
        what: what.to_string(),
    };
    if step.flags.iter().any(|f| f.name == "keep-git-dir") {
        return Err(unsupported("--keep-git-dir (git sources)"));
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
    // Which sources are heredocs comes from the typed view of the instruction as written;
    // their bodies (expanded unless the delimiter was quoted) from the resolved step.
    let typed = match inst.typed()? {
        TypedInstruction::Copy(c) | TypedInstruction::Add(c) => c,
        _ => return Err(BuildError::at(line, "unexpected instruction form")),
    };
    let mut bodies = step.heredocs.iter();
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for (i, word) in words.into_iter().enumerate() {
        match typed.sources.get(i) {
            Some(Source::Heredoc(h)) => {
                let body = bodies.next().map_or(&h.content, |b| &b.content);
                inline.push(InlineFile {
                    name: h.name.clone(),
                    content: body.clone(),
                });
            }
            _ => sources.push(word),
        }
    }
    let from = match flag(&step.flags, "from") {
        None => CopySource::Context,
        Some(name) => stage_ref(resolved, stage, name),
    };
    let checksum = flag(&step.flags, "checksum").map(str::to_string);
    if checksum.is_some() {
        if !add {
            return Err(BuildError::at(line, "checksum can't be specified for COPY"));
        }
        if sources.len() != 1 || !inline.is_empty() {
            return Err(BuildError::at(
                line,
                "checksum can't be specified for multiple sources",
            ));
        }
        if !is_http(&sources[0]) {
            return Err(BuildError::at(
                line,
                "checksum can't be specified for non-HTTP sources",
            ));
        }
        if checksum
            .as_deref()
            .is_some_and(|c| !c.starts_with("sha256:"))
        {
            return Err(unsupported("--checksum with a digest other than sha256"));
        }
    }
    for src in &sources {
        if is_http(src) && !add {
            return Err(BuildError::at(line, "source can't be a URL for COPY"));
        }
        if is_git(src) {
            return Err(if add {
                unsupported(&format!("git sources ({src})"))
            } else {
                BuildError::at(line, "source can't be a git ref for COPY")
            });
        }
    }
    let has_flag = |name: &str| step.flags.iter().any(|f| f.name == name);
    Ok(CopyOp {
        add,
        sources,
        inline,
        dest,
        from,
        chown: flag(&step.flags, "chown").map(str::to_string),
        chmod: flag(&step.flags, "chmod").map(str::to_string),
        link: has_flag("link") && flag(&step.flags, "link") != Some("false"),
        parents: has_flag("parents") && flag(&step.flags, "parents") != Some("false"),
        exclude: step
            .flags
            .iter()
            .filter(|f| f.name == "exclude")
            .filter_map(|f| f.value.clone())
            .collect(),
        checksum,
    })
}

/// `http://` or `https://`: ADD downloads it.
pub(crate) fn is_http(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// A git source BuildKit would clone (`git@…`, `git://…`, `….git` URLs, `#ref` fragments).
fn is_git(src: &str) -> bool {
    src.starts_with("git@")
        || src.starts_with("git://")
        || src.starts_with("ssh://")
        || (is_http(src) && {
            let path = src.split(['#', '?']).next().unwrap_or(src);
            path.ends_with(".git")
        })
}

/// BuildKit's RUN heredoc rules. A command that is just `<<EOF` runs the body: directly when
/// it starts with `#!` (as `/dev/pipes/EOF`, mode 0755), else as the shell's script. Anything
/// else gets each body and its terminator appended to the command line, for the shell to read.
/// Bodies are never expanded by the builder (the shell does it).
fn fold_heredocs(
    command: Command,
    heredocs: &[strata_dockerfile::Heredoc],
    line: usize,
) -> Result<(Command, Option<InlineFile>), BuildError> {
    if heredocs.is_empty() {
        return Ok((command, None));
    }
    let Command::Shell(text) = command else {
        return Err(BuildError::at(
            line,
            "parsing produced an invalid run command: heredocs need the shell form",
        ));
    };
    if is_bare_marker(&text) {
        let first = &heredocs[0];
        if first.content.starts_with("#!") {
            let script = InlineFile {
                name: first.name.clone(),
                content: first.content.clone(),
            };
            let path = format!("/dev/pipes/{}", first.name);
            return Ok((Command::Shell(path), Some(script)));
        }
        return Ok((Command::Shell(first.content.clone()), None));
    }
    let mut full = text;
    for h in heredocs {
        full.push('\n');
        full.push_str(&h.content);
        full.push_str(&h.name);
    }
    Ok((Command::Shell(full), None))
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`: a command that is one heredoc marker only.
fn is_bare_marker(text: &str) -> bool {
    let t = text.trim();
    let rest = t.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return false;
    };
    let word = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let word = word.trim_matches(|c| c == '"' || c == '\'');
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The RUN's mounts, parsed from their values as the resolver expanded them.
fn expand_mounts(
    resolved: &Resolved,
    stage: usize,
    step: &Step,
    line: usize,
) -> Result<Vec<RunMountOp>, BuildError> {
    step.flags
        .iter()
        .filter(|f| f.name == "mount")
        .filter_map(|f| f.value.as_deref())
        .map(|v| {
            let mount =
                parse_mount(v).map_err(|m| BuildError::at(line, format!("--mount={v}: {m}")))?;
            let from = mount
                .from
                .as_deref()
                .map(|name| stage_ref(resolved, stage, name));
            Ok(RunMountOp { mount, from })
        })
        .collect()
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
            "FROM scratch\nADD git@github.com:a/b.git /src\n",
            "FROM scratch\nADD --keep-git-dir=true https://example.com/a.git /src\n",
        ] {
            let df = parse(text).unwrap();
            let r = resolve(&df, &ResolveOptions::default()).unwrap();
            assert!(
                matches!(plan(&df, &r), Err(BuildError::Unsupported { line: 2, .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn copy_heredocs_parents_exclude_and_link() {
        let p = planned(
            "FROM scratch\nARG N=x\nCOPY --parents --exclude=*.md --exclude=tmp --link a/./b <<one <<\"two\" /d/\n$N\none\n$N\ntwo\n",
        );
        let Op::Copy(c) = &p[0].steps[1].op else {
            panic!("not a copy")
        };
        assert_eq!(c.sources, ["a/./b"]);
        assert_eq!(
            c.inline,
            [
                InlineFile {
                    name: "one".into(),
                    content: "x\n".into()
                },
                InlineFile {
                    name: "two".into(),
                    content: "$N\n".into()
                }
            ]
        );
        assert!(c.parents && c.link);
        assert_eq!(c.exclude, ["*.md", "tmp"]);
        assert_eq!(c.history_text(), "COPY a/./b <<one <<two /d/ # buildkit");
    }

    #[test]
    fn run_heredocs_fold_like_buildkit() {
        let cases = [
            ("RUN <<EOF\necho $A\nEOF\n", "echo $A\n", None),
            (
                "RUN <<-EOF\n\t#!/bin/sh\n\techo hi\n\tEOF\n",
                "/dev/pipes/EOF",
                Some("#!/bin/sh\necho hi\n"),
            ),
            (
                "RUN cat <<A > /a && sh <<B\nx\nA\necho y\nB\n",
                "cat <<A > /a && sh <<B\nx\nA\necho y\nB",
                None,
            ),
        ];
        for (run, command, script) in cases {
            let p = planned(&format!("FROM scratch\n{run}"));
            let Op::Run(r) = &p[0].steps[0].op else {
                panic!("not a run")
            };
            assert_eq!(r.command, Command::Shell(command.into()), "{run}");
            assert_eq!(
                r.script.as_ref().map(|s| s.content.as_str()),
                script,
                "{run}"
            );
        }
    }

    #[test]
    fn copy_refuses_urls_and_checksums_outside_add() {
        for (text, msg) in [
            ("COPY http://x/a /a", "source can't be a URL for COPY"),
            (
                "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d a /a",
                "checksum can't be specified for non-HTTP sources",
            ),
        ] {
            let df = parse(&format!("FROM scratch\n{text}\n")).unwrap();
            let r = resolve(&df, &ResolveOptions::default()).unwrap();
            let err = plan(&df, &r).unwrap_err().to_string();
            assert!(err.contains(msg), "{err}");
        }
    }
}
