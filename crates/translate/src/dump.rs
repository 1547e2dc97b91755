//! A plan in the spirit of `istioctl proxy-config`: text tables for listeners, routes,
//! clusters and endpoints, and a JSON config dump.
//!
//! ```
//! use portcullis_translate::dump::{DumpKind, View, text};
//! use portcullis_translate::GatewayPlan;
//!
//! # fn show(plan: &GatewayPlan) {
//! let kind: DumpKind = "routes".parse().unwrap();
//! print!("{}", text(&View::of_plan(plan), kind));
//! # }
//! ```
//!
//! The text tables are for people; the JSON dump ([`json()`]) is the shape the example gateway
//! serves at `/config_dump`.

use core::fmt;
use std::fmt::Write as _;

use portcullis_route_match::RouteMatch;
use serde_json::{Value, json};

use crate::plan::{Cluster, FilterChainKind, GatewayPlan, Listener, RouteConfig, UpstreamTls};

/// What to dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpKind {
    /// Listeners and their filter chains.
    Listeners,
    /// Route configurations, virtual hosts and routes.
    Routes,
    /// Clusters and their policy.
    Clusters,
    /// Endpoints of every cluster.
    Endpoints,
}

impl std::str::FromStr for DumpKind {
    type Err = ParseDumpKindError;

    fn from_str(s: &str) -> Result<Self, ParseDumpKindError> {
        match s {
            "listeners" | "listener" => Ok(Self::Listeners),
            "routes" | "route" => Ok(Self::Routes),
            "clusters" | "cluster" => Ok(Self::Clusters),
            "endpoints" | "endpoint" => Ok(Self::Endpoints),
            other => Err(ParseDumpKindError {
                given: other.to_owned(),
            }),
        }
    }
}

/// A name that is not a [`DumpKind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDumpKindError {
    given: String,
}

impl ParseDumpKindError {
    /// The name given.
    pub fn given(&self) -> &str {
        &self.given
    }
}

impl fmt::Display for ParseDumpKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown dump {:?}: expected listeners, routes, clusters or endpoints",
            self.given
        )
    }
}

impl std::error::Error for ParseDumpKindError {}

impl From<ParseDumpKindError> for String {
    fn from(err: ParseDumpKindError) -> Self {
        err.to_string()
    }
}

/// A read-only view of a plan (offline) or of a live proxy's state, which the formatters read.
#[derive(Debug)]
pub struct View<'a> {
    listeners: Vec<&'a Listener>,
    route_configs: Vec<&'a RouteConfig>,
    clusters: Vec<(&'a Cluster, Vec<String>)>,
}

impl<'a> View<'a> {
    /// A view of listeners, route configurations and clusters with their endpoints
    /// (`ip:port`; a live proxy passes the resolved addresses).
    pub fn new(
        listeners: Vec<&'a Listener>,
        route_configs: Vec<&'a RouteConfig>,
        clusters: Vec<(&'a Cluster, Vec<String>)>,
    ) -> Self {
        Self {
            listeners,
            route_configs,
            clusters,
        }
    }

    /// The view of a plan: its endpoints as configured.
    pub fn of_plan(plan: &'a GatewayPlan) -> Self {
        Self {
            listeners: plan.listeners.iter().collect(),
            route_configs: plan.route_configs.values().collect(),
            clusters: plan
                .clusters
                .values()
                .map(|c| {
                    let eps = c
                        .endpoints
                        .iter()
                        .map(|e| format!("{}:{}", e.address, e.port))
                        .collect();
                    (c, eps)
                })
                .collect(),
        }
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}     ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn describe_match(m: &RouteMatch) -> String {
    let mut parts = Vec::new();
    match &m.path {
        Some(p) => parts.push(
            p.to_string()
                .replace("path exact ", "")
                .replace("path prefix ", "")
                .replace("path regex ", "regex ")
                + match p {
                    portcullis_route_match::PathMatch::Prefix { .. } => "*",
                    _ => "",
                },
        ),
        None => parts.push("*".to_owned()),
    }
    for h in &m.headers {
        parts.push(h.to_string());
    }
    for q in &m.query_params {
        parts.push(q.to_string());
    }
    parts.join(" ")
}

/// The text table for `kind`.
pub fn text(view: &View<'_>, kind: DumpKind) -> String {
    match kind {
        DumpKind::Listeners => {
            let mut rows = vec![vec![
                "ADDRESSES".to_owned(),
                "PORT".to_owned(),
                "MATCH".to_owned(),
                "DESTINATION".to_owned(),
            ]];
            for l in &view.listeners {
                for c in &l.filter_chains {
                    let m = if c.server_names.is_empty() {
                        if c.tls.is_some() {
                            "SNI: *".to_owned()
                        } else {
                            "ALL".to_owned()
                        }
                    } else {
                        format!("SNI: {}", c.server_names.join(","))
                    };
                    let dest = match &c.kind {
                        FilterChainKind::Http { route_config } => format!("Route: {route_config}"),
                        FilterChainKind::TcpProxy(t) => {
                            let names: Vec<_> =
                                t.destinations.iter().map(|d| d.cluster.as_str()).collect();
                            format!("Cluster: {}", names.join(","))
                        }
                    };
                    let tls = match &c.tls {
                        Some(t) => format!(" (TLS {})", t.mode.as_str()),
                        None => String::new(),
                    };
                    rows.push(vec![l.address.clone(), l.port.to_string(), m, dest + &tls]);
                }
            }
            table(&rows)
        }
        DumpKind::Routes => {
            let mut rows = vec![vec![
                "NAME".to_owned(),
                "VHOST NAME".to_owned(),
                "DOMAINS".to_owned(),
                "MATCH".to_owned(),
                "VIRTUAL SERVICE".to_owned(),
            ]];
            for rc in &view.route_configs {
                for vh in rc.virtual_hosts() {
                    for r in vh.routes() {
                        let vs = r.action.virtual_service.as_ref().map_or_else(
                            || "404".to_owned(),
                            |v| format!("{}.{}", v.name, v.namespace),
                        );
                        rows.push(vec![
                            rc.name.clone(),
                            vh.name().to_owned(),
                            vh.domains().join(","),
                            describe_match(&r.matches),
                            vs,
                        ]);
                    }
                }
            }
            table(&rows)
        }
        DumpKind::Clusters => {
            let mut rows = vec![vec![
                "SERVICE FQDN".to_owned(),
                "PORT".to_owned(),
                "SUBSET".to_owned(),
                "DIRECTION".to_owned(),
                "TYPE".to_owned(),
                "LB".to_owned(),
                "TLS".to_owned(),
            ]];
            for (c, _) in &view.clusters {
                rows.push(vec![
                    c.host.clone(),
                    c.port.to_string(),
                    if c.subset.is_empty() {
                        "-".to_owned()
                    } else {
                        c.subset.clone()
                    },
                    "outbound".to_owned(),
                    c.cluster_type.as_str().to_owned(),
                    c.policy.lb_policy.as_str().to_owned(),
                    tls_name(&c.policy.tls),
                ]);
            }
            table(&rows)
        }
        DumpKind::Endpoints => {
            let mut rows = vec![vec![
                "ENDPOINT".to_owned(),
                "STATUS".to_owned(),
                "OUTLIER CHECK".to_owned(),
                "CLUSTER".to_owned(),
            ]];
            for (c, eps) in &view.clusters {
                for e in eps {
                    rows.push(vec![
                        e.clone(),
                        "HEALTHY".to_owned(),
                        "OK".to_owned(),
                        c.name.clone(),
                    ]);
                }
            }
            table(&rows)
        }
    }
}

fn tls_name(t: &UpstreamTls) -> String {
    match t {
        UpstreamTls::Tls(c) => c.mode.as_str().to_owned(),
        UpstreamTls::AutoMtls(_) => "AUTO".to_owned(),
        UpstreamTls::Disabled => "DISABLE".to_owned(),
        _ => "-".to_owned(),
    }
}

/// The whole view as JSON (`/config_dump`), with the generation of a live proxy's
/// configuration when there is one.
pub fn json(view: &View<'_>, generation: Option<u64>) -> Value {
    let listeners: Vec<Value> = view
        .listeners
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "address": l.address,
                "port": l.port,
                "filter_chains": l.filter_chains.iter().map(|c| json!({
                    "name": c.name,
                    "server_names": c.server_names,
                    "tls": c.tls.as_ref().map(|t| json!({
                        "mode": t.mode.as_str(),
                        "sni_hosts": t.sni_hosts,
                        "credential_names": t.credential_names,
                    })),
                    "destination": match &c.kind {
                        FilterChainKind::Http { route_config } => json!({"route_config": route_config}),
                        FilterChainKind::TcpProxy(t) => json!({"tcp_proxy": t.destinations.iter().map(|d| json!({"cluster": d.cluster, "weight": d.weight})).collect::<Vec<_>>()}),
                    },
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let routes: Vec<Value> = view
        .route_configs
        .iter()
        .map(|rc| {
            json!({
                "name": rc.name,
                "virtual_hosts": rc.virtual_hosts().iter().map(|vh| json!({
                    "name": vh.name(),
                    "domains": vh.domains(),
                    "routes": vh.routes().iter().map(|r| json!({
                        "name": r.name,
                        "match": describe_match(&r.matches),
                        "virtual_service": r.action.virtual_service.as_ref().map(|v| format!("{}/{}", v.namespace, v.name)),
                        "action": format!("{:?}", r.action.action),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let clusters: Vec<Value> = view
        .clusters
        .iter()
        .map(|(c, eps)| {
            json!({
                "name": c.name,
                "type": c.cluster_type.as_str(),
                "lb_policy": c.policy.lb_policy.as_str(),
                "connect_timeout_ms": c.policy.connect_timeout.as_millis() as u64,
                "tls": tls_name(&c.policy.tls),
                "endpoints": eps,
            })
        })
        .collect();
    json!({
        "generation": generation,
        "listeners": listeners,
        "route_configs": routes,
        "clusters": clusters,
    })
}
