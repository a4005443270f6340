//! Fuzz target: word expansion, ARG/ENV scoping and lint must never panic, whatever the input.
//! The first byte picks the escape character; the rest is both a word and a Dockerfile.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_dockerfile::{lint, resolve, Lexer, LintOptions, ResolveOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let escape = if first & 1 == 0 { '\\' } else { '`' };
    let env: Vec<(String, String)> = [
        ("A", "a b"),
        ("E", ""),
        ("P", "/usr/local/bin"),
        ("S", "*?["),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lexer = Lexer::new(escape)
        .keep_quotes(first & 2 != 0)
        .keep_escapes(first & 4 != 0);
    let lexer = lexer
        .literal_quotes(first & 8 != 0)
        .keep_unset(first & 16 != 0);
    let word = lexer.expand_word_with_matches(text, &env);
    let words = lexer.expand_words(text, &env);
    assert_eq!(
        word.is_ok(),
        words.is_ok(),
        "one pass fails, the other does not: {text:?}"
    );
    // Text without anything special comes out unchanged.
    if first & 31 == 0 && !text.contains(['$', '\'', '"', '\\', '<']) {
        assert_eq!(word.map(|e| e.value).ok().as_deref(), Some(text));
    }
    if let Ok(df) = strata_dockerfile::parse_syntax(text) {
        let opts = ResolveOptions {
            build_args: [("A".to_string(), "1".to_string())].into(),
            ..ResolveOptions::default()
        };
        let _ = resolve(&df, &opts);
        let _ = lint(&df, &LintOptions::default());
    }
});
