//! Clusters with DestinationRule policy (`push_context.go: destinationRule`,
//! `cluster_traffic_policy.go`, `cluster_tls.go`, `destination_rule.go: mergeDestinationRule`).

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_model::destination_rule::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, H2UpgradePolicy, HashAlgorithm,
    LbPolicy as DrLb, LoadBalancerSettings, OutlierDetection as DrOutlier, SimpleLb, Subset,
    TrafficPolicy,
};

use portcullis_proxy_core::cluster::SlowStart;

use crate::index::Index;
use crate::plan::{
    CaSource, CircuitBreakers, Cluster, ClusterEndpoint, ClusterPolicy, ClusterType, GatewayPlan,
    LbPolicy, OutlierDetection, TlsOrigination, UpstreamProtocol, UpstreamTls,
};
use crate::proxy::ProxyKind;
use crate::registry::{Resolution, Service, exported_to};
use portcullis_model::host::subset_of;

/// DestinationRules for one host merged the way Istio merges them.
#[derive(Clone, Debug, Default)]
pub(crate) struct MergedDr {
    pub traffic_policy: Option<TrafficPolicy>,
    pub subsets: Vec<Subset>,
}

/// The four blocks a cluster's policy is made of.
#[derive(Clone, Debug, Default)]
struct Effective {
    lb: Option<LoadBalancerSettings>,
    pool: Option<ConnectionPoolSettings>,
    outlier: Option<DrOutlier>,
    tls: Option<ClientTlsSettings>,
}

fn port_level(tp: &TrafficPolicy, port: u32) -> Effective {
    if let Some(p) = tp
        .port_level_settings
        .iter()
        .find(|p| p.port.as_ref().is_some_and(|s| s.number == port))
    {
        return Effective {
            lb: p.load_balancer.clone(),
            pool: p.connection_pool.clone(),
            outlier: p.outlier_detection.clone(),
            tls: p.tls.clone(),
        };
    }
    Effective {
        lb: tp.load_balancer.clone(),
        pool: tp.connection_pool.clone(),
        outlier: tp.outlier_detection.clone(),
        tls: tp.tls.clone(),
    }
}

/// `MergeTrafficPolicy` after `GetPortLevelTrafficPolicy`.
fn effective_policy(dr: Option<&MergedDr>, port: u32, subset: Option<&Subset>) -> Effective {
    let mut out = dr
        .and_then(|d| d.traffic_policy.as_ref())
        .map(|tp| port_level(tp, port))
        .unwrap_or_default();
    if let Some(sp) = subset.and_then(|s| s.traffic_policy.as_ref()) {
        if sp.connection_pool.is_some() {
            out.pool.clone_from(&sp.connection_pool);
        }
        if sp.load_balancer.is_some() {
            out.lb.clone_from(&sp.load_balancer);
        }
        if sp.outlier_detection.is_some() {
            out.outlier.clone_from(&sp.outlier_detection);
        }
        if sp.tls.is_some() {
            out.tls.clone_from(&sp.tls);
        }
        if let Some(p) = sp
            .port_level_settings
            .iter()
            .find(|p| p.port.as_ref().is_some_and(|s| s.number == port))
        {
            out = Effective {
                lb: p.load_balancer.clone(),
                pool: p.connection_pool.clone(),
                outlier: p.outlier_detection.clone(),
                tls: p.tls.clone(),
            };
        }
    }
    out
}

impl Index<'_> {
    /// The DestinationRule (merged) for `host` as seen by the proxy (§f lookup).
    pub(crate) fn destination_rule(
        &self,
        host: &str,
        service_ns: Option<&str>,
    ) -> Option<MergedDr> {
        let proxy_ns = self.proxy.namespace.as_str();
        let root = self.mesh.root_namespace.as_str();
        // Step 1: the proxy's namespace (workload-selector rules first).
        let local = |with_selector: bool| {
            self.drs.iter().enumerate().filter(move |(_, d)| {
                if d.namespace != proxy_ns {
                    return false;
                }
                match &d.rule.workload_selector {
                    Some(sel) => with_selector && self.proxy.matches_labels(&sel.match_labels),
                    None => {
                        if with_selector {
                            return false;
                        }
                        let e = &d.rule.export_to;
                        if proxy_ns == root {
                            e.iter().any(|x| x == ".")
                        } else {
                            e.is_empty() || e.iter().any(|x| x == "*" || x == "." || x == proxy_ns)
                        }
                    }
                }
            })
        };
        for with_selector in [true, false] {
            let candidates: Vec<usize> = local(with_selector).map(|(i, _)| i).collect();
            if let Some(m) = self.most_specific(host, &candidates) {
                return Some(m);
            }
        }
        // Steps 2 and 3: the service's namespace, then the root namespace (exported rules).
        let mut namespaces = Vec::new();
        if let Some(ns) = service_ns {
            namespaces.push(ns);
        }
        if !namespaces.contains(&root) {
            namespaces.push(root);
        }
        for ns in namespaces {
            let candidates: Vec<usize> = self
                .drs
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    d.namespace == ns
                        && d.rule.workload_selector.is_none()
                        && !(d.rule.export_to.len() == 1
                            && d.rule.export_to.iter().all(|e| e == "." || e == "~"))
                })
                .map(|(i, _)| i)
                .collect();
            let Some(best_host) = self.most_specific_host(host, &candidates) else {
                continue;
            };
            let visible: Vec<usize> = candidates
                .into_iter()
                .filter(|i| {
                    self.drs.get(*i).is_some_and(|d| {
                        d.host == best_host
                            && exported_to(&d.rule.export_to, &d.namespace, proxy_ns)
                    })
                })
                .collect();
            if visible.is_empty() {
                continue;
            }
            return Some(self.merge(&visible));
        }
        None
    }

    fn most_specific_host(&self, host: &str, candidates: &[usize]) -> Option<String> {
        let mut best: Option<&str> = None;
        for d in candidates.iter().filter_map(|i| self.drs.get(*i)) {
            if d.host == host {
                return Some(d.host.clone());
            }
            if subset_of(host, &d.host) && best.is_none_or(|b| d.host.len() > b.len()) {
                best = Some(&d.host);
            }
        }
        best.map(str::to_owned)
    }

    fn most_specific(&self, host: &str, candidates: &[usize]) -> Option<MergedDr> {
        let best = self.most_specific_host(host, candidates)?;
        let same: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| self.drs.get(*i).is_some_and(|d| d.host == best))
            .collect();
        Some(self.merge(&same))
    }

    fn merge(&self, rules: &[usize]) -> MergedDr {
        let mut out = MergedDr::default();
        for d in rules.iter().filter_map(|i| self.drs.get(*i)) {
            if out.traffic_policy.is_none() {
                out.traffic_policy.clone_from(&d.rule.traffic_policy);
            }
            for s in &d.rule.subsets {
                if !out.subsets.iter().any(|o| o.name == s.name) {
                    out.subsets.push(s.clone());
                }
            }
        }
        out
    }
}

/// Builds every cluster the proxy sees: per visible service port, the default cluster and one
/// per DestinationRule subset; plus the SNI-named clusters AUTO_PASSTHROUGH chains forward to.
pub(crate) fn build_clusters(index: &Index<'_>, plan: &mut GatewayPlan) {
    let mut sni_clusters = Vec::new();
    for l in &plan.listeners {
        for c in &l.filter_chains {
            if let crate::plan::FilterChainKind::TcpProxy(t) = &c.kind {
                for d in &t.destinations {
                    if d.cluster.starts_with("outbound_.") {
                        sni_clusters.push(d.cluster.clone());
                    }
                }
            }
        }
    }
    let mut seen_hosts = std::collections::HashSet::new();
    // A sidecar prefers the service in its own namespace when several share a host name.
    let services: Vec<&Service> = if index.proxy.kind == ProxyKind::Sidecar {
        crate::sidecar::sidecar_services(index)
    } else {
        index.registry.services.iter().collect()
    };
    for svc in services {
        if !svc.visible_to(&index.proxy.namespace) || !seen_hosts.insert(svc.hostname.clone()) {
            continue;
        }
        let dr = index.destination_rule(&svc.hostname, Some(&svc.namespace));
        for port in &svc.ports {
            let mut subsets: Vec<Option<&Subset>> = vec![None];
            if let Some(d) = &dr {
                subsets.extend(d.subsets.iter().map(Some));
            }
            for subset in subsets {
                let cluster = build_cluster(index, svc, port.number, subset, dr.as_ref());
                let sni = format!(
                    "outbound_.{}_.{}_.{}",
                    port.number,
                    subset.map_or("", |s| s.name.as_str()),
                    svc.hostname
                );
                if sni_clusters.contains(&sni) {
                    let mut c = cluster.clone();
                    c.name.clone_from(&sni);
                    plan.clusters.insert(sni, c);
                }
                plan.clusters.insert(cluster.name.clone(), cluster);
            }
        }
    }
}

/// Istio's `PassthroughCluster`: the connection's original destination, plaintext, for
/// hosts a sidecar does not know (outbound traffic policy `ALLOW_ANY`).
pub(crate) fn passthrough_cluster(index: &Index<'_>) -> Cluster {
    let mut svc = Service::new(crate::sidecar::PASSTHROUGH_CLUSTER, "");
    svc.resolution = Resolution::Passthrough;
    svc.mesh_external = true;
    let mut cluster = build_cluster(index, &svc, 0, None, None);
    crate::sidecar::PASSTHROUGH_CLUSTER.clone_into(&mut cluster.name);
    cluster.cluster_type = ClusterType::OriginalDst;
    cluster.policy.tls = UpstreamTls::None;
    cluster
}

fn build_cluster(
    index: &Index<'_>,
    svc: &Service,
    port: u32,
    subset: Option<&Subset>,
    dr: Option<&MergedDr>,
) -> Cluster {
    let subset_name = subset.map_or("", |s| s.name.as_str());
    let labels: BTreeMap<String, String> = subset.map(|s| s.labels.clone()).unwrap_or_default();
    let svc_port = svc.port(port);
    let endpoints = svc
        .endpoints
        .iter()
        .filter(|e| labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
        .map(|e| {
            let p = svc_port
                .and_then(|sp| e.ports.get(&sp.name).copied())
                .or_else(|| svc_port.and_then(|sp| sp.target_port))
                .unwrap_or(port);
            ClusterEndpoint {
                address: e.address.clone(),
                port: p,
                labels: e.labels.clone(),
            }
        })
        .collect();
    let eff = effective_policy(dr, port, subset);
    let mut cluster_type = match svc.resolution {
        Resolution::Dns => ClusterType::StrictDns,
        Resolution::DnsRoundRobin => ClusterType::LogicalDns,
        Resolution::DynamicDns => ClusterType::DynamicForwardProxy,
        Resolution::Passthrough if index.proxy.kind == ProxyKind::Sidecar => {
            ClusterType::OriginalDst
        }
        _ => ClusterType::Eds,
    };
    let (lb_policy, minimum_ring_size, maglev_table_size) =
        match eff.lb.as_ref().and_then(|l| l.lb_policy.as_ref()) {
            Some(DrLb::Simple(SimpleLb::RoundRobin)) => (LbPolicy::RoundRobin, None, None),
            Some(DrLb::Simple(SimpleLb::Random)) => (LbPolicy::Random, None, None),
            Some(DrLb::Simple(SimpleLb::Passthrough)) => {
                cluster_type = ClusterType::OriginalDst;
                (LbPolicy::ClusterProvided, None, None)
            }
            Some(DrLb::ConsistentHash(h)) => match &h.hash_algorithm {
                Some(HashAlgorithm::Maglev(m)) => (
                    LbPolicy::Maglev,
                    None,
                    Some(if m.table_size == 0 {
                        65_537
                    } else {
                        m.table_size
                    }),
                ),
                Some(HashAlgorithm::RingHash(r)) => (
                    LbPolicy::RingHash,
                    Some(if r.minimum_ring_size == 0 {
                        1024
                    } else {
                        r.minimum_ring_size
                    }),
                    None,
                ),
                _ => (
                    LbPolicy::RingHash,
                    Some(if h.minimum_ring_size == 0 {
                        1024
                    } else {
                        h.minimum_ring_size
                    }),
                    None,
                ),
            },
            _ => (LbPolicy::LeastRequest, None, None),
        };
    let mut circuit_breakers = CircuitBreakers::default();
    let mut connect_timeout = Duration::from_millis(index.mesh.connect_timeout_ms);
    let mut max_requests_per_connection = None;
    let mut idle_timeout = None;
    let mut max_connection_duration = None;
    if let Some(pool) = &eff.pool {
        if let Some(tcp) = &pool.tcp {
            if tcp.max_connections > 0 {
                circuit_breakers.max_connections =
                    u32::try_from(tcp.max_connections).unwrap_or(u32::MAX);
            }
            if let Some(t) = tcp.connect_timeout.and_then(|d| d.to_std()) {
                connect_timeout = t;
            }
            idle_timeout = tcp.idle_timeout.and_then(|d| d.to_std());
            max_connection_duration = tcp.max_connection_duration.and_then(|d| d.to_std());
        }
        if let Some(http) = &pool.http {
            let pos = |v: i32| u32::try_from(v).ok().filter(|v| *v > 0);
            if let Some(v) = pos(http.http1_max_pending_requests) {
                circuit_breakers.max_pending_requests = v;
            }
            if let Some(v) = pos(http.http2_max_requests) {
                circuit_breakers.max_requests = v;
            }
            if let Some(v) = pos(http.max_retries) {
                circuit_breakers.max_retries = v;
            }
            max_requests_per_connection = pos(http.max_requests_per_connection);
            if let Some(t) = http.idle_timeout.and_then(|d| d.to_std()) {
                idle_timeout = Some(t);
            }
        }
    }
    let (outlier_detection, healthy_panic_threshold) = match &eff.outlier {
        Some(o) => (Some(outlier(o)), panic_threshold(o)),
        None => (None, None),
    };
    let tls = upstream_tls(index, svc, port, subset_name, eff.tls.as_ref());
    let slow_start = match lb_policy {
        LbPolicy::RoundRobin | LbPolicy::LeastRequest => eff.lb.as_ref().and_then(slow_start),
        _ => None,
    };
    let protocol = svc_port.map_or("", |p| p.protocol.as_str());
    let upstream_protocol = upstream_protocol(protocol, eff.pool.as_ref(), index.mesh.h2_upgrade);
    Cluster {
        name: format!("outbound|{port}|{subset_name}|{}", svc.hostname),
        host: svc.hostname.clone(),
        port,
        subset: subset_name.to_owned(),
        subset_labels: labels,
        cluster_type,
        endpoints,
        policy: ClusterPolicy {
            lb_policy,
            minimum_ring_size,
            maglev_table_size,
            circuit_breakers,
            connect_timeout,
            max_requests_per_connection,
            idle_timeout,
            max_connection_duration,
            outlier_detection,
            healthy_panic_threshold,
            tls,
            upstream_protocol,
            slow_start,
        },
    }
}

/// Pilot's `setWarmup` (aggression 1 and a 10 % floor unless set) and the deprecated
/// `setSlowStartConfig` (`warmupDurationSecs`: Envoy's defaults), `warmup` first.
fn slow_start(lb: &LoadBalancerSettings) -> Option<SlowStart> {
    if let Some(w) = &lb.warmup {
        let mut s = SlowStart::new(w.duration.and_then(|d| d.to_std()).unwrap_or_default());
        if let Some(a) = w.aggression {
            s.aggression = a;
        }
        if let Some(m) = w.minimum_percent {
            s.min_weight_percent = m;
        }
        return Some(s);
    }
    lb.warmup_duration_secs
        .and_then(|d| d.to_std())
        .map(SlowStart::new)
}

/// Pilot's choice of the upstream HTTP version: `HTTP2`, `GRPC` and `GRPC-WEB` ports speak
/// HTTP/2 (`setUpstreamProtocol`); `useClientProtocol` follows the downstream request and
/// wins over everything (`applyConnectionPool`, applied last); otherwise `h2UpgradePolicy`
/// `UPGRADE` upgrades (any port: the user vouches for HTTP), `DO_NOT_UPGRADE` does not, and
/// the mesh-wide policy decides for other HTTP ports (`shouldH2Upgrade`).
fn upstream_protocol(
    port_protocol: &str,
    pool: Option<&ConnectionPoolSettings>,
    mesh_upgrade: bool,
) -> UpstreamProtocol {
    let http = pool.and_then(|p| p.http.as_ref());
    if http.is_some_and(|h| h.use_client_protocol) {
        return UpstreamProtocol::UseDownstream;
    }
    let protocol = port_protocol.to_ascii_uppercase();
    if matches!(protocol.as_str(), "HTTP2" | "GRPC" | "GRPC-WEB") {
        return UpstreamProtocol::Http2;
    }
    let upgrade = match http.and_then(|h| h.h2_upgrade_policy) {
        Some(H2UpgradePolicy::Upgrade) => true,
        Some(H2UpgradePolicy::DoNotUpgrade) => false,
        _ => matches!(protocol.as_str(), "HTTP" | "HTTP_PROXY") && mesh_upgrade,
    };
    if upgrade {
        UpstreamProtocol::Http2
    } else {
        UpstreamProtocol::Http1
    }
}

/// Pilot's `applyOutlierDetection` (`cluster_traffic_policy.go`): the fields it sets, in
/// Envoy's terms; unset fields keep Envoy's defaults. The deprecated `consecutiveErrors` is
/// ignored, as pilot has done since Istio 1.7 (validation warns about it).
/// [`portcullis_proxy_core::outlier::OutlierConfig::from_istio`] applies the same rule; a test keeps
/// the two in step.
fn outlier(o: &DrOutlier) -> OutlierDetection {
    let enforcing = |v: u32| if v > 0 { 100 } else { 0 };
    let mut out = OutlierDetection::default();
    if let Some(v) = o.consecutive_5xx_errors {
        out.consecutive_5xx = Some(v);
        out.enforcing_consecutive_5xx = Some(enforcing(v));
    }
    if let Some(v) = o.consecutive_gateway_errors {
        out.consecutive_gateway_failure = Some(v);
        out.enforcing_consecutive_gateway_failure = Some(enforcing(v));
    }
    out.interval = o.interval.and_then(|d| d.to_std());
    out.base_ejection_time = o.base_ejection_time.and_then(|d| d.to_std());
    if o.max_ejection_percent > 0 {
        out.max_ejection_percent = u32::try_from(o.max_ejection_percent).ok();
    }
    if o.split_external_local_origin_errors {
        out.split_external_local_origin_errors = true;
        out.consecutive_local_origin_failure =
            o.consecutive_local_origin_failures.filter(|n| *n > 0);
    }
    out
}

/// Pilot's healthy panic threshold for a cluster with outlier detection: `minHealthPercent`
/// when it is not negative (so panic mode is off unless the rule sets it), else Envoy's
/// default (50 %).
fn panic_threshold(o: &DrOutlier) -> Option<f64> {
    (o.min_health_percent >= 0).then(|| f64::from(o.min_health_percent))
}

/// `buildUpstreamTLSSettings` and auto mTLS.
fn upstream_tls(
    index: &Index<'_>,
    svc: &Service,
    port: u32,
    subset: &str,
    tls: Option<&ClientTlsSettings>,
) -> UpstreamTls {
    let istio_sni = format!("outbound_.{port}_.{subset}_.{}", svc.hostname);
    let istio_mutual = |sni: Option<String>, sans: Vec<String>| TlsOrigination {
        mode: ClientTlsMode::IstioMutual,
        sni: Some(sni.unwrap_or_else(|| istio_sni.clone())),
        auto_sni: false,
        auto_san_validation: false,
        ca: CaSource::IstioRoot,
        subject_alt_names: if sans.is_empty() {
            svc.service_accounts.clone()
        } else {
            sans
        },
        alpn: vec!["istio-peer-exchange".to_owned(), "istio".to_owned()],
        client_certificate: None,
        private_key: None,
    };
    let Some(tls) = tls else {
        if index.mesh.enable_auto_mtls && !svc.mesh_external {
            return UpstreamTls::AutoMtls(istio_mutual(None, Vec::new()));
        }
        return UpstreamTls::None;
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    match tls.mode.unwrap_or_default() {
        ClientTlsMode::IstioMutual => UpstreamTls::Tls(istio_mutual(
            nonempty(&tls.sni),
            tls.subject_alt_names.clone(),
        )),
        mode @ (ClientTlsMode::Simple | ClientTlsMode::Mutual) => {
            let insecure = tls.insecure_skip_verify == Some(true);
            let ca = if insecure {
                CaSource::None
            } else if !tls.credential_name.is_empty() {
                CaSource::Credential(tls.credential_name.clone())
            } else if !tls.ca_certificates.is_empty() {
                CaSource::File(tls.ca_certificates.clone())
            } else {
                CaSource::System
            };
            let auto_sni = tls.sni.is_empty();
            // MUTUAL: a credential (certificate, key and CA in one Secret) wins over files.
            let (client_certificate, private_key) = if mode != ClientTlsMode::Mutual {
                (None, None)
            } else if let Some(name) = nonempty(&tls.credential_name) {
                (Some(name), None)
            } else {
                (
                    nonempty(&tls.client_certificate),
                    nonempty(&tls.private_key),
                )
            };
            UpstreamTls::Tls(TlsOrigination {
                mode,
                sni: nonempty(&tls.sni),
                auto_sni,
                auto_san_validation: auto_sni && !insecure && tls.subject_alt_names.is_empty(),
                ca,
                subject_alt_names: tls.subject_alt_names.clone(),
                alpn: Vec::new(),
                client_certificate,
                private_key,
            })
        }
        _ => UpstreamTls::Disabled,
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use portcullis_model::Duration as DrDuration;
    use portcullis_proxy_core::outlier::{IstioOutlierDetection, OutlierConfig};

    use portcullis_model::destination_rule::{
        ConnectionPoolSettings, H2UpgradePolicy, HttpSettings,
    };

    use portcullis_model::destination_rule::{LoadBalancerSettings, WarmupConfiguration};
    use portcullis_proxy_core::cluster::SlowStart;

    use super::{
        DrOutlier, UpstreamProtocol, outlier, panic_threshold, slow_start, upstream_protocol,
    };

    /// Pilot's `setWarmup` and `setSlowStartConfig`.
    #[test]
    fn warmup_maps_to_slow_start() {
        let secs = |n| Some(DrDuration::from_secs(n));
        let lb = LoadBalancerSettings {
            warmup: Some(WarmupConfiguration {
                duration: secs(30),
                ..WarmupConfiguration::default()
            }),
            ..LoadBalancerSettings::default()
        };
        assert_eq!(
            slow_start(&lb),
            Some(SlowStart::new(std::time::Duration::from_secs(30)))
        );
        let lb = LoadBalancerSettings {
            warmup: Some(WarmupConfiguration {
                duration: secs(10),
                minimum_percent: Some(25.0),
                aggression: Some(2.0),
            }),
            warmup_duration_secs: secs(99),
            ..LoadBalancerSettings::default()
        };
        let s = slow_start(&lb).unwrap_or_else(|| panic!("warmup set"));
        assert_eq!(
            (s.window.as_secs(), s.aggression, s.min_weight_percent),
            (10, 2.0, 25.0)
        );
        let lb = LoadBalancerSettings {
            warmup_duration_secs: secs(5),
            ..LoadBalancerSettings::default()
        };
        assert_eq!(
            slow_start(&lb),
            Some(SlowStart::new(std::time::Duration::from_secs(5)))
        );
        assert_eq!(slow_start(&LoadBalancerSettings::default()), None);
    }

    fn http_pool(policy: Option<H2UpgradePolicy>, use_client: bool) -> ConnectionPoolSettings {
        ConnectionPoolSettings {
            http: Some(HttpSettings {
                h2_upgrade_policy: policy,
                use_client_protocol: use_client,
                ..HttpSettings::default()
            }),
            ..ConnectionPoolSettings::default()
        }
    }

    /// Pilot's `setUpstreamProtocol`, `shouldH2Upgrade` and `useClientProtocol`, case by case.
    #[test]
    fn upstream_protocol_follows_pilot() {
        use H2UpgradePolicy::{DoNotUpgrade, Upgrade};
        use UpstreamProtocol::{Http1, Http2, UseDownstream};
        let cases = [
            ("HTTP", None, false, false, Http1),
            ("GRPC", None, false, false, Http2),
            ("grpc-web", None, false, false, Http2),
            ("HTTP2", Some(DoNotUpgrade), false, false, Http2),
            ("HTTP", Some(Upgrade), false, false, Http2),
            ("TCP", Some(Upgrade), false, false, Http2),
            ("HTTP", None, false, true, Http2),
            ("HTTP", Some(DoNotUpgrade), false, true, Http1),
            ("TCP", None, false, true, Http1),
            ("HTTP", Some(Upgrade), true, false, UseDownstream),
            ("GRPC", None, true, false, UseDownstream),
        ];
        for (port, policy, use_client, mesh, want) in cases {
            let pool = http_pool(policy, use_client);
            assert_eq!(
                upstream_protocol(port, Some(&pool), mesh),
                want,
                "{port} {policy:?} useClientProtocol={use_client} mesh upgrade={mesh}"
            );
        }
        assert_eq!(upstream_protocol("HTTP", None, false), Http1);
    }

    /// Translation's mapping and proxy-core's `from_istio` are one rule (pilot's).
    #[test]
    fn outlier_mapping_agrees_with_proxy_core() {
        let mut cases = Vec::new();
        for consecutive_errors in [0, 3] {
            for c5xx in [None, Some(0), Some(4)] {
                for gw in [None, Some(0), Some(2)] {
                    for (split, local) in [
                        (false, None),
                        (true, None),
                        (true, Some(0)),
                        (true, Some(6)),
                    ] {
                        for (max, min) in [(0, 0), (50, -1), (100, 30)] {
                            cases.push(DrOutlier {
                                consecutive_errors,
                                consecutive_5xx_errors: c5xx,
                                consecutive_gateway_errors: gw,
                                split_external_local_origin_errors: split,
                                consecutive_local_origin_failures: local,
                                interval: Some(DrDuration::from_secs(2)),
                                base_ejection_time: (max == 50).then(|| DrDuration::from_secs(7)),
                                max_ejection_percent: max,
                                min_health_percent: min,
                                ..DrOutlier::default()
                            });
                        }
                    }
                }
            }
        }
        for o in &cases {
            let mut istio = IstioOutlierDetection::default();
            istio.consecutive_errors = o.consecutive_errors;
            istio.consecutive_5xx_errors = o.consecutive_5xx_errors;
            istio.consecutive_gateway_errors = o.consecutive_gateway_errors;
            istio.split_external_local_origin_errors = o.split_external_local_origin_errors;
            istio.consecutive_local_origin_failures = o.consecutive_local_origin_failures;
            istio.interval = o.interval.and_then(DrDuration::to_std);
            istio.base_ejection_time = o.base_ejection_time.and_then(DrDuration::to_std);
            istio.max_ejection_percent = o.max_ejection_percent;
            istio.min_health_percent = o.min_health_percent;
            let (want, want_panic): (OutlierConfig, Option<f64>) =
                OutlierConfig::from_istio(&istio);
            assert_eq!(outlier(o).to_proxy_core(), want, "{o:?}");
            assert_eq!(panic_threshold(o), want_panic, "{o:?}");
        }
    }

    #[test]
    fn deprecated_consecutive_errors_is_ignored() {
        let o = DrOutlier {
            consecutive_errors: 3,
            ..DrOutlier::default()
        };
        let plan = outlier(&o);
        assert_eq!(plan.consecutive_gateway_failure, None);
        assert_eq!(plan.enforcing_consecutive_5xx, None);
        assert_eq!(plan.to_proxy_core(), OutlierConfig::default());
    }

    fn plan_of(yaml: &str) -> crate::GatewayPlan {
        let loaded = portcullis_model::Loader::new().read_str("test.yaml", yaml);
        let objects: Vec<portcullis_model::Object> = loaded
            .documents()
            .iter()
            .map(|d| d.object.clone())
            .collect();
        let config = crate::Config::from_objects(&objects);
        let mesh = crate::MeshSettings::default();
        let registry = crate::ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
        crate::translate(&config, &registry, &crate::Proxy::ingress_gateway(), &mesh)
    }

    const EGRESS: &str = r"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: istio-system}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: istio-system}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: MUTUAL, clientCertificate: /certs/client.pem, privateKey: /certs/client.key,
          caCertificates: /certs/ca.pem}
  subsets:
  - name: cred
    trafficPolicy:
      tls: {mode: MUTUAL, credentialName: client-credential, clientCertificate: /ignored.pem}
";

    #[test]
    fn mutual_tls_with_files_keeps_the_private_key() {
        let plan = plan_of(EGRESS);
        let tls = |name: &str| match plan.clusters.get(name).map(|c| &c.policy.tls) {
            Some(crate::UpstreamTls::Tls(t)) => t.clone(),
            other => panic!("{name}: {other:?}"),
        };
        let files = tls("outbound|443||api.example.com");
        assert_eq!(
            files.client_certificate.as_deref(),
            Some("/certs/client.pem")
        );
        assert_eq!(files.private_key.as_deref(), Some("/certs/client.key"));
        let cred = tls("outbound|443|cred|api.example.com");
        assert_eq!(
            cred.client_certificate.as_deref(),
            Some("client-credential")
        );
        assert_eq!(cred.private_key, None);
    }
}
