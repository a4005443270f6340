//! Safe path work inside a container's root filesystem: every lookup is resolved as if the
//! rootfs were `/` (openat2 `RESOLVE_IN_ROOT`), so a symlink in an image cannot point strata at
//! a host path.

use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{mkdirat, Mode, OFlags};
pub(crate) use strata_inroot::open_in_root;

use crate::error::ContainerError;

/// The root directory as a descriptor for [`open_in_root`].
pub(crate) fn open_root(root: &Path) -> Result<OwnedFd, ContainerError> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening", root)(e.into()))
}

/// `mkdir -p` of `path` inside `root` (mode 0755, owned by root), as Docker does for a missing
/// working directory.
pub(crate) fn mkdir_in_root(root: &Path, path: &str) -> Result<(), ContainerError> {
    let root_fd = open_root(root)?;
    let mut current = std::path::PathBuf::from("/");
    for component in Path::new(path).components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let parent = open_in_root(&root_fd, &current, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| path_error(root, path, e))?;
        current.push(name);
        match open_in_root(&root_fd, &current, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(_) => continue,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(path_error(root, path, e)),
        }
        // `parent` was resolved inside the root, and `name` is one plain component.
        let dir = open_dir_fd(&parent)?;
        match mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(path_error(root, path, e)),
        }
    }
    Ok(())
}

/// An `O_PATH` descriptor cannot be used with mkdirat: reopen it as a real directory.
fn open_dir_fd(path_fd: &OwnedFd) -> Result<OwnedFd, ContainerError> {
    rustix::fs::openat(
        path_fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening", ".")(e.into()))
}

fn path_error(root: &Path, path: &str, e: rustix::io::Errno) -> ContainerError {
    ContainerError::ContainerPath {
        id: root.display().to_string(),
        path: path.to_owned(),
        reason: std::io::Error::from(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkdir_stays_inside_the_root_through_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        // An image symlink pointing at a host path (which also exists inside the root).
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        let inside = root.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        mkdir_in_root(root.path(), "/evil/app/data").unwrap();
        assert!(!outside.path().join("app").exists(), "escaped to the host");
        assert!(inside.join("app/data").is_dir());
        mkdir_in_root(root.path(), "/srv/www").unwrap();
        assert!(root.path().join("srv/www").is_dir());
        mkdir_in_root(root.path(), "/srv/www").unwrap();
    }
}
