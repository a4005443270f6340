//! Build stages: the instructions after each FROM, and the global ARGs before the first one.

use crate::ast::{Dockerfile, Instruction, Kind};
use crate::error::ParseError;
use crate::instruction::{From, TypedInstruction};

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position among the stages (what `--from=0` refers to).
    pub index: usize,
    /// The FROM line, typed.
    pub from: From,
    /// The FROM instruction itself.
    pub from_instruction: Instruction,
    /// Every instruction after the FROM, up to the next FROM.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The `AS name`, lower-cased.
    pub fn name(&self) -> Option<&str> {
        self.from.alias.as_deref()
    }
}

impl Dockerfile {
    /// ARG instructions before the first FROM (usable in FROM lines).
    pub fn global_args(&self) -> Vec<&Instruction> {
        self.instructions
            .iter()
            .take_while(|i| i.kind != Kind::From)
            .filter(|i| i.kind == Kind::Arg)
            .collect()
    }

    /// The stages in order. FROM lines that do not type-check (not the case after [`crate::parse`])
    /// are skipped along with their instructions.
    pub fn stages(&self) -> Vec<Stage> {
        let mut stages: Vec<Stage> = Vec::new();
        let mut skipping = false;
        for inst in &self.instructions {
            if inst.kind == Kind::From {
                match inst.typed() {
                    Ok(TypedInstruction::From(from)) => {
                        skipping = false;
                        stages.push(Stage {
                            index: stages.len(),
                            from,
                            from_instruction: inst.clone(),
                            instructions: Vec::new(),
                        });
                    }
                    _ => skipping = true,
                }
            } else if !skipping {
                if let Some(stage) = stages.last_mut() {
                    stage.instructions.push(inst.clone());
                }
            }
        }
        stages
    }
}

/// Checks what needs the whole file, one instruction at a time in source order: only ARG before the
/// first FROM, unique stage names.
#[derive(Default)]
pub(crate) struct StageChecker {
    seen_from: bool,
    names: Vec<(String, usize)>,
}

impl StageChecker {
    pub(crate) fn check(
        &mut self,
        inst: &Instruction,
        typed: &TypedInstruction,
    ) -> Result<(), ParseError> {
        match typed {
            TypedInstruction::From(from) => {
                self.seen_from = true;
                if let Some(name) = &from.alias {
                    if let Some((_, first)) = self.names.iter().find(|(n, _)| n == name) {
                        return Err(ParseError::at_line(
                            inst.span.start_line,
                            format!("duplicate stage name {name:?}, stage names should be unique"),
                        )
                        .with_hint(format!("stage {name:?} is already defined on line {first}")));
                    }
                    self.names.push((name.clone(), inst.span.start_line));
                }
            }
            TypedInstruction::Arg(_) => {}
            _ if !self.seen_from => {
                let width = inst.keyword.chars().count();
                return Err(ParseError::at(
                    inst.span.start_line,
                    inst.span.col,
                    inst.span.col + width,
                    format!(
                        "no build stage in current context: {} before the first FROM",
                        inst.kind
                    ),
                )
                .with_hint(
                    "only ARG may come before the first FROM; start a stage with FROM <image>",
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::Kind;
    use crate::parse;

    #[test]
    fn stages_group_instructions_after_each_from() {
        let df = parse("ARG V=1\nARG W\nFROM a:$V AS build\nRUN make\nCOPY x y\nFROM scratch\nCOPY --from=build /o /o\n").unwrap();
        assert_eq!(df.global_args().len(), 2);
        let stages = df.stages();
        assert_eq!(stages.len(), 2);
        assert_eq!((stages[0].index, stages[0].name()), (0, Some("build")));
        assert_eq!(stages[0].from.image, "a:$V");
        let kinds: Vec<Kind> = stages[0].instructions.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, [Kind::Run, Kind::Copy]);
        assert_eq!((stages[1].name(), stages[1].instructions.len()), (None, 1));
    }

    #[test]
    fn stage_errors_in_source_order() {
        let e = parse("RUN x\nFROM a\nCOPY --bad a b\n").unwrap_err();
        assert_eq!((e.line, e.col, e.end_col), (1, 1, Some(4)));
        let e = parse("FROM a AS x\nFROM b AS y\nFROM c AS X\n").unwrap_err();
        assert_eq!(
            e.message,
            "duplicate stage name \"x\", stage names should be unique"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("stage \"x\" is already defined on line 1")
        );
    }
}
