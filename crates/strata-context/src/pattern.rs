//! One `.dockerignore` pattern compiled the way Docker's patternmatcher compiles it: exact, prefix
//! (`dir/**`), suffix (`**/name`, and Docker's quirk that `**foo` is a plain suffix test) or regex.

use regex::Regex;

use crate::go_glob::{go_match, BadPattern};

/// How a pattern decides a path; chosen exactly like patternmatcher's `compile`.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    /// The pattern minus its trailing `**`.
    Prefix(String),
    /// The pattern minus its leading `**`.
    Suffix(String),
    Regex(Regex, Prefilter),
}

/// Cheap necessary conditions checked before running a regex: most paths fail one of them, and
/// the walker asks every pattern about every path.
#[derive(Debug, Clone, Default)]
struct Prefilter {
    /// Literal text every match starts with.
    prefix: String,
    /// Literal text every match ends with.
    suffix: String,
    /// Without `**`, `*` and `?` never match `/`: a match has exactly this many.
    slashes: Option<usize>,
}

impl Prefilter {
    /// Only for patterns made of literals, `*`, `?` and `**` (classes and escapes may match `/`
    /// or hide a literal, so they get no prefilter).
    fn of(pattern: &str) -> Prefilter {
        if pattern.contains(['[', ']', '\\']) {
            return Prefilter::default();
        }
        let first = pattern.find(['*', '?']).unwrap_or(pattern.len());
        let mut last = pattern.rfind(['*', '?']).map_or(0, |i| i + 1);
        // `**/` swallows its slash: `a**/b` matches `ab`.
        if pattern[..last].ends_with("**") && pattern[last..].starts_with('/') {
            last += 1;
        }
        Prefilter {
            prefix: pattern[..first].to_string(),
            suffix: pattern[last.max(first)..].to_string(),
            slashes: (!pattern.contains("**")).then(|| pattern.matches('/').count()),
        }
    }

    fn may_match(&self, path: &str) -> bool {
        let (path, prefix, suffix) = (
            path.as_bytes(),
            self.prefix.as_bytes(),
            self.suffix.as_bytes(),
        );
        path.len() >= prefix.len() + suffix.len()
            && bytes_eq(&path[..prefix.len()], prefix)
            && bytes_eq(&path[path.len() - suffix.len()..], suffix)
            && self
                .slashes
                .is_none_or(|n| path.iter().filter(|b| **b == b'/').count() == n)
    }
}

/// Byte comparison without a `memcmp` call: these strings are a few bytes long and compared
/// millions of times, where the call costs more than the comparison.
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `path` itself when it has `n` slashes, else its parent directory that has `n` (`slashes` are
/// the byte offsets of the slashes in `path`).
fn at_depth<'p>(path: &'p str, slashes: &[usize], n: usize) -> Option<&'p str> {
    match slashes.get(n) {
        Some(&end) => Some(&path[..end]),
        None => (n == slashes.len()).then_some(path),
    }
}

/// A cleaned pattern (no `!`, no leading `/`) ready to match slash-separated relative paths.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    cleaned: String,
    matcher: Matcher,
    /// Slashes in a matching path, for exact patterns and regexes without `**`.
    depth: usize,
}

impl Pattern {
    /// Compiles a cleaned pattern; fails where Docker fails (`filepath.Match` syntax check, then
    /// the regex build).
    pub(crate) fn compile(cleaned: &str) -> Result<Pattern, String> {
        go_match(cleaned, ".").map_err(|BadPattern| "syntax error in pattern".to_string())?;
        let matcher = to_matcher(cleaned)?;
        let depth = match &matcher {
            Matcher::Exact(p) => p.matches('/').count(),
            Matcher::Regex(_, pre) => pre.slashes.unwrap_or(0),
            Matcher::Prefix(_) | Matcher::Suffix(_) => 0,
        };
        Ok(Pattern {
            cleaned: cleaned.to_string(),
            matcher,
            depth,
        })
    }

    /// The pattern text this was compiled from.
    pub(crate) fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether the pattern matches `path` or one of its parent directories (`slashes`: the byte
    /// offsets of the slashes in `path`). Patterns without `**` have a fixed depth, so at most one
    /// of those paths needs testing.
    pub(crate) fn matches_path_or_parent(&self, path: &str, slashes: &[usize]) -> bool {
        match &self.matcher {
            Matcher::Exact(p) => at_depth(path, slashes, self.depth)
                .is_some_and(|c| bytes_eq(c.as_bytes(), p.as_bytes())),
            // A parent starting with the prefix means the path starts with it too.
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Regex(re, pre) if pre.slashes.is_some() => at_depth(path, slashes, self.depth)
                .is_some_and(|c| pre.may_match(c) && re.is_match(c)),
            Matcher::Suffix(_) | Matcher::Regex(..) => {
                self.matches(path) || slashes.iter().any(|&end| self.matches(&path[..end]))
            }
        }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(p) => bytes_eq(path.as_bytes(), p.as_bytes()),
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => {
                // `**/foo` also matches `foo` at the root.
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(re, pre) => pre.may_match(path) && re.is_match(path),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Translates the pattern token by token into Go regex syntax and a match kind, exactly as
/// patternmatcher does (it knows nothing of `[...]`, so `*` inside a class becomes `[^/]*` there too).
fn to_matcher(pattern: &str) -> Result<Matcher, String> {
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(ch) = chars.next() {
        let at_start = std::mem::replace(&mut first, false);
        match ch {
            '*' => {
                if chars.peek() == Some(&'*') {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_none() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            re.push_str(".*");
                            kind = Kind::Regex;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        kind = Kind::Regex;
                    }
                    if at_start {
                        kind = Kind::Suffix;
                    }
                } else {
                    re.push_str("[^/]*");
                    kind = Kind::Regex;
                }
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    kind = Kind::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                kind = Kind::Regex;
            }
            _ => re.push(ch),
        }
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact(pattern.to_string()),
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            let rust = go_regex_to_rust(&re)?;
            let regex = Regex::new(&rust).map_err(|e| format!("bad pattern: {e}"))?;
            Matcher::Regex(regex, Prefilter::of(pattern))
        }
    })
}

/// Rewrites the Go regex that patternmatcher builds into Rust `regex` syntax with the same meaning.
/// The two agree except inside `[...]`, where Rust gives `[`, `&&`, `~~` and `--` a meaning; so
/// every class is re-emitted item by item with its characters escaped.
fn go_regex_to_rust(go: &str) -> Result<String, String> {
    let mut out = String::with_capacity(go.len() + 8);
    let mut chars = go.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => match chars.next() {
                Some(next) => push_escape_pair(&mut out, next),
                None => out.push_str("\\\\"),
            },
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        out.push(']');
                        break;
                    }
                    first = false;
                    if c == '[' && chars.peek() == Some(&':') {
                        // A POSIX class such as `[:alpha:]`: same spelling in both engines, but
                        // Go refuses unknown names where Rust would read a nested class.
                        let mut class = String::from("[");
                        for n in chars.by_ref() {
                            class.push(n);
                            if n == ']' {
                                break;
                            }
                        }
                        let name = class.trim_start_matches("[:").trim_end_matches(":]");
                        if !POSIX_CLASSES.contains(&name.trim_start_matches('^')) {
                            return Err(format!("invalid character class range: `{class}`"));
                        }
                        out.push_str(&class);
                        continue;
                    }
                    push_class_char(&mut out, c, &mut chars);
                    let mut ahead = chars.clone();
                    if ahead.next() == Some('-') && ahead.peek().is_some_and(|n| *n != ']') {
                        chars.next();
                        out.push('-');
                        if let Some(hi) = chars.next() {
                            push_class_char(&mut out, hi, &mut chars);
                        }
                    }
                }
            }
            _ => out.push(ch),
        }
    }
    Ok(out)
}

/// The `[:name:]` classes Go's regexp knows.
const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// One class character (`c`, already taken from `chars`), escaped for Rust.
fn push_class_char(
    out: &mut String,
    c: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) {
    if c == '\\' {
        match chars.next() {
            Some(next) => push_escape_pair(out, next),
            None => out.push_str("\\\\"),
        }
    } else {
        push_literal(out, c);
    }
}

/// `\c`: alphanumerics keep their regex meaning (`\d` is a digit class in Go too); anything else
/// is that character, literally.
fn push_escape_pair(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push('\\');
        out.push(c);
    } else {
        push_literal(out, c);
    }
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_patternmatcher() {
        let cases = [
            ("a/b", "exact"),
            ("a.b", "exact"),
            ("a/**", "prefix"),
            ("**", "suffix"),
            ("**/x", "suffix"),
            ("**x", "suffix"),
            ("**/*.go", "regex"),
            ("a/**/b", "regex"),
            ("a*/**", "regex"),
            ("a?", "regex"),
            ("[ab]", "regex"),
            ("a\\b", "regex"),
        ];
        for (pattern, want) in cases {
            let got = match Pattern::compile(pattern).unwrap().matcher {
                Matcher::Exact(_) => "exact",
                Matcher::Prefix(_) => "prefix",
                Matcher::Suffix(_) => "suffix",
                Matcher::Regex(..) => "regex",
            };
            assert_eq!(got, want, "{pattern:?}");
        }
    }

    #[test]
    fn prefilter_never_rejects_a_regex_match() {
        let patterns = [
            "a**/b",
            "src/*.js",
            "**/*.go",
            "a/**/b",
            "a?c",
            "*/x/*",
            "a*b*c",
            "**/x?/**/y*",
            "a.b*",
        ];
        let paths = [
            "src/a.js",
            "src/x/a.js",
            "a.go",
            "x/y/a.go",
            "a/b",
            "a/x/y/b",
            "abc",
            "a/c",
            "q/x/r",
            "aXbYc",
            "z/x1/w/y2",
            "a.bc",
            "a.b",
            "src/.js",
            "ab",
        ];
        for pattern in patterns {
            let Matcher::Regex(re, pre) = Pattern::compile(pattern).unwrap().matcher else {
                panic!("{pattern:?} should compile to a regex");
            };
            for path in paths {
                if re.is_match(path) {
                    assert!(
                        pre.may_match(path),
                        "{pattern:?} prefilter rejects {path:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn path_or_parent_agrees_with_testing_every_parent() {
        let patterns = [
            "a", "a/b", "a/**", "**/b", "**b", "a/*", "*/b", "a/**/c", "?/b/*", "[ab]/c", "a\\/b",
            "a.b", "*",
        ];
        let paths = [
            "a",
            "a/b",
            "a/b/c",
            "x/a/b",
            "b",
            "ab/b/c",
            "a/x/c/d",
            "a/b/c/d/e",
        ];
        for pattern in patterns {
            let p = Pattern::compile(pattern).unwrap();
            for path in paths {
                let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
                let brute = p.matches(path) || slashes.iter().any(|&i| p.matches(&path[..i]));
                assert_eq!(
                    p.matches_path_or_parent(path, &slashes),
                    brute,
                    "{pattern:?} {path:?}"
                );
            }
        }
    }

    #[test]
    fn class_characters_stay_literal() {
        let p = Pattern::compile("[a&&b]").unwrap();
        assert!(!p.matches("&&"));
        assert!(p.matches("&"));
        assert!(p.matches("a"));
        assert!(!p.matches("c"));
        let p = Pattern::compile("[[:digit:]]x").unwrap();
        assert!(p.matches("7x"));
        assert!(!p.matches("ax"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for pattern in ["[", "a[b", "[z-a]", "x\\", "[[:nope:]]"] {
            assert!(Pattern::compile(pattern).is_err(), "{pattern:?}");
        }
    }
}
