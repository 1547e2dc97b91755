//! The output of translation: listeners, filter chains, route configurations and clusters, named
//! and shaped the way Istio configures Envoy (so `istioctl proxy-config` names carry over).

use std::sync::Arc;

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_model::destination_rule::ClientTlsMode;
use portcullis_model::gateway::{ServerTlsMode, ServerTlsSettings};
use portcullis_proxy_core::{
    self as pc,
    action::{ForwardAction, RouteAction},
};
use portcullis_route_match::{
    CompiledVirtualHost, NotFound, RequestHead, Route, RouteTable, Router, VirtualHost,
};

use crate::diag::Diagnostic;

/// Everything one proxy needs: Envoy's listeners, route configurations and clusters.
#[derive(Debug)]
#[non_exhaustive]
pub struct GatewayPlan {
    /// The listeners, ordered by (port, address).
    pub listeners: Vec<Listener>,
    /// The HTTP route configurations, by name (`http.80`, `https.443.https.gw.ns`).
    pub route_configs: BTreeMap<String, RouteConfig>,
    /// The clusters, by name (`outbound|9080|v1|reviews.default.svc.cluster.local`).
    pub clusters: BTreeMap<String, Cluster>,
    /// What was dropped or replaced, and why.
    pub diagnostics: Vec<Diagnostic>,
}

impl GatewayPlan {
    /// The listener Envoy would pick for a connection to `port` (address `0.0.0.0` or a bind
    /// address equal to `address`).
    pub fn listener_for(&self, port: u32, address: Option<&str>) -> Option<&Listener> {
        let mut wildcard = None;
        for l in self.listeners.iter().filter(|l| l.port == port) {
            if address.is_some_and(|a| a == l.address) {
                return Some(l);
            }
            if l.address == "0.0.0.0" && wildcard.is_none() {
                wildcard = Some(l);
            }
        }
        wildcard
    }

    /// The listener with this name (`0.0.0.0_80`).
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
}

/// One Envoy listener: a (bind address, port) pair and its filter chains.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Listener {
    /// `<address>_<port>` (`0.0.0.0_80`).
    pub name: String,
    /// The bind address (`0.0.0.0` unless a server sets `bind`).
    pub address: String,
    /// The port the proxy listens on (a Service targetPort, or the server port).
    pub port: u32,
    /// The filter chains, in order.
    pub filter_chains: Vec<FilterChain>,
    /// Whether a TLS inspector is needed (some chain matches on SNI or ALPN).
    pub tls_inspector: bool,
    /// Set when Envoy would reject the listener (two chains with identical match criteria).
    pub rejected: Option<String>,
}

/// One filter chain: its match criteria, TLS termination settings and what it does.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FilterChain {
    /// A descriptive name (`https.443.https.gw.ns`, `passthrough.<sni>`, `http.80`).
    pub name: String,
    /// SNI criterion; empty means none (matches any SNI and no SNI).
    pub server_names: Vec<String>,
    /// ALPN criterion; empty means none.
    pub application_protocols: Vec<String>,
    /// TLS termination settings, when the chain terminates TLS.
    pub tls: Option<TlsTermination>,
    /// What the chain does with the (decrypted) stream.
    pub kind: FilterChainKind,
}

/// What a filter chain does.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FilterChainKind {
    /// An HTTP connection manager using this route configuration.
    Http {
        /// The route configuration name.
        route_config: String,
    },
    /// A TCP proxy.
    TcpProxy(TcpRoute),
}

/// TLS termination on a filter chain, as plain data: building the `rustls` server
/// configuration (certificates from `credential_name` or files) is left to the embedder
/// (`portcullis-tls`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsTermination {
    /// The server's TLS mode (`SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL`, `ISTIO_MUTUAL`).
    pub mode: ServerTlsMode,
    /// The server's SNI hosts (namespace prefixes removed).
    pub sni_hosts: Vec<String>,
    /// The secret(s) holding the certificate.
    pub credential_names: Vec<String>,
    /// Certificate/key file pairs.
    pub certificate_files: Vec<(String, String)>,
    /// CA certificates file for client verification.
    pub ca_certificates: String,
    /// Every setting as written.
    pub settings: ServerTlsSettings,
}

/// A TCP proxy target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpRoute {
    /// One destination (weight ignored) or several weighted ones.
    pub destinations: Vec<WeightedCluster>,
    /// The VirtualService the rule came from, if any.
    pub virtual_service: Option<ResourceRef>,
    /// Whether TLS is terminated before proxying.
    pub tls_terminated: bool,
}

/// A cluster with a weight.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WeightedCluster {
    /// The cluster name.
    pub cluster: String,
    /// The weight (ignored for a single destination).
    pub weight: u32,
}

/// A `Kind namespace/name` reference to a configuration resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ResourceRef {
    /// The resource's name.
    pub name: String,
    /// The resource's namespace.
    pub namespace: String,
}

/// An HTTP route configuration: a compiled route table whose actions are [`HttpRoute`]s, and
/// the per-virtual-host settings the matcher does not model.
#[derive(Debug)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The name (`http.80`).
    pub name: String,
    /// The route table, compiled: its virtual hosts (`<domain>:<server port>`, routes in
    /// priority order) are [`Router::virtual_hosts`]. Each virtual host and each action is
    /// shared, with the [`TranslationCache`](crate::TranslationCache) that may keep it for the
    /// next translation, rather than copied.
    pub router: Router<Arc<HttpRoute>>,
    /// Per virtual host (same index as [`Router::virtual_hosts`]): `require_tls: ALL`.
    pub require_tls: Vec<bool>,
    /// Set when Envoy would reject the whole route configuration.
    pub rejected: Option<String>,
}

impl RouteConfig {
    /// The virtual hosts, in the order of the table.
    pub fn virtual_hosts(&self) -> &[Arc<CompiledVirtualHost<Arc<HttpRoute>>>] {
        self.router.virtual_hosts()
    }

    /// A copy of the route table, as plain data (for comparing and printing).
    pub fn table(&self) -> RouteTable<Arc<HttpRoute>> {
        RouteTable::new(
            self.virtual_hosts()
                .iter()
                .map(|v| VirtualHost::new(v.name(), v.domains(), v.routes().to_vec()))
                .collect(),
        )
    }

    /// The route at `virtual_host`, `route` of [`virtual_hosts`](Self::virtual_hosts), as a
    /// match of [`router`](Self::router) names it.
    pub fn route(&self, virtual_host: usize, route: usize) -> Option<&Route<Arc<HttpRoute>>> {
        self.virtual_hosts().get(virtual_host)?.routes().get(route)
    }

    /// The route `head` selects, by the rules of [`Router::find`].
    ///
    /// ```
    /// use portcullis_model::Loader;
    /// use portcullis_route_match::RequestHead;
    /// use portcullis_translate::{Config, MeshSettings, Proxy, ServiceRegistry, translate};
    ///
    /// let loaded = Loader::new().load_str("gw.yaml", r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: Gateway
    /// metadata: {name: gw, namespace: istio-system}
    /// spec:
    ///   selector: {istio: ingressgateway}
    ///   servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
    /// ---
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {name: shop, namespace: istio-system}
    /// spec:
    ///   hosts: [shop.example.com]
    ///   gateways: [gw]
    ///   http: [{name: all, route: [{destination: {host: shop.default.svc.cluster.local}}]}]
    /// "#).unwrap();
    /// let plan = translate(&Config::from_loaded(&loaded), &ServiceRegistry::default(),
    ///                      &Proxy::ingress_gateway(), &MeshSettings::default());
    /// let rc = &plan.route_configs["http.80"];
    /// let route = rc.find(&RequestHead::new("GET", "http", "shop.example.com", "/")).unwrap();
    /// assert_eq!(route.action.name, "all");
    /// ```
    pub fn find(&self, head: &RequestHead<'_>) -> Result<&Route<Arc<HttpRoute>>, NotFound> {
        let matched = self.router.find(head)?;
        let virtual_host = matched.virtual_host();
        self.route(virtual_host, matched.route())
            .ok_or(NotFound::NoRoute { virtual_host })
    }
}

/// One Envoy route of a [`RouteConfig`]: the Istio names it came from, the consistent-hash
/// policy of its destinations, and its [`portcullis_proxy_core::action::RouteAction`], built once at
/// translation time (regular expressions compiled, header names and values validated) and
/// ready for [`portcullis_proxy_core::decide`](portcullis_proxy_core::decide()).
///
/// Everything a request-time decision needs is in `action`: destinations (already-named
/// clusters, weights, per-destination header operations), rule header operations, authority
/// and path rewrites, timeout and `max_grpc_timeout`, retry policy (in Envoy's terms), mirrors,
/// fault injection, CORS, redirects and direct responses. The other fields are what
/// proxy-core does not know about: the route's name, the VirtualService it came from and the
/// hash policy the load balancer will need.
///
/// ```
/// # use portcullis_translate::HttpRoute;
/// use portcullis_proxy_core::{decide, decide::{Decision, RequestHead}, rt::SplitMix64};
///
/// fn forward_to(route: &HttpRoute, head: &RequestHead) -> Option<String> {
///     match decide(&route.action, head, &mut SplitMix64::new(7)) {
///         Decision::Forward(f) => Some(f.cluster.to_string()),
///         _ => None,
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HttpRoute {
    /// The route name (`<http.name>[.<match.name>]`).
    pub name: String,
    /// The VirtualService the route came from (`None` for generated routes).
    pub virtual_service: Option<ResourceRef>,
    /// Which rule of that VirtualService (and, for a delegated route, of which delegate) the
    /// route was built from (`None` for generated routes).
    pub origin: Option<RouteOrigin>,
    /// Consistent-hash policies from the destinations' DestinationRules.
    pub hash_policy: Vec<HashPolicy>,
    /// What the route does: forward, redirect or direct response, with every rule-level
    /// setting (header operations, rewrites, timeout, retries, mirrors, fault, CORS).
    pub action: RouteAction,
}

impl HttpRoute {
    /// The forward action, when the route forwards (timeout, retry policy, mirrors and
    /// destinations live there).
    pub fn forward(&self) -> Option<&ForwardAction> {
        match &self.action {
            RouteAction::Forward(forward) => Some(forward),
            _ => None,
        }
    }
}

/// Where an [`HttpRoute`] was written, so that tools can point back at the rule as written.
///
/// Istio merges a delegate VirtualService's rules into the root rule that delegates to it; the
/// resulting route then has two places: the root rule (`spec.http[http_index]` of
/// [`HttpRoute::virtual_service`]) and the delegate's rule ([`RouteOrigin::delegate`]).
///
/// ```
/// # use portcullis_model::Loader;
/// # use portcullis_translate::{Config, MeshSettings, Proxy, ServiceRegistry, translate};
/// let yaml = r#"
/// apiVersion: networking.istio.io/v1
/// kind: Gateway
/// metadata: {name: public, namespace: istio-system}
/// spec:
///   selector: {istio: ingressgateway}
///   servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
/// ---
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: shop, namespace: default}
/// spec:
///   hosts: [shop.example.com]
///   gateways: [istio-system/public]
///   http:
///   - match: [{uri: {prefix: /admin}}]
///     delegate: {name: admin}
///   - route: [{destination: {host: web}}]
/// ---
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: admin, namespace: default}
/// spec:
///   http:
///   - match: [{uri: {prefix: /admin/users}}]
///     route: [{destination: {host: users}}]
/// "#;
/// let loaded = Loader::new().load_str("config.yaml", yaml)?;
/// let mesh = MeshSettings::default();
/// let registry = ServiceRegistry::from_loaded(&loaded, &mesh.domain_suffix);
/// let plan = translate(&Config::from_loaded(&loaded), &registry, &Proxy::ingress_gateway(), &mesh);
/// let routes = plan.route_configs["http.80"].virtual_hosts()[0].routes();
/// let delegated = routes[0].action.origin.as_ref().unwrap();
/// assert_eq!(delegated.http_index, 0);
/// let leaf = delegated.delegate.as_ref().unwrap();
/// assert_eq!((leaf.name.as_str(), leaf.http_index), ("admin", 0));
/// let plain = routes[1].action.origin.as_ref().unwrap();
/// assert_eq!((plain.http_index, plain.match_index, plain.delegate.is_none()), (1, None, true));
/// # Ok::<(), portcullis_model::LoadErrors>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RouteOrigin {
    /// The index of the rule in the (root) VirtualService's `spec.http`.
    pub http_index: usize,
    /// The index of the match block in that rule's `match` list; `None` when the rule has no
    /// match block, and for delegated routes (their match blocks are merged from both rules).
    pub match_index: Option<usize>,
    /// For a route merged from a delegate VirtualService: the delegate and its rule.
    pub delegate: Option<DelegateOrigin>,
}

impl RouteOrigin {
    /// The origin of a route built from rule `http_index` of a VirtualService, with no
    /// delegate.
    pub fn new(http_index: usize) -> Self {
        Self {
            http_index,
            match_index: None,
            delegate: None,
        }
    }
}

/// The delegate VirtualService a delegated route came from, and its rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DelegateOrigin {
    /// The delegate's name.
    pub name: String,
    /// The delegate's namespace.
    pub namespace: String,
    /// The index of the rule in the delegate's `spec.http`.
    pub http_index: usize,
}

impl DelegateOrigin {
    /// A delegate origin.
    pub fn new(name: &str, namespace: &str, http_index: usize) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            http_index,
        }
    }
}

/// A route hash policy (consistent-hash load balancing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashPolicy {
    /// Hash a request header.
    Header(String),
    /// Hash a cookie (generated when absent and `ttl` is set).
    Cookie {
        /// Cookie name.
        name: String,
        /// Cookie path.
        path: String,
        /// Cookie lifetime.
        ttl: Option<Duration>,
        /// Extra attributes.
        attributes: Vec<(String, String)>,
    },
    /// Hash the source IP.
    SourceIp,
    /// Hash a query parameter.
    QueryParameter(String),
}

impl HashPolicy {
    /// The policy in proxy-core's terms, ready for [`portcullis_proxy_core::lb::hash_request`];
    /// `None` for a header name that is not a valid HTTP header name (no request can carry
    /// such a header, so the policy would never produce a hash).
    pub fn to_proxy_core(&self) -> Option<pc::lb::HashPolicy> {
        Some(match self {
            Self::Header(name) => {
                pc::lb::HashPolicy::Header(http::HeaderName::from_bytes(name.as_bytes()).ok()?)
            }
            Self::Cookie {
                name,
                path,
                ttl,
                attributes,
            } => pc::lb::HashPolicy::Cookie(pc::lb::CookieHash {
                name: name.clone(),
                path: path.clone(),
                ttl: *ttl,
                attributes: attributes.clone(),
            }),
            Self::SourceIp => pc::lb::HashPolicy::SourceIp,
            Self::QueryParameter(name) => pc::lb::HashPolicy::QueryParameter(name.clone()),
        })
    }
}

impl HttpRoute {
    /// The route's consistent-hash policies in proxy-core's terms (see
    /// [`HashPolicy::to_proxy_core`]): what a gateway passes to
    /// [`portcullis_proxy_core::lb::hash_request`] before picking an endpoint of a ring hash or
    /// maglev cluster. Empty when no destination has a consistent-hash DestinationRule.
    pub fn proxy_hash_policy(&self) -> Vec<pc::lb::HashPolicy> {
        self.hash_policy
            .iter()
            .filter_map(HashPolicy::to_proxy_core)
            .collect()
    }
}

/// An Envoy cluster with its DestinationRule policy resolved.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Cluster {
    /// `outbound|<port>|<subset>|<host>`.
    pub name: String,
    /// The service host.
    pub host: String,
    /// The service port.
    pub port: u32,
    /// The subset name (empty for the default cluster).
    pub subset: String,
    /// The subset's label selector.
    pub subset_labels: BTreeMap<String, String>,
    /// How endpoints are discovered.
    pub cluster_type: ClusterType,
    /// The endpoints (after subset selection).
    pub endpoints: Vec<ClusterEndpoint>,
    /// The resolved traffic policy.
    pub policy: ClusterPolicy,
}

impl Cluster {
    /// The cluster as `portcullis-proxy-core` runs it, with `endpoints` (resolved by the
    /// caller): load balancing, circuit breakers, `maxRequestsPerConnection`, the healthy
    /// panic threshold, outlier detection and slow start.
    pub fn to_cluster_spec(
        &self,
        endpoints: Vec<pc::cluster::EndpointSpec>,
    ) -> pc::cluster::ClusterSpec {
        let p = &self.policy;
        let lb = p
            .lb_policy
            .to_proxy_core(p.minimum_ring_size, p.maglev_table_size);
        let cb = &p.circuit_breakers;
        let pool = pc::pool::PoolLimits::default()
            .with_max_connections(cb.max_connections)
            .with_max_pending_requests(cb.max_pending_requests)
            .with_max_requests(cb.max_requests)
            .with_max_retries(cb.max_retries)
            .with_max_requests_per_connection(p.max_requests_per_connection);
        let mut spec = pc::cluster::ClusterSpec::new(self.name.as_str(), endpoints)
            .with_lb(lb)
            .with_pool(pool)
            .with_healthy_panic_threshold(p.healthy_panic_threshold);
        if let Some(od) = &p.outlier_detection {
            spec = spec.with_outlier(od.to_proxy_core());
        }
        if let Some(slow_start) = p.slow_start {
            spec = spec.with_slow_start(slow_start);
        }
        spec
    }
}

impl Cluster {
    /// Whether connections to `endpoint` use Istio mutual TLS: always under `ISTIO_MUTUAL`, and
    /// under auto mTLS for endpoints labelled `security.istio.io/tlsMode: istio`.
    pub fn endpoint_uses_istio_mtls(&self, endpoint: &ClusterEndpoint) -> bool {
        match &self.policy.tls {
            UpstreamTls::AutoMtls(_) => endpoint
                .labels
                .get(crate::registry::TLS_MODE_LABEL)
                .is_some_and(|m| m == "istio"),
            UpstreamTls::Tls(t) => t.mode == ClientTlsMode::IstioMutual,
            _ => false,
        }
    }
}

/// Envoy's cluster discovery type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClusterType {
    /// Endpoints pushed by the control plane.
    Eds,
    /// DNS, every address.
    StrictDns,
    /// DNS, first address.
    LogicalDns,
    /// Fixed addresses.
    Static,
    /// The connection's original destination.
    OriginalDst,
    /// Dynamic forward proxy.
    DynamicForwardProxy,
}

impl ClusterType {
    /// Envoy's name (`EDS`, `STRICT_DNS`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eds => "EDS",
            Self::StrictDns => "STRICT_DNS",
            Self::LogicalDns => "LOGICAL_DNS",
            Self::Static => "STATIC",
            Self::OriginalDst => "ORIGINAL_DST",
            Self::DynamicForwardProxy => "DYNAMIC_FORWARD_PROXY",
        }
    }
}

/// One endpoint of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterEndpoint {
    /// Address (IP or DNS name).
    pub address: String,
    /// Port.
    pub port: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Envoy load-balancing policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LbPolicy {
    /// `LEAST_REQUEST` (Istio's default).
    LeastRequest,
    /// `ROUND_ROBIN`.
    RoundRobin,
    /// `RANDOM`.
    Random,
    /// `RING_HASH`.
    RingHash,
    /// `MAGLEV`.
    Maglev,
    /// `CLUSTER_PROVIDED` (original destination).
    ClusterProvided,
}

impl LbPolicy {
    /// The policy as `portcullis-proxy-core` runs it. `CLUSTER_PROVIDED` (original
    /// destination) is [`Passthrough`](pc::cluster::LbPolicy::Passthrough); the ring and table sizes
    /// are `RING_HASH`'s and `MAGLEV`'s (0 or `None`: the defaults).
    pub fn to_proxy_core(
        self,
        minimum_ring_size: Option<u64>,
        maglev_table_size: Option<u64>,
    ) -> pc::cluster::LbPolicy {
        match self {
            Self::LeastRequest => pc::cluster::LbPolicy::default(),
            Self::RoundRobin => pc::cluster::LbPolicy::RoundRobin,
            Self::Random => pc::cluster::LbPolicy::Random,
            Self::RingHash => pc::cluster::LbPolicy::ring_hash(minimum_ring_size.unwrap_or(0)),
            Self::Maglev => pc::cluster::LbPolicy::maglev(
                maglev_table_size.unwrap_or(pc::lb::DEFAULT_MAGLEV_TABLE_SIZE),
            ),
            Self::ClusterProvided => pc::cluster::LbPolicy::Passthrough,
        }
    }

    /// Envoy's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeastRequest => "LEAST_REQUEST",
            Self::RoundRobin => "ROUND_ROBIN",
            Self::Random => "RANDOM",
            Self::RingHash => "RING_HASH",
            Self::Maglev => "MAGLEV",
            Self::ClusterProvided => "CLUSTER_PROVIDED",
        }
    }
}

/// Circuit-breaker thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitBreakers {
    /// `max_connections`.
    pub max_connections: u32,
    /// `max_pending_requests`.
    pub max_pending_requests: u32,
    /// `max_requests`.
    pub max_requests: u32,
    /// `max_retries`.
    pub max_retries: u32,
}

impl Default for CircuitBreakers {
    /// Istio's defaults: every threshold `u32::MAX`.
    fn default() -> Self {
        Self {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
        }
    }
}

/// Outlier detection, in Envoy's terms (`None` fields use Envoy's defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutlierDetection {
    /// `consecutive_5xx`.
    pub consecutive_5xx: Option<u32>,
    /// `enforcing_consecutive_5xx`.
    pub enforcing_consecutive_5xx: Option<u32>,
    /// `consecutive_gateway_failure`.
    pub consecutive_gateway_failure: Option<u32>,
    /// `enforcing_consecutive_gateway_failure`.
    pub enforcing_consecutive_gateway_failure: Option<u32>,
    /// `enforcing_success_rate` (always 0).
    pub enforcing_success_rate: u32,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `base_ejection_time`.
    pub base_ejection_time: Option<Duration>,
    /// `max_ejection_percent`.
    pub max_ejection_percent: Option<u32>,
    /// `split_external_local_origin_errors`.
    pub split_external_local_origin_errors: bool,
    /// `consecutive_local_origin_failure`.
    pub consecutive_local_origin_failure: Option<u32>,
}

impl OutlierDetection {
    /// These settings as proxy-core's detector configuration: every field left unset takes
    /// Envoy's default ([`portcullis_proxy_core::outlier::OutlierConfig::default`]). This is a change of
    /// units only; the Istio rules (which DestinationRule field sets what) are applied by
    /// translation, as pilot's `applyOutlierDetection` does, and agree with
    /// [`portcullis_proxy_core::outlier::OutlierConfig::from_istio`].
    pub fn to_proxy_core(&self) -> pc::outlier::OutlierConfig {
        let mut c = pc::outlier::OutlierConfig::default();
        let set = |v: Option<u32>, into: &mut u32| {
            if let Some(v) = v {
                *into = v;
            }
        };
        set(self.consecutive_5xx, &mut c.consecutive_5xx);
        set(
            self.enforcing_consecutive_5xx,
            &mut c.enforcing_consecutive_5xx,
        );
        set(
            self.consecutive_gateway_failure,
            &mut c.consecutive_gateway_failure,
        );
        set(
            self.enforcing_consecutive_gateway_failure,
            &mut c.enforcing_consecutive_gateway_failure,
        );
        set(
            self.consecutive_local_origin_failure,
            &mut c.consecutive_local_origin_failure,
        );
        set(self.max_ejection_percent, &mut c.max_ejection_percent);
        c.split_external_local_origin_errors = self.split_external_local_origin_errors;
        if let Some(i) = self.interval {
            c.interval = i;
        }
        if let Some(b) = self.base_ejection_time {
            c.base_ejection_time = b;
        }
        c
    }
}

/// The certificate authority an upstream TLS connection verifies against.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaSource {
    /// The system trust store.
    System,
    /// A CA file.
    File(String),
    /// A Kubernetes secret (`credentialName`).
    Credential(String),
    /// Istio's mesh CA.
    IstioRoot,
    /// No verification (`insecureSkipVerify`).
    None,
}

/// Upstream (client) TLS settings for one cluster, as plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOrigination {
    /// `SIMPLE`, `MUTUAL` or `ISTIO_MUTUAL`.
    pub mode: ClientTlsMode,
    /// Explicit SNI.
    pub sni: Option<String>,
    /// SNI from the request's host.
    pub auto_sni: bool,
    /// SAN verification against the SNI.
    pub auto_san_validation: bool,
    /// Trust anchor.
    pub ca: CaSource,
    /// Accepted SANs.
    pub subject_alt_names: Vec<String>,
    /// ALPN offered.
    pub alpn: Vec<String>,
    /// Client certificate source (`credentialName` or certificate file).
    pub client_certificate: Option<String>,
    /// The client's private key file (`privateKey`), set when `client_certificate` is a
    /// certificate file (`MUTUAL` with files) rather than a `credentialName`.
    pub private_key: Option<String>,
}

/// How a cluster secures upstream connections.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamTls {
    /// Plaintext, nothing configured.
    None,
    /// Auto mTLS: Istio mTLS to endpoints labelled `security.istio.io/tlsMode: istio`,
    /// plaintext to the others.
    AutoMtls(TlsOrigination),
    /// `DISABLE` written in a DestinationRule.
    Disabled,
    /// TLS origination as configured.
    Tls(TlsOrigination),
}

/// A cluster's resolved traffic policy.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClusterPolicy {
    /// Load balancing.
    pub lb_policy: LbPolicy,
    /// Ring hash minimum ring size.
    pub minimum_ring_size: Option<u64>,
    /// Maglev table size.
    pub maglev_table_size: Option<u64>,
    /// Circuit breakers.
    pub circuit_breakers: CircuitBreakers,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// `max_requests_per_connection`.
    pub max_requests_per_connection: Option<u32>,
    /// Idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Maximum connection duration.
    pub max_connection_duration: Option<Duration>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// Healthy panic threshold (percent); `None` is Envoy's default (50).
    pub healthy_panic_threshold: Option<f64>,
    /// Upstream TLS.
    pub tls: UpstreamTls,
    /// The HTTP version spoken to the endpoints.
    pub upstream_protocol: UpstreamProtocol,
    /// Slow start of new endpoints (`loadBalancer.warmup`, or the deprecated
    /// `warmupDurationSecs`), for round robin and least request only.
    pub slow_start: Option<portcullis_proxy_core::cluster::SlowStart>,
}

/// The HTTP version a cluster speaks to its endpoints, as pilot sets it
/// (`cluster_builder.go: setUpstreamProtocol, shouldH2Upgrade`, `useClientProtocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (Envoy's default).
    #[default]
    Http1,
    /// HTTP/2: the port's protocol is `HTTP2`, `GRPC` or `GRPC-WEB`, or the DestinationRule
    /// (or the mesh) asks for `h2UpgradePolicy: UPGRADE`.
    Http2,
    /// The downstream request's version (`connectionPool.http.useClientProtocol`).
    UseDownstream,
}
