//! The image config blob (`ImageConfig`): history, rootfs and the container config, written
//! with Docker's key order and omit-empty rules so documents we write match Docker's bytes.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::container_config::{is_false, null_as_default, ConfigShape, ContainerConfig};
use crate::digest::Digest;
use crate::platform::Platform;

/// One entry of the image history, bottom first (Docker's field order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// RFC 3339 with nanoseconds, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step produced no layer (ENV, CMD, …): no diff_id matches it.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_default"
    )]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The layers of an image by diff_id (digest of the uncompressed tar), bottom first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub diff_ids: Vec<Digest>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl RootFs {
    /// `{"type":"layers","diff_ids":[…]}`.
    pub fn layers(diff_ids: Vec<Digest>) -> RootFs {
        RootFs {
            kind: "layers".to_string(),
            diff_ids,
            extra: BTreeMap::new(),
        }
    }
}

/// The image config blob. Its digest is the image ID. Serialized with top-level keys sorted
/// (Docker and BuildKit both write it through a Go map) and `config` in [`ImageConfig::shape`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Go's architecture name: `amd64`, `arm64`, `arm`.
    pub architecture: String,
    pub author: Option<String>,
    pub comment: Option<String>,
    /// The runtime defaults of containers made from this image.
    pub config: Option<ContainerConfig>,
    /// ID of the container the classic builder committed (Docker only).
    pub container: Option<String>,
    /// The config of that container (Docker only).
    pub container_config: Option<ContainerConfig>,
    /// RFC 3339 with nanoseconds, kept as written.
    pub created: Option<String>,
    pub docker_version: Option<String>,
    pub history: Vec<History>,
    pub os: String,
    pub os_features: Option<Vec<String>>,
    pub os_version: Option<String>,
    pub rootfs: RootFs,
    pub variant: Option<String>,
    /// Top-level fields this type does not know, kept for round trips.
    pub extra: BTreeMap<String, Value>,
    /// How `config`/`container_config` are written; detected when reading (Docker's shape
    /// has `Hostname`), [`ConfigShape::Docker`] for new documents unless set.
    pub shape: ConfigShape,
}

impl ImageConfig {
    /// The platform the image is for.
    pub fn platform(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        p.os_version = self.os_version.clone();
        p.os_features = self.os_features.clone();
        p
    }

    /// History entries that produced a layer, paired with the layer's diff_id, bottom first.
    /// Entries are matched in order as Docker does; extra layers get no history.
    pub fn layer_history(&self) -> Vec<(Option<&History>, &Digest)> {
        let mut entries = self.history.iter().filter(|h| !h.empty_layer);
        self.rootfs
            .diff_ids
            .iter()
            .map(|d| (entries.next(), d))
            .collect()
    }

    /// The `config` part as `docker inspect` prints it (all fields, in Docker's shape).
    pub fn config_or_default(&self) -> ContainerConfig {
        self.config.clone().unwrap_or_default()
    }
}

/// One value of a document written through a sorted map.
enum FieldRef<'a> {
    Str(&'a str),
    Config(&'a ContainerConfig, ConfigShape),
    History(&'a [History]),
    Strings(&'a [String]),
    RootFs(&'a RootFs),
    Value(&'a Value),
}

impl Serialize for FieldRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldRef::Str(v) => v.serialize(s),
            FieldRef::Config(c, shape) => c.shaped(*shape).serialize(s),
            FieldRef::History(v) => v.serialize(s),
            FieldRef::Strings(v) => v.serialize(s),
            FieldRef::RootFs(v) => v.serialize(s),
            FieldRef::Value(v) => v.serialize(s),
        }
    }
}

impl Serialize for ImageConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut fields: BTreeMap<&str, FieldRef<'_>> = BTreeMap::new();
        for (key, value) in [
            ("author", &self.author),
            ("comment", &self.comment),
            ("container", &self.container),
            ("created", &self.created),
            ("docker_version", &self.docker_version),
            ("os.version", &self.os_version),
            ("variant", &self.variant),
        ] {
            if let Some(v) = value {
                fields.insert(key, FieldRef::Str(v));
            }
        }
        if !self.architecture.is_empty() {
            fields.insert("architecture", FieldRef::Str(&self.architecture));
        }
        if !self.os.is_empty() {
            fields.insert("os", FieldRef::Str(&self.os));
        }
        if let Some(c) = &self.config {
            fields.insert("config", FieldRef::Config(c, self.shape));
        }
        if let Some(c) = &self.container_config {
            fields.insert("container_config", FieldRef::Config(c, self.shape));
        }
        if !self.history.is_empty() {
            fields.insert("history", FieldRef::History(&self.history));
        }
        if let Some(f) = &self.os_features {
            fields.insert("os.features", FieldRef::Strings(f));
        }
        if self.rootfs != RootFs::default() {
            fields.insert("rootfs", FieldRef::RootFs(&self.rootfs));
        }
        for (k, v) in &self.extra {
            fields.entry(k.as_str()).or_insert(FieldRef::Value(v));
        }
        let mut m = s.serialize_map(Some(fields.len()))?;
        for (k, v) in &fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// What [`ImageConfig`] reads before the container configs are typed.
#[derive(Deserialize)]
struct RawImageConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    architecture: String,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    container: Option<String>,
    #[serde(default)]
    container_config: Option<Value>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    docker_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    history: Vec<History>,
    #[serde(default, deserialize_with = "null_as_default")]
    os: String,
    #[serde(rename = "os.features", default)]
    os_features: Option<Vec<String>>,
    #[serde(rename = "os.version", default)]
    os_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    rootfs: RootFs,
    #[serde(default)]
    variant: Option<String>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for ImageConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawImageConfig::deserialize(d)?;
        let docker_shaped =
            |v: &Option<Value>| v.as_ref().and_then(|v| v.get("Hostname")).is_some();
        let shape = if docker_shaped(&raw.config) || docker_shaped(&raw.container_config) {
            ConfigShape::Docker
        } else if raw.config.as_ref().is_some_and(|v| v.is_object()) {
            ConfigShape::Oci
        } else {
            ConfigShape::Docker
        };
        let typed = |v: Option<Value>, key: &str| -> Result<Option<ContainerConfig>, D::Error> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => ContainerConfig::deserialize(v)
                    .map(Some)
                    .map_err(|e| de::Error::custom(format!("{key}: {e}"))),
            }
        };
        Ok(ImageConfig {
            architecture: raw.architecture,
            author: raw.author,
            comment: raw.comment,
            config: typed(raw.config, "config")?,
            container: raw.container,
            container_config: typed(raw.container_config, "container_config")?,
            created: raw.created,
            docker_version: raw.docker_version,
            history: raw.history,
            os: raw.os,
            os_features: raw.os_features,
            os_version: raw.os_version,
            rootfs: raw.rootfs,
            variant: raw.variant,
            extra: raw.extra,
            shape,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container_config::Empty;
    use crate::to_canonical_json;

    const CLASSIC: &str = include_str!("../tests/fixtures/docker-20.10-classic-config.json");
    const BUILDKIT: &str = include_str!("../tests/fixtures/docker-20.10-buildkit-config.json");
    const IMPORT: &str = include_str!("../tests/fixtures/docker-20.10-import-config.json");

    #[test]
    fn docker_written_configs_round_trip_byte_for_byte() {
        for (name, text) in [
            ("classic", CLASSIC),
            ("buildkit", BUILDKIT),
            ("import", IMPORT),
        ] {
            let config: ImageConfig = serde_json::from_str(text).unwrap();
            let again = to_canonical_json(&config);
            assert_eq!(String::from_utf8(again).unwrap(), text.trim_end(), "{name}");
        }
    }

    #[test]
    fn shape_is_detected_from_the_document() {
        let classic: ImageConfig = serde_json::from_str(CLASSIC).unwrap();
        let buildkit: ImageConfig = serde_json::from_str(BUILDKIT).unwrap();
        assert_eq!(classic.shape, ConfigShape::Docker);
        assert_eq!(buildkit.shape, ConfigShape::Oci);
    }

    #[test]
    fn fields_are_read_into_their_types() {
        let c: ImageConfig = serde_json::from_str(CLASSIC).unwrap();
        let cfg = c.config.as_ref().unwrap();
        assert_eq!(cfg.user, "1000:1000");
        assert_eq!(cfg.cmd.as_deref(), Some(&["echo hi".to_string()][..]));
        assert_eq!(
            cfg.exposed_ports
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["53/udp", "8080/tcp"]
        );
        let hc = cfg.healthcheck.as_ref().unwrap();
        assert_eq!(
            (hc.interval, hc.timeout, hc.start_period, hc.retries),
            (30_000_000_000, 5_000_000_000, 10_000_000_000, 3)
        );
        assert_eq!(cfg.on_build.as_ref().unwrap(), &["RUN echo onbuild"]);
        assert_eq!(cfg.stop_signal, "SIGTERM");
        assert_eq!(cfg.shell.as_ref().unwrap(), &["/bin/sh", "-ec"]);
        assert_eq!(c.rootfs.diff_ids.len(), 3);
        assert_eq!(c.history.len(), 14);
        assert_eq!(c.layer_history().len(), 3);
        assert_eq!(
            c.layer_history()[2].0.and_then(|h| h.created_by.as_deref()),
            Some("/bin/sh -c #(nop) WORKDIR /srv")
        );
        assert_eq!(c.platform().to_string(), "linux/amd64");
        assert!(c.extra.is_empty());
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"architecture":"amd64","config":{"Env":["A=1"],"Zeta":{"q":1}},"moby.buildkit.buildinfo.v1":"e30=","os":"linux","rootfs":{"type":"layers","diff_ids":[],"x":1},"history":[{"created":"t","note":"n"}]}"#;
        let c: ImageConfig = serde_json::from_str(text).unwrap();
        assert_eq!(c.extra["moby.buildkit.buildinfo.v1"], "e30=");
        assert_eq!(c.config.as_ref().unwrap().extra["Zeta"]["q"], 1);
        let out = String::from_utf8(to_canonical_json(&c)).unwrap();
        assert_eq!(
            out,
            r#"{"architecture":"amd64","config":{"Env":["A=1"],"Zeta":{"q":1}},"history":[{"created":"t","note":"n"}],"moby.buildkit.buildinfo.v1":"e30=","os":"linux","rootfs":{"type":"layers","x":1}}"#
        );
    }

    #[test]
    fn new_documents_serialize_deterministically() {
        let mut c = ContainerConfig {
            env: Some(vec!["PATH=/bin".into()]),
            cmd: Some(vec!["sh".into(), "-c".into(), "a && b".into()]),
            ..ContainerConfig::default()
        };
        c.labels = Some(
            (0..50)
                .map(|i| (format!("k{i}"), format!("v{i}")))
                .collect(),
        );
        c.volumes = Some((0..20).map(|i| (format!("/v{i}"), Empty)).collect());
        let config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(c),
            rootfs: RootFs::layers(vec![Digest::sha256_of(b"x")]),
            ..ImageConfig::default()
        };
        let first = to_canonical_json(&config);
        for _ in 0..20 {
            assert_eq!(to_canonical_json(&config), first);
        }
        let text = String::from_utf8(first).unwrap();
        assert!(text.contains(r#""a \u0026\u0026 b""#), "{text}");
        assert!(
            text.starts_with(r#"{"architecture":"amd64","config":{"Hostname":"""#),
            "{text}"
        );
    }
}
