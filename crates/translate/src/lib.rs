//! The bridge from Istio configuration to the Portcullis engines.
//!
//! Given a [`Config`] (Gateways, VirtualServices, DestinationRules, ServiceEntries), a
//! [`ServiceRegistry`] (Kubernetes Services and ServiceEntries with ports and endpoints) and the
//! [`Proxy`] being configured (a gateway workload: namespace, labels, the Services selecting
//! it), [`translate`] builds a [`GatewayPlan`]: Envoy-shaped listeners (`0.0.0.0_80`), filter
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
//! use portcullis_translate::{
//!     Config, MeshSettings, Outcome, Proxy, Request, ServiceRegistry, Simulation, translate,
//! };
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
//! let objects: Vec<_> = loaded.documents().iter().map(|d| d.object.clone()).collect();
//! let config = Config::from_objects(&objects);
//! let mesh = MeshSettings::default();
//! let registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
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
//! merging, and ServiceEntry clusters. The sidecar (`mesh`) view is minimal.
//!
//! # TLS
//!
//! Server and client TLS settings are kept as plain data ([`ServerTls`], [`ClientTls`]):
//! building `rustls` configurations (loading `credentialName` secrets or files) is left to the
//! embedder, with `portcullis-tls`.
//!
//! # Errors
//!
//! Translation never fails: what cannot be translated is dropped or marked (a route
//! configuration or listener Envoy would reject carries `rejected`), and reported as a
//! [`Diagnostic`] in [`GatewayPlan::diagnostics`].
#![forbid(unsafe_code)]

mod build;
mod clusters;
mod config;
mod diag;
mod engine;
pub mod host;
mod plan;
mod proxy;
mod registry;
mod routes;
mod simulate;

pub use build::translate;
pub use config::Config;
pub use diag::{Diagnostic, Severity};
pub use plan::*;
pub use proxy::{MeshSettings, Proxy, ProxyKind, ServiceTarget};
pub use registry::{Endpoint, Resolution, Service, ServicePort, ServiceRegistry, TLS_MODE_LABEL};
pub use simulate::{
    Decision, Forwarded, NotFoundReason, Outcome, Protocol, Request, Simulation, UpstreamRequest,
};
