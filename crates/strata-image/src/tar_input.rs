//! Tar streams a user handed us (a rootfs to import, an archive to load): decompressed,
//! and checked to be a tar at all before anything is stored, so a wrong file gets a plain
//! one-line answer instead of a parser's complaint about some header field. Also the
//! compression of a stored blob, sniffed the same way.

use std::io::{self, Read};

use crate::ImageError;

/// Decompresses `input` (plain, gzip or zstd) and checks that it starts with a tar header.
/// `what` names the input in errors ("the rootfs tar", "the archive").
pub(crate) fn open_tar<'a>(
    input: impl Read + 'a,
    what: &str,
) -> Result<Box<dyn Read + 'a>, ImageError> {
    let (_, mut plain) = strata_layer::decompress(io::BufReader::with_capacity(1 << 20, input))
        .map_err(|e| ImageError::layer(format!("reading {what}"), e))?;
    let mut head = vec![0u8; strata_layer::TAR_BLOCK];
    let n = read_up_to(&mut plain, &mut head)
        .map_err(|e| ImageError::io(format!("reading {what}"), e))?;
    head.truncate(n);
    if !strata_layer::is_tar_header(&head) {
        return Err(ImageError::NotATar(what.to_string()));
    }
    Ok(Box::new(io::Cursor::new(head).chain(plain)))
}

/// How a stored blob is compressed, from its first bytes.
pub(crate) fn blob_compression(
    store: &strata_store::Store,
    blob: &strata_oci::Digest,
) -> Result<strata_layer::Compression, ImageError> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut store.content().open(blob)?, &mut magic)
        .map_err(|e| ImageError::io(format!("reading blob {blob}"), e))?;
    Ok(strata_layer::Compression::detect(&magic[..n]))
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
