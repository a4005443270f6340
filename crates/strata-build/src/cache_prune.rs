//! `builder prune`: removes build results nothing needs any more. A build's step images
//! are its cache (an entry names a step's config and layer), so pruning removes the step
//! images no tagged image (or container) descends from, lets gc collect what only they held,
//! and drops the entries left naming missing blobs; `all` forgets every entry too.

use std::collections::{HashMap, HashSet};

use strata_oci::Digest;
use strata_store::Store;

use crate::BuildError;

/// What a prune removed. Plain data: the CLI renders it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    /// Step images removed.
    pub images: Vec<Digest>,
    /// Cache entries forgotten.
    pub entries: usize,
    /// Bytes of blobs and snapshots the garbage collector freed.
    pub reclaimed: u64,
}

/// Prunes the build cache of `store` (see the module docs).
pub fn prune_build_cache(store: &Store, all: bool) -> Result<CachePruneReport, BuildError> {
    let entries = store.build_cache_entries()?;
    let step_images: HashSet<&Digest> = entries.iter().map(|(_, e)| &e.config).collect();
    let images = store.images()?;
    let parents: HashMap<&Digest, &Digest> = images
        .iter()
        .filter_map(|i| i.parent.as_ref().map(|p| (&i.id, p)))
        .collect();
    let mut keep: HashSet<&Digest> = HashSet::new();
    for image in &images {
        let needed = !step_images.contains(&image.id)
            || !store.tags_of(&image.id)?.is_empty()
            || !store.containers_using(&image.id)?.is_empty();
        if !needed {
            continue;
        }
        let mut current = Some(&image.id);
        while let Some(id) = current {
            if !keep.insert(id) {
                break;
            }
            current = parents.get(id).copied();
        }
    }
    let mut report = CachePruneReport::default();
    for image in &images {
        if !keep.contains(&image.id) {
            store.delete_image(&image.id)?;
            report.images.push(image.id.clone());
        }
    }
    if all {
        report.entries += store.build_cache_clear()?;
        store.build_steps_clear()?;
    }
    report.reclaimed = store.gc()?.reclaimed_bytes();
    report.entries += store.build_cache_remove_dangling()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{open_store, sde, write};
    use crate::Builder;

    #[test]
    fn keeps_what_tagged_images_descend_from() {
        let (_d, store) = open_store();
        let ctx = tempfile::tempdir().unwrap();
        write(ctx.path(), &[("a", "1"), ("b", "2")]);
        let df = "FROM scratch\nCOPY a /a\nCOPY b /b\n";
        let kept = Builder::new(&store)
            .build(
                df,
                ctx.path(),
                &BuildOptions {
                    tags: vec!["k:1".into()],
                    ..sde(1)
                },
            )
            .unwrap();
        // An untagged build sharing the first step, then a changed second step.
        write(ctx.path(), &[("b", "3")]);
        let dropped = Builder::new(&store).build(df, ctx.path(), &sde(1)).unwrap();
        let before = store.images().unwrap().len();
        assert_eq!(
            before, 3,
            "two step images of k:1 plus the other build's last step"
        );

        let report = prune_build_cache(&store, false).unwrap();
        assert_eq!(report.images, vec![dropped.image_id.clone()]);
        assert!(report.entries >= 1 && report.reclaimed > 0, "{report:?}");
        assert!(store.image(&kept.image_id).unwrap().is_some());
        // The kept build is still fully cached; the dropped one is not.
        let again = Builder::new(&store)
            .build(
                df,
                ctx.path(),
                &BuildOptions {
                    no_cache: false,
                    ..sde(1)
                },
            )
            .unwrap();
        assert_eq!(again.cached_steps, 1);

        let report = prune_build_cache(&store, true).unwrap();
        assert!(report.entries >= 2, "{report:?}");
        assert!(store.build_cache_entries().unwrap().is_empty());
        assert!(store.image(&kept.image_id).unwrap().is_some());
        assert!(store.check().unwrap().is_clean());
    }

    use crate::BuildOptions;
}
