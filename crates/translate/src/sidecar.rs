//! The sidecar (`mesh`) view: outbound HTTP route configurations, one per service port, as a
//! sidecar in the client's namespace receives them (`httproute.go:
//! BuildSidecarOutboundVirtualHosts, generateVirtualHostDomains, buildCatchAllVirtualHost`;
//! `route.go: BuildSidecarVirtualHostWrapper, separateVSHostsAndServices`;
//! `sidecar.go: computeWildcardHostVirtualServiceIndex`).
//!
//! For each port some visible service declares with an HTTP (or sniffed) protocol, route
//! configuration `<port>`:
//! * the services that have the port (one per host name, the client's namespace preferred);
//! * the VirtualServices bound to `mesh` and visible from the client's namespace, in binding
//!   order (private, exported, public; oldest first). On ports other than 80 only those with
//!   a host matching a service on the port are used;
//! * each VirtualService's routes, built for the port and the client (`sourceLabels`,
//!   `sourceNamespace`, `match.port`), attach to the services its hosts name (a wildcard host
//!   takes the services for which it is the most specific VirtualService host) and to its
//!   hosts that are not services (only when it names a service on the port, or on port 80);
//! * for each host the first virtual host wins: sidecars never merge VirtualServices;
//! * every service without a VirtualService gets a default route to its cluster;
//! * unknown hosts reach `allow_any` (`*`), forwarding to `PassthroughCluster`.

use std::sync::Arc;

use std::collections::{BTreeSet, HashSet};

use portcullis_model::virtual_service::{Destination, PortSelector};
use portcullis_route_match::{PathMatch, Route, RouteMatch, VirtualHost};

use crate::diag::{Diagnostic, Severity};
use crate::index::{Index, VsEntry};
use crate::plan::{FilterChain, FilterChainKind, GatewayPlan, HttpRoute, Listener, RouteConfig};
use crate::registry::{Service, ServicePort};
use crate::route_config::build_router;
use crate::routes::{RouteCtx, RouteProblem, build_http_routes};
use portcullis_model::host::{self, subset_of};

/// The cluster unknown destinations are forwarded to (outbound traffic policy `ALLOW_ANY`).
pub(crate) const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";

/// The name of the catch-all virtual host and its route.
const ALLOW_ANY: &str = "allow_any";

/// Istio's `IsHTTPOrSniffed`: HTTP-family protocols, and protocols left to sniffing.
pub(crate) fn http_or_sniffed(protocol: &str) -> bool {
    !matches!(
        protocol.to_ascii_uppercase().as_str(),
        "HTTPS" | "TLS" | "TCP" | "UDP" | "MONGO" | "REDIS" | "MYSQL"
    )
}

/// The services the sidecar of `index` sees (see [`client_services`](crate::registry::client_services)).
pub(crate) fn sidecar_services<'i>(index: &'i Index<'_>) -> Vec<&'i Service> {
    index
        .client_services
        .iter()
        .filter_map(|i| index.registry.services.get(*i))
        .collect()
}

/// `computeWildcardHostVirtualServiceIndex` for one service: the VirtualService (position in
/// `vs`) with an exact host equal to the service's, else the one with the most specific
/// wildcard host covering it; for a repeated host the first VirtualService counts.
fn most_specific_vs(vs: &[&VsEntry<'_>], hostname: &str) -> Option<usize> {
    let mut wildcard: Option<(usize, &str)> = None;
    for (i, v) in vs.iter().enumerate() {
        for h in v.hosts.iter() {
            if h.starts_with('*') {
                if subset_of(hostname, h) && wildcard.is_none_or(|(_, best)| h.len() > best.len()) {
                    wildcard = Some((i, h));
                }
            } else if h == hostname {
                return Some(i);
            }
        }
    }
    wildcard.map(|(i, _)| i)
}

/// The routes of one VirtualService on one port, and where they attach.
struct Wrapper<'a> {
    /// VirtualService hosts that are not services on the port (used as written, lower-cased).
    vs_hosts: Vec<String>,
    /// The services the routes serve.
    services: Vec<&'a Service>,
    routes: Vec<Route<Arc<HttpRoute>>>,
}

/// Builds the sidecar's listeners and route configurations.
pub(crate) fn build_sidecar(index: &Index<'_>, plan: &mut GatewayPlan) {
    let services = sidecar_services(index);
    let mesh_vs: Vec<&VsEntry<'_>> = index
        .vs_by_gateway
        .get("mesh")
        .map(|l| l.iter().filter_map(|i| index.vs.get(*i)).collect())
        .unwrap_or_default();
    let ports: BTreeSet<u32> = services
        .iter()
        .flat_map(|s| s.ports.iter())
        .filter(|p| p.number != 0 && http_or_sniffed(&p.protocol))
        .map(|p| p.number)
        .collect();
    for port in ports {
        let name = port.to_string();
        let mut vhosts =
            port_virtual_hosts(index, &services, &mesh_vs, port, &mut plan.diagnostics);
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        vhosts.push(allow_any_virtual_host());
        let mut require_tls = vec![false; vhosts.len()];
        let router = build_router(&name, vhosts, &mut require_tls, &mut plan.diagnostics);
        plan.route_configs.insert(
            name.clone(),
            RouteConfig {
                name: name.clone(),
                router,
                require_tls,
                rejected: None,
            },
        );
        plan.listeners.push(Listener {
            name: format!("0.0.0.0_{port}"),
            address: "0.0.0.0".to_owned(),
            port,
            filter_chains: vec![FilterChain {
                name: name.clone(),
                server_names: Vec::new(),
                application_protocols: Vec::new(),
                tls: None,
                kind: FilterChainKind::Http { route_config: name },
            }],
            tls_inspector: false,
            rejected: None,
        });
    }
}

/// The virtual hosts of route configuration `<port>` before sorting and the catch-all.
fn port_virtual_hosts(
    index: &Index<'_>,
    services: &[&Service],
    mesh_vs: &[&VsEntry<'_>],
    port: u32,
    diags: &mut Vec<Diagnostic>,
) -> Vec<VirtualHost<Arc<HttpRoute>>> {
    let mesh_names = ["mesh".to_owned()];
    let ctx = RouteCtx {
        listen_port: port,
        gateway_names: &mesh_names,
    };
    // Services with the port (any protocol), and the HTTP one each declares there.
    let on_port: Vec<(&Service, &ServicePort)> = services
        .iter()
        .filter_map(|s| s.port(port).map(|p| (*s, p)))
        .collect();
    let is_http = |svc: &Service| {
        on_port
            .iter()
            .any(|(s, p)| s.hostname == svc.hostname && http_or_sniffed(&p.protocol))
    };

    let mut wrappers: Vec<Wrapper<'_>> = Vec::new();
    for (vi, vs) in mesh_vs.iter().enumerate() {
        // `selectVirtualServices`: off port 80, only VirtualServices naming a service here.
        if port != 80
            && !vs
                .hosts
                .iter()
                .any(|h| on_port.iter().any(|(s, _)| host::matches(h, &s.hostname)))
        {
            continue;
        }
        let mut problems = Vec::new();
        let routes = build_http_routes(index, &ctx, vs, &mut problems);
        report(vs, port, problems, diags);
        if routes.is_empty() {
            continue;
        }
        // `separateVSHostsAndServices`.
        let mut vs_hosts = Vec::new();
        let mut matched: Vec<&Service> = Vec::new();
        for h in vs.hosts.iter().filter(|h| !h.starts_with('*')) {
            let h = h.to_ascii_lowercase();
            match on_port.iter().find(|(s, _)| s.hostname == h) {
                Some((s, _)) => matched.push(s),
                None => vs_hosts.push(h),
            }
        }
        for h in vs.hosts.iter().filter(|h| h.starts_with('*')) {
            let h = h.to_ascii_lowercase();
            let mut found = false;
            for (s, _) in &on_port {
                if !host::matches(&s.hostname, &h) {
                    continue;
                }
                found = true;
                if most_specific_vs(mesh_vs, &s.hostname) == Some(vi)
                    && !matched.iter().any(|m| m.hostname == s.hostname)
                {
                    matched.push(s);
                }
            }
            if !found {
                vs_hosts.push(h);
            }
        }
        matched.retain(|s| is_http(s));
        if matched.is_empty() && port != 80 {
            continue;
        }
        wrappers.push(Wrapper {
            vs_hosts,
            services: matched,
            routes,
        });
    }
    // Services without a VirtualService: the default route.
    for (svc, p) in &on_port {
        if !http_or_sniffed(&p.protocol)
            || wrappers
                .iter()
                .any(|w| w.services.iter().any(|s| s.hostname == svc.hostname))
        {
            continue;
        }
        wrappers.push(Wrapper {
            vs_hosts: Vec::new(),
            services: vec![svc],
            routes: vec![default_route(index, svc, port)],
        });
    }

    let known_fqdn: HashSet<&str> = wrappers
        .iter()
        .flat_map(|w| w.services.iter().map(|s| s.hostname.as_str()))
        .collect();
    let mut names: HashSet<String> = HashSet::new();
    let mut used_domains: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for w in &wrappers {
        let candidates = w
            .vs_hosts
            .iter()
            .map(|h| (h.clone(), vec![h.clone()], Vec::new()))
            .chain(w.services.iter().map(|s| {
                let (domains, alt) =
                    service_domains(s, &index.proxy.namespace, &index.mesh.domain_suffix);
                (s.hostname.clone(), domains, alt)
            }));
        for (host, domains, alt) in candidates {
            let name = format!("{host}:{port}");
            if !names.insert(name.clone()) {
                continue;
            }
            let domains: Vec<String> = domains
                .into_iter()
                .filter(|d| {
                    !(alt.contains(d) && known_fqdn.contains(d.as_str()))
                        && used_domains.insert(d.to_ascii_lowercase())
                })
                .collect();
            if domains.is_empty() {
                continue;
            }
            out.push(VirtualHost::new(name, domains, w.routes.clone()));
        }
    }
    out
}

fn report(
    vs: &VsEntry<'_>,
    port: u32,
    problems: Vec<(String, RouteProblem)>,
    diags: &mut Vec<Diagnostic>,
) {
    for (path, p) in problems {
        let resource = format!("VirtualService {}/{}", vs.namespace, vs.name);
        let message = match p {
            RouteProblem::Reject(msg) => {
                format!("route dropped: {msg} (route configuration {port})")
            }
            RouteProblem::Invalid(err) => {
                format!("route dropped: {err} (route configuration {port})")
            }
            RouteProblem::Dropped(msg) => {
                format!("route dropped: {msg} (route configuration {port})")
            }
        };
        diags.push(Diagnostic::new(Severity::Warning, resource, path, message));
    }
}

/// `generateVirtualHostDomains` for a sidecar (ports are not appended: the route
/// configuration ignores the port in host matching). Returns the domains and, among them,
/// the alternative names (which give way to a service whose real name they are).
fn service_domains(
    svc: &Service,
    client_ns: &str,
    domain_suffix: &str,
) -> (Vec<String>, Vec<String>) {
    let h = svc.hostname.as_str();
    let mut alt = Vec::new();
    match h.parse::<std::net::IpAddr>() {
        // `IPv6Compliant`: an IPv6 host is matched in brackets.
        Ok(std::net::IpAddr::V6(_)) => return (vec![format!("[{h}]")], alt),
        Ok(std::net::IpAddr::V4(_)) => return (vec![h.to_owned()], alt),
        Err(_) => alt.push(format!("{h}.")),
    }
    let kube_suffix = format!(".svc.{domain_suffix}");
    if h.ends_with(&kube_suffix)
        && let Some(svc_at) = h.find(".svc.")
        && let Some(dot) = h.find('.')
        && dot < svc_at
        && let (Some(name), Some(ns), Some(name_ns)) =
            (h.get(..dot), h.get(dot + 1..svc_at), h.get(..svc_at))
    {
        if ns == client_ns {
            alt.extend([
                name.to_owned(),
                format!("{name_ns}.svc"),
                name_ns.to_owned(),
            ]);
        } else {
            alt.extend([name_ns.to_owned(), format!("{name_ns}.svc")]);
        }
    }
    let mut domains = vec![h.to_owned()];
    domains.extend(alt.iter().cloned());
    (domains, alt)
}

/// `buildSidecarVirtualHostForService`: the route to the service's own cluster, with the
/// consistent hash of its DestinationRule.
fn default_route(index: &Index<'_>, svc: &Service, port: u32) -> Route<Arc<HttpRoute>> {
    let cluster = format!("outbound|{port}||{}", svc.hostname);
    let dest = Destination {
        host: svc.hostname.clone(),
        subset: String::new(),
        port: Some(PortSelector { number: port }),
    };
    let hash_policy = index
        .hash_policy_for(&dest, &svc.namespace)
        .into_iter()
        .collect();
    Route::new(
        "default",
        RouteMatch::any().with_path(PathMatch::prefix("/")),
        Arc::new(HttpRoute {
            name: "default".to_owned(),
            virtual_service: None,
            origin: None,
            hash_policy,
            action: portcullis_proxy_core::action::ForwardAction::to_cluster(cluster).into(),
        }),
    )
}

/// `buildCatchAllVirtualHost` under `ALLOW_ANY`: everything else to `PassthroughCluster`,
/// without timeout or retries.
fn allow_any_virtual_host() -> VirtualHost<Arc<HttpRoute>> {
    let action = portcullis_proxy_core::action::ForwardAction::to_cluster(PASSTHROUGH_CLUSTER)
        .with_retry_policy(None);
    VirtualHost::new(
        ALLOW_ANY,
        ["*"],
        vec![Route::new(
            ALLOW_ANY,
            RouteMatch::any().with_path(PathMatch::prefix("/")),
            Arc::new(HttpRoute {
                name: ALLOW_ANY.to_owned(),
                virtual_service: None,
                origin: None,
                hash_policy: Vec::new(),
                action: action.into(),
            }),
        )],
    )
}

#[cfg(test)]
#[allow(clippy::panic, clippy::indexing_slicing, clippy::unwrap_used)]
mod tests;
