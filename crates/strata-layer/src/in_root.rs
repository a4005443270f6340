//! File-descriptor based operations confined to a root directory.
//!
//! Every parent directory is opened with `strata_inroot::open_in_root`, so `..`, absolute
//! symlinks and symlinks planted by earlier entries all resolve inside the root, as if the
//! root were `/`. Everything else works on a single final component relative to that fd,
//! never following a symlink there.

use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use strata_inroot::open_in_root;

use crate::tar_path::join;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// The root an entry stream is applied into.
pub(crate) struct RootDir {
    fd: OwnedFd,
    /// Set when something was removed: a cached directory fd may now be a deleted directory
    /// or have been reached through a replaced symlink, so it must be resolved again.
    stale: Cell<bool>,
}

/// The last parent directory, kept open: entries of a layer come grouped by directory, so
/// most lookups hit it.
#[derive(Default)]
pub(crate) struct DirCache {
    cached: Option<(Vec<u8>, OwnedFd)>,
}

impl DirCache {
    /// Opens the directory `comps` (resolved inside `root`). With `create`, missing
    /// directories are created with mode 0755, as Docker does for implicit parents.
    pub(crate) fn dir<'a>(
        &'a mut self,
        root: &'a RootDir,
        comps: &[&[u8]],
        create: bool,
    ) -> io::Result<BorrowedFd<'a>> {
        if comps.is_empty() {
            return Ok(root.fd());
        }
        if root.stale.replace(false) {
            self.cached = None;
        }
        let path = join(comps);
        let hit = matches!(&self.cached, Some((p, _)) if *p == path);
        if !hit {
            let fd = match root.open_dir(&path) {
                Err(e) if create && is_errno(&e, Errno::NOENT) => root.create_dirs(comps)?,
                other => other?,
            };
            self.cached = Some((path, fd));
        }
        match &self.cached {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(io::Error::other("directory cache unexpectedly empty")),
        }
    }
}

fn is_errno(e: &io::Error, errno: Errno) -> bool {
    e.raw_os_error() == Some(errno.raw_os_error())
}

impl RootDir {
    pub(crate) fn open(path: &Path) -> io::Result<RootDir> {
        let fd = rustix::fs::open(path, DIR_FLAGS, Mode::empty())?;
        Ok(RootDir {
            fd,
            stale: Cell::new(false),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Records that the tree changed in a way that may invalidate the cached directory.
    pub(crate) fn mark_stale(&self) {
        self.stale.set(true);
    }

    /// Opens `path` (a cleaned, `/`-joined relative name) as a directory inside the root.
    pub(crate) fn open_dir(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let path: &[u8] = if path.is_empty() { b"." } else { path };
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        Ok(open_in_root(&self.fd, path, DIR_FLAGS)?)
    }

    fn create_dirs(&self, comps: &[&[u8]]) -> io::Result<OwnedFd> {
        let mut current = self.fd.try_clone()?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            match self.open_dir(&prefix) {
                Ok(fd) => current = fd,
                Err(e) if is_errno(&e, Errno::NOENT) => {
                    // `current` was itself opened in-root, and comps[i] is one plain component.
                    match rustix::fs::mkdirat(&current, comps[i], Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let fd = self.open_dir(&prefix)?;
                    // Not subject to the umask: implicit parents are always 0755.
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                    current = fd;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(current)
    }
}

/// The type of `name` in `dir`, without following a symlink; `None` if it does not exist.
pub(crate) fn kind_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the directory `name` in `dir`, refusing to follow a symlink.
pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        DIR_FLAGS | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// The names in a directory, without `.` and `..`.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, never following
/// a symlink. A missing `name` is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = open_subdir(dir, name)?;
    for child in list_dir(sub.as_fd())? {
        remove_all_at(sub.as_fd(), child.to_bytes())?;
    }
    drop(sub);
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `/proc/self/fd/<fd>`: lets path-only syscalls (chmod, setxattr) act on the inode an
/// `O_PATH` fd refers to, without resolving any name again.
pub(crate) fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Opens `name` in `dir` as an `O_PATH` fd without following a symlink.
pub(crate) fn open_path_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}
