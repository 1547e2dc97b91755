//! Route actions: what a matched route asks for, built once from configuration.

pub use crate::error::InvalidAction;
pub use crate::headers::{HeaderOps, MAX_HEADER_MAP_ENTRIES, apply_header_ops};
pub use crate::percent::{Denominator, FractionalPercent};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use crate::cors::Cors;
use crate::fault::Fault;
use crate::redirect::RedirectAction;
use crate::retry::RetryPolicy;
use crate::rewrite::PathRewrite;

/// Largest direct-response body pilot allows (`max_direct_response_body_size_bytes`, 1 MiB).
pub const MAX_DIRECT_RESPONSE_BODY: usize = 1024 * 1024;

// === Destination ===

/// One destination of a forward action: an already-named cluster, its weight, and the
/// header operations and authority rewrite that belong to the destination.
///
/// Cluster naming (`outbound|port|subset|host` for Istio) is the caller's job.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    cluster: Arc<str>,
    weight: u32,
    request_headers: Arc<HeaderOps>,
    response_headers: Arc<HeaderOps>,
    authority: Option<String>,
}

impl Destination {
    /// A destination with no header operations.
    pub fn new(cluster: impl Into<Arc<str>>, weight: u32) -> Self {
        Self {
            cluster: cluster.into(),
            weight,
            request_headers: Arc::default(),
            response_headers: Arc::default(),
            authority: None,
        }
    }

    /// Request header operations of the destination. `host` entries become the
    /// destination's authority rewrite (see [`HeaderOps::take_authority`]).
    pub fn with_request_headers(mut self, mut ops: HeaderOps) -> Self {
        if let Some(authority) = ops.take_authority() {
            self.authority = Some(String::from_utf8_lossy(authority.as_bytes()).into_owned());
        }
        self.request_headers = Arc::new(ops);
        self
    }

    /// Response header operations of the destination.
    pub fn with_response_headers(mut self, ops: HeaderOps) -> Self {
        self.response_headers = Arc::new(ops);
        self
    }

    /// Authority rewrite of the destination. The rule's authority, when set, wins.
    pub fn with_authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into()).filter(|a| !a.is_empty());
        self
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The request header operations.
    pub fn request_headers(&self) -> &HeaderOps {
        &self.request_headers
    }

    /// The response header operations.
    pub fn response_headers(&self) -> &HeaderOps {
        &self.response_headers
    }

    /// The authority rewrite, if any.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    pub(crate) fn cluster_arc(&self) -> &Arc<str> {
        &self.cluster
    }

    pub(crate) fn request_ops(&self) -> &Arc<HeaderOps> {
        &self.request_headers
    }

    pub(crate) fn response_ops(&self) -> &Arc<HeaderOps> {
        &self.response_headers
    }
}

/// Envoy's weighted-cluster pick: `random % total_weight`, then the entry whose cumulative
/// interval `[w1+…+w(i-1), w1+…+wi)` holds it, walking in order. Zero-weight entries are
/// never picked. `None` when the total weight is zero.
///
/// ```
/// use portcullis_proxy_core::{action::{pick_weighted, Destination}};
///
/// let dests = [Destination::new("a", 1), Destination::new("b", 2)];
/// assert_eq!(pick_weighted(&dests, 0), Some(0));
/// assert_eq!(pick_weighted(&dests, 1), Some(1));
/// assert_eq!(pick_weighted(&dests, 5), Some(1)); // 5 % 3 = 2
/// ```
pub fn pick_weighted(destinations: &[Destination], random: u64) -> Option<usize> {
    pick_by_weight(destinations.iter().map(Destination::weight), random)
}

/// [`pick_weighted`] over bare weights (useful for TCP routes as well).
pub fn pick_by_weight(weights: impl Iterator<Item = u32> + Clone, random: u64) -> Option<usize> {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return None;
    }
    let selected = random % total;
    let mut end = 0u64;
    for (index, weight) in weights.enumerate() {
        end += u64::from(weight);
        if selected < end {
            return Some(index);
        }
    }
    None
}

// === Mirror ===

/// A request mirror policy: a copy of the (rewritten) request is sent, fire-and-forget, to
/// `cluster` with probability `percentage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    cluster: Arc<str>,
    percentage: FractionalPercent,
}

impl Mirror {
    /// Istio `mirror` + `mirrorPercentage`, or one `mirrors[]` entry: an unset percentage
    /// mirrors everything (100 out of 100).
    pub fn new(cluster: impl Into<Arc<str>>, percentage: Option<FractionalPercent>) -> Self {
        Self {
            cluster: cluster.into(),
            percentage: percentage.unwrap_or(FractionalPercent::HUNDRED_PERCENT),
        }
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The probability.
    pub fn percentage(&self) -> FractionalPercent {
        self.percentage
    }

    pub(crate) fn cluster_arc(&self) -> &Arc<str> {
        &self.cluster
    }
}

// === ForwardAction ===

/// A route that forwards to one of its destinations (Istio `HTTPRoute.route`).
///
/// Built once from configuration; [`decide`](crate::decide()) then runs per request without
/// compiling anything.
///
/// Istio's distinction between one destination and several matters and is kept:
///
/// * one destination: a plain cluster, its weight ignored; rule and destination header
///   operations form one block (rule first), so a destination `set` wins; the rule's
///   authority rewrite wins over the destination's;
/// * several: weighted clusters, zero-weight entries dropped (the total must stay > 0); the
///   destination's block runs before the rule's, so a rule `set` wins and a rule `remove`
///   deletes what a destination added; the destination's authority is applied, then the
///   rule's (which therefore wins).
///
/// Defaults as pilot sets them: no timeout (0, not Envoy's 15 s), `max_grpc_timeout` equal to
/// the timeout, [`RetryPolicy::istio_default`], no path rewrite, no mirrors, no fault, no CORS.
///
/// Equality compares configuration (regular expressions by their source text).
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAction {
    pub(crate) destinations: Vec<Destination>,
    pub(crate) weighted: bool,
    request_headers: Arc<HeaderOps>,
    response_headers: Arc<HeaderOps>,
    /// Single destination only: rule + destination blocks concatenated.
    pub(crate) merged_request: Arc<HeaderOps>,
    pub(crate) merged_response: Arc<HeaderOps>,
    rewrite_authority: Option<String>,
    header_authority: Option<String>,
    pub(crate) path_rewrite: Option<PathRewrite>,
    pub(crate) original_path_header: bool,
    pub(crate) timeout: Duration,
    pub(crate) max_grpc_timeout: Option<Duration>,
    pub(crate) retry_policy: Option<Arc<RetryPolicy>>,
    pub(crate) mirrors: Vec<Mirror>,
    pub(crate) fault: Option<Fault>,
    pub(crate) cors: Option<Cors>,
}

impl ForwardAction {
    /// A forward action over `destinations` (see the type documentation for how one and
    /// several destinations differ).
    ///
    /// Fails with [`InvalidAction::NoDestinations`] for an empty list and with
    /// [`InvalidAction::ZeroTotalWeight`] when several destinations weigh 0 in total.
    pub fn new(destinations: Vec<Destination>) -> Result<Self, InvalidAction> {
        let weighted = match destinations.len() {
            0 => return Err(InvalidAction::NoDestinations),
            1 => false,
            _ => true,
        };
        let destinations: Vec<Destination> = if weighted {
            destinations.into_iter().filter(|d| d.weight > 0).collect()
        } else {
            destinations
        };
        if destinations.is_empty() {
            return Err(InvalidAction::ZeroTotalWeight);
        }
        Ok(Self::build(destinations, weighted))
    }

    fn build(destinations: Vec<Destination>, weighted: bool) -> Self {
        let mut action = Self {
            destinations,
            weighted,
            request_headers: Arc::default(),
            response_headers: Arc::default(),
            merged_request: Arc::default(),
            merged_response: Arc::default(),
            rewrite_authority: None,
            header_authority: None,
            path_rewrite: None,
            original_path_header: true,
            timeout: Duration::ZERO,
            max_grpc_timeout: Some(Duration::ZERO),
            retry_policy: Some(Arc::new(RetryPolicy::istio_default())),
            mirrors: Vec::new(),
            fault: None,
            cors: None,
        };
        action.refresh_merged();
        action
    }

    /// A forward action to one cluster.
    pub fn to_cluster(cluster: impl Into<Arc<str>>) -> Self {
        Self::build(vec![Destination::new(cluster, 0)], false)
    }

    fn refresh_merged(&mut self) {
        if self.weighted {
            return;
        }
        if let Some(dest) = self.destinations.first() {
            self.merged_request = Arc::new(self.request_headers.concat(&dest.request_headers));
            self.merged_response = Arc::new(self.response_headers.concat(&dest.response_headers));
        }
    }

    /// Request header operations of the rule. `host` entries become the rule's authority
    /// rewrite (an explicit [`with_authority_rewrite`](Self::with_authority_rewrite) wins).
    pub fn with_request_headers(mut self, mut ops: HeaderOps) -> Self {
        self.header_authority = ops
            .take_authority()
            .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned());
        self.request_headers = Arc::new(ops);
        self.refresh_merged();
        self
    }

    /// Response header operations of the rule.
    pub fn with_response_headers(mut self, ops: HeaderOps) -> Self {
        self.response_headers = Arc::new(ops);
        self.refresh_merged();
        self
    }

    /// Istio `rewrite.authority` (Envoy `host_rewrite_literal`). Empty means unset.
    pub fn with_authority_rewrite(mut self, authority: impl Into<String>) -> Self {
        self.rewrite_authority = Some(authority.into()).filter(|a| !a.is_empty());
        self
    }

    /// Istio `rewrite.uri` / `rewrite.uriRegexRewrite`.
    pub fn with_path_rewrite(mut self, rewrite: PathRewrite) -> Self {
        self.path_rewrite = Some(rewrite);
        self
    }

    /// Whether a path rewrite records the original `:path` in `x-envoy-original-path`
    /// (Envoy does unless its router suppresses Envoy headers). Default: yes.
    pub fn with_original_path_header(mut self, insert: bool) -> Self {
        self.original_path_header = insert;
        self
    }

    /// Istio `timeout`: the route timeout, and `max_grpc_timeout` set to the same value, as
    /// pilot does. Zero disables the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.max_grpc_timeout = Some(timeout);
        self
    }

    /// Overrides `max_grpc_timeout` (`None`: the `grpc-timeout` header is ignored).
    pub fn with_max_grpc_timeout(mut self, max: Option<Duration>) -> Self {
        self.max_grpc_timeout = max;
        self
    }

    /// The retry policy; `None` for no retries (Istio `attempts: 0`).
    pub fn with_retry_policy(mut self, policy: Option<RetryPolicy>) -> Self {
        self.retry_policy = policy.map(Arc::new);
        self
    }

    /// Adds a mirror. As pilot does, a mirror whose percentage is zero is not configured.
    pub fn with_mirror(mut self, mirror: Mirror) -> Self {
        if !mirror.percentage.is_zero() {
            self.mirrors.push(mirror);
        }
        self
    }

    /// Fault injection of the rule.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// CORS policy of the rule.
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// The destinations left after dropping zero weights.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// Whether this is a weighted-clusters action (more than one destination configured).
    pub fn is_weighted(&self) -> bool {
        self.weighted
    }

    /// Sum of the weights (weighted actions).
    pub fn total_weight(&self) -> u64 {
        self.destinations.iter().map(|d| u64::from(d.weight)).sum()
    }

    /// The rule's request header operations.
    pub fn request_headers(&self) -> &HeaderOps {
        &self.request_headers
    }

    /// The rule's response header operations.
    pub fn response_headers(&self) -> &HeaderOps {
        &self.response_headers
    }

    pub(crate) fn response_ops(&self) -> &Arc<HeaderOps> {
        &self.response_headers
    }

    /// The rule's authority rewrite: `rewrite.authority`, else one taken from a `host`
    /// header operation.
    pub fn authority_rewrite(&self) -> Option<&str> {
        self.rewrite_authority
            .as_deref()
            .or(self.header_authority.as_deref())
    }

    /// The path rewrite, if any.
    pub fn path_rewrite(&self) -> Option<&PathRewrite> {
        self.path_rewrite.as_ref()
    }

    /// The route timeout (zero = none).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The `max_grpc_timeout` (zero = no cap; `None` = `grpc-timeout` ignored).
    pub fn max_grpc_timeout(&self) -> Option<Duration> {
        self.max_grpc_timeout
    }

    /// The retry policy, if any.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry_policy.as_deref()
    }

    /// The configured mirrors.
    pub fn mirrors(&self) -> &[Mirror] {
        &self.mirrors
    }

    /// The fault injection, if any.
    pub fn fault(&self) -> Option<&Fault> {
        self.fault.as_ref()
    }

    /// The CORS policy, if any.
    pub fn cors(&self) -> Option<&Cors> {
        self.cors.as_ref()
    }
}

// === DirectResponseAction ===

/// A route answered by the gateway itself (Istio `HTTPRoute.directResponse`).
#[derive(Debug, Clone, PartialEq)]
pub struct DirectResponseAction {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Bytes>,
    pub(crate) response_headers: Arc<HeaderOps>,
    pub(crate) fault: Option<Fault>,
    pub(crate) cors: Option<Cors>,
}

impl DirectResponseAction {
    /// A direct response with `status` (200–599) and an optional body (at most
    /// [`MAX_DIRECT_RESPONSE_BODY`] bytes).
    pub fn new(status: u16, body: Option<Bytes>) -> Result<Self, InvalidAction> {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| (200..600).contains(&s.as_u16()))
            .ok_or(InvalidAction::DirectResponseStatus { code: status })?;
        if let Some(body) = &body
            && body.len() > MAX_DIRECT_RESPONSE_BODY
        {
            return Err(InvalidAction::DirectResponseBodyTooLarge {
                len: body.len(),
                max: MAX_DIRECT_RESPONSE_BODY,
            });
        }
        Ok(Self {
            status,
            body,
            response_headers: Arc::default(),
            fault: None,
            cors: None,
        })
    }

    /// Response header operations of the rule.
    pub fn with_response_headers(mut self, ops: HeaderOps) -> Self {
        self.response_headers = Arc::new(ops);
        self
    }

    /// Fault injection of the rule.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// CORS policy of the rule.
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body, if any.
    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// The response header operations.
    pub fn response_headers(&self) -> &HeaderOps {
        &self.response_headers
    }
}

// === RouteAction ===

/// What a matched route does.
///
/// Equality compares configuration (regular expressions by their source text), so a
/// configuration reload can tell whether a route changed.
///
/// ```
/// use bytes::Bytes;
/// use portcullis_proxy_core::{action::{DirectResponseAction, ForwardAction, RouteAction}};
///
/// let healthz = RouteAction::from(DirectResponseAction::new(200, Some(Bytes::from_static(b"ok")))?);
/// let web: RouteAction = ForwardAction::to_cluster("outbound|80||web").into();
/// assert!(matches!(web, RouteAction::Forward(_)));
/// assert!(healthz.fault().is_none() && healthz.cors().is_none());
/// assert_ne!(healthz, web);
/// # Ok::<(), portcullis_proxy_core::action::InvalidAction>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Forward upstream.
    Forward(ForwardAction),
    /// Answer with a redirect.
    Redirect(RedirectAction),
    /// Answer with a fixed response.
    DirectResponse(DirectResponseAction),
}

impl RouteAction {
    /// The fault injection of the rule, whatever the action.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Self::Forward(a) => a.fault.as_ref(),
            Self::Redirect(a) => a.fault.as_ref(),
            Self::DirectResponse(a) => a.fault.as_ref(),
        }
    }

    /// The CORS policy of the rule, whatever the action.
    pub fn cors(&self) -> Option<&Cors> {
        match self {
            Self::Forward(a) => a.cors.as_ref(),
            Self::Redirect(a) => a.cors.as_ref(),
            Self::DirectResponse(a) => a.cors.as_ref(),
        }
    }
}

impl From<ForwardAction> for RouteAction {
    fn from(action: ForwardAction) -> Self {
        Self::Forward(action)
    }
}

impl From<RedirectAction> for RouteAction {
    fn from(action: RedirectAction) -> Self {
        Self::Redirect(action)
    }
}

impl From<DirectResponseAction> for RouteAction {
    fn from(action: DirectResponseAction) -> Self {
        Self::DirectResponse(action)
    }
}
