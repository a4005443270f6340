//! `builder prune`: removes build results nothing needs any more. A build's step images
//! are its cache (an entry names a step's config and layer), so pruning removes the step
//! images no tagged image (or container) descends from, lets gc collect what only they held,
//! and drops the entries left naming missing blobs; `all` forgets every entry too.
//!
//! With Docker's `--filter until=DURATION` and/or `--keep-storage SIZE` (and the configured
//! build cache budget a build enforces when it ends), only some entries go: those not used
//! for `until`, least recently used first (a chain's later steps before its earlier ones),
//! until the cache's size — distinct bytes of the layers its entries name, as `system df`
//! counts it — is at most `keep_storage`. Entries a tagged image or a container descends
//! from are never candidates unless `all`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use strata_oci::Digest;
use strata_store::{BuildCacheEntry, Store};

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

/// Which entries a prune removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePrune {
    /// `-a`: entries tagged images and containers descend from are candidates too.
    pub all: bool,
    /// `--keep-storage`: stop once the cache is at most this many bytes.
    pub keep_storage: Option<u64>,
    /// `--filter until=`: only entries unused for at least this long.
    pub unused_for: Option<Duration>,
    /// An image kept with its build parents whatever the budget (the one a build just made).
    pub keep_image: Option<Digest>,
}

impl CachePrune {
    /// A plain `builder prune [-a]`: no budget, no age filter.
    pub fn everything(all: bool) -> CachePrune {
        CachePrune {
            all,
            ..CachePrune::default()
        }
    }

    fn selective(&self) -> bool {
        self.keep_storage.is_some() || self.unused_for.is_some()
    }
}

/// Prunes the build cache of `store` (see the module docs).
pub fn prune_build_cache(
    store: &Store,
    prune: &CachePrune,
) -> Result<CachePruneReport, BuildError> {
    let entries = store.build_cache_entries()?;
    let step_images: HashSet<&Digest> = entries.iter().map(|(_, e)| &e.config).collect();
    let images = store.images()?;
    let parents: HashMap<&Digest, &Digest> = images
        .iter()
        .filter_map(|i| i.parent.as_ref().map(|p| (&i.id, p)))
        .collect();
    let mut roots: Vec<&Digest> = Vec::new();
    for image in &images {
        if !step_images.contains(&image.id)
            || !store.tags_of(&image.id)?.is_empty()
            || !store.containers_using(&image.id)?.is_empty()
        {
            roots.push(&image.id);
        }
    }
    roots.extend(prune.keep_image.as_ref());
    let mut keep = ancestors(&roots, &parents);
    let mut report = CachePruneReport::default();
    if prune.selective() {
        let content = store.content();
        let sizes: HashMap<&Digest, u64> = entries
            .iter()
            .filter_map(|(_, e)| e.diff_id.as_ref())
            .map(|d| (d, content.size(d).unwrap_or(0)))
            .collect();
        let doomed = select(&entries, &sizes, &keep, &parents, prune);
        report.entries += store.build_cache_remove(&doomed)?;
        let doomed: HashSet<&str> = doomed.into_iter().collect();
        // Step images of the entries that stay (and their parents) stay.
        roots.extend(
            entries
                .iter()
                .filter(|(k, _)| !doomed.contains(k.as_str()))
                .map(|(_, e)| &e.config),
        );
        keep = ancestors(&roots, &parents);
    }
    for image in &images {
        if !keep.contains(&image.id) {
            store.delete_image(&image.id)?;
            report.images.push(image.id.clone());
        }
    }
    if prune.all && !prune.selective() {
        report.entries += store.build_cache_clear()?;
        store.build_steps_clear()?;
    }
    report.reclaimed = store.gc()?.reclaimed_bytes();
    report.entries += store.build_cache_remove_dangling()?;
    Ok(report)
}

/// `ids` and every build parent of them.
fn ancestors<'a>(
    ids: &[&'a Digest],
    parents: &HashMap<&'a Digest, &'a Digest>,
) -> HashSet<&'a Digest> {
    let mut out = HashSet::new();
    for &id in ids {
        let mut current = Some(id);
        while let Some(id) = current {
            if !out.insert(id) {
                break;
            }
            current = parents.get(id).copied();
        }
    }
    out
}

/// The keys a selective prune removes, in the order it removes them.
fn select<'e>(
    entries: &'e [(String, BuildCacheEntry)],
    sizes: &HashMap<&Digest, u64>,
    protected: &HashSet<&Digest>,
    parents: &HashMap<&Digest, &Digest>,
    prune: &CachePrune,
) -> Vec<&'e str> {
    // Bytes per layer and how many entries name it: a layer's bytes leave the total only
    // with the last entry naming it.
    let mut named: HashMap<&Digest, (u64, usize)> = HashMap::new();
    let mut total = 0u64;
    for (_, e) in entries {
        if let Some(d) = &e.diff_id {
            let slot = named.entry(d).or_insert((0, 0));
            if slot.1 == 0 {
                slot.0 = sizes.get(d).copied().unwrap_or(0);
                total += slot.0;
            }
            slot.1 += 1;
        }
    }
    let cutoff = prune.unused_for.map(|age| {
        chrono::Utc::now().timestamp() - i64::try_from(age.as_secs()).unwrap_or(i64::MAX)
    });
    let depth = |d: &Digest| {
        let mut n = 0usize;
        let mut current = parents.get(d);
        while let Some(p) = current {
            n += 1;
            if n > entries.len() + 1 {
                break; // a parent cycle would be a corrupt store; stop counting
            }
            current = parents.get(*p);
        }
        n
    };
    let mut candidates: Vec<(&'e str, &'e BuildCacheEntry, usize)> = entries
        .iter()
        .filter(|(_, e)| prune.all || !protected.contains(&e.config))
        .filter(|(_, e)| cutoff.is_none_or(|c| e.last_used <= c))
        .map(|(k, e)| (k.as_str(), e, depth(&e.config)))
        .collect();
    // Least recently used first; among equals, later steps of a chain first.
    candidates.sort_by(|a, b| a.1.last_used.cmp(&b.1.last_used).then(b.2.cmp(&a.2)));
    let mut out = Vec::new();
    for (key, e, _) in candidates {
        if prune.keep_storage.is_some_and(|budget| total <= budget) {
            break;
        }
        if let Some(slot) = e.diff_id.as_ref().and_then(|d| named.get_mut(d)) {
            slot.1 -= 1;
            if slot.1 == 0 {
                total -= slot.0;
            }
        }
        out.push(key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sde, write};
    use crate::Builder;
    use strata_testkit::temp_store;

    #[test]
    fn keeps_what_tagged_images_descend_from() {
        let (_d, store) = temp_store();
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

        let report = prune_build_cache(&store, &CachePrune::everything(false)).unwrap();
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

        let report = prune_build_cache(&store, &CachePrune::everything(true)).unwrap();
        assert!(report.entries >= 2, "{report:?}");
        assert!(store.build_cache_entries().unwrap().is_empty());
        assert!(store.image(&kept.image_id).unwrap().is_some());
        assert!(store.check().unwrap().is_clean());
    }

    /// Sets the last use of the entries naming `config` to `when` (unix seconds).
    fn used_at(store: &Store, config: &Digest, when: i64) {
        for (key, mut e) in store.build_cache_entries().unwrap() {
            if &e.config == config {
                e.last_used = when;
                store.build_cache_put(&key, &e).unwrap();
            }
        }
    }

    #[test]
    fn keep_storage_removes_least_recently_used_first_and_until_filters() {
        let (_d, store) = temp_store();
        let ctx = tempfile::tempdir().unwrap();
        let (big_a, big_b) = ("a".repeat(4000), "b".repeat(4000));
        write(ctx.path(), &[("a", big_a.as_str()), ("b", big_b.as_str())]);
        let now = chrono::Utc::now().timestamp();
        let a = Builder::new(&store)
            .build("FROM scratch\nCOPY a /a\n", ctx.path(), &sde(1))
            .unwrap();
        let b = Builder::new(&store)
            .build("FROM scratch\nCOPY b /b\n", ctx.path(), &sde(1))
            .unwrap();
        used_at(&store, &a.image_id, now - 100);
        used_at(&store, &b.image_id, now - 10);
        let layer = store.build_cache_usage().unwrap().size / 2;

        // Unused for an hour: none; a budget both fit in: nothing to do.
        for prune in [
            CachePrune {
                unused_for: Some(Duration::from_secs(3600)),
                ..CachePrune::default()
            },
            CachePrune {
                keep_storage: Some(2 * layer),
                ..CachePrune::default()
            },
        ] {
            let report = prune_build_cache(&store, &prune).unwrap();
            assert_eq!((report.entries, report.images.len()), (0, 0), "{prune:?}");
        }
        // One layer's worth: a, the least recently used, goes with its step image.
        let report = prune_build_cache(
            &store,
            &CachePrune {
                keep_storage: Some(layer),
                ..CachePrune::default()
            },
        )
        .unwrap();
        assert_eq!(report.images, vec![a.image_id.clone()]);
        assert_eq!(report.entries, 1);
        assert!(report.reclaimed > 0);
        assert!(store.image(&b.image_id).unwrap().is_some());
        // Unused for 5 s: b; but not the image a caller keeps.
        let keep_b = CachePrune {
            unused_for: Some(Duration::from_secs(5)),
            keep_image: Some(b.image_id.clone()),
            ..CachePrune::default()
        };
        assert_eq!(prune_build_cache(&store, &keep_b).unwrap().entries, 0);
        let report = prune_build_cache(
            &store,
            &CachePrune {
                keep_image: None,
                ..keep_b
            },
        )
        .unwrap();
        assert_eq!(report.images, vec![b.image_id.clone()]);
        assert!(store.build_cache_entries().unwrap().is_empty());
        assert!(store.check().unwrap().is_clean());
    }

    #[test]
    fn a_chain_loses_its_later_steps_first_and_tagged_images_stay() {
        let (_d, store) = temp_store();
        let ctx = tempfile::tempdir().unwrap();
        write(ctx.path(), &[("a", "1"), ("b", "2"), ("t", "3")]);
        let chain = Builder::new(&store)
            .build("FROM scratch\nCOPY a /a\nCOPY b /b\n", ctx.path(), &sde(1))
            .unwrap();
        let tagged = Builder::new(&store)
            .build(
                "FROM scratch\nCOPY t /t\n",
                ctx.path(),
                &BuildOptions {
                    tags: vec!["t:1".into()],
                    ..sde(1)
                },
            )
            .unwrap();
        let old = chrono::Utc::now().timestamp() - 1000;
        for (key, mut e) in store.build_cache_entries().unwrap() {
            e.last_used = old;
            store.build_cache_put(&key, &e).unwrap();
        }
        let total = store.build_cache_usage().unwrap().size;
        // Room for all but the smallest layer: the chain's last step goes, not its first.
        let report = prune_build_cache(
            &store,
            &CachePrune {
                keep_storage: Some(total - 1),
                ..CachePrune::default()
            },
        )
        .unwrap();
        assert_eq!(report.images, vec![chain.image_id.clone()]);
        assert_eq!(report.entries, 1);
        // Nothing left to take but the tagged build's entry, which stays without -a.
        let zero = CachePrune {
            keep_storage: Some(0),
            ..CachePrune::default()
        };
        prune_build_cache(&store, &zero).unwrap();
        let left = store.build_cache_entries().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.config, tagged.image_id);
        let report = prune_build_cache(&store, &CachePrune { all: true, ..zero }).unwrap();
        assert_eq!((report.entries, report.images.len()), (1, 0));
        assert!(store.image(&tagged.image_id).unwrap().is_some());
        assert!(store.check().unwrap().is_clean());
    }

    use crate::BuildOptions;
}
