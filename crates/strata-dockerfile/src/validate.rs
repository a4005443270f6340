//! Whole-file checks run by [`crate::parse`]: every instruction type-checks and the stages make sense,
//! reported in source order.

use crate::ast::Dockerfile;
use crate::error::ParseError;
use crate::stage::StageChecker;

pub(crate) fn validate(df: &Dockerfile) -> Result<(), ParseError> {
    let mut stages = StageChecker::default();
    for inst in &df.instructions {
        let typed = inst.typed()?;
        stages.check(inst, &typed)?;
    }
    Ok(())
}
