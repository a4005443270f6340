//! Request and response bodies: both stream, neither is ever gathered whole (except a
//! manifest, which is capped).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body::{Body as _, Frame};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Incoming;

use crate::storage::ByteStream;

/// Every response body.
pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn streaming(stream: ByteStream) -> Body {
    StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
}

/// A request body as a stream of data chunks (trailers dropped).
pub(crate) struct IncomingStream(pub(crate) Incoming);

impl futures_util::Stream for IncomingStream {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match Pin::new(&mut self.0).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_) => continue, // trailers
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(io::Error::other(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

pub(crate) fn request_stream(body: Incoming) -> ByteStream {
    Box::pin(IncomingStream(body))
}

/// Reads a whole body of at most `limit` bytes; `Err(None)` when it is larger. A larger
/// body is still read (and dropped) up to a few times the limit, so the client gets the
/// error response instead of a reset connection in the middle of its upload.
pub(crate) async fn collect_limited(
    mut body: Incoming,
    limit: u64,
) -> Result<Bytes, Option<io::Error>> {
    let drain_limit = limit.saturating_mul(4).max(1 << 20);
    if body.size_hint().lower() > drain_limit {
        return Err(None);
    }
    let mut out = Vec::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Some(io::Error::other(e)))?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > drain_limit {
                return Err(None);
            }
            if total <= limit {
                out.extend_from_slice(&data);
            }
        }
    }
    if total > limit {
        return Err(None);
    }
    Ok(Bytes::from(out))
}
