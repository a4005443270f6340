//! A blob download as a reader: starts where the server says it starts (a `206` for the
//! range asked, else 0), and holds the server to the size the descriptor promised: a
//! stream that ends early or runs long is an error, not a shorter or longer blob.

use std::io::{self, Read};

use strata_oci::Digest;
use ureq::http::Response;
use ureq::Body;

use crate::error::DistributionError;
use crate::transport;

/// The body of a blob GET.
pub struct BlobStream {
    reader: ureq::BodyReader<'static>,
    url: String,
    digest: Digest,
    /// Where this stream starts in the blob.
    offset: u64,
    /// Bytes the blob has in all, when known.
    size: Option<u64>,
    /// Bytes of the blob read so far, `offset` included.
    position: u64,
    /// Where the body ends in the blob (its size, for a whole or open-ended range), from
    /// Content-Length.
    end: Option<u64>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("url", &self.url)
            .field("offset", &self.offset)
            .field("position", &self.position)
            .finish()
    }
}

impl BlobStream {
    pub(crate) fn new(
        resp: Response<Body>,
        url: String,
        digest: Digest,
        size: Option<u64>,
        asked_offset: u64,
    ) -> Result<BlobStream, DistributionError> {
        let protocol = |reason: String| DistributionError::Protocol {
            url: url.clone(),
            reason,
        };
        let offset = if resp.status() == 206 {
            let range = transport::header(&resp, "content-range").unwrap_or("");
            let start = parse_content_range_start(range)
                .ok_or_else(|| protocol(format!("unusable Content-Range {range:?}")))?;
            if start != asked_offset {
                return Err(protocol(format!(
                    "asked for bytes from {asked_offset}, got them from {start}"
                )));
            }
            start
        } else {
            0
        };
        let end = resp.body().content_length().map(|len| offset + len);
        if let (Some(size), Some(len)) = (size, resp.body().content_length()) {
            if offset + len != size {
                return Err(protocol(format!(
                    "blob {digest} is {size} bytes, the registry is sending {}",
                    offset + len
                )));
            }
        }
        Ok(BlobStream {
            reader: resp.into_body().into_reader(),
            url,
            digest,
            offset,
            size,
            position: offset,
            end,
        })
    }

    /// Where in the blob this stream starts: the offset asked for, or 0 if the server
    /// sends the whole blob again.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The blob's size as the server announced it (Content-Length), when it did.
    pub fn announced_size(&self) -> Option<u64> {
        self.size.or(self.end)
    }

    /// The URL it comes from, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// `bytes 100-199/200` → 100.
fn parse_content_range_start(range: &str) -> Option<u64> {
    let rest = range.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

impl Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n == 0 {
            if let Some(size) = self.size {
                if self.position < size {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "blob {} broke off after {} of its {size} bytes",
                            self.digest, self.position
                        ),
                    ));
                }
            }
            return Ok(0);
        }
        self.position += n as u64;
        if let Some(size) = self.size {
            if self.position > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} is longer than the {size} bytes its descriptor says",
                        self.digest
                    ),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            super::parse_content_range_start("bytes 100-199/200"),
            Some(100)
        );
        assert_eq!(super::parse_content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(super::parse_content_range_start("items 1-2"), None);
    }
}
