//! Counters, sharded per worker so that the request path never shares a cache line between
//! workers, and their exposition through `prometheus-client`: the counters are summed over
//! the shards only when a registry is encoded (`exposition::Exposition` is the registry's
//! collector),
//! so the request path takes no lock, looks up no label and allocates nothing.
//!
//! Counters are keyed by name and carried over from one plan to the next (a swap keeps them
//! monotonic, as Prometheus expects).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric as _, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

/// Upper bounds (milliseconds) of the upstream latency histogram buckets: Envoy's.
pub(crate) const LATENCY_BUCKETS_MS: [u64; 19] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
    600_000, 1_800_000, 3_600_000,
];

const CODE_SLOTS: usize = 8;

/// Per-status-code counts in a small lock-free table (codes are claimed on first use).
#[derive(Debug, Default)]
#[repr(align(128))]
struct CodeShard {
    codes: [AtomicU16; CODE_SLOTS],
    counts: [AtomicU64; CODE_SLOTS],
    other: AtomicU64,
}

impl CodeShard {
    fn inc(&self, code: u16) {
        for (c, n) in self.codes.iter().zip(&self.counts) {
            let cur = c.load(Relaxed);
            if cur == code {
                n.fetch_add(1, Relaxed);
                return;
            }
            if cur == 0 {
                match c.compare_exchange(0, code, Relaxed, Relaxed) {
                    Ok(_) => {
                        n.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(now) if now == code => {
                        n.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(_) => {}
                }
            }
        }
        self.other.fetch_add(1, Relaxed);
    }
}

/// Requests by status code, one shard per worker.
#[derive(Debug)]
pub(crate) struct CodeCounter {
    shards: Box<[CodeShard]>,
}

impl CodeCounter {
    fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| CodeShard::default()).collect(),
        }
    }

    /// Counts one response with `code`, on the shard of the worker with index `worker`.
    pub(crate) fn inc(&self, worker: usize, code: u16) {
        let i = worker % self.shards.len();
        if let Some(s) = self.shards.get(i) {
            s.inc(code);
        }
    }

    /// Code → count, summed over the shards (`0` stands for "other codes").
    pub(crate) fn totals(&self) -> Vec<(u16, u64)> {
        let mut out: HashMap<u16, u64> = HashMap::new();
        for s in self.shards.iter() {
            for (c, n) in s.codes.iter().zip(&s.counts) {
                let c = c.load(Relaxed);
                if c != 0 {
                    *out.entry(c).or_default() += n.load(Relaxed);
                }
            }
            let other = s.other.load(Relaxed);
            if other != 0 {
                *out.entry(0).or_default() += other;
            }
        }
        let mut v: Vec<_> = out.into_iter().collect();
        v.sort_unstable();
        v
    }
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct ClusterShard {
    retries: AtomicU64,
    overflow: AtomicU64,
    connect_fail: AtomicU64,
    timeouts: AtomicU64,
    no_healthy: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

/// One cluster's counters.
#[derive(Debug)]
pub(crate) struct ClusterStats {
    shards: Box<[ClusterShard]>,
    /// Requests by the status the upstream (or the gateway for it) answered.
    pub(crate) codes: CodeCounter,
}

/// The kinds of per-cluster events.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ClusterEvent {
    Retry,
    Overflow,
    ConnectFail,
    Timeout,
    NoHealthy,
}

impl ClusterStats {
    fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| ClusterShard::default())
                .collect(),
            codes: CodeCounter::new(shards),
        }
    }

    /// The shard of the worker with index `worker`.
    fn shard(&self, worker: usize) -> Option<&ClusterShard> {
        self.shards.get(worker % self.shards.len())
    }

    pub(crate) fn event(&self, worker: usize, e: ClusterEvent) {
        if let Some(s) = self.shard(worker) {
            let c = match e {
                ClusterEvent::Retry => &s.retries,
                ClusterEvent::Overflow => &s.overflow,
                ClusterEvent::ConnectFail => &s.connect_fail,
                ClusterEvent::Timeout => &s.timeouts,
                ClusterEvent::NoHealthy => &s.no_healthy,
            };
            c.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn latency(&self, worker: usize, d: Duration) {
        let Some(s) = self.shard(worker) else { return };
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b)
            && let Some(b) = s.latency_buckets.get(i)
        {
            b.fetch_add(1, Relaxed);
        }
        s.latency_count.fetch_add(1, Relaxed);
        s.latency_sum_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn sum(&self, f: impl Fn(&ClusterShard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| f(s).load(Relaxed)).sum()
    }
}

/// A route's requests for one cluster (or for no cluster: local replies).
pub(crate) type RouteCounter = CodeCounter;

/// Labels of a route counter, in one allocation: a plan's build looks up every route's
/// counters, and with each label in an allocation of its own, comparing a key meant four
/// cache misses instead of one.
#[derive(Clone, Debug)]
struct RouteKey {
    /// The four labels, one after the other.
    joined: Box<str>,
    /// Where the second, third and fourth labels start in `joined`.
    starts: [usize; 3],
}

impl RouteKey {
    fn new(labels: [&str; 4]) -> Self {
        let [route_config, virtual_host, route, _] = labels;
        let second = route_config.len();
        let third = second.saturating_add(virtual_host.len());
        Self {
            joined: labels.concat().into_boxed_str(),
            starts: [second, third, third.saturating_add(route.len())],
        }
    }
}

impl PartialEq for RouteKey {
    fn eq(&self, other: &Self) -> bool {
        self.labels() == other.labels()
    }
}

impl Eq for RouteKey {}

impl PartialOrd for RouteKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered by the labels, route configuration first.
impl Ord for RouteKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.labels().cmp(&other.labels())
    }
}

/// A route counter's labels — route configuration, virtual host, route, cluster — owned or
/// borrowed: the registry is looked up with borrowed ones, so that a plan whose routes all
/// have counters already (every rebuild after the first) allocates no label.
trait RouteLabels {
    fn labels(&self) -> [&str; 4];
}

impl RouteLabels for RouteKey {
    fn labels(&self) -> [&str; 4] {
        let [second, third, fourth] = self.starts;
        let part = |range: std::ops::Range<usize>| self.joined.get(range).unwrap_or_default();
        [
            part(0..second),
            part(second..third),
            part(third..fourth),
            part(fourth..self.joined.len()),
        ]
    }
}

impl RouteLabels for [&str; 4] {
    fn labels(&self) -> [&str; 4] {
        *self
    }
}

impl std::hash::Hash for dyn RouteLabels + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.labels().hash(state);
    }
}

impl PartialEq for dyn RouteLabels + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.labels() == other.labels()
    }
}

impl Eq for dyn RouteLabels + '_ {}

/// Hashed as its borrowed labels are, as `Borrow` requires.
impl std::hash::Hash for RouteKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self as &dyn RouteLabels).hash(state);
    }
}

impl<'a> std::borrow::Borrow<dyn RouteLabels + 'a> for RouteKey {
    fn borrow(&self) -> &(dyn RouteLabels + 'a) {
        self
    }
}

#[derive(Debug, Default)]
struct Registry {
    routes: HashMap<RouteKey, Arc<RouteCounter>, foldhash::fast::RandomState>,
    clusters: HashMap<String, Arc<ClusterStats>>,
}

/// The route counters of a gateway, locked while a plan's routes take theirs (see
/// [`Stats::route_counters`]).
pub(crate) struct RouteCounters<'a> {
    registry: MutexGuard<'a, Registry>,
    shards: usize,
}

impl RouteCounters<'_> {
    /// The counter for these labels (route configuration, virtual host, route, cluster; no
    /// cluster for local replies), the same one as in the previous plan if there was one.
    pub(crate) fn get(&mut self, labels: [&str; 4]) -> Arc<RouteCounter> {
        if let Some(counter) = self.registry.routes.get(&labels as &dyn RouteLabels) {
            return Arc::clone(counter);
        }
        let key = RouteKey::new(labels);
        let shards = self.shards;
        Arc::clone(
            self.registry
                .routes
                .entry(key)
                .or_insert_with(|| Arc::new(CodeCounter::new(shards))),
        )
    }
}

/// Every counter of a gateway, by name. Only plan builds and the admin endpoint lock it.
#[derive(Debug)]
pub(crate) struct Stats {
    shards: usize,
    registry: Mutex<Registry>,
    /// Requests that matched no route (404 `NR`) or no listener chain.
    pub(crate) no_route: Arc<CodeCounter>,
    /// Downstream connections accepted.
    pub(crate) downstream_cx: AtomicU64,
    /// Downstream connections closed at once because `max_connections` were open (Envoy's
    /// `downstream_cx_overflow`).
    pub(crate) downstream_cx_overflow: AtomicU64,
    /// Downstream connections closed because their PROXY protocol header was missing, invalid
    /// or late (Envoy's `downstream_cx_proxy_proto_error`).
    pub(crate) downstream_cx_proxy_proto_error: AtomicU64,
    /// Configuration swaps that succeeded and that were refused.
    pub(crate) config_swaps: AtomicU64,
    pub(crate) config_rejections: AtomicU64,
}

impl Stats {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards,
            registry: Mutex::new(Registry::default()),
            no_route: Arc::new(CodeCounter::new(shards)),
            downstream_cx: AtomicU64::new(0),
            downstream_cx_overflow: AtomicU64::new(0),
            downstream_cx_proxy_proto_error: AtomicU64::new(0),
            config_swaps: AtomicU64::new(0),
            config_rejections: AtomicU64::new(0),
        }
    }

    /// The route counters, locked once for all the routes of a plan (rather than once for
    /// each of its thousands of routes).
    pub(crate) fn route_counters(&self) -> RouteCounters<'_> {
        RouteCounters {
            registry: self.registry.lock().unwrap_or_else(PoisonError::into_inner),
            shards: self.shards,
        }
    }

    /// The stats of a cluster, the same as in the previous plan if there was one.
    pub(crate) fn cluster(&self, name: &str) -> Arc<ClusterStats> {
        let mut reg = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            reg.clusters
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(ClusterStats::new(self.shards))),
        )
    }
}

/// A response code as a label value: `other` for the codes that found no slot.
#[derive(Clone, Copy, Debug)]
struct Code(u16);

impl EncodeLabelValue for Code {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        if self.0 == 0 {
            encoder.write_str("other")
        } else {
            encoder.write_str(itoa::Buffer::new().format(self.0))
        }
    }
}

/// Picks one counter of a shard.
type ShardField = fn(&ClusterShard) -> &AtomicU64;

/// The per-cluster event counters: name (without `_total`), help, and the shard field.
const CLUSTER_EVENTS: [(&str, &str, ShardField); 5] = [
    ("portcullis_cluster_upstream_rq_retry", "Retries.", |s| {
        &s.retries
    }),
    (
        "portcullis_cluster_upstream_rq_pending_overflow",
        "Requests refused by the circuit breaker (max requests).",
        |s| &s.overflow,
    ),
    (
        "portcullis_cluster_upstream_cx_connect_fail",
        "Upstream connection failures.",
        |s| &s.connect_fail,
    ),
    (
        "portcullis_cluster_upstream_rq_timeout",
        "Upstream request timeouts.",
        |s| &s.timeouts,
    ),
    (
        "portcullis_cluster_upstream_cx_none_healthy",
        "Requests with no endpoint to send to.",
        |s| &s.no_healthy,
    ),
];

impl Stats {
    /// Every counter, summed over the shards, into `encoder` (`exposition` adds the
    /// outlier-detection state of the live snapshot's clusters). Counter names are given
    /// without `_total`: prometheus-client adds it.
    pub(crate) fn encode(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let (mut routes, mut clusters) = {
            let reg = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
            let routes: Vec<_> = reg
                .routes
                .iter()
                .map(|(k, c)| (k.clone(), Arc::clone(c)))
                .collect();
            let clusters: Vec<_> = reg
                .clusters
                .iter()
                .map(|(k, c)| (k.clone(), Arc::clone(c)))
                .collect();
            (routes, clusters)
        };
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        clusters.sort_by(|a, b| a.0.cmp(&b.0));

        let mut m = encoder.encode_descriptor(
            "portcullis_requests",
            "Downstream requests by route, cluster and response code.",
            None,
            MetricType::Counter,
        )?;
        let no_route = RouteKey::new([""; 4]);
        let counters = routes
            .iter()
            .map(|(k, c)| (k, &**c))
            .chain(std::iter::once((&no_route, &*self.no_route)));
        for (k, c) in counters {
            let [route_config, virtual_host, route, cluster] = k.labels();
            let route = [
                ("route_config", route_config),
                ("virtual_host", virtual_host),
                ("route", route),
                ("cluster", cluster),
            ];
            for (code, n) in c.totals() {
                let labels = (route, [("response_code", Code(code))]);
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }

        let mut m = encoder.encode_descriptor(
            "portcullis_cluster_upstream_rq",
            "Upstream requests by cluster and response code.",
            None,
            MetricType::Counter,
        )?;
        for (name, c) in &clusters {
            for (code, n) in c.codes.totals() {
                let labels = (
                    [("cluster", name.as_str())],
                    [("response_code", Code(code))],
                );
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }

        for (metric, help, field) in CLUSTER_EVENTS {
            let mut m = encoder.encode_descriptor(metric, help, None, MetricType::Counter)?;
            for (name, c) in &clusters {
                let n = c.sum(field);
                ConstCounter::new(n).encode(m.encode_family(&[("cluster", name.as_str())])?)?;
            }
        }

        let mut m = encoder.encode_descriptor(
            "portcullis_cluster_upstream_rq_time_seconds",
            "Upstream response time (to response headers).",
            None,
            MetricType::Histogram,
        )?;
        for (name, c) in &clusters {
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_MS
                .iter()
                .enumerate()
                .map(|(i, bound)| {
                    let n = c.sum(|s| s.latency_buckets.get(i).unwrap_or(&s.latency_count));
                    (*bound as f64 / 1000.0, n)
                })
                .collect();
            let count = c.sum(|s| &s.latency_count);
            let sum = c.sum(|s| &s.latency_sum_us) as f64 / 1e6;
            m.encode_family(&[("cluster", name.as_str())])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let totals: [(&str, &str, &AtomicU64); 5] = [
            (
                "portcullis_downstream_cx",
                "Downstream connections accepted.",
                &self.downstream_cx,
            ),
            (
                "portcullis_downstream_cx_overflow",
                "Downstream connections closed at once: the connection limit was reached.",
                &self.downstream_cx_overflow,
            ),
            (
                "portcullis_downstream_cx_proxy_proto_error",
                "Downstream connections closed for a missing or invalid PROXY protocol header.",
                &self.downstream_cx_proxy_proto_error,
            ),
            (
                "portcullis_config_swaps",
                "Configurations applied.",
                &self.config_swaps,
            ),
            (
                "portcullis_config_rejections",
                "Configurations refused (the previous one kept serving).",
                &self.config_rejections,
            ),
        ];
        for (metric, help, n) in totals {
            let m = encoder.encode_descriptor(metric, help, None, MetricType::Counter)?;
            ConstCounter::new(n.load(Relaxed)).encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A route's counter is found again by its borrowed labels, in the same plan and in the
    /// next; other labels, even ones that join to the same text, have counters of their own.
    #[test]
    fn route_counters_are_found_by_borrowed_labels() {
        let stats = Stats::new(2);
        let first = stats
            .route_counters()
            .get(["http.80", "a.example:80", "r", "c"]);
        first.inc(0, 200);
        let mut counters = stats.route_counters();
        let again = counters.get(["http.80", "a.example:80", "r", "c"]);
        assert!(Arc::ptr_eq(&first, &again));
        let local = counters.get(["http.80", "a.example:80", "r", ""]);
        let shifted = counters.get(["http.80", "a.example:80", "", "rc"]);
        assert!(!Arc::ptr_eq(&first, &local));
        assert!(!Arc::ptr_eq(&local, &shifted));
        drop(counters);
        assert_eq!(stats.registry.lock().unwrap().routes.len(), 3);
    }

    /// A key gives back the labels it was made of, and orders as they do.
    #[test]
    fn route_keys_keep_their_labels() {
        let all = [
            ["http.80", "a.example:80", "r", "c"],
            ["", "", "", ""],
            ["http.80", "", "é/\u{0}", "outbound|80||a"],
            ["", "rc", "", ""],
            ["r", "c", "", ""],
        ];
        for labels in all {
            assert_eq!(RouteKey::new(labels).labels(), labels);
        }
        for a in all {
            for b in all {
                assert_eq!(RouteKey::new(a).cmp(&RouteKey::new(b)), a.cmp(&b));
            }
        }
    }
}
