//! The translation driver: gateway selection and server merging (`model/gateway.go`),
//! listeners and filter chains (`core/gateway.go`), HTTP route configurations
//! (`buildGatewayHTTPRouteConfig`) and TCP/TLS chains; the sidecar (`mesh`) view is in `sidecar.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use portcullis_model::gateway::{Server, ServerTlsMode};
use portcullis_model::host::{intersection, names_for_namespace, resolve_short_name, subset_of};
use portcullis_model::virtual_service::{
    Destination, HttpRoute as VsHttpRoute, RouteDestination as VsRouteDestination, TcpRoute,
    TlsRoute,
};
use portcullis_model::{Gateway, Resource};
use portcullis_route_match::{Route, RouteTable, Router, VirtualHost};

use crate::config::{Config, creation_order_key};
use crate::diag::{Diagnostic, Severity};
use crate::host::{sanitize_server_hosts, strip_namespace};
use crate::plan::{
    FilterChain, FilterChainKind, GatewayPlan, HashPolicy, HttpRoute, Listener, ResourceRef,
    RouteConfig, RouteOrigin, ServerTls, TcpRoute as PlanTcpRoute, WeightedCluster,
};
use crate::proxy::{MeshSettings, Proxy, ProxyKind};
use crate::registry::{Service, ServiceRegistry};
use crate::routes::{
    RouteCtx, RouteProblem, build_http_routes, destination_host, is_catch_all, merge_delegates,
};

/// A VirtualService ready for binding: names resolved, delegates merged.
#[derive(Debug)]
pub(crate) struct VsEntry {
    pub name: String,
    pub namespace: String,
    /// Hosts as FQDNs (short names resolved in the VS namespace).
    pub hosts: Vec<String>,
    /// Resolved gateway names (`ns/name` or `mesh`).
    pub gateways: Vec<String>,
    pub export_to: Vec<String>,
    pub http: Vec<VsHttpRoute>,
    /// Where each rule of `http` was written (same index).
    pub http_origin: Vec<RouteOrigin>,
    pub tcp: Vec<TcpRoute>,
    pub tls: Vec<TlsRoute>,
}

/// A DestinationRule with its host resolved.
#[derive(Debug)]
pub(crate) struct DrEntry<'a> {
    pub namespace: String,
    pub host: String,
    pub rule: &'a portcullis_model::DestinationRule,
}

/// Everything translation looks things up in.
pub(crate) struct Index<'a> {
    pub proxy: &'a Proxy,
    pub mesh: &'a MeshSettings,
    pub registry: ServiceRegistry,
    pub vs: Vec<VsEntry>,
    pub drs: Vec<DrEntry<'a>>,
    /// Gateway name → VS indices in binding order (§b.3).
    pub vs_by_gateway: HashMap<String, Vec<usize>>,
    /// For a sidecar: the services it sees, one per host name (indices into `registry`).
    pub client_services: Vec<usize>,
}

/// Istio's `resolveGatewayName`.
pub(crate) fn resolve_gateway_name(name: &str, namespace: &str) -> String {
    if name == "mesh" {
        return name.to_owned();
    }
    if let Some(rest) = name.strip_prefix("./") {
        return format!("{namespace}/{rest}");
    }
    if name.contains('/') {
        return name.to_owned();
    }
    if let Some((short, rest)) = name.split_once('.') {
        let ns = rest.split('.').next().unwrap_or(namespace);
        return format!("{ns}/{short}");
    }
    format!("{namespace}/{name}")
}

impl<'a> Index<'a> {
    pub(crate) fn new(
        config: &'a Config,
        registry: &ServiceRegistry,
        proxy: &'a Proxy,
        mesh: &'a MeshSettings,
    ) -> Self {
        let mut registry = registry.clone();
        for se in &config.service_entries {
            if !registry.services.iter().any(|s| {
                se.spec.hosts.contains(&s.hostname) && s.namespace == se.metadata.namespace
            }) {
                registry.add_service_entry(&se.spec, &se.metadata.namespace, &mesh.domain_suffix);
            }
        }
        let suffix = mesh.domain_suffix.as_str();

        // VirtualServices in creation order; delegates are looked up by (name, namespace).
        let mut order: Vec<&Resource<portcullis_model::VirtualService>> =
            config.virtual_services.iter().collect();
        order.sort_by(|a, b| creation_order_key(a).cmp(&creation_order_key(b)));
        let delegates: HashMap<(&str, &str), &Resource<portcullis_model::VirtualService>> = order
            .iter()
            .filter(|v| v.spec.hosts.is_empty())
            .map(|v| {
                (
                    (v.metadata.name.as_str(), v.metadata.namespace.as_str()),
                    *v,
                )
            })
            .collect();
        let mut vs = Vec::new();
        for r in order.iter().filter(|v| !v.spec.hosts.is_empty()) {
            let ns = r.metadata.namespace.as_str();
            let find = |name: &str, dns: &str| -> Option<Vec<VsHttpRoute>> {
                let d = delegates.get(&(name, dns))?;
                if !crate::registry::exported_to(&d.spec.export_to, dns, ns) {
                    return None;
                }
                Some(d.spec.http.clone())
            };
            let (mut http, http_origin): (Vec<_>, Vec<_>) =
                if r.spec.http.iter().any(|h| h.delegate.is_some()) {
                    merge_delegates(ns, &r.spec.http, &find).into_iter().unzip()
                } else {
                    let origins = (0..r.spec.http.len()).map(RouteOrigin::new).collect();
                    (r.spec.http.clone(), origins)
                };
            for rule in &mut http {
                for m in &mut rule.r#match {
                    for g in &mut m.gateways {
                        *g = resolve_gateway_name(g, ns);
                    }
                }
            }
            let mut tcp = r.spec.tcp.clone();
            for rule in &mut tcp {
                for m in &mut rule.r#match {
                    for g in &mut m.gateways {
                        *g = resolve_gateway_name(g, ns);
                    }
                }
            }
            let mut tls = r.spec.tls.clone();
            for rule in &mut tls {
                for m in &mut rule.r#match {
                    for g in &mut m.gateways {
                        *g = resolve_gateway_name(g, ns);
                    }
                }
            }
            let gateways = if r.spec.gateways.is_empty() {
                vec!["mesh".to_owned()]
            } else {
                r.spec
                    .gateways
                    .iter()
                    .map(|g| resolve_gateway_name(g, ns))
                    .collect()
            };
            vs.push(VsEntry {
                name: r.metadata.name.clone(),
                namespace: ns.to_owned(),
                hosts: r
                    .spec
                    .hosts
                    .iter()
                    .map(|h| resolve_short_name(h, ns, suffix))
                    .collect(),
                gateways,
                export_to: r.spec.export_to.clone(),
                http,
                http_origin,
                tcp,
                tls,
            });
        }

        // Binding order for the proxy namespace: private, exported, public; creation order within.
        let mut grouped: Vec<(u8, usize)> = vs
            .iter()
            .enumerate()
            .filter_map(|(i, v)| vs_group(v, &proxy.namespace).map(|g| (g, i)))
            .collect();
        grouped.sort_by_key(|(g, i)| (*g, *i));
        let mut vs_by_gateway: HashMap<String, Vec<usize>> = HashMap::new();
        for (_, i) in grouped {
            if let Some(v) = vs.get(i) {
                let mut seen = HashSet::new();
                for g in &v.gateways {
                    if seen.insert(g) {
                        vs_by_gateway.entry(g.clone()).or_default().push(i);
                    }
                }
            }
        }

        let mut dr_order: Vec<&Resource<portcullis_model::DestinationRule>> =
            config.destination_rules.iter().collect();
        dr_order.sort_by(|a, b| creation_order_key(a).cmp(&creation_order_key(b)));
        let drs = dr_order
            .into_iter()
            .map(|r| DrEntry {
                namespace: r.metadata.namespace.clone(),
                host: resolve_short_name(&r.spec.host, &r.metadata.namespace, suffix),
                rule: &r.spec,
            })
            .collect();

        let client_services = match proxy.kind {
            ProxyKind::Sidecar => crate::sidecar::client_services(&registry, &proxy.namespace),
            _ => Vec::new(),
        };
        Self {
            proxy,
            mesh,
            registry,
            vs,
            drs,
            vs_by_gateway,
            client_services,
        }
    }

    /// The service for a destination host, looked up in the VS namespace first.
    pub(crate) fn service(&self, host: &str, vs_namespace: &str) -> Option<&Service> {
        self.registry
            .lookup(host, &self.proxy.namespace, Some(vs_namespace))
    }

    /// `GetDestinationCluster`.
    pub(crate) fn cluster_name(
        &self,
        dest: &Destination,
        vs_namespace: &str,
        listen_port: u32,
    ) -> String {
        let mut host = destination_host(dest, vs_namespace, &self.mesh.domain_suffix);
        let sidecar = self.proxy.kind == ProxyKind::Sidecar;
        // A sidecar looks destinations up among the services of the route configuration's
        // port only (each reduced to that port), so the default port is the listener port.
        let svc = if sidecar {
            self.client_services
                .iter()
                .filter_map(|i| self.registry.services.get(*i))
                .find(|s| s.hostname == host && s.port(listen_port).is_some())
        } else {
            self.service(&host, vs_namespace)
        };
        let port = match &dest.port {
            Some(p) if p.number != 0 => p.number,
            _ if sidecar => listen_port,
            _ => match svc.map(|s| s.ports.as_slice()) {
                Some([only]) => only.number,
                _ => listen_port,
            },
        };
        if let Some(alias) = svc.and_then(|s| s.external_name.clone()) {
            host = alias;
        }
        format!("outbound|{port}|{}|{host}", dest.subset)
    }

    /// Hash policy for a destination from its DestinationRule (subset port-level > subset >
    /// DR port-level when the destination names a port > DR top-level).
    pub(crate) fn hash_policy_for(
        &self,
        dest: &Destination,
        vs_namespace: &str,
    ) -> Option<HashPolicy> {
        use portcullis_model::destination_rule::{LbPolicy, LoadBalancerSettings};
        let host = destination_host(dest, vs_namespace, &self.mesh.domain_suffix);
        let svc_ns = self
            .service(&host, vs_namespace)
            .map(|s| s.namespace.clone());
        let dr = self.destination_rule(&host, svc_ns.as_deref())?;
        let port = dest.port.as_ref().map(|p| p.number).filter(|p| *p != 0);
        let pick = |lb: Option<&LoadBalancerSettings>| -> Option<HashPolicy> {
            match lb?.lb_policy.as_ref()? {
                LbPolicy::ConsistentHash(h) => crate::routes::hash_policy_from(h),
                _ => None,
            }
        };
        let level =
            |tp: &portcullis_model::destination_rule::TrafficPolicy| -> Option<Option<HashPolicy>> {
                let port = port?;
                tp.port_level_settings
                    .iter()
                    .find(|p| p.port.as_ref().is_some_and(|s| s.number == port))
                    .map(|p| pick(p.load_balancer.as_ref()))
            };
        if !dest.subset.is_empty()
            && let Some(subset) = dr.subsets.iter().find(|s| s.name == dest.subset)
            && let Some(tp) = &subset.traffic_policy
        {
            if let Some(h) = level(tp) {
                return h;
            }
            if tp.load_balancer.is_some() {
                return pick(tp.load_balancer.as_ref());
            }
        }
        let tp = dr.traffic_policy.as_ref()?;
        if let Some(h) = level(tp) {
            return h;
        }
        pick(tp.load_balancer.as_ref())
    }
}

/// §b.3 group of a VS for a proxy namespace: 0 private, 1 exported, 2 public; `None` invisible.
fn vs_group(vs: &VsEntry, proxy_ns: &str) -> Option<u8> {
    if vs.export_to.is_empty() || vs.export_to.iter().any(|e| e == "*") {
        return Some(2);
    }
    if vs.export_to.iter().any(|e| e == "~") {
        return None;
    }
    let own = vs.namespace.as_str();
    if vs.export_to.iter().any(|e| e == "." || e == own) && proxy_ns == own {
        return Some(0);
    }
    if vs.export_to.iter().any(|e| e == proxy_ns) {
        return Some(1);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Protocols

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    Https,
    Tls,
    Tcp,
    Mongo,
    Redis,
    Mysql,
    Unsupported,
}

impl Protocol {
    fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "HTTP" => Self::Http,
            "HTTP2" => Self::Http2,
            "GRPC" => Self::Grpc,
            "GRPC-WEB" => Self::GrpcWeb,
            "HTTPS" => Self::Https,
            "TLS" => Self::Tls,
            "TCP" => Self::Tcp,
            "MONGO" => Self::Mongo,
            "REDIS" => Self::Redis,
            "MYSQL" => Self::Mysql,
            _ => Self::Unsupported,
        }
    }

    fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Http2 | Self::Grpc | Self::GrpcWeb)
    }
}

fn is_passthrough(s: &Server) -> bool {
    s.tls.as_ref().is_some_and(|t| {
        matches!(
            t.mode.unwrap_or_default(),
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
        )
    })
}

/// `IsTLSServer`: TLS settings on a non-HTTP-family protocol.
fn is_tls_server(s: &Server, p: Protocol) -> bool {
    s.tls.is_some() && !p.is_http()
}

/// `IsHTTPServer`: HTTP family, or HTTPS terminating TLS.
fn is_http_server(s: &Server, p: Protocol) -> bool {
    p.is_http() || (p == Protocol::Https && s.tls.is_some() && !is_passthrough(s))
}

// ---------------------------------------------------------------------------------------------
// Gateway servers

/// A server accepted on a listener.
#[derive(Debug)]
struct MergedServer<'a> {
    gateway: &'a Resource<Gateway>,
    /// `ns/name` of the Gateway.
    gateway_name: String,
    server: &'a Server,
    server_index: usize,
    hosts: Vec<String>,
    protocol: Protocol,
    server_port: u32,
    /// The HTTP route configuration name, for HTTP servers.
    route_name: Option<String>,
}

#[derive(Debug, Default)]
struct PortState<'a> {
    plaintext: Option<Protocol>,
    any: bool,
    tls_hosts: HashSet<String>,
    route_names: HashSet<String>,
    servers: Vec<MergedServer<'a>>,
}

fn gateway_ref(gw: &Resource<Gateway>) -> String {
    format!("Gateway {}/{}", gw.metadata.namespace, gw.metadata.name)
}

const GATEWAY_SERVICE_ANNOTATION: &str = "internal.istio.io/gateway-service";
const DISABLE_PORT_TRANSLATION: &str = "experimental.istio.io/disable-gateway-port-translation";

/// Translates `config` for `proxy`.
///
/// The registry is extended with the configuration's ServiceEntries. For a gateway proxy the
/// plan holds every rule of ROUTING.md §a–g; for a sidecar, the outbound `mesh` view: one HTTP
/// listener and route configuration (`<port>`) per HTTP service port, where for each host only
/// the oldest VirtualService applies (see the crate documentation).
pub fn translate(
    config: &Config,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
) -> GatewayPlan {
    let index = Index::new(config, registry, proxy, mesh);
    let mut plan = GatewayPlan {
        listeners: Vec::new(),
        route_configs: BTreeMap::new(),
        clusters: BTreeMap::new(),
        diagnostics: Vec::new(),
    };
    match proxy.kind {
        ProxyKind::Sidecar => crate::sidecar::build_sidecar(&index, &mut plan),
        _ => build_gateway(config, &index, &mut plan),
    }
    crate::clusters::build_clusters(&index, &mut plan);
    if proxy.kind == ProxyKind::Sidecar {
        let passthrough = crate::clusters::passthrough_cluster(&index);
        plan.clusters.insert(passthrough.name.clone(), passthrough);
    }
    plan.listeners
        .sort_by(|a, b| (a.port, &a.address).cmp(&(b.port, &b.address)));
    plan
}

fn build_gateway(config: &Config, index: &Index<'_>, plan: &mut GatewayPlan) {
    let proxy = index.proxy;
    // §a.1 selection and gateway order.
    let mut gateways: Vec<&Resource<Gateway>> = config
        .gateways
        .iter()
        .filter(|g| gateway_applies(g, proxy))
        .collect();
    gateways.sort_by(|a, b| creation_order_key(a).cmp(&creation_order_key(b)));

    // §a.3/§a.4 merge servers per (listener port, bind), first wins.
    let mut ports: Vec<((u32, String), PortState<'_>)> = Vec::new();
    for gw in &gateways {
        let gw_name = format!("{}/{}", gw.metadata.namespace, gw.metadata.name);
        let strict = gw
            .metadata
            .annotations
            .contains_key(GATEWAY_SERVICE_ANNOTATION);
        for (si, server) in gw.spec.servers.iter().enumerate() {
            let Some(port) = &server.port else {
                plan.diagnostics.push(Diagnostic::new(
                    Severity::Warning,
                    gateway_ref(gw),
                    format!("spec.servers[{si}]"),
                    "server without port ignored",
                ));
                continue;
            };
            let protocol = Protocol::parse(&port.protocol);
            let hosts = sanitize_server_hosts(&server.hosts, &gw.metadata.namespace);
            for lport in listener_ports(proxy, gw, port.number, strict) {
                if proxy.unprivileged && lport < 1024 {
                    continue;
                }
                let key = (lport, server.bind.clone());
                let pos = match ports.iter().position(|(k, _)| *k == key) {
                    Some(p) => p,
                    None => {
                        ports.push((key, PortState::default()));
                        ports.len() - 1
                    }
                };
                let Some((_, state)) = ports.get_mut(pos) else {
                    continue;
                };
                let drop = |plan: &mut GatewayPlan, why: &str| {
                    plan.diagnostics.push(Diagnostic::new(
                        Severity::Info,
                        gateway_ref(gw),
                        format!("spec.servers[{si}]"),
                        format!("server dropped on port {lport}: {why}"),
                    ));
                };
                if server.tls.is_some() {
                    if hosts.iter().any(|h| state.tls_hosts.contains(h)) {
                        drop(
                            plan,
                            "a host is already served with TLS settings on this port",
                        );
                        continue;
                    }
                    state.tls_hosts.extend(hosts.iter().cloned());
                }
                let route_name = rds_name(server, protocol, gw, lport, port.number, &port.name);
                if state.any {
                    if let Some(first) = state.plaintext {
                        if !(first.is_http() && protocol.is_http()) {
                            drop(plan, "protocol conflicts with the server owning the port");
                            continue;
                        }
                    } else if let Some(name) = &route_name
                        && protocol == Protocol::Https
                        && state.route_names.contains(name)
                    {
                        drop(plan, "non-unique HTTPS route name");
                        continue;
                    }
                } else {
                    state.any = true;
                    if !is_tls_server(server, protocol) {
                        state.plaintext = Some(protocol);
                    }
                }
                if let Some(name) = &route_name {
                    state.route_names.insert(name.clone());
                }
                state.servers.push(MergedServer {
                    gateway: gw,
                    gateway_name: gw_name.clone(),
                    server,
                    server_index: si,
                    hosts: hosts.clone(),
                    protocol,
                    server_port: port.number,
                    route_name,
                });
            }
        }
    }

    // §a.5 listeners and filter chains; §b.6 route configurations.
    let mut route_servers: Vec<(String, Vec<&MergedServer<'_>>)> = Vec::new();
    for ((lport, bind), state) in &ports {
        let address = if bind.is_empty() {
            "0.0.0.0"
        } else {
            bind.as_str()
        };
        let mut chains: Vec<FilterChain> = Vec::new();
        let mut used_sni: HashSet<String> = HashSet::new();
        for ms in &state.servers {
            let tls_mode = ms.server.tls.as_ref().map(|t| t.mode.unwrap_or_default());
            if ms.protocol.is_http() {
                let name = ms.route_name.clone().unwrap_or_default();
                if !chains.iter().any(|c| c.tls.is_none() && matches!(&c.kind, FilterChainKind::Http { route_config } if *route_config == name)) {
                    chains.push(FilterChain {
                        name: name.clone(),
                        server_names: Vec::new(),
                        application_protocols: Vec::new(),
                        tls: None,
                        kind: FilterChainKind::Http {
                            route_config: name.clone(),
                        },
                    });
                }
                add_route_server(&mut route_servers, name, ms);
            } else if is_http_server(ms.server, ms.protocol) {
                let name = ms.route_name.clone().unwrap_or_default();
                chains.push(FilterChain {
                    name: name.clone(),
                    server_names: sni_names(&ms.hosts),
                    application_protocols: Vec::new(),
                    tls: server_tls(ms),
                    kind: FilterChainKind::Http {
                        route_config: name.clone(),
                    },
                });
                add_route_server(&mut route_servers, name, ms);
            } else if tls_mode == Some(ServerTlsMode::AutoPassthrough) {
                chains.extend(auto_passthrough_chains(index, ms, &mut used_sni));
            } else if tls_mode == Some(ServerTlsMode::Passthrough) {
                chains.extend(passthrough_chains(index, ms, &mut used_sni));
            } else if let Some(tcp) = tcp_route(index, ms) {
                let terminated = tls_mode.is_some();
                chains.push(FilterChain {
                    name: format!("tcp.{}.{}", ms.server_port, ms.gateway_name),
                    server_names: if terminated {
                        sni_names(&ms.hosts)
                    } else {
                        Vec::new()
                    },
                    application_protocols: Vec::new(),
                    tls: if terminated { server_tls(ms) } else { None },
                    kind: FilterChainKind::TcpProxy(PlanTcpRoute {
                        tls_terminated: terminated,
                        ..tcp
                    }),
                });
            } else {
                plan.diagnostics.push(Diagnostic::new(
                    Severity::Info,
                    gateway_ref(ms.gateway),
                    format!("spec.servers[{}]", ms.server_index),
                    "no VirtualService tcp route for this server: no filter chain",
                ));
            }
        }
        if chains.is_empty() {
            continue;
        }
        let rejected = duplicate_chain(&chains);
        if let Some(why) = &rejected {
            plan.diagnostics.push(Diagnostic::new(
                Severity::Error,
                format!("listener {address}_{lport}"),
                "",
                why.clone(),
            ));
        }
        let tls_inspector = chains
            .iter()
            .any(|c| !c.server_names.is_empty() || !c.application_protocols.is_empty());
        plan.listeners.push(Listener {
            name: format!("{address}_{lport}"),
            address: address.to_owned(),
            port: *lport,
            filter_chains: chains,
            tls_inspector,
            rejected,
        });
    }

    for (name, servers) in route_servers {
        let rc = build_route_config(index, &name, &servers, &mut plan.diagnostics);
        plan.route_configs.insert(name, rc);
    }
}

fn add_route_server<'s, 'a>(
    list: &mut Vec<(String, Vec<&'s MergedServer<'a>>)>,
    name: String,
    ms: &'s MergedServer<'a>,
) {
    match list.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => v.push(ms),
        None => list.push((name, vec![ms])),
    }
}

/// Two chains with identical match criteria make Envoy reject the listener.
fn duplicate_chain(chains: &[FilterChain]) -> Option<String> {
    let mut seen: HashSet<(Vec<String>, Vec<String>, bool)> = HashSet::new();
    for c in chains {
        let mut names = c.server_names.clone();
        names.sort();
        let key = (
            names,
            c.application_protocols.clone(),
            c.tls.is_some() || c.kind_is_passthrough(),
        );
        if !seen.insert(key) {
            return Some(format!(
                "filter chain {} has the same match criteria as an earlier chain: Envoy rejects the listener",
                c.name
            ));
        }
    }
    None
}

impl FilterChain {
    fn kind_is_passthrough(&self) -> bool {
        matches!(&self.kind, FilterChainKind::TcpProxy(t) if !t.tls_terminated && !self.server_names.is_empty())
    }
}

fn gateway_applies(gw: &Resource<Gateway>, proxy: &Proxy) -> bool {
    if let Some(services) = gw.metadata.annotations.get(GATEWAY_SERVICE_ANNOTATION) {
        return services
            .split(',')
            .map(str::trim)
            .any(|svc| proxy.service_targets.iter().any(|t| t.hostname == svc));
    }
    proxy.matches_labels(&gw.spec.selector)
}

/// §a.3 `resolvePorts`.
fn listener_ports(proxy: &Proxy, gw: &Resource<Gateway>, number: u32, strict: bool) -> Vec<u32> {
    if strict {
        let services: Vec<&str> = gw
            .metadata
            .annotations
            .get(GATEWAY_SERVICE_ANNOTATION)
            .map(|s| s.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for t in &proxy.service_targets {
            if t.port == number
                && services.contains(&t.hostname.as_str())
                && !out.contains(&t.target_port)
            {
                out.push(t.target_port);
            }
        }
        return out;
    }
    for t in &proxy.service_targets {
        if t.service_labels.contains_key(DISABLE_PORT_TRANSLATION) {
            continue;
        }
        if t.port == number {
            return vec![t.target_port];
        }
    }
    vec![number]
}

/// `gatewayRDSRouteName` (with the listener port for plain HTTP and the bind suffix).
fn rds_name(
    server: &Server,
    protocol: Protocol,
    gw: &Resource<Gateway>,
    listener_port: u32,
    server_port: u32,
    port_name: &str,
) -> Option<String> {
    let bind = if server.bind.is_empty() {
        String::new()
    } else {
        format!(".{}", server.bind)
    };
    if protocol.is_http() {
        return Some(format!("http.{listener_port}{bind}"));
    }
    if protocol == Protocol::Https && server.tls.is_some() && !is_passthrough(server) {
        return Some(format!(
            "https.{server_port}.{port_name}.{}.{}{bind}",
            gw.metadata.name, gw.metadata.namespace
        ));
    }
    None
}

/// `GetSNIHostsForServer`: hosts without `ns/`, sorted, de-duplicated; `*` → no criterion.
fn sni_names(hosts: &[String]) -> Vec<String> {
    let mut names: Vec<String> = hosts
        .iter()
        .map(|h| strip_namespace(h).to_owned())
        .collect();
    names.sort();
    names.dedup();
    if names.iter().any(|n| n == "*") {
        return Vec::new();
    }
    names
}

fn server_tls(ms: &MergedServer<'_>) -> Option<ServerTls> {
    let t = ms.server.tls.as_ref()?;
    let mut credential_names = t.credential_names.clone();
    if !t.credential_name.is_empty() {
        credential_names.insert(0, t.credential_name.clone());
    }
    let mut certificate_files: Vec<(String, String)> = t
        .tls_certificates
        .iter()
        .map(|c| (c.server_certificate.clone(), c.private_key.clone()))
        .collect();
    if !t.server_certificate.is_empty() {
        certificate_files.insert(0, (t.server_certificate.clone(), t.private_key.clone()));
    }
    Some(ServerTls {
        mode: t.mode.unwrap_or_default(),
        sni_hosts: ms
            .hosts
            .iter()
            .map(|h| strip_namespace(h).to_owned())
            .collect(),
        credential_names,
        certificate_files,
        ca_certificates: t.ca_certificates.clone(),
        settings: t.clone(),
    })
}

/// VSs bound to a server's Gateway whose hosts overlap the server's (§b.5), in §b.3 order.
fn bound_l4<'i>(index: &'i Index<'_>, ms: &MergedServer<'_>) -> Vec<&'i VsEntry> {
    let Some(list) = index.vs_by_gateway.get(&ms.gateway_name) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| index.vs.get(*i))
        .filter(|vs| {
            let server_hosts = names_for_namespace(&ms.hosts, &vs.namespace);
            vs.hosts.iter().any(|h| {
                server_hosts
                    .iter()
                    .any(|s| portcullis_model::host::matches(s, h))
            })
        })
        .collect()
}

fn l4_destinations(
    index: &Index<'_>,
    vs: &VsEntry,
    route: &[VsRouteDestination],
    listen_port: u32,
) -> Vec<WeightedCluster> {
    let many = route.len() > 1;
    route
        .iter()
        .filter(|d| !many || d.weight > 0)
        .filter_map(|d| {
            let dest = d.destination.as_ref()?;
            Some(WeightedCluster {
                cluster: index.cluster_name(dest, &vs.namespace, listen_port),
                weight: u32::try_from(d.weight).unwrap_or(0),
            })
        })
        .collect()
}

/// §e.12: the first VS with a matching `tcp` rule wins.
fn tcp_route(index: &Index<'_>, ms: &MergedServer<'_>) -> Option<PlanTcpRoute> {
    for vs in bound_l4(index, ms) {
        for rule in &vs.tcp {
            let ok = rule.r#match.is_empty()
                || rule.r#match.iter().any(|m| {
                    (m.port == 0 || m.port == ms.server_port)
                        && (m.gateways.is_empty() || m.gateways.contains(&ms.gateway_name))
                });
            if ok {
                let destinations = l4_destinations(index, vs, &rule.route, ms.server_port);
                if destinations.is_empty() {
                    continue;
                }
                return Some(PlanTcpRoute {
                    destinations,
                    virtual_service: Some(ResourceRef {
                        name: vs.name.clone(),
                        namespace: vs.namespace.clone(),
                    }),
                    tls_terminated: false,
                });
            }
        }
    }
    None
}

/// §e.13 passthrough chains from `tls` rules.
fn passthrough_chains(
    index: &Index<'_>,
    ms: &MergedServer<'_>,
    used: &mut HashSet<String>,
) -> Vec<FilterChain> {
    let mut out = Vec::new();
    for vs in bound_l4(index, ms) {
        for rule in &vs.tls {
            for m in &rule.r#match {
                if m.port != 0 && m.port != ms.server_port {
                    continue;
                }
                if !m.gateways.is_empty() && !m.gateways.contains(&ms.gateway_name) {
                    continue;
                }
                let names: Vec<String> = m
                    .sni_hosts
                    .iter()
                    .filter(|s| !used.contains(*s))
                    .cloned()
                    .collect();
                if names.is_empty() {
                    continue;
                }
                let destinations = l4_destinations(index, vs, &rule.route, ms.server_port);
                if destinations.is_empty() {
                    continue;
                }
                used.extend(names.iter().cloned());
                let server_names = if names.iter().any(|n| n == "*") {
                    Vec::new()
                } else {
                    names.clone()
                };
                out.push(FilterChain {
                    name: format!("passthrough.{}", names.join(",")),
                    server_names,
                    application_protocols: Vec::new(),
                    tls: None,
                    kind: FilterChainKind::TcpProxy(PlanTcpRoute {
                        destinations,
                        virtual_service: Some(ResourceRef {
                            name: vs.name.clone(),
                            namespace: vs.namespace.clone(),
                        }),
                        tls_terminated: false,
                    }),
                });
            }
        }
    }
    out
}

/// Istio's mTLS ALPN values that AUTO_PASSTHROUGH chains require.
const ISTIO_ALPNS: [&str; 5] = [
    "istio-peer-exchange",
    "istio",
    "istio-http/1.0",
    "istio-http/1.1",
    "istio-h2",
];

/// `builtAutoPassthroughFilterChains`.
fn auto_passthrough_chains(
    index: &Index<'_>,
    ms: &MergedServer<'_>,
    used: &mut HashSet<String>,
) -> Vec<FilterChain> {
    let mut out = Vec::new();
    let server_hosts: Vec<&str> = ms.hosts.iter().map(|h| strip_namespace(h)).collect();
    for svc in &index.registry.services {
        if svc.mesh_external || !svc.visible_to(&index.proxy.namespace) {
            continue;
        }
        if !server_hosts.iter().any(|h| subset_of(&svc.hostname, h)) {
            continue;
        }
        let mut subsets = vec![String::new()];
        if let Some(dr) = index.destination_rule(&svc.hostname, Some(&svc.namespace)) {
            subsets.extend(dr.subsets.iter().map(|s| s.name.clone()));
        }
        for port in &svc.ports {
            if port.protocol.eq_ignore_ascii_case("UDP") {
                continue;
            }
            for subset in &subsets {
                let sni = format!("outbound_.{}_.{subset}_.{}", port.number, svc.hostname);
                if !used.insert(sni.clone()) {
                    continue;
                }
                out.push(FilterChain {
                    name: sni.clone(),
                    server_names: vec![sni.clone()],
                    application_protocols: ISTIO_ALPNS.iter().map(|s| (*s).to_owned()).collect(),
                    tls: None,
                    kind: FilterChainKind::TcpProxy(PlanTcpRoute {
                        destinations: vec![WeightedCluster {
                            cluster: sni,
                            weight: 0,
                        }],
                        virtual_service: None,
                        tls_terminated: false,
                    }),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP route configurations

struct VhostBuild {
    name: String,
    port: u32,
    routes: Vec<Route<HttpRoute>>,
    require_tls: bool,
}

/// `buildGatewayHTTPRouteConfig` for one route configuration name.
fn build_route_config(
    index: &Index<'_>,
    name: &str,
    servers: &[&MergedServer<'_>],
    diags: &mut Vec<Diagnostic>,
) -> RouteConfig {
    let mut vhosts: Vec<VhostBuild> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut rejected: Option<String> = None;
    for ms in servers {
        let redirect = ms.server.tls.as_ref().is_some_and(|t| t.https_redirect);
        let gateway_names = [ms.gateway_name.clone()];
        let ctx = RouteCtx {
            listen_port: ms.server_port,
            gateway_names: &gateway_names,
        };
        if let Some(list) = index.vs_by_gateway.get(&ms.gateway_name) {
            for vs in list.iter().filter_map(|i| index.vs.get(*i)) {
                let server_hosts = names_for_namespace(&ms.hosts, &vs.namespace);
                let hosts = intersection(&server_hosts, &vs.hosts);
                if hosts.is_empty() {
                    continue;
                }
                let mut problems = Vec::new();
                let routes = build_http_routes(index, &ctx, vs, &mut problems);
                for (path, p) in problems {
                    let resource = format!("VirtualService {}/{}", vs.namespace, vs.name);
                    match p {
                        RouteProblem::Reject(msg) => {
                            diags.push(Diagnostic::new(
                                Severity::Error,
                                resource,
                                path,
                                format!("{msg} (route configuration {name})"),
                            ));
                            rejected.get_or_insert(msg);
                        }
                        RouteProblem::Invalid(err) => diags.push(Diagnostic::new(
                            Severity::Warning,
                            resource,
                            path,
                            format!("route dropped: {err} (route configuration {name})"),
                        )),
                        RouteProblem::Dropped(msg) => diags.push(Diagnostic::new(
                            Severity::Warning,
                            resource,
                            path,
                            format!("route dropped: {msg} (route configuration {name})"),
                        )),
                    }
                }
                if routes.is_empty() {
                    continue;
                }
                for h in hosts {
                    let key = h.to_ascii_lowercase();
                    let idx = *by_name.entry(key.clone()).or_insert_with(|| {
                        vhosts.push(VhostBuild {
                            name: key.clone(),
                            port: ms.server_port,
                            routes: Vec::new(),
                            require_tls: false,
                        });
                        vhosts.len() - 1
                    });
                    if let Some(v) = vhosts.get_mut(idx) {
                        v.routes.extend(routes.iter().cloned());
                        v.require_tls |= redirect;
                    }
                }
            }
        }
        if redirect {
            for h in &ms.hosts {
                let key = h.to_ascii_lowercase();
                match by_name.get(&key) {
                    Some(i) => {
                        if let Some(v) = vhosts.get_mut(*i) {
                            v.require_tls = true;
                        }
                    }
                    None => {
                        by_name.insert(key.clone(), vhosts.len());
                        vhosts.push(VhostBuild {
                            name: key,
                            port: ms.server_port,
                            routes: Vec::new(),
                            require_tls: true,
                        });
                    }
                }
            }
        }
    }
    // §d.2 SortVHostRoutes: catch-alls last, stable.
    for v in &mut vhosts {
        let (normal, catch_all): (Vec<_>, Vec<_>) =
            v.routes.drain(..).partition(|r| !is_catch_all(&r.matches));
        v.routes = normal;
        v.routes.extend(catch_all);
    }
    // collapseDuplicateRoutes.
    let mut groups: Vec<(Vec<String>, VhostBuild)> = Vec::new();
    let mut by_fingerprint: HashMap<String, Vec<usize>> = HashMap::new();
    for v in vhosts {
        let fingerprint = format!("{}|{}|{:?}", v.port, v.require_tls, v.routes);
        let candidates = by_fingerprint.entry(fingerprint).or_default();
        let found = candidates.iter().copied().find(|i| {
            groups.get(*i).is_some_and(|(_, g)| {
                g.require_tls == v.require_tls && g.port == v.port && g.routes == v.routes
            })
        });
        match found.and_then(|i| groups.get_mut(i)) {
            Some((domains, _)) => domains.push(v.name),
            None => {
                candidates.push(groups.len());
                groups.push((vec![v.name.clone()], v));
            }
        }
    }
    let default_port = servers.first().map_or(0, |s| s.server_port);
    let mut require_tls = Vec::new();
    let mut table = Vec::new();
    if groups.is_empty() {
        table.push(VirtualHost::new(
            format!("blackhole:{default_port}"),
            ["*"],
            Vec::new(),
        ));
        require_tls.push(false);
    }
    for (mut domains, v) in groups {
        domains.sort();
        let first = domains.first().cloned().unwrap_or_default();
        table.push(VirtualHost::new(
            format!("{first}:{}", v.port),
            domains,
            v.routes,
        ));
        require_tls.push(v.require_tls);
    }
    let (table, router) = build_router(name, table, &mut require_tls, diags);
    RouteConfig {
        name: name.to_owned(),
        table,
        require_tls,
        rejected,
        router,
    }
}

/// Compiles a route table, dropping (with a diagnostic) each route or virtual host the matcher
/// rejects, so one invalid route never poisons the rest.
pub(crate) fn build_router(
    name: &str,
    mut vhosts: Vec<VirtualHost<HttpRoute>>,
    require_tls: &mut Vec<bool>,
    diags: &mut Vec<Diagnostic>,
) -> (RouteTable<HttpRoute>, Router<HttpRoute>) {
    loop {
        let table = RouteTable::new(vhosts.clone());
        match Router::new(table) {
            Ok(router) => return (RouteTable::new(vhosts), router),
            Err(e) => {
                let vi = e.virtual_host();
                match e.route() {
                    Some(ri) if vhosts.get(vi).is_some_and(|v| ri < v.routes.len()) => {
                        if let Some(v) = vhosts.get_mut(vi) {
                            let r = v.routes.remove(ri);
                            diags.push(Diagnostic::new(
                                Severity::Warning,
                                format!("route configuration {name}"),
                                format!("{}/{}", v.name, r.name),
                                format!("route dropped: {e}"),
                            ));
                        }
                    }
                    _ if vi < vhosts.len() => {
                        let v = vhosts.remove(vi);
                        if vi < require_tls.len() {
                            require_tls.remove(vi);
                        }
                        diags.push(Diagnostic::new(
                            Severity::Warning,
                            format!("route configuration {name}"),
                            v.name,
                            format!("virtual host dropped: {e}"),
                        ));
                    }
                    _ => {
                        require_tls.clear();
                        diags.push(Diagnostic::new(
                            Severity::Error,
                            format!("route configuration {name}"),
                            "",
                            format!("route configuration emptied: {e}"),
                        ));
                        let empty = RouteTable::new(Vec::new());
                        let router = Router::new(RouteTable::new(Vec::new()));
                        if let Ok(router) = router {
                            return (empty, router);
                        }
                        vhosts.clear();
                    }
                }
            }
        }
    }
}
