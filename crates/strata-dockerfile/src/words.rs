//! Splitting one logical line the way BuildKit's line parsers do: flags, words, JSON arrays, pairs.
//!
//! Nothing here removes quotes from words (that is expansion's job) except where BuildKit does it at
//! parse time: inside `--flag` values and heredoc delimiters.

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]+`. Note: not `\n`, not Unicode spaces.
pub(crate) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits at runs of [`is_split_space`] like Go's `regexp.Split(s, -1)`: empty fields at the ends are
/// kept, except that an empty input yields no field.
pub(crate) fn split_whitespace_runs(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in s.chars() {
        if is_split_space(c) {
            if !in_space {
                out.push(std::mem::take(&mut cur));
                in_space = true;
            }
        } else {
            in_space = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Splits into the first field and the rest at the first run of [`is_split_space`]
/// (Go's `reWhitespace.Split(s, 2)`).
pub(crate) fn split_first_word(s: &str) -> (&str, Option<&str>) {
    match s.find(is_split_space) {
        Some(i) => {
            let rest = s[i..].trim_start_matches(is_split_space);
            (&s[..i], Some(rest))
        }
        None => (s, None),
    }
}

/// Result of [`extract_flags`]: the `--flags` (with their leading dashes) and the rest of the line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FlagSplit {
    pub(crate) flags: Vec<String>,
    pub(crate) rest: String,
}

/// BuildKit's `extractBuilderFlags`: leading words that start with `--` are flags; quotes inside a flag
/// are removed and `\` escapes the next character; a lone `--` ends the flags.
pub(crate) fn extract_flags(line: &str) -> FlagSplit {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut flags = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut i = 0;
    let rest_from = |i: usize| -> String {
        chars
            .get(i)
            .map(|&(b, _)| line[b..].to_string())
            .unwrap_or_default()
    };
    while i < chars.len() {
        let c = chars[i].1;
        match phase {
            Phase::Spaces => {
                if c.is_whitespace() {
                    i += 1;
                    continue;
                }
                let next_is_dash = chars.get(i + 1).map(|&(_, n)| n == '-') == Some(true);
                if c != '-' || !next_is_dash {
                    return FlagSplit {
                        flags,
                        rest: rest_from(i),
                    };
                }
                phase = Phase::Word;
                continue;
            }
            Phase::Word => {
                if c.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return FlagSplit {
                            flags,
                            rest: rest_from(i),
                        };
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if c == '\'' || c == '"' {
                    phase = Phase::Quote(c);
                    blank_ok = true;
                } else if c == '\\' {
                    if let Some(&(_, n)) = chars.get(i + 1) {
                        word.push(n);
                        i += 1;
                    }
                } else {
                    word.push(c);
                }
            }
            Phase::Quote(q) => {
                if c == q {
                    phase = Phase::Word;
                } else if c == '\\' {
                    match chars.get(i + 1) {
                        Some(&(_, n)) => {
                            word.push(n);
                            i += 1;
                        }
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(c);
                }
            }
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    FlagSplit {
        flags,
        rest: String::new(),
    }
}

/// BuildKit's `parseWords`: splits at whitespace outside quotes, keeping quotes and escapes in the
/// words (they are removed at expansion time). `'` quotes cannot escape anything.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            if c == escape && q != '\'' {
                match chars.get(i + 1) {
                    None => {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    Some(&n) => {
                        word.push(c);
                        word.push(n);
                        i += 2;
                        continue;
                    }
                }
            }
            word.push(c);
            i += 1;
            continue;
        }
        if !in_word {
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        if c.is_whitespace() {
            in_word = false;
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        }
        if c == escape {
            match chars.get(i + 1) {
                None => {
                    i += 1;
                    continue;
                }
                Some(&n) => {
                    word.push(c);
                    word.push(n);
                    i += 2;
                    continue;
                }
            }
        }
        word.push(c);
        i += 1;
    }
    if (in_word || quote.is_some()) && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Why a `[`-prefixed argument is not an exec-form array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonArgs {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Not JSON (or not an array): the shell / word form applies.
    NotJson,
    /// A JSON array with a non-string element: BuildKit rejects the instruction.
    NotStrings,
}

/// BuildKit's `parseJSON`: the text must start with `[` and be exactly one JSON array of strings.
pub(crate) fn parse_json_array(rest: &str) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::NotJson;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => JsonArgs::NotJson,
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return JsonArgs::NotStrings,
                }
            }
            JsonArgs::Array(out)
        }
    }
}

/// Splits a line into shell words keeping quotes and escapes (BuildKit lexes heredoc markers with its
/// shell lexer in raw mode; `\` is always the escape there).
pub(crate) fn raw_shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            '\\' => {
                started = true;
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '\'' | '"' => {
                started = true;
                word.push(c);
                while let Some(n) = chars.next() {
                    word.push(n);
                    if n == c {
                        break;
                    }
                    if n == '\\' && c == '"' {
                        if let Some(m) = chars.next() {
                            word.push(m);
                        }
                    }
                }
            }
            _ => {
                started = true;
                word.push(c);
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Removes shell quoting from a word. With `keep_quotes`, quote characters stay but escapes are
/// still resolved (BuildKit's `RawQuotes`). Inside `"…"`, `\` only escapes `"`, `\`, `$` and `` ` ``.
pub(crate) fn unquote_shell_word(word: &str, keep_quotes: bool) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\'' => {
                if keep_quotes {
                    out.push(c);
                }
                for n in chars.by_ref() {
                    if n == '\'' {
                        if keep_quotes {
                            out.push(n);
                        }
                        break;
                    }
                    out.push(n);
                }
            }
            '"' => {
                if keep_quotes {
                    out.push(c);
                }
                while let Some(n) = chars.next() {
                    if n == '"' {
                        if keep_quotes {
                            out.push(n);
                        }
                        break;
                    }
                    if n == '\\' {
                        match chars.next() {
                            Some(m @ ('"' | '\\' | '$' | '`')) => out.push(m),
                            Some(m) => {
                                out.push('\\');
                                out.push(m);
                            }
                            None => out.push('\\'),
                        }
                        continue;
                    }
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A heredoc marker word (`<<EOF`, `<<-"EOF"`, `3<<EOF`), as BuildKit's `ParseHeredoc` reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HeredocMarker {
    pub(crate) name: String,
    pub(crate) expand: bool,
    pub(crate) chomp: bool,
    pub(crate) file_descriptor: Option<u32>,
}

/// Matches `^(\d*)<<(-?)([^<]*)$` and reads the delimiter; `None` when the word is no heredoc marker.
pub(crate) fn heredoc_marker(word: &str) -> Option<HeredocMarker> {
    let digits_end = word
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_digit())
        .map(|(i, _)| i)
        .unwrap_or(word.len());
    let (digits, tail) = word.split_at(digits_end);
    let tail = tail.strip_prefix("<<")?;
    let (chomp, rest) = match tail.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, tail),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name = unquote_shell_word(rest, false);
    // A delimiter that unquotes to several words or to nothing is not a heredoc for BuildKit.
    if name.is_empty() || raw_shell_words(rest).len() != 1 {
        return None;
    }
    let raw = unquote_shell_word(rest, true);
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = quotes(&name) == quotes(&raw);
    let file_descriptor = if digits.is_empty() {
        None
    } else {
        Some(digits.parse::<u32>().unwrap_or(u32::MAX))
    };
    Some(HeredocMarker {
        name,
        expand,
        chomp,
        file_descriptor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_leading_double_dash_words() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("--from=a x y", &["--from=a"], "x y"),
            ("--link --chmod=755 a b", &["--link", "--chmod=755"], "a b"),
            (
                "--mount=type=cache,\"target=/a b\" x",
                &["--mount=type=cache,target=/a b"],
                "x",
            ),
            ("-- --notaflag", &[], " --notaflag"),
            ("--a=\\\"x", &["--a=\"x"], ""),
            ("a --b", &[], "a --b"),
            ("--only", &["--only"], ""),
            ("- x", &[], "- x"),
        ];
        for (line, flags, rest) in cases {
            let got = extract_flags(line);
            assert_eq!(
                got.flags,
                flags.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{line}"
            );
            assert_eq!(got.rest, *rest, "{line}");
        }
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let cases: &[(&str, char, &[&str])] = &[
            ("a b  c", '\\', &["a", "b", "c"]),
            ("a=\"x y\" b='p q'", '\\', &["a=\"x y\"", "b='p q'"]),
            ("a=x\\ y", '\\', &["a=x\\ y"]),
            ("a='x\\' b", '\\', &["a='x\\'", "b"]),
            ("a=\"x\\\" y\"", '\\', &["a=\"x\\\" y\""]),
            ("a=`\"b c", '`', &["a=`\"b", "c"]),
            ("\"\"", '\\', &["\"\""]),
            ("x\\", '\\', &["x"]),
        ];
        for (line, esc, want) in cases {
            assert_eq!(parse_words(line, *esc), *want, "{line}");
        }
    }

    #[test]
    fn json_arrays() {
        assert_eq!(
            parse_json_array(r#"["a", "b c"]"#),
            JsonArgs::Array(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse_json_array("[]"), JsonArgs::Array(vec![]));
        assert_eq!(parse_json_array("['a']"), JsonArgs::NotJson);
        assert_eq!(parse_json_array(r#"["a"] x"#), JsonArgs::NotJson);
        assert_eq!(parse_json_array(r#"["c:\windows"]"#), JsonArgs::NotJson);
        assert_eq!(parse_json_array("echo [a]"), JsonArgs::NotJson);
        assert_eq!(parse_json_array(r#"["a", 1]"#), JsonArgs::NotStrings);
    }

    #[test]
    fn whitespace_runs() {
        assert_eq!(split_whitespace_runs("a  b\tc"), vec!["a", "b", "c"]);
        assert_eq!(split_whitespace_runs("a "), vec!["a", ""]);
        assert!(split_whitespace_runs("").is_empty());
        assert_eq!(split_first_word("ENV  a b"), ("ENV", Some("a b")));
    }

    #[test]
    fn heredoc_markers() {
        let m = heredoc_marker("<<EOF").unwrap();
        assert_eq!(
            (m.name.as_str(), m.expand, m.chomp, m.file_descriptor),
            ("EOF", true, false, None)
        );
        let m = heredoc_marker("<<-'EOF'").unwrap();
        assert_eq!((m.name.as_str(), m.expand, m.chomp), ("EOF", false, true));
        let m = heredoc_marker("3<<\"E\"OF").unwrap();
        assert_eq!(
            (m.name.as_str(), m.expand, m.file_descriptor),
            ("EOF", false, Some(3))
        );
        assert!(heredoc_marker("<<").is_none());
        assert!(heredoc_marker("<<-").is_none());
        assert!(heredoc_marker("a<<EOF").is_none());
        assert!(heredoc_marker("<<EOF<<X").is_none());
        assert!(heredoc_marker("'<<EOF'").is_none());
    }

    #[test]
    fn raw_words_keep_quoted_markers_whole() {
        assert_eq!(
            raw_shell_words("RUN '<<EOF' x"),
            vec!["RUN", "'<<EOF'", "x"]
        );
        assert_eq!(raw_shell_words("RUN <<\"A B\""), vec!["RUN", "<<\"A B\""]);
    }
}
