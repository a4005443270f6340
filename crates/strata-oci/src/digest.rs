//! Content digests (`sha256:<64 hex>`), the identity of every blob strata handles.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated content digest. Only sha256 is accepted, as Docker and the OCI spec
/// require of every registry and image store in practice.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    /// Always `sha256:` followed by 64 lower-case hex characters.
    text: String,
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 hex characters>")]
    Malformed(String),
    #[error("unsupported digest algorithm {0:?}: only sha256 is supported")]
    UnsupportedAlgorithm(String),
}

impl Digest {
    /// Parses `sha256:<hex>`; upper-case hex is rejected as Docker does.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_string()));
        };
        if algo != "sha256" {
            if algo.is_empty()
                || !algo
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            {
                return Err(DigestError::Malformed(s.to_string()));
            }
            return Err(DigestError::UnsupportedAlgorithm(algo.to_string()));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Malformed(s.to_string()));
        }
        Ok(Digest {
            text: s.to_string(),
        })
    }

    /// Builds a digest from 64 lower-case hex characters (no algorithm prefix).
    pub fn from_sha256_hex(hex: &str) -> Result<Digest, DigestError> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Sha256Hasher::new();
        h.update(data);
        h.finish()
    }

    /// `sha256`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.text[7..]
    }

    /// The 12-character short form Docker prints as an image or layer id.
    pub fn short(&self) -> &str {
        &self.text[7..19]
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Incremental sha256, for digesting a stream while it passes through.
#[derive(Clone, Default)]
pub struct Sha256Hasher {
    inner: Sha256,
    len: u64,
}

impl Sha256Hasher {
    pub fn new() -> Sha256Hasher {
        Sha256Hasher::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest {
            text: format!("sha256:{}", hex::encode(self.inner.finalize())),
        }
    }

    /// The hasher's state as bytes, so that a digest computed over a stream can be
    /// carried across processes (a registry upload resumed after a restart or on another
    /// replica) without re-reading what was hashed so far.
    pub fn save_state(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState;
        let mut out = self.len.to_le_bytes().to_vec();
        out.extend_from_slice(self.inner.serialize().as_slice());
        out
    }

    /// A hasher restored from [`Sha256Hasher::save_state`]; `None` when the bytes are not
    /// such a state.
    pub fn restore_state(state: &[u8]) -> Option<Sha256Hasher> {
        use sha2::digest::common::hazmat::SerializableState;
        let (len, inner) = state.split_first_chunk::<8>()?;
        let inner = Sha256::deserialize(inner.try_into().ok()?).ok()?;
        Some(Sha256Hasher {
            inner,
            len: u64::from_le_bytes(*len),
        })
    }
}

/// Chain ids of a layer stack, bottom first, as the OCI image spec defines them:
/// `chain(L0) = diff_id(L0)`, `chain(Ln) = sha256(chain(Ln-1) + " " + diff_id(Ln))`.
/// A chain id names a snapshot: the filesystem of a layer together with everything under it.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_malformed_and_foreign_digests() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(Digest::parse("nocolon").is_err());
        let d = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert_eq!(d.short(), "000000000000");
    }

    #[test]
    fn a_saved_state_resumes_the_same_digest() {
        let mut h = Sha256Hasher::new();
        h.update(&[7u8; 100]);
        let state = h.save_state();
        let mut resumed = Sha256Hasher::restore_state(&state).unwrap();
        assert_eq!(resumed.len(), 100);
        resumed.update(b"tail");
        let mut whole = Sha256Hasher::new();
        whole.update(&[7u8; 100]);
        whole.update(b"tail");
        assert_eq!(resumed.finish(), whole.finish());
        assert!(Sha256Hasher::restore_state(&state[..20]).is_none());
        assert!(Sha256Hasher::restore_state(b"").is_none());
    }

    #[test]
    fn chain_id_of_a_single_layer_is_its_diff_id() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
    }
}
