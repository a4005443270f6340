//! Dispatching one stage: walks its instructions in order, expanding each with the environment
//! it sees and updating that environment with ENV and ARG (BuildKit's `dispatch`/`dispatchArg`).

use std::collections::BTreeSet;

use crate::ast::{Args, Dockerfile, Flag, Heredoc, Instruction, Kind};
use crate::expand::{Lexer, VarLookup};
use crate::scope::{
    arg_pair, Base, EnvList, Expander, ResolveError, ResolveOptions, ResolvedStage, Step,
    DEFAULT_PATH, PROXY_ARGS,
};
use crate::scope_graph::stage_instructions;

/// What a stage leaves to a stage built `FROM` it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StageState {
    /// ENV and ARG values, what expansion and RUN see.
    env: EnvList,
    /// The image config env: ENV only.
    pub(crate) image_env: EnvList,
    /// Declared ARGs in order of first declaration, each once, with the last value it got.
    args: Vec<(String, Option<String>)>,
}

fn initial_state(
    stage: &ResolvedStage,
    parents: &[Option<StageState>],
    opts: &ResolveOptions,
) -> StageState {
    let mut state = match &stage.base {
        Base::Stage(j) => parents.get(*j).cloned().flatten().unwrap_or_default(),
        Base::Image(name) => StageState {
            image_env: EnvList(opts.base_env.get(name).cloned().unwrap_or_default()),
            ..StageState::default()
        },
        Base::Scratch => StageState::default(),
    };
    if state.image_env.get("PATH").is_none() && opts.target_platform.os != "windows" {
        state.image_env.set("PATH", DEFAULT_PATH);
    }
    // BuildKit loads the image config env over the inherited state, so a base stage's ENV wins
    // again over its ARG of the same name.
    for (k, v) in state.image_env.0.clone() {
        state.env.set(&k, &v);
    }
    state
}

/// The `|N NAME=value` pairs of a RUN: every declared ARG once (`args` holds no duplicates),
/// valued from the environment.
fn run_build_args(state: &StageState) -> Vec<(String, String)> {
    state
        .args
        .iter()
        .map(|(name, value)| {
            let v = match state.env.get(name) {
                Some(v) => v.to_string(),
                None => value.clone().unwrap_or_default(),
            };
            (name.clone(), v)
        })
        .collect()
}

fn expand_words(
    ex: &mut Expander<'_>,
    words: &[String],
    env: &EnvList,
) -> Result<Vec<String>, ResolveError> {
    words.iter().map(|w| ex.word(w, env)).collect()
}

/// Expands the arguments of instructions whose arguments are plain words (or a JSON list).
fn expand_list(ex: &mut Expander<'_>, args: &Args, env: &EnvList) -> Result<Args, ResolveError> {
    Ok(match args {
        Args::Words(w) => Args::Words(expand_words(ex, w, env)?),
        Args::Exec(w) => Args::Exec(expand_words(ex, w, env)?),
        other => other.clone(),
    })
}

fn expand_flags(
    ex: &mut Expander<'_>,
    flags: &[Flag],
    names: &[&str],
    env: &EnvList,
) -> Result<Vec<Flag>, ResolveError> {
    flags
        .iter()
        .map(|f| {
            let value = match &f.value {
                Some(v) if names.contains(&f.name.as_str()) => Some(ex.word(v, env)?),
                other => other.clone(),
            };
            Ok(Flag {
                name: f.name.clone(),
                value,
            })
        })
        .collect()
}

/// Heredoc bodies of ADD/COPY: expanded with quotes left alone, always with `\` as the escape.
fn expand_heredocs(
    ex: &mut Expander<'_>,
    heredocs: &[Heredoc],
    env: &EnvList,
) -> Result<Vec<Heredoc>, ResolveError> {
    let lexer = Lexer::new('\\').literal_quotes(true);
    let mut raw = Expander {
        lexer: &lexer,
        line: ex.line,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let out = heredocs
        .iter()
        .map(|h| {
            let mut h = h.clone();
            if h.expand {
                h.content = raw.word(&h.content, env)?;
            }
            Ok(h)
        })
        .collect::<Result<Vec<_>, ResolveError>>()?;
    ex.matched.extend(raw.matched);
    ex.unmatched.extend(raw.unmatched);
    Ok(out)
}

/// Resolves the steps of stage `i`; its base stage (if any) must be in `parents` already.
pub(crate) fn dispatch(
    df: &Dockerfile,
    stages: &[ResolvedStage],
    i: usize,
    lexer: &Lexer,
    global: &EnvList,
    opts: &ResolveOptions,
    parents: &[Option<StageState>],
) -> Result<(Vec<Step>, StageState), ResolveError> {
    let stage = &stages[i];
    let mut state = initial_state(stage, parents, opts);
    let mut steps = Vec::new();
    for (offset, inst) in stage_instructions(df, stage.from_instruction).enumerate() {
        let step = dispatch_one(
            inst,
            stage.from_instruction + 1 + offset,
            lexer,
            global,
            opts,
            &mut state,
        )?;
        steps.push(step);
    }
    Ok((steps, state))
}

fn dispatch_one(
    inst: &Instruction,
    index: usize,
    lexer: &Lexer,
    global: &EnvList,
    opts: &ResolveOptions,
    state: &mut StageState,
) -> Result<Step, ResolveError> {
    let env = state.env.clone();
    let build_args = run_build_args(state);
    let mut ex = Expander {
        lexer,
        line: inst.span.start_line,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let mut flags = inst.flags.clone();
    let mut heredocs = inst.heredocs.clone();
    let mut proxy_env = Vec::new();
    let args = match inst.kind {
        Kind::Env | Kind::Label => {
            let Args::KeyValues(pairs) = &inst.args else {
                return Ok(unexpanded(inst, index, env, build_args));
            };
            // Every pair sees the environment from before the instruction.
            let expanded = pairs
                .iter()
                .map(|(k, v)| Ok((ex.word(k, &env)?, ex.word(v, &env)?)))
                .collect::<Result<Vec<_>, ResolveError>>()?;
            if inst.kind == Kind::Env {
                for (k, v) in &expanded {
                    state.env.set(k, v);
                    state.image_env.set(k, v);
                }
            }
            Args::KeyValues(expanded)
        }
        Kind::Arg => {
            let mut out = Vec::new();
            for word in crate::scope::words(inst) {
                let (raw_name, default) = arg_pair(word);
                // BuildKit expands the name too (`ARG $N=v` with N=NAME declares NAME).
                let name = ex.word(raw_name, &state.env)?;
                let name = name.as_str();
                let value = match (opts.build_args.get(name), default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(ex.word(d, &state.env)?),
                    // Re-declaring a global ARG (or a platform arg) brings its value in.
                    (None, None) => global.get(name).map(str::to_string),
                };
                if let Some(v) = &value {
                    state.env.set(name, v);
                }
                out.push(match &value {
                    Some(v) => format!("{name}={v}"),
                    None => name.to_string(),
                });
                // Declared again: BuildKit's history keeps the first position and the last value.
                match state.args.iter_mut().find(|(k, _)| k == name) {
                    Some(entry) => entry.1 = value,
                    None => state.args.push((name.to_string(), value)),
                }
            }
            Args::Words(out)
        }
        Kind::Add | Kind::Copy => {
            let names: &[&str] = if inst.kind == Kind::Add {
                &["chown", "chmod", "checksum"]
            } else {
                &["chown", "chmod"]
            };
            flags = expand_flags(&mut ex, &inst.flags, names, &env)?;
            heredocs = expand_heredocs(&mut ex, &inst.heredocs, &env)?;
            expand_list(&mut ex, &inst.args, &env)?
        }
        Kind::Expose => {
            let mut ports = Vec::new();
            for w in crate::scope::words(inst) {
                let split = lexer
                    .expand_words(w, &env)
                    .map_err(|source| ResolveError::Expand {
                        line: inst.span.start_line,
                        word: w.clone(),
                        source,
                    })?;
                // Same lookups again, only to record them: expand_words does not report.
                ex.word(w, &env)?;
                ports.extend(split);
            }
            Args::Words(ports)
        }
        Kind::Stopsignal | Kind::User | Kind::Workdir | Kind::Volume => {
            expand_list(&mut ex, &inst.args, &env)?
        }
        Kind::Run => {
            flags = expand_flags(&mut ex, &inst.flags, &["mount"], &env)?;
            proxy_env = opts
                .build_args
                .iter()
                .filter(|(k, _)| PROXY_ARGS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            inst.args.clone()
        }
        _ => inst.args.clone(),
    };
    Ok(Step {
        instruction: index,
        kind: inst.kind,
        args,
        flags,
        heredocs,
        build_args,
        env: env.0,
        proxy_env,
        matched: ex.matched,
        unmatched: ex.unmatched,
    })
}

fn unexpanded(
    inst: &Instruction,
    index: usize,
    env: EnvList,
    build_args: Vec<(String, String)>,
) -> Step {
    Step {
        instruction: index,
        kind: inst.kind,
        args: inst.args.clone(),
        flags: inst.flags.clone(),
        heredocs: inst.heredocs.clone(),
        env: env.0,
        build_args,
        proxy_env: Vec::new(),
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    }
}
