//! `system check`: verifies the store and lists every problem found; never repairs.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use serde::Serialize;
use strata_oci::{Digest, Sha256Hasher};

use crate::error::{IoContext, StoreError};
use crate::gc::{orphan_snapshot_dirs, reachable};
use crate::snapshot::mount_points_under;
use crate::store::{abandoned_temps, Store};

/// Which blob of an image a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BlobRole {
    Config,
    Manifest,
    /// Layer index, bottom first.
    Layer(usize),
}

/// One thing `check` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Problem {
    /// The blob's bytes hash to `actual`, not to its name.
    CorruptBlob { digest: Digest, actual: Digest },
    /// The blob could not be read.
    UnreadableBlob { digest: Digest, error: String },
    /// A file in `blobs/sha256` whose name is not a digest.
    StrayBlobFile { path: PathBuf },
    /// An image record names a blob the content store lacks.
    MissingBlob {
        image: Digest,
        blob: Digest,
        role: BlobRole,
    },
    /// A snapshot record whose dir is gone.
    MissingSnapshotDir { chain_id: Digest, path: PathBuf },
    /// A snapshot record whose parent record is gone.
    MissingSnapshotParent { chain_id: Digest, parent: Digest },
    /// A snapshot dir without a record.
    OrphanSnapshotDir { path: PathBuf },
    /// A temp file or dir left by a process that is gone.
    LeftoverTemp { path: PathBuf },
    /// SQLite's integrity or foreign key check reported this.
    Database { detail: String },
    /// Something is mounted below the root in the host's mount namespace: strata mounts
    /// only in namespaces that die with the process, so this was left by a killed process
    /// of an older strata (or by hand), and keeps the dir from being removed.
    LeftoverMount { path: PathBuf },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob { digest, actual } => write!(
                f,
                "blob {digest} is corrupt: its content hashes to {actual}"
            ),
            Problem::UnreadableBlob { digest, error } => {
                write!(f, "blob {digest} cannot be read: {error}")
            }
            Problem::StrayBlobFile { path } => write!(f, "{} is not a blob name", path.display()),
            Problem::MissingBlob { image, blob, role } => write!(
                f,
                "image {image} needs {role:?} blob {blob}, which is missing"
            ),
            Problem::MissingSnapshotDir { chain_id, path } => {
                write!(f, "snapshot {chain_id} has no directory {}", path.display())
            }
            Problem::MissingSnapshotParent { chain_id, parent } => {
                write!(f, "snapshot {chain_id} sits on missing snapshot {parent}")
            }
            Problem::OrphanSnapshotDir { path } => {
                write!(f, "snapshot directory {} has no record", path.display())
            }
            Problem::LeftoverTemp { path } => write!(
                f,
                "leftover temp {} from a process that is gone",
                path.display()
            ),
            Problem::Database { detail } => write!(f, "metadata database: {detail}"),
            Problem::LeftoverMount { path } => write!(
                f,
                "{} is still mounted (unmount it with `umount -l`)",
                path.display()
            ),
        }
    }
}

/// What `check` looked at and found. Plain data: the CLI renders it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub images_checked: usize,
    pub snapshots_checked: usize,
    pub problems: Vec<Problem>,
    /// Blobs and snapshots no image or container reaches (not a problem: `system prune`
    /// collects them), and their bytes.
    pub unreferenced: usize,
    pub unreferenced_bytes: u64,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Re-hashes every blob, checks every image's blobs are present, every snapshot record
    /// has its dir (and parent) and every dir its record, runs SQLite's integrity check and
    /// lists leftover temps and mounts left under the root. Holds a writer lease so gc cannot run meanwhile.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let _lease = self.writer_lease()?;
        let mut report = CheckReport::default();

        for detail in self.db().integrity_problems()? {
            report.problems.push(Problem::Database { detail });
        }

        let blobs_dir = self.content().blobs_dir();
        for entry in std::fs::read_dir(blobs_dir).ctx("listing", blobs_dir)? {
            let path = entry.ctx("listing", blobs_dir)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(digest) = Digest::from_sha256_hex(&name) else {
                report.problems.push(Problem::StrayBlobFile { path });
                continue;
            };
            report.blobs_checked += 1;
            match rehash(self, &digest) {
                Ok((actual, size)) => {
                    report.bytes_checked += size;
                    if actual != digest {
                        report
                            .problems
                            .push(Problem::CorruptBlob { digest, actual });
                    }
                }
                Err(e) => report.problems.push(Problem::UnreadableBlob {
                    digest,
                    error: e.to_string(),
                }),
            }
        }

        for image in self.images()? {
            report.images_checked += 1;
            let mut wanted = vec![(image.id.clone(), BlobRole::Config)];
            wanted.extend(
                image
                    .manifest
                    .iter()
                    .map(|m| (m.clone(), BlobRole::Manifest)),
            );
            wanted.extend(
                image
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.blob.clone(), BlobRole::Layer(i))),
            );
            for (blob, role) in wanted {
                if !self.content().contains(&blob) {
                    report.problems.push(Problem::MissingBlob {
                        image: image.id.clone(),
                        blob,
                        role,
                    });
                }
            }
        }

        let snaps = self.snapshotter().list()?;
        let recorded: HashSet<&Digest> = snaps.iter().map(|s| &s.chain_id).collect();
        for s in &snaps {
            report.snapshots_checked += 1;
            if !s.path.is_dir() {
                report.problems.push(Problem::MissingSnapshotDir {
                    chain_id: s.chain_id.clone(),
                    path: s.path.clone(),
                });
            }
            if let Some(p) = &s.parent {
                if !recorded.contains(p) {
                    report.problems.push(Problem::MissingSnapshotParent {
                        chain_id: s.chain_id.clone(),
                        parent: p.clone(),
                    });
                }
            }
        }
        let keep = reachable(self)?;
        for s in snaps.iter().filter(|s| !keep.chains.contains(&s.chain_id)) {
            report.unreferenced += 1;
            report.unreferenced_bytes += self.snapshotter().usage(&s.chain_id).unwrap_or(0);
        }
        for blob in self.content().list()? {
            if !keep.blobs.contains(&blob) {
                report.unreferenced += 1;
                report.unreferenced_bytes += self.content().size(&blob).unwrap_or(0);
            }
        }
        for path in orphan_snapshot_dirs(self)? {
            report.problems.push(Problem::OrphanSnapshotDir { path });
        }
        for (path, _claim) in abandoned_temps(self)? {
            report.problems.push(Problem::LeftoverTemp { path });
        }
        for path in mount_points_under(self.root())? {
            report.problems.push(Problem::LeftoverMount { path });
        }
        Ok(report)
    }
}

fn rehash(store: &Store, d: &Digest) -> Result<(Digest, u64), StoreError> {
    let mut file = store.content().open(d)?;
    let path = store.content().path(d);
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).ctx("reading blob", &path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let size = hasher.len();
    Ok((hasher.finish(), size))
}

#[cfg(test)]
mod tests {
    use crate::test_support::{ingest_image, layer_tar, open_store, Entry};
    use crate::DriverKind;

    use super::*;

    #[test]
    fn check_finds_each_kind_of_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Vfs);
        let tar = layer_tar(&[Entry::File("f", b"1")]);
        let img = ingest_image(&store, b"config", &[&tar, b"second layer"]);
        store.put_image(&img, &["x:1".into()]).unwrap();
        let chain = img.chain_ids();
        let info = store
            .snapshotter()
            .unpack_layer(&chain[0], None, &img.layers[0].diff_id, &mut &tar[..])
            .unwrap();
        assert!(store.check().unwrap().is_clean());

        // Corrupt the config, lose a layer blob, lose the snapshot dir, add an orphan dir,
        // a dead temp and a stray file.
        std::fs::write(store.content().path(&img.id), b"tampered").unwrap();
        std::fs::remove_file(store.content().path(&img.layers[1].blob)).unwrap();
        std::fs::remove_dir_all(&info.path).unwrap();
        let orphan = store.snapshot_dir().dir().join("77");
        std::fs::create_dir(&orphan).unwrap();
        let temp = store.content().ingest_dir().join("dead");
        std::fs::write(&temp, b"").unwrap();
        let stray = store.content().blobs_dir().join("not-a-digest");
        std::fs::write(&stray, b"").unwrap();

        let report = store.check().unwrap();
        let want = vec![
            Problem::CorruptBlob {
                digest: img.id.clone(),
                actual: Digest::sha256_of(b"tampered"),
            },
            Problem::StrayBlobFile { path: stray },
            Problem::MissingBlob {
                image: img.id.clone(),
                blob: img.layers[1].blob.clone(),
                role: BlobRole::Layer(1),
            },
            Problem::MissingSnapshotDir {
                chain_id: chain[0].clone(),
                path: info.path,
            },
            Problem::OrphanSnapshotDir { path: orphan },
            Problem::LeftoverTemp { path: temp },
        ];
        let mut got = report.problems.clone();
        let mut want_sorted = want.clone();
        got.sort_by_key(|p| format!("{p:?}"));
        want_sorted.sort_by_key(|p| format!("{p:?}"));
        assert_eq!(got, want_sorted);
        assert_eq!(report.images_checked, 1);
        assert_eq!(report.snapshots_checked, 1);
        // Never fixes silently: a second run sees the same.
        assert_eq!(store.check().unwrap().problems.len(), want.len());
    }
}
