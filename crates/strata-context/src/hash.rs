//! Digest of exactly the context files a COPY/ADD selects: path, type, mode, owner, content,
//! symlink target (and mtime only when asked), with content digests from the stat cache.

use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};

use strata_oci::{Digest, Sha256Hasher};

use crate::error::ContextError;
use crate::stat_cache::{StatCache, StatKey};
use crate::walk::{entry_from, ContextIndex, Entry, EntryKind};

/// Version tag of the record layout below: bump it when the layout changes so old keys miss.
const LAYOUT: &[u8] = b"strata-context-hash 1\0";

/// Hashes selections of one walked context, reusing and filling a [`StatCache`].
pub struct ContextHasher<'a> {
    index: &'a ContextIndex,
    cache: &'a mut StatCache,
    include_mtime: bool,
    progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl<'a> ContextHasher<'a> {
    pub fn new(index: &'a ContextIndex, cache: &'a mut StatCache) -> ContextHasher<'a> {
        ContextHasher {
            index,
            cache,
            include_mtime: false,
            progress: None,
        }
    }

    /// Calls `progress(files, bytes)` after each file read (stat cache misses only), from
    /// the reading threads.
    pub fn on_progress(mut self, progress: &'a (dyn Fn(u64, u64) + Sync)) -> ContextHasher<'a> {
        self.progress = Some(progress);
        self
    }

    /// Also cover modification times: needed when they end up in a layer (no
    /// `SOURCE_DATE_EPOCH` clamp), otherwise a `touch` would needlessly miss the cache.
    pub fn include_mtime(mut self, yes: bool) -> ContextHasher<'a> {
        self.include_mtime = yes;
        self
    }

    /// The digest of what the COPY sources `patterns` select (see [`ContextIndex::select`]).
    pub fn hash(&mut self, patterns: &[&str]) -> Result<Digest, ContextError> {
        let index = self.index;
        let selected = index.select_all(patterns)?;
        self.hash_entries(&selected)
    }

    /// The digest of the given entries of the index, in the order given.
    pub fn hash_entries(&mut self, entries: &[&Entry]) -> Result<Digest, ContextError> {
        let contents = self.content_digests(entries)?;
        let mut h = Sha256Hasher::new();
        h.update(LAYOUT);
        h.update(&[u8::from(self.include_mtime)]);
        for (entry, content) in entries.iter().zip(&contents) {
            field(&mut h, entry.path.as_bytes());
            h.update(&[kind_tag(entry.kind)]);
            h.update(&entry.mode.to_le_bytes());
            h.update(&entry.uid.to_le_bytes());
            h.update(&entry.gid.to_le_bytes());
            if self.include_mtime {
                h.update(&entry.mtime_ns.to_le_bytes());
            }
            match entry.kind {
                EntryKind::File => field(
                    &mut h,
                    content.as_ref().map_or(b"", |d| d.as_str().as_bytes()),
                ),
                EntryKind::Symlink => field(
                    &mut h,
                    entry
                        .symlink_target
                        .as_deref()
                        .map_or(b"".as_slice(), |t| t.as_os_str().as_bytes()),
                ),
                EntryKind::CharDevice | EntryKind::BlockDevice => {
                    h.update(&entry.rdev.to_le_bytes())
                }
                EntryKind::Dir | EntryKind::Fifo | EntryKind::Socket => {}
            }
        }
        Ok(h.finish())
    }

    /// Content digests of the regular files among `entries` (None for the rest): cache hits
    /// first, then the misses read in parallel.
    fn content_digests(&mut self, entries: &[&Entry]) -> Result<Vec<Option<Digest>>, ContextError> {
        let mut out: Vec<Option<Digest>> = Vec::with_capacity(entries.len());
        let mut misses: Vec<usize> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.kind != EntryKind::File {
                out.push(None);
                continue;
            }
            let hit = self.cache.lookup(&entry.path, StatKey::of(entry)).cloned();
            if hit.is_none() {
                misses.push(i);
            }
            out.push(hit);
        }
        if misses.is_empty() {
            return Ok(out);
        }
        let read = self.read_misses(entries, &misses)?;
        for (i, (digest, unchanged)) in misses.into_iter().zip(read) {
            let entry = entries[i];
            // A file that changed while we read it is hashed as read, but not remembered.
            if unchanged {
                self.cache
                    .insert(&entry.path, StatKey::of(entry), digest.clone());
            }
            out[i] = Some(digest);
        }
        Ok(out)
    }

    /// Reads the missed files on up to one thread per core; returns (digest, stat unchanged).
    fn read_misses(
        &self,
        entries: &[&Entry],
        misses: &[usize],
    ) -> Result<Vec<(Digest, bool)>, ContextError> {
        let root = self.index.root();
        let cache = &*self.cache;
        let (files, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
        let progress = self.progress;
        let read_one = |i: &usize| -> Result<(Digest, bool), ContextError> {
            let entry = entries[*i];
            let (digest, meta) = cache.hash_file(&root.join(entry.fs_path()))?;
            if let Some(report) = progress {
                let f = files.fetch_add(1, Ordering::Relaxed) + 1;
                let b = bytes.fetch_add(meta.len(), Ordering::Relaxed) + meta.len();
                report(f, b);
            }
            let now = entry_from(String::new(), entry.kind, &meta, None);
            Ok((digest, StatKey::of(&now) == StatKey::of(entry)))
        };
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
        if workers < 2 || misses.len() < 8 {
            return misses.iter().map(read_one).collect();
        }
        let chunk = misses.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = misses
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(read_one).collect::<Result<Vec<_>, _>>())
                })
                .collect();
            let mut all = Vec::with_capacity(misses.len());
            for handle in handles {
                match handle.join() {
                    Ok(part) => all.extend(part?),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(all)
        })
    }
}

/// One-call form of [`ContextHasher::hash`].
pub fn hash_selection(
    index: &ContextIndex,
    patterns: &[&str],
    cache: &mut StatCache,
    include_mtime: bool,
) -> Result<Digest, ContextError> {
    ContextHasher::new(index, cache)
        .include_mtime(include_mtime)
        .hash(patterns)
}

/// A length-prefixed field, so that no two different records hash the same bytes.
fn field(h: &mut Sha256Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn kind_tag(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => b'f',
        EntryKind::Dir => b'd',
        EntryKind::Symlink => b'l',
        EntryKind::Fifo => b'p',
        EntryKind::Socket => b's',
        EntryKind::CharDevice => b'c',
        EntryKind::BlockDevice => b'b',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{walk, DockerIgnore};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in [
            ("src/a.rs", "fn a() {}"),
            ("src/b.rs", "fn b() {}"),
            ("README.md", "hi"),
            ("notes.txt", "n"),
        ] {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        }
        std::os::unix::fs::symlink("src/a.rs", dir.path().join("link")).unwrap();
        dir
    }

    fn digest(
        ctx: &Path,
        ignore: &str,
        patterns: &[&str],
        cache: &mut StatCache,
        mtime: bool,
    ) -> Digest {
        let index = walk(ctx, &DockerIgnore::parse(ignore).unwrap()).unwrap();
        hash_selection(&index, patterns, cache, mtime).unwrap()
    }

    fn set_mtime(path: &Path, secs: u64) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn unchanged_files_are_not_read_again() {
        let ctx = context();
        let store = tempfile::tempdir().unwrap();
        let file = StatCache::file_for(store.path(), ctx.path());
        let mut cache = StatCache::open(&file).unwrap();
        let first = digest(ctx.path(), "", &["."], &mut cache, false);
        assert_eq!(cache.files_read(), 4);
        cache.save().unwrap();

        let mut cache = StatCache::open(&file).unwrap();
        assert_eq!(digest(ctx.path(), "", &["."], &mut cache, false), first);
        assert_eq!(cache.files_read(), 0, "a warm cache reads nothing");

        fs::write(ctx.path().join("src/b.rs"), "fn b() { changed }").unwrap();
        assert_ne!(digest(ctx.path(), "", &["."], &mut cache, false), first);
        assert_eq!(cache.files_read(), 1, "only the changed file is read");
    }

    #[test]
    fn touched_file_with_same_content_keeps_the_digest_unless_mtimes_count() {
        let ctx = context();
        let mut cache = StatCache::in_memory();
        let before = digest(ctx.path(), "", &["src"], &mut cache, false);
        let before_with_mtime = digest(ctx.path(), "", &["src"], &mut cache, true);
        set_mtime(&ctx.path().join("src/a.rs"), 1_000_000);
        let reads = cache.files_read();
        assert_eq!(digest(ctx.path(), "", &["src"], &mut cache, false), before);
        assert_eq!(
            cache.files_read(),
            reads + 1,
            "the touched file is re-read once"
        );
        assert_ne!(
            digest(ctx.path(), "", &["src"], &mut cache, true),
            before_with_mtime
        );
    }

    #[test]
    fn only_selected_and_unignored_files_count() {
        let ctx = context();
        let mut cache = StatCache::in_memory();
        let selected = digest(ctx.path(), "notes.txt", &["src", "*.md"], &mut cache, false);
        let everything = digest(ctx.path(), "notes.txt", &["."], &mut cache, false);
        fs::write(ctx.path().join("notes.txt"), "ignored change").unwrap();
        assert_eq!(
            digest(ctx.path(), "notes.txt", &["."], &mut cache, false),
            everything
        );
        fs::write(ctx.path().join("link2"), "unselected").unwrap();
        assert_eq!(
            digest(ctx.path(), "notes.txt", &["src", "*.md"], &mut cache, false),
            selected
        );
        fs::write(ctx.path().join("README.md"), "selected change").unwrap();
        assert_ne!(
            digest(ctx.path(), "notes.txt", &["src", "*.md"], &mut cache, false),
            selected
        );
    }

    #[test]
    fn mode_owner_and_link_target_changes_count() {
        let ctx = context();
        let mut cache = StatCache::in_memory();
        let index = walk(ctx.path(), &DockerIgnore::default()).unwrap();
        let base = hash_selection(&index, &["."], &mut cache, false).unwrap();

        fs::set_permissions(
            ctx.path().join("src/a.rs"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(digest(ctx.path(), "", &["."], &mut cache, false), base);

        // Ownership: change the walked metadata (chown needs root) and hash the same files.
        let mut entries: Vec<Entry> = index.entries().to_vec();
        let owner_base = ContextHasher::new(&index, &mut cache)
            .hash_entries(&entries.iter().collect::<Vec<_>>())
            .unwrap();
        entries[0].uid += 1;
        let changed = ContextHasher::new(&index, &mut cache)
            .hash_entries(&entries.iter().collect::<Vec<_>>())
            .unwrap();
        assert_ne!(changed, owner_base);
        entries[0].uid -= 1;
        entries[0].gid += 1;
        let changed_gid = ContextHasher::new(&index, &mut cache)
            .hash_entries(&entries.iter().collect::<Vec<_>>())
            .unwrap();
        assert_ne!(changed_gid, owner_base);

        fs::remove_file(ctx.path().join("link")).unwrap();
        std::os::unix::fs::symlink("src/b.rs", ctx.path().join("link")).unwrap();
        let relinked = digest(ctx.path(), "", &["link"], &mut cache, false);
        fs::remove_file(ctx.path().join("link")).unwrap();
        std::os::unix::fs::symlink("src/a.rs", ctx.path().join("link")).unwrap();
        assert_ne!(
            digest(ctx.path(), "", &["link"], &mut cache, false),
            relinked
        );
    }

    #[test]
    fn selection_errors_surface() {
        let ctx = context();
        let mut cache = StatCache::in_memory();
        let index = walk(ctx.path(), &DockerIgnore::default()).unwrap();
        let err = hash_selection(&index, &["*.go"], &mut cache, false).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no source files were specified"),
            "{err}"
        );
    }
}
