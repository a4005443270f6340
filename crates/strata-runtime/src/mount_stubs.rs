//! Mount points the rootfs lacked: created for the run, removed after it so they never reach a layer.
//!
//! libcontainer creates every missing mount destination (`/proc`, `/etc/hosts`, a `-v` target…)
//! in the rootfs; on an overlay that lands in the upper dir, i.e. in the next layer. Like
//! BuildKit, we note which were missing before the run and remove them afterwards if they are
//! still empty. Paths are resolved with `strata_inroot::open_in_root`, so symlinks planted by the
//! image or the container can never point the removal outside the rootfs.

use std::io;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{statat, unlinkat, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;

/// A mount destination and whether its source is a file (else a directory).
pub(crate) struct MountTarget {
    pub(crate) destination: PathBuf,
    pub(crate) is_file: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stub {
    /// Relative to the rootfs.
    path: PathBuf,
    is_file: bool,
}

/// The destinations (and parent directories) missing from a rootfs before a run.
pub(crate) struct MountStubs {
    root: OwnedFd,
    stubs: Vec<Stub>,
}

fn open_in_root(root: &OwnedFd, path: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    strata_inroot::open_in_root(root, path, flags | OFlags::PATH)
}

impl MountStubs {
    /// Notes which of `targets` (and their parents) do not exist in `rootfs`.
    pub(crate) fn find(rootfs: &Path, targets: &[MountTarget]) -> io::Result<Self> {
        let root = rustix::fs::open(
            rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut stubs: Vec<Stub> = Vec::new();
        for target in targets {
            let parts: Vec<_> = target
                .destination
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part),
                    _ => None,
                })
                .collect();
            let mut prefix = PathBuf::new();
            let mut missing = false;
            for (i, part) in parts.iter().enumerate() {
                prefix.push(part);
                if !missing {
                    match open_in_root(&root, &prefix, OFlags::empty()) {
                        Ok(_) => continue,
                        Err(Errno::NOENT) => missing = true,
                        // Unreadable or odd: leave this target alone.
                        Err(_) => break,
                    }
                }
                let stub = Stub {
                    path: prefix.clone(),
                    is_file: target.is_file && i + 1 == parts.len(),
                };
                if !stubs.contains(&stub) {
                    stubs.push(stub);
                }
            }
        }
        Ok(Self { root, stubs })
    }

    /// Removes the stubs that are still empty, deepest first; others are kept.
    pub(crate) fn remove(&self) -> io::Result<()> {
        let mut stubs: Vec<&Stub> = self.stubs.iter().collect();
        stubs.sort_by_key(|s| std::cmp::Reverse(s.path.components().count()));
        for stub in stubs {
            let (Some(parent), Some(name)) = (stub.path.parent(), stub.path.file_name()) else {
                continue;
            };
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            let dir = match open_in_root(&self.root, parent, OFlags::DIRECTORY) {
                Ok(dir) => dir,
                Err(Errno::NOENT | Errno::NOTDIR) => continue,
                Err(err) => return Err(err.into()),
            };
            let stat = match statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::NOENT) => continue,
                Err(err) => return Err(err.into()),
            };
            let result = match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile if stub.is_file && stat.st_size == 0 => {
                    unlinkat(&dir, name, AtFlags::empty())
                }
                FileType::Directory if !stub.is_file => unlinkat(&dir, name, AtFlags::REMOVEDIR),
                _ => Ok(()),
            };
            match result {
                Ok(()) | Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    #[cfg(test)]
    fn paths(&self) -> Vec<(&Path, bool)> {
        self.stubs
            .iter()
            .map(|s| (s.path.as_path(), s.is_file))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn target(destination: &str, is_file: bool) -> MountTarget {
        MountTarget {
            destination: destination.into(),
            is_file,
        }
    }

    #[test]
    fn finds_missing_targets_and_parents_then_removes_empty_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hosts"), "image's own\n").unwrap();
        let targets = [
            target("/proc", false),
            target("/dev", false),
            target("/dev/pts", false),
            target("/etc/hosts", true),
            target("/etc/hostname", true),
            target("/data/in", false),
        ];
        let stubs = MountStubs::find(root, &targets).unwrap();
        assert_eq!(
            stubs.paths(),
            vec![
                (Path::new("dev"), false),
                (Path::new("dev/pts"), false),
                (Path::new("etc/hostname"), true),
                (Path::new("data"), false),
                (Path::new("data/in"), false),
            ]
        );

        // What the runtime would create, plus a write into one stub that must survive.
        fs::create_dir_all(root.join("dev")).unwrap();
        fs::write(root.join("etc/hostname"), "").unwrap();
        fs::create_dir_all(root.join("data/in")).unwrap();
        fs::write(root.join("data/kept"), "written by the run\n").unwrap();
        stubs.remove().unwrap();

        assert!(!root.join("dev").exists());
        assert!(!root.join("etc/hostname").exists());
        assert!(!root.join("data/in").exists());
        assert!(root.join("data/kept").exists(), "non-empty dir is kept");
        assert!(root.join("proc").is_dir(), "pre-existing dir is kept");
        assert_eq!(
            fs::read_to_string(root.join("etc/hosts")).unwrap(),
            "image's own\n"
        );
    }

    #[test]
    fn non_empty_stub_file_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("etc")).unwrap();
        let stubs = MountStubs::find(root, &[target("/etc/resolv.conf", true)]).unwrap();
        fs::write(root.join("etc/resolv.conf"), "nameserver 1.1.1.1\n").unwrap();
        stubs.remove().unwrap();
        assert!(root.join("etc/resolv.conf").exists());
    }

    #[test]
    fn symlinks_never_lead_outside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // The image points /etc at an absolute host-looking path.
        std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
        let stubs = MountStubs::find(&root, &[target("/etc/hosts", true)]).unwrap();
        // Inside the root, /etc resolves to <root><outside>, which does not exist.
        assert_eq!(stubs.paths()[0], (Path::new("etc"), false));
        // A container swaps in an empty file outside the root at the same name: untouched.
        fs::write(outside.join("hosts"), "").unwrap();
        stubs.remove().unwrap();
        assert!(outside.join("hosts").exists());
        assert!(
            root.join("etc").symlink_metadata().is_ok(),
            "symlink is not a stub dir"
        );
    }
}
