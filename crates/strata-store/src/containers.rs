//! Container records: the shared truth about every container, read and written by all
//! strata processes (the CLI and each container's monitor).
//!
//! The store keeps a container's identity (id, unique name, image) and two opaque JSON
//! documents owned by the container layer above: its `config` (fixed at create) and its
//! `state` (changed through [`Store::update_container_state`], one transaction per change, so
//! a monitor recording an exit and a CLI recording a stop request never lose each other's
//! write). Each container also owns a directory `<root>/containers/<id>/` for its writable
//! layer, mount point, runtime files and log; [`Store::container_dir`] names it.

use std::path::PathBuf;

use rusqlite::OptionalExtension;
use strata_oci::Digest;

use crate::db::digest_col;
use crate::error::StoreError;
use crate::store::Store;

/// One container as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    /// 64 lowercase hex characters.
    pub id: String,
    /// Unique among containers, without Docker's leading `/`.
    pub name: String,
    pub image_id: Digest,
    /// Unix nanoseconds.
    pub created: i64,
    /// JSON owned by the container layer.
    pub state: String,
    /// JSON owned by the container layer.
    pub config: String,
}

const COLUMNS: &str = "id, name, image_id, created, state, config";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get::<_, Option<String>>(5)?.unwrap_or_default(),
    ))
}

fn to_row(
    (id, name, image_id, created, state, config): (String, String, String, i64, String, String),
) -> Result<ContainerRow, StoreError> {
    Ok(ContainerRow {
        id,
        name,
        image_id: digest_col("containers", image_id)?,
        created,
        state,
        config,
    })
}

impl Store {
    /// `<root>/containers/<id>`: the container's own directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir_path(crate::StoreDir::Containers).join(id)
    }

    /// Records a new container. Fails with [`StoreError::ContainerNameInUse`] when the name
    /// (or the id) is taken.
    pub fn insert_container(&self, rec: &ContainerRow) -> Result<(), StoreError> {
        let db = self.db();
        db.write("recording a container", |tx| {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT id FROM containers WHERE name = ?1 OR id = ?2",
                    [rec.name.as_str(), rec.id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db.sql_err("recording a container"))?;
            if let Some(id) = taken {
                return Err(StoreError::ContainerNameInUse {
                    name: rec.name.clone(),
                    id,
                });
            }
            tx.execute(
                &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                rusqlite::params![
                    rec.id,
                    rec.name,
                    rec.image_id.as_str(),
                    rec.created,
                    rec.state,
                    rec.config
                ],
            )
            .map_err(db.sql_err("recording a container"))?;
            Ok(())
        })
    }

    /// The container with exactly this id.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError> {
        let db = self.db();
        db.read("reading a container", |tx| {
            tx.query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                row,
            )
            .optional()
            .map_err(db.sql_err("reading a container"))?
            .map(to_row)
            .transpose()
        })
    }

    /// Every container, newest first (the order of `docker ps`).
    pub fn containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let db = self.db();
        db.read("listing containers", |tx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM containers ORDER BY created DESC, id"
                ))
                .map_err(db.sql_err("listing containers"))?;
            let rows = stmt
                .query_map([], row)
                .map_err(db.sql_err("listing containers"))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(to_row(r.map_err(db.sql_err("listing containers"))?)?);
            }
            Ok(out)
        })
    }

    /// Replaces the state of container `id` with `change(current state)`, in one write
    /// transaction (no other process changes it in between). Returns the new state, or
    /// `None` when the container does not exist (then `change` is not called).
    pub fn update_container_state<E>(
        &self,
        id: &str,
        mut change: impl FnMut(&str) -> Result<String, E>,
    ) -> Result<Option<String>, E>
    where
        E: From<StoreError>,
    {
        let db = self.db();
        let mut outcome: Option<Result<String, E>> = None;
        db.write("updating a container's state", |tx| {
            let current: Option<String> = tx
                .query_row("SELECT state FROM containers WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db.sql_err("updating a container's state"))?;
            let Some(current) = current else {
                return Ok(());
            };
            match change(&current) {
                Ok(new) => {
                    tx.execute(
                        "UPDATE containers SET state = ?1 WHERE id = ?2",
                        [new.as_str(), id],
                    )
                    .map_err(db.sql_err("updating a container's state"))?;
                    outcome = Some(Ok(new));
                }
                // Nothing written; the transaction commits unchanged.
                Err(e) => outcome = Some(Err(e)),
            }
            Ok(())
        })?;
        outcome.transpose()
    }

    /// Renames container `id`; fails with [`StoreError::ContainerNameInUse`] if taken.
    pub fn rename_container(&self, id: &str, name: &str) -> Result<bool, StoreError> {
        let db = self.db();
        db.write("renaming a container", |tx| {
            let taken: Option<String> = tx
                .query_row(
                    "SELECT id FROM containers WHERE name = ?1 AND id != ?2",
                    [name, id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db.sql_err("renaming a container"))?;
            if let Some(other) = taken {
                return Err(StoreError::ContainerNameInUse {
                    name: name.to_owned(),
                    id: other,
                });
            }
            let n = tx
                .execute("UPDATE containers SET name = ?1 WHERE id = ?2", [name, id])
                .map_err(db.sql_err("renaming a container"))?;
            Ok(n > 0)
        })
    }

    /// Deletes the record (the caller removes the directory first). False if it was gone.
    pub fn delete_container(&self, id: &str) -> Result<bool, StoreError> {
        let db = self.db();
        db.write("deleting a container", |tx| {
            let n = tx
                .execute("DELETE FROM containers WHERE id = ?1", [id])
                .map_err(db.sql_err("deleting a container"))?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{ingest_image, open_store};
    use crate::{ContainerRow, DriverKind, StoreError};

    fn rec(id: &str, name: &str, image: &crate::ImageRecord, created: i64) -> ContainerRow {
        ContainerRow {
            id: id.to_owned(),
            name: name.to_owned(),
            image_id: image.id.clone(),
            created,
            state: "{}".to_owned(),
            config: "{\"x\":1}".to_owned(),
        }
    }

    #[test]
    fn containers_round_trip_with_unique_names_and_guarded_images() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let image = ingest_image(&store, b"{}", &[b"layer"]);
        store
            .insert_container(&rec("a1", "web", &image, 1))
            .unwrap();
        store.insert_container(&rec("b2", "db", &image, 2)).unwrap();
        let err = store
            .insert_container(&rec("c3", "web", &image, 3))
            .unwrap_err();
        assert!(matches!(err, StoreError::ContainerNameInUse { ref id, .. } if id == "a1"));

        let all = store.containers().unwrap();
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b2", "a1"], "newest first");
        assert_eq!(store.container("a1").unwrap().unwrap().config, "{\"x\":1}");
        assert!(store.container("zz").unwrap().is_none());

        // An image with containers is not deleted.
        assert!(matches!(
            store.delete_image(&image.id),
            Err(StoreError::ImageInUse { containers: 2, .. })
        ));

        assert!(matches!(
            store.rename_container("b2", "web"),
            Err(StoreError::ContainerNameInUse { .. })
        ));
        assert!(store.rename_container("b2", "cache").unwrap());
        assert_eq!(store.container("b2").unwrap().unwrap().name, "cache");

        assert!(store.delete_container("a1").unwrap());
        assert!(!store.delete_container("a1").unwrap());
        assert_eq!(store.containers().unwrap().len(), 1);
    }

    #[test]
    fn state_updates_see_the_current_state_and_may_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let image = ingest_image(&store, b"{}", &[b"layer"]);
        store
            .insert_container(&rec("a1", "web", &image, 1))
            .unwrap();
        let new = store
            .update_container_state::<StoreError>("a1", |old| {
                assert_eq!(old, "{}");
                Ok("{\"running\":true}".to_owned())
            })
            .unwrap();
        assert_eq!(new.as_deref(), Some("{\"running\":true}"));
        let refused = store.update_container_state("a1", |_| {
            Err(StoreError::InvalidIdPrefix("refused".to_owned()))
        });
        assert!(refused.is_err());
        assert_eq!(
            store.container("a1").unwrap().unwrap().state,
            "{\"running\":true}"
        );
        let missing = store
            .update_container_state::<StoreError>("nope", |_| Ok(String::new()))
            .unwrap();
        assert!(missing.is_none());
    }
}
