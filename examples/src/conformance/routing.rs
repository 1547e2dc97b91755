//! The `routing` suite: a configuration, a gateway proxy, a registry of Services and one
//! request, and the decision Istio's gateway makes.
//!
//! Each vector's `resources` are decoded with [`portcullis_model::from_value`], the registry is
//! built from `registries[vector.registry]` (plus the ServiceEntries among the resources), the
//! proxy from `defaults.proxy` overlaid with the vector's `proxy`, and the request is run through
//! [`portcullis_translate::Simulation`]. Only the fields present in `expect` are compared.
//!
//! Descriptive values are compared through an explicit mapping:
//!
//! | `expect` value | plan value |
//! |---|---|
//! | `cluster_policy.tls: "auto_mtls …"` (any string starting with `auto_mtls`) | [`UpstreamTls::AutoMtls`] |
//! | `cluster_policy.tls: null` | [`UpstreamTls::None`] |
//! | `cluster_policy.tls.mode: DISABLE` | [`UpstreamTls::Disabled`] |
//! | `cluster_policy.tls.ca: system` | [`CaSource::System`] |
//! | `cluster_policy.tls.san: "service accounts of the service"` | SANs = the service's accounts |
//! | `…: "envoy default N"` | the field is unset in the plan (Envoy's default applies) |
//! | `status` of a `route` | 503 when the cluster is not defined, else 200 |
//! | `reason: require_tls` | a redirect produced by a virtual host's `require_tls` |
//!
//! Registry entries get endpoint addresses `10.<entry>.<n>.1` for each `endpoint_labels` set.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use portcullis_model::{Object, from_value};
use portcullis_translate::proxy_core::fault::{AbortStatus, Fault};
use portcullis_translate::{
    CaSource, Cluster, Config, Endpoint, GatewayPlan, HashPolicy, MeshSettings, Proxy, ProxyKind,
    Service, ServicePort, ServiceRegistry, ServiceTarget, Simulation, TlsOrigination, UpstreamTls,
    route_match::NotFound,
    simulate::{Decision, Outcome, Protocol, Request, SimulationRandom},
    translate,
};
use serde_json::Value;

use super::{Report, read_yaml};

/// Runs every vector of a routing suite file.
pub(super) fn run(path: &Path) -> Result<Report, String> {
    let data = read_yaml(path)?;
    let vectors = data
        .get("vectors")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no `vectors` list", path.display()))?;
    let defaults = data.get("defaults").cloned().unwrap_or(Value::Null);
    let registries = data.get("registries").cloned().unwrap_or(Value::Null);
    let mut report = Report::default();
    for (i, vector) in vectors.iter().enumerate() {
        let id = vector
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("vector {i}"), str::to_owned);
        report.record(id, run_vector(vector, &defaults, &registries));
    }
    Ok(report)
}

fn run_vector(vector: &Value, defaults: &Value, registries: &Value) -> Result<(), String> {
    let mut mesh = MeshSettings::default();
    mesh.domain_suffix = defaults
        .get("domain_suffix")
        .and_then(Value::as_str)
        .unwrap_or("cluster.local")
        .to_owned();
    mesh.root_namespace = defaults
        .get("root_namespace")
        .and_then(Value::as_str)
        .unwrap_or("istio-system")
        .to_owned();
    let objects = decode_resources(vector)?;
    let config = Config::from_objects(&objects);
    let mut registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
    if let Some(name) = vector.get("registry").and_then(Value::as_str) {
        let entries = registries
            .get(name)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("unknown registry {name}"))?;
        for (i, e) in entries.iter().enumerate() {
            registry.push(registry_service(i, e));
        }
    }
    let proxy = build_proxy(defaults.get("proxy"), vector.get("proxy"));
    let plan = translate(&config, &registry, &proxy, &mesh);
    let request = build_request(vector.get("request").unwrap_or(&Value::Null));
    let sim = Simulation::new(&plan);
    let decision = sim.decide(&request);
    let expect = vector
        .get("expect")
        .and_then(Value::as_object)
        .ok_or("no expect")?;
    let mut diffs = Vec::new();
    compare(&plan, &sim, &request, &decision, expect, &mut diffs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!("{} [got {}]", diffs.join("; "), summary(&decision)))
    }
}

fn decode_resources(vector: &Value) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for (i, r) in vector
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
        let err = |e: portcullis_model::DecodeError| format!("resources[{i}]: {e}");
        let object = match kind {
            "Gateway" => Object::Gateway(from_value(r.clone()).map_err(err)?),
            "VirtualService" => Object::VirtualService(from_value(r.clone()).map_err(err)?),
            "DestinationRule" => Object::DestinationRule(from_value(r.clone()).map_err(err)?),
            "ServiceEntry" => Object::ServiceEntry(from_value(r.clone()).map_err(err)?),
            "Service" => Object::Service(from_value(r.clone()).map_err(err)?),
            other => return Err(format!("resources[{i}]: unsupported kind {other:?}")),
        };
        out.push(object);
    }
    Ok(out)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn num(v: Option<&Value>) -> u32 {
    v.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
    .and_then(|n| u32::try_from(n).ok())
    .unwrap_or(0)
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_owned()
}

fn registry_service(index: usize, e: &Value) -> Service {
    let mut svc = Service::new(text(e.get("host")), text(e.get("namespace")));
    for p in e
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let target = num(p.get("targetPort"));
        let mut port = ServicePort::new(
            num(p.get("number")),
            &text(p.get("name")),
            &text(p.get("protocol")),
        );
        port.target_port = (target != 0).then_some(target);
        svc.ports.push(port);
    }
    for (n, labels) in e
        .get("endpoint_labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        svc.endpoints.push(Endpoint::new(
            format!("10.{}.{}.1", index % 256, n % 256),
            string_map(Some(labels)),
        ));
    }
    svc
}

fn build_proxy(defaults: Option<&Value>, overlay: Option<&Value>) -> Proxy {
    let get = |key: &str| {
        overlay
            .and_then(|o| o.get(key))
            .filter(|v| !v.is_null())
            .or_else(|| defaults.and_then(|d| d.get(key)))
    };
    let mut proxy = Proxy::gateway(&text(get("namespace")), []);
    proxy.labels = string_map(get("labels"));
    if get("type").and_then(Value::as_str) == Some("sidecar") {
        proxy.kind = ProxyKind::Sidecar;
    }
    for t in get("service_targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut target = ServiceTarget::new(
            &text(t.get("host")),
            &text(t.get("namespace")),
            num(t.get("port")),
            num(t.get("targetPort")),
        );
        target.service_labels = string_map(t.get("service_labels"));
        proxy.service_targets.push(target);
    }
    proxy
}

fn header_list(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in v.and_then(Value::as_object).into_iter().flatten() {
        match v {
            Value::Array(items) => {
                for item in items {
                    out.push((k.clone(), item.as_str().unwrap_or("").to_owned()));
                }
            }
            Value::String(s) => out.push((k.clone(), s.clone())),
            other => out.push((k.clone(), other.to_string())),
        }
    }
    out
}

fn build_request(r: &Value) -> Request {
    let protocol = match r.get("protocol").and_then(Value::as_str) {
        Some("https") => Protocol::Https,
        Some("tls") => Protocol::Tls,
        Some("tcp") => Protocol::Tcp,
        _ => Protocol::Http,
    };
    let mut request = Request::tcp(num(r.get("port")));
    request.protocol = protocol;
    request.destination_ip = r
        .get("destination_ip")
        .and_then(Value::as_str)
        .map(str::to_owned);
    request.sni = r.get("sni").and_then(Value::as_str).map(str::to_owned);
    request.alpn = r
        .get("alpn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    request.authority = text(r.get("authority"));
    request.method = r
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_owned();
    request.path = r
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_owned();
    request.query = r.get("query").and_then(Value::as_str).map(str::to_owned);
    request.headers = header_list(r.get("headers"));
    request.upstream_response_headers = header_list(r.get("upstream_response_headers"));
    request
}

fn action_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::NoListener => "no_listener",
        Outcome::NoFilterChain => "no_filter_chain",
        Outcome::ConfigRejected(_) => "config_rejected",
        Outcome::ProtocolError => "protocol_error",
        Outcome::NotFound(_) => "not_found",
        Outcome::BadRequest { .. } => "bad_request",
        Outcome::Redirect { .. } => "redirect",
        Outcome::DirectResponse { .. } => "direct_response",
        Outcome::FaultAbort { .. } => "fault_abort",
        Outcome::CorsPreflight { .. } => "cors_preflight",
        Outcome::Forward(_) => "route",
        Outcome::TcpProxy { .. } => "tcp_proxy",
        Outcome::Probabilistic { .. } => "probabilistic",
        _ => "unknown",
    }
}

fn summary(d: &Decision<'_>) -> String {
    let mut s = action_name(&d.outcome).to_owned();
    if let Some(c) = cluster_of(&d.outcome) {
        s.push_str(&format!(" {c}"));
    }
    for v in [&d.listener, &d.route_config, &d.virtual_host]
        .into_iter()
        .flatten()
    {
        s.push_str(&format!(" {v}"));
    }
    s
}

fn cluster_of(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Forward(f) => Some(&f.cluster),
        Outcome::TcpProxy { cluster, .. } => Some(cluster),
        _ => None,
    }
}

fn status_of(o: &Outcome) -> Option<u64> {
    match o {
        Outcome::NotFound(_) => Some(404),
        Outcome::BadRequest { .. } => Some(400),
        Outcome::Redirect { status, .. }
        | Outcome::DirectResponse { status, .. }
        | Outcome::CorsPreflight { status, .. } => Some(u64::from(*status)),
        Outcome::FaultAbort { status, .. } => status.map(u64::from),
        Outcome::Forward(f) => Some(if f.cluster_defined { 200 } else { 503 }),
        Outcome::TcpProxy {
            cluster_defined, ..
        } => (!cluster_defined).then_some(503),
        _ => None,
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

fn opt_duration(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| Value::String(fmt_duration(d)))
}

fn check(diffs: &mut Vec<String>, field: &str, expected: &Value, actual: &Value) {
    if expected != actual {
        diffs.push(format!("{field}: expected {expected}, got {actual}"));
    }
}

fn opt_str(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// Compares a header list with an expectation map (value: string, list, or null = absent).
fn compare_headers(
    diffs: &mut Vec<String>,
    field: &str,
    expected: &Value,
    actual: Option<&[(String, String)]>,
) {
    let Some(exp) = expected.as_object() else {
        if expected.is_null() {
            if actual.is_some_and(|a| !a.is_empty()) {
                diffs.push(format!("{field}: expected none, got {actual:?}"));
            }
        } else {
            diffs.push(format!("{field}: unsupported expectation {expected}"));
        }
        return;
    };
    let actual = actual.unwrap_or(&[]);
    for (name, want) in exp {
        let got: Vec<&str> = actual
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        let ok = match want {
            Value::Null => got.is_empty(),
            Value::String(s) => got.len() == 1 && got.first() == Some(&s.as_str()),
            Value::Array(items) => {
                items.len() == got.len()
                    && items.iter().zip(&got).all(|(w, g)| w.as_str() == Some(*g))
            }
            _ => false,
        };
        if !ok {
            diffs.push(format!("{field}.{name}: expected {want}, got {got:?}"));
        }
    }
}

fn fault_value(f: &Fault) -> Value {
    let abort = f.abort();
    let (status, grpc) = match abort.map(|a| a.status()) {
        Some(AbortStatus::Http(s)) => (Some(s.as_u16()), None),
        Some(AbortStatus::Grpc(code)) => (None, Some(code)),
        _ => (None, None),
    };
    serde_json::json!({
        "abort_percent_per_million": abort.map(|a| a.percentage().per_million()),
        "abort_status": status,
        "abort_grpc_status": grpc,
        "delay": f.delay().map(|d| fmt_duration(d.duration())),
        "delay_percent_per_million": f.delay().map(|d| d.percentage().per_million()),
    })
}

fn hash_value(h: &HashPolicy) -> Value {
    match h {
        HashPolicy::Header(name) => serde_json::json!({"header": name}),
        HashPolicy::Cookie {
            name, path, ttl, ..
        } => {
            let mut c = serde_json::Map::new();
            c.insert("name".into(), Value::String(name.clone()));
            if let Some(t) = ttl {
                c.insert("ttl".into(), Value::String(fmt_duration(*t)));
            }
            if !path.is_empty() {
                c.insert("path".into(), Value::String(path.clone()));
            }
            serde_json::json!({"cookie": c})
        }
        HashPolicy::SourceIp => serde_json::json!({"connection_properties": {"source_ip": true}}),
        HashPolicy::QueryParameter(q) => serde_json::json!({"query_parameter": q}),
        _ => Value::Null,
    }
}

/// Compares only the keys of `expected` (an object) with `actual` (an object).
fn compare_subset(diffs: &mut Vec<String>, field: &str, expected: &Value, actual: &Value) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                compare_subset(
                    diffs,
                    &format!("{field}.{k}"),
                    v,
                    a.get(k).unwrap_or(&Value::Null),
                );
            }
        }
        (Value::String(s), _) if s.starts_with("envoy default") => {
            if !actual.is_null() {
                diffs.push(format!("{field}: expected unset ({s}), got {actual}"));
            }
        }
        _ => check(diffs, field, expected, actual),
    }
}

fn client_tls_value(t: &TlsOrigination, cluster: &Cluster, registry_sans: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("mode".into(), Value::String(t.mode.as_str().to_owned()));
    m.insert("sni".into(), opt_str(t.sni.as_deref()));
    m.insert("auto_sni".into(), Value::Bool(t.auto_sni));
    m.insert(
        "auto_san_validation".into(),
        Value::Bool(t.auto_san_validation),
    );
    m.insert(
        "ca".into(),
        match &t.ca {
            CaSource::System => Value::String("system".into()),
            CaSource::File(f) => Value::String(f.clone()),
            CaSource::Credential(c) => Value::String(c.clone()),
            CaSource::IstioRoot => Value::String("istio".into()),
            _ => Value::Null,
        },
    );
    if registry_sans {
        m.insert(
            "san".into(),
            Value::String("service accounts of the service".into()),
        );
    } else {
        m.insert(
            "san".into(),
            Value::Array(
                t.subject_alt_names
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
    }
    m.insert(
        "alpn".into(),
        Value::Array(t.alpn.iter().cloned().map(Value::String).collect()),
    );
    let _ = cluster;
    Value::Object(m)
}

fn compare_cluster_policy(diffs: &mut Vec<String>, expected: &Value, cluster: Option<&Cluster>) {
    let Some(c) = cluster else {
        diffs.push("cluster_policy: cluster not defined".into());
        return;
    };
    let Some(exp) = expected.as_object() else {
        diffs.push(format!(
            "cluster_policy: unsupported expectation {expected}"
        ));
        return;
    };
    let p = &c.policy;
    for (k, want) in exp {
        let field = format!("cluster_policy.{k}");
        match k.as_str() {
            "lb_policy" => check(
                diffs,
                &field,
                want,
                &Value::String(p.lb_policy.as_str().into()),
            ),
            "minimum_ring_size" => check(
                diffs,
                &field,
                want,
                &p.minimum_ring_size.map_or(Value::Null, Value::from),
            ),
            "circuit_breakers" => {
                let cb = &p.circuit_breakers;
                let actual = serde_json::json!({
                    "max_connections": cb.max_connections,
                    "max_pending_requests": cb.max_pending_requests,
                    "max_requests": cb.max_requests,
                    "max_retries": cb.max_retries,
                });
                compare_subset(diffs, &field, want, &actual);
            }
            "connect_timeout" => check(
                diffs,
                &field,
                want,
                &Value::String(fmt_duration(p.connect_timeout)),
            ),
            "max_requests_per_connection" => check(
                diffs,
                &field,
                want,
                &p.max_requests_per_connection
                    .map_or(Value::Null, Value::from),
            ),
            "healthy_panic_threshold" => {
                let got = p.healthy_panic_threshold.map_or(Value::Null, |v| {
                    if v.fract() == 0.0 && (0.0..1e9).contains(&v) {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        let n = v as u64;
                        Value::from(n)
                    } else {
                        Value::from(v)
                    }
                });
                check(diffs, &field, want, &got);
            }
            "outlier_detection" => {
                let actual = p.outlier_detection.as_ref().map_or(Value::Null, |o| {
                    serde_json::json!({
                        "consecutive_5xx": o.consecutive_5xx,
                        "enforcing_consecutive_5xx": o.enforcing_consecutive_5xx,
                        "consecutive_gateway_failure": o.consecutive_gateway_failure,
                        "enforcing_consecutive_gateway_failure": o.enforcing_consecutive_gateway_failure,
                        "enforcing_success_rate": o.enforcing_success_rate,
                        "interval": opt_duration(o.interval),
                        "base_ejection_time": opt_duration(o.base_ejection_time),
                        "max_ejection_percent": o.max_ejection_percent,
                    })
                });
                compare_subset(diffs, &field, want, &actual);
            }
            "tls" => match (want, &p.tls) {
                (Value::Null, UpstreamTls::None) => {}
                (Value::String(s), UpstreamTls::AutoMtls(_)) if s.starts_with("auto_mtls") => {}
                (Value::Object(o), UpstreamTls::Disabled)
                    if o.get("mode").and_then(Value::as_str) == Some("DISABLE") => {}
                (Value::Object(o), UpstreamTls::Tls(t)) => {
                    let registry_sans = o.get("san").and_then(Value::as_str)
                        == Some("service accounts of the service");
                    let actual = client_tls_value(t, c, registry_sans);
                    compare_subset(diffs, &field, want, &actual);
                }
                (_, got) => diffs.push(format!("{field}: expected {want}, got {got:?}")),
            },
            _ => diffs.push(format!("{field}: unknown expectation key")),
        }
    }
}

fn compare(
    plan: &GatewayPlan,
    sim: &Simulation<'_>,
    request: &Request,
    d: &Decision<'_>,
    expect: &serde_json::Map<String, Value>,
    diffs: &mut Vec<String>,
) {
    let outcome = &d.outcome;
    let fwd = match outcome {
        Outcome::Forward(f) => Some(f.as_ref()),
        _ => None,
    };
    let cluster_name = cluster_of(outcome);
    let cluster = cluster_name.and_then(|c| plan.clusters.get(c));
    for (key, want) in expect {
        match key.as_str() {
            "note" => {}
            "action" => check(
                diffs,
                key,
                want,
                &Value::String(action_name(outcome).into()),
            ),
            "cluster" => check(diffs, key, want, &opt_str(cluster_name)),
            "cluster_defined" => check(diffs, key, want, &Value::Bool(cluster.is_some())),
            "status" => check(
                diffs,
                key,
                want,
                &status_of(outcome).map_or(Value::Null, Value::from),
            ),
            "listener" => check(diffs, key, want, &opt_str(d.listener.as_deref())),
            "route_config" => check(diffs, key, want, &opt_str(d.route_config.as_deref())),
            "virtual_host" => check(diffs, key, want, &opt_str(d.virtual_host.as_deref())),
            "reason" => {
                let got = match outcome {
                    Outcome::NotFound(NotFound::NoVirtualHost) => Some("no_virtual_host"),
                    Outcome::NotFound(_) => Some("no_route"),
                    Outcome::Redirect {
                        require_tls: true, ..
                    } => Some("require_tls"),
                    _ => None,
                };
                check(diffs, key, want, &opt_str(got));
            }
            "location" => {
                let got = match outcome {
                    Outcome::Redirect { location, .. } => Some(location.as_str()),
                    _ => None,
                };
                check(diffs, key, want, &opt_str(got));
            }
            "body" => {
                let got = match outcome {
                    Outcome::DirectResponse { body, .. } => {
                        body.as_deref().filter(|b| !b.is_empty())
                    }
                    _ => None,
                };
                check(diffs, key, want, &opt_str(got));
            }
            "tls_terminated" => {
                let got = match outcome {
                    Outcome::TcpProxy { tls_terminated, .. } => Value::Bool(*tls_terminated),
                    _ => Value::Null,
                };
                check(diffs, key, want, &got);
            }
            "weighted_clusters" => {
                let list = match outcome {
                    Outcome::Forward(f) => f.weighted_clusters.clone(),
                    Outcome::TcpProxy {
                        weighted_clusters, ..
                    } => weighted_clusters.clone(),
                    _ => Vec::new(),
                };
                let got: Vec<Value> = list
                    .iter()
                    .map(|w| serde_json::json!({"cluster": w.cluster, "weight": w.weight}))
                    .collect();
                check(diffs, key, want, &Value::Array(got));
            }
            "selection" => {
                for s in want.as_array().into_iter().flatten() {
                    let random = s.get("random").and_then(Value::as_u64).unwrap_or(0);
                    let again = sim.decide_with(request, &mut SimulationRandom::new(random));
                    check(
                        diffs,
                        &format!("selection[random={random}]"),
                        s.get("cluster").unwrap_or(&Value::Null),
                        &opt_str(cluster_of(&again.outcome)),
                    );
                }
            }
            "upstream" => {
                let Some(f) = fwd else {
                    diffs.push("upstream: request not forwarded".into());
                    continue;
                };
                for (k, v) in want.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "path" => check(
                            diffs,
                            "upstream.path",
                            v,
                            &Value::String(f.upstream.path.clone()),
                        ),
                        "authority" => check(
                            diffs,
                            "upstream.authority",
                            v,
                            &Value::String(f.upstream.authority.clone()),
                        ),
                        "headers" => {
                            compare_headers(
                                diffs,
                                "upstream.headers",
                                v,
                                Some(&f.upstream.headers),
                            );
                        }
                        other => diffs.push(format!("upstream.{other}: unknown expectation key")),
                    }
                }
            }
            "response_headers" => {
                let got = match outcome {
                    Outcome::Forward(f) => Some(f.response_headers.as_slice()),
                    Outcome::Redirect {
                        response_headers, ..
                    }
                    | Outcome::DirectResponse {
                        response_headers, ..
                    }
                    | Outcome::CorsPreflight {
                        response_headers, ..
                    } => Some(response_headers.as_slice()),
                    _ => None,
                };
                compare_headers(diffs, key, want, got);
            }
            "cors_response_headers" => {
                let got = fwd.and_then(|f| f.cors_response_headers.as_deref());
                compare_headers(diffs, key, want, got);
            }
            "retry_policy" => {
                let policy = d
                    .route
                    .and_then(|r| r.forward())
                    .and_then(|f| f.retry_policy());
                let got = policy.map_or(Value::Null, |p| {
                    let predicates: &[&str] = if p.previous_hosts() {
                        &["envoy.retry_host_predicates.previous_hosts"]
                    } else {
                        &[]
                    };
                    serde_json::json!({
                        "num_retries": p.num_retries(),
                        "retry_on": p.retry_on(),
                        "retriable_status_codes": p.retriable_status_codes(),
                        "retry_host_predicate": predicates,
                        "host_selection_retry_max_attempts": p.host_selection_retry_max_attempts(),
                        "per_try_timeout": opt_duration(p.per_try_timeout()),
                        "retry_priority": p.previous_priorities_update_frequency().map_or(Value::Null, |f| {
                            serde_json::json!({"name": "envoy.retry_priorities.previous_priorities", "update_frequency": f})
                        }),
                    })
                });
                compare_subset(diffs, key, want, &got);
            }
            "timeout" => check(
                diffs,
                key,
                want,
                &opt_duration(d.route.and_then(|r| r.forward()).map(|f| f.timeout())),
            ),
            "max_grpc_timeout" => check(
                diffs,
                key,
                want,
                &opt_duration(
                    d.route
                        .and_then(|r| r.forward())
                        .and_then(|f| f.max_grpc_timeout()),
                ),
            ),
            "hash_policy" => {
                let got: Vec<Value> = d
                    .route
                    .map(|r| r.hash_policy.iter().map(hash_value).collect())
                    .unwrap_or_default();
                check(diffs, key, want, &Value::Array(got));
            }
            "mirrors" => {
                let got: Vec<Value> = d
                    .route
                    .and_then(|r| r.forward())
                    .map(|f| {
                        f.mirrors()
                            .iter()
                            .map(|m| serde_json::json!({"cluster": m.cluster(), "percent_per_million": m.percentage().per_million()}))
                            .collect()
                    })
                    .unwrap_or_default();
                check(diffs, key, want, &Value::Array(got));
            }
            "fault" => {
                let got = d
                    .route
                    .and_then(|r| r.action.fault())
                    .map_or(Value::Null, fault_value);
                compare_subset(diffs, key, want, &got);
            }
            "grpc_status" => {
                let got = match outcome {
                    Outcome::FaultAbort { grpc_status, .. } => {
                        grpc_status.map_or(Value::Null, Value::from)
                    }
                    _ => Value::Null,
                };
                check(diffs, key, want, &got);
            }
            "otherwise" => {
                let Outcome::Probabilistic { otherwise, .. } = outcome else {
                    diffs.push("otherwise: outcome is not probabilistic".into());
                    continue;
                };
                let inner = d.clone().with_outcome(otherwise.as_ref().clone());
                if let Some(o) = want.as_object() {
                    compare(plan, sim, request, &inner, o, diffs);
                }
            }
            "cluster_policy" => compare_cluster_policy(diffs, want, cluster),
            "cluster_type" => check(
                diffs,
                key,
                want,
                &opt_str(cluster.map(|c| c.cluster_type.as_str())),
            ),
            "endpoints" => {
                // An entry is "addr:port", or {address, tls} where tls starts with ISTIO_MUTUAL
                // (Istio mTLS to that endpoint) or is "plaintext".
                let described = want
                    .as_array()
                    .is_some_and(|a| a.iter().any(Value::is_object));
                let got: Vec<Value> = cluster
                    .map(|c| {
                        c.endpoints
                            .iter()
                            .map(|e| {
                                let address = format!("{}:{}", e.address, e.port);
                                if !described {
                                    return Value::String(address);
                                }
                                let mtls = c.endpoint_uses_istio_mtls(e);
                                serde_json::json!({"address": address, "tls": if mtls { "ISTIO_MUTUAL" } else { "plaintext" }})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let want = &Value::Array(
                    want.as_array()
                        .into_iter()
                        .flatten()
                        .map(|w| match w {
                            Value::Object(o) => {
                                let tls = o.get("tls").and_then(Value::as_str).unwrap_or("");
                                let tls = if tls.starts_with("ISTIO_MUTUAL") {
                                    "ISTIO_MUTUAL"
                                } else {
                                    tls
                                };
                                serde_json::json!({"address": o.get("address"), "tls": tls})
                            }
                            other => other.clone(),
                        })
                        .collect(),
                );
                check(diffs, key, want, &Value::Array(got));
            }
            "endpoints_selected_by" => {
                let got = cluster.map_or(Value::Null, |c| {
                    Value::Object(
                        c.subset_labels
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect(),
                    )
                });
                check(diffs, key, want, &got);
            }
            other => diffs.push(format!("{other}: unknown expectation key")),
        }
    }
}
