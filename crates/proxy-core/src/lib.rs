//! Sans-IO forwarding decisions for a gateway, with Envoy's semantics as Istio configures it.
//!
//! Once a request's route is known (see the `route-match` crate), something has to decide
//! what happens to it: which cluster it goes to and how its head is rewritten, or whether the
//! gateway answers by itself with a redirect, a fixed response, an injected fault or a CORS
//! preflight. This crate makes that decision as a pure function:
//!
//! ```text
//! decide(&RouteAction, &RequestHead, &mut impl RandomSource) -> Decision
//! ```
//!
//! It performs no I/O, owns no runtime, reads no clock and generates no randomness: the
//! embedder passes a [`rt::RandomSource`] in (and, for the state machines to come, a
//! [`rt::Clock`]). It knows nothing about Istio's resource model either, so a gateway that is
//! not configured by Istio can embed it; `translate` maps Istio's `HTTPRoute` onto these types.
//!
//! # Building actions
//!
//! Actions are built once, when configuration changes. Building validates and compiles
//! (regular expressions, header names and values) and can fail with [`InvalidAction`](action::InvalidAction);
//! deciding never fails and never panics.
//!
//! * [`ForwardAction`](action::ForwardAction) — destinations ([`Destination`](action::Destination): an already-named cluster, a weight,
//!   per-destination [`HeaderOps`](action::HeaderOps)), rule-level header operations, [`PathRewrite`](rewrite::PathRewrite), authority
//!   rewrite, timeout, [`RetryPolicy`](retry::RetryPolicy), [`Mirror`](action::Mirror)s;
//! * [`RedirectAction`](redirect::RedirectAction) — status, scheme, authority, [`RedirectPort`](redirect::RedirectPort), [`RedirectPath`](redirect::RedirectPath);
//! * [`DirectResponseAction`](action::DirectResponseAction) — status and body;
//! * on all three: response header operations, [`Fault`](fault::Fault), [`Cors`](cors::Cors).
//!
//! # Deciding
//!
//! [`decide`](decide()) follows the filter order of an Istio gateway (fault → CORS → router) and
//! documents exactly which random values it draws. The result is a [`Decision`](decide::Decision):
//! [`ForwardDecision`](decide::ForwardDecision) (cluster, rewritten [`UpstreamRequest`](decide::UpstreamRequest), [`ResponseEdits`](decide::ResponseEdits) to apply to
//! the upstream response, timeouts, retry policy, mirrors), [`RedirectDecision`](redirect::RedirectDecision),
//! [`DirectResponseDecision`](decide::DirectResponseDecision), [`FaultAbortDecision`](fault::FaultAbortDecision) or [`CorsPreflightDecision`](cors::CorsPreflightDecision); each
//! carries the fault delay to wait first, if one fired.
//!
//! Every step is also a public function that can be tested or reused on its own:
//! [`pick_weighted`](action::pick_weighted), [`apply_header_ops`](action::apply_header_ops), [`rewrite_path`](rewrite::rewrite_path) / [`prefix_rewrite`](rewrite::prefix_rewrite),
//! [`build_redirect_location`](redirect::build_redirect_location) / [`process_request_host`](redirect::process_request_host), [`require_tls_redirect`](redirect::require_tls_redirect) (the
//! virtual-host-level `httpsRedirect`), [`evaluate_cors`](cors::evaluate_cors) / [`cors_preflight`](cors::cors_preflight),
//! [`parse_retry_on`](retry::parse_retry_on), [`effective_timeout`](decide::effective_timeout).
//!
//! Before routing, [`hygiene::check_request_head`] applies Envoy's request-head checks —
//! [`authority`] (`Host`, `:authority`), [`framing`] (`content-length`, `transfer-encoding`),
//! [`upgrade`] (which protocol switches go on) — and [`header`] has the field name and value
//! character checks; a failure is a [`hygiene::Rejection`] with Envoy's status and details.
//!
//! [`h1`] is the HTTP/1.1 codec a proxy needs towards its upstreams (request heads, response
//! heads, RFC 9112 body framing), also without I/O.
//!
//! [`path`] normalizes request paths before routing, as Envoy does for Istio's
//! `pathNormalization` modes (`%2e%2e` and `\` included).
//!
//! # Example
//!
//! A weighted route that rewrites `/api/` to `/v2/`, adds a header and sets a timeout:
//!
//! ```
//! use std::time::Duration;
//! use http::{Method, uri::Scheme};
//! use portcullis_proxy_core::action::{Destination, ForwardAction, HeaderOps, RouteAction};
//! use portcullis_proxy_core::decide::{Decision, RequestHead, decide};
//! use portcullis_proxy_core::rewrite::{PathMatchKind, PathRewrite};
//! use portcullis_proxy_core::rt::SequenceRandom;
//!
//! let action: RouteAction = ForwardAction::new(vec![
//!     Destination::new("outbound|80||a.default.svc.cluster.local", 90),
//!     Destination::new("outbound|80||b.default.svc.cluster.local", 10),
//! ])?
//! .with_request_headers(HeaderOps::new().try_set("x-route", "api")?)
//! .with_path_rewrite(PathRewrite::Prefix {
//!     matched: PathMatchKind::Prefix("/api/".into()),
//!     replacement: "/v2/".into(),
//! })
//! .with_timeout(Duration::from_secs(10))
//! .into();
//!
//! let head = RequestHead::new(Method::GET, Scheme::HTTP, "example.com", "/api/users?id=3");
//!
//! // The first draw picks the destination: 95 % 100 = 95 falls in b's interval [90, 100).
//! let mut random = SequenceRandom::new([95]);
//! let Decision::Forward(forward) = decide(&action, &head, &mut random) else {
//!     panic!("expected a forward decision");
//! };
//! assert_eq!(&*forward.cluster, "outbound|80||b.default.svc.cluster.local");
//! assert_eq!(forward.upstream.path, "/v2/users?id=3");
//! assert_eq!(forward.upstream.authority, "example.com");
//! assert_eq!(forward.upstream.headers["x-route"], "api");
//! assert_eq!(forward.upstream.headers["x-envoy-original-path"], "/api/users?id=3");
//! assert_eq!(forward.timeout, Duration::from_secs(10));
//! assert_eq!(forward.retry_policy.as_deref().map(|p| p.num_retries()), Some(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # State machines
//!
//! The second half of the crate executes a forward decision against a cluster, still
//! without I/O, a runtime, a clock or a random generator of its own: every call takes the
//! current [`rt::Instant`] and a [`rt::RandomSource`].
//!
//! * [`ClusterSpec`](cluster::ClusterSpec) → [`Cluster`](cluster::Cluster): endpoints ([`EndpointSpec`](cluster::EndpointSpec): address, port, labels,
//!   weight, locality; a subset selector keeps those with matching labels), a [`LbPolicy`](cluster::LbPolicy)
//!   (round robin, least request with power-of-two choices, random, passthrough, ring hash,
//!   maglev; optional [`SlowStart`](cluster::SlowStart)), [`PoolLimits`](pool::PoolLimits) and an [`OutlierConfig`](outlier::OutlierConfig) with the healthy
//!   panic threshold. [`Cluster::pick`](cluster::Cluster::pick) balances, skipping ejected endpoints outside panic
//!   mode; [`hash_request`](lb::hash_request) computes consistent-hash keys from a route's [`HashPolicy`](lb::HashPolicy)s
//!   (header, cookie — minted when absent —, source IP, query parameter).
//! * Connection pools are admission counters: [`Cluster::try_connection`](cluster::Cluster::try_connection),
//!   [`try_pending`](cluster::Cluster::try_pending), [`try_request`](cluster::Cluster::try_request),
//!   [`try_retry`](cluster::Cluster::try_retry) return RAII permits or an [`Overflow`](pool::Overflow) whose
//!   [`local_reply`](pool::Overflow::local_reply) is Envoy's `503` with `x-envoy-overloaded: true`.
//! * Outlier detection: [`Cluster::report`](cluster::Cluster::report) counts results per endpoint and ejects;
//!   [`Cluster::tick`](cluster::Cluster::tick) (also run lazily) returns endpoints after `base × n` (capped).
//! * [`RetryState`](retry::RetryState) is the per-request machine: retries, back-off, per-try and overall
//!   timeouts, driven by [`Event`](retry::Event)s, answering with [`Action`](retry::Action)s.
//! * [`FailureOrigin`](failure::FailureOrigin) and [`DownstreamFailure`](failure::DownstreamFailure) keep the client's failures (bad framing,
//!   a disconnect mid-upload: Envoy's `DPE`, `DC`) apart from the upstream's, so that they
//!   never count against an endpoint's health, the retry policy or the retry budget.
//! * [`Swap`](cluster::Swap) and [`ClusterSet`](cluster::ClusterSet) publish a new configuration atomically, adopting the live
//!   [`ClusterState`](cluster::ClusterState) of clusters and endpoints that still exist.
//! * With the `tower` feature, `tower::RouteService` (and its `tower::RouteLayer`) runs
//!   decisions in front of a `tower_service::Service`, correct when cloned per request.
//!
//! A runtime's loop for one forwarded request, here with a scripted upstream that fails once:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use http::{HeaderMap, StatusCode};
//! use portcullis_proxy_core::cluster::{ClusterSet, ClusterSpec, EndpointSpec, LbPolicy, Swap};
//! use portcullis_proxy_core::retry::{Action, Event, RetryPolicy, RetryState};
//! use portcullis_proxy_core::rt::{Clock, ManualClock, SplitMix64};
//!
//! let clock = ManualClock::new();
//! let mut random = SplitMix64::new(1);
//! let spec = ClusterSpec::new(
//!     "outbound|80||svc",
//!     vec![EndpointSpec::new("10.0.0.1", 80), EndpointSpec::new("10.0.0.2", 80)],
//! )
//! .with_lb(LbPolicy::RoundRobin);
//! let clusters = Swap::new(Arc::new(ClusterSet::build([&spec], None, clock.now())?));
//!
//! // Per request: take the current configuration once, and keep it.
//! let cluster = Arc::clone(clusters.load().get("outbound|80||svc").expect("cluster"));
//! let policy = RetryPolicy::from_istio(2, None, "5xx", false).map(Arc::new);
//! let mut request = RetryState::new(cluster, policy, Duration::from_secs(15));
//!
//! let mut upstream_statuses = [503, 200].into_iter();
//! let mut action = request.start(clock.now(), &mut random);
//! let headers = HeaderMap::new();
//! let delivered = loop {
//!     action = match action {
//!         Action::Send(attempt) => {
//!             // Connect to attempt.endpoint, send; here the scripted response comes back.
//!             let status = StatusCode::from_u16(upstream_statuses.next().unwrap())?;
//!             request.on_event(Event::Response { status, headers: &headers }, clock.now(), &mut random)
//!         }
//!         Action::Backoff { until } => {
//!             clock.advance(until.saturating_duration_since(clock.now()));
//!             request.on_event(Event::Timer, clock.now(), &mut random)
//!         }
//!         Action::Deliver => break true,
//!         Action::GiveUp { .. } | Action::Reset | Action::Done | Action::Ignore => break false,
//!         _ => break false,
//!     };
//! };
//! assert!(delivered);
//! assert_eq!(request.attempts(), 2);
//! assert_eq!(request.on_event(Event::ResponseComplete, clock.now(), &mut random), Action::Done);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod action;
pub mod authority;
pub mod client_address;
pub mod cluster;
pub mod cors;
pub mod decide;
mod error;
pub mod failure;
pub mod fault;
pub mod framing;
// Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): hidden from the docs and
// not part of the stable API; they change whenever the fuzz targets do.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod h1;
pub mod header;
mod headers;
pub mod hygiene;
pub mod lb;
pub mod outlier;
pub mod path;
mod percent;
pub mod pool;
pub mod proxy_protocol;
pub mod redirect;
mod rejection;
mod request;
pub mod retry;
pub mod rewrite;
pub mod rt;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
pub mod upgrade;

pub use decide::decide;

#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
