//! Shared test fixtures: hand-built tars and filesystem snapshots.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

/// Builds tars header by header, so tests can say things no honest writer would.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar::default()
    }

    /// One ustar entry; `name` and `link` go into the header verbatim (at most 100 bytes).
    pub fn entry(
        &mut self,
        name: &[u8],
        kind: EntryType,
        mode: u32,
        data: &[u8],
        link: &[u8],
    ) -> &mut Self {
        let mut h = Header::new_ustar();
        fill(&mut h, name, kind, mode, data.len() as u64, link);
        self.push(&h, data)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name.as_bytes(), EntryType::Regular, 0o644, data, b"")
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name.as_bytes(), EntryType::Directory, 0o755, b"", b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Symlink,
            0o777,
            b"",
            target.as_bytes(),
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(
            name.as_bytes(),
            EntryType::Link,
            0o644,
            b"",
            target.as_bytes(),
        )
    }

    /// A PAX extended header carrying `records`, for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while rest + len.to_string().len() != len {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        fill(
            &mut h,
            b"PaxHeaders.0/x",
            EntryType::XHeader,
            0,
            data.len() as u64,
            b"",
        );
        self.push(&h, &data)
    }

    /// A GNU `L` (long name) or `K` (long link) record for the next entry.
    pub fn gnu_long(&mut self, kind: u8, value: &[u8]) -> &mut Self {
        let mut data = value.to_vec();
        data.push(0);
        let mut h = Header::new_gnu();
        fill(
            &mut h,
            b"././@LongLink",
            EntryType::new(kind),
            0,
            data.len() as u64,
            b"",
        );
        self.push(&h, &data)
    }

    pub fn push(&mut self, h: &Header, data: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(h.as_bytes());
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// The archive with its two end blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out.extend_from_slice(&[0; 1024]);
        out
    }
}

pub fn fill(h: &mut Header, name: &[u8], kind: EntryType, mode: u32, size: u64, link: &[u8]) {
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    h.as_old_mut().linkname[..l].copy_from_slice(&link[..l]);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    if h.as_ustar().is_some() {
        h.set_device_major(0).unwrap();
        h.set_device_minor(0).unwrap();
    }
    h.set_cksum();
}

/// What a test compares about one filesystem entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub content: Vec<u8>,
    pub link: Vec<u8>,
    pub rdev: u64,
    pub nlink: u64,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Every entry under `dir` (not `dir` itself), keyed by relative path, never following links.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let md = fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let node = Node {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            content: if ft.is_file() {
                fs::read(&path).unwrap()
            } else {
                Vec::new()
            },
            link: if ft.is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            } else {
                Vec::new()
            },
            rdev: md.rdev(),
            nlink: if ft.is_dir() { 0 } else { md.nlink() },
            xattrs: xattrs(&path),
        };
        out.insert(path.strip_prefix(base).unwrap().to_path_buf(), node);
        if ft.is_dir() {
            walk(base, &path, out);
        }
    }
}

pub fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut list = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut list[..]).unwrap_or(0);
    let mut out = BTreeMap::new();
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 4096];
        let cname = std::ffi::OsStr::from_bytes(name);
        let m = rustix::fs::lgetxattr(path, cname, &mut value[..]).unwrap();
        out.insert(name.to_vec(), value[..m].to_vec());
    }
    out
}

/// A scratch area with a sentinel directory beside the root an attack tar is applied to.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        fs::create_dir(outside.join("dir")).unwrap();
        fs::write(outside.join("dir/inner"), b"inner").unwrap();
        World { tmp, root, outside }
    }

    /// The whole scratch area except the root: what no layer may ever change.
    pub fn sentinel(&self) -> BTreeMap<PathBuf, Node> {
        let mut snap = snapshot(&self.outside);
        let md = fs::symlink_metadata(&self.outside).unwrap();
        snap.insert(
            PathBuf::from("."),
            Node {
                kind: "dir",
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                content: Vec::new(),
                link: Vec::new(),
                rdev: 0,
                nlink: 0,
                xattrs: xattrs(&self.outside),
            },
        );
        // Nothing new may appear beside root and outside either.
        for entry in fs::read_dir(self.tmp.path()).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                name == "root" || name == "outside",
                "{name:?} appeared outside the root"
            );
        }
        snap
    }

    /// `outside` as an absolute path without its leading `/`.
    pub fn outside_rel(&self) -> String {
        self.outside
            .to_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string()
    }
}
