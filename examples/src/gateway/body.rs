//! Body types: the request body streamed upstream (counted for the access log) and the
//! response body sent downstream (which writes the access log line when it ends).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::log::PendingLog;
use super::upstream::UpIncoming;

/// A request body on its way upstream: the client's, streamed, or none.
#[derive(Debug, Default)]
pub(crate) struct UpBody {
    inner: Option<Incoming>,
    received: Option<Arc<AtomicU64>>,
}

impl UpBody {
    /// No body.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// The client's body, counting its bytes into `received` if given.
    pub(crate) fn streaming(body: Incoming, received: Option<Arc<AtomicU64>>) -> Self {
        Self {
            inner: Some(body),
            received,
        }
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(counter)) = (&polled, &this.received)
            && let Some(data) = frame.data_ref()
        {
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// What a downstream response carries.
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
}

impl RespBody {
    pub(crate) fn new(payload: Payload, log: Option<Box<PendingLog>>) -> Self {
        Self {
            payload,
            sent: 0,
            log,
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
