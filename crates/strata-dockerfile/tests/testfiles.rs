//! Data-driven parser tests: every `tests/testfiles/<case>/Dockerfile` is parsed; the case holds either
//! `expected.json` (the `to_json` dump of an accepted file) or `error.txt` (the rendered error).
//!
//! `STRATA_BLESS=1 cargo test -p strata-dockerfile --test testfiles` rewrites the expectations; review
//! the diff before keeping it.

use std::fs;
use std::path::Path;

#[test]
fn testfiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testfiles");
    let bless = std::env::var_os("STRATA_BLESS").is_some();
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let source = fs::read_to_string(case.join("Dockerfile")).unwrap();
        let (file, got) = match strata_dockerfile::parse(&source) {
            Ok(df) => {
                let mut json =
                    serde_json::to_string_pretty(&strata_dockerfile::to_json(&df)).unwrap();
                json.push('\n');
                ("expected.json", json)
            }
            Err(e) => ("error.txt", e.render(&source, "Dockerfile")),
        };
        let other = if file == "expected.json" {
            "error.txt"
        } else {
            "expected.json"
        };
        if bless {
            fs::write(case.join(file), &got).unwrap();
            let _ = fs::remove_file(case.join(other));
            continue;
        }
        match fs::read_to_string(case.join(file)) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: {file} differs\n--- want\n{want}\n--- got\n{got}"
            )),
            Err(_) => failures.push(format!("{name}: no {file} (has {other}?); got\n{got}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
