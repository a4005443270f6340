//! `cp` in both directions and `export`, with Docker's rules for what lands where.
//!
//! Every container-side path is located inside the container's root ([`crate::path_in_root`]);
//! the source is streamed as a tar written through directory descriptors
//! ([`crate::archive`]) and applied at the destination by strata-layer's `apply_layer`,
//! which resolves every entry inside the directory it extracts into. A stopped overlay
//! container is written through a detached writable overlay, so the bytes land in its upper
//! dir exactly as if a process inside had written them (copy-up, whiteouts, opaque dirs); a
//! running one through `/proc/<pid>/root`.
//!
//! Docker's placement rules (`docker cp SRC DEST`):
//! - SRC is a file: DEST an existing directory → `DEST/basename(SRC)`; DEST missing → the
//!   file is created as DEST (a DEST ending in `/` must exist); DEST an existing file → it is
//!   overwritten.
//! - SRC is a directory: DEST missing → created as a copy of SRC; DEST an existing
//!   directory → `DEST/basename(SRC)`, or with SRC ending in `/.` SRC's contents go into DEST;
//!   DEST an existing file → error.
//! - `-` as DEST writes a tar of SRC to the output; `-` as SRC extracts a tar into DEST, which
//!   must be a directory.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use strata_layer::{apply_layer, ApplyOptions, WhiteoutMode};
use strata_store::Store;

use crate::archive::{Owners, TreeArchive};
use crate::error::ContainerError;
use crate::path_in_root::{locate, open_located_dir, Located};
use crate::record::Container;
use crate::view::{container_view, running_pid, Access, FsView};

/// `cp` flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-a`: keep uid/gid; otherwise copies are owned by root (into a container) or by the
    /// user running strata (onto the host).
    pub archive: bool,
    /// `-L`: follow a symlink named as the source.
    pub follow_link: bool,
}

/// One side of a copy: a root directory and a path inside it.
struct Side<'a> {
    root: &'a OwnedFd,
    /// As the user wrote it (trailing `/` and `/.` matter).
    path: &'a str,
    /// How errors name this side: `container <id>` or `the host`.
    label: String,
}

impl Side<'_> {
    fn error(&self, reason: impl Into<String>) -> ContainerError {
        ContainerError::ContainerPath {
            id: self.label.clone(),
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }

    fn locate(&self, follow: bool) -> Result<Located, ContainerError> {
        locate(self.root, Path::new(self.path), follow).map_err(|e| self.errno(e))
    }

    fn errno(&self, e: rustix::io::Errno) -> ContainerError {
        match e {
            rustix::io::Errno::NOENT => self.error("no such file or directory"),
            e => self.error(std::io::Error::from(e).to_string()),
        }
    }
}

/// Where the source goes: a directory to extract into and the name its top entry gets there
/// (empty: the source's contents go straight into the directory).
struct Placement {
    dir: OwnedFd,
    name: PathBuf,
}

/// `cp CTR:SRC HOST_DEST`.
pub fn copy_from_container(
    store: &Store,
    c: &Container,
    src: &str,
    dest: &Path,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let view = container_view(store, c, Access::Read)?;
    let host_root = host_root()?;
    let dest_text = host_text(dest)?;
    let from = container_side(c, &view, src);
    let to = Side {
        root: &host_root,
        path: &dest_text,
        label: "the host".to_owned(),
    };
    copy(&from, &to, opts, Owners::Keep, running_pid(c).is_some())
}

/// `cp HOST_SRC CTR:DEST`.
pub fn copy_into_container(
    store: &Store,
    c: &Container,
    src: &Path,
    dest: &str,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let view = container_view(store, c, Access::Write)?;
    let host_root = host_root()?;
    let src_text = host_text(src)?;
    let from = Side {
        root: &host_root,
        path: &src_text,
        label: "the host".to_owned(),
    };
    let owners = if opts.archive {
        Owners::Keep
    } else {
        Owners::Root
    };
    copy(&from, &container_side(c, &view, dest), opts, owners, false)
}

/// `cp CTR:SRC -`: a tar of SRC (named by its base name) to `out`.
pub fn copy_from_container_to_tar(
    store: &Store,
    c: &Container,
    src: &str,
    out: impl Write,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let view = container_view(store, c, Access::Read)?;
    let from = container_side(c, &view, src);
    let located = source(&from, opts)?;
    let name = match located.base_name() {
        n if n.is_empty() => PathBuf::from("."),
        n => PathBuf::from(OsStr::from_bytes(&n)),
    };
    let archive_err = |source| ContainerError::Archive {
        action: "archiving",
        id: c.id.clone(),
        source,
    };
    let mut tar = TreeArchive::new(out, Owners::Keep);
    if running_pid(c).is_some() {
        tar.stay_on_mount_of(&located.parent, &located.name)
            .map_err(archive_err)?;
    }
    tar.add(&located.parent, &located.name, &name)
        .map_err(archive_err)?;
    tar.finish()
        .map_err(archive_err)?
        .flush()
        .map_err(archive_err)
}

/// `cp - CTR:DEST`: extracts a tar into the directory DEST.
pub fn copy_tar_into_container(
    store: &Store,
    c: &Container,
    tar: impl Read,
    dest: &str,
    opts: CopyOptions,
) -> Result<(), ContainerError> {
    let view = container_view(store, c, Access::Write)?;
    let to = container_side(c, &view, dest);
    let located = to.locate(true)?;
    if located.kind().map_err(|e| to.errno(e))? != Some(FileType::Directory) {
        return Err(to.error("the destination of a tar stream must be an existing directory"));
    }
    let dir = open_located_dir(&located).map_err(|e| to.errno(e))?;
    extract(tar, &dir, opts, &to)
}

/// `export`: the container's whole filesystem as a tar (uid/gid kept; for a running container
/// only its root filesystem, not /proc, /dev, volumes or bind mounts, as Docker does).
pub fn export(store: &Store, c: &Container, out: impl Write) -> Result<(), ContainerError> {
    let view = container_view(store, c, Access::Read)?;
    let archive_err = |source| ContainerError::Archive {
        action: "exporting the filesystem",
        id: c.id.clone(),
        source,
    };
    let mut tar = TreeArchive::new(out, Owners::Keep);
    tar.stay_on_mount_of(view.fd(), OsStr::new("."))
        .map_err(archive_err)?;
    tar.add(view.fd(), OsStr::new("."), Path::new(""))
        .map_err(archive_err)?;
    tar.finish()
        .map_err(archive_err)?
        .flush()
        .map_err(archive_err)
}

fn container_side<'a>(c: &Container, view: &'a FsView, path: &'a str) -> Side<'a> {
    Side {
        root: view.fd(),
        path,
        label: format!("container {}", c.short_id()),
    }
}

fn host_root() -> Result<OwnedFd, ContainerError> {
    rustix::fs::open(
        "/",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening", "/")(e.into()))
}

/// A host path made absolute (relative to the working directory), keeping a trailing `/`.
fn host_text(path: &Path) -> Result<String, ContainerError> {
    let absolute = std::path::absolute(path).map_err(ContainerError::io("resolving", path))?;
    let mut text = absolute
        .to_str()
        .ok_or_else(|| ContainerError::HostPath {
            path: path.to_path_buf(),
            reason: "the path is not valid UTF-8".to_owned(),
        })?
        .to_owned();
    let given = path.as_os_str().as_bytes();
    if given.ends_with(b"/.") && !text.ends_with("/.") {
        text.push_str("/.");
    } else if given.ends_with(b"/") && !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

/// The source entry, checked against Docker's trailing-slash rules.
fn source(from: &Side<'_>, opts: CopyOptions) -> Result<Located, ContainerError> {
    let located = from.locate(opts.follow_link)?;
    let kind = located.kind().map_err(|e| from.errno(e))?;
    let Some(kind) = kind else {
        return Err(from.error("no such file or directory"));
    };
    if (from.path.ends_with('/') || from.path.ends_with("/.")) && kind != FileType::Directory {
        return Err(from.error("not a directory"));
    }
    Ok(located)
}

/// Docker's rules: where the source goes on the destination side.
fn place(
    src: &Located,
    src_is_dir: bool,
    contents_only: bool,
    to: &Side<'_>,
) -> Result<Placement, ContainerError> {
    let dest = to.locate(true)?;
    let dest_kind = dest.kind().map_err(|e| to.errno(e))?;
    let src_name = PathBuf::from(OsStr::from_bytes(&src.base_name()));
    let dest_name = PathBuf::from(&dest.name);
    match dest_kind {
        Some(FileType::Directory) => {
            let dir = open_located_dir(&dest).map_err(|e| to.errno(e))?;
            let name = if src_is_dir && (contents_only || src_name.as_os_str().is_empty()) {
                PathBuf::new()
            } else {
                src_name
            };
            Ok(Placement { dir, name })
        }
        Some(_) if src_is_dir => Err(to.error("cannot copy a directory to a file")),
        Some(_) => Ok(Placement {
            dir: dest.parent,
            name: dest_name,
        }),
        None if to.path.ends_with('/') => {
            Err(to.error("no such directory (a destination ending in / must exist)"))
        }
        None => Ok(Placement {
            dir: dest.parent,
            name: dest_name,
        }),
    }
}

/// Copies `from` to `to`; `one_mount` keeps the walk on the source's mount (a running
/// container's /proc and /dev are not files to copy).
fn copy(
    from: &Side<'_>,
    to: &Side<'_>,
    opts: CopyOptions,
    owners: Owners,
    one_mount: bool,
) -> Result<(), ContainerError> {
    let src = source(from, opts)?;
    let src_is_dir = src.kind().map_err(|e| from.errno(e))? == Some(FileType::Directory);
    let contents_only = from.path.ends_with("/.");
    let placement = place(&src, src_is_dir, contents_only, to)?;
    let (reader, writer) =
        std::io::pipe().map_err(ContainerError::io("creating a pipe for", "cp"))?;
    let (src, name) = (&src, &placement.name);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> std::io::Result<()> {
            let mut tar = TreeArchive::new(writer, owners);
            if one_mount {
                tar.stay_on_mount_of(&src.parent, &src.name)?;
            }
            tar.add(&src.parent, &src.name, name)?;
            tar.finish()?.flush()
        });
        let applied = extract(reader, &placement.dir, opts, to);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the archiving thread panicked")));
        // A failed producer explains a failed extraction better than the truncated stream.
        produced.map_err(|e| from.error(format!("reading: {e}")))?;
        applied
    })
}

/// Applies a tar under `dir`, every entry resolved inside it.
fn extract(
    tar: impl Read,
    dir: &OwnedFd,
    opts: CopyOptions,
    to: &Side<'_>,
) -> Result<(), ContainerError> {
    let root = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(dir)
    ));
    let apply = ApplyOptions {
        whiteouts: WhiteoutMode::Remove,
        preserve_owners: opts.archive,
    };
    let mut tar = tar;
    let result = apply_layer(&mut tar, &root, &apply);
    // Drain what is left so a producer writing into a pipe is never stuck.
    let _ = std::io::copy(&mut tar, &mut std::io::sink());
    result
        .map(|_| ())
        .map_err(|e| to.error(strata_exit::ErrorChain(&e).to_string()))
}
