//! Clusters: the runtime object built from a [`ClusterSpec`], with load balancing,
//! connection-pool admission and outlier detection, and state that survives configuration
//! swaps.

mod swap;

pub use swap::{ClusterSet, Swap};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lb::tables::{
    DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_MAXIMUM_RING_SIZE, HashRing, MAX_MAGLEV_TABLE_SIZE,
    MaglevTable, is_prime,
};
use crate::outlier::{EjectionKind, HostHealth, Outcome, OutlierConfig, OutlierStatus, enforcing};
use crate::pool::{ConnectionPermit, Overflow, Permit, PoolCounters, PoolLimits, PoolResource};
use crate::rt::{Instant, RandomSource};

/// Envoy's default healthy panic threshold, in percent.
pub const DEFAULT_HEALTHY_PANIC_THRESHOLD: f64 = 50.0;

// === spec ===

/// An endpoint's identity: address and port. State is carried across configuration swaps
/// for endpoints whose key is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    address: Arc<str>,
    port: u16,
}

impl EndpointKey {
    /// A key from an address (IP literal or DNS name, IPv6 without brackets) and a port.
    pub fn new(address: impl Into<Arc<str>>, port: u16) -> Self {
        Self {
            address: address.into(),
            port,
        }
    }

    /// The address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address, when the address is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.address
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for EndpointKey {
    /// `address:port`, with IPv6 addresses in brackets (`[::1]:80`), as Envoy prints them;
    /// this is also the string the hash tables hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]:{}", self.address, self.port)
        } else {
            write!(f, "{}:{}", self.address, self.port)
        }
    }
}

impl From<SocketAddr> for EndpointKey {
    fn from(addr: SocketAddr) -> Self {
        Self::new(addr.ip().to_string(), addr.port())
    }
}

/// One endpoint of a cluster spec (a `ServiceEntry` endpoint or a discovered pod).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Address and port.
    pub key: EndpointKey,
    /// Labels, matched by subsets.
    pub labels: BTreeMap<String, String>,
    /// Load-balancing weight; 0 is treated as 1 (Envoy requires ≥ 1, Istio's unset weight).
    pub weight: u32,
    /// Locality (`region/zone/subzone`), informational.
    pub locality: Option<String>,
}

impl EndpointSpec {
    /// An endpoint of weight 1 without labels.
    pub fn new(address: impl Into<Arc<str>>, port: u16) -> Self {
        Self {
            key: EndpointKey::new(address, port),
            labels: BTreeMap::new(),
            weight: 1,
            locality: None,
        }
    }

    /// Adds a label.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the locality.
    pub fn with_locality(mut self, locality: impl Into<String>) -> Self {
        self.locality = Some(locality.into());
        self
    }

    /// Whether every `selector` label is on this endpoint (an empty selector matches all).
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|have| have == v))
    }
}

/// A load-balancing policy (Istio `loadBalancer`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LbPolicy {
    /// `ROUND_ROBIN` (weighted: smooth weighted round robin).
    RoundRobin,
    /// `LEAST_REQUEST`: the power of `choice_count` choices among equal weights; weighted,
    /// smooth weighted round robin over `weight / (active + 1)`.
    LeastRequest {
        /// Envoy's `choice_count` (default 2).
        choice_count: u32,
    },
    /// `RANDOM` (weights are ignored, as Envoy does).
    Random,
    /// `PASSTHROUGH`: the request's original destination
    /// ([`PickContext::original_destination`]).
    Passthrough,
    /// Consistent hash, ring hash.
    RingHash {
        /// `minimum_ring_size` (Istio default 1024).
        minimum_ring_size: u64,
        /// `maximum_ring_size` (Envoy default 8 Mi).
        maximum_ring_size: u64,
    },
    /// Consistent hash, maglev.
    Maglev {
        /// `table_size`, prime (default 65537).
        table_size: u64,
    },
}

impl Default for LbPolicy {
    /// Istio's default, `LEAST_REQUEST` with two choices.
    fn default() -> Self {
        Self::LeastRequest { choice_count: 2 }
    }
}

impl LbPolicy {
    /// Ring hash with Envoy's maximum ring size; a zero minimum is Istio's default 1024.
    pub fn ring_hash(minimum_ring_size: u64) -> Self {
        Self::RingHash {
            minimum_ring_size: if minimum_ring_size == 0 {
                1024
            } else {
                minimum_ring_size
            },
            maximum_ring_size: DEFAULT_MAXIMUM_RING_SIZE,
        }
    }

    /// Maglev; a zero table size is the default 65537.
    pub fn maglev(table_size: u64) -> Self {
        Self::Maglev {
            table_size: if table_size == 0 {
                DEFAULT_MAGLEV_TABLE_SIZE
            } else {
                table_size
            },
        }
    }

    /// Whether the policy picks by a request hash.
    pub fn is_consistent_hash(&self) -> bool {
        matches!(self, Self::RingHash { .. } | Self::Maglev { .. })
    }
}

/// Slow start (Istio `warmup` / `warmupDurationSecs`, Envoy `slow_start_config`): an endpoint
/// added to a running cluster gets `weight × max(min_weight_percent / 100,
/// (elapsed / window)^(1 / aggression))` until `window` has passed. Round robin and least
/// request only, as in Envoy.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    /// The warm-up window.
    pub window: Duration,
    /// Aggression (default 1.0: linear).
    pub aggression: f64,
    /// The weight floor, in percent (default 10).
    pub min_weight_percent: f64,
}

impl SlowStart {
    /// Istio's defaults for a window: aggression 1, minimum 10 %.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            aggression: 1.0,
            min_weight_percent: 10.0,
        }
    }

    /// The weight factor in `(0, 1]` for an endpoint added `elapsed` ago.
    pub fn factor(&self, elapsed: Duration) -> f64 {
        if elapsed >= self.window || self.window.is_zero() {
            return 1.0;
        }
        let time = elapsed.as_secs_f64().max(0.001) / self.window.as_secs_f64();
        let aggression = if self.aggression > 0.0 {
            self.aggression
        } else {
            1.0
        };
        let floor = (self.min_weight_percent / 100.0).clamp(0.0, 1.0);
        time.powf(1.0 / aggression).clamp(floor, 1.0)
    }
}

/// Everything a [`Cluster`] is built from. Independent of Istio's model: the embedder maps
/// its configuration (for Istio, `translate`'s cluster policy) onto it.
///
/// ```
/// use std::collections::BTreeMap;
/// use portcullis_proxy_core::{cluster::{Cluster, ClusterSpec, EndpointSpec, LbPolicy, PickContext}, rt::{Clock, ManualClock, SplitMix64}};
///
/// let spec = ClusterSpec::new(
///     "outbound|9080|v2|reviews.default.svc.cluster.local",
///     vec![
///         EndpointSpec::new("10.0.0.1", 9080).with_label("version", "v1"),
///         EndpointSpec::new("10.0.0.2", 9080).with_label("version", "v2"),
///     ],
/// )
/// .with_subset(BTreeMap::from([("version".to_owned(), "v2".to_owned())]))
/// .with_lb(LbPolicy::RoundRobin);
///
/// let clock = ManualClock::new();
/// let cluster = Cluster::build(&spec, None, clock.now())?;
/// let picked = cluster.pick(&PickContext::default(), clock.now(), &mut SplitMix64::new(1));
/// assert_eq!(picked.map(|p| p.key().address().to_owned()), Some("10.0.0.2".to_owned()));
/// # Ok::<(), portcullis_proxy_core::cluster::InvalidCluster>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// The cluster name (Istio: `outbound|port|subset|host`).
    pub name: Arc<str>,
    /// The endpoints, before subset selection.
    pub endpoints: Vec<EndpointSpec>,
    /// Subset selector: only endpoints carrying all these labels are used.
    pub subset: BTreeMap<String, String>,
    /// Load balancing.
    pub lb: LbPolicy,
    /// Connection-pool limits.
    pub pool: PoolLimits,
    /// Outlier detection, if enabled.
    pub outlier: Option<OutlierConfig>,
    /// Healthy panic threshold in percent; `None` is Envoy's 50; 0 disables panic mode.
    pub healthy_panic_threshold: Option<f64>,
    /// Slow start, if enabled.
    pub slow_start: Option<SlowStart>,
}

impl ClusterSpec {
    /// A spec with Istio's defaults: least request, unlimited pool, no outlier detection.
    pub fn new(name: impl Into<Arc<str>>, endpoints: Vec<EndpointSpec>) -> Self {
        Self {
            name: name.into(),
            endpoints,
            subset: BTreeMap::new(),
            lb: LbPolicy::default(),
            pool: PoolLimits::default(),
            outlier: None,
            healthy_panic_threshold: None,
            slow_start: None,
        }
    }

    /// Sets the subset selector.
    pub fn with_subset(mut self, labels: BTreeMap<String, String>) -> Self {
        self.subset = labels;
        self
    }

    /// Sets the load-balancing policy.
    pub fn with_lb(mut self, lb: LbPolicy) -> Self {
        self.lb = lb;
        self
    }

    /// Sets the pool limits.
    pub fn with_pool(mut self, pool: PoolLimits) -> Self {
        self.pool = pool;
        self
    }

    /// Enables outlier detection.
    pub fn with_outlier(mut self, outlier: OutlierConfig) -> Self {
        self.outlier = Some(outlier);
        self
    }

    /// Sets the healthy panic threshold (percent).
    pub fn with_healthy_panic_threshold(mut self, percent: Option<f64>) -> Self {
        self.healthy_panic_threshold = percent;
        self
    }

    /// Enables slow start.
    pub fn with_slow_start(mut self, slow_start: SlowStart) -> Self {
        self.slow_start = Some(slow_start);
        self
    }
}

/// Why a [`ClusterSpec`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidCluster {
    /// The maglev table size is not a prime between 2 and 5 000 011.
    MaglevTableSize(u64),
    /// The ring-hash minimum ring size is zero or above the maximum.
    RingSize {
        /// The minimum.
        minimum: u64,
        /// The maximum.
        maximum: u64,
    },
}

impl fmt::Display for InvalidCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaglevTableSize(n) => {
                write!(f, "maglev table size {n} is not a prime in [2, 5000011]")
            }
            Self::RingSize { minimum, maximum } => {
                write!(f, "ring size minimum {minimum} is not in [1, {maximum}]")
            }
        }
    }
}

impl std::error::Error for InvalidCluster {}

// === state ===

/// The live state of one endpoint: active requests, outlier counters, warm-up start.
#[derive(Debug)]
pub(crate) struct EndpointState {
    active: AtomicU64,
    swrr_current: AtomicI64,
    added_at: Option<Instant>,
    pub(crate) health: HostHealth,
}

impl EndpointState {
    fn new(added_at: Option<Instant>) -> Self {
        Self {
            active: AtomicU64::new(0),
            swrr_current: AtomicI64::new(0),
            added_at,
            health: HostHealth::default(),
        }
    }
}

/// One endpoint of a built [`Cluster`].
#[derive(Debug, Clone)]
pub struct Endpoint {
    spec: EndpointSpec,
    state: Arc<EndpointState>,
}

impl Endpoint {
    /// Address and port.
    pub fn key(&self) -> &EndpointKey {
        &self.spec.key
    }

    /// The endpoint as configured (weight already clamped to ≥ 1).
    pub fn spec(&self) -> &EndpointSpec {
        &self.spec
    }

    /// Requests in flight to this endpoint.
    pub fn active_requests(&self) -> u64 {
        self.state.active.load(Ordering::Acquire)
    }

    /// Whether outlier detection has ejected it.
    pub fn is_ejected(&self) -> bool {
        self.state.health.is_ejected()
    }

    /// Its outlier-detection state.
    pub fn outlier_status(&self) -> OutlierStatus {
        let mut status = OutlierStatus::from(self.state.health.counters());
        status.ejected = self.is_ejected();
        status
    }
}

/// The state of a cluster that a new configuration adopts when the cluster (same name) still
/// exists: pool counters, the round-robin position, the outlier sweep schedule. Per-endpoint
/// state (outlier counters and ejections, active requests, warm-up start) is adopted for every
/// endpoint whose [`EndpointKey`] is unchanged; the rest is dropped with the old cluster.
///
/// Old and new [`Cluster`] objects share it, so a request still holding the old cluster gives
/// its permits back to the same counters the new one admits against.
#[derive(Debug, Default)]
pub struct ClusterState {
    pool: Arc<PoolCounters>,
    rr_position: AtomicU64,
    /// Nanoseconds since the clock origin of the next outlier sweep; `u64::MAX` = none.
    next_sweep: AtomicU64,
    /// Serializes ejections and sweeps, and smooth weighted round robin.
    detector: Mutex<()>,
    swrr: Mutex<()>,
}

impl ClusterState {
    /// Current value of a pool counter.
    pub fn pool_usage(&self, resource: PoolResource) -> u64 {
        self.pool.current(resource)
    }

    /// How many picks round robin has made.
    pub fn round_robin_position(&self) -> u64 {
        self.rr_position.load(Ordering::Acquire)
    }
}

fn lock(mutex: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn nanos(instant: Instant) -> u64 {
    u64::try_from(instant.elapsed_since_origin().as_nanos()).unwrap_or(u64::MAX - 1)
}

#[derive(Debug)]
enum Table {
    None,
    Ring(HashRing),
    Maglev(MaglevTable),
}

// === cluster ===

/// A cluster, ready to serve: endpoints (after subset selection), load balancer, pool
/// limits, outlier detection.
///
/// Every method takes `&self`; a cluster is shared (`Arc<Cluster>`) by all requests of a
/// configuration and is `Send + Sync`. Time and randomness come from the caller.
#[derive(Debug)]
pub struct Cluster {
    name: Arc<str>,
    endpoints: Vec<Endpoint>,
    lb: LbPolicy,
    table: Table,
    equal_weights: bool,
    pool: PoolLimits,
    outlier: Option<OutlierConfig>,
    panic_threshold: f64,
    slow_start: Option<SlowStart>,
    state: Arc<ClusterState>,
}

/// What a pick needs besides the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext<'a> {
    /// The request hash, for consistent-hash policies ([`hash_request`](crate::lb::hash_request));
    /// without one they draw a random value.
    pub hash: Option<u64>,
    /// The connection's original destination, for [`LbPolicy::Passthrough`].
    pub original_destination: Option<SocketAddr>,
    /// Endpoints to avoid (Envoy's `previous_hosts` retry predicate).
    pub avoid: &'a [EndpointKey],
    /// How many picks to try to find an endpoint not in `avoid`
    /// (`host_selection_retry_max_attempts`); the last pick is used if all are avoided.
    pub max_attempts: u32,
}

/// The endpoint a pick chose; keeps its state alive.
#[derive(Debug, Clone)]
pub struct Picked {
    key: EndpointKey,
    state: Arc<EndpointState>,
}

impl Picked {
    /// Address and port to connect to.
    pub fn key(&self) -> &EndpointKey {
        &self.key
    }

    /// Counts a request in flight on the endpoint (least request reads it) until the guard
    /// is dropped.
    pub fn start_request(&self) -> ActiveRequest {
        self.state.active.fetch_add(1, Ordering::AcqRel);
        ActiveRequest {
            state: Arc::clone(&self.state),
        }
    }
}

/// A request in flight on an endpoint; see [`Picked::start_request`].
#[derive(Debug)]
pub struct ActiveRequest {
    state: Arc<EndpointState>,
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        let _ = self
            .state
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

impl Cluster {
    /// Builds a cluster, adopting `previous`'s state when given (see [`ClusterState`]).
    ///
    /// `now` starts the outlier sweep schedule of a new cluster and the warm-up of endpoints
    /// that `previous` did not have (endpoints of a cluster built without `previous` start
    /// warm, as the hosts of a cluster at Envoy's startup do).
    pub fn build(
        spec: &ClusterSpec,
        previous: Option<&Self>,
        now: Instant,
    ) -> Result<Self, InvalidCluster> {
        let old: HashMap<&EndpointKey, &Arc<EndpointState>> = previous
            .map(|p| p.endpoints.iter().map(|e| (e.key(), &e.state)).collect())
            .unwrap_or_default();
        let warm_from = previous.map(|_| now);
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for e in spec.endpoints.iter().filter(|e| e.matches(&spec.subset)) {
            if endpoints.iter().any(|have| have.key() == &e.key) {
                continue;
            }
            let mut e = e.clone();
            e.weight = e.weight.max(1);
            let state = old.get(&e.key).map_or_else(
                || Arc::new(EndpointState::new(warm_from)),
                |s| Arc::clone(s),
            );
            endpoints.push(Endpoint { spec: e, state });
        }
        let hosts = || -> Vec<(String, u32)> {
            endpoints
                .iter()
                .map(|e| (e.key().to_string(), e.spec.weight))
                .collect()
        };
        let table = match spec.lb {
            LbPolicy::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            } => {
                if minimum_ring_size == 0 || minimum_ring_size > maximum_ring_size {
                    return Err(InvalidCluster::RingSize {
                        minimum: minimum_ring_size,
                        maximum: maximum_ring_size,
                    });
                }
                Table::Ring(HashRing::build(
                    &hosts(),
                    minimum_ring_size,
                    maximum_ring_size,
                ))
            }
            LbPolicy::Maglev { table_size } => {
                if table_size > MAX_MAGLEV_TABLE_SIZE || !is_prime(table_size) {
                    return Err(InvalidCluster::MaglevTableSize(table_size));
                }
                Table::Maglev(MaglevTable::build(&hosts(), table_size))
            }
            _ => Table::None,
        };
        let equal_weights = endpoints
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.spec.weight == b.spec.weight));
        let state = match previous {
            Some(p) => Arc::clone(&p.state),
            None => Arc::new(ClusterState {
                next_sweep: AtomicU64::new(u64::MAX),
                ..ClusterState::default()
            }),
        };
        match &spec.outlier {
            Some(config) => {
                // Keep a running schedule; start one for a cluster that had none.
                let _ = state
                    .next_sweep
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n == u64::MAX).then(|| nanos(now.saturating_add(config.interval)))
                    });
            }
            None => state.next_sweep.store(u64::MAX, Ordering::Release),
        }
        Ok(Self {
            name: Arc::clone(&spec.name),
            endpoints,
            lb: spec.lb,
            table,
            equal_weights,
            pool: spec.pool,
            outlier: spec.outlier,
            panic_threshold: spec
                .healthy_panic_threshold
                .unwrap_or(DEFAULT_HEALTHY_PANIC_THRESHOLD)
                .clamp(0.0, 100.0),
            slow_start: spec.slow_start,
            state,
        })
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The endpoints, after subset selection, in spec order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint with this key, if the cluster has it.
    pub fn endpoint(&self, key: &EndpointKey) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.key() == key)
    }

    /// The load-balancing policy.
    pub fn lb_policy(&self) -> LbPolicy {
        self.lb
    }

    /// The pool limits.
    pub fn pool_limits(&self) -> &PoolLimits {
        &self.pool
    }

    /// The outlier-detection settings.
    pub fn outlier_config(&self) -> Option<&OutlierConfig> {
        self.outlier.as_ref()
    }

    /// The state shared with earlier and later builds of this cluster.
    pub fn state(&self) -> &Arc<ClusterState> {
        &self.state
    }

    /// How many endpoints are ejected.
    pub fn ejected_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.is_ejected()).count()
    }

    /// Whether the cluster is in panic mode: fewer than the threshold percentage of its
    /// endpoints are healthy (with no healthy endpoint at all, panic mode applies unless the
    /// threshold is 0, which disables it).
    pub fn in_panic(&self) -> bool {
        let total = self.endpoints.len();
        let healthy = total - self.ejected_count();
        self.panic_for(healthy, total)
    }

    fn panic_for(&self, healthy: usize, total: usize) -> bool {
        if total == 0 || self.panic_threshold <= 0.0 {
            return false;
        }
        healthy == 0 || (100.0 * healthy as f64 / total as f64) < self.panic_threshold
    }

    // --- pool admission ---

    /// Admission for a new upstream connection (`max_connections`).
    pub fn try_connection(&self) -> Result<ConnectionPermit, Overflow> {
        self.state
            .pool
            .try_acquire(PoolResource::Connections, self.pool.max_connections)
            .map(|p| ConnectionPermit::new(p, self.pool.max_requests_per_connection))
    }

    /// Admission for a request waiting for a connection (`max_pending_requests`).
    pub fn try_pending(&self) -> Result<Permit, Overflow> {
        self.state.pool.try_acquire(
            PoolResource::PendingRequests,
            self.pool.max_pending_requests,
        )
    }

    /// Admission for an upstream request (`max_requests`).
    pub fn try_request(&self) -> Result<Permit, Overflow> {
        self.state
            .pool
            .try_acquire(PoolResource::Requests, self.pool.max_requests)
    }

    /// Admission for a retry (`max_retries`).
    pub fn try_retry(&self) -> Result<Permit, Overflow> {
        self.state
            .pool
            .try_acquire(PoolResource::Retries, self.pool.max_retries)
    }

    // --- outlier detection ---

    /// Runs the outlier sweep if it is due; returns when the next one is due (`None` without
    /// outlier detection). Picks and reports call it too, so a runtime without a timer for it
    /// still un-ejects endpoints, at the first pick after the due time.
    pub fn tick(&self, now: Instant) -> Option<Instant> {
        let config = self.outlier.as_ref()?;
        let due = self.state.next_sweep.load(Ordering::Acquire);
        if due == u64::MAX {
            return None;
        }
        if nanos(now) < due {
            return Some(Instant::from_elapsed(Duration::from_nanos(due)));
        }
        let _guard = lock(&self.state.detector);
        let due = self.state.next_sweep.load(Ordering::Acquire);
        if nanos(now) >= due {
            for endpoint in &self.endpoints {
                sweep_endpoint(config, &endpoint.state.health, now);
            }
            let next = now.saturating_add(config.interval.max(Duration::from_millis(1)));
            self.state.next_sweep.store(nanos(next), Ordering::Release);
            return Some(next);
        }
        Some(Instant::from_elapsed(Duration::from_nanos(due)))
    }

    /// Reports what happened to an attempt on `endpoint` to outlier detection; returns the
    /// detector that ejected the endpoint, if one did. Without outlier detection this does
    /// nothing. Draws a random value only for an enforcing percentage strictly between 0 and
    /// 100.
    pub fn report<R: RandomSource + ?Sized>(
        &self,
        endpoint: &Picked,
        outcome: Outcome,
        now: Instant,
        random: &mut R,
    ) -> Option<EjectionKind> {
        let config = self.outlier.as_ref()?;
        self.tick(now);
        let tripped = endpoint.state.health.record(config, outcome);
        tripped
            .into_iter()
            .flatten()
            .find(|&kind| self.try_eject(config, &endpoint.state, kind, now, random))
    }

    fn try_eject<R: RandomSource + ?Sized>(
        &self,
        config: &OutlierConfig,
        state: &EndpointState,
        kind: EjectionKind,
        now: Instant,
        random: &mut R,
    ) -> bool {
        let _guard = lock(&self.state.detector);
        if state.health.is_ejected() {
            return false;
        }
        let total = self.endpoints.len().max(1) as u64;
        let ejected = self.ejected_count() as u64;
        if ejected * 100 >= u64::from(config.max_ejection_percent.min(100)) * total {
            return false;
        }
        let enforce = match enforcing(config, kind) {
            0 => false,
            p if p >= 100 => true,
            p => random.next_u64() % 100 < u64::from(p),
        };
        if !enforce {
            return false;
        }
        state.health.with_counters(|c| {
            let base = config.base_ejection_time;
            let below_cap = base
                .checked_mul(c.multiplier)
                .is_some_and(|d| d < config.max_ejection_time.saturating_add(base));
            if below_cap {
                c.multiplier += 1;
            }
            c.num_ejections += 1;
            c.ejected_at = Some(now);
        });
        state.health.ejected.store(true, Ordering::Release);
        true
    }

    // --- load balancing ---

    /// Picks an endpoint, or `None` when there is none to pick (no endpoint, every endpoint
    /// ejected with panic mode off, or passthrough without an original destination): answer
    /// `503 no healthy upstream`.
    ///
    /// Ejected endpoints are skipped unless the cluster is in panic mode. When
    /// [`PickContext::avoid`] is non-empty the pick is repeated up to
    /// [`PickContext::max_attempts`] times until it lands outside it.
    ///
    /// Random draws: least request draws `choice_count` values among equal weights, random
    /// draws one, consistent hash draws one when the context has no hash; round robin draws
    /// none. Each repeated pick draws again.
    pub fn pick<R: RandomSource + ?Sized>(
        &self,
        ctx: &PickContext<'_>,
        now: Instant,
        random: &mut R,
    ) -> Option<Picked> {
        if self.lb == LbPolicy::Passthrough {
            return ctx.original_destination.map(|addr| Picked {
                key: EndpointKey::from(addr),
                state: Arc::new(EndpointState::new(None)),
            });
        }
        self.tick(now);
        let total = self.endpoints.len();
        // No allocation in the usual case (nobody ejected): the candidates are all endpoints.
        let candidates = if self.endpoints.iter().any(Endpoint::is_ejected) {
            let usable: Vec<usize> = self
                .endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.is_ejected())
                .map(|(i, _)| i)
                .collect();
            if self.panic_for(usable.len(), total) {
                Candidates::All(total)
            } else {
                Candidates::Some(usable)
            }
        } else {
            Candidates::All(total)
        };
        if candidates.is_empty() {
            return None;
        }
        let mut last = None;
        for attempt in 0..ctx.max_attempts.max(1) {
            let index = self.pick_once(&candidates, ctx.hash, attempt, now, random)?;
            let endpoint = self.endpoints.get(index)?;
            last = Some(endpoint);
            if ctx.avoid.is_empty() || !ctx.avoid.contains(endpoint.key()) {
                break;
            }
        }
        last.map(|e| Picked {
            key: e.key().clone(),
            state: Arc::clone(&e.state),
        })
    }

    fn pick_once<R: RandomSource + ?Sized>(
        &self,
        candidates: &Candidates,
        hash: Option<u64>,
        attempt: u32,
        now: Instant,
        random: &mut R,
    ) -> Option<usize> {
        let len = candidates.len() as u64;
        let nth = |n: u64| candidates.get(usize::try_from(n % len).unwrap_or(0));
        match self.lb {
            LbPolicy::RoundRobin => {
                if self.uniform(candidates, now) {
                    nth(self.state.rr_position.fetch_add(1, Ordering::AcqRel))
                } else {
                    self.state.rr_position.fetch_add(1, Ordering::AcqRel);
                    self.smooth_weighted(candidates, |e| self.effective_weight(e, now))
                }
            }
            LbPolicy::LeastRequest { choice_count } => {
                if self.uniform(candidates, now) {
                    let mut best: Option<usize> = None;
                    for _ in 0..choice_count.max(1) {
                        let index = nth(random.next_u64())?;
                        let better = best.is_none_or(|b| self.active_of(index) < self.active_of(b));
                        if better {
                            best = Some(index);
                        }
                    }
                    best
                } else {
                    self.smooth_weighted(candidates, |e| {
                        self.effective_weight(e, now) / (e.active_requests() as f64 + 1.0)
                    })
                }
            }
            LbPolicy::Random => nth(random.next_u64()),
            LbPolicy::Passthrough => None,
            LbPolicy::RingHash { .. } | LbPolicy::Maglev { .. } => {
                let hash = hash.unwrap_or_else(|| random.next_u64());
                match &self.table {
                    Table::Ring(ring) => ring.walk(hash, attempt).find(|i| candidates.contains(*i)),
                    Table::Maglev(table) => {
                        table.walk(hash, attempt).find(|i| candidates.contains(*i))
                    }
                    Table::None => None,
                }
            }
        }
    }

    fn active_of(&self, index: usize) -> u64 {
        self.endpoints
            .get(index)
            .map_or(u64::MAX, Endpoint::active_requests)
    }

    /// Whether plain (unweighted) selection applies: equal weights and nobody warming up.
    fn uniform(&self, candidates: &Candidates, now: Instant) -> bool {
        self.equal_weights
            && self.slow_start.is_none_or(|_| {
                candidates.iter().all(|i| {
                    self.endpoints
                        .get(i)
                        .is_none_or(|e| self.warm_factor(e, now) >= 1.0)
                })
            })
    }

    fn warm_factor(&self, endpoint: &Endpoint, now: Instant) -> f64 {
        match (self.slow_start, endpoint.state.added_at) {
            (Some(slow), Some(added)) => slow.factor(now.saturating_duration_since(added)),
            _ => 1.0,
        }
    }

    fn effective_weight(&self, endpoint: &Endpoint, now: Instant) -> f64 {
        f64::from(endpoint.spec.weight) * self.warm_factor(endpoint, now)
    }

    /// Smooth weighted round robin (nginx): every candidate's current weight grows by its
    /// weight, the largest wins (first on ties) and loses the total.
    fn smooth_weighted(
        &self,
        candidates: &Candidates,
        weight: impl Fn(&Endpoint) -> f64,
    ) -> Option<usize> {
        let _guard = lock(&self.state.swrr);
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for index in candidates.iter() {
            let Some(endpoint) = self.endpoints.get(index) else {
                continue;
            };
            let w = (weight(endpoint) * 1000.0).round().clamp(1.0, 1e12) as i64;
            total = total.saturating_add(w);
            let current = endpoint
                .state
                .swrr_current
                .fetch_add(w, Ordering::AcqRel)
                .saturating_add(w);
            if best.is_none_or(|(_, b)| current > b) {
                best = Some((index, current));
            }
        }
        let (index, _) = best?;
        if let Some(endpoint) = self.endpoints.get(index) {
            endpoint
                .state
                .swrr_current
                .fetch_sub(total, Ordering::AcqRel);
        }
        Some(index)
    }

    /// The ring-hash points or maglev slots, for tests.
    #[cfg(test)]
    pub(crate) fn table_counts(&self) -> Vec<usize> {
        match &self.table {
            Table::Ring(ring) => ring.points_per_endpoint(self.endpoints.len()),
            Table::Maglev(table) => table.slots_per_endpoint(self.endpoints.len()),
            Table::None => Vec::new(),
        }
    }

    /// The table length, for tests.
    #[cfg(test)]
    pub(crate) fn table_len(&self) -> usize {
        match &self.table {
            Table::Ring(ring) => ring.len(),
            Table::Maglev(table) => table.len(),
            Table::None => 0,
        }
    }
}

/// The endpoints a pick chooses among, by index: all of them (the usual case, without an
/// allocation) or the ones outlier detection left.
enum Candidates {
    All(usize),
    Some(Vec<usize>),
}

impl Candidates {
    fn len(&self) -> usize {
        match self {
            Self::All(n) => *n,
            Self::Some(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th candidate.
    fn get(&self, k: usize) -> Option<usize> {
        match self {
            Self::All(n) => (k < *n).then_some(k),
            Self::Some(v) => v.get(k).copied(),
        }
    }

    fn contains(&self, index: usize) -> bool {
        match self {
            Self::All(n) => index < *n,
            Self::Some(v) => v.contains(&index),
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter_map(|k| self.get(k))
    }
}

/// Envoy's `checkHostForUneject` for one endpoint.
fn sweep_endpoint(config: &OutlierConfig, health: &HostHealth, now: Instant) {
    let ejected = health.is_ejected();
    health.with_counters(|c| {
        if !ejected {
            if let Some(back) = c.unejected_at
                && now.saturating_duration_since(back) >= config.interval
                && c.multiplier > 0
            {
                c.multiplier -= 1;
            }
            return;
        }
        let Some(at) = c.ejected_at else {
            return;
        };
        if config.ejection_duration(c.multiplier) <= now.saturating_duration_since(at) {
            c.reset_consecutive();
            c.unejected_at = Some(now);
            health.ejected.store(false, Ordering::Release);
        }
    });
}
