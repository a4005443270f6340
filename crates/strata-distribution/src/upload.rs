//! Blob uploads (distribution spec "push"): a session is opened with a POST (or a mount
//! turns out to be enough), bytes go in PATCHes — one streamed body, or chunks with
//! `Content-Range` — and a PUT with `?digest=` completes the blob. A session's location can
//! be stored and picked up by a later process ([`Repository::resume_upload`]).
//!
//! [`Repository::resume_upload`]: crate::Repository::resume_upload

use std::io::Read;

use strata_oci::Digest;
use ureq::http;

use crate::client::{Endpoint, RegistryClient};
use crate::error::DistributionError;
use crate::transport::{self, Payload, Request};

/// What starting an upload gave.
pub enum UploadStart<'c> {
    /// The registry mounted the blob from the other repository: nothing to send.
    Mounted,
    /// An upload session to send the blob into.
    Session(Box<Upload<'c>>),
}

/// An open upload session.
pub struct Upload<'c> {
    client: &'c RegistryClient,
    ep: Endpoint,
    scopes: Vec<String>,
    name: String,
    location: String,
    offset: u64,
}

impl std::fmt::Debug for Upload<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("location", &self.location)
            .field("offset", &self.offset)
            .finish()
    }
}

impl<'c> Upload<'c> {
    pub(crate) fn new(
        client: &'c RegistryClient,
        ep: Endpoint,
        scopes: Vec<String>,
        name: String,
        location: String,
        offset: u64,
    ) -> Upload<'c> {
        Upload {
            client,
            ep,
            scopes,
            name,
            location,
            offset,
        }
    }

    /// Where the session lives (store it to resume from another process).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Bytes the registry has received so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Sends the next bytes of the blob from `reader`: exactly `len` bytes with a
    /// `Content-Range` when `len` is given, else everything up to its end, streamed.
    pub fn send(
        &mut self,
        reader: &mut dyn Read,
        len: Option<u64>,
    ) -> Result<(), DistributionError> {
        let mut req = Request::new(http::Method::PATCH, self.location.clone())
            .header("content-type", "application/octet-stream");
        if let Some(len) = len {
            if len == 0 {
                return Ok(());
            }
            req = req.header("content-length", len.to_string()).header(
                "content-range",
                format!("{}-{}", self.offset, self.offset + len - 1),
            );
        }
        let mut limited = reader.take(len.unwrap_or(u64::MAX));
        let req = req.payload(Payload::Reader(&mut limited));
        let resp = self.client.send_once(&self.ep, &self.scopes, req)?;
        let url = self.location.clone();
        if resp.status() != 202 && resp.status() != 204 {
            return Err(transport::status_error("PATCH", &url, resp));
        }
        if let Some(end) = transport::header(&resp, "range").and_then(range_end) {
            self.offset = end + 1;
        }
        if let Some(location) = transport::header(&resp, "location") {
            self.location = transport::resolve_location(&url, location);
        }
        Ok(())
    }

    /// Completes the upload as blob `digest`, sending `last` (possibly empty) with the PUT.
    pub fn finish(self, digest: &Digest, last: &[u8]) -> Result<(), DistributionError> {
        let url = crate::auth::with_query(&self.location, &[("digest", digest.as_str())]);
        let resp = self
            .client
            .send(&self.ep, &self.scopes, &url, false, &|u| {
                Request::new(http::Method::PUT, u)
                    .header("content-type", "application/octet-stream")
                    .payload(Payload::Bytes(last))
            })?;
        match resp.status().as_u16() {
            201 | 204 | 200 => Ok(()),
            _ => {
                let err = transport::status_error("PUT", &url, resp);
                Err(match err {
                    DistributionError::Status {
                        detail: Some(d), ..
                    } if d.code == "DIGEST_INVALID" || d.code == "SIZE_INVALID" => {
                        DistributionError::Protocol {
                            url: format!("{}@{digest}", self.name),
                            reason: format!("the registry refused the uploaded bytes: {d}"),
                        }
                    }
                    e => e,
                })
            }
        }
    }
}

/// `Range: 0-1234` (or `bytes=0-1234`) → 1234. `0-0` with nothing received is reported
/// by some registries; the caller treats end + 1 as the next offset either way.
pub(crate) fn range_end(range: &str) -> Option<u64> {
    let r = range.trim();
    let r = r.strip_prefix("bytes=").unwrap_or(r);
    let (_, end) = r.split_once('-')?;
    end.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges() {
        assert_eq!(super::range_end("0-1233"), Some(1233));
        assert_eq!(super::range_end("bytes=0-9"), Some(9));
        assert_eq!(super::range_end("x"), None);
    }
}
