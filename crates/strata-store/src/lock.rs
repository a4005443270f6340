//! Inter-process locks: the store-wide writer/gc lock and the per-temp owner locks.
//!
//! `<root>/lock` is flocked shared by every writer lease and exclusive by gc, so gc never
//! runs while a command has ingested blobs or created snapshots it has not yet recorded.
//! Every temp file or dir (blob ingests, snapshot unpacks) is flocked exclusively by its
//! owner for its whole life: a temp whose lock can be taken has no live owner and may be
//! removed, whatever its age. flock locks belong to the open file description, so this
//! also works between threads of one process.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::error::{IoContext, StoreError};

/// A shared hold on the store lock: while any lease is alive, gc waits.
///
/// Take one before ingesting blobs or unpacking snapshots and keep it until they are
/// recorded in an image (or container) record; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLease {
    _file: File,
}

/// The exclusive hold gc takes.
#[derive(Debug)]
pub(crate) struct ExclusiveLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .ctx("opening lock file", path)
}

/// Blocks until no gc runs, then holds the lock shared.
pub(crate) fn writer_lease(lock_path: &Path) -> Result<WriterLease, StoreError> {
    let file = open_lock_file(lock_path)?;
    flock(&file, FlockOperation::LockShared).ctx("taking shared lock on", lock_path)?;
    Ok(WriterLease { _file: file })
}

/// Waits up to `wait` for every writer lease to go, then holds the lock exclusively.
pub(crate) fn exclusive(
    root: &Path,
    lock_path: &Path,
    wait: Duration,
) -> Result<ExclusiveLock, StoreError> {
    let file = open_lock_file(lock_path)?;
    let start = Instant::now();
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(ExclusiveLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) if start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(StoreError::Busy {
                    root: root.to_path_buf(),
                    waited_secs: wait.as_secs(),
                })
            }
            Err(e) => {
                return Err(StoreError::io(
                    "taking exclusive lock on",
                    lock_path,
                    e.into(),
                ))
            }
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temp name `<prefix><pid>-<n>-<nanos>`; uniqueness comes from pid + counter.
pub(crate) fn temp_name(prefix: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{nanos}", std::process::id())
}

/// Creates a temp file in `dir` and locks it as its owner. Returns the open file and its path.
pub(crate) fn create_owned_temp_file(dir: &Path) -> Result<(File, PathBuf), StoreError> {
    loop {
        let path = dir.join(temp_name(""));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .ctx("creating temp file", &path)?;
        flock(&file, FlockOperation::LockExclusive).ctx("locking temp file", &path)?;
        // A cleaner may have taken the lock between create and flock and unlinked it.
        if file.metadata().ctx("inspecting temp file", &path)?.nlink() > 0 {
            return Ok((file, path));
        }
    }
}

/// Creates a temp dir `<dir>/<prefix>…` and locks it as its owner; the lock lives as long as the returned handle.
pub(crate) fn create_owned_temp_dir(
    dir: &Path,
    prefix: &str,
) -> Result<(File, PathBuf), StoreError> {
    loop {
        let path = dir.join(temp_name(prefix));
        std::fs::create_dir(&path).ctx("creating temp dir", &path)?;
        // Until it is locked, another process's clean-up may take it for abandoned and
        // remove it: then start over with a new name.
        let handle = match File::open(&path) {
            Ok(handle) => handle,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io("opening temp dir", &path, e)),
        };
        flock(&handle, FlockOperation::LockExclusive).ctx("locking temp dir", &path)?;
        if handle.metadata().ctx("inspecting temp dir", &path)?.nlink() > 0 {
            return Ok((handle, path));
        }
    }
}

/// An exclusive flock on a named lock file that is unlinked on release. Waiters that
/// wake on an unlinked file retry on a fresh one, so the file never outlives its use.
#[derive(Debug)]
pub(crate) struct NamedLock {
    /// Held only for its flock.
    _file: File,
    path: PathBuf,
}

impl NamedLock {
    /// Blocks until this process holds `path`'s lock.
    pub(crate) fn acquire(path: &Path) -> Result<NamedLock, StoreError> {
        loop {
            let file = open_lock_file(path)?;
            flock(&file, FlockOperation::LockExclusive).ctx("taking lock", path)?;
            if file.metadata().ctx("inspecting lock", path)?.nlink() > 0 {
                return Ok(NamedLock {
                    _file: file,
                    path: path.to_path_buf(),
                });
            }
        }
    }
}

impl Drop for NamedLock {
    /// Unlinks the file while still holding it; the lock goes with the file handle after.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when `path` (a temp file or dir) has no live owner: its lock can be taken.
/// The lock is held by the returned handle so the caller can remove it safely.
pub(crate) fn try_claim_abandoned(path: &Path) -> Option<File> {
    let handle = File::open(path).ok()?;
    match flock(&handle, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Some(handle),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_temp_cannot_be_claimed_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = create_owned_temp_file(dir.path()).unwrap();
        assert!(try_claim_abandoned(&path).is_none());
        drop(file);
        assert!(try_claim_abandoned(&path).is_some());

        let (handle, tdir) = create_owned_temp_dir(dir.path(), ".tmp-").unwrap();
        assert!(try_claim_abandoned(&tdir).is_none());
        drop(handle);
        assert!(try_claim_abandoned(&tdir).is_some());
    }

    #[test]
    fn named_lock_serializes_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock-x");
        let first = NamedLock::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let second = NamedLock::acquire(&p).unwrap();
            tx.send(()).unwrap();
            drop(second);
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "second waits"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn gc_lock_waits_for_leases() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        let lease = writer_lease(&lock).unwrap();
        let err = exclusive(dir.path(), &lock, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }));
        drop(lease);
        let _excl = exclusive(dir.path(), &lock, Duration::from_millis(50)).unwrap();
    }
}
