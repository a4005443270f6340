//! Shared harness of the end-to-end tests: a fresh store root per test, the real `strata`
//! binary, and a busybox rootfs tar made from Debian's busybox-static.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
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

/// One file of a layer: mode bits, uid, gid, content (link target for symlinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerNode {
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) mtime: u64,
    pub(crate) data: Vec<u8>,
}

/// Every layer of `image`, read back from `strata save`, as path → node.
pub(crate) fn saved_layers(env: &Env, image: &str) -> Vec<BTreeMap<String, LayerNode>> {
    let archive = env.path("saved.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), image]);
    let bytes = std::fs::read(&archive).unwrap();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in tar::Archive::new(&bytes[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut layer = BTreeMap::new();
            let data = &files[l.as_str().unwrap()];
            for entry in tar::Archive::new(&data[..]).entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string();
                let h = entry.header().clone();
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                if let Some(link) = entry.link_name().unwrap() {
                    content = link.to_string_lossy().as_bytes().to_vec();
                }
                layer.insert(
                    name,
                    LayerNode {
                        mode: h.mode().unwrap() & 0o7777,
                        uid: h.uid().unwrap(),
                        gid: h.gid().unwrap(),
                        mtime: h.mtime().unwrap(),
                        data: content,
                    },
                );
            }
            layer
        })
        .collect()
}

/// Writes `files` (path → content) under `dir`, making parent directories.
pub(crate) fn write_files<C: AsRef<[u8]>>(dir: &Path, files: &[(&str, C)]) {
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// A build context `ctx` in the test's directory holding `files`.
pub(crate) fn context<C: AsRef<[u8]>>(env: &Env, files: &[(&str, C)]) -> PathBuf {
    let dir = env.path("ctx");
    write_files(&dir, files);
    dir
}

/// `strata build -q -t tag dir`; the image id.
pub(crate) fn build(env: &Env, dir: &Path, tag: &str) -> String {
    env.ok(&["build", "-q", "-t", tag, dir.to_str().unwrap()])
        .trim()
        .to_string()
}

/// The pid of the monitor of container `id` (a strata process whose environment names it).
pub(crate) fn find_monitor(id: &str) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&environ);
        if text.contains("STRATA_CONTAINER_MONITOR") && text.contains(id) {
            return Some(pid);
        }
    }
    None
}
