//! `TempArea`: one build's private directory on the store's filesystem for step and mount
//! dirs, locked while the build runs, so the next build can remove what a killed one left
//! (the lock, not a pid, tells a live build from a dead one).

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use strata_store::{Store, StoreDir};

use crate::BuildError;

const AREA_PREFIX: &str = "build-";
const LOCK_SUFFIX: &str = ".lock";

/// `<store>/build-tmp/build-<pid>-<n>/`, with a sibling `.lock` file flocked for its life.
#[derive(Debug)]
pub(crate) struct TempArea {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl TempArea {
    /// Removes areas whose builds are gone, then creates this build's.
    pub(crate) fn create(store: &Store) -> Result<TempArea, BuildError> {
        let parent = store.private_dir(StoreDir::BuildTmp)?;
        reap_abandoned(&parent);
        let mut n = 0u32;
        loop {
            let name = format!("{AREA_PREFIX}{}-{n}", std::process::id());
            let lock_path = parent.join(format!("{name}{LOCK_SUFFIX}"));
            let lock = File::options()
                .write(true)
                .create_new(true)
                .open(&lock_path);
            let lock = match lock {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    continue;
                }
                Err(e) => return Err(BuildError::io("creating", &lock_path)(e)),
            };
            // Lock before the dir exists, so a reaper never sees an unlocked live area.
            flock(&lock, FlockOperation::NonBlockingLockExclusive).map_err(|e| BuildError::Io {
                what: "locking",
                path: lock_path.clone(),
                source: e.into(),
            })?;
            let dir = parent.join(&name);
            std::fs::create_dir(&dir).map_err(BuildError::io("creating", &dir))?;
            return Ok(TempArea {
                dir,
                lock_path,
                _lock: lock,
            });
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// A fresh directory in the area, removed on drop unless renamed away (committed).
    pub(crate) fn scratch(&self) -> Result<tempfile::TempDir, BuildError> {
        tempfile::Builder::new()
            .prefix("step-")
            .tempdir_in(&self.dir)
            .map_err(BuildError::io("creating a temp dir in", &self.dir))
    }
}

impl Drop for TempArea {
    fn drop(&mut self) {
        // Best effort: whatever stays is reaped by the next build.
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Removes every area whose lock nobody holds (its build was killed).
fn reap_abandoned(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(area) = name
            .strip_prefix(AREA_PREFIX)
            .and_then(|rest| rest.strip_suffix(LOCK_SUFFIX))
        else {
            continue;
        };
        let lock_path = entry.path();
        let Ok(lock) = File::options().write(true).open(&lock_path) else {
            continue;
        };
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let dir = parent.join(format!("{AREA_PREFIX}{area}"));
            // Builds mount only in a namespace that dies with them; a mount still seen here
            // was left by an older strata, and would make the removal fail with EBUSY.
            if let Ok(points) = strata_store::mount_points_under(&dir) {
                for point in points.iter().rev() {
                    let _ = strata_store::unmount(point);
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::remove_file(&lock_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::StoreOptions;

    #[test]
    fn live_areas_survive_and_abandoned_ones_are_reaped() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path(), &StoreOptions::default()).unwrap();
        let live = TempArea::create(&store).unwrap();
        let step = live.scratch().unwrap();
        std::fs::write(step.path().join("f"), "x").unwrap();
        // An area left by a killed build: its lock file exists but nobody holds it.
        let parent = root.path().join(StoreDir::BuildTmp.name());
        std::fs::create_dir_all(parent.join("build-999999-0/step-x")).unwrap();
        std::fs::write(parent.join("build-999999-0.lock"), "").unwrap();

        let other = TempArea::create(&store).unwrap();
        assert!(!parent.join("build-999999-0").exists());
        assert!(!parent.join("build-999999-0.lock").exists());
        assert!(
            step.path().join("f").exists(),
            "a live build's area is kept"
        );
        assert_ne!(live.path(), other.path());
        let (live_dir, other_dir) = (live.path().to_path_buf(), other.path().to_path_buf());
        drop(step);
        drop(live);
        drop(other);
        assert!(!live_dir.exists() && !other_dir.exists());
    }
}
