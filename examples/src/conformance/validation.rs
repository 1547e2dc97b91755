//! The `validation` suite: one resource or sub-object judged by one Istio validation entry point.
//!
//! Each vector names the Go function Istio's test called (`function`), the input (`spec`, in
//! the CRD's JSON field names) and its flags (`context`). The runner decodes the input into the
//! model type that function takes, calls the matching `portcullis-validate` entry point and
//! compares verdicts as `../shared/conformance/README.md` defines them.
//!
//! Two adaptations, both about inputs the model cannot hold:
//! * the model has no nil list elements: Istio skips nil entries of `match` lists, so the runner
//!   drops them; any other nil element fails to decode, which the runner counts as an error
//!   verdict (Istio rejects nil servers, routes and destinations);
//! * a value that does not decode (a malformed duration, a wrong type) is an error verdict, as it
//!   is for Istio's decoder.

use std::fmt::Display;
use std::path::Path;

use base64::Engine as _;
use portcullis_model::{
    DestinationRule, Duration, Gateway, ServiceEntry, VirtualService, destination_rule as dr,
    from_value, gateway as gw, service_entry as se, virtual_service as vs,
};
use portcullis_validate::{
    Context, Diagnostics, common, destination_rule as vdr, gateway as vgw, service_entry as vse,
    virtual_service as vvs,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Report, read_yaml};

/// Runs every vector of a validation suite file.
pub(super) fn run(path: &Path) -> Result<Report, String> {
    let data = read_yaml(path)?;
    let vectors = data
        .get("vectors")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no `vectors` list", path.display()))?;
    let mut report = Report::default();
    for (i, vector) in vectors.iter().enumerate() {
        let id = vector
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("vector {i}"), str::to_owned);
        report.record(id, run_vector(vector));
    }
    Ok(report)
}

/// What an entry point answered.
enum Outcome {
    /// Diagnostics of a validator.
    Verdict(Diagnostics),
    /// The value of a predicate or parser (`true`, `"HTTP"`).
    Value(Value),
}

fn run_vector(vector: &Value) -> Result<(), String> {
    let function = str_field(vector, "function")?;
    let context = vector.get("context").cloned().unwrap_or(Value::Null);
    let spec = expand(vector.get("spec").cloned().unwrap_or(Value::Null))?;
    let errors_only = function.contains("(error part only)");
    let outcome = match dispatch(function, spec, &context) {
        Ok(outcome) => outcome,
        // An input that does not decode is rejected, as Istio's decoder rejects it.
        Err(Decode(message)) => {
            let mut d = Diagnostics::new();
            d.error("", format!("decode: {message}"));
            Outcome::Verdict(d)
        }
    };
    let expect = vector.get("expect").cloned().unwrap_or(Value::Null);
    match outcome {
        Outcome::Value(value) => {
            if value == expect {
                Ok(())
            } else {
                Err(format!("expected {expect}, got {value}"))
            }
        }
        Outcome::Verdict(mut found) => {
            if errors_only {
                let mut errors = Diagnostics::new();
                errors.extend_errors(found);
                found = errors;
            }
            compare(vector, &expect, &found)
        }
    }
}

/// Compares diagnostics with `expect`, `warning`, `error_contains` and `warning_contains`.
fn compare(vector: &Value, expect: &Value, found: &Diagnostics) -> Result<(), String> {
    let errors: Vec<String> = found.errors().map(ToString::to_string).collect();
    let warnings: Vec<String> = found.warnings().map(ToString::to_string).collect();
    let shown = || {
        if found.is_empty() {
            "nothing".to_owned()
        } else {
            found.to_string().replace('\n', " | ")
        }
    };
    let warning = vector.get("warning");
    match expect.as_str() {
        Some("valid") if !errors.is_empty() => {
            return Err(format!("expected valid, got {}", shown()));
        }
        Some("warning") if !errors.is_empty() || warnings.is_empty() => {
            return Err(format!("expected a warning and no error, got {}", shown()));
        }
        Some("error") if errors.is_empty() => {
            return Err(format!("expected an error, got {}", shown()));
        }
        Some("valid" | "warning" | "error") => {}
        _ => return Err(format!("unknown expectation {expect}")),
    }
    match warning.and_then(Value::as_bool) {
        Some(true) if warnings.is_empty() => {
            return Err(format!("expected warnings, got {}", shown()));
        }
        Some(false) if !warnings.is_empty() => {
            return Err(format!("expected no warning, got {}", shown()));
        }
        _ => {}
    }
    for (key, list) in [("error_contains", &errors), ("warning_contains", &warnings)] {
        if let Some(needle) = vector.get(key).and_then(Value::as_str)
            && !list.iter().any(|m| m.contains(needle))
        {
            return Err(format!("expected {key} {needle:?}, got {}", shown()));
        }
    }
    Ok(())
}

/// An input that did not decode into the model type.
struct Decode(String);

fn decode<T: DeserializeOwned>(spec: Value) -> Result<T, Decode> {
    from_value(drop_null_matches(spec)).map_err(|e| Decode(e.to_string()))
}

fn decode_opt<T: DeserializeOwned>(spec: Value) -> Result<Option<T>, Decode> {
    if spec.is_null() {
        Ok(None)
    } else {
        decode(spec).map(Some)
    }
}

fn text(spec: &Value) -> Result<&str, Decode> {
    spec.as_str()
        .ok_or_else(|| Decode(format!("expected a string, got {spec}")))
}

fn flag(context: &Value, key: &str) -> bool {
    context.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn context_str<'a>(context: &'a Value, key: &str) -> &'a str {
    context.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The resource context a whole-resource vector gives (name, namespace, labels, annotations).
fn resource_context(context: &Value, crd_schema: bool) -> Result<Context, Decode> {
    let mut ctx = Context::new(
        context_str(context, "namespace"),
        context_str(context, "name"),
    );
    for (key, target) in [
        ("labels", &mut ctx.labels),
        ("annotations", &mut ctx.annotations),
    ] {
        if let Some(map) = context.get(key) {
            *target = decode(map.clone())?;
        }
    }
    ctx.gateway_semantics = flag(context, "gatewaySemantics");
    ctx.crd_schema = crd_schema;
    Ok(ctx)
}

fn verdict(d: Diagnostics) -> Result<Outcome, Decode> {
    Ok(Outcome::Verdict(d))
}

fn result<E: Display>(r: Result<(), E>) -> Result<Outcome, Decode> {
    let mut d = Diagnostics::new();
    if let Err(err) = r {
        d.error("", err.to_string());
    }
    verdict(d)
}

/// Calls the entry point `function` names, with the input decoded into its type.
fn dispatch(function: &str, spec: Value, context: &Value) -> Result<Outcome, Decode> {
    let crd = function.starts_with("CRD schema + ");
    let name = function.strip_prefix("CRD schema + ").unwrap_or(function);
    let gateway_semantics = function.contains("gatewaySemantics=true");
    // The function name up to its argument list or remark.
    let head = name.split(['(', ' ']).next().unwrap_or(name);
    match head {
        "ValidateGateway" => verdict(vgw::validate_gateway(
            &decode::<Gateway>(spec)?,
            &resource_context(context, crd)?,
        )),
        "validateServer" => verdict(vgw::validate_server(
            &decode::<gw::Server>(spec)?,
            gateway_semantics,
        )),
        "validateServerPort" => {
            let port = decode_opt::<gw::Port>(spec.get("port").cloned().unwrap_or(Value::Null))?;
            let bind = spec.get("bind").and_then(Value::as_str).unwrap_or("");
            verdict(vgw::validate_server_port(port.as_ref(), bind))
        }
        "validateTLSOptions" => verdict(vgw::validate_server_tls(
            &decode::<gw::ServerTlsSettings>(spec)?,
        )),
        "ValidateVirtualService" => verdict(vvs::validate_virtual_service(
            &decode::<VirtualService>(spec)?,
            &resource_context(context, crd)?,
        )),
        "validateHTTPRoute" => verdict(vvs::validate_http_route(
            &decode::<vs::HttpRoute>(spec)?,
            function.contains("delegate=true") || flag(context, "delegateVirtualService"),
            gateway_semantics,
        )),
        "agent.ValidateHTTPRetry" => verdict(vvs::validate_http_retry(
            decode_opt::<vs::HttpRetry>(spec)?.as_ref(),
        )),
        "validateCORSPolicy" => verdict(vvs::validate_cors_policy(
            decode_opt::<vs::CorsPolicy>(spec)?.as_ref(),
        )),
        "validateHTTPRedirect" => verdict(vvs::validate_http_redirect(
            decode_opt::<vs::HttpRedirect>(spec)?.as_ref(),
        )),
        "validateHTTPRewrite" => verdict(vvs::validate_http_rewrite(
            decode_opt::<vs::HttpRewrite>(spec)?.as_ref(),
        )),
        "validateURIRegexRewrite" => verdict(vvs::validate_uri_regex_rewrite(
            decode_opt::<vs::RegexRewrite>(spec)?.as_ref(),
        )),
        "validateHTTPDirectResponse" => verdict(vvs::validate_http_direct_response(
            decode_opt::<vs::HttpDirectResponse>(spec)?.as_ref(),
        )),
        "validateHTTPFaultInjectionAbort" => verdict(vvs::validate_fault_abort(
            decode_opt::<vs::Abort>(spec)?.as_ref(),
        )),
        "validateHTTPFaultInjectionDelay" => verdict(vvs::validate_fault_delay(
            decode_opt::<vs::Delay>(spec)?.as_ref(),
        )),
        "validateHTTPStatus" => result(vvs::validate_http_status(decode::<i64>(spec)?)),
        "validateRouteDestinations" => verdict(vvs::validate_route_destinations(
            &decode::<Vec<vs::RouteDestination>>(spec)?,
            gateway_semantics,
        )),
        "validateDestination" => verdict(vvs::validate_destination(
            decode_opt::<vs::Destination>(spec)?.as_ref(),
        )),
        "agent.ValidateWildcardDomainForVirtualServiceBoundToGateway" => result(
            vvs::validate_wildcard_domain_for_gateway(flag(context, "sni"), text(&spec)?),
        ),
        "ValidateDestinationRule" => verdict(vdr::validate_destination_rule(
            &decode::<DestinationRule>(spec)?,
            &resource_context(context, crd)?,
        )),
        "validateTrafficPolicy" => verdict(vdr::validate_traffic_policy(
            &decode::<dr::TrafficPolicy>(spec)?,
            context_str(context, "namespace"),
        )),
        "validateConnectionPool" => verdict(vdr::validate_connection_pool(&decode::<
            dr::ConnectionPoolSettings,
        >(spec)?)),
        "validateLoadBalancer" => {
            let outlier = outlier_of(context)?;
            verdict(vdr::validate_load_balancer(
                &decode::<dr::LoadBalancerSettings>(spec)?,
                outlier.as_ref(),
            ))
        }
        "agent.ValidateLocalityLbSetting" => {
            let outlier = outlier_of(context)?;
            verdict(vdr::validate_locality_lb_setting(
                decode_opt::<dr::LocalityLoadBalancerSetting>(spec)?.as_ref(),
                outlier.as_ref(),
            ))
        }
        "agent.ValidateZoneAwareLbSetting" => {
            let outlier = outlier_of(context)?;
            verdict(vdr::validate_zone_aware_lb_setting(
                decode_opt::<dr::ZoneAwareLoadBalancerSetting>(spec)?.as_ref(),
                outlier.as_ref(),
            ))
        }
        "validateLocalities" => result(vdr::validate_localities(&decode::<Vec<String>>(spec)?)),
        "validateOutlierDetection" => verdict(vdr::validate_outlier_detection(&decode::<
            dr::OutlierDetection,
        >(spec)?)),
        "agent.ValidateTLS" => verdict(vdr::validate_client_tls(
            decode_opt::<dr::ClientTlsSettings>(spec)?.as_ref(),
        )),
        "ValidateServiceEntry" => verdict(vse::validate_service_entry(
            &decode::<ServiceEntry>(spec)?,
            &resource_context(context, crd)?,
        )),
        "ValidateWorkloadEntry" => verdict(vse::validate_workload_entry(
            &decode::<se::WorkloadEntry>(spec)?,
            &resource_context(context, crd)?,
        )),
        "validateExportTo" => verdict(common::validate_export_to(
            context_str(context, "namespace"),
            &decode::<Vec<String>>(spec)?,
            flag(context, "isServiceEntry"),
            flag(context, "isDestinationRuleWithSelector"),
        )),
        "ValidateHTTPHeaderNameOrJwtClaimRoute" => {
            result(common::validate_header_match_name(text(&spec)?))
        }
        "ValidateHTTPHeaderValue" => result(common::validate_header_value(text(&spec)?)),
        "ValidatePortName" => result(common::validate_port_name(text(&spec)?)),
        "agent.ValidateFQDN" => result(common::validate_fqdn(text(&spec)?)),
        "agent.ValidateWildcardDomain" => result(common::validate_wildcard_domain(text(&spec)?)),
        "agent.ValidateIPAddress" => result(common::validate_ip_address(text(&spec)?)),
        "agent.ValidateIPSubnet" => result(common::validate_ip_subnet(text(&spec)?)),
        "agent.ValidatePort" => result(common::validate_port_number(decode::<i64>(spec)?)),
        "agent.ValidateDuration" => {
            let duration: Duration = text(&spec)?.parse().map_err(|e| Decode(format!("{e}")))?;
            result(common::validate_duration(&duration))
        }
        "labels.Instance.Validate" => result(common::validate_labels(&decode(spec)?)),
        "host.Name" => {
            let a = spec.get("a").and_then(Value::as_str).unwrap_or("");
            let b = spec.get("b").and_then(Value::as_str).unwrap_or("");
            let answer = if function.contains("SubsetOf") {
                common::host::subset_of(a, b)
            } else {
                common::host::matches(a, b)
            };
            Ok(Outcome::Value(Value::Bool(answer)))
        }
        "protocol.Parse" => Ok(Outcome::Value(Value::String(
            common::Protocol::parse(text(&spec)?).as_str().to_owned(),
        ))),
        _ => Err(Decode(format!("no entry point for function {function:?}"))),
    }
}

fn outlier_of(context: &Value) -> Result<Option<dr::OutlierDetection>, Decode> {
    decode_opt(
        context
            .get("outlierDetection")
            .cloned()
            .unwrap_or(Value::Null),
    )
}

fn str_field<'a>(vector: &'a Value, key: &str) -> Result<&'a str, String> {
    vector
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("vector has no `{key}`"))
}

/// Expands the suite's special encodings: `{$repeat: {s, n}}` (a repeated string) and
/// `{$bytes: X}` (raw bytes, written as base64 as protobuf JSON writes `bytes`).
fn expand(value: Value) -> Result<Value, String> {
    Ok(match value {
        Value::Object(map) => {
            if let Some(repeat) = map.get("$repeat") {
                let s = repeat.get("s").and_then(Value::as_str).unwrap_or("");
                let n = repeat.get("n").and_then(Value::as_u64).unwrap_or(0);
                let n = usize::try_from(n).map_err(|e| e.to_string())?;
                Value::String(s.repeat(n))
            } else if let Some(bytes) = map.get("$bytes") {
                let raw = expand(bytes.clone())?;
                let raw = raw.as_str().unwrap_or("");
                Value::String(base64::engine::general_purpose::STANDARD.encode(raw))
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| Ok((k, expand(v)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(expand).collect::<Result<_, _>>()?)
        }
        other => other,
    })
}

/// Istio skips nil entries of `match` lists; the model has no nil elements, so they are dropped.
fn drop_null_matches(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("match", Value::Array(items)) => {
                            Value::Array(items.into_iter().filter(|i| !i.is_null()).collect())
                        }
                        (_, v) => v,
                    };
                    (k, drop_null_matches(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(drop_null_matches).collect()),
        other => other,
    }
}
