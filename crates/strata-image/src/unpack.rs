//! Makes sure every layer of an image is unpacked as a snapshot, verifying each layer's
//! diff_id as its bytes stream into the snapshotter (never after).

use std::io::{self, Read};

use strata_oci::{chain_ids, Digest, Sha256Hasher};
use strata_store::{DriverKind, ImageRecord, Store};

use crate::ImageError;

/// One snapshot to create: layer `index` of some image, on top of `parent`.
struct Pending {
    chain_id: Digest,
    parent: Option<Digest>,
    diff_id: Digest,
    blob: Digest,
}

/// Unpacks the missing snapshots of `images`. With the overlay driver every layer unpacks
/// into its own empty directory, so distinct layers unpack in parallel; vfs copies each
/// parent, so its chains unpack bottom-up.
pub fn ensure_snapshots(store: &Store, images: &[&ImageRecord]) -> Result<(), ImageError> {
    let snapshotter = store.snapshotter();
    let mut pending: Vec<Pending> = Vec::new();
    for image in images {
        let diff_ids: Vec<Digest> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        let chain = chain_ids(&diff_ids);
        for (i, layer) in image.layers.iter().enumerate() {
            if pending.iter().any(|p| p.chain_id == chain[i]) || snapshotter.exists(&chain[i])? {
                continue;
            }
            pending.push(Pending {
                chain_id: chain[i].clone(),
                parent: i.checked_sub(1).map(|p| chain[p].clone()),
                diff_id: layer.diff_id.clone(),
                blob: layer.blob.clone(),
            });
        }
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if store.driver() == DriverKind::Overlay && pending.len() > 1 && workers > 1 {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), ImageError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.min(pending.len()))
                .map(|_| {
                    scope.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = pending.get(i) else {
                            return Ok(());
                        };
                        unpack_one(store, job)?;
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(ImageError::InvalidArchive("unpack worker panicked".into())))
                })
                .collect()
        });
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
    } else {
        for job in &pending {
            unpack_one(store, job)?;
        }
    }
    Ok(())
}

fn unpack_one(store: &Store, job: &Pending) -> Result<(), ImageError> {
    let blob = store.content().open(&job.blob)?;
    let (_, plain) = strata_layer::decompress(io::BufReader::with_capacity(1 << 20, blob))
        .map_err(|e| ImageError::layer(format!("reading layer blob {}", job.blob), e))?;
    let mut verified = VerifyingReader::new(plain, job.diff_id.clone());
    store.snapshotter().unpack_layer(
        &job.chain_id,
        job.parent.as_ref(),
        &job.diff_id,
        &mut verified,
    )?;
    Ok(())
}

/// Hashes what passes through and fails the final read if the digest is not `expected`, so
/// a consumer that commits only after a clean end of stream never commits wrong content.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Sha256Hasher>,
    expected: Digest,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R, expected: Digest) -> Self {
        VerifyingReader {
            inner,
            hasher: Some(Sha256Hasher::new()),
            expected,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
        } else if !buf.is_empty() {
            if let Some(h) = self.hasher.take() {
                let actual = h.finish();
                if actual != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "layer content has digest {actual}, expected {}",
                            self.expected
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_reader_fails_at_the_end_on_mismatch() {
        let good = Digest::sha256_of(b"hello");
        let mut ok = VerifyingReader::new(&b"hello"[..], good.clone());
        let mut out = Vec::new();
        ok.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");

        let mut bad = VerifyingReader::new(&b"hellO"[..], good);
        let err = bad.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
