//! Gateway selection and server merging (`model/gateway.go`), listeners and filter chains
//! (`core/gateway.go`) and TCP/TLS chains.

use std::collections::HashSet;

use portcullis_model::gateway::{Server, ServerTlsMode};
use portcullis_model::host::{names_for_namespace, subset_of};
use portcullis_model::virtual_service::RouteDestination as VsRouteDestination;
use portcullis_model::{Gateway, Resource};

use crate::cache::RouteMemo;
use crate::config::{Resources, creation_order_key};
use crate::diag::{Diagnostic, Severity};
use crate::host::{sanitize_server_hosts, strip_namespace};
use crate::index::{Index, VsEntry};
use crate::plan::{
    FilterChain, FilterChainKind, GatewayPlan, Listener, ResourceRef, TcpRoute as PlanTcpRoute,
    TlsTermination, WeightedCluster,
};
use crate::proxy::Proxy;
use crate::route_config::build_route_config;
use crate::servers::{MergedServer, Protocol, is_http_server, is_passthrough, is_tls_server};
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

pub(crate) fn build_gateway(
    config: &Resources<'_>,
    index: &Index<'_>,
    plan: &mut GatewayPlan,
    memo: &mut RouteMemo,
) {
    let proxy = index.proxy;
    // §a.1 selection and gateway order.
    let mut gateways: Vec<&Resource<Gateway>> = config
        .gateways
        .iter()
        .map(|g| &**g)
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
        let rc = build_route_config(index, &name, &servers, &mut plan.diagnostics, memo);
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

fn server_tls(ms: &MergedServer<'_>) -> Option<TlsTermination> {
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
    Some(TlsTermination {
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
fn bound_l4<'i, 'a>(index: &'i Index<'a>, ms: &MergedServer<'_>) -> Vec<&'i VsEntry<'a>> {
    let Some(list) = index.vs_by_gateway.get(&ms.gateway_name) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| index.vs.get(*i))
        .filter(|vs| {
            let server_hosts = names_for_namespace(&ms.hosts, vs.namespace);
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
    vs: &VsEntry<'_>,
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
                cluster: index.cluster_name(dest, vs.namespace, listen_port),
                weight: u32::try_from(d.weight).unwrap_or(0),
            })
        })
        .collect()
}

/// §e.12: the first VS with a matching `tcp` rule wins.
fn tcp_route(index: &Index<'_>, ms: &MergedServer<'_>) -> Option<PlanTcpRoute> {
    for vs in bound_l4(index, ms) {
        for rule in vs.tcp.iter() {
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
                        name: vs.name.to_owned(),
                        namespace: vs.namespace.to_owned(),
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
        for rule in vs.tls.iter() {
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
                            name: vs.name.to_owned(),
                            namespace: vs.namespace.to_owned(),
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
