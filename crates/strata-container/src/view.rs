//! A container's filesystem as one directory descriptor, whatever its state: the live root of
//! a running container (`/proc/<pid>/root`), or for a stopped one an overlay of its upper dir
//! over the image's snapshot chain mounted *detached* (fsmount without move_mount: the mount
//! belongs to the descriptor alone, is visible to no process and vanishes when it is closed,
//! even if strata is killed). vfs containers are plain directories.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
    MountAttrFlags,
};
use strata_oci::Digest;
use strata_store::{DriverKind, Store, StoreError, WritableLayer};

use crate::error::ContainerError;
use crate::lifecycle::monitor_alive;
use crate::record::{Container, Status};

/// Whether the view may be written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    /// Writes reach the container's writable layer (or its live root).
    Write,
}

/// A directory descriptor that is the root of a filesystem tree.
#[derive(Debug)]
pub(crate) struct FsView {
    root: OwnedFd,
}

impl FsView {
    /// The root as a real (readable) directory descriptor.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.root
    }

    /// A path naming the root (`/proc/self/fd/N`), valid while `self` lives.
    #[cfg(test)]
    fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.root.as_raw_fd()))
    }

    fn dir(path: &Path) -> Result<FsView, ContainerError> {
        let root = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ContainerError::io("opening", path)(e.into()))?;
        Ok(FsView { root })
    }
}

/// Whether the container's processes are up (then its live root is the view).
pub(crate) fn running_pid(c: &Container) -> Option<i32> {
    let live = matches!(c.state.status, Status::Running)
        && c.state.pid > 0
        && monitor_alive(&c.paths().monitor_lock);
    live.then_some(c.state.pid)
}

/// The container's whole filesystem: what its processes see (running) or would see (stopped).
pub(crate) fn container_view(
    store: &Store,
    c: &Container,
    access: Access,
) -> Result<FsView, ContainerError> {
    if let Some(pid) = running_pid(c) {
        return FsView::dir(Path::new(&format!("/proc/{pid}/root")));
    }
    let paths = c.paths();
    let chain = snapshot_dirs(store, c.config.chain_id.as_ref())?;
    match store.driver() {
        DriverKind::Vfs => {
            let populated = std::fs::read_dir(&paths.upper)
                .map_err(ContainerError::io("listing", &paths.upper))?
                .next()
                .is_some();
            match (populated, chain.first(), access) {
                // Never started: nothing was copied yet, the image is the whole truth.
                (false, Some(image), Access::Read) => FsView::dir(image),
                (false, Some(_), Access::Write) => {
                    fill_vfs_upper(store, c)?;
                    FsView::dir(&paths.upper)
                }
                _ => FsView::dir(&paths.upper),
            }
        }
        DriverKind::Overlay => {
            if chain.is_empty() {
                // An image without layers: the upper dir is the whole tree.
                return FsView::dir(&paths.upper);
            }
            match access {
                Access::Read => {
                    let mut lowers = vec![paths.upper.clone()];
                    lowers.extend(chain);
                    detached_overlay(&lowers, None)
                }
                Access::Write => detached_overlay(&chain, Some(&paths.writable_layer(false))),
            }
        }
    }
}

/// The image's filesystem under a container (read-only), for comparisons.
pub(crate) fn image_view(
    store: &Store,
    chain_id: Option<&Digest>,
) -> Result<Option<FsView>, ContainerError> {
    let chain = snapshot_dirs(store, chain_id)?;
    match (store.driver(), chain.len()) {
        (_, 0) => Ok(None),
        // vfs snapshots are complete trees; a single overlay layer needs no mount.
        (DriverKind::Vfs, _) | (DriverKind::Overlay, 1) => FsView::dir(&chain[0]).map(Some),
        (DriverKind::Overlay, _) => detached_overlay(&chain, None).map(Some),
    }
}

/// The snapshot directories of a chain, top first.
pub(crate) fn snapshot_dirs(
    store: &Store,
    chain_id: Option<&Digest>,
) -> Result<Vec<PathBuf>, ContainerError> {
    let snap = store.snapshotter();
    let mut dirs = Vec::new();
    let mut next = chain_id.cloned();
    while let Some(id) = next {
        let info = snap
            .info(&id)?
            .ok_or_else(|| ContainerError::Store(StoreError::SnapshotNotFound(id.clone())))?;
        dirs.push(info.path);
        next = info.parent;
        if dirs.len() > 4096 {
            break;
        }
    }
    Ok(dirs)
}

/// A vfs container's upper dir is its full copy, made when it first starts; a write before
/// that makes it now (through the snapshotter's own mount, undone at once).
fn fill_vfs_upper(store: &Store, c: &Container) -> Result<(), ContainerError> {
    let Some(chain) = &c.config.chain_id else {
        return Ok(());
    };
    let paths = c.paths();
    let writable = paths.writable_layer(false);
    store
        .snapshotter()
        .mount(chain, &paths.rootfs, Some(&writable))?;
    strata_store::unmount(&paths.rootfs)?;
    Ok(())
}

/// Mounts an overlay of `lowers` (top first) without attaching it anywhere.
fn detached_overlay(
    lowers: &[PathBuf],
    writable: Option<&WritableLayer>,
) -> Result<FsView, ContainerError> {
    let failed = |what: &'static str| {
        move |e: rustix::io::Errno| ContainerError::Io {
            action: what,
            path: lowers.first().cloned().unwrap_or_default(),
            source: e.into(),
        }
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(failed("opening an overlay filesystem for"))?;
    for lower in lowers {
        fsconfig_set_string(&fs, "lowerdir+", lower.as_path()).map_err(failed(
            "adding overlay lower dirs (needs Linux 6.8 or later) at",
        ))?;
    }
    let mut attrs = MountAttrFlags::MOUNT_ATTR_NODEV | MountAttrFlags::MOUNT_ATTR_NOSUID;
    match writable {
        Some(w) => {
            fsconfig_set_string(&fs, "upperdir", w.upper.as_path())
                .map_err(failed("setting the overlay upper dir of"))?;
            fsconfig_set_string(&fs, "workdir", w.work.as_path())
                .map_err(failed("setting the overlay work dir of"))?;
        }
        None => attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY,
    }
    fsconfig_create(&fs).map_err(failed("creating the overlay of"))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(failed("mounting the overlay of"))?;
    // fsmount gives an O_PATH descriptor; reading a directory needs a real one.
    let root = rustix::fs::openat(
        &mnt,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed("opening the overlay of"))?;
    Ok(FsView { root })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn detached_overlay_merges_upper_over_lowers_and_leaves_no_mount() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("gone"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
        assert!(std::fs::symlink_metadata(upper.join("gone"))
            .unwrap()
            .file_type()
            .is_char_device());
        let view = detached_overlay(&[upper.clone(), lower.clone()], None).unwrap();
        let root = view.path();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/passwd")).unwrap(),
            "root"
        );
        assert_eq!(std::fs::read_to_string(root.join("etc/new")).unwrap(), "n");
        assert!(
            !root.join("gone").exists(),
            "whiteout in the upper hides the lower file"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(t.path().to_str().unwrap()),
            "nothing attached"
        );
    }
}
