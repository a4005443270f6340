//! strata-dockerfile: Dockerfile parsing, word expansion and lint, with BuildKit's behaviour as the spec.
//!
//! It owns the text → syntax tree step (directives, comments, continuation lines, heredocs, JSON vs
//! shell form, `--flags`), typed per-instruction views with validated flags, build stages, the
//! `--json` dump, word expansion (`$VAR`, `${VAR:-x}`) and lint rules.
//! It never does I/O: input is a `&str`, output is values and errors; it never prints.
//!
//! ```
//! let df = strata_dockerfile::parse("FROM alpine AS base\nRUN echo hi\n").unwrap();
//! assert_eq!(df.stages()[0].name(), Some("base"));
//!
//! let err = strata_dockerfile::parse("FROM alpine\nCOPPY . /app\n").unwrap_err();
//! assert!(err.render("FROM alpine\nCOPPY . /app\n", "Dockerfile").starts_with(
//!     "Dockerfile:2:1: unknown instruction: COPPY (did you mean COPY?)"
//! ));
//! ```

// Owned by the parser work: syntax, instructions, errors, JSON dump.
mod ast;
mod did_you_mean;
mod duration;
mod error;
mod flags;
mod instruction;
mod json_dump;
mod line_args;
mod mount;
mod parser;
mod stage;
mod validate;
mod words;

pub use ast::{
    Args, Directive, Directives, Dockerfile, Flag, Heredoc, Instruction, Kind, ParseWarning, Span,
};
pub use duration::parse_go_duration;
pub use error::ParseError;
pub use instruction::{
    ArgDef, Command, Copy, From, Healthcheck, Network, Run, Security, Source, TypedInstruction,
};
pub use json_dump::to_json;
pub use mount::{parse_mount, CacheSharing, Mount, MountType};
pub use parser::{parse, parse_syntax};
pub use stage::Stage;
// Owned by the expansion/lint work: `expand` (BuildKit's shell lexer) and `lint`.
mod expand;
mod shell_lex;
mod shell_pattern;

pub use expand::{ExpandError, Expansion, Lexer, VarLookup};
mod scope;
mod scope_graph;
mod scope_stage;

pub use scope::{
    resolve, Base, Platform, ResolveError, ResolveOptions, Resolved, ResolvedStage, Step,
    DEFAULT_PATH, PLATFORM_ARGS, PROXY_ARGS,
};
mod lint;

pub use lint::{lint, Finding, LintOptions, Rule, Severity, UnknownSeverity, RULES};
