//! ADD's archive sniffing: is a local source file a tar (plain, gzip, zstd, bzip2 or xz),
//! judged by its content as Docker does, not by its name; and a reader of the tar stream.
//!
//! bzip2 goes through the `bzip2` crate on its pure-Rust backend (`libbz2-rs-sys`), xz through
//! `lzma-rs` (pure Rust): no C toolchain or system library, and neither touches flate2's backend.
//! lzma-rs only decodes into a writer, so an xz stream is decoded on a thread into a pipe.

use std::fs;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;
use std::thread::JoinHandle;

use strata_layer::{decompress, is_tar_header, TAR_BLOCK};

use crate::BuildError;

const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// A tar reader when `file` (opened from `path`) is an archive ADD extracts; `None` when it is
/// copied as a file.
pub(crate) fn open_archive(
    mut file: fs::File,
    path: &Path,
    line: usize,
) -> Result<Option<Box<dyn Read>>, BuildError> {
    let mut head = [0u8; 6];
    let n = read_full(&mut file, &mut head).map_err(BuildError::io("reading", path))?;
    file.rewind().map_err(BuildError::io("reading", path))?;
    let head = &head[..n];
    let mut reader: Box<dyn Read> = if head.starts_with(BZIP2_MAGIC) {
        Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file)))
    } else if head.starts_with(XZ_MAGIC) {
        Box::new(XzReader::spawn(file).map_err(BuildError::io("decoding xz", path))?)
    } else {
        decompress(BufReader::new(file))
            .map_err(|source| BuildError::Layer { line, source })?
            .1
    };
    let mut block = vec![0u8; TAR_BLOCK];
    // A compressed file that does not decode is not an archive: Docker copies it as it is.
    let Ok(n) = read_full(&mut reader, &mut block) else {
        return Ok(None);
    };
    if n < TAR_BLOCK || !is_tar_header(&block) {
        return Ok(None);
    }
    Ok(Some(Box::new(io::Cursor::new(block).chain(reader))))
}

/// Reads xz-decoded bytes from a decoding thread; a decode error surfaces at the end.
struct XzReader {
    pipe: io::PipeReader,
    worker: Option<JoinHandle<Result<(), String>>>,
}

impl XzReader {
    fn spawn(file: fs::File) -> io::Result<XzReader> {
        let (pipe, mut writer) = io::pipe()?;
        let worker = std::thread::spawn(move || {
            let mut input = BufReader::new(file);
            // The reader may stop early (not a tar): the broken pipe then ends the decoder.
            lzma_rs::xz_decompress(&mut input, &mut writer).map_err(|e| e.to_string())
        });
        Ok(XzReader {
            pipe,
            worker: Some(worker),
        })
    }
}

impl Read for XzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(worker) = self.worker.take() {
                match worker.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(msg)) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("xz: {msg}"),
                        ))
                    }
                    Err(_) => return Err(io::Error::other("xz decoder panicked")),
                }
            }
        }
        Ok(n)
    }
}

pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_of(name: &str, body: &[u8]) -> Vec<u8> {
        strata_testkit::tar_of(&[(name, body)])
    }

    fn listed(mut r: Box<dyn Read>) -> Vec<String> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_codec_is_sniffed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of("a.txt", b"hello");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        bz.write_all(&tar).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
        let cases: [(&str, Vec<u8>); 3] = [
            ("plain", tar.clone()),
            ("bz", bz.finish().unwrap()),
            ("xz", xz),
        ];
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let r = open_archive(file, &path, 1).unwrap().expect(name);
            assert_eq!(listed(r), ["a.txt"], "{name}");
        }
    }

    #[test]
    fn compressed_non_tars_and_broken_streams_are_plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &b"just text, not a tar"[..], &mut xz).unwrap();
        let cases: [(&str, Vec<u8>); 3] = [
            ("xz-text", xz),
            ("bz-broken", b"BZh9 not really bzip2".to_vec()),
            ("xz-broken", [XZ_MAGIC, b"garbage"].concat()),
        ];
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            assert!(open_archive(file, &path, 1).unwrap().is_none(), "{name}");
        }
    }
}
