//! What strata's tests share, in one place so the tests of different crates cannot drift
//! apart: the busybox base image every test builds on ([`busybox`]), throw-away stores
//! ([`temp_store`]) and tar archives made in memory ([`TarBuilder`]).
//!
//! A dev-dependency only (`publish = false`): nothing here is shipped, and no library crate
//! may depend on it. Helpers panic on failure, as test code does.

pub mod busybox;
mod tar_builder;

pub use tar_builder::{tar_of, TarBuilder};

use strata_store::{Store, StoreOptions};

/// A store in a fresh temp directory (removed when the `TempDir` drops), default driver.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let store = Store::open(dir.path(), &StoreOptions::default()).expect("opening a temp store");
    (dir, store)
}
