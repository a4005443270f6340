//! Table tests of word expansion. Expected values follow BuildKit's lexer; the rows BuildKit in
//! Docker 20.10 also supports were checked with `tests/differential/expand.sh`.

use super::*;

fn env() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("NULL", ""),
        ("KOREAN", "한국어"),
        ("hi", "hi"),
        ("path", "/usr/local/bin"),
        ("file", "archive.tar.gz"),
        ("url", "http://example.com/a/b"),
        ("dollar", "$x"),
        ("star", "a*b"),
        ("space", "abc  def"),
        ("leading", "  ab c"),
        ("trailing", "ab c   "),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `Ok(value)` or `Err(part of the error message)`.
type Want = Result<&'static str, &'static str>;

const WORDS: &[(&str, Want)] = &[
    // Plain text, quotes and escapes outside quotes.
    ("hello", Ok("hello")),
    ("he'll'o", Ok("hello")),
    ("he'llo", Err("matching '")),
    ("he\\'llo", Ok("he'llo")),
    ("he\\\\'llo", Err("matching '")),
    ("abc\\tdef", Ok("abctdef")),
    ("hello\\", Ok("hello")),
    ("hello\\\\", Ok("hello\\")),
    ("a  b", Ok("a  b")),
    ("\"\"", Ok("")),
    ("''", Ok("")),
    ("'a\"b'", Ok("a\"b")),
    ("\"''\"", Ok("''")),
    ("안'녕'하세요", Ok("안녕하세요")),
    ("<<EOF", Ok("<<EOF")),
    ("a<b", Ok("a<b")),
    // Single quotes: everything literal, no escapes.
    ("'abc\\tdef'", Ok("abc\\tdef")),
    ("'hello\\'", Ok("hello\\")),
    ("'hello", Err("matching '")),
    ("'he${XX}'", Ok("he${XX}")),
    ("'$PWD'", Ok("$PWD")),
    ("'\\$PWD'", Ok("\\$PWD")),
    ("'\"hello\"'", Ok("\"hello\"")),
    // Double quotes: expansion inside, escapes only before `"`, `$` and the escape char.
    ("\"abc\\tdef\"", Ok("abc\\tdef")),
    ("\"abc\\\\tdef\"", Ok("abc\\tdef")),
    ("\"hello", Err("matching \"")),
    ("\"hello\\\"", Err("matching \"")),
    ("\"hel'lo\"", Ok("hel'lo")),
    ("\"he${PWD}\"", Ok("he/home")),
    ("\"he'$PWD'\"", Ok("he'/home'")),
    ("\"he\\$PWD\"", Ok("he$PWD")),
    ("\"he\\\\$PWD\"", Ok("he\\/home")),
    ("\"a\\\"b\"", Ok("a\"b")),
    ("\"a\\b\"", Ok("a\\b")),
    ("\"$PWD$SHELL\"", Ok("/homebash")),
    ("\"${PWD:-x}\"", Ok("/home")),
    // `$` that starts no name stays literal.
    ("$", Ok("$")),
    ("a$", Ok("a$")),
    ("$.", Ok("$.")),
    ("he$.x", Ok("he$.x")),
    ("$ x", Ok("$ x")),
    ("$/", Ok("$/")),
    // Names.
    ("he$PWD", Ok("he/home")),
    ("he$pwd.", Ok("he.")),
    ("$PWD/bin", Ok("/home/bin")),
    ("$PWD_x", Ok("")),
    ("${PWD}_x", Ok("/home_x")),
    ("${PWD}${SHELL}", Ok("/homebash")),
    ("$_", Ok("")),
    ("é$PWD", Ok("é/home")),
    ("$é", Ok("")),
    ("안녕$KOREAN", Ok("안녕한국어")),
    ("${dollar}", Ok("$x")),
    ("he\\$PWD", Ok("he$PWD")),
    ("he\\\\$PWD", Ok("he\\/home")),
    ("\\${}", Ok("${}")),
    ("he\\${}xx", Ok("he${}xx")),
    // Positional and special parameters are names that are never set.
    ("he$1x", Ok("hex")),
    ("$12x", Ok("x")),
    ("$1", Ok("")),
    ("${1}", Ok("")),
    ("${1:-bbb}", Ok("bbb")),
    ("${1:+bbb}", Ok("")),
    ("$@", Ok("")),
    ("$$", Ok("")),
    ("$$x", Ok("x")),
    ("$#", Ok("")),
    ("${#}", Ok("")),
    ("$*x", Ok("x")),
    ("$0", Ok("")),
    // Braces.
    ("he${hi}xx", Ok("hehixx")),
    ("he${PWD}", Ok("he/home")),
    ("he${XX}", Ok("he")),
    ("${aaa}}", Ok("}")),
    ("${}", Err("bad substitution")),
    ("he${}xx", Err("bad substitution")),
    ("${{aaa}", Err("bad substitution")),
    ("${:}", Err("bad substitution")),
    ("${:-bbb}", Err("bad substitution")),
    ("he${.}", Err("unsupported modifier (.)")),
    ("${a b}", Err("unsupported modifier ( )")),
    ("he${PWD", Err("missing '}'")),
    ("${", Err("missing '}'")),
    ("${aaa", Err("missing '}'")),
    // `-` and `:-`: default when unset (`:` also when empty).
    ("he${XXX:-000}xx", Ok("he000xx")),
    ("he${PWD:-000}xx", Ok("he/homexx")),
    ("he${XXX:-$PWD}xx", Ok("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Ok("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Ok("heyyyxx")),
    ("${XXX-default}", Ok("default")),
    ("${NULL-default}", Ok("")),
    ("${NULL:-default}", Ok("default")),
    ("${PWD-x}", Ok("/home")),
    ("${aaa:-bbb}}", Ok("bbb}")),
    ("${aaa:-bbb {foo}", Ok("bbb {foo")),
    ("${aaa:-bbb", Err("missing '}'")),
    ("${aaa:-bbb ${foo}", Err("missing '}'")),
    ("${aaa:-'bbb}", Err("missing '}'")),
    ("he${XXX:-\\$PWD:}xx", Ok("he$PWD:xx")),
    ("he${XXX:-\\${PWD}z}xx", Ok("he${PWDz}xx")),
    ("${XXX:-a\\}b}", Ok("a}b")),
    ("${XXX:-'a b'}", Ok("a b")),
    ("${XXX:-\"$PWD\"}", Ok("/home")),
    ("${hi:-'a b'}", Ok("hi")),
    ("${XXX:-<<a}", Ok("<<a")),
    // `+` and `:+`: the word when set (`:` also requires non-empty).
    ("he${XXX:+${PWD}}xx", Ok("hexx")),
    ("he${PWD:+${XXX}}xx", Ok("hexx")),
    ("he${PWD:+${SHELL}}xx", Ok("hebashxx")),
    ("he${XXX:+000}xx", Ok("hexx")),
    ("he${PWD:+000}xx", Ok("he000xx")),
    ("he${PWD:+${PWD}:}xx", Ok("he/home:xx")),
    ("${NULL+alt}", Ok("alt")),
    ("${NULL:+alt}", Ok("")),
    ("${XXX+alt}", Ok("")),
    // `?` and `:?`: an error when unset (or empty).
    ("he${XXX?}", Err("XXX: is not allowed to be unset")),
    ("he${XXX:?}", Err("XXX: is not allowed to be unset")),
    ("he${PWD?}", Ok("he/home")),
    ("he${PWD:?}", Ok("he/home")),
    ("he${NULL?}", Ok("he")),
    ("he${NULL:?}", Err("NULL: is not allowed to be empty")),
    ("${XXX:?need it}", Err("XXX: need it")),
    ("${XXX?$PWD}", Err("XXX: /home")),
    // Modifiers BuildKit does not know.
    ("he${XXX:YYY}", Err("unsupported modifier (:Y)")),
    ("he${PWD:=000}xx", Err("unsupported modifier (:=)")),
    ("he${PWD=000}xx", Err("unsupported modifier (=)")),
    ("${file:#x}", Err("unsupported modifier (:#)")),
    ("${file:%x}", Err("unsupported modifier (:%)")),
    ("${file:/x/y}", Err("unsupported modifier (:/)")),
    ("${file:", Err("missing '}'")),
    // `#`, `##`, `%`, `%%`: trim the shortest/longest matching prefix/suffix.
    ("${path#*/}", Ok("usr/local/bin")),
    ("${path##*/}", Ok("bin")),
    ("${path%/*}", Ok("/usr/local")),
    ("${path%%/*}", Ok("")),
    ("${file%.*}", Ok("archive.tar")),
    ("${file%%.*}", Ok("archive")),
    ("${file#*.}", Ok("tar.gz")),
    ("${file##*.}", Ok("gz")),
    ("${file#archive}", Ok(".tar.gz")),
    ("${file#nomatch}", Ok("archive.tar.gz")),
    ("${file%.??}", Ok("archive.tar")),
    ("${file#[a]}", Ok("archive.tar.gz")),
    ("${file#$hi}", Ok("archive.tar.gz")),
    ("${file%$NULL}", Ok("archive.tar.gz")),
    ("${XXX#a}", Ok("")),
    ("${star#a\\*}", Ok("b")),
    ("${star#a*}", Ok("*b")),
    ("${star%\\*b}", Ok("a")),
    ("${file#\\.}", Err("invalid escape")),
    ("${file#\"arch\"}", Ok("ive.tar.gz")),
    ("${file%", Err("missing '}'")),
    // `/` and `//`: replace the first/every (greedy) match.
    ("${file/tar/zip}", Ok("archive.zip.gz")),
    ("${file//a/A}", Ok("Archive.tAr.gz")),
    ("${file/a/A}", Ok("Archive.tar.gz")),
    ("${file/x/y}", Ok("archive.tar.gz")),
    ("${file/.*/}", Ok("archive")),
    ("${file/.*}", Err("missing '/'")),
    ("${file/a}", Err("missing '/'")),
    ("${url//\\//_}", Ok("http:__example.com_a_b")),
    ("${XXX/a/b}", Ok("")),
    ("${file/#a/b}", Ok("archive.tar.gz")),
    ("${file//?/x}", Ok("xxxxxxxxxxxxxx")),
    ("${file/a/$hi}", Ok("hirchive.tar.gz")),
    ("${file/\\x/y}", Err("invalid escape")),
];

#[test]
fn expands_words_like_buildkit() {
    assert!(WORDS.len() >= 100, "table has {} rows", WORDS.len());
    let env = env();
    let lexer = Lexer::new('\\');
    for (word, want) in WORDS {
        let got = lexer.expand_word(word, &env);
        match (want, &got) {
            (Ok(w), Ok(g)) => assert_eq!(g, w, "word {word:?}"),
            (Err(part), Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(part),
                    "word {word:?}: error {msg:?} lacks {part:?}"
                );
            }
            _ => panic!("word {word:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn backtick_escape() {
    let env = env();
    let lexer = Lexer::new('`');
    let cases: &[(&str, Want)] = &[
        ("a`$PWD", Ok("a$PWD")),
        ("a\\$PWD", Ok("a\\/home")),
        ("C:\\path\\x", Ok("C:\\path\\x")),
        ("\"a`\"b\"", Ok("a\"b")),
        ("\"a\\b\"", Ok("a\\b")),
        ("\"a``b\"", Ok("a`b")),
        ("a``", Ok("a`")),
        ("a`", Ok("a")),
        ("a` b", Ok("a b")),
        ("${XXX:-a`}b}", Ok("a}b")),
        ("${star#a\\*}", Ok("b")),
        ("${star#a`*}", Ok("a*b")),
        ("\"a\\\"", Ok("a\\")),
    ];
    for (word, want) in cases {
        let got = lexer.expand_word(word, &env).map_err(|e| e.to_string());
        match want {
            Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "word {word:?}"),
            Err(_) => assert!(got.is_err(), "word {word:?}"),
        }
    }
}

#[test]
fn splits_words_like_buildkit() {
    let env = env();
    let lexer = Lexer::default();
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello${hi}bye", &["hellohibye"]),
        ("hello${space}bye", &["helloabc", "defbye"]),
        ("hello\"${space}\"bye", &["helloabc  defbye"]),
        ("hello \"${space}\"bye", &["hello", "abc  defbye"]),
        ("hello${leading}def", &["hello", "ab", "cdef"]),
        ("hello\"${leading}\" def", &["hello  ab c", "def"]),
        ("hello${trailing}d", &["helloab", "c", "d"]),
        ("hello\\ there", &["hello there"]),
        ("hello\\\" there", &["hello\"", "there"]),
        ("  a   b  ", &["a", "b"]),
        ("\"\"", &[]),
        ("a \"\" b", &["a", "b"]),
        ("80/tcp 443", &["80/tcp", "443"]),
        ("${XXX:-80 81}", &["80", "81"]),
        ("x${XXX:-80 81}y z", &["x80", "81y", "z"]),
        ("'${PWD} x'", &["${PWD} x"]),
        ("<<  EOF x", &["<<  EOF", "x"]),
        ("", &[]),
    ];
    for (text, want) in cases {
        let got = lexer.expand_words(text, &env).unwrap();
        assert_eq!(got, *want, "text {text:?}");
    }
    assert!(lexer.expand_words("hello\" there", &env).is_err());
}

#[test]
fn reports_matched_and_unmatched_names() {
    let env = env();
    let lexer = Lexer::default();
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("${PWD}${XXX:-$SHELL}", &["PWD", "SHELL"], &["XXX"]),
        ("'$PWD'", &[], &[]),
        ("$NULL", &["NULL"], &[]),
        ("${file/a/$hi}", &["file", "hi"], &[]),
        ("${XXX:+$YYY}", &[], &["XXX", "YYY"]),
        ("\\$PWD $1", &[], &["1"]),
    ];
    for (word, matched, unmatched) in cases {
        let got = lexer.expand_word_with_matches(word, &env).unwrap();
        let m: Vec<&str> = got.matched.iter().map(String::as_str).collect();
        let u: Vec<&str> = got.unmatched.iter().map(String::as_str).collect();
        assert_eq!(
            (m.as_slice(), u.as_slice()),
            (*matched, *unmatched),
            "word {word:?}"
        );
    }
}

#[test]
fn options_keep_what_they_say() {
    let env = env();
    let keep_unset = Lexer::default().keep_unset(true);
    let cases = [
        ("$XXX", "$XXX"),
        ("${XXX}", "${XXX}"),
        ("${XXX:-a}", "${XXX:-a}"),
        ("${XXX/a/b}", "${XXX/a/b}"),
        ("$PWD", "/home"),
    ];
    for (word, want) in cases {
        assert_eq!(keep_unset.expand_word(word, &env).unwrap(), want, "{word}");
    }
    let keep_quotes = Lexer::default().keep_quotes(true);
    assert_eq!(
        keep_quotes.expand_word("'a' \"$hi\"", &env).unwrap(),
        "'a' \"hi\""
    );
    let keep_escapes = Lexer::default().keep_escapes(true);
    assert_eq!(
        keep_escapes.expand_word("a\\ b\\$hi", &env).unwrap(),
        "a\\ b\\$hi"
    );
    let literal_quotes = Lexer::default().literal_quotes(true);
    assert_eq!(
        literal_quotes.expand_word("'$hi' \"x\"", &env).unwrap(),
        "'hi' \"x\""
    );
}

#[test]
fn errors_carry_offsets() {
    let env = env();
    let lexer = Lexer::default();
    let cases = [
        ("ab${PWD", 2),
        ("x 'abc", 2),
        ("ab \"c", 3),
        ("é${}", 2),
        ("${A:-${}}", 5),
        ("a${XXX:?}", 1),
    ];
    for (word, offset) in cases {
        let err = lexer.expand_word(word, &env).unwrap_err();
        assert_eq!(err.offset(), offset, "{word}: {err}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let lexer = Lexer::default();
    let ok = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
    assert_eq!(lexer.expand_word(&ok, &()).unwrap(), "x");
    let deep = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
    assert!(matches!(
        lexer.expand_word(&deep, &()),
        Err(ExpandError::TooDeep { .. })
    ));
}

#[test]
fn lookups_distinguish_unset_from_empty() {
    let pairs = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), String::new()),
    ];
    assert_eq!(VarLookup::get(&pairs, "A"), Some(""));
    let map: HashMap<String, String> = pairs.iter().cloned().collect();
    let tree: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let array = [("A", "x")];
    let lexer = Lexer::default();
    assert_eq!(lexer.expand_word("${A-u}${B-u}", &map).unwrap(), "u");
    assert_eq!(lexer.expand_word("${A:-u}${B-u}", &tree).unwrap(), "uu");
    assert_eq!(lexer.expand_word("$A", &array).unwrap(), "x");
    assert_eq!(lexer.expand_word("${A-u}", &()).unwrap(), "u");
}
