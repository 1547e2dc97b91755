//! `DestinationRule`: the policies that apply to traffic for a service after routing.
//!
//! A rule names a `host`, gives it a default [`TrafficPolicy`] (load balancing, connection pool,
//! outlier detection, client TLS, …), splits its endpoints into named [`Subset`]s by label, and
//! can override the policy per subset and per port.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Duration;
use crate::common::{OneofError, is_default, one_of, proto_enum};

/// The spec of a `DestinationRule`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRule {
    /// The service the rule applies to, from the service registry (required). Short names are
    /// resolved against the rule's namespace.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub host: String,
    /// The policy for all traffic to the host, unless a subset or port overrides it.
    #[serde(
        default,
        alias = "traffic_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named groups of the host's endpoints, each with an optional policy of its own.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subsets: Vec<Subset>,
    /// The namespaces the rule is visible to (`.` for its own, `*` for all); empty means all.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "export_to",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub export_to: Vec<String>,
    /// Restricts the rule to the workloads (sidecars or gateways) in its namespace that carry
    /// these labels; unset means every workload.
    #[serde(
        default,
        alias = "workload_selector",
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_selector: Option<WorkloadLabelSelector>,
}

/// Selects workloads by label: Istio's type-level `WorkloadSelector` (`matchLabels`), as
/// `DestinationRule.workloadSelector` uses it.
///
/// Not the same shape as [`crate::WorkloadSelector`], which has `labels`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadLabelSelector {
    /// The labels a workload must carry, all of them.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "match_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
}

/// A named group of a service's endpoints (a version, say), selected by label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// The subset's name, which routes refer to (required).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The labels an endpoint must carry to belong to the subset.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// The policy for this subset; it replaces the rule-level policy for the fields it sets.
    #[serde(
        default,
        alias = "traffic_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// The policies for traffic to a destination.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    /// How requests are spread over endpoints.
    #[serde(
        default,
        alias = "load_balancer",
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Limits on connections and requests to the upstream.
    #[serde(
        default,
        alias = "connection_pool",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of unhealthy endpoints from the pool.
    #[serde(
        default,
        alias = "outlier_detection",
        skip_serializing_if = "Option::is_none"
    )]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS for connections to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Overrides for individual destination ports; port-level settings replace the
    /// policy-level ones.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "port_level_settings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// Tunnels the connection through an HTTP proxy (`CONNECT` or `POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSettings>,
    /// Sends a PROXY protocol header on upstream connections.
    #[serde(
        default,
        alias = "proxy_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Caps retries as a share of active requests.
    #[serde(
        default,
        alias = "retry_budget",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_budget: Option<RetryBudget>,
}

/// The policy for one destination port (Istio's `TrafficPolicy.PortTrafficPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortTrafficPolicy {
    /// The destination port the policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
    /// How requests to this port are spread over endpoints.
    #[serde(
        default,
        alias = "load_balancer",
        skip_serializing_if = "Option::is_none"
    )]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Limits on connections and requests to this port.
    #[serde(
        default,
        alias = "connection_pool",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejection of unhealthy endpoints for this port.
    #[serde(
        default,
        alias = "outlier_detection",
        skip_serializing_if = "Option::is_none"
    )]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS for connections to this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// A port of the destination service, by number (Istio's `PortSelector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    /// The port number (validation checks the range).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub number: u32,
}

/// Tunnels upstream connections through a proxy (Istio's `TrafficPolicy.TunnelSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelSettings {
    /// `CONNECT` (the default when empty) or `POST`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol: String,
    /// The host the proxy should connect to (required).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "target_host",
        skip_serializing_if = "String::is_empty"
    )]
    pub target_host: String,
    /// The port the proxy should connect to (required).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "target_port",
        skip_serializing_if = "is_default"
    )]
    pub target_port: u32,
}

/// Sends a PROXY protocol header upstream (Istio's `TrafficPolicy.ProxyProtocol`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    /// The PROXY protocol version; unset means `V1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ProxyProtocolVersion>,
}

proto_enum! {
    /// The version of the PROXY protocol header (Istio's `ProxyProtocol.VERSION`).
    pub enum ProxyProtocolVersion {
        /// Version 1, human readable. The zero value.
        V1 = ("V1", 0),
        /// Version 2, binary.
        V2 = ("V2", 1),
    }
}

/// Limits retries to a share of the active requests (Istio's `TrafficPolicy.RetryBudget`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// The most retries allowed, as a percentage of active requests (a `DoubleValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Retries always allowed, whatever the percentage.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "min_retry_concurrency",
        skip_serializing_if = "is_default"
    )]
    pub min_retry_concurrency: u32,
    /// The window over which the budget is computed.
    #[serde(
        default,
        alias = "budget_interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub budget_interval: Option<Duration>,
}

/// How requests are spread over a destination's endpoints.
///
/// At most one of the algorithms (`simple`, `consistentHash`, `backendUtilization`) may be set:
/// they form [`LbPolicy`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "LoadBalancerSettingsRepr",
    into = "LoadBalancerSettingsRepr"
)]
pub struct LoadBalancerSettings {
    /// The balancing algorithm (the `lb_policy` oneof); unset means the proxy's default.
    pub lb_policy: Option<LbPolicy>,
    /// Locality-aware balancing: weights and failover between regions and zones.
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    /// Envoy's zone-aware balancing. Validation allows it only without
    /// `locality_lb_setting`.
    pub zone_aware_lb_setting: Option<ZoneAwareLoadBalancerSetting>,
    /// Deprecated (use `warmup`): how long a new endpoint receives a ramping share of traffic.
    pub warmup_duration_secs: Option<Duration>,
    /// Slow start for new endpoints.
    pub warmup: Option<WarmupConfiguration>,
}

/// The balancing algorithm of [`LoadBalancerSettings`] (Istio's `lb_policy` oneof).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LbPolicy {
    /// `simple`: an algorithm without settings.
    Simple(SimpleLb),
    /// `consistentHash`: soft session affinity by hashing a request property.
    ConsistentHash(ConsistentHashLb),
    /// `backendUtilization`: weights from the load the endpoints report (ORCA).
    BackendUtilization(BackendUtilizationLb),
}

/// The wire shape of [`LoadBalancerSettings`]: every key optional.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoadBalancerSettingsRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    simple: Option<SimpleLb>,
    #[serde(
        default,
        alias = "consistent_hash",
        skip_serializing_if = "Option::is_none"
    )]
    consistent_hash: Option<ConsistentHashLb>,
    #[serde(
        default,
        alias = "backend_utilization",
        skip_serializing_if = "Option::is_none"
    )]
    backend_utilization: Option<BackendUtilizationLb>,
    #[serde(
        default,
        alias = "locality_lb_setting",
        skip_serializing_if = "Option::is_none"
    )]
    locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    #[serde(
        default,
        alias = "zone_aware_lb_setting",
        skip_serializing_if = "Option::is_none"
    )]
    zone_aware_lb_setting: Option<ZoneAwareLoadBalancerSetting>,
    #[serde(
        default,
        alias = "warmup_duration_secs",
        skip_serializing_if = "Option::is_none"
    )]
    warmup_duration_secs: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warmup: Option<WarmupConfiguration>,
}

impl TryFrom<LoadBalancerSettingsRepr> for LoadBalancerSettings {
    type Error = OneofError;

    fn try_from(repr: LoadBalancerSettingsRepr) -> Result<Self, OneofError> {
        let LoadBalancerSettingsRepr {
            simple,
            consistent_hash,
            backend_utilization,
            locality_lb_setting,
            zone_aware_lb_setting,
            warmup_duration_secs,
            warmup,
        } = repr;
        let lb_policy = one_of(
            [
                simple.map(LbPolicy::Simple),
                consistent_hash.map(LbPolicy::ConsistentHash),
                backend_utilization.map(LbPolicy::BackendUtilization),
            ],
            &["simple", "consistentHash", "backendUtilization"],
        )?;
        Ok(Self {
            lb_policy,
            locality_lb_setting,
            zone_aware_lb_setting,
            warmup_duration_secs,
            warmup,
        })
    }
}

impl From<LoadBalancerSettings> for LoadBalancerSettingsRepr {
    fn from(settings: LoadBalancerSettings) -> Self {
        let LoadBalancerSettings {
            lb_policy,
            locality_lb_setting,
            zone_aware_lb_setting,
            warmup_duration_secs,
            warmup,
        } = settings;
        let mut repr = Self {
            locality_lb_setting,
            zone_aware_lb_setting,
            warmup_duration_secs,
            warmup,
            ..Self::default()
        };
        match lb_policy {
            Some(LbPolicy::Simple(simple)) => repr.simple = Some(simple),
            Some(LbPolicy::ConsistentHash(hash)) => repr.consistent_hash = Some(hash),
            Some(LbPolicy::BackendUtilization(b)) => repr.backend_utilization = Some(b),
            None => {}
        }
        repr
    }
}

proto_enum! {
    /// A load balancing algorithm without settings (Istio's `LoadBalancerSettings.SimpleLB`).
    pub enum SimpleLb {
        /// No algorithm chosen: the proxy's default. The zero value.
        Unspecified = ("UNSPECIFIED", 0),
        /// Deprecated: Istio treats it as `LEAST_REQUEST`.
        LeastConn = ("LEAST_CONN", 1),
        /// A random healthy endpoint.
        Random = ("RANDOM", 2),
        /// Forward to the address the caller asked for, without balancing.
        Passthrough = ("PASSTHROUGH", 3),
        /// Each healthy endpoint in turn.
        RoundRobin = ("ROUND_ROBIN", 4),
        /// The endpoint with fewer outstanding requests of two picked at random.
        LeastRequest = ("LEAST_REQUEST", 5),
    }
}

/// Consistent-hash balancing (Istio's `LoadBalancerSettings.ConsistentHashLB`).
///
/// Two oneofs: what is hashed ([`HashKey`]) and how the hash maps to an endpoint
/// ([`HashAlgorithm`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConsistentHashLbRepr", into = "ConsistentHashLbRepr")]
pub struct ConsistentHashLb {
    /// The request property that is hashed (the `hash_key` oneof).
    pub hash_key: Option<HashKey>,
    /// The hashing algorithm (the `hash_algorithm` oneof); unset means ring hash.
    pub hash_algorithm: Option<HashAlgorithm>,
    /// Deprecated (use `ringHash.minimumRingSize`): the minimum number of virtual nodes on the
    /// hash ring.
    pub minimum_ring_size: u64,
}

/// What a consistent hash is computed from (Istio's `hash_key` oneof).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HashKey {
    /// `httpHeaderName`: the value of this request header.
    HttpHeaderName(String),
    /// `httpCookie`: the value of this cookie, which the proxy creates when missing.
    HttpCookie(HttpCookie),
    /// `useSourceIp`: the client's IP address. `false` still selects this branch.
    UseSourceIp(bool),
    /// `httpQueryParameterName`: the value of this query parameter.
    HttpQueryParameterName(String),
}

/// How a consistent hash is mapped to an endpoint (Istio's `hash_algorithm` oneof).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// `ringHash`: Envoy's ring (Ketama) hash.
    RingHash(RingHash),
    /// `maglev`: Maglev hashing.
    Maglev(Maglev),
}

/// The wire shape of [`ConsistentHashLb`]: every key optional.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistentHashLbRepr {
    #[serde(
        default,
        alias = "http_header_name",
        skip_serializing_if = "Option::is_none"
    )]
    http_header_name: Option<String>,
    #[serde(
        default,
        alias = "http_cookie",
        skip_serializing_if = "Option::is_none"
    )]
    http_cookie: Option<HttpCookie>,
    #[serde(
        default,
        alias = "use_source_ip",
        skip_serializing_if = "Option::is_none"
    )]
    use_source_ip: Option<bool>,
    #[serde(
        default,
        alias = "http_query_parameter_name",
        skip_serializing_if = "Option::is_none"
    )]
    http_query_parameter_name: Option<String>,
    #[serde(default, alias = "ring_hash", skip_serializing_if = "Option::is_none")]
    ring_hash: Option<RingHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maglev: Option<Maglev>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "minimum_ring_size",
        skip_serializing_if = "is_default"
    )]
    minimum_ring_size: u64,
}

impl TryFrom<ConsistentHashLbRepr> for ConsistentHashLb {
    type Error = OneofError;

    fn try_from(repr: ConsistentHashLbRepr) -> Result<Self, OneofError> {
        let ConsistentHashLbRepr {
            http_header_name,
            http_cookie,
            use_source_ip,
            http_query_parameter_name,
            ring_hash,
            maglev,
            minimum_ring_size,
        } = repr;
        let hash_key = one_of(
            [
                http_header_name.map(HashKey::HttpHeaderName),
                http_cookie.map(HashKey::HttpCookie),
                use_source_ip.map(HashKey::UseSourceIp),
                http_query_parameter_name.map(HashKey::HttpQueryParameterName),
            ],
            &[
                "httpHeaderName",
                "httpCookie",
                "useSourceIp",
                "httpQueryParameterName",
            ],
        )?;
        let hash_algorithm = one_of(
            [
                ring_hash.map(HashAlgorithm::RingHash),
                maglev.map(HashAlgorithm::Maglev),
            ],
            &["ringHash", "maglev"],
        )?;
        Ok(Self {
            hash_key,
            hash_algorithm,
            minimum_ring_size,
        })
    }
}

impl From<ConsistentHashLb> for ConsistentHashLbRepr {
    fn from(lb: ConsistentHashLb) -> Self {
        let ConsistentHashLb {
            hash_key,
            hash_algorithm,
            minimum_ring_size,
        } = lb;
        let mut repr = Self {
            minimum_ring_size,
            ..Self::default()
        };
        match hash_key {
            Some(HashKey::HttpHeaderName(name)) => repr.http_header_name = Some(name),
            Some(HashKey::HttpCookie(cookie)) => repr.http_cookie = Some(cookie),
            Some(HashKey::UseSourceIp(use_ip)) => repr.use_source_ip = Some(use_ip),
            Some(HashKey::HttpQueryParameterName(name)) => {
                repr.http_query_parameter_name = Some(name);
            }
            None => {}
        }
        match hash_algorithm {
            Some(HashAlgorithm::RingHash(ring)) => repr.ring_hash = Some(ring),
            Some(HashAlgorithm::Maglev(maglev)) => repr.maglev = Some(maglev),
            None => {}
        }
        repr
    }
}

/// Ring-hash settings (Istio's `ConsistentHashLB.RingHash`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    /// The minimum number of virtual nodes on the ring; 0 means the proxy's default.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "minimum_ring_size",
        skip_serializing_if = "is_default"
    )]
    pub minimum_ring_size: u64,
}

/// Maglev settings (Istio's `ConsistentHashLB.MagLev`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Maglev {
    /// The lookup table size, a prime number; 0 means the proxy's default.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "table_size",
        skip_serializing_if = "is_default"
    )]
    pub table_size: u64,
}

/// The cookie a consistent hash is computed from (Istio's `ConsistentHashLB.HTTPCookie`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookie {
    /// The cookie's name (required).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The path set on a generated cookie.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub path: String,
    /// The lifetime of a generated cookie; unset makes a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Further attributes set on a generated cookie.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attributes: Vec<HttpCookieAttribute>,
}

/// An attribute of a generated hash cookie (Istio's `HTTPCookie.Attribute`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookieAttribute {
    /// The attribute's name (required), such as `SameSite`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The attribute's value, if it takes one.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub value: String,
}

/// Utilization-based balancing: endpoints are weighted by the load they report over ORCA.
///
/// This message is in Istio's CRD schema (`loadBalancer.backendUtilization`) but not yet in the
/// `istio/api` protobuf this crate follows, so its Rust name is this crate's own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendUtilizationLb {
    /// Extra weight penalty for endpoints that return errors, as a percentage of utilization.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "error_utilization_penalty_percent",
        skip_serializing_if = "is_default"
    )]
    pub error_utilization_penalty_percent: u32,
    /// Custom ORCA metric names used to compute utilization.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "metric_names_for_computing_utilization",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metric_names_for_computing_utilization: Vec<String>,
    /// How long a reported weight stays valid without a fresh report.
    #[serde(
        default,
        alias = "weight_expiration_period",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight_expiration_period: Option<Duration>,
    /// How long an endpoint must report before its weight is used.
    #[serde(
        default,
        alias = "weight_stabilization_period",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight_stabilization_period: Option<Duration>,
    /// How often weights are recomputed.
    #[serde(
        default,
        alias = "weight_update_period",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight_update_period: Option<Duration>,
}

/// Locality-aware balancing (Istio's `LocalityLoadBalancerSetting`).
///
/// At most one of `distribute`, `failover` and `failoverPriority`-without-`failover` should be
/// used; validation checks the combinations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLoadBalancerSetting {
    /// Explicit traffic shares from source localities to destination localities.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub distribute: Vec<LocalityDistribute>,
    /// Where traffic from a region goes when its endpoints are unhealthy.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failover: Vec<LocalityFailover>,
    /// Labels, in order, whose match with the client's decides endpoint priority.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "failover_priority",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failover_priority: Vec<String>,
    /// Turns locality balancing on or off for this destination (a `BoolValue`); unset keeps
    /// the mesh setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Traffic shares for one source locality (Istio's `LocalityLoadBalancerSetting.Distribute`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityDistribute {
    /// The source locality, `region/zone/subzone`, `*` allowed as the last part.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub from: String,
    /// Destination localities and their weights (which should add up to 100).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub to: BTreeMap<String, u32>,
}

/// A region-to-region failover (Istio's `LocalityLoadBalancerSetting.Failover`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityFailover {
    /// The region whose traffic fails over.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub from: String,
    /// The region it fails over to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub to: String,
}

/// Envoy's zone-aware balancing (Istio's `ZoneAwareLoadBalancerSetting`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneAwareLoadBalancerSetting {
    /// Turns zone-aware balancing on or off (a `BoolValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Where traffic from a region goes when its endpoints are unhealthy.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failover: Vec<ZoneAwareFailover>,
    /// Labels, in order, whose match with the client's decides endpoint priority.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "failover_priority",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failover_priority: Vec<String>,
    /// The fewest hosts in the local zone for zone-aware balancing to apply (a
    /// `UInt64Value`).
    #[serde(
        default,
        alias = "min_cluster_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_cluster_size: Option<u64>,
}

/// A region-to-region failover for zone-aware balancing (Istio's
/// `ZoneAwareLoadBalancerSetting.Failover`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneAwareFailover {
    /// The region whose traffic fails over.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub from: String,
    /// The region it fails over to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub to: String,
}

/// Slow start: new endpoints receive a share of traffic that grows over a period (Istio's
/// `WarmupConfiguration`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmupConfiguration {
    /// How long the warmup lasts (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// The share of traffic, in percent, a new endpoint starts with (a `DoubleValue`).
    #[serde(
        default,
        alias = "minimum_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_percent: Option<f64>,
    /// How fast traffic increases: 1.0 is linear, higher is slower at first (a
    /// `DoubleValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
}

/// Limits on upstream connections and requests (Istio's `ConnectionPoolSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    /// Settings for every upstream connection, TCP or HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSettings>,
    /// Settings for HTTP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
}

/// TCP connection limits (Istio's `ConnectionPoolSettings.TCPSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSettings {
    /// The most connections to one destination host.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "max_connections",
        skip_serializing_if = "is_default"
    )]
    pub max_connections: i32,
    /// The timeout for establishing a connection.
    #[serde(
        default,
        alias = "connect_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive on the socket.
    #[serde(
        default,
        alias = "tcp_keepalive",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// The longest a connection may live.
    #[serde(
        default,
        alias = "max_connection_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connection_duration: Option<Duration>,
    /// How long a connection may stay idle before it is closed.
    #[serde(
        default,
        alias = "idle_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
}

/// TCP keepalive settings (Istio's `TCPSettings.TcpKeepalive`); unset values use the
/// operating system's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection is considered dead.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub probes: u32,
    /// Idle time before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    /// Time between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// HTTP request limits (Istio's `ConnectionPoolSettings.HTTPSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    /// The most requests queued while waiting for a connection.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "http1_max_pending_requests",
        skip_serializing_if = "is_default"
    )]
    pub http1_max_pending_requests: i32,
    /// The most active requests to a destination.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "http2_max_requests",
        skip_serializing_if = "is_default"
    )]
    pub http2_max_requests: i32,
    /// The most requests per connection; 1 disables keep-alive.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "max_requests_per_connection",
        skip_serializing_if = "is_default"
    )]
    pub max_requests_per_connection: i32,
    /// The most retries outstanding to all hosts of the cluster at once.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "max_retries",
        skip_serializing_if = "is_default"
    )]
    pub max_retries: i32,
    /// How long a pooled connection may stay idle without requests.
    #[serde(
        default,
        alias = "idle_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    /// Whether HTTP/1.1 connections are upgraded to HTTP/2.
    #[serde(
        default,
        alias = "h2_upgrade_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Use the client's HTTP protocol version upstream.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "use_client_protocol",
        skip_serializing_if = "is_default"
    )]
    pub use_client_protocol: bool,
    /// The most concurrent streams on one HTTP/2 connection.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "max_concurrent_streams",
        skip_serializing_if = "is_default"
    )]
    pub max_concurrent_streams: i32,
    /// HTTP/2 PING keepalive on upstream connections.
    #[serde(
        default,
        alias = "http2_keep_alive",
        skip_serializing_if = "Option::is_none"
    )]
    pub http2_keep_alive: Option<ConnectionKeepalive>,
}

proto_enum! {
    /// Whether HTTP/1.1 upstream connections are upgraded to HTTP/2 (Istio's
    /// `HTTPSettings.H2UpgradePolicy`).
    pub enum H2UpgradePolicy {
        /// The mesh-wide default. The zero value.
        Default = ("DEFAULT", 0),
        /// Never upgrade.
        DoNotUpgrade = ("DO_NOT_UPGRADE", 1),
        /// Upgrade.
        Upgrade = ("UPGRADE", 2),
    }
}

/// HTTP/2 PING keepalive (Istio's `HTTPSettings.ConnectionKeepalive`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionKeepalive {
    /// How often a PING is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long to wait for the PING's answer before closing the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Ejection of endpoints that keep failing (Istio's `OutlierDetection`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Deprecated (use `consecutive5xxErrors` or `consecutiveGatewayErrors`): errors in a row
    /// before ejection.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "consecutive_errors",
        skip_serializing_if = "is_default"
    )]
    pub consecutive_errors: i32,
    /// Count locally originated failures (timeouts, resets) apart from upstream errors.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "split_external_local_origin_errors",
        skip_serializing_if = "is_default"
    )]
    pub split_external_local_origin_errors: bool,
    /// Locally originated failures in a row before ejection (a `UInt32Value`); used with
    /// `splitExternalLocalOriginErrors`.
    #[serde(
        default,
        alias = "consecutive_local_origin_failures",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_local_origin_failures: Option<u32>,
    /// Gateway errors (502, 503, 504) in a row before ejection (a `UInt32Value`).
    #[serde(
        default,
        alias = "consecutive_gateway_errors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_gateway_errors: Option<u32>,
    /// 5xx errors in a row before ejection (a `UInt32Value`; 0 disables this check).
    #[serde(
        default,
        alias = "consecutive_5xx_errors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors: Option<u32>,
    /// Time between ejection sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// The minimum ejection time, multiplied by the number of ejections.
    #[serde(
        default,
        alias = "base_ejection_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_ejection_time: Option<Duration>,
    /// The largest share of the pool, in percent, that may be ejected.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "max_ejection_percent",
        skip_serializing_if = "is_default"
    )]
    pub max_ejection_percent: i32,
    /// Outlier detection is on only while at least this share of the pool, in percent, is
    /// healthy.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "min_health_percent",
        skip_serializing_if = "is_default"
    )]
    pub min_health_percent: i32,
    /// The HTTP status codes that count as errors for outlier detection.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "outlier_detection_http_error_codes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub outlier_detection_http_error_codes: Vec<u32>,
}

/// TLS for connections to the upstream (Istio's `ClientTLSSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// Whether and how the connection is secured; unset means `DISABLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClientTlsMode>,
    /// The client certificate file, for `MUTUAL` (unless `credentialName` is set).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "client_certificate",
        skip_serializing_if = "String::is_empty"
    )]
    pub client_certificate: String,
    /// The client private key file, for `MUTUAL` (unless `credentialName` is set).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "private_key",
        skip_serializing_if = "String::is_empty"
    )]
    pub private_key: String,
    /// The CA certificates file that verifies the server's certificate.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ca_certificates",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_certificates: String,
    /// The secret holding the client certificate, key and CA (in place of the file fields).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "credential_name",
        skip_serializing_if = "String::is_empty"
    )]
    pub credential_name: String,
    /// Names one of which the server's certificate must carry.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "subject_alt_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_alt_names: Vec<String>,
    /// The SNI sent in the TLS handshake.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub sni: String,
    /// Skip verifying the server's certificate and names (a `BoolValue`).
    #[serde(
        default,
        alias = "insecure_skip_verify",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_verify: Option<bool>,
    /// The certificate revocation list file that checks the server's certificate.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ca_crl",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_crl: String,
}

proto_enum! {
    /// How a connection to the upstream is secured (Istio's `ClientTLSSettings.TLSmode`).
    pub enum ClientTlsMode {
        /// Plain text. The zero value.
        Disable = ("DISABLE", 0),
        /// TLS, verifying the server.
        Simple = ("SIMPLE", 1),
        /// Mutual TLS with the certificates given in the settings.
        Mutual = ("MUTUAL", 2),
        /// Mutual TLS with Istio's own workload certificates.
        IstioMutual = ("ISTIO_MUTUAL", 3),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn load(json: &str) -> Result<DestinationRule, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    const FULL: &str = r#"{
        "host": "reviews.prod.svc.cluster.local",
        "exportTo": [".", "istio-system"],
        "workloadSelector": {"matchLabels": {"app": "frontend"}},
        "trafficPolicy": {
            "loadBalancer": {
                "consistentHash": {
                    "httpCookie": {"name": "user", "path": "/", "ttl": "60s",
                                   "attributes": [{"name": "SameSite", "value": "Strict"}, {"name": "Secure"}]},
                    "ringHash": {"minimumRingSize": 1024}
                },
                "localityLbSetting": {
                    "enabled": false,
                    "distribute": [{"from": "us-west/zone1/*", "to": {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}],
                    "failoverPriority": ["topology.kubernetes.io/region"]
                },
                "warmup": {"duration": "30s", "minimumPercent": 10, "aggression": 1.5}
            },
            "connectionPool": {
                "tcp": {"maxConnections": 100, "connectTimeout": "30ms", "idleTimeout": "1h",
                        "maxConnectionDuration": "10m",
                        "tcpKeepalive": {"probes": 3, "time": "7200s", "interval": "75s"}},
                "http": {"http1MaxPendingRequests": 10, "http2MaxRequests": 1000,
                         "maxRequestsPerConnection": 1, "maxRetries": 3, "idleTimeout": "5s",
                         "h2UpgradePolicy": "UPGRADE", "useClientProtocol": true,
                         "maxConcurrentStreams": 100,
                         "http2KeepAlive": {"interval": "10s", "timeout": "2s"}}
            },
            "outlierDetection": {"consecutive5xxErrors": 0, "consecutiveGatewayErrors": 5,
                                 "consecutiveLocalOriginFailures": 2,
                                 "splitExternalLocalOriginErrors": true, "interval": "5m",
                                 "baseEjectionTime": "15m", "maxEjectionPercent": 100,
                                 "minHealthPercent": 50,
                                 "outlierDetectionHttpErrorCodes": [500, 503]},
            "tls": {"mode": "SIMPLE", "credentialName": "client-cred", "sni": "reviews.example.com",
                    "subjectAltNames": ["reviews"], "insecureSkipVerify": false, "caCrl": "/crl.pem"},
            "portLevelSettings": [{
                "port": {"number": 9080},
                "loadBalancer": {"simple": "LEAST_REQUEST", "warmupDurationSecs": "10s"},
                "tls": {"mode": "ISTIO_MUTUAL"}
            }],
            "tunnel": {"protocol": "CONNECT", "targetHost": "10.0.0.1", "targetPort": 8443},
            "proxyProtocol": {"version": "V2"},
            "retryBudget": {"percent": 25.5, "minRetryConcurrency": 3, "budgetInterval": "10s"}
        },
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"},
             "trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIp": false, "maglev": {"tableSize": 65537}},
                                                "zoneAwareLbSetting": {"enabled": true, "minClusterSize": 6,
                                                                       "failover": [{"from": "a", "to": "b"}]}}}},
            {"name": "v3", "trafficPolicy": {"loadBalancer": {"backendUtilization": {
                "errorUtilizationPenaltyPercent": 20, "metricNamesForComputingUtilization": ["named_metrics.foo"],
                "weightUpdatePeriod": "1s", "weightExpirationPeriod": "3m", "weightStabilizationPeriod": "10s"}}}}
        ]
    }"#;

    #[test]
    fn full_spec_round_trips_and_keeps_presence() {
        let dr = load(FULL).unwrap();
        let written = serde_json::to_string(&dr).unwrap();
        assert_eq!(load(&written).unwrap(), dr, "{written}");

        let tp = dr.traffic_policy.as_ref().unwrap();
        let lb = tp.load_balancer.as_ref().unwrap();
        let Some(LbPolicy::ConsistentHash(hash)) = &lb.lb_policy else {
            panic!("{lb:?}")
        };
        assert!(matches!(&hash.hash_key, Some(HashKey::HttpCookie(c)) if c.attributes.len() == 2));
        assert_eq!(
            hash.hash_algorithm,
            Some(HashAlgorithm::RingHash(RingHash {
                minimum_ring_size: 1024
            }))
        );
        // Wrappers keep an explicit zero/false.
        let od = tp.outlier_detection.as_ref().unwrap();
        assert_eq!(od.consecutive_5xx_errors, Some(0));
        assert_eq!(od.consecutive_errors, 0);
        assert_eq!(tp.tls.as_ref().unwrap().insecure_skip_verify, Some(false));
        assert_eq!(
            lb.locality_lb_setting.as_ref().unwrap().enabled,
            Some(false)
        );
        assert!(written.contains(r#""consecutive5xxErrors":0"#), "{written}");
        assert!(
            written.contains(r#""insecureSkipVerify":false"#),
            "{written}"
        );
        // `useSourceIp: false` still selects its oneof branch, and is written back.
        let v2_lb = dr.subsets[1].traffic_policy.as_ref().unwrap();
        let Some(LbPolicy::ConsistentHash(v2_hash)) =
            &v2_lb.load_balancer.as_ref().unwrap().lb_policy
        else {
            panic!()
        };
        assert_eq!(v2_hash.hash_key, Some(HashKey::UseSourceIp(false)));
        assert!(written.contains(r#""useSourceIp":false"#), "{written}");
        assert_eq!(
            tp.port_level_settings[0].port,
            Some(PortSelector { number: 9080 })
        );
        assert_eq!(
            tp.connection_pool
                .as_ref()
                .unwrap()
                .http
                .as_ref()
                .unwrap()
                .h2_upgrade_policy,
            Some(H2UpgradePolicy::Upgrade)
        );
    }

    #[test]
    fn unset_fields_are_omitted_on_output() {
        let dr = load(r#"{"host": "a", "trafficPolicy": {"loadBalancer": {}}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&dr).unwrap(),
            r#"{"host":"a","trafficPolicy":{"loadBalancer":{}}}"#
        );
        let empty = DestinationRule::default();
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
    }

    #[test]
    fn protobuf_field_names_load() {
        let dr = load(
            r#"{"host": "a", "export_to": ["*"], "workload_selector": {"match_labels": {"app": "x"}},
                "traffic_policy": {
                    "load_balancer": {"consistent_hash": {"http_header_name": "x-user", "minimum_ring_size": 64,
                                                          "ring_hash": {"minimum_ring_size": 128}},
                                      "locality_lb_setting": {"failover_priority": ["r"]},
                                      "warmup_duration_secs": "5s"},
                    "connection_pool": {"tcp": {"max_connections": 5, "tcp_keepalive": {"probes": 1}},
                                        "http": {"http1_max_pending_requests": 1, "h2_upgrade_policy": "DEFAULT",
                                                 "use_client_protocol": true, "http2_keep_alive": {"timeout": "1s"}}},
                    "outlier_detection": {"consecutive_5xx_errors": 7, "base_ejection_time": "30s"},
                    "tls": {"mode": "MUTUAL", "client_certificate": "/c.pem", "private_key": "/k.pem",
                            "ca_certificates": "/ca.pem", "subject_alt_names": ["s"], "insecure_skip_verify": true},
                    "port_level_settings": [{"port": {"number": 80}}],
                    "proxy_protocol": {"version": "V1"},
                    "retry_budget": {"min_retry_concurrency": 2}
                },
                "subsets": [{"name": "v1", "traffic_policy": {"tunnel": {"target_host": "h", "target_port": 1}}}]}"#,
        )
        .unwrap();
        assert_eq!(dr.export_to, ["*"]);
        assert_eq!(
            dr.workload_selector
                .unwrap()
                .match_labels
                .get("app")
                .map(String::as_str),
            Some("x")
        );
        let tp = dr.traffic_policy.unwrap();
        let lb = tp.load_balancer.unwrap();
        assert_eq!(lb.warmup_duration_secs, Some(Duration::from_secs(5)));
        let Some(LbPolicy::ConsistentHash(hash)) = lb.lb_policy else {
            panic!()
        };
        assert_eq!(
            hash.hash_key,
            Some(HashKey::HttpHeaderName("x-user".into()))
        );
        assert_eq!(hash.minimum_ring_size, 64);
        assert_eq!(
            tp.outlier_detection.unwrap().consecutive_5xx_errors,
            Some(7)
        );
        let tls = tp.tls.unwrap();
        assert_eq!(tls.mode, Some(ClientTlsMode::Mutual));
        assert_eq!(tls.insecure_skip_verify, Some(true));
        assert_eq!(tp.retry_budget.unwrap().min_retry_concurrency, 2);
        let tunnel = dr.subsets[0]
            .traffic_policy
            .as_ref()
            .unwrap()
            .tunnel
            .as_ref();
        assert_eq!(tunnel.map(|t| t.target_port), Some(1));
    }

    #[test]
    fn oneofs_reject_two_branches() {
        let err = load(
            r#"{"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM", "consistentHash": {}}}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains(
                "only one of simple, consistentHash, backendUtilization may be set, but simple and consistentHash are set"
            ),
            "{err}"
        );
        let err = load(
            r#"{"host": "a", "trafficPolicy": {"loadBalancer": {"consistentHash":
                {"httpHeaderName": "x", "useSourceIp": true}}}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName may be set"),
            "{err}"
        );
        let err = load(
            r#"{"host": "a", "trafficPolicy": {"loadBalancer": {"consistentHash":
                {"ringHash": {}, "maglev": {}}}}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("only one of ringHash, maglev may be set"),
            "{err}"
        );
    }

    #[test]
    fn unknown_enum_values_list_the_accepted_names() {
        let err =
            load(r#"{"trafficPolicy": {"loadBalancer": {"simple": "LEAST_CON"}}}"#).unwrap_err();
        assert!(err.contains("unknown variant `LEAST_CON`"), "{err}");
        assert!(
            err.contains("`UNSPECIFIED`, `LEAST_CONN`, `RANDOM`, `PASSTHROUGH`, `ROUND_ROBIN`, `LEAST_REQUEST`"),
            "{err}"
        );
        let err = load(r#"{"trafficPolicy": {"tls": {"mode": "STRICT"}}}"#).unwrap_err();
        assert!(
            err.contains("`DISABLE`, `SIMPLE`, `MUTUAL`, `ISTIO_MUTUAL`"),
            "{err}"
        );
        // Protobuf numbers are accepted too.
        let dr = load(r#"{"trafficPolicy": {"tls": {"mode": 3}}}"#).unwrap();
        assert_eq!(
            dr.traffic_policy.unwrap().tls.unwrap().mode,
            Some(ClientTlsMode::IstioMutual)
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = load(r#"{"host": "a", "trafficPolcy": {}}"#).unwrap_err();
        assert!(err.contains("unknown field `trafficPolcy`"), "{err}");
        // Also inside the oneof-carrying structs, which go through their wire shape.
        let err = load(r#"{"trafficPolicy": {"loadBalancer": {"simpl": "RANDOM"}}}"#).unwrap_err();
        assert!(err.contains("unknown field `simpl`"), "{err}");
        let err = load(
            r#"{"trafficPolicy": {"loadBalancer": {"consistentHash": {"useSourceIP": true}}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("unknown field `useSourceIP`"), "{err}");
        // The type-level selector uses `matchLabels`, not `labels`.
        let err = load(r#"{"workloadSelector": {"labels": {"app": "x"}}}"#).unwrap_err();
        assert!(err.contains("unknown field `labels`"), "{err}");
    }

    #[test]
    fn out_of_range_numbers_load_for_validation_but_wrong_types_do_not() {
        let dr = load(r#"{"trafficPolicy": {"portLevelSettings": [{"port": {"number": 70000}}]}}"#)
            .unwrap();
        assert_eq!(
            dr.traffic_policy.unwrap().port_level_settings[0].port,
            Some(PortSelector { number: 70000 })
        );
        let dr = load(r#"{"trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": -1}}}}"#)
            .unwrap();
        let tcp = dr
            .traffic_policy
            .unwrap()
            .connection_pool
            .unwrap()
            .tcp
            .unwrap();
        assert_eq!(tcp.max_connections, -1);
        assert!(
            load(r#"{"trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": -1}}}"#)
                .is_err()
        );
    }
}
