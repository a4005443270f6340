//! `strata lint [FILE|-]` (also `strata build --check`): best-practice findings with rule id,
//! severity and file:line:col; the exit status is 1 when a finding reaches the threshold.

use strata_exit::ExitStatus;

use strata_dockerfile::{lint, Finding, LintOptions, Severity};

use crate::cli::{LintArgs, LintFormat};
use crate::commands::dockerfile::{display_name, parse_source};
use crate::failure::Failure;
use crate::render::{out, pretty_json};

pub(crate) fn run(a: LintArgs) -> Result<ExitStatus, Failure> {
    let threshold: Option<Severity> = match a.failure_threshold.to_ascii_lowercase().as_str() {
        "none" => None,
        other => Some(other.parse().map_err(|e| {
            Failure::new(e)
                .with_hint("--failure-threshold takes error, warning, info, style or none")
        })?),
    };
    let source = super::read_input(&a.file)?;
    let name = display_name(&a.file);
    let df = parse_source(&source, name)?;
    let findings = lint(
        &df,
        &LintOptions {
            ignore: a.ignore.clone(),
        },
    );
    match a.format {
        LintFormat::Tty => out(&render_tty(name, &findings)),
        LintFormat::Json => {
            let items: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "file": name, "line": f.line, "column": f.col, "rule": f.rule,
                        "name": f.name, "severity": f.severity, "message": f.message,
                    })
                })
                .collect();
            out(&format!("{}\n", pretty_json(&items)));
        }
    }
    let failed = threshold.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn render_tty(file: &str, findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{file}:{}:{} {} {}: {} [{}]\n",
                f.line, f.col, f.rule, f.severity, f.message, f.name
            )
        })
        .collect()
}
