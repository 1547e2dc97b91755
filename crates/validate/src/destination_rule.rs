//! Validation of `DestinationRule` (VALIDATION.md §4, rules D-1 … D-14, and the CRD layer K-D).
//!
//! [`validate_destination_rule`] judges a whole rule as Istio's `ValidateDestinationRule` does;
//! the other entry points judge one sub-object, as the Istio functions they are named after do,
//! with paths relative to that sub-object.

use std::collections::{BTreeMap, HashSet};

use portcullis_model::Duration;
use portcullis_model::destination_rule::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRule, H2UpgradePolicy,
    HashAlgorithm, HashKey, LbPolicy, LoadBalancerSettings, LocalityLoadBalancerSetting,
    OutlierDetection, PortTrafficPolicy, TrafficPolicy, TunnelSettings, WarmupConfiguration,
    WorkloadLabelSelector, ZoneAwareLoadBalancerSetting,
};

use crate::common;
use crate::context::{Checker, Context};
use crate::diag::Diagnostics;
use crate::invalid::{InvalidValue, ValueKind};
use crate::path;

/// The node labels that carry a locality; `failoverPriority` must not name them where Envoy
/// already orders endpoints by locality.
const TOPOLOGY_LABELS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// The largest Maglev table Envoy accepts is below this.
const MAGLEV_TABLE_SIZE_LIMIT: u64 = 5_000_011;

/// Validates a whole `DestinationRule` spec (`ValidateDestinationRule`), with paths starting at
/// `spec.`. When `ctx.crd_schema` is set, the CRD's OpenAPI/CEL rules (K-D) are applied too.
///
/// ```
/// use portcullis_model::DestinationRule;
/// use portcullis_validate::Context;
/// use portcullis_validate::destination_rule::validate_destination_rule;
///
/// let dr: DestinationRule = serde_json::from_str(r#"{"host": "reviews", "trafficPolicy": {}}"#)?;
/// let found = validate_destination_rule(&dr, &Context::new("bookinfo", "reviews"));
/// assert!(!found.is_valid());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn validate_destination_rule(spec: &DestinationRule, ctx: &Context) -> Diagnostics {
    let mut c = Checker::new(ctx);
    // C-M1 … C-M3 first; Istio stops at a refused annotation.
    if crate::gateway::metadata_checks(&mut c, ctx) {
        if ctx.crd_schema {
            crd_destination_rule(&mut c, "spec", spec);
        }
        destination_rule(&mut c, "spec", spec);
    }
    c.finish()
}

/// Validates a traffic policy alone (`validateTrafficPolicy`); `namespace` is the rule's
/// namespace, which `configmap://` credential names must match.
pub fn validate_traffic_policy(policy: &TrafficPolicy, namespace: &str) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    traffic_policy(&mut c, "", policy, namespace);
    c.finish()
}

/// Validates connection-pool settings alone (`validateConnectionPool`).
pub fn validate_connection_pool(settings: &ConnectionPoolSettings) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    connection_pool(&mut c, "", settings);
    c.finish()
}

/// Validates load-balancer settings alone (`validateLoadBalancer`); `outlier` is the outlier
/// detection of the same policy level, which locality failover needs.
pub fn validate_load_balancer(
    settings: &LoadBalancerSettings,
    outlier: Option<&OutlierDetection>,
) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    load_balancer(&mut c, "", settings, outlier);
    c.finish()
}

/// Validates a locality load-balancer setting alone (`agent.ValidateLocalityLbSetting`); an
/// absent setting is valid.
pub fn validate_locality_lb_setting(
    setting: Option<&LocalityLoadBalancerSetting>,
    outlier: Option<&OutlierDetection>,
) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    if let Some(setting) = setting {
        locality_lb_setting(&mut c, "", setting, outlier);
    }
    c.finish()
}

/// Validates a zone-aware load-balancer setting alone (`agent.ValidateZoneAwareLbSetting`); an
/// absent setting is valid.
pub fn validate_zone_aware_lb_setting(
    setting: Option<&ZoneAwareLoadBalancerSetting>,
    outlier: Option<&OutlierDetection>,
) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    if let Some(setting) = setting {
        zone_aware_lb_setting(&mut c, "", setting, outlier);
    }
    c.finish()
}

/// Checks a list of localities (`region`, `region/zone`, `region/zone/subzone`, `*` allowed
/// once, as the last character) for wildcards, empty parts and overlaps, in order
/// (`validateLocalities`): the first problem is returned.
pub fn validate_localities(localities: &[String]) -> Result<(), InvalidValue> {
    localities_check(localities.iter().map(String::as_str))
        .map_err(|m| InvalidValue::new(ValueKind::Localities, m))
}

/// Validates outlier detection alone (`validateOutlierDetection`).
pub fn validate_outlier_detection(outlier: &OutlierDetection) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    outlier_detection(&mut c, "", outlier);
    c.finish()
}

/// Validates client TLS settings alone (`agent.ValidateTLS` with an empty configuration
/// namespace); absent settings are valid.
pub fn validate_client_tls(tls: Option<&ClientTlsSettings>) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    if let Some(tls) = tls {
        client_tls(&mut c, "", tls, "");
    }
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// The webhook rules.

/// D-1 … D-4.
fn destination_rule(c: &mut Checker<'_>, at: &str, spec: &DestinationRule) {
    let namespace = c.ctx.namespace.clone();

    // D-1
    if let Err(message) = common::validate_wildcard_domain(&spec.host) {
        c.error(path::join(at, "host"), message);
    }

    // D-2: warnings of the top-level policy are kept.
    if let Some(policy) = &spec.traffic_policy {
        traffic_policy(c, &path::join(at, "trafficPolicy"), policy, &namespace);
    }

    // D-3 (a null subset cannot be written in this model).
    let subsets_at = path::join(at, "subsets");
    let mut names = HashSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let subset_at = path::index(&subsets_at, i);
        let name_at = path::join(&subset_at, "name");
        if !names.insert(subset.name.as_str()) {
            c.error(
                name_at.clone(),
                format!("duplicate subset names: {}", subset.name),
            );
        }
        if subset.name.is_empty() {
            c.error(name_at, "subset name cannot be empty");
        } else if !common::is_dns1123_label(&subset.name) {
            c.error(name_at, format!("subset name is invalid: {}", subset.name));
        }
        if let Err(message) = common::validate_labels(&subset.labels) {
            c.error(path::join(&subset_at, "labels"), message);
        }
        if let Some(policy) = &subset.traffic_policy {
            // Only the errors of a subset's policy propagate.
            let found = c.isolated(|c| {
                traffic_policy(
                    c,
                    &path::join(&subset_at, "trafficPolicy"),
                    policy,
                    &namespace,
                );
            });
            c.out.extend_errors(found);
        }
    }

    // D-4
    common::export_to_at(
        c,
        &path::join(at, "exportTo"),
        &namespace,
        &spec.export_to,
        false,
        spec.workload_selector.is_some(),
    );
    if let Some(selector) = &spec.workload_selector {
        workload_selector(c, &path::join(at, "workloadSelector"), selector);
    }
}

/// C-14, the `matchLabels` variant.
fn workload_selector(c: &mut Checker<'_>, at: &str, selector: &WorkloadLabelSelector) {
    let labels_at = path::join(at, "matchLabels");
    for (key, value) in &selector.match_labels {
        let pair = format!("{key}={value}");
        if key.is_empty() {
            c.error(
                labels_at.clone(),
                format!("empty key is not supported in selector: {pair:?}"),
            );
        }
        if key.contains('*') || value.contains('*') {
            c.error(
                path::key(&labels_at, key),
                format!("wildcard is not supported in selector: {pair:?}"),
            );
        }
    }
    if selector.match_labels.is_empty() {
        c.warning(at, "workload selector specified without labels");
    }
}

/// D-5: a traffic policy that is present.
fn traffic_policy(c: &mut Checker<'_>, at: &str, policy: &TrafficPolicy, namespace: &str) {
    if policy.outlier_detection.is_none()
        && policy.connection_pool.is_none()
        && policy.load_balancer.is_none()
        && policy.tls.is_none()
        && policy.port_level_settings.is_empty()
        && policy.tunnel.is_none()
        && policy.proxy_protocol.is_none()
        && policy.retry_budget.is_none()
    {
        c.error(at, "traffic policy must have at least one field");
        return;
    }
    if policy.tunnel.is_some() && policy.proxy_protocol.is_some() {
        c.error(at, "tunnel and proxyProtocol must not be set together");
        return;
    }
    level_policies(
        c,
        at,
        policy.outlier_detection.as_ref(),
        policy.connection_pool.as_ref(),
        policy.load_balancer.as_ref(),
        policy.tls.as_ref(),
        namespace,
    );
    port_traffic_policies(c, at, &policy.port_level_settings, namespace);
    if let Some(tunnel) = &policy.tunnel {
        tunnel_settings(c, &path::join(at, "tunnel"), tunnel);
    }
    // D-14: `proxyProtocol.version` can only hold V1 or V2 in this model (out-of-range numbers
    // fail to load), so there is nothing left to check. `retryBudget` is not checked.
}

/// The four checks a policy level (whole policy or one port) shares.
fn level_policies(
    c: &mut Checker<'_>,
    at: &str,
    outlier: Option<&OutlierDetection>,
    pool: Option<&ConnectionPoolSettings>,
    balancer: Option<&LoadBalancerSettings>,
    tls: Option<&ClientTlsSettings>,
    namespace: &str,
) {
    if let Some(outlier) = outlier {
        outlier_detection(c, &path::join(at, "outlierDetection"), outlier);
    }
    if let Some(pool) = pool {
        connection_pool(c, &path::join(at, "connectionPool"), pool);
    }
    if let Some(balancer) = balancer {
        load_balancer(c, &path::join(at, "loadBalancer"), balancer, outlier);
    }
    if let Some(tls) = tls {
        client_tls(c, &path::join(at, "tls"), tls, namespace);
    }
}

/// D-12: only the errors of port-level settings propagate.
fn port_traffic_policies(
    c: &mut Checker<'_>,
    at: &str,
    list: &[PortTrafficPolicy],
    namespace: &str,
) {
    let list_at = path::join(at, "portLevelSettings");
    let found = c.isolated(|c| {
        for (i, port_policy) in list.iter().enumerate() {
            let item_at = path::index(&list_at, i);
            if port_policy.port.is_none() {
                c.error(
                    path::join(&item_at, "port"),
                    "portTrafficPolicy must have valid port",
                );
            }
            if port_policy.outlier_detection.is_none()
                && port_policy.connection_pool.is_none()
                && port_policy.load_balancer.is_none()
                && port_policy.tls.is_none()
            {
                c.error(
                    item_at.clone(),
                    "port traffic policy must have at least one field",
                );
            } else {
                level_policies(
                    c,
                    &item_at,
                    port_policy.outlier_detection.as_ref(),
                    port_policy.connection_pool.as_ref(),
                    port_policy.load_balancer.as_ref(),
                    port_policy.tls.as_ref(),
                    namespace,
                );
            }
        }
    });
    c.out.extend_errors(found);
}

/// A C-12 duration check at `at`.
fn duration(c: &mut Checker<'_>, at: &str, d: &Duration) {
    if let Err(message) = common::validate_duration(d) {
        c.error(at, message);
    }
}

/// D-6.
fn outlier_detection(c: &mut Checker<'_>, at: &str, outlier: &OutlierDetection) {
    if let Some(d) = &outlier.base_ejection_time {
        duration(c, &path::join(at, "baseEjectionTime"), d);
    }
    if outlier.consecutive_errors != 0 {
        c.warning(
            path::join(at, "consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or \
             consecutive5xxErrors instead",
        );
    }
    if !outlier.split_external_local_origin_errors
        && outlier.consecutive_local_origin_failures.unwrap_or(0) > 0
    {
        c.error(
            path::join(at, "consecutiveLocalOriginFailures"),
            "outlier detection consecutive local origin failures is specified, but split \
             external local origin errors is set to false",
        );
    }
    if let Some(d) = &outlier.interval {
        duration(c, &path::join(at, "interval"), d);
    }
    if let Err(message) = common::validate_percent(outlier.max_ejection_percent) {
        c.error(path::join(at, "maxEjectionPercent"), message);
    }
    if let Err(message) = common::validate_percent(outlier.min_health_percent) {
        c.error(path::join(at, "minHealthPercent"), message);
    }
}

/// D-7.
fn connection_pool(c: &mut Checker<'_>, at: &str, settings: &ConnectionPoolSettings) {
    if settings.http.is_none() && settings.tcp.is_none() {
        c.error(at, "connection pool must have at least one field");
        return;
    }

    if let Some(http) = &settings.http {
        let http_at = path::join(at, "http");
        let non_negative = [
            (
                http.http1_max_pending_requests,
                "http1MaxPendingRequests",
                "http1 max pending requests must be non-negative",
            ),
            (
                http.http2_max_requests,
                "http2MaxRequests",
                "http2 max requests must be non-negative",
            ),
            (
                http.max_requests_per_connection,
                "maxRequestsPerConnection",
                "max requests per connection must be non-negative",
            ),
            (
                http.max_retries,
                "maxRetries",
                "max retries must be non-negative",
            ),
        ];
        for (value, field, message) in non_negative {
            if value < 0 {
                c.error(path::join(&http_at, field), message);
            }
        }
        if let Some(d) = &http.idle_timeout {
            duration(c, &path::join(&http_at, "idleTimeout"), d);
        }
        if http.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) && http.use_client_protocol {
            c.error(
                path::join(&http_at, "useClientProtocol"),
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            );
        }
        if http.max_concurrent_streams < 0 {
            c.error(
                path::join(&http_at, "maxConcurrentStreams"),
                "max concurrent streams must be non-negative",
            );
        }
        if let Some(keepalive) = &http.http2_keep_alive {
            let keepalive_at = path::join(&http_at, "http2KeepAlive");
            match &keepalive.interval {
                None => c.error(
                    path::join(&keepalive_at, "interval"),
                    "http2 keepalive interval is required",
                ),
                Some(d) => duration(c, &path::join(&keepalive_at, "interval"), d),
            }
            match &keepalive.timeout {
                None => c.error(
                    path::join(&keepalive_at, "timeout"),
                    "http2 keepalive timeout is required",
                ),
                Some(d) => duration(c, &path::join(&keepalive_at, "timeout"), d),
            }
        }
    }

    if let Some(tcp) = &settings.tcp {
        let tcp_at = path::join(at, "tcp");
        if tcp.max_connections < 0 {
            c.error(
                path::join(&tcp_at, "maxConnections"),
                "max connections must be non-negative",
            );
        }
        if let Some(d) = &tcp.connect_timeout {
            duration(c, &path::join(&tcp_at, "connectTimeout"), d);
        }
        if let Some(d) = &tcp.max_connection_duration {
            duration(c, &path::join(&tcp_at, "maxConnectionDuration"), d);
        }
        if let Some(d) = &tcp.idle_timeout {
            // Istio skips the check when the whole-millisecond part is zero (`0s` disables the
            // timeout; as a quirk, sub-millisecond values pass too).
            if d.as_nanos() / 1_000_000 != 0 {
                duration(c, &path::join(&tcp_at, "idleTimeout"), d);
            }
        }
        if let Some(keepalive) = &tcp.tcp_keepalive {
            let keepalive_at = path::join(&tcp_at, "tcpKeepalive");
            if let Some(d) = &keepalive.time {
                duration(c, &path::join(&keepalive_at, "time"), d);
            }
            if let Some(d) = &keepalive.interval {
                duration(c, &path::join(&keepalive_at, "interval"), d);
            }
        }
    }
}

/// D-8.
fn load_balancer(
    c: &mut Checker<'_>,
    at: &str,
    settings: &LoadBalancerSettings,
    outlier: Option<&OutlierDetection>,
) {
    // `simple` is always valid.
    if let Some(LbPolicy::ConsistentHash(hash)) = &settings.lb_policy {
        let hash_at = path::join(at, "consistentHash");
        if let Some(HashKey::HttpCookie(cookie)) = &hash.hash_key {
            let cookie_at = path::join(&hash_at, "httpCookie");
            if cookie.name.is_empty() {
                c.error(
                    path::join(&cookie_at, "name"),
                    "name required for HttpCookie",
                );
            }
            let attributes_at = path::join(&cookie_at, "attributes");
            let mut seen = HashSet::new();
            for (i, attribute) in cookie.attributes.iter().enumerate() {
                let name_at = path::join(&path::index(&attributes_at, i), "name");
                if attribute.name.is_empty() {
                    c.error(name_at, "cookie attribute name cannot be empty");
                } else if !seen.insert(attribute.name.as_str()) {
                    c.error(
                        name_at,
                        format!("duplicate cookie attribute name: {}", attribute.name),
                    );
                }
            }
        }
        if hash.minimum_ring_size != 0 {
            c.warning(
                path::join(&hash_at, "minimumRingSize"),
                "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash \
                 configuration instead",
            );
            if hash.hash_algorithm.is_some() {
                c.error(
                    path::join(&hash_at, "minimumRingSize"),
                    "only one of MinimumRingSize or Maglev/Ringhash can be specified",
                );
            }
        }
        if let Some(HashAlgorithm::Maglev(maglev)) = &hash.hash_algorithm {
            let size_at = path::join(&path::join(&hash_at, "maglev"), "tableSize");
            if maglev.table_size == 0 {
                c.error(size_at.clone(), "tableSize must be set for maglev");
            }
            if maglev.table_size >= MAGLEV_TABLE_SIZE_LIMIT {
                c.error(
                    size_at.clone(),
                    "tableSize must be less than 5000011 for maglev",
                );
            }
            if !is_prime(maglev.table_size) {
                c.error(size_at, "tableSize must be a prime number for maglev");
            }
        }
    }

    if settings.locality_lb_setting.is_some() && settings.zone_aware_lb_setting.is_some() {
        c.error(
            at,
            "only one of localityLbSetting and zoneAwareLbSetting can be set",
        );
    }
    if let Some(locality) = &settings.locality_lb_setting {
        locality_lb_setting(c, &path::join(at, "localityLbSetting"), locality, outlier);
    }
    if let Some(zone_aware) = &settings.zone_aware_lb_setting {
        zone_aware_lb_setting(
            c,
            &path::join(at, "zoneAwareLbSetting"),
            zone_aware,
            outlier,
        );
    }
    if let Some(warmup) = &settings.warmup {
        warmup_configuration(c, &path::join(at, "warmup"), warmup);
    }
    // `warmupDurationSecs` is not checked by the webhook.
}

/// D-8, warmup.
fn warmup_configuration(c: &mut Checker<'_>, at: &str, warmup: &WarmupConfiguration) {
    let duration_at = path::join(at, "duration");
    match &warmup.duration {
        None => c.error(duration_at, "duration is required"),
        Some(d) => duration(c, &duration_at, d),
    }
    if warmup.minimum_percent.unwrap_or(0.0) > 100.0 {
        c.error(
            path::join(at, "minimumPercent"),
            "minimumPercent value should be less than or equal to 100",
        );
    }
    if let Some(aggression) = warmup.aggression
        && aggression <= 0.0
    {
        c.error(
            path::join(at, "aggression"),
            "aggression should be greater than 0",
        );
    }
}

/// Envoy's primality test for Maglev table sizes: 1, 2 and 3 count as prime, 0 and other even
/// numbers do not; other numbers are tested exactly.
fn is_prime(x: u64) -> bool {
    if x != 0 && x < 4 {
        return true;
    }
    if x & 1 == 0 {
        return false;
    }
    if x < 1 << 32 {
        let mut factor: u64 = 3;
        while factor * factor <= x {
            if x.is_multiple_of(factor) {
                return false;
            }
            factor += 2;
        }
        return true;
    }
    miller_rabin(x)
}

/// Deterministic Miller–Rabin for odd 64-bit numbers (the first twelve primes as bases suffice
/// below 2^64), so a hostile table size cannot make trial division run for minutes.
fn miller_rabin(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    let mul = |a: u64, b: u64| -> u64 {
        let product = u128::from(a) * u128::from(b) % u128::from(n);
        u64::try_from(product).unwrap_or(0)
    };
    let pow = |mut base: u64, mut exp: u64| -> u64 {
        let mut result = 1 % n;
        base %= n;
        while exp > 0 {
            if exp & 1 == 1 {
                result = mul(result, base);
            }
            base = mul(base, base);
            exp >>= 1;
        }
        result
    };
    let d_full = n - 1;
    let shift = d_full.trailing_zeros();
    let d = d_full >> shift;
    'bases: for a in BASES {
        if a % n == 0 {
            continue;
        }
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..shift {
            x = mul(x, x);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// D-9 (`agent.ValidateLocalityLbSetting`).
fn locality_lb_setting(
    c: &mut Checker<'_>,
    at: &str,
    lb: &LocalityLoadBalancerSetting,
    outlier: Option<&OutlierDetection>,
) {
    if !lb.distribute.is_empty() && !lb.failover.is_empty() {
        c.error(
            at,
            "can not simultaneously specify 'distribute' and 'failover'",
        );
        return;
    }

    if !lb.failover.is_empty() {
        let priority_at = path::join(at, "failoverPriority");
        for (i, label) in lb.failover_priority.iter().enumerate() {
            if TOPOLOGY_LABELS.contains(&label.as_str()) {
                c.error(
                    path::index(&priority_at, i),
                    format!(
                        "can not simultaneously set 'failover' and topology label '{label}' in \
                         'failover_priority'"
                    ),
                );
                return;
            }
        }
    }

    let distribute_at = path::join(at, "distribute");
    for (i, entry) in lb.distribute.iter().enumerate() {
        let to_at = path::join(&path::index(&distribute_at, i), "to");
        let mut total: u32 = 0;
        for (locality, weight) in &entry.to {
            if *weight == 0 || *weight > 100 {
                c.error(
                    path::key(&to_at, locality),
                    "locality weight must be in range [1, 100]",
                );
                return;
            }
            total = total.wrapping_add(*weight);
        }
        if total != 100 {
            c.error(to_at, format!("total locality weight {total} != 100"));
            return;
        }
        if let Err(message) = localities_check(entry.to.keys().map(String::as_str)) {
            c.error(to_at, message);
        }
    }
    if let Err(message) = localities_check(lb.distribute.iter().map(|d| d.from.as_str())) {
        c.error(distribute_at, message);
    }

    failover_needs_outlier(c, at, &lb.failover, &lb.failover_priority, outlier);

    let failover_at = path::join(at, "failover");
    for (i, failover) in lb.failover.iter().enumerate() {
        failover_entry(
            c,
            &path::index(&failover_at, i),
            &failover.from,
            &failover.to,
            [
                "locality lb failover settings must specify different regions",
                "locality lb failover only specify region",
                "locality lb failover region should not contain '*' wildcard",
            ],
        );
    }
}

/// D-10 (`agent.ValidateZoneAwareLbSetting`).
fn zone_aware_lb_setting(
    c: &mut Checker<'_>,
    at: &str,
    lb: &ZoneAwareLoadBalancerSetting,
    outlier: Option<&OutlierDetection>,
) {
    let priority_at = path::join(at, "failoverPriority");
    for (i, label) in lb.failover_priority.iter().enumerate() {
        if TOPOLOGY_LABELS.contains(&label.as_str()) {
            c.error(
                path::index(&priority_at, i),
                format!(
                    "'failover_priority' for zone aware lb must not use topology label \
                     '{label}'; region- and zone-level routing are handled automatically"
                ),
            );
        }
    }

    failover_needs_outlier(c, at, &lb.failover, &lb.failover_priority, outlier);

    let failover_at = path::join(at, "failover");
    for (i, failover) in lb.failover.iter().enumerate() {
        failover_entry(
            c,
            &path::index(&failover_at, i),
            &failover.from,
            &failover.to,
            [
                "zone aware lb failover settings must specify different regions",
                "zone aware lb failover only specifies region; zone and subzone failover are \
                 handled automatically",
                "zone aware lb failover region should not contain '*' wildcard",
            ],
        );
    }
}

/// [W] failover without outlier detection (D-9, D-10).
fn failover_needs_outlier<T>(
    c: &mut Checker<'_>,
    at: &str,
    failover: &[T],
    failover_priority: &[String],
    outlier: Option<&OutlierDetection>,
) {
    if (!failover.is_empty() || !failover_priority.is_empty()) && outlier.is_none() {
        let field = if failover.is_empty() {
            "failoverPriority"
        } else {
            "failover"
        };
        c.warning(
            path::join(at, field),
            "outlier detection policy must be provided for failover",
        );
    }
}

/// One failover entry: distinct regions, no `/`, no `*` (messages: same, slash, wildcard).
fn failover_entry(c: &mut Checker<'_>, at: &str, from: &str, to: &str, messages: [&str; 3]) {
    let [same, slash, wildcard] = messages;
    if from == to {
        c.error(at, same);
    }
    if from.contains('/') || to.contains('/') {
        c.error(at, slash);
    }
    if from.contains('*') || to.contains('*') {
        c.error(at, wildcard);
    }
}

/// `validateLocalities`: the first problem, in list order.
fn localities_check<'a>(localities: impl Iterator<Item = &'a str>) -> Result<(), String> {
    // region → zone → subzones; a `*` key stands for "everything below".
    let mut seen: BTreeMap<&str, BTreeMap<&str, HashSet<&str>>> = BTreeMap::new();
    for locality in localities {
        let stars = locality.matches('*').count();
        if stars > 1 || (stars == 1 && !locality.ends_with('*')) {
            return Err(format!(
                "locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
            ));
        }
        let overlap = || format!("locality {locality} overlap with previous specified ones");
        if seen.contains_key("*") {
            return Err(overlap());
        }
        let parts: Vec<&str> = locality.splitn(3, '/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "locality {locality} must not contain empty region/zone/subzone info"
            ));
        }
        match parts.as_slice() {
            [region] => {
                if seen.contains_key(region) {
                    return Err(overlap());
                }
                seen.insert(region, BTreeMap::from([("*", HashSet::from(["*"]))]));
            }
            [region, zone] => match seen.get_mut(region) {
                Some(zones) => {
                    if zones.contains_key("*") || zones.contains_key(zone) {
                        return Err(overlap());
                    }
                    zones.insert(zone, HashSet::from(["*"]));
                }
                None => {
                    seen.insert(region, BTreeMap::from([(*zone, HashSet::from(["*"]))]));
                }
            },
            [region, zone, subzone] => match seen.get_mut(region) {
                Some(zones) => {
                    if zones.contains_key("*") {
                        return Err(overlap());
                    }
                    match zones.get_mut(zone) {
                        Some(subzones) => {
                            if subzones.contains("*") || subzones.contains(subzone) {
                                return Err(overlap());
                            }
                            subzones.insert(subzone);
                        }
                        None => {
                            zones.insert(zone, HashSet::from([*subzone]));
                        }
                    }
                }
                None => {
                    seen.insert(region, BTreeMap::from([(*zone, HashSet::from([*subzone]))]));
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// D-11 (`agent.ValidateTLS`).
fn client_tls(c: &mut Checker<'_>, at: &str, tls: &ClientTlsSettings, namespace: &str) {
    let credential_at = path::join(at, "credentialName");
    if let Some(rest) = tls.credential_name.strip_prefix("configmap://") {
        let full = &tls.credential_name;
        let mut parts = rest.split('/');
        let resource_namespace = parts.next().unwrap_or_default();
        let parsed = match parts.next() {
            None => Err(format!(
                "invalid resource name {full:?}. Expected namespace and name"
            )),
            Some(_) if resource_namespace.is_empty() => Err(format!(
                "invalid resource name {full:?}. Expected namespace"
            )),
            Some("") => Err(format!("invalid resource name {full:?}. Expected name")),
            Some(_) => Ok(resource_namespace),
        };
        match parsed {
            Err(message) => c.error(
                credential_at.clone(),
                format!("invalid configmap:// credentialName: {message}"),
            ),
            Ok(resource_namespace) if resource_namespace != namespace || namespace.is_empty() => {
                c.error(
                    credential_at.clone(),
                    format!(
                        "invalid configmap:// credentialName: namespace must match the \
                         configuration namespace {namespace:?}"
                    ),
                );
            }
            Ok(_) => {}
        }
    }

    let mode = tls.mode.unwrap_or_default();
    if tls.insecure_skip_verify == Some(true) {
        let skip_at = path::join(at, "insecureSkipVerify");
        if mode == ClientTlsMode::Simple
            && (!tls.ca_certificates.is_empty()
                || !tls.credential_name.is_empty()
                || !tls.subject_alt_names.is_empty())
        {
            c.error(
                skip_at.clone(),
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when \
                 InsecureSkipVerify is set true",
            );
        }
        if mode == ClientTlsMode::Mutual
            && (!tls.ca_certificates.is_empty() || !tls.subject_alt_names.is_empty())
        {
            c.error(
                skip_at,
                "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is \
                 set true",
            );
        }
    }

    if matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual)
        && !tls.credential_name.is_empty()
    {
        if !tls.client_certificate.is_empty()
            || !tls.ca_certificates.is_empty()
            || !tls.private_key.is_empty()
            || !tls.ca_crl.is_empty()
        {
            c.error(
                credential_at,
                "cannot specify client certificates or CA certificate or CA CRL If \
                 credentialName is set",
            );
        }
        // The credentials come from the secret: nothing else is required.
        return;
    }

    if mode == ClientTlsMode::Mutual {
        if tls.client_certificate.is_empty() {
            c.error(
                path::join(at, "clientCertificate"),
                "client certificate required for mutual tls",
            );
        }
        if tls.private_key.is_empty() {
            c.error(
                path::join(at, "privateKey"),
                "private key required for mutual tls",
            );
        }
    }
}

/// D-13.
fn tunnel_settings(c: &mut Checker<'_>, at: &str, tunnel: &TunnelSettings) {
    if !matches!(tunnel.protocol.as_str(), "" | "CONNECT" | "POST") {
        c.error(
            path::join(at, "protocol"),
            "tunnel protocol must be \"CONNECT\" or \"POST\"",
        );
    }
    if let (Err(fqdn), Err(ip)) = (
        common::validate_fqdn(&tunnel.target_host),
        common::validate_ip_address(&tunnel.target_host),
    ) {
        c.error(
            path::join(at, "targetHost"),
            format!("tunnel target host must be valid FQDN or IP address: {fqdn}; {ip}"),
        );
    }
    if let Err(message) = common::validate_port_number(i64::from(tunnel.target_port)) {
        c.error(
            path::join(at, "targetPort"),
            format!("tunnel target port is invalid: {message}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// K-D: the CRD's OpenAPI and CEL rules, applied by the API server before the webhook.

const CRD_DURATION_MESSAGE: &str = "must be a valid duration greater than 1ms";
const MAX_PORT_LEVEL_SETTINGS: usize = 4096;
const MAX_MATCH_LABELS: usize = 4096;
const MAX_LABEL_VALUE_LENGTH: usize = 63;

fn crd_required(c: &mut Checker<'_>, at: &str) {
    c.error(at, "Required value");
}

/// The CEL rule every (but a few) duration field carries: at least 1 ms.
fn crd_duration(c: &mut Checker<'_>, at: &str, d: Option<&Duration>) {
    if let Some(d) = d
        && d.as_nanos() < 1_000_000
    {
        c.error(at, CRD_DURATION_MESSAGE);
    }
}

fn crd_destination_rule(c: &mut Checker<'_>, at: &str, spec: &DestinationRule) {
    // The model cannot tell an absent string from an empty one; both count as missing here.
    if spec.host.is_empty() {
        crd_required(c, &path::join(at, "host"));
    }
    if let Some(policy) = &spec.traffic_policy {
        crd_traffic_policy(c, &path::join(at, "trafficPolicy"), policy);
    }
    let subsets_at = path::join(at, "subsets");
    for (i, subset) in spec.subsets.iter().enumerate() {
        let subset_at = path::index(&subsets_at, i);
        if subset.name.is_empty() {
            crd_required(c, &path::join(&subset_at, "name"));
        }
        if let Some(policy) = &subset.traffic_policy {
            crd_traffic_policy(c, &path::join(&subset_at, "trafficPolicy"), policy);
        }
    }
    if let Some(selector) = &spec.workload_selector {
        let labels_at = path::join(&path::join(at, "workloadSelector"), "matchLabels");
        let labels = &selector.match_labels;
        if labels.len() > MAX_MATCH_LABELS {
            c.error(
                labels_at.clone(),
                format!(
                    "Too many: {}: must have at most {MAX_MATCH_LABELS} items",
                    labels.len()
                ),
            );
        }
        if labels.keys().any(|k| k.contains('*')) {
            c.error(labels_at.clone(), "wildcard not allowed in label key match");
        }
        if labels.keys().any(String::is_empty) {
            c.error(labels_at.clone(), "key must not be empty");
        }
        for (key, value) in labels {
            let value_at = path::key(&labels_at, key);
            if value.chars().count() > MAX_LABEL_VALUE_LENGTH {
                c.error(
                    value_at.clone(),
                    format!("Too long: may not be more than {MAX_LABEL_VALUE_LENGTH} bytes"),
                );
            }
            if value.contains('*') {
                c.error(value_at, "wildcard not allowed in label value match");
            }
        }
    }
}

fn crd_traffic_policy(c: &mut Checker<'_>, at: &str, policy: &TrafficPolicy) {
    crd_level(
        c,
        at,
        policy.outlier_detection.as_ref(),
        policy.connection_pool.as_ref(),
        policy.load_balancer.as_ref(),
    );
    let list_at = path::join(at, "portLevelSettings");
    if policy.port_level_settings.len() > MAX_PORT_LEVEL_SETTINGS {
        c.error(
            list_at.clone(),
            format!(
                "Too many: {}: must have at most {MAX_PORT_LEVEL_SETTINGS} items",
                policy.port_level_settings.len()
            ),
        );
    }
    for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
        crd_level(
            c,
            &path::index(&list_at, i),
            port_policy.outlier_detection.as_ref(),
            port_policy.connection_pool.as_ref(),
            port_policy.load_balancer.as_ref(),
        );
    }
    if let Some(tunnel) = &policy.tunnel {
        let tunnel_at = path::join(at, "tunnel");
        if tunnel.target_host.is_empty() {
            crd_required(c, &path::join(&tunnel_at, "targetHost"));
        }
        if tunnel.target_port == 0 {
            crd_required(c, &path::join(&tunnel_at, "targetPort"));
        }
    }
    if let Some(percent) = policy.retry_budget.as_ref().and_then(|b| b.percent) {
        crd_range(
            c,
            &path::join(&path::join(at, "retryBudget"), "percent"),
            percent,
            Some(0.0),
            Some(100.0),
        );
    }
}

/// An OpenAPI `minimum`/`maximum` check on a number.
fn crd_range(c: &mut Checker<'_>, at: &str, value: f64, min: Option<f64>, max: Option<f64>) {
    if let Some(min) = min
        && value < min
    {
        c.error(
            at,
            format!("Invalid value: {value}: should be greater than or equal to {min}"),
        );
    }
    if let Some(max) = max
        && value > max
    {
        c.error(
            at,
            format!("Invalid value: {value}: should be less than or equal to {max}"),
        );
    }
}

fn crd_level(
    c: &mut Checker<'_>,
    at: &str,
    outlier: Option<&OutlierDetection>,
    pool: Option<&ConnectionPoolSettings>,
    balancer: Option<&LoadBalancerSettings>,
) {
    if let Some(outlier) = outlier {
        let outlier_at = path::join(at, "outlierDetection");
        crd_duration(
            c,
            &path::join(&outlier_at, "baseEjectionTime"),
            outlier.base_ejection_time.as_ref(),
        );
        crd_duration(
            c,
            &path::join(&outlier_at, "interval"),
            outlier.interval.as_ref(),
        );
        let codes_at = path::join(&outlier_at, "outlierDetectionHttpErrorCodes");
        for (i, code) in outlier
            .outlier_detection_http_error_codes
            .iter()
            .enumerate()
        {
            crd_range(
                c,
                &path::index(&codes_at, i),
                f64::from(*code),
                Some(100.0),
                Some(599.0),
            );
        }
    }
    if let Some(pool) = pool {
        let pool_at = path::join(at, "connectionPool");
        if let Some(http) = &pool.http {
            let http_at = path::join(&pool_at, "http");
            crd_duration(
                c,
                &path::join(&http_at, "idleTimeout"),
                http.idle_timeout.as_ref(),
            );
            if let Some(keepalive) = &http.http2_keep_alive {
                let keepalive_at = path::join(&http_at, "http2KeepAlive");
                crd_duration(
                    c,
                    &path::join(&keepalive_at, "interval"),
                    keepalive.interval.as_ref(),
                );
                crd_duration(
                    c,
                    &path::join(&keepalive_at, "timeout"),
                    keepalive.timeout.as_ref(),
                );
            }
        }
        if let Some(tcp) = &pool.tcp {
            let tcp_at = path::join(&pool_at, "tcp");
            // `idleTimeout` carries no CEL rule.
            crd_duration(
                c,
                &path::join(&tcp_at, "connectTimeout"),
                tcp.connect_timeout.as_ref(),
            );
            crd_duration(
                c,
                &path::join(&tcp_at, "maxConnectionDuration"),
                tcp.max_connection_duration.as_ref(),
            );
            if let Some(keepalive) = &tcp.tcp_keepalive {
                let keepalive_at = path::join(&tcp_at, "tcpKeepalive");
                crd_duration(
                    c,
                    &path::join(&keepalive_at, "time"),
                    keepalive.time.as_ref(),
                );
                crd_duration(
                    c,
                    &path::join(&keepalive_at, "interval"),
                    keepalive.interval.as_ref(),
                );
            }
        }
    }
    if let Some(balancer) = balancer {
        crd_load_balancer(c, &path::join(at, "loadBalancer"), balancer);
    }
}

fn crd_load_balancer(c: &mut Checker<'_>, at: &str, balancer: &LoadBalancerSettings) {
    // The oneofs (simple/consistentHash, hash key, hash algorithm) and the enums are enforced
    // when the model loads.
    if let Some(LbPolicy::ConsistentHash(hash)) = &balancer.lb_policy
        && let Some(HashKey::HttpCookie(cookie)) = &hash.hash_key
    {
        let cookie_at = path::join(&path::join(at, "consistentHash"), "httpCookie");
        if cookie.name.is_empty() {
            crd_required(c, &path::join(&cookie_at, "name"));
        }
        let attributes_at = path::join(&cookie_at, "attributes");
        for (i, attribute) in cookie.attributes.iter().enumerate() {
            if attribute.name.is_empty() {
                crd_required(c, &path::join(&path::index(&attributes_at, i), "name"));
            }
        }
    }
    if let Some(size) = balancer
        .zone_aware_lb_setting
        .as_ref()
        .and_then(|z| z.min_cluster_size)
        && size < 1
    {
        c.error(
            path::join(&path::join(at, "zoneAwareLbSetting"), "minClusterSize"),
            format!("Invalid value: {size}: should be greater than or equal to 1"),
        );
    }
    if let Some(warmup) = &balancer.warmup {
        let warmup_at = path::join(at, "warmup");
        match &warmup.duration {
            None => crd_required(c, &path::join(&warmup_at, "duration")),
            Some(d) => crd_duration(c, &path::join(&warmup_at, "duration"), Some(d)),
        }
        if let Some(percent) = warmup.minimum_percent {
            crd_range(
                c,
                &path::join(&warmup_at, "minimumPercent"),
                percent,
                Some(0.0),
                Some(100.0),
            );
        }
        if let Some(aggression) = warmup.aggression {
            crd_range(
                c,
                &path::join(&warmup_at, "aggression"),
                aggression,
                Some(0.0),
                None,
            );
        }
    }
    crd_duration(
        c,
        &path::join(at, "warmupDurationSecs"),
        balancer.warmup_duration_secs.as_ref(),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn dr(spec: Value) -> Diagnostics {
        let spec: DestinationRule = serde_json::from_value(spec).unwrap();
        validate_destination_rule(&spec, &Context::new("default", "dr"))
    }

    fn has_error(found: &Diagnostics, path: &str, text: &str) -> bool {
        found
            .errors()
            .any(|d| d.path == path && d.message.contains(text))
    }

    #[test]
    fn errors_carry_spec_paths() {
        let found = dr(
            json!({"host": "r", "trafficPolicy": {"connectionPool": {"http": {"maxRetries": -1}}},
                              "subsets": [{"name": "v1"}, {"name": "v1"}]}),
        );
        assert!(
            has_error(
                &found,
                "spec.trafficPolicy.connectionPool.http.maxRetries",
                "max retries must be non-negative"
            ),
            "{found}"
        );
        assert!(
            has_error(&found, "spec.subsets[1].name", "duplicate subset names: v1"),
            "{found}"
        );
    }

    #[test]
    fn subset_and_port_level_warnings_are_dropped_but_top_level_kept() {
        let deprecated = json!({"consecutiveErrors": 5});
        let found = dr(
            json!({"host": "r", "subsets": [{"name": "v1", "trafficPolicy": {"outlierDetection": deprecated}}]}),
        );
        assert!(found.is_empty(), "{found}");
        let found = dr(json!({"host": "r", "trafficPolicy": {"portLevelSettings": [
            {"port": {"number": 80}, "outlierDetection": deprecated}]}}));
        assert!(found.is_empty(), "{found}");
        let found = dr(json!({"host": "r", "trafficPolicy": {"outlierDetection": deprecated}}));
        assert!(found.is_valid() && found.has_warnings(), "{found}");
        // Errors inside a subset still count, at the subset's path.
        let found = dr(json!({"host": "r", "subsets": [{"name": "v1", "trafficPolicy": {}}]}));
        assert!(
            has_error(
                &found,
                "spec.subsets[0].trafficPolicy",
                "traffic policy must have at least one field"
            ),
            "{found}"
        );
    }

    #[test]
    fn tunnel_with_proxy_protocol_returns_early() {
        let found = dr(json!({"host": "r", "trafficPolicy": {
            "tunnel": {"targetHost": "not a host", "targetPort": 0},
            "proxyProtocol": {},
            "connectionPool": {}}}));
        assert_eq!(found.len(), 1, "{found}");
    }

    #[test]
    fn tcp_idle_timeout_skips_sub_millisecond_values_but_http_does_not() {
        for (value, valid) in [
            ("0s", true),
            ("0.000500s", true),
            ("-0.000500s", true),
            ("-1ms", false),
            ("1.5ms", false),
            ("1h", true),
        ] {
            let found = dr(
                json!({"host": "r", "trafficPolicy": {"connectionPool": {"tcp": {"idleTimeout": value}}}}),
            );
            assert_eq!(found.is_valid(), valid, "{value}: {found}");
        }
        let found = dr(
            json!({"host": "r", "trafficPolicy": {"connectionPool": {"http": {"idleTimeout": "0s"}}}}),
        );
        assert!(!found.is_valid());
    }

    #[test]
    fn maglev_table_size_follows_envoys_primality_test() {
        for (n, prime) in [
            (0, false),
            (1, true),
            (2, true),
            (3, true),
            (4, false),
            (9, false),
            (65537, true),
            (65536, false),
            (5_000_011, true),
            (4_294_967_311, true),
            (4_294_967_297, false),
            (18_446_744_073_709_551_557, true),
            (18_446_744_073_709_551_615, false),
        ] {
            assert_eq!(is_prime(n), prime, "{n}");
        }
        let maglev = |size: u64| {
            dr(
                json!({"host": "r", "trafficPolicy": {"loadBalancer": {"consistentHash": {
                "useSourceIp": true, "maglev": {"tableSize": size}}}}}),
            )
        };
        let found = maglev(0);
        assert_eq!(found.errors().count(), 2, "{found}");
        let found = maglev(5_000_011);
        assert!(
            found
                .errors()
                .any(|d| d.message.contains("less than 5000011")),
            "{found}"
        );
        assert!(
            !found.errors().any(|d| d.message.contains("prime")),
            "{found}"
        );
        assert!(maglev(65537).is_empty());
    }

    #[test]
    fn minimum_ring_size_warns_and_conflicts_with_an_algorithm() {
        let found = dr(
            json!({"host": "r", "trafficPolicy": {"loadBalancer": {"consistentHash": {
            "httpHeaderName": "x", "minimumRingSize": 10, "ringHash": {}}}}}),
        );
        assert!(found.has_warnings());
        assert!(
            found
                .errors()
                .any(|d| d.message.contains("only one of MinimumRingSize")),
            "{found}"
        );
    }

    #[test]
    fn locality_overlaps_depend_on_order_as_in_istio() {
        let list = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(validate_localities(&list(&["a/*", "a/b/c"])).is_err());
        assert!(validate_localities(&list(&["a/b/c", "a/b"])).is_err());
        assert!(validate_localities(&list(&["a/b/c", "a"])).is_err());
        assert!(validate_localities(&list(&["*", "b"])).is_err());
        assert!(validate_localities(&list(&["a", "*"])).is_ok());
        assert!(validate_localities(&list(&["a/b/c", "a/*"])).is_ok());
        assert!(
            validate_localities(&list(&["a//c"]))
                .unwrap_err()
                .message()
                .contains("empty region/zone/subzone")
        );
        assert!(validate_localities(&list(&["a/b/c/d", "a/b/c/e"])).is_ok());
    }

    #[test]
    fn locality_distribute_stops_at_the_first_bad_weight() {
        let setting: LocalityLoadBalancerSetting = serde_json::from_value(json!({
            "distribute": [{"from": "a/*", "to": {"a/b": 0, "c": 100}}, {"from": "a/*", "to": {"x": 1}}]}))
        .unwrap();
        let found = validate_locality_lb_setting(Some(&setting), None);
        assert_eq!(found.len(), 1, "{found}");
        assert_eq!(found.iter().next().unwrap().path, "distribute[0].to.a/b");
        let setting: LocalityLoadBalancerSetting = serde_json::from_value(json!({
            "distribute": [{"from": "a/*", "to": {"a/b": 50, "a/*": 50}}, {"from": "a/b", "to": {"x": 100}}]}))
        .unwrap();
        let found = validate_locality_lb_setting(Some(&setting), None);
        let paths: Vec<_> = found.errors().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["distribute[0].to", "distribute"], "{found}");
    }

    #[test]
    fn failover_warnings_need_the_same_levels_outlier_detection() {
        let found = dr(
            json!({"host": "r", "trafficPolicy": {"loadBalancer": {"zoneAwareLbSetting": {"failoverPriority": ["version"]}}}}),
        );
        assert!(found.is_valid() && found.has_warnings(), "{found}");
        let found = dr(
            json!({"host": "r", "trafficPolicy": {"outlierDetection": {},
            "loadBalancer": {"localityLbSetting": {"failover": [{"from": "a", "to": "b"}]}}}}),
        );
        assert!(found.is_empty(), "{found}");
        let found = dr(
            json!({"host": "r", "trafficPolicy": {"loadBalancer": {"localityLbSetting": {}, "zoneAwareLbSetting": {}}}}),
        );
        assert!(
            has_error(
                &found,
                "spec.trafficPolicy.loadBalancer",
                "only one of localityLbSetting"
            ),
            "{found}"
        );
    }

    #[test]
    fn configmap_credentials_must_name_the_rules_namespace() {
        let tls = |name: &str| {
            dr(
                json!({"host": "r", "trafficPolicy": {"tls": {"mode": "SIMPLE", "credentialName": name}}}),
            )
        };
        assert!(tls("configmap://default/ca").is_empty());
        assert!(tls("configmap://other/ca").errors().any(|d| {
            d.message
                .contains("namespace must match the configuration namespace \"default\"")
        }));
        assert!(
            tls("configmap://ca")
                .errors()
                .any(|d| d.message.contains("Expected namespace and name"))
        );
        assert!(
            tls("configmap:///ca")
                .errors()
                .any(|d| d.message.contains("Expected namespace\"")
                    || d.message.ends_with("Expected namespace"))
        );
        assert!(
            tls("configmap://default/")
                .errors()
                .any(|d| d.message.ends_with("Expected name"))
        );
        // With no configuration namespace, a configmap credential can never match.
        let settings: ClientTlsSettings =
            serde_json::from_value(json!({"credentialName": "configmap://default/ca"})).unwrap();
        assert!(!validate_client_tls(Some(&settings)).is_valid());
    }

    #[test]
    fn mutual_tls_needs_files_only_without_a_credential() {
        let tls = |v: Value| {
            let settings: ClientTlsSettings = serde_json::from_value(v).unwrap();
            validate_client_tls(Some(&settings))
        };
        assert_eq!(tls(json!({"mode": "MUTUAL"})).errors().count(), 2);
        assert!(
            tls(json!({"mode": "MUTUAL", "credentialName": "c", "insecureSkipVerify": true}))
                .is_empty()
        );
        assert!(
            tls(json!({"mode": "ISTIO_MUTUAL", "caCertificates": "x", "insecureSkipVerify": true}))
                .is_empty()
        );
        assert!(tls(json!({"mode": "DISABLE", "credentialName": "c", "caCrl": "x"})).is_empty());
        assert!(!tls(json!({"mode": "SIMPLE", "credentialName": "c", "caCrl": "x"})).is_valid());
    }

    #[test]
    fn workload_selector_rules() {
        let found = dr(
            json!({"host": "r", "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": [".", "default"]}),
        );
        assert!(
            found
                .errors()
                .any(|d| d.message.contains("duplicate entries in exportTo")),
            "{found}"
        );
        let found = dr(
            json!({"host": "r", "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": ["."]}),
        );
        assert!(found.is_empty(), "{found}");
        let found = dr(json!({"host": "r", "workloadSelector": {}}));
        assert!(found.is_valid() && found.has_warnings());
    }

    #[test]
    fn crd_layer_only_applies_when_asked() {
        let spec: DestinationRule = serde_json::from_value(json!({"host": "r", "trafficPolicy": {
            "loadBalancer": {"warmupDurationSecs": "0.000500s", "zoneAwareLbSetting": {"minClusterSize": 0},
                             "warmup": {"duration": "10s", "minimumPercent": -1}},
            "outlierDetection": {"outlierDetectionHttpErrorCodes": [99, 500]},
            "retryBudget": {"percent": 101}}})).unwrap();
        let mut ctx = Context::new("default", "dr");
        assert!(validate_destination_rule(&spec, &ctx).is_empty());
        ctx.crd_schema = true;
        let found = validate_destination_rule(&spec, &ctx);
        let paths: Vec<_> = found.errors().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes[0]",
                "spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.minClusterSize",
                "spec.trafficPolicy.loadBalancer.warmup.minimumPercent",
                "spec.trafficPolicy.loadBalancer.warmupDurationSecs",
                "spec.trafficPolicy.retryBudget.percent",
            ],
            "{found}"
        );
    }

    #[test]
    fn refused_annotations_stop_before_the_spec() {
        let spec: DestinationRule = serde_json::from_value(json!({"trafficPolicy": {}})).unwrap();
        let mut ctx = Context::new("default", "dr");
        ctx.annotations
            .insert("istio.io/dry-run".to_owned(), "true".to_owned());
        let found = validate_destination_rule(&spec, &ctx);
        assert_eq!(found.len(), 1, "{found}");
        assert!(
            found.iter().all(|d| d
                .message
                .contains("unsupported annotation istio.io/dry-run")),
            "{found}"
        );
    }
}
