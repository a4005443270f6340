//! `Store`: opening a store root and the façade the rest of strata calls.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_oci::Digest;

use crate::content::ContentStore;
use crate::db::Db;
use crate::error::{IoContext, StoreError};
use crate::images::ImageRecord;
use crate::layout::{StoreDir, BLOB_ALGORITHM, LOCK_FILE, METADATA_DB};
use crate::lock::{self, WriterLease};
use crate::modes;
use crate::snapshot::{
    self, DriverKind, OverlaySnapshotter, SnapshotDir, Snapshotter, VfsSnapshotter,
};

/// How to open a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Explicit driver choice. Recorded at first open; a later different explicit choice
    /// fails. None: the recorded driver, or overlay (vfs if overlay cannot be mounted).
    pub driver: Option<DriverKind>,
}

/// What `system info` shows about a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    pub root: PathBuf,
    pub driver: DriverKind,
    /// Why the driver is not the default one, when it was chosen automatically.
    pub driver_note: Option<String>,
    pub schema_version: i64,
}

/// One store root on this machine. Several `Store`s (threads or processes) may be open
/// on the same root at once.
pub struct Store {
    root: PathBuf,
    db: Arc<Db>,
    content: ContentStore,
    snapshots: SnapshotDir,
    snapshotter: Box<dyn Snapshotter>,
    info: StoreInfo,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

const DRIVER_KEY: &str = "driver";
const DRIVER_NOTE_KEY: &str = "driver_note";

impl Store {
    /// Opens (creating if needed) the store at `root`, makes it private to root (see
    /// `modes`), migrates the schema, settles the driver and removes temp files and dirs left
    /// by dead processes.
    pub fn open(root: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        modes::secure_root(root)?;
        for dir in StoreDir::ALL.into_iter().filter(|d| d.always_present()) {
            modes::private_dir(root, dir.name())?;
        }
        let sha = root.join(StoreDir::Blobs.name()).join(BLOB_ALGORITHM);
        std::fs::create_dir_all(&sha).ctx("creating store dir", &sha)?;
        let db_path = root.join(METADATA_DB);
        modes::create_private_file(&db_path)?;
        let db = Arc::new(Db::open(&db_path)?);
        let (driver, driver_note) = settle_driver(root, &db, opts.driver)?;
        let snapshots = SnapshotDir::new(db.clone(), root, driver);
        std::fs::create_dir_all(snapshots.dir()).ctx("creating store dir", snapshots.dir())?;
        let snapshotter: Box<dyn Snapshotter> = match driver {
            DriverKind::Overlay => Box::new(OverlaySnapshotter::new(snapshots.clone())),
            DriverKind::Vfs => Box::new(VfsSnapshotter::new(snapshots.clone())),
        };
        let store = Store {
            root: root.to_path_buf(),
            db,
            content: ContentStore::new(root),
            snapshots,
            snapshotter,
            info: StoreInfo {
                root: root.to_path_buf(),
                driver,
                driver_note,
                schema_version: crate::db::SCHEMA_VERSION,
            },
        };
        store.remove_abandoned_temps()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<dir>`, created private (0700) if missing: where a component keeps its own
    /// files in the store (build temp areas, cache mounts, volumes...).
    pub fn private_dir(&self, dir: StoreDir) -> Result<PathBuf, StoreError> {
        modes::private_dir(&self.root, dir.name())
    }

    /// `<root>/<dir>`, whether or not it exists yet.
    pub fn dir_path(&self, dir: StoreDir) -> PathBuf {
        self.root.join(dir.name())
    }

    pub fn driver(&self) -> DriverKind {
        self.info.driver
    }

    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// A store-wide setting (`strata system config`); the store gives them no meaning.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.db.setting(key)
    }

    /// Sets (`Some`) or removes (`None`) a store-wide setting.
    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.db.set_setting(key, value)
    }

    /// Every store-wide setting, by key.
    pub fn settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.db.settings()
    }

    pub fn snapshotter(&self) -> &dyn Snapshotter {
        self.snapshotter.as_ref()
    }

    /// A shared lock held while a command ingests blobs or creates snapshots and until it
    /// has recorded them, so gc cannot collect them midway. Blocks while gc runs.
    pub fn writer_lease(&self) -> Result<WriterLease, StoreError> {
        lock::writer_lease(&self.lock_path())
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    #[cfg(test)]
    pub(crate) fn db_arc(&self) -> Arc<Db> {
        self.db.clone()
    }

    pub(crate) fn snapshot_dir(&self) -> &SnapshotDir {
        &self.snapshots
    }

    /// Records `rec` unless an image with that id exists, then points each tag at it
    /// (moving the tag from another image). One transaction.
    pub fn put_image(&self, rec: &ImageRecord, tags: &[String]) -> Result<(), StoreError> {
        self.db.put_image(rec, tags)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        self.db.image(id)
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.db.images()
    }

    /// Image ids starting with `prefix` (`3f2a` or `sha256:3f2a…`), sorted.
    pub fn resolve_id_prefix(&self, prefix: &str) -> Result<Vec<Digest>, StoreError> {
        self.db.resolve_id_prefix(prefix)
    }

    /// Points tag `name` (a full normalized reference) at image `id`.
    pub fn tag(&self, name: &str, id: &Digest) -> Result<(), StoreError> {
        self.db.tag(name, id)
    }

    /// Removes tag `name`, returning the image it pointed at.
    pub fn untag(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        self.db.untag(name)
    }

    pub fn resolve_tag(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        self.db.resolve_tag(name)
    }

    /// Every tag, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        self.db.tags()
    }

    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>, StoreError> {
        self.db.tags_of(id)
    }

    /// Remembers `repo@sha256:…` (the manifest digest a registry knows the image by).
    pub fn add_repo_digest(&self, id: &Digest, name_at_digest: &str) -> Result<(), StoreError> {
        self.db.add_repo_digest(id, name_at_digest)
    }

    pub fn repo_digests_of(&self, id: &Digest) -> Result<Vec<String>, StoreError> {
        self.db.repo_digests_of(id)
    }

    /// Deletes the image record with its tags and repo digests; blobs and snapshots go at gc.
    pub fn delete_image(&self, id: &Digest) -> Result<(), StoreError> {
        self.db.delete_image(id)
    }

    /// Ids of containers created from image `id`.
    pub fn containers_using(&self, id: &Digest) -> Result<Vec<String>, StoreError> {
        self.db.containers_using(id)
    }

    /// Removes ingest temps and snapshot temp dirs whose owner is gone (their lock is free).
    fn remove_abandoned_temps(&self) -> Result<(), StoreError> {
        for (path, _claim) in abandoned_temps(self)? {
            remove_path(&path)?;
        }
        Ok(())
    }
}

/// Temp files and dirs with no live owner, each returned with its lock held: remove it
/// before dropping the lock, or a writer that just created it could be racing us.
/// Resumable partial blobs are not temps: see [`abandoned_partials`].
pub(crate) fn abandoned_temps(store: &Store) -> Result<Vec<(PathBuf, File)>, StoreError> {
    let mut out = Vec::new();
    let ingest = store.content.ingest_dir();
    for entry in std::fs::read_dir(ingest).ctx("listing", ingest)? {
        let path = entry.ctx("listing", ingest)?.path();
        if is_partial(&path) {
            continue;
        }
        if let Some(claim) = lock::try_claim_abandoned(&path) {
            out.push((path, claim));
        }
    }
    let snaps_root = store.dir_path(StoreDir::Snapshots);
    for dir in [snaps_root.clone(), store.snapshots.dir().to_path_buf()] {
        for entry in std::fs::read_dir(&dir).ctx("listing", &dir)? {
            let path = entry.ctx("listing", &dir)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let is_temp = [
                crate::snapshot::TEMP_PREFIX,
                crate::snapshot::LOCK_PREFIX,
                ".probe-",
            ]
            .iter()
            .any(|p| name.starts_with(p));
            if !is_temp {
                continue;
            }
            if let Some(claim) = lock::try_claim_abandoned(&path) {
                out.push((path, claim));
            }
        }
    }
    Ok(out)
}

fn is_partial(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(crate::content::PARTIAL_PREFIX))
}

/// Resumable partial blobs (interrupted downloads) with no live writer, untouched for at
/// least `min_age`, each returned with its lock held.
pub(crate) fn abandoned_partials(
    store: &Store,
    min_age: std::time::Duration,
) -> Result<Vec<(PathBuf, File)>, StoreError> {
    let mut out = Vec::new();
    let ingest = store.content.ingest_dir();
    for entry in std::fs::read_dir(ingest).ctx("listing", ingest)? {
        let path = entry.ctx("listing", ingest)?.path();
        if !is_partial(&path) {
            continue;
        }
        let old_enough = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if !old_enough {
            continue;
        }
        if let Some(claim) = lock::try_claim_abandoned(&path) {
            out.push((path, claim));
        }
    }
    Ok(out)
}

/// Removes a file or a whole dir; already gone is fine.
pub(crate) fn remove_path(path: &Path) -> Result<u64, StoreError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::io("inspecting", path, e)),
    };
    if meta.is_dir() {
        let bytes = snapshot::dir_usage(path).unwrap_or(0);
        remove_dir_all_settled(path).ctx("removing", path)?;
        Ok(bytes)
    } else {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::io("removing", path, e))
            }
            _ => Ok(meta.len()),
        }
    }
}

/// `remove_dir_all` that is done when the tree is gone, whoever removed which part: entries
/// vanishing under it (another process cleaning up too) are not errors.
pub(crate) fn remove_dir_all_settled(path: &Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(_) if !path.exists() => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

fn settle_driver(
    root: &Path,
    db: &Db,
    requested: Option<DriverKind>,
) -> Result<(DriverKind, Option<String>), StoreError> {
    if let Some(recorded) = db.setting(DRIVER_KEY)? {
        let recorded: DriverKind = recorded.parse()?;
        if let Some(req) = requested {
            if req != recorded {
                return Err(StoreError::DriverMismatch {
                    root: root.to_path_buf(),
                    recorded,
                    requested: req,
                });
            }
        }
        return Ok((recorded, db.setting(DRIVER_NOTE_KEY)?));
    }
    let snapshots = root.join(StoreDir::Snapshots.name());
    let (choice, note) = match requested {
        Some(DriverKind::Overlay) => {
            snapshot::probe_overlay(&snapshots).map_err(|reason| {
                StoreError::OverlayUnsupported {
                    root: root.to_path_buf(),
                    reason,
                }
            })?;
            (DriverKind::Overlay, None)
        }
        Some(DriverKind::Vfs) => (DriverKind::Vfs, None),
        None => match snapshot::probe_overlay(&snapshots) {
            Ok(()) => (DriverKind::Overlay, None),
            Err(reason) => (
                DriverKind::Vfs,
                Some(format!("overlay is not usable here ({reason}); using vfs")),
            ),
        },
    };
    if let Some(note) = &note {
        db.setting_init(DRIVER_NOTE_KEY, note)?;
    }
    // Another process may have settled it first: its choice wins, if compatible.
    let settled: DriverKind = db.setting_init(DRIVER_KEY, choice.as_str())?.parse()?;
    if settled != choice && requested.is_some() {
        return Err(StoreError::DriverMismatch {
            root: root.to_path_buf(),
            recorded: settled,
            requested: choice,
        });
    }
    Ok((settled, db.setting(DRIVER_NOTE_KEY)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_is_recorded_at_first_open_and_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StoreOptions {
            driver: Some(DriverKind::Vfs),
        };
        let overlay = StoreOptions {
            driver: Some(DriverKind::Overlay),
        };
        let store = Store::open(dir.path(), &vfs).unwrap();
        assert_eq!(store.driver(), DriverKind::Vfs);
        assert_eq!(
            Store::open(dir.path(), &StoreOptions::default())
                .unwrap()
                .driver(),
            DriverKind::Vfs
        );
        let err = Store::open(dir.path(), &overlay).unwrap_err();
        assert!(matches!(
            err,
            StoreError::DriverMismatch {
                recorded: DriverKind::Vfs,
                requested: DriverKind::Overlay,
                ..
            }
        ));
        assert!(err.to_string().contains("drop the driver option"), "{err}");

        // Default on a fresh root: overlay where it can be mounted (it can here, as root on ext4).
        let fresh = tempfile::tempdir().unwrap();
        let store = Store::open(fresh.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.driver(), DriverKind::Overlay);
        assert_eq!(store.info().driver_note, None);
        assert!(store.root().join("snapshots/overlay").is_dir());
        assert_eq!(
            std::fs::read_dir(store.root().join("snapshots"))
                .unwrap()
                .count(),
            1,
            "probe dir cleaned"
        );
    }

    #[test]
    fn driver_names_parse_and_print() {
        for (text, kind) in [
            ("overlay", DriverKind::Overlay),
            ("overlay2", DriverKind::Overlay),
            ("vfs", DriverKind::Vfs),
        ] {
            assert_eq!(text.parse::<DriverKind>().unwrap(), kind);
        }
        assert_eq!(DriverKind::Overlay.to_string(), "overlay");
        assert!(matches!(
            "btrfs".parse::<DriverKind>(),
            Err(StoreError::UnknownDriver(_))
        ));
    }
}
