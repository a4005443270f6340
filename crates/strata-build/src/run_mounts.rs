//! `RUN --mount`: turning each mount (cache, tmpfs, bind, secret) into a host directory or
//! file bind-mounted into the step's container, none of it ever part of the layer.
//!
//! - cache: a persistent directory under `<store>/build-cache-mounts/`, one per id (the target
//!   by default) and initial owner/mode/`from`, as BuildKit keys its cache mounts.
//!   `sharing=locked` holds an exclusive flock for the step; `private` takes the first instance
//!   nobody holds; `shared` (the default) uses instance 0 concurrently.
//! - tmpfs: a fresh empty directory in the build's temp area (not a memory filesystem: `size`
//!   is not enforced), dropped after the step.
//! - bind: the context's files (as filtered by `.dockerignore`) or a stage's / image's rootfs,
//!   read-only by default; `rw` gets a private copy whose writes are discarded. The source is
//!   resolved inside the context (or the rootfs) as if it were `/` (`openat2`
//!   `RESOLVE_IN_ROOT`), so no symlink leads to the host, and what it resolved to is held
//!   open and mounted as `/proc/<pid>/fd/<n>`: nothing can swap the path before the mount.
//!   A context source must be kept by `.dockerignore`, also when reached through a link.
//! - secret: the `--secret id=…,src=…` file copied with the mount's mode (0400) and owner,
//!   at `/run/secrets/<id>` by default, or exposed as an environment variable (`env=`).
//! - ssh: refused (no agent forwarding).
//!
//! The runtime removes mount points it had to create once the step ends, so targets that did
//! not exist leave no empty directory in the layer (as BuildKit since v0.12; Docker 20.10's
//! BuildKit left them).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use strata_context::{context_path, fs_path, hash_selection, ContextIndex, EntryKind, StatCache};
use strata_dockerfile::{CacheSharing, Mount, MountType};
use strata_inroot::open_in_root;
use strata_oci::{Digest, Sha256Hasher};

use crate::builder::{Builder, Session};
use crate::copy_files::{copy_into, copy_tree, CopySpec};
use crate::layer_commit::MountedRootfs;
use crate::op::{CopySource, PlannedStep, RunMountOp, RunOp};
use crate::owner::Owner;
use crate::rootfs::{absolute, RootfsView};
use crate::run_executor::RunMount;
use crate::BuildError;
use strata_inroot::clean_relative;

/// What the step's mounts need kept alive until the process has exited.
#[derive(Default)]
pub(crate) struct PreparedMounts {
    pub(crate) mounts: Vec<RunMount>,
    /// Secrets given as environment variables.
    pub(crate) env: Vec<(String, String)>,
    _locks: Vec<File>,
    _dirs: Vec<tempfile::TempDir>,
    _rootfs: Vec<MountedRootfs>,
    /// Resolved bind sources, named to the runtime as `/proc/<pid>/fd/<n>`.
    _fds: Vec<OwnedFd>,
}

impl PreparedMounts {
    /// Keeps `fd` open for the step and names it as a path: the mount then binds exactly
    /// the inode resolved, whatever is renamed or replaced along the path meanwhile.
    fn hold(&mut self, fd: OwnedFd) -> PathBuf {
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ));
        self._fds.push(fd);
        path
    }
}

impl Builder<'_> {
    /// Prepares the host side of every mount of a RUN in stage `stage`.
    pub(crate) fn prepare_mounts(
        &self,
        s: &Session<'_>,
        mounts: &[RunMountOp],
        workdir: &str,
        line: usize,
    ) -> Result<PreparedMounts, BuildError> {
        let mut out = PreparedMounts::default();
        for RunMountOp { mount: m, from } in mounts {
            let target = m.target.as_deref().map(|t| absolute(workdir, t));
            match m.kind {
                MountType::Ssh => {
                    return Err(BuildError::Unsupported {
                        line,
                        instruction: "RUN",
                        what: "--mount=type=ssh (no ssh agent forwarding)".to_string(),
                    })
                }
                MountType::Tmpfs => {
                    let dir = s.area.scratch()?;
                    out.mounts.push(RunMount {
                        source: dir.path().to_path_buf(),
                        destination: target.unwrap_or_default(),
                        readonly: false,
                    });
                    out._dirs.push(dir);
                }
                MountType::Cache => {
                    let target = target.unwrap_or_default();
                    let (dir, lock) = self.cache_dir(s, from.as_ref(), m, &target, line)?;
                    out.mounts.push(RunMount {
                        source: dir,
                        destination: target,
                        readonly: m.readonly.unwrap_or(false),
                    });
                    out._locks.extend(lock);
                }
                MountType::Bind => {
                    let target = target.unwrap_or_default();
                    let readonly = m.readonly.unwrap_or(true);
                    let source = m.source.as_deref().unwrap_or("/");
                    let host = match from {
                        None => {
                            // The context as the build sees it: only files .dockerignore
                            // keeps, copied, so an `rw` mount writes to the copy only.
                            let rel = context_bind_source(&s.context, source, line)?;
                            let dir = s.area.scratch()?;
                            let sources = [rel.clone()];
                            let spec = CopySpec::plain(line, &sources);
                            copy_into(dir.path(), &s.context, &RootfsView::default(), &spec)?;
                            let landed = copied_source(&s.context, &rel);
                            let fd = resolve_in(dir.path(), &landed, source, line)?;
                            out._dirs.push(dir);
                            out.hold(fd)
                        }
                        Some(from) => {
                            let rootfs = self.mount_source(s, from, line)?;
                            let fd = resolve_in(rootfs.path(), source, source, line)?;
                            let host = if readonly {
                                out.hold(fd)
                            } else {
                                // A private copy: BuildKit discards what the step writes.
                                let dir = s.area.scratch()?;
                                let copy = dir.path().join("src");
                                copy_tree(&held_path(&fd)?, &copy)?;
                                out._dirs.push(dir);
                                copy
                            };
                            out._rootfs.push(rootfs);
                            host
                        }
                    };
                    out.mounts.push(RunMount {
                        source: host,
                        destination: target,
                        readonly,
                    });
                }
                MountType::Secret => self.prepare_secret(s, m, target, line, &mut out)?,
            }
        }
        Ok(out)
    }

    /// What a RUN reads through its bind mounts, for its cache key: the bound context files,
    /// or the source stage's key / image ID. Cache and secret contents are not part of it
    /// (as with BuildKit); tmpfs has none.
    pub(crate) fn mount_content(
        &self,
        s: &Session<'_>,
        step: &PlannedStep,
        r: &RunOp,
    ) -> Result<Option<Digest>, BuildError> {
        let mut h = Sha256Hasher::new();
        let mut any = false;
        for RunMountOp { mount, from } in &r.mounts {
            if mount.kind != MountType::Bind && !(mount.kind == MountType::Cache && from.is_some())
            {
                continue;
            }
            any = true;
            let part = match from {
                None => {
                    let source = mount.source.as_deref().unwrap_or("/");
                    // What the mount shows: a link's target, not the link.
                    let rel = context_bind_source(&s.context, source, step.line)?;
                    let mut cache = StatCache::in_memory();
                    hash_selection(
                        &s.context,
                        &[rel.as_str()],
                        &mut cache,
                        s.opts.source_date_epoch.is_none(),
                    )
                    .map_err(|source| BuildError::Context {
                        line: step.line,
                        source,
                    })?
                }
                Some(CopySource::Stage(j)) => s
                    .stage(*j)
                    .map(|st| st.key_digest())
                    .ok_or_else(|| BuildError::at(step.line, format!("stage {j} was not built")))?,
                Some(CopySource::Image(name)) => s.images.get(name, step.line)?.record.id.clone(),
                Some(CopySource::Context) => continue,
            };
            h.update(part.as_str().as_bytes());
            h.update(b"\n");
        }
        Ok(any.then(|| h.finish()))
    }

    fn prepare_secret(
        &self,
        s: &Session<'_>,
        m: &Mount,
        target: Option<String>,
        line: usize,
        out: &mut PreparedMounts,
    ) -> Result<(), BuildError> {
        // BuildKit: the id defaults to the target's base name.
        let id = match (&m.id, &target) {
            (Some(id), _) => id.clone(),
            (None, Some(t)) => Path::new(t)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            (None, None) => m.env.clone().unwrap_or_default(),
        };
        let Some(src) = s.opts.secrets.get(&id) else {
            if m.required {
                return Err(BuildError::at(
                    line,
                    format!("secret {id} not found: pass it with --secret id={id},src=<file>"),
                ));
            }
            return Ok(());
        };
        let data = fs::read(src).map_err(BuildError::io("reading secret", src))?;
        if let Some(name) = &m.env {
            out.env
                .push((name.clone(), String::from_utf8_lossy(&data).into_owned()));
            if target.is_none() {
                return Ok(());
            }
        }
        let dir = s.area.scratch()?;
        let file = dir.path().join("secret");
        // Never readable by others, not even before its mode is set.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(&data))
            .map_err(BuildError::io("writing secret", &file))?;
        let owner = Owner {
            uid: parse_id(m.uid.as_deref(), line, "uid")?,
            gid: parse_id(m.gid.as_deref(), line, "gid")?,
        };
        let mode = parse_mode(m.mode.as_deref(), 0o400, line)?;
        set_owner_mode(&file, owner, mode)?;
        out.mounts.push(RunMount {
            source: file,
            destination: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
            readonly: true,
        });
        out._dirs.push(dir);
        Ok(())
    }

    /// The cache directory of `m`, created on first use, and the lock its sharing needs.
    fn cache_dir(
        &self,
        s: &Session<'_>,
        from: Option<&CopySource>,
        m: &Mount,
        target: &str,
        line: usize,
    ) -> Result<(PathBuf, Option<File>), BuildError> {
        let owner = Owner {
            uid: parse_id(m.uid.as_deref(), line, "uid")?,
            gid: parse_id(m.gid.as_deref(), line, "gid")?,
        };
        let mode = parse_mode(m.mode.as_deref(), 0o755, line)?;
        let id = m.id.clone().unwrap_or_else(|| target.to_string());
        // Different initial contents are different caches (BuildKit keys on the base too).
        let key = format!(
            "{id}\0{}\0{}\0{mode:o}\0{}\0{}",
            owner.uid,
            owner.gid,
            m.from.as_deref().unwrap_or(""),
            m.source.as_deref().unwrap_or("")
        );
        let base = self
            .store
            .private_dir(strata_store::StoreDir::BuildCacheMounts)?
            .join(Digest::sha256_of(key.as_bytes()).hex());
        fs::create_dir_all(&base).map_err(BuildError::io("creating", &base))?;
        let sharing = m.sharing.unwrap_or(CacheSharing::Shared);
        let mut instance = 0u32;
        let lock = loop {
            let lock_path = base.join(format!("{instance}.lock"));
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(BuildError::io("opening", &lock_path))?;
            match sharing {
                CacheSharing::Shared => break None,
                CacheSharing::Locked => {
                    flock(&file, FlockOperation::LockExclusive).map_err(|e| BuildError::Io {
                        what: "locking",
                        path: lock_path.clone(),
                        source: e.into(),
                    })?;
                    break Some(file);
                }
                CacheSharing::Private => {
                    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                        break Some(file);
                    }
                    instance += 1;
                }
            }
        };
        let dir = base.join(instance.to_string());
        if !dir.exists() {
            // Built aside and renamed, so a killed build never leaves a half-initialised cache.
            let fresh = base.join(format!("{instance}.new-{}", std::process::id()));
            let _ = fs::remove_dir_all(&fresh);
            match from {
                Some(from) => {
                    let rootfs = self.mount_source(s, from, line)?;
                    let source = m.source.as_deref().unwrap_or("/");
                    let fd = resolve_in(rootfs.path(), source, source, line)?;
                    copy_tree(&held_path(&fd)?, &fresh)?;
                }
                None => {
                    fs::create_dir(&fresh).map_err(BuildError::io("creating", &fresh))?;
                    set_owner_mode(&fresh, owner, mode)?;
                }
            }
            if let Err(e) = fs::rename(&fresh, &dir) {
                let _ = fs::remove_dir_all(&fresh);
                if !dir.exists() {
                    return Err(BuildError::io("creating", &dir)(e));
                }
            }
        }
        Ok((dir, lock))
    }

    /// The read-only rootfs of `from`: an earlier stage (by name or index) or an image.
    fn mount_source(
        &self,
        s: &Session<'_>,
        from: &CopySource,
        line: usize,
    ) -> Result<MountedRootfs, BuildError> {
        let chain = match from {
            CopySource::Stage(j) => s
                .stage(*j)
                .ok_or_else(|| BuildError::at(line, format!("stage {j} was not built")))?
                .chain(),
            CopySource::Image(name) => {
                let img = s.images.get(name, line)?;
                self.store.unpack_image(&img.record)?
            }
            CopySource::Context => None,
        };
        MountedRootfs::open(self.store, &s.area, chain.as_ref())
    }
}

/// The context path a bind of `source` shows, `/`-separated (empty: the whole context):
/// `source` resolved inside the context directory as if it were `/` (a link to `/etc` is the
/// context's `etc`, as BuildKit resolves it), and kept by `.dockerignore`.
pub(crate) fn context_bind_source(
    context: &ContextIndex,
    source: &str,
    line: usize,
) -> Result<String, BuildError> {
    let not_found = || {
        BuildError::at(
            line,
            format!("bind mount source {source:?} not found in the build context or excluded by .dockerignore"),
        )
    };
    let root = context.root();
    let fd = match open_under(root, source)? {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => return Err(not_found()),
        Err(e) => {
            return Err(BuildError::io(
                "resolving in the build context",
                root.join(source),
            )(e.into()))
        }
    };
    // Where the kernel's in-root resolution ended, relative to the context root.
    let real_root = std::fs::canonicalize(root).map_err(BuildError::io("resolving", root))?;
    let resolved = held_path(&fd)?;
    let rel = resolved.strip_prefix(&real_root).map_err(|_| not_found())?;
    let rel = context_path(rel).ok_or_else(not_found)?;
    if !rel.is_empty() && context.get(&rel).is_none() {
        return Err(not_found());
    }
    Ok(rel)
}

/// Where context path `rel` (from [`context_bind_source`]) lands when copied into the root of
/// a directory: a directory's contents at the root, a file under its own name.
fn copied_source(context: &ContextIndex, rel: &str) -> String {
    match context.get(rel) {
        Some(e) if e.kind != EntryKind::Dir => Path::new(rel)
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        _ => String::new(),
    }
}

/// `path` opened (`O_PATH`) inside `root` as if `root` were `/`: no link, `..` or absolute
/// path inside it can lead out. `shown` names the source in the error.
fn resolve_in(root: &Path, path: &str, shown: &str, line: usize) -> Result<OwnedFd, BuildError> {
    match open_under(root, path)? {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT | Errno::NOTDIR) => Err(BuildError::at(
            line,
            format!("mount source {shown:?} not found"),
        )),
        Err(Errno::LOOP) => Err(BuildError::at(
            line,
            format!("mount source {shown:?} is a symlink loop"),
        )),
        Err(e) => Err(BuildError::io(
            "resolving mount source",
            root.join(clean_relative(path)),
        )(e.into())),
    }
}

/// `path` opened (`O_PATH`) inside the directory `root` with [`open_in_root`]; the outer
/// error is about `root` itself, the inner one the resolution's.
fn open_under(root: &Path, path: &str) -> Result<rustix::io::Result<OwnedFd>, BuildError> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| BuildError::io("opening", root)(e.into()))?;
    // Context paths name non-UTF-8 bytes with reserved characters: back to the real name.
    let rel = fs_path(&clean_relative(path).to_string_lossy());
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel.as_path()
    };
    Ok(open_in_root(&root_fd, rel, OFlags::PATH))
}

/// The path the kernel gives a held descriptor (for copying from what it names).
fn held_path(fd: &OwnedFd) -> Result<PathBuf, BuildError> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::read_link(&link).map_err(BuildError::io("reading", link))
}

/// `--secret id=NAME,src=FILE` values (also `source=`, `type=file`) as the build options take
/// them; the id defaults to the file's name.
pub fn parse_secrets(values: &[String]) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    for value in values {
        let (mut id, mut src) = (None, None);
        for field in value.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => {
                    return Err(format!(
                        "invalid --secret {value:?}: expected id=NAME,src=FILE"
                    ))
                }
            }
        }
        let src = src.ok_or_else(|| format!("invalid --secret {value:?}: src=FILE is missing"))?;
        let id = match id {
            Some(id) => id,
            None => src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("invalid --secret {value:?}: id=NAME is missing"))?,
        };
        out.insert(id, src);
    }
    Ok(out)
}

fn parse_id(value: Option<&str>, line: usize, what: &str) -> Result<u32, BuildError> {
    value.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| BuildError::at(line, format!("invalid --mount {what} {v:?}")))
    })
}

fn parse_mode(value: Option<&str>, default: u32, line: usize) -> Result<u32, BuildError> {
    value.map_or(Ok(default), |v| {
        u32::from_str_radix(v, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| BuildError::at(line, format!("invalid --mount mode {v:?}")))
    })
}

fn set_owner_mode(path: &Path, owner: Owner, mode: u32) -> Result<(), BuildError> {
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
        .map_err(BuildError::io("changing owner of", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("changing mode of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags() {
        let got = parse_secrets(&["id=a,src=/x/y".into(), "src=/k/token".into()]).unwrap();
        assert_eq!(got["a"], PathBuf::from("/x/y"));
        assert_eq!(got["token"], PathBuf::from("/k/token"));
        assert!(parse_secrets(&["id=a".into()]).is_err());
        assert!(parse_secrets(&["id=a,env=B".into()]).is_err());
    }

    #[test]
    fn modes_and_ids_parse_like_buildkit() {
        assert_eq!(parse_mode(None, 0o400, 1).unwrap(), 0o400);
        assert_eq!(parse_mode(Some("0755"), 0, 1).unwrap(), 0o755);
        assert!(parse_mode(Some("99"), 0, 1).is_err());
        assert_eq!(parse_id(Some("1000"), 1, "uid").unwrap(), 1000);
        assert!(parse_id(Some("x"), 1, "uid").is_err());
    }
}
