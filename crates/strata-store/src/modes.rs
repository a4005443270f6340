//! Who may read the store: nobody but root, as with Docker's data root.
//!
//! The root is `0710` (root can enter it, its group only traverse, others nothing), every
//! directory directly in it `0700`, and the metadata database (with its `-wal` and `-shm`,
//! which hold recent records: container environments, build args) and the lock `0600`.
//! Nothing deeper needs changing for the store to be private: no other user can reach below
//! the first level. Deeper files still get their own modest modes where they are written
//! (runtime `config.json` 0600, container logs 0640), in case someone opens the root up.
//!
//! [`secure_root`] runs at every open, so a store written by an older strata (0755 dirs,
//! 0644 database) is closed the next time any command touches it: one `stat` per top-level
//! entry, a `chmod` only where a mode is wrong.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, StoreError};

/// Mode of the store root (Docker's data root: 0710).
pub(crate) const ROOT_MODE: u32 = 0o710;
/// Mode of each directory directly in the root.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the database files and the lock.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `root` if needed and gives it and its top-level entries their private modes.
/// Refuses a root that others can write to and that already holds other things (`/tmp`
/// itself, say): it is not the store's, and others could plant links in it.
pub(crate) fn secure_root(root: &Path) -> Result<(), StoreError> {
    if !root.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(ROOT_MODE)
            .create(root)
            .ctx("creating store root", root)?;
    }
    let meta = std::fs::metadata(root).ctx("inspecting store root", root)?;
    // A fresh filesystem mounted for the store (a tmpfs is 1777) is fine to close; a shared
    // directory already holding other things (`/tmp` itself) is not the store's to take.
    let shared = meta.mode() & 0o002 != 0
        && !root.join(crate::layout::METADATA_DB).exists()
        && std::fs::read_dir(root)
            .ctx("listing", root)?
            .flatten()
            .any(|e| e.file_name() != "lost+found");
    if shared {
        return Err(StoreError::io(
            "using as store root",
            root,
            std::io::Error::other(
                "other users can write to it: give the store a directory of its own",
            ),
        ));
    }
    set_mode(root, meta.mode(), ROOT_MODE)?;
    for entry in std::fs::read_dir(root).ctx("listing", root)? {
        let entry = entry.ctx("listing", root)?;
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        if meta.is_dir() {
            set_mode(&path, meta.mode(), PRIVATE_DIR_MODE)?;
        } else if meta.is_file() {
            // Database, its journal files, the lock: nothing there is for anyone else.
            let mode = meta.mode() & !0o077;
            set_mode(&path, meta.mode(), mode)?;
        }
    }
    Ok(())
}

/// `<root>/<name>`, a private (0700) directory, created if missing: every component that
/// keeps something in the store root gets its directory here.
pub(crate) fn private_dir(root: &Path, name: &str) -> Result<PathBuf, StoreError> {
    let path = root.join(name);
    match DirBuilder::new().mode(PRIVATE_DIR_MODE).create(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io("creating", &path, e)),
    }
    Ok(path)
}

/// Creates the (empty) database file 0600 before SQLite does: SQLite gives its `-wal` and
/// `-shm` files the database's own mode.
pub(crate) fn create_private_file(path: &Path) -> Result<(), StoreError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
        .ctx("creating", path)?;
    Ok(())
}

fn set_mode(path: &Path, current: u32, wanted: u32) -> Result<(), StoreError> {
    if current & 0o7777 == wanted {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
        .ctx("restricting the mode of", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn an_open_store_is_closed_and_a_shared_root_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        secure_root(&root).unwrap();
        assert_eq!(mode(&root), 0o710);
        // What an older strata left: world-readable dirs and database.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.join("containers")).unwrap();
        std::fs::set_permissions(
            root.join("containers"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(root.join("metadata.db-wal"), "records").unwrap();
        std::fs::set_permissions(
            root.join("metadata.db-wal"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        secure_root(&root).unwrap();
        assert_eq!(mode(&root), 0o710);
        assert_eq!(mode(&root.join("containers")), 0o700);
        assert_eq!(mode(&root.join("metadata.db-wal")), 0o600);
        assert_eq!(
            mode(Path::new("/etc")) & 0o755,
            0o755,
            "links are not followed"
        );

        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::fs::write(shared.join("someone-else's"), "").unwrap();
        assert!(secure_root(&shared).is_err());
        assert_eq!(mode(&shared), 0o1777, "a refused root is left alone");
        // An empty one (a tmpfs mounted for the store) becomes the store's.
        std::fs::remove_file(shared.join("someone-else's")).unwrap();
        secure_root(&shared).unwrap();
        assert_eq!(mode(&shared), 0o710);
    }

    #[test]
    fn private_dirs_and_files_are_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let sub = private_dir(dir.path(), "build-tmp").unwrap();
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(private_dir(dir.path(), "build-tmp").unwrap(), sub);
        let db = dir.path().join("metadata.db");
        create_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}
