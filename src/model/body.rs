//! A stream of bytes with its length announced up front.

use crate::error::Result;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use std::fmt;

/// The bytes of one file, streamed, with the exact length they add up to.
///
/// Sources produce it ([`crate::source::ReceiptSource::open`]), sinks consume it
/// ([`crate::sink::ArchiveSink::write_file`]). A body that yields more or fewer
/// bytes than `len` is an [`crate::Error::Integrity`] for whoever reads it.
///
/// The stream is fused: polled again after its end, it yields `None` again. Sinks rely
/// on this to check that nothing follows the announced bytes, and after a retried
/// request, whatever stream the source gave.
pub struct Body {
    len: u64,
    stream: BoxStream<'static, Result<Bytes>>,
}

impl Body {
    /// A body of `len` bytes read from `stream`.
    pub fn new(len: u64, stream: BoxStream<'static, Result<Bytes>>) -> Self {
        Self {
            len,
            stream: stream.fuse().boxed(),
        }
    }

    /// A body holding `bytes` in memory, in one chunk.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let len = bytes.len() as u64;
        let stream = if bytes.is_empty() {
            stream::empty().boxed()
        } else {
            stream::once(async move { Ok(bytes) }).boxed()
        };
        Self { len, stream }
    }

    /// The number of bytes the stream yields.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The byte stream.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        self.stream
    }

    /// Reads the whole body into memory, checking its length.
    /// Meant for tests and small files; sinks stream instead.
    pub async fn collect(self, what: &str) -> Result<Vec<u8>> {
        let expected = self.len;
        let mut out = Vec::with_capacity(usize::try_from(expected.min(1 << 20)).unwrap_or(0));
        let mut stream = self.stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() as u64 > expected {
                break;
            }
        }
        if out.len() as u64 != expected {
            return Err(crate::Error::Integrity {
                what: what.to_owned(),
                expected: format!("{expected} bytes"),
                actual: format!("{} bytes", out.len()),
            });
        }
        Ok(out)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod fused {
    use super::*;

    /// A stream that panics if polled after its end, as `futures::stream::unfold` does.
    #[tokio::test]
    async fn a_body_may_be_polled_after_its_end() {
        let unfold = stream::unfold(false, |done| async move {
            (!done).then(|| (Ok(Bytes::from_static(b"ab")), true))
        });
        let mut stream = Body::new(2, unfold.boxed()).into_stream();
        assert!(stream.next().await.is_some());
        assert!(stream.next().await.is_none());
        assert!(stream.next().await.is_none(), "polled again, still the end");
    }
}
