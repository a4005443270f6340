//! The filesystem backend: keys are paths under one directory.
//!
//! ```text
//! <root>/blobs/sha256/<ab>/<hex>        blob and manifest contents (by layout.rs)
//! <root>/repositories/<name>/_…         tags, links, referrers (small documents)
//! <root>/uploads/<id>/data              an upload's bytes (the ingest)
//! <root>/uploads/<id>/state             its state document
//! <root>/tmp/                           temp files of atomic writes (same filesystem)
//! <root>/locks/{serve,gc,references}    flocks: one server, one collector, reference/sweep
//! <root>/locks/clock                    its time is the collector's clock (`now`)
//! ```
//! Crash safety: a document or blob becomes visible only by `rename` of a complete, fsynced
//! temp file, followed by an fsync of its directory (and of every directory created for it).
//! Small reads and stats run inline on the async thread (page-cache hits, microseconds);
//! anything that syncs or streams runs on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use rustix::fs::{FlockOperation, Timespec, Timestamps, UTIME_NOW};
use tokio::sync::{mpsc, RwLock};

use super::{check_key, ByteStream, Guard, Lease, Listing, ObjectMeta, Storage, StorageError};

/// Reads at most this much inline; bigger objects stream from a blocking thread.
const INLINE_READ: u64 = 256 * 1024;
/// Chunk size of streamed reads.
const READ_CHUNK: usize = 256 * 1024;

pub struct FsStorage {
    root: PathBuf,
    /// In-process half of the reference/sweep barrier (the flock is the cross-process half).
    barrier: Arc<RwLock<()>>,
    temp_counter: AtomicU64,
}

impl FsStorage {
    /// Opens (creating) a storage directory.
    pub fn open(root: &Path) -> Result<FsStorage, StorageError> {
        for dir in ["blobs", "repositories", "uploads", "tmp", "locks"] {
            create_dir_all_synced(&root.join(dir)).map_err(|e| StorageError::io(dir, e))?;
        }
        Ok(FsStorage {
            root: root.to_path_buf(),
            barrier: Arc::new(RwLock::new(())),
            temp_counter: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the storage for one serving process; `None` when another process serves it
    /// (two servers on one directory would each believe they own the upload sessions).
    pub fn lock_for_serving(&self) -> Result<Option<File>, StorageError> {
        try_flock(
            &self.root.join("locks/serve"),
            FlockOperation::NonBlockingLockExclusive,
        )
        .map_err(|e| StorageError::io("locks/serve", e))
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key.trim_end_matches('/')))
    }

    fn ingest_dir(&self, id: &str) -> Result<PathBuf, StorageError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StorageError::InvalidKey(id.to_string()));
        }
        Ok(self.root.join("uploads").join(id))
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }
}

fn not_found(e: &io::Error) -> bool {
    // ENOTDIR: a path component is a file, so the key cannot exist either.
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn meta_of(m: &fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        size: m.len(),
        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `mkdir -p` that fsyncs the parent of every directory it creates, so a rename into the
/// new directory survives a crash.
fn create_dir_all_synced(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        if let Some(parent) = d.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Opens (creating) a lock file and flocks it; `None` when a non-blocking lock is taken.
fn try_flock(path: &Path, op: FlockOperation) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    match rustix::fs::flock(&file, op) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `value` to a temp file, fsyncs it and renames it to `dest` (then fsyncs the
/// directory). Retries when the destination directory vanished under it (a concurrent
/// repository delete).
fn write_atomic(temp: &Path, dest: &Path, value: &[u8]) -> io::Result<()> {
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(temp)?;
        f.write_all(value)?;
        f.sync_all()?;
    }
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let mut attempts = 0;
    loop {
        create_dir_all_synced(parent)?;
        match fs::rename(temp, dest) {
            Ok(()) => break,
            Err(e) if e.kind() == ErrorKind::NotFound && attempts < 3 => attempts += 1,
            Err(e) => {
                let _ = fs::remove_file(temp);
                return Err(e);
            }
        }
    }
    sync_dir(parent)
}

fn touch_path(path: &Path) -> io::Result<bool> {
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: UTIME_NOW,
    };
    match rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &Timestamps {
            last_access: now,
            last_modification: now,
        },
        rustix::fs::AtFlags::empty(),
    ) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Streams `len` bytes of `file` from `start` through a blocking thread.
fn stream_file(mut file: File, start: u64, len: u64) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            match file.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "object shorter than its size",
                    )));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream(rx))
}

/// A tokio channel as a `Stream`.
pub(crate) struct ReceiverStream<T>(pub(crate) mpsc::Receiver<T>);

impl<T> futures_util::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

fn one_chunk(data: Bytes) -> ByteStream {
    Box::pin(futures_util::stream::once(async move { Ok(data) }))
}

async fn blocking<T: Send + 'static>(
    key: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| StorageError::io(key, e)),
        Err(e) => Err(StorageError::io(key, io::Error::other(e.to_string()))),
    }
}

/// Brings the ingest file to exactly `offset` bytes: cuts what a crash left past it, and
/// refuses when bytes before it are missing.
fn align_ingest(file: &File, id: &str, offset: u64) -> Result<(), StorageError> {
    let have = file.metadata().map_err(|e| StorageError::io(id, e))?.len();
    if have < offset {
        return Err(StorageError::IngestLost {
            id: id.to_string(),
            have,
            expected: offset,
        });
    }
    if have > offset {
        file.set_len(offset).map_err(|e| StorageError::io(id, e))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Storage for FsStorage {
    fn describe(&self) -> String {
        format!("filesystem {}", self.root.display())
    }

    async fn check(&self) -> Result<(), StorageError> {
        fs::read_dir(self.root.join("uploads"))
            .map(|_| ())
            .map_err(|e| StorageError::io("uploads", e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        match fs::read(self.path(key)?) {
            Ok(v) => Ok(Some(Bytes::from(v))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(None),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        let dest = self.path(key)?;
        let temp = self.temp_path();
        blocking(key, move || write_atomic(&temp, &dest, &value)).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        match fs::metadata(self.path(key)?) {
            Ok(m) if m.is_file() => Ok(Some(meta_of(&m))),
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        blocking(key, move || match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(parent) = path.parent() {
                    sync_dir(parent)?;
                }
                Ok(true)
            }
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        let path = self.path(prefix)?;
        // Renamed aside first, so the prefix disappears in one step even if the removal of
        // a big tree is interrupted; the leftover in tmp/ is removed by the next collection.
        let aside = self.temp_path();
        blocking(prefix, move || {
            match fs::rename(&path, &aside) {
                Ok(()) => {}
                Err(e) if not_found(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            fs::remove_dir_all(&aside)
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StorageError> {
        let dir = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix)?
        };
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if not_found(&e) => return Ok(Listing::default()),
            Err(e) => return Err(StorageError::io(prefix, e)),
        };
        let mut listing = Listing::default();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(prefix, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => listing.prefixes.push(name),
                Ok(t) if t.is_file() => listing.objects.push(name),
                _ => {}
            }
        }
        listing.objects.sort();
        listing.prefixes.sort();
        Ok(listing)
    }

    async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        touch_path(&self.path(key)?).map_err(|e| StorageError::io(key, e))
    }

    async fn now(&self) -> Result<SystemTime, StorageError> {
        // File times come from the kernel's file-time clock (coarse: up to a tick behind the
        // one `SystemTime::now` reads): stamp a probe and read its time back, so a touch that
        // follows is never older than this.
        let probe = self.root.join("locks/clock");
        let stamped = (|| {
            if !touch_path(&probe)? {
                File::create(&probe)?;
                touch_path(&probe)?;
            }
            fs::metadata(&probe)?.modified()
        })();
        stamped.map_err(|e| StorageError::io("locks/clock", e))
    }

    async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ObjectMeta, ByteStream)>, StorageError> {
        let path = self.path(key)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(StorageError::io(key, e)),
        };
        let m = file.metadata().map_err(|e| StorageError::io(key, e))?;
        if !m.is_file() {
            return Ok(None);
        }
        let meta = meta_of(&m);
        let range = range.unwrap_or(0..meta.size);
        let len = range.end.saturating_sub(range.start);
        if len <= INLINE_READ {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, range.start)
                .map_err(|e| StorageError::io(key, e))?;
            return Ok(Some((meta, one_chunk(Bytes::from(buf)))));
        }
        Ok(Some((meta, stream_file(file, range.start, len))))
    }

    async fn ingest_append(
        &self,
        id: &str,
        offset: u64,
        data: &mut ByteStream,
        limit: u64,
    ) -> Result<u64, StorageError> {
        let dir = self.ingest_dir(id)?;
        let path = dir.join("data");
        let file = if offset == 0 {
            let d = dir.clone();
            blocking(id, move || create_dir_all_synced(&d)).await?;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
        } else {
            OpenOptions::new().read(true).write(true).open(&path)
        }
        .map_err(|e| StorageError::io(id, e))?;
        align_ingest(&file, id, offset)?;

        // The async side pulls the request body; a blocking thread writes it.
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let writer_id = id.to_string();
        let writer = tokio::task::spawn_blocking(move || -> Result<(File, u64), StorageError> {
            let mut pos = offset;
            while let Some(chunk) = rx.blocking_recv() {
                file.write_all_at(&chunk, pos)
                    .map_err(|e| StorageError::io(&writer_id, e))?;
                pos += chunk.len() as u64;
            }
            Ok((file, pos))
        });
        let mut total = offset;
        let mut failure = None;
        while let Some(item) = data.next().await {
            match item {
                Ok(chunk) => {
                    total += chunk.len() as u64;
                    if total > limit {
                        failure = Some(StorageError::IngestTooLarge {
                            id: id.to_string(),
                            limit,
                        });
                        break;
                    }
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed: its error is below
                    }
                }
                Err(e) => {
                    failure = Some(StorageError::Body(e));
                    break;
                }
            }
        }
        drop(tx);
        let written = match writer.await {
            Ok(r) => r,
            Err(e) => Err(StorageError::io(id, io::Error::other(e.to_string()))),
        };
        let key = id.to_string();
        match (written, failure) {
            (Ok((file, pos)), None) => {
                // Synced before the caller records the new offset in the session state.
                blocking(&key, move || file.sync_data().map(|()| pos)).await
            }
            (Ok((file, _)), Some(err)) => {
                let _ = file.set_len(offset);
                Err(err)
            }
            (Err(err), _) => {
                if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                    let _ = f.set_len(offset);
                }
                Err(err)
            }
        }
    }

    async fn ingest_read(&self, id: &str, len: u64) -> Result<ByteStream, StorageError> {
        let path = self.ingest_dir(id)?.join("data");
        let file = File::open(&path).map_err(|e| StorageError::io(id, e))?;
        let have = file.metadata().map_err(|e| StorageError::io(id, e))?.len();
        if have < len {
            return Err(StorageError::IngestLost {
                id: id.to_string(),
                have,
                expected: len,
            });
        }
        Ok(stream_file(file, 0, len))
    }

    async fn ingest_commit(&self, id: &str, len: u64, key: &str) -> Result<(), StorageError> {
        let dir = self.ingest_dir(id)?;
        let dest = self.path(key)?;
        let id = id.to_string();
        let what = id.clone();
        blocking(&what, move || {
            let data = dir.join("data");
            if len == 0 && !data.exists() {
                // An empty blob pushed without any body: nothing was ever appended.
                create_dir_all_synced(&dir)?;
                File::create(&data)?;
            }
            let file = OpenOptions::new().read(true).write(true).open(&data)?;
            let have = file.metadata()?.len();
            if have < len {
                return Err(io::Error::other(format!(
                    "upload {id} lost data: {have} bytes stored, {len} expected"
                )));
            }
            if have > len {
                file.set_len(len)?;
            }
            if dest.is_file() {
                touch_path(&dest)?;
            } else {
                file.sync_all()?;
                let parent = dest.parent().unwrap_or(Path::new("/"));
                create_dir_all_synced(parent)?;
                fs::rename(&data, &dest)?;
                sync_dir(parent)?;
            }
            fs::remove_dir_all(&dir).or_else(|e| if not_found(&e) { Ok(()) } else { Err(e) })
        })
        .await
    }

    async fn ingest_abort(&self, id: &str) -> Result<(), StorageError> {
        let dir = self.ingest_dir(id)?;
        blocking(id, move || match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e),
        })
        .await
    }

    async fn ingest_list(&self) -> Result<Vec<(String, SystemTime)>, StorageError> {
        let root = self.root.join("uploads");
        blocking("uploads", move || {
            let mut out = Vec::new();
            for entry in fs::read_dir(&root)? {
                let entry = entry?;
                let Ok(id) = entry.file_name().into_string() else {
                    continue;
                };
                let mut last = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                for name in ["data", "state"] {
                    if let Ok(t) = fs::metadata(entry.path().join(name)).and_then(|m| m.modified())
                    {
                        last = last.max(t);
                    }
                }
                out.push((id, last));
            }
            Ok(out)
        })
        .await
    }

    async fn reference_guard(&self) -> Result<Guard, StorageError> {
        let local = self.barrier.clone().read_owned().await;
        let path = self.root.join("locks/references");
        let file = blocking("locks/references", move || {
            try_flock(&path, FlockOperation::LockShared)
        })
        .await?;
        Ok(Guard::new((local, file)))
    }

    async fn sweep_guard(&self) -> Result<Guard, StorageError> {
        let local = self.barrier.clone().write_owned().await;
        let path = self.root.join("locks/references");
        let file = blocking("locks/references", move || {
            try_flock(&path, FlockOperation::LockExclusive)
        })
        .await?;
        Ok(Guard::new((local, file)))
    }

    async fn gc_lease(&self, _ttl: Duration) -> Result<Option<Lease>, StorageError> {
        // A flock dies with its process, so no expiry is needed here.
        let path = self.root.join("locks/gc");
        Ok(try_flock(&path, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| StorageError::io("locks/gc", e))?
            .map(Lease::new))
    }

    async fn remove_stale_temp(&self, age: Duration) -> Result<u64, StorageError> {
        let dir = self.root.join("tmp");
        blocking("tmp", move || {
            let mut removed = 0;
            let now = SystemTime::now();
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default() > age)
                    .unwrap_or(false);
                if !old {
                    continue;
                }
                let path = entry.path();
                let r = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                if r.is_ok() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_root() {
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a/\0"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key("repositories/a/b/_tags/latest").is_ok());
        assert!(check_key("repositories/a/").is_ok());
    }

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        super::super::conformance::run(&storage).await;
    }

    #[tokio::test]
    async fn a_crash_mid_append_is_cut_back_on_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        let mut s: ByteStream = one_chunk(Bytes::from_static(b"abc"));
        assert_eq!(
            storage.ingest_append("u1", 0, &mut s, 100).await.unwrap(),
            3
        );
        // A killed server left bytes past the recorded offset.
        let data = dir.path().join("uploads/u1/data");
        OpenOptions::new()
            .append(true)
            .open(&data)
            .unwrap()
            .write_all(b"garbage")
            .unwrap();
        let mut s: ByteStream = one_chunk(Bytes::from_static(b"def"));
        assert_eq!(
            storage.ingest_append("u1", 3, &mut s, 100).await.unwrap(),
            6
        );
        assert_eq!(fs::read(&data).unwrap(), b"abcdef");
        // Bytes before the offset lost: refused.
        fs::write(&data, b"ab").unwrap();
        let mut s: ByteStream = one_chunk(Bytes::from_static(b"x"));
        assert!(matches!(
            storage.ingest_append("u1", 6, &mut s, 100).await,
            Err(StorageError::IngestLost { .. })
        ));
    }

    #[tokio::test]
    async fn the_serve_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let a = FsStorage::open(dir.path()).unwrap();
        let b = FsStorage::open(dir.path()).unwrap();
        let held = a.lock_for_serving().unwrap();
        assert!(held.is_some());
        assert!(b.lock_for_serving().unwrap().is_none());
        drop(held);
        assert!(b.lock_for_serving().unwrap().is_some());
    }
}
