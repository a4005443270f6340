//! strata-image: what a user does to whole images, on top of the store.
//!
//! Owns the image-level flows: importing a rootfs tar, loading `docker save` and OCI
//! archives, saving them back, pulling from and pushing to registries (through
//! strata-distribution), resolving what a user typed (tag, ID, ID prefix) to an image —
//! locally or, through an [`ImageSource`], from a registry — removing and pruning images,
//! and the data behind `history`, `inspect` and `images` (plain structs; the CLI renders
//! them). Load and pull share one pipeline (`assemble`): manifest → platform → layers
//! streamed into the store and unpacked in the same pass → snapshots → records.
//!
//! Must not: print (progress goes to a [`TransferReporter`]), parse command lines, or reach
//! around the store's API into its files or database. Every flow records an image only
//! after all of its blobs and snapshots are verified and in place, so a crash leaves
//! nothing half-visible.

mod archive_in;
mod archive_out;
mod assemble;
mod change;
mod channel;
mod error;
mod import;
mod parallel;
mod progress;
mod pull;
mod push;
mod remove;
mod resolve;
mod source;
mod tar_input;
mod view;

pub use archive_in::{load_archive, LoadedImage};
pub use archive_out::{save_archive, ArchiveFormat, SaveItem};
pub use change::apply_all as apply_changes;
pub use error::ImageError;
pub use import::{import_rootfs, ImportOptions};
pub use progress::{LayerStatus, SilentTransfer, TransferEvent, TransferReporter};
pub use pull::{pull_all_tags, pull_image, PullOptions, PulledImage};
pub use push::{push_all_tags, push_image, ManifestFormat, PushOptions, PushedImage};
pub use remove::{prune_images, remove_image, PruneReport, RemoveEvent};
pub use resolve::{resolve_image, ResolvedImage};
pub use source::{ImageSource, LocalImages, PullPolicy, RegistryImages};
pub use view::{
    history, image_size, image_summaries, inspect, HistoryRow, ImageSummary, InspectImage,
};
