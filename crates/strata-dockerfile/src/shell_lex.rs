//! The word processor behind [`crate::Lexer`]: quotes, escapes and `$` substitutions, following
//! BuildKit's `frontend/dockerfile/shell/lex.go` rule for rule.

use std::collections::BTreeSet;

use crate::expand::{ExpandError, Lexer, VarLookup};
use crate::shell_pattern::{self, Pattern};

/// What one pass over a word produced.
pub(crate) struct Processed {
    pub(crate) value: String,
    pub(crate) words: Vec<String>,
}

/// Deepest `${...}` nesting accepted (BuildKit has no limit, but no real Dockerfile gets close).
const MAX_DEPTH: usize = 128;

/// The state of one expansion: the text, where we are in it, and what was looked up.
pub(crate) struct WordProcessor<'a> {
    lexer: &'a Lexer,
    src: &'a str,
    pos: usize,
    env: &'a dyn VarLookup,
    raw_escapes: bool,
    /// How many `${...}` enclose the cursor: bounded so hostile input cannot overflow the stack.
    depth: usize,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

/// Splits text into words the way BuildKit does: characters that came from a variable split on
/// whitespace, quoted text and escaped characters never do, an empty `""` makes no word.
struct WordSplitter {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl WordSplitter {
    fn new() -> Self {
        WordSplitter {
            buf: String::new(),
            words: Vec::new(),
            in_word: false,
        }
    }

    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

impl<'a> WordProcessor<'a> {
    pub(crate) fn new(lexer: &'a Lexer, src: &'a str, env: &'a dyn VarLookup) -> Self {
        WordProcessor {
            lexer,
            src,
            pos: 0,
            env,
            raw_escapes: lexer.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Processes the whole text.
    pub(crate) fn process(&mut self) -> Result<Processed, ExpandError> {
        let raw = self.raw_escapes;
        self.process_until(None, raw)
    }

    /// Processes up to (and consuming) `stop`, or to the end of the text when `stop` is `None`.
    /// `raw_escapes` keeps escape characters in the output (patterns need them).
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<Processed, ExpandError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Result<Processed, ExpandError> {
        let start = self.pos;
        let mut value = String::new();
        let mut words = WordSplitter::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next_char();
                return Ok(Processed {
                    value,
                    words: words.finish(),
                });
            }
            match c {
                '$' => {
                    let expanded = self.dollar()?;
                    words.add_str(&expanded);
                    value.push_str(&expanded);
                }
                '<' => {
                    let text = self.possible_heredoc();
                    words.add_raw_str(&text);
                    value.push_str(&text);
                }
                '\'' if !self.lexer.literal_quotes => {
                    let text = self.single_quoted()?;
                    words.add_raw_str(&text);
                    value.push_str(&text);
                }
                '"' if !self.lexer.literal_quotes => {
                    let text = self.double_quoted()?;
                    words.add_raw_str(&text);
                    value.push_str(&text);
                }
                _ => {
                    self.next_char();
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(c);
                            value.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next_char() else {
                            break;
                        };
                        words.add_raw_char(escaped);
                        value.push(escaped);
                    } else {
                        words.add_char(c);
                        value.push(c);
                    }
                }
            }
        }
        match stop {
            Some(expected) => Err(ExpandError::Unterminated {
                expected,
                offset: start,
            }),
            None => Ok(Processed {
                value,
                words: words.finish(),
            }),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let offset = self.pos;
        let mut out = String::new();
        let open = self.next_char();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next_char() {
                None => {
                    return Err(ExpandError::Unterminated {
                        expected: '\'',
                        offset,
                    })
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let offset = self.pos;
        let mut out = String::new();
        let open = self.next_char();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandError::Unterminated {
                        expected: '"',
                        offset,
                    })
                }
                Some('"') => {
                    self.next_char();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let expanded = self.dollar()?;
                    out.push_str(&expanded);
                }
                Some(_) => {
                    let Some(mut c) = self.next_char() else {
                        continue;
                    };
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            // The loop reports the missing quote.
                            None => continue,
                            // Only these can be escaped; any other escape char stays literal.
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                self.next_char();
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// `<<` may start a heredoc: it and the blanks after it stay one word.
    fn possible_heredoc(&mut self) -> String {
        self.next_char();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next_char();
        let mut out = "<<".to_string();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next_char();
        }
        out
    }

    /// A name after `$`: letters, digits and `_`; or all the digits of a positional parameter;
    /// or one special parameter char.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.next_char();
                }
                return name;
            }
            if name.is_empty() && is_special_param(c) {
                self.next_char();
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.next_char();
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// A substitution starting at the `$` under the cursor.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExpandError::TooDeep { offset: self.pos });
        }
        self.depth += 1;
        let result = self.dollar_inner();
        self.depth -= 1;
        result
    }

    fn dollar_inner(&mut self) -> Result<String, ExpandError> {
        let offset = self.pos;
        self.next_char();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.keep_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next_char();
        match self.peek() {
            None => return Err(ExpandError::MissingBrace { offset }),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution { offset }),
            Some(_) => {}
        }
        let name = self.name();
        match self.next_char() {
            None => Err(ExpandError::MissingBrace { offset }),
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.keep_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(c @ (':' | '+' | '-' | '?' | '#' | '%')) => self.modifier(name, c, offset),
            Some('/') => self.substitute(name, offset),
            Some(c) => Err(ExpandError::UnsupportedModifier {
                modifier: c.to_string(),
                offset,
            }),
        }
    }

    /// `${name<op>word}` for the `-`, `+`, `?`, `#`, `%` families, `first` being the char after
    /// the name.
    fn modifier(
        &mut self,
        name: String,
        first: char,
        offset: usize,
    ) -> Result<String, ExpandError> {
        let mut modifier = first.to_string();
        let mut op = Some(first);
        let null_is_unset = first == ':';
        if null_is_unset {
            op = self.next_char();
            modifier.extend(op);
        }
        let trims = matches!(op, Some('#' | '%'));
        if null_is_unset && trims {
            return Err(ExpandError::UnsupportedModifier { modifier, offset });
        }
        let word = match self.process_until(Some('}'), trims) {
            Ok(p) => p.value,
            Err(_) if self.at_end() => return Err(ExpandError::MissingBrace { offset }),
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        if value.is_none() && self.lexer.keep_unset {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            Some('-') => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if empty { String::new() } else { word }),
            Some('?') => match value {
                Some(v) if !(null_is_unset && v.is_empty()) => Ok(v),
                Some(_) => Err(ExpandError::Required {
                    message: if word.is_empty() {
                        "is not allowed to be empty".to_string()
                    } else {
                        word
                    },
                    name,
                    offset,
                }),
                None => Err(ExpandError::Required {
                    message: if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    },
                    name,
                    offset,
                }),
            },
            Some(c @ ('#' | '%')) => {
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (pattern, longest) = match word.strip_prefix(c) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let compiled =
                    Pattern::compile(pattern).map_err(|reason| ExpandError::InvalidPattern {
                        pattern: pattern.to_string(),
                        reason,
                        offset,
                    })?;
                let value = value.unwrap_or_default();
                Ok(if c == '%' {
                    shell_pattern::trim_suffix(&compiled, &value, longest)
                } else {
                    shell_pattern::trim_prefix(&compiled, &value, longest)
                })
            }
            _ => Err(ExpandError::UnsupportedModifier { modifier, offset }),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn substitute(&mut self, name: String, offset: usize) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.next_char();
        }
        let pattern = match self.process_until(Some('/'), true) {
            Ok(p) => p.value,
            Err(_) if self.at_end() => return Err(ExpandError::MissingSlash { offset }),
            Err(e) => return Err(e),
        };
        let replacement = match self.process_until(Some('}'), true) {
            Ok(p) => p.value,
            Err(_) if self.at_end() => return Err(ExpandError::MissingBrace { offset }),
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        if value.is_none() && self.lexer.keep_unset {
            let slash = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slash}{pattern}/{replacement}}}"));
        }
        let compiled =
            Pattern::compile(&pattern).map_err(|reason| ExpandError::InvalidPattern {
                pattern: pattern.clone(),
                reason,
                offset,
            })?;
        Ok(shell_pattern::replace(
            &compiled,
            &value.unwrap_or_default(),
            &replacement,
            all,
        ))
    }
}

/// POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`): never set in a
/// Dockerfile, but they are names, so `$$` expands to empty rather than staying literal.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}
