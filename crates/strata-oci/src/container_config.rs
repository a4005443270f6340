//! Docker's container config (`container.Config`) as stored in image configs, in both JSON
//! shapes Docker-compatible tools write: Docker engine's (all fields) and BuildKit's (OCI order,
//! empty fields omitted).

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which JSON shape a container config is written in. Both use the same keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConfigShape {
    /// Docker engine's `container.Config`: fields Docker always writes are present even
    /// when empty (`"Hostname":""`, `"Cmd":null`). What `docker commit`, `docker import`, the
    /// classic builder and `docker inspect` write.
    #[default]
    Docker,
    /// OCI image-spec order, every empty field omitted, then Docker's extensions
    /// (`Healthcheck`, `ArgsEscaped`, `OnBuild`, `StopTimeout`, `Shell`): what BuildKit writes.
    Oci,
}

/// A map whose values are always `{}` (Go's `map[string]struct{}`): ports and volumes.
pub type EmptySet = BTreeMap<String, Empty>;

/// The `{}` value of an [`EmptySet`]; any value is accepted when reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::IgnoredAny::deserialize(d)?;
        Ok(Empty)
    }
}

/// Docker's `container.Config` as stored in an image config (`config`, `container_config`).
/// `Option` fields distinguish Docker's `null` from an empty list or map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub domainname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    /// `"80/tcp"` → `{}`.
    #[serde(default)]
    pub exposed_ports: Option<EmptySet>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    /// `KEY=value` entries.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub args_escaped: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub image: String,
    #[serde(default)]
    pub volumes: Option<EmptySet>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub network_disabled: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mac_address: String,
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub stop_signal: String,
    /// Seconds.
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    #[serde(default, deserialize_with = "str_slice")]
    pub shell: Option<Vec<String>>,
    /// Fields this type does not know, kept for round trips.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `HEALTHCHECK` settings; durations are nanoseconds as in Docker's JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disable, `["CMD", …]` exec, `["CMD-SHELL", "…"]` shell.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub interval: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub timeout: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub start_period: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub retries: i64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A container config paired with the shape to write it in.
#[derive(Clone, Copy, Debug)]
pub struct ShapedConfig<'a> {
    config: &'a ContainerConfig,
    shape: ConfigShape,
}

impl ContainerConfig {
    /// Serializes in `shape` instead of the default Docker shape.
    pub fn shaped(&self, shape: ConfigShape) -> ShapedConfig<'_> {
        ShapedConfig {
            config: self,
            shape,
        }
    }
}

impl Serialize for ContainerConfig {
    /// Docker's shape: what `docker inspect` prints.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.shaped(ConfigShape::Docker).serialize(s)
    }
}

const CONTAINER_CONFIG_KEYS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

impl Serialize for ShapedConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.config;
        let mut m = s.serialize_map(None)?;
        match self.shape {
            ConfigShape::Docker => {
                m.serialize_entry("Hostname", &c.hostname)?;
                m.serialize_entry("Domainname", &c.domainname)?;
                m.serialize_entry("User", &c.user)?;
                m.serialize_entry("AttachStdin", &c.attach_stdin)?;
                m.serialize_entry("AttachStdout", &c.attach_stdout)?;
                m.serialize_entry("AttachStderr", &c.attach_stderr)?;
                if let Some(v) = c.exposed_ports.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("ExposedPorts", v)?;
                }
                m.serialize_entry("Tty", &c.tty)?;
                m.serialize_entry("OpenStdin", &c.open_stdin)?;
                m.serialize_entry("StdinOnce", &c.stdin_once)?;
                m.serialize_entry("Env", &c.env)?;
                m.serialize_entry("Cmd", &c.cmd)?;
                if let Some(v) = &c.healthcheck {
                    m.serialize_entry("Healthcheck", v)?;
                }
                if c.args_escaped {
                    m.serialize_entry("ArgsEscaped", &true)?;
                }
                m.serialize_entry("Image", &c.image)?;
                m.serialize_entry("Volumes", &c.volumes)?;
                m.serialize_entry("WorkingDir", &c.working_dir)?;
                m.serialize_entry("Entrypoint", &c.entrypoint)?;
                if c.network_disabled {
                    m.serialize_entry("NetworkDisabled", &true)?;
                }
                if !c.mac_address.is_empty() {
                    m.serialize_entry("MacAddress", &c.mac_address)?;
                }
                m.serialize_entry("OnBuild", &c.on_build)?;
                m.serialize_entry("Labels", &c.labels)?;
                if !c.stop_signal.is_empty() {
                    m.serialize_entry("StopSignal", &c.stop_signal)?;
                }
                if let Some(v) = c.stop_timeout {
                    m.serialize_entry("StopTimeout", &v)?;
                }
                if let Some(v) = c.shell.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("Shell", v)?;
                }
            }
            ConfigShape::Oci => {
                let non_empty = |s: &String| !s.is_empty();
                if non_empty(&c.user) {
                    m.serialize_entry("User", &c.user)?;
                }
                if let Some(v) = c.exposed_ports.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("ExposedPorts", v)?;
                }
                for (key, list) in [
                    ("Env", &c.env),
                    ("Entrypoint", &c.entrypoint),
                    ("Cmd", &c.cmd),
                ] {
                    if let Some(v) = list.as_ref().filter(|v| !v.is_empty()) {
                        m.serialize_entry(key, v)?;
                    }
                }
                if let Some(v) = c.volumes.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("Volumes", v)?;
                }
                if non_empty(&c.working_dir) {
                    m.serialize_entry("WorkingDir", &c.working_dir)?;
                }
                if let Some(v) = c.labels.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("Labels", v)?;
                }
                if non_empty(&c.stop_signal) {
                    m.serialize_entry("StopSignal", &c.stop_signal)?;
                }
                if let Some(v) = &c.healthcheck {
                    m.serialize_entry("Healthcheck", v)?;
                }
                if c.args_escaped {
                    m.serialize_entry("ArgsEscaped", &true)?;
                }
                if let Some(v) = c.on_build.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("OnBuild", v)?;
                }
                if let Some(v) = c.stop_timeout {
                    m.serialize_entry("StopTimeout", &v)?;
                }
                if let Some(v) = c.shell.as_ref().filter(|v| !v.is_empty()) {
                    m.serialize_entry("Shell", v)?;
                }
                // Docker-only fields, written only when set so nothing is lost.
                for (key, v) in [("Hostname", &c.hostname), ("Domainname", &c.domainname)] {
                    if non_empty(v) {
                        m.serialize_entry(key, v)?;
                    }
                }
                for (key, v) in [
                    ("AttachStdin", c.attach_stdin),
                    ("AttachStdout", c.attach_stdout),
                    ("AttachStderr", c.attach_stderr),
                    ("Tty", c.tty),
                    ("OpenStdin", c.open_stdin),
                    ("StdinOnce", c.stdin_once),
                    ("NetworkDisabled", c.network_disabled),
                ] {
                    if v {
                        m.serialize_entry(key, &v)?;
                    }
                }
                for (key, v) in [("Image", &c.image), ("MacAddress", &c.mac_address)] {
                    if non_empty(v) {
                        m.serialize_entry(key, v)?;
                    }
                }
            }
        }
        for (k, v) in &c.extra {
            if !CONTAINER_CONFIG_KEYS.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Go leaves a field at its zero value when the JSON says `null`; do the same.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `StrSlice`: a JSON array of strings, or a single string meaning a one-element list.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_canonical_json;

    #[test]
    fn docker_shape_writes_what_docker_inspect_prints() {
        let empty = String::from_utf8(to_canonical_json(&ContainerConfig::default())).unwrap();
        assert_eq!(
            empty,
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#
        );
        let oci =
            serde_json::to_string(&ContainerConfig::default().shaped(ConfigShape::Oci)).unwrap();
        assert_eq!(oci, "{}");
    }

    #[test]
    fn cmd_accepts_a_single_string_and_null_fields_as_zero() {
        let c: ContainerConfig =
            serde_json::from_str(r#"{"Cmd":"sh","Entrypoint":null,"Hostname":null,"Tty":null}"#)
                .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.hostname, "");
    }
}
