//! The content store: blobs by digest under `<root>/blobs/sha256/<hex>`, written atomically.
//!
//! A blob becomes visible only once verified: bytes go to a locked temp file in
//! `<root>/ingest/`, hashed while written; commit checks the digest, fsyncs the file,
//! renames it into place and fsyncs the directory.
//!
//! A download whose digest is known in advance can be resumed: [`ContentStore::resume`]
//! names its temp `ingest/partial-<hex>` after that digest, keeps it when the writer goes
//! away uncommitted (a dropped connection, a killed process) and hands the next writer of
//! the same digest the bytes already there, in this process or another. Like every temp it
//! is flocked by its writer for as long as that writer lives.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use strata_oci::{Digest, Sha256Hasher};

use crate::error::{IoContext, StoreError};
use crate::layout::StoreDir;
use crate::lock;

/// Blobs by digest. Cheap to share: holds only paths.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    pub(crate) fn new(root: &Path) -> ContentStore {
        ContentStore {
            blobs: root
                .join(StoreDir::Blobs.name())
                .join(crate::layout::BLOB_ALGORITHM),
            ingest: root.join(StoreDir::Ingest.name()),
        }
    }

    /// The directory holding in-flight ingests.
    pub(crate) fn ingest_dir(&self) -> &Path {
        &self.ingest
    }

    /// The directory holding committed blobs (`blobs/sha256`).
    pub(crate) fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// Starts a new blob: a temp file in `<root>/ingest`, hashed while written.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let (file, temp) = lock::create_owned_temp_file(&self.ingest)?;
        Ok(BlobWriter {
            out: BufWriter::with_capacity(256 * 1024, file),
            temp,
            blobs: self.blobs.clone(),
            hasher: Sha256Hasher::new(),
            done: false,
            keep_on_drop: false,
            flushed_to: 0,
        })
    }

    /// Starts or resumes the blob that must hash to `expected`: `Present` when it is
    /// already stored, else the partial ingest with whatever an earlier writer left there.
    /// Blocks while another writer (thread or process) holds that partial.
    pub fn resume(&self, expected: &Digest) -> Result<Resume, StoreError> {
        let path = self
            .ingest
            .join(format!("{PARTIAL_PREFIX}{}", expected.hex()));
        loop {
            if let Ok(size) = self.size(expected) {
                return Ok(Resume::Present(size));
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .ctx("opening partial blob", &path)?;
            flock(&file, FlockOperation::LockExclusive).ctx("locking partial blob", &path)?;
            // The previous holder may have committed it (renamed it into blobs/) or given
            // up on it (removed it) while we waited: then this handle is not the partial.
            let ours = file.metadata().ctx("inspecting partial blob", &path)?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                    // Committed by another writer between our first look and our lock.
                    if let Ok(size) = self.size(expected) {
                        let _ = std::fs::remove_file(&path);
                        return Ok(Resume::Present(size));
                    }
                    return Ok(Resume::Partial(PartialBlob {
                        len: ours.len(),
                        file,
                        path,
                        blobs: self.blobs.clone(),
                    }));
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("inspecting partial blob", path, e)),
            }
        }
    }

    /// Copies `r` into the store and commits it, verifying against `expected` when given.
    pub fn ingest<R: Read>(
        &self,
        mut r: R,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut w = self.writer()?;
        let temp = w.temp.clone();
        io::copy(&mut r, &mut w).ctx("ingesting into", &temp)?;
        w.commit(expected)
    }

    /// Where blob `d` lives (whether or not it is present).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn open(&self, d: &Digest) -> Result<File, StoreError> {
        let path = self.path(d);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => StoreError::io("opening blob", path, e),
        })
    }

    pub fn size(&self, d: &Digest) -> Result<u64, StoreError> {
        let path = self.path(d);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(d.clone()))
            }
            Err(e) => Err(StoreError::io("inspecting blob", path, e)),
        }
    }

    /// Reads a whole blob: for small JSON blobs (configs, manifests).
    pub fn read_all(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.open(d)?
            .read_to_end(&mut out)
            .ctx("reading blob", &self.path(d))?;
        Ok(out)
    }

    /// Every committed blob, sorted. Files whose names are not digests are skipped
    /// (`check` reports them).
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.blobs).ctx("listing blobs in", &self.blobs)? {
            let entry = entry.ctx("listing blobs in", &self.blobs)?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_sha256_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a blob; absent is fine. Only gc calls this, under the exclusive lock.
    pub(crate) fn remove(&self, d: &Digest) -> Result<(), StoreError> {
        let path = self.path(d);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io("removing blob", path, e))
            }
            _ => Ok(()),
        }
    }
}

/// Name prefix of resumable ingests in `<root>/ingest` (`partial-<hex>`).
pub(crate) const PARTIAL_PREFIX: &str = "partial-";

/// What [`ContentStore::resume`] found.
#[derive(Debug)]
pub enum Resume {
    /// The blob is already in the store, with this size.
    Present(u64),
    /// A partial ingest, locked by this process; possibly empty.
    Partial(PartialBlob),
}

/// The bytes an earlier, interrupted writer of a blob left behind, locked for this writer.
/// Turn it into a [`BlobWriter`] by replaying those bytes or by starting over.
#[derive(Debug)]
pub struct PartialBlob {
    file: File,
    path: PathBuf,
    blobs: PathBuf,
    len: u64,
}

impl PartialBlob {
    /// Bytes already there.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads back the bytes already there, hashing them and handing each chunk to `sink`
    /// (which may hash or unpack them too); the writer then continues after them.
    pub fn replay(
        mut self,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<BlobWriter, StoreError> {
        let mut hasher = Sha256Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = self.len;
        self.file
            .seek(SeekFrom::Start(0))
            .ctx("reading partial blob", &self.path)?;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = self
                .file
                .read(&mut buf[..want])
                .ctx("reading partial blob", &self.path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            sink(&buf[..n]).ctx("replaying partial blob", &self.path)?;
            left -= n as u64;
        }
        // A file that shrank under us (it cannot, we hold its lock) would simply continue
        // where its bytes end.
        let end = hasher.len();
        self.file
            .set_len(end)
            .and_then(|()| self.file.seek(SeekFrom::Start(end)))
            .ctx("resuming partial blob", &self.path)?;
        Ok(self.into_writer(hasher))
    }

    /// Discards the bytes already there and starts at byte 0.
    pub fn restart(mut self) -> Result<BlobWriter, StoreError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .ctx("truncating partial blob", &self.path)?;
        Ok(self.into_writer(Sha256Hasher::new()))
    }

    fn into_writer(self, hasher: Sha256Hasher) -> BlobWriter {
        let flushed_to = hasher.len();
        BlobWriter {
            out: BufWriter::with_capacity(256 * 1024, self.file),
            temp: self.path,
            blobs: self.blobs,
            hasher,
            done: false,
            keep_on_drop: true,
            flushed_to,
        }
    }
}

/// One blob being written. `commit` makes it visible; dropping it uncommitted removes the
/// temp file, except a resumable one ([`ContentStore::resume`]), which is kept for the next
/// writer of that digest.
pub struct BlobWriter {
    out: BufWriter<File>,
    temp: PathBuf,
    blobs: PathBuf,
    hasher: Sha256Hasher,
    done: bool,
    /// A resumable ingest: an uncommitted drop keeps the bytes (flushed) for the next writer.
    keep_on_drop: bool,
    /// Bytes handed to the kernel for writeback so far (see `start_writeback`).
    flushed_to: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("temp", &self.temp)
            .field("written", &self.written())
            .finish()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        if self.hasher.len() - self.flushed_to >= WRITEBACK_CHUNK {
            self.start_writeback()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// How often a large blob asks the kernel to start writing back what it has written.
const WRITEBACK_CHUNK: u64 = 8 << 20;

impl BlobWriter {
    /// Starts writeback of what was written since the last call, without waiting for it, so
    /// the disk works while the stream is still arriving and the fsync in `commit` finds
    /// little left to do. The fsync stays the durability guarantee; this only overlaps it.
    fn start_writeback(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let end = self.hasher.len();
        let file = self.out.get_ref();
        // SAFETY: sync_file_range only reads the descriptor and the given byte range.
        let rc = unsafe {
            libc::sync_file_range(
                std::os::fd::AsRawFd::as_raw_fd(file),
                self.flushed_to as libc::off64_t,
                (end - self.flushed_to) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        // Only a hint: filesystems that refuse it still get the fsync at commit.
        let _ = rc;
        self.flushed_to = end;
        Ok(())
    }

    /// Bytes written so far (including any replayed from a partial ingest).
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Gives up on this blob and removes its temp, even a resumable one (its bytes are
    /// known to be wrong, or the source changed).
    pub fn discard(mut self) {
        self.keep_on_drop = false;
    }

    /// Verifies, fsyncs and renames the blob into place, then fsyncs the blob directory.
    /// A mismatch against `expected` removes the temp file and fails. A blob already
    /// present is left as it is (same digest, same bytes).
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        self.out.flush().ctx("writing temp file", &self.temp)?;
        let size = self.hasher.len();
        let actual = std::mem::take(&mut self.hasher).finish();
        if let Some(expected) = expected {
            if *expected != actual {
                // Bad bytes are never resumed from: drop removes the temp file.
                self.keep_on_drop = false;
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                    size,
                });
            }
        }
        let target = self.blobs.join(actual.hex());
        if target.is_file() {
            self.keep_on_drop = false;
            return Ok((actual, size));
        }
        self.out
            .get_ref()
            .sync_all()
            .ctx("syncing temp file", &self.temp)?;
        std::fs::rename(&self.temp, &target).ctx("renaming blob into", &target)?;
        self.done = true;
        sync_dir(&self.blobs)?;
        Ok((actual, size))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.keep_on_drop {
            // What reached the file is what the next writer resumes from; the digest check
            // at its commit catches anything wrong in it.
            let _ = self.out.flush();
            return;
        }
        // Best effort: a leftover is found by the next open's cleanup (its lock is free).
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// fsyncs a directory so a rename into it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("syncing directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::create_dir_all(dir.path().join("ingest")).unwrap();
        let cs = ContentStore::new(dir.path());
        (dir, cs)
    }

    fn ingest_count(cs: &ContentStore) -> usize {
        std::fs::read_dir(cs.ingest_dir()).unwrap().count()
    }

    #[test]
    fn ingest_verifies_and_is_idempotent() {
        let (_d, cs) = store();
        let data = b"hello blob".to_vec();
        let want = Digest::sha256_of(&data);
        let (got, size) = cs.ingest(&data[..], Some(&want)).unwrap();
        assert_eq!((got.clone(), size), (want.clone(), data.len() as u64));
        assert!(cs.contains(&want));
        assert_eq!(cs.read_all(&want).unwrap(), data);
        assert_eq!(cs.size(&want).unwrap(), data.len() as u64);
        // Second ingest of the same bytes: fine, nothing left behind.
        cs.ingest(&data[..], None).unwrap();
        assert_eq!(cs.list().unwrap(), vec![want]);
        assert_eq!(ingest_count(&cs), 0);
    }

    #[test]
    fn mismatch_fails_and_leaves_nothing() {
        let (_d, cs) = store();
        let wrong = Digest::sha256_of(b"other");
        let err = cs.ingest(&b"data"[..], Some(&wrong)).unwrap_err();
        assert!(
            matches!(err, StoreError::DigestMismatch { size: 4, .. }),
            "{err}"
        );
        assert!(cs.list().unwrap().is_empty());
        assert_eq!(ingest_count(&cs), 0);
    }

    #[test]
    fn a_resumable_ingest_survives_its_writer_and_continues() {
        let (_d, cs) = store();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let want = Digest::sha256_of(&data);
        let Resume::Partial(p) = cs.resume(&want).unwrap() else {
            panic!("not present yet")
        };
        assert!(p.is_empty());
        let mut w = p.restart().unwrap();
        w.write_all(&data[..1_234_567]).unwrap();
        drop(w); // interrupted: the bytes stay
        assert_eq!(ingest_count(&cs), 1);

        let Resume::Partial(p) = cs.resume(&want).unwrap() else {
            panic!("still partial")
        };
        assert_eq!(p.len(), 1_234_567);
        let mut replayed = Vec::new();
        let mut w = p
            .replay(|chunk| {
                replayed.extend_from_slice(chunk);
                Ok(())
            })
            .unwrap();
        assert_eq!(replayed, &data[..1_234_567]);
        w.write_all(&data[1_234_567..]).unwrap();
        assert_eq!(w.commit(Some(&want)).unwrap(), (want.clone(), 3_000_000));
        assert_eq!(ingest_count(&cs), 0);
        assert!(matches!(
            cs.resume(&want).unwrap(),
            Resume::Present(3_000_000)
        ));
    }

    #[test]
    fn a_resumed_ingest_with_wrong_bytes_is_thrown_away() {
        let (_d, cs) = store();
        let want = Digest::sha256_of(b"right");
        let Resume::Partial(p) = cs.resume(&want).unwrap() else {
            panic!()
        };
        let mut w = p.restart().unwrap();
        w.write_all(b"wro").unwrap();
        drop(w);
        let Resume::Partial(p) = cs.resume(&want).unwrap() else {
            panic!()
        };
        let mut w = p.replay(|_| Ok(())).unwrap();
        w.write_all(b"ng").unwrap();
        assert!(matches!(
            w.commit(Some(&want)),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert_eq!(ingest_count(&cs), 0);
    }

    #[test]
    fn a_second_writer_of_a_partial_waits_for_the_first() {
        let (_d, cs) = store();
        let want = Digest::sha256_of(b"shared");
        let Resume::Partial(p) = cs.resume(&want).unwrap() else {
            panic!()
        };
        let mut first = p.restart().unwrap();
        let cs2 = cs.clone();
        let w2 = want.clone();
        let waiter = std::thread::spawn(move || cs2.resume(&w2).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished());
        first.write_all(b"shared").unwrap();
        first.commit(Some(&want)).unwrap();
        assert!(matches!(waiter.join().unwrap(), Resume::Present(6)));
        assert_eq!(ingest_count(&cs), 0);
    }

    #[test]
    fn dropped_writer_removes_its_temp() {
        let (_d, cs) = store();
        let mut w = cs.writer().unwrap();
        w.write_all(b"partial").unwrap();
        assert_eq!(ingest_count(&cs), 1);
        drop(w);
        assert_eq!(ingest_count(&cs), 0);
        assert!(matches!(
            cs.open(&Digest::sha256_of(b"partial")),
            Err(StoreError::BlobNotFound(_))
        ));
    }
}
