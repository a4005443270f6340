//! Test fixture: the busybox rootfs every strata test uses (strata-testkit), with what these
//! isolation tests add to it, and an overlay over it.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Writes a rootfs at `root`: the busybox base, plus the mount points the runtime needs (so
/// nothing is created in an overlay's upper dir), /secret (root, 0600) and a user `app`
/// (1000:1000, also in groups 10 and 100).
pub(crate) fn make_busybox_rootfs(root: &Path) -> io::Result<()> {
    strata_testkit::busybox::unpack_rootfs(root);
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )?;
    fs::write(
        root.join("etc/group"),
        "root:x:0:\nwheel:x:10:app\napp:x:1000:\nusers:x:100:app\n",
    )?;
    for mount_point in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        fs::write(root.join(mount_point), "")?;
    }
    fs::write(root.join("secret"), "root only\n")?;
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// An overlay mount of `lower` with its own upper dir; unmounted on drop.
pub(crate) struct Overlay {
    pub(crate) merged: PathBuf,
    pub(crate) upper: PathBuf,
}

impl Overlay {
    pub(crate) fn mount(lower: &Path, base: &Path) -> io::Result<Self> {
        let upper = base.join("upper");
        let work = base.join("work");
        let merged = base.join("merged");
        for dir in [&upper, &work, &merged] {
            fs::create_dir_all(dir)?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let options = std::ffi::CString::new(options)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            options.as_c_str(),
        )?;
        Ok(Self { merged, upper })
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Every path under `root`, relative, sorted.
pub(crate) fn tree(root: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
            if entry.file_type()?.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
