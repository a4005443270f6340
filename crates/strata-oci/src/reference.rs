//! Image references (`busybox`, `localhost:5000/a/b:tag`, `name@sha256:…`), parsed and
//! normalized exactly as Docker's `github.com/distribution/reference` does.
//!
//! Grammar (from distribution/reference):
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain "/"] path-component ["/" path-component]*
//! domain     := host [":" port]          host := domain-name | "[" ipv6 "]"
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! ```

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::ReferenceError;

/// The registry Docker Hub images live on, as Docker spells it in full names.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy spelling of Docker Hub, normalized to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Single-component Docker Hub names live under this namespace.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag Docker adds when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path (without domain) distribution/reference accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag the grammar allows.
const TAG_LENGTH_MAX: usize = 128;

/// A normalized image reference: always has a domain and a path; a tag, a digest or both.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes as `docker pull`/`docker run` do (distribution's
    /// `ParseNormalizedNamed` + `TagNameOnly`): `busybox` → `docker.io/library/busybox:latest`.
    /// A reference with both tag and digest keeps both (Docker prints `name:tag@digest`).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalizes without adding `:latest` (distribution's `ParseNormalizedNamed`):
    /// for filters and `docker images <repo>`, where a bare name means "any tag".
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::InvalidFormat {
                input: String::new(),
                reason: "reference is empty".to_string(),
            });
        }
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ReferenceError::HexIdentifier {
                input: s.to_string(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_ascii_lowercase() != remote {
            return Err(ReferenceError::Uppercase {
                input: s.to_string(),
                name: remote.to_string(),
            });
        }
        let parsed = parse_any(&format!("{domain}/{remainder}"), s)?;
        if parsed.domain.is_empty() {
            // The whole string only parsed as a domain-less path (e.g. `a__b.c/x`): Docker
            // would hand back a reference with no registry, which nothing can pull from.
            return Err(ReferenceError::InvalidDomain {
                input: s.to_string(),
                domain: domain.to_string(),
            });
        }
        Ok(parsed)
    }

    /// Builds a reference from parts that are already valid, e.g. a repository name read
    /// back from the store. Checks them as [`Reference::parse`] would.
    pub fn from_parts(
        domain: &str,
        path: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let input = format!("{domain}/{path}");
        let mut r = parse_any(&input, &input)?;
        if r.domain != domain || r.tag.is_some() || r.digest.is_some() {
            return Err(ReferenceError::InvalidFormat {
                input,
                reason: "not a domain and repository path".to_string(),
            });
        }
        if let Some(tag) = tag {
            r = r.with_tag(tag)?;
        }
        r.digest = digest;
        Ok(r)
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`, `a/b`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True when the image lives on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.domain == DEFAULT_DOMAIN
    }

    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as Docker shows it: `busybox`, `user/app`, `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The reference as Docker prints it in `RepoTags`/`RepoDigests` and messages:
    /// `busybox:latest`, `busybox@sha256:…`, `busybox:1.36@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// This repository with `tag` instead of any tag or digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        check_tag(tag, tag)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// This repository pinned to `digest`, keeping the tag (as Docker's `WithDigest`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: self.tag.clone(),
            digest: Some(digest),
        }
    }

    /// This repository with neither tag nor digest.
    pub fn repository(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// Whether this reference can name a tag in a local store, as Docker's reference store
    /// checks: it needs a tag and no digest, and its name must not be `sha256` (which would
    /// make `sha256:<hex>` ambiguous with an image ID).
    pub fn check_taggable(&self) -> Result<(), ReferenceError> {
        let reason = if self.familiar_name() == "sha256" {
            "refusing to create an ambiguous tag using digest algorithm as name"
        } else if self.digest.is_some() {
            "refusing to create a tag with a digest reference"
        } else if self.tag.is_none() {
            "a tag needs a tag name"
        } else {
            return Ok(());
        };
        Err(ReferenceError::NotTaggable {
            input: self.familiar(),
            reason: reason.to_string(),
        })
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest.as_str());
        }
    }
}

impl fmt::Display for Reference {
    /// The full normalized form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    /// The full normalized form, as [`fmt::Display`].
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    /// Parses with [`Reference::parse_named`], so a repository-only reference stays one.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse_named(&s).map_err(serde::de::Error::custom)
    }
}

/// Splits off the registry domain the way Docker decides whether the first path
/// component is a host: it is one if it contains `.` or `:`, is `localhost`, or has
/// upper-case letters (which a repository path cannot have).
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, rest)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, remote) = if maybe_domain == "localhost" {
        (maybe_domain, rest)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_ascii_lowercase() != maybe_domain
    {
        (maybe_domain, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain, remote.to_string())
}

/// distribution's `Parse`: matches the full grammar, no normalization. `input` is what
/// the user typed, for error messages.
fn parse_any(s: &str, input: &str) -> Result<Reference, ReferenceError> {
    match match_reference(s, input) {
        Ok(r) => Ok(r),
        // Docker reports "must be lowercase" when only the case stops the match.
        Err(e @ (ReferenceError::InvalidFormat { .. } | ReferenceError::InvalidDomain { .. }))
            if s.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            match match_reference(&s.to_ascii_lowercase(), input) {
                Ok(_) => Err(ReferenceError::Uppercase {
                    input: input.to_string(),
                    name: s.to_string(),
                }),
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn match_reference(s: &str, input: &str) -> Result<Reference, ReferenceError> {
    let invalid = |reason: &str| ReferenceError::InvalidFormat {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let (name_and_tag, digest_text) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    // The tag is after the last ':' unless a '/' follows it (then the ':' is a port).
    let (name, tag) = match name_and_tag.rfind(':') {
        Some(i) if !name_and_tag[i..].contains('/') => {
            (&name_and_tag[..i], Some(&name_and_tag[i + 1..]))
        }
        _ => (name_and_tag, None),
    };
    if name.is_empty() {
        return Err(invalid("repository name is empty"));
    }
    if let Some(tag) = tag {
        check_tag(tag, input)?;
    }
    let digest = match digest_text {
        None => None,
        Some(d) => Some(parse_digest(d, input)?),
    };
    // The domain is the first component when it looks like a host and the rest is a
    // valid path (the grammar's optional domain group is greedy).
    let bad_path = |path: &str| {
        invalid(&format!(
            "repository path ({path}) must be lower-case letters and digits separated by '.', '_', '__' or '-'"
        ))
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain_and_port(first) && is_remote_name(rest) => (first, rest),
        _ if is_remote_name(name) => ("", name),
        Some((first, rest)) if is_domain_and_port(first) => return Err(bad_path(rest)),
        Some((first, _)) if first.contains(['.', ':', '[']) => {
            return Err(ReferenceError::InvalidDomain {
                input: input.to_string(),
                domain: first.to_string(),
            })
        }
        _ => return Err(bad_path(name)),
    };
    if path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong {
            input: input.to_string(),
            len: path.len(),
        });
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn check_tag(tag: &str, input: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag {
            input: input.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// The digest grammar is `algorithm:hex{32,}`; only sha256 digests are then accepted.
fn parse_digest(text: &str, input: &str) -> Result<Digest, ReferenceError> {
    let wrap = |source| ReferenceError::InvalidDigest {
        input: input.to_string(),
        source,
    };
    Digest::parse(text).map_err(wrap)
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*` for every `/`-separated component.
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// Whether `s` is a repository path of the distribution grammar (`library/busybox`,
/// `team/app-x/y`): `/`-separated components of lower-case letters and digits joined by `.`,
/// `_`, `__` or runs of `-`. No domain, tag or digest; no length limit.
pub fn is_repository_path(s: &str) -> bool {
    !s.is_empty() && is_remote_name(s)
}

fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host [":" port]` where host is a DNS-ish name, an IPv4 address or `[ipv6]`.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(bracketed) = s.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return false;
        };
        let ok = !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (ok, after)
    } else {
        let end = s.find(':').unwrap_or(s.len());
        (s[..end].split('.').all(is_domain_component), &s[end..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    /// (input, normalized Display, familiar) for references that must parse.
    #[test]
    fn valid_references_normalize_like_docker() {
        let d = format!("sha256:{HEX}");
        let long_path = format!("a/{}", "b".repeat(253));
        let long_tag = "t".repeat(128);
        let cases: Vec<(String, String, String)> = vec![
            (
                "busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
                "busybox:1.36".into(),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
            ),
            (
                "index.docker.io/user/app:v2".into(),
                "docker.io/user/app:v2".into(),
                "user/app:v2".into(),
            ),
            (
                "user/app".into(),
                "docker.io/user/app:latest".into(),
                "user/app:latest".into(),
            ),
            (
                "library/a/b".into(),
                "docker.io/library/a/b:latest".into(),
                "library/a/b:latest".into(),
            ),
            (
                "localhost/x".into(),
                "localhost/x:latest".into(),
                "localhost/x:latest".into(),
            ),
            (
                "localhost:5000/a/b:tag".into(),
                "localhost:5000/a/b:tag".into(),
                "localhost:5000/a/b:tag".into(),
            ),
            (
                "127.0.0.1:5000/x".into(),
                "127.0.0.1:5000/x:latest".into(),
                "127.0.0.1:5000/x:latest".into(),
            ),
            (
                "[::1]:5000/x".into(),
                "[::1]:5000/x:latest".into(),
                "[::1]:5000/x:latest".into(),
            ),
            (
                "[fe80::1]/x:t".into(),
                "[fe80::1]/x:t".into(),
                "[fe80::1]/x:t".into(),
            ),
            (
                "example.com/a/b/c:t".into(),
                "example.com/a/b/c:t".into(),
                "example.com/a/b/c:t".into(),
            ),
            (
                "Example.COM/a".into(),
                "Example.COM/a:latest".into(),
                "Example.COM/a:latest".into(),
            ),
            (
                "FOO/bar".into(),
                "FOO/bar:latest".into(),
                "FOO/bar:latest".into(),
            ),
            (
                "my-registry:5000/x".into(),
                "my-registry:5000/x:latest".into(),
                "my-registry:5000/x:latest".into(),
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
                "localhost:5000".into(),
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
            (
                format!("busybox:1.36@{d}"),
                format!("docker.io/library/busybox:1.36@{d}"),
                format!("busybox:1.36@{d}"),
            ),
            (
                format!("localhost:5000/x@{d}"),
                format!("localhost:5000/x@{d}"),
                format!("localhost:5000/x@{d}"),
            ),
            (
                "a__b".into(),
                "docker.io/library/a__b:latest".into(),
                "a__b:latest".into(),
            ),
            (
                "a_b.c-d---e".into(),
                "docker.io/library/a_b.c-d---e:latest".into(),
                "a_b.c-d---e:latest".into(),
            ),
            (
                "a:Tag_1.2-x".into(),
                "docker.io/library/a:Tag_1.2-x".into(),
                "a:Tag_1.2-x".into(),
            ),
            (
                "a:_x".into(),
                "docker.io/library/a:_x".into(),
                "a:_x".into(),
            ),
            (
                format!("a:{long_tag}"),
                format!("docker.io/library/a:{long_tag}"),
                format!("a:{long_tag}"),
            ),
            (
                long_path.clone(),
                format!("docker.io/{long_path}:latest"),
                format!("{long_path}:latest"),
            ),
            // 64 hex with a prefix is a name, not an id.
            (
                format!("sha256:{HEX}"),
                format!("docker.io/library/sha256:{HEX}"),
                format!("sha256:{HEX}"),
            ),
            (
                format!("x{}", &HEX[1..]),
                format!("docker.io/library/x{}:latest", &HEX[1..]),
                format!("x{}:latest", &HEX[1..]),
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "display of {input}");
            assert_eq!(r.familiar(), familiar, "familiar of {input}");
            // The normalized form parses back to the same reference.
            assert_eq!(Reference::parse(&full).unwrap(), r, "reparse of {full}");
        }
    }

    /// (input, expected error message) for references that must be refused.
    #[test]
    fn invalid_references_are_refused_with_docker_like_messages() {
        let long_tag = "t".repeat(129);
        let long_path = format!("a/{}", "b".repeat(254));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "invalid reference format: reference is empty"),
            (":tag".into(), "invalid reference format: repository path (library/) must"),
            ("a:".into(), "invalid reference format: tag () must match"),
            ("a:-x".into(), "invalid reference format: tag (-x) must match"),
            ("a:x!".into(), "invalid reference format: tag (x!) must match"),
            (format!("a:{long_tag}"), "invalid reference format: tag (ttt"),
            ("Busybox".into(), "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("library/Busybox".into(), "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("localhost:5000/A/b".into(), "invalid reference format: repository name (A/b) must be lowercase"),
            (HEX.into(), "invalid repository name (7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa), cannot specify 64-byte hexadecimal strings"),
            ("a//b".into(), "invalid reference format: repository path (a//b)"),
            ("-a".into(), "invalid reference format: repository path (library/-a)"),
            ("a-".into(), "invalid reference format: repository path (library/a-)"),
            ("a..b".into(), "invalid reference format: repository path (library/a..b)"),
            ("a___b".into(), "invalid reference format: repository path (library/a___b)"),
            ("a._b".into(), "invalid reference format: repository path (library/a._b)"),
            ("a/".into(), "invalid reference format: repository path (a/)"),
            ("/a".into(), "invalid reference format: repository path (/a)"),
            ("a b".into(), "invalid reference format: repository path (library/a b)"),
            ("foo:bar/baz".into(), "invalid reference format: registry host (foo:bar) is not valid"),
            ("-x.com/a".into(), "invalid reference format: registry host (-x.com) is not valid"),
            ("a__b.c/x".into(), "invalid reference format: registry host (a__b.c) is not valid"),
            ("[::1/x".into(), "invalid reference format: registry host ([::1) is not valid"),
            ("x.com:/a".into(), "invalid reference format: registry host (x.com:) is not valid"),
            ("a@sha256:abc".into(), "invalid reference format: digest: invalid digest"),
            (format!("a@sha256:{}", HEX.to_uppercase()), "invalid reference format: digest: invalid digest"),
            (format!("a@sha512:{HEX}{HEX}"), "invalid reference format: digest: unsupported digest algorithm"),
            (format!("a@b@sha256:{HEX}"), "invalid reference format: digest: invalid digest"),
            (long_path, "invalid reference format: repository name must not be more than 255 characters (got 256)"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(&input).expect_err(&input).to_string();
            assert!(
                err.starts_with(want),
                "{input:?}: got {err:?}, want prefix {want:?}"
            );
        }
    }

    #[test]
    fn parse_named_keeps_a_bare_name_untagged() {
        let r = Reference::parse_named("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
    }

    #[test]
    fn accessors_and_builders() {
        let r = Reference::parse("localhost:5000/a/b:tag").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "a/b", Some("tag"))
        );
        assert!(!r.is_docker_hub());
        let d = Digest::from_sha256_hex(HEX).unwrap();
        let pinned = r.with_digest(d.clone());
        assert_eq!(pinned.digest(), Some(&d));
        assert_eq!(
            pinned.familiar(),
            format!("localhost:5000/a/b:tag@sha256:{HEX}")
        );
        let retagged = pinned.with_tag("v2").unwrap();
        assert_eq!(retagged.to_string(), "localhost:5000/a/b:v2");
        assert!(r.with_tag("bad tag").is_err());
        assert_eq!(r.repository().to_string(), "localhost:5000/a/b");
        let hub = Reference::parse("user/app").unwrap();
        assert!(hub.is_docker_hub());
        assert_eq!(
            "busybox".parse::<Reference>().unwrap().path(),
            "library/busybox"
        );
    }

    #[test]
    fn tags_must_be_unambiguous() {
        assert!(Reference::parse("busybox:1")
            .unwrap()
            .check_taggable()
            .is_ok());
        let cases = [
            (
                format!("sha256:{HEX}"),
                "refusing to create an ambiguous tag using digest algorithm as name",
            ),
            (
                format!("busybox@sha256:{HEX}"),
                "refusing to create a tag with a digest reference",
            ),
            (
                format!("busybox:1@sha256:{HEX}"),
                "refusing to create a tag with a digest reference",
            ),
        ];
        for (input, want) in cases {
            let err = Reference::parse(&input)
                .unwrap()
                .check_taggable()
                .unwrap_err();
            assert_eq!(err.to_string(), want, "{input}");
        }
        let named = Reference::parse_named("busybox").unwrap();
        assert!(named.check_taggable().is_err());
    }

    #[test]
    fn from_parts_validates_like_parse() {
        let r = Reference::from_parts("docker.io", "library/busybox", Some("1"), None).unwrap();
        assert_eq!(r.familiar(), "busybox:1");
        assert!(Reference::from_parts("docker.io", "Bad", None, None).is_err());
        assert!(Reference::from_parts("docker.io", "a:b", None, None).is_err());
    }
}
