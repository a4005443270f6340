//! strata-oci: the vocabulary of container images, as data.
//!
//! Owns digests, descriptors, media types, image config / manifest / index types
//! (deterministic serde types with Docker's field order), image references parsed
//! exactly as Docker parses them, and the file shapes of OCI image layouts and
//! `docker save` archives.
//!
//! Must not: touch the filesystem or network, know about the store, or re-serialize
//! JSON it was handed in order to digest it (digests are always of the exact bytes).

mod digest;

pub use digest::{chain_ids, Digest, DigestError, Sha256Hasher};
