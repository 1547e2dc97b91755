//! Route retry policy, with Istio's defaults and its translation of `HTTPRetry`, and what it
//! judges: the `retry_on` conditions ([`RetryOn`]) and how an attempt failed ([`ErrorKind`]).

use std::time::Duration;

use http::StatusCode;
use http::header::{HeaderMap, HeaderName};

use crate::failure::{DownstreamFailure, FailureOrigin};

/// Istio's default `retry_on`: no `5xx`, and `retriable-status-codes` without any code
/// (inert unless the request carries `x-envoy-retriable-status-codes`).
pub const ISTIO_DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Istio's default number of retries.
pub const ISTIO_DEFAULT_NUM_RETRIES: u32 = 2;

/// Istio's `host_selection_retry_max_attempts`.
pub const ISTIO_HOST_SELECTION_RETRY_MAX_ATTEMPTS: u32 = 5;

/// Istio's `update_frequency` of the `previous_priorities` retry priority.
pub const ISTIO_PREVIOUS_PRIORITIES_UPDATE_FREQUENCY: u32 = 2;

/// A route's retry policy, in Envoy's terms (`RetryPolicy` of the route action).
///
/// This is configuration only: the state machine that counts attempts, backs off and picks
/// hosts is not part of the decision half of the crate.
///
/// ```
/// use std::time::Duration;
/// use portcullis_proxy_core::retry::RetryPolicy;
///
/// let policy = RetryPolicy::from_istio(3, Some(Duration::from_secs(2)), "gateway-error,503", false)
///     .expect("attempts > 0");
/// assert_eq!(policy.num_retries(), 3);
/// assert_eq!(policy.retry_on(), "gateway-error,retriable-status-codes");
/// assert_eq!(policy.retriable_status_codes(), [503]);
/// assert!(RetryPolicy::from_istio(0, None, "", false).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    num_retries: u32,
    retry_on: String,
    /// `retry_on` parsed once, when the policy is built, not per request.
    conditions: RetryOn,
    retriable_status_codes: Vec<u16>,
    per_try_timeout: Option<Duration>,
    previous_hosts: bool,
    host_selection_retry_max_attempts: u32,
    previous_priorities_update_frequency: Option<u32>,
    backoff_base_interval: Option<Duration>,
}

impl RetryPolicy {
    /// The policy pilot gives a route without `retries` (and no mesh
    /// `defaultHttpRetryPolicy`): 2 retries on [`ISTIO_DEFAULT_RETRY_ON`], no status codes,
    /// the `previous_hosts` host predicate with 5 host-selection attempts, no per-try timeout.
    pub fn istio_default() -> Self {
        Self {
            num_retries: ISTIO_DEFAULT_NUM_RETRIES,
            retry_on: ISTIO_DEFAULT_RETRY_ON.to_owned(),
            conditions: RetryOn::parse(ISTIO_DEFAULT_RETRY_ON),
            retriable_status_codes: Vec::new(),
            per_try_timeout: None,
            previous_hosts: true,
            host_selection_retry_max_attempts: ISTIO_HOST_SELECTION_RETRY_MAX_ATTEMPTS,
            previous_priorities_update_frequency: None,
            backoff_base_interval: None,
        }
    }

    /// Pilot's translation of an `HTTPRetry` (`retry.go: ConvertPolicy`):
    ///
    /// * `attempts <= 0` → `None`: no retry policy at all;
    /// * otherwise the default policy with `num_retries = attempts`;
    /// * a non-empty `retry_on` replaces the default list, parsed by [`parse_retry_on`]
    ///   (integer tokens that are HTTP status codes go to the status-code list and
    ///   `retriable-status-codes` is appended when missing);
    /// * `per_try_timeout` is copied; `retry_remote_localities` adds the
    ///   `previous_priorities` retry priority (update frequency 2).
    ///
    /// `retryIgnorePreviousHosts`, `backoff`, and the consistent-hash exception are applied
    /// with [`with_previous_hosts`](Self::with_previous_hosts) and
    /// [`with_backoff`](Self::with_backoff).
    pub fn from_istio(
        attempts: i32,
        per_try_timeout: Option<Duration>,
        retry_on: &str,
        retry_remote_localities: bool,
    ) -> Option<Self> {
        let num_retries = u32::try_from(attempts).ok().filter(|&n| n > 0)?;
        let mut policy = Self::istio_default();
        policy.num_retries = num_retries;
        if !retry_on.is_empty() {
            let (on, codes) = parse_retry_on(retry_on);
            policy.retry_on = on;
            policy.retriable_status_codes = codes;
            if !policy.retriable_status_codes.is_empty()
                && !policy.retry_on.contains("retriable-status-codes")
            {
                policy.retry_on.push_str(",retriable-status-codes");
            }
            policy.conditions = RetryOn::parse(&policy.retry_on);
        }
        policy.per_try_timeout = per_try_timeout;
        if retry_remote_localities {
            policy.previous_priorities_update_frequency =
                Some(ISTIO_PREVIOUS_PRIORITIES_UPDATE_FREQUENCY);
        }
        Some(policy)
    }

    /// Whether retries avoid hosts already tried (`envoy.retry_host_predicates.previous_hosts`).
    ///
    /// Pilot drops the predicate from the default when the single destination uses a
    /// consistent-hash load balancer, and sets it to exactly `retryIgnorePreviousHosts` when
    /// that field is present (applied in that order).
    pub fn with_previous_hosts(mut self, previous_hosts: bool) -> Self {
        self.previous_hosts = previous_hosts;
        self
    }

    /// Istio `backoff`: the base interval of Envoy's retry back-off.
    pub fn with_backoff(mut self, base_interval: Duration) -> Self {
        self.backoff_base_interval = Some(base_interval);
        self
    }

    /// Sets the number of retries.
    pub fn with_num_retries(mut self, num_retries: u32) -> Self {
        self.num_retries = num_retries;
        self
    }

    /// Sets the per-try timeout.
    pub fn with_per_try_timeout(mut self, per_try_timeout: Option<Duration>) -> Self {
        self.per_try_timeout = per_try_timeout;
        self
    }

    /// Maximum retries after the first attempt.
    pub fn num_retries(&self) -> u32 {
        self.num_retries
    }

    /// Envoy's `retry_on` string, exactly as pilot builds it.
    pub fn retry_on(&self) -> &str {
        &self.retry_on
    }

    /// [`retry_on`](Self::retry_on) as Envoy's condition bits (unknown conditions ignored).
    pub fn conditions(&self) -> RetryOn {
        self.conditions
    }

    /// The non-empty comma-separated conditions of [`retry_on`](Self::retry_on).
    pub fn retry_on_conditions(&self) -> impl Iterator<Item = &str> + '_ {
        self.retry_on
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }

    /// Status codes retried under `retriable-status-codes`.
    pub fn retriable_status_codes(&self) -> &[u16] {
        &self.retriable_status_codes
    }

    /// Timeout of each attempt, if any.
    pub fn per_try_timeout(&self) -> Option<Duration> {
        self.per_try_timeout
    }

    /// Whether the `previous_hosts` host predicate is on.
    pub fn previous_hosts(&self) -> bool {
        self.previous_hosts
    }

    /// How many times host selection is retried to satisfy the host predicate.
    pub fn host_selection_retry_max_attempts(&self) -> u32 {
        self.host_selection_retry_max_attempts
    }

    /// Update frequency of the `previous_priorities` retry priority, when it is on.
    pub fn previous_priorities_update_frequency(&self) -> Option<u32> {
        self.previous_priorities_update_frequency
    }

    /// Base interval of the retry back-off, if configured.
    pub fn backoff_base_interval(&self) -> Option<Duration> {
        self.backoff_base_interval
    }
}

/// Pilot's `parseRetryOn`: splits on `,`, trims, drops empty tokens; a token that parses as a
/// decimal integer (Go `strconv.Atoi`: optional sign, digits) naming a known HTTP status goes
/// to the status-code list, every other token is kept verbatim, in order.
///
/// ```
/// use portcullis_proxy_core::retry::parse_retry_on;
///
/// assert_eq!(parse_retry_on(" 5xx , 404,,503"), ("5xx".to_owned(), vec![404, 503]));
/// assert_eq!(parse_retry_on("599,reset"), ("599,reset".to_owned(), vec![]));
/// ```
pub fn parse_retry_on(retry_on: &str) -> (String, Vec<u16>) {
    let mut kept = String::new();
    let mut codes = Vec::new();
    for token in retry_on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match go_atoi(token).and_then(known_status) {
            Some(code) => codes.push(code),
            None => {
                if !kept.is_empty() {
                    kept.push(',');
                }
                kept.push_str(token);
            }
        }
    }
    (kept, codes)
}

/// Go's `strconv.Atoi` for base 10: optional `+`/`-`, then at least one ASCII digit, in range.
fn go_atoi(token: &str) -> Option<i64> {
    let digits = token
        .strip_prefix('+')
        .or_else(|| token.strip_prefix('-'))
        .unwrap_or(token);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse::<i64>().ok()
}

/// The codes Go's `http.StatusText` knows.
fn known_status(code: i64) -> Option<u16> {
    let known = matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=305
            | 307
            | 308
            | 400..=418
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    );
    if known {
        u16::try_from(code).ok()
    } else {
        None
    }
}

const X_ENVOY_OVERLOADED: HeaderName = HeaderName::from_static("x-envoy-overloaded");
const X_ENVOY_RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");
pub(crate) const X_ENVOY_RETRIABLE_STATUS_CODES: HeaderName =
    HeaderName::from_static("x-envoy-retriable-status-codes");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Every response header [`RetryState::on_event`](crate::retry::RetryState::on_event) reads: a runtime that keeps response heads
/// unparsed (see [`crate::h1::ResponseHead::header_map_of`]) can hand it a map of just these.
pub const RETRY_RESPONSE_HEADERS: [HeaderName; 3] =
    [X_ENVOY_OVERLOADED, X_ENVOY_RATELIMITED, GRPC_STATUS];

/// Parsed `retry_on` conditions (Envoy's `RetryPolicy::RETRY_ON_*` bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RetryOn(u32);

impl RetryOn {
    /// `5xx`: any 5xx response, and any reset, connect failure or per-try timeout.
    pub const FIVE_XX: Self = Self(1);
    /// `gateway-error`: 502, 503, 504, and resets, connect failures, per-try timeouts.
    pub const GATEWAY_ERROR: Self = Self(1 << 1);
    /// `reset`: no response at all (disconnect, reset, connect failure, per-try timeout).
    pub const RESET: Self = Self(1 << 2);
    /// `connect-failure`.
    pub const CONNECT_FAILURE: Self = Self(1 << 3);
    /// `retriable-4xx`: 409.
    pub const RETRIABLE_4XX: Self = Self(1 << 4);
    /// `refused-stream`.
    pub const REFUSED_STREAM: Self = Self(1 << 5);
    /// `retriable-status-codes`.
    pub const RETRIABLE_STATUS_CODES: Self = Self(1 << 6);
    /// `envoy-ratelimited`: responses carrying `x-envoy-ratelimited`.
    pub const ENVOY_RATELIMITED: Self = Self(1 << 7);
    /// `cancelled` (gRPC status 1).
    pub const CANCELLED: Self = Self(1 << 8);
    /// `deadline-exceeded` (gRPC status 4).
    pub const DEADLINE_EXCEEDED: Self = Self(1 << 9);
    /// `resource-exhausted` (gRPC status 8).
    pub const RESOURCE_EXHAUSTED: Self = Self(1 << 10);
    /// `internal` (gRPC status 13).
    pub const INTERNAL: Self = Self(1 << 11);
    /// `unavailable` (gRPC status 14).
    pub const UNAVAILABLE: Self = Self(1 << 12);

    /// The conditions on a response's `grpc-status`.
    const GRPC_CONDITIONS: Self = Self(
        Self::CANCELLED.0
            | Self::DEADLINE_EXCEEDED.0
            | Self::RESOURCE_EXHAUSTED.0
            | Self::INTERNAL.0
            | Self::UNAVAILABLE.0,
    );

    /// Parses a comma-separated `retry_on`; unknown tokens (`retriable-headers`,
    /// `reset-before-request`, `http3-post-connect-failure`, …) are ignored.
    ///
    /// ```
    /// use portcullis_proxy_core::retry::RetryOn;
    ///
    /// let on = RetryOn::parse("gateway-error, unavailable,bogus");
    /// assert!(on.contains(RetryOn::GATEWAY_ERROR) && on.contains(RetryOn::UNAVAILABLE));
    /// assert!(!on.contains(RetryOn::FIVE_XX));
    /// ```
    pub fn parse(retry_on: &str) -> Self {
        let bits = retry_on
            .split(',')
            .map(str::trim)
            .map(|token| match token {
                "5xx" => Self::FIVE_XX,
                "gateway-error" => Self::GATEWAY_ERROR,
                "reset" => Self::RESET,
                "connect-failure" => Self::CONNECT_FAILURE,
                "retriable-4xx" => Self::RETRIABLE_4XX,
                "refused-stream" => Self::REFUSED_STREAM,
                "retriable-status-codes" => Self::RETRIABLE_STATUS_CODES,
                "envoy-ratelimited" => Self::ENVOY_RATELIMITED,
                "cancelled" => Self::CANCELLED,
                "deadline-exceeded" => Self::DEADLINE_EXCEEDED,
                "resource-exhausted" => Self::RESOURCE_EXHAUSTED,
                "internal" => Self::INTERNAL,
                "unavailable" => Self::UNAVAILABLE,
                _ => Self(0),
            })
            .fold(0, |acc, c| acc | c.0);
        Self(bits)
    }

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    fn any(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether a response is retriable under these conditions, as Envoy's
    /// `RetryStateImpl::wouldRetryFromHeaders` (a response carrying `x-envoy-overloaded` never
    /// is). `codes` are the retriable status codes.
    pub fn response_is_retriable(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        codes: &[u16],
    ) -> bool {
        // `x-envoy-overloaded` vetoes a retry; looked up only when there would be one.
        self.retriable_unless_overloaded(status, headers, codes)
            && !headers.contains_key(X_ENVOY_OVERLOADED)
    }

    fn retriable_unless_overloaded(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        codes: &[u16],
    ) -> bool {
        let code = status.as_u16();
        if self.contains(Self::FIVE_XX) && status.is_server_error() {
            return true;
        }
        if self.contains(Self::GATEWAY_ERROR) && matches!(code, 502..=504) {
            return true;
        }
        if self.contains(Self::RETRIABLE_4XX) && code == 409 {
            return true;
        }
        if self.contains(Self::RETRIABLE_STATUS_CODES) && codes.contains(&code) {
            return true;
        }
        if self.contains(Self::ENVOY_RATELIMITED) && headers.contains_key(X_ENVOY_RATELIMITED) {
            return true;
        }
        // Status codes first: most responses are answered without looking at gRPC headers.
        if !self.any(Self::GRPC_CONDITIONS) {
            return false;
        }
        let grpc = headers
            .get(GRPC_STATUS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        match grpc {
            Some(1) => self.contains(Self::CANCELLED),
            Some(4) => self.contains(Self::DEADLINE_EXCEEDED),
            Some(8) => self.contains(Self::RESOURCE_EXHAUSTED),
            Some(13) => self.contains(Self::INTERNAL),
            Some(14) => self.contains(Self::UNAVAILABLE),
            _ => false,
        }
    }

    /// Whether a connection error is retriable (an overflow never is, nor a failure of the
    /// client's).
    pub fn error_is_retriable(self, kind: ErrorKind) -> bool {
        match kind {
            ErrorKind::Overflow | ErrorKind::Downstream(_) => false,
            _ if self.any(Self::FIVE_XX.union(Self::GATEWAY_ERROR).union(Self::RESET)) => true,
            ErrorKind::ConnectFailure | ErrorKind::ConnectTimeout => {
                self.contains(Self::CONNECT_FAILURE)
            }
            ErrorKind::RefusedStream => self.contains(Self::REFUSED_STREAM),
            ErrorKind::Reset | ErrorKind::ProtocolError => false,
        }
    }

    /// Whether a per-try timeout is retriable (`5xx`, `gateway-error` or `reset`).
    pub fn timeout_is_retriable(self) -> bool {
        self.any(Self::FIVE_XX.union(Self::GATEWAY_ERROR).union(Self::RESET))
    }

    /// Both sets of bits.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// How an attempt failed before a response head arrived: the upstream's failures, and the
/// client's ([`ErrorKind::Downstream`]; see [`ErrorKind::origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The connection could not be established (refused, unreachable, TLS failure).
    ConnectFailure,
    /// Connecting timed out (`connect_timeout`).
    ConnectTimeout,
    /// The stream was refused (HTTP/2 `REFUSED_STREAM`).
    RefusedStream,
    /// The connection or stream was reset or closed before a response head.
    Reset,
    /// The upstream spoke invalid HTTP.
    ProtocolError,
    /// The runtime's connection pool was full ([`Cluster::try_pending`](crate::cluster::Cluster::try_pending) overflowed).
    Overflow,
    /// The client failed the request while the attempt was in flight (its body's framing
    /// was invalid, it disconnected mid-upload): not the upstream's fault, so not reported
    /// to outlier detection and never retried.
    Downstream(DownstreamFailure),
}

impl ErrorKind {
    /// Whose fault the failure is: [`FailureOrigin::Downstream`] for
    /// [`ErrorKind::Downstream`], the upstream's for every other kind.
    pub const fn origin(self) -> FailureOrigin {
        match self {
            Self::Downstream(_) => FailureOrigin::Downstream,
            _ => FailureOrigin::Upstream,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Downstream(_) => "downstream failure",
            Self::ConnectFailure => "remote connection failure",
            Self::ConnectTimeout => "connection timeout",
            Self::RefusedStream => "remote refused stream reset",
            Self::Reset => "connection termination",
            Self::ProtocolError => "protocol error",
            Self::Overflow => "overflow",
        }
    }
}
