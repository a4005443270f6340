//! gzip that does not waste time on bytes that do not compress.
//!
//! The input is deflated in 1 MiB blocks. Before each block, its first 64 KiB are deflated
//! at level 1 as a probe: when that saves less than 2%, the block is written as stored
//! deflate blocks (what deflate itself emits for such data, after having searched for
//! matches in vain), else it is deflated at the requested level. Before stored blocks the
//! deflater is fully flushed (byte-aligned, its history dropped), so nothing it emits later
//! refers back across bytes it has not seen. Random data, and the
//! already compressed files that fill many layers (archives, images, jars, wheels), then
//! cost a copy and a CRC instead of a full match search; text and binaries compress as
//! before. The decision depends on the bytes only, so the output is as deterministic as
//! plain gzip: the same input always gives the same blob, however it is written.
//!
//! The stream is one gzip member (header as Go's writer: mtime 0, OS "unknown") that any
//! gzip reader accepts.

use std::io::{self, Write};

use flate2::{Compress, FlushCompress, Status};

/// Input deflated per decision.
const BLOCK: usize = 1 << 20;
/// Bytes of a block the probe looks at.
const PROBE: usize = 64 << 10;
/// A probe that keeps more than this share of its bytes means "does not compress".
const STORE_ABOVE: f64 = 0.98;

/// A gzip writer storing the 1 MiB blocks that do not compress.
pub(crate) struct AdaptiveGzip<W: Write> {
    inner: W,
    deflate: Compress,
    /// `deflate` was given input since its last full flush.
    dirty: bool,
    crc: flate2::Crc,
    block: Vec<u8>,
    out: Vec<u8>,
}

impl<W: Write> AdaptiveGzip<W> {
    pub(crate) fn new(mut inner: W, level: u32) -> io::Result<AdaptiveGzip<W>> {
        // ID1 ID2 CM=deflate FLG=0, MTIME=0, XFL=0, OS=255 (unknown).
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(AdaptiveGzip {
            inner,
            deflate: Compress::new(flate2::Compression::new(level), false),
            dirty: false,
            crc: flate2::Crc::new(),
            block: Vec::with_capacity(BLOCK),
            out: Vec::with_capacity(BLOCK + BLOCK / 8),
        })
    }

    /// Whether `data` looks worth deflating.
    fn compresses(&mut self, data: &[u8]) -> io::Result<bool> {
        let sample = &data[..data.len().min(PROBE)];
        // A fresh deflater per probe: zlib-rs 0.6 trips over a reset one fed a whole block.
        let mut probe = Compress::new(flate2::Compression::new(1), false);
        let mut out = Vec::with_capacity(sample.len() * 2 + 4096);
        probe
            .compress_vec(sample, &mut out, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        Ok((out.len() as f64) < sample.len() as f64 * STORE_ABOVE)
    }

    /// Deflates (or stores) the buffered block; `last` ends the deflate stream.
    fn flush_block(&mut self, last: bool) -> io::Result<()> {
        let block = std::mem::take(&mut self.block);
        self.crc.update(&block);
        if !block.is_empty() && !self.compresses(&block)? {
            if self.dirty {
                self.drive(&[], FlushCompress::Full)?;
                self.dirty = false;
            }
            for piece in block.chunks(u16::MAX as usize) {
                // A stored block: BFINAL=0, BTYPE=00 (byte-aligned), LEN, NLEN, the bytes.
                let len = piece.len() as u16;
                self.inner.write_all(&[0])?;
                self.inner.write_all(&len.to_le_bytes())?;
                self.inner.write_all(&(!len).to_le_bytes())?;
                self.inner.write_all(piece)?;
            }
            if last {
                self.drive(&[], FlushCompress::Finish)?;
            }
        } else {
            self.dirty |= !block.is_empty();
            let flush = if last {
                FlushCompress::Finish
            } else {
                FlushCompress::None
            };
            self.drive(&block, flush)?;
        }
        self.block = block;
        self.block.clear();
        Ok(())
    }

    /// Feeds `input` to deflate with `flush`, writing what comes out, until the input is
    /// used up and (for a flush) everything pending is out.
    fn drive(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            self.out.clear();
            let before_in = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let used = (self.deflate.total_in() - before_in) as usize;
            input = &input[used..];
            self.inner.write_all(&self.out)?;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                FlushCompress::None => input.is_empty(),
                // A flush is complete when deflate leaves output space unused.
                _ => input.is_empty() && self.out.len() < self.out.capacity(),
            };
            if done {
                return Ok(());
            }
        }
    }

    /// Ends the stream (deflate end, CRC32 and size trailer) and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.flush_block(true)?;
        let sum = self.crc.sum().to_le_bytes();
        let size = self.crc.amount().to_le_bytes();
        self.inner.write_all(&sum)?;
        self.inner.write_all(&size)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for AdaptiveGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            self.flush_block(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are fixed in size so the bytes do not depend on how the input was written.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], write_size: usize) -> Vec<u8> {
        let mut w = AdaptiveGzip::new(Vec::new(), 6).unwrap();
        for chunk in data.chunks(write_size) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn mixed_data_round_trips_and_noise_is_stored_not_grown() {
        let mut data = noise(3 << 20, 7);
        data.extend(b"some text that repeats. ".repeat(100_000));
        data.extend(noise(300_000, 9));
        let blob = gzip(&data, 65_537);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let noise_part = 3 << 20;
        // Stored noise costs a few bytes per 64 KiB; the text compresses.
        assert!(
            blob.len() < noise_part + 300_000 + 200_000,
            "{}",
            blob.len()
        );
        // Deterministic whatever the write sizes.
        assert_eq!(blob, gzip(&data, 4096));
        assert_eq!(blob, gzip(&data, 1 << 21));
    }

    #[test]
    fn repeated_random_chunks_are_still_deflated() {
        // Uniform bytes but long repeats: the probe sees the matches.
        let data = noise(4096, 3).repeat(600);
        let blob = gzip(&data, 10_000);
        assert!(blob.len() < data.len() / 20, "{}", blob.len());
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let blob = gzip(b"", 1);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
    }
}
