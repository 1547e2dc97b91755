//! A plan made ready to serve: TLS configurations built, actions compiled for `decide`, cluster
//! endpoints resolved, counters attached. A [`Snapshot`] is immutable; a configuration change
//! builds a new one and swaps it in whole (make-before-break), while requests in flight keep
//! the one they started with.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use foldhash::fast::FixedState;
use portcullis_proxy_core as pc;
use portcullis_proxy_core::rt::AtomicRandom;
use portcullis_route_match::{self as pc_route, SniRoute, SniRouter};
use portcullis_tls as ptls;
use portcullis_translate::{
    Cluster, ClusterEndpoint, ClusterType, FilterChainKind, HttpRoute, Listener, RouteConfig,
    UpstreamProtocol, UpstreamTls,
};

use super::config::Checked;
use super::dns::Resolver;
use super::metrics::{ClusterStats, RouteCounter, Stats};
use super::upstream::{self, CoarseClock, Connector, Endpoint, Origination, UpClient};

/// Why a configuration could not be made ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError(pub(crate) String);

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SnapshotError {}

/// One listener (bind address and port) ready to accept.
#[derive(Debug)]
pub(crate) struct ListenerRt {
    pub(crate) plan: Listener,
    pub(crate) bind: SocketAddr,
    pub(crate) chains: Vec<ChainRt>,
    /// The chains a TLS ClientHello can take, by SNI.
    pub(crate) sni: SniRouter<usize>,
    /// The chain for anything that is not TLS (or TLS no SNI chain takes, if it is TCP).
    pub(crate) plain: Option<usize>,
    /// Whether the first bytes must be inspected (some chain wants TLS).
    pub(crate) inspect: bool,
}

/// One filter chain.
#[derive(Debug)]
pub(crate) struct ChainRt {
    /// Terminate TLS with this configuration.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) kind: ChainKind,
}

/// What a chain does with the (decrypted) bytes.
#[derive(Debug)]
pub(crate) enum ChainKind {
    Http {
        route_config: usize,
    },
    Tcp {
        /// (cluster index, weight).
        destinations: Vec<(Option<usize>, u32)>,
    },
}

/// A route configuration with its compiled actions.
#[derive(Debug)]
pub(crate) struct RouteConfigRt {
    pub(crate) config: RouteConfig,
    /// `config.name`, shared by the connections served with it.
    pub(crate) name: Arc<str>,
    /// By virtual host, then route: what [`RouteConfig::router`] matches. A virtual host's
    /// list is shared with the plan before when that plan had it unchanged (see
    /// [`Earlier`]).
    pub(crate) routes: Vec<Arc<[RouteRt]>>,
    /// The Gateway server port (redirects derive their port from it).
    pub(crate) server_port: Option<u16>,
}

/// What the gateway keeps beside one route's action (the action itself is the route payload,
/// built once by `portcullis-translate`).
#[derive(Debug)]
pub(crate) struct RouteRt {
    /// Cluster index of each destination (`None`: no such cluster).
    pub(crate) destination_clusters: Vec<Option<usize>>,
    /// Counter per destination.
    pub(crate) destination_counters: Vec<Arc<RouteCounter>>,
    /// Counter for local replies.
    pub(crate) local_counter: Arc<RouteCounter>,
    /// Consistent-hash policies of the route's destinations (empty unless a DestinationRule
    /// asks for ring hash or maglev), for `pc::lb::hash_request`.
    pub(crate) hash_policy: Vec<pc::lb::HashPolicy>,
}

/// One cluster: proxy-core's cluster (load balancer, pool admission, outlier detection; its
/// live state carried over from the previous plan) and how to connect to its endpoints.
#[derive(Debug)]
pub(crate) struct ClusterRt {
    pub(crate) plan: Cluster,
    pub(crate) pc: Arc<pc::cluster::Cluster>,
    /// Where each endpoint of `pc` is.
    /// By key (foldhash: looked up on every request; the keys come from the configuration).
    pub(crate) endpoints: HashMap<pc::cluster::EndpointKey, Endpoint, FixedState>,
    pub(crate) tls: Option<Arc<Origination>>,
    /// Set when the cluster cannot be used (TLS it cannot originate): requests get 503.
    pub(crate) broken: Option<String>,
    pub(crate) stats: Arc<ClusterStats>,
    pub(crate) connect_timeout: Duration,
}

impl ClusterRt {
    /// Picks an endpoint (no hash, nothing to avoid): TCP proxying and mirrors.
    /// `random`: the worker's source for anything but `decide` (its `aux`).
    pub(crate) fn pick_endpoint(&self, mut random: &AtomicRandom) -> Option<&Endpoint> {
        if self.broken.is_some() {
            return None;
        }
        let picked = self.pc.pick(
            &pc::cluster::PickContext::default(),
            clock::now(),
            &mut random,
        )?;
        self.endpoints.get(picked.key())
    }
}

/// A plan ready to serve.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) listeners: Vec<ListenerRt>,
    pub(crate) route_configs: Vec<RouteConfigRt>,
    pub(crate) route_config_index: HashMap<String, usize>,
    pub(crate) clusters: Vec<ClusterRt>,
    pub(crate) cluster_index: HashMap<String, usize>,
    /// proxy-core's clusters, kept to carry their state over to the next plan.
    pub(crate) cluster_set: pc::cluster::ClusterSet,
}

impl Snapshot {
    pub(crate) fn listener(&self, bind: SocketAddr) -> Option<&ListenerRt> {
        self.listeners.iter().find(|l| l.bind == bind)
    }
}

/// What building a snapshot needs besides the configuration.
#[derive(Debug, Clone)]
pub(crate) struct BuildContext {
    pub(crate) provider: Arc<rustls::crypto::CryptoProvider>,
    /// Credentials from the command line (`--credentials`) and the demo.
    pub(crate) stores: Vec<Arc<dyn ptls::CredentialStore>>,
    pub(crate) stats: Arc<Stats>,
    /// How long a DNS lookup may take.
    pub(crate) dns_timeout: Duration,
    /// Who answers DNS lookups.
    pub(crate) resolver: Arc<dyn Resolver>,
    /// The workload certificate and mesh roots for `ISTIO_MUTUAL`.
    pub(crate) mesh: Option<Arc<dyn ptls::MeshIdentity>>,
}

/// Credential lookups through several stores, first hit wins.
#[derive(Debug)]
struct Layered(Vec<Arc<dyn ptls::CredentialStore>>);

impl ptls::CredentialStore for Layered {
    fn get(&self, name: &str) -> Option<Arc<ptls::Credential>> {
        self.0.iter().find_map(|s| s.get(name))
    }
}

/// Builds a snapshot: every fallible step happens here, before anything is swapped.
pub(crate) async fn build(
    checked: Checked,
    ctx: &BuildContext,
    generation: u64,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, SnapshotError> {
    let Checked {
        mut plan, secrets, ..
    } = checked;

    // Credentials: the configuration's Secrets first, then the stores given.
    let config_store = ptls::InMemoryCredentialStore::new(Arc::clone(&ctx.provider));
    super::config::install_secrets(&config_store, &secrets).map_err(SnapshotError)?;
    let mut layers: Vec<Arc<dyn ptls::CredentialStore>> = vec![Arc::new(config_store)];
    layers.extend(ctx.stores.iter().cloned());
    let mut tls_ctx = ptls::TlsContext::with_provider(Arc::clone(&ctx.provider))
        .credentials(Arc::new(Layered(layers)));
    if let Some(mesh) = &ctx.mesh {
        tls_ctx = tls_ctx.mesh_identity(Arc::clone(mesh));
    }

    // Clusters.
    let mut parts = Vec::with_capacity(plan.clusters.len());
    for (_, cluster) in std::mem::take(&mut plan.clusters) {
        parts.push(resolve_cluster(cluster, ctx, &tls_ctx).await);
    }
    // Make before break: clusters that still exist adopt their live state (pool counters,
    // round-robin position, outlier ejections) from the previous plan.
    let specs: Vec<pc::cluster::ClusterSpec> = parts.iter().map(|p| p.spec.clone()).collect();
    let cluster_set = pc::cluster::ClusterSet::build(
        specs.iter(),
        previous.map(|p| &p.cluster_set),
        clock::now(),
    )
    .map_err(|e| SnapshotError(format!("cluster: {e}")))?;
    let mut clusters = Vec::with_capacity(parts.len());
    let mut cluster_index = HashMap::with_capacity(parts.len());
    for p in parts {
        let Some(pc_cluster) = cluster_set.get(&p.plan.name) else {
            return Err(SnapshotError(format!(
                "cluster {} was not built",
                p.plan.name
            )));
        };
        cluster_index.insert(p.plan.name.clone(), clusters.len());
        clusters.push(ClusterRt {
            pc: Arc::clone(pc_cluster),
            endpoints: p.endpoints,
            tls: p.tls,
            broken: p.broken,
            stats: ctx.stats.cluster(&p.plan.name),
            connect_timeout: p.plan.policy.connect_timeout,
            plan: p.plan,
        });
    }

    // Route configurations. A route's cluster indices are positions in `clusters`: what the
    // previous plan attached to a route holds for this one only if its clusters are the same
    // ones in the same order.
    let same_clusters = previous.is_some_and(|p| {
        p.clusters.len() == clusters.len()
            && p.clusters
                .iter()
                .zip(&clusters)
                .all(|(was, is)| was.plan.name == is.plan.name)
    });
    let mut route_configs = Vec::with_capacity(plan.route_configs.len());
    let mut route_config_index = HashMap::new();
    for (name, rc) in std::mem::take(&mut plan.route_configs) {
        if let Some(reason) = &rc.rejected {
            return Err(SnapshotError(format!(
                "route configuration {name}: {reason}"
            )));
        }
        let earlier = previous
            .filter(|_| same_clusters)
            .and_then(|p| p.route_config_index.get(&name).map(|i| (p, *i)))
            .and_then(|(p, i)| p.route_configs.get(i))
            .map(Earlier::new);
        let rt = build_route_config(rc, &cluster_index, &ctx.stats, earlier)?;
        route_config_index.insert(name, route_configs.len());
        route_configs.push(rt);
    }

    // Listeners.
    let mut listeners = Vec::with_capacity(plan.listeners.len());
    for l in std::mem::take(&mut plan.listeners) {
        if let Some(reason) = &l.rejected {
            return Err(SnapshotError(format!("listener {}: {reason}", l.name)));
        }
        listeners.push(build_listener(
            l,
            &tls_ctx,
            &route_config_index,
            &cluster_index,
        )?);
    }

    Ok(Snapshot {
        generation,
        listeners,
        route_configs,
        route_config_index,
        clusters,
        cluster_index,
        cluster_set,
    })
}

fn build_listener(
    plan: Listener,
    tls_ctx: &ptls::TlsContext,
    route_configs: &HashMap<String, usize>,
    clusters: &HashMap<String, usize>,
) -> Result<ListenerRt, SnapshotError> {
    let ip: IpAddr = plan.address.parse().map_err(|_| {
        SnapshotError(format!(
            "listener {}: bind address {:?} is not an IP address",
            plan.name, plan.address
        ))
    })?;
    let port = u16::try_from(plan.port)
        .map_err(|_| SnapshotError(format!("listener {}: port out of range", plan.name)))?;
    let bind = SocketAddr::new(ip, port);

    // TLS: every terminating chain of the port shares one SNI resolver.
    let mut specs = Vec::new();
    let mut spec_of_chain = Vec::with_capacity(plan.filter_chains.len());
    for chain in &plan.filter_chains {
        match &chain.tls {
            Some(tls) => {
                let protocol = match chain.kind {
                    FilterChainKind::Http { .. } => ptls::ServerProtocol::Https,
                    _ => ptls::ServerProtocol::Tls,
                };
                spec_of_chain.push(Some(specs.len()));
                specs.push(
                    tls.to_server_spec(protocol, &chain.server_names)
                        .map_err(|e| {
                            SnapshotError(format!(
                                "listener {} chain {}: {e}",
                                plan.name, chain.name
                            ))
                        })?,
                );
            }
            None => spec_of_chain.push(None),
        }
    }
    let port_tls = if specs.is_empty() {
        None
    } else {
        Some(
            ptls::PortTls::build(&specs, tls_ctx)
                .map_err(|e| SnapshotError(format!("listener {}: TLS: {e}", plan.name)))?,
        )
    };

    let mut chains = Vec::with_capacity(plan.filter_chains.len());
    let mut sni_routes = Vec::new();
    let mut plain = None;
    for (i, chain) in plan.filter_chains.iter().enumerate() {
        let tls = spec_of_chain
            .get(i)
            .copied()
            .flatten()
            .and_then(|s| port_tls.as_ref()?.servers().get(s)?.config().cloned());
        let kind = match &chain.kind {
            FilterChainKind::Http { route_config } => ChainKind::Http {
                route_config: *route_configs.get(route_config).ok_or_else(|| {
                    SnapshotError(format!(
                        "listener {} chain {}: no route configuration {route_config}",
                        plan.name, chain.name
                    ))
                })?,
            },
            FilterChainKind::TcpProxy(tcp) => ChainKind::Tcp {
                destinations: tcp
                    .destinations
                    .iter()
                    .map(|d| (clusters.get(&d.cluster).copied(), d.weight))
                    .collect(),
            },
            _ => {
                return Err(SnapshotError(format!(
                    "listener {} chain {}: unsupported filter chain",
                    plan.name, chain.name
                )));
            }
        };
        let takes_tls = chain.tls.is_some()
            || (matches!(kind, ChainKind::Tcp { .. }) && !chain.server_names.is_empty());
        if takes_tls {
            sni_routes.push(SniRoute::new(
                chain.name.clone(),
                chain.server_names.clone(),
                i,
            ));
        } else if plain.is_none() {
            plain = Some(i);
        }
        chains.push(ChainRt { tls, kind });
    }
    let inspect = !sni_routes.is_empty();
    Ok(ListenerRt {
        plan,
        bind,
        chains,
        sni: SniRouter::new(sni_routes),
        plain,
        inspect,
    })
}

/// A cluster's endpoints resolved and its TLS built, before proxy-core's cluster exists.
struct ClusterParts {
    plan: Cluster,
    spec: pc::cluster::ClusterSpec,
    endpoints: HashMap<pc::cluster::EndpointKey, Endpoint, FixedState>,
    tls: Option<Arc<Origination>>,
    broken: Option<String>,
}

/// The socket addresses of a cluster's endpoints, each with the plan endpoint it came from: IP
/// addresses as they are, DNS names looked up with `resolver` (every address for
/// `STRICT_DNS`, the first for `LOGICAL_DNS`). Lookups that failed are named in the second
/// list (their endpoints contribute no address).
async fn resolve_addresses<'p>(
    plan: &'p Cluster,
    resolver: &dyn Resolver,
    dns_timeout: Duration,
) -> (Vec<(SocketAddr, &'p ClusterEndpoint)>, Vec<String>) {
    let mut out = Vec::with_capacity(plan.endpoints.len());
    let mut failures = Vec::new();
    for e in &plan.endpoints {
        let Ok(port) = u16::try_from(e.port) else {
            continue;
        };
        if let Ok(ip) = e.address.parse::<IpAddr>() {
            out.push((SocketAddr::new(ip, port), e));
            continue;
        }
        let lookup = resolver.lookup(&e.address, port);
        match tokio::time::timeout(dns_timeout, lookup).await {
            Ok(Ok(addrs)) => {
                let take = if plan.cluster_type == ClusterType::LogicalDns {
                    1
                } else {
                    usize::MAX
                };
                out.extend(addrs.into_iter().take(take).map(|a| (a, e)));
            }
            Ok(Err(err)) => failures.push(format!("cannot resolve {}: {err}", e.address)),
            Err(_) => failures.push(format!("resolving {} timed out", e.address)),
        }
    }
    (out, failures)
}

/// Whether the DNS answers for a cluster of `snap` changed since it was built (periodic DNS
/// refresh): the name of the first cluster whose `STRICT_DNS`/`LOGICAL_DNS` endpoints now
/// resolve to other addresses. A cluster with a failed lookup is left as it is (Envoy keeps
/// the hosts it has when a refresh fails).
pub(crate) async fn dns_changed(
    snap: &Snapshot,
    resolver: &dyn Resolver,
    dns_timeout: Duration,
) -> Option<String> {
    for c in &snap.clusters {
        if !matches!(
            c.plan.cluster_type,
            ClusterType::StrictDns | ClusterType::LogicalDns
        ) || c
            .plan
            .endpoints
            .iter()
            .all(|e| e.address.parse::<IpAddr>().is_ok())
        {
            continue;
        }
        let (resolved, failures) = resolve_addresses(&c.plan, resolver, dns_timeout).await;
        if !failures.is_empty() {
            continue;
        }
        let now: HashSet<SocketAddr> = resolved.iter().map(|(a, _)| *a).collect();
        let have: HashSet<SocketAddr> = c.endpoints.values().map(|e| e.addr).collect();
        if now != have {
            return Some(c.plan.name.clone());
        }
    }
    None
}

async fn resolve_cluster(
    plan: Cluster,
    ctx: &BuildContext,
    tls_ctx: &ptls::TlsContext,
) -> ClusterParts {
    let (resolved, failures) = resolve_addresses(&plan, &*ctx.resolver, ctx.dns_timeout).await;
    for f in failures {
        tracing::warn!("warning: cluster {}: {f}", plan.name);
    }
    let mut endpoints = HashMap::with_capacity_and_hasher(resolved.len(), FixedState::default());
    let mut specs = Vec::with_capacity(resolved.len());
    for (addr, e) in resolved {
        let key = pc::cluster::EndpointKey::from(addr);
        if endpoints.contains_key(&key) {
            continue;
        }
        let mut spec = pc::cluster::EndpointSpec::new(addr.ip().to_string(), addr.port());
        for (k, v) in &e.labels {
            spec = spec.with_label(k.clone(), v.clone());
        }
        specs.push(spec);
        endpoints.insert(key, endpoint(addr));
    }
    let (tls, broken) = match origination(&plan, tls_ctx) {
        Ok(t) => (t, None),
        Err(e) => {
            tracing::warn!(
                "warning: cluster {}: {e}; requests to it get 503",
                plan.name
            );
            (None, Some(e))
        }
    };
    let spec = plan.to_cluster_spec(specs);
    ClusterParts {
        plan,
        spec,
        endpoints,
        tls,
        broken,
    }
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    let authority = addr
        .to_string()
        .parse()
        .unwrap_or_else(|_| http::uri::Authority::from_static("invalid"));
    Endpoint { addr, authority }
}

/// The DestinationRule `tls` of a cluster, as a rustls client configuration.
fn origination(
    plan: &Cluster,
    tls_ctx: &ptls::TlsContext,
) -> Result<Option<Arc<Origination>>, String> {
    // Auto mTLS needs a mesh identity this gateway does not have: plaintext, as for
    // endpoints without the istio tlsMode label.
    let UpstreamTls::Tls(ct) = &plan.policy.tls else {
        return Ok(None);
    };
    let settings = ct.to_client_settings().map_err(|e| e.to_string())?;
    if settings.mode == ptls::ClientTlsMode::IstioMutual && tls_ctx.mesh_identity.is_none() {
        return Err("ISTIO_MUTUAL needs a mesh identity (not available here)".to_owned());
    }
    let client = ptls::client_tls(&settings, &[b"http/1.1"], tls_ctx)
        .map_err(|e| format!("upstream TLS: {e}"))?;
    let Some(client) = client else {
        return Ok(None);
    };
    // HTTP/2 clusters offer `h2` (Envoy sets ALPN h2 only for them); a cluster that follows
    // the downstream version needs both.
    let config_h2 = match plan.policy.upstream_protocol {
        UpstreamProtocol::Http1 => None,
        _ => ptls::client_tls(&settings, &[b"h2"], tls_ctx)
            .map_err(|e| format!("upstream TLS: {e}"))?
            .map(|c| Arc::clone(c.config())),
    };
    // SNI: the `sni` setting, else the service host (Istio's auto SNI takes the request's
    // host, which at an egress gateway is the service host).
    let server_name = client
        .server_name(ct.sni.as_deref().unwrap_or(&plan.host))
        .map_err(|e| format!("upstream TLS: {e}"))?;
    Ok(Some(Arc::new(Origination {
        config: Arc::clone(client.config()),
        config_h2,
        server_name,
        key: format!("{settings:?}|{}", plan.host),
    })))
}

/// Attaches clusters and counters to every route of `config`. A virtual host that `earlier`
/// (the same route configuration in the previous plan, over the same clusters) had unchanged
/// takes its list from there instead.
fn build_route_config(
    config: RouteConfig,
    clusters: &HashMap<String, usize>,
    stats: &Stats,
    mut earlier: Option<Earlier<'_>>,
) -> Result<RouteConfigRt, SnapshotError> {
    let server_port = config
        .name
        .split('.')
        .nth(1)
        .and_then(|p| p.parse::<u16>().ok());
    let mut routes = Vec::with_capacity(config.virtual_hosts().len());
    let mut counters = stats.route_counters();
    let mut unnamed = String::new();
    for (vi, vh) in config.virtual_hosts().iter().enumerate() {
        if let Some(kept) = earlier.as_mut().and_then(|e| e.unchanged(vi, vh)) {
            routes.push(kept);
            continue;
        }
        let vroutes = vh
            .routes()
            .iter()
            .enumerate()
            .map(|(ri, r)| {
                let action = &r.action.action;
                let route_label = if r.name.is_empty() {
                    unnamed.clear();
                    let _ = write!(unnamed, "#{ri}");
                    unnamed.as_str()
                } else {
                    r.name.as_str()
                };
                let mut counter =
                    |cluster: &str| counters.get([&config.name, vh.name(), route_label, cluster]);
                let (destination_clusters, destination_counters) = match action {
                    pc::action::RouteAction::Forward(f) => f
                        .destinations()
                        .iter()
                        .map(|d| (clusters.get(d.cluster()).copied(), counter(d.cluster())))
                        .unzip(),
                    _ => (Vec::new(), Vec::new()),
                };
                RouteRt {
                    destination_clusters,
                    destination_counters,
                    local_counter: counter(""),
                    hash_policy: r.action.proxy_hash_policy(),
                }
            })
            .collect();
        routes.push(vroutes);
    }
    Ok(RouteConfigRt {
        name: Arc::from(config.name.as_str()),
        config,
        routes,
        server_port,
    })
}

/// The same route configuration in the previous plan, whose clusters were the same.
///
/// What [`build_route_config`] attaches to a route (cluster indices, counters labelled with the
/// route configuration, virtual host, route and cluster names, hash policies) follows from the
/// route's action and those names alone. A virtual host with the same name whose routes have
/// the same names and the very same actions (translation shares the action of a route it did
/// not build again, and the previous plan keeps it alive, so an equal pointer is the same
/// action) gets the same list, which is then shared rather than built again: a change to one
/// VirtualService among thousands looks up no counter for the others.
struct Earlier<'p> {
    config: &'p RouteConfigRt,
    /// Virtual hosts by name, made the first time one is not where it was.
    by_name: Option<HashMap<&'p str, usize, FixedState>>,
}

impl<'p> Earlier<'p> {
    fn new(config: &'p RouteConfigRt) -> Self {
        Self {
            config,
            by_name: None,
        }
    }

    /// The previous list of virtual host `vh`, at `vi` in the new table, if it is unchanged.
    fn unchanged(
        &mut self,
        vi: usize,
        vh: &Arc<pc_route::CompiledVirtualHost<Arc<HttpRoute>>>,
    ) -> Option<Arc<[RouteRt]>> {
        let before = self.config.config.virtual_hosts();
        // The same virtual host where it was, as most are after a change: found by its
        // pointer alone, without reading its name.
        if before.get(vi).is_some_and(|was| Arc::ptr_eq(was, vh)) {
            return self.config.routes.get(vi).cloned();
        }
        let at = match before.get(vi) {
            Some(was) if was.name() == vh.name() => vi,
            _ => *self
                .by_name
                .get_or_insert_with(|| {
                    before
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (v.name(), i))
                        .collect()
                })
                .get(vh.name())?,
        };
        let was = before.get(at)?;
        // Translation shares a virtual host it did not compile again: the very same one is
        // unchanged. Another one with the same name, routes and actions is too.
        let same = Arc::ptr_eq(was, vh)
            || (was.name() == vh.name()
                && was.routes().len() == vh.routes().len()
                && was
                    .routes()
                    .iter()
                    .zip(vh.routes())
                    .all(|(a, b)| Arc::ptr_eq(&a.action, &b.action) && a.name == b.name));
        if same {
            self.config.routes.get(at).cloned()
        } else {
            None
        }
    }
}

// === the live snapshot and its per-worker views ===

/// The current snapshot of a gateway.
#[derive(Debug)]
pub(crate) struct Live {
    current: RwLock<Arc<Snapshot>>,
    generation: AtomicU64,
}

impl Live {
    pub(crate) fn new(first: Snapshot) -> Self {
        let generation = first.generation;
        Self {
            current: RwLock::new(Arc::new(first)),
            generation: AtomicU64::new(generation),
        }
    }

    /// The current snapshot (takes a read lock: for the control thread and new connections).
    pub(crate) fn get(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Swaps in a new snapshot.
    pub(crate) fn set(&self, next: Snapshot) {
        let generation = next.generation;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        self.generation.store(generation, Ordering::Release);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A worker's view of a snapshot: the snapshot and, per cluster, the client (connection pool)
/// of this worker to use for it.
#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) snap: Arc<Snapshot>,
    pub(crate) clients: Vec<UpClient>,
}

/// A worker's view of the live snapshot, made again when the snapshot changes, and the
/// upstream clients it keeps across snapshots.
#[derive(Default)]
pub(crate) struct Cache {
    /// The live snapshot this view is of (held weakly so that its address is not reused by
    /// another while this view exists).
    owner: std::sync::Weak<Live>,
    generation: u64,
    local: Option<Arc<Local>>,
    /// Plain clients by connect timeout: pools keyed by endpoint, kept across plans.
    plain: HashMap<Duration, UpClient>,
    /// TLS clients by cluster name, with the key of the settings they were built with.
    tls: HashMap<String, (String, UpClient)>,
}

impl Cache {
    /// Its upstream clients (for their pools' counts).
    pub(crate) fn clients(&self) -> impl Iterator<Item = &UpClient> {
        self.plain
            .values()
            .chain(self.tls.values().map(|(_, client)| client))
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A worker's view of the live snapshot, for a new connection (a request reuses its
/// connection's view while the snapshot has not changed, see [`current`]): `cache` is the
/// worker's, and its upstream clients run on the worker's `coarse` clock.
pub(crate) fn local(
    live: &Arc<Live>,
    cache: &Mutex<Cache>,
    coarse: &Arc<CoarseClock>,
) -> Arc<Local> {
    let generation = live.generation();
    {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        let same_owner = std::ptr::eq(cache.owner.as_ptr(), Arc::as_ptr(live));
        if same_owner
            && cache.generation == generation
            && let Some(l) = &cache.local
        {
            return Arc::clone(l);
        }
        if !same_owner {
            *cache = Cache {
                owner: Arc::downgrade(live),
                ..Cache::default()
            };
        }
        let snap = live.get();
        let mut tls = HashMap::new();
        let mut clients = Vec::with_capacity(snap.clusters.len());
        for c in &snap.clusters {
            let client = match &c.tls {
                None => cache
                    .plain
                    .entry(c.connect_timeout)
                    .or_insert_with(|| {
                        upstream::client(
                            Connector::new(c.connect_timeout, None),
                            Arc::clone(coarse),
                        )
                    })
                    .clone(),
                Some(o) => {
                    let reuse = cache
                        .tls
                        .remove(&c.plan.name)
                        .filter(|(key, _)| *key == o.key)
                        .map(|(_, client)| client);
                    let client = reuse.unwrap_or_else(|| {
                        upstream::client(
                            Connector::new(c.connect_timeout, Some(Arc::clone(o))),
                            Arc::clone(coarse),
                        )
                    });
                    tls.insert(c.plan.name.clone(), (o.key.clone(), client.clone()));
                    client
                }
            };
            clients.push(client);
        }
        // TLS pools of clusters that are gone (or changed) are dropped here.
        cache.tls = tls;
        let local = Arc::new(Local {
            snap: Arc::clone(&snap),
            clients,
        });
        cache.generation = snap.generation;
        cache.local = Some(Arc::clone(&local));
        local
    }
}

/// The view a request uses: its connection's `known` one while the live snapshot is the one
/// it shows (one atomic load, no lock), else the worker's view of the new one (see [`local`]).
pub(crate) fn current(
    live: &Arc<Live>,
    known: &Arc<Local>,
    cache: &Mutex<Cache>,
    coarse: &Arc<CoarseClock>,
) -> Arc<Local> {
    if live.generation() == known.snap.generation {
        Arc::clone(known)
    } else {
        local(live, cache, coarse)
    }
}

/// The monotonic clock proxy-core's state machines run on: time since the first call.
pub(crate) mod clock {
    use std::sync::OnceLock;

    use portcullis_proxy_core::rt;

    fn origin() -> std::time::Instant {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }

    /// Now, as a proxy-core instant.
    pub(crate) fn now() -> rt::Instant {
        rt::Instant::from_elapsed(origin().elapsed())
    }

    /// A proxy-core instant as a tokio instant (for timers).
    pub(crate) fn to_tokio(at: rt::Instant) -> tokio::time::Instant {
        tokio::time::Instant::from_std(origin() + at.elapsed_since_origin())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::{Derived, Identity, Source};
    use crate::dns::SystemResolver;
    use crate::source::check_tests::GATEWAY;
    use crate::source::{Files, check_source};

    const SERVICES: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
        metadata: {name: services, namespace: istio-system}\n\
        spec: {hosts: [HOSTS], location: MESH_EXTERNAL, resolution: STATIC,\n  \
        ports: [{number: 80, name: http, protocol: HTTP}], endpoints: [{address: 127.0.0.1}]}\n";

    fn virtual_service(i: usize, (prefix, destination): (&str, &str)) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: vs{i}, namespace: istio-system}}\n\
             spec:\n  hosts: [h{i}.example.com]\n  gateways: [gw]\n  http:\n  \
             - name: api\n    match: [{{uri: {{prefix: {prefix}}}}}]\n    \
             route: [{{destination: {{host: {destination}}}}}]\n  \
             - route: [{{destination: {{host: m.svc}}}}]\n"
        )
    }

    /// What one route was given: its virtual host and name, its destinations' cluster indices,
    /// and its counters (by address: a counter is compared by identity).
    type Attached = (String, Vec<Option<usize>>, Vec<usize>, usize);

    fn attached(snap: &Snapshot) -> Vec<Attached> {
        let rc = &snap.route_configs[0];
        let mut out = Vec::new();
        for (vh, routes) in rc.config.virtual_hosts().iter().zip(&rc.routes) {
            for (r, rt) in vh.routes().iter().zip(routes.iter()) {
                out.push((
                    format!("{}/{}", vh.name(), r.name),
                    rt.destination_clusters.clone(),
                    rt.destination_counters
                        .iter()
                        .map(|c| Arc::as_ptr(c) as usize)
                        .collect(),
                    Arc::as_ptr(&rt.local_counter) as usize,
                ));
            }
        }
        out
    }

    /// A rebuild shares the list of every virtual host whose routes it did not translate
    /// again, and attaches to every route what a build from nothing attaches (the same cluster
    /// indices, the same counters), also when a change moves the clusters' indices.
    #[tokio::test]
    async fn unchanged_virtual_hosts_keep_their_routes_clusters_and_counters() {
        let dir = std::env::temp_dir().join(format!("portcullis-earlier-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let write = |hosts: &str, third: (&str, &str)| {
            let mut docs = vec![GATEWAY.to_owned(), SERVICES.replace("HOSTS", hosts)];
            docs.extend(
                (0..5).map(|i| virtual_service(i, if i == 3 { third } else { ("/api", "m.svc") })),
            );
            std::fs::write(dir.join("config.yaml"), docs.join("---\n")).unwrap();
        };
        let stats = Arc::new(Stats::new(1));
        let ctx = BuildContext {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            stores: Vec::new(),
            stats: Arc::clone(&stats),
            dns_timeout: Duration::from_secs(1),
            resolver: Arc::new(SystemResolver),
            mesh: None,
        };
        let identity = Identity::default();
        let mut files = Files::new([Source::Path(dir.clone())]);
        let mut derived = Derived::default();
        let mut check = || check_source(&mut files, &identity, &mut derived).unwrap();
        let from_nothing = |checked| build(checked, &ctx, 1, None);

        write("m.svc", ("/api", "m.svc"));
        let first = build(check(), &ctx, 1, None).await.unwrap();
        let changes = [
            // vs3's routes change: the other four keep their lists.
            ("m.svc", ("/v2", "m.svc"), 4),
            // A service whose cluster sorts before the others: every index moves.
            ("a.svc, m.svc", ("/v2", "a.svc"), 0),
            // The same again: nothing changed.
            ("a.svc, m.svc", ("/v2", "a.svc"), 5),
            // vs3 back to m.svc.
            ("a.svc, m.svc", ("/v3", "m.svc"), 4),
        ];
        let mut previous = first;
        for (hosts, third, shared) in changes {
            write(hosts, third);
            let next = build(check(), &ctx, 2, Some(&previous)).await.unwrap();
            let (was, is) = (&previous.route_configs[0], &next.route_configs[0]);
            let kept = is
                .routes
                .iter()
                .filter(|r| was.routes.iter().any(|w| Arc::ptr_eq(w, r)))
                .count();
            assert_eq!(kept, shared, "{third:?}");
            assert_eq!(
                Arc::ptr_eq(&was.routes[3], &is.routes[3]),
                shared == 5,
                "{third:?}"
            );
            let fresh = from_nothing(check()).await.unwrap();
            assert_eq!(attached(&next), attached(&fresh), "{third:?}");
            previous = next;
        }
        assert_eq!(
            previous.clusters[0].plan.name, "outbound|80||a.svc",
            "the last change moved the clusters' indices"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
