//! Upstream connections: a connector (plain TCP with `TCP_NODELAY`, or TLS origination with a
//! `portcullis-tls` client configuration) and a per-worker keep-alive pool of HTTP/1.1
//! connections over hyper's connection API.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::body::UpBody;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TLS origination settings of a cluster, built once per plan.
#[derive(Clone, Debug)]
pub(crate) struct Origination {
    pub(crate) config: Arc<rustls::ClientConfig>,
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
}

/// An upstream connection.
#[derive(Debug)]
pub(crate) enum UpConn {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for UpConn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for UpConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for UpConn {
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

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = UpConn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<UpConn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?;
            match tls {
                None => Ok(UpConn::Plain(tcp)),
                Some(tls) => {
                    let connector = TlsConnector::from(Arc::clone(&tls.config));
                    let stream = connector
                        .connect(tls.server_name.clone(), tcp.into_inner())
                        .await?;
                    Ok(UpConn::Tls(Box::new(TokioIo::new(stream))))
                }
            }
        })
    }
}

/// The pooling HTTP/1.1 client of one worker for one kind of upstream connection.
///
/// A small keep-alive pool over hyper's connection API (`hyper::client::conn::http1`), keyed
/// by the request's authority (`ip:port`). A connection goes back to the pool when its response
/// body has been read to the end ([`UpIncoming`]), so that reuse costs no task and no timer per
/// request; idle connections are kept [`POOL_IDLE_TIMEOUT`] and checked for closing (the
/// upstream's keep-alive timeout) when taken out.
#[derive(Clone, Debug)]
pub(crate) struct UpClient {
    pool: Arc<Pool>,
}

/// How long an idle upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug)]
struct Pool {
    connector: Connector,
    idle: Mutex<HashMap<Box<str>, Vec<Idle>, BuildHasherDefault<Fnv>>>,
}

#[derive(Debug)]
struct Idle {
    tx: SendRequest<UpBody>,
    since: Instant,
}

/// A connection taken out of the pool (or just made) for one request.
struct Pooled {
    tx: SendRequest<UpBody>,
    reused: bool,
}

/// FNV-1a: the pool's keys are short `ip:port` strings, hashed once per request.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Why an upstream request failed.
#[derive(Debug)]
pub(crate) enum UpError {
    /// No connection could be made (refused, timed out, TLS handshake failed).
    Connect(BoxError),
    /// The connection failed while the request was sent or the response head read.
    Request(hyper::Error),
    /// The request has no `ip:port` authority.
    NoAuthority,
}

impl UpError {
    /// Whether the request never reached the upstream because no connection could be made.
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::NoAuthority)
    }
}

impl std::fmt::Display for UpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Request(e) => write!(f, "request: {e}"),
            Self::NoAuthority => f.write_str("no authority"),
        }
    }
}

impl std::error::Error for UpError {}

/// A keep-alive pooling client (idle connections kept 90 s, no per-host limit).
pub(crate) fn client(connector: Connector) -> UpClient {
    UpClient {
        pool: Arc::new(Pool {
            connector,
            idle: Mutex::new(HashMap::default()),
        }),
    }
}

impl UpClient {
    /// Sends `req` (its URI in absolute form: `scheme://ip:port/path`) on a pooled connection
    /// or a new one. A request that a reused connection refused before sending it (the
    /// upstream closed it meanwhile) is sent again on a new connection, as hyper-util's client
    /// does.
    pub(crate) async fn request(
        &self,
        mut req: Request<UpBody>,
    ) -> Result<Response<UpIncoming>, UpError> {
        let Some(authority) = req.uri().authority().cloned() else {
            return Err(UpError::NoAuthority);
        };
        let key = authority.as_str();
        let absolute = std::mem::take(req.uri_mut());
        *req.uri_mut() = origin_form(&absolute);
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only { None } else { self.checkout(key) };
            let mut conn = match pooled {
                Some(c) => c,
                None => self.connect(&absolute).await?,
            };
            match conn.tx.try_send_request(req).await {
                Ok(resp) => {
                    // A switched connection is not HTTP any more: never pooled.
                    let switched =
                        upgrade || resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                    let pooled = (!switched)
                        .then(|| (Arc::clone(&self.pool), Box::<str>::from(key), conn.tx));
                    let (parts, inner) = resp.into_parts();
                    let body = UpIncoming { inner, pooled };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if conn.reused => {
                        req = back;
                        fresh_only = true;
                    }
                    _ => return Err(UpError::Request(e.into_error())),
                },
            }
        }
    }

    /// The most recently used idle connection to `key` that is still open.
    fn checkout(&self, key: &str) -> Option<Pooled> {
        loop {
            let idle = {
                let mut idle = self
                    .pool
                    .idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                idle.get_mut(key)?.pop()?
            };
            // Pooled connections were ready when put back; one that is not any more is
            // closing (the upstream's keep-alive timeout).
            if idle.tx.is_ready() && idle.since.elapsed() <= POOL_IDLE_TIMEOUT {
                return Some(Pooled {
                    tx: idle.tx,
                    reused: true,
                });
            }
        }
    }

    async fn connect(&self, uri: &Uri) -> Result<Pooled, UpError> {
        let mut connector = self.pool.connector.clone();
        let io = tower_service::Service::call(&mut connector, uri.clone())
            .await
            .map_err(UpError::Connect)?;
        let (mut tx, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| UpError::Connect(e.into()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        // Usable once its connection task has run.
        tx.ready().await.map_err(|e| UpError::Connect(e.into()))?;
        Ok(Pooled { tx, reused: false })
    }
}

impl Pool {
    fn put(&self, key: Box<str>, tx: SendRequest<UpBody>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.entry(key).or_default().push(Idle {
            tx,
            since: Instant::now(),
        });
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

/// An upstream response body; its connection goes back to the pool when the body has been
/// read to the end (a body dropped before its end closes the connection).
pub(crate) struct UpIncoming {
    inner: Incoming,
    pooled: Option<(Arc<Pool>, Box<str>, SendRequest<UpBody>)>,
}

impl std::fmt::Debug for UpIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpIncoming").finish_non_exhaustive()
    }
}

impl UpIncoming {
    /// Puts the connection back: at once when it is ready for the next request (the usual
    /// case: its task has seen the end of the response), or from a small task once it is (a
    /// request body still being sent, an upstream that answered early).
    fn release(&mut self) {
        let Some((pool, key, mut tx)) = self.pooled.take() else {
            return;
        };
        if tx.is_ready() {
            pool.put(key, tx);
        } else if !tx.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if tx.ready().await.is_ok() {
                    pool.put(key, tx);
                }
            });
        }
    }
}

impl Drop for UpIncoming {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl Body for UpIncoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.pooled = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One endpoint of a cluster.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// `ip:port`, ready for request URIs.
    pub(crate) authority: http::uri::Authority,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt as _, Full};
    use hyper::service::service_fn;
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
        let resp = client.request(req).await.unwrap();
        let body = resp.into_body().collect().await;
        body.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn connections_are_reused_once_the_response_is_read() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None));
        for _ in 0..5 {
            assert_eq!(get(&client, addr, "/").await, "ok\n");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_closed_connection_is_not_reused() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None));
        assert_eq!(get(&client, addr, "/close").await, "ok\n");
        assert_eq!(get(&client, addr, "/").await, "ok\n");
        assert_eq!(get(&client, addr, "/").await, "ok\n");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_the_connection() {
        let connections = Arc::new(AtomicUsize::new(0));
        let addr = upstream(Arc::clone(&connections)).await;
        let client = client(Connector::new(Duration::from_secs(1), None));
        let mut req = Request::new(UpBody::empty());
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let resp = client.request(req).await.unwrap();
        drop(resp);
        assert_eq!(get(&client, addr, "/").await, "ok\n");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refused_connections_are_connect_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = client(Connector::new(Duration::from_secs(1), None));
        let mut req = Request::new(UpBody::empty());
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        let err = client.request(req).await.err();
        assert!(err.is_some_and(|e| e.is_connect()));
    }
}
