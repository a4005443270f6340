//! Deterministic JSON writing, byte-compatible with Go's `encoding/json` (what Docker,
//! BuildKit and containerd write), so a document we write has one digest everywhere.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// Types whose JSON strata writes as new documents. Sealed: their serialization cannot fail
/// (every map key is a string), which is what lets [`to_canonical_json`] return bytes.
pub trait CanonicalJson: Serialize + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! canonical {
    ($($t:ty),* $(,)?) => {
        $(
            impl sealed::Sealed for $t {}
            impl CanonicalJson for $t {}
        )*
    };
}

canonical!(
    crate::config::ImageConfig,
    crate::container_config::ContainerConfig,
    crate::config::History,
    crate::config::RootFs,
    crate::manifest::Descriptor,
    crate::manifest::Manifest,
    crate::manifest::Index,
    crate::platform::Platform,
    crate::docker_archive::DockerArchiveEntry,
    Vec<crate::docker_archive::DockerArchiveEntry>,
    crate::docker_archive::Repositories,
    crate::oci_layout::OciLayout,
    serde_json::Value,
);

/// Compact JSON as Go's `json.Marshal` writes it: no whitespace, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u003c`…, control characters other than `\n \r \t` as `\u00XX`.
/// Field order is the type's own (Docker's); maps are `BTreeMap`s, so sorted like Go's.
pub fn to_canonical_json<T: CanonicalJson + ?Sized>(value: &T) -> Vec<u8> {
    to_go_json(value).unwrap_or_default()
}

/// [`to_canonical_json`] for any serializable value; fails only if `value`'s own
/// `Serialize` does (e.g. a map with non-string keys).
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// JSON as `docker inspect` prints it: Go's escaping, 4-space indent, `"key": value`.
pub fn to_indented_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let formatter = IndentedGoFormatter(serde_json::ser::PrettyFormatter::with_indent(b"    "));
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// serde_json's compact formatter with Go's string escaping.
struct GoFormatter;

/// serde_json's pretty formatter with Go's string escaping.
struct IndentedGoFormatter<'a>(serde_json::ser::PrettyFormatter<'a>);

/// Forwards the layout methods of [`IndentedGoFormatter`] to the pretty formatter.
macro_rules! forward_layout {
    ($($name:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
        $(
            fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
                self.0.$name(w $(, $arg)*)
            }
        )*
    };
}

impl Formatter for IndentedGoFormatter<'_> {
    forward_layout!(
        begin_array(),
        end_array(),
        begin_array_value(first: bool),
        end_array_value(),
        begin_object(),
        end_object(),
        begin_object_key(first: bool),
        begin_object_value(),
        end_object_value(),
    );

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        GoFormatter.write_string_fragment(w, fragment)
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        GoFormatter.write_char_escape(w, escape)
    }
}

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let byte = match escape {
            CharEscape::Quote => return w.write_all(b"\\\""),
            CharEscape::ReverseSolidus => return w.write_all(b"\\\\"),
            CharEscape::Solidus => return w.write_all(b"/"),
            CharEscape::LineFeed => return w.write_all(b"\\n"),
            CharEscape::CarriageReturn => return w.write_all(b"\\r"),
            CharEscape::Tab => return w.write_all(b"\\t"),
            // Go (as used by Docker 20.10) has no short forms for these two.
            CharEscape::Backspace => 0x08,
            CharEscape::FormFeed => 0x0c,
            CharEscape::AsciiControl(b) => b,
        };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        w.write_all(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(byte >> 4) as usize],
            HEX[(byte & 0xf) as usize],
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_go_does() {
        let cases = [
            ("a && b", r#""a \u0026\u0026 b""#),
            ("<x>", r#""\u003cx\u003e""#),
            ("q\"b\\", r#""q\"b\\""#),
            ("l\nc\rt\t", r#""l\nc\rt\t""#),
            ("\u{8}\u{c}\u{1}", r#""\u0008\u000c\u0001""#),
            ("\u{2028}\u{2029}é/", "\"\\u2028\\u2029é/\""),
        ];
        for (input, want) in cases {
            let got = to_canonical_json(&serde_json::Value::String(input.to_string()));
            assert_eq!(String::from_utf8(got).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn indented_output_looks_like_docker_inspect() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"Id":"a&b","RepoDigests":[],"Config":{"Cmd":null,"Env":["A=1"]},"Labels":{}}"#,
        )
        .unwrap();
        let text = String::from_utf8(to_indented_json(&[v]).unwrap()).unwrap();
        let want = "[\n    {\n        \"Config\": {\n            \"Cmd\": null,\n            \"Env\": [\n                \"A=1\"\n            ]\n        },\n        \"Id\": \"a\\u0026b\",\n        \"Labels\": {},\n        \"RepoDigests\": []\n    }\n]";
        assert_eq!(text, want);
    }

    #[test]
    fn output_is_compact_with_sorted_map_keys() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, 2], "a": {"y": null, "x": true} }"#).unwrap();
        assert_eq!(
            to_canonical_json(&v),
            br#"{"a":{"x":true,"y":null},"b":[1,2]}"#
        );
    }
}
