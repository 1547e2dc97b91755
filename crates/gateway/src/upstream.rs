//! Upstream connections: a connector (plain TCP with `TCP_NODELAY`, or TLS origination with a
//! `portcullis-tls` client configuration) and a per-worker keep-alive pool of HTTP/1.1
//! connections, driven by the request's own task (`portcullis_proxy_core::h1` frames the messages).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use foldhash::fast::FixedState;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http2;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::body::{UpBody, downstream_failure};
use portcullis_proxy_core::{failure::DownstreamFailure, h1};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TLS origination settings of a cluster, built once per plan.
#[derive(Clone, Debug)]
pub(crate) struct Origination {
    /// ALPN `http/1.1`.
    pub(crate) config: Arc<rustls::ClientConfig>,
    /// ALPN `h2`, for clusters that may speak HTTP/2.
    pub(crate) config_h2: Option<Arc<rustls::ClientConfig>>,
    pub(crate) server_name: ServerName<'static>,
    /// A description of the settings it was built from: equal keys mean the same TLS
    /// behaviour, so pooled connections can be kept across plans.
    pub(crate) key: String,
}

/// Connects to `http://ip:port` (plain) or `https://ip:port` (TLS with the cluster's settings).
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    http: HttpConnector,
    tls: Option<Arc<Origination>>,
}

impl Connector {
    pub(crate) fn new(connect_timeout: Duration, tls: Option<Arc<Origination>>) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(300)));
        Self { http, tls }
    }

    /// A new connection to the authority of `uri`, with TLS when the cluster originates it
    /// (offering `h2` for an HTTP/2 connection).
    async fn connect(&self, uri: &Uri, http2: bool) -> Result<Stream, BoxError> {
        let mut http = self.http.clone();
        let tcp = tower_service::Service::call(&mut http, uri.clone())
            .await?
            .into_inner();
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(tls) => {
                let config = match (&tls.config_h2, http2) {
                    (Some(h2), true) => h2,
                    _ => &tls.config,
                };
                let connector = TlsConnector::from(Arc::clone(config));
                let stream = connector.connect(tls.server_name.clone(), tcp).await?;
                Ok(Stream::Tls(Box::new(stream)))
            }
        }
    }
}

/// An upstream connection's byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The pooling HTTP/1.1 client of one worker for one kind of upstream connection.
///
/// A small keep-alive pool keyed by the request's authority (`ip:port`). The request's own
/// task writes the request and reads the response ([`h1`] frames them); there is no
/// connection task and no channel in between. A connection goes back to the pool when its
/// response body has been read to the end and the upstream did not ask to close it; idle
/// connections are kept [`POOL_IDLE_TIMEOUT`] and checked for closing (the upstream's
/// keep-alive timeout) when taken out. Upgrade requests (WebSocket) go through hyper on a
/// connection of their own, since the upgraded stream outlives the request.
#[derive(Clone, Debug)]
pub(crate) struct UpClient {
    pool: Arc<Pool>,
}

/// How long an idle upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Read size for response heads and bodies.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug)]
struct Pool {
    connector: Connector,
    /// The owning worker's clock, for idle times.
    coarse: Arc<CoarseClock>,
    idle: Mutex<HashMap<Box<str>, Vec<Idle>, FixedState>>,
    /// One multiplexed HTTP/2 connection per endpoint (hyper's, with its own task).
    h2: Mutex<HashMap<Box<str>, http2::SendRequest<UpBody>, FixedState>>,
}

/// An open HTTP/1.1 connection and the bytes read from it but not used yet.
#[derive(Debug)]
struct Conn {
    io: Stream,
    buf: BytesMut,
    /// Requests it has carried.
    requests: u32,
}

/// A cluster's settings for its upstream requests (pilot's translation of the DestinationRule
/// `connectionPool` and the port protocol).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UpOptions {
    /// Speak HTTP/2 (one multiplexed connection per endpoint).
    pub(crate) http2: bool,
    /// `maxRequestsPerConnection`: a connection that has carried this many requests is closed
    /// after the last one (1 turns keep-alive off).
    pub(crate) max_requests_per_connection: Option<u32>,
    /// `idleTimeout`: a pooled connection idle longer than this is not used again (default
    /// [`POOL_IDLE_TIMEOUT`]).
    pub(crate) idle_timeout: Option<Duration>,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

/// Why an upstream request failed.
#[derive(Debug)]
pub(crate) enum UpError {
    /// No connection could be made (refused, timed out, TLS handshake failed).
    Connect(BoxError),
    /// The connection failed while the request was sent or the response head read.
    Request(BoxError),
    /// The request has no `ip:port` authority.
    NoAuthority,
    /// The client failed the request while it was sent (its body's framing was invalid, it
    /// disconnected mid-upload): not the upstream's failure.
    Downstream(DownstreamFailure),
}

impl UpError {
    /// Whether the request never reached the upstream because no connection could be made.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::NoAuthority)
    }

    /// The client's failure, when the request failed because of the client.
    pub(crate) fn downstream(&self) -> Option<DownstreamFailure> {
        match self {
            Self::Downstream(failure) => Some(*failure),
            _ => None,
        }
    }

    /// A request error, or the client's failure if that is what it is (a request sent by
    /// hyper reports its body's error as its own).
    fn request(error: hyper::Error) -> Self {
        match downstream_failure(&error) {
            Some(failure) => Self::Downstream(failure),
            None => Self::Request(error.into()),
        }
    }
}

impl std::fmt::Display for UpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Request(e) => write!(f, "request: {e}"),
            Self::NoAuthority => f.write_str("no authority"),
            Self::Downstream(failure) => {
                write!(f, "downstream failure ({})", failure.response_flag())
            }
        }
    }
}

impl std::error::Error for UpError {}

/// A keep-alive pooling client (idle connections kept 90 s, no per-host limit).
pub(crate) fn client(connector: Connector, coarse: Arc<CoarseClock>) -> UpClient {
    UpClient {
        pool: Arc::new(Pool {
            connector,
            coarse,
            idle: Mutex::new(HashMap::default()),
            h2: Mutex::new(HashMap::default()),
        }),
    }
}

/// How an exchange failed, and whether the upstream can have seen the request.
struct ExchangeError {
    error: BoxError,
    /// Nothing came back before the connection failed: on a reused connection this is the
    /// upstream having closed it while idle.
    nothing_read: bool,
}

impl ExchangeError {
    fn new(error: impl Into<BoxError>, nothing_read: bool) -> Self {
        Self {
            error: error.into(),
            nothing_read,
        }
    }
}

/// The head of an upstream request, borrowed from the request being forwarded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpHead<'a> {
    pub(crate) method: &'a Method,
    /// `http` or `https` (the cluster originates TLS).
    pub(crate) scheme: &'a Scheme,
    /// The endpoint's `ip:port`.
    pub(crate) endpoint: &'a Authority,
    pub(crate) path: &'a PathAndQuery,
    pub(crate) headers: &'a HeaderMap,
    /// Headers that replace the map's of the same name (what the proxy adds; names in lower
    /// case, values checked to be header values).
    pub(crate) set: &'a [(&'a str, &'a [u8])],
}

impl UpHead<'_> {
    /// `scheme://endpoint/`, what the connector dials.
    fn origin(&self) -> Result<Uri, UpError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.endpoint.clone())
            .path_and_query(PathAndQuery::from_static("/"))
            .build()
            .map_err(|_| UpError::NoAuthority)
    }

    /// An owned request (URI in absolute form), for the paths that hand it to hyper.
    fn to_request(self, body: UpBody) -> Result<Request<UpBody>, UpError> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.endpoint.clone())
            .path_and_query(self.path.clone())
            .build()
            .map_err(|_| UpError::NoAuthority)?;
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = self.headers.clone();
        set_fields(req.headers_mut(), self.set);
        Ok(req)
    }
}

/// Inserts each of `set` into `headers`, replacing what is there (for the paths that need a
/// whole map: HTTP/2, upgrades, mirrors).
pub(crate) fn set_fields(headers: &mut HeaderMap, set: &[(&str, &[u8])]) {
    for (name, value) in set {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.insert(name, value);
        }
    }
}

impl UpClient {
    /// The idle HTTP/1.1 connections and the HTTP/2 connections its pool holds now (some may
    /// have been closed by their upstream since: that is seen when they are taken out).
    pub(crate) fn pooled(&self) -> (usize, usize) {
        let idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum();
        let h2 = self
            .pool
            .h2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        (idle, h2)
    }
    /// Sends `req` (its URI in absolute form: `scheme://ip:port/path`); see [`UpClient::send`].
    pub(crate) async fn request(
        &self,
        req: Request<UpBody>,
        options: UpOptions,
    ) -> Result<Response<UpIncoming>, UpError> {
        let (parts, body) = req.into_parts();
        let (Some(scheme), Some(endpoint)) = (parts.uri.scheme(), parts.uri.authority()) else {
            return Err(UpError::NoAuthority);
        };
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let head = UpHead {
            method: &parts.method,
            scheme,
            endpoint,
            path: &path,
            headers: &parts.headers,
            set: &[],
        };
        self.send(head, body, options).await
    }

    /// Sends a request to `head.endpoint` on a pooled connection or a new one, and returns
    /// the response head with its body still on the connection. The head is borrowed: a
    /// request that may be retried keeps its headers for the next attempt without a copy.
    /// A bodiless request that a reused connection fails before any byte of a response (the
    /// upstream closed it while idle) is sent again on a new connection, as hyper's and Go's
    /// clients do.
    ///
    /// With `options.http2`, the request goes on the endpoint's HTTP/2 connection instead
    /// (upgrade requests always use HTTP/1.1).
    pub(crate) async fn send(
        &self,
        head: UpHead<'_>,
        mut body: UpBody,
        options: UpOptions,
    ) -> Result<Response<UpIncoming>, UpError> {
        // The rarer paths are boxed: this future is moved into its caller's on every request,
        // and their futures would make it several times larger.
        if head.headers.contains_key(http::header::UPGRADE) {
            return Box::pin(self.upgrade(head.to_request(body)?)).await;
        }
        if options.http2 {
            let endpoint = head.endpoint.clone();
            return Box::pin(self.request_h2(head.to_request(body)?, endpoint)).await;
        }
        let idle_limit = options.idle_timeout.unwrap_or(POOL_IDLE_TIMEOUT);
        let key = head.endpoint.as_str();
        let framing = if body.is_end_stream() {
            h1::BodyFraming::None
        } else {
            match body.size_hint().exact() {
                Some(n) => h1::BodyFraming::Length(n),
                None => h1::BodyFraming::Chunked,
            }
        };
        let mut encoded = Vec::with_capacity(256 + 64 * head.headers.len());
        h1::encode_request_head(
            head.method,
            head.path.as_str(),
            head.headers,
            head.set,
            framing,
            &mut encoded,
        );
        let replayable = framing == h1::BodyFraming::None;
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only {
                None
            } else {
                self.checkout(key, idle_limit)
            };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => Conn {
                    io: Box::pin(self.pool.connector.connect(&head.origin()?, false))
                        .await
                        .map_err(UpError::Connect)?,
                    buf: BytesMut::with_capacity(READ_CHUNK),
                    requests: 0,
                },
            };
            match exchange(&mut conn, &encoded, &mut body, framing).await {
                Ok((resp_head, body_done)) => {
                    let (framing, reusable) = h1::response_framing(head.method, &resp_head)
                        .map_err(|e| UpError::Request(e.into()))?;
                    conn.requests = conn.requests.saturating_add(1);
                    let spent = options
                        .max_requests_per_connection
                        .is_some_and(|max| conn.requests >= max);
                    let pooled = (reusable && body_done && !spent)
                        .then(|| (Arc::clone(&self.pool), head.endpoint.clone()));
                    let mut resp = Response::new(UpIncoming(Box::new(UpState {
                        conn: Some(conn),
                        framing,
                        pooled,
                        hyper: None,
                        head: None,
                    })));
                    *resp.status_mut() = resp_head.status;
                    *resp.version_mut() = resp_head.version;
                    resp.body_mut().0.head = Some(resp_head);
                    return Ok(resp);
                }
                Err(e) if reused && replayable && e.nothing_read && !fresh_only => {
                    fresh_only = true;
                }
                Err(e) => {
                    return Err(match downstream_failure(&*e.error) {
                        Some(failure) => UpError::Downstream(failure),
                        None => UpError::Request(e.error),
                    });
                }
            }
        }
    }

    /// A request on the endpoint's HTTP/2 connection (made on first use, again once closed).
    /// The `host` header becomes the `:authority`.
    async fn request_h2(
        &self,
        mut req: Request<UpBody>,
        endpoint: Authority,
    ) -> Result<Response<UpIncoming>, UpError> {
        let key = endpoint.as_str();
        let pooled = {
            let map = self.pool.h2.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(key).filter(|tx| !tx.is_closed()).cloned()
        };
        let mut tx = match pooled {
            Some(tx) => tx,
            None => {
                let io = self
                    .pool
                    .connector
                    .connect(req.uri(), true)
                    .await
                    .map_err(UpError::Connect)?;
                let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(TokioIo::new(io))
                    .await
                    .map_err(|e| UpError::Connect(e.into()))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                self.pool
                    .h2
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(Box::from(key), tx.clone());
                tx
            }
        };
        if let Some(host) = req.headers_mut().remove(http::header::HOST)
            && let Ok(authority) = Authority::try_from(host.as_bytes())
        {
            let mut parts = std::mem::take(req.uri_mut()).into_parts();
            parts.authority = Some(authority);
            *req.uri_mut() = Uri::from_parts(parts).unwrap_or_default();
        }
        *req.version_mut() = http::Version::HTTP_2;
        tx.ready().await.map_err(|e| UpError::Request(e.into()))?;
        let resp = tx.send_request(req).await.map_err(UpError::request)?;
        Ok(UpIncoming::from_hyper(resp))
    }

    /// An upgrade request: hyper on a new connection, whose task hands the upgraded stream
    /// over once the upstream switches protocols. Never pooled.
    async fn upgrade(&self, mut req: Request<UpBody>) -> Result<Response<UpIncoming>, UpError> {
        let absolute = std::mem::take(req.uri_mut());
        *req.uri_mut() = origin_form(&absolute);
        let io = self
            .pool
            .connector
            .connect(&absolute, false)
            .await
            .map_err(UpError::Connect)?;
        let (mut tx, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| UpError::Connect(e.into()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let resp = tx.send_request(req).await.map_err(UpError::request)?;
        Ok(UpIncoming::from_hyper(resp))
    }

    /// The most recently used idle connection to `key` that is still open and has not been
    /// idle longer than `idle_limit`.
    fn checkout(&self, key: &str, idle_limit: Duration) -> Option<Conn> {
        loop {
            let mut idle = {
                let mut idle = self
                    .pool
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                idle.get_mut(key)?.pop()?
            };
            if self.pool.coarse.now().saturating_duration_since(idle.since) <= idle_limit
                && still_open(&mut idle.conn)
            {
                return Some(idle.conn);
            }
        }
    }
}

/// Whether an idle connection is still open: nothing to read (no end of stream, no stray
/// bytes). The readiness the runtime keeps answers without a system call in the usual case.
fn still_open(conn: &mut Conn) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    conn.buf.reserve(1);
    let read = std::pin::pin!(conn.io.read_buf(&mut conn.buf));
    matches!(read.poll(&mut cx), Poll::Pending)
}

/// Writes the request (head, then the body in its framing) and reads until a final response
/// head has arrived. Also returns whether the request body was sent whole: an upstream may
/// answer before it has read all of it, and then the connection is not reused.
async fn exchange(
    conn: &mut Conn,
    head: &[u8],
    body: &mut UpBody,
    framing: h1::BodyFraming,
) -> Result<(h1::ResponseHead, bool), ExchangeError> {
    // The head first, then the body's pieces as they come.
    let mut unsent_head = head;
    let mut out: VecDeque<Bytes> = VecDeque::new();
    let mut body_open = framing != h1::BodyFraming::None;
    let mut flushed = false;
    let mut read_any = false;
    let mut unparsed = !conn.buf.is_empty();
    std::future::poll_fn(|cx| {
        // Write what can be written now; the upstream may answer before it has all of it.
        loop {
            // The head first, then the queued pieces of the body.
            let next = if unsent_head.is_empty() {
                out.front().map_or(&[][..], |b| &b[..])
            } else {
                unsent_head
            };
            if !next.is_empty() {
                match Pin::new(&mut conn.io).poll_write(cx, next) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(ExchangeError::new(
                            io::Error::from(io::ErrorKind::WriteZero),
                            !read_any,
                        )));
                    }
                    Poll::Ready(Ok(n)) => {
                        if !unsent_head.is_empty() {
                            unsent_head = unsent_head.get(n..).unwrap_or_default();
                        } else if let Some(front) = out.front_mut() {
                            if n >= front.len() {
                                out.pop_front();
                            } else {
                                let _ = front.split_to(n);
                            }
                        }
                        flushed = false;
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Err(ExchangeError::new(e, !read_any)));
                    }
                    Poll::Pending => break,
                }
            }
            if body_open {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data()
                            && !data.is_empty()
                        {
                            if framing == h1::BodyFraming::Chunked {
                                out.push_back(h1::chunk_header(data.len()));
                                out.push_back(data);
                                out.push_back(Bytes::from_static(b"\r\n"));
                            } else {
                                out.push_back(data);
                            }
                        }
                        continue;
                    }
                    Poll::Ready(None) => {
                        body_open = false;
                        if framing == h1::BodyFraming::Chunked {
                            out.push_back(Bytes::from_static(h1::LAST_CHUNK));
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Err(ExchangeError::new(e, false)));
                    }
                    Poll::Pending => {}
                }
            }
            if !flushed {
                match Pin::new(&mut conn.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => flushed = true,
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Err(ExchangeError::new(e, !read_any)));
                    }
                    Poll::Pending => {}
                }
            }
            break;
        }
        // Read until a final response head is in; parse only bytes not tried yet.
        loop {
            if unparsed {
                unparsed = false;
                match h1::parse_response_head(&mut conn.buf) {
                    Ok(Some(head)) if head.status.is_informational() => {
                        // 100 Continue, 103 Early Hints: not forwarded; the final head follows.
                        unparsed = !conn.buf.is_empty();
                        continue;
                    }
                    Ok(Some(head)) => {
                        let sent = unsent_head.is_empty() && !body_open && out.is_empty();
                        return Poll::Ready(Ok((head, sent)));
                    }
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(ExchangeError::new(e, false))),
                }
            }
            conn.buf.reserve(READ_CHUNK);
            let read = std::pin::pin!(conn.io.read_buf(&mut conn.buf));
            match read.poll(cx) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(ExchangeError::new(
                        io::Error::from(io::ErrorKind::UnexpectedEof),
                        !read_any,
                    )));
                }
                Poll::Ready(Ok(_)) => {
                    read_any = true;
                    unparsed = true;
                }
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(ExchangeError::new(e, !read_any)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

impl Pool {
    fn put(&self, key: &str, conn: Conn) {
        let idle = Idle {
            conn,
            since: self.coarse.now(),
        };
        let mut pool = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // The key is allocated once per endpoint, not per request.
        match pool.get_mut(key) {
            Some(list) => list.push(idle),
            None => {
                pool.insert(Box::from(key), vec![idle]);
            }
        }
    }
}

/// `/path?query` of an absolute URI (HTTP/1.1 origin form).
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(p) if p.as_str() != "/" => {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(p.clone());
            Uri::from_parts(parts).unwrap_or_default()
        }
        _ => Uri::default(),
    }
}

/// An upstream response body, read from its connection as the downstream side asks for it.
/// The connection goes back to the pool when the body has been read to the end (a body
/// dropped before its end closes the connection).
///
/// Boxed: a response is moved several times on its way to the client, and a response whose
/// body is a pointer is moved in a few register copies instead of a call to copy 300 bytes.
pub(crate) struct UpIncoming(Box<UpState>);

/// What an [`UpIncoming`] holds.
struct UpState {
    conn: Option<Conn>,
    framing: h1::Framing,
    pooled: Option<(Arc<Pool>, Authority)>,
    /// The response head as read, while the response's header map is still empty (see
    /// [`UpIncoming::raw_head`]).
    head: Option<h1::ResponseHead>,
    /// The body of an upgrade response (hyper's connection).
    hyper: Option<Incoming>,
}

impl std::fmt::Debug for UpIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpIncoming").finish_non_exhaustive()
    }
}

impl UpIncoming {
    /// The head of an HTTP/1.1 response as read from the upstream. While it is here the
    /// response's header map is empty: the gateway writes the head on to an HTTP/1.1 client
    /// without building one ([`h1::encode_forwarded_response_head`]), or builds it with
    /// [`UpIncoming::into_headers`].
    pub(crate) fn raw_head(&self) -> Option<&h1::ResponseHead> {
        self.0.head.as_ref()
    }

    /// Fills `resp`'s header map from its raw head, if it has one.
    pub(crate) fn into_headers(resp: &mut Response<Self>) -> Result<(), h1::ProtocolError> {
        if let Some(head) = resp.body_mut().0.head.take() {
            *resp.headers_mut() = head.header_map()?;
        }
        Ok(())
    }

    /// A response whose body hyper's connection reads (HTTP/2, upgrades); never pooled here.
    fn from_hyper(resp: Response<Incoming>) -> Response<Self> {
        resp.map(|body| {
            Self(Box::new(UpState {
                conn: None,
                framing: h1::Framing::UntilClose,
                pooled: None,
                hyper: Some(body),
                head: None,
            }))
        })
    }
}

impl UpState {
    /// Puts the connection back if it can carry another request: the body is complete, the
    /// upstream did not ask to close, and nothing beyond the response was received.
    fn release(&mut self) {
        let (Some(conn), Some((pool, key))) = (self.conn.take(), self.pooled.take()) else {
            return;
        };
        if conn.buf.is_empty() {
            pool.put(key.as_str(), conn);
        }
    }
}

impl Drop for UpIncoming {
    fn drop(&mut self) {
        if self.0.framing.is_done() {
            self.0.release();
        }
    }
}

impl Body for UpIncoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this: &mut UpState = &mut self.get_mut().0;
        if let Some(body) = &mut this.hyper {
            return Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into)));
        }
        loop {
            let Some(conn) = &mut this.conn else {
                return Poll::Ready(None);
            };
            match this.framing.decode(&mut conn.buf) {
                Ok(h1::Decoded::Data(data)) => {
                    if this.framing.is_done() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(h1::Decoded::Done) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(h1::Decoded::NeedMore) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            conn.buf.reserve(READ_CHUNK);
            let read = std::pin::pin!(conn.io.read_buf(&mut conn.buf));
            match read.poll(cx) {
                Poll::Ready(Ok(0)) => {
                    this.conn = None;
                    return Poll::Ready(match this.framing {
                        h1::Framing::UntilClose => None,
                        _ => Some(Err(h1::ProtocolError::Truncated.into())),
                    });
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0.hyper {
            Some(body) => body.is_end_stream(),
            None => self.0.framing.is_done() || self.0.conn.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0.hyper {
            Some(body) => body.size_hint(),
            None => self
                .0
                .framing
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// A worker's coarse clock: set on its housekeeping tick, so upstream pools measure idle
/// times to within that tick (250 ms) without reading the clock per request.
#[derive(Debug, Default)]
pub(crate) struct CoarseClock {
    /// Nanoseconds since `ORIGIN` plus one (0: never set; the clock itself is read then).
    nanos: AtomicU64,
}

impl CoarseClock {
    fn origin() -> Instant {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        *ORIGIN.get_or_init(Instant::now)
    }

    pub(crate) fn set(&self, now: Instant) {
        let nanos = now.saturating_duration_since(Self::origin()).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        self.nanos.store(nanos + 1, Ordering::Relaxed);
    }

    /// The time of the last tick, or now without one.
    pub(crate) fn now(&self) -> Instant {
        match self.nanos.load(Ordering::Relaxed) {
            0 => Instant::now(),
            n => Self::origin() + Duration::from_nanos(n - 1),
        }
    }
}

/// One endpoint of a cluster.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// `ip:port`, ready for request URIs.
    pub(crate) authority: Authority,
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt as _, Full};
    use hyper::service::service_fn;
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    /// An upstream that counts its connections and answers `ok`, closing the connection after
    /// the response when the request asks for `/close`.
    async fn upstream(connections: Arc<AtomicUsize>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<Incoming>| async move {
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"ok\n")));
                        if req.uri().path() == "/close" {
                            resp.headers_mut().insert(
                                http::header::CONNECTION,
                                http::HeaderValue::from_static("close"),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    async fn get(client: &UpClient, addr: SocketAddr, path: &str) -> Bytes {
        let mut req = Request::new(UpBody::empty());
        *req.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
        let resp = client.request(req, UpOptions::default()).await.unwrap();
        let body = resp.into_body().collect().await;
        body.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn connections_are_reused_once_the_response_is_read() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        for _ in 0..5 {
            assert_eq!(get(&client, addr, "/").await, "ok\n");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn max_requests_per_connection_closes_spent_connections() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        let options = UpOptions {
            max_requests_per_connection: Some(2),
            ..UpOptions::default()
        };
        for _ in 0..5 {
            let mut req = Request::new(UpBody::empty());
            *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
            let resp = client.request(req, options).await.unwrap();
            assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok\n");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_closed_connection_is_not_reused() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        assert_eq!(get(&client, addr, "/close").await, "ok\n");
        assert_eq!(get(&client, addr, "/").await, "ok\n");
        assert_eq!(get(&client, addr, "/").await, "ok\n");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_the_connection() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        let mut req = Request::new(UpBody::empty());
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let resp = client.request(req, UpOptions::default()).await.unwrap();
        drop(resp);
        assert_eq!(get(&client, addr, "/").await, "ok\n");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    /// A hand-written upstream: answers every request on a connection with `response`, and
    /// closes each connection after `per_conn` requests (without saying so).
    async fn raw_upstream(
        response: &'static [u8],
        per_conn: usize,
        connections: Arc<AtomicUsize>,
    ) -> SocketAddr {
        use tokio::io::AsyncWriteExt as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut served = 0;
                    let mut buf = [0u8; 1024];
                    while served < per_conn {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            stream.write_all(response).await.unwrap();
                            served += 1;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn chunked_responses_are_decoded_and_the_connection_reused() {
        let connections = Arc::new(AtomicUsize::new(0));
        let response: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
            5;ext\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: t\r\n\r\n";
        let addr = raw_upstream(response, usize::MAX, Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        for _ in 0..3 {
            assert_eq!(get(&client, addr, "/").await, "hello world");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
        let connections = Arc::new(AtomicUsize::new(0));
        let response: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
        let addr = raw_upstream(response, 1, Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        for _ in 0..3 {
            assert_eq!(get(&client, addr, "/").await, "ok\n");
            // Let the close reach this side before the next request, or not: both must work.
            tokio::task::yield_now().await;
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error() {
        let connections = Arc::new(AtomicUsize::new(0));
        let response: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort";
        let addr = raw_upstream(response, 1, Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        let mut req = Request::new(UpBody::empty());
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let resp = client.request(req, UpOptions::default()).await.unwrap();
        assert!(resp.into_body().collect().await.is_err());
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = client(Connector::new(Duration::from_secs(1), None), Arc::default());
        let mut req = Request::new(UpBody::empty());
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let err = client.request(req, UpOptions::default()).await.err();
        assert!(err.is_some_and(|e| e.is_connect()));
    }
}
