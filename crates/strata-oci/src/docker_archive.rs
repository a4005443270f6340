//! The files of a `docker save` archive (Docker 20.10) other than blobs: `manifest.json`
//! and the legacy `repositories`. Pure data: reading and writing the tar is the store's job.
//!
//! The archive holds `manifest.json`, `<config hex>.json`, `repositories` and per layer
//! `<v1 id>/{VERSION,json,layer.tar}` (see `v1_image` for the ids). `docker load` only follows
//! `manifest.json`: layer directory names, `VERSION`, `json` and `repositories` are not read
//! (checked with Docker 20.10 by loading an archive whose layer dirs were renamed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::Descriptor;
use crate::reference::Reference;

/// `manifest.json` of a Docker archive.
pub const DOCKER_MANIFEST_FILE: &str = "manifest.json";
/// The legacy `repositories` file of a Docker archive.
pub const DOCKER_REPOSITORIES_FILE: &str = "repositories";
/// Content of every `<v1 id>/VERSION` file.
pub const V1_LAYER_VERSION: &str = "1.0";

/// One image of a Docker archive's `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerArchiveEntry {
    /// Path of the config file in the archive: `<hex>.json` (or `blobs/sha256/<hex>`).
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar references: `busybox:latest`. Written as `null` when empty, like Docker.
    #[serde(
        rename = "RepoTags",
        default,
        serialize_with = "empty_as_null",
        deserialize_with = "null_as_empty"
    )]
    pub repo_tags: Vec<String>,
    /// Paths of the uncompressed layer tars, bottom first: `<v1 id>/layer.tar`.
    #[serde(rename = "Layers", default, deserialize_with = "null_as_empty")]
    pub layers: Vec<String>,
    /// Image ID of the parent image (classic builder images only).
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Foreign layers by diff_id: where to fetch them, since they are not in the archive.
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<Digest, Descriptor>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl DockerArchiveEntry {
    pub fn new(
        config: impl Into<String>,
        repo_tags: Vec<String>,
        layers: Vec<String>,
    ) -> DockerArchiveEntry {
        DockerArchiveEntry {
            config: config.into(),
            repo_tags,
            layers,
            parent: None,
            layer_sources: None,
            extra: BTreeMap::new(),
        }
    }

    /// The digest named by `Config` (`<hex>.json` or `blobs/sha256/<hex>`), if it names one.
    pub fn config_digest(&self) -> Option<Digest> {
        let name = self.config.strip_suffix(".json").unwrap_or(&self.config);
        let hex = name.strip_prefix("blobs/sha256/").unwrap_or(name);
        Digest::from_sha256_hex(hex).ok()
    }

    /// `RepoTags`, parsed and normalized.
    pub fn references(&self) -> Result<Vec<Reference>, Error> {
        self.repo_tags
            .iter()
            .map(|tag| {
                Reference::parse(tag).map_err(|source| Error::InvalidArchiveTag {
                    file: DOCKER_MANIFEST_FILE.to_string(),
                    tag: tag.clone(),
                    source,
                })
            })
            .collect()
    }
}

/// Parses and checks a Docker archive's `manifest.json`: a non-empty array of entries, each
/// with a `Config` and safe relative `Layers` paths.
pub fn parse_docker_manifest(bytes: &[u8]) -> Result<Vec<DockerArchiveEntry>, Error> {
    let invalid = |reason: String| Error::InvalidArchive {
        file: DOCKER_MANIFEST_FILE.to_string(),
        reason,
    };
    let raw: Value = serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: DOCKER_MANIFEST_FILE.to_string(),
        source,
    })?;
    let Value::Array(items) = raw else {
        return Err(invalid("expected a JSON array of images".to_string()));
    };
    if items.is_empty() {
        return Err(invalid("no images".to_string()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if !item.is_object() {
            return Err(invalid(format!("entry {i} is not an object")));
        }
        match item.get("Config") {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(invalid(format!("entry {i} has no Config")))
            }
            Some(_) => return Err(invalid(format!("entry {i}: Config is not a string"))),
        }
        let entry: DockerArchiveEntry =
            serde_json::from_value(item).map_err(|e| invalid(format!("entry {i}: {e}")))?;
        check_member_path(&entry.config)
            .map_err(|r| invalid(format!("entry {i}: Config {:?} {r}", entry.config)))?;
        for layer in &entry.layers {
            check_member_path(layer)
                .map_err(|r| invalid(format!("entry {i}: layer {layer:?} {r}")))?;
        }
        out.push(entry);
    }
    Ok(out)
}

/// An archive member path must stay inside the archive.
fn check_member_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("is empty");
    }
    if path.starts_with('/') {
        return Err("is absolute");
    }
    if path.split('/').any(|c| c == "..") {
        return Err("leaves the archive");
    }
    Ok(())
}

/// The legacy `repositories` file: familiar name → tag → v1 id of the image's top layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Repositories(pub BTreeMap<String, BTreeMap<String, String>>);

impl Repositories {
    /// Records `reference` (if it has a tag; digests are not listed) at `top_v1_id`.
    pub fn add(&mut self, reference: &Reference, top_v1_id: &str) {
        if let Some(tag) = reference.tag() {
            self.0
                .entry(reference.familiar_name())
                .or_default()
                .insert(tag.to_string(), top_v1_id.to_string());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn empty_as_null<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_canonical_json;
    use crate::{v1_layer_ids, ImageConfig};

    const CLASSIC: &str = include_str!("../tests/fixtures/docker-20.10-classic-config.json");
    const MANIFEST: &str = include_str!("../tests/fixtures/docker-save-manifest.json");
    const REPOSITORIES: &str = include_str!("../tests/fixtures/docker-save-repositories");

    fn config(text: &str) -> ImageConfig {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn docker_manifest_round_trips_and_names_its_config() {
        let entries = parse_docker_manifest(MANIFEST.as_bytes()).unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(
            e.config_digest().unwrap().hex(),
            "a109505ef8399e8972cb6bed097f5b7c1959d8c23e5a115263523474139b7318"
        );
        assert_eq!(
            e.references().unwrap()[0].to_string(),
            "docker.io/library/strata-oci-fixture:classic"
        );
        assert_eq!(to_canonical_json(&entries), MANIFEST.trim_end().as_bytes());
        let ids = v1_layer_ids(&config(CLASSIC));
        let paths: Vec<String> = ids.iter().map(|id| format!("{id}/layer.tar")).collect();
        assert_eq!(e.layers, paths);
    }

    #[test]
    fn untagged_entries_write_null_repo_tags_and_keep_unknown_fields() {
        let e = DockerArchiveEntry::new("a.json", vec![], vec!["l/layer.tar".into()]);
        assert_eq!(
            to_canonical_json(&e),
            br#"{"Config":"a.json","RepoTags":null,"Layers":["l/layer.tar"]}"#
        );
        let text =
            br#"[{"Config":"a.json","RepoTags":null,"Layers":[],"Parent":"sha256:x","Future":1}]"#;
        let back = parse_docker_manifest(text).unwrap();
        assert_eq!(back[0].parent.as_deref(), Some("sha256:x"));
        assert_eq!(to_canonical_json(&back), &text[..]);
    }

    #[test]
    fn bad_docker_manifests_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{}", "manifest.json: expected a JSON array of images"),
            (b"[]", "manifest.json: no images"),
            (
                br#"[{"Layers":[]}]"#,
                "manifest.json: entry 0 has no Config",
            ),
            (
                br#"[{"Config":"a.json"},{"Config":""}]"#,
                "manifest.json: entry 1 has no Config",
            ),
            (
                br#"[{"Config":"a.json","Layers":["../x/layer.tar"]}]"#,
                "manifest.json: entry 0: layer \"../x/layer.tar\" leaves the archive",
            ),
            (
                br#"[{"Config":"/a.json"}]"#,
                "manifest.json: entry 0: Config \"/a.json\" is absolute",
            ),
            (
                br#"[{"Config":"a.json","Layers":"x"}]"#,
                "manifest.json: entry 0: invalid type",
            ),
            (b"nope", "manifest.json: expected ident"),
        ];
        for (input, want) in cases {
            let err = parse_docker_manifest(input).unwrap_err().to_string();
            assert!(err.starts_with(want), "got {err:?}, want {want:?}");
        }
        let bad_tag =
            parse_docker_manifest(br#"[{"Config":"a.json","RepoTags":["Bad:tag"]}]"#).unwrap();
        let err = bad_tag[0].references().unwrap_err().to_string();
        assert!(err.contains("must be lowercase"), "{err}");
    }

    #[test]
    fn repositories_file_matches_docker() {
        let mut r = Repositories::default();
        let top = v1_layer_ids(&config(CLASSIC)).pop().unwrap();
        r.add(
            &Reference::parse("strata-oci-fixture:classic").unwrap(),
            &top,
        );
        r.add(&Reference::parse(&format!("x@sha256:{top}")).unwrap(), &top);
        assert_eq!(to_canonical_json(&r), REPOSITORIES.trim_end().as_bytes());
        let back: Repositories = serde_json::from_str(REPOSITORIES).unwrap();
        assert_eq!(back, r);
    }
}
