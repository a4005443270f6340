//! The build-cache index: a build step's cache key → the image config and layer it produced.
//!
//! Entries only point at blobs and snapshots; they never keep them alive. A caller must
//! check that what an entry names is still present (gc may have removed it) before reusing it.

use rusqlite::OptionalExtension;
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
}

impl Store {
    /// The entry recorded for `key`, if any.
    pub fn build_cache_get(&self, key: &str) -> Result<Option<BuildCacheEntry>, StoreError> {
        let db = self.db();
        db.read("reading the build cache", |tx| {
            let row = tx
                .query_row(
                    "SELECT config, diff_id, created FROM build_cache WHERE cache_key = ?1",
                    [key],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(db.sql_err("reading the build cache"))?;
            row.map(|(config, diff_id, created)| {
                Ok(BuildCacheEntry {
                    config: digest_col("build_cache", config)?,
                    diff_id: opt_digest_col("build_cache", diff_id)?,
                    created,
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
                "INSERT OR REPLACE INTO build_cache (cache_key, config, diff_id, created) \
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    key,
                    entry.config.as_str(),
                    entry.diff_id.as_ref().map(Digest::as_str),
                    entry.created
                ],
            )
            .map_err(db.sql_err("recording a build cache entry"))?;
            Ok(())
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
}
