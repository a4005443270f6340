//! A tar of one subtree, read through directory descriptors only: every entry is opened with
//! `O_NOFOLLOW` relative to the descriptor of the directory it was listed in, and its header
//! comes from `fstat` of what was opened. A running container that swaps a directory for a
//! symlink mid-walk makes an open fail; it can never make strata read a host file (the race
//! behind Docker's CVE-2018-15664). Used by `export` and both directions of `cp`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{fstat, statat, AtFlags, FileType, Mode, OFlags, Stat, StatxFlags};
use tar::{EntryType, Header};

/// Who owns the entries in the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owners {
    /// Numeric uid/gid as on disk (`export`, `cp -a`).
    Keep,
    /// Everything owned by 0:0 (Docker's `cp` without `-a`).
    Root,
}

/// Writes tar entries for one tree; call [`TreeArchive::finish`] once done.
pub(crate) struct TreeArchive<W: Write> {
    tar: tar::Builder<W>,
    owners: Owners,
    /// (dev, inode) of multiply-linked files → the name they were first written under.
    links: HashMap<(u64, u64), PathBuf>,
    /// When set, entries on any other mount (a running container's /proc, /dev, bind-mounted
    /// files, volumes) are left out.
    mount: Option<u64>,
}

impl<W: Write> TreeArchive<W> {
    pub(crate) fn new(out: W, owners: Owners) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        TreeArchive {
            tar,
            owners,
            links: HashMap::new(),
            mount: None,
        }
    }

    /// Leaves out everything not on the mount that `parent`/`name` is on.
    pub(crate) fn stay_on_mount_of(&mut self, parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
        self.mount = Some(mount_id(parent, name)?);
        Ok(())
    }

    /// Adds `name` (inside directory `parent`) as `tar_name` and, if it is a directory,
    /// everything below it. An empty `tar_name` writes only the directory's contents (the
    /// root of an export, `cp SRC/. DEST`).
    pub(crate) fn add(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        tar_name: &Path,
    ) -> io::Result<()> {
        if let Some(mount) = self.mount {
            if mount_id(parent, name)? != mount {
                return Ok(());
            }
        }
        let st = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let dir = rustix::fs::openat(
                    parent,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let st = fstat(&dir)?;
                if !tar_name.as_os_str().is_empty() {
                    let mut header = self.header(&st, EntryType::Directory);
                    self.tar.append_data(&mut header, tar_name, io::empty())?;
                }
                for child in sorted_names(&dir)? {
                    self.add(&dir, &child, &tar_name.join(&child))?;
                }
                Ok(())
            }
            FileType::RegularFile => self.file(parent, name, tar_name),
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(parent, name, Vec::new())?;
                let mut header = self.header(&st, EntryType::Symlink);
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                self.tar.append_link(&mut header, tar_name, target)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let kind = match FileType::from_raw_mode(st.st_mode) {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut header = self.header(&st, kind);
                if kind != EntryType::Fifo {
                    header.set_device_major(rustix::fs::major(st.st_rdev))?;
                    header.set_device_minor(rustix::fs::minor(st.st_rdev))?;
                }
                self.tar.append_data(&mut header, tar_name, io::empty())
            }
            // Sockets cannot be archived; Docker skips them too.
            _ => Ok(()),
        }
    }

    fn file(&mut self, parent: &OwnedFd, name: &OsStr, tar_name: &Path) -> io::Result<()> {
        // NONBLOCK: if the entry was swapped for a FIFO since it was listed, do not hang.
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::other(format!(
                "{} changed while it was being archived",
                tar_name.display()
            )));
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut header = self.header(&st, EntryType::Link);
                return self.tar.append_link(&mut header, tar_name, first);
            }
            self.links.insert(key, tar_name.to_path_buf());
        }
        let mut header = self.header(&st, EntryType::Regular);
        let size = u64::try_from(st.st_size).unwrap_or(0);
        header.set_size(size);
        // Exactly `size` bytes whatever happens to the file meanwhile: a tar entry cannot
        // change its length after its header.
        let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
        self.tar.append_data(&mut header, tar_name, data)
    }

    fn header(&self, st: &Stat, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = match self.owners {
            Owners::Keep => (u64::from(st.st_uid), u64::from(st.st_gid)),
            Owners::Root => (0, 0),
        };
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.tar.into_inner()
    }
}

fn mount_id(parent: &OwnedFd, name: &OsStr) -> io::Result<u64> {
    let stx = rustix::fs::statx(parent, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)?;
    Ok(stx.stx_mnt_id)
}

/// The names in a directory, sorted by their bytes, without `.` and `..`.
fn sorted_names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir.as_fd())? {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(OsStr::from_bytes(bytes).to_owned());
        }
    }
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Vec<(String, EntryType, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let kind = e.header().entry_type();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default();
                let mut body = String::new();
                e.read_to_string(&mut body).unwrap();
                (name, kind, if link.is_empty() { body } else { link })
            })
            .collect()
    }

    #[test]
    fn archives_a_tree_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("b")).unwrap();
        std::fs::write(src.join("b/f"), "data").unwrap();
        std::fs::hard_link(src.join("b/f"), src.join("hl")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("a-link")).unwrap();
        std::os::unix::fs::symlink("/", src.join("root-link")).unwrap();
        let parent =
            rustix::fs::open(t.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let mut archive = TreeArchive::new(Vec::new(), Owners::Root);
        archive
            .add(&parent, OsStr::new("src"), Path::new("top"))
            .unwrap();
        let tar = archive.finish().unwrap();
        let got = entries(&tar);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "top",
                "top/a-link",
                "top/b",
                "top/b/f",
                "top/hl",
                "top/root-link"
            ]
        );
        assert_eq!(
            got[1],
            (
                "top/a-link".into(),
                EntryType::Symlink,
                "/etc/shadow".into()
            )
        );
        assert_eq!(got[3].2, "data");
        assert_eq!(got[4], ("top/hl".into(), EntryType::Link, "top/b/f".into()));
        assert_eq!(
            got[5].1,
            EntryType::Symlink,
            "a symlink to / is not descended"
        );
    }
}
