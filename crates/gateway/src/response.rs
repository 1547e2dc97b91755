//! The response body sent downstream: a local reply or the upstream's response, streamed;
//! it writes the access log line when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::log::PendingLog;
use super::upstream::UpIncoming;
use portcullis_proxy_core::h1;

/// What a downstream response carries.
// Boxing the upstream variant would cost an allocation on every proxied response to save a
// few bytes on local replies.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Payload {
    /// A fixed body (local replies).
    Full(Option<Bytes>),
    /// The upstream response, streamed.
    Upstream(UpIncoming),
}

/// A downstream response body; the access log line is written when it ends or is dropped.
#[derive(Debug)]
pub struct RespBody {
    payload: Payload,
    sent: u64,
    log: Option<Box<PendingLog>>,
    /// `x-envoy-upstream-service-time`, for a head the writer forwards as read.
    service_ms: Option<u64>,
}

impl RespBody {
    pub(crate) fn new(payload: Payload, log: Option<Box<PendingLog>>) -> Self {
        Self {
            payload,
            sent: 0,
            log,
            service_ms: None,
        }
    }

    /// Notes the upstream service time that the writer adds to a head forwarded as read.
    pub(crate) fn set_upstream_service_ms(&mut self, ms: u64) {
        self.service_ms = Some(ms);
    }

    /// The upstream's response head as read, with the service time to add, when the
    /// response's header map was left empty for the writer to forward it (see
    /// `downstream::write_response`).
    pub(crate) fn forwarded_head(&self) -> Option<(&h1::ResponseHead, u64)> {
        match &self.payload {
            Payload::Upstream(b) => Some((b.raw_head()?, self.service_ms?)),
            Payload::Full(_) => None,
        }
    }

    fn finish(&mut self) {
        if let Some(log) = self.log.take() {
            log.finish(self.sent);
        }
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = match &mut this.payload {
            Payload::Full(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Payload::Upstream(body) => Pin::new(body).poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.payload {
            Payload::Full(b) => b.as_ref().is_none_or(Bytes::is_empty),
            Payload::Upstream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.payload {
            Payload::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Payload::Upstream(b) => b.size_hint(),
        }
    }
}
