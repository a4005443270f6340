//! COPY/ADD file placement: which selected entries land where in the new layer directory,
//! with BuildKit's rules (a directory source copies its contents, a trailing `/` or several
//! sources make the destination a directory, missing parents are created), then writing them
//! with the requested owner and mode.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_context::{ContextIndex, Entry, EntryKind};
use strata_layer::{apply_layer, decompress, is_tar_header, ApplyOptions, WhiteoutMode, TAR_BLOCK};

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
    /// Applied to every copied file and directory; not to created parents.
    pub(crate) chmod: Option<u32>,
    /// mtime (seconds) of directories the copy creates.
    pub(crate) now: i64,
    /// ADD: a local tar source (plain, gzip or zstd) is extracted into the destination.
    pub(crate) add: bool,
}

/// The first layer path written for each hardlinked context inode (dev, ino).
type Links = HashMap<(u64, u64), PathBuf>;

/// One matched source: an entry and its subtree (None: the whole context).
struct Top<'a> {
    entry: Option<&'a Entry>,
    subtree: Vec<&'a Entry>,
}

/// The selected entries of every source pattern, grouped by the top entry each matched.
fn tops<'a>(index: &'a ContextIndex, spec: &CopySpec<'_>) -> Result<Vec<Top<'a>>, BuildError> {
    let mut out = Vec::new();
    for pattern in spec.sources {
        if clean_rel(pattern).as_os_str().is_empty() {
            out.push(Top {
                entry: None,
                subtree: index.entries().iter().collect(),
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
    let dest_is_dir = spec.dest.ends_with('/')
        || dest_rel.as_os_str().is_empty()
        || rootfs.is_dir(spec.dest)
        || tops.len() > 1;
    if tops.len() > 1 && !spec.dest.ends_with('/') {
        return Err(BuildError::at(
            spec.line,
            "when using COPY with more than one source file, the destination must be a directory and end with a /",
        ));
    }
    let mut dirs_to_finish: Vec<(PathBuf, u32, Owner, i64)> = Vec::new();
    let mut links = Links::new();
    for top in &tops {
        let (base_rel, prefix_len) = match top.entry {
            Some(e) if e.kind != EntryKind::Dir => {
                if spec.add && e.kind == EntryKind::File {
                    if let Some(tar) = open_archive(&index.root().join(&e.path), spec)? {
                        extract(layer, &dest_rel, tar, rootfs, spec)?;
                        continue;
                    }
                }
                let name = Path::new(&e.path).file_name().unwrap_or_default();
                let target = if dest_is_dir {
                    dest_rel.join(name)
                } else {
                    dest_rel.clone()
                };
                ensure_parents(layer, &target, rootfs, spec.owner, spec.now)?;
                write_entry(
                    layer,
                    &target,
                    index.root(),
                    e,
                    spec,
                    &mut dirs_to_finish,
                    &mut links,
                )?;
                continue;
            }
            Some(e) => (dest_rel.clone(), e.path.len() + 1),
            None => (dest_rel.clone(), 0),
        };
        // A directory: its contents go into the destination directory.
        ensure_parents(layer, &base_rel.join("x"), rootfs, spec.owner, spec.now)?;
        for e in &top.subtree {
            let rel = &e.path[prefix_len.min(e.path.len())..];
            let target = base_rel.join(rel);
            ensure_parents(layer, &target, rootfs, spec.owner, spec.now)?;
            write_entry(
                layer,
                &target,
                index.root(),
                e,
                spec,
                &mut dirs_to_finish,
                &mut links,
            )?;
        }
    }
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

fn write_entry(
    layer: &Path,
    target: &Path,
    context_root: &Path,
    e: &Entry,
    spec: &CopySpec<'_>,
    dirs: &mut Vec<(PathBuf, u32, Owner, i64)>,
    links: &mut Links,
) -> Result<(), BuildError> {
    let src = context_root.join(&e.path);
    let host = layer.join(target);
    let mtime = e.mtime_ns.div_euclid(1_000_000_000);
    let mode = spec.chmod.unwrap_or(e.mode);
    // A later source replaces what an earlier one put at the same path.
    if let Ok(md) = fs::symlink_metadata(&host) {
        if !(md.is_dir() && e.kind == EntryKind::Dir) {
            let removed = if md.is_dir() {
                fs::remove_dir_all(&host)
            } else {
                fs::remove_file(&host)
            };
            removed.map_err(BuildError::io("replacing", &host))?;
        }
    }
    match e.kind {
        EntryKind::Dir => {
            if !host.is_dir() {
                fs::create_dir(&host).map_err(BuildError::io("creating directory", &host))?;
            }
            dirs.push((host, mode, spec.owner, mtime));
        }
        EntryKind::File => {
            // Hardlinked context files stay hardlinked in the layer, as with BuildKit.
            if e.nlink > 1 {
                if let Some(first) = links.get(&(e.dev, e.ino)) {
                    fs::hard_link(first, &host).map_err(BuildError::io("linking", &host))?;
                    return Ok(());
                }
                links.insert((e.dev, e.ino), host.clone());
            }
            fs::copy(&src, &host).map_err(BuildError::io("copying", &src))?;
            finish(&host, Some(mode), spec.owner, mtime)?;
        }
        EntryKind::Symlink => {
            let link = match &e.symlink_target {
                Some(t) => t.clone(),
                None => fs::read_link(&src).map_err(BuildError::io("reading link", &src))?,
            };
            symlink(&link, &host).map_err(BuildError::io("creating symlink", &host))?;
            finish(&host, None, spec.owner, mtime)?;
        }
        // Sockets, fifos and devices are not copied from a context (BuildKit skips them too).
        _ => {}
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

/// A tar reader when ADD should extract `path`: a tar, plain or compressed with gzip or
/// zstd (Docker sniffs the content, not the name). bzip2 and xz are refused for now.
fn open_archive(path: &Path, spec: &CopySpec<'_>) -> Result<Option<Box<dyn Read>>, BuildError> {
    let file = fs::File::open(path).map_err(BuildError::io("opening", path))?;
    let layer_err = |source| BuildError::Layer {
        line: spec.line,
        source,
    };
    let mut head = [0u8; 6];
    let n = read_full(
        &mut fs::File::open(path).map_err(BuildError::io("opening", path))?,
        &mut head,
    )
    .map_err(BuildError::io("reading", path))?;
    if head[..n].starts_with(b"BZh") || head[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(BuildError::Unsupported {
            line: spec.line,
            instruction: "ADD",
            what: format!("extracting bzip2/xz archives ({})", path.display()),
        });
    }
    let (_, mut reader) = decompress(std::io::BufReader::new(file)).map_err(layer_err)?;
    let mut block = vec![0u8; TAR_BLOCK];
    let n = read_full(&mut reader, &mut block).map_err(BuildError::io("reading", path))?;
    if n < TAR_BLOCK || !is_tar_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(std::io::Cursor::new(block).chain(reader))))
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

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
