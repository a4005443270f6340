//! The part of Go's text/template that `--format` strings use in practice: fields
//! (`{{.Field}}`, `{{.A.B}}`, `{{.}}`), Docker's template functions `json`, `index`, `join`,
//! `len`, `upper`, `lower`, parentheses and pipes (`{{json (index .Config.Labels "v")}}`,
//! `{{.Config.Cmd | json}}`), string and number literals, and `\t` `\n` escapes (a table
//! header is not printed for templates, as Docker does without `table`). No control flow
//! (`range`, `if`): those are refused with a clear error.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TemplateError {
    #[error("template: unclosed action in {0:?}")]
    Unclosed(String),
    #[error("template: unsupported action {{{{{0}}}}}: use fields, json, index, join, len, upper or lower")]
    Unsupported(String),
    #[error("template: {{{{{action}}}}}: {reason}")]
    Invalid { action: String, reason: String },
}

/// Renders one line per row for `--format`: `json` prints each row as a JSON object
/// (Docker's `{{json .}}`), anything else is a template.
pub(crate) fn render_rows(format: &str, rows: &[Value]) -> Result<String, TemplateError> {
    let mut text = String::new();
    for row in rows {
        if format == "json" {
            text.push_str(&row.to_string());
        } else {
            text.push_str(&render(format, row)?);
        }
        text.push('\n');
    }
    Ok(text)
}

/// Renders `template` against one object.
pub(crate) fn render(template: &str, data: &Value) -> Result<String, TemplateError> {
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(template.clone()))?;
        let action = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push_str(&eval(action, data)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(action: &str, data: &Value) -> Result<String, TemplateError> {
    let tokens = tokenize(action)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        action,
        data,
    };
    let value = parser.pipeline()?;
    if parser.at != tokens.len() {
        return Err(parser.invalid("unexpected text after the expression"));
    }
    Ok(match value {
        Rendered::Value(v) => plain(&v),
        Rendered::Text(t) => t,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field(String),
    Str(String),
    Number(i64),
    Ident(String),
    Open,
    Close,
    Pipe,
}

fn tokenize(action: &str) -> Result<Vec<Token>, TemplateError> {
    let unsupported = || TemplateError::Unsupported(action.to_string());
    let mut tokens = Vec::new();
    let mut chars = action.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '|' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Pipe,
                });
            }
            '"' | '`' => {
                chars.next();
                let mut text = String::new();
                let mut closed = false;
                while let Some((_, ch)) = chars.next() {
                    match ch {
                        _ if ch == c => {
                            closed = true;
                            break;
                        }
                        '\\' if c == '"' => match chars.next().map(|(_, e)| e) {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some(e) => text.push(e),
                            None => break,
                        },
                        _ => text.push(ch),
                    }
                }
                if !closed {
                    return Err(unsupported());
                }
                tokens.push(Token::Str(text));
            }
            _ => {
                let end = action[i..]
                    .find(|ch: char| ch.is_whitespace() || "()|\"`".contains(ch))
                    .map_or(action.len(), |n| i + n);
                let word = &action[i..end];
                while chars.peek().is_some_and(|&(k, _)| k < end) {
                    chars.next();
                }
                tokens.push(if word.starts_with('.') {
                    Token::Field(word.to_string())
                } else if let Ok(n) = word.parse::<i64>() {
                    Token::Number(n)
                } else if word
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                {
                    Token::Ident(word.to_string())
                } else {
                    return Err(unsupported());
                });
            }
        }
    }
    Ok(tokens)
}

/// What an expression gave: a value, or text a function already rendered (`json`, `join`).
#[derive(Debug, Clone)]
enum Rendered {
    Value(Value),
    Text(String),
}

impl Rendered {
    fn into_value(self) -> Value {
        match self {
            Rendered::Value(v) => v,
            Rendered::Text(t) => Value::String(t),
        }
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    action: &'a str,
    data: &'a Value,
}

impl Parser<'_> {
    fn invalid(&self, reason: &str) -> TemplateError {
        TemplateError::Invalid {
            action: self.action.to_string(),
            reason: reason.to_string(),
        }
    }

    /// `command ( '|' command )*`: each pipe passes its value as the next command's last
    /// argument.
    fn pipeline(&mut self) -> Result<Rendered, TemplateError> {
        let mut value = self.command(None)?;
        while self.tokens.get(self.at) == Some(&Token::Pipe) {
            self.at += 1;
            value = self.command(Some(value))?;
        }
        Ok(value)
    }

    /// A function call with its arguments, or a single operand.
    fn command(&mut self, piped: Option<Rendered>) -> Result<Rendered, TemplateError> {
        let Some(Token::Ident(name)) = self.tokens.get(self.at).cloned() else {
            if piped.is_some() {
                return Err(self.invalid("a pipe must lead to a function"));
            }
            return self.operand();
        };
        self.at += 1;
        let mut args = Vec::new();
        while let Some(token) = self.tokens.get(self.at) {
            if matches!(token, Token::Pipe | Token::Close) {
                break;
            }
            args.push(self.operand()?);
        }
        args.extend(piped);
        self.call(&name, args)
    }

    fn operand(&mut self) -> Result<Rendered, TemplateError> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| self.invalid("an operand is missing"))?;
        self.at += 1;
        Ok(match token {
            Token::Field(path) => Rendered::Value(
                lookup(&path, self.data)
                    .cloned()
                    .ok_or_else(|| TemplateError::Unsupported(self.action.to_string()))?,
            ),
            Token::Str(s) => Rendered::Value(Value::String(s)),
            Token::Number(n) => Rendered::Value(Value::from(n)),
            Token::Open => {
                let inner = self.pipeline()?;
                if self.tokens.get(self.at) != Some(&Token::Close) {
                    return Err(self.invalid("unclosed parenthesis"));
                }
                self.at += 1;
                inner
            }
            Token::Ident(_) => {
                self.at -= 1;
                return Err(TemplateError::Unsupported(self.action.to_string()));
            }
            Token::Close | Token::Pipe => return Err(self.invalid("an operand is missing")),
        })
    }

    fn call(&self, name: &str, args: Vec<Rendered>) -> Result<Rendered, TemplateError> {
        let mut args: Vec<Value> = args.into_iter().map(Rendered::into_value).collect();
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(self.invalid(&format!("{name} takes {n} argument(s)")))
            }
        };
        match name {
            "json" => {
                arity(1)?;
                Ok(Rendered::Text(args[0].to_string()))
            }
            "upper" | "lower" => {
                arity(1)?;
                let text = plain(&args[0]);
                Ok(Rendered::Text(if name == "upper" {
                    text.to_uppercase()
                } else {
                    text.to_lowercase()
                }))
            }
            "len" => {
                arity(1)?;
                let n = match &args[0] {
                    Value::Array(a) => a.len(),
                    Value::Object(m) => m.len(),
                    Value::String(s) => s.len(),
                    Value::Null => 0,
                    _ => return Err(self.invalid("len of a value that has no length")),
                };
                Ok(Rendered::Value(Value::from(n)))
            }
            "join" => {
                arity(2)?;
                let sep = plain(&args[1]);
                match &args[0] {
                    Value::Array(items) => Ok(Rendered::Text(
                        items.iter().map(plain).collect::<Vec<_>>().join(&sep),
                    )),
                    Value::Null => Ok(Rendered::Text(String::new())),
                    _ => Err(self.invalid("join needs a list")),
                }
            }
            "index" => {
                if args.len() < 2 {
                    return Err(self.invalid("index takes a value and at least one key"));
                }
                let keys = args.split_off(1);
                let mut v = args.remove(0);
                for key in keys {
                    v = match (v, key) {
                        // A missing key of a map gives the zero value, as Go does for
                        // Docker's map[string]string fields (Labels).
                        (Value::Object(mut m), Value::String(k)) => {
                            m.remove(&k).unwrap_or(Value::String(String::new()))
                        }
                        (Value::Null, Value::String(_)) => Value::String(String::new()),
                        (Value::Array(mut a), Value::Number(n)) => {
                            let i = n
                                .as_u64()
                                .and_then(|i| usize::try_from(i).ok())
                                .filter(|&i| i < a.len())
                                .ok_or_else(|| self.invalid("index out of range"))?;
                            a.swap_remove(i)
                        }
                        _ => return Err(self.invalid("index of a value that cannot be indexed")),
                    };
                }
                Ok(Rendered::Value(v))
            }
            _ => Err(TemplateError::Unsupported(self.action.to_string())),
        }
    }
}

/// `.` is the object itself; `.A.B` walks fields. A missing field prints `<no value>` like Go.
fn lookup<'a>(path: &str, data: &'a Value) -> Option<&'a Value> {
    if path == "." {
        return Some(data);
    }
    let mut v = data;
    for field in path.strip_prefix('.')?.split('.') {
        v = match v.get(field) {
            Some(x) => x,
            None => return Some(omitted_zero_value(field).unwrap_or(&Value::Null)),
        };
    }
    Some(v)
}

/// Docker's inspect JSON leaves out these `omitempty` fields of its Go structs when they are
/// empty, but its templates read the struct and see the zero value: `{{json .Config.StopSignal}}`
/// prints `""`, not `null`. strata renders from the JSON, so it puts the zero value back.
fn omitted_zero_value(field: &str) -> Option<&'static Value> {
    static EMPTY: Value = Value::String(String::new());
    static FALSE: Value = Value::Bool(false);
    match field {
        "StopSignal" | "MacAddress" => Some(&EMPTY),
        "ArgsEscaped" => Some(&FALSE),
        _ => None,
    }
}

/// Go's default printing of a value: strings bare, null as `<no value>`, lists as `[a b]`.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_json() {
        let data =
            serde_json::json!({"Id": "sha256:1", "Config": {"Cmd": ["sh", "-c"], "User": ""}});
        assert_eq!(render("{{.Id}}", &data).unwrap(), "sha256:1");
        assert_eq!(render("{{.Config.Cmd}}", &data).unwrap(), "[sh -c]");
        assert_eq!(
            render("{{json .Config.Cmd}}", &data).unwrap(),
            r#"["sh","-c"]"#
        );
        assert_eq!(render("a\\t{{.Nope}}", &data).unwrap(), "a\t<no value>");
        assert!(render("{{.Id", &data).is_err());
        assert!(render("{{range .X}}", &data).is_err());
    }

    #[test]
    fn renders_docker_template_functions() {
        let data = serde_json::json!({
            "Config": {"Cmd": ["sh", "-c"], "Labels": {"v": "1 2", "k": "x"}, "Env": null}
        });
        let r = |t: &str| render(t, &data);
        assert_eq!(r(r#"{{index .Config.Labels "v"}}"#).unwrap(), "1 2");
        assert_eq!(
            r(r#"{{json (index .Config.Labels "v")}}"#).unwrap(),
            r#""1 2""#
        );
        assert_eq!(
            r(r#"{{json (index .Config.Labels "nope")}}"#).unwrap(),
            r#""""#
        );
        assert_eq!(r("{{index .Config.Cmd 1}}").unwrap(), "-c");
        assert_eq!(r(r#"{{join .Config.Cmd ","}}"#).unwrap(), "sh,-c");
        assert_eq!(r("{{.Config.Cmd | json}}").unwrap(), r#"["sh","-c"]"#);
        assert_eq!(
            r("{{len .Config.Labels}} {{len .Config.Env}}").unwrap(),
            "2 0"
        );
        assert_eq!(r(r#"{{upper (index .Config.Labels "k")}}"#).unwrap(), "X");
        assert_eq!(
            r("{{json .Config.Labels}}").unwrap(),
            r#"{"k":"x","v":"1 2"}"#
        );
        assert!(r("{{index .Config.Cmd 5}}").is_err());
        assert!(r("{{json}}").is_err());
        assert!(r("{{.Config.Cmd | .Id}}").is_err());
        assert!(r(r#"{{index .Config.Labels "v}}"#).is_err());
        assert!(r("{{if .X}}").is_err());
        assert_eq!(
            r("{{json .Config.StopSignal}} {{.Config.ArgsEscaped}}").unwrap(),
            r#""" false"#
        );
    }
}
