//! `strata dockerfile parse [FILE|-] [--json]`: the parser's view of a Dockerfile, for
//! debugging and tools (format: docs/dockerfile-json.md).

use strata_exit::ExitStatus;

use crate::cli::ParseArgs;
use crate::failure::Failure;
use crate::render::{out, pretty_json};

/// Parses `source`, turning a syntax error into the rendered `Dockerfile:L:C: …` report.
pub(crate) fn parse_source(
    source: &str,
    name: &str,
) -> Result<strata_dockerfile::Dockerfile, Failure> {
    strata_dockerfile::parse(source).map_err(|e| {
        // The rendered error already carries the file, line, column and a caret.
        let rendered = e.render(source, name);
        let mut lines = rendered.splitn(2, '\n');
        let first = lines.next().unwrap_or_default().to_string();
        let rest = lines.next().unwrap_or_default().trim_end().to_string();
        let failure = Failure::new(first.trim_start_matches("error: "));
        if rest.is_empty() {
            failure
        } else {
            failure.with_detail(rest)
        }
    })
}

pub(crate) fn display_name(file: &str) -> &str {
    if file == "-" {
        "Dockerfile"
    } else {
        file
    }
}

pub(crate) fn parse(a: ParseArgs) -> Result<ExitStatus, Failure> {
    let source = super::read_input(&a.file)?;
    let df = parse_source(&source, display_name(&a.file))?;
    if a.json {
        out(&format!(
            "{}\n",
            pretty_json(&strata_dockerfile::to_json(&df))
        ));
        return Ok(ExitStatus::Success);
    }
    let json = strata_dockerfile::to_json(&df);
    let mut text = String::new();
    for item in json.as_array().into_iter().flatten() {
        let flags: Vec<String> = item["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        text.push_str(&format!(
            "{:>4}  {:<11} {}{}\n",
            item["line"].as_u64().unwrap_or_default(),
            item["instruction"].as_str().unwrap_or_default(),
            if flags.is_empty() {
                String::new()
            } else {
                format!("{} ", flags.join(" "))
            },
            item["args"]
        ));
    }
    for w in &df.warnings {
        text.push_str(&format!("warning: line {}: {}\n", w.line, w.message));
    }
    out(&text);
    Ok(ExitStatus::Success)
}
