//! Shared harness of the end-to-end tests: a fresh store root per test, the real `strata`
//! binary, and a busybox rootfs tar made from Debian's busybox-static.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("strata-e2e-")
                .tempdir_in(std::env::temp_dir())
                .expect("temp dir"),
        }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `strata --root <this test's root> args…`
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strata"));
        c.arg("--root").arg(self.root()).args(args);
        c.env_remove("STRATA_ROOT")
            .env_remove("STRATA_STORAGE_DRIVER");
        c.stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run strata")
    }

    /// Runs and asserts success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "strata {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "strata {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Imports the busybox rootfs as `busybox:local`; returns the image ID.
    pub(crate) fn import_busybox(&self) -> String {
        let tar = busybox_rootfs();
        self.ok(&[
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            tar.to_str().unwrap(),
            "busybox:local",
        ])
        .trim()
        .to_string()
    }
}

/// The repository's root directory.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A busybox rootfs tar, made once per test process by `scripts/make-busybox-rootfs`.
pub(crate) fn busybox_rootfs() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        assert!(
            Path::new("/bin/busybox").exists(),
            "these tests need Debian's busybox-static (/bin/busybox): run ./scripts/test, which installs it"
        );
        let dir = std::env::temp_dir().join(format!("strata-e2e-busybox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let tar = dir.join("busybox-rootfs.tar");
        let status = Command::new(repo_root().join("scripts/make-busybox-rootfs"))
            .arg(&tar)
            .status()
            .expect("run make-busybox-rootfs");
        assert!(status.success(), "make-busybox-rootfs failed");
        tar
    })
    .clone()
}

/// The parsed JSON of `strata inspect NAME`.
pub(crate) fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let text = env.ok(&["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("inspect prints JSON");
    v[0].clone()
}
