//! Table tests for `.dockerignore` semantics. Most of these cases (same patterns, same kind of
//! tree) are also run against Docker + BuildKit by `tests/differential/dockerignore.sh`.

use super::*;

/// (ignore file, [(path, excluded?)]).
type Case = (&'static str, &'static [(&'static str, bool)]);

const CASES: &[Case] = &[
    // An exception after a wildcard re-includes one file.
    (
        "*.md\n!README.md",
        &[
            ("a.md", true),
            ("README.md", false),
            ("docs/x.md", false),
            ("b.txt", false),
        ],
    ),
    // A directory excluded excludes its contents; an exception reaches inside it.
    (
        "dir\n!dir/keep",
        &[
            ("dir", true),
            ("dir/x", true),
            ("dir/keep", false),
            ("dir/keep/inner", false),
            ("dirx", false),
        ],
    ),
    (
        "**/*.go",
        &[
            ("a.go", true),
            ("x/y/a.go", true),
            ("a.go/b", true),
            ("a.golang", false),
            ("x/go", false),
        ],
    ),
    ("**", &[("a", true), ("a/b", true), (".dockerignore", true)]),
    (
        "a/**/b",
        &[
            ("a/b", true),
            ("a/x/b", true),
            ("a/x/y/b", true),
            ("a/b/c", true),
            ("b", false),
            ("x/a/b", false),
        ],
    ),
    // Anchored at the root, a leading `/` or `./` changes nothing.
    ("/abs", &[("abs", true), ("x/abs", false)]),
    ("./x", &[("x", true), ("y/x", false)]),
    ("x/", &[("x", true), ("x/y", true), ("xy", false)]),
    (
        "[a-c]",
        &[("a", true), ("b", true), ("d", false), ("ab", false)],
    ),
    ("\\*", &[("*", true), ("a", false)]),
    ("a\\?", &[("a?", true), ("ab", false)]),
    // `#` is a comment only in the first column.
    ("#comment\n #not", &[("#comment", false), ("#not", true)]),
    (
        "dir/*",
        &[
            ("dir", false),
            ("dir/a", true),
            ("dir/a/b", true),
            ("dir2/a", false),
        ],
    ),
    // Last matching line wins, so order matters.
    ("*.txt\n!keep.txt", &[("keep.txt", false), ("a.txt", true)]),
    ("!keep.txt\n*.txt", &[("keep.txt", true), ("a.txt", true)]),
    // `..` is cleaned lexically; what still escapes the context matches nothing.
    ("a/../b", &[("b", true), ("a", false), ("a/b", false)]),
    ("a/b/../c", &[("a/c", true), ("a/b", false)]),
    ("..", &[("a", false), ("..", true)]),
    ("../*", &[("x", false), ("a/x", false)]),
    ("*", &[("a", true), ("a/b", true), (".hidden", true)]),
    ("*/", &[("a", true), ("a/b", true)]),
    ("a?c", &[("abc", true), ("a/c", false), ("ac", false)]),
    (
        "**/node_modules",
        &[
            ("node_modules", true),
            ("a/node_modules/x", true),
            ("xnode_modules", false),
        ],
    ),
    // Docker's quirk: a leading `**` not followed by `/` is a plain suffix test.
    (
        "**node_modules",
        &[("xnode_modules", true), ("a/node_modules", true)],
    ),
    (
        "**.log",
        &[("a/b.log", true), ("b.log", true), ("log", false)],
    ),
    (
        "node_modules/**",
        &[
            ("node_modules", false),
            ("node_modules/x", true),
            ("node_modules/x/y", true),
        ],
    ),
    // `!` inside a class is a literal; only `^` negates.
    ("[!a]*", &[("!x", true), ("ax", true), ("bx", false)]),
    ("[^a]*", &[("bx", true), ("ax", false)]),
    (
        "**\n!src/**",
        &[
            ("src", true),
            ("src/a", false),
            ("src/a/b", false),
            ("lib", true),
        ],
    ),
    (
        "*\n!src",
        &[
            ("src", false),
            ("src/a", false),
            ("lib", true),
            ("lib/a", true),
        ],
    ),
    (
        "src\n!src/a\nsrc/a/b",
        &[
            ("src/a", false),
            ("src/a/b", true),
            ("src/a/c", false),
            ("src/b", true),
        ],
    ),
    ("  foo  ", &[("foo", true), ("  foo  ", false)]),
    ("!  keep\nkeep2", &[("keep", false), ("keep2", true)]),
    (
        "foo/bar/",
        &[("foo/bar/x", true), ("foo/bar", true), ("foo", false)],
    ),
    ("a\r\nb\r\n", &[("a", true), ("b", true), ("c", false)]),
    ("\u{feff}a", &[("a", true)]),
    ("a b", &[("a b", true), ("a", false)]),
    (
        ".git",
        &[
            (".git", true),
            (".git/HEAD", true),
            (".gitignore", false),
            ("x/.git", false),
        ],
    ),
    (
        "*.md\n!README*.md\nREADME-secret.md",
        &[
            ("README.md", false),
            ("README-secret.md", true),
            ("a.md", true),
        ],
    ),
    (
        "docs\n!docs/**/*.md",
        &[
            ("docs/a/b.md", false),
            ("docs/a.md", false),
            ("docs/x.txt", true),
        ],
    ),
    // Regex metacharacters with no glob meaning are literal.
    ("{a,b}", &[("{a,b}", true), ("a", false)]),
    ("a+b", &[("a+b", true), ("aab", false)]),
    ("a.b", &[("a.b", true), ("axb", false)]),
    ("a.b*", &[("a.bc", true), ("axbc", false)]),
    ("$x", &[("$x", true)]),
    ("(x)|y", &[("(x)|y", true), ("y", false)]),
    (
        "[a-c]/[0-9]",
        &[("b/5", true), ("b/x", false), ("d/5", false)],
    ),
    ("ü*", &[("über", true), ("uber", false)]),
    ("?", &[("a", true), ("ab", false), ("a/b", true)]),
    ("/", &[("a", false)]),
    ("**/", &[("a", true), ("a/b", true)]),
    ("a/**/", &[("a", false), ("a/b", true)]),
    ("!*.md", &[("a.md", false)]),
    (
        "*/*/c",
        &[("a/b/c", true), ("a/c", false), ("a/b/c/d", true)],
    ),
    ("a/*/c", &[("a/x/c", true), ("a/x/y/c", false)]),
    ("\\[x\\]", &[("[x]", true), ("x", false)]),
    ("a[b]c", &[("abc", true), ("a[b]c", false)]),
    (
        "**/*.txt\n!important/*.txt",
        &[
            ("x/a.txt", true),
            ("important/a.txt", false),
            ("important/sub/a.txt", true),
        ],
    ),
    ("# only comments\n\n   \n", &[("a", false)]),
    (
        "Dockerfile\n.dockerignore",
        &[
            ("Dockerfile", true),
            (".dockerignore", true),
            ("sub/Dockerfile", false),
        ],
    ),
    // A later exclusion of the parent excludes the re-included file again; an exception of the
    // parent re-includes everything below it.
    ("a\n!a/b\na", &[("a/b", true), ("a", true)]),
    ("a/b\n!a", &[("a/b", false), ("a", false)]),
    (
        "*\n!*.go\nvendor",
        &[
            ("main.go", false),
            ("vendor", true),
            ("vendor/x.go", true),
            ("README", true),
        ],
    ),
];

#[test]
fn dockerignore_table() {
    let mut rows = 0;
    for (text, checks) in CASES {
        let ignore = DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        for (path, want) in *checks {
            assert_eq!(
                ignore.is_excluded(path, false),
                *want,
                "ignore {text:?}, path {path:?}"
            );
            rows += 1;
        }
    }
    assert!(rows >= 80, "only {rows} rows");
}

#[test]
fn walker_matches_agree_with_stateless_matches() {
    // The walker's incremental parent matches must give the same answers as is_excluded.
    for (text, checks) in CASES {
        let ignore = DockerIgnore::parse(text).unwrap();
        for (path, _) in *checks {
            let mut parent = ignore.root_matches();
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() {
                parent = ignore.dir_matches(&parts[..i].join("/"), &parent);
            }
            assert_eq!(
                ignore.is_excluded_in(path, &parent),
                ignore.is_excluded(path, false),
                "{text:?} {path:?} as file"
            );
            let own = ignore.dir_matches(path, &parent);
            assert_eq!(
                ignore.is_excluded_dir(path, &own),
                ignore.is_excluded(path, true),
                "{text:?} {path:?} as dir"
            );
        }
    }
}

#[test]
fn bad_patterns_name_their_line() {
    let cases = [
        ("!", 1),
        ("ok\n[", 2),
        ("a\n\nb[", 3),
        ("x\\", 1),
        ("[z-a]", 1),
        ("ok\n!/", 2),
        ("# c\n[]a]", 2),
    ];
    for (text, want_line) in cases {
        match DockerIgnore::parse(text) {
            Err(ContextError::BadIgnorePattern { line, .. }) => {
                assert_eq!(line, want_line, "{text:?}")
            }
            other => panic!("{text:?}: expected a bad pattern error, got {other:?}"),
        }
    }
    let message = DockerIgnore::parse("a\n[").unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid .dockerignore pattern \"[\" on line 2: syntax error in pattern"
    );
}

#[test]
fn can_skip_dir_only_when_no_exception_reaches_inside() {
    let cases: &[(&str, &str, bool)] = &[
        ("dir", "dir", true),
        ("dir", "other", false),
        ("dir\n!dir/keep", "dir", false),
        ("dir\n!**/keep", "dir", false),
        ("dir\n!other/keep", "dir", true),
        ("*\n!src/*.rs", "lib", true),
        ("*\n!src/*.rs", "src", false),
        ("a\n!a/b/c", "a", false),
        ("a\n!a/b/c", "a/x", true),
        ("a\n!a/b/c", "a/b", false),
        ("a\n!a/b/c", "a/b/c", false),
        ("a\n!a/[bc]", "a", false),
        ("a\n!a", "a", false),
    ];
    for (text, dir, want) in cases {
        let ignore = DockerIgnore::parse(text).unwrap();
        assert_eq!(ignore.can_skip_dir(dir), *want, "{text:?} {dir:?}");
    }
}

#[test]
fn patterns_are_normalized_like_docker() {
    let ignore = DockerIgnore::parse("/a/\n! ./b//c\n  #x \n#y\n**/").unwrap();
    assert_eq!(ignore.patterns(), ["a", "!b/c", "#x", "**"]);
}

#[test]
fn find_ignore_file_prefers_the_dockerfile_specific_one() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    std::fs::create_dir(ctx.join("sub")).unwrap();
    assert_eq!(find_ignore_file(ctx, Path::new("Dockerfile")), None);
    std::fs::write(ctx.join(".dockerignore"), "x").unwrap();
    assert_eq!(
        find_ignore_file(ctx, Path::new("sub/app.Dockerfile")),
        Some(ctx.join(".dockerignore"))
    );
    std::fs::write(ctx.join("sub/app.Dockerfile.dockerignore"), "y").unwrap();
    assert_eq!(
        find_ignore_file(ctx, Path::new("sub/app.Dockerfile")),
        Some(ctx.join("sub/app.Dockerfile.dockerignore"))
    );
    assert_eq!(
        find_ignore_file(ctx, &ctx.join("sub/app.Dockerfile")),
        Some(ctx.join("sub/app.Dockerfile.dockerignore"))
    );
    // A Dockerfile-specific file in the context root does not apply to a Dockerfile elsewhere.
    std::fs::write(ctx.join("app.Dockerfile.dockerignore"), "z").unwrap();
    assert_eq!(
        find_ignore_file(ctx, Path::new("other/app.Dockerfile")),
        Some(ctx.join(".dockerignore"))
    );
}
