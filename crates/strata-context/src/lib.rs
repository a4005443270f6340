//! strata-context: the build context.
//!
//! Owns walking a context directory, the `.dockerignore` matcher (Docker's exact semantics:
//! patterns anchored at the context root, `**`, `!` exceptions, last match wins, a directory
//! excluded excludes its contents), selecting COPY/ADD sources (Go `filepath.Match` globs) and
//! content hashing of a selection with a persistent stat cache, so that only files whose stat
//! changed are read again.
//!
//! ```no_run
//! use std::path::Path;
//! use strata_context::{find_ignore_file, walk, ContextHasher, DockerIgnore, StatCache};
//!
//! # fn main() -> Result<(), strata_context::ContextError> {
//! let ctx = Path::new("./app");
//! let ignore = match find_ignore_file(ctx, Path::new("Dockerfile")) {
//!     Some(file) => DockerIgnore::read(&file)?,
//!     None => DockerIgnore::default(),
//! };
//! let index = walk(ctx, &ignore)?;
//! let mut cache = StatCache::open(Path::new("/var/lib/strata/cache/context/abc"))?;
//! let digest = ContextHasher::new(&index, &mut cache).hash(&["src", "*.toml"])?;
//! cache.save()?;
//! # let _ = digest; Ok(()) }
//! ```
//!
//! Must not: know Dockerfile syntax, images or the store (the caller picks the cache location),
//! follow symlinks while walking, or print.

mod dockerignore;
mod error;
mod go_glob;
mod hash;
mod name;
mod pattern;
mod stat_cache;
mod walk;

pub use dockerignore::{find_ignore_file, DockerIgnore};
pub use error::ContextError;
pub use hash::{hash_selection, ContextHasher};
pub use name::{context_path, fs_path};
pub use stat_cache::StatCache;
pub use walk::{walk, ContextIndex, Entry, EntryKind};
