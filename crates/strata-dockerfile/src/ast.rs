//! The syntax tree of a Dockerfile: directives, instructions with their flags, arguments and heredocs.
//!
//! Words are kept exactly as BuildKit's parser keeps them: quotes and escapes stay in the text and are
//! removed later, by word expansion. Only JSON (exec) form arrays are already decoded.

use serde::Serialize;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The parser directives from the top of the file.
    pub directives: Directives,
    /// Every instruction, in source order (global ARGs and all stages).
    pub instructions: Vec<Instruction>,
    /// Things accepted but worth telling the user about (deprecated MAINTAINER, empty continuation lines…).
    pub warnings: Vec<ParseWarning>,
}

/// Parser directives (`# syntax=`, `# escape=`, `# check=`) found before the first other line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=` value, if any.
    pub syntax: Option<String>,
    /// The escape character: `\` unless `# escape=` set it to a backtick.
    pub escape: char,
    /// `# check=` value, if any (lint configuration, e.g. `skip=JSONArgsRecommended;error=true`).
    pub check: Option<String>,
    /// Every directive as written, in order (keys lower-cased).
    pub all: Vec<Directive>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
            all: Vec::new(),
        }
    }
}

/// One parser directive line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Lower-cased key: `syntax`, `escape` or `check`.
    pub name: String,
    /// Value with surrounding whitespace trimmed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
}

/// Where an instruction sits in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// 1-based first line (the keyword's line).
    pub start_line: usize,
    /// 1-based last line, including continuation lines and heredoc bodies.
    pub end_line: usize,
    /// 1-based column of the keyword (in characters).
    pub col: usize,
}

/// Every Dockerfile keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Kind {
    /// All keywords, in alphabetical order.
    pub const ALL: [Kind; 18] = [
        Kind::Add,
        Kind::Arg,
        Kind::Cmd,
        Kind::Copy,
        Kind::Entrypoint,
        Kind::Env,
        Kind::Expose,
        Kind::From,
        Kind::Healthcheck,
        Kind::Label,
        Kind::Maintainer,
        Kind::Onbuild,
        Kind::Run,
        Kind::Shell,
        Kind::Stopsignal,
        Kind::User,
        Kind::Volume,
        Kind::Workdir,
    ];

    /// The upper-case keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Add => "ADD",
            Kind::Arg => "ARG",
            Kind::Cmd => "CMD",
            Kind::Copy => "COPY",
            Kind::Entrypoint => "ENTRYPOINT",
            Kind::Env => "ENV",
            Kind::Expose => "EXPOSE",
            Kind::From => "FROM",
            Kind::Healthcheck => "HEALTHCHECK",
            Kind::Label => "LABEL",
            Kind::Maintainer => "MAINTAINER",
            Kind::Onbuild => "ONBUILD",
            Kind::Run => "RUN",
            Kind::Shell => "SHELL",
            Kind::Stopsignal => "STOPSIGNAL",
            Kind::User => "USER",
            Kind::Volume => "VOLUME",
            Kind::Workdir => "WORKDIR",
        }
    }

    /// Case-insensitive lookup of a keyword.
    pub fn from_keyword(word: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    pub kind: Kind,
    /// The keyword as written (`run`, `Run`, `RUN`).
    pub keyword: String,
    pub span: Span,
    /// `--name[=value]` flags before the arguments, as written.
    pub flags: Vec<Flag>,
    pub args: Args,
    /// Heredoc bodies, in the order their `<<NAME` markers appear.
    pub heredocs: Vec<Heredoc>,
    /// The logical line: physical lines joined (escape+newline removed, comment lines dropped),
    /// without heredoc bodies. This is BuildKit's `Node.Original`.
    pub original: String,
}

/// A `--name[=value]` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// Name without the leading `--`.
    pub name: String,
    /// Value after `=`; `None` when there was no `=` (`--link`).
    pub value: Option<String>,
}

impl Flag {
    /// The flag as written: `--name=value` or `--name`.
    pub fn text(&self) -> String {
        match &self.value {
            Some(v) => format!("--{}={}", self.name, v),
            None => format!("--{}", self.name),
        }
    }
}

/// Arguments after the keyword and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "snake_case")]
pub enum Args {
    /// JSON (exec) form, decoded: `["a", "b"]`. RUN, CMD, ENTRYPOINT, SHELL, ADD, COPY, VOLUME.
    Exec(Vec<String>),
    /// Shell form command text of RUN, CMD, ENTRYPOINT (continuations joined, quotes kept).
    Shell(String),
    /// Whitespace-separated words, quotes kept: FROM, EXPOSE, ADD, COPY, VOLUME, ARG (`name[=default]`),
    /// and the single trimmed rest-of-line of USER, WORKDIR, STOPSIGNAL, MAINTAINER.
    Words(Vec<String>),
    /// ENV and LABEL pairs, quotes kept in both key and value.
    KeyValues(Vec<(String, String)>),
    /// HEALTHCHECK: the type word as written (`CMD`, `NONE`) and, for CMD, the command (Exec or Shell).
    Healthcheck {
        test: String,
        command: Option<Box<Args>>,
    },
    /// ONBUILD: the trigger instruction.
    Trigger(Box<Instruction>),
}

impl Args {
    /// True for the JSON (exec) form, also for a HEALTHCHECK CMD given as JSON.
    pub fn is_json(&self) -> bool {
        match self {
            Args::Exec(_) => true,
            Args::Healthcheck {
                command: Some(c), ..
            } => c.is_json(),
            _ => false,
        }
    }
}

/// A heredoc body (`<<EOF … EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// Delimiter word with quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The body, each line ending in `\n`; with `<<-` leading tabs are already removed from every line.
    pub content: String,
    /// False when any part of the delimiter was quoted: the body is then used verbatim.
    pub expand: bool,
    /// `<<-`: leading tabs stripped from the body and from the terminator line.
    pub chomp: bool,
    /// `3<<EOF` gives `Some(3)`.
    pub file_descriptor: Option<u32>,
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseWarning {
    /// 1-based line it is about.
    pub line: usize,
    /// Short lower-case name of the rule, e.g. `maintainer-deprecated`.
    pub rule: &'static str,
    pub message: String,
}
