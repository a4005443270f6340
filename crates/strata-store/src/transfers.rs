//! What the store remembers about moving blobs to and from registries, so the next transfer
//! does less: the compressed blob made of a layer for a push (per algorithm and level), the
//! registries and repositories a blob is known to be in, and open blob uploads. The store
//! only keeps these rows; the image flows above it decide what they mean.

use rusqlite::{params, OptionalExtension};
use strata_oci::Digest;

use crate::db::digest_col;
use crate::error::StoreError;
use crate::store::Store;

/// A layer compressed for a push: the blob and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedBlob {
    pub blob: Digest,
    pub size: u64,
}

/// A registry repository a blob is known to be in (`docker.io`, `library/busybox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSource {
    pub registry: String,
    pub repository: String,
}

impl Store {
    /// The blob `diff_id` was compressed to with `algorithm` at `level`, if it was and that
    /// blob is still stored.
    pub fn compressed_blob(
        &self,
        diff_id: &Digest,
        algorithm: &str,
        level: i32,
    ) -> Result<Option<CompressedBlob>, StoreError> {
        let row: Option<(String, i64)> = self.db().read("reading compressed blobs", |tx| {
            tx.query_row(
                "SELECT blob, size FROM compressed_blobs WHERE diff_id = ?1 AND algorithm = ?2 AND level = ?3",
                params![diff_id.as_str(), algorithm, level],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.db().sql_err("reading compressed blobs"))
        })?;
        let Some((blob, size)) = row else {
            return Ok(None);
        };
        let blob = digest_col("compressed_blobs", blob)?;
        if !self.content().contains(&blob) {
            return Ok(None);
        }
        Ok(Some(CompressedBlob {
            blob,
            size: size as u64,
        }))
    }

    /// Remembers that `diff_id` compressed with `algorithm` at `level` is `blob`.
    pub fn record_compressed_blob(
        &self,
        diff_id: &Digest,
        algorithm: &str,
        level: i32,
        blob: &CompressedBlob,
    ) -> Result<(), StoreError> {
        self.db().write("recording compressed blob", |tx| {
            tx.execute(
                "INSERT INTO compressed_blobs (diff_id, algorithm, level, blob, size) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(diff_id, algorithm, level) DO UPDATE SET blob = excluded.blob, size = excluded.size",
                params![diff_id.as_str(), algorithm, level, blob.blob.as_str(), blob.size as i64],
            )
            .map_err(self.db().sql_err("recording compressed blob"))?;
            Ok(())
        })
    }

    /// Registries and repositories `blob` was pulled from or pushed to, most recent first.
    pub fn blob_sources(&self, blob: &Digest) -> Result<Vec<BlobSource>, StoreError> {
        self.db().read("reading blob sources", |tx| {
            let e = self.db().sql_err("reading blob sources");
            let mut stmt = tx
                .prepare_cached(
                    "SELECT registry, repository FROM blob_sources WHERE blob = ?1 ORDER BY seen DESC, registry, repository",
                )
                .map_err(&e)?;
            let rows = stmt
                .query_map([blob.as_str()], |r| {
                    Ok(BlobSource {
                        registry: r.get(0)?,
                        repository: r.get(1)?,
                    })
                })
                .map_err(&e)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&e)
        })
    }

    /// Remembers that `registry`'s `repository` holds `blobs`.
    pub fn record_blob_sources(
        &self,
        blobs: &[Digest],
        registry: &str,
        repository: &str,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        self.db().write("recording blob sources", |tx| {
            let e = self.db().sql_err("recording blob sources");
            for blob in blobs {
                tx.execute(
                    "INSERT INTO blob_sources (blob, registry, repository, seen) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(blob, registry, repository) DO UPDATE SET seen = excluded.seen",
                    params![blob.as_str(), registry, repository, now],
                )
                .map_err(&e)?;
            }
            Ok(())
        })
    }

    /// The upload location recorded under `key`, if any.
    pub fn upload_session(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.db().read("reading upload sessions", |tx| {
            tx.query_row(
                "SELECT location FROM upload_sessions WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db().sql_err("reading upload sessions"))
        })
    }

    /// Records (or with `None` forgets) the upload location of `key`.
    pub fn set_upload_session(&self, key: &str, location: Option<&str>) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        self.db().write("recording upload session", |tx| {
            let e = self.db().sql_err("recording upload session");
            match location {
                Some(location) => tx.execute(
                    "INSERT INTO upload_sessions (key, location, created) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET location = excluded.location, created = excluded.created",
                    params![key, location, now],
                ),
                None => tx.execute("DELETE FROM upload_sessions WHERE key = ?1", [key]),
            }
            .map_err(&e)?;
            Ok(())
        })
    }

    /// Compressed blobs of the layers in `diff_ids` (gc keeps them with their layers).
    pub(crate) fn compressed_blobs_of(
        &self,
        diff_ids: &std::collections::HashSet<Digest>,
    ) -> Result<Vec<Digest>, StoreError> {
        let rows: Vec<(String, String)> = self.db().read("reading compressed blobs", |tx| {
            let e = self.db().sql_err("reading compressed blobs");
            let mut stmt = tx
                .prepare("SELECT diff_id, blob FROM compressed_blobs")
                .map_err(&e)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&e)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&e)
        })?;
        let mut out = Vec::new();
        for (diff_id, blob) in rows {
            if diff_ids.contains(&digest_col("compressed_blobs", diff_id)?) {
                out.push(digest_col("compressed_blobs", blob)?);
            }
        }
        Ok(out)
    }

    /// Drops transfer rows about blobs the store no longer has, and upload sessions older
    /// than a week (registries expire them long before).
    pub(crate) fn forget_transfers_of_missing_blobs(&self) -> Result<(), StoreError> {
        let present: std::collections::HashSet<String> = self
            .content()
            .list()?
            .into_iter()
            .map(|d| d.as_str().to_string())
            .collect();
        let week_ago = chrono::Utc::now().timestamp() - 7 * 24 * 3600;
        self.db().write("forgetting transfers", |tx| {
            let e = self.db().sql_err("forgetting transfers");
            for table in ["compressed_blobs", "blob_sources"] {
                let blobs: Vec<String> = {
                    let mut stmt = tx
                        .prepare(&format!("SELECT DISTINCT blob FROM {table}"))
                        .map_err(&e)?;
                    let rows = stmt.query_map([], |r| r.get(0)).map_err(&e)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(&e)?
                };
                for blob in blobs.iter().filter(|b| !present.contains(*b)) {
                    tx.execute(&format!("DELETE FROM {table} WHERE blob = ?1"), [blob])
                        .map_err(&e)?;
                }
            }
            tx.execute("DELETE FROM upload_sessions WHERE created < ?1", [week_ago])
                .map_err(&e)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::open_store;
    use crate::DriverKind;

    use super::*;

    #[test]
    fn compressed_blobs_sources_and_sessions_round_trip_and_gc_keeps_what_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let img = crate::test_support::ingest_image(&store, b"{}", &[b"layer"]);
        store.put_image(&img, &["x:1".into()]).unwrap();
        let diff_id = img.layers[0].diff_id.clone();
        let (gz, size) = store.content().ingest(&b"gzipped"[..], None).unwrap();
        let (orphan, _) = store.content().ingest(&b"other"[..], None).unwrap();
        let compressed = CompressedBlob {
            blob: gz.clone(),
            size,
        };
        store
            .record_compressed_blob(&diff_id, "gzip", 6, &compressed)
            .unwrap();
        store
            .record_compressed_blob(
                &Digest::sha256_of(b"gone layer"),
                "gzip",
                6,
                &CompressedBlob {
                    blob: orphan.clone(),
                    size: 5,
                },
            )
            .unwrap();
        assert_eq!(
            store.compressed_blob(&diff_id, "gzip", 6).unwrap(),
            Some(compressed.clone())
        );
        assert_eq!(store.compressed_blob(&diff_id, "gzip", 1).unwrap(), None);
        assert_eq!(store.compressed_blob(&diff_id, "zstd", 6).unwrap(), None);

        store
            .record_blob_sources(std::slice::from_ref(&gz), "r.example", "a/b")
            .unwrap();
        store
            .record_blob_sources(std::slice::from_ref(&gz), "r.example", "a/b")
            .unwrap();
        assert_eq!(
            store.blob_sources(&gz).unwrap(),
            vec![BlobSource {
                registry: "r.example".into(),
                repository: "a/b".into()
            }]
        );

        store.set_upload_session("k", Some("http://x/1")).unwrap();
        assert_eq!(
            store.upload_session("k").unwrap().as_deref(),
            Some("http://x/1")
        );
        store.set_upload_session("k", None).unwrap();
        assert_eq!(store.upload_session("k").unwrap(), None);

        let report = store.gc().unwrap();
        assert!(report.blobs.iter().any(|(d, _)| d == &orphan), "{report:?}");
        assert!(
            store.content().contains(&gz),
            "the used layer's compressed blob stays"
        );
        assert_eq!(
            store.compressed_blob(&diff_id, "gzip", 6).unwrap(),
            Some(compressed)
        );
        assert!(store.check().unwrap().is_clean());
    }
}
