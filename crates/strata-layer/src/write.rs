//! Writing a deterministic layer tar from a directory or an overlayfs upper dir.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::entry_meta::is_overlay_xattr;
use crate::tar_path::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::tar_writer::{EntryHeader, TarWriter, Xattrs};
use crate::LayerError;

/// What the directory handed to [`write_layer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    /// `dir` is an overlayfs upper dir: char-0:0 files become `.wh.<name>` entries and dirs
    /// with `trusted.overlay.opaque=y` (or `user.overlay.opaque`) get a `.wh..wh..opq` entry;
    /// overlay's own xattrs never land in the tar.
    OverlayUpper,
    /// `dir` is a complete tree (e.g. a rootfs being imported): every entry is an addition.
    PlainTree,
}

/// How [`write_layer`] writes.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub source: ChangeSource,
    /// `SOURCE_DATE_EPOCH`: mtimes later than this become this.
    pub mtime_clamp: Option<i64>,
}

/// What [`write_layer`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Tar entries written (whiteouts included, PAX headers not).
    pub entries: u64,
}

/// Writes a deterministic UNCOMPRESSED tar of `dir` to `out`.
///
/// The order is that of a depth-first walk with each directory's names sorted by their
/// bytes (what Docker and BuildKit produce): a directory comes right before its contents,
/// and an opaque marker right after its directory. Names are relative without `./`,
/// directories end with `/`, the root itself is not an entry. Headers are ustar with
/// numeric ids only, PAX records for long or non-ASCII names, big ids and xattrs
/// (`SCHILY.xattr.*`; never overlayfs' own, nor `security.selinux`, a host label).
/// Modes carry the file type bits and whiteouts look as Docker's overlay2 driver writes
/// them, so that for an upper dir the tar equals Docker's layer tar byte for byte except
/// for uname/gname (Docker looks names up in the host's /etc/passwd; we never do).
/// Hardlinked files are written once; later names in walk order link to the first.
/// mtimes are whole seconds, clamped to `mtime_clamp`. Sockets are skipped, as Docker does.
/// Nothing but the tree's content and metadata affects the bytes: two runs over the same
/// tree give the same tar.
pub fn write_layer<W: Write>(
    dir: &Path,
    out: W,
    opts: &WriteOptions,
) -> Result<WriteStats, LayerError> {
    let mut writer = LayerWriter {
        tar: TarWriter::new(out),
        opts,
        stats: WriteStats::default(),
        first_links: HashMap::new(),
    };
    let mut stack = Vec::new();
    push_children(&mut stack, dir, b"")?;
    while let Some(item) = stack.pop() {
        let md = fs::symlink_metadata(&item.path).map_err(|source| LayerError::ReadSource {
            path: item.path.clone(),
            source,
        })?;
        if md.is_dir() {
            let mut name = item.name;
            name.push(b'/');
            writer.directory(&item.path, &name, &md)?;
            push_children(&mut stack, &item.path, &name)?;
        } else {
            writer.non_directory(&item.path, &item.name, &md)?;
        }
    }
    writer.tar.finish().map_err(|source| LayerError::WriteTar {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(writer.stats)
}

/// A path still to be written, and its name in the tar.
struct Pending {
    path: PathBuf,
    name: Vec<u8>,
}

/// Pushes the children of `dir` so that they pop in name order.
fn push_children(stack: &mut Vec<Pending>, dir: &Path, prefix: &[u8]) -> Result<(), LayerError> {
    let read_err = |source| LayerError::ReadSource {
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        names.push(entry.map_err(read_err)?.file_name());
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names.into_iter().rev() {
        let path = dir.join(&name);
        let mut tar_name = prefix.to_vec();
        tar_name.extend_from_slice(&name.into_vec());
        stack.push(Pending {
            path,
            name: tar_name,
        });
    }
    Ok(())
}

struct LayerWriter<'o, W: Write> {
    tar: TarWriter<W>,
    opts: &'o WriteOptions,
    stats: WriteStats,
    /// (dev, inode) of multiply-linked files → the name they were first written under.
    first_links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> LayerWriter<'_, W> {
    fn directory(&mut self, path: &Path, name: &[u8], md: &Metadata) -> Result<(), LayerError> {
        let xattrs = read_xattrs(path)?;
        let opaque = self.opts.source == ChangeSource::OverlayUpper && is_opaque(path)?;
        self.emit(
            path,
            &self.header(name, EntryType::Directory, md, &xattrs),
            None,
        )?;
        if opaque {
            let mut marker = name.to_vec();
            marker.extend_from_slice(OPAQUE_WHITEOUT);
            self.emit(path, &self.opaque_header(&marker, md), None)?;
        }
        Ok(())
    }

    fn non_directory(&mut self, path: &Path, name: &[u8], md: &Metadata) -> Result<(), LayerError> {
        let file_type = md.file_type();
        if file_type.is_socket() {
            return Ok(());
        }
        if self.opts.source == ChangeSource::OverlayUpper
            && file_type.is_char_device()
            && md.rdev() == 0
        {
            // Checked before hardlinks: overlayfs shares one whiteout inode between many names.
            let (dir, base) = split_name(name);
            let mut whiteout = dir.to_vec();
            whiteout.extend_from_slice(WHITEOUT_PREFIX);
            whiteout.extend_from_slice(base);
            return self.emit(path, &self.whiteout_header(&whiteout, md), None);
        }
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.first_links.get(&key) {
                let mut header = self.header(name, EntryType::Link, md, &[]);
                let first = first.clone();
                header.link = &first;
                header.size = 0;
                return self.emit(path, &header, None);
            }
            self.first_links.insert(key, name.to_vec());
        }
        let xattrs = read_xattrs(path)?;
        if file_type.is_file() {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|source| LayerError::ReadSource {
                    path: path.to_path_buf(),
                    source,
                })?;
            let mut header = self.header(name, EntryType::Regular, md, &xattrs);
            header.size = md.len();
            return self.emit(path, &header, Some(&mut file));
        }
        if file_type.is_symlink() {
            let target = fs::read_link(path).map_err(|source| LayerError::ReadSource {
                path: path.to_path_buf(),
                source,
            })?;
            let target = target.into_os_string().into_vec();
            let mut header = self.header(name, EntryType::Symlink, md, &xattrs);
            header.link = &target;
            return self.emit(path, &header, None);
        }
        let kind = if file_type.is_char_device() {
            EntryType::Char
        } else if file_type.is_block_device() {
            EntryType::Block
        } else if file_type.is_fifo() {
            EntryType::Fifo
        } else {
            return Err(LayerError::Unrepresentable {
                path: path.to_path_buf(),
                reason: "unknown file type".into(),
            });
        };
        let mut header = self.header(name, kind, md, &xattrs);
        if kind != EntryType::Fifo {
            let rdev = md.rdev();
            header.dev_major = libc::major(rdev);
            header.dev_minor = libc::minor(rdev);
        }
        self.emit(path, &header, None)
    }

    fn header<'a>(
        &self,
        name: &'a [u8],
        kind: EntryType,
        md: &Metadata,
        xattrs: &'a [(Vec<u8>, Vec<u8>)],
    ) -> EntryHeader<'a> {
        EntryHeader {
            name,
            kind,
            // With the file type bits, as Docker and BuildKit write it (Go 1.8's archive/tar
            // did, and they kept it so that layer digests did not change).
            mode: md.mode() & (0o7777 | libc::S_IFMT),
            uid: u64::from(md.uid()),
            gid: u64::from(md.gid()),
            size: 0,
            mtime: self.clamp(md.mtime()),
            link: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs,
        }
    }

    /// `.wh.<name>` for an overlay whiteout device, as Docker's overlay2 driver writes it:
    /// an empty 0600 file with the device's owner and mtime.
    fn whiteout_header<'a>(&self, name: &'a [u8], md: &Metadata) -> EntryHeader<'a> {
        EntryHeader {
            name,
            kind: EntryType::Regular,
            mode: 0o600,
            uid: u64::from(md.uid()),
            gid: u64::from(md.gid()),
            size: 0,
            mtime: self.clamp(md.mtime()),
            link: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
        }
    }

    /// `.wh..wh..opq` for an opaque directory, as Docker's overlay2 driver writes it: an
    /// empty file with the directory's permissions and owner, and mtime 0.
    fn opaque_header<'a>(&self, name: &'a [u8], dir: &Metadata) -> EntryHeader<'a> {
        EntryHeader {
            mode: dir.mode() & 0o777,
            mtime: 0,
            ..self.whiteout_header(name, dir)
        }
    }

    fn clamp(&self, mtime: i64) -> i64 {
        match self.opts.mtime_clamp {
            Some(clamp) if mtime > clamp => clamp,
            _ => mtime,
        }
    }

    fn emit(
        &mut self,
        path: &Path,
        header: &EntryHeader<'_>,
        data: Option<&mut File>,
    ) -> Result<(), LayerError> {
        let data = data.map(|f| f as &mut dyn io::Read);
        self.tar
            .append(header, data)
            .map_err(|source| LayerError::WriteTar {
                path: path.to_path_buf(),
                source,
            })?;
        self.stats.entries += 1;
        Ok(())
    }
}

/// Splits `a/b/c` into `a/b/` and `c`.
fn split_name(name: &[u8]) -> (&[u8], &[u8]) {
    match name.iter().rposition(|b| *b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&b""[..], name),
    }
}

fn is_opaque(path: &Path) -> Result<bool, LayerError> {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        let mut value = [0u8; 4];
        match rustix::fs::lgetxattr(path, name, &mut value[..]) {
            // "x" (kernel 6.7+) marks a directory holding xwhiteouts, not an opaque one.
            Ok(n) if &value[..n] == b"y" => return Ok(true),
            Ok(_) | Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => {}
            Err(rustix::io::Errno::RANGE) => {}
            Err(e) => {
                return Err(LayerError::ReadSource {
                    path: path.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    Ok(false)
}

/// The xattrs that belong in a layer, sorted by name.
fn read_xattrs(path: &Path) -> Result<Xattrs, LayerError> {
    let err = |e: rustix::io::Errno| LayerError::ReadSource {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let mut list = vec![0u8; 1024];
    let len = loop {
        match rustix::fs::llistxattr(path, &mut list[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(rustix::io::Errno::RANGE) => {
                let size = rustix::fs::llistxattr_query(path).map_err(err)?;
                list.resize(size.max(list.len() * 2), 0);
            }
            Err(e) => return Err(err(e)),
        }
    };
    let mut out = Vec::new();
    for name in list[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if is_overlay_xattr(name) || name == b"security.selinux" {
            continue;
        }
        let cname = std::ffi::OsStr::from_bytes(name);
        let mut value = vec![0u8; 256];
        let n = loop {
            match rustix::fs::lgetxattr(path, cname, &mut value[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => {
                    let size = rustix::fs::lgetxattr_query(path, cname).map_err(err)?;
                    value.resize(size.max(value.len() * 2), 0);
                }
                Err(e) => return Err(err(e)),
            }
        };
        value.truncate(n);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        assert_eq!(split_name(b"a/b/c"), (&b"a/b/"[..], &b"c"[..]));
        assert_eq!(split_name(b"c"), (&b""[..], &b"c"[..]));
    }
}
