//! strata-layer: the layer tar format.
//!
//! Owns applying a layer tar into a directory safely ([`apply_layer`]), writing a
//! deterministic layer tar from a directory or an overlayfs upper dir ([`write_layer`]),
//! compression ([`Compression`], [`decompress`], [`CompressWriter`]; gzip stores the 1 MiB
//! blocks that do not compress instead of searching them) and digesting a stream while it
//! passes through ([`DigestReader`], [`DigestWriter`]).
//!
//! Must never: create, modify or delete anything outside the root it applies into,
//! whatever the tar says; know about the database or the content store; print.
//!
//! A diff_id is the sha256 of the uncompressed tar, so it can be had without writing the
//! tar anywhere, and a pulled blob is decompressed, hashed and applied in one pass:
//!
//! ```
//! use std::io;
//! use strata_layer::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tree = tempfile::tempdir()?;
//! std::fs::write(tree.path().join("hello"), "hi")?;
//! let opts = WriteOptions { source: ChangeSource::PlainTree, mtime_clamp: Some(0) };
//!
//! let mut hashed = DigestWriter::new(io::sink());
//! write_layer(tree.path(), &mut hashed, &opts)?;
//! let diff_id = hashed.digest();
//!
//! let mut blob = CompressWriter::new(Vec::new(), Compression::Gzip)?;
//! write_layer(tree.path(), &mut blob, &opts)?;
//! let blob = blob.finish()?;
//!
//! let root = tempfile::tempdir()?;
//! let (_, tar) = decompress(&blob[..])?;
//! let mut tar = DigestReader::new(tar);
//! let apply = ApplyOptions { whiteouts: WhiteoutMode::Remove, preserve_owners: true };
//! apply_layer(&mut tar, root.path(), &apply)?;
//! assert_eq!(tar.digest(), diff_id);
//! assert_eq!(std::fs::read(root.path().join("hello"))?, b"hi");
//! # Ok(())
//! # }
//! ```

mod apply;
mod compression;
mod digesting;
mod entry_meta;
mod error;
mod gzip;
mod in_root;
mod sniff;
mod tar_path;
mod tar_writer;
mod write;

pub use apply::{apply_layer, ApplyOptions, ApplyStats, WhiteoutMode};
pub use compression::{decompress, CompressWriter, Compression, GZIP_LEVEL, ZSTD_LEVEL};
pub use digesting::{DigestReader, DigestWriter};
pub use error::LayerError;
pub use sniff::{is_tar_header, TAR_BLOCK};
pub use write::{write_layer, ChangeSource, WriteOptions, WriteStats};
