//! Dockerfile lint: Docker's best practices and hadolint's spirit, as rules with an id, a kebab
//! name and a severity (documented in `docs/lint-rules.md`). Pure: findings are returned, the CLI
//! renders them.

mod instructions;
mod run;
mod shell;

use crate::ast::{Args, Dockerfile, Instruction, Kind};

/// How bad a finding is. Ordered from the least to the most severe, so `severity >= threshold`
/// selects what to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Style,
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Style => "style",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `error`, `warning`, `info`, `style`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected error, warning, info or style")]
pub struct UnknownSeverity(pub String);

impl std::str::FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Severity, UnknownSeverity> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Severity::Error),
            "warning" => Ok(Severity::Warning),
            "info" => Ok(Severity::Info),
            "style" => Ok(Severity::Style),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

/// A lint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// `SL001`…
    pub id: &'static str,
    /// Kebab-case name, e.g. `maintainer-deprecated`.
    pub name: &'static str,
    pub severity: Severity,
    /// One line: what it catches.
    pub summary: &'static str,
}

macro_rules! rules {
    ($($konst:ident = $id:literal, $name:literal, $sev:ident, $summary:literal;)*) => {
        $(pub(crate) const $konst: Rule = Rule { id: $id, name: $name, severity: Severity::$sev, summary: $summary };)*
        /// Every rule, in id order.
        pub const RULES: &[Rule] = &[$($konst),*];
    };
}

rules! {
    MAINTAINER = "SL001", "maintainer-deprecated", Warning, "MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors";
    USER_ROOT = "SL002", "user-root", Warning, "the final USER is root";
    USER_MISSING = "SL003", "user-missing", Info, "the final stage never sets USER, so the container runs as the base image's user (often root)";
    APT_UPDATE_ALONE = "SL004", "apt-update-alone", Warning, "apt-get update in a RUN without apt-get install: the cached index goes stale";
    APT_NO_RECOMMENDS = "SL005", "apt-install-recommends", Info, "apt-get install without --no-install-recommends";
    APT_NO_YES = "SL006", "apt-install-no-yes", Warning, "apt-get install without -y waits for an answer that never comes";
    APT_UPGRADE = "SL007", "apt-upgrade", Warning, "apt-get upgrade/dist-upgrade in a build: pin a newer base image instead";
    ADD_FOR_COPY = "SL008", "add-instead-of-copy", Warning, "ADD of local files that are not archives: COPY does the same, without surprises";
    COPY_ALL_BEFORE_INSTALL = "SL009", "copy-all-before-install", Warning, "COPY . before a dependency install: every source change re-runs the install";
    MULTIPLE_CMD = "SL010", "multiple-cmd", Warning, "several CMD or ENTRYPOINT in one stage: only the last takes effect";
    SHELL_FORM_CMD = "SL011", "shell-form-cmd", Warning, "CMD/ENTRYPOINT in shell form: signals go to /bin/sh, not to the program";
    CD_IN_RUN = "SL012", "cd-in-run", Warning, "cd in RUN: use WORKDIR";
    BASE_UNPINNED = "SL013", "base-image-unpinned", Warning, "base image without a tag, or with :latest";
    INVALID_EXPOSE = "SL014", "invalid-expose", Error, "EXPOSE with a port outside 0-65535 or a protocol other than tcp/udp/sctp";
    CONSECUTIVE_RUN = "SL015", "consecutive-run", Style, "consecutive RUN instructions that could be one layer";
    RELATIVE_WORKDIR = "SL016", "relative-workdir", Warning, "relative WORKDIR before any absolute one: it depends on the base image's directory";
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Rule id, e.g. `SL001`.
    pub rule: &'static str,
    /// Rule name, e.g. `maintainer-deprecated`.
    pub name: &'static str,
    pub severity: Severity,
    /// 1-based line and column of the instruction.
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// What to lint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    /// Rule ids or names to skip (case-insensitive).
    pub ignore: Vec<String>,
}

/// A stage as lint sees it: the FROM and the instructions after it.
pub(crate) struct StageView<'a> {
    pub(crate) from: &'a Instruction,
    pub(crate) body: &'a [Instruction],
}

impl StageView<'_> {
    /// `AS name`, lower-cased.
    pub(crate) fn name(&self) -> Option<String> {
        match &self.from.args {
            Args::Words(w) if w.len() >= 3 && w[1].eq_ignore_ascii_case("as") => {
                Some(w[2].to_lowercase())
            }
            _ => None,
        }
    }
}

/// The instructions before the first FROM, and the stages.
pub(crate) fn split_stages(df: &Dockerfile) -> (&[Instruction], Vec<StageView<'_>>) {
    let all = &df.instructions;
    let starts: Vec<usize> = (0..all.len())
        .filter(|&i| all[i].kind == Kind::From)
        .collect();
    let global = &all[..starts.first().copied().unwrap_or(all.len())];
    let stages = starts
        .iter()
        .enumerate()
        .map(|(n, &s)| StageView {
            from: &all[s],
            body: &all[s + 1..starts.get(n + 1).copied().unwrap_or(all.len())],
        })
        .collect();
    (global, stages)
}

/// Collects findings, skipping ignored rules.
pub(crate) struct Sink<'a> {
    ignore: &'a [String],
    pub(crate) findings: Vec<Finding>,
}

impl Sink<'_> {
    pub(crate) fn report(&mut self, rule: Rule, inst: &Instruction, message: impl Into<String>) {
        self.report_with(rule, rule.severity, inst, message);
    }

    pub(crate) fn report_with(
        &mut self,
        rule: Rule,
        severity: Severity,
        inst: &Instruction,
        message: impl Into<String>,
    ) {
        let ignored = self
            .ignore
            .iter()
            .any(|i| i.eq_ignore_ascii_case(rule.id) || i.eq_ignore_ascii_case(rule.name));
        if !ignored {
            self.findings.push(Finding {
                rule: rule.id,
                name: rule.name,
                severity,
                line: inst.span.start_line,
                col: inst.span.col,
                message: message.into(),
            });
        }
    }
}

/// Lints a parsed Dockerfile. Findings come sorted by line, then rule id.
pub fn lint(df: &Dockerfile, opts: &LintOptions) -> Vec<Finding> {
    let mut sink = Sink {
        ignore: &opts.ignore,
        findings: Vec::new(),
    };
    let (global, stages) = split_stages(df);
    instructions::check(df, global, &stages, &mut sink);
    run::check(&stages, &mut sink);
    let mut findings = sink.findings;
    findings.sort_by(|a, b| (a.line, a.rule, a.col).cmp(&(b.line, b.rule, b.col)));
    findings
}

/// A RUN's script: the shell command, the command of an exec form run through a shell, and the
/// bodies of its heredocs.
pub(crate) fn run_script(inst: &Instruction) -> String {
    let mut script = match &inst.args {
        Args::Shell(s) => s.clone(),
        Args::Exec(argv) => match argv.as_slice() {
            [sh, c, script, ..] if sh.ends_with("sh") && c == "-c" => script.clone(),
            _ => argv.join(" "),
        },
        _ => String::new(),
    };
    for h in &inst.heredocs {
        script.push('\n');
        script.push_str(&h.content);
    }
    script
}

#[cfg(test)]
mod tests;
