//! Listeners and connections: accept, pick the filter chain (peeking at a TLS ClientHello
//! when the listener needs it), then serve HTTP (plaintext or TLS-terminated, HTTP/1.1 and
//! HTTP/2), proxy TCP, or pass TLS through untouched.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::uri::Scheme;
use http::{HeaderValue, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use portcullis_proxy_core as pc;
use portcullis_tls::client_hello::MAX_CLIENT_HELLO_WIRE_LEN;
use portcullis_tls::{ClientHelloPeek, peek_client_hello};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::Lifecycle;
use super::body::DownBody;
use super::downstream::{self, Rewind};
use super::guard::{Guarded, Heads, OpenStream, Tracked};
use super::log::write_time;
use super::metrics::Stats;
use super::proxy::{self, ConnCtx, Writer};
use super::snapshot::{self, ChainKind, ClusterRt, Live, Local};
use super::worker::Worker;

/// Limits and timeouts of downstream connections: [`Limits::default`] and its `with_`
/// methods.
///
/// ```
/// use std::time::Duration;
/// use portcullis_gateway::Limits;
///
/// let limits = Limits::default()
///     .with_header_timeout(Duration::from_secs(5))
///     .with_max_connections(Some(10_000));
/// assert_eq!(limits.idle_timeout, Duration::from_secs(3600));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Time to send a complete request head: HTTP/1 gets `408`; an HTTP/2 connection whose
    /// header block stays unfinished this long is drained and closed.
    pub header_timeout: Duration,
    /// Time a connection may stay idle before it is closed: a keep-alive HTTP/1 connection
    /// between requests, an HTTP/2 connection without an open stream (Envoy's
    /// `idle_timeout`).
    pub idle_timeout: Duration,
    /// Most time a connection may live (Envoy's `max_connection_duration`; `None`: no limit,
    /// Envoy's default). HTTP/1 connections close once idle past it, HTTP/2 ones drain.
    pub max_connection_duration: Option<Duration>,
    /// How long a draining HTTP/2 connection (GOAWAY sent) may take to finish its streams
    /// before it is closed (Envoy's `drain_timeout`, 5 s).
    pub drain_timeout: Duration,
    /// Time for a TLS handshake (and for the ClientHello to arrive on inspecting listeners).
    pub handshake_timeout: Duration,
    /// Largest request head (HTTP/1 read buffer; HTTP/2 header list); then `431`.
    pub max_header_bytes: usize,
    /// Most request headers (HTTP/1); then `431`.
    pub max_headers: usize,
    /// Most concurrent streams per HTTP/2 connection (advertised in SETTINGS; a stream past
    /// it is refused with `REFUSED_STREAM`).
    pub max_concurrent_streams: u32,
    /// Most downstream connections open at once, over every listener and worker (Envoy's
    /// overload manager, `max_active_downstream_connections`). A connection past it is closed
    /// as soon as it is accepted and counted in `portcullis_downstream_cx_overflow_total`;
    /// the open ones are served as before. `None`: no limit.
    pub max_connections: Option<usize>,
}

impl Limits {
    /// Sets the time to send a complete request head (see the field).
    #[must_use]
    pub fn with_header_timeout(mut self, header_timeout: Duration) -> Self {
        self.header_timeout = header_timeout;
        self
    }

    /// Sets the time a connection may stay idle (see the field).
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Sets the most time a connection may live (see the field).
    #[must_use]
    pub fn with_max_connection_duration(
        mut self,
        max_connection_duration: Option<Duration>,
    ) -> Self {
        self.max_connection_duration = max_connection_duration;
        self
    }

    /// Sets how long a draining HTTP/2 connection may take to finish its streams (see the field).
    #[must_use]
    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.drain_timeout = drain_timeout;
        self
    }

    /// Sets the time for a TLS handshake (see the field).
    #[must_use]
    pub fn with_handshake_timeout(mut self, handshake_timeout: Duration) -> Self {
        self.handshake_timeout = handshake_timeout;
        self
    }

    /// Sets the largest request head (see the field).
    #[must_use]
    pub fn with_max_header_bytes(mut self, max_header_bytes: usize) -> Self {
        self.max_header_bytes = max_header_bytes;
        self
    }

    /// Sets the most request headers (HTTP/1) (see the field).
    #[must_use]
    pub fn with_max_headers(mut self, max_headers: usize) -> Self {
        self.max_headers = max_headers;
        self
    }

    /// Sets the most concurrent streams per HTTP/2 connection (see the field).
    #[must_use]
    pub fn with_max_concurrent_streams(mut self, max_concurrent_streams: u32) -> Self {
        self.max_concurrent_streams = max_concurrent_streams;
        self
    }

    /// Sets the most downstream connections open at once (see the field).
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: Option<usize>) -> Self {
        self.max_connections = max_connections;
        self
    }
}

/// What sits in front of the gateway (Istio's `gatewayTopology`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Topology {
    /// Every connection starts with a PROXY protocol header (v1 or v2), as a TCP load
    /// balancer sends it (`gatewayTopology.proxyProtocol`): the client's address is the
    /// header's. A connection without a valid header within the header timeout is closed.
    pub proxy_protocol: bool,
    /// How many trusted proxies (load balancers) add to `x-forwarded-for` in front of the
    /// gateway (`gatewayTopology.numTrustedProxies`, Envoy's `xff_num_trusted_hops`). With 0
    /// the client is the connection's peer, never an address from a header the client can
    /// forge.
    pub num_trusted_proxies: u32,
}

impl Topology {
    /// Nothing in front: the connection's peer is the client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expects a PROXY protocol header on every connection.
    #[must_use]
    pub fn with_proxy_protocol(mut self, on: bool) -> Self {
        self.proxy_protocol = on;
        self
    }

    /// Trusts `n` proxies' additions to `x-forwarded-for`.
    #[must_use]
    pub fn with_trusted_proxies(mut self, n: u32) -> Self {
        self.num_trusted_proxies = n;
        self
    }
}

impl Default for Limits {
    /// Envoy's defaults where it has them: 60 KiB and 100 headers; 10 s handshakes; idle 1 h
    /// as Envoy's `idle_timeout`; no `max_connection_duration`; 5 s `drain_timeout`. Envoy has
    /// no header timeout by default, 10 s here. Envoy's own limit on concurrent HTTP/2 streams
    /// is 2³¹ − 1; 100 here, the value Envoy's guide to edge deployments recommends (a
    /// client cannot make one connection carry unbounded work).
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3600),
            max_connection_duration: None,
            drain_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 60 * 1024,
            max_headers: 100,
            max_concurrent_streams: 100,
            max_connections: None,
        }
    }
}

/// hyper's default limit on HTTP/1 request headers.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// What every connection of a gateway shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) live: Arc<Live>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) limits: Limits,
    pub(crate) http: Builder<TokioExecutor>,
    /// How request paths are normalized before routing (`GatewayBuilder::path_normalization`).
    pub(crate) path_normalization: pc::path::PathNormalization,
    /// What sits in front of the gateway.
    pub(crate) topology: Topology,
    /// Draining and the count of open connections.
    pub(crate) lifecycle: Arc<Lifecycle>,
}

impl Shared {
    pub(crate) fn new(
        live: Arc<Live>,
        stats: Arc<Stats>,
        limits: Limits,
        path_normalization: pc::path::PathNormalization,
        topology: Topology,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        let mut http = Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true);
        // hyper's own limit is 100 headers, parsed into a stack array; setting any limit (even
        // 100) makes it fill a new array per request instead.
        if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            http.http1().max_headers(limits.max_headers);
        }
        http.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(limits.max_concurrent_streams);
        Self {
            live,
            stats,
            limits,
            http,
            path_normalization,
            topology,
            lifecycle,
        }
    }
}

/// What the accept loop sets on each connection it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Nothing: the connection has `TCP_NODELAY` from its listener (Linux, see [`bind`]).
    AsListened,
    /// `TCP_NODELAY`.
    SetNoDelay,
}

/// Binds `addr` on the current runtime, with `SO_REUSEPORT` so that every worker has its own
/// accept queue on the same port. `TCP_NODELAY` is set on the listener: Linux gives every
/// accepted connection the listener's setting, which saves a system call per connection;
/// elsewhere each accepted connection is set too.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(TcpListener, Accepted)> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    let accepted = if cfg!(any(target_os = "linux", target_os = "android")) {
        Accepted::AsListened
    } else {
        Accepted::SetNoDelay
    };
    Ok((socket.listen(1024)?, accepted))
}

/// The embedder's listening socket on the current runtime (a handle of its own per worker).
/// Its options are the embedder's, so each accepted connection is given `TCP_NODELAY`. A
/// socket that is not listening is refused: accepting from it would fail on every try.
pub(crate) fn adopt(listener: &std::net::TcpListener) -> io::Result<(TcpListener, Accepted)> {
    #[cfg(target_os = "linux")]
    if !rustix::net::sockopt::socket_acceptconn(listener)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket given for the port is not listening",
        ));
    }
    let listener = listener.try_clone()?;
    listener.set_nonblocking(true)?;
    Ok((TcpListener::from_std(listener)?, Accepted::SetNoDelay))
}

/// Accepts connections forever.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    accepted: Accepted,
    bind: SocketAddr,
    shared: Arc<Shared>,
    worker: Arc<Worker>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("warning: accept on {bind}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if accepted == Accepted::SetNoDelay {
            let _ = stream.set_nodelay(true);
        }
        shared.stats.downstream_cx.fetch_add(1, Ordering::Relaxed);
        // Counted open (for `Limits::max_connections` and for a drain to end once none is
        // left) until its task ends.
        let Some(open) = OpenConnection::admit(&shared) else {
            shared
                .stats
                .downstream_cx_overflow
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        // `serve` is the task itself: a future awaited inside another `async` block would be
        // laid out twice in the task (captured, then awaited), and an idle connection would
        // hold both.
        tokio::spawn(serve(
            stream,
            remote,
            bind,
            Arc::clone(&shared),
            Arc::clone(&worker),
            open,
        ));
    }
}

/// An open downstream connection, counted until dropped.
struct OpenConnection(Arc<Lifecycle>);

impl OpenConnection {
    /// Counts a connection open, unless `Limits::max_connections` are open already.
    fn admit(shared: &Shared) -> Option<Self> {
        let open = &shared.lifecycle.open_connections;
        match shared.limits.max_connections {
            Some(max) => {
                open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .ok()?;
            }
            None => {
                open.fetch_add(1, Ordering::AcqRel);
            }
        }
        Some(Self(Arc::clone(&shared.lifecycle)))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads the PROXY protocol header a load balancer sends first: the client's address it
/// carries (`None`: the socket's stands) and the bytes read past it. `None` when the
/// connection closes or sends anything else.
async fn read_proxy_header(stream: &mut TcpStream) -> Option<(Option<SocketAddr>, Bytes)> {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match pc::proxy_protocol::parse(&buf) {
            pc::proxy_protocol::ProxyHeader::Complete {
                consumed, source, ..
            } => {
                let rest = buf.split_off(consumed);
                return Some((source, rest.freeze()));
            }
            pc::proxy_protocol::ProxyHeader::Incomplete => {}
            pc::proxy_protocol::ProxyHeader::Invalid(_) => return None,
        }
    }
}

enum Peeked {
    /// A ClientHello: its SNI, and the alert that refuses it if it is terminated here (it
    /// offers only TLS 1.0 or 1.1).
    Tls(Option<String>, Option<[u8; 7]>),
    NotTls,
    Closed,
}

/// Reads until the ClientHello is complete (or the bytes are not TLS), and returns what was
/// read with the verdict: the bytes go on in front of the stream (see [`Rewind`]) to rustls,
/// to the passthrough upstream or to the HTTP server. A client that sends part of a hello and
/// stops costs nothing while it waits: the task sleeps until the socket has more to read.
async fn read_hello(stream: &mut TcpStream, already: &[u8]) -> (Peeked, Bytes) {
    // A ClientHello usually fits one segment; a post-quantum key share makes it about 1.3 KiB.
    let mut buf = BytesMut::with_capacity(2048.max(already.len()));
    buf.extend_from_slice(already);
    let mut look_first = !buf.is_empty();
    loop {
        if !look_first {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return (Peeked::Closed, Bytes::new()),
                Ok(_) => {}
            }
        }
        look_first = false;
        let verdict = match peek_client_hello(&buf) {
            ClientHelloPeek::ClientHello(info) => {
                let refusal = info.protocol_version_alert();
                Peeked::Tls(info.server_name, refusal)
            }
            ClientHelloPeek::NotTls(_) => Peeked::NotTls,
            ClientHelloPeek::NeedMore { needed } if needed <= MAX_CLIENT_HELLO_WIRE_LEN => {
                buf.reserve(needed.saturating_sub(buf.len()));
                continue;
            }
            ClientHelloPeek::NeedMore { .. } => Peeked::NotTls,
        };
        return (verdict, buf.freeze());
    }
}

/// Serves one accepted connection; it stays counted open until this ends (`_open` is dropped).
async fn serve(
    mut stream: TcpStream,
    mut remote: SocketAddr,
    bind: SocketAddr,
    shared: Arc<Shared>,
    worker: Arc<Worker>,
    _open: OpenConnection,
) {
    // What was read ahead (past a PROXY protocol header, or the ClientHello): it goes on in
    // front of the stream.
    let mut read = Bytes::new();
    if shared.topology.proxy_protocol {
        // Boxed, as every step before the HTTP server is: the task's own future keeps only
        // what a connection holds while it is served.
        let header = Box::pin(tokio::time::timeout(
            shared.limits.header_timeout,
            read_proxy_header(&mut stream),
        ));
        let Ok(Some((source, rest))) = header.await else {
            shared
                .stats
                .downstream_cx_proxy_proto_error
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(source) = source {
            remote = source;
        }
        read = rest;
    }
    let addresses = pc::lb::ConnectionAddresses {
        remote: Some(remote),
        local: stream.local_addr().ok(),
    };
    let local = snapshot::local(&shared.live, &worker.snapshots, &worker.coarse);
    let Some(listener) = local.snap.listener(bind) else {
        return;
    };
    let mut refusal = None;
    let chain_index = if listener.inspect {
        let peeked = Box::pin(tokio::time::timeout(
            shared.limits.handshake_timeout,
            read_hello(&mut stream, &read),
        ));
        let Ok((peeked, hello)) = peeked.await else {
            return;
        };
        read = hello;
        match peeked {
            Peeked::Closed => return,
            Peeked::Tls(sni, alert) => {
                refusal = alert;
                listener
                    .sni
                    .find(sni.as_deref())
                    .map(|(_, i)| *i)
                    .or_else(|| {
                        // TLS no chain takes: only a raw TCP chain may carry it.
                        listener.plain.filter(|p| {
                            matches!(
                                listener.chains.get(*p).map(|c| &c.kind),
                                Some(ChainKind::Tcp { .. })
                            )
                        })
                    })
            }
            Peeked::NotTls => listener.plain,
        }
    } else {
        listener.plain
    };
    let Some(chain) = chain_index.and_then(|i| listener.chains.get(i)) else {
        return;
    };
    // TLS 1.0/1.1 only, on a terminating chain: Envoy's protocol_version alert (rustls would
    // answer handshake_failure). Passthrough and TCP chains forward such a hello untouched.
    if chain.tls.is_some()
        && let Some(alert) = refusal
    {
        Box::pin(refuse_hello(stream, &alert)).await;
        return;
    }
    match (&chain.kind, &chain.tls) {
        (ChainKind::Http { route_config }, None) => {
            let ctx = conn_ctx(
                &shared,
                &local,
                &worker,
                *route_config,
                addresses,
                Scheme::HTTP,
            );
            if read.is_empty() {
                serve_http(stream, ctx, &shared).await;
            } else {
                serve_http(Rewind::new(read, stream), ctx, &shared).await;
            }
        }
        // The other kinds of connection are boxed, each on its own: the task's own future
        // stays the size plain HTTP needs, which is what an idle keep-alive connection holds.
        (ChainKind::Http { route_config }, Some(tls)) => {
            Box::pin(async {
                let stream = Rewind::new(read, stream);
                let handshake = shared.limits.handshake_timeout;
                let Some(tls_stream) = accept_tls(stream, tls, handshake).await else {
                    return;
                };
                let ctx = conn_ctx(
                    &shared,
                    &local,
                    &worker,
                    *route_config,
                    addresses,
                    Scheme::HTTPS,
                );
                serve_http(tls_stream, ctx, &shared).await;
            })
            .await;
        }
        (ChainKind::Tcp { destinations }, None) => {
            Box::pin(proxy_tcp(
                Rewind::new(read, stream),
                destinations,
                &local,
                &worker,
            ))
            .await;
        }
        (ChainKind::Tcp { destinations }, Some(tls)) => {
            Box::pin(async {
                let stream = Rewind::new(read, stream);
                let handshake = shared.limits.handshake_timeout;
                let Some(tls_stream) = accept_tls(stream, tls, handshake).await else {
                    return;
                };
                proxy_tcp(tls_stream, destinations, &local, &worker).await;
            })
            .await;
        }
    }
}

fn conn_ctx(
    shared: &Shared,
    local: &Arc<Local>,
    worker: &Arc<Worker>,
    route_config: usize,
    addresses: pc::lb::ConnectionAddresses,
    scheme: Scheme,
) -> ConnCtx {
    let name = local
        .snap
        .route_configs
        .get(route_config)
        .map_or_else(|| Arc::from(""), |rc| Arc::clone(&rc.name));
    ConnCtx {
        live: Arc::clone(&shared.live),
        local: Arc::clone(local),
        worker: Arc::clone(worker),
        scheme,
        route_config,
        route_config_name: name,
        remote_ip: addresses
            .remote
            .and_then(|r| HeaderValue::from_str(&r.ip().to_string()).ok())
            .unwrap_or_else(|| HeaderValue::from_static("-")),
        addresses,
        trusted_hops: shared.topology.num_trusted_proxies,
        no_route: Arc::clone(&shared.stats.no_route),
        heads: Arc::new(Heads::default()),
        path_normalization: shared.path_normalization,
    }
}

/// The HTTP server of a connection. Not an `async fn`: its future is `downstream::serve`'s
/// itself, without a frame around it keeping a copy of the stream and the context.
fn serve_http<I>(io: I, ctx: ConnCtx, shared: &Shared) -> impl Future<Output = ()> + '_
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let heads = Arc::clone(&ctx.heads);
    let io = Guarded::new(
        io,
        heads,
        Arc::clone(&shared.lifecycle),
        shared.limits.header_timeout,
        shared.limits.idle_timeout,
        shared.limits.max_connection_duration,
    );
    let limits = downstream::HeadLimits {
        max_headers: shared.limits.max_headers,
        max_header_bytes: shared.limits.max_header_bytes,
    };
    downstream::serve(io, Arc::new(ctx), limits, &shared.lifecycle, |io, ctx| {
        serve_hyper(io, ctx, shared)
    })
}

/// Serves the rest of a connection with hyper: HTTP/2, and the HTTP/1 requests the gateway's
/// own server leaves to it (see `downstream`).
pub(crate) async fn serve_hyper<I>(io: I, ctx: Arc<ConnCtx>, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let heads = Arc::clone(&ctx.heads);
    let service = service_fn(move |req: Request<Incoming>| {
        // Counted open until its response has been sent (for HTTP/2's idle timeout).
        let open = OpenStream::new(&ctx.heads);
        // Boxed: hyper moves the service's future into each stream's task, several times per
        // request; a pointer moves instead of the request's whole future (about 5 KB).
        let handled = Box::pin(proxy::handle(
            Arc::clone(&ctx),
            req.map(DownBody::Hyper),
            Writer::Hyper,
        ));
        async move {
            let Ok(resp) = handled.await;
            Ok::<_, Infallible>(resp.map(|body| Tracked::new(body, open)))
        }
    });
    let conn = shared
        .http
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = heads.drained() => {}
    }
    // An HTTP/2 limit passed (see `guard`): GOAWAY, then the open streams may finish.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(shared.limits.drain_timeout, conn).await;
}

/// Picks an upstream for a TCP chain and splices the bytes both ways.
async fn proxy_tcp<S>(
    mut down: S,
    destinations: &[(Option<usize>, u32)],
    local: &Local,
    worker: &Worker,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let start_time = SystemTime::now();
    let pick = if destinations.len() == 1 {
        Some(0)
    } else {
        pc::action::pick_by_weight(destinations.iter().map(|d| d.1), worker.aux().next())
    };
    let cluster = pick
        .and_then(|i| destinations.get(i))
        .and_then(|d| d.0)
        .and_then(|ci| local.snap.clusters.get(ci));
    let Some(cluster) = cluster else {
        tcp_log(worker, start_time, start, "NC", 0, 0, None);
        return;
    };
    let Some((upstream, addr)) = connect_tcp(cluster, worker).await else {
        tcp_log(worker, start_time, start, "UF", 0, 0, None);
        return;
    };
    let result = match upstream {
        TcpUp::Plain(mut up) => tokio::io::copy_bidirectional(&mut down, &mut up).await,
        TcpUp::Tls(mut up) => tokio::io::copy_bidirectional(&mut down, &mut *up).await,
    };
    let (received, sent) = result.unwrap_or((0, 0));
    tcp_log(worker, start_time, start, "-", received, sent, Some(addr));
    let _ = down.shutdown().await;
}

enum TcpUp {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn connect_tcp(cluster: &ClusterRt, worker: &Worker) -> Option<(TcpUp, SocketAddr)> {
    let ep = cluster.pick_endpoint(worker.aux())?;
    let connecting = TcpStream::connect(ep.addr);
    let Ok(Ok(stream)) = tokio::time::timeout(cluster.connect_timeout, connecting).await else {
        {
            cluster
                .stats
                .event(worker.index(), super::metrics::ClusterEvent::ConnectFail);
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    match &cluster.tls {
        None => Some((TcpUp::Plain(stream), ep.addr)),
        Some(o) => {
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&o.config));
            let tls = connector
                .connect(o.server_name.clone(), stream)
                .await
                .ok()?;
            Some((TcpUp::Tls(Box::new(tls)), ep.addr))
        }
    }
}

fn tcp_log(
    worker: &Worker,
    start_time: SystemTime,
    start: Instant,
    flags: &str,
    received: u64,
    sent: u64,
    upstream: Option<SocketAddr>,
) {
    use std::io::Write as _;
    let duration = start.elapsed().as_millis();
    worker.log_line(|out| {
        out.push(b'[');
        write_time(out, start_time);
        let _ = write!(
            out,
            "] \"- - -\" 0 {flags} {received} {sent} {duration} - \"-\" \"-\" \"-\" \"-\" \""
        );
        match upstream {
            Some(a) => {
                let _ = write!(out, "{a}");
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b"\"\n");
    });
}

/// Terminates TLS on `stream` (the bytes read while inspecting the ClientHello in front)
/// within `timeout`.
///
/// When the handshake fails (a client certificate missing, untrusted or revoked; no common
/// version or suite), rustls has written its alert; the socket is then closed gracefully
/// ([`linger_close`]) so that the client reads that alert (`tlsv13 alert certificate
/// required`, as from Istio's Envoy) instead of a connection reset.
async fn accept_tls(
    stream: Rewind<TcpStream>,
    config: &Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<Rewind<TcpStream>>> {
    let accepting = TlsAcceptor::from(Arc::clone(config))
        .accept(stream)
        .into_fallible();
    match tokio::time::timeout(timeout, accepting).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err((_, stream))) => {
            linger_close(stream.into_inner()).await;
            None
        }
        Err(_) => None,
    }
}

/// Answers a ClientHello (still unread in the socket) with `alert` and closes.
async fn refuse_hello(mut stream: TcpStream, alert: &[u8]) {
    if stream.write_all(alert).await.is_ok() {
        linger_close(stream).await;
    }
}

/// Closes a connection without resetting it: FIN after what was written, then what the peer
/// already sent (or sends until it sees the FIN) is read and dropped, at most 64 KiB or 1 s.
/// Closing with unread bytes (in TLS 1.3 the client sends its Finished and first request
/// right behind its certificate) makes the kernel send a RST, which discards the alert that
/// the client has not read yet.
async fn linger_close(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut budget = 64 * 1024usize;
        while budget > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use portcullis_tls as ptls;

    /// A MUTUAL server configuration (CA and certificate minted with rcgen) and the CA.
    fn mutual_config() -> (
        Arc<rustls::ServerConfig>,
        rustls::pki_types::CertificateDer<'static>,
    ) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mtls.test".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let store = ptls::InMemoryCredentialStore::new(Arc::clone(&provider));
        let mut secret = ptls::SecretData::new();
        secret.insert("tls.crt".into(), cert.pem().into_bytes());
        secret.insert("tls.key".into(), key.serialize_pem().into_bytes());
        secret.insert("ca.crt".into(), ca.pem().into_bytes());
        store.insert_secret("mtls", &secret).unwrap();
        let ctx = ptls::TlsContext::with_provider(provider).credentials(Arc::new(store));
        let spec = ptls::ServerSpec {
            hosts: vec!["mtls.test".into()],
            protocol: ptls::ServerProtocol::Https,
            tls: ptls::ServerTlsSettings {
                mode: ptls::ServerTlsMode::Mutual,
                credential_name: Some("mtls".into()),
                ..Default::default()
            },
        };
        let server = ptls::server_tls(&spec, &ctx).unwrap();
        (Arc::clone(server.config().unwrap()), ca.der().clone())
    }

    /// The accept loop relies on Linux passing the listener's `TCP_NODELAY` to the connections
    /// it accepts: without it, a response written in two parts would wait for the client's
    /// delayed acknowledgement.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn accepted_connections_inherit_no_delay_from_the_listener() {
        let (listener, accepted) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        assert_eq!(accepted, Accepted::AsListened);
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    /// An embedder's socket keeps its own options, so its connections come without
    /// `TCP_NODELAY` and the accept loop is told to set it on each.
    #[tokio::test]
    async fn an_embedders_socket_leaves_no_delay_to_the_accept_loop() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (listener, accepted) = adopt(&socket).unwrap();
        assert_eq!(accepted, Accepted::SetNoDelay);
        let _client = TcpStream::connect(socket.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        assert!(
            !stream.nodelay().unwrap(),
            "the embedder's socket has no TCP_NODELAY"
        );
    }

    /// A TLS 1.3 client without a certificate finishes its handshake before the gateway has
    /// checked its (empty) certificate, and sends its request. The gateway's alert must reach
    /// it: the connection is closed gracefully, not reset with the alert unread.
    #[tokio::test]
    async fn a_refused_client_certificate_reaches_the_client_as_an_alert() {
        let (config, ca) = mutual_config();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            accept_tls(
                Rewind::new(Bytes::new(), stream),
                &config,
                Duration::from_secs(5),
            )
            .await
            .is_none()
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("mtls.test").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        // The request follows the handshake at once (as curl's does), so it arrives while or
        // after the gateway refuses the certificate.
        let _ = tls
            .write_all(b"GET / HTTP/1.1\r\nhost: mtls.test\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A reset connection is no longer connected: curl fails right there (`getpeername()
        // failed with errno 107`) without reading the alert.
        let peer = tls.get_ref().0.peer_addr();
        assert!(peer.is_ok(), "the gateway reset the connection: {peer:?}");
        let mut buf = Vec::new();
        let err = tls.read_to_end(&mut buf).await.unwrap_err();
        assert!(
            err.to_string().contains("CertificateRequired"),
            "expected the certificate_required alert, got {err} ({:?})",
            err.kind()
        );
        drop(tls);
        assert!(server.await.unwrap(), "the handshake was refused");
    }
}
