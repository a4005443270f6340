//! COPY/ADD file placement: which selected entries land where in the new layer directory,
//! with BuildKit's rules (a directory source copies its contents, a trailing `/` or several
//! sources make the destination a directory, missing parents are created), then writing them
//! with the requested owner and mode.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_context::{fs_path, ContextIndex, DockerIgnore, Entry, EntryKind};
use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};

use crate::archive::open_archive;
use crate::op::InlineFile;
use crate::owner::Owner;
use crate::rootfs::{clean_rel, RootfsView};
use crate::BuildError;

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
            Some((base, _)) if spec.parents => clean_rel(base).to_string_lossy().into_owned(),
            _ => String::new(),
        };
        if clean_rel(pattern).as_os_str().is_empty() {
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
) -> Result<(), BuildError> {
    let tops = tops(index, spec)?;
    let dest_rel = clean_rel(spec.dest);
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
    let mut w = Writer {
        layer,
        root: index.root(),
        spec,
        dirs: Vec::new(),
        links: Links::new(),
    };
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
                    if let Some(tar) = open_archive(&index.root().join(e.fs_path()), spec.line)? {
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
        for e in &top.subtree {
            let rel = &e.path[prefix_len.min(e.path.len())..];
            if spec.excluded(rel) {
                continue;
            }
            let target = base_rel.join(fs_path(rel));
            ensure_parents(layer, &target, rootfs, spec.owner, spec.now)?;
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
        ..
    } = w;
    // Directory modes and times last: writing children would change them.
    for (path, mode, owner, mtime) in dirs_to_finish.iter().rev() {
        finish(path, Some(*mode), *owner, *mtime)?;
    }
    Ok(())
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
    spec: &'a CopySpec<'s>,
    dirs: Vec<(PathBuf, u32, Owner, i64)>,
    links: Links,
}

impl Writer<'_, '_> {
    fn entry(&mut self, target: &Path, e: &Entry) -> Result<(), BuildError> {
        let spec = self.spec;
        let src = self.root.join(e.fs_path());
        let host = self.layer.join(target);
        let mtime = e.mtime_ns.div_euclid(1_000_000_000);
        let mode = spec.chmod.unwrap_or(e.mode);
        let owner = spec.owner_of(e);
        // A later source replaces what an earlier one put at the same path.
        remove_existing(&host, e.kind == EntryKind::Dir)?;
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
                fs::copy(&src, &host).map_err(BuildError::io("copying", &src))?;
                finish(&host, Some(mode), owner, mtime)?;
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
    use std::os::unix::fs::MetadataExt;
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
