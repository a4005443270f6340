//! Walking a context directory in parallel under a `.dockerignore`, and selecting COPY sources
//! from the result.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::dockerignore::{DockerIgnore, ParentMatches};
use crate::error::ContextError;
use crate::go_glob::{go_clean, go_match, has_glob_meta, BadPattern};
use crate::name::{encode_name, fs_path};

/// What a context entry is (from `lstat`: symlinks are never followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// One path of the context with its `lstat` metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, no leading `./`; bytes of a name that are
    /// not UTF-8 are encoded (see [`Entry::fs_path`]).
    pub path: String,
    pub kind: EntryKind,
    /// Permission and set-id/sticky bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    pub rdev: u64,
    /// For symlinks: the link text, exactly as stored.
    pub symlink_target: Option<PathBuf>,
}

impl Entry {
    /// The entry's path relative to the context root, as the filesystem names it.
    pub fn fs_path(&self) -> PathBuf {
        fs_path(&self.path)
    }
}

/// The walked context: every entry not excluded by `.dockerignore`, sorted by path (parents
/// before children, siblings by name), plus excluded directories that hold re-included entries.
#[derive(Debug, Clone)]
pub struct ContextIndex {
    root: PathBuf,
    entries: Vec<Entry>,
}

/// Walks `context_dir`, honouring `ignore`, with one thread per core over the directory tree.
pub fn walk(context_dir: &Path, ignore: &DockerIgnore) -> Result<ContextIndex, ContextError> {
    let root_meta = fs::metadata(context_dir).map_err(|e| ContextError::io(context_dir, e))?;
    if !root_meta.is_dir() {
        return Err(ContextError::io(
            context_dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let shared = Shared {
        queue: Mutex::new(Queue {
            dirs: vec![(String::new(), ignore.root_matches())],
            busy: 0,
            failed: None,
        }),
        wake: Condvar::new(),
    };
    let found: Vec<Vec<Found>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| worker(context_dir, ignore, &shared)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let queue = shared.queue.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(err) = queue.failed {
        return Err(err);
    }
    let mut all: Vec<Found> = found.into_iter().flatten().collect();
    all.sort_unstable_by(|a, b| compare_paths(&a.entry.path, &b.entry.path));
    Ok(ContextIndex {
        root: context_dir.to_path_buf(),
        entries: keep_needed(all),
    })
}

/// An entry as found by a worker, before excluded directories are dropped.
struct Found {
    entry: Entry,
    excluded: bool,
}

struct Queue {
    dirs: Vec<(String, ParentMatches)>,
    /// Workers currently reading a directory (which may queue more).
    busy: usize,
    failed: Option<ContextError>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

fn worker(root: &Path, ignore: &DockerIgnore, shared: &Shared) -> Vec<Found> {
    let mut found = Vec::new();
    loop {
        let (dir, matches) = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.failed.is_some() {
                    return found;
                }
                if let Some(job) = q.dirs.pop() {
                    q.busy += 1;
                    break job;
                }
                if q.busy == 0 {
                    shared.wake.notify_all();
                    return found;
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let mut subdirs = Vec::new();
        let result = read_dir(root, ignore, &dir, &matches, &mut found, &mut subdirs);
        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.busy -= 1;
        match result {
            Ok(()) => q.dirs.extend(subdirs),
            Err(err) => {
                q.failed.get_or_insert(err);
            }
        }
        shared.wake.notify_all();
    }
}

/// Lists one directory: records its children and queues the subdirectories worth entering.
fn read_dir(
    root: &Path,
    ignore: &DockerIgnore,
    dir: &str,
    matches: &ParentMatches,
    found: &mut Vec<Found>,
    subdirs: &mut Vec<(String, ParentMatches)>,
) -> Result<(), ContextError> {
    let abs = root.join(dir);
    let reader = fs::read_dir(&abs).map_err(|e| ContextError::io(&abs, e))?;
    for item in reader {
        let item = item.map_err(|e| ContextError::io(&abs, e))?;
        let Some(name) = encode_name(&item.file_name()) else {
            return Err(ContextError::ReservedName { path: item.path() });
        };
        let rel = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let abs_item = item.path();
        // `DirEntry::metadata` is an lstat relative to the open directory: no symlink followed.
        let meta = item
            .metadata()
            .map_err(|e| ContextError::io(&abs_item, e))?;
        let kind = kind_of(&meta.file_type());
        if kind == EntryKind::Dir {
            let own = ignore.dir_matches(&rel, matches);
            let excluded = ignore.is_excluded_dir(&rel, &own);
            if excluded && !ignore.exception_reaches_below(&rel) {
                continue;
            }
            found.push(Found {
                entry: entry_from(rel.clone(), kind, &meta, None),
                excluded,
            });
            subdirs.push((rel, own));
        } else if !ignore.is_excluded_in(&rel, matches) {
            let target = if kind == EntryKind::Symlink {
                Some(fs::read_link(&abs_item).map_err(|e| ContextError::io(&abs_item, e))?)
            } else {
                None
            };
            found.push(Found {
                entry: entry_from(rel, kind, &meta, target),
                excluded: false,
            });
        }
    }
    Ok(())
}

fn kind_of(ft: &fs::FileType) -> EntryKind {
    if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_char_device() {
        EntryKind::CharDevice
    } else if ft.is_block_device() {
        EntryKind::BlockDevice
    } else {
        EntryKind::File
    }
}

pub(crate) fn entry_from(
    path: String,
    kind: EntryKind,
    meta: &fs::Metadata,
    symlink_target: Option<PathBuf>,
) -> Entry {
    Entry {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        ino: meta.ino(),
        dev: meta.dev(),
        nlink: meta.nlink(),
        rdev: meta.rdev(),
        symlink_target,
    }
}

pub(crate) fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Drops excluded directories, except those that are parents of kept entries (the copy needs them
/// to hold what `!` re-included). `all` is sorted.
fn keep_needed(all: Vec<Found>) -> Vec<Entry> {
    let excluded_dirs: HashSet<&str> = all
        .iter()
        .filter(|f| f.excluded)
        .map(|f| f.entry.path.as_str())
        .collect();
    let mut needed: HashSet<String> = HashSet::new();
    if !excluded_dirs.is_empty() {
        for f in all.iter().filter(|f| !f.excluded) {
            for (i, _) in f.entry.path.match_indices('/') {
                let parent = &f.entry.path[..i];
                if excluded_dirs.contains(parent) {
                    needed.insert(parent.to_string());
                }
            }
        }
    }
    all.into_iter()
        .filter(|f| !f.excluded || needed.contains(&f.entry.path))
        .map(|f| f.entry)
        .collect()
}

/// Path order of the index: component by component, so a directory's subtree follows it directly.
/// Byte order with `/` below every other byte (names hold no NUL), which is exactly the
/// component order, without splitting: this runs for every pair the sort compares.
fn compare_paths(a: &str, b: &str) -> Ordering {
    let key = |c: u8| if c == b'/' { 0 } else { c };
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => key(a[i]).cmp(&key(b[i])),
        None => a.len().cmp(&b.len()),
    }
}

impl ContextIndex {
    /// The context directory this index was walked from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All entries, sorted by path.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry at `rel_path`, if the context has it.
    pub fn get(&self, rel_path: &str) -> Option<&Entry> {
        self.position(rel_path).map(|i| &self.entries[i])
    }

    fn position(&self, rel_path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| compare_paths(&e.path, rel_path))
            .ok()
    }

    /// The entry at `index` and, for a directory, its whole subtree.
    fn with_subtree(&self, index: usize) -> &[Entry] {
        let top = &self.entries[index];
        let end = if top.kind == EntryKind::Dir {
            let prefix_len = top.path.len();
            self.entries[index + 1..]
                .iter()
                .position(|e| {
                    !(e.path.len() > prefix_len
                        && e.path.starts_with(&top.path)
                        && e.path.as_bytes()[prefix_len] == b'/')
                })
                .map_or(self.entries.len(), |n| index + 1 + n)
        } else {
            index + 1
        };
        &self.entries[index..end]
    }

    /// What `COPY <pattern> ...` takes from the context: a path (a directory brings its subtree),
    /// or a Go `filepath.Match` glob over context paths (`*` never crosses `/`). `.` or `/` is the
    /// whole context; like BuildKit, `..` cannot climb above the context root. Sorted, without
    /// duplicates; nothing matched is an error, as in Docker.
    pub fn select(&self, pattern: &str) -> Result<Vec<&Entry>, ContextError> {
        let cleaned = go_clean(&format!("/{pattern}"));
        let rel = cleaned.trim_start_matches('/');
        if rel.is_empty() || rel == "." {
            return Ok(self.entries.iter().collect());
        }
        if !has_glob_meta(rel) {
            let index = self
                .position(rel)
                .ok_or_else(|| ContextError::SourceNotFound {
                    pattern: pattern.to_string(),
                })?;
            return Ok(self.with_subtree(index).iter().collect());
        }
        let bad = |BadPattern| ContextError::BadSourcePattern {
            pattern: pattern.to_string(),
        };
        go_match(rel, ".").map_err(bad)?;
        let mut selected = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            if go_match(rel, &self.entries[i].path).map_err(bad)? {
                let subtree = self.with_subtree(i);
                selected.extend(subtree.iter());
                i += subtree.len();
            } else {
                i += 1;
            }
        }
        if selected.is_empty() {
            return Err(ContextError::NoSourceFiles {
                pattern: pattern.to_string(),
            });
        }
        Ok(selected)
    }

    /// The union of several `select` results, sorted and without duplicates.
    pub fn select_all(&self, patterns: &[&str]) -> Result<Vec<&Entry>, ContextError> {
        let mut selected = Vec::new();
        for pattern in patterns {
            selected.extend(self.select(pattern)?);
        }
        // One pattern's selection is already in index order.
        if patterns.len() > 1 {
            selected.sort_unstable_by(|a, b| compare_paths(&a.path, &b.path));
            selected.dedup_by(|a, b| a.path == b.path);
        }
        Ok(selected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            if let Some(d) = f.strip_suffix('/') {
                fs::create_dir_all(dir.path().join(d)).unwrap();
            } else {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, f.as_bytes()).unwrap();
            }
        }
        dir
    }

    fn paths(index: &ContextIndex) -> Vec<&str> {
        index.entries().iter().map(|e| e.path.as_str()).collect()
    }

    const FILES: &[&str] = &[
        "a.js",
        "a.json",
        "b.md",
        "README.md",
        "dir/keep",
        "dir/x",
        "dir/sub/y",
        "src/main.rs",
        "src/lib/m.rs",
        "empty/",
        "a.b/c",
    ];

    #[test]
    fn path_order_is_component_order() {
        let names = [
            "", "a", "a/b", "a.b", "a/b/c", "ab", "a-", "a/", "a//b", "b", "a/b.c", "a/bc", "é",
            "a/é", "z/a", "a\u{1}",
        ];
        for x in names {
            for y in names {
                assert_eq!(
                    compare_paths(x, y),
                    x.split('/').cmp(y.split('/')),
                    "{x:?} vs {y:?}"
                );
            }
        }
    }

    #[test]
    fn walk_applies_ignore_and_sorts_by_component() {
        let dir = tree(FILES);
        symlink("../outside", dir.path().join("link")).unwrap();
        let ignore = DockerIgnore::parse("*.md\n!README.md\ndir\n!dir/keep\nempty").unwrap();
        let index = walk(dir.path(), &ignore).unwrap();
        assert_eq!(
            paths(&index),
            [
                "README.md",
                "a.b",
                "a.b/c",
                "a.js",
                "a.json",
                "dir",
                "dir/keep",
                "link",
                "src",
                "src/lib",
                "src/lib/m.rs",
                "src/main.rs"
            ]
        );
        let link = index.get("link").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(
            link.symlink_target.as_deref(),
            Some(Path::new("../outside"))
        );
        assert_eq!(index.get("a.js").unwrap().size, 4);
    }

    #[test]
    fn walk_agrees_with_is_excluded_everywhere() {
        let dir = tree(FILES);
        let unfiltered = walk(dir.path(), &DockerIgnore::default()).unwrap();
        for text in [
            "*",
            "**/*.rs\n!src/lib",
            "dir/*\n!dir/sub/*",
            "a.*\n!*.json",
            "**\n!**/y",
        ] {
            let ignore = DockerIgnore::parse(text).unwrap();
            let index = walk(dir.path(), &ignore).unwrap();
            for e in unfiltered.entries() {
                let kept = index.get(&e.path).is_some();
                let has_kept_child = index
                    .entries()
                    .iter()
                    .any(|k| k.path.starts_with(&format!("{}/", e.path)));
                let want = !ignore.is_excluded(&e.path, e.kind == EntryKind::Dir) || has_kept_child;
                assert_eq!(kept, want, "{text:?}: {}", e.path);
            }
        }
    }

    #[test]
    fn select_table() {
        let dir = tree(FILES);
        let index = walk(dir.path(), &DockerIgnore::default()).unwrap();
        let cases: &[(&str, &[&str])] = &[
            ("a.js", &["a.js"]),
            ("/a.js", &["a.js"]),
            ("./a.js", &["a.js"]),
            ("*.js*", &["a.js", "a.json"]),
            (
                "dir/",
                &["dir", "dir/keep", "dir/sub", "dir/sub/y", "dir/x"],
            ),
            ("dir/sub", &["dir/sub", "dir/sub/y"]),
            ("*/*.rs", &["src/main.rs"]),
            ("src/*", &["src/lib", "src/lib/m.rs", "src/main.rs"]),
            ("[ab].*", &["a.b", "a.b/c", "a.js", "a.json", "b.md"]),
            ("a.b", &["a.b", "a.b/c"]),
            ("../a.js", &["a.js"]),
            ("dir/../src/lib", &["src/lib", "src/lib/m.rs"]),
        ];
        for (pattern, want) in cases {
            let got: Vec<&str> = index
                .select(pattern)
                .unwrap()
                .iter()
                .map(|e| e.path.as_str())
                .collect();
            assert_eq!(&got, want, "{pattern:?}");
        }
        assert_eq!(index.select(".").unwrap().len(), index.entries().len());
        assert!(matches!(
            index.select("nope"),
            Err(ContextError::SourceNotFound { .. })
        ));
        assert!(matches!(
            index.select("*.nope"),
            Err(ContextError::NoSourceFiles { .. })
        ));
        assert!(matches!(
            index.select("a["),
            Err(ContextError::BadSourcePattern { .. })
        ));
        let union = index.select_all(&["a.js", "*.js", "dir/x"]).unwrap();
        let got: Vec<&str> = union.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(got, ["a.js", "dir/x"]);
    }

    #[test]
    fn ignored_files_cannot_be_selected() {
        let dir = tree(FILES);
        let index = walk(dir.path(), &DockerIgnore::parse("a.js").unwrap()).unwrap();
        assert!(matches!(
            index.select("a.js"),
            Err(ContextError::SourceNotFound { .. })
        ));
        let got: Vec<&str> = index
            .select("*.js*")
            .unwrap()
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(got, ["a.json"]);
    }
}
