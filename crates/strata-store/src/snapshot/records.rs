//! Snapshot records and directories shared by every driver: create-via-temp-then-rename,
//! lookup, chain walking and removal. The `snapshots` table names each dir by its row id.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, Transaction};
use strata_layer::DigestReader;
use strata_oci::Digest;

use crate::content::sync_dir;
use crate::db::{digest_col, opt_digest_col, Db};
use crate::error::{IoContext, StoreError};
use crate::lock;
use crate::snapshot::{DriverKind, SnapshotInfo};

/// Prefix of in-flight temp dirs inside `snapshots/<driver>/`.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
/// Prefix of per-chain unpack lock files inside `snapshots/<driver>/`.
pub(crate) const LOCK_PREFIX: &str = ".lock-";

/// The records and directory `<root>/snapshots/<driver>` of one driver.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotDir {
    db: Arc<Db>,
    dir: PathBuf,
    kind: DriverKind,
}

type Row = (i64, String, Option<String>, String, i64);

impl SnapshotDir {
    pub(crate) fn new(db: Arc<Db>, root: &Path, kind: DriverKind) -> SnapshotDir {
        SnapshotDir {
            db,
            dir: root
                .join(crate::StoreDir::Snapshots.name())
                .join(kind.as_str()),
            kind,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the snapshot recorded under row `id`.
    fn path_of(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn to_info(
        &self,
        (id, chain, parent, diff_id, created): Row,
    ) -> Result<SnapshotInfo, StoreError> {
        Ok(SnapshotInfo {
            chain_id: digest_col("snapshots", chain)?,
            parent: opt_digest_col("snapshots", parent)?,
            diff_id: digest_col("snapshots", diff_id)?,
            kind: self.kind,
            path: self.path_of(id),
            created,
        })
    }

    fn row(&self, tx: &Transaction<'_>, chain_id: &Digest) -> Result<Option<Row>, StoreError> {
        tx.query_row(
            "SELECT id, chain_id, parent, diff_id, created FROM snapshots WHERE driver = ?1 AND chain_id = ?2",
            [self.kind.as_str(), chain_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(self.db.sql_err("reading snapshot"))
    }

    pub(crate) fn get(&self, chain_id: &Digest) -> Result<Option<SnapshotInfo>, StoreError> {
        let row = self
            .db
            .read("reading snapshot", |tx| self.row(tx, chain_id))?;
        row.map(|r| self.to_info(r)).transpose()
    }

    pub(crate) fn list(&self) -> Result<Vec<SnapshotInfo>, StoreError> {
        let rows: Vec<Row> = self.db.read("listing snapshots", |tx| {
            let e = self.db.sql_err("listing snapshots");
            let mut stmt = tx
                .prepare("SELECT id, chain_id, parent, diff_id, created FROM snapshots WHERE driver = ?1 ORDER BY id")
                .map_err(&e)?;
            let rows = stmt
                .query_map([self.kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .map_err(&e)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&e)
        })?;
        rows.into_iter().map(|r| self.to_info(r)).collect()
    }

    /// vfs builds each snapshot from its parent's tree, so the parent must exist first;
    /// overlay snapshots are independent dirs, so layers may be unpacked in any order
    /// (the chain only has to be complete when mounted).
    fn parent_first(&self) -> bool {
        self.kind == DriverKind::Vfs
    }

    /// The chain from `chain_id` down to its base, top first.
    pub(crate) fn chain(&self, chain_id: &Digest) -> Result<Vec<SnapshotInfo>, StoreError> {
        let mut out = Vec::new();
        let mut next = Some(chain_id.clone());
        while let Some(c) = next {
            let info = self.get(&c)?.ok_or(StoreError::SnapshotNotFound(c))?;
            next = info.parent.clone();
            out.push(info);
        }
        Ok(out)
    }

    /// Bytes in a recorded snapshot's own dir: measured the first time (a walk of its
    /// files), then read from its record (committed snapshots never change).
    pub(crate) fn usage(&self, chain_id: &Digest) -> Result<u64, StoreError> {
        let known: Option<(i64, Option<i64>)> = self.db.read("reading snapshot size", |tx| {
            tx.query_row(
                "SELECT id, size FROM snapshots WHERE driver = ?1 AND chain_id = ?2",
                [self.kind.as_str(), chain_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.db.sql_err("reading snapshot size"))
        })?;
        match known {
            None => Err(StoreError::SnapshotNotFound(chain_id.clone())),
            Some((_, Some(size))) => Ok(u64::try_from(size).unwrap_or(0)),
            Some((id, None)) => {
                let size = super::dir_usage(&self.path_of(id))?;
                // Best effort: a store another process writes to (or a full disk) only
                // means the next call measures again.
                let _ = self.db.write("recording snapshot size", |tx| {
                    tx.execute(
                        "UPDATE snapshots SET size = ?2 WHERE id = ?1",
                        params![id, i64::try_from(size).unwrap_or(i64::MAX)],
                    )
                    .map_err(self.db.sql_err("recording snapshot size"))
                });
                Ok(size)
            }
        }
    }

    /// Unpacks through `fill` into a locked temp dir, then records it; see `Snapshotter::unpack_layer`.
    pub(crate) fn create(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        tar: &mut dyn Read,
        fill: impl FnOnce(&Path, &mut dyn Read) -> Result<(), StoreError>,
    ) -> Result<SnapshotInfo, StoreError> {
        if let Some(existing) = self.get(chain_id)? {
            drain(tar, &existing.path)?;
            return Ok(existing);
        }
        // Another process unpacking the same layer: wait for it instead of doing it twice.
        let chain_lock =
            lock::NamedLock::acquire(&self.dir.join(format!("{LOCK_PREFIX}{}", chain_id.hex())))?;
        if let Some(existing) = self.get(chain_id)? {
            drain(tar, &existing.path)?;
            return Ok(existing);
        }
        if let Some(p) = parent.filter(|_| self.parent_first()) {
            if self.get(p)?.is_none() {
                return Err(StoreError::SnapshotNotFound(p.clone()));
            }
        }
        let (lock, temp) = lock::create_owned_temp_dir(&self.dir, TEMP_PREFIX)?;
        // Verify the layer against its diff id before it becomes visible.
        let mut hashing = DigestReader::new(tar);
        let filled = fill(&temp, &mut hashing)
            .and_then(|()| drain(&mut hashing, &temp))
            .and_then(|()| {
                let actual = hashing.digest();
                if actual == *diff_id {
                    Ok(())
                } else {
                    Err(StoreError::DiffIdMismatch {
                        chain_id: chain_id.clone(),
                        expected: diff_id.clone(),
                        actual,
                    })
                }
            });
        if let Err(e) = filled {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e);
        }
        let out = self.commit(chain_id, parent, diff_id, &temp);
        drop(lock);
        drop(chain_lock);
        out
    }

    /// Renames `src` into place as `chain_id` and records it in one write transaction.
    /// If the snapshot exists already, removes `src` and returns the existing one.
    pub(crate) fn commit(
        &self,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        src: &Path,
    ) -> Result<SnapshotInfo, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let row = self.db.write("recording snapshot", |tx| {
            if let Some(row) = self.row(tx, chain_id)? {
                return Ok((row, false));
            }
            if let Some(p) = parent.filter(|_| self.parent_first()) {
                if self.row(tx, p)?.is_none() {
                    return Err(StoreError::SnapshotNotFound(p.clone()));
                }
            }
            let id: i64 = tx
                .query_row(
                    "INSERT INTO snapshots (driver, chain_id, parent, diff_id, created) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    params![self.kind.as_str(), chain_id.as_str(), parent.map(Digest::as_str), diff_id.as_str(), now],
                    |r| r.get(0),
                )
                .map_err(self.db.sql_err("recording snapshot"))?;
            let target = self.path_of(id);
            // A dir can only be here if a process died between rename and commit (the
            // id was rolled back and is being reused): it was never recorded, so it goes.
            if target.exists() {
                std::fs::remove_dir_all(&target).ctx("removing unrecorded snapshot dir", &target)?;
            }
            std::fs::rename(src, &target).ctx("renaming snapshot into", &target)?;
            Ok(((id, chain_id.to_string(), parent.map(|p| p.to_string()), diff_id.to_string(), now), true))
        });
        let (row, created) = match row {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(src);
                return Err(e);
            }
        };
        if created {
            sync_dir(&self.dir)?;
        } else {
            std::fs::remove_dir_all(src).ctx("removing duplicate snapshot dir", src)?;
        }
        self.to_info(row)
    }

    /// Deletes the record (refusing while children exist), then the dir.
    pub(crate) fn remove(&self, chain_id: &Digest) -> Result<(), StoreError> {
        let id = self.db.write("removing snapshot", |tx| {
            let e = self.db.sql_err("removing snapshot");
            let children: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM snapshots WHERE driver = ?1 AND parent = ?2",
                    [self.kind.as_str(), chain_id.as_str()],
                    |r| r.get(0),
                )
                .map_err(&e)?;
            if children > 0 {
                return Err(StoreError::SnapshotHasChildren {
                    chain_id: chain_id.clone(),
                    children: children as usize,
                });
            }
            tx.query_row(
                "DELETE FROM snapshots WHERE driver = ?1 AND chain_id = ?2 RETURNING id",
                [self.kind.as_str(), chain_id.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(&e)?
            .ok_or_else(|| StoreError::SnapshotNotFound(chain_id.clone()))
        })?;
        // Record gone first: a crash now leaves an unrecorded dir (found by check, removed
        // by gc), never a record without its dir. Rename to a temp name so the removal is
        // finished by the next cleanup if we die midway.
        let dir = self.path_of(id);
        // Locked before it gets a temp name: another process's clean-up of abandoned temps
        // skips a locked one instead of racing us to delete it.
        let held = match std::fs::File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("opening snapshot dir", dir, e)),
        };
        rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StoreError::io("locking snapshot dir", &dir, e.into()))?;
        let doomed = self.dir.join(lock::temp_name(TEMP_PREFIX));
        match std::fs::rename(&dir, &doomed) {
            Ok(()) => crate::store::remove_dir_all_settled(&doomed)
                .map_err(|e| StoreError::io("removing snapshot dir", doomed, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("removing snapshot dir", dir, e)),
        }
    }
}

/// Reads `tar` to EOF so a caller digesting the stream sees every byte.
fn drain(tar: &mut dyn Read, snapshot: &Path) -> Result<(), StoreError> {
    io::copy(tar, &mut io::sink()).ctx("reading layer stream for", snapshot)?;
    Ok(())
}
