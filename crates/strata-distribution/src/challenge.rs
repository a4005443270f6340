//! `WWW-Authenticate` challenges (RFC 7235): `Bearer realm="https://auth/token",
//! service="registry",scope="repository:a:pull"`, `Basic realm="x"`, several per header.

use std::collections::BTreeMap;

/// One challenge: the scheme (lower-cased) and its parameters (names lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses every challenge of one header value. Malformed parts are skipped: a registry's
/// odd header should leave the well-formed challenges usable.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let ws = |b: u8| b == b' ' || b == b'\t';
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        // Separators; a stray `=` (the padding of a token68) is skipped with them.
        p.skip(|b| ws(b) || b == b',' || b == b'=');
        let Some(token) = p.token() else {
            // Not a token where one must be: give up on the rest.
            break;
        };
        p.skip(ws);
        // `name=value` belongs to the challenge before it; a bare token starts a new one.
        if p.peek() == Some(b'=') {
            if let Some(last) = out.last_mut() {
                p.i += 1;
                p.skip(ws);
                let value = if p.peek() == Some(b'"') {
                    p.quoted()
                } else {
                    p.token()
                };
                if let Some(value) = value {
                    last.params.insert(token.to_ascii_lowercase(), value);
                }
                continue;
            }
        }
        out.push(Challenge {
            scheme: token.to_ascii_lowercase(),
            params: BTreeMap::new(),
        });
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    /// RFC 7230 `token` (tchar+), plus `/` and `=`-free token68 characters.
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted-string with `\` escapes; an unterminated one runs to the end.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                b => out.push(b),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: &str) -> Challenge {
        let mut all = parse_challenges(h);
        assert_eq!(all.len(), 1, "{h}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn docker_hub_bearer_challenge() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn basic_spacing_case_and_escapes() {
        let c = one(r#"BASIC  Realm = "a \"quoted\" realm" , charset=UTF-8"#);
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some(r#"a "quoted" realm"#));
        assert_eq!(c.param("charset"), Some("UTF-8"));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let all = parse_challenges(
            r#"Basic realm="r1", Bearer realm="https://t/token",service="s", Negotiate"#,
        );
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(all[1].param("service"), Some("s"));
        assert_eq!(all[0].param("realm"), Some("r1"));
    }

    #[test]
    fn token68_and_garbage_do_not_panic() {
        assert_eq!(one("Basic dXNlcjpwYXNz==").scheme, "basic");
        for h in [
            "",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer ,realm=x",
            "é",
        ] {
            let _ = parse_challenges(h);
        }
        assert_eq!(
            one("Bearer realm=\"unterminated").param("realm"),
            Some("unterminated")
        );
    }
}
