//! One logical line → keyword, flags and [`Args`], per keyword as BuildKit's dispatch table decides.

use crate::ast::{Args, Flag, Instruction, Kind, Span};
use crate::did_you_mean::closest;
use crate::error::ParseError;
use crate::words::{
    extract_flags, parse_json_array, parse_words, split_first_word, split_whitespace_runs, JsonArgs,
};

/// Where the logical line starts, and the escape character in force.
pub(crate) struct LineContext {
    pub(crate) escape: char,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// BuildKit's `newNodeFromLine`: split keyword / flags / rest, then the keyword's argument parser.
pub(crate) fn instruction_from_line(
    logical: &str,
    ctx: &LineContext,
) -> Result<Instruction, ParseError> {
    let trimmed = logical.trim();
    let (keyword, rest) = split_first_word(trimmed);
    let Some(kind) = Kind::from_keyword(keyword) else {
        return Err(unknown_instruction(keyword, ctx));
    };
    let (flags, rest) = match rest {
        Some(rest) => {
            let split = extract_flags(rest);
            (split.flags, split.rest.trim().to_string())
        }
        None => (Vec::new(), String::new()),
    };
    let flags = flags
        .into_iter()
        .map(|f| {
            let body = f.strip_prefix("--").unwrap_or(&f);
            match body.split_once('=') {
                Some((n, v)) => Flag {
                    name: n.to_string(),
                    value: Some(v.to_string()),
                },
                None => Flag {
                    name: body.to_string(),
                    value: None,
                },
            }
        })
        .collect();
    let args = args_for(kind, &rest, ctx)?;
    Ok(Instruction {
        kind,
        keyword: keyword.to_string(),
        span: Span {
            start_line: ctx.line,
            end_line: ctx.line,
            col: ctx.col,
        },
        flags,
        args,
        heredocs: Vec::new(),
        original: logical.to_string(),
    })
}

fn unknown_instruction(keyword: &str, ctx: &LineContext) -> ParseError {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let upper = keyword.to_ascii_uppercase();
    let width = keyword.chars().count();
    let message = format!("unknown instruction: {keyword}");
    match closest(&upper, &names) {
        Some(s) => ParseError::at(
            ctx.line,
            ctx.col,
            ctx.col + width,
            format!("{message} (did you mean {s}?)"),
        ),
        None => ParseError::at(ctx.line, ctx.col, ctx.col + width, message)
            .with_hint(format!("instructions are {}", names.join(", "))),
    }
}

fn args_for(kind: Kind, rest: &str, ctx: &LineContext) -> Result<Args, ParseError> {
    Ok(match kind {
        Kind::Add | Kind::Copy | Kind::Volume => match json_or_not(kind, rest, ctx)? {
            Some(v) => Args::Exec(v),
            None => Args::Words(split_whitespace_runs(rest)),
        },
        Kind::Cmd | Kind::Entrypoint | Kind::Run | Kind::Shell => maybe_json(kind, rest, ctx)?,
        Kind::Arg => Args::Words(parse_words(rest, ctx.escape)),
        Kind::Env | Kind::Label => Args::KeyValues(name_values(kind, rest, ctx)?),
        Kind::Expose | Kind::From => Args::Words(split_whitespace_runs(rest)),
        Kind::Maintainer | Kind::Stopsignal | Kind::User | Kind::Workdir => {
            Args::Words(if rest.is_empty() {
                Vec::new()
            } else {
                vec![rest.to_string()]
            })
        }
        Kind::Healthcheck => {
            let (test, command) = match rest.find(char::is_whitespace) {
                Some(i) => (&rest[..i], rest[i..].trim_start()),
                None => (rest, ""),
            };
            if test.is_empty() {
                Args::Words(Vec::new())
            } else {
                let command = if command.is_empty() {
                    None
                } else {
                    Some(Box::new(maybe_json(kind, command, ctx)?))
                };
                Args::Healthcheck {
                    test: test.to_string(),
                    command,
                }
            }
        }
        Kind::Onbuild => {
            if rest.is_empty() {
                Args::Words(Vec::new())
            } else if Kind::from_keyword(split_first_word(rest).0) == Some(Kind::Onbuild) {
                // Rejected here rather than after recursing: `ONBUILD ONBUILD …` repeated would
                // otherwise nest without bound.
                return Err(ParseError::at_line(
                    ctx.line,
                    "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                ));
            } else {
                let inner = instruction_from_line(rest, ctx)?;
                Args::Trigger(Box::new(inner))
            }
        }
    })
}

/// `parseMaybeJSON`: a JSON array of strings, else the rest of the line as shell text.
fn maybe_json(kind: Kind, rest: &str, ctx: &LineContext) -> Result<Args, ParseError> {
    Ok(match json_or_not(kind, rest, ctx)? {
        Some(v) => Args::Exec(v),
        None => Args::Shell(rest.to_string()),
    })
}

fn json_or_not(
    kind: Kind,
    rest: &str,
    ctx: &LineContext,
) -> Result<Option<Vec<String>>, ParseError> {
    match parse_json_array(rest) {
        JsonArgs::Array(v) => Ok(Some(v)),
        JsonArgs::NotJson => Ok(None),
        JsonArgs::NotStrings => Err(ParseError::at_line(
            ctx.line,
            format!(
                "{kind}: when using JSON array syntax, arrays must be comprised of strings only"
            ),
        )
        .with_hint("quote every element, e.g. [\"sleep\", \"10\"]")),
    }
}

/// `parseNameVal` for ENV and LABEL: `KEY name value` (legacy) or `KEY a=b c=d`; quotes are kept.
fn name_values(
    kind: Kind,
    rest: &str,
    ctx: &LineContext,
) -> Result<Vec<(String, String)>, ParseError> {
    let words = parse_words(rest, ctx.escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let (name, value) = split_first_word(rest);
        return match value {
            Some(v) if !v.is_empty() => Ok(vec![(name.to_string(), v.to_string())]),
            _ => Err(
                ParseError::at_line(ctx.line, format!("{kind} must have two arguments"))
                    .with_hint(format!("write {kind} {name}=value")),
            ),
        };
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(ParseError::at_line(
                ctx.line,
                format!("syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            )
            .with_hint(format!(
                "in the {kind} a=b form every word must be name=value; quote values with spaces"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Result<Instruction, ParseError> {
        instruction_from_line(
            s,
            &LineContext {
                escape: '\\',
                line: 1,
                col: 1,
            },
        )
    }

    #[test]
    fn forms_per_keyword() {
        let cases: Vec<(&str, Args)> = vec![
            (
                "RUN [\"a\", \"b\"]",
                Args::Exec(vec!["a".into(), "b".into()]),
            ),
            ("RUN [\"a\" b", Args::Shell("[\"a\" b".into())),
            ("cmd echo  hi ", Args::Shell("echo  hi".into())),
            ("COPY a  b", Args::Words(vec!["a".into(), "b".into()])),
            (
                "COPY [\"a b\", \"c\"]",
                Args::Exec(vec!["a b".into(), "c".into()]),
            ),
            (
                "ARG a=\"x y\" b",
                Args::Words(vec!["a=\"x y\"".into(), "b".into()]),
            ),
            (
                "ENV A B C",
                Args::KeyValues(vec![("A".into(), "B C".into())]),
            ),
            (
                "ENV A=\"x y\" B='z'",
                Args::KeyValues(vec![
                    ("A".into(), "\"x y\"".into()),
                    ("B".into(), "'z'".into()),
                ]),
            ),
            (
                "LABEL \"a b\"=c",
                Args::KeyValues(vec![("\"a b\"".into(), "c".into())]),
            ),
            ("USER  a b ", Args::Words(vec!["a b".into()])),
            ("WORKDIR", Args::Words(vec![])),
            (
                "HEALTHCHECK NONE",
                Args::Healthcheck {
                    test: "NONE".into(),
                    command: None,
                },
            ),
            (
                "HEALTHCHECK --interval=5s CMD [\"a\"]",
                Args::Healthcheck {
                    test: "CMD".into(),
                    command: Some(Box::new(Args::Exec(vec!["a".into()]))),
                },
            ),
        ];
        for (src, want) in cases {
            assert_eq!(line(src).unwrap().args, want, "{src}");
        }
    }

    #[test]
    fn flags_and_keyword() {
        let i = line("copy --from=build --link a b").unwrap();
        assert_eq!(i.kind, Kind::Copy);
        assert_eq!(i.keyword, "copy");
        assert_eq!(
            i.flags[0],
            Flag {
                name: "from".into(),
                value: Some("build".into())
            }
        );
        assert_eq!(
            i.flags[1],
            Flag {
                name: "link".into(),
                value: None
            }
        );
    }

    #[test]
    fn onbuild_holds_its_trigger() {
        let i = line("ONBUILD RUN --network=none make").unwrap();
        let Args::Trigger(t) = i.args else {
            panic!("no trigger")
        };
        assert_eq!(t.kind, Kind::Run);
        assert_eq!(t.flags.len(), 1);
        assert_eq!(t.args, Args::Shell("make".into()));
    }

    #[test]
    fn line_errors() {
        let cases = [
            (
                "COPPY . /app",
                "unknown instruction: COPPY (did you mean COPY?)",
            ),
            ("ENV A", "ENV must have two arguments"),
            (
                "LABEL a=b c",
                "syntax error - can't find = in \"c\". Must be of the form: name=value",
            ),
            (
                "CMD [\"a\", 1]",
                "CMD: when using JSON array syntax, arrays must be comprised of strings only",
            ),
            ("ONBUILD FOO x", "unknown instruction: FOO"),
        ];
        for (src, msg) in cases {
            assert_eq!(line(src).unwrap_err().message, msg, "{src}");
        }
    }
}
