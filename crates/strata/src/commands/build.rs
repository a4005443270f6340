//! `strata build`: in this version only `--check`, which lints the Dockerfile the build
//! would use (`-f`, else `CONTEXT/Dockerfile`) without building.

use std::process::ExitCode;

use crate::cli::{BuildArgs, LintArgs, LintFormat};
use crate::failure::Failure;

pub(crate) fn run(a: BuildArgs) -> Result<ExitCode, Failure> {
    if !a.check {
        return Err(Failure::new("building images is not part of this strata version yet")
            .with_hint("`strata build --check` lints the Dockerfile; images can be imported (`strata import`) or loaded (`strata load`)"));
    }
    let file = match a.file {
        Some(f) if f.as_os_str() == "-" => "-".to_string(),
        Some(f) => f.to_string_lossy().into_owned(),
        None => a.context.join("Dockerfile").to_string_lossy().into_owned(),
    };
    super::lint::run(LintArgs {
        file,
        format: LintFormat::Tty,
        ignore: Vec::new(),
        failure_threshold: "error".to_string(),
    })
}
