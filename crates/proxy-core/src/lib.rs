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
//! (regular expressions, header names and values) and can fail with [`InvalidAction`];
//! deciding never fails and never panics.
//!
//! * [`ForwardAction`] — destinations ([`Destination`]: an already-named cluster, a weight,
//!   per-destination [`HeaderOps`]), rule-level header operations, [`PathRewrite`], authority
//!   rewrite, timeout, [`RetryPolicy`], [`Mirror`]s;
//! * [`RedirectAction`] — status, scheme, authority, [`RedirectPort`], [`RedirectPath`];
//! * [`DirectResponseAction`] — status and body;
//! * on all three: response header operations, [`Fault`], [`Cors`].
//!
//! # Deciding
//!
//! [`decide`] follows the filter order of an Istio gateway (fault → CORS → router) and
//! documents exactly which random values it draws. The result is a [`Decision`]:
//! [`ForwardDecision`] (cluster, rewritten [`UpstreamRequest`], [`ResponseEdits`] to apply to
//! the upstream response, timeouts, retry policy, mirrors), [`RedirectDecision`],
//! [`DirectResponseDecision`], [`FaultAbortDecision`] or [`CorsPreflightDecision`]; each
//! carries the fault delay to wait first, if one fired.
//!
//! Every step is also a public function that can be tested or reused on its own:
//! [`pick_weighted`], [`apply_header_ops`], [`rewrite_path`] / [`prefix_rewrite`],
//! [`build_redirect_location`] / [`process_request_host`], [`require_tls_redirect`] (the
//! virtual-host-level `httpsRedirect`), [`evaluate_cors`] / [`cors_preflight`],
//! [`parse_retry_on`], [`effective_timeout`].
//!
//! # Example
//!
//! A weighted route that rewrites `/api/` to `/v2/`, adds a header and sets a timeout:
//!
//! ```
//! use std::time::Duration;
//! use http::{Method, uri::Scheme};
//! use portcullis_proxy_core::{
//!     decide, Decision, Destination, ForwardAction, HeaderOps, PathMatchKind, PathRewrite,
//!     RequestHead, RouteAction, rt::SequenceRandom,
//! };
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
//! # Scope
//!
//! This is the decision half of the crate. Load balancing, connection pools, outlier
//! detection and the retry state machine will live next to it and share [`rt`].
#![forbid(unsafe_code)]

mod action;
mod cors;
mod decide;
mod error;
mod fault;
mod headers;
mod percent;
mod redirect;
mod request;
mod retry;
mod rewrite;
pub mod rt;

pub use action::{
    Destination, DirectResponseAction, ForwardAction, MAX_DIRECT_RESPONSE_BODY, Mirror,
    RouteAction, pick_by_weight, pick_weighted,
};
pub use cors::{
    Cors, CorsOutcome, CorsPreflightDecision, OriginMatch, UnmatchedPreflights, cors_preflight,
    cors_response_headers, evaluate_cors,
};
pub use decide::{
    Decision, DirectResponseDecision, ForwardDecision, MirrorDecision, X_ENVOY_ORIGINAL_PATH,
    decide, effective_timeout, is_grpc_request, parse_grpc_timeout,
};
pub use error::InvalidAction;
pub use fault::{AbortStatus, Fault, FaultAbort, FaultAbortDecision, FaultDelay, grpc_status_code};
pub use headers::{HeaderOps, ResponseEdits, apply_header_ops};
pub use percent::{Denominator, FractionalPercent};
pub use redirect::{
    RedirectAction, RedirectDecision, RedirectPath, RedirectPort, build_redirect_location,
    https_redirect_location, process_request_host, require_tls_redirect,
};
pub use request::{RequestHead, UpstreamRequest};
pub use retry::{
    ISTIO_DEFAULT_NUM_RETRIES, ISTIO_DEFAULT_RETRY_ON, ISTIO_HOST_SELECTION_RETRY_MAX_ATTEMPTS,
    ISTIO_PREVIOUS_PRIORITIES_UPDATE_FREQUENCY, RetryPolicy, parse_retry_on,
};
pub use rewrite::{PathMatchKind, PathRewrite, RegexRewrite, prefix_rewrite, rewrite_path};

#[cfg(test)]
mod tests;
