//! The metadata database: `<root>/metadata.db`, SQLite in WAL mode, shared by every
//! strata process on the machine.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction (so concurrent writers queue on the
//! busy timeout instead of failing on lock upgrade); `synchronous=NORMAL` is durable
//! across process crashes in WAL mode. Digests are stored as their `sha256:<hex>` text.
//!
//! Schema (version 5):
//! ```text
//! schema_version(version INTEGER)                    one row; migrations run inside BEGIN IMMEDIATE
//! settings(key TEXT PK, value TEXT)                  "driver", "driver_note"
//! images(id TEXT PK,                                 config digest = image id
//!        manifest TEXT NULL, created TEXT NULL,      manifest digest as stored; config "created"
//!        added_at INTEGER, parent TEXT NULL)         unix seconds; build parent image id
//! image_layers(image_id → images ON DELETE CASCADE, idx INTEGER, diff_id TEXT, blob TEXT,
//!        media_type TEXT, blob_size INTEGER, PK(image_id, idx))      bottom layer first
//! tags(name TEXT PK, image_id → images CASCADE)      full normalized reference
//! repo_digests(image_id → images CASCADE, name TEXT, PK(image_id, name))   "repo@sha256:…"
//! snapshots(id INTEGER PK AUTOINCREMENT,             dir name under snapshots/<driver>/
//!        driver TEXT, chain_id TEXT, parent TEXT NULL, diff_id TEXT, created INTEGER,
//!        UNIQUE(driver, chain_id))
//! containers(id TEXT PK, name TEXT UNIQUE, image_id TEXT, created INTEGER,
//!        state TEXT, config TEXT)                    JSON owned by strata-container
//! build_cache(cache_key TEXT PK, config TEXT, diff_id TEXT NULL, created INTEGER,   (v2)
//!        last_used INTEGER)                          (v5) unix seconds of the last hit (or creation)
//! build_steps(position TEXT PK, cache_key TEXT,      (v3) last inputs of a build step position,
//!        parent_key TEXT, inputs BLOB,               opaque to the store (--explain-cache)
//!        recorded INTEGER)
//! compressed_blobs(diff_id TEXT, algorithm TEXT,     (v4) a layer compressed for a push, so the
//!        level INTEGER, blob TEXT, size INTEGER,     next push of it compresses nothing
//!        PK(diff_id, algorithm, level))
//! blob_sources(blob TEXT, registry TEXT,             (v4) where a blob was pulled from or pushed
//!        repository TEXT, seen INTEGER,              to: a push to another repository of the same
//!        PK(blob, registry, repository))             registry mounts it instead of uploading
//! upload_sessions(key TEXT PK, location TEXT,        (v4) a push's open blob upload, resumed by
//!        created INTEGER)                            the next push of the same blob
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use strata_oci::Digest;

use crate::error::StoreError;

/// Highest schema version this code knows.
pub(crate) const SCHEMA_VERSION: i64 = 6;

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest TEXT,
    created TEXT,
    added_at INTEGER NOT NULL,
    parent TEXT
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    blob TEXT NOT NULL,
    media_type TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX image_layers_blob ON image_layers(blob);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE repo_digests (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    driver TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    parent TEXT,
    diff_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    UNIQUE (driver, chain_id)
);
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    state TEXT NOT NULL,
    config TEXT
);
CREATE INDEX containers_image ON containers(image_id);
"#,
    r#"
CREATE TABLE build_cache (
    cache_key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    diff_id TEXT,
    created INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE build_steps (
    position TEXT PRIMARY KEY,
    cache_key TEXT NOT NULL,
    parent_key TEXT NOT NULL,
    inputs BLOB NOT NULL,
    recorded INTEGER NOT NULL
);
CREATE INDEX build_steps_recorded ON build_steps(recorded);
CREATE INDEX build_steps_parent ON build_steps(parent_key);
"#,
    r#"
CREATE TABLE compressed_blobs (
    diff_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    level INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (diff_id, algorithm, level)
);
CREATE TABLE blob_sources (
    blob TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen INTEGER NOT NULL,
    PRIMARY KEY (blob, registry, repository)
);
CREATE TABLE upload_sessions (
    key TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    created INTEGER NOT NULL
);
"#,
    // Entries recorded before last use was tracked were last used when they were made.
    r#"
ALTER TABLE build_cache ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
UPDATE build_cache SET last_used = created;
"#,
    // A committed snapshot never changes: its disk usage is measured once and kept (NULL:
    // not measured yet), so `images` does not walk every layer's files each time.
    r#"
ALTER TABLE snapshots ADD COLUMN size INTEGER;
"#,
];

/// Switches a database to WAL mode (persistent, so only a new database changes). The switch
/// needs a moment of exclusive access, which SQLite does not wait for through the busy
/// timeout: when several processes open a new store at once, retry for up to 10 s.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mode: rusqlite::Result<String> =
            conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
        let result = match mode {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => conn.pragma_update(None, "journal_mode", "WAL"),
            Err(e) => Err(e),
        };
        match result {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// One connection per `Store`, serialized by a mutex (rusqlite connections are not `Sync`).
#[derive(Debug)]
pub(crate) struct Db {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Space set aside beside the database (see [`SpaceReserve`]).
    reserve: SpaceReserve,
}

/// A file of [`SpaceReserve::BYTES`] preallocated beside the database, deleted when a write
/// transaction fails because the disk is full, so that the transaction can be retried: the
/// state changes that free space (`stop`, `kill`, `rm -f`, `rmi`) still commit on a full disk.
/// Recreated by a later open once there is room again.
#[derive(Debug)]
pub(crate) struct SpaceReserve {
    path: PathBuf,
}

impl SpaceReserve {
    pub(crate) const BYTES: u64 = 8 << 20;
    pub(crate) const FILE: &'static str = "space-reserve";

    fn beside(db: &Path) -> SpaceReserve {
        SpaceReserve {
            path: db.with_file_name(Self::FILE),
        }
    }

    /// Makes sure the reserve exists: one `stat` when it does. Best effort: a disk too full
    /// to hold it leaves none (and nothing half-written).
    fn ensure(&self) {
        if self.path.exists() {
            return;
        }
        let tmp = self
            .path
            .with_file_name(format!(".{}-{}", Self::FILE, std::process::id()));
        let made = std::fs::File::create(&tmp).and_then(|f| {
            match rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, Self::BYTES) {
                Ok(()) => Ok(()),
                // A filesystem without fallocate: real zeros take the same room.
                Err(e) if e == rustix::io::Errno::OPNOTSUPP => {
                    use std::io::Write;
                    let chunk = vec![0u8; 1 << 20];
                    let mut f = &f;
                    (0..Self::BYTES >> 20).try_for_each(|_| f.write_all(&chunk))
                }
                Err(e) => Err(e.into()),
            }?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        });
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Gives the space back to the filesystem; true if there was a reserve to give.
    fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// Whether `e` says the disk (or the database's filesystem) is full.
fn is_disk_full(e: &StoreError) -> bool {
    match e {
        StoreError::Db {
            source: rusqlite::Error::SqliteFailure(f, _),
            ..
        } => f.code == rusqlite::ErrorCode::DiskFull,
        StoreError::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
        _ => false,
    }
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Db, StoreError> {
        let err = |context| {
            move |source| StoreError::Db {
                path: path.to_path_buf(),
                context,
                source,
            }
        };
        let conn = Connection::open(path).map_err(err("opening"))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(err("setting busy timeout"))?;
        enable_wal(&conn).map_err(err("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("setting synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err("enabling foreign keys"))?;
        // Every strata command opens and closes the database: a checkpoint at each close
        // would cost fsyncs per command. SQLite checkpoints as the WAL grows instead.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(err("configuring checkpoints"))?;
        let db = Db {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            reserve: SpaceReserve::beside(path),
        };
        db.migrate()?;
        db.reserve.ensure();
        Ok(db)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: an open
        // transaction is rolled back when its guard drops.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn sql_err(
        &self,
        context: &'static str,
    ) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.path.clone(),
            context,
            source,
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committing if it returns Ok. When the
    /// disk is full, the space reserve is given back and the transaction runs once more.
    pub(crate) fn write<T>(
        &self,
        context: &'static str,
        mut f: impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.write_once(context, &mut f) {
            Err(e) if is_disk_full(&e) && self.reserve.release() => {
                self.write_once(context, &mut f)
            }
            other => other,
        }
    }

    fn write_once<T>(
        &self,
        context: &'static str,
        f: &mut impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql_err(context))?;
        let out = f(&tx)?;
        tx.commit().map_err(self.sql_err(context))?;
        Ok(out)
    }

    /// Runs `f` in one deferred (read) transaction, so it sees one consistent snapshot.
    pub(crate) fn read<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(self.sql_err(context))?;
        f(&tx)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.write("migrating schema", |tx| {
            let e = self.sql_err("migrating schema");
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
            )
            .map_err(&e)?;
            let found: Option<i64> = tx
                .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
                .optional()
                .map_err(&e)?;
            let mut version = found.unwrap_or(0);
            if version > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    path: self.path.clone(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            if found == Some(SCHEMA_VERSION) {
                // Nothing to write: a read-only open must not cost a commit (and its fsync).
                return Ok(());
            }
            while version < SCHEMA_VERSION {
                tx.execute_batch(MIGRATIONS[version as usize]).map_err(&e)?;
                version += 1;
            }
            tx.execute("DELETE FROM schema_version", []).map_err(&e)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )
            .map_err(&e)?;
            Ok(())
        })
    }

    pub(crate) fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read("reading settings", |tx| {
            tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql_err("reading settings"))
        })
    }

    pub(crate) fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.write("writing settings", |tx| {
            let e = self.sql_err("writing settings");
            match value {
                Some(v) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [key, v],
                ),
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [key]),
            }
            .map_err(&e)?;
            Ok(())
        })
    }

    pub(crate) fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read("reading settings", |tx| {
            let e = self.sql_err("reading settings");
            let mut stmt = tx
                .prepare("SELECT key, value FROM settings ORDER BY key")
                .map_err(&e)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&e)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&e)
        })
    }

    /// Sets `key` only if unset; returns the value that holds afterwards (first writer wins).
    pub(crate) fn setting_init(&self, key: &str, value: &str) -> Result<String, StoreError> {
        self.write("writing settings", |tx| {
            let e = self.sql_err("writing settings");
            tx.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
                [key, value],
            )
            .map_err(&e)?;
            tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .map_err(&e)
        })
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`: the problems found, empty when fine.
    pub(crate) fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        self.read("checking integrity", |tx| {
            let e = self.sql_err("checking integrity");
            let mut out = Vec::new();
            let mut stmt = tx.prepare("PRAGMA integrity_check").map_err(&e)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&e)?;
            for row in rows {
                let row = row.map_err(&e)?;
                if row != "ok" {
                    out.push(row);
                }
            }
            let mut stmt = tx.prepare("PRAGMA foreign_key_check").map_err(&e)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "foreign key violation in table {}",
                        r.get::<_, String>(0)?
                    ))
                })
                .map_err(&e)?;
            for row in rows {
                out.push(row.map_err(&e)?);
            }
            Ok(out)
        })
    }
}

/// Parses a digest column, naming the table when the row is corrupt.
pub(crate) fn digest_col(table: &'static str, value: String) -> Result<Digest, StoreError> {
    Digest::parse(&value).map_err(|_| StoreError::CorruptRecord { table, value })
}

pub(crate) fn opt_digest_col(
    table: &'static str,
    value: Option<String>,
) -> Result<Option<Digest>, StoreError> {
    value.map(|v| digest_col(table, v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_twice_migrates_once_and_settings_first_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        let a = Db::open(&path).unwrap();
        let b = Db::open(&path).unwrap();
        assert_eq!(a.setting_init("driver", "vfs").unwrap(), "vfs");
        assert_eq!(b.setting_init("driver", "overlay").unwrap(), "vfs");
        assert_eq!(b.setting("driver").unwrap().as_deref(), Some("vfs"));
        assert!(a.integrity_problems().unwrap().is_empty());
        let v: i64 = a
            .read("t", |tx| {
                Ok(tx
                    .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
                    .unwrap())
            })
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_3_store_migrates_with_last_use_from_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        {
            // A store as strata with schema 3 left it, one build cache entry in it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);")
                .unwrap();
            for m in &MIGRATIONS[..3] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO schema_version (version) VALUES (3); \
                 INSERT INTO build_cache (cache_key, config, diff_id, created) \
                 VALUES ('k', 'sha256:00', NULL, 1234);",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let (version, last_used): (i64, i64) = db
            .read("t", |tx| {
                Ok((
                    tx.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
                        .unwrap(),
                    tx.query_row("SELECT last_used FROM build_cache", [], |r| r.get(0))
                        .unwrap(),
                ))
            })
            .unwrap();
        assert_eq!((version, last_used), (SCHEMA_VERSION, 1234));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.db");
        let a = Db::open(&path).unwrap();
        a.write("t", |tx| {
            Ok(tx
                .execute("UPDATE schema_version SET version = 99", [])
                .unwrap())
        })
        .unwrap();
        assert!(matches!(
            Db::open(&path),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }
}
