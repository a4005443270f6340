//! Naming a path inside a directory tree strata does not trust (an image's rootfs, a build
//! context, a container's filesystem) as if that directory were `/`.
//!
//! The one resolver every crate uses: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`,
//! always `O_CLOEXEC`, retried when the kernel answers `EAGAIN`; and the one lexical cleaning
//! (`path.Clean` with `..` clamped at the root) that turns a user's or an image's path into a
//! name to resolve. Symlinks, absolute or with `..`, and `/proc` magic links can never lead a
//! lookup out of the root.
//!
//! Owns nothing else: no directory creation policy, no metadata, no strata types. It depends
//! on no other strata crate, so the lowest crates (strata-layer, strata-runtime) can use it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// How many times a lookup is tried again after `EAGAIN` before the error is returned.
const EAGAIN_RETRIES: u32 = 1000;

/// Opens `path` inside the directory `root` as if `root` were `/`: `..`, absolute symlinks
/// and symlinks anywhere on the path (the last component too, unless `flags` has
/// `O_NOFOLLOW`) resolve inside it, and `/proc` magic links are refused (`ELOOP`).
/// Always `O_CLOEXEC`, so the descriptor never reaches a container's process.
pub fn open_in_root(
    root: impl AsFd,
    path: impl AsRef<Path>,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    openat2_retrying(
        root,
        path.as_ref(),
        flags | OFlags::CLOEXEC,
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// `openat2` that tries again on `EAGAIN`: with `RESOLVE_IN_ROOT` or `RESOLVE_BENEATH` the
/// kernel answers that when a rename or mount anywhere on the system raced the lookup (it
/// cannot prove a `..` stayed inside), which is frequent on a machine running containers.
/// Retried a bounded number of times, then the error is returned.
pub fn openat2_retrying(
    dir: impl AsFd,
    path: &Path,
    flags: OFlags,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(&dir, path, flags, Mode::empty(), resolve) {
            Err(rustix::io::Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

/// `a/./b/../c//` → `a/c`: relative, no `.` or `..`, `..` clamped at the root (so the result
/// never leaves it); empty for the root itself.
pub fn clean_relative(path: impl AsRef<Path>) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.as_ref().components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// `a/./b/../c//` → `/a/c`: [`clean_relative`] made absolute (`/` for the root).
pub fn clean_absolute(path: impl AsRef<Path>) -> PathBuf {
    Path::new("/").join(clean_relative(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn cleaning_clamps_dot_dot_at_the_root() {
        assert_eq!(clean_relative("a/./b/../c//"), Path::new("a/c"));
        assert_eq!(clean_relative("/../../etc/passwd"), Path::new("etc/passwd"));
        assert_eq!(clean_relative("/"), Path::new(""));
        assert_eq!(clean_absolute("a/./b/../c//"), Path::new("/a/c"));
        assert_eq!(clean_absolute("../.."), Path::new("/"));
        assert_eq!(clean_absolute(""), Path::new("/"));
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "inside").unwrap();
        std::fs::write(dir.path().join("outside"), "host").unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        symlink("../../../../outside", root.join("rel")).unwrap();
        let root_fd =
            rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();

        let read = |path: &str| {
            let fd = open_in_root(&root_fd, path, OFlags::RDONLY).unwrap();
            std::io::read_to_string(std::fs::File::from(fd)).unwrap()
        };
        assert_eq!(read("abs"), "inside");
        assert_eq!(read("/../../etc/passwd"), "inside");
        // `../outside` from the root is `/outside` inside it, which does not exist.
        assert_eq!(
            open_in_root(&root_fd, "rel", OFlags::RDONLY).err(),
            Some(rustix::io::Errno::NOENT)
        );
    }

    #[test]
    fn magic_links_are_refused_and_descriptors_close_on_exec() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/proc/self/cwd", dir.path().join("cwd")).unwrap();
        let root_fd =
            rustix::fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        // Inside the root, `/proc/self/cwd` names nothing; through the real /proc it would be
        // a magic link out of the tree.
        assert!(open_in_root(&root_fd, "cwd", OFlags::PATH).is_err());
        let proc_fd =
            rustix::fs::open("/proc", OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert_eq!(
            open_in_root(&proc_fd, "self/cwd", OFlags::PATH).err(),
            Some(rustix::io::Errno::LOOP)
        );

        let fd = open_in_root(&root_fd, ".", OFlags::PATH).unwrap();
        let flags = rustix::io::fcntl_getfd(&fd).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    }
}
