//! Request body types: the body a downstream connection delivers and the request body
//! streamed upstream (counted for the access log). The response body sent downstream is
//! `response`'s.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use std::any::Any;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use portcullis_proxy_core::failure::DownstreamFailure;

/// A request body on its way upstream: none, the client's streamed once, or the client's
/// recorded for retries and mirrors.
#[derive(Debug, Default)]
pub(crate) struct UpBody {
    inner: Source,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
enum Source {
    #[default]
    Empty,
    /// Streamed once, counting its bytes into the counter if given.
    Streaming(DownBody, Option<Arc<AtomicU64>>),
    /// A reader of a [`Replayable`] body.
    Replay(Reader),
}

#[derive(Debug)]
struct Reader {
    shared: Arc<Mutex<Recorded>>,
    /// Data frames this reader has had.
    cursor: usize,
    hint: SizeHint,
    /// The request's own attempt, which pulls from the client; a mirror only replays what
    /// the attempt pulled, so it never slows or fails the request.
    primary: bool,
}

/// The most request body bytes kept for retries and mirrors; past it the kept frames are
/// dropped: the request is not retried and a mirror that has not sent them yet is abandoned
/// (Envoy's per-request buffer limit, 1 MiB by default, plays this part).
pub(crate) const REPLAY_LIMIT: usize = 1 << 20;

/// A client body that later attempts of the same request, and mirrors, can send again. The
/// request's attempt pulls from the client and keeps the data frames (shared `Bytes`, not
/// copies) up to [`REPLAY_LIMIT`]; a retry sends the kept frames, then pulls the rest; a
/// mirror sends the kept frames as the attempt pulls them.
#[derive(Debug, Clone)]
pub(crate) struct Replayable {
    shared: Arc<Mutex<Recorded>>,
    hint: SizeHint,
}

#[derive(Debug)]
struct Recorded {
    source: DownBody,
    received: Option<Arc<AtomicU64>>,
    frames: Vec<Bytes>,
    /// Data frames pulled from the client so far (kept or not).
    pulled: usize,
    kept: usize,
    /// Past the limit: the frames were dropped.
    overflowed: bool,
    done: bool,
    /// Mirrors waiting for the attempt to pull more.
    waiting: Vec<Waker>,
    /// Attempt readers alive: with none, nothing pulls from the client, and a mirror that
    /// has sent everything recorded gives up rather than hold the client's body.
    primaries: usize,
}

impl Recorded {
    fn wake_waiting(&mut self) {
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

/// A mirror that fell behind the replay limit.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body longer than {REPLAY_LIMIT} bytes: not replayed"
        )
    }
}

impl std::error::Error for Dropped {}

/// A mirror whose request stopped reading the client's body.
#[derive(Debug)]
struct Abandoned;

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request stopped reading its body")
    }
}

impl std::error::Error for Abandoned {}

/// The client's request body failed as the upstream request sent it: invalid framing, the
/// client gone mid-upload. The upstream side reports it as the client's failure (see
/// [`downstream_failure`]), never as the upstream's.
#[derive(Debug)]
pub(crate) struct DownstreamError {
    failure: DownstreamFailure,
    source: BoxError,
}

impl DownstreamError {
    fn new(source: BoxError) -> Self {
        Self {
            failure: classify(&*source),
            source,
        }
    }
}

impl std::fmt::Display for DownstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "downstream request body: {}", self.source)
    }
}

impl std::error::Error for DownstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// What the client did, from the error its request body gave (hyper's connection's, or an
/// embedder's body's): the I/O error under it (hyper reports an invalid chunk as
/// `InvalidInput`, a body cut short as `UnexpectedEof`), the HTTP/2 error code of a reset
/// stream, or a disconnect.
fn classify(error: &(dyn std::error::Error + 'static)) -> DownstreamFailure {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return DownstreamFailure::from_io_error_kind(io.kind());
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            if let Some(io) = h2.get_io() {
                return DownstreamFailure::from_io_error_kind(io.kind());
            }
            if let Some(reason) = h2.reason() {
                return DownstreamFailure::from_h2_error_code(reason.into());
            }
        }
        cause = e.source();
    }
    DownstreamFailure::Disconnect
}

/// The client's failure behind an upstream request's error, if it is one (a
/// [`DownstreamError`] anywhere in its chain of causes).
pub(crate) fn downstream_failure(
    error: &(dyn std::error::Error + 'static),
) -> Option<DownstreamFailure> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(d) = e.downcast_ref::<DownstreamError>() {
            return Some(d.failure);
        }
        cause = e.source();
    }
    None
}

fn client_error(error: BoxError) -> BoxError {
    Box::new(DownstreamError::new(error))
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.primary {
            let mut rec = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            rec.primaries = rec.primaries.saturating_sub(1);
            if rec.primaries == 0 {
                rec.wake_waiting();
            }
        }
    }
}

impl Replayable {
    /// Starts recording `body`.
    pub(crate) fn new(body: DownBody, received: Option<Arc<AtomicU64>>) -> Self {
        let hint = body.size_hint();
        Self {
            shared: Arc::new(Mutex::new(Recorded {
                source: body,
                received,
                frames: Vec::new(),
                pulled: 0,
                kept: 0,
                overflowed: false,
                done: false,
                waiting: Vec::new(),
                primaries: 0,
            })),
            hint,
        }
    }

    fn new_reader(&self, primary: bool) -> Option<UpBody> {
        let mut rec = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if rec.overflowed {
            return None;
        }
        if primary {
            rec.primaries += 1;
        }
        Some(UpBody {
            inner: Source::Replay(Reader {
                shared: Arc::clone(&self.shared),
                cursor: 0,
                hint: self.hint,
                primary,
            }),
        })
    }

    /// The body for the request's next attempt, from the start; `None` once the body outgrew
    /// [`REPLAY_LIMIT`].
    pub(crate) fn reader(&self) -> Option<UpBody> {
        self.new_reader(true)
    }

    /// The body for a mirror; `None` once the body outgrew [`REPLAY_LIMIT`].
    pub(crate) fn mirror(&self) -> Option<UpBody> {
        self.new_reader(false)
    }
}

impl UpBody {
    /// No body.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// The client's body, counting its bytes into `received` if given.
    pub(crate) fn streaming(body: DownBody, received: Option<Arc<AtomicU64>>) -> Self {
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

impl Reader {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut rec = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if self.cursor < rec.pulled {
            // Behind the attempt (a retry, a mirror): from the recording.
            let Some(frame) = rec.frames.get(self.cursor).cloned() else {
                return Poll::Ready(Some(Err(Box::new(Dropped))));
            };
            self.cursor += 1;
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        if rec.done {
            return Poll::Ready(None);
        }
        if !self.primary {
            if rec.primaries == 0 {
                return Poll::Ready(Some(Err(Box::new(Abandoned))));
            }
            if !rec.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                rec.waiting.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let polled = Pin::new(&mut rec.source).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                count(rec.received.as_ref(), frame);
                if let Some(data) = frame.data_ref() {
                    rec.pulled += 1;
                    self.cursor += 1;
                    if !rec.overflowed && rec.kept + data.len() <= REPLAY_LIMIT {
                        rec.kept += data.len();
                        rec.frames.push(data.clone());
                    } else {
                        rec.overflowed = true;
                        rec.frames = Vec::new();
                    }
                }
                rec.wake_waiting();
            }
            Poll::Ready(None) => {
                rec.done = true;
                rec.wake_waiting();
            }
            Poll::Ready(Some(Err(_))) => rec.wake_waiting(),
            Poll::Pending => {}
        }
        polled.map(|f| f.map(|f| f.map_err(client_error)))
    }

    fn is_end_stream(&self) -> bool {
        let rec = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        self.cursor >= rec.pulled && (rec.done || rec.source.is_end_stream())
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().inner {
            Source::Empty => Poll::Ready(None),
            Source::Streaming(inner, received) => {
                let polled = Pin::new(inner).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    count(received.as_ref(), frame);
                }
                polled.map(|f| f.map(|f| f.map_err(client_error)))
            }
            Source::Replay(reader) => reader.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Source::Empty => true,
            Source::Streaming(inner, _) => inner.is_end_stream(),
            Source::Replay(reader) => reader.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Source::Empty => SizeHint::with_exact(0),
            Source::Streaming(inner, _) => inner.size_hint(),
            Source::Replay(reader) => reader.hint,
        }
    }
}

/// A request body as the downstream connection delivers it: none (the gateway's own HTTP/1.1
/// server serves bodiless requests itself, see `downstream`), read by hyper, or an
/// embedder's body of another type (see [`forward`](crate::forward)).
#[derive(Debug)]
pub(crate) enum DownBody {
    /// No body.
    Empty,
    /// The body hyper's connection reads.
    Hyper(Incoming),
    /// Any other body, boxed.
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl DownBody {
    /// `body` as a downstream body: hyper's own kept as it is (no box), any other boxed.
    pub(crate) fn from_body<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(incoming) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Incoming>>()
            && let Some(incoming) = incoming.take()
        {
            return Self::Hyper(incoming);
        }
        match slot {
            Some(body) => Self::Boxed(UnsyncBoxBody::new(body.map_err(Into::into))),
            None => Self::Empty,
        }
    }
}

impl Body for DownBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            // Boxed only when it fails (rare): the frames go through as they are.
            Self::Hyper(inner) => Pin::new(inner)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(BoxError::from))),
            Self::Boxed(inner) => Pin::new(inner).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Hyper(inner) => inner.is_end_stream(),
            Self::Boxed(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Hyper(inner) => inner.size_hint(),
            Self::Boxed(inner) => inner.size_hint(),
        }
    }
}
