//! Which `--flags` each instruction accepts, and reading them like BuildKit's `BFlags.Parse`.

use std::collections::BTreeMap;

use crate::ast::{Instruction, Kind};
use crate::did_you_mean::closest;
use crate::error::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagType {
    /// `--link`, `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    String,
    /// `--mount=…`, repeatable.
    Strings,
}

fn spec(kind: Kind) -> &'static [(&'static str, FlagType)] {
    use FlagType::*;
    match kind {
        Kind::From => &[("platform", String)],
        Kind::Run => &[
            ("mount", Strings),
            ("network", String),
            ("security", String),
        ],
        Kind::Copy => &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Strings),
        ],
        Kind::Add => &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", String),
            ("exclude", Strings),
        ],
        Kind::Healthcheck => &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
        _ => &[],
    }
}

/// Flag values of one instruction after validation: booleans resolved, repeatable flags collected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct FlagValues {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl FlagValues {
    /// The value of a single-valued flag.
    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub(crate) fn strings(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A boolean flag: absent is false.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.string(name) == Some("true")
    }
}

/// Checks the flags of `inst` against what its instruction accepts.
pub(crate) fn read_flags(inst: &Instruction) -> Result<FlagValues, ParseError> {
    let allowed = spec(inst.kind);
    let mut out = FlagValues::default();
    for flag in &inst.flags {
        let err = |msg: String| flag_error(inst, &flag.name, msg);
        let Some(&(name, ty)) = allowed.iter().find(|(n, _)| *n == flag.name) else {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            let mut msg = format!("unknown flag: {}", flag.name);
            if let Some(s) = closest(&flag.name, &names) {
                msg.push_str(&format!(" (did you mean --{s}?)"));
            }
            let hint = if names.is_empty() {
                format!("{} takes no flags", inst.kind)
            } else {
                let list: Vec<String> = names.iter().map(|n| format!("--{n}")).collect();
                format!("{} accepts {}", inst.kind, list.join(", "))
            };
            return Err(err(msg).with_hint(hint));
        };
        if ty != FlagType::Strings && out.values.contains_key(name) {
            return Err(err(format!("duplicate flag specified: {name}")));
        }
        let value = match (ty, &flag.value) {
            (FlagType::Bool, None) => "true".to_string(),
            (FlagType::Bool, Some(v)) if v.is_empty() => {
                return Err(err(format!("missing a value on flag: {name}")))
            }
            (FlagType::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => {
                    return Err(err(format!(
                        "expecting boolean value for flag {name}, not: {v}"
                    )))
                }
            },
            (_, None) => {
                return Err(err(format!("missing a value on flag: {name}"))
                    .with_hint(format!("write --{name}=value (a space is not allowed)")))
            }
            (_, Some(v)) => v.clone(),
        };
        out.values.entry(name).or_default().push(value);
    }
    Ok(out)
}

/// An error about one flag, pointing at it when it is on the instruction's first line.
pub(crate) fn flag_error(inst: &Instruction, name: &str, message: String) -> ParseError {
    let first_line = inst.original.split('\n').next().unwrap_or("");
    let needle = format!("--{name}");
    match first_line.find(&needle) {
        Some(byte) => {
            let col = inst.span.col + first_line[..byte].chars().count();
            let len = first_line[byte..]
                .split(char::is_whitespace)
                .next()
                .map(|w| w.chars().count())
                .unwrap_or(needle.len());
            ParseError::at(inst.span.start_line, col, col + len, message)
        }
        None => ParseError::at_line(inst.span.start_line, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_args::{instruction_from_line, LineContext};

    fn flags(src: &str) -> Result<FlagValues, ParseError> {
        let ctx = LineContext {
            escape: '\\',
            line: 1,
            col: 1,
        };
        read_flags(&instruction_from_line(src, &ctx).unwrap())
    }

    #[test]
    fn accepted_flags() {
        let f = flags("COPY --from=a --link --parents=false --exclude=x --exclude=y a b").unwrap();
        assert_eq!(f.string("from"), Some("a"));
        assert!(f.bool("link"));
        assert!(!f.bool("parents"));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        let f = flags("RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/t x").unwrap();
        assert_eq!(f.strings("mount").len(), 2);
    }

    #[test]
    fn rejected_flags() {
        let cases = [
            (
                "COPY --form=a a b",
                "unknown flag: form (did you mean --from?)",
            ),
            ("ADD --from=a a b", "unknown flag: from"),
            ("ENV --x=1 A=b", "unknown flag: x"),
            (
                "FROM --platform linux/amd64 alpine",
                "missing a value on flag: platform",
            ),
            (
                "COPY --from=a --from=b a b",
                "duplicate flag specified: from",
            ),
            ("COPY --link= a b", "missing a value on flag: link"),
            (
                "COPY --link=yes a b",
                "expecting boolean value for flag link, not: yes",
            ),
        ];
        for (src, msg) in cases {
            assert_eq!(flags(src).unwrap_err().message, msg, "{src}");
        }
        let e = flags("ADD --from=a a b").unwrap_err();
        assert_eq!((e.col, e.end_col), (5, Some(13)));
        assert_eq!(
            e.hint.as_deref(),
            Some("ADD accepts --chown, --chmod, --link, --keep-git-dir, --checksum, --exclude")
        );
    }
}
