//! What a user typed (`busybox`, `busybox:1.36`, `5b235cf2573d`, `sha256:…`) → one image,
//! in Docker's order: a tag first, then an image ID or unique ID prefix.

use strata_oci::{Digest, ImageConfig, Reference};
use strata_store::{ImageRecord, Store};

use crate::ImageError;

/// An image found in the store, with its parsed config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub record: ImageRecord,
    pub config: ImageConfig,
    /// Set when the user named the image by a tag (as `rmi` must know).
    pub reference: Option<Reference>,
}

pub fn resolve_image(store: &Store, input: &str) -> Result<ResolvedImage, ImageError> {
    let (id, reference) = resolve_id(store, input)?;
    let record = store
        .image(&id)?
        .ok_or_else(|| ImageError::NotFound(input.to_string()))?;
    let config = load_config(store, &id)?;
    Ok(ResolvedImage {
        record,
        config,
        reference,
    })
}

/// The image with ID `id`.
pub(crate) fn resolve_by_id(store: &Store, id: &Digest) -> Result<ResolvedImage, ImageError> {
    let record = store
        .image(id)?
        .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
    let config = load_config(store, id)?;
    Ok(ResolvedImage {
        record,
        config,
        reference: None,
    })
}

/// Reads and parses an image's config blob.
pub(crate) fn load_config(store: &Store, id: &Digest) -> Result<ImageConfig, ImageError> {
    let bytes = store.content().read_all(id)?;
    serde_json::from_slice(&bytes).map_err(|e| ImageError::InvalidConfig {
        digest: id.clone(),
        reason: e.to_string(),
    })
}

fn resolve_id(store: &Store, input: &str) -> Result<(Digest, Option<Reference>), ImageError> {
    if let Some(hex) = input.strip_prefix("sha256:") {
        return by_id_prefix(store, input, hex).map(|d| (d, None));
    }
    let looks_like_id = !input.is_empty()
        && input.len() <= 64
        && input
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match Reference::parse(input) {
        Ok(reference) => {
            if let Some(digest) = reference.digest() {
                if let Some(id) = by_repo_digest(store, &reference, digest)? {
                    return Ok((id, Some(reference)));
                }
            } else if let Some(id) = store.resolve_tag(&reference.to_string())? {
                return Ok((id, Some(reference)));
            }
            if looks_like_id {
                return by_id_prefix(store, input, input).map(|d| (d, None));
            }
            Err(ImageError::NotFound(input.to_string()))
        }
        // 64-hex names are refused as references but are perfectly good image IDs.
        Err(_) if looks_like_id => by_id_prefix(store, input, input).map(|d| (d, None)),
        Err(e) => Err(e.into()),
    }
}

fn by_id_prefix(store: &Store, input: &str, hex: &str) -> Result<Digest, ImageError> {
    let mut matches = store.resolve_id_prefix(hex)?;
    match matches.len() {
        0 => Err(ImageError::NotFound(input.to_string())),
        1 => Ok(matches.remove(0)),
        count => Err(ImageError::Ambiguous {
            input: input.to_string(),
            count,
        }),
    }
}

/// `name@sha256:…`: the manifest digest an image was pulled or pushed with, or its ID.
fn by_repo_digest(
    store: &Store,
    reference: &Reference,
    digest: &Digest,
) -> Result<Option<Digest>, ImageError> {
    let wanted = format!("{}@{}", reference.name(), digest);
    for image in store.images()? {
        if image.id == *digest || image.manifest.as_ref() == Some(digest) {
            return Ok(Some(image.id));
        }
        if store.repo_digests_of(&image.id)?.contains(&wanted) {
            return Ok(Some(image.id));
        }
    }
    Ok(None)
}
