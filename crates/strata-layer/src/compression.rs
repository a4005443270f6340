//! Layer compression: sniffing gzip / zstd by magic bytes, decompressing and compressing streams.

use std::io::{self, Read, Write};

use crate::LayerError;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// gzip level. flate2's default (6), which is also what Docker and BuildKit use (Go's
/// `gzip.DefaultCompression`): registries and users expect blobs of that size, and gzip is
/// only paid when a blob leaves the machine (push, save), where the network is the bottleneck.
/// Level 1 is ~2.6x faster here but ~10% larger; see `tests/throughput.rs`.
pub const GZIP_LEVEL: u32 = 6;
/// zstd level 3, zstd's own default and what BuildKit uses for `compression=zstd`.
pub const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// Detects the compression from the first bytes of a blob (at least 4 for zstd).
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if magic.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "no",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Sniffs the compression of `r` and returns a reader of the decompressed bytes.
///
/// gzip streams may hold several members (Go's reader, so Docker, accepts that), and are
/// read as one. The returned reader reads `r` to its end once it is itself read to its end.
pub fn decompress<'a, R: Read + 'a>(
    mut r: R,
) -> Result<(Compression, Box<dyn Read + 'a>), LayerError> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match r.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(LayerError::Sniff { source }),
        }
    }
    let compression = Compression::detect(&magic[..filled]);
    // Put the sniffed bytes back in front of the rest of the stream.
    let whole = io::Cursor::new(magic).take(filled as u64).chain(r);
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => {
            Box::new(
                zstd::Decoder::new(whole).map_err(|source| LayerError::CompressStart {
                    codec: "zstd",
                    source,
                })?,
            )
        }
    };
    Ok((compression, reader))
}

enum Encoder<W: Write> {
    None(W),
    Gzip(crate::gzip::AdaptiveGzip<W>),
    Zstd(zstd::Encoder<'static, W>),
}

/// A writer that compresses into `w`; [`CompressWriter::finish`] writes the trailer and
/// returns `w`. Output is deterministic: the gzip header carries no name and mtime 0 (as Go's
/// writer), gzip stores the 1 MiB blocks that do not compress instead of searching them for
/// matches (see the `gzip` module), zstd runs single-threaded.
pub struct CompressWriter<W: Write> {
    encoder: Encoder<W>,
    compression: Compression,
}

impl<W: Write> CompressWriter<W> {
    /// Compresses with [`GZIP_LEVEL`] or [`ZSTD_LEVEL`].
    pub fn new(w: W, c: Compression) -> Result<Self, LayerError> {
        let level = match c {
            Compression::Zstd => ZSTD_LEVEL,
            _ => GZIP_LEVEL as i32,
        };
        Self::with_level(w, c, level)
    }

    /// Compresses with an explicit level (gzip 0-9, zstd 1-22; ignored for `None`).
    pub fn with_level(w: W, c: Compression, level: i32) -> Result<Self, LayerError> {
        let encoder = match c {
            Compression::None => Encoder::None(w),
            Compression::Gzip => Encoder::Gzip(
                crate::gzip::AdaptiveGzip::new(w, level.clamp(0, 9) as u32).map_err(|source| {
                    LayerError::CompressStart {
                        codec: "gzip",
                        source,
                    }
                })?,
            ),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(w, level).map_err(|source| {
                LayerError::CompressStart {
                    codec: "zstd",
                    source,
                }
            })?),
        };
        Ok(CompressWriter {
            encoder,
            compression: c,
        })
    }

    /// Flushes the compressor and its trailer, and returns the inner writer.
    pub fn finish(self) -> Result<W, LayerError> {
        let codec = self.compression.name();
        let wrap = |source| LayerError::CompressFinish { codec, source };
        match self.encoder {
            Encoder::None(mut w) => {
                w.flush().map_err(wrap)?;
                Ok(w)
            }
            Encoder::Gzip(e) => e.finish().map_err(wrap),
            Encoder::Zstd(e) => e.finish().map_err(wrap),
        }
    }
}

impl<W: Write> Write for CompressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::None(w) => w.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn detect_by_magic() {
        let cases: &[(&[u8], Compression)] = &[
            (&[0x1f, 0x8b, 0x08, 0x00], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x00], Compression::Zstd),
            (&[0x28, 0xb5, 0x2f], Compression::None),
            (b"ustar", Compression::None),
            (&[], Compression::None),
            (&[0x1f], Compression::None),
        ];
        for (magic, want) in cases {
            assert_eq!(Compression::detect(magic), *want, "{magic:x?}");
        }
    }

    #[test]
    fn round_trip_every_codec_and_detect_it() {
        let data = sample();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut w = CompressWriter::new(Vec::new(), c).unwrap();
            w.write_all(&data).unwrap();
            let blob = w.finish().unwrap();
            if c != Compression::None {
                assert!(blob.len() < data.len() / 4, "{c:?} did not compress");
            }
            let (found, mut r) = decompress(&blob[..]).unwrap();
            assert_eq!(found, c);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{c:?}");
        }
    }

    #[test]
    fn compression_is_deterministic() {
        let data = sample();
        for c in [Compression::Gzip, Compression::Zstd] {
            let run = || {
                let mut w = CompressWriter::new(Vec::new(), c).unwrap();
                // Different write sizes must not change the bytes.
                for chunk in data.chunks(7919) {
                    w.write_all(chunk).unwrap();
                }
                w.finish().unwrap()
            };
            let a = run();
            assert_eq!(a, run(), "{c:?}");
            if c == Compression::Gzip {
                // mtime 0 and OS "unknown", as Go's gzip writer.
                assert_eq!(&a[4..8], &[0, 0, 0, 0]);
                assert_eq!(a[9], 255);
            }
        }
    }

    #[test]
    fn short_and_empty_inputs_pass_through() {
        for input in [&b""[..], &b"ab"[..], &[0x1f][..]] {
            let (c, mut r) = decompress(input).unwrap();
            assert_eq!(c, Compression::None);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, input);
        }
    }

    #[test]
    fn multi_member_gzip_reads_as_one_stream() {
        let mut blob = Vec::new();
        for part in [&b"hello "[..], &b"world"[..]] {
            let mut w = CompressWriter::new(Vec::new(), Compression::Gzip).unwrap();
            w.write_all(part).unwrap();
            blob.extend(w.finish().unwrap());
        }
        let (_, mut r) = decompress(&blob[..]).unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
    }
}
