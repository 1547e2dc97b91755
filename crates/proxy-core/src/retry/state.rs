//! The per-request upstream state machine: attempts, retries, back-off and timeouts.
//!
//! [`RetryState`] owns nothing but bookkeeping. The runtime feeds it [`Event`]s (a response
//! head arrived, a connection error, a timer fired, the response finished) and does what the
//! returned [`Action`] says (send an attempt to an endpoint, wait, forward the response, answer
//! locally, reset). It picks endpoints from the [`Cluster`] it was started with, holds that
//! cluster's pool permits, and reports every attempt's outcome to outlier detection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http::header::HeaderMap;
use smallvec::SmallVec;

use super::policy::{ErrorKind, RetryOn, RetryPolicy, X_ENVOY_RETRIABLE_STATUS_CODES};
use crate::cluster::{ActiveRequest, Cluster, EndpointKey, PickContext, Picked};
use crate::failure::DownstreamFailure;
use crate::outlier::Outcome;
use crate::pool::{LocalReply, Overflow, Permit, PoolResource};
use crate::rt::{Instant, RandomSource};

/// Envoy's default retry back-off base interval.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);

/// Something that happened to the request, reported by the runtime.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The current attempt's response head arrived (status and headers, e.g. `grpc-status`
    /// of a trailers-only gRPC response).
    Response {
        /// The status.
        status: StatusCode,
        /// The headers.
        headers: &'a HeaderMap,
    },
    /// The current attempt failed before a response head (or, after [`Action::Deliver`],
    /// while the body was streaming).
    Error(ErrorKind),
    /// A timer fired: the state machine works out which deadline passed (see
    /// [`RetryState::next_deadline`]). Early or stale timers are ignored.
    Timer,
    /// The per-try timer of the current attempt fired.
    PerTryTimeout,
    /// The request's overall timer fired.
    GlobalTimeout,
    /// The delivered response finished (end of stream).
    ResponseComplete,
}

/// One upstream attempt to make.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Where to send it.
    pub endpoint: EndpointKey,
    /// 1 for the first attempt, 2 for the first retry, …
    pub number: u32,
    /// When to report a timer ([`Event::Timer`]): the earlier of the per-try and the overall
    /// deadlines, if any.
    pub deadline: Option<Instant>,
}

/// Why the state machine answered locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// A circuit breaker tripped.
    Overflow(PoolResource),
    /// No endpoint to pick.
    NoHealthyUpstream,
    /// The overall request timeout fired.
    Timeout,
    /// The last attempt hit its per-try timeout and no retry was left or allowed.
    PerTryTimeout,
    /// The last attempt failed to connect or was reset, and no retry was left or allowed.
    Upstream(ErrorKind),
    /// The client failed the request (see [`DownstreamFailure`]); the reply is
    /// [`DownstreamFailure::local_reply`].
    Downstream(DownstreamFailure),
}

/// What the runtime must do next.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Abandon the current attempt, if any, and send a new one.
    Send(Attempt),
    /// Abandon the current attempt and report [`Event::Timer`] at `until`; a retry follows.
    Backoff {
        /// When the back-off ends.
        until: Instant,
    },
    /// Forward the response head just reported (and then its body) downstream; report
    /// [`Event::ResponseComplete`] at the end, and keep reporting timers: the overall timeout
    /// still applies.
    Deliver,
    /// Abandon the current attempt, if any, and answer with this local reply.
    GiveUp {
        /// The reply.
        reply: LocalReply,
        /// Why.
        reason: GiveUpReason,
    },
    /// The response was already being delivered and failed or timed out: reset the
    /// downstream stream.
    Reset,
    /// The request is finished.
    Done,
    /// Nothing to do (a stale timer, or an event that does not apply now).
    Ignore,
}

#[derive(Debug)]
struct InFlight {
    picked: Picked,
    per_try_deadline: Option<Instant>,
    _request: Permit,
    _active: ActiveRequest,
}

#[derive(Debug)]
enum Phase {
    Idle,
    InFlight(InFlight),
    Backoff(Instant),
    Delivering(Option<InFlight>),
    Finished,
}

/// Envoy's jittered exponential back-off: the n-th wait is `random % interval` milliseconds,
/// the interval starting at the base and doubling up to `10 × base`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    next_ms: u64,
    max_ms: u64,
}

impl Backoff {
    pub(crate) fn new(base: Duration) -> Self {
        let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX).max(1);
        Self {
            next_ms: base_ms,
            max_ms: base_ms.saturating_mul(10),
        }
    }

    pub(crate) fn next<R: RandomSource + ?Sized>(&mut self, random: &mut R) -> Duration {
        let interval = self.next_ms.max(1);
        self.next_ms = if interval < self.max_ms / 2 {
            interval * 2
        } else {
            self.max_ms
        };
        Duration::from_millis((random.next_u64() % interval).min(self.max_ms))
    }
}

/// The state machine of one request's upstream attempts: retries with Envoy's semantics
/// (conditions, status codes, back-off, `previous_hosts`, host-selection attempts, the
/// cluster's `max_retries` budget), the per-try timeout and the overall request timeout.
///
/// Driving it:
///
/// 1. [`start`](Self::start) → usually [`Action::Send`]: connect to `attempt.endpoint` and
///    send the request; arm a timer for `attempt.deadline`.
/// 2. Report what happens with [`on_event`](Self::on_event): a response head, a connection
///    error, a timer. The answer is the next [`Action`]; for [`Action::Backoff`] wait until
///    `until` and report [`Event::Timer`], which yields the retry's [`Action::Send`].
/// 3. After [`Action::Deliver`], stream the response and report
///    [`Event::ResponseComplete`] → [`Action::Done`].
///
/// The request body must stay replayable until the response is delivered (or the runtime
/// passes `None` as policy). Dropping the state machine releases every pool permit it holds.
///
/// Random draws: one per back-off, plus whatever [`Cluster::pick`] and [`Cluster::report`]
/// draw.
///
/// One request without a retry policy, answered at once (the crate documentation drives
/// retries):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use http::{HeaderMap, StatusCode};
/// use portcullis_proxy_core::{retry::{Action, Event, RetryState}, cluster::{Cluster, ClusterSpec, EndpointSpec}, rt::{Clock, ManualClock, SplitMix64}};
///
/// let clock = ManualClock::new();
/// let mut random = SplitMix64::new(1);
/// let spec = ClusterSpec::new("outbound|80||web", vec![EndpointSpec::new("10.0.0.1", 80)]);
/// let cluster = Arc::new(Cluster::build(&spec, None, clock.now())?);
/// let mut request = RetryState::new(cluster, None, Duration::from_secs(15));
///
/// let Action::Send(attempt) = request.start(clock.now(), &mut random) else {
///     panic!("a healthy endpoint is tried");
/// };
/// assert_eq!((attempt.endpoint.address(), attempt.number), ("10.0.0.1", 1));
/// let headers = HeaderMap::new();
/// let response = Event::Response { status: StatusCode::OK, headers: &headers };
/// assert_eq!(request.on_event(response, clock.now(), &mut random), Action::Deliver);
/// assert_eq!(request.on_event(Event::ResponseComplete, clock.now(), &mut random), Action::Done);
/// # Ok::<(), portcullis_proxy_core::cluster::InvalidCluster>(())
/// ```
#[derive(Debug)]
pub struct RetryState {
    cluster: Arc<Cluster>,
    policy: Option<Arc<RetryPolicy>>,
    retry_on: RetryOn,
    /// The policy's retriable codes and the request header's: inline, as there are few.
    codes: SmallVec<[u16; 4]>,
    timeout: Duration,
    hash: Option<u64>,
    original_destination: Option<SocketAddr>,
    deadline: Option<Instant>,
    retries_left: u32,
    attempts: u32,
    /// Inline for the first attempt and one retry: most requests make one.
    tried: SmallVec<[EndpointKey; 2]>,
    backoff: Backoff,
    retry_permit: Option<Permit>,
    phase: Phase,
}

impl RetryState {
    /// A state machine for one request to `cluster` with the route's retry `policy` (`None`:
    /// a single attempt) and overall `timeout` (zero: none; for Istio, the forward decision's
    /// `effective_timeout`).
    pub fn new(cluster: Arc<Cluster>, policy: Option<Arc<RetryPolicy>>, timeout: Duration) -> Self {
        let (retry_on, codes, retries_left, base) = match &policy {
            Some(p) => (
                p.conditions(),
                SmallVec::from_slice(p.retriable_status_codes()),
                p.num_retries(),
                p.backoff_base_interval().unwrap_or(DEFAULT_BACKOFF_BASE),
            ),
            None => (RetryOn::default(), SmallVec::new(), 0, DEFAULT_BACKOFF_BASE),
        };
        Self {
            cluster,
            policy,
            retry_on,
            codes,
            timeout,
            hash: None,
            original_destination: None,
            deadline: None,
            retries_left,
            attempts: 0,
            tried: SmallVec::new(),
            backoff: Backoff::new(base),
            retry_permit: None,
            phase: Phase::Idle,
        }
    }

    /// The request hash for consistent-hash load balancing.
    pub fn with_hash(mut self, hash: Option<u64>) -> Self {
        self.hash = hash;
        self
    }

    /// The connection's original destination, for passthrough clusters.
    pub fn with_original_destination(mut self, addr: Option<SocketAddr>) -> Self {
        self.original_destination = addr;
        self
    }

    /// Adds the codes of the request's `x-envoy-retriable-status-codes` header (used when
    /// `retriable-status-codes` is among the conditions).
    pub fn with_request_headers(mut self, headers: &HeaderMap) -> Self {
        for value in headers.get_all(X_ENVOY_RETRIABLE_STATUS_CODES) {
            let Ok(text) = value.to_str() else { continue };
            self.codes
                .extend(text.split(',').filter_map(|c| c.trim().parse::<u16>().ok()));
        }
        self
    }

    /// The cluster the request started with.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Endpoints tried so far, in order.
    pub fn tried(&self) -> &[EndpointKey] {
        &self.tried
    }

    /// The endpoint of the attempt in flight or being delivered.
    pub fn current_endpoint(&self) -> Option<&EndpointKey> {
        match &self.phase {
            Phase::InFlight(f) | Phase::Delivering(Some(f)) => Some(f.picked.key()),
            _ => None,
        }
    }

    /// When the runtime should next report [`Event::Timer`], if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let phase_deadline = match &self.phase {
            Phase::InFlight(f) => f.per_try_deadline,
            Phase::Backoff(until) => Some(*until),
            Phase::Delivering(_) => None,
            Phase::Idle | Phase::Finished => return None,
        };
        min_opt(phase_deadline, self.deadline)
    }

    /// Starts the request: admission and the first attempt.
    pub fn start<R: RandomSource + ?Sized>(&mut self, now: Instant, random: &mut R) -> Action {
        if !matches!(self.phase, Phase::Idle) {
            return Action::Ignore;
        }
        if !self.timeout.is_zero() {
            self.deadline = Some(now.saturating_add(self.timeout));
        }
        self.send_attempt(now, random)
    }

    /// Feeds an event; see the type documentation.
    pub fn on_event<R: RandomSource + ?Sized>(
        &mut self,
        event: Event<'_>,
        now: Instant,
        random: &mut R,
    ) -> Action {
        match event {
            Event::Timer => self.on_timer(now, random),
            Event::GlobalTimeout => self.on_global_timeout(now, random),
            Event::PerTryTimeout => self.on_per_try_timeout(now, random),
            Event::Response { status, headers } => self.on_response(status, headers, now, random),
            Event::Error(kind) => self.on_error(kind, now, random),
            Event::ResponseComplete => match self.phase {
                Phase::Delivering(_) => {
                    self.finish();
                    Action::Done
                }
                _ => Action::Ignore,
            },
        }
    }

    fn on_timer<R: RandomSource + ?Sized>(&mut self, now: Instant, random: &mut R) -> Action {
        if self.deadline.is_some_and(|d| now >= d) {
            return self.on_global_timeout(now, random);
        }
        match &self.phase {
            Phase::InFlight(f) if f.per_try_deadline.is_some_and(|d| now >= d) => {
                self.on_per_try_timeout(now, random)
            }
            Phase::Backoff(until) if now >= *until => self.send_attempt(now, random),
            _ => Action::Ignore,
        }
    }

    fn on_global_timeout<R: RandomSource + ?Sized>(
        &mut self,
        now: Instant,
        random: &mut R,
    ) -> Action {
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::InFlight(f) => {
                self.cluster
                    .report(&f.picked, Outcome::Timeout, now, random);
                self.give_up(GiveUpReason::Timeout)
            }
            Phase::Backoff(_) => self.give_up(GiveUpReason::Timeout),
            Phase::Delivering(_) => {
                self.finish();
                Action::Reset
            }
            phase @ (Phase::Idle | Phase::Finished) => {
                self.phase = phase;
                Action::Ignore
            }
        }
    }

    fn on_per_try_timeout<R: RandomSource + ?Sized>(
        &mut self,
        now: Instant,
        random: &mut R,
    ) -> Action {
        if !matches!(self.phase, Phase::InFlight(_)) {
            return Action::Ignore;
        }
        let Phase::InFlight(f) = std::mem::replace(&mut self.phase, Phase::Finished) else {
            return Action::Ignore;
        };
        self.cluster
            .report(&f.picked, Outcome::Timeout, now, random);
        drop(f);
        let retriable = self.retry_on.timeout_is_retriable();
        self.retry_or(retriable, now, random, |s| {
            s.give_up(GiveUpReason::PerTryTimeout)
        })
    }

    fn on_response<R: RandomSource + ?Sized>(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        now: Instant,
        random: &mut R,
    ) -> Action {
        if !matches!(self.phase, Phase::InFlight(_)) {
            return Action::Ignore;
        }
        let Phase::InFlight(f) = std::mem::replace(&mut self.phase, Phase::Finished) else {
            return Action::Ignore;
        };
        self.cluster
            .report(&f.picked, Outcome::ConnectSucceeded, now, random);
        self.cluster
            .report(&f.picked, Outcome::Response(status.as_u16()), now, random);
        let retriable = self
            .retry_on
            .response_is_retriable(status, headers, &self.codes);
        let mut delivered = Some(f);
        self.retry_or(retriable, now, random, |s| {
            s.phase = Phase::Delivering(delivered.take());
            Action::Deliver
        })
    }

    fn on_error<R: RandomSource + ?Sized>(
        &mut self,
        kind: ErrorKind,
        now: Instant,
        random: &mut R,
    ) -> Action {
        match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::InFlight(f) => {
                if let ErrorKind::Downstream(failure) = kind {
                    // The client's fault: the endpoint's health, the retry budget and the
                    // retry policy are not the client's to spend.
                    drop(f);
                    return self.give_up(GiveUpReason::Downstream(failure));
                }
                let outcome = match kind {
                    ErrorKind::ConnectFailure => Some(Outcome::ConnectFailed),
                    ErrorKind::ConnectTimeout => Some(Outcome::Timeout),
                    ErrorKind::RefusedStream | ErrorKind::Reset | ErrorKind::ProtocolError => {
                        Some(Outcome::Reset)
                    }
                    ErrorKind::Overflow | ErrorKind::Downstream(_) => None,
                };
                if let Some(outcome) = outcome {
                    self.cluster.report(&f.picked, outcome, now, random);
                }
                drop(f);
                if kind == ErrorKind::Overflow {
                    return self.overflow(Overflow {
                        resource: PoolResource::PendingRequests,
                    });
                }
                let retriable = self.retry_on.error_is_retriable(kind);
                self.retry_or(retriable, now, random, |s| {
                    s.give_up(GiveUpReason::Upstream(kind))
                })
            }
            Phase::Delivering(_) => {
                self.finish();
                Action::Reset
            }
            phase => {
                self.phase = phase;
                Action::Ignore
            }
        }
    }

    /// Schedules a retry if `retriable` and allowed (retries left, retry budget), else runs
    /// `otherwise`. Envoy's `shouldRetry`: the previous retry's permit is released first.
    fn retry_or<R: RandomSource + ?Sized>(
        &mut self,
        retriable: bool,
        now: Instant,
        random: &mut R,
        otherwise: impl FnOnce(&mut Self) -> Action,
    ) -> Action {
        self.retry_permit = None;
        if !retriable || self.retries_left == 0 {
            return otherwise(self);
        }
        self.retries_left -= 1;
        match self.cluster.try_retry() {
            Ok(permit) => self.retry_permit = Some(permit),
            Err(_) => return otherwise(self),
        }
        let until = now.saturating_add(self.backoff.next(random));
        self.phase = Phase::Backoff(until);
        Action::Backoff { until }
    }

    fn send_attempt<R: RandomSource + ?Sized>(&mut self, now: Instant, random: &mut R) -> Action {
        let request = match self.cluster.try_request() {
            Ok(permit) => permit,
            Err(overflow) => return self.overflow(overflow),
        };
        let (avoid, max_attempts): (&[EndpointKey], u32) = match &self.policy {
            Some(p) if p.previous_hosts() => (&self.tried, p.host_selection_retry_max_attempts()),
            _ => (&[], 1),
        };
        let ctx = PickContext {
            hash: self.hash,
            original_destination: self.original_destination,
            avoid,
            max_attempts,
        };
        let Some(picked) = self.cluster.pick(&ctx, now, random) else {
            return self.give_up(GiveUpReason::NoHealthyUpstream);
        };
        self.attempts = self.attempts.saturating_add(1);
        self.tried.push(picked.key().clone());
        let per_try_deadline = self
            .policy
            .as_ref()
            .and_then(|p| p.per_try_timeout())
            .filter(|d| !d.is_zero())
            .map(|d| now.saturating_add(d));
        let attempt = Attempt {
            endpoint: picked.key().clone(),
            number: self.attempts,
            deadline: min_opt(per_try_deadline, self.deadline),
        };
        self.phase = Phase::InFlight(InFlight {
            _active: picked.start_request(),
            picked,
            per_try_deadline,
            _request: request,
        });
        Action::Send(attempt)
    }

    fn overflow(&mut self, overflow: Overflow) -> Action {
        self.finish();
        Action::GiveUp {
            reply: overflow.local_reply(),
            reason: GiveUpReason::Overflow(overflow.resource),
        }
    }

    fn give_up(&mut self, reason: GiveUpReason) -> Action {
        self.finish();
        let reply = match reason {
            GiveUpReason::Overflow(resource) => Overflow { resource }.local_reply(),
            GiveUpReason::NoHealthyUpstream => {
                LocalReply::new(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream")
            }
            GiveUpReason::Timeout | GiveUpReason::PerTryTimeout => {
                LocalReply::new(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
            }
            GiveUpReason::Downstream(failure) => failure.local_reply(),
            GiveUpReason::Upstream(kind) => {
                let retried = if self.attempts > 1 {
                    "retried and the latest "
                } else {
                    ""
                };
                LocalReply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "upstream connect error or disconnect/reset before headers. {retried}reset reason: {}",
                        kind.reason()
                    ),
                )
            }
        };
        Action::GiveUp { reply, reason }
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        self.retry_permit = None;
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
