//! COPY/ADD file placement: which selected entries land where in the new layer directory,
//! with BuildKit's rules (a directory source copies its contents, a trailing `/` or several
//! sources make the destination a directory, missing parents are created), then writing them
//! with the requested owner and mode.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use strata_context::{fs_path, ContextIndex, DockerIgnore, Entry, EntryKind};
use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};
use strata_oci::Digest;

use crate::archive::open_archive;
use crate::copy_reuse::Reuse;
use crate::op::InlineFile;
use crate::owner::Owner;
use crate::reporter::{Transfer, TransferTicker};
use crate::rootfs::RootfsView;
use crate::BuildError;
use strata_inroot::clean_relative;

/// How the files of one COPY are written.
#[derive(Debug, Clone)]
pub(crate) struct CopySpec<'a> {
    pub(crate) line: usize,
    pub(crate) sources: &'a [String],
    /// Absolute, as written after WORKDIR resolution (a trailing `/` kept).
    pub(crate) dest: &'a str,
    pub(crate) owner: Owner,
    /// Copied entries keep their own uid/gid instead of `owner` (COPY --from a stage or an
    /// image without `--chown`, as BuildKit); created parents still get `owner`.
    pub(crate) keep_source_owners: bool,
    /// Applied to every copied file and directory; not to created parents.
    pub(crate) chmod: Option<u32>,
    /// mtime (seconds) of directories the copy creates.
    pub(crate) now: i64,
    /// ADD: a local tar source (plain, gzip, zstd, bzip2 or xz) is extracted into the destination.
    pub(crate) add: bool,
    /// Heredoc sources, written after the path sources (as BuildKit orders them).
    pub(crate) inline: &'a [InlineFile],
    /// `--parents`: each source keeps its path below the part before `/./` (or the root).
    pub(crate) parents: bool,
    /// `--exclude` patterns, matched against paths relative to the copied source.
    pub(crate) exclude: Option<DockerIgnore>,
    /// A copy from the context: link unchanged files from the step's previous layer and
    /// report the content digests of the files written.
    pub(crate) reuse: Option<&'a Reuse<'a>>,
    /// Where the files and bytes placed so far are reported.
    pub(crate) progress: Option<&'a TransferTicker<'a>>,
}

/// What [`copy_into`] did.
#[derive(Debug, Default)]
pub(crate) struct CopyReport {
    /// Regular files placed (copied or linked) and their bytes.
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    /// Of those, the files hard-linked from the previous layer.
    pub(crate) linked: u64,
    /// With `CopySpec::reuse`: layer path → content digest of each regular file the copy
    /// wrote from a context file that is not itself a hard link (the new layer's file index).
    pub(crate) indexed: Vec<(PathBuf, Digest)>,
}

impl CopyReport {
    pub(crate) fn transfer(&self) -> Transfer {
        Transfer {
            files: self.files,
            bytes: self.bytes,
            linked: self.linked,
            done: false,
        }
    }
}

impl<'a> CopySpec<'a> {
    /// A plain copy of `sources` into the root of a directory, owned by root, modes kept.
    pub(crate) fn plain(line: usize, sources: &'a [String]) -> CopySpec<'a> {
        CopySpec {
            line,
            sources,
            dest: "/",
            owner: Owner::default(),
            keep_source_owners: false,
            chmod: None,
            now: 0,
            add: false,
            inline: &[],
            parents: false,
            exclude: None,
            reuse: None,
            progress: None,
        }
    }

    /// The owner a copied entry gets.
    fn owner_of(&self, e: &Entry) -> Owner {
        if self.keep_source_owners {
            Owner {
                uid: e.uid,
                gid: e.gid,
            }
        } else {
            self.owner
        }
    }

    fn excluded(&self, rel: &str) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|x| !rel.is_empty() && x.is_excluded(rel, false))
    }
}

/// The first layer path written for each hardlinked context inode (dev, ino).
type Links = HashMap<(u64, u64), PathBuf>;

/// One matched source: an entry and its subtree (None: the whole context).
struct Top<'a> {
    entry: Option<&'a Entry>,
    subtree: Vec<&'a Entry>,
    /// `--parents`: the context path the source's path is kept below (before `/./`).
    pivot: String,
}

/// The selected entries of every source pattern, grouped by the top entry each matched.
fn tops<'a>(index: &'a ContextIndex, spec: &CopySpec<'_>) -> Result<Vec<Top<'a>>, BuildError> {
    let mut out = Vec::new();
    for pattern in spec.sources {
        let pivot = match pattern.split_once("/./") {
            Some((base, _)) if spec.parents => clean_relative(base).to_string_lossy().into_owned(),
            _ => String::new(),
        };
        if clean_relative(pattern).as_os_str().is_empty() {
            out.push(Top {
                entry: None,
                subtree: index.entries().iter().collect(),
                pivot,
            });
            continue;
        }
        let selected = index
            .select(pattern)
            .map_err(|source| BuildError::Context {
                line: spec.line,
                source,
            })?;
        for e in selected {
            let under_last = matches!(
                out.last(),
                Some(Top { entry: Some(top), .. }) if is_under(&e.path, &top.path)
            );
            match out.last_mut() {
                Some(top) if under_last => top.subtree.push(e),
                _ => out.push(Top {
                    entry: Some(e),
                    subtree: Vec::new(),
                    pivot: pivot.clone(),
                }),
            }
        }
    }
    Ok(out)
}

fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Writes what `spec` selects from `index` into `layer` (the new layer's directory), with
/// `rootfs` the stage's filesystem before the step.
pub(crate) fn copy_into(
    layer: &Path,
    index: &ContextIndex,
    rootfs: &RootfsView,
    spec: &CopySpec<'_>,
) -> Result<CopyReport, BuildError> {
    let tops = tops(index, spec)?;
    let dest_rel = clean_relative(spec.dest);
    let many = tops.len() + spec.inline.len() > 1;
    let dest_is_dir = spec.dest.ends_with('/')
        || dest_rel.as_os_str().is_empty()
        || rootfs.is_dir(spec.dest)
        || many
        || spec.parents;
    if many && !spec.dest.ends_with('/') {
        return Err(BuildError::at(
            spec.line,
            "when using COPY with more than one source file, the destination must be a directory and end with a /",
        ));
    }
    let root_fd = rustix::fs::open(
        index.root(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| BuildError::io("opening", index.root())(e.into()))?;
    let mut w = Writer {
        layer,
        root: index.root(),
        root_fd,
        spec,
        dirs: Vec::new(),
        links: Links::new(),
        linked_inodes: HashSet::new(),
        written: Vec::new(),
        report: CopyReport::default(),
        fresh: false,
    };
    // Only then can a path be written twice (or already hold a fetched URL's file).
    let replaced_possible = tops.len() > 1 || !spec.inline.is_empty() || spec.add;
    w.fresh = !replaced_possible
        && !spec.parents
        && fs::read_dir(layer)
            .map_err(BuildError::io("reading", layer))?
            .next()
            .is_none();
    for top in &tops {
        if spec.parents {
            copy_with_parents(&mut w, index, rootfs, &dest_rel, top)?;
            continue;
        }
        let (base_rel, prefix_len) = match top.entry {
            Some(e) if e.kind != EntryKind::Dir => {
                if spec.excluded(&e.path) {
                    continue;
                }
                if spec.add && e.kind == EntryKind::File {
                    let file = w.open_source(e)?;
                    let path = index.root().join(e.fs_path());
                    if let Some(tar) = open_archive(file, &path, spec.line)? {
                        extract(layer, &dest_rel, tar, rootfs, spec)?;
                        continue;
                    }
                }
                let path = e.fs_path();
                let name = path.file_name().unwrap_or_default();
                let target = if dest_is_dir {
                    dest_rel.join(name)
                } else {
                    dest_rel.clone()
                };
                ensure_parents(layer, &target, rootfs, spec.owner, spec.now)?;
                w.entry(&target, e)?;
                continue;
            }
            Some(e) => {
                if spec.excluded(&e.path) {
                    continue;
                }
                (dest_rel.clone(), e.path.len() + 1)
            }
            None => (dest_rel.clone(), 0),
        };
        // A directory: its contents go into the destination directory.
        ensure_parents(layer, &base_rel.join("x"), rootfs, spec.owner, spec.now)?;
        // Siblings come one after another: their parent is checked once.
        let mut parent_done: Option<PathBuf> = None;
        for e in &top.subtree {
            let rel = &e.path[prefix_len.min(e.path.len())..];
            if spec.excluded(rel) {
                continue;
            }
            let target = base_rel.join(fs_path(rel));
            if parent_done.as_deref() != target.parent() {
                ensure_parents(layer, &target, rootfs, spec.owner, spec.now)?;
                parent_done = target.parent().map(Path::to_path_buf);
            }
            w.entry(&target, e)?;
        }
    }
    for file in spec.inline {
        let target = if dest_is_dir {
            dest_rel.join(&file.name)
        } else {
            dest_rel.clone()
        };
        ensure_parents(layer, &target, rootfs, spec.owner, spec.now)?;
        let host = layer.join(&target);
        remove_existing(&host, false)?;
        fs::write(&host, &file.content).map_err(BuildError::io("writing", &host))?;
        finish(
            &host,
            Some(spec.chmod.unwrap_or(0o644)),
            spec.owner,
            spec.now,
        )?;
    }
    let Writer {
        dirs: dirs_to_finish,
        written,
        mut report,
        ..
    } = w;
    // Directory modes and times last: writing children would change them.
    for (path, mode, owner, mtime) in dirs_to_finish.iter().rev() {
        finish(path, Some(*mode), *owner, *mtime)?;
    }
    // Only files still there as written: a later source may have replaced one (with a
    // single source and nothing extracted, each path is written once).
    report.indexed = written
        .into_iter()
        .filter(|(target, _, ino)| {
            !replaced_possible
                || fs::symlink_metadata(layer.join(target))
                    .is_ok_and(|md| md.is_file() && md.ino() == *ino)
        })
        .map(|(target, digest, _)| (target, digest))
        .collect();
    Ok(report)
}

/// Creates the missing parents of `target` in the layer: with the metadata they have in
/// the rootfs when they exist there, else 0755 and the COPY's owner.
pub(crate) fn ensure_parents(
    layer: &Path,
    target: &Path,
    rootfs: &RootfsView,
    owner: Owner,
    now: i64,
) -> Result<(), BuildError> {
    let mut missing = Vec::new();
    let mut cur = target.parent();
    while let Some(p) = cur {
        if p.as_os_str().is_empty() || layer.join(p).is_dir() {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    for rel in missing.into_iter().rev() {
        let host = layer.join(&rel);
        fs::create_dir(&host).map_err(BuildError::io("creating directory", &host))?;
        let existing = rootfs.lookup(&format!("/{}", rel.to_string_lossy()));
        let (mode, owner) = match existing {
            Some((_, md)) if md.is_dir() => {
                use std::os::unix::fs::MetadataExt;
                (
                    md.mode() & 0o7777,
                    Owner {
                        uid: md.uid(),
                        gid: md.gid(),
                    },
                )
            }
            _ => (0o755, owner),
        };
        finish(&host, Some(mode), owner, now)?;
    }
    Ok(())
}

/// `--parents`: every selected entry lands at its path below the top's pivot, its parent
/// directories copied from the context (mode, mtime) as BuildKit's include-pattern copy does.
fn copy_with_parents(
    w: &mut Writer<'_, '_>,
    index: &ContextIndex,
    rootfs: &RootfsView,
    dest_rel: &Path,
    top: &Top<'_>,
) -> Result<(), BuildError> {
    let spec = w.spec;
    ensure_parents(w.layer, &dest_rel.join("x"), rootfs, spec.owner, spec.now)?;
    let strip = |path: &str| -> Option<String> {
        if top.pivot.is_empty() {
            return Some(path.to_string());
        }
        path.strip_prefix(top.pivot.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .map(str::to_string)
    };
    let entries = top.entry.into_iter().chain(top.subtree.iter().copied());
    for e in entries {
        let Some(rel) = strip(&e.path) else { continue };
        if spec.excluded(&rel) {
            continue;
        }
        // Parents below the pivot come from the context, outermost first.
        let mut parent = PathBuf::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            parent.push(part);
            let target = dest_rel.join(fs_path(&parent.to_string_lossy()));
            if w.layer.join(&target).is_dir() {
                continue;
            }
            let ctx_path = if top.pivot.is_empty() {
                parent.to_string_lossy().into_owned()
            } else {
                format!("{}/{}", top.pivot, parent.to_string_lossy())
            };
            match index.get(&ctx_path) {
                Some(dir) if dir.kind == EntryKind::Dir => w.entry(&target, dir)?,
                _ => ensure_parents(w.layer, &target.join("x"), rootfs, spec.owner, spec.now)?,
            }
        }
        w.entry(&dest_rel.join(fs_path(&rel)), e)?;
    }
    Ok(())
}

/// Writes context entries into the layer dir, remembering hardlinks and directories whose
/// mode and mtime are set last.
struct Writer<'a, 's> {
    layer: &'a Path,
    root: &'a Path,
    /// `root` held open: sources are opened beneath it.
    root_fd: OwnedFd,
    spec: &'a CopySpec<'s>,
    dirs: Vec<(PathBuf, u32, Owner, i64)>,
    links: Links,
    /// Inodes of the previous layer linked so far: each at most once, so that two names
    /// never share an inode unless the context's do.
    linked_inodes: HashSet<(u64, u64)>,
    /// Regular files written with a known content digest: (layer path, digest, inode).
    written: Vec<(PathBuf, Digest, u64)>,
    /// Every entry lands on a free path: one source into an empty layer dir, nothing else.
    fresh: bool,
    report: CopyReport,
}

impl Writer<'_, '_> {
    /// Opens the regular file `e` for reading, exactly as the walk saw it: beneath the
    /// root, through no symlink (the walk never followed one), the same inode. Anything else
    /// means the tree changed under the build (a file swapped for a link to a host file, a
    /// fifo, a device) and is refused, never read.
    fn open_source(&self, e: &Entry) -> Result<File, BuildError> {
        let rel = e.fs_path();
        let src = self.root.join(&rel);
        let changed = || {
            BuildError::at(
                self.spec.line,
                format!(
                    "{} changed while the build read it: build again",
                    src.display()
                ),
            )
        };
        let fd = strata_inroot::openat2_retrying(
            &self.root_fd,
            &rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::XDEV | rustix::io::Errno::NOENT => {
                changed()
            }
            e => BuildError::io("opening", &src)(e.into()),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| BuildError::io("reading", &src)(e.into()))?;
        let regular =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        if !regular || st.st_ino != e.ino || st.st_dev != e.dev {
            return Err(changed());
        }
        // Reopening the held inode reads exactly what was checked.
        let reopen = format!("/proc/self/fd/{}", fd.as_raw_fd());
        File::open(&reopen).map_err(BuildError::io("opening", &src))
    }

    fn entry(&mut self, target: &Path, e: &Entry) -> Result<(), BuildError> {
        let spec = self.spec;
        let src = self.root.join(e.fs_path());
        let host = self.layer.join(target);
        let mtime = e.mtime_ns.div_euclid(1_000_000_000);
        let mode = spec.chmod.unwrap_or(e.mode);
        let owner = spec.owner_of(e);
        // A later source replaces what an earlier one put at the same path.
        if !self.fresh {
            remove_existing(&host, e.kind == EntryKind::Dir)?;
        }
        match e.kind {
            EntryKind::Dir => {
                if !host.is_dir() {
                    fs::create_dir(&host).map_err(BuildError::io("creating directory", &host))?;
                }
                self.dirs.push((host, mode, owner, mtime));
            }
            EntryKind::File => {
                // Hardlinked context files stay hardlinked in the layer, as with BuildKit.
                if e.nlink > 1 {
                    if let Some(first) = self.links.get(&(e.dev, e.ino)) {
                        fs::hard_link(first, &host).map_err(BuildError::io("linking", &host))?;
                        return Ok(());
                    }
                    self.links.insert((e.dev, e.ino), host.clone());
                }
                self.report.files += 1;
                self.report.bytes += e.size;
                if let Some(progress) = self.spec.progress {
                    progress.update(&self.report.transfer());
                }
                // The digest the step's key was computed with, for a file that is no link.
                let digest = match self.spec.reuse {
                    Some(reuse) if e.nlink <= 1 => reuse.digest_of(e),
                    _ => None,
                };
                if let Some(digest) = &digest {
                    if let Some(ino) = self.link_previous(target, &host, e, digest, mode, owner)? {
                        self.report.linked += 1;
                        self.written
                            .push((target.to_path_buf(), digest.clone(), ino));
                        return Ok(());
                    }
                }
                let mut from = self.open_source(e)?;
                let mut to = File::create(&host).map_err(BuildError::io("creating", &host))?;
                std::io::copy(&mut from, &mut to).map_err(BuildError::io("copying", &src))?;
                let ino = to
                    .metadata()
                    .map_err(BuildError::io("reading", &host))?
                    .ino();
                drop(to);
                finish(&host, Some(mode), owner, mtime)?;
                // Indexed only if what was read is what was hashed (same stat after reading).
                if let Some(digest) = digest {
                    let after = from.metadata().map_err(BuildError::io("reading", &src))?;
                    if same_stat(e, &after) {
                        self.written.push((target.to_path_buf(), digest, ino));
                    }
                }
            }
            EntryKind::Symlink => {
                let link = match &e.symlink_target {
                    Some(t) => t.clone(),
                    None => fs::read_link(&src).map_err(BuildError::io("reading link", &src))?,
                };
                symlink(&link, &host).map_err(BuildError::io("creating symlink", &host))?;
                finish(&host, None, owner, mtime)?;
            }
            // Sockets, fifos and devices are not copied from a context (BuildKit skips them too).
            _ => {}
        }
        Ok(())
    }
}

impl Writer<'_, '_> {
    /// Hard-links the previous layer's file at `target` to `host` if it holds `digest` with
    /// exactly the size, mode, owner and mtime the copy would give it. Returns the linked
    /// inode.
    fn link_previous(
        &mut self,
        target: &Path,
        host: &Path,
        e: &Entry,
        digest: &Digest,
        mode: u32,
        owner: Owner,
    ) -> Result<Option<u64>, BuildError> {
        let Some(reuse) = self.spec.reuse else {
            return Ok(None);
        };
        let Some(old) = reuse
            .previous
            .as_ref()
            .and_then(|p| p.file_with(target, digest))
        else {
            return Ok(None);
        };
        let mtime = reuse.previous_mtime(e.mtime_ns.div_euclid(1_000_000_000));
        let Ok(md) = fs::symlink_metadata(&old) else {
            return Ok(None);
        };
        let same = md.is_file()
            && md.len() == e.size
            && md.mode() & 0o7777 == mode
            && (md.uid(), md.gid()) == (owner.uid, owner.gid)
            && (md.mtime(), md.mtime_nsec()) == (mtime, 0);
        if !same || self.linked_inodes.contains(&(md.dev(), md.ino())) {
            return Ok(None);
        }
        // The context file is not looked at again: the layer gets the content the step's
        // key was computed with, even if the file changed since the walk.
        if fs::hard_link(&old, host).is_err() {
            // A cross-device store or a snapshot removed meanwhile: copy instead.
            return Ok(None);
        }
        self.linked_inodes.insert((md.dev(), md.ino()));
        Ok(Some(md.ino()))
    }
}

/// `md` is the stat the walk recorded for `e` (so its cached content digest holds).
fn same_stat(e: &Entry, md: &fs::Metadata) -> bool {
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    md.is_file()
        && (md.dev(), md.ino(), md.len()) == (e.dev, e.ino, e.size)
        && ns(md.mtime(), md.mtime_nsec()) == e.mtime_ns
        && ns(md.ctime(), md.ctime_nsec()) == e.ctime_ns
}

/// Removes what is at `host` unless both it and the new entry are directories (they merge).
fn remove_existing(host: &Path, new_is_dir: bool) -> Result<(), BuildError> {
    if let Ok(md) = fs::symlink_metadata(host) {
        if !(md.is_dir() && new_is_dir) {
            let removed = if md.is_dir() {
                fs::remove_dir_all(host)
            } else {
                fs::remove_file(host)
            };
            removed.map_err(BuildError::io("replacing", host))?;
        }
    }
    Ok(())
}

/// Sets owner, mode (not for symlinks) and mtime of `path` without following symlinks.
fn finish(path: &Path, mode: Option<u32>, owner: Owner, mtime: i64) -> Result<(), BuildError> {
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
        .map_err(BuildError::io("changing owner of", path))?;
    if let Some(m) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(m))
            .map_err(BuildError::io("changing mode of", path))?;
    }
    let ts = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| BuildError::Io {
        what: "setting the mtime of",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Extracts an archive into the destination directory `dest_rel` of the layer.
fn extract(
    layer: &Path,
    dest_rel: &Path,
    tar: Box<dyn Read>,
    rootfs: &RootfsView,
    spec: &CopySpec<'_>,
) -> Result<(), BuildError> {
    ensure_parents(layer, &dest_rel.join("x"), rootfs, spec.owner, spec.now)?;
    let target = layer.join(dest_rel);
    let opts = ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
        // BuildKit (Docker 20.10) keeps the tar's owners even with --chown; only the
        // directories it creates get the --chown owner.
        preserve_owners: true,
    };
    apply_layer(tar, &target, &opts).map_err(|source| BuildError::Layer {
        line: spec.line,
        source,
    })?;
    Ok(())
}

/// Writes the host file `src` at `target` in the layer with `mode`, the spec's owner and
/// `mtime`, creating missing parents.
pub(crate) fn place_file(
    layer: &Path,
    target: &Path,
    src: &Path,
    mode: u32,
    rootfs: &RootfsView,
    spec: &CopySpec<'_>,
    mtime: i64,
) -> Result<(), BuildError> {
    ensure_parents(layer, target, rootfs, spec.owner, spec.now)?;
    let host = layer.join(target);
    remove_existing(&host, false)?;
    fs::copy(src, &host).map_err(BuildError::io("copying", src))?;
    finish(&host, Some(mode), spec.owner, mtime)
}

/// Copies the tree at `src` (a directory, file or symlink) to `dst`, which must not exist,
/// keeping types, modes, owners, mtimes and hardlinks; never follows symlinks.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), BuildError> {
    let mut links = Links::new();
    let mut dirs = Vec::new();
    let mut todo = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from, to)) = todo.pop() {
        let md = fs::symlink_metadata(&from).map_err(BuildError::io("reading", &from))?;
        let owner = Owner {
            uid: md.uid(),
            gid: md.gid(),
        };
        let ft = md.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).map_err(BuildError::io("creating directory", &to))?;
            for entry in fs::read_dir(&from).map_err(BuildError::io("reading", &from))? {
                let entry = entry.map_err(BuildError::io("reading", &from))?;
                todo.push((entry.path(), to.join(entry.file_name())));
            }
            dirs.push((to, md.mode() & 0o7777, owner, md.mtime()));
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(BuildError::io("reading link", &from))?;
            symlink(&target, &to).map_err(BuildError::io("creating symlink", &to))?;
            finish(&to, None, owner, md.mtime())?;
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    fs::hard_link(first, &to).map_err(BuildError::io("linking", &to))?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), to.clone());
            }
            fs::copy(&from, &to).map_err(BuildError::io("copying", &from))?;
            finish(&to, Some(md.mode() & 0o7777), owner, md.mtime())?;
        }
        // Sockets, fifos and devices are not copied.
    }
    for (path, mode, owner, mtime) in dirs.iter().rev() {
        finish(path, Some(*mode), *owner, *mtime)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `ctx`, lets `swap` change it, then copies everything: the copy must refuse
    /// what is no longer the walked file and never read it.
    fn copy_after(ctx: &Path, swap: impl FnOnce(&Path)) -> Result<(), BuildError> {
        let index = strata_context::walk(ctx, &DockerIgnore::default()).unwrap();
        swap(ctx);
        let layer = tempfile::tempdir().unwrap();
        let sources = [".".to_string()];
        let out = copy_into(
            layer.path(),
            &index,
            &RootfsView::default(),
            &CopySpec::plain(1, &sources),
        );
        if let Ok(text) = fs::read_to_string(layer.path().join("a")) {
            assert_eq!(text, "walked\n", "read something else than the walked file");
        }
        out.map(drop)
    }

    #[test]
    fn a_context_file_swapped_after_the_walk_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("host"), "HOST\n").unwrap();
        let host = outside.path().join("host");
        type Swap<'a> = Box<dyn FnOnce(&Path) + 'a>;
        let swaps: Vec<(&str, Swap<'_>)> = vec![
            (
                "symlink",
                Box::new(|ctx: &Path| {
                    fs::remove_file(ctx.join("a")).unwrap();
                    symlink(&host, ctx.join("a")).unwrap();
                }),
            ),
            (
                "fifo",
                Box::new(|ctx: &Path| {
                    fs::remove_file(ctx.join("a")).unwrap();
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        ctx.join("a"),
                        rustix::fs::FileType::Fifo,
                        Mode::from_raw_mode(0o644),
                        0,
                    )
                    .unwrap();
                }),
            ),
            (
                "linked parent",
                Box::new(|ctx: &Path| {
                    fs::rename(ctx.join("d"), ctx.join("d.old")).unwrap();
                    symlink(host.parent().unwrap(), ctx.join("d")).unwrap();
                }),
            ),
        ];
        for (name, swap) in swaps {
            let ctx = tempfile::tempdir().unwrap();
            fs::write(ctx.path().join("a"), "walked\n").unwrap();
            fs::create_dir(ctx.path().join("d")).unwrap();
            fs::write(ctx.path().join("d/host"), "walked\n").unwrap();
            let err = copy_after(ctx.path(), swap).expect_err(name);
            assert!(err.to_string().contains("changed"), "{name}: {err}");
        }
        // Unchanged, it copies.
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("a"), "walked\n").unwrap();
        copy_after(ctx.path(), |_| {}).unwrap();
    }
}
