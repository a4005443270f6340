//! Repository names, tags and the repository globs of the config's access rules and quotas.

/// Longest repository name accepted (Distribution's limit).
pub(crate) const MAX_NAME: usize = 255;

/// A repository name of the OCI grammar (strata-oci's, as for image references), at most
/// [`MAX_NAME`] bytes.
pub(crate) fn valid_repository(name: &str) -> bool {
    name.len() <= MAX_NAME && strata_oci::is_repository_path(name)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Matches a repository name against a glob: `*` is any run of characters within one
/// path component, `**` any run including `/` (so `team/**` is everything under `team/`
/// and `**` is everything), `?` one character other than `/`.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                // `a/**` also matches `a` itself
                if rest.is_empty() {
                    return true;
                }
                (0..=n.len()).any(|i| go(rest, &n[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                let mut i = 0;
                loop {
                    if go(rest, &n[i..]) {
                        return true;
                    }
                    if i >= n.len() || n[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(b'?') => !n.is_empty() && n[0] != b'/' && go(&p[1..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    if let Some(prefix) = pattern.strip_suffix("/**") {
        if name == prefix {
            return true;
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_oci_grammar() {
        for ok in [
            "a",
            "library/busybox",
            "a-b/c__d/e.f",
            "a---b",
            "docker.io/library/node",
            "0/1",
        ] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a_.b",
            "_a",
            "a/_manifests",
            "a b",
            "a/../b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
        assert!(!valid_repository(&"a".repeat(256)));
    }

    #[test]
    fn tags() {
        assert!(valid_tag("latest"));
        assert!(valid_tag("_v1.2-rc"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a/b"));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(!valid_tag(""));
    }

    #[test]
    fn globs() {
        assert!(glob_matches("**", "a/b/c"));
        assert!(glob_matches("team/*", "team/app"));
        assert!(!glob_matches("team/*", "team/app/sub"));
        assert!(glob_matches("team/**", "team/app/sub"));
        assert!(glob_matches("team/**", "team"));
        assert!(!glob_matches("team/**", "teams/x"));
        assert!(glob_matches("*/public", "x/public"));
        assert!(glob_matches("app-?", "app-1"));
        assert!(!glob_matches("app-?", "app-12"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("a/**/z", "a/b/c/z"));
    }
}
