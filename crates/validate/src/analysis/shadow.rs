//! `portcullis.ShadowedRouteAnalyzer`: routes that can never match because an earlier route of
//! the same route table matches every request they could match.
//!
//! Two passes:
//! * within one VirtualService (sidecars and gateways alike): its HTTP routes in order, after
//!   Istio's own truncation at the first catch-all; `port` and `gateways` of a match are
//!   conditions. Findings IST0130/IST0131 already make are not repeated (PCS0002).
//! * at a gateway: for each Gateway server that routes HTTP and each host, the routes of every
//!   VirtualService bound there, merged in VirtualService order with catch-alls moved last
//!   (ROUTING.md §b.6, §d.1, §d.2); a route shadowed by a route of another VirtualService is
//!   reported (PCS0001). Match blocks for another port or gateway are dropped as Istio drops
//!   them.
//!
//! "Covers" is decided conservatively: an earlier match covers a later one only when each of its
//! conditions is implied by a condition of the later one (prefix of a prefix or exact path,
//! equal exact values, equal regexes, header presence). Anything this cannot decide
//! (`sourceLabels`, `sourceNamespace`, delegates, different regexes) never causes a report, and
//! neither does a shadowing route of the same namespace that does exactly what the shadowed
//! one would (the same rule but for `name` and `match`): that shadowing is harmless.

use std::collections::BTreeMap;

use portcullis_model::gateway::ServerTlsMode;
use portcullis_model::host;
use portcullis_model::virtual_service::HttpMatchRequest;
use portcullis_model::{StringMatch, VirtualService};

use super::labels::exports_to_all;
use super::messages::{MessageType, SHADOWED_ROUTE, SHADOWED_ROUTE_IN_VIRTUAL_SERVICE};
use super::store::{Ctx, Item, source_ref};
use super::virtual_service::{MESH, server_host_for};
use crate::virtual_service::reachability;

/// One route of a route table.
#[derive(Clone)]
struct Route<'a> {
    vs: Item<'a, VirtualService>,
    /// Index of the VirtualService in the configuration (identity).
    vs_index: usize,
    rule: usize,
    /// The match block, or `None` for a rule without `match`.
    match_index: Option<usize>,
    cond: Option<&'a HttpMatchRequest>,
    /// Whether the route's conditions are all understood (it may shadow and be shadowed).
    decidable: bool,
}

impl Route<'_> {
    fn path(&self) -> String {
        match self.match_index {
            Some(m) => format!("spec.http[{}].match[{m}]", self.rule),
            None => format!("spec.http[{}]", self.rule),
        }
    }

    fn describe(&self) -> String {
        let rule = self
            .vs
            .spec
            .http
            .get(self.rule)
            .map_or("", |r| r.name.as_str());
        let rule = if rule.is_empty() {
            format!("rule #{}", self.rule)
        } else {
            format!("rule {rule:?}")
        };
        let m = self.match_index.map_or_else(
            || " (no match: every request)".to_owned(),
            |m| format!(" match #{m}"),
        );
        format!("VirtualService {} http {rule}{m}", self.vs.full_name())
    }

    fn is_catch_all(&self) -> bool {
        self.cond.is_none_or(|m| {
            uri_matches_all(m.uri.as_ref())
                && m.headers.is_empty()
                && m.query_params.is_empty()
                && m.without_headers.is_empty()
                && m.method.is_none()
                && m.authority.is_none()
                && m.scheme.is_none()
        })
    }
}

fn uri_matches_all(uri: Option<&StringMatch>) -> bool {
    match uri {
        None | Some(StringMatch::Unset) => true,
        Some(StringMatch::Prefix(p)) => p == "/",
        Some(StringMatch::Regex(r)) => r == ".*",
        Some(_) => false,
    }
}

/// Whether the URI condition `a` holds for every request `b` matches.
fn uri_covers(a: Option<&StringMatch>, a_ic: bool, b: Option<&StringMatch>, b_ic: bool) -> bool {
    if uri_matches_all(a) {
        return true;
    }
    let b = match b {
        None | Some(StringMatch::Unset) => return false,
        Some(b) => b,
    };
    match (a, b) {
        (Some(StringMatch::Exact(x)), StringMatch::Exact(y)) => {
            if a_ic {
                x.eq_ignore_ascii_case(y)
            } else {
                x == y && !b_ic
            }
        }
        (Some(StringMatch::Prefix(p)), StringMatch::Exact(t) | StringMatch::Prefix(t)) => {
            if a_ic {
                t.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase())
            } else {
                t.starts_with(p.as_str()) && !b_ic
            }
        }
        (Some(StringMatch::Regex(r)), StringMatch::Regex(s)) => r == s,
        _ => false,
    }
}

/// Whether a header-like condition `a` holds for every value `b` accepts (both require the
/// header to be present).
fn value_covers(a: &StringMatch, b: &StringMatch) -> bool {
    match (a, b) {
        (StringMatch::Unset, _) => true,
        (StringMatch::Regex(r), _) if r == ".*" => true,
        (StringMatch::Exact(x), StringMatch::Exact(y)) => x == y,
        (StringMatch::Prefix(p), StringMatch::Exact(t) | StringMatch::Prefix(t)) => {
            t.starts_with(p.as_str())
        }
        (StringMatch::Regex(r), StringMatch::Regex(s)) => r == s,
        _ => false,
    }
}

fn optional_covers(a: Option<&StringMatch>, b: Option<&StringMatch>) -> bool {
    match (a, b) {
        (None | Some(StringMatch::Unset), _) => true,
        (Some(_), None | Some(StringMatch::Unset)) => false,
        (Some(a), Some(b)) => value_covers(a, b),
    }
}

fn map_covers(a: &BTreeMap<String, StringMatch>, b: &BTreeMap<String, StringMatch>) -> bool {
    a.iter()
        .all(|(k, av)| b.get(k).is_some_and(|bv| value_covers(av, bv)))
}

/// Whether every request the later match `b` accepts is accepted by the earlier match `a`.
/// `port` and `gateways` are compared only when `with_config_conditions` (outside a fixed
/// gateway server, where they were already applied).
fn covers(
    a: Option<&HttpMatchRequest>,
    b: Option<&HttpMatchRequest>,
    with_config_conditions: bool,
) -> bool {
    let Some(a) = a else { return true };
    let empty = HttpMatchRequest::default();
    let b = b.unwrap_or(&empty);
    if with_config_conditions {
        if a.port != 0 && a.port != b.port {
            return false;
        }
        if !a.gateways.is_empty()
            && (b.gateways.is_empty() || !b.gateways.iter().all(|g| a.gateways.contains(g)))
        {
            return false;
        }
    }
    uri_covers(
        a.uri.as_ref(),
        a.ignore_uri_case,
        b.uri.as_ref(),
        b.ignore_uri_case,
    ) && optional_covers(a.method.as_ref(), b.method.as_ref())
        && optional_covers(a.authority.as_ref(), b.authority.as_ref())
        && optional_covers(a.scheme.as_ref(), b.scheme.as_ref())
        && map_covers(&a.headers, &b.headers)
        && map_covers(&a.query_params, &b.query_params)
        && a.without_headers
            .iter()
            .all(|(k, v)| b.without_headers.get(k) == Some(v))
}

/// `ns/name` of a gateway reference in a VirtualService of `namespace` (`mesh` stays `mesh`).
fn resolve_gateway(namespace: &str, reference: &str) -> String {
    if reference == MESH {
        return MESH.to_owned();
    }
    match reference.split_once('/') {
        Some((".", name)) => format!("{namespace}/{name}"),
        Some(_) => reference.to_owned(),
        None => match reference.split_once('.') {
            Some((name, rest)) => {
                let ns = rest.split('.').next().unwrap_or(namespace);
                format!("{ns}/{name}")
            }
            None => format!("{namespace}/{reference}"),
        },
    }
}

/// The HTTP routes a VirtualService contributes: at a gateway server (`Some((gateway, port))`)
/// blocks for other ports or gateways are dropped; everywhere, routes after the first
/// catch-all are discarded.
fn translate<'a>(
    vs: Item<'a, VirtualService>,
    vs_index: usize,
    at: Option<(&str, u32)>,
) -> Vec<Route<'a>> {
    let mut out = Vec::new();
    for (rule, http) in vs.spec.http.iter().enumerate() {
        let delegated = http.delegate.is_some();
        if http.r#match.is_empty() {
            out.push(Route {
                vs,
                vs_index,
                rule,
                match_index: None,
                cond: None,
                decidable: !delegated,
            });
            if !delegated {
                return out;
            }
            continue;
        }
        for (m, block) in http.r#match.iter().enumerate() {
            let gateways: Vec<String> = block
                .gateways
                .iter()
                .map(|g| resolve_gateway(vs.ns(), g))
                .collect();
            if let Some((gateway, port)) = at {
                if block.port != 0 && block.port != port {
                    continue;
                }
                if !gateways.is_empty() && !gateways.iter().any(|g| g == gateway) {
                    continue;
                }
            }
            let source_dependent = block.gateways.is_empty()
                && (!block.source_labels.is_empty() || !block.source_namespace.is_empty());
            let route = Route {
                vs,
                vs_index,
                rule,
                match_index: Some(m),
                cond: Some(block),
                decidable: !delegated && !source_dependent,
            };
            let stop = route.decidable && route.is_catch_all();
            out.push(route);
            if stop {
                return out;
            }
        }
    }
    out
}

/// A finding: the shadowed route, the route shadowing it, and where.
struct Shadow<'a> {
    shadowed: Route<'a>,
    by: Route<'a>,
    contexts: Vec<String>,
}

fn find_shadows<'a>(
    table: &[Route<'a>],
    with_config_conditions: bool,
    cross_only: bool,
    mut report: impl FnMut(&Route<'a>, &Route<'a>),
) {
    for (j, later) in table.iter().enumerate() {
        if !later.decidable {
            continue;
        }
        let earlier = table.iter().take(j).find(|e| {
            e.decidable
                && (!cross_only || e.vs_index != later.vs_index)
                && covers(e.cond, later.cond, with_config_conditions)
        });
        if let Some(earlier) = earlier
            && !same_action(earlier, later)
        {
            report(later, earlier);
        }
    }
}

/// Whether a server routes HTTP (plain HTTP-family, or HTTPS terminating TLS).
fn routes_http(protocol: &str, tls_mode: Option<ServerTlsMode>) -> bool {
    match protocol.to_ascii_uppercase().as_str() {
        "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" => true,
        "HTTPS" => matches!(
            tls_mode,
            Some(
                ServerTlsMode::Simple
                    | ServerTlsMode::Mutual
                    | ServerTlsMode::OptionalMutual
                    | ServerTlsMode::IstioMutual
            )
        ),
        _ => false,
    }
}

/// `portcullis.ShadowedRouteAnalyzer`.
pub(crate) fn shadowed_routes(ctx: &mut Ctx<'_>) {
    let vss = ctx.virtual_services.clone();

    // Pass 1: within one VirtualService.
    let mut within: Vec<Shadow<'_>> = Vec::new();
    for (index, vs) in vss.iter().enumerate() {
        let known = reachability(vs.spec);
        let table = translate(*vs, index, None);
        find_shadows(&table, true, false, |later, earlier| {
            let already = known.iter().any(|f| {
                f.protocol == "http"
                    && f.rule == later.rule
                    && (f.match_index.is_none() || f.match_index == later.match_index)
            });
            if !already {
                within.push(Shadow {
                    shadowed: later.clone(),
                    by: earlier.clone(),
                    contexts: Vec::new(),
                });
            }
        });
    }

    // Pass 2: across VirtualServices merged at a gateway host.
    let mut order: Vec<usize> = (0..vss.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            vss.get(i).map(|vs| {
                (
                    vs.meta.creation_timestamp.clone().unwrap_or_default(),
                    vs.name(),
                    vs.ns(),
                )
            })
        };
        key(a).cmp(&key(b))
    });
    let mut across: Vec<Shadow<'_>> = Vec::new();
    for gw in ctx.gateways.clone() {
        let gateway = format!("{}/{}", gw.ns(), gw.name());
        let bound: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| {
                vss.get(i).is_some_and(|vs| {
                    exports_to_all(&vs.spec.export_to)
                        && vs
                            .spec
                            .gateways
                            .iter()
                            .any(|g| resolve_gateway(vs.ns(), g) == gateway)
                })
            })
            .collect();
        if bound.len() < 2 {
            continue;
        }
        for server in &gw.spec.servers {
            let Some(port) = &server.port else { continue };
            let mode = server.tls.as_ref().and_then(|t| t.mode);
            if !routes_http(&port.protocol, mode) {
                continue;
            }
            let mut tables: BTreeMap<String, Vec<Route<'_>>> = BTreeMap::new();
            for &i in &bound {
                let Some(vs) = vss.get(i).copied() else {
                    continue;
                };
                let hosts_here: Vec<String> = server
                    .hosts
                    .iter()
                    .filter_map(|h| server_host_for(gw.ns(), vs.ns(), h))
                    .collect();
                let vs_hosts: Vec<String> = vs
                    .spec
                    .hosts
                    .iter()
                    .map(|h| host::convert_host_to_fqdn(vs.ns(), h))
                    .collect();
                let mut domains: Vec<String> = Vec::new();
                for s in &hosts_here {
                    for v in &vs_hosts {
                        let domain = if host::subset_of(s, v) {
                            s.clone()
                        } else if host::subset_of(v, s) {
                            v.clone()
                        } else {
                            continue;
                        };
                        let domain = domain.to_ascii_lowercase();
                        if !domains.contains(&domain) {
                            domains.push(domain);
                        }
                    }
                }
                if domains.is_empty() {
                    continue;
                }
                let routes = translate(vs, i, Some((&gateway, port.number)));
                for domain in domains {
                    tables
                        .entry(domain)
                        .or_default()
                        .extend(routes.iter().cloned());
                }
            }
            for (domain, table) in tables {
                // SortVHostRoutes: catch-all routes last, both groups keeping their order.
                let (mut sorted, catch_alls): (Vec<_>, Vec<_>) =
                    table.into_iter().partition(|r| !r.is_catch_all());
                sorted.extend(catch_alls);
                let context = format!("host {domain} on Gateway {gateway} port {}", port.number);
                find_shadows(&sorted, false, true, |later, earlier| {
                    let existing = across
                        .iter_mut()
                        .find(|s| same_route(&s.shadowed, later) && same_route(&s.by, earlier));
                    match existing {
                        Some(s) => {
                            if !s.contexts.contains(&context) {
                                s.contexts.push(context.clone());
                            }
                        }
                        None => across.push(Shadow {
                            shadowed: later.clone(),
                            by: earlier.clone(),
                            contexts: vec![context.clone()],
                        }),
                    }
                });
            }
        }
    }

    for s in within {
        report_shadow(
            ctx,
            SHADOWED_ROUTE_IN_VIRTUAL_SERVICE,
            &s,
            "any request".to_owned(),
        );
    }
    for s in across {
        let context = format!("for {}", s.contexts.join("; "));
        report_shadow(ctx, SHADOWED_ROUTE, &s, context);
    }
}

/// Reports a shadowed route with `ty`: the shadowed route, `requests` (which requests the
/// earlier route takes), the shadowing route, both as related places.
fn report_shadow<'a>(ctx: &mut Ctx<'a>, ty: MessageType, s: &Shadow<'a>, requests: String) {
    let (a, b) = (&s.shadowed, &s.by);
    let related = vec![
        source_ref(a.vs.doc, &a.path(), a.describe()),
        source_ref(b.vs.doc, &b.path(), b.describe()),
    ];
    let shown_b = related.get(1).map(ToString::to_string).unwrap_or_default();
    let shown_a = related.first().map(ToString::to_string).unwrap_or_default();
    ctx.report_related(
        ty,
        &a.vs.at(&a.path()),
        &[shown_a.into(), requests.into(), shown_b.into()],
        related,
    );
}

/// Whether two routes do exactly the same thing (their rules equal but for `name` and
/// `match`, and short destination names resolved in the same namespace): then the shadowing is
/// harmless and not reported.
fn same_action(a: &Route<'_>, b: &Route<'_>) -> bool {
    let strip = |r: &Route<'_>| {
        r.vs.spec.http.get(r.rule).map(|rule| {
            let mut rule = rule.clone();
            rule.name = String::new();
            rule.r#match = Vec::new();
            rule
        })
    };
    a.vs.ns() == b.vs.ns() && strip(a) == strip(b)
}

fn same_route(a: &Route<'_>, b: &Route<'_>) -> bool {
    a.vs_index == b.vs_index && a.rule == b.rule && a.match_index == b.match_index
}
