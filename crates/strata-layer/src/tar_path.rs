//! Entry names inside a layer tar: cleaning them into in-root components, and whiteout names.

/// A `.wh.<name>` entry deletes `<name>` from the layers below.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Names starting with this are aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`), never files.
pub(crate) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// A `.wh..wh..opq` entry hides everything the layers below put in its directory.
pub(crate) const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";

/// Why a tar name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameError {
    /// A relative name whose `..` components climb above the root (Docker's "breakout").
    Breakout,
    /// A NUL byte: no syscall can take it.
    Nul,
}

/// Cleans a tar entry name (or hardlink target) into path components below the root, as Go's
/// `filepath.Clean` + Docker's breakout check do: empty and `.` components vanish, `..`
/// removes the previous component; a leading `/` is dropped (absolute names are relative to
/// the root) and `..` at the top of an absolute name stays at the top, while `..` climbing out
/// of a relative name is an error. The empty list means the root itself.
///
/// This is lexical only: symlinks met on the way are resolved later, inside the root, by the
/// kernel (`RESOLVE_IN_ROOT`).
pub(crate) fn clean(name: &[u8]) -> Result<Vec<&[u8]>, NameError> {
    if name.contains(&0) {
        return Err(NameError::Nul);
    }
    let absolute = name.first() == Some(&b'/');
    let mut out: Vec<&[u8]> = Vec::new();
    for comp in name.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    return Err(NameError::Breakout);
                }
            }
            _ => out.push(comp),
        }
    }
    Ok(out)
}

/// Joins components back into a `a/b/c` name.
pub(crate) fn join(comps: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(comps.iter().map(|c| c.len() + 1).sum());
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    out
}

/// What the last component of a cleaned name says about the entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WhiteoutKind<'a> {
    /// An ordinary entry.
    None,
    /// `.wh..wh..opq`: the directory it is in is opaque.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Delete(&'a [u8]),
    /// `.wh..wh.*` other than the opaque marker: aufs metadata, skipped.
    AufsMeta,
    /// `.wh.`, `.wh..` or `.wh...`: a whiteout that names nothing or a parent; refused.
    Invalid,
}

pub(crate) fn whiteout_kind(base: &[u8]) -> WhiteoutKind<'_> {
    if base == OPAQUE_WHITEOUT {
        WhiteoutKind::Opaque
    } else if base.starts_with(WHITEOUT_META_PREFIX) {
        WhiteoutKind::AufsMeta
    } else if let Some(target) = base.strip_prefix(WHITEOUT_PREFIX) {
        match target {
            b"" | b"." | b".." => WhiteoutKind::Invalid,
            _ => WhiteoutKind::Delete(target),
        }
    } else {
        WhiteoutKind::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_docker() {
        let cases: &[(&str, Result<&str, NameError>)] = &[
            ("a/b/c", Ok("a/b/c")),
            ("./a/b/", Ok("a/b")),
            ("a//b/./c", Ok("a/b/c")),
            ("/etc/passwd", Ok("etc/passwd")),
            ("/../../etc/passwd", Ok("etc/passwd")),
            ("a/../b", Ok("b")),
            ("a/b/../../c", Ok("c")),
            ("./", Ok("")),
            (".", Ok("")),
            ("/", Ok("")),
            ("../x", Err(NameError::Breakout)),
            ("a/../../x", Err(NameError::Breakout)),
            ("./..", Err(NameError::Breakout)),
            ("a\0b", Err(NameError::Nul)),
        ];
        for (name, want) in cases {
            let got = clean(name.as_bytes()).map(|c| join(&c));
            let want = want.map(|w| w.as_bytes().to_vec());
            assert_eq!(got, want, "{name:?}");
        }
    }

    #[test]
    fn whiteout_kinds() {
        let cases: &[(&[u8], WhiteoutKind<'_>)] = &[
            (b"file", WhiteoutKind::None),
            (b".wh.file", WhiteoutKind::Delete(b"file")),
            (b".wh..hidden", WhiteoutKind::Delete(b".hidden")),
            (b".wh..wh..opq", WhiteoutKind::Opaque),
            (b".wh..wh.plnk", WhiteoutKind::AufsMeta),
            (b".wh.", WhiteoutKind::Invalid),
            (b".wh..", WhiteoutKind::Invalid),
            (b".wh...", WhiteoutKind::Invalid),
            (b".whx", WhiteoutKind::None),
        ];
        for (base, want) in cases {
            assert_eq!(
                &whiteout_kind(base),
                want,
                "{:?}",
                String::from_utf8_lossy(base)
            );
        }
    }
}
