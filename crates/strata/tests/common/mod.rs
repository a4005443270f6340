//! Shared harness of the end-to-end tests: a fresh store root per test, the real `strata`
//! binary, and a busybox rootfs tar made from Debian's busybox-static.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) mod distribution;

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

    /// `strata --root <this test's root> args…`. `STRATA_TEST_BIN` runs another build of
    /// strata instead (e.g. main's, to show that a new test fails there).
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let program = std::env::var_os("STRATA_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_strata").into());
        let mut c = Command::new(program);
        c.arg("--root").arg(self.root()).args(args);
        c.env_remove("STRATA_ROOT")
            .env_remove("STRATA_STORAGE_DRIVER")
            // Registry credentials and settings of this test only, never the machine's.
            .env("DOCKER_CONFIG", self.path("docker-config"))
            .env("STRATA_REGISTRIES_CONFIG", self.path("registries.toml"));
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
        let tar = strata_testkit::busybox::rootfs_tar();
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

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
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

/// A command running on a fresh pseudo-terminal, as a user at a terminal runs it: the pty's
/// slave is its stdin, stdout, stderr and controlling terminal (own session). Everything it
/// writes is collected by a thread; `send` types into it.
pub(crate) struct Pty {
    master: std::fs::File,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    child: std::process::Child,
}

impl Pty {
    pub(crate) fn spawn(mut command: Command) -> Pty {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty fills both descriptors on success; a 100×30 window.
        let size = libc::winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptors from openpty, owned here only.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: setsid and ioctl are async-signal-safe; the child makes the pty (its stdin)
        // its controlling terminal, as a login shell's terminal is.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn on a pty");
        drop(command); // our copies of the slave: EIO on the master once the child's are gone
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (sink, mut reader) = (output.clone(), master.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            output,
            child,
        }
    }

    /// Everything written to the terminal so far, lossily as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal shows `needle`; panics with the screen after `timeout`.
    pub(crate) fn wait_for(&self, needle: &str, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.text().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "the terminal never showed {needle:?}; it shows:\n{}",
                self.text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Types `input` at the terminal.
    pub(crate) fn send(&mut self, input: &str) {
        use std::io::Write;
        self.master.write_all(input.as_bytes()).unwrap();
    }

    /// Waits for the command to exit (killing it after `timeout`).
    pub(crate) fn wait(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the command did not exit; the terminal shows:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
