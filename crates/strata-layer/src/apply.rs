//! Applying a layer tar into a directory, safely: nothing outside the root is ever touched.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;

use crate::entry_meta::{
    device_numbers, read_meta, set_fd_meta, set_special_meta, times, EntryMeta,
};
use crate::in_root::{kind_at, list_dir, open_subdir, remove_all_at, DirCache, RootDir};
use crate::tar_path::{clean, join, whiteout_kind, NameError, WhiteoutKind};
use crate::LayerError;

/// What whiteout entries (`.wh.<name>`, `.wh..wh..opq`) turn into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhiteoutMode {
    /// Applying onto a complete tree (vfs snapshots, `docker export`-like flattening): `.wh.x`
    /// deletes x, `.wh..wh..opq` empties the directory of what lower layers put there.
    Remove,
    /// Unpacking one layer into an EMPTY dir that will be an overlayfs lowerdir: `.wh.x` becomes
    /// an overlay whiteout (char device 0:0 named x), `.wh..wh..opq` sets xattr
    /// `trusted.overlay.opaque=y` on the dir.
    OverlayMarkers,
}

/// How [`apply_layer`] treats what the tar says.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Keep numeric uid/gid as in the tar; otherwise everything is owned by the caller.
    pub preserve_owners: bool,
}

/// What [`apply_layer`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Tar entries applied (whiteouts included; PAX/GNU extension headers not).
    pub entries: u64,
    /// Sum of the sizes of the regular files written.
    pub bytes: u64,
}

const COPY_BUFFER: usize = 256 * 1024;

/// Reads an UNCOMPRESSED layer tar and applies it under `root`.
///
/// Consumes `tar` to its very end, trailing padding included, so a caller hashing the
/// stream as it passes sees every byte. Entry names are cleaned as Docker does (absolute
/// names are relative to `root`; a relative name climbing out with `..` is a
/// [`LayerError::Breakout`]); every parent directory is resolved inside `root`, so
/// symlinks, including absolute ones from lower layers, never lead out of it.
///
/// Like Docker: an existing entry is replaced, unless both are directories (then only the
/// metadata changes); missing parents are created 0755; directory mtimes are set last.
/// A hardlink entry shares its target's inode and so its metadata; its own header fields
/// are not applied. Xattrs the filesystem does not support are skipped, as are overlayfs'
/// own (`trusted.overlay.*`, `user.overlay.*`), which a layer must never smuggle in.
pub fn apply_layer<R: Read>(
    tar: R,
    root: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, LayerError> {
    let root_dir = RootDir::open(root).map_err(|source| LayerError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut applier = Applier {
        root: root_dir,
        cache: DirCache::default(),
        opts,
        stats: ApplyStats::default(),
        unpacked: HashSet::new(),
        dir_times: Vec::new(),
        buf: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(tar);
    let mut next_offset = 0u64;
    {
        let entries = archive
            .entries()
            .map_err(|source| LayerError::ReadTar { offset: 0, source })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| LayerError::ReadTar {
                offset: next_offset,
                source,
            })?;
            next_offset = entry.raw_header_position() + 512 + entry.size().div_ceil(512) * 512;
            applier.apply(&mut entry)?;
        }
    }
    // The end-of-archive blocks and any padding after them belong to the blob too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|source| LayerError::ReadTar {
        offset: next_offset,
        source,
    })?;
    applier.set_dir_times()?;
    Ok(applier.stats)
}

struct Applier<'o> {
    root: RootDir,
    cache: DirCache,
    opts: &'o ApplyOptions,
    stats: ApplyStats,
    /// Paths (and their ancestors) this layer unpacked: an opaque whiteout in `Remove`
    /// mode keeps them, as Docker does, whatever the entry order.
    unpacked: HashSet<Vec<u8>>,
    /// Directory mtimes, set after everything was written into them.
    dir_times: Vec<(Vec<u8>, Timespec)>,
    buf: Vec<u8>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let offset = entry.raw_header_position();
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() || entry_type == EntryType::new(b'V') {
            return Ok(());
        }
        let raw_name = entry.path_bytes().into_owned();
        let path = PathBuf::from(String::from_utf8_lossy(&raw_name).into_owned());
        let comps = clean(&raw_name).map_err(|e| name_error(e, &path, offset))?;
        let meta = read_meta(entry).map_err(|reason| LayerError::InvalidEntry {
            path: path.clone(),
            offset,
            reason,
        })?;
        let at = |source: io::Error| LayerError::Apply {
            path: path.clone(),
            offset,
            source,
        };
        // Entries inside aufs metadata dirs (`.wh..wh.plnk/…`) are not files of the image.
        if comps.len() > 1
            && comps[..comps.len() - 1]
                .iter()
                .any(|c| c.starts_with(crate::tar_path::WHITEOUT_META_PREFIX))
        {
            return Ok(());
        }
        let Some((&name, parent)) = comps.split_last() else {
            if entry_type != EntryType::Directory {
                return Err(LayerError::InvalidEntry {
                    path,
                    offset,
                    reason: "only a directory can stand for the root".into(),
                });
            }
            self.stats.entries += 1;
            let root = self.root.fd();
            set_fd_meta(self.opts.preserve_owners, root, &meta).map_err(at)?;
            self.dir_times.push((Vec::new(), meta.mtime));
            return Ok(());
        };

        match whiteout_kind(name) {
            WhiteoutKind::None => {}
            WhiteoutKind::AufsMeta => return Ok(()),
            WhiteoutKind::Invalid => {
                return Err(LayerError::InvalidEntry {
                    path,
                    offset,
                    reason: "whiteout names no entry".into(),
                })
            }
            WhiteoutKind::Opaque => {
                self.stats.entries += 1;
                return self.opaque(parent).map_err(at);
            }
            WhiteoutKind::Delete(target) => {
                self.stats.entries += 1;
                return self.whiteout(parent, target, &meta).map_err(at);
            }
        }

        let link_target = match entry_type {
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::InvalidEntry {
                        path: path.clone(),
                        offset,
                        reason: "hardlink without a target".into(),
                    })?;
                let target_comps = clean(&link).map_err(|e| name_error(e, &path, offset))?;
                if target_comps.is_empty() {
                    return Err(LayerError::InvalidEntry {
                        path,
                        offset,
                        reason: "hardlink to the root".into(),
                    });
                }
                Some(join(&target_comps))
            }
            EntryType::Symlink => Some(
                entry
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::InvalidEntry {
                        path: path.clone(),
                        offset,
                        reason: "symlink without a target".into(),
                    })?
                    .into_owned(),
            ),
            _ => None,
        };

        let parent_fd = self.cache.dir(&self.root, parent, true).map_err(at)?;
        let root = &self.root;

        match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = File::from(
                    create_replacing(root, parent_fd, name, || {
                        rustix::fs::openat(
                            parent_fd,
                            name,
                            OFlags::WRONLY
                                | OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o600),
                        )
                    })
                    .map_err(&at)?,
                );
                let size = entry.size();
                let written = copy_data(entry, &mut file, &mut self.buf).map_err(&at)?;
                if written != size {
                    return Err(LayerError::ReadTar {
                        offset: offset + 512 + written,
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("entry {path:?} ends after {written} of {size} bytes"),
                        ),
                    });
                }
                self.stats.bytes += written;
                set_fd_meta(self.opts.preserve_owners, file.as_fd(), &meta).map_err(&at)?;
                rustix::fs::futimens(&file, &times(meta.mtime)).map_err(|e| at(e.into()))?;
            }
            EntryType::Directory => {
                let mkdir = || rustix::fs::mkdirat(parent_fd, name, Mode::from_raw_mode(0o700));
                match mkdir() {
                    Ok(()) => {}
                    // Like Docker, an existing directory is kept and only gets new metadata.
                    Err(Errno::EXIST)
                        if kind_at(parent_fd, name).map_err(&at)? == Some(FileType::Directory) => {}
                    Err(Errno::EXIST) => {
                        create_replacing(root, parent_fd, name, mkdir).map_err(&at)?
                    }
                    Err(e) => return Err(at(e.into())),
                }
                let dir = open_subdir(parent_fd, name).map_err(&at)?;
                set_fd_meta(self.opts.preserve_owners, dir.as_fd(), &meta).map_err(&at)?;
                self.dir_times.push((join(&comps), meta.mtime));
            }
            EntryType::Symlink => {
                let target = link_target.unwrap_or_default();
                create_replacing(root, parent_fd, name, || {
                    rustix::fs::symlinkat(target.as_slice(), parent_fd, name)
                })
                .map_err(&at)?;
                set_special_meta(self.opts.preserve_owners, parent_fd, name, &meta, false)
                    .map_err(&at)?;
            }
            EntryType::Link => {
                let target = link_target.unwrap_or_default();
                let target_comps = clean(&target).map_err(|e| name_error(e, &path, offset))?;
                let Some((&target_name, target_parent)) = target_comps.split_last() else {
                    return Err(at(io::ErrorKind::InvalidInput.into()));
                };
                let target_dir = root.open_dir(&join(target_parent)).map_err(&at)?;
                // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
                create_replacing(root, parent_fd, name, || {
                    rustix::fs::linkat(&target_dir, target_name, parent_fd, name, AtFlags::empty())
                })
                .map_err(&at)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match entry_type {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                // A fifo has no device numbers; GNU tar leaves those fields blank.
                let (major, minor) = if file_type == FileType::Fifo {
                    (0, 0)
                } else {
                    device_numbers(entry.header()).map_err(|reason| LayerError::InvalidEntry {
                        path: path.clone(),
                        offset,
                        reason,
                    })?
                };
                create_replacing(root, parent_fd, name, || {
                    rustix::fs::mknodat(
                        parent_fd,
                        name,
                        file_type,
                        Mode::from_raw_mode(0o600),
                        rustix::fs::makedev(major, minor),
                    )
                })
                .map_err(&at)?;
                set_special_meta(self.opts.preserve_owners, parent_fd, name, &meta, true)
                    .map_err(&at)?;
            }
            other => {
                return Err(LayerError::InvalidEntry {
                    path,
                    offset,
                    reason: format!("unsupported entry type {:?}", other.as_byte() as char),
                })
            }
        }
        self.stats.entries += 1;
        if self.opts.whiteouts == WhiteoutMode::Remove {
            self.record_unpacked(&comps);
        }
        Ok(())
    }

    fn record_unpacked(&mut self, comps: &[&[u8]]) {
        for i in (1..=comps.len()).rev() {
            if !self.unpacked.insert(join(&comps[..i])) {
                break; // its ancestors are already there
            }
        }
    }

    fn whiteout(&mut self, parent: &[&[u8]], target: &[u8], meta: &EntryMeta) -> io::Result<()> {
        let parent_fd = self.cache.dir(&self.root, parent, true)?;
        match self.opts.whiteouts {
            WhiteoutMode::Remove => {
                remove_all_at(parent_fd, target)?;
                self.root.mark_stale();
            }
            WhiteoutMode::OverlayMarkers => {
                if kind_at(parent_fd, target)?.is_some() {
                    remove_all_at(parent_fd, target)?;
                    self.root.mark_stale();
                }
                rustix::fs::mknodat(
                    parent_fd,
                    target,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )?;
                if self.opts.preserve_owners {
                    rustix::fs::chownat(
                        parent_fd,
                        target,
                        Some(rustix::fs::Uid::from_raw(meta.uid)),
                        Some(rustix::fs::Gid::from_raw(meta.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn opaque(&mut self, dir: &[&[u8]]) -> io::Result<()> {
        let dir_fd = self.cache.dir(&self.root, dir, true)?;
        match self.opts.whiteouts {
            WhiteoutMode::OverlayMarkers => {
                rustix::fs::fsetxattr(dir_fd, "trusted.overlay.opaque", b"y", XattrFlags::empty())?;
            }
            WhiteoutMode::Remove => {
                clear_unpacked(dir_fd, &join(dir), &self.unpacked)?;
                self.root.mark_stale();
            }
        }
        Ok(())
    }

    fn set_dir_times(&mut self) -> Result<(), LayerError> {
        let dir_times = std::mem::take(&mut self.dir_times);
        for (path, mtime) in dir_times {
            let at = |source: io::Error| LayerError::Apply {
                path: PathBuf::from(String::from_utf8_lossy(&path).into_owned()),
                offset: 0,
                source,
            };
            let result =
                match path.iter().rposition(|b| *b == b'/') {
                    _ if path.is_empty() => rustix::fs::futimens(self.root.fd(), &times(mtime)),
                    split => {
                        let (parent, name) = match split {
                            Some(i) => (&path[..i], &path[i + 1..]),
                            None => (&b""[..], &path[..]),
                        };
                        match self.root.open_dir(parent) {
                            Ok(fd) => rustix::fs::utimensat(
                                &fd,
                                name,
                                &times(mtime),
                                AtFlags::SYMLINK_NOFOLLOW,
                            ),
                            Err(e) => Err(rustix::io::Errno::from_io_error(&e)
                                .unwrap_or(rustix::io::Errno::IO)),
                        }
                    }
                };
            match result {
                // A later entry removed or replaced the directory.
                Ok(()) | Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => {}
                Err(e) => return Err(at(e.into())),
            }
        }
        Ok(())
    }
}

/// Runs `create`; if the name is taken, removes whatever has it (an entry replaces what an
/// earlier entry or a lower layer put there) and runs `create` again. Trying first saves a
/// stat per entry on the common path, where nothing is there.
fn create_replacing<T>(
    root: &RootDir,
    dir: BorrowedFd<'_>,
    name: &[u8],
    mut create: impl FnMut() -> rustix::io::Result<T>,
) -> io::Result<T> {
    match create() {
        Err(Errno::EXIST) => {
            remove_all_at(dir, name)?;
            root.mark_stale();
            Ok(create()?)
        }
        other => Ok(other?),
    }
}

/// Removes everything under `dir` (whose cleaned path is `dir_path`) that this layer did
/// not unpack, descending into the directories it did.
fn clear_unpacked(
    dir: BorrowedFd<'_>,
    dir_path: &[u8],
    unpacked: &HashSet<Vec<u8>>,
) -> io::Result<()> {
    for child in list_dir(dir)? {
        let name = child.to_bytes();
        let mut child_path = dir_path.to_vec();
        if !child_path.is_empty() {
            child_path.push(b'/');
        }
        child_path.extend_from_slice(name);
        if !unpacked.contains(&child_path) {
            remove_all_at(dir, name)?;
        } else if kind_at(dir, name)? == Some(FileType::Directory) {
            let sub = open_subdir(dir, name)?;
            clear_unpacked(sub.as_fd(), &child_path, unpacked)?;
        }
    }
    Ok(())
}

fn name_error(e: NameError, path: &Path, offset: u64) -> LayerError {
    match e {
        NameError::Breakout => LayerError::Breakout {
            path: path.to_path_buf(),
            offset,
            reason: "`..` climbs out of the root",
        },
        NameError::Nul => LayerError::InvalidEntry {
            path: path.to_path_buf(),
            offset,
            reason: "name contains a NUL byte".into(),
        },
    }
}

/// Copies an entry's data with a large buffer (io::copy's 8 KiB costs syscalls on big files).
fn copy_data(r: &mut impl Read, w: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}
