//! Simulation: what the proxy configured by a [`GatewayPlan`] does with one request, step by
//! step (listener → filter chain → route configuration → virtual host → route → action), in the
//! spirit of Istio's own `pilot/pkg/simulation`.

use std::time::Duration;

use portcullis_route_match::{NotFound, RequestHead};

use crate::plan::{
    CorsPolicy, Fault, FilterChain, FilterChainKind, GatewayPlan, HttpRoute, OriginMatch,
    PathRewrite, RedirectPath, RouteAction, WeightedCluster,
};

/// How the client talks to the proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Plaintext HTTP/1.1.
    #[default]
    Http,
    /// HTTP over TLS (terminated by the proxy).
    Https,
    /// A raw TLS connection (ClientHello with SNI); not decrypted by the client model.
    Tls,
    /// Plain TCP.
    Tcp,
}

impl Protocol {
    fn is_tls(self) -> bool {
        matches!(self, Self::Https | Self::Tls)
    }
}

/// One request (or connection) to simulate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Transport and application protocol.
    pub protocol: Protocol,
    /// The port the client connects to (the listener port).
    pub port: u32,
    /// The destination address, if it matters (bind addresses).
    pub destination_ip: Option<String>,
    /// TLS SNI; `None` = not sent.
    pub sni: Option<String>,
    /// TLS ALPN offered.
    pub alpn: Vec<String>,
    /// `Host`/`:authority` as sent.
    pub authority: String,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Raw query, without `?`.
    pub query: Option<String>,
    /// Other headers (names any case; repeated names are repeated headers).
    pub headers: Vec<(String, String)>,
    /// What the upstream answers with (to compute response header operations).
    pub upstream_response_headers: Vec<(String, String)>,
    /// The random value used for weighted cluster selection.
    pub random: u64,
}

impl Request {
    /// A plaintext HTTP `GET` request.
    pub fn http(port: u32, authority: &str, path: &str) -> Self {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path.to_owned(), None),
        };
        Self {
            protocol: Protocol::Http,
            port,
            authority: authority.to_owned(),
            method: "GET".to_owned(),
            path,
            query,
            ..Self::default()
        }
    }

    /// The same request over TLS with SNI = the authority's host.
    #[must_use]
    pub fn over_tls(mut self) -> Self {
        self.protocol = Protocol::Https;
        let host = self
            .authority
            .rsplit_once(':')
            .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            .map_or(self.authority.as_str(), |(h, _)| h);
        self.sni = Some(host.to_owned());
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn raw_path(&self) -> String {
        let path = normalize_path(&self.path);
        match &self.query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        }
    }
}

/// Envoy's `normalize_path`: dot segments removed (RFC 3986 §5.2.4).
fn normalize_path(path: &str) -> String {
    if !path.contains("/.") {
        return path.to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

/// Why a request got a 404.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotFoundReason {
    /// No virtual host serves the host.
    NoVirtualHost,
    /// The virtual host has no matching route.
    NoRoute,
}

/// The request as sent upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// `:authority`.
    pub authority: String,
    /// `:path` including the query.
    pub path: String,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
}

/// A forwarded HTTP request.
#[derive(Clone, Debug, PartialEq)]
pub struct Forwarded {
    /// The cluster picked.
    pub cluster: String,
    /// Whether the plan defines that cluster (Envoy answers 503 when it does not).
    pub cluster_defined: bool,
    /// The weighted clusters, when the route splits traffic.
    pub weighted_clusters: Vec<WeightedCluster>,
    /// The upstream request.
    pub upstream: UpstreamRequest,
    /// The response headers the client gets (upstream response after header operations).
    pub response_headers: Vec<(String, String)>,
    /// CORS headers added to the response, when the request is a CORS request with an allowed
    /// origin.
    pub cors_response_headers: Option<Vec<(String, String)>>,
    /// Injected delay, when it always fires.
    pub delay: Option<Duration>,
}

/// What happens to the request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// Connection refused: no listener on the port.
    NoListener,
    /// Connection closed: no filter chain matches.
    NoFilterChain,
    /// Envoy rejected the listener or route configuration.
    ConfigRejected(String),
    /// The bytes reach a filter expecting another protocol.
    ProtocolError,
    /// 404.
    NotFound(NotFoundReason),
    /// A redirect.
    Redirect {
        /// Status code.
        status: u16,
        /// `Location`.
        location: String,
        /// Produced by `require_tls` (Gateway `httpsRedirect`).
        require_tls: bool,
        /// Response headers.
        response_headers: Vec<(String, String)>,
    },
    /// A fixed response.
    DirectResponse {
        /// Status.
        status: u16,
        /// Body.
        body: Option<String>,
        /// Response headers.
        response_headers: Vec<(String, String)>,
    },
    /// An injected abort.
    FaultAbort {
        /// HTTP status.
        status: Option<u32>,
        /// gRPC status.
        grpc_status: Option<u32>,
    },
    /// A CORS preflight answered locally.
    CorsPreflight {
        /// Status (200).
        status: u16,
        /// Response headers.
        response_headers: Vec<(String, String)>,
    },
    /// Forwarded upstream.
    Forward(Box<Forwarded>),
    /// Proxied as TCP.
    TcpProxy {
        /// The cluster picked.
        cluster: String,
        /// Whether the plan defines it.
        cluster_defined: bool,
        /// All weighted clusters when several.
        weighted_clusters: Vec<WeightedCluster>,
        /// Whether TLS was terminated first.
        tls_terminated: bool,
    },
    /// A fault that fires with some probability; otherwise the other outcome.
    Probabilistic {
        /// The fault.
        fault: Fault,
        /// What happens when it does not fire.
        otherwise: Box<Self>,
    },
}

/// The whole decision chain for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision<'p> {
    /// The listener name.
    pub listener: Option<String>,
    /// The filter chain name.
    pub filter_chain: Option<String>,
    /// The route configuration name.
    pub route_config: Option<String>,
    /// The virtual host name.
    pub virtual_host: Option<String>,
    /// The route chosen.
    pub route: Option<&'p HttpRoute>,
    /// The outcome.
    pub outcome: Outcome,
}

/// Simulates requests against a plan.
#[derive(Debug)]
pub struct Simulation<'p> {
    plan: &'p GatewayPlan,
}

impl<'p> Simulation<'p> {
    /// A simulation of `plan`.
    pub fn new(plan: &'p GatewayPlan) -> Self {
        Self { plan }
    }

    /// Runs one request through the plan.
    pub fn decide(&self, req: &Request) -> Decision<'p> {
        let mut d = Decision {
            listener: None,
            filter_chain: None,
            route_config: None,
            virtual_host: None,
            route: None,
            outcome: Outcome::NoListener,
        };
        let Some(listener) = self
            .plan
            .listener_for(req.port, req.destination_ip.as_deref())
        else {
            return d;
        };
        d.listener = Some(listener.name.clone());
        if let Some(why) = &listener.rejected {
            d.outcome = Outcome::ConfigRejected(why.clone());
            return d;
        }
        let Some(chain) = select_chain(&listener.filter_chains, req, listener.tls_inspector) else {
            d.outcome = Outcome::NoFilterChain;
            return d;
        };
        d.filter_chain = Some(chain.name.clone());
        match &chain.kind {
            FilterChainKind::TcpProxy(tcp) => {
                let terminated = chain.tls.is_some();
                if terminated && !req.protocol.is_tls() {
                    d.outcome = Outcome::ProtocolError;
                    return d;
                }
                let (cluster, weighted) = pick(&tcp.destinations, req.random);
                d.outcome = Outcome::TcpProxy {
                    cluster_defined: self.plan.clusters.contains_key(&cluster),
                    cluster,
                    weighted_clusters: if tcp.destinations.len() > 1 {
                        weighted
                    } else {
                        Vec::new()
                    },
                    tls_terminated: terminated,
                };
                d
            }
            FilterChainKind::Http { route_config } => {
                let terminated = chain.tls.is_some();
                let http_ok = match req.protocol {
                    Protocol::Http => !terminated,
                    Protocol::Https => terminated,
                    Protocol::Tls | Protocol::Tcp => false,
                };
                if !http_ok {
                    d.outcome = Outcome::ProtocolError;
                    return d;
                }
                d.route_config = Some(route_config.clone());
                self.decide_http(route_config, req, d)
            }
        }
    }

    fn decide_http(&self, name: &str, req: &Request, mut d: Decision<'p>) -> Decision<'p> {
        let Some(rc) = self.plan.route_configs.get(name) else {
            d.outcome = Outcome::NotFound(NotFoundReason::NoVirtualHost);
            return d;
        };
        if let Some(why) = &rc.rejected {
            d.outcome = Outcome::ConfigRejected(why.clone());
            return d;
        }
        let scheme = if req.protocol == Protocol::Https {
            "https"
        } else {
            "http"
        };
        let raw_path = req.raw_path();
        let Some(vi) = rc.router.find_virtual_host(&req.authority) else {
            d.outcome = Outcome::NotFound(NotFoundReason::NoVirtualHost);
            return d;
        };
        d.virtual_host = rc.table.virtual_hosts.get(vi).map(|v| v.name.clone());
        if rc.require_tls.get(vi).copied().unwrap_or(false) && scheme != "https" {
            d.outcome = Outcome::Redirect {
                status: 301,
                location: format!("https://{}{raw_path}", req.authority),
                require_tls: true,
                response_headers: Vec::new(),
            };
            return d;
        }
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let head = RequestHead::new(&req.method, scheme, &req.authority, &raw_path)
            .with_header_list(&headers);
        let matched = match rc.router.find(&head) {
            Ok(m) => m,
            Err(NotFound::NoVirtualHost) => {
                d.outcome = Outcome::NotFound(NotFoundReason::NoVirtualHost);
                return d;
            }
            Err(_) => {
                d.outcome = Outcome::NotFound(NotFoundReason::NoRoute);
                return d;
            }
        };
        let route = matched.action();
        d.route = Some(route);
        d.outcome = self.route_outcome(route, req, scheme, &raw_path);
        d
    }

    fn route_outcome(
        &self,
        route: &HttpRoute,
        req: &Request,
        scheme: &str,
        raw_path: &str,
    ) -> Outcome {
        // Fault filter first (§e.15): delay, then abort.
        let mut delay = None;
        if let Some(fault) = &route.fault {
            if let Some((d, pm)) = fault.delay
                && pm >= 1_000_000
            {
                delay = Some(d);
            }
            if let Some(abort) = &fault.abort {
                if abort.per_million >= 1_000_000 {
                    return Outcome::FaultAbort {
                        status: abort.http_status,
                        grpc_status: abort.grpc_status,
                    };
                }
                if abort.per_million > 0 {
                    let otherwise = self.after_fault(route, req, scheme, raw_path, delay);
                    return Outcome::Probabilistic {
                        fault: fault.clone(),
                        otherwise: Box::new(otherwise),
                    };
                }
            }
        }
        self.after_fault(route, req, scheme, raw_path, delay)
    }

    fn after_fault(
        &self,
        route: &HttpRoute,
        req: &Request,
        scheme: &str,
        raw_path: &str,
        delay: Option<Duration>,
    ) -> Outcome {
        // CORS filter.
        let origin = header(req, "origin").filter(|o| !o.is_empty());
        let mut cors_headers = None;
        if let (Some(cors), Some(origin)) = (&route.cors, origin) {
            let allowed = origin_allowed(cors, origin);
            let preflight = req.method.eq_ignore_ascii_case("OPTIONS")
                && header(req, "access-control-request-method").is_some_and(|m| !m.is_empty());
            if preflight && (allowed || cors.ignore_unmatched_preflights) {
                let mut h = Vec::new();
                if allowed {
                    h.push(("access-control-allow-origin".to_owned(), origin.to_owned()));
                }
                for (k, v) in [
                    ("access-control-allow-methods", &cors.allow_methods),
                    ("access-control-allow-headers", &cors.allow_headers),
                ] {
                    if !v.is_empty() {
                        h.push((k.to_owned(), v.clone()));
                    }
                }
                if let Some(age) = &cors.max_age {
                    h.push(("access-control-max-age".to_owned(), age.clone()));
                }
                if cors.allow_credentials {
                    h.push((
                        "access-control-allow-credentials".to_owned(),
                        "true".to_owned(),
                    ));
                }
                return Outcome::CorsPreflight {
                    status: 200,
                    response_headers: h,
                };
            }
            if allowed {
                let mut h = vec![("access-control-allow-origin".to_owned(), origin.to_owned())];
                if cors.allow_credentials {
                    h.push((
                        "access-control-allow-credentials".to_owned(),
                        "true".to_owned(),
                    ));
                }
                if !cors.expose_headers.is_empty() {
                    h.push((
                        "access-control-expose-headers".to_owned(),
                        cors.expose_headers.clone(),
                    ));
                }
                cors_headers = Some(h);
            }
        }
        match &route.action {
            RouteAction::Redirect(r) => {
                let mut response_headers = Vec::new();
                route.response_headers.apply(&mut response_headers);
                Outcome::Redirect {
                    status: r.status,
                    location: redirect_location(r, req, scheme, raw_path),
                    require_tls: false,
                    response_headers,
                }
            }
            RouteAction::DirectResponse(dr) => {
                let mut response_headers = Vec::new();
                route.response_headers.apply(&mut response_headers);
                Outcome::DirectResponse {
                    status: dr.status,
                    body: dr.body.clone(),
                    response_headers,
                }
            }
            RouteAction::Forward(fwd) => {
                let chosen_index = if fwd.weighted {
                    pick_index(fwd.destinations.iter().map(|d| d.weight), req.random)
                } else {
                    0
                };
                let Some(dest) = fwd.destinations.get(chosen_index) else {
                    return Outcome::NotFound(NotFoundReason::NoRoute);
                };
                let mut headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect();
                let mut response_headers: Vec<(String, String)> = req
                    .upstream_response_headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect();
                if fwd.weighted {
                    dest.request_headers.apply(&mut headers);
                    dest.response_headers.apply(&mut response_headers);
                }
                route.request_headers.apply(&mut headers);
                route.response_headers.apply(&mut response_headers);
                let authority = dest
                    .host_rewrite
                    .clone()
                    .or_else(|| fwd.host_rewrite.clone())
                    .unwrap_or_else(|| req.authority.clone());
                let path = rewrite_path(fwd.path_rewrite.as_ref(), raw_path);
                Outcome::Forward(Box::new(Forwarded {
                    cluster_defined: self.plan.clusters.contains_key(&dest.cluster),
                    cluster: dest.cluster.clone(),
                    weighted_clusters: if fwd.weighted {
                        fwd.destinations
                            .iter()
                            .map(|d| WeightedCluster {
                                cluster: d.cluster.clone(),
                                weight: d.weight,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    upstream: UpstreamRequest {
                        authority,
                        path,
                        headers,
                    },
                    response_headers,
                    cors_response_headers: cors_headers,
                    delay,
                }))
            }
        }
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn full_match(pattern: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|r| r.is_match(value))
}

fn origin_matches(m: &OriginMatch, value: &str) -> bool {
    match m {
        OriginMatch::Exact(e) => e == value,
        OriginMatch::Prefix(p) => value.starts_with(p.as_str()),
        OriginMatch::Regex(r) => full_match(r, value),
    }
}

fn origin_allowed(cors: &CorsPolicy, origin: &str) -> bool {
    cors.allow_origins
        .iter()
        .any(|m| origin_matches(m, "*") || origin_matches(m, origin))
}

fn pick_index(weights: impl Iterator<Item = u32> + Clone, random: u64) -> usize {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return 0;
    }
    let r = random % total;
    let mut acc = 0u64;
    for (i, w) in weights.enumerate() {
        acc += u64::from(w);
        if r < acc {
            return i;
        }
    }
    0
}

fn pick(dests: &[WeightedCluster], random: u64) -> (String, Vec<WeightedCluster>) {
    let i = if dests.len() > 1 {
        pick_index(dests.iter().map(|d| d.weight), random)
    } else {
        0
    };
    let cluster = dests.get(i).map(|d| d.cluster.clone()).unwrap_or_default();
    (cluster, dests.to_vec())
}

/// Envoy filter-chain selection: exact SNI, longest wildcard, no SNI criterion; then ALPN.
fn select_chain<'c>(
    chains: &'c [FilterChain],
    req: &Request,
    inspector: bool,
) -> Option<&'c FilterChain> {
    let sni = if req.protocol.is_tls() {
        req.sni.as_deref().filter(|s| !s.is_empty())
    } else {
        None
    };
    let sni_lower = sni.map(str::to_ascii_lowercase);
    let transport_ok = |c: &FilterChain| {
        // With a TLS inspector, chains that only make sense over TLS are skipped for plaintext.
        !inspector || req.protocol.is_tls() || (c.tls.is_none() && c.server_names.is_empty())
    };
    let alpn_ok = |c: &FilterChain| {
        c.application_protocols.is_empty()
            || (req.protocol.is_tls()
                && req.alpn.iter().any(|a| c.application_protocols.contains(a)))
    };
    // Score: 3 exact, 2 + suffix length for wildcard, 1 no criterion.
    let mut best: Option<(usize, bool, &FilterChain)> = None;
    for c in chains.iter().filter(|c| transport_ok(c) && alpn_ok(c)) {
        let score = if c.server_names.is_empty() {
            Some(1)
        } else if let Some(s) = &sni_lower {
            c.server_names
                .iter()
                .filter_map(|n| {
                    let n = n.to_ascii_lowercase();
                    if n == *s {
                        Some(usize::MAX)
                    } else if let Some(suffix) = n.strip_prefix('*') {
                        (suffix.starts_with('.') && s.ends_with(suffix) && s.len() > suffix.len())
                            .then(|| 2 + suffix.len())
                    } else {
                        None
                    }
                })
                .max()
        } else {
            None
        };
        let Some(score) = score else { continue };
        let with_alpn = !c.application_protocols.is_empty();
        let better = match best {
            None => true,
            Some((s, a, _)) => score > s || (score == s && with_alpn && !a),
        };
        if better {
            best = Some((score, with_alpn, c));
        }
    }
    best.map(|(_, _, c)| c)
}

fn split_query(raw: &str) -> (&str, Option<&str>) {
    match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    }
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

/// Envoy's path rewrite after route selection.
fn rewrite_path(rewrite: Option<&PathRewrite>, raw: &str) -> String {
    let (path, query) = split_query(raw);
    match rewrite {
        None => raw.to_owned(),
        Some(PathRewrite::Prefix {
            matched_prefix,
            replacement,
        }) => {
            let rest = matched_prefix
                .as_ref()
                .and_then(|p| path.get(p.len()..))
                .unwrap_or("");
            with_query(format!("{replacement}{rest}"), query)
        }
        Some(PathRewrite::Regex {
            pattern,
            substitution,
        }) => {
            let Ok(re) = regex::Regex::new(pattern) else {
                return raw.to_owned();
            };
            let sub = envoy_substitution(substitution);
            with_query(re.replace_all(path, sub.as_str()).into_owned(), query)
        }
    }
}

/// Envoy/RE2 `\1` references → `regex` crate `${1}`.
fn envoy_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(d) = chars.peek().copied()
            && d.is_ascii_digit()
        {
            chars.next();
            out.push_str("${");
            out.push(d);
            out.push('}');
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':') =>
        {
            (h, Some(p))
        }
        _ => (authority, None),
    }
}

/// Envoy's `newUri` for a redirect.
fn redirect_location(r: &crate::plan::Redirect, req: &Request, scheme: &str, raw: &str) -> String {
    let new_scheme = r.scheme.as_deref().unwrap_or(scheme);
    let mut host = match &r.host {
        Some(h) => h.clone(),
        None => {
            let (h, port) = split_port(&req.authority);
            let default_port = if scheme == "https" { "443" } else { "80" };
            if r.port.is_some() || (new_scheme != scheme && port == Some(default_port)) {
                h.to_owned()
            } else {
                req.authority.clone()
            }
        }
    };
    if let Some(p) = r.port {
        let (h, _) = split_port(&host);
        host = format!("{h}:{p}");
    }
    let (path, query) = split_query(raw);
    let mut new_path = match &r.path {
        RedirectPath::Keep => raw.to_owned(),
        RedirectPath::Replace(u) => {
            if u.contains('?') {
                u.clone()
            } else {
                with_query(u.clone(), query)
            }
        }
        RedirectPath::Prefix {
            matched_prefix,
            replacement,
        } => {
            let rest = matched_prefix
                .as_ref()
                .and_then(|p| path.get(p.len()..))
                .unwrap_or("");
            with_query(format!("{replacement}{rest}"), query)
        }
    };
    if !new_path.starts_with('/') {
        new_path.insert(0, '/');
    }
    format!("{new_scheme}://{host}{new_path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments() {
        assert_eq!(normalize_path("/a/../b"), "/b");
        assert_eq!(normalize_path("/a/./b/"), "/a/b/");
        assert_eq!(normalize_path("/../x"), "/x");
        assert_eq!(normalize_path("/plain"), "/plain");
    }

    #[test]
    fn substitution() {
        assert_eq!(envoy_substitution(r"/\1/x"), "/${1}/x");
    }

    #[test]
    fn weighted_pick() {
        let w = [1u32, 2];
        assert_eq!(pick_index(w.iter().copied(), 0), 0);
        assert_eq!(pick_index(w.iter().copied(), 1), 1);
        assert_eq!(pick_index(w.iter().copied(), 5), 1);
    }
}
