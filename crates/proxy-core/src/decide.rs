//! The per-request decision: from a route action and a request head to what happens.

pub use crate::headers::ResponseEdits;
pub use crate::request::{RequestHead, UpstreamRequest};

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION};

use crate::action::{DirectResponseAction, ForwardAction, RouteAction, pick_weighted};
use crate::cors::{CorsOutcome, CorsPreflightDecision, evaluate_cors};
use crate::fault::{Fault, FaultAbortDecision};
use crate::headers::{HeaderBlocks, apply_header_ops, set_all};
use crate::percent::FractionalPercent;
use crate::redirect::{RedirectAction, RedirectDecision, build_redirect_location};
use crate::retry::RetryPolicy;
use crate::rewrite::rewrite_path;
use crate::rt::RandomSource;

/// `x-envoy-original-path`, set to the original `:path` when a route rewrites the path.
pub const X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");

/// What to do with a request whose route is known.
///
/// A runtime answers the local decisions itself and forwards the rest, after any
/// fault-injected [`delay`](Self::delay):
///
/// ```
/// use http::{Method, StatusCode, uri::Scheme};
/// use portcullis_proxy_core::{fault::AbortStatus, decide::{Decision, RequestHead}, action::{DirectResponseAction, RouteAction}, decide, rt::SplitMix64};
///
/// let action = RouteAction::from(DirectResponseAction::new(503, None)?);
/// let head = RequestHead::new(Method::GET, Scheme::HTTP, "example.com", "/");
/// let status = match decide(&action, &head, &mut SplitMix64::new(7)) {
///     Decision::Forward(_forward) => StatusCode::OK, // the upstream's answer: send it there
///     Decision::DirectResponse(reply) => reply.status,
///     Decision::Redirect(redirect) => redirect.status,
///     Decision::FaultAbort(fault) => match fault.abort {
///         AbortStatus::Http(status) => status,
///         _ => StatusCode::OK, // gRPC: HTTP 200 with a grpc-status trailer
///     },
///     Decision::CorsPreflight(_) => StatusCode::OK,
///     _ => StatusCode::INTERNAL_SERVER_ERROR,
/// };
/// assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
/// # Ok::<(), portcullis_proxy_core::action::InvalidAction>(())
/// ```
// Forwarding is the common case; boxing it would cost an allocation per forwarded request.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Decision {
    /// Send it upstream.
    Forward(ForwardDecision),
    /// Answer with a redirect.
    Redirect(RedirectDecision),
    /// Answer with the route's fixed response.
    DirectResponse(DirectResponseDecision),
    /// Answer with an injected fault.
    FaultAbort(FaultAbortDecision),
    /// Answer a CORS preflight locally.
    CorsPreflight(CorsPreflightDecision),
}

impl Decision {
    /// The fault-injected delay to wait before acting on the decision, if one fired.
    pub fn delay(&self) -> Option<Duration> {
        match self {
            Self::Forward(d) => d.delay,
            Self::Redirect(d) => d.delay,
            Self::DirectResponse(d) => d.delay,
            Self::FaultAbort(d) => d.delay,
            Self::CorsPreflight(d) => d.delay,
        }
    }
}

/// A request to send upstream, with everything the route says about it.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ForwardDecision {
    /// The cluster to send to.
    pub cluster: Arc<str>,
    /// Index of the chosen destination in [`ForwardAction::destinations`].
    pub destination_index: usize,
    /// The request head after header operations, authority and path rewrites.
    pub upstream: UpstreamRequest,
    /// Edits to make to the upstream response.
    pub response: ResponseEdits,
    /// Route timeout; zero means none.
    pub timeout: Duration,
    /// Cap on a gRPC caller's `grpc-timeout`; zero means no cap, `None` means the header is
    /// ignored. See [`effective_timeout`].
    pub max_grpc_timeout: Option<Duration>,
    /// Retry policy; `None` means no retries.
    pub retry_policy: Option<Arc<RetryPolicy>>,
    /// Every configured mirror, with whether this request is mirrored to it.
    pub mirrors: Vec<MirrorDecision>,
    /// Fault-injected delay to wait before forwarding, if one fired.
    pub delay: Option<Duration>,
}

impl ForwardDecision {
    /// The timeout for this request: see [`effective_timeout`].
    pub fn effective_timeout(&self, request_headers: &HeaderMap) -> Duration {
        effective_timeout(self.timeout, self.max_grpc_timeout, request_headers)
    }
}

/// One mirror policy, evaluated for one request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorDecision {
    /// The mirror cluster.
    pub cluster: Arc<str>,
    /// Its configured probability.
    pub percentage: FractionalPercent,
    /// Whether this request is mirrored (send a copy of [`ForwardDecision::upstream`]).
    pub mirrored: bool,
}

/// A direct response: what [`decide`](decide()) returns for a direct-response route.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct DirectResponseDecision {
    /// The status.
    pub status: StatusCode,
    /// The body, if configured.
    pub body: Option<Bytes>,
    /// Response headers: `content-type: text/plain` when there is a non-empty body (as Envoy's
    /// local replies), then the rule's response header operations, then CORS headers for an
    /// allowed cross-origin request.
    pub headers: HeaderMap,
    /// Fault-injected delay to wait before replying, if one fired.
    pub delay: Option<Duration>,
}

/// Decides what to do with `head`, routed to `action`, exactly as Envoy configured by Istio's
/// pilot would.
///
/// The steps follow Envoy's filter order at an Istio gateway (fault → CORS → router):
///
/// 1. **Stream random.** One value is drawn first, always: Envoy's stream id, used both for
///    the weighted-cluster pick and for every mirror percentage.
/// 2. **Fault.** If the rule has a delay, one value is drawn and the delay fires when
///    [`FractionalPercent::sample`] says so; then, if the rule has an abort, one more value is
///    drawn and a firing abort ends the decision ([`Decision::FaultAbort`], after the delay).
/// 3. **CORS.** See [`evaluate_cors`]: an answered preflight ends the decision
///    ([`Decision::CorsPreflight`]); an allowed cross-origin request gets response headers.
/// 4. **Action.** Redirect ([`build_redirect_location`]), direct response, or forward:
///    pick the destination, apply header operations in Envoy's order, then the authority
///    rewrite, then the path rewrite (recording `x-envoy-original-path`), evaluate mirrors.
///
/// So a decision draws 1, 2 or 3 values, in that order; redirects and direct responses draw
/// the stream value too. Deciding never fails and never panics.
///
/// ```
/// use http::{Method, uri::Scheme};
/// use portcullis_proxy_core::{decide::{Decision, RequestHead}, action::{ForwardAction, RouteAction}, decide, rt::SplitMix64};
///
/// let action: RouteAction = ForwardAction::to_cluster("outbound|80||web.default.svc.cluster.local").into();
/// let head = RequestHead::new(Method::GET, Scheme::HTTP, "shop.example.com", "/cart");
/// let Decision::Forward(forward) = decide(&action, &head, &mut SplitMix64::new(1)) else {
///     panic!("a forward action forwards");
/// };
/// assert_eq!(&*forward.cluster, "outbound|80||web.default.svc.cluster.local");
/// assert_eq!(forward.upstream.path, "/cart");
/// assert_eq!(forward.delay, None);
/// ```
pub fn decide<R: RandomSource + ?Sized>(
    action: &RouteAction,
    head: &RequestHead,
    random: &mut R,
) -> Decision {
    match before_action(action, head, random) {
        ControlFlow::Break(decided) => decided,
        ControlFlow::Continue((stream_random, delay, cors)) => match action {
            RouteAction::Forward(forward) => decide_forward(
                forward,
                head,
                Sent {
                    headers: head.headers.clone(),
                    authority: head.authority.clone(),
                    path: head.path.clone(),
                },
                stream_random,
                delay,
                cors,
            ),
            RouteAction::Redirect(redirect) => {
                Decision::Redirect(decide_redirect(redirect, head, delay, cors.as_ref()))
            }
            RouteAction::DirectResponse(direct) => {
                Decision::DirectResponse(decide_direct(direct, delay, cors.as_ref()))
            }
        },
    }
}

/// [`decide`](decide()) for a caller done with the request's headers once it forwards: a
/// [`Decision::Forward`] takes `head.headers`, `head.authority` and `head.path` for the
/// upstream request (edited in place, as Envoy edits the downstream request) instead of
/// copying them, and leaves them empty; every other decision leaves `head` as it was. The
/// same draws, the same decision.
///
/// ```
/// use http::{HeaderValue, Method, uri::Scheme};
/// use portcullis_proxy_core::{decide::{Decision, RequestHead, decide_taking_headers}, action::{Destination, ForwardAction, RouteAction}};
/// use portcullis_proxy_core::rt::SplitMix64;
///
/// let forward = ForwardAction::new(vec![Destination::new("outbound|80||reviews", 100)])?;
/// let action = RouteAction::Forward(forward);
/// let mut head = RequestHead::new(Method::GET, Scheme::HTTP, "shop.example", "/cart");
/// head.headers.insert("x-user", HeaderValue::from_static("jason"));
/// let Decision::Forward(forward) = decide_taking_headers(&action, &mut head, &mut SplitMix64::new(1))
/// else {
///     unreachable!("a forward action forwards")
/// };
/// assert_eq!(forward.upstream.headers["x-user"], "jason");
/// assert_eq!(forward.upstream.path, "/cart");
/// assert!(head.headers.is_empty() && head.path.is_empty());
/// # Ok::<(), portcullis_proxy_core::action::InvalidAction>(())
/// ```
pub fn decide_taking_headers<R: RandomSource + ?Sized>(
    action: &RouteAction,
    head: &mut RequestHead,
    random: &mut R,
) -> Decision {
    match before_action(action, head, random) {
        ControlFlow::Break(decided) => decided,
        ControlFlow::Continue((stream_random, delay, cors)) => match action {
            RouteAction::Forward(forward) => {
                let sent = Sent {
                    headers: std::mem::take(&mut head.headers),
                    authority: std::mem::take(&mut head.authority),
                    path: std::mem::take(&mut head.path),
                };
                decide_forward(forward, head, sent, stream_random, delay, cors)
            }
            RouteAction::Redirect(redirect) => {
                Decision::Redirect(decide_redirect(redirect, head, delay, cors.as_ref()))
            }
            RouteAction::DirectResponse(direct) => {
                Decision::DirectResponse(decide_direct(direct, delay, cors.as_ref()))
            }
        },
    }
}

/// Steps 1–3 of [`decide`](decide()): the stream value, the fault, CORS; `Break` when one of them
/// decides.
fn before_action<R: RandomSource + ?Sized>(
    action: &RouteAction,
    head: &RequestHead,
    random: &mut R,
) -> ControlFlow<Decision, (u64, Option<Duration>, Option<HeaderMap>)> {
    let stream_random = random.next_u64();

    let mut delay = None;
    if let Some(fault) = action.fault() {
        match apply_fault(fault, random) {
            FaultOutcome::Abort(abort) => return ControlFlow::Break(Decision::FaultAbort(abort)),
            FaultOutcome::Continue(d) => delay = d,
        }
    }

    let mut cors_headers = None;
    if let Some(cors) = action.cors() {
        match evaluate_cors(cors, head) {
            CorsOutcome::Preflight(headers) => {
                return ControlFlow::Break(Decision::CorsPreflight(CorsPreflightDecision {
                    status: StatusCode::OK,
                    headers,
                    delay,
                }));
            }
            CorsOutcome::Allowed(headers) => cors_headers = Some(headers),
            CorsOutcome::Pass => {}
        }
    }
    ControlFlow::Continue((stream_random, delay, cors_headers))
}

enum FaultOutcome {
    Abort(FaultAbortDecision),
    Continue(Option<Duration>),
}

fn apply_fault<R: RandomSource + ?Sized>(fault: &Fault, random: &mut R) -> FaultOutcome {
    let delay = fault
        .delay()
        .filter(|d| d.percentage().sample(random.next_u64()))
        .map(|d| d.duration());
    match fault.abort() {
        Some(abort) if abort.percentage().sample(random.next_u64()) => {
            FaultOutcome::Abort(FaultAbortDecision {
                abort: abort.status(),
                delay,
            })
        }
        _ => FaultOutcome::Continue(delay),
    }
}

fn decide_redirect(
    redirect: &RedirectAction,
    head: &RequestHead,
    delay: Option<Duration>,
    cors: Option<&HeaderMap>,
) -> RedirectDecision {
    let location = build_redirect_location(redirect, head);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, value);
    }
    apply_header_ops(&redirect.response_headers, &mut headers);
    if let Some(cors) = cors {
        set_all(cors, &mut headers);
    }
    RedirectDecision {
        status: redirect.status,
        location,
        headers,
        delay,
    }
}

fn decide_direct(
    direct: &DirectResponseAction,
    delay: Option<Duration>,
    cors: Option<&HeaderMap>,
) -> DirectResponseDecision {
    let mut headers = HeaderMap::new();
    if direct.body.as_ref().is_some_and(|b| !b.is_empty()) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    apply_header_ops(&direct.response_headers, &mut headers);
    if let Some(cors) = cors {
        set_all(cors, &mut headers);
    }
    DirectResponseDecision {
        status: direct.status,
        body: direct.body.clone(),
        headers,
        delay,
    }
}

/// What a forward sends on of the request: copies, or the head's own (see
/// [`decide_taking_headers`]).
struct Sent {
    headers: HeaderMap,
    authority: String,
    path: String,
}

fn decide_forward(
    action: &ForwardAction,
    head: &RequestHead,
    sent: Sent,
    stream_random: u64,
    delay: Option<Duration>,
    cors: Option<HeaderMap>,
) -> Decision {
    let index = if action.weighted {
        pick_weighted(&action.destinations, stream_random).unwrap_or(0)
    } else {
        0
    };
    let Some(destination) = action.destinations.get(index) else {
        // `ForwardAction` always holds a destination; answer as Envoy does for a missing
        // cluster rather than panic.
        return Decision::DirectResponse(DirectResponseDecision {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: None,
            headers: HeaderMap::new(),
            delay,
        });
    };

    let Sent {
        mut headers,
        mut authority,
        path: original_path,
    } = sent;
    headers.remove(HOST);
    let response_ops = if action.weighted {
        apply_header_ops(destination.request_ops(), &mut headers);
        if let Some(a) = destination.authority() {
            a.clone_into(&mut authority);
        }
        apply_header_ops(action.request_headers(), &mut headers);
        if let Some(a) = action.authority_rewrite() {
            a.clone_into(&mut authority);
        }
        HeaderBlocks::Two([
            Arc::clone(destination.response_ops()),
            Arc::clone(action.response_ops()),
        ])
    } else {
        apply_header_ops(&action.merged_request, &mut headers);
        if let Some(a) = action
            .authority_rewrite()
            .or_else(|| destination.authority())
        {
            a.clone_into(&mut authority);
        }
        HeaderBlocks::One([Arc::clone(&action.merged_response)])
    };

    let path = match &action.path_rewrite {
        Some(rewrite) => {
            if action.original_path_header
                && let Ok(original) = HeaderValue::from_str(&original_path)
            {
                // A full map drops it (see `MAX_HEADER_MAP_ENTRIES`).
                let _ = headers.try_insert(X_ENVOY_ORIGINAL_PATH, original);
            }
            rewrite_path(&original_path, rewrite)
        }
        None => original_path,
    };

    let mirrors = action
        .mirrors
        .iter()
        .map(|mirror| MirrorDecision {
            cluster: Arc::clone(mirror.cluster_arc()),
            percentage: mirror.percentage(),
            mirrored: mirror.percentage().sample(stream_random),
        })
        .collect();

    Decision::Forward(ForwardDecision {
        cluster: Arc::clone(destination.cluster_arc()),
        destination_index: index,
        upstream: UpstreamRequest {
            method: head.method.clone(),
            scheme: head.scheme.clone(),
            authority,
            path,
            headers,
        },
        response: ResponseEdits::new(response_ops, cors),
        timeout: action.timeout,
        max_grpc_timeout: action.max_grpc_timeout,
        retry_policy: action.retry_policy.clone(),
        mirrors,
        delay,
    })
}

// === timeouts ===

/// Whether the request is gRPC by Envoy's rule: `content-type` is `application/grpc`, or
/// starts with `application/grpc+` or `application/grpc;`.
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|ct| {
        let ct = ct.as_bytes();
        ct == b"application/grpc"
            || ct.starts_with(b"application/grpc+")
            || ct.starts_with(b"application/grpc;")
    })
}

/// Parses a `grpc-timeout` value: 1–8 ASCII digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
///
/// ```
/// use std::time::Duration;
/// use http::HeaderValue;
/// use portcullis_proxy_core::decide::parse_grpc_timeout;
///
/// assert_eq!(parse_grpc_timeout(&HeaderValue::from_static("250m")), Some(Duration::from_millis(250)));
/// assert_eq!(parse_grpc_timeout(&HeaderValue::from_static("1x")), None);
/// ```
pub fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let bytes = value.as_bytes();
    let (unit, digits) = bytes.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The timeout Envoy's router applies to a request (zero = none):
///
/// * not gRPC, or `max_grpc_timeout` unset: the route `timeout`;
/// * gRPC with `max_grpc_timeout` set: the caller's `grpc-timeout` (none if absent or
///   unparsable), capped by `max_grpc_timeout` unless that is zero.
///
/// Pilot sets `max_grpc_timeout` to the route timeout, so with Istio a gRPC request without
/// `grpc-timeout` gets the route timeout, and one with it gets the smaller of the two (or its
/// own when the route has none).
pub fn effective_timeout(
    timeout: Duration,
    max_grpc_timeout: Option<Duration>,
    request_headers: &HeaderMap,
) -> Duration {
    let Some(max) = max_grpc_timeout else {
        return timeout;
    };
    if !is_grpc_request(request_headers) {
        return timeout;
    }
    let requested = request_headers
        .get("grpc-timeout")
        .and_then(parse_grpc_timeout)
        .unwrap_or(Duration::ZERO);
    if !max.is_zero() && (requested.is_zero() || requested > max) {
        max
    } else {
        requested
    }
}
