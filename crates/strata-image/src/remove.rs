//! `strata rmi` and `strata image prune`, with Docker's rules: removing one of several tags
//! only untags; an image a container needs, or one named by ID while tagged in several
//! repositories, needs `-f`; blobs and snapshots go with the garbage collector afterwards.

use strata_oci::{Digest, Reference};
use strata_store::Store;

use crate::resolve::resolve_image;
use crate::ImageError;

/// What a removal did, in the order Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    /// A tag was removed (familiar form, as Docker prints it).
    Untagged(String),
    /// An image record was deleted.
    Deleted(Digest),
}

pub struct PruneReport {
    pub events: Vec<RemoveEvent>,
    /// Bytes of blobs and snapshots the garbage collector freed.
    pub reclaimed: u64,
}

fn familiar(full: &str) -> String {
    Reference::parse(full).map_or_else(|_| full.to_string(), |r| r.familiar())
}

/// `rmi [-f] [--no-prune]`: untags or deletes the image; unless `no_prune`, also deletes the
/// untagged parents nothing else needs (a build's step images), as Docker does.
pub fn remove_image(
    store: &Store,
    input: &str,
    force: bool,
    no_prune: bool,
) -> Result<Vec<RemoveEvent>, ImageError> {
    let resolved = resolve_image(store, input)?;
    let id = resolved.record.id.clone();
    let tags = store.tags_of(&id)?;
    let containers = store.containers_using(&id)?;
    let children: Vec<Digest> = store
        .images()?
        .into_iter()
        .filter(|i| i.parent.as_ref() == Some(&id))
        .map(|i| i.id)
        .collect();
    let mut events = Vec::new();

    if let Some(reference) = resolved.reference.as_ref().filter(|r| r.digest().is_none()) {
        let name = reference.to_string();
        if tags.len() > 1 {
            store.untag(&name)?;
            return Ok(vec![RemoveEvent::Untagged(reference.familiar())]);
        }
        if let Some(container) = containers.first().filter(|_| !force) {
            return Err(ImageError::Conflict {
                image: format!("repository reference {:?}", reference.familiar()),
                reason: format!(
                    "container {} is using its referenced image {}",
                    short(container),
                    id.short()
                ),
            });
        }
        store.untag(&name)?;
        events.push(RemoveEvent::Untagged(reference.familiar()));
    } else {
        if tags.len() > 1 && !force {
            return Err(ImageError::Conflict {
                image: id.short().to_string(),
                reason: "image is referenced in multiple repositories".into(),
            });
        }
        if let Some(container) = containers.first().filter(|_| !force) {
            return Err(ImageError::Conflict {
                image: id.short().to_string(),
                reason: format!("image is being used by container {}", short(container)),
            });
        }
        for tag in &tags {
            store.untag(tag)?;
            events.push(RemoveEvent::Untagged(familiar(tag)));
        }
    }
    if !children.is_empty() {
        return Err(ImageError::Conflict {
            image: id.short().to_string(),
            reason: "image has dependent child images".into(),
        });
    }
    // A container still needs the image's layers: keep the (now untagged) record.
    if containers.is_empty() {
        store.delete_image(&id)?;
        events.push(RemoveEvent::Deleted(id));
        if !no_prune {
            delete_untagged_parents(store, resolved.record.parent, &mut events)?;
        }
        store.gc()?;
    }
    Ok(events)
}

/// Walks up from `parent`, deleting each image that has no tag, no container and no other
/// child left; stops at the first one something still needs.
fn delete_untagged_parents(
    store: &Store,
    mut parent: Option<Digest>,
    events: &mut Vec<RemoveEvent>,
) -> Result<(), ImageError> {
    while let Some(id) = parent {
        let Some(record) = store.image(&id)? else {
            return Ok(());
        };
        let has_child = store
            .images()?
            .iter()
            .any(|i| i.parent.as_ref() == Some(&id));
        if has_child || !store.tags_of(&id)?.is_empty() || !store.containers_using(&id)?.is_empty()
        {
            return Ok(());
        }
        store.delete_image(&id)?;
        events.push(RemoveEvent::Deleted(id));
        parent = record.parent;
    }
    Ok(())
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Removes dangling (untagged) images, or with `all` every image no container uses,
/// then collects what they alone held.
pub fn prune_images(store: &Store, all: bool) -> Result<PruneReport, ImageError> {
    let images = store.images()?;
    let mut events = Vec::new();
    let mut doomed: Vec<Digest> = Vec::new();
    for image in &images {
        let tags = store.tags_of(&image.id)?;
        if (!all && !tags.is_empty()) || !store.containers_using(&image.id)?.is_empty() {
            continue;
        }
        doomed.push(image.id.clone());
    }
    // Parents of images that stay, stay.
    loop {
        let keep: Vec<Digest> = images
            .iter()
            .filter(|i| !doomed.contains(&i.id))
            .filter_map(|i| i.parent.clone())
            .collect();
        let before = doomed.len();
        doomed.retain(|d| !keep.contains(d));
        if doomed.len() == before {
            break;
        }
    }
    for id in &doomed {
        for tag in store.tags_of(id)? {
            store.untag(&tag)?;
            events.push(RemoveEvent::Untagged(familiar(&tag)));
        }
        store.delete_image(id)?;
        events.push(RemoveEvent::Deleted(id.clone()));
    }
    let report = store.gc()?;
    Ok(PruneReport {
        events,
        reclaimed: report.reclaimed_bytes(),
    })
}
