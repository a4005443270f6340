//! Pass-through reader and writer that sha256 and count every byte on its way.

use std::io::{self, Read, Write};

use strata_oci::{Digest, Sha256Hasher};

/// Reads from `R`, hashing and counting every byte handed out.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256Hasher,
}

impl<R> DigestReader<R> {
    pub fn new(inner: R) -> DigestReader<R> {
        DigestReader {
            inner,
            hasher: Sha256Hasher::new(),
        }
    }

    /// The digest of the bytes read so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// The number of bytes read so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes to `W`, hashing and counting every byte the inner writer accepted.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256Hasher,
}

impl<W> DigestWriter<W> {
    pub fn new(inner: W) -> DigestWriter<W> {
        DigestWriter {
            inner,
            hasher: Sha256Hasher::new(),
        }
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most 3 bytes per write, to check only accepted bytes are hashed.
    struct Trickle(Vec<u8>);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reader_hashes_what_passes_through() {
        let data = b"the quick brown fox".repeat(1000);
        let mut r = DigestReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.len(), 10);
        assert_eq!(r.digest(), Digest::sha256_of(&data[..10]));
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.len(), data.len() as u64);
        assert_eq!(r.digest(), Digest::sha256_of(&data));
    }

    #[test]
    fn writer_hashes_only_accepted_bytes() {
        let data = b"hello digest writer".to_vec();
        let mut w = DigestWriter::new(Trickle(Vec::new()));
        assert!(w.is_empty());
        w.write_all(&data).unwrap();
        assert_eq!(w.len(), data.len() as u64);
        assert_eq!(w.digest(), Digest::sha256_of(&data));
        assert_eq!(w.into_inner().0, data);
    }
}
