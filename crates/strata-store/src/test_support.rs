//! Test fixtures: layer tars, temp stores, image records and child-process helpers.

use std::io::Read;
use std::path::Path;

use crate::{DriverKind, ImageRecord, LayerRecord, Store, StoreOptions};

/// One entry of a test layer: a dir, or a file with its bytes (whiteouts are files
/// named `.wh.x` / `.wh..wh..opq`).
pub(crate) enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
}

/// A deterministic uncompressed layer tar.
pub(crate) fn layer_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_path(p).unwrap();
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            Entry::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.set_path(p).unwrap();
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub(crate) fn open_store(root: &Path, driver: DriverKind) -> Store {
    Store::open(
        root,
        &StoreOptions {
            driver: Some(driver),
        },
    )
    .unwrap()
}

/// Ingests a config and one layer per `layers` entry; returns the record (not yet put).
pub(crate) fn ingest_image(store: &Store, config: &[u8], layers: &[&[u8]]) -> ImageRecord {
    let (id, _) = store.content().ingest(config, None).unwrap();
    let layers = layers
        .iter()
        .map(|l| {
            let (d, size) = store.content().ingest(*l, None).unwrap();
            LayerRecord {
                diff_id: d.clone(),
                blob: d,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                blob_size: size,
            }
        })
        .collect();
    ImageRecord {
        id,
        manifest: None,
        layers,
        created: None,
        added_at: 1,
        parent: None,
    }
}

/// A reader that counts what was read from it.
pub(crate) struct CountingReader<R> {
    pub(crate) inner: R,
    pub(crate) count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Env var telling a re-executed test binary which child role to play.
pub(crate) const CHILD_ROLE: &str = "STRATA_STORE_TEST_CHILD";
pub(crate) const CHILD_ROOT: &str = "STRATA_STORE_TEST_ROOT";

/// Spawns this test binary running only the test `name` in child role `role` on `root`.
pub(crate) fn spawn_child(name: &str, role: &str, root: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .env(CHILD_ROOT, root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The role and root when running as a child, else None (the test is then a no-op).
pub(crate) fn child_role() -> Option<(String, std::path::PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let root = std::env::var_os(CHILD_ROOT)?;
    Some((role, root.into()))
}

/// Polls `cond` every 10 ms up to `secs` seconds.
pub(crate) fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}
