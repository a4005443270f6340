//! ARG/ENV scoping: what every instruction of the build sees, with its words expanded, the way
//! BuildKit's `dockerfile2llb` dispatches a Dockerfile.
//!
//! The rules, each checked against Docker 20.10's BuildKit (`tests/differential/expand.sh scope`):
//! - ARGs before the first FROM (with the automatic platform args) are visible only to FROM lines,
//!   unless a stage re-declares them with `ARG NAME` (no value), which copies the global value in.
//! - An ARG in a stage is visible from its line to the end of the stage, and in stages built
//!   `FROM` that stage. A `--build-arg` replaces the default of a declared ARG, verbatim.
//! - ARG and ENV write the same environment: the later one wins (`ENV V=1` then `ARG V=2` gives 2
//!   to the following lines and RUNs, while the image config keeps `V=1`).
//! - The proxy build args reach every RUN without being declared, but not expansion and not the
//!   history line; declared, they behave like any ARG.
//! - Expanded: FROM (image, `--platform`, with the global args), ENV, LABEL (keys and values), ADD
//!   and COPY (sources, destination, `--chown`, `--chmod`, ADD `--checksum`, heredoc bodies whose
//!   delimiter was not quoted), EXPOSE (and split), STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults,
//!   RUN `--mount`. Not expanded: RUN/CMD/ENTRYPOINT commands (the shell does it), HEALTHCHECK,
//!   SHELL, ONBUILD, MAINTAINER, `COPY --from`, ARG names.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Args, Dockerfile, Flag, Heredoc, Instruction, Kind};
use crate::expand::{ExpandError, Lexer, VarLookup};
use crate::scope_graph;

/// The proxy build args every RUN receives without an ARG line.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The automatic args, set in the global scope (usable in FROM; in a stage after `ARG NAME`).
pub const PLATFORM_ARGS: [&str; 11] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// The PATH BuildKit puts in a Linux image config that has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `os/arch[/variant]`, e.g. `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`.
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
            variant: None,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = ResolveError;

    fn from_str(s: &str) -> Result<Platform, ResolveError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ResolveError::BadPlatform {
            value: s.to_string(),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                variant: None,
            }),
            [os, arch, variant] => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                variant: Some(variant.to_lowercase()),
            }),
            _ => Err(bad()),
        }
    }
}

/// What the build was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOptions {
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    pub target_platform: Platform,
    pub build_platform: Platform,
    /// `--target`; the last stage when `None`.
    pub target: Option<String>,
    /// The config env of external base images, by their expanded name. Unknown images count as
    /// empty: resolve once, pull the bases, then resolve again with their env to get the final
    /// values.
    pub base_env: BTreeMap<String, Vec<(String, String)>>,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            build_args: BTreeMap::new(),
            target_platform: Platform::linux_amd64(),
            build_platform: Platform::linux_amd64(),
            target: None,
            base_env: BTreeMap::new(),
        }
    }
}

/// Why a Dockerfile could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("line {line}: failed to expand {word:?}: {source}")]
    Expand {
        line: usize,
        word: String,
        source: ExpandError,
    },
    #[error("line {line}: base name ({word}) should not be blank")]
    BlankBase { line: usize, word: String },
    #[error("line {line}: empty platform value from expression {word}")]
    BlankPlatform { line: usize, word: String },
    #[error("line {line}: {instruction} needs an argument")]
    MissingArgument { line: usize, instruction: Kind },
    #[error("no build stage in the dockerfile")]
    NoStage,
    #[error("target stage {name:?} could not be found")]
    UnknownTarget { name: String },
    #[error("line {line}: circular dependency between build stages ({stage})")]
    Cycle { line: usize, stage: String },
    #[error(
        "line {line}: invalid stage index {index} for --from (there are {count} stages before it)"
    )]
    BadStageIndex {
        line: usize,
        index: usize,
        count: usize,
    },
    #[error("invalid platform {value:?}: expected os/arch[/variant]")]
    BadPlatform { value: String },
}

/// Where a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An image reference (expanded).
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// The resolved build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The global scope after the ARGs before the first FROM, platform args included.
    pub global_args: Vec<(String, String)>,
    pub stages: Vec<ResolvedStage>,
    /// Index of the stage to build.
    pub target: usize,
    /// The stages the target needs, itself included, in an order where every stage comes after
    /// the stages it needs.
    pub build_order: Vec<usize>,
    /// `--build-arg` names no ARG of the needed stages (or the global scope) declares, sorted;
    /// proxy and platform args, SOURCE_DATE_EPOCH and `BUILDKIT_*` never count as unused.
    pub unused_build_args: Vec<String>,
}

/// One stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStage {
    /// Index of the FROM instruction in `Dockerfile::instructions`.
    pub from_instruction: usize,
    /// `AS name`, lower-cased as BuildKit compares it.
    pub name: Option<String>,
    /// The FROM image word after expansion.
    pub base_name: String,
    pub base: Base,
    /// `FROM --platform=`, expanded.
    pub platform: Option<String>,
    /// Stages this one needs: its base and every `COPY --from` / `RUN --mount from=` stage.
    pub depends_on: BTreeSet<usize>,
    /// Whether the target needs this stage. Only needed stages have `steps` and `image_env`.
    pub needed: bool,
    pub steps: Vec<Step>,
    /// The image config env at the end of the stage (ENV only, PATH added when missing).
    pub image_env: Vec<(String, String)>,
}

/// One instruction of a stage as the builder will run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index in `Dockerfile::instructions`.
    pub instruction: usize,
    pub kind: Kind,
    /// Arguments after expansion (unchanged for instructions that are not expanded).
    pub args: Args,
    /// Flags after expansion.
    pub flags: Vec<Flag>,
    /// Heredocs, bodies expanded where the delimiter was unquoted (ADD/COPY only).
    pub heredocs: Vec<Heredoc>,
    /// The environment the instruction sees (ENV and ARG values, before its own effect). A RUN
    /// runs with exactly this plus `proxy_env`.
    pub env: Vec<(String, String)>,
    /// The ARGs declared so far in the stage (and its base stages) with their values: BuildKit's
    /// `|N NAME=value` prefix of a RUN's history line and part of its cache key.
    pub build_args: Vec<(String, String)>,
    /// Proxy build args (RUN only): in the process env, never in history or the cache key.
    pub proxy_env: Vec<(String, String)>,
    /// Variables the expansion found set / unset.
    pub matched: BTreeSet<String>,
    pub unmatched: BTreeSet<String>,
}

/// An ordered environment where setting a name again replaces it in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EnvList(pub(crate) Vec<(String, String)>);

impl EnvList {
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }
}

impl VarLookup for EnvList {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits an ARG word `NAME=default` (quotes kept in the default, expanded later).
pub(crate) fn arg_pair(word: &str) -> (&str, Option<&str>) {
    match word.split_once('=') {
        Some((name, default)) => (name, Some(default)),
        None => (word, None),
    }
}

/// The argument words of an instruction with `Args::Words`, or nothing.
pub(crate) fn words(inst: &Instruction) -> &[String] {
    match &inst.args {
        Args::Words(w) => w,
        _ => &[],
    }
}

/// Expands `word` and records what it referred to.
pub(crate) struct Expander<'a> {
    pub(crate) lexer: &'a Lexer,
    pub(crate) line: usize,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

impl Expander<'_> {
    pub(crate) fn word(&mut self, word: &str, env: &dyn VarLookup) -> Result<String, ResolveError> {
        let e = self
            .lexer
            .expand_word_with_matches(word, env)
            .map_err(|source| ResolveError::Expand {
                line: self.line,
                word: word.to_string(),
                source,
            })?;
        self.matched.extend(e.matched);
        self.unmatched.extend(e.unmatched);
        Ok(e.value)
    }
}

fn platform_args(opts: &ResolveOptions) -> EnvList {
    let (bp, tp) = (&opts.build_platform, &opts.target_platform);
    let target = opts.target.clone().unwrap_or_else(|| "default".to_string());
    let defaults = [
        ("BUILDPLATFORM", bp.to_string()),
        ("BUILDOS", bp.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", bp.architecture.clone()),
        ("BUILDVARIANT", bp.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM", tp.to_string()),
        ("TARGETOS", tp.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", tp.architecture.clone()),
        ("TARGETVARIANT", tp.variant.clone().unwrap_or_default()),
        ("TARGETSTAGE", target),
    ];
    let mut env = EnvList::default();
    for (name, value) in defaults {
        // A --build-arg may override any of them.
        env.set(name, opts.build_args.get(name).unwrap_or(&value));
    }
    env
}

/// Computes what every instruction of the target's stages sees. See the module docs for the rules.
pub fn resolve(df: &Dockerfile, opts: &ResolveOptions) -> Result<Resolved, ResolveError> {
    let lexer = Lexer::new(df.directives.escape);
    let first_from = df
        .instructions
        .iter()
        .position(|i| i.kind == Kind::From)
        .ok_or(ResolveError::NoStage)?;

    // The global scope.
    let mut global = platform_args(opts);
    let mut declared: BTreeSet<String> = BTreeSet::new();
    for inst in df.instructions[..first_from]
        .iter()
        .filter(|i| i.kind == Kind::Arg)
    {
        let mut ex = Expander {
            lexer: &lexer,
            line: inst.span.start_line,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        for word in words(inst) {
            let (raw_name, default) = arg_pair(word);
            let name = ex.word(raw_name, &global)?;
            let name = name.as_str();
            declared.insert(name.to_string());
            let value = match (opts.build_args.get(name), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(ex.word(d, &global)?),
                (None, None) => None,
            };
            if let Some(v) = value {
                global.set(name, &v);
            }
        }
    }

    let mut stages = scope_graph::stages(df, first_from, &lexer, &global)?;
    let target = scope_graph::target(&stages, opts.target.as_deref())?;
    let build_order = scope_graph::build_order(df, &stages, target)?;
    for &i in &build_order {
        stages[i].needed = true;
    }
    let mut states = vec![None; stages.len()];
    for &i in &build_order {
        let (steps, state) =
            crate::scope_stage::dispatch(df, &stages, i, &lexer, &global, opts, &states)?;
        // The names as resolved (`ARG $N` declares what N expands to).
        for step in steps.iter().filter(|s| s.kind == Kind::Arg) {
            if let Args::Words(w) = &step.args {
                declared.extend(w.iter().map(|w| arg_pair(w).0.to_string()));
            }
        }
        stages[i].steps = steps;
        stages[i].image_env = state.image_env.0.clone();
        states[i] = Some(state);
    }

    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| {
            // The builder itself reads SOURCE_DATE_EPOCH and BUILDKIT_* options.
            !declared.contains(*k)
                && !PROXY_ARGS.contains(&k.as_str())
                && !PLATFORM_ARGS.contains(&k.as_str())
                && k.as_str() != "SOURCE_DATE_EPOCH"
                && !k.starts_with("BUILDKIT_")
        })
        .cloned()
        .collect();
    Ok(Resolved {
        global_args: global.0,
        stages,
        target,
        build_order,
        unused_build_args,
    })
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
