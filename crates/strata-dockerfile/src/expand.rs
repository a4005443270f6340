//! Word expansion (`$VAR`, `${VAR:-word}`, quotes, escapes): the public face of BuildKit's shell lexer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::shell_lex::WordProcessor;

/// Where expansion looks variables up. `None` means unset, which differs from set-but-empty.
pub trait VarLookup {
    /// The value of `name`, if it is set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl VarLookup for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> VarLookup for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

/// Ordered pairs; a later pair overrides an earlier one, as in an environment list.
impl VarLookup for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<const N: usize> VarLookup for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// Nothing is set.
impl VarLookup for () {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Why a word could not be expanded. Offsets are byte offsets into the word: the `$` of the
/// substitution, or the opening quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${` without its `}`.
    #[error("syntax error: missing '}}' at offset {offset}")]
    MissingBrace { offset: usize },
    /// `${}`, `${:...}`, `${{...}`.
    #[error("syntax error: bad substitution at offset {offset}")]
    BadSubstitution { offset: usize },
    /// `${VAR/pattern` without the `/` before the replacement.
    #[error("syntax error: missing '/' in ${{}} at offset {offset}")]
    MissingSlash { offset: usize },
    /// `${VAR:=x}`, `${VAR:#x}`, `${VAR.}` and anything else BuildKit does not know.
    #[error("unsupported modifier ({modifier}) in substitution at offset {offset}")]
    UnsupportedModifier { modifier: String, offset: usize },
    /// A quote (or a nested word) that is never closed.
    #[error("unexpected end of statement while looking for matching {expected} (opened at offset {offset})")]
    Unterminated { expected: char, offset: usize },
    /// `${VAR?message}` / `${VAR:?message}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        name: String,
        message: String,
        offset: usize,
    },
    /// `${A:-${B:-...}}` nested deeper than strata accepts.
    #[error("substitutions nested too deeply at offset {offset}")]
    TooDeep { offset: usize },
    /// A `#`, `%` or `/` pattern with an escape other than `\*`, `\?`, `\\`.
    #[error("invalid pattern ({pattern}) in substitution at offset {offset}: {reason}")]
    InvalidPattern {
        pattern: String,
        reason: String,
        offset: usize,
    },
}

impl ExpandError {
    /// The byte offset in the word this error is about.
    pub fn offset(&self) -> usize {
        match self {
            ExpandError::MissingBrace { offset }
            | ExpandError::BadSubstitution { offset }
            | ExpandError::MissingSlash { offset }
            | ExpandError::UnsupportedModifier { offset, .. }
            | ExpandError::Unterminated { offset, .. }
            | ExpandError::Required { offset, .. }
            | ExpandError::TooDeep { offset }
            | ExpandError::InvalidPattern { offset, .. } => *offset,
        }
    }
}

/// An expanded word and the variables it referred to (BuildKit's `ProcessWordWithMatches`):
/// lint reports `unmatched`, cache keys depend on `matched`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    pub value: String,
    /// Names looked up and found set (possibly empty).
    pub matched: BTreeSet<String>,
    /// Names looked up and found unset.
    pub unmatched: BTreeSet<String>,
}

/// BuildKit's shell lexer: processes quotes, escapes and substitutions in Dockerfile words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    pub(crate) escape: char,
    pub(crate) raw_quotes: bool,
    pub(crate) raw_escapes: bool,
    pub(crate) literal_quotes: bool,
    pub(crate) keep_unset: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape character (`\` or, after `# escape=``, a backtick).
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            literal_quotes: false,
            keep_unset: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (they still group and stop expansion).
    pub fn keep_quotes(mut self, yes: bool) -> Lexer {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the output.
    pub fn keep_escapes(mut self, yes: bool) -> Lexer {
        self.raw_escapes = yes;
        self
    }

    /// Treat quotes as ordinary characters (heredoc bodies are expanded this way).
    pub fn literal_quotes(mut self, yes: bool) -> Lexer {
        self.literal_quotes = yes;
        self
    }

    /// Leave references to unset variables as written instead of expanding them to nothing.
    pub fn keep_unset(mut self, yes: bool) -> Lexer {
        self.keep_unset = yes;
        self
    }

    /// Expands one word: quotes removed, whitespace kept (BuildKit's `ProcessWord`).
    pub fn expand_word(&self, word: &str, env: &dyn VarLookup) -> Result<String, ExpandError> {
        Ok(self.expand_word_with_matches(word, env)?.value)
    }

    /// Expands one word and reports which variables it referred to.
    pub fn expand_word_with_matches(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Expansion, ExpandError> {
        let mut processor = WordProcessor::new(self, word, env);
        let processed = processor.process()?;
        Ok(Expansion {
            value: processed.value,
            matched: std::mem::take(&mut processor.matched),
            unmatched: std::mem::take(&mut processor.unmatched),
        })
    }

    /// Expands `text` and splits it into words on unquoted, unescaped whitespace; whitespace
    /// inside a variable's value splits too (BuildKit's `ProcessWords`).
    pub fn expand_words(
        &self,
        text: &str,
        env: &dyn VarLookup,
    ) -> Result<Vec<String>, ExpandError> {
        Ok(WordProcessor::new(self, text, env).process()?.words)
    }
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
