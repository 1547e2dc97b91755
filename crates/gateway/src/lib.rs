//! An Istio ingress gateway runtime as a library: a proxy on tokio, hyper 1 and tokio-rustls
//! that embeds every Portcullis crate. The example gateway (`examples/gateway/main.rs`) is a
//! thin binary over it; other Rust gateways and tests start it in-process with
//! [`Gateway::start`].
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
//!   upstream connection pools, metric shards, random source and access-log buffer. Nothing
//!   on the request path takes a lock or touches another worker's cache lines: a worker sees
//!   the live snapshot through a thread-local cache checked with one atomic load per request.
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
//!   worker, [`Gateway::serve_on_this_thread`] runs this control work as tasks on the worker's
//!   own runtime instead, and the process has a single thread.
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
mod guard;
mod log;
mod metrics;
mod proxy;
mod server;
mod snapshot;
mod upstream;
mod worker;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use portcullis_tls::{CredentialStore, FileCredentialStore};
use tokio::runtime::Handle;
use tokio::sync::watch;

pub use body::RespBody;
pub use config::{Built, Identity, Problem, Report, Source, check};
pub use dns::{Lookup, Resolver, SystemResolver};
pub use dump::DumpKind;
pub use server::{Limits, Topology};
pub use snapshot::BuildError;
pub use worker::AccessLog;

use metrics::Stats;
use snapshot::{BuildContext, Live, Snapshot};

/// How to run a gateway.
#[derive(Clone, Debug)]
pub struct Options {
    /// The configuration: files, directories, or embedded text.
    pub sources: Vec<Source>,
    /// Namespace and labels of this gateway workload.
    pub identity: Identity,
    /// Worker threads (each a single-threaded runtime); at least 1.
    pub workers: usize,
    /// Admin listener address (`None`: no admin listener).
    pub admin: Option<SocketAddr>,
    /// Where the listener of a Gateway server's port binds instead of `0.0.0.0:<port>`, by
    /// port, as a Kubernetes Service maps a gateway's port to the pod's target port; routing
    /// still sees the Gateway's port. Port 0 takes a free port ([`Gateway::local_addr`] tells
    /// which).
    pub port_bindings: HashMap<u16, SocketAddr>,
    /// A directory of credentials laid out like mounted secrets (`<dir>/<name>/tls.crt`).
    pub credentials: Option<PathBuf>,
    /// More credential stores (the demo's generated certificate).
    pub credential_stores: Vec<Arc<dyn CredentialStore>>,
    /// Where access-log lines go.
    pub access_log: AccessLog,
    /// How often the configuration files are checked for changes.
    pub poll_interval: Duration,
    /// How often the DNS names of `resolution: DNS` endpoints are looked up again; when the
    /// answers changed, the configuration is rebuilt and swapped like a file change. `None`:
    /// never (names are resolved only when a configuration is applied).
    pub dns_refresh: Option<Duration>,
    /// Who answers DNS lookups ([`SystemResolver`] by default).
    pub resolver: Arc<dyn Resolver>,
    /// Seed of the per-worker random sources (`None`: from the clock). Worker `i` uses
    /// `SplitMix64(seed + i)` for `decide`'s draws, so weighted routing is reproducible.
    pub random_seed: Option<u64>,
    /// Downstream connection limits.
    pub limits: Limits,
    /// How request paths are normalized before routing: Istio's mesh setting
    /// `pathNormalization.normalization` (default `BASE`). The route is chosen on the
    /// normalized path and the upstream receives it; a path that cannot be normalized is
    /// answered `400`. See [`portcullis_proxy_core::path`].
    pub path_normalization: portcullis_proxy_core::path::PathNormalization,
    /// What sits in front of the gateway: a PROXY protocol header on every connection,
    /// trusted proxies adding to `x-forwarded-for` (Istio's `gatewayTopology`).
    pub topology: Topology,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            identity: Identity::default(),
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 15000))),
            port_bindings: HashMap::new(),
            credentials: None,
            credential_stores: Vec::new(),
            access_log: AccessLog::Stdout,
            poll_interval: Duration::from_secs(1),
            dns_refresh: Some(Duration::from_secs(30)),
            resolver: Arc::new(SystemResolver),
            random_seed: None,
            limits: Limits::default(),
            path_normalization: portcullis_proxy_core::path::PathNormalization::default(),
            topology: Topology::default(),
        }
    }
}

/// Why a gateway did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A running gateway. Dropping it leaves it running; call [`shutdown`](Self::shutdown) to stop.
#[derive(Debug)]
pub struct Gateway {
    live: Arc<Live>,
    stats: Arc<Stats>,
    admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    listening: Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>,
}

/// The accept loops of every listener on every worker, by the plan's listener address.
#[derive(Debug, Default)]
struct Listeners {
    active: HashMap<SocketAddr, BoundListener>,
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
    /// `port_bindings` names another for its port; port 0 there takes a free port, which
    /// every worker then shares. Returns the bind errors.
    fn reconcile(
        &mut self,
        snap: &Snapshot,
        workers: &[Handle],
        shared: &Arc<server::Shared>,
        port_bindings: &HashMap<u16, SocketAddr>,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let wanted: Vec<SocketAddr> = snap.listeners.iter().map(|l| l.bind).collect();
        for addr in &wanted {
            if self.active.contains_key(addr) {
                continue;
            }
            let mut local = port_bindings.get(&addr.port()).copied().unwrap_or(*addr);
            let mut loops = Vec::new();
            for h in workers {
                let _guard = h.enter();
                match server::bind(local) {
                    Ok(l) => {
                        // With port 0, the first worker's port is every other worker's.
                        if let Ok(bound) = l.local_addr() {
                            local = bound;
                        }
                        loops.push(h.spawn(server::accept_loop(l, *addr, Arc::clone(shared))));
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

/// What both ways of running a gateway build before serving.
struct Prepared {
    built: Built,
    stats: Arc<Stats>,
    ctx: BuildContext,
    file_store: Option<Arc<FileCredentialStore>>,
}

fn prepare(options: &Options) -> Result<Prepared, StartError> {
    let built = check(&options.sources, &options.identity)
        .map_err(|report| StartError::Config(report.errors_text()))?;
    for p in &built.report.problems {
        eprintln!("{p}");
    }
    let stats = Arc::new(Stats::new(options.workers.max(1)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut stores = options.credential_stores.clone();
    let file_store = options.credentials.as_ref().map(|dir| {
        let (store, errors) = FileCredentialStore::open(dir.clone(), Arc::clone(&provider));
        for e in errors {
            eprintln!("warning: credentials: {e}");
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
    };
    Ok(Prepared {
        built,
        stats,
        ctx,
        file_store,
    })
}

/// A worker's housekeeping until `stop`: the access-log buffer flushed, the cached `date`
/// and the coarse clock refreshed, every 250 ms.
async fn worker_ticks(mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                worker::flush();
                let _ = downstream::refresh_date();
                upstream::tick_coarse_clock();
            }
            _ = stop.changed() => break,
        }
    }
}

impl Gateway {
    /// Loads and validates the configuration, binds every listener and starts serving.
    ///
    /// # Errors
    /// A configuration with errors, TLS material that cannot be loaded, or a port that cannot
    /// be bound.
    pub fn start(options: Options) -> Result<Self, StartError> {
        let Prepared {
            built,
            stats,
            ctx,
            file_store,
        } = prepare(&options)?;
        let workers = options.workers.max(1);
        let (shutdown, _) = watch::channel(false);

        // Workers.
        let mut threads = Vec::new();
        let mut handles = Vec::new();
        for i in 0..workers {
            let (tx, rx) = mpsc::channel();
            let stop = shutdown.subscribe();
            let seed = options.random_seed;
            let log = options.access_log.clone();
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
                    worker::init(i, seed, log);
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(worker_ticks(stop));
                    worker::flush();
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
        let listening = Arc::new(Mutex::new(Vec::new()));
        let control = Control {
            options,
            ctx,
            workers: handles,
            listening: Arc::clone(&listening),
            file_store,
        };
        let stop = shutdown.subscribe();
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
                rt.block_on(control.run(
                    built,
                    |started| {
                        let _ = tx.send(started);
                    },
                    stop,
                ));
            })
            .map_err(|e| StartError::Io(format!("cannot start the control thread: {e}")))?;
        threads.push(t);
        let started = rx
            .recv()
            .map_err(|_| StartError::Io("the control thread stopped".to_owned()));
        let (live, admin) = match started.and_then(|r| r) {
            Ok(x) => x,
            Err(e) => {
                let _ = shutdown.send(true);
                for t in threads {
                    let _ = t.join();
                }
                return Err(e);
            }
        };
        Ok(Self {
            live,
            stats,
            admin,
            shutdown,
            threads,
            listening,
        })
    }

    /// Serves with one worker on the calling thread, starting no thread at all, and returns
    /// only if the gateway cannot start. `ready` is called once it serves, with the addresses
    /// listened on and the admin listener's.
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
    /// As [`Gateway::start`].
    pub fn serve_on_this_thread(
        options: Options,
        ready: impl FnOnce(&[SocketAddr], Option<SocketAddr>),
    ) -> Result<(), StartError> {
        let Prepared {
            built,
            stats: _,
            ctx,
            file_store,
        } = prepare(&options)?;
        let rt = runtime()?;
        worker::init(0, options.random_seed, options.access_log.clone());
        // Never sent: the process ends with a signal, as with the threaded gateway's `wait`.
        let (_shutdown, stop) = watch::channel(false);
        let listening = Arc::new(Mutex::new(Vec::new()));
        let control = Control {
            options,
            ctx,
            workers: vec![rt.handle().clone()],
            listening: Arc::clone(&listening),
            file_store,
        };
        let mut failed = None;
        rt.block_on(async {
            tokio::spawn(worker_ticks(stop.clone()));
            control
                .run(
                    built,
                    |started| match started {
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
                    },
                    stop,
                )
                .await;
        });
        worker::flush();
        failed.map_or(Ok(()), Err)
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The generation of the configuration serving (1 for the first, +1 per swap).
    pub fn generation(&self) -> u64 {
        self.live.generation()
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

    /// The address the listener of a Gateway server's `port` is bound to: `0.0.0.0:<port>`, or
    /// what [`Options::port_bindings`] made of it (with port 0, the port the system gave).
    pub fn local_addr(&self, port: u16) -> Option<SocketAddr> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(plan, _)| plan.port() == port)
            .map(|(_, local)| *local)
    }

    /// The metrics, in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.stats.prometheus()
    }

    /// Stops accepting, ends every connection and waits for the threads.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Blocks until the gateway stops (it does not stop by itself).
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

type Started = Result<(Arc<Live>, Option<SocketAddr>), StartError>;

struct Control {
    options: Options,
    ctx: BuildContext,
    workers: Vec<Handle>,
    listening: Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>,
    file_store: Option<Arc<FileCredentialStore>>,
}

impl Control {
    /// Builds the first snapshot, binds its listeners and the admin listener, reports the
    /// outcome to `started`, then watches the files until `stop`.
    async fn run(
        self,
        built: Built,
        started: impl FnOnce(Started),
        mut stop: watch::Receiver<bool>,
    ) {
        let mut watched = self.options.sources.clone();
        if let Some(dir) = &self.options.credentials {
            watched.push(Source::Path(dir.clone()));
        }
        let mut fingerprint = config::Fingerprint::of(&watched);
        let first = match snapshot::build(built, &self.ctx, 1, None).await {
            Ok(s) => s,
            Err(e) => {
                return started(Err(StartError::Build(e.0)));
            }
        };
        let live = Arc::new(Live::new(first));
        let shared = Arc::new(server::Shared::new(
            Arc::clone(&live),
            Arc::clone(&self.ctx.stats),
            self.options.limits.clone(),
            self.options.path_normalization,
            self.options.topology,
        ));
        let mut listeners = Listeners::default();
        let errors = listeners.reconcile(
            &live.get(),
            &self.workers,
            &shared,
            &self.options.port_bindings,
        );
        if !errors.is_empty() {
            return started(Err(StartError::Io(errors.join("\n"))));
        }
        self.set_listening(&listeners);
        let admin = match self.options.admin {
            None => None,
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    let bound = l.local_addr().ok();
                    tokio::spawn(admin::serve(
                        l,
                        Arc::clone(&live),
                        Arc::clone(&self.ctx.stats),
                    ));
                    bound
                }
                Err(e) => {
                    return started(Err(StartError::Io(format!(
                        "cannot listen on the admin address {addr}: {e}"
                    ))));
                }
            },
        };
        started(Ok((Arc::clone(&live), admin)));
        describe(&live.get());

        // Whether the files as they are now are what serves (a refused change is not): DNS
        // refreshes rebuild from the files, so they wait for a valid configuration.
        let mut files_serving = true;
        let next_refresh = |now: tokio::time::Instant| self.options.dns_refresh.map(|d| now + d);
        let mut dns_due = next_refresh(tokio::time::Instant::now());
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.options.poll_interval) => {}
                _ = stop.changed() => break,
            }
            let now = config::Fingerprint::of(&watched);
            // A file renamed into place while the fingerprint was taken can leave it torn
            // (the directory seen before the rename, the file after): then the reload would
            // read the new files and the next poll would see a change again, swapping the same
            // configuration twice. Only a fingerprint that a second look confirms is acted on.
            if now != fingerprint && now == config::Fingerprint::of(&watched) {
                fingerprint = now;
                if let Some(store) = &self.file_store {
                    for e in store.reload() {
                        eprintln!("warning: credentials: {e}");
                    }
                }
                files_serving = self.reload(&live, &shared, &mut listeners).await;
                dns_due = next_refresh(tokio::time::Instant::now());
                continue;
            }
            let clock = tokio::time::Instant::now();
            if files_serving && dns_due.is_some_and(|due| clock >= due) {
                dns_due = next_refresh(clock);
                if let Some(cluster) =
                    snapshot::dns_changed(&live.get(), &*self.ctx.resolver, self.ctx.dns_timeout)
                        .await
                {
                    eprintln!("DNS answers changed for cluster {cluster}; rebuilding");
                    files_serving = self.reload(&live, &shared, &mut listeners).await;
                }
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
        &self,
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
            eprintln!(
                "configuration change refused; generation {current} keeps serving:\n{}",
                why.trim_end()
            );
        };
        let built = match check(&self.options.sources, &self.options.identity) {
            Ok(b) => b,
            Err(report) => {
                reject(report.errors_text());
                return false;
            }
        };
        for p in &built.report.problems {
            eprintln!("{p}");
        }
        let previous = live.get();
        let snap = match snapshot::build(built, &self.ctx, current + 1, Some(&previous)).await {
            Ok(s) => s,
            Err(e) => {
                reject(e.0);
                return false;
            }
        };
        drop(previous);
        // Make before break: the new snapshot is complete; requests in flight keep theirs.
        live.set(snap);
        self.ctx.stats.config_swaps.fetch_add(1, Ordering::Relaxed);
        let next = live.get();
        for e in listeners.reconcile(&next, &self.workers, shared, &self.options.port_bindings) {
            eprintln!("error: {e}");
        }
        self.set_listening(listeners);
        eprintln!("configuration generation {} applied", next.generation);
        describe(&next);
        true
    }
}

fn describe(snap: &Snapshot) {
    let ports: Vec<String> = snap.listeners.iter().map(|l| l.bind.to_string()).collect();
    eprintln!(
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
