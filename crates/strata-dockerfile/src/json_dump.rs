//! `strata dockerfile parse --json`: one JSON object per instruction (see docs/dockerfile-json.md).

use serde_json::{json, Map, Value};

use crate::ast::{Args, Dockerfile, Instruction};

/// The JSON dump of a parsed Dockerfile: an array with one object per instruction.
pub fn to_json(df: &Dockerfile) -> Value {
    Value::Array(df.instructions.iter().map(instruction_json).collect())
}

fn instruction_json(inst: &Instruction) -> Value {
    let mut obj = Map::new();
    obj.insert("line".into(), json!(inst.span.start_line));
    obj.insert("end_line".into(), json!(inst.span.end_line));
    obj.insert("instruction".into(), json!(inst.kind.as_str()));
    let flags: Vec<String> = inst.flags.iter().map(|f| f.text()).collect();
    obj.insert("flags".into(), json!(flags));
    obj.insert("json_form".into(), json!(inst.args.is_json()));
    let args = match &inst.args {
        Args::Exec(v) | Args::Words(v) => json!(v),
        Args::Shell(s) => json!(s),
        Args::KeyValues(pairs) => {
            let flat: Vec<&str> = pairs
                .iter()
                .flat_map(|(k, v)| [k.as_str(), v.as_str()])
                .collect();
            json!(flat)
        }
        Args::Healthcheck { test, command } => {
            obj.insert("healthcheck".into(), json!(test.to_ascii_uppercase()));
            match command.as_deref() {
                Some(Args::Shell(s)) => json!(s),
                Some(Args::Exec(v)) => json!(v),
                _ => json!([]),
            }
        }
        Args::Trigger(t) => {
            obj.insert("trigger".into(), instruction_json(t));
            json!([t.original.trim()])
        }
    };
    obj.insert("args".into(), args);
    if !inst.heredocs.is_empty() {
        let docs: Vec<Value> = inst
            .heredocs
            .iter()
            .map(|h| {
                let mut d = json!({
                    "name": h.name,
                    "content": h.content,
                    "expand": h.expand,
                    "chomp": h.chomp,
                });
                if let (Some(fd), Some(o)) = (h.file_descriptor, d.as_object_mut()) {
                    o.insert("fd".into(), json!(fd));
                }
                d
            })
            .collect();
        obj.insert("heredocs".into(), json!(docs));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_shapes() {
        let df = crate::parse(
            "FROM a AS b\nRUN --network=none echo \\\n  hi\nCMD [\"x\"]\nENV A=1 B=2\nHEALTHCHECK CMD true\nCOPY <<EOF /f\nhello\nEOF\n",
        )
        .unwrap();
        let v = to_json(&df);
        assert_eq!(v[0]["args"], json!(["a", "AS", "b"]));
        assert_eq!(v[1]["flags"], json!(["--network=none"]));
        assert_eq!(v[1]["args"], json!("echo   hi"));
        assert_eq!(
            (v[1]["line"].clone(), v[1]["end_line"].clone()),
            (json!(2), json!(3))
        );
        assert_eq!(v[2]["json_form"], json!(true));
        assert_eq!(v[3]["args"], json!(["A", "1", "B", "2"]));
        assert_eq!(
            (v[4]["healthcheck"].clone(), v[4]["args"].clone()),
            (json!("CMD"), json!("true"))
        );
        assert_eq!(
            v[5]["heredocs"][0],
            json!({"name": "EOF", "content": "hello\n", "expand": true, "chomp": false})
        );
        assert!(v[0].get("heredocs").is_none());
    }
}
