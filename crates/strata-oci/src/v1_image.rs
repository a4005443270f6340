//! Docker's legacy v1 layer ids and `<v1 id>/json` files of a `docker save` archive,
//! computed byte-for-byte as Docker 20.10 does (`image/v1` `CreateID`, `tarexport` save).

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::config::ImageConfig;
use crate::container_config::{ConfigShape, ContainerConfig};
use crate::digest::{chain_ids, Digest};
use crate::json::to_go_json;

/// The `created` Docker gives every v1 layer but the top one.
const V1_LEGACY_CREATED: &str = "1970-01-01T00:00:00Z";
/// Go's zero time, what Docker writes when an image has no `created`.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Docker's legacy v1 layer ids for an image, bottom first, exactly as `docker save`
/// (Docker 20.10) computes them: for each layer, the sha256 of a JSON of the v1 image
/// (`created` 1970 for all but the top layer, which carries the image's config) plus the
/// layer's chain id and the parent's v1 id. `docker load` does not check them (it follows
/// `manifest.json`), but matching them makes `strata save` archives identical to Docker's.
pub fn v1_layer_ids(config: &ImageConfig) -> Vec<String> {
    v1_layers(config).into_iter().map(|(id, _)| id).collect()
}

/// The `<v1 id>/json` file content of every layer, bottom first, with its v1 id.
pub fn v1_layer_json(config: &ImageConfig) -> Vec<(String, Vec<u8>)> {
    v1_layers(config)
}

fn v1_layers(config: &ImageConfig) -> Vec<(String, Vec<u8>)> {
    let chains = chain_ids(&config.rootfs.diff_ids);
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(chains.len());
    let mut parent: Option<String> = None;
    for (i, chain) in chains.iter().enumerate() {
        let top = i + 1 == chains.len();
        let image = if top {
            V1Image::of(config)
        } else {
            V1Image::legacy()
        };
        // Docker sets `os` after computing the id, so it is part of `json` only.
        let id_source = image.id_json(chain, parent.as_deref());
        let id = Digest::sha256_of(&id_source).hex().to_string();
        let mut written = image;
        written.os = (!config.os.is_empty()).then_some(config.os.as_str());
        let json = written.layer_json(&id, parent.as_deref());
        parent = Some(id.clone());
        out.push((id, json));
    }
    out
}

/// Docker's `image.V1Image`, borrowed from an image config.
struct V1Image<'a> {
    comment: Option<&'a str>,
    created: String,
    container: Option<&'a str>,
    container_config: Option<&'a ContainerConfig>,
    docker_version: Option<&'a str>,
    author: Option<&'a str>,
    config: Option<&'a ContainerConfig>,
    architecture: Option<&'a str>,
    variant: Option<&'a str>,
    os: Option<&'a str>,
    size: Option<&'a Value>,
}

impl<'a> V1Image<'a> {
    fn legacy() -> V1Image<'a> {
        V1Image {
            comment: None,
            created: V1_LEGACY_CREATED.to_string(),
            container: None,
            container_config: None,
            docker_version: None,
            author: None,
            config: None,
            architecture: None,
            variant: None,
            os: None,
            size: None,
        }
    }

    fn of(c: &'a ImageConfig) -> V1Image<'a> {
        let non_empty = |s: &'a Option<String>| s.as_deref().filter(|s| !s.is_empty());
        V1Image {
            comment: non_empty(&c.comment),
            created: c
                .created
                .as_deref()
                .map_or_else(|| GO_ZERO_TIME.to_string(), go_time),
            container: non_empty(&c.container),
            container_config: c.container_config.as_ref(),
            docker_version: non_empty(&c.docker_version),
            author: non_empty(&c.author),
            config: c.config.as_ref(),
            architecture: Some(c.architecture.as_str()).filter(|s| !s.is_empty()),
            variant: non_empty(&c.variant),
            os: Some(c.os.as_str()).filter(|s| !s.is_empty()),
            size: c
                .extra
                .get("Size")
                .filter(|v| v.as_i64().is_some_and(|n| n != 0)),
        }
    }

    /// The fields in Go's struct order, omit-empty applied, `container_config` always present.
    fn fields(&self) -> Vec<(&'static str, V1Field<'_>)> {
        let mut f = Vec::new();
        let push_str = |f: &mut Vec<_>, key, v: Option<&'a str>| {
            if let Some(v) = v {
                f.push((key, V1Field::Str(v)));
            }
        };
        push_str(&mut f, "comment", self.comment);
        f.push(("created", V1Field::Str(&self.created)));
        push_str(&mut f, "container", self.container);
        f.push(("container_config", V1Field::Config(self.container_config)));
        push_str(&mut f, "docker_version", self.docker_version);
        push_str(&mut f, "author", self.author);
        if let Some(c) = self.config {
            f.push(("config", V1Field::Config(Some(c))));
        }
        push_str(&mut f, "architecture", self.architecture);
        push_str(&mut f, "variant", self.variant);
        push_str(&mut f, "os", self.os);
        if let Some(size) = self.size {
            f.push(("Size", V1Field::Value(size)));
        }
        f
    }

    /// What Docker hashes for the v1 id: the fields through a Go map (sorted keys) plus
    /// `layer_id` and `parent`, both as full digests.
    fn id_json(&self, chain: &Digest, parent: Option<&str>) -> Vec<u8> {
        let mut map: BTreeMap<&str, V1Field<'_>> = self.fields().into_iter().collect();
        map.insert("layer_id", V1Field::Str(chain.as_str()));
        let parent_digest = parent.map(|p| format!("sha256:{p}"));
        if let Some(p) = &parent_digest {
            map.insert("parent", V1Field::Str(p));
        }
        to_go_json(&map).unwrap_or_default()
    }

    /// The `<v1 id>/json` file: struct order, `id` and `parent` as bare hex first.
    fn layer_json(&self, id: &str, parent: Option<&str>) -> Vec<u8> {
        let mut fields: Vec<(&str, V1Field<'_>)> = vec![("id", V1Field::Str(id))];
        if let Some(p) = parent {
            fields.push(("parent", V1Field::Str(p)));
        }
        fields.extend(self.fields());
        to_go_json(&OrderedMap(&fields)).unwrap_or_default()
    }
}

/// A timestamp as Go re-marshals a parsed RFC 3339 time: trailing zeros of the fraction
/// dropped (Docker parses `created` and writes it back). Anything unparsable is kept as is.
fn go_time(t: &str) -> String {
    let Some(dot) = t.find('.') else {
        return t.to_string();
    };
    let zone = t[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(t.len(), |i| dot + 1 + i);
    let fraction = t[dot + 1..zone].trim_end_matches('0');
    let dot_and_fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    format!("{}{dot_and_fraction}{}", &t[..dot], &t[zone..])
}

enum V1Field<'a> {
    Str(&'a str),
    /// Written in Docker's shape; `None` is Go's zero `container.Config`.
    Config(Option<&'a ContainerConfig>),
    Value(&'a Value),
}

impl Serialize for V1Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            V1Field::Str(v) => v.serialize(s),
            // Docker re-marshals its own struct, which drops fields it does not know.
            V1Field::Config(Some(c)) if !c.extra.is_empty() => {
                let known = ContainerConfig {
                    extra: BTreeMap::new(),
                    ..(*c).clone()
                };
                known.shaped(ConfigShape::Docker).serialize(s)
            }
            V1Field::Config(Some(c)) => c.shaped(ConfigShape::Docker).serialize(s),
            V1Field::Config(None) => ContainerConfig::default().serialize(s),
            V1Field::Value(v) => v.serialize(s),
        }
    }
}

/// Key/value pairs written as a JSON object in the given order.
struct OrderedMap<'a, V>(&'a [(&'a str, V)]);

impl<V: Serialize> Serialize for OrderedMap<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSIC: &str = include_str!("../tests/fixtures/docker-20.10-classic-config.json");
    const BUILDKIT: &str = include_str!("../tests/fixtures/docker-20.10-buildkit-config.json");
    const IMPORT: &str = include_str!("../tests/fixtures/docker-20.10-import-config.json");
    const CLASSIC_LAYERS: [(&str, &str); 3] = [
        (
            "7dc99bacf8b9592b127096e352d688b5ada66ece1dadfc35beecedc8f40fafab",
            include_str!("../tests/fixtures/docker-save-layer-7dc99bacf8b9592b127096e352d688b5ada66ece1dadfc35beecedc8f40fafab.json"),
        ),
        (
            "7077d131a5ae45623f97a30936cc24220c5134113dbce794761aba738a69f874",
            include_str!("../tests/fixtures/docker-save-layer-7077d131a5ae45623f97a30936cc24220c5134113dbce794761aba738a69f874.json"),
        ),
        (
            "9e3a528c3cbe05457bb0ee6705546291520e416ed402f76cc9638f6fce69d35d",
            include_str!("../tests/fixtures/docker-save-layer-9e3a528c3cbe05457bb0ee6705546291520e416ed402f76cc9638f6fce69d35d.json"),
        ),
    ];
    const BUILDKIT_TOP: &str = include_str!(
        "../tests/fixtures/docker-save-buildkit-top-layer-b0c810da31d66c26f877c0cf45a888d7a1e6e6a0237a11e035c08b7023ad1347.json"
    );

    #[test]
    fn times_are_written_as_go_does() {
        let cases = [
            (
                "2026-11-23T11:54:36.255829261Z",
                "2026-11-23T11:54:36.255829261Z",
            ),
            ("2026-11-23T11:54:36.250000000Z", "2026-11-23T11:54:36.25Z"),
            ("2026-11-23T11:54:36.000Z", "2026-11-23T11:54:36Z"),
            (
                "2026-11-23T11:54:36.100+02:00",
                "2026-11-23T11:54:36.1+02:00",
            ),
            ("2026-11-23T11:54:36Z", "2026-11-23T11:54:36Z"),
        ];
        for (input, want) in cases {
            assert_eq!(go_time(input), want);
        }
    }

    #[test]
    fn unknown_container_config_fields_are_left_out_as_docker_does() {
        let mut c = config(BUILDKIT);
        let plain = v1_layer_json(&c);
        if let Some(cfg) = c.config.as_mut() {
            cfg.extra.insert("Future".into(), Value::Bool(true));
        }
        assert_eq!(v1_layer_json(&c), plain);
    }

    fn config(text: &str) -> ImageConfig {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn v1_ids_and_json_match_docker_save_byte_for_byte() {
        let got = v1_layer_json(&config(CLASSIC));
        assert_eq!(got.len(), 3);
        for ((id, json), (want_id, want_json)) in got.iter().zip(CLASSIC_LAYERS) {
            assert_eq!(id, want_id);
            assert_eq!(std::str::from_utf8(json).unwrap(), want_json.trim_end());
        }
    }

    #[test]
    fn v1_ids_of_a_buildkit_image_match_docker_save() {
        let got = v1_layer_json(&config(BUILDKIT));
        let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "7dc99bacf8b9592b127096e352d688b5ada66ece1dadfc35beecedc8f40fafab",
                "7077d131a5ae45623f97a30936cc24220c5134113dbce794761aba738a69f874",
                "b0c810da31d66c26f877c0cf45a888d7a1e6e6a0237a11e035c08b7023ad1347",
            ]
        );
        assert_eq!(
            std::str::from_utf8(&got[2].1).unwrap(),
            BUILDKIT_TOP.trim_end()
        );
        // The same image saved twice gives the same ids; another image's top differs.
        assert_eq!(v1_layer_ids(&config(BUILDKIT)), ids);
        assert_ne!(
            v1_layer_ids(&config(IMPORT)),
            v1_layer_ids(&config(CLASSIC))[..1]
        );
    }
}
