//! The registry's key layout over [`crate::storage::Storage`], in one place.
//!
//! ```text
//! blobs/sha256/<ab>/<hex>                         every blob and manifest, by digest
//! repositories/<name>/_blobs/<hex>                the repository may serve this blob (empty)
//! repositories/<name>/_manifests/<hex>            manifest in the repository (its media type)
//! repositories/<name>/_tags/<tag>                 the tag's manifest digest
//! repositories/<name>/_referrers/<subject>/<hex>  a manifest naming <subject> (its descriptor)
//! uploads/<id>/state                              an upload session (UploadState JSON)
//! ```
//! Repository name components never start with `_` (the OCI name grammar), so a
//! repository's own entries never collide with a nested repository (`a` and `a/b`).

use strata_oci::Digest;

pub(crate) const REPOSITORIES: &str = "repositories/";

pub(crate) fn blob(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("blobs/sha256/{}/{hex}", &hex[..2])
}

/// The prefix all blobs live under, and the digest a blob key names.
pub(crate) const BLOBS: &str = "blobs/sha256/";

pub(crate) fn repository(name: &str) -> String {
    format!("{REPOSITORIES}{name}/")
}

pub(crate) fn blob_link(name: &str, digest: &Digest) -> String {
    format!("{REPOSITORIES}{name}/_blobs/{}", digest.hex())
}

pub(crate) fn blob_links(name: &str) -> String {
    format!("{REPOSITORIES}{name}/_blobs/")
}

pub(crate) fn manifest_link(name: &str, digest: &Digest) -> String {
    format!("{REPOSITORIES}{name}/_manifests/{}", digest.hex())
}

pub(crate) fn manifest_links(name: &str) -> String {
    format!("{REPOSITORIES}{name}/_manifests/")
}

pub(crate) fn tag(name: &str, tag: &str) -> String {
    format!("{REPOSITORIES}{name}/_tags/{tag}")
}

pub(crate) fn tags(name: &str) -> String {
    format!("{REPOSITORIES}{name}/_tags/")
}

pub(crate) fn referrers(name: &str, subject: &Digest) -> String {
    format!("{REPOSITORIES}{name}/_referrers/{}/", subject.hex())
}

pub(crate) fn referrer(name: &str, subject: &Digest, referrer: &Digest) -> String {
    format!(
        "{REPOSITORIES}{name}/_referrers/{}/{}",
        subject.hex(),
        referrer.hex()
    )
}

pub(crate) fn upload_state(id: &str) -> String {
    format!("uploads/{id}/state")
}

/// Entries of a repository directory that belong to the repository itself.
pub(crate) fn is_repository_entry(name: &str) -> bool {
    name.starts_with('_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            blob(&d),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(tag("a/b", "v1"), "repositories/a/b/_tags/v1");
        assert!(referrer("a", &d, &d).starts_with(&referrers("a", &d)));
    }
}
