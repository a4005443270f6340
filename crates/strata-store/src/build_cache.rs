//! The build-cache index: a build step's cache key → the image config and layer it produced;
//! and per build step position, the inputs of the last key computed there (opaque bytes the
//! builder writes, to explain the next miss).
//!
//! Entries only point at blobs and snapshots; they never keep them alive. A caller must
//! check that what an entry names is still present (gc may have removed it) before reusing it.

use std::collections::{HashMap, HashSet};

use rusqlite::OptionalExtension;
use serde::Serialize;
use strata_oci::Digest;

use crate::db::{digest_col, opt_digest_col};
use crate::error::StoreError;
use crate::store::Store;

/// What one cached build step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCacheEntry {
    /// The image config after the step (a blob in the content store).
    pub config: Digest,
    /// The layer the step added (an uncompressed tar blob), None for metadata-only steps.
    pub diff_id: Option<Digest>,
    /// When the entry was recorded, unix seconds.
    pub created: i64,
    /// When a build last reused it (or, never reused, when it was recorded), unix seconds:
    /// what `builder prune --filter until=` and `--keep-storage` go by, oldest first.
    pub last_used: i64,
}

impl Store {
    /// The entry recorded for `key`, if any.
    pub fn build_cache_get(&self, key: &str) -> Result<Option<BuildCacheEntry>, StoreError> {
        let db = self.db();
        db.read("reading the build cache", |tx| {
            let row = tx
                .query_row(
                    "SELECT config, diff_id, created, last_used FROM build_cache \
                     WHERE cache_key = ?1",
                    [key],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(db.sql_err("reading the build cache"))?;
            row.map(|(config, diff_id, created, last_used)| {
                Ok(BuildCacheEntry {
                    config: digest_col("build_cache", config)?,
                    diff_id: opt_digest_col("build_cache", diff_id)?,
                    created,
                    last_used,
                })
            })
            .transpose()
        })
    }

    /// Records (or replaces) the entry for `key`.
    pub fn build_cache_put(&self, key: &str, entry: &BuildCacheEntry) -> Result<(), StoreError> {
        let db = self.db();
        db.write("recording a build cache entry", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO build_cache \
                 (cache_key, config, diff_id, created, last_used) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    key,
                    entry.config.as_str(),
                    entry.diff_id.as_ref().map(Digest::as_str),
                    entry.created,
                    entry.last_used
                ],
            )
            .map_err(db.sql_err("recording a build cache entry"))?;
            Ok(())
        })
    }

    /// Records that a build reused the entry for `key` at `when` (unix seconds); an entry
    /// already used later keeps its time. A missing entry is not an error (a concurrent prune).
    pub fn build_cache_touch(&self, key: &str, when: i64) -> Result<(), StoreError> {
        let db = self.db();
        db.write("recording a build cache hit", |tx| {
            tx.execute(
                "UPDATE build_cache SET last_used = ?2 WHERE cache_key = ?1 AND last_used < ?2",
                rusqlite::params![key, when],
            )
            .map_err(db.sql_err("recording a build cache hit"))?;
            Ok(())
        })
    }

    /// Forgets the entries for `keys` (one transaction); returns how many there were.
    pub fn build_cache_remove(&self, keys: &[&str]) -> Result<usize, StoreError> {
        let db = self.db();
        db.write("pruning the build cache", |tx| {
            let mut removed = 0;
            for key in keys {
                removed += tx
                    .execute("DELETE FROM build_cache WHERE cache_key = ?1", [key])
                    .map_err(db.sql_err("pruning the build cache"))?;
            }
            Ok(removed)
        })
    }

    /// Forgets every build cache entry; returns how many there were.
    pub fn build_cache_clear(&self) -> Result<usize, StoreError> {
        let db = self.db();
        db.write("clearing the build cache", |tx| {
            tx.execute("DELETE FROM build_cache", [])
                .map_err(db.sql_err("clearing the build cache"))
        })
    }
}

/// Step positions whose inputs are kept; the oldest records go past it.
const MAX_STEP_RECORDS: i64 = 5000;

/// What `system df` shows for the build cache. Plain data: the CLI renders it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildCacheUsage {
    pub entries: usize,
    /// Entries whose config and layer are still in the store (the others always miss).
    pub usable: usize,
    /// Distinct bytes of the layer blobs the entries name.
    pub size: u64,
    /// Of those, bytes only step images nothing descends from use (`builder prune` frees them).
    pub reclaimable: u64,
}

/// One entry as `system df -v` lists it. Plain data: the CLI renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildCacheEntryUsage {
    pub key: String,
    /// Bytes of the layer it names (0 for a metadata-only step or a missing layer).
    pub size: u64,
    /// Its layer is also held by something a build cache prune keeps (a tagged image…).
    pub shared: bool,
    /// It produced a layer (BuildKit's `regular`), or only a config.
    pub has_layer: bool,
    pub created: i64,
    pub last_used: i64,
}

impl Store {
    /// Every build cache entry with its size and last use, most recently used first.
    pub fn build_cache_usage_by_entry(&self) -> Result<Vec<BuildCacheEntryUsage>, StoreError> {
        let entries = self.build_cache_entries()?;
        let kept = self.blobs_outliving_build_cache(&entries)?;
        let content = self.content();
        let mut out: Vec<BuildCacheEntryUsage> = entries
            .into_iter()
            .map(|(key, e)| BuildCacheEntryUsage {
                size: e
                    .diff_id
                    .as_ref()
                    .and_then(|d| content.size(d).ok())
                    .unwrap_or(0),
                shared: e.diff_id.as_ref().is_some_and(|d| kept.contains(d)),
                has_layer: e.diff_id.is_some(),
                created: e.created,
                last_used: e.last_used,
                key,
            })
            .collect();
        out.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Every build cache entry, by key.
    pub fn build_cache_entries(&self) -> Result<Vec<(String, BuildCacheEntry)>, StoreError> {
        let db = self.db();
        db.read("listing the build cache", |tx| {
            let mut stmt = tx
                .prepare(
                    "SELECT cache_key, config, diff_id, created, last_used FROM build_cache \
                     ORDER BY cache_key",
                )
                .map_err(db.sql_err("listing the build cache"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(db.sql_err("listing the build cache"))?;
            let mut out = Vec::new();
            for row in rows {
                let (key, config, diff_id, created, last_used) =
                    row.map_err(db.sql_err("listing the build cache"))?;
                out.push((
                    key,
                    BuildCacheEntry {
                        config: digest_col("build_cache", config)?,
                        diff_id: opt_digest_col("build_cache", diff_id)?,
                        created,
                        last_used,
                    },
                ));
            }
            Ok(out)
        })
    }

    /// Forgets the entries whose config or layer blob is gone (they could only miss);
    /// returns how many went.
    pub fn build_cache_remove_dangling(&self) -> Result<usize, StoreError> {
        let content = self.content();
        let dangling: Vec<String> = self
            .build_cache_entries()?
            .into_iter()
            .filter(|(_, e)| {
                !content.contains(&e.config)
                    || e.diff_id.as_ref().is_some_and(|d| !content.contains(d))
            })
            .map(|(k, _)| k)
            .collect();
        let db = self.db();
        db.write("pruning the build cache", |tx| {
            for key in &dangling {
                tx.execute("DELETE FROM build_cache WHERE cache_key = ?1", [key])
                    .map_err(db.sql_err("pruning the build cache"))?;
            }
            Ok(dangling.len())
        })
    }

    /// Entry count and sizes for `system df`.
    pub fn build_cache_usage(&self) -> Result<BuildCacheUsage, StoreError> {
        let entries = self.build_cache_entries()?;
        let kept = self.blobs_outliving_build_cache(&entries)?;
        let content = self.content();
        let mut out = BuildCacheUsage {
            entries: entries.len(),
            ..BuildCacheUsage::default()
        };
        let mut seen = HashSet::new();
        for (_, e) in &entries {
            let layer_ok = e.diff_id.as_ref().is_none_or(|d| content.contains(d));
            if content.contains(&e.config) && layer_ok {
                out.usable += 1;
            }
            let Some(d) = &e.diff_id else { continue };
            if !seen.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = content.size(d) else { continue };
            out.size += bytes;
            if !kept.contains(d) {
                out.reclaimable += bytes;
            }
        }
        Ok(out)
    }

    /// Blobs of the images a build cache prune keeps: every image that is not a step image
    /// (an entry's config), tagged or used by a container, and every build parent of those.
    fn blobs_outliving_build_cache(
        &self,
        entries: &[(String, BuildCacheEntry)],
    ) -> Result<HashSet<Digest>, StoreError> {
        let steps: HashSet<&Digest> = entries.iter().map(|(_, e)| &e.config).collect();
        let images = self.images()?;
        let by_id: HashMap<&Digest, &crate::ImageRecord> =
            images.iter().map(|i| (&i.id, i)).collect();
        let mut seen: HashSet<&Digest> = HashSet::new();
        let mut blobs = HashSet::new();
        for image in &images {
            let needed = !steps.contains(&image.id)
                || !self.tags_of(&image.id)?.is_empty()
                || !self.containers_using(&image.id)?.is_empty();
            let mut current = Some(image).filter(|_| needed);
            while let Some(img) = current {
                if !seen.insert(&img.id) {
                    break;
                }
                blobs.extend(img.blobs());
                current = img.parent.as_ref().and_then(|p| by_id.get(p).copied());
            }
        }
        Ok(blobs)
    }

    /// The cache key last recorded at a build step position (cheap: no inputs read).
    pub fn build_step_key(&self, position: &str) -> Result<Option<String>, StoreError> {
        let db = self.db();
        db.read("reading build step inputs", |tx| {
            tx.query_row(
                "SELECT cache_key FROM build_steps WHERE position = ?1",
                [position],
                |r| r.get(0),
            )
            .optional()
            .map_err(db.sql_err("reading build step inputs"))
        })
    }

    /// The inputs last recorded at a build step position.
    pub fn build_step_inputs(&self, position: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db();
        db.read("reading build step inputs", |tx| {
            tx.query_row(
                "SELECT inputs FROM build_steps WHERE position = ?1",
                [position],
                |r| r.get(0),
            )
            .optional()
            .map_err(db.sql_err("reading build step inputs"))
        })
    }

    /// The inputs most recently recorded for a step on top of `parent_key` (at any position).
    pub fn build_step_inputs_by_parent(
        &self,
        parent_key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db();
        db.read("reading build step inputs", |tx| {
            tx.query_row(
                "SELECT inputs FROM build_steps WHERE parent_key = ?1 \
                 ORDER BY recorded DESC LIMIT 1",
                [parent_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(db.sql_err("reading build step inputs"))
        })
    }

    /// Records (replacing) the inputs of the key computed at a position on top of
    /// `parent_key`; past `MAX_STEP_RECORDS` positions the oldest records are dropped.
    pub fn build_step_record(
        &self,
        position: &str,
        key: &str,
        parent_key: &str,
        inputs: &[u8],
    ) -> Result<(), StoreError> {
        let db = self.db();
        db.write("recording build step inputs", |tx| {
            let e = db.sql_err("recording build step inputs");
            tx.execute(
                "INSERT OR REPLACE INTO build_steps \
                 (position, cache_key, parent_key, inputs, recorded) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    position,
                    key,
                    parent_key,
                    inputs,
                    chrono::Utc::now().timestamp_micros()
                ],
            )
            .map_err(&e)?;
            tx.execute(
                "DELETE FROM build_steps WHERE position NOT IN \
                 (SELECT position FROM build_steps ORDER BY recorded DESC LIMIT ?1)",
                [MAX_STEP_RECORDS],
            )
            .map_err(&e)?;
            Ok(())
        })
    }

    /// Forgets every recorded build step position; returns how many there were.
    pub fn build_steps_clear(&self) -> Result<usize, StoreError> {
        let db = self.db();
        db.write("clearing build step inputs", |tx| {
            tx.execute("DELETE FROM build_steps", [])
                .map_err(db.sql_err("clearing build step inputs"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn entries_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.build_cache_get("k1").unwrap(), None);
        let entry = BuildCacheEntry {
            config: Digest::sha256_of(b"config"),
            diff_id: Some(Digest::sha256_of(b"layer")),
            created: 7,
            last_used: 7,
        };
        store.build_cache_put("k1", &entry).unwrap();
        let meta = BuildCacheEntry {
            diff_id: None,
            ..entry.clone()
        };
        store.build_cache_put("k2", &meta).unwrap();
        assert_eq!(store.build_cache_get("k1").unwrap(), Some(entry));
        assert_eq!(store.build_cache_get("k2").unwrap(), Some(meta));
        assert_eq!(store.build_cache_clear().unwrap(), 2);
        assert_eq!(store.build_cache_get("k1").unwrap(), None);
    }

    #[test]
    fn dangling_entries_go_and_usage_counts_layers_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let (config, _) = store.content().ingest(&b"cfg"[..], None).unwrap();
        let (layer, _) = store.content().ingest(&b"layer"[..], None).unwrap();
        let live = BuildCacheEntry {
            config: config.clone(),
            diff_id: Some(layer.clone()),
            created: 1,
            last_used: 1,
        };
        store.build_cache_put("a", &live).unwrap();
        store.build_cache_put("b", &live).unwrap();
        let gone = BuildCacheEntry {
            diff_id: Some(Digest::sha256_of(b"missing")),
            ..live.clone()
        };
        store.build_cache_put("c", &gone).unwrap();
        let usage = store.build_cache_usage().unwrap();
        assert_eq!(
            (usage.entries, usage.usable, usage.size, usage.reclaimable),
            (3, 2, 5, 5)
        );
        assert_eq!(store.build_cache_remove_dangling().unwrap(), 1);
        assert_eq!(store.build_cache_get("c").unwrap(), None);
        assert_eq!(store.build_cache_get("a").unwrap(), Some(live));
    }

    #[test]
    fn a_hit_moves_last_use_forward_only_and_remove_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let entry = BuildCacheEntry {
            config: Digest::sha256_of(b"config"),
            diff_id: None,
            created: 10,
            last_used: 10,
        };
        store.build_cache_put("k", &entry).unwrap();
        store.build_cache_put("other", &entry).unwrap();
        store.build_cache_touch("k", 50).unwrap();
        store.build_cache_touch("k", 20).unwrap();
        store.build_cache_touch("missing", 20).unwrap();
        let got = store.build_cache_get("k").unwrap().unwrap();
        assert_eq!((got.created, got.last_used), (10, 50));
        assert_eq!(store.build_cache_remove(&["k", "missing"]).unwrap(), 1);
        assert_eq!(store.build_cache_get("k").unwrap(), None);
        assert!(store.build_cache_get("other").unwrap().is_some());
    }

    #[test]
    fn step_records_are_replaced_per_position() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.build_step_key("p").unwrap(), None);
        store.build_step_record("p", "k1", "root", b"one").unwrap();
        store.build_step_record("p", "k2", "root", b"two").unwrap();
        store
            .build_step_record("q", "k3", "other", b"three")
            .unwrap();
        assert_eq!(
            store
                .build_step_inputs_by_parent("root")
                .unwrap()
                .as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(store.build_step_inputs_by_parent("none").unwrap(), None);
        assert_eq!(store.build_step_key("p").unwrap().as_deref(), Some("k2"));
        assert_eq!(
            store.build_step_inputs("p").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(store.build_steps_clear().unwrap(), 2);
        assert_eq!(store.build_step_inputs("p").unwrap(), None);
    }
}
