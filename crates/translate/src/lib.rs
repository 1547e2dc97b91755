//! The bridge from Istio configuration to the Portcullis engines.
//!
//! Given a [`Config`] (Gateways, VirtualServices, DestinationRules, ServiceEntries), a
//! [`ServiceRegistry`] (Kubernetes Services and ServiceEntries with ports and endpoints) and the
//! [`Proxy`] being configured (a gateway workload: namespace, labels, the Services selecting
//! it; or a sidecar, see below), [`translate`] builds a [`GatewayPlan`]: Envoy-shaped listeners (`0.0.0.0_80`), filter
//! chains (by SNI), HTTP route configurations (`http.80`,
//! `https.443.<port name>.<gateway>.<namespace>`) holding a
//! [`portcullis_route_match::RouteTable`] of [`HttpRoute`] actions, and clusters
//! (`outbound|9080|v1|reviews.default.svc.cluster.local`) with their DestinationRule policy.
//! Names follow Istio's, so what `istioctl proxy-config` shows carries over.
//!
//! A [`Simulation`] then answers what the proxy does with one request: listener → filter chain
//! → route configuration → virtual host → route → action (forward with the rewritten upstream
//! request, redirect, direct response, fault, CORS preflight, 404, …).
//!
//! ```
//! use portcullis_model::Loader;
//! use portcullis_translate::{Config, MeshSettings, simulate::{Outcome, Request}, Proxy, ServiceRegistry, Simulation, translate};
//!
//! let yaml = r#"
//! apiVersion: networking.istio.io/v1
//! kind: Gateway
//! metadata: {name: public, namespace: istio-system}
//! spec:
//!   selector: {istio: ingressgateway}
//!   servers:
//!   - port: {number: 80, name: http, protocol: HTTP}
//!     hosts: ["*.example.com"]
//! ---
//! apiVersion: networking.istio.io/v1
//! kind: VirtualService
//! metadata: {name: shop, namespace: default}
//! spec:
//!   hosts: [shop.example.com]
//!   gateways: [istio-system/public]
//!   http:
//!   - match: [{uri: {prefix: /api}}]
//!     rewrite: {uri: /v2}
//!     route: [{destination: {host: api, port: {number: 8080}}}]
//!   - route: [{destination: {host: web}}]
//! ---
//! apiVersion: v1
//! kind: Service
//! metadata: {name: web, namespace: default}
//! spec:
//!   ports: [{name: http, port: 80}]
//! "#;
//! let loaded = Loader::new().load_str("config.yaml", yaml)?;
//! let config = Config::from_loaded(&loaded);
//! let mesh = MeshSettings::default();
//! let registry = ServiceRegistry::from_loaded(&loaded, &mesh.domain_suffix);
//! let plan = translate(&config, &registry, &Proxy::ingress_gateway(), &mesh);
//! assert_eq!(plan.listeners[0].name, "0.0.0.0_80");
//!
//! let sim = Simulation::new(&plan);
//! let decision = sim.decide(&Request::http(80, "shop.example.com", "/api/items?page=2"));
//! assert_eq!(decision.route_config.as_deref(), Some("http.80"));
//! assert_eq!(decision.virtual_host.as_deref(), Some("shop.example.com:80"));
//! let Outcome::Forward(fwd) = decision.outcome else { panic!("{decision:?}") };
//! assert_eq!(fwd.cluster, "outbound|8080||api.default.svc.cluster.local");
//! assert_eq!(fwd.upstream.path, "/v2/items?page=2");
//! assert!(!fwd.cluster_defined); // no `api` Service: Envoy would answer 503
//!
//! let decision = sim.decide(&Request::http(80, "shop.example.com", "/"));
//! let Outcome::Forward(fwd) = decision.outcome else { panic!() };
//! // `web` has a single port, so it is the destination port.
//! assert_eq!(fwd.cluster, "outbound|80||web.default.svc.cluster.local");
//! assert!(fwd.cluster_defined);
//! # Ok::<(), portcullis_model::LoadErrors>(())
//! ```
//!
//! # Route actions: one implementation, in `portcullis-proxy-core`
//!
//! Each route of a [`RouteConfig`] carries an [`HttpRoute`] (in an `Arc`, shared with a
//! [`TranslationCache`] rather than copied):
//!
//! ```text
//! HttpRoute {
//!     name: String,                           // `<http.name>[.<match.name>]`
//!     virtual_service: Option<ResourceRef>,   // where it came from (None: generated)
//!     origin: Option<RouteOrigin>,            // which rule (and delegate rule) it was built from
//!     hash_policy: Vec<HashPolicy>,           // consistent hashing, for the load balancer
//!     action: portcullis_proxy_core::action::RouteAction,
//! }
//! ```
//!
//! `action` is the engine's own type ([`proxy_core::action::RouteAction`]: `Forward`, `Redirect` or
//! `DirectResponse`), built once here, at translation time: regular expressions (rewrites,
//! CORS origins) are compiled and header names and values validated then, never per
//! request. It holds every rule-level setting in Envoy's terms, as pilot writes them:
//! destinations (cluster names, weights, per-destination header operations and authority),
//! rule header operations, `rewrite` (authority, `uri` as a prefix rewrite of what the match
//! block matched, `uriRegexRewrite`), `timeout` / `max_grpc_timeout`, the retry policy
//! ([`proxy_core::retry::RetryPolicy`], Istio's default when `retries` is unset, none for
//! `attempts: 0`), mirrors, fault injection and CORS. [`HttpRoute::forward`] gives the
//! forward action, where timeout, retry policy and mirrors are read.
//!
//! A gateway runs [`proxy_core::decide`](proxy_core::decide()) on it for each request; so does the
//! [`Simulation`], which only adds listener, filter-chain and route selection around it and
//! converts the engine's `Decision` into an [`Outcome`](simulate::Outcome). [`Simulation::decide`] is
//! deterministic ([`SimulationRandom`](simulate::SimulationRandom): [`Request::random`](simulate::Request::random) is the stream value, fault
//! percentages fire only when certain, an abort that fires sometimes is reported as
//! [`Outcome::Probabilistic`](simulate::Outcome::Probabilistic)); [`Simulation::decide_with`] takes the caller's
//! [`proxy_core::rt::RandomSource`] instead and returns one sample.
//!
//! A rule whose action the engine refuses ([`proxy_core::action::InvalidAction`]: a header name or
//! value, a regular expression, a direct-response or abort status) is dropped with a
//! [`Severity::Warning`](diag::Severity::Warning) [`Diagnostic`](diag::Diagnostic); the other routes are unaffected. A redirect code pilot
//! cannot translate, or a rule whose destinations all weigh 0, makes Envoy reject the whole
//! route configuration, as it would in Istio ([`RouteConfig::rejected`], a
//! [`Severity::Error`](diag::Severity::Error) diagnostic).
//!
//! ```
//! # use portcullis_model::Loader;
//! # use portcullis_translate::{Config, MeshSettings, Proxy, ServiceRegistry, translate};
//! use portcullis_translate::proxy_core::{decide, decide::{Decision, RequestHead}, rt::SplitMix64};
//! use http::{Method, uri::Scheme};
//! # let yaml = r#"
//! # apiVersion: networking.istio.io/v1
//! # kind: Gateway
//! # metadata: {name: public, namespace: istio-system}
//! # spec:
//! #   selector: {istio: ingressgateway}
//! #   servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
//! # ---
//! # apiVersion: networking.istio.io/v1
//! # kind: VirtualService
//! # metadata: {name: shop, namespace: default}
//! # spec:
//! #   hosts: [shop.example.com]
//! #   gateways: [istio-system/public]
//! #   http:
//! #   - rewrite: {uri: /v2/}
//! #     timeout: 3s
//! #     route: [{destination: {host: api, port: {number: 8080}}}]
//! # "#;
//! # let loaded = Loader::new().load_str("config.yaml", yaml)?;
//! # let mesh = MeshSettings::default();
//! # let registry = ServiceRegistry::from_loaded(&loaded, &mesh.domain_suffix);
//! let plan = translate(&Config::from_loaded(&loaded), &registry, &Proxy::ingress_gateway(), &mesh);
//! let vhosts = plan.route_configs["http.80"].virtual_hosts();
//! let route = &vhosts[0].routes()[0].action;
//! assert_eq!(route.forward().map(|f| f.timeout()), Some(std::time::Duration::from_secs(3)));
//!
//! let head = RequestHead::new(Method::GET, Scheme::HTTP, "shop.example.com", "/items");
//! let Decision::Forward(fwd) = decide(&route.action, &head, &mut SplitMix64::new(1)) else {
//!     panic!("expected a forward");
//! };
//! assert_eq!(&*fwd.cluster, "outbound|8080||api.default.svc.cluster.local");
//! assert_eq!(fwd.upstream.path, "/v2/items");
//! # Ok::<(), portcullis_model::LoadErrors>(())
//! ```
//!
//! # What is implemented
//!
//! The rules of Istio's pilot for gateways, as written down in the project's `ROUTING.md`:
//! gateway selection and order, server host sanitization, server-port → listener-port
//! translation, first-wins server merging, filter chains (plaintext HTTP, HTTPS termination
//! by SNI, TLS passthrough, AUTO_PASSTHROUGH, TCP, TLS-terminated TCP), `httpsRedirect`,
//! VirtualService binding (gateway names, `exportTo` against the proxy namespace, host
//! intersection with `ns/host` restrictions), route ordering (per-VS catch-all truncation,
//! merged catch-alls last), config-time match conditions (`port`, `gateways`, `sourceLabels`,
//! `sourceNamespace`), delegation, default destination ports, redirects, rewrites, header
//! operations, retries, timeouts, faults, mirrors, CORS, DestinationRule lookup and policy
//! merging, and ServiceEntry clusters.
//!
//! For a sidecar ([`Proxy::sidecar`]: the client's namespace and labels), the outbound `mesh`
//! view of pilot's `BuildSidecarOutboundVirtualHosts`: a listener `0.0.0.0_<port>` and a route
//! configuration `<port>` for each HTTP (or sniffed) port of the services visible from the
//! client's namespace (`exportTo` of Services and ServiceEntries), holding one virtual host per
//! service (`reviews.default.svc.cluster.local:9080`, domains: the FQDN, its absolute form with
//! a trailing dot, and `reviews`, `reviews.default`, `reviews.default.svc` as Kubernetes DNS
//! would resolve them from the client's namespace; ports are ignored in host matching) and
//! one per VirtualService host that is not a service (on port 80, or beside a service the
//! VirtualService names). VirtualServices bound to `mesh` (no `gateways`, or `mesh` listed)
//! and visible from the client's namespace apply; short hosts are resolved in the
//! VirtualService's namespace; a wildcard host takes the services it is the most specific
//! VirtualService host for; for each host the oldest VirtualService wins, without merging;
//! `sourceLabels` and `sourceNamespace` are judged against the client, and a VirtualService
//! left without routes gives way. Services without a VirtualService get a `default` route to
//! their cluster, and other hosts reach `allow_any`, which forwards to `PassthroughCluster`.
//! Destinations without a port use the route configuration's port; DestinationRules are looked
//! up from the client's namespace, then the service's, then the root namespace. `Sidecar`
//! resources (egress listeners, `REGISTRY_ONLY`) are not read.
//!
//! # TLS
//!
//! Server and client TLS settings are kept as plain data ([`TlsTermination`], [`TlsOrigination`]):
//! building `rustls` configurations (loading `credentialName` secrets or files) is left to the
//! embedder, with `portcullis-tls`.
//!
//! # Errors
//!
//! Translation never fails: what cannot be translated is dropped or marked (a route
//! configuration or listener Envoy would reject carries `rejected`), and reported as a
//! [`Diagnostic`](diag::Diagnostic) in [`GatewayPlan::diagnostics`].
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod clusters;
mod config;
mod delegate;
pub mod diag;
mod driver;
pub mod dump;
// Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): hidden from the docs and
// not part of the stable API; they change whenever the fuzz targets do.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod host;
mod index;
mod kept;
mod listeners;
mod plan;
mod proxy;
mod registry;
mod route_config;
mod routes;
mod servers;
mod sidecar;
pub mod simulate;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;

pub use cache::TranslationCache;
pub use config::Config;
pub use driver::{translate, translate_cached, translate_objects};
pub use plan::*;
pub use proxy::{MeshSettings, Proxy, ProxyKind, ServiceTarget};
pub use registry::{Endpoint, Resolution, Service, ServicePort, ServiceRegistry, TLS_MODE_LABEL};
pub use simulate::Simulation;

/// The engine crate the route actions belong to, re-exported so that an embedder uses the
/// same version as the plan.
pub use portcullis_proxy_core as proxy_core;

/// The route-matching crate the plan's routers and explanations come from, re-exported so that
/// an embedder uses the same version as the plan.
pub use portcullis_route_match as route_match;

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
