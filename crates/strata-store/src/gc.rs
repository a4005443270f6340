//! Garbage collection: removes blobs, snapshots and temps no record reaches.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use strata_oci::Digest;

use crate::error::StoreError;
use crate::lock;
use crate::store::{abandoned_partials, abandoned_temps, remove_path, Store};

/// How long gc waits for running writers (pulls, builds) to finish before giving up.
const GC_LOCK_WAIT: Duration = Duration::from_secs(60);

/// An interrupted download is kept this long for a later pull to resume from.
const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What gc removed. Plain data: the CLI renders it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Blobs removed, with their sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Snapshots removed (chain ids), with the bytes of their dirs.
    pub snapshots: Vec<(Digest, u64)>,
    /// Snapshot dirs without a record, removed.
    pub orphan_dirs: Vec<(PathBuf, u64)>,
    /// Temp files and dirs of dead processes, removed.
    pub temps: Vec<(PathBuf, u64)>,
}

impl GcReport {
    pub fn reclaimed_bytes(&self) -> u64 {
        let blobs: u64 = self.blobs.iter().map(|b| b.1).sum();
        let rest = self.snapshots.iter().map(|s| s.1);
        blobs
            + rest
                .chain(self.orphan_dirs.iter().map(|o| o.1))
                .chain(self.temps.iter().map(|t| t.1))
                .sum::<u64>()
    }
}

/// What every image and container record keeps alive.
pub(crate) struct Reachable {
    pub(crate) blobs: HashSet<Digest>,
    pub(crate) chains: HashSet<Digest>,
}

pub(crate) fn reachable(store: &Store) -> Result<Reachable, StoreError> {
    let mut blobs = HashSet::new();
    let mut chains = HashSet::new();
    let mut diff_ids = HashSet::new();
    for image in store.images()? {
        blobs.extend(image.blobs());
        chains.extend(image.chain_ids());
        diff_ids.extend(image.layers.iter().map(|l| l.diff_id.clone()));
    }
    // A layer's compressed form, kept from its last push, lives as long as the layer.
    blobs.extend(store.compressed_blobs_of(&diff_ids)?);
    // A container keeps its image's config even if the image record went (rmi -f).
    blobs.extend(store.db().container_image_ids()?);
    Ok(Reachable { blobs, chains })
}

/// Snapshot dir names (`<n>`) of the store's driver that have no record.
pub(crate) fn orphan_snapshot_dirs(store: &Store) -> Result<Vec<PathBuf>, StoreError> {
    use crate::error::IoContext;
    let dir = store.snapshot_dir().dir();
    let recorded: HashSet<PathBuf> = store
        .snapshotter()
        .list()?
        .into_iter()
        .map(|s| s.path)
        .collect();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("listing", dir)? {
        let path = entry.ctx("listing", dir)?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue; // temps: handled by the temp rules
        }
        if !recorded.contains(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

impl Store {
    /// Takes the store lock exclusively (waiting up to a minute for writer leases), then
    /// removes every snapshot, blob and temp not reachable from an image or container record.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _exclusive = lock::exclusive(self.root(), &self.lock_path(), GC_LOCK_WAIT)?;
        let keep = reachable(self)?;
        let mut report = GcReport::default();

        // Snapshots top down: a snapshot goes only after every child above it.
        let snaps = self.snapshotter().list()?;
        let parents: HashMap<Digest, Option<Digest>> = snaps
            .iter()
            .map(|s| (s.chain_id.clone(), s.parent.clone()))
            .collect();
        let depth = |c: &Digest| {
            let mut n = 0usize;
            let mut cur = parents.get(c).cloned().flatten();
            while let Some(p) = cur {
                n += 1;
                cur = parents.get(&p).cloned().flatten();
            }
            n
        };
        let mut doomed: Vec<(usize, Digest)> = snaps
            .iter()
            .filter(|s| !keep.chains.contains(&s.chain_id))
            .map(|s| (depth(&s.chain_id), s.chain_id.clone()))
            .collect();
        doomed.sort_by(|a, b| b.cmp(a));
        for (_, chain_id) in doomed {
            let bytes = self.snapshotter().usage(&chain_id).unwrap_or(0);
            self.snapshotter().remove(&chain_id)?;
            report.snapshots.push((chain_id, bytes));
        }
        for path in orphan_snapshot_dirs(self)? {
            let bytes = remove_path(&path)?;
            report.orphan_dirs.push((path, bytes));
        }
        for (path, _claim) in abandoned_temps(self)? {
            let bytes = remove_path(&path)?;
            report.temps.push((path, bytes));
        }
        for (path, _claim) in abandoned_partials(self, PARTIAL_MAX_AGE)? {
            let bytes = remove_path(&path)?;
            report.temps.push((path, bytes));
        }
        for blob in self.content().list()? {
            if !keep.blobs.contains(&blob) {
                let size = self.content().size(&blob).unwrap_or(0);
                self.content().remove(&blob)?;
                report.blobs.push((blob, size));
            }
        }
        self.forget_transfers_of_missing_blobs()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use crate::test_support::{ingest_image, layer_tar, open_store, Entry};
    use crate::DriverKind;

    use super::*;

    #[test]
    fn gc_keeps_what_records_reach_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), DriverKind::Overlay);
        let shared = layer_tar(&[Entry::File("s", b"shared")]);
        let only_b = layer_tar(&[Entry::File("b", b"b")]);
        let a = ingest_image(&store, b"config-a", &[&shared]);
        let b = ingest_image(&store, b"config-b", &[&shared, &only_b]);
        store.put_image(&a, &["a:1".into()]).unwrap();
        store.put_image(&b, &[]).unwrap();
        let chain_b = b.chain_ids();
        let snap = store.snapshotter();
        snap.unpack_layer(&chain_b[0], None, &b.layers[0].diff_id, &mut &shared[..])
            .unwrap();
        snap.unpack_layer(
            &chain_b[1],
            Some(&chain_b[0]),
            &b.layers[1].diff_id,
            &mut &only_b[..],
        )
        .unwrap();
        let (stray, _) = store.content().ingest(&b"stray"[..], None).unwrap();
        let stray_tar = layer_tar(&[Entry::File("x", b"x")]);
        let stray_chain = Digest::sha256_of(b"stray chain");
        snap.unpack_layer(
            &stray_chain,
            None,
            &Digest::sha256_of(&stray_tar),
            &mut &stray_tar[..],
        )
        .unwrap();
        let orphan = store.snapshot_dir().dir().join("999");
        std::fs::create_dir(&orphan).unwrap();
        let temp = store.content().ingest_dir().join("dead-writer");
        std::fs::write(&temp, b"half").unwrap();
        // A container keeps an image config alive even without its image record.
        let (kept_by_container, _) = store
            .content()
            .ingest(&b"container config"[..], None)
            .unwrap();
        store
            .db()
            .write("t", |tx| {
                tx.execute(
                    "INSERT INTO containers (id, name, image_id, created, state) VALUES ('c1', 'n', ?1, 0, 'created')",
                    [kept_by_container.as_str()],
                )
                .map_err(store.db().sql_err("t"))
            })
            .unwrap();

        let report = store.gc().unwrap();
        assert_eq!(
            report.blobs.iter().map(|b| &b.0).collect::<Vec<_>>(),
            vec![&stray]
        );
        assert_eq!(
            report.snapshots.iter().map(|s| &s.0).collect::<Vec<_>>(),
            vec![&stray_chain]
        );
        assert_eq!(
            report.orphan_dirs.iter().map(|o| &o.0).collect::<Vec<_>>(),
            vec![&orphan]
        );
        assert_eq!(
            report.temps.iter().map(|t| &t.0).collect::<Vec<_>>(),
            vec![&temp]
        );
        assert!(report.reclaimed_bytes() >= 5 + 4);
        for d in a
            .blobs()
            .iter()
            .chain(b.blobs().iter())
            .chain([&kept_by_container])
        {
            assert!(store.content().contains(d), "{d} kept");
        }
        assert!(snap.exists(&chain_b[1]).unwrap());
        assert!(store.check().unwrap().is_clean());

        // Deleting b frees its own layer and snapshot but not the shared one.
        store.delete_image(&b.id).unwrap();
        let report = store.gc().unwrap();
        let mut removed: Vec<_> = report.blobs.iter().map(|b| b.0.clone()).collect();
        removed.sort();
        let mut want = vec![b.id.clone(), b.layers[1].blob.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert_eq!(
            report.snapshots.iter().map(|s| &s.0).collect::<Vec<_>>(),
            vec![&chain_b[1]]
        );
        assert!(snap.exists(&chain_b[0]).unwrap());
        assert!(store.content().contains(&a.layers[0].blob));
        assert!(store.check().unwrap().is_clean());
    }

    #[test]
    fn gc_waits_for_a_writer_lease_and_keeps_what_it_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(open_store(dir.path(), DriverKind::Vfs));
        let (ready_tx, ready_rx) = mpsc::channel();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                let lease = store.writer_lease().unwrap();
                let img = ingest_image(&store, b"leased config", &[b"leased layer"]);
                ready_tx.send(img.clone()).unwrap();
                // gc is waiting now; recording happens before the lease goes.
                std::thread::sleep(std::time::Duration::from_millis(300));
                store.put_image(&img, &["leased:1".into()]).unwrap();
                drop(lease);
                img
            })
        };
        let img = ready_rx.recv().unwrap();
        let report = store.gc().unwrap();
        assert!(report.blobs.is_empty(), "{report:?}");
        for d in img.blobs() {
            assert!(store.content().contains(&d));
        }
        writer.join().unwrap();

        // Without a record, the next gc collects them.
        store.untag("leased:1").unwrap();
        store.delete_image(&img.id).unwrap();
        assert_eq!(store.gc().unwrap().blobs.len(), 2);
    }
}
