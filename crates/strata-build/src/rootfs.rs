//! `RootfsView`: reading single paths of a stage's root filesystem straight from its snapshot
//! chain (no mount), for `/etc/passwd` lookups and "is the destination a directory?".

use std::collections::VecDeque;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use strata_inroot::clean_relative;
use strata_oci::Digest;
use strata_store::{DriverKind, Store};

use crate::BuildError;

/// Symlinks followed while resolving one path before giving up (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// The layers of one snapshot chain, top first.
#[derive(Debug, Clone, Default)]
pub(crate) struct RootfsView {
    dirs: Vec<PathBuf>,
}

impl RootfsView {
    /// The view of `chain` (None: an empty rootfs).
    pub(crate) fn open(store: &Store, chain: Option<&Digest>) -> Result<RootfsView, BuildError> {
        let snap = store.snapshotter();
        let mut dirs = Vec::new();
        let mut next = chain.cloned();
        while let Some(id) = next {
            let info = snap.info(&id)?.ok_or_else(|| {
                BuildError::at(0, format!("snapshot {id} is missing from the store"))
            })?;
            dirs.push(info.path.clone());
            // A vfs snapshot is a complete tree: its parents add nothing.
            if snap.kind() == DriverKind::Vfs {
                break;
            }
            next = info.parent;
        }
        Ok(RootfsView { dirs })
    }

    /// The metadata and host path of `path` (absolute in the rootfs), if it exists.
    /// Whiteouts in upper layers hide lower entries; opaque directories are not consulted
    /// (a lookup through one may see a lower layer's entry).
    pub(crate) fn lookup(&self, path: &str) -> Option<(PathBuf, Metadata)> {
        let rel = clean_relative(path);
        for dir in &self.dirs {
            let host = dir.join(&rel);
            if let Ok(md) = std::fs::symlink_metadata(&host) {
                if md.file_type().is_char_device() && md.rdev() == 0 {
                    return None;
                }
                return Some((host, md));
            }
        }
        None
    }

    /// `path` (absolute) with every symlink along it resolved inside the rootfs, as BuildKit
    /// resolves a COPY destination: `/lib/x` with `lib -> usr/lib` is `/usr/lib/x`. Absolute
    /// link targets start again at the rootfs root and `..` never climbs above it.
    pub(crate) fn resolve(&self, path: &str) -> String {
        let mut todo: VecDeque<String> = components(path);
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => done.push(c),
            }
            let current = format!("/{}", done.join("/"));
            let Some((host, md)) = self.lookup(&current) else {
                continue;
            };
            if !md.file_type().is_symlink() || hops >= MAX_LINK_HOPS {
                continue;
            }
            hops += 1;
            let Ok(target) = std::fs::read_link(&host) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            for (i, part) in components(&target).into_iter().enumerate() {
                todo.insert(i, part);
            }
        }
        format!("/{}", done.join("/"))
    }

    pub(crate) fn is_dir(&self, path: &str) -> bool {
        self.lookup(path).is_some_and(|(_, md)| md.is_dir())
    }

    pub(crate) fn read(&self, path: &str) -> Option<Vec<u8>> {
        let (host, md) = self.lookup(path)?;
        if !md.is_file() {
            return None;
        }
        std::fs::read(host).ok()
    }
}

#[cfg(test)]
impl RootfsView {
    pub(crate) fn from_dirs(dirs: Vec<PathBuf>) -> RootfsView {
        RootfsView { dirs }
    }
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/').map(str::to_string).collect()
}

/// `path` resolved against `workdir` and cleaned, always absolute (`/` for the root).
pub(crate) fn absolute(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", if workdir.is_empty() { "/" } else { workdir })
    };
    format!("/{}", clean_relative(&joined).to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_workdir() {
        for (wd, p, want) in [
            ("", "a", "/a"),
            ("/w", "a/b", "/w/a/b"),
            ("/w", "/x/../y", "/y"),
            ("/w", "../../..", "/"),
            ("/w/", "./c/", "/w/c"),
        ] {
            assert_eq!(absolute(wd, p), want, "{wd} {p}");
        }
    }

    #[test]
    fn symlinks_resolve_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/usr", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let view = RootfsView::from_dirs(vec![root.to_path_buf()]);
        for (path, want) in [
            ("/lib/x", "/usr/lib/x"),
            ("/abs/lib", "/usr/lib"),
            ("/usr/up/passwd", "/etc/passwd"),
            ("/missing/a", "/missing/a"),
            ("/loop/a", "/loop/a"),
        ] {
            assert_eq!(view.resolve(path), want, "{path}");
        }
    }
}
