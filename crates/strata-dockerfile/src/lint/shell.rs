//! Just enough shell for lint: a RUN's script split into simple commands and their words.
//!
//! Quotes group words (and are removed), `&&`, `||`, `;`, `|`, `&`, newlines and parentheses
//! separate commands. Expansions, redirections and functions are not interpreted: a rule that
//! looks for `apt-get install` needs words, not a shell.

/// One simple command: its words, leading `NAME=value` assignments and `sudo` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    pub(crate) words: Vec<String>,
}

impl SimpleCommand {
    /// The program name without its directory (`/usr/bin/apt-get` → `apt-get`).
    pub(crate) fn program(&self) -> Option<&str> {
        self.words
            .first()
            .map(|w| w.rsplit('/').next().unwrap_or(w))
    }

    /// The arguments after the program.
    pub(crate) fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// The first argument that is not an option (`apt-get -y install x` → `install`), skipping
    /// the value after any option in `with_value` (`-o X=1`).
    pub(crate) fn subcommand(&self, with_value: &[&str]) -> Option<&str> {
        let mut args = self.args().iter().map(String::as_str);
        while let Some(a) = args.next() {
            if with_value.contains(&a) {
                args.next();
            } else if !a.starts_with('-') {
                return Some(a);
            }
        }
        None
    }

    /// Whether any argument equals `flag`.
    pub(crate) fn has_arg(&self, flag: &str) -> bool {
        self.args().iter().any(|a| a == flag)
    }
}

/// Splits a script into simple commands.
pub(crate) fn commands(script: &str) -> Vec<SimpleCommand> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let finish_command = |words: &mut Vec<String>, out: &mut Vec<SimpleCommand>| {
        let taken = std::mem::take(words);
        let rest: Vec<String> = taken
            .into_iter()
            .skip_while(|w| is_assignment(w) || w == "sudo" || w == "exec")
            .collect();
        if !rest.is_empty() {
            out.push(SimpleCommand { words: rest });
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                // A backslash-newline is a continuation; anything else is escaped.
                match chars.next() {
                    Some('\n') | None => {}
                    Some(e) => {
                        in_word = true;
                        word.push(e);
                    }
                }
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            ' ' | '\t' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            // `(`, `{` and `}` only separate at the start of a word (`x{a,b}` is one word).
            '&' | '|' | ';' | '\n' | ')' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                finish_command(&mut words, &mut out);
            }
            '(' | '{' | '}' if !in_word => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                finish_command(&mut words, &mut out);
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    finish_command(&mut words, &mut out);
    out
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_simple_commands() {
        let cases: &[(&str, &[&[&str]])] = &[
            (
                "apt-get update && apt-get install -y x",
                &[&["apt-get", "update"], &["apt-get", "install", "-y", "x"]],
            ),
            ("echo 'a && b'; ls", &[&["echo", "a && b"], &["ls"]]),
            (
                "DEBIAN_FRONTEND=noninteractive sudo apt-get -q install x",
                &[&["apt-get", "-q", "install", "x"]],
            ),
            ("cd /x \\\n && make", &[&["cd", "/x"], &["make"]]),
            (
                "(cd /x || exit 1) | tee",
                &[&["cd", "/x"], &["exit", "1"], &["tee"]],
            ),
            (
                "echo \"say \\\"hi\\\"\" # cd /x",
                &[&["echo", "say \"hi\""]],
            ),
            ("a=1", &[]),
            ("x{a,b} &", &[&["x{a,b}"]]),
        ];
        for (script, want) in cases {
            let got: Vec<Vec<String>> = commands(script).into_iter().map(|c| c.words).collect();
            assert_eq!(got, *want, "{script:?}");
        }
    }

    #[test]
    fn names_program_and_subcommand() {
        let c = &commands("/usr/bin/apt-get -o X=1 --quiet install -y curl")[0];
        assert_eq!(c.program(), Some("apt-get"));
        assert_eq!(c.subcommand(&["-o"]), Some("install"));
        assert_eq!(c.subcommand(&[]), Some("X=1"));
        assert!(c.has_arg("-y"));
        let c = &commands("apt-get -y")[0];
        assert_eq!(c.subcommand(&[]), None);
    }
}
