//! Context paths are `String`s (patterns, hashing and selection work on text), but a Linux
//! file name is any bytes, and Docker builds contexts whose names are not UTF-8. Such a name
//! is kept losslessly: every byte that is not part of valid UTF-8 becomes the character
//! U+10FF00 + byte (Unicode's private use plane 16), and [`fs_path`] turns it back into the
//! real name wherever the filesystem is touched. A real name containing those 256
//! characters is refused, so the mapping never confuses two names.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// The context text of one file name, or `None` when the name uses the reserved characters.
pub(crate) fn encode_name(name: &OsStr) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for chunk in name.as_bytes().utf8_chunks() {
        let valid = chunk.valid();
        if valid.chars().any(is_raw_byte) {
            return None;
        }
        out.push_str(valid);
        out.extend(chunk.invalid().iter().map(|&b| raw_byte_char(b)));
    }
    Some(out)
}

/// The filesystem path (relative) of a context path.
pub fn fs_path(path: &str) -> PathBuf {
    if !path.chars().any(is_raw_byte) {
        return PathBuf::from(path);
    }
    let mut bytes = Vec::with_capacity(path.len());
    let mut buf = [0; 4];
    for c in path.chars() {
        if is_raw_byte(c) {
            bytes.push((c as u32 - RAW_BYTE_BASE) as u8);
        } else {
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    PathBuf::from(OsString::from_vec(bytes))
}

/// The context path of a relative filesystem path (the inverse of [`fs_path`]); `None` when
/// it is not a plain relative path or a name uses the reserved characters.
pub fn context_path(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(encode_name(name)?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn is_raw_byte(c: char) -> bool {
    (RAW_BYTE_BASE..=RAW_BYTE_BASE + 0xFF).contains(&(c as u32))
}

fn raw_byte_char(b: u8) -> char {
    // Always a valid scalar value: plane 16 holds no surrogates.
    char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_paths_map_back_to_context_paths() {
        let raw = PathBuf::from(OsString::from_vec(b"dir/caf\xe9/x".to_vec()));
        let text = context_path(&raw).unwrap();
        assert_eq!(fs_path(&text), raw);
        assert_eq!(context_path(Path::new("")).as_deref(), Some(""));
        assert_eq!(context_path(Path::new("../x")), None);
        assert_eq!(context_path(Path::new("/x")), None);
    }

    #[test]
    fn names_round_trip_whatever_their_bytes() {
        for raw in [
            &b"plain.txt"[..],
            b"caf\xe9.txt",
            b"\xff\xfe",
            "naïve ✓".as_bytes(),
            b"mixed \xc3\xa9 and \xc3",
        ] {
            let name = OsStr::from_bytes(raw);
            let text = encode_name(name).unwrap();
            assert_eq!(fs_path(&text).as_os_str(), name, "{raw:?}");
        }
        assert_eq!(encode_name(OsStr::new("plain")).unwrap(), "plain");
        assert!(encode_name(OsStr::new("\u{10FF41}")).is_none());
    }
}
