//! strata-store: everything strata keeps on one machine.
//!
//! Owns the content store (blobs by digest, verified before they become visible), the
//! metadata database (images, tags, repo digests, snapshots, containers), the
//! snapshotters (`overlay`, `vfs`) that unpack layers and mount views of them, the
//! store lock, garbage collection, `system check` and `system df`.
//!
//! ```text
//! <root>/blobs/sha256/<hex>        content store (OCI image-layout shape)
//! <root>/ingest/                   in-flight blob temps, each flocked by its writer
//! <root>/snapshots/<driver>/<n>/   one dir per snapshot; .tmp-* in-flight unpacks, .lock-<chain> unpack locks
//! <root>/containers/<id>/          a container's writable layer, mount point, runtime files, log
//! <root>/metadata.db               SQLite (WAL); schema in the `db` module docs
//! <root>/lock                      flock: writer leases shared, gc exclusive
//! ```
//!
//! The root is 0710, every directory in it 0700, the database and lock 0600 (Docker's data
//! root modes), restored at every open; see the `modes` module.
//!
//! Must never: make a blob or snapshot visible before it is complete and verified,
//! delete anything a record or a live writer lease still reaches, remove another live
//! process's temp files, repair silently (check reports, gc removes), parse image JSON
//! beyond what the caller records (image flows live above this crate), or print.

mod build_cache;
mod check;
#[cfg(test)]
mod concurrency_tests;
mod containers;
mod content;
mod db;
mod error;
mod gc;
mod images;
mod layout;
mod lock;
mod modes;
mod snapshot;
mod store;
#[cfg(test)]
mod test_support;
mod transfers;
mod unpack;
mod usage;

pub use build_cache::{BuildCacheEntry, BuildCacheEntryUsage, BuildCacheUsage};
pub use check::{BlobRole, CheckReport, Problem};
pub use containers::ContainerRow;
pub use content::{BlobWriter, ContentStore, PartialBlob, Resume};
pub use error::StoreError;
pub use gc::GcReport;
pub use images::{ImageRecord, LayerRecord};
pub use layout::StoreDir;
pub use lock::WriterLease;
pub use snapshot::{
    enter_private_mount_namespace, mount_points_under, unmount, DriverKind, SnapshotInfo,
    Snapshotter, StagedLayer, WritableLayer,
};
pub use store::{Store, StoreInfo, StoreOptions};
pub use transfers::{BlobSource, CompressedBlob};
pub use usage::{tree_size, DiskUsage, ImageUsage};
