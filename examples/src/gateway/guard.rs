//! Downstream HTTP/1 connection timeouts that answer like Envoy: a client that does not finish
//! sending a request head within the header timeout gets `408 Request Timeout`, and a
//! keep-alive connection idle for longer than the idle timeout is closed.
//!
//! hyper's own `header_read_timeout` closes the connection without a reply and also runs while
//! the connection is idle, so the gateway uses this wrapper instead. It checks its deadlines on
//! a coarse per-connection tick, and a head or an idle spell is timed from the first tick after
//! it began (so a timeout fires up to two ticks late), which keeps timers and the clock off the
//! request path.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// The request counter a connection's service increments when a request head has been parsed.
#[derive(Debug, Default)]
pub(crate) struct Heads(AtomicU64);

impl Heads {
    pub(crate) fn started(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
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
    /// HTTP/2: no 408 (streams are multiplexed); only the idle timeout.
    h2: bool,
    first_read: bool,
    /// The task the tick will wake: while it has not fired, a read that waits again in the
    /// same task need not poll it.
    tick_waker: Option<Waker>,
}

impl<T> Guarded<T> {
    pub(crate) fn new(
        inner: T,
        heads: Arc<Heads>,
        header_timeout: Duration,
        idle_timeout: Duration,
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
            h2: false,
            first_read: true,
            tick_waker: None,
        }
    }

    fn sync_heads(&mut self) {
        let started = self.heads.0.load(Ordering::Relaxed);
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
            self.sync_heads();
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
                State::Idle(Some(since)) if now.duration_since(*since) >= self.idle_timeout => {
                    self.state = State::Closed;
                    return true;
                }
                State::ReadingHead(Some(since))
                    if !self.h2 && now.duration_since(*since) >= self.header_timeout =>
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
                    if read > 0 {
                        this.active = true;
                        if std::mem::take(&mut this.first_read)
                            && buf
                                .filled()
                                .get(before..)
                                .is_some_and(|b| b.starts_with(b"PRI "))
                        {
                            this.h2 = true;
                        }
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
        if n > 0 {
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
