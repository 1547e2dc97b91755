//! An Istio ingress gateway runtime as a library: a proxy on tokio, hyper 1 and tokio-rustls
//! that embeds every Portcullis crate. The example gateway (`examples/gateway/main.rs`) is a
//! thin binary over it; other Rust gateways and tests start it in-process with
//! [`GatewayBuilder::start`].
//!
//! # Architecture
//!
//! * **Configuration** ([`check`]): files and directories are loaded with `portcullis-model`
//!   (errors with `file:line:col`), validated with `portcullis-validate` (Istio's webhook
//!   rules) and translated with `portcullis-translate` for this gateway's identity (namespace
//!   and labels) into a `GatewayPlan`.
//! * **Snapshot**: the plan made ready to serve — `portcullis-tls` server configurations per
//!   port (one SNI resolver per port), upstream TLS origination per cluster
//!   (DestinationRule `tls` `SIMPLE`/`MUTUAL`), route actions compiled once for
//!   `portcullis_proxy_core::decide`, cluster endpoints (STATIC addresses, DNS names resolved
//!   with a [`Resolver`], the system's by default), counters. Every fallible step happens before the swap;
//!   a configuration that fails is refused and the previous snapshot keeps serving.
//! * **Workers**: `--workers N` single-threaded tokio runtimes, one thread each, every one
//!   with its own `SO_REUSEPORT` socket per listener (the kernel spreads connections), its own
//!   upstream connection pools, metric shards, random source and access-log buffer, held in
//!   a [`Worker`] made when the worker starts and passed to its connections and requests.
//!   Nothing on the request path touches another worker's cache lines: a request uses its
//!   connection's view of the snapshot while one atomic load says it is still live.
//! * **Connections**: a listener whose chains need it reads the ClientHello
//!   (`portcullis_tls::peek_client_hello` on what has arrived; the task sleeps until more
//!   does, and the bytes read go on in front of the stream) and picks a chain by SNI
//!   (`portcullis_route_match::SniRouter`): TLS termination (rustls, mTLS), passthrough
//!   (bytes spliced to the upstream untouched) or TCP proxying; plaintext HTTP goes straight
//!   to hyper-util's auto builder (HTTP/1.1 and h2c prior knowledge; ALPN `h2` over TLS).
//! * **Requests**: `Router::find` → the compiled action → `decide` → forward (hyper-util's
//!   pooling client, keep-alive, `TCP_NODELAY`), redirect, direct response, fault, CORS.
//!   Request bodies stream; upgrades (WebSocket) are spliced; retries and timeouts follow
//!   the decision; mirrors are spawned and never delay the request.
//! * **Control thread**: polls the configuration files' modification times every second and
//!   swaps the whole snapshot on change; serves the admin listener (metrics, dumps). With one
//!   worker, [`GatewayBuilder::serve_on_this_thread`] runs this control work as tasks on the worker's
//!   own runtime instead, and the process has a single thread.
//! * **Metrics**: counters sharded per worker, summed only when they are read: one
//!   `prometheus-client` collector encodes them for the admin listener's `/stats/prometheus`,
//!   [`Gateway::metrics`] and any registry given to [`GatewayBuilder::metrics_registry`].
//!
//! A server that keeps its own accept loop serves requests with [`forward`] against a
//! [`Snapshot`] from [`SnapshotBuilder`], through a [`Worker`] of its own.
//!
//! Why thread-per-core runtimes rather than one multi-threaded runtime: the proxy's work is
//! two short hops per request (downstream connection task → upstream connection task); on a
//! current-thread runtime both run on the same core without cross-thread wake-ups or
//! work-stealing queues, and per-worker pools and counters need no synchronisation. It is the
//! model of nginx and Envoy (one event loop per worker), so `--workers 1` compares fairly with
//! a one-worker nginx. The cost is that a single hot connection cannot spread over cores.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod body;
pub mod cli;
mod config;
mod dns;
mod downstream;
pub mod dump;
mod embed;
mod exposition;
mod guard;
mod log;
mod metrics;
mod proxy;
mod rebuild;
mod response;
mod server;
mod snapshot;
pub mod source;
mod upstream;
mod worker;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use portcullis_tls::rustls::crypto::CryptoProvider;
use portcullis_tls::{CredentialStore, FileCredentialStore, FileMeshIdentity, MeshIdentity};
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};

pub use config::{Built, Identity, Problem, Report, Source, check, check_with_max_documents};
pub use dns::{Lookup, Resolver, SystemResolver};
pub use dump::DumpKind;
pub use embed::{Downstream, Snapshot, SnapshotBuilder, forward};
pub use server::{Limits, Topology};
pub use snapshot::SnapshotError;
pub use source::{ConfigSource, Files};
pub use worker::{AccessLog, AccessLogSink, PoolStats, Worker};

pub use prometheus_client;
/// The `prometheus-client` crate the gateway encodes its metrics with: its
/// [`Registry`](prometheus_client::registry::Registry) is what
/// [`GatewayBuilder::metrics_registry`] takes.
pub use response::RespBody;

use exposition::Exposition;
use metrics::Stats;
use snapshot::{BuildContext, Live};

/// How to run a gateway: the configuration source, the workload identity, where listeners
/// bind, limits and timeouts, and the extension points. Made by [`Gateway::builder`]; ends
/// with [`start`](Self::start) (thread-per-core workers the gateway owns),
/// [`serve`](Self::serve) (tasks on the caller's tokio runtime) or
/// [`serve_on_this_thread`](Self::serve_on_this_thread).
///
/// ```
/// use std::net::SocketAddr;
/// use portcullis_gateway::{AccessLog, Gateway, Source};
///
/// let gateway = Gateway::builder()
///     .files([Source::Inline {
///         name: "edge.yaml".into(),
///         text: "apiVersion: networking.istio.io/v1
/// kind: Gateway
/// metadata: {name: edge, namespace: istio-system}
/// spec:
///   selector: {istio: ingressgateway}
///   servers:
///   - port: {number: 8080, name: http, protocol: HTTP}
///     hosts: ['*']
/// "
///         .into(),
///     }])
///     .workers(1)
///     .admin(None)
///     .port_binding(8080, SocketAddr::from(([127, 0, 0, 1], 0)))
///     .access_log(AccessLog::Off)
///     .start()?;
/// assert_eq!(gateway.generation(), 1);
/// assert!(gateway.local_addr(8080).is_some());
/// gateway.shutdown();
/// # Ok::<(), portcullis_gateway::StartError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct GatewayBuilder {
    /// A source given with [`config`](Self::config); else `sources` through [`Files`].
    pub(crate) source: Option<Box<dyn ConfigSource>>,
    pub(crate) sources: Vec<Source>,
    pub(crate) identity: Identity,
    pub(crate) workers: usize,
    pub(crate) admin: Option<SocketAddr>,
    pub(crate) port_bindings: HashMap<u16, PortBinding>,
    pub(crate) credentials: Option<PathBuf>,
    pub(crate) credential_stores: Vec<Arc<dyn CredentialStore>>,
    pub(crate) access_log: AccessLog,
    pub(crate) poll_interval: Duration,
    pub(crate) keep_parsed: bool,
    pub(crate) build_niceness: u8,
    pub(crate) dns_refresh: Option<Duration>,
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) random_seed: Option<u64>,
    pub(crate) limits: Limits,
    pub(crate) max_documents: usize,
    pub(crate) path_normalization: portcullis_proxy_core::path::PathNormalization,
    pub(crate) topology: Topology,
    pub(crate) drain_time: Duration,
    pub(crate) drain_on_signals: bool,
    pub(crate) mesh_identity: Option<Arc<dyn MeshIdentity>>,
    pub(crate) mesh_identity_dir: Option<PathBuf>,
    pub(crate) crypto_provider: Option<Arc<CryptoProvider>>,
    /// The metrics' collector, registered in the embedder's registries and the admin
    /// listener's.
    pub(crate) metrics: Arc<Exposition>,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self {
            source: None,
            sources: Vec::new(),
            identity: Identity::default(),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 15000))),
            port_bindings: HashMap::new(),
            credentials: None,
            credential_stores: Vec::new(),
            access_log: AccessLog::Stdout,
            poll_interval: Duration::from_secs(1),
            keep_parsed: true,
            build_niceness: 10,
            dns_refresh: Some(Duration::from_secs(30)),
            resolver: Arc::new(SystemResolver),
            random_seed: None,
            limits: Limits::default(),
            max_documents: portcullis_model::DEFAULT_MAX_DOCUMENTS,
            path_normalization: portcullis_proxy_core::path::PathNormalization::default(),
            topology: Topology::default(),
            drain_time: Duration::from_secs(5),
            drain_on_signals: false,
            mesh_identity: None,
            mesh_identity_dir: None,
            crypto_provider: None,
            metrics: Arc::new(Exposition::default()),
        }
    }
}

impl GatewayBuilder {
    /// The defaults: no configuration yet, one worker per core, the admin listener on
    /// `127.0.0.1:15000`, the access log on standard output, the system resolver, Envoy's
    /// limits ([`Limits::default`]), a 5 s drain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the configuration comes from (a [`source::Objects`] set, a [`source::channel`],
    /// your own [`ConfigSource`]). Replaces [`files`](Self::files).
    pub fn config(mut self, source: impl ConfigSource) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Reads the configuration from files, directories or text, watched for changes every
    /// [`poll_interval`](Self::poll_interval) (a [`source::Files`]).
    pub fn files(mut self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.source = None;
        self.sources = sources.into_iter().collect();
        self
    }

    /// Namespace and labels of this gateway workload: which Gateways select it.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Worker threads for [`start`](Self::start), each a single-threaded runtime (at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The admin listener's address (`None`: no admin listener).
    pub fn admin(mut self, addr: Option<SocketAddr>) -> Self {
        self.admin = addr;
        self
    }

    /// Binds the listener of a Gateway server's `port` to `addr` instead of
    /// `0.0.0.0:<port>`, as a Kubernetes Service maps a gateway's port to the pod's target
    /// port; routing still sees the Gateway's port. Port 0 takes a free port
    /// ([`Gateway::local_addr`] tells which). This replaces a
    /// [`port_listener`](Self::port_listener) of the same port, whose socket is then closed.
    pub fn port_binding(mut self, port: u16, addr: SocketAddr) -> Self {
        self.port_bindings.insert(port, PortBinding::Addr(addr));
        self
    }

    /// Serves a Gateway server's `port` on `listener`, a listening socket the embedder made,
    /// instead of binding one: for socket options the gateway does not set, a socket handed
    /// over by a service manager, or a port bound before privileges were dropped. Routing
    /// still sees the Gateway's port, and [`Gateway::local_addr`] tells the socket's address.
    /// One such option is `TCP_DEFER_ACCEPT`, which saves a wake-up per new connection (see
    /// BENCHMARKS.md) but delays a client that waits for the server to speak first: only for
    /// a port whose servers are HTTP or TLS.
    ///
    /// The gateway owns the socket from then on and closes it when it stops (or fails to
    /// start). It keeps it open in between: while the configuration has no server on `port`,
    /// nothing accepts from it, so a client's connection is not refused but waits in the
    /// backlog, as with a socket a service manager holds, until a configuration with the
    /// port serves it. Starting fails if the socket is not listening.
    ///
    /// Every worker accepts from this one socket (the socket is made non-blocking, a setting
    /// its other handles share). The kernel wakes each waiting worker for a new connection
    /// and one of them takes it, where a socket the gateway binds has a queue per worker
    /// (`SO_REUSEPORT`). Each accepted connection is given `TCP_NODELAY`. This replaces a
    /// [`port_binding`](Self::port_binding) of the same port.
    ///
    /// ```
    /// # use portcullis_gateway::{AccessLog, Gateway, Source};
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let gateway = Gateway::builder()
    ///     .files([Source::Inline {
    ///         name: "gateway.yaml".into(),
    ///         text: "apiVersion: networking.istio.io/v1
    /// kind: Gateway
    /// metadata: {name: gw, namespace: istio-system}
    /// spec:
    ///   selector: {istio: ingressgateway}
    ///   servers:
    ///   - port: {number: 8080, name: http, protocol: HTTP}
    ///     hosts: ['*']
    /// "
    ///         .into(),
    ///     }])
    ///     .workers(1)
    ///     .admin(None)
    ///     .port_listener(8080, listener)
    ///     .access_log(AccessLog::Off)
    ///     .start()?;
    /// assert_eq!(gateway.local_addr(8080), Some(addr));
    /// gateway.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn port_listener(mut self, port: u16, listener: std::net::TcpListener) -> Self {
        self.port_bindings
            .insert(port, PortBinding::Listener(listener));
        self
    }

    /// A directory of credentials laid out like mounted secrets
    /// (`<dir>/<credentialName>/tls.crt`), watched like the configuration files.
    pub fn credentials_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.credentials = Some(dir.into());
        self
    }

    /// Another store `credentialName` is looked up in (after the configuration's Secrets).
    pub fn credential_store(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.credential_stores.push(store);
        self
    }

    /// Where access-log lines go.
    pub fn access_log(mut self, sink: AccessLog) -> Self {
        self.access_log = sink;
        self
    }

    /// How often the configuration files (and the credentials directory) are checked for
    /// changes.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Whether the configuration files' parsed documents are kept between loads, so that a
    /// change parses only the files it touched (the default), or parsed again on every load to
    /// spare their memory (see [`Files::keep_parsed`]).
    pub fn keep_parsed(mut self, keep: bool) -> Self {
        self.keep_parsed = keep;
        self
    }

    /// How much lower than the workers' the scheduling priority of the thread that builds a
    /// changed configuration is, as a nice value from 0 to 19 (default 10; Linux only, where a
    /// thread may lower its own priority; elsewhere it is ignored).
    ///
    /// A build of a large configuration takes tens of milliseconds of CPU. On a CPU a busy
    /// worker shares with it, a build at the workers' priority takes half the CPU while it
    /// runs, and every request waits twice as long; at 10 it takes about a tenth, so requests
    /// are served almost as before, and the change is applied a few times later. An idle CPU
    /// builds as fast either way. 0 builds at the workers' priority.
    pub fn build_niceness(mut self, niceness: u8) -> Self {
        self.build_niceness = niceness.min(19);
        self
    }

    /// How often the DNS names of `resolution: DNS` endpoints are looked up again; when the
    /// answers changed, the configuration is rebuilt and swapped. `None`: only when a
    /// configuration is applied.
    pub fn dns_refresh(mut self, every: Option<Duration>) -> Self {
        self.dns_refresh = every;
        self
    }

    /// Who answers DNS lookups ([`SystemResolver`] by default).
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Seeds the per-worker random sources: worker `i` uses `SplitMix64(seed + i)` for
    /// `decide`'s draws, so weighted routing is reproducible (with [`start`](Self::start)).
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.random_seed = Some(seed);
        self
    }

    /// Downstream connection limits and timeouts.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The most documents one configuration file may hold (counting a `kind: List` and each
    /// of its items; default 10 000, [`portcullis_model::DEFAULT_MAX_DOCUMENTS`]): a larger
    /// file is refused with an error that names this option, at start and on reload (the old
    /// configuration keeps serving). The command line's `--max-documents`. It applies to the
    /// files given with [`files`](Self::files); a source given with [`config`](Self::config)
    /// loads as it chooses (for [`Files`], [`Files::with_max_documents`]).
    ///
    /// ```
    /// use portcullis_gateway::{GatewayBuilder, Source};
    ///
    /// let many = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\n\
    ///             spec: {hosts: [a.example.com], ports: [{number: 80, name: http, protocol: HTTP}]}\n---\n"
    ///     .repeat(3);
    /// let source = || [Source::Inline { name: "many.yaml".into(), text: many.clone() }];
    /// let err = GatewayBuilder::new().files(source()).max_documents(2).check().unwrap_err();
    /// assert!(err.errors_text().contains("--max-documents"));
    /// assert!(GatewayBuilder::new().files(source()).max_documents(3).check().is_ok());
    /// ```
    pub fn max_documents(mut self, max: usize) -> Self {
        self.max_documents = max;
        self
    }

    /// How request paths are normalized before routing: Istio's mesh setting
    /// `pathNormalization.normalization` (default `BASE`). See
    /// [`portcullis_proxy_core::path`].
    pub fn path_normalization(
        mut self,
        normalization: portcullis_proxy_core::path::PathNormalization,
    ) -> Self {
        self.path_normalization = normalization;
        self
    }

    /// What sits in front of the gateway (Istio's `gatewayTopology`).
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = topology;
        self
    }

    /// How long a drain lasts at most (Istio's `terminationDrainDuration`, 5 s by default):
    /// see [`GatewayHandle::drain`].
    pub fn drain_time(mut self, time: Duration) -> Self {
        self.drain_time = time;
        self
    }

    /// Drains (see [`GatewayHandle::drain`]) on `SIGTERM` and `SIGINT`, as a gateway binary
    /// does. Off by default: an embedder handles its own signals.
    pub fn drain_on_signals(mut self, on: bool) -> Self {
        self.drain_on_signals = on;
        self
    }

    /// The workload certificate and mesh roots for `ISTIO_MUTUAL` (servers and origination);
    /// without one, `ISTIO_MUTUAL` clusters answer `503`. Replaces
    /// [`mesh_identity_dir`](Self::mesh_identity_dir).
    pub fn mesh_identity(mut self, identity: Arc<dyn MeshIdentity>) -> Self {
        self.mesh_identity = Some(identity);
        self.mesh_identity_dir = None;
        self
    }

    /// Reads the mesh identity from a directory as istio-proxy mounts it (`cert-chain.pem`,
    /// `key.pem`, `root-cert.pem`, see [`FileMeshIdentity`]), read again when its files
    /// change.
    pub fn mesh_identity_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.mesh_identity_dir = Some(dir.into());
        self.mesh_identity = None;
        self
    }

    /// The rustls `CryptoProvider` of every TLS configuration (ring's by default).
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }

    /// Registers the gateway's metrics in `registry`, a `prometheus-client` registry of the
    /// embedder's, so that one encode of it shows them next to the embedder's own metrics. A
    /// sub-registry (`registry.sub_registry_with_prefix("edge")`) prefixes their names
    /// (`edge_portcullis_requests_total`) or adds labels. They are read on each encode:
    /// nothing before the gateway starts, then its counters (monotonic across configuration
    /// swaps) and the outlier-detection state of the configuration serving. The admin
    /// listener's `/stats/prometheus` and [`Gateway::metrics`] serve the same metrics either
    /// way; this may be called for several registries.
    ///
    /// The names, types and labels are those of the admin listener's `/stats/prometheus`
    /// (`portcullis_requests_total{route_config,virtual_host,route,cluster,response_code}`,
    /// `portcullis_cluster_upstream_rq_total{cluster,response_code}`, …). Encode with
    /// [`prometheus_client::encoding::text::encode`] (OpenMetrics) or
    /// [`prometheus_client::encoding::prometheus_text::encode`] (Prometheus 0.0.4).
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use portcullis_gateway::prometheus_client::encoding::text::encode;
    /// use portcullis_gateway::prometheus_client::metrics::counter::Counter;
    /// use portcullis_gateway::prometheus_client::registry::Registry;
    /// use portcullis_gateway::{AccessLog, Gateway, Source};
    ///
    /// let mut registry = Registry::default();
    /// let logins: Counter = Counter::default();
    /// registry.register("logins", "Logins seen by my server.", logins.clone());
    ///
    /// let gateway = Gateway::builder()
    ///     .files([Source::Inline {
    ///         name: "edge.yaml".into(),
    ///         text: "apiVersion: networking.istio.io/v1
    /// kind: Gateway
    /// metadata: {name: edge, namespace: istio-system}
    /// spec:
    ///   selector: {istio: ingressgateway}
    ///   servers:
    ///   - port: {number: 8080, name: http, protocol: HTTP}
    ///     hosts: ['*']
    /// "
    ///         .into(),
    ///     }])
    ///     .workers(1)
    ///     .admin(None)
    ///     .port_binding(8080, SocketAddr::from(([127, 0, 0, 1], 0)))
    ///     .access_log(AccessLog::Off)
    ///     .metrics_registry(registry.sub_registry_with_prefix("edge"))
    ///     .start()?;
    ///
    /// let mut text = String::new();
    /// encode(&mut text, &registry)?;
    /// assert!(text.contains("logins_total 0"));
    /// assert!(text.contains("edge_portcullis_config_swaps_total 0"));
    /// gateway.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics_registry(self, registry: &mut prometheus_client::registry::Registry) -> Self {
        registry.register_collector(self.metrics.collector());
        self
    }

    /// The number of worker threads [`start`](Self::start) runs.
    pub fn worker_count(&self) -> usize {
        self.workers.max(1)
    }

    /// Whether no configuration was given.
    pub fn has_config(&self) -> bool {
        self.source.is_some() || !self.sources.is_empty()
    }

    /// Loads, validates and translates the configuration once, without starting anything
    /// (the command line's `--check` and `--dump`).
    ///
    /// # Errors
    /// The problems, when any is an error.
    pub fn check(&mut self) -> Result<Built, Report> {
        match &mut self.source {
            Some(source) => source::check_source_keeping_documents(source.as_mut(), &self.identity),
            None => check_with_max_documents(&self.sources, &self.identity, self.max_documents),
        }
    }

    /// The configuration source the gateway reads.
    fn take_source(&mut self) -> Result<Box<dyn ConfigSource>, StartError> {
        if let Some(source) = self.source.take() {
            return Ok(source);
        }
        if self.sources.is_empty() {
            return Err(StartError::Config("no configuration given".to_owned()));
        }
        Ok(Box::new(
            Files::new(self.sources.clone())
                .with_poll_interval(self.poll_interval)
                .with_max_documents(self.max_documents)
                .keep_parsed(self.keep_parsed),
        ))
    }
}

impl Gateway {
    /// A [`GatewayBuilder`] with the defaults.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::new()
    }
}

/// A running gateway, from [`GatewayBuilder::start`] or [`GatewayBuilder::serve`]. Dropping
/// it leaves it running; [`shutdown`](Self::shutdown) stops it at once,
/// [`drain`](Self::drain) gracefully, and [`handle`](Self::handle) gives a handle that other
/// tasks and threads keep.
#[derive(Debug)]
pub struct Gateway {
    handle: GatewayHandle,
    metrics: Arc<Exposition>,
    admin: Option<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
    listening: Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>,
}

/// What the gateway's tasks and its handles share: draining, stopping, reloading, and the
/// downstream connections open.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// Set once a drain starts: `/ready` fails, responses say `connection: close`, HTTP/2
    /// connections get GOAWAY. Read once per HTTP/1 response and per connection tick.
    pub(crate) draining: AtomicBool,
    /// Asks the control task to drain.
    drain: Notify,
    /// Asks the control task to load the configuration again.
    reload: Notify,
    /// `true` once the gateway is to stop: workers and the control task end.
    stop: watch::Sender<bool>,
    /// `true` once the control task has ended, its listeners closed.
    stopped: watch::Sender<bool>,
    /// Downstream connections open now, over every listener and worker.
    pub(crate) open_connections: AtomicUsize,
    drain_time: Duration,
}

impl Lifecycle {
    fn new(drain_time: Duration) -> Self {
        Self {
            draining: AtomicBool::new(false),
            drain: Notify::new(),
            reload: Notify::new(),
            stop: watch::Sender::new(false),
            stopped: watch::Sender::new(false),
            open_connections: AtomicUsize::new(0),
            drain_time,
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn start_drain(&self) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            tracing::info!("draining");
        }
        self.drain.notify_one();
    }

    fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// The control task has ended: every listener is closed.
    fn finish(&self) {
        self.stop();
        self.stopped.send_replace(true);
    }
}

/// A handle on a running gateway: cheap to clone, usable from any thread or task.
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    lifecycle: Arc<Lifecycle>,
    live: Arc<Live>,
}

impl GatewayHandle {
    /// Starts a graceful drain, as Istio's gateways do on `SIGTERM`, and returns at once:
    /// the admin listener's `/ready` fails from now on (so load balancers stop sending),
    /// listeners keep accepting, every HTTP/1.1 response carries `connection: close`, idle
    /// connections are closed and HTTP/2 connections get GOAWAY, requests in flight finish.
    /// When the drain time ([`GatewayBuilder::drain_time`]) has passed, or earlier once no
    /// downstream connection is left, the gateway stops.
    pub fn drain(&self) {
        self.lifecycle.start_drain();
    }

    /// Stops at once: listeners close and open connections end.
    pub fn shutdown(&self) {
        self.lifecycle.stop();
    }

    /// Loads the configuration again now (as a change of the source would), building and
    /// swapping it in or refusing it.
    pub fn reload(&self) {
        self.lifecycle.reload.notify_one();
    }

    /// Whether a drain has started.
    pub fn is_draining(&self) -> bool {
        self.lifecycle.is_draining()
    }

    /// The generation of the configuration serving (1 for the first, +1 per swap).
    pub fn generation(&self) -> u64 {
        self.live.generation()
    }

    /// Resolves once the gateway has stopped (after a drain or a shutdown): nothing listens
    /// on its ports any more.
    pub async fn stopped(&self) {
        let mut stopped = self.lifecycle.stopped.subscribe();
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }
}

/// Why a gateway did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration has errors (one per line).
    Config(String),
    /// The configuration could not be made ready (TLS material, …).
    Build(String),
    /// A listener or the admin listener could not be bound, or a thread not started.
    Io(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid configuration:\n{e}"),
            Self::Build(e) => write!(f, "configuration cannot be served: {e}"),
            Self::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StartError {}

/// Where a Gateway server's port is listened on, when not on `0.0.0.0:<port>`.
#[derive(Debug)]
pub(crate) enum PortBinding {
    /// Bound by the gateway at this address ([`GatewayBuilder::port_binding`]).
    Addr(SocketAddr),
    /// The embedder's socket ([`GatewayBuilder::port_listener`]).
    Listener(std::net::TcpListener),
}

impl PortBinding {
    /// A listener on the current runtime: a handle on the embedder's socket, or else one
    /// bound at `local`.
    fn listen(
        binding: Option<&Self>,
        local: SocketAddr,
    ) -> std::io::Result<(tokio::net::TcpListener, server::Accepted)> {
        match binding {
            Some(Self::Listener(socket)) => server::adopt(socket),
            _ => server::bind(local),
        }
    }
}

/// The accept loops of every listener on every worker, by the plan's listener address.
#[derive(Debug, Default)]
struct Listeners {
    active: HashMap<SocketAddr, BoundListener>,
    /// The admin listener's accept loop.
    admin: Option<tokio::task::JoinHandle<()>>,
}

/// One listener as bound: the address it got and its accept loops (one per worker).
#[derive(Debug)]
struct BoundListener {
    local: SocketAddr,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Listeners {
    /// Binds the listeners of `snap` that are not bound yet (on every worker) and stops the
    /// ones `snap` no longer has. A listener binds its plan address (`0.0.0.0:<port>`) unless
    /// `port_bindings` names another for its port, or the embedder's socket; port 0 there
    /// takes a free port, which every worker then shares. Returns the bind errors.
    fn reconcile(
        &mut self,
        snap: &snapshot::Snapshot,
        workers: &[(Handle, Arc<Worker>)],
        shared: &Arc<server::Shared>,
        port_bindings: &HashMap<u16, PortBinding>,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let wanted: Vec<SocketAddr> = snap.listeners.iter().map(|l| l.bind).collect();
        for addr in &wanted {
            if self.active.contains_key(addr) {
                continue;
            }
            let binding = port_bindings.get(&addr.port());
            let mut local = match binding {
                Some(PortBinding::Addr(bound)) => *bound,
                _ => *addr,
            };
            let mut loops = Vec::new();
            for (h, worker) in workers {
                let _guard = h.enter();
                match PortBinding::listen(binding, local) {
                    Ok((l, accepted)) => {
                        // With port 0, the first worker's port is every other worker's.
                        if let Ok(bound) = l.local_addr() {
                            local = bound;
                        }
                        loops.push(h.spawn(server::accept_loop(
                            l,
                            accepted,
                            *addr,
                            Arc::clone(shared),
                            Arc::clone(worker),
                        )));
                    }
                    Err(e) => {
                        errors.push(format!("cannot listen on {local}: {e}"));
                        break;
                    }
                }
            }
            if loops.len() == workers.len() {
                self.active.insert(*addr, BoundListener { local, loops });
            } else {
                loops.iter().for_each(tokio::task::JoinHandle::abort);
            }
        }
        self.active.retain(|addr, bound| {
            let keep = wanted.contains(addr);
            if !keep {
                bound.loops.iter().for_each(tokio::task::JoinHandle::abort);
            }
            keep
        });
        errors
    }

    /// Stops every accept loop (the admin listener's too).
    fn close(&mut self) {
        for (_, bound) in self.active.drain() {
            bound.loops.iter().for_each(tokio::task::JoinHandle::abort);
        }
        if let Some(admin) = self.admin.take() {
            admin.abort();
        }
    }

    /// Closes every listener and waits until their accept loops are gone, so that nothing
    /// accepts once the gateway reports that it has stopped.
    async fn close_and_wait(&mut self) {
        let mut loops = Vec::new();
        for (_, bound) in self.active.drain() {
            loops.extend(bound.loops);
        }
        loops.extend(self.admin.take());
        for task in &loops {
            task.abort();
        }
        for task in loops {
            let _ = task.await;
        }
    }

    /// `(plan address, bound address)` of every listener, sorted.
    fn addrs(&self) -> Vec<(SocketAddr, SocketAddr)> {
        let mut v: Vec<_> = self.active.iter().map(|(a, b)| (*a, b.local)).collect();
        v.sort();
        v
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, StartError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Io(format!("cannot start a runtime: {e}")))
}

/// What every way of running a gateway builds before serving.
struct Prepared {
    checked: config::Checked,
    ctx: BuildContext,
    file_store: Option<Arc<FileCredentialStore>>,
    mesh_files: Option<Arc<FileMeshIdentity>>,
    lifecycle: Arc<Lifecycle>,
    source: Box<dyn ConfigSource>,
    derived: config::Derived,
}

fn prepare(options: &mut GatewayBuilder) -> Result<Prepared, StartError> {
    let mut source = options.take_source()?;
    let mut derived = config::Derived::default();
    let checked = source::check_source(source.as_mut(), &options.identity, &mut derived)
        .map_err(|report| StartError::Config(report.errors_text()))?;
    for p in &checked.report.problems {
        tracing::warn!("{p}");
    }
    let stats = Arc::new(Stats::new(options.workers.max(1)));
    options.metrics.set_stats(&stats);
    let provider = options
        .crypto_provider
        .clone()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut mesh_files = None;
    let mesh = match (&options.mesh_identity, &options.mesh_identity_dir) {
        (Some(identity), _) => Some(Arc::clone(identity)),
        (None, Some(dir)) => {
            let identity = FileMeshIdentity::open(dir.clone(), Arc::clone(&provider))
                .map_err(|e| StartError::Build(format!("mesh identity: {e}")))?;
            let identity = Arc::new(identity);
            mesh_files = Some(Arc::clone(&identity));
            Some(identity as Arc<dyn MeshIdentity>)
        }
        (None, None) => None,
    };
    let mut stores = options.credential_stores.clone();
    let file_store = options.credentials.as_ref().map(|dir| {
        let (store, errors) = FileCredentialStore::open(dir.clone(), Arc::clone(&provider));
        for e in errors {
            tracing::warn!("warning: credentials: {e}");
        }
        Arc::new(store)
    });
    if let Some(s) = &file_store {
        stores.push(Arc::clone(s) as Arc<dyn CredentialStore>);
    }
    let ctx = BuildContext {
        provider,
        stores,
        stats: Arc::clone(&stats),
        dns_timeout: Duration::from_secs(5),
        resolver: Arc::clone(&options.resolver),
        mesh,
    };
    Ok(Prepared {
        checked,
        ctx,
        file_store,
        mesh_files,
        lifecycle: Arc::new(Lifecycle::new(options.drain_time)),
        source,
        derived,
    })
}

/// A worker's housekeeping until `stop`: the access-log buffer flushed, the cached `date`
/// and the coarse clock refreshed, every 250 ms.
async fn worker_ticks(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => worker.tick(),
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
}

impl GatewayBuilder {
    /// Loads and validates the configuration, binds every listener and starts serving on
    /// [`workers`](Self::workers) threads of their own (one single-threaded runtime each) and
    /// a control thread.
    ///
    /// # Errors
    /// A configuration with errors, TLS material that cannot be loaded, or a port that cannot
    /// be bound.
    pub fn start(mut self) -> Result<Gateway, StartError> {
        let prepared = prepare(&mut self)?;
        let workers = self.workers.max(1);
        let stop = prepared.lifecycle.stop.subscribe();

        // Workers.
        let mut threads = Vec::new();
        let mut handles = Vec::new();
        for i in 0..workers {
            let (tx, rx) = mpsc::channel();
            let stop = stop.clone();
            let seed = self.random_seed;
            let log = self.access_log.clone();
            let t = std::thread::Builder::new()
                .name(format!("portcullis-worker-{i}"))
                .spawn(move || {
                    let rt = match runtime() {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let worker = Worker::own(i, seed, log);
                    let _ = tx.send(Ok((rt.handle().clone(), Arc::clone(&worker))));
                    rt.block_on(worker_ticks(Arc::clone(&worker), stop));
                    worker.flush();
                })
                .map_err(|e| StartError::Io(format!("cannot start a worker: {e}")))?;
            threads.push(t);
            let handle = rx
                .recv()
                .map_err(|_| StartError::Io("a worker did not start".to_owned()))??;
            handles.push(handle);
        }

        // The control thread: first snapshot, listeners, admin, then the watcher.
        let (tx, rx) = mpsc::channel();
        let lifecycle = Arc::clone(&prepared.lifecycle);
        let metrics = Arc::clone(&self.metrics);
        let (control, built) = Control::new(self, prepared, handles);
        let listening = Arc::clone(&control.listening);
        let t = std::thread::Builder::new()
            .name("portcullis-control".to_owned())
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(control.run(built, |started| {
                    let _ = tx.send(started);
                }));
            })
            .map_err(|e| StartError::Io(format!("cannot start the control thread: {e}")))?;
        threads.push(t);
        let started = rx
            .recv()
            .map_err(|_| StartError::Io("the control thread stopped".to_owned()));
        let (live, admin) = match started.and_then(|r| r) {
            Ok(x) => x,
            Err(e) => {
                lifecycle.finish();
                for t in threads {
                    let _ = t.join();
                }
                return Err(e);
            }
        };
        Ok(Gateway {
            handle: GatewayHandle { lifecycle, live },
            metrics,
            admin,
            threads,
            listening,
        })
    }

    /// Serves on the caller's tokio runtime: binds every listener, spawns the accept loops
    /// and the control task (watching the configuration, the admin listener) with
    /// `tokio::spawn`, and returns once the gateway serves. The gateway's tasks stop with
    /// [`GatewayHandle::shutdown`] or after [`GatewayHandle::drain`]
    /// ([`GatewayHandle::stopped`] resolves then), or with the runtime.
    ///
    /// The gateway is then one [`Worker`]: on a multi-threaded runtime, connections move
    /// between the runtime's threads and share its upstream connection pools and random
    /// source. Access-log lines are written as they are made.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn serve(mut self) -> Result<Gateway, StartError> {
        let prepared = prepare(&mut self)?;
        let lifecycle = Arc::clone(&prepared.lifecycle);
        let metrics = Arc::clone(&self.metrics);
        let worker = Worker::shared(self.random_seed, self.access_log.clone());
        let (control, built) = Control::new(self, prepared, vec![(Handle::current(), worker)]);
        let listening = Arc::clone(&control.listening);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(control.run(built, |started| {
            let _ = tx.send(started);
        }));
        let (live, admin) = rx
            .await
            .map_err(|_| StartError::Io("the control task stopped".to_owned()))??;
        Ok(Gateway {
            handle: GatewayHandle { lifecycle, live },
            metrics,
            admin,
            threads: Vec::new(),
            listening,
        })
    }

    /// Serves with one worker on the calling thread, starting no thread at all, and returns
    /// once the gateway stops (after a drain, see
    /// [`drain_on_signals`](Self::drain_on_signals)), or if it cannot start. `ready` is
    /// called once it serves, with the addresses listened on and the admin listener's.
    ///
    /// The control work — watching the files, building a new snapshot, the admin listener —
    /// runs as tasks on the worker's own runtime, so a configuration build pauses serving
    /// for as long as it takes (requests are delayed, never failed: the swap is still make
    /// before break). In exchange the process stays single-threaded, which the kernel and
    /// the C library reward on every system call: a file-descriptor lookup takes no
    /// reference when no other thread shares the table, and glibc's socket calls skip the
    /// switch to asynchronous cancellation that a multi-threaded process pays around each.
    /// It is the layout of a one-worker nginx (whose master process is a process apart), and
    /// what the command line runs for `--workers 1`. (Resolving `resolution: DNS` endpoints
    /// does start threads: tokio runs the system resolver on its blocking pool.)
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn serve_on_this_thread(
        mut self,
        ready: impl FnOnce(&[SocketAddr], Option<SocketAddr>),
    ) -> Result<(), StartError> {
        let prepared = prepare(&mut self)?;
        let rt = runtime()?;
        let worker = Worker::own(0, self.random_seed, self.access_log.clone());
        let stop = prepared.lifecycle.stop.subscribe();
        let (control, built) = Control::new(
            self,
            prepared,
            vec![(rt.handle().clone(), Arc::clone(&worker))],
        );
        let listening = Arc::clone(&control.listening);
        let mut failed = None;
        rt.block_on(async {
            tokio::spawn(worker_ticks(Arc::clone(&worker), stop));
            control
                .run(built, |started| match started {
                    Ok((_, admin)) => {
                        let addrs: Vec<SocketAddr> = listening
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .iter()
                            .map(|(_, local)| *local)
                            .collect();
                        ready(&addrs, admin);
                    }
                    Err(e) => failed = Some(e),
                })
                .await;
        });
        worker.flush();
        failed.map_or(Ok(()), Err)
    }
}

impl Gateway {
    /// A handle to drain, shut down or reload the gateway from elsewhere.
    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The generation of the configuration serving (1 for the first, +1 per swap).
    pub fn generation(&self) -> u64 {
        self.handle.generation()
    }

    /// The addresses listened on.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, local)| *local)
            .collect()
    }

    /// The address the listener of a Gateway server's `port` is bound to: `0.0.0.0:<port>`,
    /// what [`GatewayBuilder::port_binding`] made of it (with port 0, the port the system
    /// gave), or the address of the socket given with [`GatewayBuilder::port_listener`].
    /// `None` while the configuration has no server on `port`.
    pub fn local_addr(&self, port: u16) -> Option<SocketAddr> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(plan, _)| plan.port() == port)
            .map(|(_, local)| *local)
    }

    /// The metrics, in the Prometheus text format (version 0.0.4): what the admin
    /// listener's `/stats/prometheus` serves. To show them in a registry of your own, see
    /// [`GatewayBuilder::metrics_registry`].
    pub fn metrics(&self) -> String {
        self.metrics.prometheus_text()
    }

    /// Stops accepting, ends every connection and, for a gateway from
    /// [`GatewayBuilder::start`], waits for its threads.
    pub fn shutdown(self) {
        self.handle.shutdown();
        self.join();
    }

    /// Drains gracefully (see [`GatewayHandle::drain`]) and, for a gateway from
    /// [`GatewayBuilder::start`], waits until it has stopped. On the caller's runtime
    /// ([`GatewayBuilder::serve`]), use [`GatewayHandle::drain`] and
    /// [`GatewayHandle::stopped`] instead.
    pub fn drain(self) {
        self.handle.drain();
        self.join();
    }

    /// Blocks until a gateway from [`GatewayBuilder::start`] stops (after a drain or a
    /// shutdown from a handle).
    pub fn wait(self) {
        self.join();
    }

    fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

type Started = Result<(Arc<Live>, Option<SocketAddr>), StartError>;

struct Control {
    options: GatewayBuilder,
    source: Box<dyn ConfigSource>,
    /// What the last check of `source` derived (away with it during a build).
    derived: config::Derived,
    ctx: BuildContext,
    workers: Vec<(Handle, Arc<Worker>)>,
    listening: Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>,
    file_store: Option<Arc<FileCredentialStore>>,
    mesh_files: Option<Arc<FileMeshIdentity>>,
    lifecycle: Arc<Lifecycle>,
    /// Replaced snapshots, freed off this thread once nothing holds them.
    retired: rebuild::Retired,
}

impl Control {
    fn new(
        options: GatewayBuilder,
        prepared: Prepared,
        workers: Vec<(Handle, Arc<Worker>)>,
    ) -> (Self, config::Checked) {
        let control = Self {
            options,
            source: prepared.source,
            derived: prepared.derived,
            ctx: prepared.ctx,
            workers,
            listening: Arc::new(Mutex::new(Vec::new())),
            file_store: prepared.file_store,
            mesh_files: prepared.mesh_files,
            lifecycle: prepared.lifecycle,
            retired: rebuild::Retired::default(),
        };
        (control, prepared.checked)
    }

    /// Builds the first snapshot, binds its listeners and the admin listener, reports the
    /// outcome to `started`, then follows the configuration source until the gateway stops.
    async fn run(mut self, checked: config::Checked, started: impl FnOnce(Started)) {
        // Credentials and the mesh identity's files, watched like the configuration.
        let credentials: Vec<Source> = self
            .options
            .credentials
            .iter()
            .map(PathBuf::as_path)
            .chain(self.mesh_files.as_ref().map(|m| m.dir()))
            .map(|dir| Source::Path(dir.to_path_buf()))
            .collect();
        let mut credentials_seen = config::Fingerprint::of(&credentials);
        let first = match snapshot::build(checked, &self.ctx, 1, None).await {
            Ok(s) => s,
            Err(e) => {
                return started(Err(StartError::Build(e.0)));
            }
        };
        let live = Arc::new(Live::new(first));
        self.options.metrics.set_live(&live);
        let shared = Arc::new(server::Shared::new(
            Arc::clone(&live),
            Arc::clone(&self.ctx.stats),
            self.options.limits.clone(),
            self.options.path_normalization,
            self.options.topology,
            Arc::clone(&self.lifecycle),
        ));
        let mut listeners = Listeners::default();
        let errors = listeners.reconcile(
            &live.get(),
            &self.workers,
            &shared,
            &self.options.port_bindings,
        );
        if !errors.is_empty() {
            listeners.close();
            return started(Err(StartError::Io(errors.join("\n"))));
        }
        self.set_listening(&listeners);
        let admin = match self.options.admin {
            None => None,
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    let bound = l.local_addr().ok();
                    let task = tokio::spawn(admin::serve(
                        l,
                        Arc::clone(&live),
                        Arc::clone(&self.options.metrics),
                        Arc::clone(&self.lifecycle),
                    ));
                    listeners.admin = Some(task);
                    bound
                }
                Err(e) => {
                    listeners.close();
                    return started(Err(StartError::Io(format!(
                        "cannot listen on the admin address {addr}: {e}"
                    ))));
                }
            },
        };
        started(Ok((Arc::clone(&live), admin)));
        describe(&live.get());

        let lifecycle = Arc::clone(&self.lifecycle);
        let mut stop = lifecycle.stop.subscribe();
        let mut signals = self.options.drain_on_signals.then(Signals::new).flatten();
        // Whether the configuration as it is now is what serves (a refused change is not):
        // DNS refreshes rebuild from the source, so they wait for a valid configuration.
        let mut source_serving = true;
        let dns_refresh = self.options.dns_refresh;
        let next_refresh = |now: tokio::time::Instant| dns_refresh.map(|d| now + d);
        let mut dns_due = next_refresh(tokio::time::Instant::now());
        let poll_interval = self.options.poll_interval;
        loop {
            let mut reload = false;
            let mut drain = false;
            tokio::select! {
                () = self.source.changed() => reload = true,
                () = lifecycle.reload.notified() => reload = true,
                () = tokio::time::sleep(poll_interval) => {}
                () = lifecycle.drain.notified() => drain = true,
                () = Signals::recv(&mut signals) => {
                    lifecycle.start_drain();
                    continue;
                }
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
            if drain {
                self.drain(&mut stop).await;
                break;
            }
            self.retired.collect();
            let now = config::Fingerprint::of(&credentials);
            if now != credentials_seen && now == config::Fingerprint::of(&credentials) {
                credentials_seen = now;
                if let Some(store) = &self.file_store {
                    for e in store.reload() {
                        tracing::warn!("warning: credentials: {e}");
                    }
                }
                if let Some(mesh) = &self.mesh_files
                    && let Err(e) = mesh.reload()
                {
                    tracing::warn!("warning: mesh identity: {e}; the previous one stays");
                }
                reload = true;
            }
            if reload {
                source_serving = self.reload(&live, &shared, &mut listeners).await;
                dns_due = next_refresh(tokio::time::Instant::now());
                continue;
            }
            let clock = tokio::time::Instant::now();
            if source_serving && dns_due.is_some_and(|due| clock >= due) {
                dns_due = next_refresh(clock);
                if let Some(cluster) =
                    snapshot::dns_changed(&live.get(), &*self.ctx.resolver, self.ctx.dns_timeout)
                        .await
                {
                    tracing::info!("DNS answers changed for cluster {cluster}; rebuilding");
                    source_serving = self.reload(&live, &shared, &mut listeners).await;
                }
            }
        }
        listeners.close_and_wait().await;
        // The embedder's sockets close with the gateway, before it says it has stopped.
        self.options.port_bindings.clear();
        self.lifecycle.finish();
    }

    /// Waits until the drain time has passed or no downstream connection is left.
    async fn drain(&self, stop: &mut watch::Receiver<bool>) {
        let deadline = tokio::time::Instant::now() + self.lifecycle.drain_time;
        loop {
            if self.lifecycle.open_connections.load(Ordering::Acquire) == 0
                || tokio::time::Instant::now() >= deadline
            {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    fn set_listening(&self, listeners: &Listeners) {
        *self
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = listeners.addrs();
    }

    /// Loads, builds and swaps in the configuration; whether it was applied (`false`: refused,
    /// the previous one keeps serving).
    async fn reload(
        &mut self,
        live: &Arc<Live>,
        shared: &Arc<server::Shared>,
        listeners: &mut Listeners,
    ) -> bool {
        let current = live.generation();
        let reject = |why: String| {
            self.ctx
                .stats
                .config_rejections
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "configuration change refused; generation {current} keeps serving:\n{}",
                why.trim_end()
            );
        };
        let previous = live.get();
        let job = rebuild::Job {
            source: std::mem::replace(&mut self.source, Box::new(rebuild::Away)),
            derived: std::mem::take(&mut self.derived),
            identity: self.options.identity.clone(),
            ctx: self.ctx.clone(),
            generation: current + 1,
            previous: Arc::clone(&previous),
            niceness: self.options.build_niceness,
        };
        let (returned, outcome) = rebuild::run(job).await;
        match returned {
            Some(returned) => {
                self.source = returned.source;
                self.derived = returned.derived;
            }
            None => tracing::error!(
                "the configuration source was lost with its build thread; no further change \
                 will be applied"
            ),
        }
        let snap = match outcome {
            rebuild::Outcome::Built { snapshot, problems } => {
                for p in &problems {
                    tracing::warn!("{p}");
                }
                snapshot
            }
            rebuild::Outcome::Refused(why) => {
                reject(why);
                return false;
            }
        };
        // Make before break: the new snapshot is complete; requests in flight keep theirs.
        live.set(snap);
        self.retired.push(previous);
        self.ctx.stats.config_swaps.fetch_add(1, Ordering::Relaxed);
        let next = live.get();
        for e in listeners.reconcile(&next, &self.workers, shared, &self.options.port_bindings) {
            tracing::error!("error: {e}");
        }
        self.set_listening(listeners);
        tracing::info!("configuration generation {} applied", next.generation);
        describe(&next);
        true
    }
}

/// `SIGTERM` and `SIGINT`, when the gateway drains on them.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some(Self { term, int }),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!("error: cannot handle signals: {e}");
                    None
                }
            }
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Resolves at the next signal; never without signals.
    async fn recv(signals: &mut Option<Self>) {
        match signals {
            #[cfg(unix)]
            Some(s) => {
                tokio::select! {
                    _ = s.term.recv() => tracing::info!("SIGTERM: draining"),
                    _ = s.int.recv() => tracing::info!("SIGINT: draining"),
                }
            }
            _ => std::future::pending().await,
        }
    }
}

fn describe(snap: &snapshot::Snapshot) {
    let ports: Vec<String> = snap.listeners.iter().map(|l| l.bind.to_string()).collect();
    tracing::info!(
        "serving generation {}: listeners [{}], {} route configurations, {} clusters",
        snap.generation,
        ports.join(", "),
        snap.route_configs.len(),
        snap.clusters.len()
    );
}

/// The plan of a configuration as a text table (`--dump`), without starting anything.
pub fn dump_text(built: &Built, kind: DumpKind) -> String {
    dump::text(&dump::View::of_plan(&built.plan), kind)
}

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
