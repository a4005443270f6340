//! Mount system calls: overlay (new mount API, legacy fallback), bind mounts, unmount.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, mount_bind,
    mount_remount, move_mount, FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags,
    MoveMountFlags, UnmountFlags,
};

use crate::error::{IoContext, StoreError};
use crate::lock;
use crate::snapshot::WritableLayer;

/// Unmounts `target` (lazily, so a process still inside it does not block cleanup).
pub fn unmount(target: &Path) -> Result<(), StoreError> {
    rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| StoreError::Mount {
        what: "unmount",
        target: target.to_path_buf(),
        source: e.into(),
    })
}

/// Moves the calling thread (and every thread and process it starts afterwards) into a new
/// mount namespace whose mounts do not propagate to the host: whatever it mounts from then on
/// vanishes when the last process in the namespace is gone, however they end (SIGKILL
/// included). Cheap (one `unshare`, one propagation change). Call it before starting threads:
/// threads started earlier keep the old namespace.
pub fn enter_private_mount_namespace() -> Result<(), StoreError> {
    let err = |source: std::io::Error| StoreError::Mount {
        what: "private mount namespace",
        target: PathBuf::from("/"),
        source,
    };
    // SAFETY: a new mount namespace changes no memory or file table this process relies on;
    // `unshare_unsafe` is only unsafe for flags that do (CLONE_FILES, CLONE_VM...).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .map_err(|e| err(e.into()))?;
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| err(e.into()))
}

/// Mount points strictly below `dir` in this process's mount namespace, deepest last (in
/// mount order), read from `/proc/self/mountinfo`.
pub fn mount_points_under(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let info = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(info).ctx("reading", info)?;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(text
        .lines()
        // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| {
            PathBuf::from(
                <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(unescape_octal(
                    field,
                )),
            )
        })
        .filter(|point| point != &dir && point.starts_with(&dir))
        .collect())
}

/// `\040` → a space, as the kernel escapes mountinfo fields.
fn unescape_octal(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// Bind-mounts `src` at `target`, read-only if asked.
pub(crate) fn bind(src: &Path, target: &Path, read_only: bool) -> Result<(), StoreError> {
    let err = |source: rustix::io::Errno| StoreError::Mount {
        what: "bind mount",
        target: target.to_path_buf(),
        source: source.into(),
    };
    mount_bind(src, target).map_err(err)?;
    if read_only {
        if let Err(e) = mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "") {
            let _ = unmount(target);
            return Err(err(e));
        }
    }
    Ok(())
}

/// How overlay mounts are made; `Legacy` only when the kernel lacks `lowerdir+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverlayApi {
    /// fsopen/fsconfig with one `lowerdir+` per layer: no length limit (kernel ≥ 6.8).
    New,
    /// mount(2) with `lowerdir=` relative to the snapshots dir, in a forked child that chdirs there.
    /// Chosen automatically when `New` is unsupported; constructed directly only by tests.
    #[cfg_attr(not(test), allow(dead_code))]
    Legacy,
}

/// Mounts an overlay of `lowers` (dir names inside `base`, top first) at `target`.
pub(crate) fn overlay(
    base: &Path,
    lowers: &[String],
    writable: Option<&WritableLayer>,
    target: &Path,
    api: OverlayApi,
) -> Result<(), StoreError> {
    let err = |source: std::io::Error| StoreError::Mount {
        what: "overlay",
        target: target.to_path_buf(),
        source,
    };
    if api == OverlayApi::New {
        match overlay_new_api(base, lowers, writable, target) {
            Ok(()) => return Ok(()),
            // ENOSYS: no fsopen; EINVAL on a lowerdir+ key: kernel older than 6.8.
            Err(NewApiError::Unsupported) => {}
            Err(NewApiError::Failed(e)) => return Err(err(e.into())),
        }
    }
    overlay_legacy(base, lowers, writable, target).map_err(err)
}

enum NewApiError {
    Unsupported,
    Failed(rustix::io::Errno),
}

fn overlay_new_api(
    base: &Path,
    lowers: &[String],
    writable: Option<&WritableLayer>,
    target: &Path,
) -> Result<(), NewApiError> {
    use rustix::io::Errno;
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| match e {
        Errno::NOSYS => NewApiError::Unsupported,
        e => NewApiError::Failed(e),
    })?;
    for (i, lower) in lowers.iter().enumerate() {
        fsconfig_set_string(&fs, "lowerdir+", base.join(lower).as_path()).map_err(|e| match e {
            Errno::INVAL if i == 0 => NewApiError::Unsupported,
            e => NewApiError::Failed(e),
        })?;
    }
    let mut attrs = MountAttrFlags::empty();
    match writable {
        Some(w) => {
            fsconfig_set_string(&fs, "upperdir", w.upper.as_path()).map_err(NewApiError::Failed)?;
            fsconfig_set_string(&fs, "workdir", w.work.as_path()).map_err(NewApiError::Failed)?;
            if w.volatile {
                // Older kernels lack it: then the unmount syncs, as without the option.
                let _ = fsconfig_set_flag(&fs, "volatile");
            }
        }
        None => attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY,
    }
    fsconfig_create(&fs).map_err(NewApiError::Failed)?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(NewApiError::Failed)?;
    move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(NewApiError::Failed)
}

/// Page size limit of mount(2)'s data argument.
const MOUNT_DATA_MAX: usize = 4095;

fn overlay_legacy(
    base: &Path,
    lowers: &[String],
    writable: Option<&WritableLayer>,
    target: &Path,
) -> std::io::Result<()> {
    let mut data = format!("lowerdir={}", lowers.join(":"));
    if let Some(w) = writable {
        let upper = std::path::absolute(&w.upper)?;
        let work = std::path::absolute(&w.work)?;
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    if data.len() > MOUNT_DATA_MAX {
        return Err(std::io::Error::other(format!(
            "overlay options are {} bytes, more than one page ({MOUNT_DATA_MAX}), and this kernel lacks lowerdir+",
            data.len()
        )));
    }
    let target = std::path::absolute(target)?;
    let to_c = |b: &[u8]| CString::new(b).map_err(std::io::Error::other);
    let c_target = to_c(target.as_os_str().as_bytes())?;
    let c_data = to_c(data.as_bytes())?;
    let c_type = to_c(b"overlay")?;
    let flags = if writable.is_some() {
        0
    } else {
        libc::MS_RDONLY
    };
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.current_dir(base);
    // SAFETY: the closure runs in the forked child before exec, after std chdir'd into
    // `base`; it only calls mount(2) and _exit(2), both async-signal-safe, on CStrings
    // allocated before the fork. The caller's process never changes directory.
    unsafe {
        cmd.pre_exec(move || {
            let rc = libc::mount(
                c_type.as_ptr(),
                c_target.as_ptr(),
                c_type.as_ptr(),
                flags,
                c_data.as_ptr().cast(),
            );
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::_exit(0)
        });
    }
    let status = cmd.status()?;
    match status.code() {
        Some(0) => Ok(()),
        _ => Err(std::io::Error::other(format!(
            "mount helper process ended with {:?} (signal {:?})",
            status.code(),
            status.signal()
        ))),
    }
}

/// Checks that overlayfs can be mounted with its upper dir on this store's filesystem.
pub(crate) fn probe_overlay(snapshots_root: &Path) -> Result<(), String> {
    let (lock, dir) =
        lock::create_owned_temp_dir(snapshots_root, ".probe-").map_err(|e| e.to_string())?;
    let result = (|| -> Result<(), StoreError> {
        let names = ["l1", "l2", "upper", "work", "merged"];
        for n in names {
            let p = dir.join(n);
            std::fs::create_dir(&p).ctx("creating probe dir", &p)?;
        }
        std::fs::write(dir.join("l2/f"), b"x").ctx("writing probe file", &dir)?;
        let w = WritableLayer {
            upper: dir.join("upper"),
            work: dir.join("work"),
            volatile: false,
        };
        let merged: PathBuf = dir.join("merged");
        overlay(
            &dir,
            &["l1".into(), "l2".into()],
            Some(&w),
            &merged,
            OverlayApi::New,
        )?;
        let seen = merged.join("f").is_file();
        unmount(&merged)?;
        if !seen {
            return Err(StoreError::io(
                "probing overlay at",
                &merged,
                std::io::Error::other("lower file not visible through the overlay"),
            ));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    drop(lock);
    result.map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        msg
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_are_unescaped() {
        assert_eq!(unescape_octal(r"/a\040b\011c\134d"), b"/a b\tc\\d");
        assert_eq!(unescape_octal(r"/plain\04"), br"/plain\04");
    }

    #[test]
    fn mount_points_below_a_dir_are_listed_but_not_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("with space");
        std::fs::create_dir(&point).unwrap();
        assert!(mount_points_under(dir.path()).unwrap().is_empty());
        // A mount only this test's thread sees would need a namespace; a bind mount is
        // visible to the whole test process, so it is undone at once.
        bind(dir.path(), &point, true).unwrap();
        let found = mount_points_under(dir.path());
        unmount(&point).unwrap();
        assert_eq!(found.unwrap(), vec![point]);
    }
}
