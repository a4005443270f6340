//! Platforms (`linux/amd64`, `linux/arm/v7`) in Go's names, as images and indexes declare them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// An OS/architecture pair, as in an index entry's `platform` (OCI field order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            ..Platform::default()
        }
    }

    /// The platform this process runs on: `linux` plus the architecture in Go's names.
    pub fn host() -> Platform {
        let (arch, variant) = go_arch(std::env::consts::ARCH);
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Parses `os/arch[/variant]` as `--platform` takes it; `arch` alone means linux.
    /// Names are normalized (`x86_64` → `amd64`, `aarch64` → `arm64`, `arm` → `arm/v7`).
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let bad = |reason: &str| Error::InvalidPlatform {
            platform: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(bad("expected os/arch[/variant]"));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(bad("expected os/arch[/variant]")),
        };
        let os = os.to_ascii_lowercase();
        let arch = arch.to_ascii_lowercase();
        let (arch, default_variant) = go_arch(&arch);
        let variant = variant.map(str::to_ascii_lowercase);
        let variant = match (arch, variant.as_deref()) {
            ("arm64", Some("8" | "v8")) => None,
            ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => Some(format!("v{v}")),
            ("amd64", Some("v1")) => None,
            (_, Some(v)) => Some(v.to_string()),
            (_, None) => default_variant.map(str::to_string),
        };
        Ok(Platform::new(&os, arch, variant.as_deref()))
    }

    /// `requested` (a `--platform` value, `FROM --platform`) if it names the host's platform
    /// in any spelling Docker accepts (`linux/amd64`, `amd64`, `linux/x86_64`), else why not.
    pub fn host_only(requested: &str) -> Result<Platform, Error> {
        let wanted = Platform::parse(requested)?;
        let host = Platform::host();
        if host.matches(&wanted) {
            Ok(wanted)
        } else {
            Err(Error::ForeignPlatform {
                requested: wanted.to_string(),
                host: host.to_string(),
            })
        }
    }

    /// Whether an image config's platform fields (`os`, `architecture`, `variant`; empty
    /// ones are taken as the host's, as Docker does for old images) match `wanted`.
    pub fn config_matches(
        os: &str,
        architecture: &str,
        variant: Option<&str>,
        wanted: &Platform,
    ) -> bool {
        let host = Platform::host();
        let os = if os.is_empty() { &host.os } else { os };
        let architecture = if architecture.is_empty() {
            &host.architecture
        } else {
            architecture
        };
        let (architecture, default_variant) = go_arch(architecture);
        let variant = variant.or(default_variant);
        Platform::new(os, architecture, variant).matches(wanted)
    }

    /// Whether an image for `self` runs where `wanted` is asked for: same OS and
    /// architecture, and the same variant after Docker's defaults (`arm64` = `arm64/v8`,
    /// `arm` = `arm/v7`, `amd64` = `amd64/v1`).
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && normal_variant(self) == normal_variant(wanted)
    }
}

impl fmt::Display for Platform {
    /// `os/arch[/variant]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normal_variant(p: &Platform) -> Option<&str> {
    match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", Some("v8")) | ("amd64", Some("v1")) => None,
        ("arm", None) => Some("v7"),
        (_, v) => v,
    }
}

/// Rust's (or uname's) architecture name → Go's name and default variant.
fn go_arch(arch: &str) -> (&str, Option<&'static str>) {
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64", None),
        "aarch64" | "arm64" => ("arm64", None),
        "arm" | "armhf" | "armv7l" | "armv7" => ("arm", Some("v7")),
        "armel" | "armv6l" => ("arm", Some("v6")),
        "x86" | "i386" | "i686" | "386" => ("386", None),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64le" | "ppc64le" => ("ppc64le", None),
        "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
        "loongarch64" | "loong64" => ("loong64", None),
        other => (other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_uses_go_names() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        let expected = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        assert_eq!(host.architecture, expected);
    }

    #[test]
    fn parse_normalizes_like_docker() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("Linux/ARM64", "linux/arm64"),
            ("windows/amd64", "windows/amd64"),
        ];
        for (input, want) in cases {
            assert_eq!(Platform::parse(input).unwrap().to_string(), want, "{input}");
        }
        for bad in ["", "linux/", "/amd64", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matching_applies_default_variants() {
        let p = |s| Platform::parse(s).unwrap();
        assert!(Platform::new("linux", "arm64", Some("v8")).matches(&p("linux/arm64")));
        assert!(Platform::new("linux", "arm", None).matches(&p("linux/arm/v7")));
        assert!(!Platform::new("linux", "arm", Some("v6")).matches(&p("linux/arm")));
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
    }

    #[test]
    fn only_the_host_platform_is_accepted_in_any_spelling() {
        let host = Platform::host();
        for spelling in [host.to_string(), host.architecture.clone()] {
            assert_eq!(Platform::host_only(&spelling).unwrap(), host, "{spelling}");
        }
        let other = if host.architecture == "s390x" {
            "linux/amd64"
        } else {
            "linux/s390x"
        };
        let err = Platform::host_only(other).unwrap_err().to_string();
        assert!(
            err.contains(other) && err.contains(&host.to_string()),
            "{err}"
        );
        assert!(Platform::host_only("linux/").is_err());
        assert!(Platform::config_matches("", "", None, &host));
        assert!(Platform::config_matches(
            "linux",
            "aarch64",
            None,
            &Platform::parse("linux/arm64/v8").unwrap()
        ));
        assert!(!Platform::config_matches(
            "linux",
            "arm",
            Some("v6"),
            &Platform::parse("linux/arm").unwrap()
        ));
    }

    #[test]
    fn serializes_in_oci_field_order() {
        let mut p = Platform::new("linux", "arm", Some("v7"));
        p.os_version = Some("1".into());
        let json = crate::to_canonical_json(&p);
        assert_eq!(
            json,
            br#"{"architecture":"arm","os":"linux","os.version":"1","variant":"v7"}"#
        );
    }
}
