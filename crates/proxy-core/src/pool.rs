//! Connection-pool limits (Envoy's circuit breakers) as admission decisions.
//!
//! Every limit is a counter shared by all requests of a cluster (and carried over when a new
//! configuration replaces the cluster, see [`ClusterSet`](crate::cluster::ClusterSet)). Admission
//! returns a permit that gives its slot back when dropped, or an [`Overflow`] that says which
//! limit tripped; [`Overflow::local_reply`] is Envoy's answer: a local `503` with
//! `x-envoy-overloaded: true`.
//!
//! How Envoy (and so the runtime driving this crate) uses each limit:
//!
//! * `max_connections` — checked before opening an upstream connection
//!   ([`Cluster::try_connection`](crate::cluster::Cluster::try_connection)). An overflow does not fail
//!   the request: it waits for a connection as a pending request.
//! * `max_pending_requests` — a request waiting for a connection holds a
//!   [`Cluster::try_pending`](crate::cluster::Cluster::try_pending) permit; overflow answers 503.
//! * `max_requests` — every upstream attempt holds a request permit
//!   ([`RetryState`](crate::retry::RetryState) takes it); overflow answers 503 and is never retried.
//! * `max_retries` — a retry holds a retry permit from the moment it is scheduled until its
//!   outcome is known (Envoy's `RetryStateImpl`); overflow means "do not retry", and the last
//!   upstream response is passed on.
//! * `max_requests_per_connection` — counted on the [`ConnectionPermit`]; a connection that
//!   reached it takes no further request and should be closed once idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

/// `x-envoy-overloaded`, set to `true` on local replies caused by a circuit breaker.
pub const X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");

/// A cluster's connection-pool limits (Istio `connectionPool`, Envoy `circuit_breakers` and
/// `max_requests_per_connection`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// `tcp.maxConnections`.
    pub max_connections: u32,
    /// `http.http1MaxPendingRequests`.
    pub max_pending_requests: u32,
    /// `http.http2MaxRequests` (Envoy `max_requests`: concurrent requests to the cluster).
    pub max_requests: u32,
    /// `http.maxRetries` (concurrent retries to the cluster).
    pub max_retries: u32,
    /// `http.maxRequestsPerConnection`; `None` is unlimited.
    pub max_requests_per_connection: Option<u32>,
}

impl Default for PoolLimits {
    /// Istio's defaults: every threshold `u32::MAX`, no per-connection limit.
    fn default() -> Self {
        Self {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            max_requests_per_connection: None,
        }
    }
}

impl PoolLimits {
    /// Sets `max_connections`.
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets `max_pending_requests`.
    pub fn with_max_pending_requests(mut self, n: u32) -> Self {
        self.max_pending_requests = n;
        self
    }

    /// Sets `max_requests`.
    pub fn with_max_requests(mut self, n: u32) -> Self {
        self.max_requests = n;
        self
    }

    /// Sets `max_retries`.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets `max_requests_per_connection`.
    pub fn with_max_requests_per_connection(mut self, n: Option<u32>) -> Self {
        self.max_requests_per_connection = n;
        self
    }
}

/// Which limit an [`Overflow`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoolResource {
    /// `max_connections`.
    Connections,
    /// `max_pending_requests`.
    PendingRequests,
    /// `max_requests`.
    Requests,
    /// `max_retries`.
    Retries,
}

/// A circuit breaker tripped: the resource is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// The limit that was hit.
    pub resource: PoolResource,
}

impl Overflow {
    /// Envoy's local reply for an overflowing request: `503`, `x-envoy-overloaded: true`,
    /// body `upstream connect error or disconnect/reset before headers. reset reason: overflow`.
    pub fn local_reply(&self) -> LocalReply {
        let mut reply = LocalReply::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        );
        reply
            .headers
            .insert(X_ENVOY_OVERLOADED, HeaderValue::from_static("true"));
        reply
    }
}

/// A response the gateway generates itself instead of forwarding an upstream one.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct LocalReply {
    /// The status.
    pub status: StatusCode,
    /// Headers (`content-type: text/plain`, plus `x-envoy-overloaded` for overflows).
    pub headers: HeaderMap,
    /// The body, in Envoy's wording.
    pub body: Bytes,
}

impl LocalReply {
    /// A plain-text reply.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Self {
            status,
            headers,
            body: body.into(),
        }
    }
}

/// The live counters of one cluster's pool; shared across configuration swaps.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    connections: AtomicU64,
    pending: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl PoolCounters {
    fn counter(&self, resource: PoolResource) -> &AtomicU64 {
        match resource {
            PoolResource::Connections => &self.connections,
            PoolResource::PendingRequests => &self.pending,
            PoolResource::Requests => &self.requests,
            PoolResource::Retries => &self.retries,
        }
    }

    /// Current value of a counter.
    pub(crate) fn current(&self, resource: PoolResource) -> u64 {
        self.counter(resource).load(Ordering::Acquire)
    }

    /// Envoy's `canCreate()` then `inc()`, atomically: succeeds while `current < max`.
    pub(crate) fn try_acquire(
        self: &Arc<Self>,
        resource: PoolResource,
        max: u32,
    ) -> Result<Permit, Overflow> {
        self.counter(resource)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < u64::from(max)).then_some(n + 1)
            })
            .map(|_| Permit {
                counters: Arc::clone(self),
                resource,
            })
            .map_err(|_| Overflow { resource })
    }
}

/// One slot of a pool resource, given back when dropped.
#[derive(Debug)]
pub struct Permit {
    counters: Arc<PoolCounters>,
    resource: PoolResource,
}

impl Permit {
    /// Which resource this permit holds.
    pub fn resource(&self) -> PoolResource {
        self.resource
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let _ = self.counters.counter(self.resource).fetch_update(
            Ordering::AcqRel,
            Ordering::Acquire,
            |n| Some(n.saturating_sub(1)),
        );
    }
}

/// A permit for one upstream connection, counting the requests sent on it.
#[derive(Debug)]
pub struct ConnectionPermit {
    _permit: Permit,
    requests: AtomicU32,
    max_requests: Option<u32>,
}

impl ConnectionPermit {
    pub(crate) fn new(permit: Permit, max_requests: Option<u32>) -> Self {
        Self {
            _permit: permit,
            requests: AtomicU32::new(0),
            max_requests,
        }
    }

    /// Counts one more request on this connection; `false` (and nothing counted) when the
    /// connection already carried `max_requests_per_connection` requests and must not be
    /// reused.
    pub fn try_take_request(&self) -> bool {
        let max = self.max_requests.unwrap_or(u32::MAX);
        self.requests
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether the connection may carry another request.
    pub fn accepts_requests(&self) -> bool {
        self.max_requests
            .is_none_or(|max| self.requests.load(Ordering::Acquire) < max)
    }

    /// Requests sent on this connection so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Acquire)
    }
}
