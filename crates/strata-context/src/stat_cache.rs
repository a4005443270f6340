//! The persistent stat cache: context-relative path + (size, mtime, inode, ctime) → sha256 of the
//! content, so hashing a context only reads files whose stat changed.
//!
//! One small binary file per context, rewritten atomically (temp file, fsync, rename). It is only
//! an optimisation: a missing, truncated or foreign file is treated as empty, never as an error.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use strata_oci::{Digest, Sha256Hasher};

use crate::error::ContextError;
use crate::walk::{ContextIndex, Entry, EntryKind};

const MAGIC: &[u8] = b"strata-stat-cache 1\n";

/// The stat fields that must all be unchanged for a cached content digest to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatKey {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ino: u64,
    pub(crate) ctime_ns: i64,
}

impl StatKey {
    pub(crate) fn of(entry: &Entry) -> StatKey {
        StatKey {
            size: entry.size,
            mtime_ns: entry.mtime_ns,
            ino: entry.ino,
            ctime_ns: entry.ctime_ns,
        }
    }
}

/// Content digests of context files, keyed by path and stat.
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    entries: HashMap<String, (StatKey, Digest)>,
    dirty: bool,
    reads: AtomicU64,
}

impl StatCache {
    /// Opens the cache stored at `file` (which need not exist yet; its directory is created on
    /// save). A cache file that cannot be parsed starts empty.
    pub fn open(file: &Path) -> Result<StatCache, ContextError> {
        let entries = match fs::read(file) {
            Ok(bytes) => decode(&bytes).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(ContextError::io(file, e)),
        };
        Ok(StatCache {
            file: Some(file.to_path_buf()),
            entries,
            ..StatCache::default()
        })
    }

    /// A cache that lives only as long as this value (`save` does nothing).
    pub fn in_memory() -> StatCache {
        StatCache::default()
    }

    /// The conventional cache file for a context: `<cache_dir>/<sha256 of the context path>`, so
    /// two contexts never share entries.
    pub fn file_for(cache_dir: &Path, context_dir: &Path) -> PathBuf {
        let absolute = fs::canonicalize(context_dir).unwrap_or_else(|_| context_dir.to_path_buf());
        let digest = Digest::sha256_of(absolute.as_os_str().as_encoded_bytes());
        cache_dir.join(digest.hex())
    }

    /// Writes the cache back if anything changed: temp file in the same directory, fsync, rename.
    pub fn save(&mut self) -> Result<(), ContextError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| ContextError::io(dir, e))?;
        let mut tmp = tempfile_in(dir)?;
        tmp.1
            .write_all(&encode(&self.entries))
            .and_then(|()| tmp.1.sync_all())
            .map_err(|e| ContextError::io(&tmp.0, e))?;
        fs::rename(&tmp.0, file).map_err(|e| {
            let _ = fs::remove_file(&tmp.0);
            ContextError::io(file, e)
        })?;
        self.dirty = false;
        Ok(())
    }

    /// Forgets files that are no longer regular files in `index` (deleted, ignored or replaced),
    /// so the cache does not grow forever.
    pub fn retain_existing(&mut self, index: &ContextIndex) {
        let before = self.entries.len();
        self.entries
            .retain(|path, _| index.get(path).is_some_and(|e| e.kind == EntryKind::File));
        self.dirty |= self.entries.len() != before;
    }

    /// How many files had to be read (cache misses) since this cache was opened.
    pub fn files_read(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Number of cached digests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The content digest of a walked regular file, if it was hashed with the stat the walk
    /// saw (e.g. by a [`crate::ContextHasher`] earlier in the same build).
    pub fn digest_of(&self, entry: &Entry) -> Option<&Digest> {
        self.lookup(&entry.path, StatKey::of(entry))
    }

    /// The cached content digest of `path`, if its stat is unchanged.
    pub(crate) fn lookup(&self, path: &str, key: StatKey) -> Option<&Digest> {
        self.entries
            .get(path)
            .filter(|(cached, _)| *cached == key)
            .map(|(_, digest)| digest)
    }

    pub(crate) fn insert(&mut self, path: &str, key: StatKey, digest: Digest) {
        self.entries.insert(path.to_string(), (key, digest));
        self.dirty = true;
    }

    /// Reads and hashes one file; counts the read.
    pub(crate) fn hash_file(&self, path: &Path) -> Result<(Digest, fs::Metadata), ContextError> {
        use std::io::Read;
        self.reads.fetch_add(1, Ordering::Relaxed);
        let mut file = fs::File::open(path).map_err(|e| ContextError::io(path, e))?;
        let mut hasher = Sha256Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(|e| ContextError::io(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        // The stat after reading: if it moved while we read, the caller must not cache the result.
        let meta = file.metadata().map_err(|e| ContextError::io(path, e))?;
        Ok((hasher.finish(), meta))
    }
}

/// A uniquely named temp file next to the target, opened for writing.
fn tempfile_in(dir: &Path) -> Result<(PathBuf, fs::File), ContextError> {
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(".stat-cache.{pid}.{nanos}.{attempt}.tmp"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ContextError::io(path, e)),
        }
    }
    Err(ContextError::io(
        dir,
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free temp file name"),
    ))
}

/// Layout: magic, count (u64), then per record: path length (u32), path, size (u64), mtime ns
/// (i64), inode (u64), ctime ns (i64), digest hex length (u8), digest text. Little-endian.
fn encode(entries: &HashMap<String, (StatKey, Digest)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + entries.len() * 120);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (path, (key, digest)) in entries {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&key.size.to_le_bytes());
        out.extend_from_slice(&key.mtime_ns.to_le_bytes());
        out.extend_from_slice(&key.ino.to_le_bytes());
        out.extend_from_slice(&key.ctime_ns.to_le_bytes());
        let text = digest.as_str();
        out.push(text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<HashMap<String, (StatKey, Digest)>> {
    let mut r = Reader(bytes.strip_prefix(MAGIC)?);
    let count = r.u64()?;
    let mut entries = HashMap::with_capacity(usize::try_from(count.min(1 << 20)).ok()?);
    for _ in 0..count {
        let len = r.u32()? as usize;
        let path = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        let key = StatKey {
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ino: r.u64()?,
            ctime_ns: r.u64()? as i64,
        };
        let len = usize::from(*r.take(1)?.first()?);
        let digest = Digest::parse(std::str::from_utf8(r.take(len)?).ok()?).ok()?;
        entries.insert(path, (key, digest));
    }
    r.0.is_empty().then_some(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(size: u64) -> StatKey {
        StatKey {
            size,
            mtime_ns: -5,
            ino: 7,
            ctime_ns: 1_700_000_000_123_456_789,
        }
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/cache");
        let mut cache = StatCache::open(&file).unwrap();
        assert!(cache.is_empty());
        cache.insert("a/b", key(3), Digest::sha256_of(b"abc"));
        cache.insert("ü", key(0), Digest::sha256_of(b""));
        cache.save().unwrap();
        let reopened = StatCache::open(&file).unwrap();
        assert_eq!(reopened.len(), 2);
        assert_eq!(
            reopened.lookup("a/b", key(3)),
            Some(&Digest::sha256_of(b"abc"))
        );
        assert_eq!(
            reopened.lookup("a/b", key(4)),
            None,
            "a changed size is a miss"
        );
        // Only the cache file is left behind: no temp files.
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn damaged_files_start_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cache");
        let mut cache = StatCache::open(&file).unwrap();
        cache.insert("x", key(1), Digest::sha256_of(b"x"));
        cache.save().unwrap();
        let good = fs::read(&file).unwrap();
        for bad in [
            &good[..good.len() - 1],
            &good[..MAGIC.len() + 3],
            b"garbage".as_slice(),
        ] {
            fs::write(&file, bad).unwrap();
            assert!(StatCache::open(&file).unwrap().is_empty());
        }
    }

    #[test]
    fn retain_existing_drops_deleted_files() {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("kept"), "k").unwrap();
        let index = crate::walk(ctx.path(), &crate::DockerIgnore::default()).unwrap();
        let mut cache = StatCache::in_memory();
        cache.insert("kept", key(1), Digest::sha256_of(b"k"));
        cache.insert("gone", key(1), Digest::sha256_of(b"g"));
        cache.retain_existing(&index);
        assert_eq!(cache.len(), 1);
        assert!(cache.lookup("kept", key(1)).is_some());
    }

    #[test]
    fn file_for_separates_contexts() {
        let a = StatCache::file_for(Path::new("/c"), Path::new("/ctx/one"));
        let b = StatCache::file_for(Path::new("/c"), Path::new("/ctx/two"));
        assert_ne!(a, b);
        assert!(a.starts_with("/c"));
    }
}
