//! `.dockerignore`: reading the file like Docker's `ignorefile.ReadAll`, deciding exclusion like
//! patternmatcher's `MatchesOrParentMatches`, and choosing the file like BuildKit does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::ContextError;
use crate::go_glob::{go_clean, go_match, has_glob_meta};
use crate::pattern::Pattern;

/// One line of the file that survived comment/blank removal.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    /// A `!` line: re-includes what earlier lines excluded.
    exception: bool,
    /// For exceptions: the pattern's components, to tell which directories it could reach into.
    reach: Vec<Reach>,
}

/// What one component of an exception pattern can match, for [`DockerIgnore::can_skip_dir`].
#[derive(Debug, Clone)]
enum Reach {
    /// Could match any number of components (`**`, or syntax too rich to reason about).
    Anything,
    Glob(String),
}

/// A parsed `.dockerignore`, with Docker's semantics: patterns are anchored at the context root,
/// the last matching line wins, and a path is excluded when it or any parent directory matches.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
    has_exceptions: bool,
    /// Indexes of the rules that can match below a given first path component: those whose first
    /// component is that literal, plus every rule whose first component is a glob. A path (and
    /// all its parents) can only match rules in its list, so the rest are never tried.
    by_first: HashMap<String, Vec<usize>>,
    /// The rules whose first component is a glob: the list for any other first component.
    unanchored: Vec<usize>,
}

/// Per directory: which rules match the directory itself or one of its parents. Carrying it down
/// the walk gives `MatchesOrParentMatches` without re-matching every parent for every file.
#[derive(Debug, Clone)]
pub(crate) struct ParentMatches(Vec<bool>);

impl DockerIgnore {
    /// Parses `.dockerignore` text. Lines starting with `#` are comments (only in the first
    /// column), blank lines are skipped, `!` marks an exception; a bad pattern is an error naming
    /// its line.
    pub fn parse(text: &str) -> Result<DockerIgnore, ContextError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ignore = DockerIgnore::default();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.starts_with('#') {
                continue;
            }
            let Some(normalized) = normalize_line(raw) else {
                continue;
            };
            let bad = |reason: &str| ContextError::BadIgnorePattern {
                line,
                pattern: raw.trim().to_string(),
                reason: reason.to_string(),
            };
            // The matcher cleans the line once more, `!` included.
            let cleaned = go_clean(&normalized);
            let (exception, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(bad("illegal exclusion pattern: \"!\"")),
                Some(body) => (true, body.to_string()),
                None => (false, cleaned),
            };
            let pattern = Pattern::compile(&body).map_err(|reason| bad(&reason))?;
            let reach = if exception {
                reach_of(&body)
            } else {
                Vec::new()
            };
            ignore.has_exceptions |= exception;
            ignore.rules.push(Rule {
                pattern,
                exception,
                reach,
            });
        }
        ignore.index_rules();
        Ok(ignore)
    }

    fn index_rules(&mut self) {
        let mut anchored: Vec<(&str, usize)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let first = rule.pattern.as_str().split('/').next().unwrap_or("");
            if has_glob_meta(first) || first.contains(']') {
                self.unanchored.push(i);
            } else {
                anchored.push((first, i));
            }
        }
        for (first, i) in anchored {
            self.by_first
                .entry(first.to_string())
                .or_insert_with(|| self.unanchored.clone())
                .push(i);
        }
        for list in self.by_first.values_mut() {
            list.sort_unstable();
        }
    }

    /// The rules that can match `path` or any of its parents.
    fn candidates(&self, path: &str) -> &[usize] {
        let first = path.split('/').next().unwrap_or(path);
        self.by_first
            .get(first)
            .map_or(&self.unanchored, |list| list)
    }

    /// Reads and parses an ignore file.
    pub fn read(path: &Path) -> Result<DockerIgnore, ContextError> {
        let bytes = std::fs::read(path).map_err(|e| ContextError::io(path, e))?;
        DockerIgnore::parse(&String::from_utf8_lossy(&bytes))
    }

    /// The patterns in file order, `!` kept, as Docker's matcher sees them.
    pub fn patterns(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| {
                let p = r.pattern.as_str();
                if r.exception {
                    format!("!{p}")
                } else {
                    p.to_string()
                }
            })
            .collect()
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is left out of the context.
    /// Docker's matcher does not look at the file type, so `is_dir` never changes the answer: `x/`
    /// excludes a file named `x` as well.
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let cleaned;
        let path = if is_clean(rel_path) {
            rel_path
        } else {
            cleaned = go_clean(rel_path);
            cleaned.trim_start_matches('/')
        };
        if path == "." || path.is_empty() {
            return false;
        }
        let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        self.decide(path, |_, rule| {
            rule.pattern.matches_path_or_parent(path, &slashes)
        })
    }

    /// True when `rel_dir` is excluded and no exception could re-include anything below it, so a
    /// walker need not open it.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let dir = go_clean(rel_dir);
        self.is_excluded(&dir, true) && !self.exception_reaches_below(dir.trim_start_matches('/'))
    }

    /// Whether the file has any rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules that could match `path` in order: a rule is only consulted when it could
    /// flip the current answer.
    fn decide(&self, path: &str, mut rule_matches: impl FnMut(usize, &Rule) -> bool) -> bool {
        let mut excluded = false;
        for &i in self.candidates(path) {
            let rule = &self.rules[i];
            if rule.exception != excluded {
                continue;
            }
            if rule_matches(i, rule) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// The matches of the context root (nothing matches it).
    pub(crate) fn root_matches(&self) -> ParentMatches {
        ParentMatches(vec![false; self.rules.len()])
    }

    /// The matches of directory `rel_dir`, a child of the directory `parent` describes.
    pub(crate) fn dir_matches(&self, rel_dir: &str, parent: &ParentMatches) -> ParentMatches {
        let mut own = parent.clone();
        for &i in self.candidates(rel_dir) {
            if !own.0[i] && self.rules[i].pattern.matches(rel_dir) {
                own.0[i] = true;
            }
        }
        own
    }

    /// `is_excluded` for the directory `rel_dir` whose own matches are already known.
    pub(crate) fn is_excluded_dir(&self, rel_dir: &str, own: &ParentMatches) -> bool {
        self.decide(rel_dir, |i, _| own.0.get(i).copied().unwrap_or(false))
    }

    /// `is_excluded` for a non-directory in the directory `parent` describes.
    pub(crate) fn is_excluded_in(&self, rel_path: &str, parent: &ParentMatches) -> bool {
        self.decide(rel_path, |i, rule| {
            parent.0.get(i).copied().unwrap_or(false) || rule.pattern.matches(rel_path)
        })
    }

    /// Whether some exception pattern could match a path strictly below `dir`.
    pub(crate) fn exception_reaches_below(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.rules
            .iter()
            .filter(|r| r.exception)
            .any(|r| reaches_below(&r.reach, &dir_parts))
    }
}

/// Whether `go_clean` would leave `path` as it is, with no leading `/` (the walker's paths are).
fn is_clean(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// `ignorefile.ReadAll`'s normalization of one non-comment line; `None` for blank lines.
fn normalize_line(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (invert, body) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, trimmed),
    };
    let mut body = if body.is_empty() {
        String::new()
    } else {
        go_clean(body)
    };
    // Patterns are relative to the context root, so `/x` means `x` (but `/` stays `/`).
    if body.len() > 1 && body.starts_with('/') {
        body.remove(0);
    }
    Some(if invert { format!("!{body}") } else { body })
}

/// Splits an exception pattern into per-component reach.
fn reach_of(pattern: &str) -> Vec<Reach> {
    // Classes and escapes may hide a `/`; treat such patterns as reaching everywhere.
    if pattern.contains(['[', '\\']) {
        return vec![Reach::Anything];
    }
    pattern
        .split('/')
        .map(|part| {
            if part.contains("**") {
                Reach::Anything
            } else {
                Reach::Glob(part.to_string())
            }
        })
        .collect()
}

fn reaches_below(reach: &[Reach], dir_parts: &[&str]) -> bool {
    for (i, part) in dir_parts.iter().enumerate() {
        match reach.get(i) {
            None => return false,
            Some(Reach::Anything) => return true,
            Some(Reach::Glob(glob)) => {
                let matched = if has_glob_meta(glob) {
                    go_match(glob, part).unwrap_or(true)
                } else {
                    glob == part
                };
                if !matched {
                    return false;
                }
            }
        }
    }
    reach.len() > dir_parts.len()
}

/// BuildKit's choice of ignore file: `<Dockerfile name>.dockerignore` next to the Dockerfile
/// (e.g. `sub/app.Dockerfile.dockerignore`), else `<context>/.dockerignore`, else none.
pub fn find_ignore_file(context_dir: &Path, dockerfile: &Path) -> Option<PathBuf> {
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        let dockerfile = if dockerfile.is_absolute() {
            dockerfile.to_path_buf()
        } else {
            context_dir.join(dockerfile)
        };
        let candidate = dockerfile.with_file_name(specific);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let default = context_dir.join(".dockerignore");
    default.is_file().then_some(default)
}

#[cfg(test)]
mod tests;
