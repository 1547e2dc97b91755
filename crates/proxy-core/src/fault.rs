//! Fault injection (Envoy's fault filter with a route's `HTTPFault`).

use std::time::Duration;

use http::StatusCode;

use crate::error::InvalidAction;
use crate::percent::FractionalPercent;

/// How an injected abort answers.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortStatus {
    /// A local reply with this HTTP status (Istio `httpStatus`).
    Http(StatusCode),
    /// A gRPC reply with this gRPC status code (Istio `grpcStatus`, e.g. 14 = `UNAVAILABLE`).
    Grpc(u32),
}

/// An injected delay: wait `duration` before going on, with probability `percentage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultDelay {
    duration: Duration,
    percentage: FractionalPercent,
}

impl FaultDelay {
    /// Istio `delay { fixedDelay, percentage }`. An unset percentage never fires.
    pub fn new(fixed_delay: Duration, percentage: Option<FractionalPercent>) -> Self {
        Self {
            duration: fixed_delay,
            percentage: percentage.unwrap_or(FractionalPercent::ZERO),
        }
    }

    /// The delay.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The probability.
    pub fn percentage(&self) -> FractionalPercent {
        self.percentage
    }
}

/// An injected abort: answer locally instead of forwarding, with probability `percentage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultAbort {
    status: AbortStatus,
    percentage: FractionalPercent,
}

impl FaultAbort {
    /// Istio `abort { httpStatus, percentage }`; the status must be in `200..=599`.
    /// An unset percentage never fires.
    pub fn http(status: u16, percentage: Option<FractionalPercent>) -> Result<Self, InvalidAction> {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| (200..600).contains(&s.as_u16()))
            .ok_or(InvalidAction::FaultAbortStatus { code: status })?;
        Ok(Self {
            status: AbortStatus::Http(status),
            percentage: percentage.unwrap_or(FractionalPercent::ZERO),
        })
    }

    /// Istio `abort { grpcStatus, percentage }` with the numeric code (see
    /// [`grpc_status_code`]). An unset percentage never fires.
    pub fn grpc(code: u32, percentage: Option<FractionalPercent>) -> Self {
        Self {
            status: AbortStatus::Grpc(code),
            percentage: percentage.unwrap_or(FractionalPercent::ZERO),
        }
    }

    /// What the abort answers.
    pub fn status(&self) -> AbortStatus {
        self.status
    }

    /// The probability.
    pub fn percentage(&self) -> FractionalPercent {
        self.percentage
    }
}

/// A route's fault injection: an optional delay, then an optional abort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    delay: Option<FaultDelay>,
    abort: Option<FaultAbort>,
}

impl Fault {
    /// No fault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a delay.
    pub fn with_delay(mut self, delay: FaultDelay) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Adds an abort.
    pub fn with_abort(mut self, abort: FaultAbort) -> Self {
        self.abort = Some(abort);
        self
    }

    /// The delay, if configured.
    pub fn delay(&self) -> Option<&FaultDelay> {
        self.delay.as_ref()
    }

    /// The abort, if configured.
    pub fn abort(&self) -> Option<&FaultAbort> {
        self.abort.as_ref()
    }
}

/// The numeric code of a gRPC status name as Istio spells it (`"UNAVAILABLE"` → 14).
pub fn grpc_status_code(name: &str) -> Option<u32> {
    Some(match name {
        "OK" => 0,
        "CANCELLED" => 1,
        "UNKNOWN" => 2,
        "INVALID_ARGUMENT" => 3,
        "DEADLINE_EXCEEDED" => 4,
        "NOT_FOUND" => 5,
        "ALREADY_EXISTS" => 6,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "OUT_OF_RANGE" => 11,
        "UNIMPLEMENTED" => 12,
        "INTERNAL" => 13,
        "UNAVAILABLE" => 14,
        "DATA_LOSS" => 15,
        "UNAUTHENTICATED" => 16,
        _ => return None,
    })
}

/// A fault-injected local reply: what [`decide`](crate::decide()) returns when an abort fires.
///
/// No route header operation and no CORS header applies (the fault filter runs before CORS
/// and the router).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct FaultAbortDecision {
    /// What to answer.
    pub abort: AbortStatus,
    /// Fault-injected delay to wait before replying, if one fired.
    pub delay: Option<Duration>,
}
