//! `diff`: what a container changed in its image's filesystem, as Docker's `docker diff`
//! reports it (`A`dded, `C`hanged, `D`eleted paths).
//!
//! overlay: the upper dir is the change set — a char device 0:0 is a deletion, an opaque
//! directory hides (deletes) everything the image had in it, anything else is an addition
//! or, when the image has the path, a change. vfs: the container's full copy is compared with
//! the image's snapshot, field by field as Docker's naive differ does. A directory the image
//! has is listed as changed when its own metadata differs or anything inside it changed, so
//! every change comes with its parents. The list is in walk order with each directory's
//! names sorted by their bytes (Docker lists in readdir order, which no two filesystems share).

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{statat, AtFlags, FileType, Mode, OFlags, Stat};
use strata_store::{DriverKind, Store};

use crate::error::ContainerError;
use crate::record::Container;
use crate::view::image_view;

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// Docker's letter: `A`, `C` or `D`.
    pub fn letter(self) -> char {
        match self {
            Self::Added => 'A',
            Self::Changed => 'C',
            Self::Deleted => 'D',
        }
    }
}

/// One line of `diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path inside the container.
    pub path: PathBuf,
}

/// The changes container `c` made to its image's filesystem.
pub fn changes(store: &Store, c: &Container) -> Result<Vec<Change>, ContainerError> {
    let upper = c.paths().upper;
    let image = image_view(store, c.config.chain_id.as_ref())?;
    let lower = image.as_ref().map(|v| v.fd());
    let upper_fd = open_dir(&upper).map_err(|e| ContainerError::io("opening", &upper)(e.into()))?;
    let io_err =
        |e: rustix::io::Errno| ContainerError::io("comparing the filesystem of", &c.dir)(e.into());
    let mut out = Vec::new();
    match store.driver() {
        DriverKind::Overlay => {
            overlay_changes(&upper_fd, lower, Path::new("/"), false, &mut out).map_err(io_err)?
        }
        DriverKind::Vfs => {
            let populated = rustix::fs::Dir::read_from(&upper_fd)
                .map_err(io_err)?
                .filter_map(Result::ok)
                .any(|e| !matches!(e.file_name().to_bytes(), b"." | b".."));
            // A vfs container that never started has no copy yet: nothing changed.
            if populated {
                tree_changes(&upper_fd, lower, Path::new("/"), &mut out).map_err(io_err)?;
            }
        }
    }
    Ok(out)
}

fn open_dir(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn open_subdir(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn lstat_at(dir: Option<&OwnedFd>, name: &OsStr) -> rustix::io::Result<Option<Stat>> {
    let Some(dir) = dir else { return Ok(None) };
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e),
    }
}

fn names(dir: &OwnedFd) -> rustix::io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes != b"." && bytes != b".." {
            out.push(OsStr::from_bytes(bytes).to_owned());
        }
    }
    Ok(out)
}

/// Sorted union of two name lists.
fn union(mut a: Vec<OsString>, b: Vec<OsString>) -> Vec<OsString> {
    a.extend(b);
    a.sort_unstable_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    a.dedup();
    a
}

fn kind(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Docker's `sameFsTime`: equal, or equal seconds with one side lacking nanoseconds (a tar
/// round trip drops them).
fn same_time(a: &Stat, b: &Stat) -> bool {
    a.st_mtime == b.st_mtime
        && (a.st_mtime_nsec == b.st_mtime_nsec || a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0)
}

fn is_whiteout(st: &Stat) -> bool {
    kind(st) == FileType::CharacterDevice && st.st_rdev == 0
}

fn is_opaque(dir: &OwnedFd) -> bool {
    let mut buf = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(rustix::fs::fgetxattr(dir, *name, &mut buf), Ok(1) if buf[0] == b'y'))
}

/// Walks one directory of an overlay upper dir (`upper`), against the image's `lower`.
/// Below an opaque directory (`under_opaque`) nothing of the image shows through.
fn overlay_changes(
    upper: &OwnedFd,
    lower: Option<&OwnedFd>,
    dir: &Path,
    under_opaque: bool,
    out: &mut Vec<Change>,
) -> rustix::io::Result<()> {
    let own = names(upper)?;
    let opaque = under_opaque || (dir != Path::new("/") && is_opaque(upper));
    let hidden = match (opaque, lower) {
        (true, Some(l)) => names(l)?,
        _ => Vec::new(),
    };
    for name in union(own, hidden) {
        let path = dir.join(&name);
        let below = lstat_at(lower, &name)?;
        let Some(st) = lstat_at(Some(upper), &name)? else {
            // Only in the image, under an opaque directory: removed with it.
            out.push(Change {
                kind: ChangeKind::Deleted,
                path,
            });
            continue;
        };
        if is_whiteout(&st) {
            if below.is_some() {
                out.push(Change {
                    kind: ChangeKind::Deleted,
                    path,
                });
            }
            continue;
        }
        if kind(&st) != FileType::Directory {
            let kind = if below.is_some() {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            };
            out.push(Change { kind, path });
            continue;
        }
        let sub = open_subdir(upper, &name)?;
        let lower_sub = match &below {
            Some(b) if kind(b) == FileType::Directory => {
                lower.map(|l| open_subdir(l, &name)).transpose()?
            }
            _ => None,
        };
        let mut inner = Vec::new();
        overlay_changes(&sub, lower_sub.as_ref(), &path, opaque, &mut inner)?;
        match &below {
            None => out.push(Change {
                kind: ChangeKind::Added,
                path,
            }),
            Some(b) => {
                let same = kind(b) == FileType::Directory
                    && b.st_mode == st.st_mode
                    && b.st_size == st.st_size
                    && same_time(b, &st);
                if same && inner.is_empty() {
                    continue;
                }
                out.push(Change {
                    kind: ChangeKind::Changed,
                    path,
                });
            }
        }
        out.append(&mut inner);
    }
    Ok(())
}

/// Docker's `statDifferent`: type and mode, owner, device; for non-directories also size
/// and mtime (a directory's are no measure of change).
fn stat_differs(a: &Stat, b: &Stat) -> bool {
    a.st_mode != b.st_mode
        || a.st_uid != b.st_uid
        || a.st_gid != b.st_gid
        || a.st_rdev != b.st_rdev
        || (kind(a) != FileType::Directory && (!same_time(a, b) || a.st_size != b.st_size))
}

/// Compares a full tree (`new`) with the image's (`old`), one directory at a time.
fn tree_changes(
    new: &OwnedFd,
    old: Option<&OwnedFd>,
    dir: &Path,
    out: &mut Vec<Change>,
) -> rustix::io::Result<()> {
    let old_names = match old {
        Some(o) => names(o)?,
        None => Vec::new(),
    };
    for name in union(names(new)?, old_names) {
        let path = dir.join(&name);
        let before = lstat_at(old, &name)?;
        let Some(now) = lstat_at(Some(new), &name)? else {
            out.push(Change {
                kind: ChangeKind::Deleted,
                path,
            });
            continue;
        };
        let changed = match &before {
            None => Some(ChangeKind::Added),
            Some(b) if stat_differs(b, &now) => Some(ChangeKind::Changed),
            Some(_) => None,
        };
        if kind(&now) != FileType::Directory {
            if let Some(kind) = changed {
                out.push(Change { kind, path });
            }
            continue;
        }
        let sub = open_subdir(new, &name)?;
        let old_sub = match (&before, old) {
            (Some(b), Some(o)) if kind(b) == FileType::Directory => Some(open_subdir(o, &name)?),
            _ => None,
        };
        let mut inner = Vec::new();
        tree_changes(&sub, old_sub.as_ref(), &path, &mut inner)?;
        match changed {
            Some(kind) => out.push(Change { kind, path }),
            None if !inner.is_empty() => out.push(Change {
                kind: ChangeKind::Changed,
                path,
            }),
            None => {}
        }
        out.append(&mut inner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path.display()))
            .collect()
    }

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
    }

    /// An image tree and an upper dir, as overlay leaves them after some shell commands.
    #[test]
    fn overlay_upper_dirs_diff_like_docker() {
        let t = tempfile::tempdir().unwrap();
        let (img, up) = (t.path().join("img"), t.path().join("upper"));
        for d in ["bin", "etc", "usr/lib", "tmp"] {
            std::fs::create_dir_all(img.join(d)).unwrap();
        }
        for f in [
            "bin/sh",
            "bin/vi",
            "etc/passwd",
            "etc/group",
            "usr/lib/a",
            "usr/lib/b",
        ] {
            std::fs::write(img.join(f), "x").unwrap();
        }
        // echo >> /etc/passwd; rm /bin/vi; rm -rf /usr/lib && mkdir /usr/lib && touch /usr/lib/n;
        // mkdir -p /a/b && touch /a/b/f; touch /a-b; rm /nothing-there (a stray whiteout)
        for d in ["etc", "bin", "usr/lib", "a/b"] {
            std::fs::create_dir_all(up.join(d)).unwrap();
        }
        std::fs::write(up.join("etc/passwd"), "xy").unwrap();
        whiteout(&up.join("bin/vi"));
        whiteout(&up.join("stray"));
        std::fs::write(up.join("usr/lib/n"), "").unwrap();
        rustix::fs::setxattr(
            up.join("usr/lib"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::fs::write(up.join("a/b/f"), "").unwrap();
        std::fs::write(up.join("a-b"), "").unwrap();
        let mut out = Vec::new();
        let lower = open_dir(&img).unwrap();
        overlay_changes(
            &open_dir(&up).unwrap(),
            Some(&lower),
            Path::new("/"),
            false,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            lines(&out),
            [
                "A /a",
                "A /a/b",
                "A /a/b/f",
                "A /a-b",
                "C /bin",
                "D /bin/vi",
                "C /etc",
                "C /etc/passwd",
                "C /usr",
                "C /usr/lib",
                "D /usr/lib/a",
                "D /usr/lib/b",
                "A /usr/lib/n",
            ]
        );
    }

    #[test]
    fn full_copies_diff_against_the_image_tree() {
        let t = tempfile::tempdir().unwrap();
        let (img, new) = (t.path().join("img"), t.path().join("new"));
        for root in [&img, &new] {
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::create_dir_all(root.join("var/cache")).unwrap();
            std::fs::write(root.join("etc/hosts"), "same").unwrap();
        }
        // Same content, same mtime: unchanged.
        let mtime = std::fs::metadata(img.join("etc/hosts"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(new.join("etc/hosts"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::write(img.join("etc/old"), "").unwrap();
        std::fs::write(new.join("var/cache/new"), "").unwrap();
        let mut out = Vec::new();
        let old = open_dir(&img).unwrap();
        tree_changes(
            &open_dir(&new).unwrap(),
            Some(&old),
            Path::new("/"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            lines(&out),
            [
                "C /etc",
                "D /etc/old",
                "C /var",
                "C /var/cache",
                "A /var/cache/new"
            ]
        );
    }
}
