//! ONBUILD triggers: a stage whose base (an image, or an earlier stage with ONBUILD lines)
//! carries triggers runs them right after its FROM, as BuildKit does. The triggers are
//! parsed as Dockerfile instructions and spliced into the Dockerfile after the FROM, so they
//! resolve with the stage's scope and become ordinary steps (cache keys, history); errors in
//! them point at the FROM line. The new image's config does not keep the base's triggers.

use strata_dockerfile::{parse, Base, Dockerfile, Instruction, Kind, Resolved};

use crate::builder::NamedImages;
use crate::BuildError;

/// The Dockerfile with every needed stage's inherited triggers spliced in after its FROM;
/// `None` when no stage has any.
pub(crate) fn with_triggers(
    images: &NamedImages,
    df: &Dockerfile,
    resolved: &Resolved,
) -> Result<Option<Dockerfile>, BuildError> {
    let mut splices: Vec<(usize, Vec<Instruction>)> = Vec::new();
    for &i in &resolved.build_order {
        let stage = &resolved.stages[i];
        let triggers: Vec<String> = match &stage.base {
            Base::Scratch => Vec::new(),
            // Every base was resolved (or the build failed) before this.
            Base::Image(name) => images
                .get(
                    name,
                    df.instructions[stage.from_instruction].span.start_line,
                )?
                .config
                .config_or_default()
                .on_build
                .unwrap_or_default(),
            Base::Stage(j) => df.instructions[stage_range(df, resolved, *j)]
                .iter()
                .filter(|inst| inst.kind == Kind::Onbuild)
                .map(trigger_text)
                .collect(),
        };
        if triggers.is_empty() {
            continue;
        }
        let from = &df.instructions[stage.from_instruction];
        let parsed = triggers
            .iter()
            .map(|t| parse_trigger(t, from))
            .collect::<Result<Vec<_>, _>>()?;
        splices.push((stage.from_instruction, parsed));
    }
    if splices.is_empty() {
        return Ok(None);
    }
    let mut out = df.clone();
    // Later positions first, so earlier indices stay valid.
    splices.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (at, insts) in splices {
        let tail = out.instructions.split_off(at + 1);
        out.instructions.extend(insts);
        out.instructions.extend(tail);
    }
    Ok(Some(out))
}

/// The instructions of stage `j`: from its FROM up to the next FROM.
fn stage_range(df: &Dockerfile, resolved: &Resolved, j: usize) -> std::ops::Range<usize> {
    let start = resolved.stages[j].from_instruction;
    let end = df.instructions[start + 1..]
        .iter()
        .position(|i| i.kind == Kind::From)
        .map_or(df.instructions.len(), |n| start + 1 + n);
    start..end
}

/// The trigger of an `ONBUILD` line as the image config stores it (`RUN echo hi`).
pub(crate) fn trigger_text(inst: &Instruction) -> String {
    let text = inst.original.trim_start();
    text.split_once(char::is_whitespace)
        .map_or("", |(_, rest)| rest.trim_start())
        .to_string()
}

/// One trigger as an instruction located at the FROM that runs it.
fn parse_trigger(trigger: &str, from: &Instruction) -> Result<Instruction, BuildError> {
    let line = from.span.start_line;
    let bad = |m: String| BuildError::at(line, format!("ONBUILD trigger {trigger:?}: {m}"));
    // A trigger alone is "before the first FROM" to the parser: give it a stage.
    let df = parse(&format!("FROM scratch\n{trigger}")).map_err(|e| bad(e.message.clone()))?;
    let [_, inst] = df.instructions.as_slice() else {
        return Err(bad(
            "an onbuild trigger should be a single expression".into()
        ));
    };
    match inst.kind {
        Kind::Onbuild => {
            return Err(bad(
                "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
            ))
        }
        Kind::From | Kind::Maintainer => {
            return Err(bad(format!(
                "{} isn't allowed as an ONBUILD trigger",
                inst.kind
            )))
        }
        _ => {}
    }
    inst.typed().map_err(|e| bad(e.message.clone()))?;
    let mut inst = inst.clone();
    inst.span = from.span;
    Ok(inst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_line() -> Instruction {
        parse("\n\nFROM base\n").unwrap().instructions[0].clone()
    }

    #[test]
    fn triggers_parse_at_the_from_line() {
        let inst = parse_trigger("RUN echo hi", &from_line()).unwrap();
        assert_eq!((inst.kind, inst.span.start_line), (Kind::Run, 3));
        for (bad, msg) in [
            ("ONBUILD RUN x", "chaining ONBUILD"),
            ("FROM x", "FROM isn't allowed"),
            ("MAINTAINER me", "MAINTAINER isn't allowed"),
            ("NOPE x", "unknown instruction"),
        ] {
            let err = parse_trigger(bad, &from_line()).unwrap_err().to_string();
            assert!(
                err.starts_with("line 3:") && err.contains(msg),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn stage_triggers_are_spliced_after_the_child_from() {
        let df =
            parse("FROM scratch AS base\nONBUILD COPY a /a\nONBUILD ENV X=1\nFROM base\nENV Y=2\n")
                .unwrap();
        let r = strata_dockerfile::resolve(&df, &Default::default()).unwrap();
        let out = with_triggers(&NamedImages::default(), &df, &r)
            .unwrap()
            .unwrap();
        let kinds: Vec<Kind> = out.instructions.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::From,
                Kind::Onbuild,
                Kind::Onbuild,
                Kind::From,
                Kind::Copy,
                Kind::Env,
                Kind::Env
            ]
        );
        assert_eq!(out.instructions[4].span.start_line, 4);
    }
}
