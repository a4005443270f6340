//! RUN on the vfs driver: the container ran on a full copy of the parent snapshot, so its
//! changes are found by walking both trees. The result is written as an overlay-style change
//! directory (changed entries hard-linked from the new tree, parents as directories with the
//! new tree's metadata, deletions as 0/0 character devices), so the layer tar is made exactly
//! as for an overlay upper dir and gives the same diff_id.
//!
//! An entry counts as changed when its type, mode, owner, size, mtime (with nanoseconds),
//! link target, device number or xattrs differ; when every one of those is equal but the
//! mtime has no sub-second part (a filesystem that drops them), the contents are compared.
//! Not produced: opaque directories. A directory deleted and recreated shows up as
//! whiteouts of its old children plus its new ones (same files, different tar than overlay's
//! `.wh..wh..opq`).

use std::collections::BTreeSet;
use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::BuildError;

/// Writes the changes from `old` to `new` (two complete trees) into the empty dir `out`.
pub(crate) fn diff_trees(old: &Path, new: &Path, out: &Path) -> Result<(), BuildError> {
    let mut d = Differ {
        old,
        new,
        out,
        dirs: Vec::new(),
        made: BTreeSet::new(),
    };
    d.walk(Path::new(""))?;
    // Directory times last: creating children in them changed their mtimes.
    for (rel, md) in d.dirs.iter().rev() {
        set_times(&out.join(rel), md)?;
    }
    Ok(())
}

struct Differ<'a> {
    old: &'a Path,
    new: &'a Path,
    out: &'a Path,
    /// Directories made in `out`, with the metadata to restore on them.
    dirs: Vec<(PathBuf, Metadata)>,
    made: BTreeSet<PathBuf>,
}

impl Differ<'_> {
    fn walk(&mut self, rel: &Path) -> Result<(), BuildError> {
        let new_dir = self.new.join(rel);
        let old_dir = self.old.join(rel);
        let names = |dir: &Path| -> Result<BTreeSet<std::ffi::OsString>, BuildError> {
            fs::read_dir(dir)
                .map_err(BuildError::io("listing", dir))?
                .map(|e| {
                    e.map(|e| e.file_name())
                        .map_err(BuildError::io("listing", dir))
                })
                .collect()
        };
        let new_names = names(&new_dir)?;
        let old_names = names(&old_dir)?;
        for name in old_names.difference(&new_names) {
            self.whiteout(&rel.join(name))?;
        }
        for name in &new_names {
            let path = rel.join(name);
            let new_md = fs::symlink_metadata(self.new.join(&path))
                .map_err(BuildError::io("reading", self.new.join(&path)))?;
            let old_md = fs::symlink_metadata(self.old.join(&path)).ok();
            match old_md {
                Some(old_md) if old_md.is_dir() && new_md.is_dir() => {
                    if !same(
                        &self.old.join(&path),
                        &old_md,
                        &self.new.join(&path),
                        &new_md,
                    )? {
                        self.parents(&path)?;
                        self.dir(&path, new_md)?;
                    }
                    self.walk(&path)?;
                }
                Some(old_md)
                    if same(
                        &self.old.join(&path),
                        &old_md,
                        &self.new.join(&path),
                        &new_md,
                    )? => {}
                _ => self.added(&path, new_md)?,
            }
        }
        Ok(())
    }

    /// `rel` is new or replaced: it and (for a directory) everything below it.
    fn added(&mut self, rel: &Path, md: Metadata) -> Result<(), BuildError> {
        self.parents(rel)?;
        if md.is_dir() {
            self.dir(rel, md)?;
            let dir = self.new.join(rel);
            for entry in fs::read_dir(&dir).map_err(BuildError::io("listing", &dir))? {
                let entry = entry.map_err(BuildError::io("listing", &dir))?;
                let child = rel.join(entry.file_name());
                let md = fs::symlink_metadata(entry.path())
                    .map_err(BuildError::io("reading", entry.path()))?;
                self.added(&child, md)?;
            }
            return Ok(());
        }
        // Same inode as in the new tree: hardlinks among new files stay hardlinks.
        let (src, dst) = (self.new.join(rel), self.out.join(rel));
        fs::hard_link(&src, &dst).map_err(BuildError::io("linking", &dst))
    }

    fn whiteout(&mut self, rel: &Path) -> Result<(), BuildError> {
        self.parents(rel)?;
        let path = self.out.join(rel);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .map_err(|e| BuildError::Io {
            what: "creating a whiteout at",
            path,
            source: e.into(),
        })
    }

    /// Makes the parent dirs of `rel` in `out`, with their metadata in the new tree.
    fn parents(&mut self, rel: &Path) -> Result<(), BuildError> {
        let mut missing = Vec::new();
        let mut cur = rel.parent();
        while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
            if self.made.contains(p) {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        for p in missing.into_iter().rev() {
            let md = fs::symlink_metadata(self.new.join(&p))
                .map_err(BuildError::io("reading", self.new.join(&p)))?;
            self.dir(&p, md)?;
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path, md: Metadata) -> Result<(), BuildError> {
        if !self.made.insert(rel.to_path_buf()) {
            return Ok(());
        }
        let path = self.out.join(rel);
        fs::create_dir(&path).map_err(BuildError::io("creating directory", &path))?;
        std::os::unix::fs::lchown(&path, Some(md.uid()), Some(md.gid()))
            .map_err(BuildError::io("changing owner of", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(BuildError::io("changing mode of", &path))?;
        for (name, value) in xattrs(&self.new.join(rel))? {
            rustix::fs::lsetxattr(&path, &name, &value, rustix::fs::XattrFlags::empty()).map_err(
                |e| BuildError::Io {
                    what: "setting xattrs of",
                    path: path.clone(),
                    source: e.into(),
                },
            )?;
        }
        self.dirs.push((rel.to_path_buf(), md));
        Ok(())
    }
}

fn set_times(path: &Path, md: &Metadata) -> Result<(), BuildError> {
    let ts = rustix::fs::Timespec {
        tv_sec: md.mtime(),
        tv_nsec: md.mtime_nsec() as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| BuildError::Io {
        what: "setting the mtime of",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Whether an entry is unchanged between the trees.
fn same(old: &Path, a: &Metadata, new: &Path, b: &Metadata) -> Result<bool, BuildError> {
    let (ta, tb) = (a.file_type(), b.file_type());
    let kind = |t: fs::FileType| {
        (
            t.is_dir(),
            t.is_file(),
            t.is_symlink(),
            t.is_char_device(),
            t.is_block_device(),
            t.is_fifo(),
            t.is_socket(),
        )
    };
    if kind(ta) != kind(tb)
        || a.mode() != b.mode()
        || a.uid() != b.uid()
        || a.gid() != b.gid()
        || a.mtime() != b.mtime()
        || a.mtime_nsec() != b.mtime_nsec()
        || a.rdev() != b.rdev()
        || (!ta.is_dir() && a.size() != b.size())
    {
        return Ok(false);
    }
    if ta.is_symlink() && fs::read_link(old).ok() != fs::read_link(new).ok() {
        return Ok(false);
    }
    if xattrs(old)? != xattrs(new)? {
        return Ok(false);
    }
    if ta.is_file() && a.mtime_nsec() == 0 {
        return same_content(old, new);
    }
    Ok(true)
}

fn same_content(a: &Path, b: &Path) -> Result<bool, BuildError> {
    let mut fa = fs::File::open(a).map_err(BuildError::io("opening", a))?;
    let mut fb = fs::File::open(b).map_err(BuildError::io("opening", b))?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na =
            crate::archive::read_full(&mut fa, &mut ba).map_err(BuildError::io("reading", a))?;
        let nb =
            crate::archive::read_full(&mut fb, &mut bb).map_err(BuildError::io("reading", b))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// One extended attribute: name, value.
type Xattr = (Vec<u8>, Vec<u8>);

/// The xattrs of `path` (not following symlinks), sorted.
fn xattrs(path: &Path) -> Result<Vec<Xattr>, BuildError> {
    let err = |e: rustix::io::Errno| BuildError::Io {
        what: "reading xattrs of",
        path: path.to_path_buf(),
        source: e.into(),
    };
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, name, &mut value).map_err(err)?;
        value.truncate(len);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn adds_changes_and_deletions_become_an_upper_dir() {
        let root = tempfile::tempdir().unwrap();
        let (old, new, out) = (
            root.path().join("old"),
            root.path().join("new"),
            root.path().join("out"),
        );
        for d in [&old, &new] {
            fs::create_dir_all(d.join("etc/deep")).unwrap();
            fs::write(d.join("etc/keep"), "k").unwrap();
            fs::write(d.join("etc/deep/x"), "x").unwrap();
            symlink("keep", d.join("etc/link")).unwrap();
        }
        fs::write(old.join("gone"), "g").unwrap();
        fs::write(old.join("etc/deep/x"), "x").unwrap();
        // Same everything in both trees (cp -a style), then changes to `new`.
        let copy_times = |p: &Path| {
            let md = fs::symlink_metadata(old.join(p)).unwrap();
            set_times(&new.join(p), &md).unwrap();
        };
        for p in ["etc/keep", "etc/link", "etc/deep/x", "etc/deep", "etc"] {
            copy_times(Path::new(p));
        }
        fs::write(new.join("etc/deep/x"), "changed").unwrap();
        fs::create_dir(new.join("added")).unwrap();
        fs::write(new.join("added/a"), "a").unwrap();
        fs::hard_link(new.join("added/a"), new.join("added/b")).unwrap();
        fs::create_dir(&out).unwrap();

        diff_trees(&old, &new, &out).unwrap();
        let mut seen = Vec::new();
        for e in walk(&out) {
            seen.push(e.strip_prefix(&out).unwrap().to_string_lossy().into_owned());
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "added",
                "added/a",
                "added/b",
                "etc",
                "etc/deep",
                "etc/deep/x",
                "gone"
            ]
        );
        let gone = fs::symlink_metadata(out.join("gone")).unwrap();
        assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
        let (a, b) = (
            fs::metadata(out.join("added/a")).unwrap(),
            fs::metadata(out.join("added/b")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
        assert_eq!(fs::read(out.join("etc/deep/x")).unwrap(), b"changed");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
        out
    }

    #[test]
    fn equal_times_without_nanoseconds_compare_contents() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        fs::write(&a, "one").unwrap();
        fs::write(&b, "two").unwrap();
        let md = fs::metadata(&a).unwrap();
        let ts = rustix::fs::Timespec {
            tv_sec: md.mtime(),
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        };
        for p in [&a, &b] {
            rustix::fs::utimensat(rustix::fs::CWD, p, &times, rustix::fs::AtFlags::empty())
                .unwrap();
        }
        let (ma, mb) = (fs::metadata(&a).unwrap(), fs::metadata(&b).unwrap());
        assert!(!same(&a, &ma, &b, &mb).unwrap());
        fs::write(&b, "one").unwrap();
        rustix::fs::utimensat(rustix::fs::CWD, &b, &times, rustix::fs::AtFlags::empty()).unwrap();
        let mb = fs::metadata(&b).unwrap();
        assert!(same(&a, &ma, &b, &mb).unwrap());
    }
}
