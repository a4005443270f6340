//! Naming one entry of a container's filesystem safely: the path is cleaned lexically (so its
//! last component is never `.` or `..`), its parent directory is opened with
//! `RESOLVE_IN_ROOT` (symlinks, absolute or `..`, stay inside the root), and the entry itself
//! is then handled by `*at` calls on that parent — so nothing a container put in its
//! filesystem can make strata touch a host path.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{statat, AtFlags, FileType, Mode, OFlags};

use strata_inroot::{clean_absolute, open_in_root};

/// How many symlinks `-L` follows before giving up (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// One entry inside a root: its parent directory (a real descriptor) and its name there.
/// The root itself is `(root, ".")`.
#[derive(Debug)]
pub(crate) struct Located {
    pub(crate) parent: OwnedFd,
    pub(crate) name: OsString,
    /// The cleaned path inside the root (after following symlinks when asked).
    pub(crate) path: PathBuf,
}

impl Located {
    /// The entry's type, not following a symlink; None if it does not exist.
    pub(crate) fn kind(&self) -> rustix::io::Result<Option<FileType>> {
        match statat(&self.parent, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The last component as the name an archive gives it (`/` for the root).
    pub(crate) fn base_name(&self) -> Vec<u8> {
        match self.path.file_name() {
            Some(n) => n.as_bytes().to_vec(),
            None => Vec::new(),
        }
    }
}

/// Locates `path` inside `root`. With `follow`, a symlink as the last component is followed
/// (within the root) until it names something that is not a symlink, or nothing.
pub(crate) fn locate(root: &OwnedFd, path: &Path, follow: bool) -> rustix::io::Result<Located> {
    let mut path = clean_absolute(path);
    for _ in 0..=MAX_SYMLINKS {
        let located = locate_once(root, &path)?;
        if !follow || located.kind()? != Some(FileType::Symlink) {
            return Ok(located);
        }
        let target = rustix::fs::readlinkat(&located.parent, &located.name, Vec::new())?;
        let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
        path = match path.parent() {
            // Relative targets are relative to the link's directory; absolute ones to the root.
            Some(dir) => clean_absolute(dir.join(target)),
            None => clean_absolute(target),
        };
    }
    Err(rustix::io::Errno::LOOP)
}

fn locate_once(root: &OwnedFd, path: &Path) -> rustix::io::Result<Located> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name.to_owned()),
        _ => (Path::new("/"), OsString::from(".")),
    };
    let parent = open_in_root(root, dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
    Ok(Located {
        parent,
        name,
        path: path.to_path_buf(),
    })
}

/// Opens an entry's own directory, refusing a symlink in its place.
pub(crate) fn open_located_dir(l: &Located) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        &l.parent,
        &l.name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn following_symlinks_never_leaves_the_root() {
        let root_dir = tempfile::tempdir().unwrap();
        let r = root_dir.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/shadow"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/shadow", r.join("etc/rel")).unwrap();
        std::os::unix::fs::symlink("/", r.join("up")).unwrap();
        let root = crate::rootfs::open_root(r).unwrap();
        for (path, want) in [
            ("/abs", "/etc/shadow"),
            ("/etc/rel", "/etc/shadow"),
            // Links in the middle are resolved by the kernel, inside the root.
            ("/up/etc/shadow", "/up/etc/shadow"),
        ] {
            let l = locate(&root, Path::new(path), true).unwrap();
            assert_eq!(l.path, Path::new(want), "{path}");
            assert_eq!(l.kind().unwrap(), Some(FileType::RegularFile), "{path}");
            let fd = rustix::fs::openat(&l.parent, &l.name, OFlags::RDONLY, Mode::empty()).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).unwrap();
            assert_eq!(text, "inside", "{path} read the host's file");
        }
        let l = locate(&root, Path::new("/abs"), false).unwrap();
        assert_eq!(l.kind().unwrap(), Some(FileType::Symlink));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            locate(&root, Path::new("/loop"), true).unwrap_err(),
            rustix::io::Errno::LOOP
        );
    }
}
