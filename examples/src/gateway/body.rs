//! Body types: the request body streamed upstream (counted for the access log) and the
//! response body sent downstream (which writes the access log line when it ends).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::log::PendingLog;
use super::upstream::UpIncoming;

/// A request body on its way upstream: none, the client's streamed once, or the client's
/// recorded for retries.
#[derive(Debug, Default)]
pub(crate) struct UpBody {
    inner: Source,
}

#[derive(Debug, Default)]
enum Source {
    #[default]
    Empty,
    /// Streamed once, counting its bytes into the counter if given.
    Streaming(Incoming, Option<Arc<AtomicU64>>),
    /// One attempt's reader of a [`Replayable`] body.
    Replay(Arc<Mutex<Recorded>>, usize, SizeHint),
}

/// The most request body bytes kept for retries; a longer body is streamed on and its request
/// is not retried (Envoy's per-request buffer limit, 1 MiB by default, plays this part).
pub(crate) const REPLAY_LIMIT: usize = 1 << 20;

/// A client body that later attempts of the same request can send again. The first reader
/// pulls from the client and keeps the frames (shared `Bytes`, not copies) up to
/// [`REPLAY_LIMIT`]; the next readers send the kept frames, then whatever the client has not
/// sent yet.
#[derive(Debug, Clone)]
pub(crate) struct Replayable {
    shared: Arc<Mutex<Recorded>>,
    hint: SizeHint,
}

#[derive(Debug)]
struct Recorded {
    source: Incoming,
    received: Option<Arc<AtomicU64>>,
    frames: Vec<Bytes>,
    kept: usize,
    /// Past the limit: frames were dropped, no new reader can start.
    overflowed: bool,
    done: bool,
}

impl Replayable {
    /// Starts recording `body`.
    pub(crate) fn new(body: Incoming, received: Option<Arc<AtomicU64>>) -> Self {
        let hint = body.size_hint();
        Self {
            shared: Arc::new(Mutex::new(Recorded {
                source: body,
                received,
                frames: Vec::new(),
                kept: 0,
                overflowed: false,
                done: false,
            })),
            hint,
        }
    }

    /// A body for the next attempt, from the start; `None` once the body outgrew
    /// [`REPLAY_LIMIT`].
    pub(crate) fn reader(&self) -> Option<UpBody> {
        let overflowed = self
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .overflowed;
        (!overflowed).then(|| UpBody {
            inner: Source::Replay(Arc::clone(&self.shared), 0, self.hint),
        })
    }
}

impl UpBody {
    /// No body.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// The client's body, counting its bytes into `received` if given.
    pub(crate) fn streaming(body: Incoming, received: Option<Arc<AtomicU64>>) -> Self {
        Self {
            inner: Source::Streaming(body, received),
        }
    }
}

fn count(counter: Option<&Arc<AtomicU64>>, frame: &Frame<Bytes>) {
    if let (Some(counter), Some(data)) = (counter, frame.data_ref()) {
        counter.fetch_add(data.len() as u64, Ordering::Relaxed);
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().inner {
            Source::Empty => Poll::Ready(None),
            Source::Streaming(inner, received) => {
                let polled = Pin::new(inner).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    count(received.as_ref(), frame);
                }
                polled
            }
            Source::Replay(shared, cursor, _) => {
                let mut rec = shared.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(frame) = rec.frames.get(*cursor) {
                    *cursor += 1;
                    return Poll::Ready(Some(Ok(Frame::data(frame.clone()))));
                }
                if rec.done {
                    return Poll::Ready(None);
                }
                let polled = Pin::new(&mut rec.source).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        count(rec.received.as_ref(), frame);
                        if let Some(data) = frame.data_ref()
                            && !rec.overflowed
                        {
                            if rec.kept + data.len() <= REPLAY_LIMIT {
                                rec.kept += data.len();
                                rec.frames.push(data.clone());
                                *cursor += 1;
                            } else {
                                rec.overflowed = true;
                                rec.frames = Vec::new();
                            }
                        }
                    }
                    Poll::Ready(None) => rec.done = true,
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Source::Empty => true,
            Source::Streaming(inner, _) => inner.is_end_stream(),
            Source::Replay(shared, cursor, _) => {
                let rec = shared.lock().unwrap_or_else(PoisonError::into_inner);
                *cursor >= rec.frames.len() && (rec.done || rec.source.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Source::Empty => SizeHint::with_exact(0),
            Source::Streaming(inner, _) => inner.size_hint(),
            Source::Replay(_, _, hint) => *hint,
        }
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
