//! The gateway's own HTTP/1.1 server for the common case: a keep-alive connection carrying
//! requests without a body (GET, HEAD, DELETE, … with no `content-length` or `0`). Heads are
//! parsed by `portcullis_proxy_core::h1` into a reusable read buffer, the request runs on the
//! connection's own task, and the response head and the first part of the body leave in one
//! write. hyper's server connection (a dispatcher, a body channel and a second buffer per
//! connection) costs about as many instructions per request as routing and forwarding
//! together, and most edge traffic is bodiless.
//!
//! A connection waiting for its next request holds no buffer and no request state: the read
//! buffer is made when bytes arrive (they are read onto the stack first), and a request's
//! work (routing, forwarding, the answer's writing) lives in a box of its own for as long as
//! the request does. An edge gateway keeps tens of thousands of idle keep-alive connections,
//! and these are what each would otherwise keep (`tests/idle_memory.rs` holds the line).
//!
//! Everything else goes to hyper, which takes the connection over from that request on with
//! the bytes already read put back in front of the stream: request bodies, `expect`, protocol
//! switches (WebSocket, h2c, `CONNECT`), HTTP/1.0, HTTP/2 (its preface does not parse as
//! HTTP/1), heads too large or malformed (hyper answers 431 or 400, as before). So every
//! behaviour hyper had stays hyper's, and this path only has to be right for the requests it
//! keeps.

use std::future::{Future, poll_fn};
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{Method, Request, StatusCode, Version};
use hyper::body::Body as _;
use portcullis_proxy_core::h1::{self, BodyFraming};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use super::Lifecycle;
use super::body::DownBody;
use super::guard::Guarded;
use super::proxy::{self, ConnCtx, Writer};
use super::response::RespBody;
use super::worker::Worker;

/// The read buffer's size, and the most response bytes gathered before a write.
const BUF: usize = 8 * 1024;
/// The least a connection's read buffer is made with when a request starts arriving.
const FIRST_READ: usize = 1024;
/// Body data up to this size is copied behind the head (one write); larger data is written
/// on its own.
const COALESCE: usize = 16 * 1024;

/// The limits on request heads this server applies (the listener's `Limits`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLimits {
    pub(crate) max_headers: usize,
    pub(crate) max_header_bytes: usize,
}

/// Serves HTTP/1.1 on `io` until the client or the idle timeout closes it, or `hyper` (the
/// listener's hyper server, see `server::serve_hyper`) takes it over.
pub(crate) async fn serve<I, H, F>(
    mut io: Guarded<I>,
    ctx: Arc<ConnCtx>,
    limits: HeadLimits,
    lifecycle: &Lifecycle,
    hyper: H,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: FnOnce(Rewind<Guarded<I>>, Arc<ConnCtx>) -> F,
    F: Future<Output = ()>,
{
    let mut buf = BytesMut::new();
    loop {
        let head = loop {
            // Between requests the buffer is usually empty: nothing to parse before reading.
            let parsed = if buf.is_empty() {
                Ok(None)
            } else {
                h1::parse_request_head(&mut buf, limits.max_headers)
            };
            match parsed {
                Ok(Some(head)) => break head,
                Ok(None) if buf.len() < limits.max_header_bytes => {}
                // Malformed, too large, or not HTTP/1 at all (the HTTP/2 preface): hyper's.
                Ok(None) | Err(_) => {
                    if buf.starts_with(b"PRI * HTTP/2") {
                        io.start_h2(&buf);
                    }
                    return Box::pin(hyper(Rewind::new(buf.freeze(), io), ctx)).await;
                }
            }
            let read = if buf.is_empty() {
                // Waiting for a request: whatever buffer the last one left is given back.
                buf = BytesMut::new();
                read_when_ready(&mut io, &mut buf).await
            } else {
                if buf.capacity() - buf.len() < BUF / 4 {
                    buf.reserve(BUF);
                }
                io.read_buf(&mut buf).await
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        if !served_here(&head, limits.max_header_bytes) {
            let mut read = BytesMut::with_capacity(head.raw().len() + buf.len());
            read.extend_from_slice(head.raw());
            read.extend_from_slice(&buf);
            return Box::pin(hyper(Rewind::new(read.freeze(), io), ctx)).await;
        }
        let reusable = Box::pin(respond(&mut io, &ctx, head, lifecycle)).await;
        if !reusable {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// Reads what the stream has once it has something, into `buf` made for it then: while the
/// connection is quiet nothing is held. The bytes are read onto the stack and copied, a few
/// hundred bytes for a typical request head.
async fn read_when_ready<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut landing = [std::mem::MaybeUninit::<u8>::uninit(); BUF];
        let mut read = ReadBuf::uninit(&mut landing);
        match Pin::new(&mut *io).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let filled = read.filled();
                if !filled.is_empty() {
                    // Sized to what came, which is usually the whole head: a small block
                    // is the allocator's quickest. A head that needs more grows it as it
                    // comes (see `serve`).
                    buf.reserve(filled.len().max(FIRST_READ));
                    buf.extend_from_slice(filled);
                }
                Poll::Ready(Ok(filled.len()))
            }
        }
    })
    .await
}

/// Serves one request the connection's own way: routes and forwards it, and writes the
/// answer. `true` when the connection can carry another request.
async fn respond<I>(
    io: &mut Guarded<I>,
    ctx: &Arc<ConnCtx>,
    head: h1::RequestHead,
    lifecycle: &Lifecycle,
) -> bool
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let keep_alive = head.keep_alive();
    let head_request = head.method == Method::HEAD;
    let h1::RequestHead {
        method,
        target,
        version,
        headers,
        ..
    } = head;
    let mut req = Request::new(DownBody::Empty);
    *req.method_mut() = method;
    *req.uri_mut() = target;
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    let mut resp = match proxy::handle(Arc::clone(ctx), req, Writer::Own).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    // A refused request's reply says `connection: close` (its framing is in doubt); the
    // writer says it itself.
    let refused = resp
        .headers_mut()
        .remove(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    // A draining gateway closes every connection after its response.
    let close = !keep_alive || refused || lifecycle.is_draining();
    let mut out = Vec::with_capacity(1024);
    write_response(io, &mut out, resp, head_request, close, &ctx.worker).await
}

/// Whether this server answers the request itself (see the module's documentation). A head
/// whose framing is refused (`content-length` with `transfer-encoding`, repeated lengths, …)
/// is answered here too, from the lines as received: hyper would drop a repeated
/// `content-length` before the gateway could see it.
fn served_here(head: &h1::RequestHead, max_header_bytes: usize) -> bool {
    let framing = head.body_framing();
    (framing.is_err() && head.raw().len() <= max_header_bytes)
        || (head.version == Version::HTTP_11
            && !head.switches_protocol()
            && !head.expects()
            && framing == Ok(BodyFraming::None)
            && head.raw().len() <= max_header_bytes)
}

/// Writes `resp` (head and body); `true` when the connection can carry another request.
async fn write_response<W: AsyncWrite + Unpin>(
    io: &mut W,
    out: &mut Vec<u8>,
    resp: http::Response<RespBody>,
    head_request: bool,
    close: bool,
    worker: &Worker,
) -> bool {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let forwarded = body.forwarded_head();
    // What the head says the body is, and how many bytes that promises.
    let (framing, promised) = if bodiless {
        (BodyFraming::None, Some(0))
    } else if let Some(declared) = parts
        .headers
        .get(CONTENT_LENGTH)
        .filter(|_| forwarded.is_none())
    {
        let n = declared.to_str().ok().and_then(|v| v.trim().parse().ok());
        (BodyFraming::None, n)
    } else if body.is_end_stream() {
        (BodyFraming::Length(0), Some(0))
    } else if let Some(n) = body.size_hint().exact() {
        (BodyFraming::Length(n), Some(n))
    } else {
        (BodyFraming::Chunked, None)
    };
    out.clear();
    let date = worker.http_date();
    match forwarded {
        // An upstream's head as read: the writer drops what must not be forwarded and adds
        // what Envoy adds (the upstream's content-length gives way to the framing).
        Some((head, service_ms)) => {
            let mut ms = itoa::Buffer::new();
            let set: [(&str, &[u8]); 2] = [
                ("server", b"istio-envoy"),
                (
                    "x-envoy-upstream-service-time",
                    ms.format(service_ms).as_bytes(),
                ),
            ];
            h1::encode_forwarded_response_head(head, &set, framing, Some(&date), close, out);
        }
        None => h1::encode_response_head(status, &parts.headers, framing, Some(&date), close, out),
    }
    drop(parts);
    if bodiless {
        drop(body);
        return send(io, out).await.is_ok() && !close;
    }
    let chunked = framing == BodyFraming::Chunked;
    let mut sent = 0u64;
    let mut intact = true;
    loop {
        // A frame that is ready joins what is gathered; only a wait for the body sends it.
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if send(io, out).await.is_err() {
                    return false;
                }
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let mut data = match frame {
            None => break,
            Some(Err(_)) => {
                // The upstream failed mid-body: what was sent stands, and closing the
                // connection tells the client the body is incomplete.
                intact = false;
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Trailers are not sent to HTTP/1.1 clients.
                _ => continue,
            },
        };
        if let Some(limit) = promised {
            let room = usize::try_from(limit.saturating_sub(sent)).unwrap_or(usize::MAX);
            if data.len() > room {
                data.truncate(room);
                intact = false;
            }
        }
        sent += data.len() as u64;
        if chunked {
            // Writing into a `Vec` cannot fail.
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if out.len() + data.len() <= COALESCE {
            out.extend_from_slice(&data);
        } else if send(io, out).await.is_err() || io.write_all(&data).await.is_err() {
            return false;
        }
        if chunked {
            out.extend_from_slice(b"\r\n");
        }
        if !intact {
            break;
        }
    }
    if chunked && intact {
        out.extend_from_slice(h1::LAST_CHUNK);
    }
    if promised.is_some_and(|n| n != sent) {
        intact = false;
    }
    drop(body);
    // A body neither chunked nor of a known length ends only with the connection.
    let delimited = chunked || promised.is_some();
    send(io, out).await.is_ok() && intact && delimited && !close
}

/// Writes and empties `out`, then flushes (TLS streams hold records until then).
async fn send<W: AsyncWrite + Unpin>(io: &mut W, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    io.flush().await
}

/// A stream with bytes already read from it put back in front.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    read: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(read: Bytes, inner: T) -> Self {
        Self { read, inner }
    }

    /// The stream, without the bytes not read yet.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.read.len().min(buf.remaining());
        if let Some(part) = this.read.get(..n) {
            buf.put_slice(part);
        }
        this.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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
