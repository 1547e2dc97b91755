//! The pieces for embedders that keep their own server loop: a [`SnapshotBuilder`] makes a
//! checked configuration ready to serve, and [`forward`] serves one request against the
//! [`Snapshot`] — routing, `decide`, retries and timeouts, the upstream connection pools of
//! the [`Worker`] given, metrics and the access log — exactly as the gateway's own listeners
//! do. Accepting connections, TLS termination and HTTP/1 or HTTP/2 framing stay the
//! embedder's.
//!
//! The upstream connector and its pools are not public: each pool is built for a cluster's
//! settings (origination TLS, connect timeout, HTTP/2) from the snapshot and runs on the
//! worker's clock, so using one apart from [`forward`] would expose most of the snapshot's
//! internals. What is public is what an embedder can watch:
//! [`Worker::upstream_pools`](crate::Worker::upstream_pools), the [`PoolStats`](crate::PoolStats)
//! of the worker's pools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{HeaderValue, Request, Response};
use hyper::body::Body;
use portcullis_proxy_core as pc;
use portcullis_tls::rustls::crypto::CryptoProvider;
use portcullis_tls::{CredentialStore, MeshIdentity};

use super::body::DownBody;
use super::config::{Built, Identity, Report};
use super::dns::{Resolver, SystemResolver};
use super::exposition::Exposition;
use super::guard::Heads;
use super::metrics::Stats;
use super::proxy::{self, ConnCtx, Writer};
use super::response::RespBody;
use super::snapshot::{self, BuildContext, ChainKind, Live, SnapshotError};
use super::source::ConfigSource;
use super::worker::Worker;

/// Makes a checked configuration ([`check`](crate::check)'s [`Built`]) ready to serve: server
/// and origination TLS built, actions compiled, endpoints resolved. Every fallible step
/// happens here, so a [`Snapshot`] that builds serves.
///
/// ```
/// use portcullis_gateway::{Identity, Source, SnapshotBuilder, check};
///
/// let config = Source::Inline {
///     name: "edge.yaml".into(),
///     text: "apiVersion: networking.istio.io/v1
/// kind: Gateway
/// metadata: {name: edge, namespace: istio-system}
/// spec:
///   selector: {istio: ingressgateway}
///   servers:
///   - port: {number: 8080, name: http, protocol: HTTP}
///     hosts: ['*']
/// "
///     .into(),
/// };
/// let built = check(&[config], &Identity::default()).map_err(|r| r.errors_text())?;
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let snapshot = runtime.block_on(SnapshotBuilder::new(built).build())?;
/// assert!(snapshot.ports().contains(&8080));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct SnapshotBuilder {
    built: Built,
    provider: Option<Arc<CryptoProvider>>,
    stores: Vec<Arc<dyn CredentialStore>>,
    resolver: Arc<dyn Resolver>,
    mesh: Option<Arc<dyn MeshIdentity>>,
}

impl SnapshotBuilder {
    /// A builder for `built`, with the system's resolver, no credential store beyond the
    /// configuration's Secrets, no mesh identity and ring's crypto provider.
    pub fn new(built: Built) -> Self {
        Self {
            built,
            provider: None,
            stores: Vec::new(),
            resolver: Arc::new(SystemResolver),
            mesh: None,
        }
    }

    /// Loads `source` once (see [`ConfigSource::load`]), validates it and translates it for
    /// the gateway workload `identity`: a builder for it, or every problem found.
    ///
    /// # Errors
    /// The report of a configuration with errors.
    pub fn from_source(source: &mut dyn ConfigSource, identity: &Identity) -> Result<Self, Report> {
        super::source::check_source_keeping_documents(source, identity).map(Self::new)
    }

    /// Adds a credential store for `credentialName` (after the configuration's Secrets).
    pub fn credential_store(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.stores.push(store);
        self
    }

    /// The workload certificate and mesh roots for `ISTIO_MUTUAL` origination.
    pub fn mesh_identity(mut self, mesh: Arc<dyn MeshIdentity>) -> Self {
        self.mesh = Some(mesh);
        self
    }

    /// Who resolves `resolution: DNS` endpoints.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// rustls's crypto provider for every TLS configuration.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Builds the snapshot (resolving DNS endpoints: it needs a tokio runtime).
    ///
    /// # Errors
    /// TLS material that cannot be loaded, or endpoints that cannot be resolved.
    pub async fn build(self) -> Result<Snapshot, SnapshotError> {
        let stats = Arc::new(Stats::new(1));
        let ctx = BuildContext {
            provider: self
                .provider
                .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider())),
            stores: self.stores,
            stats: Arc::clone(&stats),
            dns_timeout: Duration::from_secs(5),
            resolver: self.resolver,
            mesh: self.mesh,
        };
        let snap = snapshot::build(self.built.into(), &ctx, 1, None).await?;
        let live = Arc::new(Live::new(snap));
        let metrics = Arc::new(Exposition::default());
        metrics.set_stats(&stats);
        metrics.set_live(&live);
        Ok(Snapshot {
            live,
            stats,
            metrics,
        })
    }
}

/// A configuration ready to serve, made by [`SnapshotBuilder`]; cheap to clone. It never
/// changes: to reconfigure, build another and pass that to [`forward`] (requests in flight
/// keep the one they started with).
///
/// See [`SnapshotBuilder`] for an example.
#[derive(Clone, Debug)]
pub struct Snapshot {
    live: Arc<Live>,
    stats: Arc<Stats>,
    metrics: Arc<Exposition>,
}

impl Snapshot {
    /// The Gateway server ports it has listeners for.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .live
            .get()
            .listeners
            .iter()
            .filter_map(|l| u16::try_from(l.plan.port).ok())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The counters of the requests forwarded against it, in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.metrics.prometheus_text()
    }
}

/// Where a request came from: the Gateway server port it arrived on (which picks the
/// listener and its routes), the client's address, and whether the embedder terminated TLS
/// for it.
///
/// ```
/// use std::net::SocketAddr;
/// use portcullis_gateway::Downstream;
///
/// let from = Downstream::new(8443, SocketAddr::from(([192, 0, 2, 7], 51000))).with_tls(true);
/// assert!(from.tls);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Downstream {
    /// The Gateway server port.
    pub port: u16,
    /// The client's address (`x-forwarded-for`, `sourceIP` hashing).
    pub remote: SocketAddr,
    /// The request came over TLS (`x-forwarded-proto: https`, `httpsRedirect`).
    pub tls: bool,
}

impl Downstream {
    /// A plaintext request on `port` from `remote`.
    pub fn new(port: u16, remote: SocketAddr) -> Self {
        Self {
            port,
            remote,
            tls: false,
        }
    }

    /// Whether the request came over TLS.
    #[must_use]
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
}

/// Serves one request against `snapshot`, as a listener of the gateway would on the port of
/// `downstream`: the route is found, its action decided, and the request forwarded upstream
/// through `worker`'s connection pools (with retries, timeouts and mirrors) or answered
/// locally (redirect, direct response, fault, 404 when no route matches). The response is
/// ready to send; its body streams from the upstream.
///
/// `worker` holds the connection pools, random sources and access-log sink: make one per
/// thread of a thread-per-core server, or one for a multi-threaded runtime.
///
/// The request body can be any [`Body`] of [`Bytes`]: hyper's [`Incoming`](hyper::body::Incoming) goes upstream as
/// it is, another type is boxed (one allocation per request). Its errors are reported as the
/// client's (`DPE`, or the reset they stand for when an I/O or HTTP/2 error is among their
/// causes).
///
/// ```no_run
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use hyper::{Request, body::Incoming, service::service_fn};
/// use hyper_util::rt::{TokioExecutor, TokioIo};
/// use portcullis_gateway::{AccessLog, Downstream, Snapshot, Worker, forward};
///
/// async fn serve(snapshot: Snapshot) -> std::io::Result<()> {
///     let worker = Worker::new(AccessLog::Stdout);
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
///     loop {
///         let (stream, remote) = listener.accept().await?;
///         let (snapshot, worker) = (snapshot.clone(), Arc::clone(&worker));
///         let service = service_fn(move |req: Request<Incoming>| {
///             let (snapshot, worker) = (snapshot.clone(), Arc::clone(&worker));
///             async move {
///                 let from = Downstream::new(8080, remote);
///                 Ok::<_, Infallible>(forward(&snapshot, &worker, &from, req).await)
///             }
///         });
///         tokio::spawn(async move {
///             let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
///             let _ = builder.serve_connection(TokioIo::new(stream), service).await;
///         });
///     }
/// }
/// ```
pub async fn forward<B>(
    snapshot: &Snapshot,
    worker: &Arc<Worker>,
    downstream: &Downstream,
    req: Request<B>,
) -> Response<RespBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let local = snapshot::local(&snapshot.live, &worker.snapshots, &worker.coarse);
    // The route configuration of the port's HTTP chain: the plaintext one, else the first
    // (the embedder terminated TLS, whatever the SNI).
    let route_config = local
        .snap
        .listeners
        .iter()
        .filter(|l| l.plan.port == u32::from(downstream.port))
        .flat_map(|l| {
            l.plain
                .into_iter()
                .chain(0..l.chains.len())
                .map(move |i| (l, i))
        })
        .find_map(|(l, i)| match l.chains.get(i).map(|c| &c.kind) {
            Some(ChainKind::Http { route_config }) => Some(*route_config),
            _ => None,
        });
    let name = route_config
        .and_then(|i| local.snap.route_configs.get(i))
        .map_or_else(|| Arc::from(""), |rc| Arc::clone(&rc.name));
    let conn = ConnCtx {
        live: Arc::clone(&snapshot.live),
        route_config: route_config.unwrap_or(usize::MAX),
        route_config_name: name,
        local,
        worker: Arc::clone(worker),
        scheme: if downstream.tls {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        },
        remote_ip: HeaderValue::from_str(&downstream.remote.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("-")),
        addresses: pc::lb::ConnectionAddresses {
            remote: Some(downstream.remote),
            local: None,
        },
        trusted_hops: 0,
        no_route: Arc::clone(&snapshot.stats.no_route),
        heads: Arc::new(Heads::default()),
        path_normalization: pc::path::PathNormalization::default(),
    };
    let handled = proxy::handle(Arc::new(conn), req.map(DownBody::from_body), Writer::Hyper).await;
    match handled {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}
