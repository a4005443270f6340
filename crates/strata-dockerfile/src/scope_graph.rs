//! Build stages as a graph: each FROM's base after expansion, the stages a stage needs
//! (`FROM <stage>`, `COPY --from=<stage|index>`, `RUN --mount=from=<stage>`), the target and the
//! order to build what it needs.

use std::collections::BTreeSet;

use crate::ast::{Dockerfile, Instruction, Kind};
use crate::expand::Lexer;
use crate::scope::{words, Base, EnvList, Expander, ResolveError, ResolvedStage};

/// The instructions after the FROM at `from` up to the next FROM.
pub(crate) fn stage_instructions(
    df: &Dockerfile,
    from: usize,
) -> impl Iterator<Item = &Instruction> {
    df.instructions[from + 1..]
        .iter()
        .take_while(|i| i.kind != Kind::From)
}

/// The value of flag `name` (last one wins, as in BuildKit's flag parser).
pub(crate) fn flag<'a>(inst: &'a Instruction, name: &str) -> Option<&'a str> {
    inst.flags
        .iter()
        .rev()
        .find(|f| f.name == name)
        .and_then(|f| f.value.as_deref())
}

/// Every stage with its base expanded (FROM sees the global scope only) and its dependencies.
pub(crate) fn stages(
    df: &Dockerfile,
    first_from: usize,
    lexer: &Lexer,
    global: &EnvList,
) -> Result<Vec<ResolvedStage>, ResolveError> {
    let mut stages: Vec<ResolvedStage> = Vec::new();
    for (index, inst) in df.instructions.iter().enumerate().skip(first_from) {
        if inst.kind != Kind::From {
            continue;
        }
        let line = inst.span.start_line;
        let mut ex = Expander {
            lexer,
            line,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let w = words(inst);
        let image = w.first().ok_or(ResolveError::MissingArgument {
            line,
            instruction: Kind::From,
        })?;
        let base_name = ex.word(image, global)?;
        if base_name.is_empty() {
            return Err(ResolveError::BlankBase {
                line,
                word: image.clone(),
            });
        }
        let name = match w {
            [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
            _ => None,
        };
        let platform = match flag(inst, "platform") {
            Some(p) => {
                let value = ex.word(p, global)?;
                if value.is_empty() {
                    return Err(ResolveError::BlankPlatform {
                        line,
                        word: p.to_string(),
                    });
                }
                Some(value)
            }
            None => None,
        };
        // Only an earlier stage can be a base, compared with its lower-cased name as written.
        let base = if base_name.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(j) = stages
            .iter()
            .position(|s| s.name.as_deref() == Some(base_name.as_str()))
        {
            Base::Stage(j)
        } else {
            Base::Image(base_name.clone())
        };
        stages.push(ResolvedStage {
            from_instruction: index,
            name,
            base_name,
            base,
            platform,
            depends_on: BTreeSet::new(),
            needed: false,
            steps: Vec::new(),
            image_env: Vec::new(),
        });
    }
    for i in 0..stages.len() {
        let deps = dependencies(df, &stages, i)?;
        stages[i].depends_on = deps;
    }
    Ok(stages)
}

/// A stage referred to by name (case-insensitive) or index; `None` for an image reference.
fn stage_ref(
    stages: &[ResolvedStage],
    reference: &str,
    line: usize,
) -> Result<Option<usize>, ResolveError> {
    if let Ok(index) = reference.parse::<usize>() {
        if index >= stages.len() {
            return Err(ResolveError::BadStageIndex {
                line,
                index,
                count: stages.len(),
            });
        }
        return Ok(Some(index));
    }
    let lower = reference.to_lowercase();
    Ok(stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str())))
}

/// The `from=` key of a `--mount` value.
fn mount_from(mount: &str) -> Option<&str> {
    mount
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("from="))
}

fn dependencies(
    df: &Dockerfile,
    stages: &[ResolvedStage],
    i: usize,
) -> Result<BTreeSet<usize>, ResolveError> {
    let mut deps = BTreeSet::new();
    if let Base::Stage(j) = stages[i].base {
        deps.insert(j);
    }
    for inst in stage_instructions(df, stages[i].from_instruction) {
        let line = inst.span.start_line;
        let referenced: Vec<&str> = match inst.kind {
            Kind::Copy => flag(inst, "from").into_iter().collect(),
            Kind::Run => inst
                .flags
                .iter()
                .filter(|f| f.name == "mount")
                .filter_map(|f| f.value.as_deref().and_then(mount_from))
                .collect(),
            _ => Vec::new(),
        };
        for r in referenced {
            if let Some(j) = stage_ref(stages, r, line)? {
                deps.insert(j);
            }
        }
    }
    Ok(deps)
}

/// The target stage: `--target` by name (case-insensitive), or the last stage.
pub(crate) fn target(stages: &[ResolvedStage], name: Option<&str>) -> Result<usize, ResolveError> {
    match name {
        None => stages.len().checked_sub(1).ok_or(ResolveError::NoStage),
        Some(n) => {
            let lower = n.to_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lower.as_str()))
                .ok_or_else(|| ResolveError::UnknownTarget {
                    name: n.to_string(),
                })
        }
    }
}

/// The stages `target` needs, dependencies first (depth-first post-order, ties by index).
/// Iterative, so a long chain of stages cannot overflow the stack.
pub(crate) fn build_order(
    df: &Dockerfile,
    stages: &[ResolvedStage],
    target: usize,
) -> Result<Vec<usize>, ResolveError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let mut marks = vec![Mark::New; stages.len()];
    let mut order = Vec::new();
    // (stage, its dependencies not yet visited)
    let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
    marks[target] = Mark::Visiting;
    stack.push((
        target,
        stages[target].depends_on.iter().rev().copied().collect(),
    ));
    while let Some((stage, pending)) = stack.last_mut() {
        let stage = *stage;
        match pending.pop() {
            None => {
                marks[stage] = Mark::Done;
                order.push(stage);
                stack.pop();
            }
            Some(dep) => match marks[dep] {
                Mark::Done => {}
                Mark::Visiting => {
                    let s = &stages[dep];
                    return Err(ResolveError::Cycle {
                        line: df.instructions[s.from_instruction].span.start_line,
                        stage: s.name.clone().unwrap_or_else(|| format!("stage-{dep}")),
                    });
                }
                Mark::New => {
                    marks[dep] = Mark::Visiting;
                    stack.push((dep, stages[dep].depends_on.iter().rev().copied().collect()));
                }
            },
        }
    }
    Ok(order)
}
