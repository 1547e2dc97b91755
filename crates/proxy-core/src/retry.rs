//! Route retry policy, with Istio's defaults and its translation of `HTTPRetry`.

pub use crate::retry_state::{
    Action, Attempt, DEFAULT_BACKOFF_BASE, ErrorKind, Event, GiveUpReason, RETRY_RESPONSE_HEADERS,
    RetryOn, RetryState,
};

use std::time::Duration;

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
