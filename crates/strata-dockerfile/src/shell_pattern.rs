//! Shell wildcard patterns of `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`, matched the way BuildKit does.
//!
//! BuildKit turns the pattern into a Go regular expression: `*` and `?` are wildcards that (like
//! the regexp `.`) never match a newline, `\*`, `\?` and `\\` are literal, `\}` and `\/` drop the
//! backslash, any other escape is an error, and everything else — including `[` — is literal
//! (bracket expressions are not supported). Matching is done here directly on chars.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: any one char except a newline.
    One,
    /// `*`: any run of chars without a newline.
    Many,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `pattern`; the error is the reason, e.g. `invalid escape '\x'`.
    pub(crate) fn compile(pattern: &str) -> Result<Pattern, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => tokens.push(Token::Many),
                '?' => tokens.push(Token::One),
                '\\' => match chars.peek().copied() {
                    // `}` and `/` had to be escaped to end up inside `${...}`; the escape is not
                    // part of the pattern.
                    Some('}') | Some('/') => {}
                    Some(e @ ('*' | '?' | '\\')) => {
                        chars.next();
                        tokens.push(Token::Literal(e));
                    }
                    Some(e) => return Err(format!("invalid escape '\\{e}'")),
                    None => return Err("invalid escape at end of pattern".to_string()),
                },
                _ => tokens.push(Token::Literal(c)),
            }
        }
        Ok(Pattern { tokens })
    }

    /// For each `end` in `0..=text.len()`, whether the whole pattern matches `text[..end]`.
    fn prefix_matches(&self, text: &[char]) -> Vec<bool> {
        // dp[j]: the first j tokens match text[..i] for the current i.
        let m = self.tokens.len();
        let mut dp = vec![false; m + 1];
        dp[0] = true;
        for j in 1..=m {
            dp[j] = dp[j - 1] && self.tokens[j - 1] == Token::Many;
        }
        let mut out = Vec::with_capacity(text.len() + 1);
        out.push(dp[m]);
        for &c in text {
            let mut next = vec![false; m + 1];
            for j in 1..=m {
                next[j] = match self.tokens[j - 1] {
                    Token::Literal(l) => dp[j - 1] && l == c,
                    Token::One => dp[j - 1] && c != '\n',
                    // Either the star takes nothing, or it takes `c` on top of what it had.
                    Token::Many => next[j - 1] || (dp[j] && c != '\n'),
                };
            }
            dp = next;
            out.push(dp[m]);
            if !dp.iter().any(|&b| b) {
                // Nothing can match any longer prefix either.
                out.resize(text.len() + 1, false);
                break;
            }
        }
        out
    }

    fn reversed(&self) -> Pattern {
        Pattern {
            tokens: self.tokens.iter().rev().copied().collect(),
        }
    }
}

/// `${VAR#p}` (shortest) and `${VAR##p}` (longest): remove a matching prefix.
pub(crate) fn trim_prefix(pattern: &Pattern, value: &str, longest: bool) -> String {
    let text: Vec<char> = value.chars().collect();
    match pick_end(&pattern.prefix_matches(&text), longest) {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    }
}

/// `${VAR%p}` (shortest) and `${VAR%%p}` (longest): remove a matching suffix.
pub(crate) fn trim_suffix(pattern: &Pattern, value: &str, longest: bool) -> String {
    let reversed: Vec<char> = value.chars().rev().collect();
    match pick_end(&pattern.reversed().prefix_matches(&reversed), longest) {
        Some(len) => value.chars().take(reversed.len() - len).collect(),
        None => value.to_string(),
    }
}

fn pick_end(matches: &[bool], longest: bool) -> Option<usize> {
    if longest {
        matches.iter().rposition(|&m| m)
    } else {
        matches.iter().position(|&m| m)
    }
}

/// The leftmost match at or after `from`, longest at that start (BuildKit's wildcards are greedy
/// here), as a char range.
fn find(pattern: &Pattern, text: &[char], from: usize) -> Option<(usize, usize)> {
    (from..=text.len()).find_map(|start| {
        let ends = pattern.prefix_matches(&text[start..]);
        ends.iter()
            .rposition(|&m| m)
            .map(|len| (start, start + len))
    })
}

/// `${VAR/p/r}` and `${VAR//p/r}`. Like Go's `Regexp.ReplaceAllString`, the replacement is a
/// template where `$0`/`${0}` is the match, `$$` is `$`, and any other `$name` is empty.
pub(crate) fn replace(pattern: &Pattern, value: &str, replacement: &str, all: bool) -> String {
    let text: Vec<char> = value.chars().collect();
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((start, end)) = find(pattern, &text, search) else {
            break;
        };
        out.extend(&text[last_end..start]);
        // An empty match right after the previous match is not a new match.
        if end > last_end || start == 0 {
            let matched: String = text[start..end].iter().collect();
            expand_template(&mut out, replacement, &matched);
        }
        last_end = end;
        if !all {
            break;
        }
        search = if search + 1 > end { search + 1 } else { end };
    }
    out.extend(&text[last_end.min(text.len())..]);
    out
}

/// Go's `Regexp.Expand` for a pattern without capture groups.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_name(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// The group name after a `$` (`name` or `{name}`) and what follows it.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if braced {
        after.strip_prefix('}').map(|a| (name, a))
    } else {
        Some((name, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::compile(s).unwrap()
    }

    #[test]
    fn trims_prefixes_and_suffixes() {
        // (pattern, value, longest, prefix result, suffix result)
        let cases = [
            ("a", "abca", false, "bca", "abc"),
            ("*a", "abca", false, "bca", "abc"),
            ("*a", "abca", true, "", ""),
            ("a*", "abca", false, "bca", "abc"),
            ("a*", "abca", true, "", ""),
            ("?", "abc", false, "bc", "ab"),
            ("x", "abc", false, "abc", "abc"),
            ("", "abc", true, "abc", "abc"),
            ("*", "abc", false, "abc", "abc"),
            ("*", "abc", true, "", ""),
            ("\\*", "*a*", false, "a*", "*a"),
            ("[a]", "[a]b", false, "b", "[a]b"),
            ("*/", "/usr/local/bin", true, "bin", "/usr/local/bin"),
            ("/*", "/usr/local/bin", false, "usr/local/bin", "/usr/local"),
            ("/*", "/usr/local/bin", true, "", ""),
            ("*", "a\nb", true, "\nb", "a\n"),
        ];
        for (pat, value, longest, prefix, suffix) in cases {
            let pat_c = p(pat);
            assert_eq!(
                trim_prefix(&pat_c, value, longest),
                prefix,
                "#{pat} on {value:?}"
            );
            assert_eq!(
                trim_suffix(&pat_c, value, longest),
                suffix,
                "%{pat} on {value:?}"
            );
        }
    }

    #[test]
    fn replaces_first_or_all() {
        let cases = [
            ("o", "foo boo", "0", false, "f0o boo"),
            ("o", "foo boo", "0", true, "f00 b00"),
            ("o*", "foo boo", "X", false, "fX"),
            ("?o", "foo boo", "X", true, "Xo Xo"),
            ("", "ab", "-", true, "-a-b-"),
            ("", "ab", "-", false, "-ab"),
            ("*", "ab", "-", true, "-"),
            ("z", "ab", "-", true, "ab"),
            ("b", "abc", "[$0]", false, "a[b]c"),
            ("b", "abc", "$$", false, "a$c"),
            ("b", "abc", "$x-", false, "a-c"),
            ("b", "abc", "$-", false, "a$-c"),
            ("b", "abc", "${0}${", false, "ab${c"),
        ];
        for (pat, value, repl, all, want) in cases {
            assert_eq!(
                replace(&p(pat), value, repl, all),
                want,
                "{pat} {value} {repl} {all}"
            );
        }
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(
            Pattern::compile("a\\b"),
            Err("invalid escape '\\b'".to_string())
        );
        assert!(Pattern::compile("a\\").is_err());
        assert_eq!(p("a\\}"), p("a}"));
        assert_eq!(p("\\/"), p("/"));
        assert_eq!(
            p("\\\\"),
            Pattern {
                tokens: vec![Token::Literal('\\')]
            }
        );
    }
}
