//! The line scanner: directives, comments, continuation lines and heredoc bodies → [`Instruction`]s.
//!
//! Follows BuildKit's `parser.Parse` line by line so that the same file gives the same logical lines;
//! the per-instruction argument split lives in `line_args.rs` and validation in `validate.rs`.

use crate::ast::{Directive, Directives, Dockerfile, Heredoc, Instruction, ParseWarning, Span};
use crate::error::ParseError;
use crate::line_args::{instruction_from_line, LineContext};
use crate::words::{heredoc_marker, raw_shell_words};

/// Parses a Dockerfile and checks every instruction the way `docker build` would before running it.
///
/// Errors: syntax (unterminated heredoc, bad directive), unknown instructions and flags, bad flag
/// values, wrong argument counts, instructions before the first FROM, duplicate or invalid stage names.
pub fn parse(source: &str) -> Result<Dockerfile, ParseError> {
    let df = parse_syntax(source)?;
    crate::validate::validate(&df)?;
    Ok(df)
}

/// Only the syntax: logical lines, directives, heredocs and the argument split. Unknown instructions
/// and a missing FROM are still errors; flag values and argument counts are not checked.
pub fn parse_syntax(source: &str) -> Result<Dockerfile, ParseError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines: Vec<&str> = source.split_inclusive('\n').collect();
    let mut directives = DirectiveScanner::default();
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let raw = trim_newline(lines[i]);
        let stripped = raw.trim_start();
        directives.scan(stripped, line_no)?;
        i += 1;
        let content = if stripped.starts_with('#') {
            ""
        } else {
            stripped
        };
        let escape = directives.out.escape;
        let (first, mut end_of_line) = trim_continuation(content, escape);
        if end_of_line && first.is_empty() {
            continue;
        }
        let col = raw.chars().count() - stripped.chars().count() + 1;
        let mut logical = first.to_string();
        let mut empty_continuation = false;
        while !end_of_line && i < lines.len() {
            let raw = trim_newline(lines[i]);
            directives.scan(raw, i + 1)?;
            i += 1;
            let trimmed = raw.trim_start();
            if trimmed.starts_with('#') {
                continue;
            }
            if trimmed.is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, eol) = trim_continuation(raw, escape);
            logical.push_str(part);
            end_of_line = eol;
        }
        if empty_continuation {
            warnings.push(ParseWarning {
                line: line_no,
                rule: "no-empty-continuation",
                message: "empty continuation line found; empty continuation lines will become errors in a future release".to_string(),
            });
        }
        let ctx = LineContext {
            escape,
            line: line_no,
            col,
        };
        let mut inst = instruction_from_line(&logical, &ctx)?;
        let mut end_line = i;
        if inst.can_contain_heredoc() && logical.contains("<<") {
            for marker in raw_shell_words(&logical)
                .iter()
                .filter_map(|w| heredoc_marker(w))
            {
                let mut content = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let body_line = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(body_line);
                    if marker.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == marker.name {
                        terminated = true;
                        break;
                    }
                    if marker.chomp {
                        content.push_str(body_line.trim_start_matches('\t'));
                    } else {
                        content.push_str(body_line);
                    }
                }
                if !terminated {
                    return Err(
                        ParseError::at_line(line_no, "unterminated heredoc").with_hint(format!(
                            "the body of <<{} must end with a line containing only {}",
                            marker.name, marker.name
                        )),
                    );
                }
                end_line = i;
                inst.heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                    chomp: marker.chomp,
                    file_descriptor: marker.file_descriptor,
                });
            }
        }
        inst.span = Span {
            start_line: line_no,
            end_line,
            col,
        };
        if let crate::ast::Args::Trigger(t) = &mut inst.args {
            t.span = inst.span;
        }
        if inst.kind == crate::ast::Kind::Maintainer {
            warnings.push(ParseWarning {
                line: line_no,
                rule: "maintainer-deprecated",
                message: "MAINTAINER is deprecated in favor of using LABEL, e.g. LABEL org.opencontainers.image.authors=\"name\"".to_string(),
            });
        }
        instructions.push(inst);
    }
    if instructions.is_empty() {
        let message = if lines.iter().all(|l| l.trim().is_empty()) {
            "the Dockerfile cannot be empty"
        } else {
            "file with no instructions"
        };
        return Err(ParseError::at_line(lines.len().max(1), message)
            .with_hint("a Dockerfile needs at least a FROM instruction, e.g. FROM alpine:3.20"));
    }
    Ok(Dockerfile {
        directives: directives.out,
        instructions,
        warnings,
    })
}

impl Instruction {
    /// RUN, COPY and ADD (also as an ONBUILD trigger) may carry heredocs, but not in JSON form.
    pub(crate) fn can_contain_heredoc(&self) -> bool {
        use crate::ast::{Args, Kind};
        let target = match &self.args {
            Args::Trigger(t) => t.as_ref(),
            _ => self,
        };
        matches!(target.kind, Kind::Run | Kind::Copy | Kind::Add) && !target.args.is_json()
    }
}

/// Strips one trailing `\n` or `\r\n`.
fn trim_newline(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// BuildKit's continuation regex `([^<escape>])<escape>[ \t]*$|^<escape>[ \t]*$`: returns the
/// line without it and whether the logical line ends here. An escape preceded by another escape
/// (`trailing\\`) is an escaped escape, not a continuation; like BuildKit (Go's regexp has no
/// look-behind), a run of three is not one either.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    match body.strip_suffix(escape) {
        Some(kept) if !kept.ends_with(escape) => (kept, false),
        _ => (line, true),
    }
}

/// Reads `# key=value` directives until the first line that is not one.
#[derive(Default)]
struct DirectiveScanner {
    done: bool,
    out: Directives,
}

impl DirectiveScanner {
    fn scan(&mut self, line: &str, line_no: usize) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive_parts(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            // An unknown directive is a comment, and ends the directive block.
            self.done = true;
            return Ok(());
        }
        if self.out.all.iter().any(|d| d.name == key) {
            return Err(ParseError::at_line(
                line_no,
                format!("only one {key} parser directive can be used"),
            )
            .with_hint("remove the duplicate directive"));
        }
        match key.as_str() {
            "escape" => {
                self.out.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError::at_line(
                            line_no,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => self.out.syntax = Some(value.to_string()),
            _ => self.out.check = Some(value.to_string()),
        }
        self.out.all.push(Directive {
            name: key,
            value: value.to_string(),
            line: line_no,
        });
        Ok(())
    }
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive_parts(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_end = rest
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_alphanumeric())
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    let key = &rest[..key_end];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_end..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Args, Kind};

    fn syntax(src: &str) -> Dockerfile {
        parse_syntax(src).unwrap()
    }

    #[test]
    fn directives_only_at_the_top() {
        let df = syntax(
            "# syntax=docker/dockerfile:1\n# ESCAPE = `\n#check=skip=all\nFROM a\n# escape=\\\n",
        );
        assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.directives.escape, '`');
        assert_eq!(df.directives.check.as_deref(), Some("skip=all"));
        let df = syntax("# a comment\n# escape=`\nFROM a\n");
        assert_eq!(df.directives.escape, '\\');
        let df = syntax("# unknown=1\n# escape=`\nFROM a\n");
        assert_eq!(df.directives.escape, '\\');
        let df = syntax("\n# escape=`\nFROM a\n");
        assert_eq!(df.directives.escape, '\\');
    }

    #[test]
    fn duplicate_and_bad_directives() {
        let e = parse_syntax("# escape=`\n# escape=\\\nFROM a\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "only one escape parser directive can be used")
        );
        let e = parse_syntax("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(e.message, "invalid escape token 'x' does not match ` or \\");
    }

    #[test]
    fn continuation_keeps_leading_whitespace_of_continued_lines() {
        let df = syntax("FROM a\nRUN echo a \\\n    b \\  \n# comment\n\n  c\n");
        let run = &df.instructions[1];
        assert_eq!(run.args, Args::Shell("echo a     b   c".to_string()));
        assert_eq!((run.span.start_line, run.span.end_line), (2, 6));
        assert_eq!(df.warnings.len(), 1);
    }

    #[test]
    fn continuation_at_eof_and_backtick_escape() {
        let df = syntax("FROM a\nRUN x \\");
        assert_eq!(df.instructions[1].args, Args::Shell("x".to_string()));
        let df = syntax("# escape=`\nFROM a\nRUN dir c:\\ `\n  d\n");
        assert_eq!(
            df.instructions[1].args,
            Args::Shell("dir c:\\   d".to_string())
        );
    }

    #[test]
    fn an_escaped_escape_at_the_end_is_not_a_continuation() {
        // BuildKit's parser testfile `trailing-backslash` (docker/for-win#5254).
        let df = syntax("FROM a\nENV C trailing\\\\backslash\\\\\nRUN echo hello\n");
        assert_eq!(df.instructions.len(), 3);
        assert_eq!(
            df.instructions[1].args,
            Args::KeyValues(vec![(
                "C".to_string(),
                "trailing\\\\backslash\\\\".to_string()
            )])
        );
        assert_eq!(df.instructions[2].kind, Kind::Run);
        // A lone escape on its own line still continues; so does one after a non-escape.
        let df = syntax("FROM a\nRUN a \\\n\\\n b\n");
        assert_eq!(df.instructions.len(), 2);
        let df = syntax("# escape=`\nFROM a\nRUN x ``\nUSER u\n");
        assert_eq!(df.instructions.len(), 3);
    }

    #[test]
    fn heredocs_read_bodies_in_order() {
        let df = syntax("FROM a\nRUN <<A cat - <<-\"B\"\none\nA\n\t\ttwo\n\tB\nUSER x\n");
        let run = &df.instructions[1];
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(
            (
                run.heredocs[0].name.as_str(),
                run.heredocs[0].content.as_str()
            ),
            ("A", "one\n")
        );
        assert!(run.heredocs[0].expand);
        assert_eq!(run.heredocs[1].content, "two\n");
        assert!(run.heredocs[1].chomp && !run.heredocs[1].expand);
        assert_eq!(run.span.end_line, 6);
        assert_eq!(df.instructions[2].kind, Kind::User);
    }

    #[test]
    fn heredoc_errors_and_non_heredocs() {
        let e = parse_syntax("FROM a\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "unterminated heredoc"));
        let df = syntax("FROM a\nRUN [\"sh\", \"<<EOF\"]\nUSER x\n");
        assert!(df.instructions[1].heredocs.is_empty());
        let df = syntax("FROM a\nENV A=<<EOF\nUSER x\n");
        assert_eq!(df.instructions.len(), 3);
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(
            parse_syntax("").unwrap_err().message,
            "the Dockerfile cannot be empty"
        );
        assert_eq!(
            parse_syntax("# hi\n\n# there\n").unwrap_err().message,
            "file with no instructions"
        );
    }

    #[test]
    fn maintainer_is_accepted_with_a_warning() {
        let df = syntax("FROM a\nMAINTAINER me\n");
        assert_eq!(df.warnings.len(), 1);
        assert_eq!(
            (df.warnings[0].line, df.warnings[0].rule),
            (2, "maintainer-deprecated")
        );
    }

    #[test]
    fn nested_onbuild_does_not_recurse() {
        let src = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(100_000));
        let e = parse_syntax(&src).unwrap_err();
        assert_eq!(
            e.message,
            "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
    }

    #[test]
    fn crlf_and_bom() {
        let df = syntax("\u{feff}FROM a\r\nRUN x \\\r\n y\r\n");
        assert_eq!(df.instructions[1].args, Args::Shell("x  y".to_string()));
    }
}
