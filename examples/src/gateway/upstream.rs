//! Upstream connections: a connector for hyper-util's pooling client (plain TCP with
//! `TCP_NODELAY`, or TLS origination with a `portcullis-tls` client configuration), and
//! endpoint selection behind a small trait.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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
pub(crate) type UpClient = Client<Connector, UpBody>;

/// A keep-alive pooling client (idle connections kept 90 s, no per-host limit).
pub(crate) fn client(connector: Connector) -> UpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .set_host(false)
        .build(connector)
}

/// One endpoint of a cluster.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// `ip:port`, ready for request URIs.
    pub(crate) authority: http::uri::Authority,
}
