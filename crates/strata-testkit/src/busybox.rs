//! The busybox base image: Debian's static busybox (`busybox-static`), its applet links and a
//! minimal `/etc/passwd` and `/etc/group`, as `scripts/make-busybox-rootfs` writes it. That
//! script is the one definition (the README's quickstart and the chaos script use it too);
//! tests get it as a tar, unpacked into a directory, or imported as `busybox:local`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use strata_image::{import_rootfs, ImportOptions};
use strata_oci::Reference;
use strata_store::Store;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The busybox rootfs tar, written once per test process by `scripts/make-busybox-rootfs`.
pub fn rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        assert!(
            Path::new("/bin/busybox").exists(),
            "these tests need Debian's busybox-static (/bin/busybox): run ./scripts/test, which installs it"
        );
        let dir = std::env::temp_dir().join(format!("strata-test-busybox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the busybox temp dir");
        let tar = dir.join("busybox-rootfs.tar");
        let status = Command::new(repo_root().join("scripts/make-busybox-rootfs"))
            .arg(&tar)
            .status()
            .expect("running scripts/make-busybox-rootfs");
        assert!(status.success(), "scripts/make-busybox-rootfs failed");
        tar
    })
}

/// The busybox rootfs unpacked into `dest` (created if missing), owners and modes kept.
pub fn unpack_rootfs(dest: &Path) {
    std::fs::create_dir_all(dest).expect("creating the rootfs dir");
    let file = std::fs::File::open(rootfs_tar()).expect("opening the busybox tar");
    let mut archive = tar::Archive::new(file);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.unpack(dest).expect("unpacking the busybox tar");
}

/// Imports the busybox rootfs into `store` as `busybox:local`.
pub fn import_into(store: &Store) {
    let opts = ImportOptions {
        changes: Vec::new(),
        message: None,
        source: "-".to_string(),
        tag: Some(Reference::parse("busybox:local").expect("a valid reference")),
        platform: None,
    };
    let file = std::fs::File::open(rootfs_tar()).expect("opening the busybox tar");
    import_rootfs(store, file, &opts).expect("importing busybox:local");
}
