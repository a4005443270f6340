//! Copying a directory tree with everything a layer can carry (modes, owners, xattrs,
//! hardlinks, devices, fifos, mtimes), and measuring one.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use crate::error::{IoContext, StoreError};

/// Copies the contents of `src` into the existing empty dir `dst`, then `src`'s own
/// metadata onto `dst`.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), StoreError> {
    let meta = std::fs::symlink_metadata(src).ctx("inspecting", src)?;
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    apply_metadata(src, dst, &meta)
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(src).ctx("listing", src)? {
        let entry = entry.ctx("listing", src)?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).ctx("inspecting", &from)?;
        copy_entry(&from, &to, &meta, links)?;
    }
    Ok(())
}

fn copy_entry(
    from: &Path,
    to: &Path,
    meta: &Metadata,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), StoreError> {
    let ft = meta.file_type();
    if !ft.is_dir() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = links.get(&key) {
            return std::fs::hard_link(first, to).ctx("hardlinking", to);
        }
        links.insert(key, to.to_path_buf());
    }
    if ft.is_dir() {
        std::fs::create_dir(to).ctx("creating dir", to)?;
        copy_dir_contents(from, to, links)?;
    } else if ft.is_file() {
        std::fs::copy(from, to).ctx("copying file to", to)?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(from).ctx("reading symlink", from)?;
        std::os::unix::fs::symlink(&target, to).ctx("creating symlink", to)?;
    } else {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else {
            FileType::Socket
        };
        rustix::fs::mknodat(
            CWD,
            to,
            kind,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            meta.rdev(),
        )
        .ctx("creating special file", to)?;
    }
    apply_metadata(from, to, meta)
}

/// Owner, then mode (chown clears setuid), xattrs, then times last.
fn apply_metadata(from: &Path, to: &Path, meta: &Metadata) -> Result<(), StoreError> {
    let is_link = meta.file_type().is_symlink();
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
        .ctx("setting owner of", to)?;
    if !is_link {
        rustix::fs::chmod(to, Mode::from_raw_mode(meta.mode() & 0o7777))
            .ctx("setting mode of", to)?;
    }
    copy_xattrs(from, to)?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(CWD, to, &times, AtFlags::SYMLINK_NOFOLLOW).ctx("setting times of", to)
}

fn copy_xattrs(from: &Path, to: &Path) -> Result<(), StoreError> {
    let size = match rustix::fs::llistxattr_query(from) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(StoreError::io("listing xattrs of", from, e.into())),
    };
    if size == 0 {
        return Ok(());
    }
    let mut names = vec![0u8; size];
    let n = rustix::fs::llistxattr(from, &mut names[..]).ctx("listing xattrs of", from)?;
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::ffi::OsStr::from_bytes(name);
        let len = rustix::fs::lgetxattr_query(from, name).ctx("reading xattr of", from)?;
        let mut value = vec![0u8; len];
        let len =
            rustix::fs::lgetxattr(from, name, &mut value[..]).ctx("reading xattr of", from)?;
        rustix::fs::lsetxattr(to, name, &value[..len], rustix::fs::XattrFlags::empty())
            .ctx("setting xattr of", to)?;
    }
    Ok(())
}

/// Bytes of regular files and symlinks under `dir`, each hardlinked inode counted once.
pub(crate) fn dir_usage(dir: &Path) -> Result<u64, StoreError> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ctx("listing", &d)? {
            let entry = entry.ctx("listing", &d)?;
            let meta = entry.metadata().ctx("inspecting", &entry.path())?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() <= 1 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_modes_links_owners_xattrs_devices_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(src.join("d/f"), b"hello").unwrap();
        std::fs::hard_link(src.join("d/f"), src.join("hl")).unwrap();
        std::os::unix::fs::symlink("/d/f", src.join("sl")).unwrap();
        std::os::unix::fs::lchown(src.join("d/f"), Some(1234), Some(5678)).unwrap();
        rustix::fs::chmod(src.join("d/f").as_path(), Mode::from_raw_mode(0o4750)).unwrap();
        rustix::fs::lsetxattr(
            src.join("d/f").as_path(),
            "user.k",
            b"v",
            rustix::fs::XattrFlags::empty(),
        )
        .ok();
        rustix::fs::mknodat(
            CWD,
            src.join("null").as_path(),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        let old = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000,
                tv_nsec: 0,
            },
        };
        rustix::fs::utimensat(CWD, src.join("d").as_path(), &old, AtFlags::empty()).unwrap();

        copy_tree(&src, &dst).unwrap();

        let f = std::fs::symlink_metadata(dst.join("d/f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4750);
        assert_eq!((f.uid(), f.gid()), (1234, 5678));
        assert_eq!(
            f.ino(),
            std::fs::symlink_metadata(dst.join("hl")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(dst.join("sl")).unwrap(),
            Path::new("/d/f")
        );
        let n = std::fs::symlink_metadata(dst.join("null")).unwrap();
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(std::fs::metadata(dst.join("d")).unwrap().mtime(), 1_000_000);
        if rustix::fs::lgetxattr(src.join("d/f").as_path(), "user.k", &mut [0u8; 8][..]).is_ok() {
            let mut buf = [0u8; 8];
            let n =
                rustix::fs::lgetxattr(dst.join("d/f").as_path(), "user.k", &mut buf[..]).unwrap();
            assert_eq!(&buf[..n], b"v");
        }
        // 5 bytes once (hardlink), plus the symlink's 4.
        assert_eq!(dir_usage(&dst).unwrap(), 9);
    }
}
