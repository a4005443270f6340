//! The parse error: where (line, column), what, and an optional hint; rendered with the offending line.

use std::fmt::Write as _;

/// A Dockerfile the parser rejects.
///
/// Lines and columns are 1-based; columns count characters. `end_col` is exclusive and only set when
/// the error is about a precise piece of the line (a keyword, a flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub end_col: Option<usize>,
    /// Lower-case, no trailing period; keeps BuildKit's core words.
    pub message: String,
    /// What was expected, or how to fix it.
    pub hint: Option<String>,
}

impl ParseError {
    /// An error about a whole line.
    pub fn at_line(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            col: 1,
            end_col: None,
            message: message.into(),
            hint: None,
        }
    }

    /// An error about columns `col..end_col` of `line`.
    pub fn at(line: usize, col: usize, end_col: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            col,
            end_col: Some(end_col.max(col + 1)),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the error like a compiler does:
    ///
    /// ```text
    /// Dockerfile:3:1: unknown instruction: COPPY (did you mean COPY?)
    ///    3 | COPPY . /app
    ///      | ^^^^^
    /// ```
    pub fn render(&self, source: &str, file_name: &str) -> String {
        let mut out = format!(
            "{}:{}:{}: {}\n",
            file_name, self.line, self.col, self.message
        );
        let text = source
            .split('\n')
            .nth(self.line.saturating_sub(1))
            .map(|l| l.trim_end_matches('\r'));
        if let Some(text) = text.filter(|t| self.line > 0 && !t.trim().is_empty()) {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs would shift the caret; show them as one space each.
            let shown: String = text
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let _ = writeln!(out, " {number} | {shown}");
            let line_len = shown.chars().count();
            let start = self.col.max(1);
            let end = match self.end_col {
                Some(e) => e,
                None => line_len + 1,
            }
            .max(start + 1);
            let carets = "^".repeat(end - start);
            let _ = writeln!(out, " {pad} | {}{carets}", " ".repeat(start - 1));
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "hint: {hint}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_keyword() {
        let src = "FROM x\nRUN a\nCOPPY . /app\n";
        let e = ParseError::at(3, 1, 6, "unknown instruction: COPPY (did you mean COPY?)");
        assert_eq!(
            e.render(src, "Dockerfile"),
            "Dockerfile:3:1: unknown instruction: COPPY (did you mean COPY?)\n 3 | COPPY . /app\n   | ^^^^^\n"
        );
    }

    #[test]
    fn render_whole_line_with_hint() {
        let src = "FROM x\nSHELL /bin/sh -c";
        let e = ParseError::at_line(2, "SHELL requires the arguments to be in JSON form")
            .with_hint("write SHELL [\"/bin/sh\", \"-c\"]");
        let r = e.render(src, "df");
        assert!(r.starts_with("df:2:1: SHELL requires"));
        assert!(r.contains(" 2 | SHELL /bin/sh -c\n   | ^^^^^^^^^^^^^^^^\n"));
        assert!(r.ends_with("hint: write SHELL [\"/bin/sh\", \"-c\"]\n"));
    }

    #[test]
    fn render_beyond_the_source_has_no_excerpt() {
        let e = ParseError::at_line(9, "file with no instructions");
        assert_eq!(
            e.render("", "Dockerfile"),
            "Dockerfile:9:1: file with no instructions\n"
        );
    }
}
