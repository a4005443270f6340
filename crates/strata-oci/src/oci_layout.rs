//! The files of an OCI image layout: `oci-layout`, `index.json` (annotations naming the
//! images) and `blobs/sha256/<hex>`. Pure data: reading and writing them is the store's job.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{Descriptor, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::reference::Reference;

/// `oci-layout` marker file of an OCI layout.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// `index.json` of an OCI layout.
pub const OCI_INDEX_FILE: &str = "index.json";
/// The layout version strata writes and reads.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

/// The `oci-layout` file: `{"imageLayoutVersion":"1.0.0"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciLayout {
    #[serde(rename = "imageLayoutVersion")]
    pub image_layout_version: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Default for OciLayout {
    fn default() -> OciLayout {
        OciLayout {
            image_layout_version: OCI_LAYOUT_VERSION.to_string(),
            extra: BTreeMap::new(),
        }
    }
}

/// Parses and checks an `oci-layout` file (version 1.x).
pub fn parse_oci_layout(bytes: &[u8]) -> Result<OciLayout, Error> {
    let layout: OciLayout = serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: OCI_LAYOUT_FILE.to_string(),
        source,
    })?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(Error::InvalidArchive {
            file: OCI_LAYOUT_FILE.to_string(),
            reason: format!(
                "unsupported imageLayoutVersion {:?}",
                layout.image_layout_version
            ),
        });
    }
    Ok(layout)
}

/// Path of a blob inside an OCI layout: `blobs/sha256/<hex>`.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// The digest an OCI layout path names, if it is `blobs/sha256/<hex>` (a leading `./` allowed).
pub fn blob_path_digest(path: &str) -> Option<Digest> {
    let path = path.strip_prefix("./").unwrap_or(path);
    Digest::from_sha256_hex(path.strip_prefix("blobs/sha256/")?).ok()
}

/// The annotations an index entry of a saved image carries, as containerd and Docker write
/// them: the full name in `io.containerd.image.name`, the tag in `org.opencontainers.image.ref.name`.
pub fn layout_annotations(reference: &Reference) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(ANNOTATION_IMAGE_NAME.to_string(), reference.to_string());
    if let Some(tag) = reference.tag() {
        a.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
    }
    a
}

/// The image name an OCI layout index entry gives: `io.containerd.image.name`, else a
/// `org.opencontainers.image.ref.name` that is a full reference (skopeo/podman write
/// `name:tag`). A ref name that is only a tag (`latest`) names no repository: `None`.
pub fn layout_reference(entry: &Descriptor) -> Option<Reference> {
    if let Some(name) = entry.annotation(ANNOTATION_IMAGE_NAME) {
        return Reference::parse(name).ok();
    }
    let name = entry.annotation(ANNOTATION_REF_NAME)?;
    if name.contains(['/', ':', '@']) {
        return Reference::parse(name).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_canonical_json;

    #[test]
    fn oci_layout_shapes() {
        assert_eq!(
            to_canonical_json(&OciLayout::default()),
            br#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert!(parse_oci_layout(br#"{"imageLayoutVersion":"1.0.0"}"#).is_ok());
        let err = parse_oci_layout(br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "oci-layout: unsupported imageLayoutVersion \"2.0.0\""
        );
        let d = Digest::sha256_of(b"x");
        assert_eq!(blob_path(&d), format!("blobs/sha256/{}", d.hex()));
        assert_eq!(blob_path_digest(&blob_path(&d)), Some(d.clone()));
        assert_eq!(
            blob_path_digest(&format!("./{}", blob_path(&d))),
            Some(d.clone())
        );
        assert_eq!(blob_path_digest("blobs/sha256/xyz"), None);
        assert_eq!(blob_path_digest("index.json"), None);
    }

    #[test]
    fn layout_annotations_name_the_image() {
        let r = Reference::parse("busybox").unwrap();
        let a = layout_annotations(&r);
        assert_eq!(a[ANNOTATION_IMAGE_NAME], "docker.io/library/busybox:latest");
        assert_eq!(a[ANNOTATION_REF_NAME], "latest");
        let d = Descriptor::new(crate::media_type::OCI_MANIFEST, Digest::sha256_of(b"m"), 1);
        assert_eq!(layout_reference(&d.clone().with_annotations(a)), Some(r));
        let mut tag_only = BTreeMap::new();
        tag_only.insert(ANNOTATION_REF_NAME.to_string(), "latest".to_string());
        assert_eq!(
            layout_reference(&d.clone().with_annotations(tag_only)),
            None
        );
        let mut full = BTreeMap::new();
        full.insert(
            ANNOTATION_REF_NAME.to_string(),
            "localhost/app:1".to_string(),
        );
        assert_eq!(
            layout_reference(&d.with_annotations(full))
                .unwrap()
                .to_string(),
            "localhost/app:1"
        );
    }
}
