//! Image, tag and repo-digest records: one SQLite transaction per operation.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use strata_oci::Digest;

use crate::db::{digest_col, opt_digest_col, Db};
use crate::error::StoreError;

/// One image as the store knows it. Its blobs live in the content store; its
/// unpacked layers are snapshots named by the chain ids of `layers[..].diff_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config blob's digest, which is the image id.
    pub id: Digest,
    /// The manifest blob as stored, when the image has one (pulled, loaded or built).
    pub manifest: Option<Digest>,
    /// Bottom layer first.
    pub layers: Vec<LayerRecord>,
    /// The config's `created` text, as written there.
    pub created: Option<String>,
    /// When this store first recorded the image, unix seconds.
    pub added_at: i64,
    /// The image a build started from (for `images -a` and `history` later).
    pub parent: Option<Digest>,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob as stored; equals `diff_id` for an uncompressed layer.
    pub blob: Digest,
    pub media_type: String,
    pub blob_size: u64,
}

impl ImageRecord {
    /// The distinct blobs this image needs: config, manifest, layers.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut out = vec![self.id.clone()];
        out.extend(self.manifest.iter().cloned());
        out.extend(self.layers.iter().map(|l| l.blob.clone()));
        out.sort();
        out.dedup();
        out
    }

    /// Chain ids of the layer stack, bottom first: the snapshots this image needs.
    pub fn chain_ids(&self) -> Vec<Digest> {
        let diff_ids: Vec<Digest> = self.layers.iter().map(|l| l.diff_id.clone()).collect();
        strata_oci::chain_ids(&diff_ids)
    }
}

fn image_exists(tx: &Transaction<'_>, id: &Digest) -> rusqlite::Result<bool> {
    tx.query_row("SELECT 1 FROM images WHERE id = ?1", [id.as_str()], |_| {
        Ok(())
    })
    .optional()
    .map(|o| o.is_some())
}

/// manifest, created, added_at, parent.
type ImageRow = (Option<String>, Option<String>, i64, Option<String>);

fn load_image(
    db: &Db,
    tx: &Transaction<'_>,
    id: &Digest,
) -> Result<Option<ImageRecord>, StoreError> {
    let e = db.sql_err("reading image");
    let row: Option<ImageRow> = tx
        .query_row(
            "SELECT manifest, created, added_at, parent FROM images WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(&e)?;
    let Some((manifest, created, added_at, parent)) = row else {
        return Ok(None);
    };
    let mut stmt = tx
        .prepare_cached(
            "SELECT diff_id, blob, media_type, blob_size FROM image_layers WHERE image_id = ?1 ORDER BY idx",
        )
        .map_err(&e)?;
    let rows = stmt
        .query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(&e)?;
    let mut layers = Vec::new();
    for row in rows {
        let (diff_id, blob, media_type, blob_size) = row.map_err(&e)?;
        layers.push(LayerRecord {
            diff_id: digest_col("image_layers", diff_id)?,
            blob: digest_col("image_layers", blob)?,
            media_type,
            blob_size: blob_size as u64,
        });
    }
    Ok(Some(ImageRecord {
        id: id.clone(),
        manifest: opt_digest_col("images", manifest)?,
        layers,
        created,
        added_at,
        parent: opt_digest_col("images", parent)?,
    }))
}

fn digests(
    db: &Db,
    tx: &Transaction<'_>,
    table: &'static str,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Digest>, StoreError> {
    let e = db.sql_err("reading records");
    let mut stmt = tx.prepare_cached(sql).map_err(&e)?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(&e)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(digest_col(table, row.map_err(&e)?)?);
    }
    Ok(out)
}

fn strings(
    db: &Db,
    tx: &Transaction<'_>,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<String>, StoreError> {
    let e = db.sql_err("reading records");
    let mut stmt = tx.prepare_cached(sql).map_err(&e)?;
    let rows = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(&e)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&e)
}

impl Db {
    pub(crate) fn put_image(&self, rec: &ImageRecord, tags: &[String]) -> Result<(), StoreError> {
        self.write("recording image", |tx| {
            let e = self.sql_err("recording image");
            if !image_exists(tx, &rec.id).map_err(&e)? {
                tx.execute(
                    "INSERT INTO images (id, manifest, created, added_at, parent) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        rec.id.as_str(),
                        rec.manifest.as_ref().map(Digest::as_str),
                        rec.created,
                        rec.added_at,
                        rec.parent.as_ref().map(Digest::as_str)
                    ],
                )
                .map_err(&e)?;
                for (idx, l) in rec.layers.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO image_layers (image_id, idx, diff_id, blob, media_type, blob_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![rec.id.as_str(), idx as i64, l.diff_id.as_str(), l.blob.as_str(), l.media_type, l.blob_size as i64],
                    )
                    .map_err(&e)?;
                }
            } else if rec.manifest.is_some() {
                // Same config seen again with a manifest: remember the manifest if we had none.
                tx.execute(
                    "UPDATE images SET manifest = ?2 WHERE id = ?1 AND manifest IS NULL",
                    params![rec.id.as_str(), rec.manifest.as_ref().map(Digest::as_str)],
                )
                .map_err(&e)?;
            }
            for name in tags {
                tx.execute(
                    "INSERT INTO tags (name, image_id) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                    [name.as_str(), rec.id.as_str()],
                )
                .map_err(&e)?;
            }
            Ok(())
        })
    }

    pub(crate) fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        self.read("reading image", |tx| load_image(self, tx, id))
    }

    pub(crate) fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.read("listing images", |tx| {
            let ids = digests(
                self,
                tx,
                "images",
                "SELECT id FROM images ORDER BY added_at DESC, id",
                [],
            )?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(load_image(self, tx, &id)?);
            }
            Ok(out)
        })
    }

    pub(crate) fn resolve_id_prefix(&self, prefix: &str) -> Result<Vec<Digest>, StoreError> {
        let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
        if hex.is_empty()
            || hex.len() > 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(StoreError::InvalidIdPrefix(prefix.to_string()));
        }
        // Hex only, so no LIKE metacharacters can appear.
        let pattern = format!("sha256:{hex}%");
        self.read("resolving image id", |tx| {
            digests(
                self,
                tx,
                "images",
                "SELECT id FROM images WHERE id LIKE ?1 ORDER BY id",
                [&pattern],
            )
        })
    }

    pub(crate) fn tag(&self, name: &str, id: &Digest) -> Result<(), StoreError> {
        self.write("tagging image", |tx| {
            let e = self.sql_err("tagging image");
            if !image_exists(tx, id).map_err(&e)? {
                return Err(StoreError::ImageNotFound(id.clone()));
            }
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                [name, id.as_str()],
            )
            .map_err(&e)?;
            Ok(())
        })
    }

    pub(crate) fn untag(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        self.write("untagging image", |tx| {
            let e = self.sql_err("untagging image");
            let old: Option<String> = tx
                .query_row(
                    "DELETE FROM tags WHERE name = ?1 RETURNING image_id",
                    [name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&e)?;
            opt_digest_col("tags", old)
        })
    }

    pub(crate) fn resolve_tag(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        self.read("resolving tag", |tx| {
            Ok(digests(
                self,
                tx,
                "tags",
                "SELECT image_id FROM tags WHERE name = ?1",
                [name],
            )?
            .pop())
        })
    }

    pub(crate) fn tags(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        self.read("listing tags", |tx| {
            let e = self.sql_err("listing tags");
            let mut stmt = tx
                .prepare("SELECT name, image_id FROM tags ORDER BY name")
                .map_err(&e)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(&e)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, id) = row.map_err(&e)?;
                out.push((name, digest_col("tags", id)?));
            }
            Ok(out)
        })
    }

    pub(crate) fn tags_of(&self, id: &Digest) -> Result<Vec<String>, StoreError> {
        self.read("listing tags", |tx| {
            strings(
                self,
                tx,
                "SELECT name FROM tags WHERE image_id = ?1 ORDER BY name",
                [id.as_str()],
            )
        })
    }

    pub(crate) fn add_repo_digest(
        &self,
        id: &Digest,
        name_at_digest: &str,
    ) -> Result<(), StoreError> {
        self.write("recording repo digest", |tx| {
            let e = self.sql_err("recording repo digest");
            if !image_exists(tx, id).map_err(&e)? {
                return Err(StoreError::ImageNotFound(id.clone()));
            }
            tx.execute(
                "INSERT OR IGNORE INTO repo_digests (image_id, name) VALUES (?1, ?2)",
                [id.as_str(), name_at_digest],
            )
            .map_err(&e)?;
            Ok(())
        })
    }

    pub(crate) fn repo_digests_of(&self, id: &Digest) -> Result<Vec<String>, StoreError> {
        self.read("listing repo digests", |tx| {
            strings(
                self,
                tx,
                "SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name",
                [id.as_str()],
            )
        })
    }

    /// Deletes the record, its layers, tags and repo digests; fails if it does not exist
    /// or a container record uses it (its layers must outlive gc while the container does).
    pub(crate) fn delete_image(&self, id: &Digest) -> Result<(), StoreError> {
        self.write("deleting image", |tx| {
            let containers = tx
                .query_row(
                    "SELECT COUNT(*) FROM containers WHERE image_id = ?1",
                    [id.as_str()],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(self.sql_err("deleting image"))?;
            if containers > 0 {
                return Err(StoreError::ImageInUse {
                    id: id.clone(),
                    containers: containers as usize,
                });
            }
            let n = tx
                .execute("DELETE FROM images WHERE id = ?1", [id.as_str()])
                .map_err(self.sql_err("deleting image"))?;
            if n == 0 {
                return Err(StoreError::ImageNotFound(id.clone()));
            }
            Ok(())
        })
    }

    pub(crate) fn containers_using(&self, id: &Digest) -> Result<Vec<String>, StoreError> {
        self.read("listing containers", |tx| {
            strings(
                self,
                tx,
                "SELECT id FROM containers WHERE image_id = ?1 ORDER BY id",
                [id.as_str()],
            )
        })
    }

    pub(crate) fn container_count(&self) -> Result<usize, StoreError> {
        self.read("counting containers", |tx| {
            tx.query_row("SELECT COUNT(*) FROM containers", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(self.sql_err("counting containers"))
        })
    }

    /// Image ids referenced by container records (kept by gc even without an image record).
    pub(crate) fn container_image_ids(&self) -> Result<Vec<Digest>, StoreError> {
        self.read("listing containers", |tx| {
            digests(
                self,
                tx,
                "containers",
                "SELECT DISTINCT image_id FROM containers",
                [],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{ingest_image, open_store};
    use crate::{DriverKind, StoreError};

    #[test]
    fn images_tags_and_repo_digests_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let a = ingest_image(&store, b"{\"a\":1}", &[b"layer-a0", b"layer-a1"]);
        let mut b = ingest_image(&store, b"{\"b\":1}", &[b"layer-a0"]);
        b.added_at = 2;
        store
            .put_image(
                &a,
                &[
                    "docker.io/library/x:1".into(),
                    "docker.io/library/x:latest".into(),
                ],
            )
            .unwrap();
        store.put_image(&b, &[]).unwrap();
        assert_eq!(store.image(&a.id).unwrap().as_ref(), Some(&a));
        // Newest first.
        assert_eq!(store.images().unwrap(), vec![b.clone(), a.clone()]);

        // Putting an existing image keeps the record and moves the tag.
        let mut again = b.clone();
        again.added_at = 99;
        store
            .put_image(&again, &["docker.io/library/x:latest".into()])
            .unwrap();
        assert_eq!(store.image(&b.id).unwrap().unwrap().added_at, 2);
        assert_eq!(
            store.resolve_tag("docker.io/library/x:latest").unwrap(),
            Some(b.id.clone())
        );
        assert_eq!(
            store.tags_of(&a.id).unwrap(),
            vec!["docker.io/library/x:1".to_string()]
        );
        assert_eq!(
            store.tags().unwrap(),
            vec![
                ("docker.io/library/x:1".to_string(), a.id.clone()),
                ("docker.io/library/x:latest".to_string(), b.id.clone())
            ]
        );

        assert_eq!(
            store.untag("docker.io/library/x:1").unwrap(),
            Some(a.id.clone())
        );
        assert_eq!(store.untag("docker.io/library/x:1").unwrap(), None);
        store.tag("docker.io/library/y:2", &a.id).unwrap();
        let missing = strata_oci::Digest::sha256_of(b"missing");
        assert!(matches!(
            store.tag("z:1", &missing),
            Err(StoreError::ImageNotFound(_))
        ));

        let at = format!(
            "docker.io/library/x@{}",
            strata_oci::Digest::sha256_of(b"m")
        );
        store.add_repo_digest(&a.id, &at).unwrap();
        store.add_repo_digest(&a.id, &at).unwrap();
        assert_eq!(store.repo_digests_of(&a.id).unwrap(), vec![at]);
        assert!(store.containers_using(&a.id).unwrap().is_empty());

        store.delete_image(&a.id).unwrap();
        assert_eq!(store.image(&a.id).unwrap(), None);
        assert_eq!(store.resolve_tag("docker.io/library/y:2").unwrap(), None);
        assert!(store.repo_digests_of(&a.id).unwrap().is_empty());
        assert!(matches!(
            store.delete_image(&a.id),
            Err(StoreError::ImageNotFound(_))
        ));
        // Blobs stay until gc.
        assert!(store.content().contains(&a.id));
    }

    #[test]
    fn an_image_used_by_a_container_cannot_be_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let a = ingest_image(&store, b"config-a", &[]);
        store.put_image(&a, &[]).unwrap();
        store
            .db()
            .write("t", |tx| {
                tx.execute(
                    "INSERT INTO containers (id, name, image_id, created, state) VALUES ('c1', 'web', ?1, 0, 'exited')",
                    [a.id.as_str()],
                )
                .map_err(store.db().sql_err("t"))
            })
            .unwrap();
        assert_eq!(
            store.containers_using(&a.id).unwrap(),
            vec!["c1".to_string()]
        );
        let err = store.delete_image(&a.id).unwrap_err();
        assert!(
            matches!(err, StoreError::ImageInUse { containers: 1, .. }),
            "{err}"
        );
        assert!(store.image(&a.id).unwrap().is_some());
    }

    #[test]
    fn id_prefixes_resolve_with_or_without_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let a = ingest_image(&store, b"config-a", &[]);
        store.put_image(&a, &[]).unwrap();
        let hex = a.id.hex().to_string();
        let cases: &[(&str, usize)] = &[
            (&hex[..4], 1),
            (&hex, 1),
            (&format!("sha256:{}", &hex[..12]), 1),
            ("ffffffffffff", 0),
        ];
        for (prefix, n) in cases {
            let got = store.resolve_id_prefix(prefix).unwrap();
            assert_eq!(got.len(), *n, "{prefix}");
            if *n == 1 {
                assert_eq!(got[0], a.id);
            }
        }
        for bad in ["", "xyz", "3F2A", "%", "sha256:"] {
            assert!(
                matches!(
                    store.resolve_id_prefix(bad),
                    Err(StoreError::InvalidIdPrefix(_))
                ),
                "{bad}"
            );
        }
    }
}
