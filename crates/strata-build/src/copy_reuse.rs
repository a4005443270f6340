//! Reusing the previous result of a COPY/ADD-from-context step on a cache miss, so that one
//! changed file costs one file.
//!
//! Each executed COPY from the context records its result (config and layer) under a *reuse
//! key*: the step's key without the content digest (parent, instruction with its destination
//! and options, build args, env), in `<root>/build-copy-files/<key hex>.prev` (kept out of the
//! build cache table, which `system df` and `builder prune` count). A later miss of the same
//! step finds the previous layer through the reuse key, and its snapshot directory (the layer's own dir on
//! overlay, the complete tree on vfs). A *file index* kept per layer (target path → content
//! digest of the file the copy wrote, `<root>/build-copy-files/<diff_id hex>`) tells which of
//! its files hold which content. A file of the new copy whose content digest (from the stat
//! cache the key was hashed with), size, mode, owner and mtime equal the previous file's is
//! hard-linked from the previous snapshot instead of being read and written again. (A vfs
//! snapshot is a full tree unpacked from the layer tar: its mtimes are the tar's, clamped to
//! `SOURCE_DATE_EPOCH`; the linked file only feeds the new tar, which clamps alike.)
//!
//! Why hard links are safe here: a committed snapshot is never written again. Overlay mounts
//! use it as a lower dir (a write copies the file up into the step's or container's upper
//! dir), vfs containers and RUN steps work on full copies, and the copy never changes a
//! linked inode (no chmod/chown/utimes; a later source at the same path unlinks first). The
//! layer tar is unchanged too: `write_layer` writes a hard link only for an inode it meets
//! twice in the new tree, so each previous inode is linked at most once per copy, and
//! context files that are hard links themselves are always copied.
//!
//! Everything here is an optimisation: a missing or unreadable index, a vanished snapshot or
//! a failed link falls back to copying, never to a different layer.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use strata_context::{Entry, StatCache};
use strata_oci::{chain_ids, Digest, ImageConfig, Sha256Hasher};
use strata_store::{DriverKind, Store};

use crate::builder::lock;
use crate::cache_key::{CacheKey, StepInputs};
use crate::op::{is_http, CopyOp, CopySource, Op, PlannedStep};

const MAGIC: &[u8] = b"strata-copy-files 1\n";
/// Marks reuse keys apart from step keys (no instruction text starts with a NUL).
const REUSE_TAG: &str = "\0reuse-previous-copy\0";

/// The reuse key of `step` on top of `parent`, for a COPY/ADD that reads only the context.
pub(crate) fn reuse_key(
    parent: &CacheKey,
    step: &PlannedStep,
    instruction: &str,
) -> Option<CacheKey> {
    match &step.op {
        Op::Copy(CopyOp {
            from: CopySource::Context,
            sources,
            ..
        }) if !sources.is_empty() && !sources.iter().any(|s| is_http(s)) => {
            let tagged = format!("{REUSE_TAG}{instruction}");
            Some(parent.child(&StepInputs {
                instruction: &tagged,
                build_args: &step.build_args,
                env: &step.env,
                content: None,
            }))
        }
        _ => None,
    }
}

/// The previous layer of a step: where its files are, and what they hold.
#[derive(Debug)]
pub(crate) struct PreviousLayer {
    /// The root the index's paths are relative to (the snapshot dir).
    root: PathBuf,
    files: HashMap<PathBuf, Digest>,
    /// vfs with `SOURCE_DATE_EPOCH`: the snapshot's mtimes are clamped to it.
    mtime_clamp: Option<i64>,
}

impl PreviousLayer {
    /// The previous result recorded under `reuse_key`, if its config, snapshot and file index
    /// are all still there.
    pub(crate) fn find(
        store: &Store,
        reuse_key: &CacheKey,
        source_date_epoch: Option<i64>,
    ) -> Option<PreviousLayer> {
        let pointer = fs::read_to_string(previous_path(store, reuse_key).ok()?).ok()?;
        let (config, diff_id) = pointer.trim_end().split_once('\n')?;
        let (config, diff_id) = (Digest::parse(config).ok()?, Digest::parse(diff_id).ok()?);
        let config: ImageConfig =
            serde_json::from_slice(&store.content().read_all(&config).ok()?).ok()?;
        if config.rootfs.diff_ids.last() != Some(&diff_id) {
            return None;
        }
        let chain = chain_ids(&config.rootfs.diff_ids).pop()?;
        let info = store.snapshotter().info(&chain).ok()??;
        let files = read_index(&index_path(store, &diff_id).ok()?)?;
        Some(PreviousLayer {
            root: info.path,
            files,
            mtime_clamp: source_date_epoch.filter(|_| info.kind == DriverKind::Vfs),
        })
    }

    /// The previous file at `target` if it holds `digest`.
    pub(crate) fn file_with(&self, target: &Path, digest: &Digest) -> Option<PathBuf> {
        (self.files.get(target) == Some(digest)).then(|| self.root.join(target))
    }
}

/// What a copy from the context needs to reuse files and to index the layer it writes.
#[derive(Debug)]
pub(crate) struct Reuse<'a> {
    /// Content digests of the context files, as the step's key was hashed.
    pub(crate) digests: &'a Mutex<StatCache>,
    pub(crate) previous: Option<PreviousLayer>,
}

impl Reuse<'_> {
    /// The mtime the previous snapshot holds for a file the copy dates `mtime`: vfs snapshots
    /// are unpacked from the layer tar, whose mtimes are clamped to `SOURCE_DATE_EPOCH`.
    pub(crate) fn previous_mtime(&self, mtime: i64) -> i64 {
        match self.previous.as_ref().and_then(|p| p.mtime_clamp) {
            Some(clamp) => mtime.min(clamp),
            None => mtime,
        }
    }

    pub(crate) fn digest_of(&self, entry: &Entry) -> Option<Digest> {
        lock(self.digests).digest_of(entry).cloned()
    }
}

fn index_path(store: &Store, diff_id: &Digest) -> Result<PathBuf, strata_store::StoreError> {
    Ok(store
        .private_dir(strata_store::StoreDir::BuildCopyFiles)?
        .join(diff_id.hex()))
}

fn previous_path(store: &Store, key: &CacheKey) -> Result<PathBuf, strata_store::StoreError> {
    Ok(store
        .private_dir(strata_store::StoreDir::BuildCopyFiles)?
        .join(format!("{}.prev", key.digest().hex())))
}

/// Records the step's result (its config and layer) under its reuse key, replacing the
/// previous one. Failures only cost the next build its reuse.
pub(crate) fn record_previous(store: &Store, key: &CacheKey, config: &Digest, diff_id: &Digest) {
    let Ok(path) = previous_path(store, key) else {
        return;
    };
    let Some(dir) = path.parent() else { return };
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    // No fsync: a torn pointer fails to parse, or names blobs that are checked before use.
    if tmp
        .write_all(format!("{config}\n{diff_id}\n").as_bytes())
        .is_ok()
    {
        let _ = tmp.persist(&path);
    }
}

/// Records the file index of the layer `diff_id` (unless it has one), and drops the indexes
/// of layers no longer in the content store. Failures only cost the next build its reuse.
pub(crate) fn save_index(store: &Store, diff_id: &Digest, files: &[(PathBuf, Digest)]) {
    let Ok(path) = index_path(store, diff_id) else {
        return;
    };
    if path.is_file() {
        return;
    }
    let Some(dir) = path.parent() else { return };
    if let Ok(listing) = fs::read_dir(dir) {
        for entry in listing.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // A pointer is stale once its config blob is gone, an index once its layer is.
            let blob = match name.strip_suffix(".prev") {
                Some(_) => fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|p| p.lines().next().and_then(|c| Digest::parse(c).ok())),
                None => Digest::from_sha256_hex(name).ok(),
            };
            if blob.is_some_and(|d| !store.content().contains(&d)) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    // No fsync: after a crash a torn file fails its checksum and is ignored.
    if tmp.write_all(&encode(files)).is_ok() {
        let _ = tmp.persist(&path);
    }
}

/// Layout: magic, then per file: path length (u32 LE), path bytes, digest hex (64 bytes);
/// then the sha256 hex of everything before it.
fn encode(files: &[(PathBuf, Digest)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + files.len() * 96 + 64);
    out.extend_from_slice(MAGIC);
    for (path, digest) in files {
        let bytes = path.as_os_str().as_bytes();
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(digest.hex().as_bytes());
    }
    let sum = Digest::sha256_of(&out);
    out.extend_from_slice(sum.hex().as_bytes());
    out
}

fn read_index(path: &Path) -> Option<HashMap<PathBuf, Digest>> {
    decode(&fs::read(path).ok()?)
}

fn decode(bytes: &[u8]) -> Option<HashMap<PathBuf, Digest>> {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(64)?);
    let mut h = Sha256Hasher::new();
    h.update(body);
    if h.finish().hex().as_bytes() != sum {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let mut files = HashMap::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len + 64 {
            return None;
        }
        let (name, tail) = tail.split_at(len);
        let (hex, tail) = tail.split_at(64);
        let digest = Digest::from_sha256_hex(std::str::from_utf8(hex).ok()?).ok()?;
        files.insert(PathBuf::from(std::ffi::OsStr::from_bytes(name)), digest);
        rest = tail;
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_round_trips_and_a_damaged_one_is_ignored() {
        let files = vec![
            (PathBuf::from("src/a"), Digest::sha256_of(b"a")),
            (
                PathBuf::from(std::ffi::OsStr::from_bytes(b"odd \xff name")),
                Digest::sha256_of(b"b"),
            ),
        ];
        let bytes = encode(&files);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[&files[1].0], files[1].1);
        assert_eq!(decode(&encode(&[])).unwrap().len(), 0);
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "truncated at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[MAGIC.len() + 5] ^= 1;
        assert!(decode(&flipped).is_none());
    }
}
