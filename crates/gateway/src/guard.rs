//! Downstream HTTP/1 connection timeouts that answer like Envoy: a client that does not finish
//! sending a request head within the header timeout gets `408 Request Timeout`, and a
//! keep-alive connection idle for longer than the idle timeout is closed.
//!
//! hyper's own `header_read_timeout` closes the connection without a reply and also runs while
//! the connection is idle, so the gateway uses this wrapper instead. It checks its deadlines on
//! a coarse per-connection tick, and a head or an idle spell is timed from the first tick after
//! it began (so a timeout fires up to two ticks late), which keeps timers and the clock off the
//! request path.
//!
//! HTTP/2 connections (hyper has no idle timeout for them) get the same limits the way Envoy
//! applies them: the idle timeout runs while no stream is open (pings and window updates do
//! not keep a connection alive), the header timeout runs while a header block is unfinished
//! (a HEADERS frame without END_HEADERS and its CONTINUATIONs: nothing else may use the
//! connection meanwhile), and the optional `max_connection_duration` ends a connection however
//! busy. The wrapper follows the frame headers of what the client sends to see header blocks,
//! counts the open streams through [`Heads`], and when a limit passes it asks the connection's
//! task to drain ([`Heads::drained`]): hyper sends GOAWAY and finishes the open streams, and the
//! task closes the connection after the drain timeout at the latest.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::Lifecycle;

const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// What a connection's service tells its [`Guarded`] stream: requests started, HTTP/2
/// streams open; and what the stream asks of the connection's task: to drain.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    /// Request heads parsed.
    started: AtomicU64,
    /// Requests being served through hyper (see [`OpenStream`]).
    open: AtomicU64,
    drain: Notify,
}

impl Heads {
    pub(crate) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves once the connection must drain: GOAWAY, finish the open streams, close.
    pub(crate) async fn drained(&self) {
        self.drain.notified().await;
    }
}

/// A request being served through hyper: counted open until dropped (with the response body
/// that carries it, see [`Tracked`]).
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<Heads>);

impl OpenStream {
    pub(crate) fn new(heads: &Arc<Heads>) -> Self {
        heads.open.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(heads))
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its stream counted open until it is sent (or dropped).
#[derive(Debug)]
pub(crate) struct Tracked<B> {
    body: B,
    _open: OpenStream,
}

impl<B> Tracked<B> {
    pub(crate) fn new(body: B, open: OpenStream) -> Self {
        Self { body, _open: open }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The HTTP/2 connection preface's length (RFC 9113 §3.4).
const H2_PREFACE_LEN: usize = 24;

/// Follows the frame headers of what an HTTP/2 client sends, to know whether a header block
/// is unfinished. Frames are not checked (hyper does that); only their lengths, types and
/// `END_HEADERS` flags are read.
#[derive(Debug, Default)]
struct FrameScan {
    /// Bytes to pass over before the next frame header: the rest of the preface or of a
    /// frame's payload.
    skip: usize,
    header: [u8; 9],
    have: usize,
    /// A HEADERS (or PUSH_PROMISE) frame without END_HEADERS came, and no CONTINUATION with it
    /// yet.
    in_block: bool,
}

impl FrameScan {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = bytes.get(n..).unwrap_or_default();
                continue;
            }
            let mut n = 0;
            for (slot, byte) in self.header.iter_mut().skip(self.have).zip(bytes) {
                *slot = *byte;
                n += 1;
            }
            self.have += n;
            bytes = bytes.get(n..).unwrap_or_default();
            if self.have == self.header.len() {
                let [l0, l1, l2, kind, flags, ..] = self.header;
                self.skip = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                self.have = 0;
                // HEADERS, PUSH_PROMISE, CONTINUATION: the block ends with END_HEADERS (0x4).
                if matches!(kind, 0x1 | 0x5 | 0x9) {
                    self.in_block = flags & 0x4 == 0;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a request since the instant given (`None`: since about now; the next tick
    /// stamps it).
    Idle(Option<Instant>),
    /// Some bytes of a request head arrived at the instant given (`None`: about now; the next
    /// tick stamps it), and the head is not complete.
    ReadingHead(Option<Instant>),
    /// A request is being served.
    Busy,
    /// Writing the 408 reply (bytes written so far).
    Replying(usize),
    /// Done: reads return EOF.
    Closed,
}

/// An I/O stream with the header and idle timeouts.
#[derive(Debug)]
pub(crate) struct Guarded<T> {
    inner: T,
    state: State,
    /// Whether any byte moved since the last tick (refreshes the idle clock).
    active: bool,
    heads: Arc<Heads>,
    heads_seen: u64,
    tick: Pin<Box<Sleep>>,
    tick_every: Duration,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// When the connection started, for `max_connection_duration`.
    born: Instant,
    max_duration: Option<Duration>,
    /// HTTP/2 (see [`Guarded::start_h2`]): no 408, the limits as the module says.
    h2: bool,
    frames: FrameScan,
    /// Since when (the tick after it began) a header block has been unfinished.
    block_since: Option<Instant>,
    /// The connection was asked to drain.
    draining: bool,
    /// The gateway's state: a gateway drain ends idle connections and drains the others.
    lifecycle: Arc<Lifecycle>,
    /// The task the tick will wake: while it has not fired, a read that waits again in the
    /// same task need not poll it.
    tick_waker: Option<Waker>,
}

impl<T> Guarded<T> {
    pub(crate) fn new(
        inner: T,
        heads: Arc<Heads>,
        lifecycle: Arc<Lifecycle>,
        header_timeout: Duration,
        idle_timeout: Duration,
        max_duration: Option<Duration>,
    ) -> Self {
        let tick_every = (header_timeout.min(idle_timeout) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let now = Instant::now();
        Self {
            inner,
            state: State::Idle(Some(now)),
            active: false,
            heads,
            heads_seen: 0,
            tick: Box::pin(tokio::time::sleep_until(now + tick_every)),
            tick_every,
            header_timeout,
            idle_timeout,
            born: now,
            max_duration,
            h2: false,
            frames: FrameScan::default(),
            block_since: None,
            draining: false,
            lifecycle,
            tick_waker: None,
        }
    }

    /// The connection speaks HTTP/2 from here on; `read` is what was read of it so far (the
    /// preface, or its beginning, and maybe frames), which hyper gets from elsewhere.
    pub(crate) fn start_h2(&mut self, read: &[u8]) {
        self.h2 = true;
        self.frames = FrameScan {
            skip: H2_PREFACE_LEN,
            ..FrameScan::default()
        };
        self.frames.feed(read);
        self.state = State::Busy;
    }

    fn expired(&self, now: Instant) -> bool {
        self.max_duration
            .is_some_and(|max| now.duration_since(self.born) >= max)
    }

    /// An HTTP/2 connection's tick: asks the connection to drain once it has had no open
    /// stream for the idle timeout, a header block has stayed unfinished for the header
    /// timeout, or it has lived `max_connection_duration`.
    fn on_tick_h2(&mut self, now: Instant) {
        if self.draining {
            return;
        }
        let started = self.heads.started.load(Ordering::Relaxed);
        let new_streams = std::mem::replace(&mut self.heads_seen, started) != started;
        let in_block = self.frames.in_block;
        let busy = new_streams || in_block || self.heads.open.load(Ordering::Relaxed) > 0;
        let mut drain = self.expired(now) || self.lifecycle.is_draining();
        if in_block {
            let since = *self.block_since.get_or_insert(now);
            drain |= now.duration_since(since) >= self.header_timeout;
        } else {
            self.block_since = None;
        }
        self.state = match self.state {
            _ if busy => State::Busy,
            State::Idle(Some(since)) => {
                drain |= now.duration_since(since) >= self.idle_timeout;
                State::Idle(Some(since))
            }
            _ => State::Idle(Some(now)),
        };
        if drain {
            self.draining = true;
            self.heads.drain.notify_one();
        }
    }

    fn sync_heads(&mut self) {
        let started = self.heads.started.load(Ordering::Relaxed);
        if started != self.heads_seen {
            self.heads_seen = started;
            if matches!(self.state, State::ReadingHead(_) | State::Idle(_)) {
                self.state = State::Busy;
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Guarded<T> {
    /// Checks the deadlines when the tick fires; `true` when the connection must end.
    fn on_tick(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.tick.is_elapsed()
            && self
                .tick_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return false;
        }
        self.tick_waker = Some(cx.waker().clone());
        while self.tick.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            self.tick.as_mut().reset(now + self.tick_every);
            if self.h2 {
                self.on_tick_h2(now);
                continue;
            }
            self.sync_heads();
            let gateway_draining = self.lifecycle.is_draining();
            if gateway_draining && !self.draining {
                // A connection hyper serves closes after its response (`connection: close`).
                self.draining = true;
                self.heads.drain.notify_one();
            }
            if std::mem::take(&mut self.active)
                && let State::Idle(_) = self.state
            {
                self.state = State::Idle(Some(now));
            }
            // A state entered since the last tick is stamped now rather than when it was
            // entered, which keeps the clock off the request path: a timeout fires between
            // one and two ticks late at most.
            match &mut self.state {
                State::Idle(since @ None) | State::ReadingHead(since @ None) => {
                    *since = Some(now);
                }
                State::Idle(Some(since))
                    if (gateway_draining && now.duration_since(*since) >= self.tick_every)
                        || now.duration_since(*since) >= self.idle_timeout
                        || self
                            .max_duration
                            .is_some_and(|max| now.duration_since(self.born) >= max) =>
                {
                    self.state = State::Closed;
                    return true;
                }
                State::ReadingHead(Some(since))
                    if now.duration_since(*since) >= self.header_timeout =>
                {
                    self.state = State::Replying(0);
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Writes the 408 reply; ready when done (or the peer is gone).
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let State::Replying(done) = self.state {
            let Some(rest) = REQUEST_TIMEOUT.get(done..).filter(|r| !r.is_empty()) else {
                let _ = ready!(Pin::new(&mut self.inner).poll_flush(cx));
                self.state = State::Closed;
                break;
            };
            match ready!(Pin::new(&mut self.inner).poll_write(cx, rest)) {
                Ok(0) | Err(_) => self.state = State::Closed,
                Ok(n) => self.state = State::Replying(done + n),
            }
        }
        Poll::Ready(())
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Closed => return Poll::Ready(Ok(())),
                State::Replying(_) => {
                    ready!(this.poll_reply(cx));
                    continue;
                }
                _ => {}
            }
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {
                    let read = buf.filled().len() - before;
                    if read > 0 && this.h2 {
                        this.frames
                            .feed(buf.filled().get(before..).unwrap_or_default());
                    } else if read > 0 {
                        this.active = true;
                        this.sync_heads();
                        if let State::Idle(_) = this.state {
                            this.state = State::ReadingHead(None);
                        }
                    }
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if this.on_tick(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.after_write(n);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.after_write(n);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T> Guarded<T> {
    fn after_write(&mut self, n: usize) {
        if n > 0 && !self.h2 {
            self.active = true;
            self.sync_heads();
            if self.state == State::Busy {
                // The response is going out: the connection is idle again once it is sent
                // (measured from the next tick at the latest).
                self.state = State::Idle(None);
            }
        }
    }
}
