//! Outlier detection (Envoy's passive health checking), consecutive-error flavours.
//!
//! Results are reported per endpoint ([`Cluster::report`](crate::cluster::Cluster::report), which
//! [`RetryState`](crate::retry::RetryState) calls for every attempt). Ejection happens inline, when
//! a counter reaches its threshold; un-ejection happens in the interval sweep
//! ([`Cluster::tick`](crate::cluster::Cluster::tick), also run lazily by picks and reports).
//!
//! The rules, as Envoy's `DetectorImpl`:
//!
//! * a 5xx increments `consecutive_5xx`; a 502/503/504 also increments
//!   `consecutive_gateway_failure` (another 5xx resets it); anything else resets both;
//! * without `split_external_local_origin_errors`, a connect failure or reset counts as a 503
//!   and a timeout as a 504; with it, they count as local-origin failures instead, and a
//!   successful connect resets that counter;
//! * a counter reaching its threshold (exactly) tries to eject: only while fewer than
//!   `max_ejection_percent` of the cluster's endpoints are ejected (`100 × ejected / total <
//!   max`), then only if the `enforcing_*` percentage says so (0 never, 100 always, anything
//!   between draws one value: `r % 100 < enforcing`);
//! * each enforced ejection raises the endpoint's back-off multiplier `m` (while `m × base <
//!   max_ejection_time + base`); the endpoint stays ejected for `min(m × base,
//!   max(base, max_ejection_time))`, and the sweep returns it once that has elapsed, resetting
//!   its counters;
//! * a sweep lowers `m` by one for an endpoint that has been back for at least one interval.
//!
//! Only the upstream's failures count: [`RetryState`](crate::retry::RetryState) never reports an
//! attempt that the client failed ([`ErrorKind::Downstream`](crate::retry::ErrorKind::Downstream):
//! bad framing, a disconnect mid-upload), so no client can get a healthy endpoint ejected.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::rt::Instant;

/// Outlier detection settings, in Envoy's terms; [`Default`] is Envoy's defaults.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierConfig {
    /// `consecutive_5xx` (default 5; 0 disables).
    pub consecutive_5xx: u32,
    /// `enforcing_consecutive_5xx` percentage (default 100).
    pub enforcing_consecutive_5xx: u32,
    /// `consecutive_gateway_failure` (default 5).
    pub consecutive_gateway_failure: u32,
    /// `enforcing_consecutive_gateway_failure` percentage (default 0).
    pub enforcing_consecutive_gateway_failure: u32,
    /// `split_external_local_origin_errors` (default false).
    pub split_external_local_origin_errors: bool,
    /// `consecutive_local_origin_failure` (default 5; used only when split).
    pub consecutive_local_origin_failure: u32,
    /// `enforcing_consecutive_local_origin_failure` percentage (default 100).
    pub enforcing_consecutive_local_origin_failure: u32,
    /// `interval` between sweeps (default 10 s).
    pub interval: Duration,
    /// `base_ejection_time` (default 30 s).
    pub base_ejection_time: Duration,
    /// `max_ejection_time` (default 300 s).
    pub max_ejection_time: Duration,
    /// `max_ejection_percent` (default 10).
    pub max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_gateway_failure: 0,
            split_external_local_origin_errors: false,
            consecutive_local_origin_failure: 5,
            enforcing_consecutive_local_origin_failure: 100,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

/// Istio's `OutlierDetection` fields, as they appear in a `DestinationRule`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IstioOutlierDetection {
    /// Deprecated `consecutiveErrors`: kept so a rule can be given whole, but ignored (as
    /// pilot ignores it).
    pub consecutive_errors: i32,
    /// `consecutive5xxErrors`.
    pub consecutive_5xx_errors: Option<u32>,
    /// `consecutiveGatewayErrors`.
    pub consecutive_gateway_errors: Option<u32>,
    /// `splitExternalLocalOriginErrors`.
    pub split_external_local_origin_errors: bool,
    /// `consecutiveLocalOriginFailures`.
    pub consecutive_local_origin_failures: Option<u32>,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `baseEjectionTime`.
    pub base_ejection_time: Option<Duration>,
    /// `maxEjectionPercent`.
    pub max_ejection_percent: i32,
    /// `minHealthPercent`.
    pub min_health_percent: i32,
}

impl OutlierConfig {
    /// Pilot's `applyOutlierDetection`, returning the config and the cluster's healthy panic
    /// threshold (`Some(minHealthPercent)` when it is ≥ 0 — so panic mode is *off* unless the
    /// rule sets it — else `None`, Envoy's default 50 %).
    ///
    /// `consecutive5xxErrors` and `consecutiveGatewayErrors`, when set, set their threshold
    /// with enforcement 100 (0 for a zero threshold, which disables the detector); unset, they
    /// keep Envoy's defaults (5xx: 5, enforced; gateway: 5, not enforced). The deprecated
    /// `consecutiveErrors` is ignored, as pilot has ignored it since Istio 1.7
    /// (istio/istio#24087; validation only warns about it).
    ///
    /// ```
    /// use portcullis_proxy_core::{outlier::{IstioOutlierDetection, OutlierConfig}};
    ///
    /// let mut istio = IstioOutlierDetection::default();
    /// istio.consecutive_gateway_errors = Some(3);
    /// istio.consecutive_errors = 7; // deprecated: ignored
    /// let (config, panic) = OutlierConfig::from_istio(&istio);
    /// assert_eq!(config.consecutive_gateway_failure, 3);
    /// assert_eq!(config.enforcing_consecutive_gateway_failure, 100);
    /// assert_eq!((config.consecutive_5xx, config.enforcing_consecutive_5xx), (5, 100));
    /// assert_eq!(panic, Some(0.0));
    /// ```
    pub fn from_istio(istio: &IstioOutlierDetection) -> (Self, Option<f64>) {
        let mut out = Self::default();
        if let Some(n) = istio.consecutive_5xx_errors {
            out.consecutive_5xx = n;
            out.enforcing_consecutive_5xx = if n > 0 { 100 } else { 0 };
        }
        if let Some(n) = istio.consecutive_gateway_errors {
            out.consecutive_gateway_failure = n;
            out.enforcing_consecutive_gateway_failure = if n > 0 { 100 } else { 0 };
        }
        if let Some(interval) = istio.interval {
            out.interval = interval;
        }
        if let Some(base) = istio.base_ejection_time {
            out.base_ejection_time = base;
        }
        if let Ok(pct) = u32::try_from(istio.max_ejection_percent)
            && pct > 0
        {
            out.max_ejection_percent = pct;
        }
        if istio.split_external_local_origin_errors {
            out.split_external_local_origin_errors = true;
            if let Some(n) = istio.consecutive_local_origin_failures.filter(|n| *n > 0) {
                out.consecutive_local_origin_failure = n;
            }
        }
        let panic = (istio.min_health_percent >= 0).then(|| f64::from(istio.min_health_percent));
        (out, panic)
    }

    /// How long an endpoint with back-off multiplier `multiplier` stays ejected.
    pub fn ejection_duration(&self, multiplier: u32) -> Duration {
        let cap = self.base_ejection_time.max(self.max_ejection_time);
        self.base_ejection_time
            .checked_mul(multiplier)
            .map_or(cap, |d| d.min(cap))
    }
}

/// What happened to one attempt on an endpoint, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The upstream answered with this status.
    Response(u16),
    /// The connection was established (meaningful with split local-origin errors).
    ConnectSucceeded,
    /// Connecting failed (refused, unreachable, TLS handshake failure, connect timeout).
    ConnectFailed,
    /// The connection or stream was reset before a response.
    Reset,
    /// The attempt timed out waiting for the upstream.
    Timeout,
}

/// Which detector an ejection came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EjectionKind {
    /// `consecutive_5xx`.
    Consecutive5xx,
    /// `consecutive_gateway_failure`.
    ConsecutiveGatewayFailure,
    /// `consecutive_local_origin_failure`.
    ConsecutiveLocalOriginFailure,
}

/// Per-endpoint outlier state; lives in [`EndpointState`](crate::cluster) and survives swaps.
#[derive(Debug, Default)]
pub(crate) struct HostHealth {
    pub(crate) ejected: AtomicBool,
    pub(crate) counters: Mutex<HostCounters>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HostCounters {
    pub(crate) consecutive_5xx: u32,
    pub(crate) consecutive_gateway: u32,
    pub(crate) consecutive_local: u32,
    pub(crate) multiplier: u32,
    pub(crate) num_ejections: u64,
    pub(crate) ejected_at: Option<Instant>,
    pub(crate) unejected_at: Option<Instant>,
}

impl HostHealth {
    pub(crate) fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Acquire)
    }

    pub(crate) fn counters(&self) -> HostCounters {
        match self.counters.lock() {
            Ok(c) => *c,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub(crate) fn with_counters<T>(&self, f: impl FnOnce(&mut HostCounters) -> T) -> T {
        match self.counters.lock() {
            Ok(mut c) => f(&mut c),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Records an outcome; returns the detectors that tripped, in the order Envoy notifies
    /// them (gateway failure before 5xx).
    pub(crate) fn record(
        &self,
        config: &OutlierConfig,
        outcome: Outcome,
    ) -> [Option<EjectionKind>; 2] {
        let split = config.split_external_local_origin_errors;
        self.with_counters(|c| match (outcome, split) {
            (Outcome::Response(code), _) => c.put_status(config, code),
            (Outcome::ConnectSucceeded, true) => {
                c.consecutive_local = 0;
                [None, None]
            }
            (Outcome::ConnectSucceeded, false) => [None, None],
            (Outcome::ConnectFailed | Outcome::Reset | Outcome::Timeout, true) => {
                c.consecutive_local = c.consecutive_local.saturating_add(1);
                let tripped = c.consecutive_local == config.consecutive_local_origin_failure;
                [
                    tripped.then_some(EjectionKind::ConsecutiveLocalOriginFailure),
                    None,
                ]
            }
            (Outcome::ConnectFailed | Outcome::Reset, false) => c.put_status(config, 503),
            (Outcome::Timeout, false) => c.put_status(config, 504),
        })
    }
}

impl HostCounters {
    /// Envoy's `putHttpResponseCode`.
    fn put_status(&mut self, config: &OutlierConfig, code: u16) -> [Option<EjectionKind>; 2] {
        if !(500..600).contains(&code) {
            self.consecutive_5xx = 0;
            self.consecutive_gateway = 0;
            return [None, None];
        }
        let mut gateway = None;
        if matches!(code, 502..=504) {
            self.consecutive_gateway = self.consecutive_gateway.saturating_add(1);
            if self.consecutive_gateway == config.consecutive_gateway_failure {
                gateway = Some(EjectionKind::ConsecutiveGatewayFailure);
            }
        } else {
            self.consecutive_gateway = 0;
        }
        self.consecutive_5xx = self.consecutive_5xx.saturating_add(1);
        let five_xx = (self.consecutive_5xx == config.consecutive_5xx)
            .then_some(EjectionKind::Consecutive5xx);
        [gateway, five_xx]
    }

    pub(crate) fn reset_consecutive(&mut self) {
        self.consecutive_5xx = 0;
        self.consecutive_gateway = 0;
        self.consecutive_local = 0;
    }
}

/// The enforcing percentage of a detector.
pub(crate) fn enforcing(config: &OutlierConfig, kind: EjectionKind) -> u32 {
    match kind {
        EjectionKind::Consecutive5xx => config.enforcing_consecutive_5xx,
        EjectionKind::ConsecutiveGatewayFailure => config.enforcing_consecutive_gateway_failure,
        EjectionKind::ConsecutiveLocalOriginFailure => {
            config.enforcing_consecutive_local_origin_failure
        }
    }
}

/// A snapshot of one endpoint's outlier state.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierStatus {
    /// Whether the endpoint is ejected.
    pub ejected: bool,
    /// How many times it has been ejected.
    pub num_ejections: u64,
    /// The current ejection-time multiplier.
    pub multiplier: u32,
    /// When it was last ejected.
    pub ejected_at: Option<Instant>,
    /// Consecutive 5xx count.
    pub consecutive_5xx: u32,
    /// Consecutive gateway-failure count.
    pub consecutive_gateway_failure: u32,
    /// Consecutive local-origin failure count.
    pub consecutive_local_origin_failure: u32,
}

impl From<HostCounters> for OutlierStatus {
    fn from(c: HostCounters) -> Self {
        Self {
            ejected: false,
            num_ejections: c.num_ejections,
            multiplier: c.multiplier,
            ejected_at: c.ejected_at,
            consecutive_5xx: c.consecutive_5xx,
            consecutive_gateway_failure: c.consecutive_gateway,
            consecutive_local_origin_failure: c.consecutive_local,
        }
    }
}
