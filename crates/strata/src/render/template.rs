//! The part of Go's text/template that `--format` strings use in practice:
//! `{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`, and `\t` `\n` escapes
//! (a table header is not printed for templates, as Docker does without `table`).

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TemplateError {
    #[error("template: unclosed action in {0:?}")]
    Unclosed(String),
    #[error("template: unsupported action {{{{{0}}}}}: use {{{{.Field}}}} or {{{{json .Field}}}}")]
    Unsupported(String),
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
    if let Some(path) = action.strip_prefix("json ") {
        let v =
            lookup(path.trim(), data).ok_or_else(|| TemplateError::Unsupported(action.into()))?;
        return Ok(v.to_string());
    }
    if action.starts_with('.') {
        let v = lookup(action, data).ok_or_else(|| TemplateError::Unsupported(action.into()))?;
        return Ok(plain(v));
    }
    Err(TemplateError::Unsupported(action.to_string()))
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
            None => return Some(&Value::Null),
        };
    }
    Some(v)
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
}
