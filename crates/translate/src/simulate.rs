//! Simulation: what the proxy configured by a [`GatewayPlan`] does with one request, step by
//! step (listener → filter chain → route configuration → virtual host → route → action), in the
//! spirit of Istio's own `pilot/pkg/simulation`.
//!
//! Listener, filter-chain and route selection are the simulation's; what the matched route
//! does with the request (fault, CORS, redirect, direct response, forwarding with header
//! operations and rewrites) is decided by [`portcullis_proxy_core::decide`](portcullis_proxy_core::decide()), the same function a
//! gateway runs.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::Scheme;
use http::{Method, StatusCode};
use portcullis_proxy_core::path::{self, PathNormalization};
use portcullis_proxy_core::rt::RandomSource;
use portcullis_proxy_core::{
    self as proxy_core,
    action::{FractionalPercent, apply_header_ops, pick_by_weight},
    decide::RequestHead as ProxyHead,
    fault::{AbortStatus, Fault},
    redirect::require_tls_redirect,
};
use portcullis_route_match::{Explanation, NotFound, RequestHead};

use crate::plan::{FilterChain, FilterChainKind, GatewayPlan, HttpRoute, WeightedCluster};

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
#[non_exhaustive]
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
    /// Path without query, as sent: [`Simulation`] normalizes it as the proxy would
    /// ([`Simulation::with_path_normalization`]).
    pub path: String,
    /// Raw query, without `?`.
    pub query: Option<String>,
    /// Other headers (names any case; repeated names are repeated headers).
    pub headers: Vec<(String, String)>,
    /// What the upstream answers with (to compute response header operations).
    pub upstream_response_headers: Vec<(String, String)>,
    /// The stream random value [`Simulation::decide`] uses: weighted cluster selection
    /// (`random % total weight`), TCP included, and mirror percentages. See
    /// [`SimulationRandom`].
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

    /// A plain TCP connection to `port` (no SNI, no HTTP).
    pub fn tcp(port: u32) -> Self {
        Self {
            protocol: Protocol::Tcp,
            port,
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

    /// The request target as sent: path, then `?` and the query when there is one.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// The request as sent upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// Injected delay, when it fired ([`Simulation::decide`]: when it always fires).
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
    NotFound(NotFound),
    /// 400: the path cannot be normalized ([`portcullis_proxy_core::path::InvalidPath`]).
    BadRequest {
        /// Envoy's response-code details (`path_normalization_failed`).
        details: &'static str,
    },
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
    /// An abort that fires with some probability (only from [`Simulation::decide`]);
    /// otherwise the other outcome.
    Probabilistic {
        /// The fault.
        fault: Fault,
        /// What happens when it does not fire.
        otherwise: Box<Self>,
    },
}

/// The whole decision chain for one request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
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

impl Decision<'_> {
    /// The same chain with another outcome (for one branch of an
    /// [`Outcome::Probabilistic`]).
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// The random source [`Simulation::decide`] uses, deterministic and certain-only.
///
/// The first draw ([`proxy_core::decide`](proxy_core::decide())'s stream value: weighted cluster and mirrors) is
/// the given stream value; every later draw (fault percentages) is [`Self::UNLIKELY`], which
/// leaves the largest remainder for every denominator (99 of 100, 9 999 of 10 000, 999 999 of
/// 1 000 000), so a fault percentage fires only when it always fires.
///
/// ```
/// use portcullis_proxy_core::rt::RandomSource;
/// use portcullis_translate::simulate::SimulationRandom;
///
/// let mut random = SimulationRandom::new(42);
/// assert_eq!(random.next_u64(), 42);
/// assert_eq!(random.next_u64(), SimulationRandom::UNLIKELY);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulationRandom {
    stream: Option<u64>,
}

impl SimulationRandom {
    /// The value of every draw after the first.
    pub const UNLIKELY: u64 = 999_999;

    /// A source whose first draw is `stream`.
    pub const fn new(stream: u64) -> Self {
        Self {
            stream: Some(stream),
        }
    }
}

impl RandomSource for SimulationRandom {
    fn next_u64(&mut self) -> u64 {
        self.stream.take().unwrap_or(Self::UNLIKELY)
    }
}

/// Whether a percentage fires for some draws and not for others.
fn uncertain(p: FractionalPercent) -> bool {
    p.sample(0) && !p.sample(SimulationRandom::UNLIKELY)
}

/// Simulates requests against a plan.
#[derive(Debug)]
pub struct Simulation<'p> {
    plan: &'p GatewayPlan,
    path_normalization: PathNormalization,
}

impl<'p> Simulation<'p> {
    /// A simulation of `plan`, with Istio's default path normalization (`BASE`).
    pub fn new(plan: &'p GatewayPlan) -> Self {
        Self {
            plan,
            path_normalization: PathNormalization::default(),
        }
    }

    /// The mesh's `pathNormalization.normalization`: how request paths are normalized before
    /// routing ([`portcullis_proxy_core::path::normalize`]); the upstream receives the
    /// normalized path, and a path that cannot be normalized is answered `400`
    /// ([`Outcome::BadRequest`]).
    #[must_use]
    pub fn with_path_normalization(mut self, mode: PathNormalization) -> Self {
        self.path_normalization = mode;
        self
    }

    /// The path normalization in use.
    pub fn path_normalization(&self) -> PathNormalization {
        self.path_normalization
    }

    /// Why the route lookup of [`decide`](Self::decide) went the way it went: the same
    /// listener, filter chain and route configuration, the path normalized the same way, then
    /// [`Router::explain`](portcullis_route_match::Router::explain) on that route
    /// configuration.
    ///
    /// `None` when `decide` does not reach a route lookup: no listener or filter chain, a TCP
    /// chain, a protocol mismatch, a rejected configuration, or a path answered `400`.
    ///
    /// ```
    /// # use portcullis_translate::{simulate::Request, Simulation, GatewayPlan};
    /// # fn check(plan: &GatewayPlan) {
    /// let sim = Simulation::new(plan);
    /// let req = Request::http(80, "example.com", "/x/../productpage");
    /// if let Some(explained) = sim.explain(&req) {
    ///     println!("{explained}");
    /// }
    /// # }
    /// ```
    pub fn explain(&self, req: &Request) -> Option<Explanation> {
        let (_, name) = self.http_route_config(req).ok()?;
        let rc = self.plan.route_configs.get(name)?;
        if rc.rejected.is_some() {
            return None;
        }
        let target = req.target();
        let path = path::normalize(&target, self.path_normalization).ok()?;
        let headers = header_pairs(req);
        let scheme = if req.protocol == Protocol::Https {
            "https"
        } else {
            "http"
        };
        let head =
            RequestHead::new(&req.method, scheme, &req.authority, &path).with_header_list(&headers);
        Some(rc.router.explain(&head))
    }

    /// Runs one request through the plan, deterministically: the route's action is decided
    /// with [`SimulationRandom::new(req.random)`](SimulationRandom), and an abort that fires
    /// only sometimes gives [`Outcome::Probabilistic`] (with what happens when it does not).
    pub fn decide(&self, req: &Request) -> Decision<'p> {
        self.run(req, None)
    }

    /// Runs one request through the plan with the caller's random source, used for every
    /// draw of [`proxy_core::decide`](proxy_core::decide()) (stream value first, then fault percentages; TCP routes
    /// draw one value): one sample of what the proxy does, never
    /// [`Outcome::Probabilistic`]. [`Request::random`] is not used.
    pub fn decide_with<R: RandomSource + ?Sized>(
        &self,
        req: &Request,
        mut random: &mut R,
    ) -> Decision<'p> {
        self.run(req, Some(&mut random))
    }

    fn run(&self, req: &Request, random: Option<&mut dyn RandomSource>) -> Decision<'p> {
        match self.front(req) {
            Front::Done(d) => d,
            Front::Tcp(d, chain) => self.decide_tcp(chain, req, d, random),
            Front::Http(d, route_config) => self.decide_http(route_config, req, d, random),
        }
    }

    /// [`front`](Self::front) when it ends on an HTTP route configuration: its name.
    fn http_route_config(&self, req: &Request) -> Result<(Decision<'p>, &'p str), ()> {
        match self.front(req) {
            Front::Http(d, name) => Ok((d, name)),
            Front::Done(_) | Front::Tcp(..) => Err(()),
        }
    }

    /// Listener and filter-chain selection.
    fn front(&self, req: &Request) -> Front<'p> {
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
            return Front::Done(d);
        };
        d.listener = Some(listener.name.clone());
        if let Some(why) = &listener.rejected {
            d.outcome = Outcome::ConfigRejected(why.clone());
            return Front::Done(d);
        }
        let Some(chain) = select_chain(&listener.filter_chains, req, listener.tls_inspector) else {
            d.outcome = Outcome::NoFilterChain;
            return Front::Done(d);
        };
        d.filter_chain = Some(chain.name.clone());
        match &chain.kind {
            FilterChainKind::TcpProxy(_) => Front::Tcp(d, chain),
            FilterChainKind::Http { route_config } => {
                let terminated = chain.tls.is_some();
                let http_ok = match req.protocol {
                    Protocol::Http => !terminated,
                    Protocol::Https => terminated,
                    Protocol::Tls | Protocol::Tcp => false,
                };
                if !http_ok {
                    d.outcome = Outcome::ProtocolError;
                    return Front::Done(d);
                }
                d.route_config = Some(route_config.clone());
                Front::Http(d, route_config)
            }
        }
    }

    fn decide_tcp(
        &self,
        chain: &FilterChain,
        req: &Request,
        mut d: Decision<'p>,
        random: Option<&mut dyn RandomSource>,
    ) -> Decision<'p> {
        let FilterChainKind::TcpProxy(tcp) = &chain.kind else {
            return d;
        };
        let terminated = chain.tls.is_some();
        if terminated && !req.protocol.is_tls() {
            d.outcome = Outcome::ProtocolError;
            return d;
        }
        let weighted = tcp.destinations.len() > 1;
        let index = if weighted {
            let draw = random.map_or(req.random, |r| r.next_u64());
            pick_by_weight(tcp.destinations.iter().map(|c| c.weight), draw).unwrap_or(0)
        } else {
            0
        };
        let cluster = tcp
            .destinations
            .get(index)
            .map(|c| c.cluster.clone())
            .unwrap_or_default();
        d.outcome = Outcome::TcpProxy {
            cluster_defined: self.plan.clusters.contains_key(&cluster),
            cluster,
            weighted_clusters: if weighted {
                tcp.destinations.clone()
            } else {
                Vec::new()
            },
            tls_terminated: terminated,
        };
        d
    }

    fn decide_http(
        &self,
        name: &str,
        req: &Request,
        mut d: Decision<'p>,
        random: Option<&mut dyn RandomSource>,
    ) -> Decision<'p> {
        // Envoy's connection manager normalizes the path before any filter or route lookup.
        let target = req.target();
        let raw_path = match path::normalize(&target, self.path_normalization) {
            Ok(p) => p.into_owned(),
            Err(invalid) => {
                d.outcome = Outcome::BadRequest {
                    details: invalid.details(),
                };
                return d;
            }
        };
        let Some(rc) = self.plan.route_configs.get(name) else {
            d.outcome = Outcome::NotFound(NotFound::NoVirtualHost);
            return d;
        };
        if let Some(why) = &rc.rejected {
            d.outcome = Outcome::ConfigRejected(why.clone());
            return d;
        }
        let (scheme, proxy_scheme) = if req.protocol == Protocol::Https {
            ("https", Scheme::HTTPS)
        } else {
            ("http", Scheme::HTTP)
        };
        let Some(vi) = rc.router.find_virtual_host(&req.authority) else {
            d.outcome = Outcome::NotFound(NotFound::NoVirtualHost);
            return d;
        };
        d.virtual_host = rc.virtual_hosts().get(vi).map(|v| v.name().to_owned());
        let method = Method::from_bytes(req.method.as_bytes()).unwrap_or_default();
        let head = ProxyHead::new(
            method,
            proxy_scheme,
            req.authority.clone(),
            raw_path.clone(),
        )
        .with_headers(header_map(&req.headers));
        if rc.require_tls.get(vi).copied().unwrap_or(false)
            && let Some(redirect) = require_tls_redirect(&head)
        {
            d.outcome = Outcome::Redirect {
                status: redirect.status.as_u16(),
                location: redirect.location,
                require_tls: true,
                response_headers: header_list(&redirect.headers),
            };
            return d;
        }
        let headers = header_pairs(req);
        let route_head = RequestHead::new(&req.method, scheme, &req.authority, &raw_path)
            .with_header_list(&headers);
        let route = match rc.find(&route_head) {
            Ok(r) => &r.action,
            Err(not_found) => {
                d.outcome = Outcome::NotFound(not_found);
                return d;
            }
        };
        d.route = Some(route);
        d.outcome = match random {
            Some(random) => self.route_outcome(route, &head, req, random),
            None => {
                let outcome =
                    self.route_outcome(route, &head, req, &mut SimulationRandom::new(req.random));
                match route.action.fault() {
                    Some(fault) if fault.abort().is_some_and(|a| uncertain(a.percentage())) => {
                        Outcome::Probabilistic {
                            fault: *fault,
                            otherwise: Box::new(outcome),
                        }
                    }
                    _ => outcome,
                }
            }
        };
        d
    }

    /// [`proxy_core::decide`](proxy_core::decide()) for the route, as an [`Outcome`].
    fn route_outcome(
        &self,
        route: &HttpRoute,
        head: &ProxyHead,
        req: &Request,
        random: &mut dyn RandomSource,
    ) -> Outcome {
        match proxy_core::decide(&route.action, head, random) {
            proxy_core::decide::Decision::Forward(f) => {
                let mut response = header_map(&req.upstream_response_headers);
                for ops in f.response.header_ops() {
                    apply_header_ops(ops, &mut response);
                }
                let weighted_clusters = route
                    .forward()
                    .filter(|a| a.is_weighted())
                    .map(|a| {
                        a.destinations()
                            .iter()
                            .map(|d| WeightedCluster {
                                cluster: d.cluster().to_owned(),
                                weight: d.weight(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Outcome::Forward(Box::new(Forwarded {
                    cluster_defined: self.plan.clusters.contains_key(&*f.cluster),
                    cluster: f.cluster.to_string(),
                    weighted_clusters,
                    upstream: UpstreamRequest {
                        authority: f.upstream.authority,
                        path: f.upstream.path,
                        headers: header_list(&f.upstream.headers),
                    },
                    response_headers: header_list(&response),
                    cors_response_headers: f.response.cors_headers().map(header_list),
                    delay: f.delay,
                }))
            }
            proxy_core::decide::Decision::Redirect(r) => Outcome::Redirect {
                status: r.status.as_u16(),
                location: r.location,
                require_tls: false,
                response_headers: header_list(&r.headers),
            },
            proxy_core::decide::Decision::DirectResponse(r) => Outcome::DirectResponse {
                status: r.status.as_u16(),
                body: r.body.map(|b| String::from_utf8_lossy(&b).into_owned()),
                response_headers: header_list(&r.headers),
            },
            proxy_core::decide::Decision::FaultAbort(a) => match a.abort {
                AbortStatus::Grpc(code) => Outcome::FaultAbort {
                    status: None,
                    grpc_status: Some(code),
                },
                AbortStatus::Http(status) => http_abort(status),
                _ => http_abort(StatusCode::INTERNAL_SERVER_ERROR),
            },
            proxy_core::decide::Decision::CorsPreflight(c) => Outcome::CorsPreflight {
                status: c.status.as_u16(),
                response_headers: header_list(&c.headers),
            },
            other => Outcome::ConfigRejected(format!(
                "decision not modelled by the simulation: {other:?}"
            )),
        }
    }
}

fn http_abort(status: StatusCode) -> Outcome {
    Outcome::FaultAbort {
        status: Some(u32::from(status.as_u16())),
        grpc_status: None,
    }
}

/// The request's headers as `(name, value)` pairs.
fn header_pairs(req: &Request) -> Vec<(&str, &str)> {
    req.headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// How far listener and filter-chain selection got.
enum Front<'p> {
    /// An outcome already (no listener, no chain, rejected, protocol mismatch).
    Done(Decision<'p>),
    /// A TCP proxy chain.
    Tcp(Decision<'p>, &'p FilterChain),
    /// An HTTP chain, with its route configuration's name.
    Http(Decision<'p>, &'p str),
}

/// A header list as a map; entries that are not valid HTTP fields are skipped.
fn header_map(list: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in list {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// A header map as a list (lower-case names).
fn header_list(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_joins_path_and_query() {
        assert_eq!(
            Request::http(80, "a", "/x/../y?q=1").target(),
            "/x/../y?q=1"
        );
        assert_eq!(Request::http(80, "a", "/plain").target(), "/plain");
    }
}
