//! `CacheKey`: what a build step's result depends on, as one digest. Pure: no I/O.
//!
//! A step's key covers its parent's key (so the whole chain below it), the instruction as
//! expanded, the build args and environment it can see, and the content it reads: the digest
//! of exactly the selected context files for COPY/ADD, the source stage's key for
//! `COPY --from`, the base image ID for FROM. Anything else that changes the result
//! (`SOURCE_DATE_EPOCH`, the platform) goes into the root key.

use std::fmt;

use strata_oci::{Digest, Sha256Hasher};

/// Bumped when the key layout or the executor's output changes, so old entries miss.
const LAYOUT: &[u8] = b"strata-build cache key 1\0";

/// The cache key of one step (or of a stage's base).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Digest);

/// What a stage starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseKey<'a> {
    Scratch,
    /// A store image, by its ID (config digest).
    Image(&'a Digest),
    /// An earlier stage, by the key of its last step.
    Stage(&'a CacheKey),
}

/// The step-specific inputs of a key.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepInputs<'a> {
    /// The instruction as expanded, canonically encoded.
    pub instruction: &'a str,
    pub build_args: &'a [(String, String)],
    pub env: &'a [(String, String)],
    /// Digest of the content the step reads (selected context files, a source stage's key).
    pub content: Option<&'a Digest>,
}

impl CacheKey {
    /// The key of a stage's starting point. `source_date_epoch` and `platform` change what
    /// every step writes, so they are part of the root.
    pub fn base(base: BaseKey<'_>, platform: &str, source_date_epoch: Option<i64>) -> CacheKey {
        let mut h = Sha256Hasher::new();
        h.update(LAYOUT);
        match base {
            BaseKey::Scratch => field(&mut h, b"scratch"),
            BaseKey::Image(id) => {
                field(&mut h, b"image");
                field(&mut h, id.as_str().as_bytes());
            }
            BaseKey::Stage(k) => {
                field(&mut h, b"stage");
                field(&mut h, k.0.as_str().as_bytes());
            }
        }
        field(&mut h, platform.as_bytes());
        match source_date_epoch {
            Some(t) => field(&mut h, &t.to_le_bytes()),
            None => field(&mut h, b"-"),
        }
        CacheKey(h.finish())
    }

    /// The key of the step on top of `self`.
    pub fn child(&self, step: &StepInputs<'_>) -> CacheKey {
        let mut h = Sha256Hasher::new();
        h.update(LAYOUT);
        field(&mut h, self.0.as_str().as_bytes());
        field(&mut h, step.instruction.as_bytes());
        pairs(&mut h, step.build_args);
        pairs(&mut h, step.env);
        match step.content {
            Some(d) => field(&mut h, d.as_str().as_bytes()),
            None => field(&mut h, b"-"),
        }
        CacheKey(h.finish())
    }

    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A length-prefixed field, so that no two different inputs hash the same bytes.
fn field(h: &mut Sha256Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn pairs(h: &mut Sha256Hasher, list: &[(String, String)]) {
    h.update(&(list.len() as u64).to_le_bytes());
    for (k, v) in list {
        field(h, k.as_bytes());
        field(h, v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_key() {
        let id = Digest::sha256_of(b"image");
        let other_id = Digest::sha256_of(b"other");
        let root = CacheKey::base(BaseKey::Image(&id), "linux/amd64", Some(1));
        let files = Digest::sha256_of(b"files");
        let other_files = Digest::sha256_of(b"files2");
        let args = [("A".to_string(), "1".to_string())];
        let other_args = [("A".to_string(), "2".to_string())];
        let base = StepInputs {
            instruction: "COPY a /b",
            build_args: &args,
            env: &[],
            content: Some(&files),
        };
        let key = root.child(&base);
        assert_eq!(key, root.child(&base), "keys are deterministic");
        let variants = [
            CacheKey::base(BaseKey::Image(&other_id), "linux/amd64", Some(1)).child(&base),
            CacheKey::base(BaseKey::Image(&id), "linux/arm64", Some(1)).child(&base),
            CacheKey::base(BaseKey::Image(&id), "linux/amd64", None).child(&base),
            CacheKey::base(BaseKey::Scratch, "linux/amd64", Some(1)).child(&base),
            root.child(&StepInputs {
                instruction: "COPY a /c",
                ..base
            }),
            root.child(&StepInputs {
                build_args: &other_args,
                ..base
            }),
            root.child(&StepInputs { env: &args, ..base }),
            root.child(&StepInputs {
                content: Some(&other_files),
                ..base
            }),
            root.child(&StepInputs {
                content: None,
                ..base
            }),
            key.child(&base),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v, &key, "variant {i}");
        }
        // Moving bytes between fields must not collide.
        let a = root.child(&StepInputs {
            build_args: &[("AB".into(), "C".into())],
            ..StepInputs::default()
        });
        let b = root.child(&StepInputs {
            build_args: &[("A".into(), "BC".into())],
            ..StepInputs::default()
        });
        assert_ne!(a, b);
    }
}
