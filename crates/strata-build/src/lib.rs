//! strata-build: the build engine. It turns a Dockerfile (or any producer of ops) into an image
//! in the store: per-stage chains of [`Op`]s (independent stages built in parallel), a
//! [`CacheKey`] per step and the store's build-cache index consulted before any work, COPY/ADD
//! of context files, earlier stages, images, heredocs and (ADD) http(s) URLs, with local tar,
//! gzip, zstd, bzip2 and xz archives extracted by ADD, metadata instructions written exactly as
//! BuildKit writes the image config and history, ONBUILD triggers of a base run after its FROM,
//! and RUN through a [`RunExecutor`] the runtime provides, with `--mount` cache, tmpfs, bind
//! and secret, on overlay or (by a tree diff) vfs. Layers are deterministic: with
//! `SOURCE_DATE_EPOCH`, the same inputs give the same image ID in any store.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use strata_build::{BuildOptions, Builder};
//! use strata_store::{Store, StoreOptions};
//!
//! let store = Store::open(Path::new("/var/lib/strata"), &StoreOptions::default())?;
//! let out = Builder::new(&store).build(
//!     "FROM scratch\nCOPY . /app\nCMD [\"/app/run\"]\n",
//!     Path::new("."),
//!     &BuildOptions { source_date_epoch: Some(0), ..BuildOptions::default() },
//! )?;
//! # let _ = out.image_id; Ok(()) }
//! ```
//!
//! Must not: isolate or run processes itself (RUN goes through [`RunExecutor`]), parse
//! Dockerfile text (that is strata-dockerfile), read the host's `/etc/passwd`, or print
//! (progress goes to a [`Reporter`]).

mod archive;
mod builder;
mod cache_key;
mod cache_prune;
mod copy_files;
mod copy_reuse;
mod copy_step;
mod error;
mod explain;
mod layer_commit;
mod metadata;
mod onbuild;
mod op;
mod owner;
mod remote;
mod reporter;
mod rootfs;
mod run_executor;
mod run_mounts;
mod run_step;
mod runtime_executor;
mod step_memory;
mod temp_area;
mod tree_diff;

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod cache_property_tests;
#[cfg(test)]
mod copy_reuse_tests;
#[cfg(test)]
mod copy_tests;
#[cfg(test)]
mod test_support;

pub use builder::{BuildOptions, BuildOutput, Builder};
pub use cache_key::{BaseKey, CacheKey, StepInputs};
pub use cache_prune::{prune_build_cache, CachePrune, CachePruneReport};
pub use error::BuildError;
pub use explain::MissReason;
pub use op::{
    plan, CopyOp, CopySource, FromOp, HealthSpec, InlineFile, MetadataOp, Op, PlannedStep,
    RunMountOp, RunOp, StagePlan, StepLabel,
};
pub use reporter::{Reporter, SilentReporter, StepFailure, Transfer};
pub use run_executor::{
    DebugOnFail, DebugRequest, OutputSink, RunExecutor, RunMount, RunNetwork, RunOutcome,
    RunRequest,
};
pub use run_mounts::parse_secrets;
pub use runtime_executor::RuntimeExecutor;
