//! HTTP route configurations (`buildGatewayHTTPRouteConfig`) and their routers.

use std::sync::Arc;

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use foldhash::fast::FixedState;

use portcullis_model::host::{intersection, names_for_namespace};
use portcullis_route_match::{CompiledVirtualHost, Options, Route, Router, VirtualHost};

use crate::cache::{Parts, RouteMemo, Routes, Translated, VhostName, same_lists};
use crate::diag::{Diagnostic, Severity};
use crate::index::Index;
use crate::plan::{HttpRoute, RouteConfig};
use crate::routes::{RouteCtx, RouteProblem, build_http_routes, is_catch_all};
use crate::servers::MergedServer;

// HTTP route configurations

/// One virtual host being assembled, found by its lower-cased host while routes are added.
///
/// Its routes are the VirtualServices' routes as translated (and kept by the
/// [`RouteMemo`]), shared rather than copied: they are put together in one list only when the
/// virtual host is compiled, and a virtual host made of the same shared lists as in the last
/// translation is not.
struct VhostBuild {
    /// Its host, lower-cased.
    host: Arc<str>,
    port: u32,
    parts: Parts,
    /// The sum of the parts' fingerprints.
    fingerprint: u64,
    require_tls: bool,
}

impl VhostBuild {
    fn new(host: Arc<str>, port: u32, require_tls: bool) -> Self {
        Self {
            host,
            port,
            parts: Parts::new(),
            fingerprint: 0,
            require_tls,
        }
    }

    fn route_count(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// The routes in priority order.
    fn routes(&self) -> impl Iterator<Item = &Route<Arc<HttpRoute>>> {
        in_priority_order(&self.parts)
    }

    /// Whether `self` and `other` have equal routes, in priority order.
    fn same_routes(&self, other: &Self) -> bool {
        same_lists(&self.parts, &other.parts)
            || (self.route_count() == other.route_count() && self.routes().eq(other.routes()))
    }

    /// A hash of what makes two virtual hosts collapsible. Equal virtual hosts hash equally:
    /// every field hashed is one that equality compares, and the routes count by the sum of
    /// their fingerprints, the same in any order. Routes from different rules make different
    /// sums, so the equality that decides runs, in practice, only between virtual hosts that
    /// one rule's hosts made alike.
    fn fingerprint(&self) -> u64 {
        FixedState::default().hash_one((
            self.port,
            self.require_tls,
            self.route_count(),
            self.fingerprint,
        ))
    }
}

/// The routes of `parts` in priority order (§d.2 SortVHostRoutes: catch-alls last, stable).
fn in_priority_order(parts: &[Routes]) -> impl Iterator<Item = &Route<Arc<HttpRoute>>> {
    let all = || parts.iter().flat_map(|p| p.iter());
    all()
        .filter(|r| !is_catch_all(&r.matches))
        .chain(all().filter(|r| is_catch_all(&r.matches)))
}

/// `buildGatewayHTTPRouteConfig` for one route configuration name.
pub(crate) fn build_route_config(
    index: &Index<'_>,
    name: &str,
    servers: &[&MergedServer<'_>],
    diags: &mut Vec<Diagnostic>,
    memo: &mut RouteMemo,
) -> RouteConfig {
    // Most VirtualServices make one virtual host: sized once, since ten thousand of them
    // would otherwise be copied as the lists grow. Servers of one gateway share a route
    // configuration (one per host, at most): the hint counts each VirtualService once.
    let expected: usize = servers
        .iter()
        .filter_map(|ms| index.vs_by_gateway.get(&ms.gateway_name))
        .map(Vec::len)
        .fold(0, usize::saturating_add)
        .min(index.vs.len());
    let mut vhosts: Vec<VhostBuild> = Vec::with_capacity(expected);
    let mut by_name: HashMap<Arc<str>, usize, FixedState> =
        HashMap::with_capacity_and_hasher(expected, FixedState::default());
    let mut rejected: Option<String> = None;
    for ms in servers {
        let redirect = ms.server.tls.as_ref().is_some_and(|t| t.https_redirect);
        let gateway_names = [ms.gateway_name.clone()];
        let ctx = RouteCtx {
            listen_port: ms.server_port,
            gateway_names: &gateway_names,
        };
        let mut place = memo.place(ms.server_port, &ms.gateway_name, &ms.hosts);
        // The server's hosts as a namespace sees them, for the VirtualServices whose routes
        // are made again (or that serve none of the server's hosts): made again only when the
        // namespace changes from one of those to the next (bound VirtualServices are mostly
        // in a few namespaces).
        let mut server_hosts: Option<(&str, Vec<String>)> = None;
        if let Some(list) = index.vs_by_gateway.get(&ms.gateway_name) {
            for vs in list.iter().filter_map(|i| index.vs.get(*i)) {
                let Some(bound) = place.routes(vs.edition, || {
                    let server_hosts = match &mut server_hosts {
                        Some((namespace, hosts)) if *namespace == vs.namespace => &*hosts,
                        slot => {
                            let hosts = names_for_namespace(&ms.hosts, vs.namespace);
                            &slot.insert((vs.namespace, hosts)).1
                        }
                    };
                    let hosts = intersection(server_hosts, &vs.hosts);
                    if hosts.is_empty() {
                        return None;
                    }
                    let mut problems = Vec::new();
                    let routes = build_http_routes(index, &ctx, vs, &mut problems);
                    Some(Translated::new(hosts, routes, problems))
                }) else {
                    continue;
                };
                for (path, p) in &bound.problems {
                    let resource = format!("VirtualService {}/{}", vs.namespace, vs.name);
                    let path = path.clone();
                    match p {
                        RouteProblem::Reject(msg) => {
                            diags.push(Diagnostic::new(
                                Severity::Error,
                                resource,
                                path,
                                format!("{msg} (route configuration {name})"),
                            ));
                            rejected.get_or_insert_with(|| msg.clone());
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
                if bound.routes.is_empty() {
                    continue;
                }
                for host in &bound.hosts {
                    let idx = match by_name.get(host) {
                        Some(idx) => *idx,
                        None => {
                            vhosts.push(VhostBuild::new(host.clone(), ms.server_port, false));
                            by_name.insert(host.clone(), vhosts.len() - 1);
                            vhosts.len() - 1
                        }
                    };
                    if let Some(v) = vhosts.get_mut(idx) {
                        v.parts.push(bound.routes.clone());
                        v.fingerprint = v.fingerprint.wrapping_add(bound.fingerprint);
                        v.require_tls |= redirect;
                    }
                }
            }
        }
        if redirect {
            for h in &ms.hosts {
                let host: Arc<str> = Arc::from(h.to_ascii_lowercase());
                match by_name.get(&host) {
                    Some(i) => {
                        if let Some(v) = vhosts.get_mut(*i) {
                            v.require_tls = true;
                        }
                    }
                    None => {
                        by_name.insert(host.clone(), vhosts.len());
                        vhosts.push(VhostBuild::new(host, ms.server_port, true));
                    }
                }
            }
        }
    }
    // collapseDuplicateRoutes: virtual hosts with equal routes become one with all their
    // domains. A hash of the routes picks the candidates; equality decides. `latest` holds
    // the last group of each hash, and `earlier` each group's previous one of the same hash.
    let mut groups: Vec<(Vec<Arc<str>>, VhostBuild)> = Vec::with_capacity(vhosts.len());
    let mut earlier: Vec<Option<usize>> = Vec::with_capacity(vhosts.len());
    let mut latest: HashMap<u64, usize, FixedState> =
        HashMap::with_capacity_and_hasher(vhosts.len(), FixedState::default());
    for v in vhosts {
        let host = v.host.clone();
        let fingerprint = v.fingerprint();
        let mut candidate = latest.get(&fingerprint).copied();
        let found = loop {
            let Some(i) = candidate else { break None };
            if groups.get(i).is_some_and(|(_, g)| {
                g.require_tls == v.require_tls && g.port == v.port && g.same_routes(&v)
            }) {
                break Some(i);
            }
            candidate = earlier.get(i).copied().flatten();
        };
        match found.and_then(|i| groups.get_mut(i)) {
            Some((domains, _)) => domains.push(host),
            None => {
                earlier.push(latest.insert(fingerprint, groups.len()));
                groups.push((vec![host], v));
            }
        }
    }
    let default_port = servers.first().map_or(0, |s| s.server_port);
    let mut require_tls = Vec::with_capacity(groups.len().max(1));
    let mut table = Vec::with_capacity(groups.len().max(1));
    let mut compiled = memo.virtual_hosts(name);
    if groups.is_empty() {
        let blackhole = VirtualHost::new(format!("blackhole:{default_port}"), ["*"], Vec::new());
        if let Some(c) = compile_virtual_host(name, blackhole, diags) {
            table.push(Arc::new(c));
            require_tls.push(false);
        }
    }
    // A virtual host is named `host:port`; the `:port` is formatted once per port, as
    // formatting it for each of ten thousand virtual hosts was a twelfth of a change.
    let mut port_suffix: Option<(u32, String)> = None;
    for (mut domains, v) in groups {
        domains.sort();
        let suffix = match &mut port_suffix {
            Some((port, suffix)) if *port == v.port => &*suffix,
            slot => &slot.insert((v.port, format!(":{}", v.port))).1,
        };
        let vhost_name = VhostName {
            host: domains.first().map_or("", |d| &**d),
            port: suffix,
        };
        let vhost = compiled.get_or_compile(
            vhost_name,
            &domains,
            v.parts,
            diags,
            |vhost_name, domains, parts, diags| {
                let routes = in_priority_order(parts).cloned().collect();
                let vhost = VirtualHost::new(vhost_name, domains, routes);
                compile_virtual_host(name, vhost, diags)
            },
        );
        if let Some(vhost) = vhost {
            table.push(vhost);
            require_tls.push(v.require_tls);
        }
    }
    let router = assemble_router(name, table, &mut require_tls, diags);
    RouteConfig {
        name: name.to_owned(),
        router,
        require_tls,
        rejected,
    }
}

/// Compiles a route table, dropping (with a diagnostic) each route or virtual host the matcher
/// rejects, so one invalid route never poisons the rest.
pub(crate) fn build_router(
    name: &str,
    vhosts: Vec<VirtualHost<Arc<HttpRoute>>>,
    require_tls: &mut Vec<bool>,
    diags: &mut Vec<Diagnostic>,
) -> Router<Arc<HttpRoute>> {
    let mut compiled = Vec::with_capacity(vhosts.len());
    let mut kept_tls = Vec::with_capacity(vhosts.len());
    for (i, vh) in vhosts.into_iter().enumerate() {
        if let Some(c) = compile_virtual_host(name, vh, diags) {
            compiled.push(Arc::new(c));
            kept_tls.push(require_tls.get(i).copied().unwrap_or(false));
        }
    }
    *require_tls = kept_tls;
    assemble_router(name, compiled, require_tls, diags)
}

/// Compiles one virtual host of route configuration `name`, dropping (with a diagnostic) each
/// route the matcher rejects; `None`, with a diagnostic, if the virtual host itself is
/// rejected (an invalid domain).
pub(crate) fn compile_virtual_host(
    name: &str,
    vh: VirtualHost<Arc<HttpRoute>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CompiledVirtualHost<Arc<HttpRoute>>> {
    let vhost_name = vh.name.clone();
    match CompiledVirtualHost::skipping_invalid_routes(vh, &Options::default()) {
        Ok((compiled, skipped)) => {
            for (r, e) in skipped {
                diags.push(Diagnostic::new(
                    Severity::Warning,
                    format!("route configuration {name}"),
                    format!("{vhost_name}/{}", r.name),
                    format!("route dropped: {e}"),
                ));
            }
            Some(compiled)
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                Severity::Warning,
                format!("route configuration {name}"),
                vhost_name,
                format!("virtual host dropped: {e}"),
            ));
            None
        }
    }
}

/// The router over compiled virtual hosts, dropping (with a diagnostic) each one serving a
/// domain an earlier one serves.
pub(crate) fn assemble_router(
    name: &str,
    mut vhosts: Vec<Arc<CompiledVirtualHost<Arc<HttpRoute>>>>,
    require_tls: &mut Vec<bool>,
    diags: &mut Vec<Diagnostic>,
) -> Router<Arc<HttpRoute>> {
    loop {
        match Router::from_compiled(vhosts.iter().cloned()) {
            Ok(router) => return router,
            Err(e) => {
                let vi = e.virtual_host();
                if vi >= vhosts.len() {
                    // Not a virtual host of this list: nothing to drop, so nothing is served.
                    require_tls.clear();
                    diags.push(Diagnostic::new(
                        Severity::Error,
                        format!("route configuration {name}"),
                        "",
                        format!("route configuration emptied: {e}"),
                    ));
                    return Router::empty();
                }
                let v = vhosts.remove(vi);
                if vi < require_tls.len() {
                    require_tls.remove(vi);
                }
                diags.push(Diagnostic::new(
                    Severity::Warning,
                    format!("route configuration {name}"),
                    v.name(),
                    format!("virtual host dropped: {e}"),
                ));
            }
        }
    }
}
