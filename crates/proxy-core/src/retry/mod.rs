//! Retries: the route's policy and the per-request state machine that carries it out.
//!
//! [`RetryPolicy`] is Istio's `HTTPRetry` as Envoy applies it, with Istio's defaults, and what
//! it judges: the `retry_on` conditions ([`RetryOn`]) and how an attempt failed
//! ([`ErrorKind`]). [`RetryState`] is the machine a runtime drives for one forwarded request:
//! attempts, retries, back-off and timeouts.

mod policy;
mod state;

pub use policy::{
    ErrorKind, ISTIO_DEFAULT_NUM_RETRIES, ISTIO_DEFAULT_RETRY_ON,
    ISTIO_HOST_SELECTION_RETRY_MAX_ATTEMPTS, ISTIO_PREVIOUS_PRIORITIES_UPDATE_FREQUENCY,
    RETRY_RESPONSE_HEADERS, RetryOn, RetryPolicy, parse_retry_on,
};
#[cfg(test)]
pub(crate) use state::Backoff;
pub use state::{Action, Attempt, DEFAULT_BACKOFF_BASE, Event, GiveUpReason, RetryState};
