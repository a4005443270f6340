//! Manifests and indexes: validated on push, stored and served byte-exact, with the
//! referrers of their `subject`.
//!
//! A push writes, each atomically and in this order: the manifest's bytes under its digest,
//! the repository's link (holding the media type), the referrer entry when it has a
//! `subject`, then the tag. A crash between two steps leaves at most an untagged manifest,
//! never a tag naming a manifest that is not there.

use bytes::Bytes;
use serde::Deserialize;
use strata_oci::media_type as mt;
use strata_oci::{to_canonical_json, Descriptor, Digest, Index, Manifest};

use crate::api_error::{ApiError, ErrorCode};
use crate::layout;
use crate::names;
use crate::registry::Registry;

/// A manifest reference of a URL: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestRef {
    Tag(String),
    Digest(Digest),
}

impl ManifestRef {
    /// `None` when it is neither a valid tag nor a sha256 digest.
    pub fn parse(s: &str) -> Option<ManifestRef> {
        if s.contains(':') {
            Digest::parse(s).ok().map(ManifestRef::Digest)
        } else if names::valid_tag(s) {
            Some(ManifestRef::Tag(s.to_string()))
        } else {
            None
        }
    }
}

/// A manifest the repository has.
#[derive(Clone, Debug)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// What a push created.
#[derive(Debug)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// The fields that decide how a document is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
}

/// `type/subtype` of a Content-Type, parameters dropped.
fn bare_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

impl Registry {
    /// Finds a manifest by tag or digest.
    pub async fn resolve_manifest(
        &self,
        name: &str,
        reference: &ManifestRef,
    ) -> Result<Option<StoredManifest>, ApiError> {
        let digest = match reference {
            ManifestRef::Digest(d) => d.clone(),
            ManifestRef::Tag(tag) => {
                let Some(text) = self.storage.get(&layout::tag(name, tag)).await? else {
                    return Ok(None);
                };
                match std::str::from_utf8(&text)
                    .ok()
                    .and_then(|t| Digest::parse(t.trim()).ok())
                {
                    Some(d) => d,
                    None => {
                        tracing::error!(repository = name, tag, "tag file does not hold a digest");
                        return Ok(None);
                    }
                }
            }
        };
        let Some(media_type) = self
            .storage
            .get(&layout::manifest_link(name, &digest))
            .await?
        else {
            return Ok(None);
        };
        let Some(meta) = self.storage.head(&layout::blob(&digest)).await? else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            digest,
            media_type: String::from_utf8_lossy(&media_type).into_owned(),
            size: meta.size,
        }))
    }

    /// A manifest's bytes as pushed.
    pub async fn get_manifest(
        &self,
        name: &str,
        reference: &ManifestRef,
    ) -> Result<Option<(StoredManifest, Bytes)>, ApiError> {
        let Some(m) = self.resolve_manifest(name, reference).await? else {
            return Ok(None);
        };
        let Some(bytes) = self.storage.get(&layout::blob(&m.digest)).await? else {
            return Ok(None);
        };
        Ok(Some((m, bytes)))
    }

    /// Validates and stores a manifest (PUT), tagged by its reference when that is a tag and
    /// by every one of `tags` (the `?tag=` parameters of a push by digest).
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &ManifestRef,
        tags: &[String],
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<PushedManifest, ApiError> {
        if let Some(bad) = tags.iter().find(|t| !names::valid_tag(t)) {
            return Err(ApiError::manifest_invalid(format!("invalid tag {bad:?}")));
        }
        let digest = Digest::sha256_of(&body);
        if let ManifestRef::Digest(d) = reference {
            if d != &digest {
                return Err(ApiError::digest_invalid(format!(
                    "the manifest's digest is {digest}, not {d}"
                )));
            }
        }
        let probe: Probe = serde_json::from_slice(&body)
            .map_err(|e| ApiError::manifest_invalid(format!("manifest is not valid JSON: {e}")))?;
        let header_type = content_type.map(bare_type).filter(|t| !t.is_empty());
        if probe.schema_version.as_ref().and_then(|v| v.as_u64()) == Some(1)
            || header_type.is_some_and(mt::is_schema1)
            || probe.media_type.as_deref().is_some_and(mt::is_schema1)
        {
            return Err(ApiError::manifest_invalid(
                "schema 1 manifests are not supported: push schema 2 or OCI manifests",
            ));
        }
        let media_type = match (&probe.media_type, header_type) {
            (Some(body_type), Some(h)) if body_type != h && h != "application/json" => {
                return Err(ApiError::manifest_invalid(format!(
                    "the manifest's mediaType {body_type} does not match its Content-Type {h}"
                )));
            }
            (Some(body_type), _) => body_type.clone(),
            (None, Some(h)) if mt::is_manifest(h) || mt::is_index(h) => h.to_string(),
            (None, _) if probe.manifests.is_some() => mt::OCI_INDEX.to_string(),
            (None, _) if probe.config.is_some() => mt::OCI_MANIFEST.to_string(),
            (None, _) => {
                return Err(ApiError::manifest_invalid(
                    "cannot tell the manifest's type: no mediaType and no config or manifests",
                ))
            }
        };
        let (subject, references, artifact_type, annotations) = if mt::is_manifest(&media_type) {
            let m: Manifest = serde_json::from_slice(&body)
                .map_err(|e| ApiError::manifest_invalid(format!("invalid image manifest: {e}")))?;
            if m.schema_version != 2 {
                return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
            }
            let artifact = m
                .artifact_type
                .clone()
                .or_else(|| Some(m.config.media_type.clone()));
            let mut refs = vec![m.config.clone()];
            refs.extend(m.layers.iter().cloned());
            (m.subject, Refs::Blobs(refs), artifact, m.annotations)
        } else if mt::is_index(&media_type) {
            let i: Index = serde_json::from_slice(&body)
                .map_err(|e| ApiError::manifest_invalid(format!("invalid image index: {e}")))?;
            if i.schema_version != 2 {
                return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
            }
            (
                i.subject,
                Refs::Manifests(i.manifests),
                i.artifact_type,
                i.annotations,
            )
        } else {
            return Err(ApiError::manifest_invalid(format!(
                "unsupported manifest media type {media_type}"
            )));
        };

        let guard = self.storage.reference_guard().await?;
        self.check_references(name, &references).await?;
        let blob_key = layout::blob(&digest);
        let link = layout::manifest_link(name, &digest);
        let new_link = self.storage.head(&link).await?.is_none();
        if new_link {
            self.check_quota(name, body.len() as u64)
                .await
                .inspect_err(|_| {
                    crate::metrics::add(&self.metrics.quota_denied, 1);
                })?;
        }
        if !self.storage.touch(&blob_key).await? {
            self.storage.put(&blob_key, body.clone()).await?;
        }
        self.storage
            .put(&link, Bytes::from(media_type.clone().into_bytes()))
            .await?;
        if new_link {
            self.quotas.charge(name, body.len() as u64);
        }
        crate::metrics::add(&self.metrics.bytes_received, body.len() as u64);
        if let Some(subject) = &subject {
            let mut d = Descriptor::new(&media_type, digest.clone(), body.len() as u64);
            d.artifact_type = artifact_type;
            d.annotations = annotations;
            self.storage
                .put(
                    &layout::referrer(name, &subject.digest, &digest),
                    Bytes::from(to_canonical_json(&d)),
                )
                .await?;
        }
        let by_reference = match reference {
            ManifestRef::Tag(tag) => Some(tag),
            ManifestRef::Digest(_) => None,
        };
        for tag in by_reference.into_iter().chain(tags) {
            self.storage
                .put(&layout::tag(name, tag), Bytes::from(digest.to_string()))
                .await?;
        }
        // The tags are written under the same guard as the link: a collection's sweep sees
        // either no link touched since its mark or the tag that keeps the manifest.
        drop(guard);
        Ok(PushedManifest {
            digest,
            subject: subject.map(|s| s.digest),
        })
    }

    /// Keeps a manifest fetched from a mirror's upstream (already verified against the
    /// digest asked for): its blob, its link and, when fetched by tag, the tag, whose time
    /// says when the upstream last confirmed it. Its blobs arrive later, on demand, so the
    /// references are not checked as a push's are.
    pub(crate) async fn cache_manifest(
        &self,
        name: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, ApiError> {
        let digest = Digest::sha256_of(bytes);
        let _guard = self.storage.reference_guard().await?;
        let blob_key = layout::blob(&digest);
        if !self.storage.touch(&blob_key).await? {
            self.storage
                .put(&blob_key, Bytes::copy_from_slice(bytes))
                .await?;
        }
        self.storage
            .put(
                &layout::manifest_link(name, &digest),
                Bytes::from(media_type.to_owned().into_bytes()),
            )
            .await?;
        if let Some(tag) = tag {
            self.storage
                .put(&layout::tag(name, tag), Bytes::from(digest.to_string()))
                .await?;
        }
        Ok(digest)
    }

    /// Every blob (or child manifest) a manifest names must be in the repository, with the
    /// size the descriptor says; each is touched first so a concurrent collection keeps it.
    async fn check_references(&self, name: &str, refs: &Refs) -> Result<(), ApiError> {
        let missing = |d: &Descriptor, why: &str| {
            ApiError::new(
                ErrorCode::ManifestBlobUnknown,
                format!("{why} {} of the manifest", d.digest),
            )
            .with_detail(serde_json::json!({ "digest": d.digest.to_string() }))
        };
        match refs {
            Refs::Blobs(descriptors) => {
                for d in descriptors {
                    // Foreign layers are fetched from their URLs, never pushed.
                    if mt::is_foreign_layer(&d.media_type) && d.urls.is_some() {
                        continue;
                    }
                    let key = layout::blob(&d.digest);
                    if !self.links(name, &d.digest).await? || !self.storage.touch(&key).await? {
                        return Err(missing(d, "unknown blob"));
                    }
                    match self.storage.head(&key).await? {
                        Some(m) if m.size == d.size => {}
                        Some(m) => {
                            return Err(ApiError::manifest_invalid(format!(
                                "blob {} has {} bytes, the manifest says {}",
                                d.digest, m.size, d.size
                            )))
                        }
                        None => return Err(missing(d, "unknown blob")),
                    }
                }
            }
            Refs::Manifests(descriptors) => {
                for d in descriptors {
                    let linked = self
                        .storage
                        .head(&layout::manifest_link(name, &d.digest))
                        .await?
                        .is_some();
                    if !linked || !self.storage.touch(&layout::blob(&d.digest)).await? {
                        return Err(missing(d, "unknown manifest"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes a tag, or a manifest by digest with the tags naming it and its referrer entry.
    pub async fn delete_manifest(
        &self,
        name: &str,
        reference: &ManifestRef,
    ) -> Result<(), ApiError> {
        match reference {
            ManifestRef::Tag(tag) => {
                if !self.storage.delete(&layout::tag(name, tag)).await? {
                    return Err(ApiError::manifest_unknown(tag));
                }
            }
            ManifestRef::Digest(digest) => {
                let link = layout::manifest_link(name, digest);
                if self.storage.head(&link).await?.is_none() {
                    return Err(ApiError::manifest_unknown(digest.as_str()));
                }
                self.unlink_manifest(name, digest).await?;
            }
        }
        Ok(())
    }

    /// Removes a manifest from a repository: its tags, its referrer entry, then its link.
    pub(crate) async fn unlink_manifest(
        &self,
        name: &str,
        digest: &Digest,
    ) -> Result<(), crate::storage::StorageError> {
        for tag in self.storage.list(&layout::tags(name)).await?.objects {
            let key = layout::tag(name, &tag);
            if let Some(v) = self.storage.get(&key).await? {
                if v.as_ref() == digest.as_str().as_bytes() {
                    self.storage.delete(&key).await?;
                }
            }
        }
        if let Some(bytes) = self.storage.get(&layout::blob(digest)).await? {
            #[derive(Deserialize)]
            struct WithSubject {
                subject: Option<Descriptor>,
            }
            if let Ok(WithSubject {
                subject: Some(subject),
            }) = serde_json::from_slice(&bytes)
            {
                self.storage
                    .delete(&layout::referrer(name, &subject.digest, digest))
                    .await?;
            }
        }
        self.storage
            .delete(&layout::manifest_link(name, digest))
            .await?;
        self.quotas.forget(name);
        Ok(())
    }

    /// The referrers of `subject` as an OCI index, filtered by artifact type. The bool says
    /// whether the filter was applied.
    pub async fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut manifests = Vec::new();
        for hex in self
            .storage
            .list(&layout::referrers(name, subject))
            .await?
            .objects
        {
            let Ok(referrer) = Digest::from_sha256_hex(&hex) else {
                continue;
            };
            let Some(bytes) = self
                .storage
                .get(&layout::referrer(name, subject, &referrer))
                .await?
            else {
                continue;
            };
            let Ok(d) = serde_json::from_slice::<Descriptor>(&bytes) else {
                tracing::warn!(repository = name, %referrer, "unreadable referrer entry");
                continue;
            };
            if artifact_type.is_some_and(|t| d.artifact_type.as_deref() != Some(t)) {
                continue;
            }
            manifests.push(d);
        }
        Ok(to_canonical_json(&Index::new_oci(manifests)))
    }
}

/// What a pushed document references.
enum Refs {
    /// An image manifest's config and layers: blobs.
    Blobs(Vec<Descriptor>),
    /// An index's entries: manifests.
    Manifests(Vec<Descriptor>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(
            ManifestRef::parse("latest"),
            Some(ManifestRef::Tag("latest".into()))
        );
        let d = Digest::sha256_of(b"x");
        assert_eq!(ManifestRef::parse(d.as_str()), Some(ManifestRef::Digest(d)));
        assert_eq!(ManifestRef::parse("sha256:short"), None);
        assert_eq!(ManifestRef::parse("-bad"), None);
        assert_eq!(
            bare_type("application/json; charset=utf-8"),
            "application/json"
        );
    }
}
