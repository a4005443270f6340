//! `RUN --mount=…` values: CSV fields, the mount type and the keys each type accepts.
//!
//! Values that contain `$` are kept as written and only checked after expansion, as BuildKit does.

use serde::Serialize;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    fn parse(s: &str) -> Option<MountType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }

    /// Keys (canonical names) this type accepts besides `type`.
    fn keys(self) -> &'static [&'static str] {
        match self {
            MountType::Bind => &["target", "source", "from", "readonly"],
            MountType::Cache => &[
                "target", "source", "from", "readonly", "id", "sharing", "mode", "uid", "gid",
            ],
            MountType::Tmpfs => &["target", "size", "readonly"],
            MountType::Secret => &[
                "target", "id", "required", "mode", "uid", "gid", "env", "readonly",
            ],
            MountType::Ssh => &["target", "id", "required", "mode", "uid", "gid", "readonly"],
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount` of a RUN instruction. Strings are as written (may hold `$VAR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountType,
    pub target: Option<String>,
    pub source: Option<String>,
    /// Stage name or image to mount from.
    pub from: Option<String>,
    pub id: Option<String>,
    /// `None` when not given: bind mounts default to read-only, caches to read-write.
    pub readonly: Option<bool>,
    pub sharing: Option<CacheSharing>,
    /// Octal file mode, as written.
    pub mode: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    /// tmpfs size, as written (`64m`).
    pub size: Option<String>,
    /// Secret / ssh: fail when not provided.
    pub required: bool,
    /// Secret: expose it as this environment variable.
    pub env: Option<String>,
}

/// Parses one `--mount` value, e.g. `type=cache,target=/root/.cache,sharing=locked`.
pub fn parse_mount(value: &str) -> Result<Mount, String> {
    let fields = split_csv(value)?;
    let mut kind = MountType::Bind;
    for field in &fields {
        if let Some((k, v)) = field.split_once('=') {
            if k.trim().eq_ignore_ascii_case("type") {
                kind = MountType::parse(v).ok_or_else(|| {
                    format!(
                        "unsupported mount type {v:?} (expected bind, cache, tmpfs, secret or ssh)"
                    )
                })?;
            }
        }
    }
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        id: None,
        readonly: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let canonical = match key.as_str() {
            "type" => continue,
            "src" | "source" => "source",
            "dst" | "destination" | "target" => "target",
            "ro" | "readonly" | "rw" | "readwrite" => "readonly",
            other => other,
        };
        if !kind.keys().contains(&canonical) {
            let known = [
                "target", "source", "from", "readonly", "id", "sharing", "mode", "uid", "gid",
                "size", "required", "env",
            ];
            return Err(if known.contains(&canonical) {
                format!("unexpected key '{key}' for mount type '{}'", kind.as_str())
            } else {
                format!("unexpected key '{key}' in '{field}'")
            });
        }
        let deferred = value.as_deref().is_some_and(|v| v.contains('$'));
        match (canonical, value) {
            ("readonly", None) => m.readonly = Some(key == "ro" || key == "readonly"),
            ("readonly", Some(v)) => {
                let b = parse_bool(&v).ok_or_else(|| format!("invalid value for {key}: {v}"))?;
                m.readonly = Some(if key == "rw" || key == "readwrite" {
                    !b
                } else {
                    b
                });
            }
            ("required", None) => m.required = true,
            ("required", Some(v)) => {
                m.required =
                    parse_bool(&v).ok_or_else(|| format!("invalid value for {key}: {v}"))?
            }
            (_, None) => return Err(format!("invalid field '{field}' must be a key=value pair")),
            ("target", Some(v)) => m.target = Some(v),
            ("source", Some(v)) => m.source = Some(v),
            ("from", Some(v)) => {
                if let Some(i) = v.find('$') {
                    if i + 1 != v.len() {
                        return Err(
                            "'from' doesn't support variable expansion, define alias stage instead"
                                .to_string(),
                        );
                    }
                }
                m.from = Some(v)
            }
            ("id", Some(v)) => m.id = Some(v),
            ("env", Some(v)) => m.env = Some(v),
            ("size", Some(v)) => m.size = Some(v),
            ("sharing", Some(v)) => {
                m.sharing = Some(match v.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(format!(
                            "unsupported sharing value {v:?} (expected shared, private or locked)"
                        ))
                    }
                })
            }
            ("mode", Some(v)) => {
                if !deferred && u32::from_str_radix(&v, 8).is_err() {
                    return Err(format!(
                        "invalid value {v} for mode (expected octal, e.g. 0600)"
                    ));
                }
                m.mode = Some(v)
            }
            (id @ ("uid" | "gid"), Some(v)) => {
                if !deferred && v.parse::<u32>().is_err() {
                    return Err(format!("invalid value for {id}: {v}"));
                }
                if id == "uid" {
                    m.uid = Some(v)
                } else {
                    m.gid = Some(v)
                }
            }
            (_, Some(_)) => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if matches!(kind, MountType::Bind | MountType::Cache | MountType::Tmpfs) && m.target.is_none() {
        return Err(format!("mount type {} requires a target", kind.as_str()));
    }
    if kind == MountType::Secret && m.target.is_none() && m.id.is_none() && m.env.is_none() {
        return Err("secret mount requires an id, a target or an env".to_string());
    }
    Ok(m)
}

fn parse_bool(v: &str) -> Option<bool> {
    // Go's strconv.ParseBool.
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// One CSV record (Go's `encoding/csv` on a single line): commas separate fields, a field that starts
/// with `"` is quoted and `""` inside it is a literal quote.
fn split_csv(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "failed to parse csv mounts: unterminated quote in {value:?}"
                        ))
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(c) => {
                    return Err(format!(
                    "failed to parse csv mounts: extraneous {c:?} after quoted field in {value:?}"
                ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(format!(
                            "failed to parse csv mounts: bare \" in non-quoted field in {value:?}"
                        ))
                    }
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_mounts() {
        let m =
            parse_mount("type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0755,uid=1000")
                .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!(m.mode.as_deref(), Some("0755"));
        let m = parse_mount("target=/src,from=build,source=/out,rw").unwrap();
        assert_eq!((m.kind, m.readonly), (MountType::Bind, Some(false)));
        let m = parse_mount("type=secret,id=npm,required").unwrap();
        assert!(m.required);
        let m = parse_mount("type=ssh").unwrap();
        assert_eq!(m.kind, MountType::Ssh);
        let m = parse_mount("type=tmpfs,dst=/tmp,size=64m,ro").unwrap();
        assert_eq!((m.size.as_deref(), m.readonly), (Some("64m"), Some(true)));
        let m = parse_mount("type=cache,target=$HOME/.cache,uid=$UID").unwrap();
        assert_eq!(m.uid.as_deref(), Some("$UID"));
        let m = parse_mount("\"type=bind\",\"target=/a,b\"").unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn bad_mounts() {
        let cases = [
            (
                "type=volume,target=/a",
                "unsupported mount type \"volume\" (expected bind, cache, tmpfs, secret or ssh)",
            ),
            (
                "type=bind,target=/a,size=1m",
                "unexpected key 'size' for mount type 'bind'",
            ),
            (
                "type=cache,target=/a,sharing=maybe",
                "unsupported sharing value \"maybe\" (expected shared, private or locked)",
            ),
            (
                "type=cache,target=/a,mode=999",
                "invalid value 999 for mode (expected octal, e.g. 0600)",
            ),
            ("type=cache,target=/a,uid=x", "invalid value for uid: x"),
            (
                "type=cache,target=/a,foo=bar",
                "unexpected key 'foo' in 'foo=bar'",
            ),
            (
                "type=cache,target",
                "invalid field 'target' must be a key=value pair",
            ),
            ("type=cache", "mount type cache requires a target"),
            (
                "type=bind,target=/a,required",
                "unexpected key 'required' for mount type 'bind'",
            ),
            (
                "type=bind,target=/a,ro=maybe",
                "invalid value for ro: maybe",
            ),
            (
                "type=bind,target=/a,from=$X/y",
                "'from' doesn't support variable expansion, define alias stage instead",
            ),
            (
                "type=secret",
                "secret mount requires an id, a target or an env",
            ),
            (
                "type=bind,\"target=/a",
                "failed to parse csv mounts: unterminated quote in \"type=bind,\\\"target=/a\"",
            ),
        ];
        for (v, msg) in cases {
            assert_eq!(parse_mount(v).unwrap_err(), msg, "{v}");
        }
    }
}
