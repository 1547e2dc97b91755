//! VirtualService validation (VALIDATION.md §3, rules V-1 … V-32), and the CRD schema layer for
//! VirtualServices (§6, K-V, in `crd`) when [`Context::crd_schema`] is set; the reachability
//! analysis of the rules (V-29 … V-32) is in `reachability`.
//!
//! The resource-level entry point is [`validate_virtual_service`]; the others judge one
//! sub-object, as the Istio function they are named after does, with paths relative to it.
//!
//! ```
//! use portcullis_model::VirtualService;
//! use portcullis_validate::Context;
//! use portcullis_validate::virtual_service::validate_virtual_service;
//!
//! let vs: VirtualService = serde_json::from_str(r#"{
//!     "hosts": ["reviews"],
//!     "http": [{"route": [{"destination": {"host": "reviews"}, "weight": -1}]}]
//! }"#).unwrap();
//! let found = validate_virtual_service(&vs, &Context::new("bookinfo", "reviews"));
//! assert!(found.errors().any(|d| d.path == "spec.http[0].route[0].weight"));
//! ```

use std::collections::BTreeMap;

use portcullis_model::common::decode_proto_bytes;
use portcullis_model::virtual_service::{
    Abort, CorsPolicy, Delay, Destination, ErrorType, Headers, HttpBody, HttpDelayType,
    HttpDirectResponse, HttpFaultInjection, HttpMatchRequest, HttpMirrorPolicy, HttpRedirect,
    HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination, L4MatchAttributes, RedirectPort,
    RegexRewrite, RouteDestination, TcpRoute, TlsMatchAttributes, TlsRoute,
};
use portcullis_model::{Duration, StringMatch, VirtualService};

use crate::common::{self, host, quote};
use crate::context::{Checker, Context};
use crate::diag::Diagnostics;
use crate::invalid::{InvalidValue, ValueKind};
use crate::path;

mod crd;
mod reachability;

use crd::crd_virtual_service;
pub(crate) use reachability::{Reachability, ReachabilityKind, reachability};

/// The reserved gateway name for sidecars.
const MESH_GATEWAY: &str = "mesh";
/// Direct-response bodies above this size are rejected.
const DIRECT_RESPONSE_MAX: usize = 1024 * 1024;
/// Direct-response bodies above this size are warned about.
const DIRECT_RESPONSE_WARN: usize = 100 * 1024;
/// The form of the SNI names Istio generates for AUTO_PASSTHROUGH gateways.
const OUTBOUND_SNI_FORMAT: &str = "outbound_.<PORT>_._.<HOSTNAME>";

/// The methods a CORS policy may allow (Go's `net/http` method names and `*`).
const CORS_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// The gRPC status names a fault abort may use.
const GRPC_STATUSES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The named `retryOn` policies Envoy supports (`x-envoy-retry-on` and `x-envoy-retry-grpc-on`).
const RETRY_ON_POLICIES: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// `ValidateVirtualService`: a whole VirtualService spec (V-1 … V-32), with the metadata checks
/// of its context first and, when [`Context::crd_schema`] is set, the CRD schema rules (K-V)
/// before everything else. Paths start with `spec.`.
pub fn validate_virtual_service(spec: &VirtualService, ctx: &Context) -> Diagnostics {
    let mut c = Checker::new(ctx);
    if ctx.crd_schema {
        crd_virtual_service(&mut c, "spec", spec);
        if c.out.has_errors() {
            // The API server rejects the object before the webhook sees it.
            return c.finish();
        }
    }
    if crate::gateway::metadata_checks(&mut c, ctx) {
        virtual_service(&mut c, "spec", spec);
    }
    c.finish()
}

/// `validateHTTPRoute`: one HTTP route; `delegate` when it lives in a delegate VirtualService
/// (one without hosts), `gateway_semantics` for routes converted from the Gateway API (route
/// destinations are then not checked).
pub fn validate_http_route(
    route: &HttpRoute,
    delegate: bool,
    gateway_semantics: bool,
) -> Diagnostics {
    run(|c| http_route(c, "", route, delegate, gateway_semantics))
}

/// `agent.ValidateHTTPRetry`: a retry policy (V-18).
pub fn validate_http_retry(retries: Option<&HttpRetry>) -> Diagnostics {
    run(|c| {
        if let Some(retries) = retries {
            http_retry(c, "", retries);
        }
    })
}

/// `validateCORSPolicy`: a CORS policy (V-13).
pub fn validate_cors_policy(policy: Option<&CorsPolicy>) -> Diagnostics {
    run(|c| {
        if let Some(policy) = policy {
            cors_policy(c, "", policy);
        }
    })
}

/// `validateHTTPRedirect` with no matches: a redirect (V-16; first failure only).
pub fn validate_http_redirect(redirect: Option<&HttpRedirect>) -> Diagnostics {
    run(|c| {
        if let Some(redirect) = redirect {
            http_redirect(c, "", redirect, &[]);
        }
    })
}

/// `validateHTTPRewrite`: a rewrite (V-19; first failure only).
pub fn validate_http_rewrite(rewrite: Option<&HttpRewrite>) -> Diagnostics {
    run(|c| {
        if let Some(rewrite) = rewrite {
            http_rewrite(c, "", rewrite);
        }
    })
}

/// `validateURIRegexRewrite`: a regex rewrite of the path (V-19).
pub fn validate_uri_regex_rewrite(rewrite: Option<&RegexRewrite>) -> Diagnostics {
    run(|c| {
        if let Some(rewrite) = rewrite {
            uri_regex_rewrite(c, "", rewrite);
        }
    })
}

/// `validateHTTPDirectResponse`: a direct response (V-17).
pub fn validate_http_direct_response(response: Option<&HttpDirectResponse>) -> Diagnostics {
    run(|c| {
        if let Some(response) = response {
            http_direct_response(c, "", response);
        }
    })
}

/// `validateHTTPFaultInjectionAbort`: an injected abort (V-14), including the warning Istio
/// produces (and then drops inside a route) for an abort without an error type.
pub fn validate_fault_abort(abort: Option<&Abort>) -> Diagnostics {
    run(|c| {
        if let Some(abort) = abort {
            fault_abort(c, "", abort);
        }
    })
}

/// `validateHTTPFaultInjectionDelay`: an injected delay (V-14).
pub fn validate_fault_delay(delay: Option<&Delay>) -> Diagnostics {
    run(|c| {
        if let Some(delay) = delay {
            fault_delay(c, "", delay);
        }
    })
}

/// `validateHTTPStatus`: a status a fault abort or direct response may return, 200..=600.
pub fn validate_http_status(status: i64) -> Result<(), InvalidValue> {
    if (200..=600).contains(&status) {
        Ok(())
    } else {
        Err(InvalidValue::new(
            ValueKind::HttpStatus,
            format!("HTTP status {status} is not in range 200-599"),
        ))
    }
}

/// `validateRouteDestinations`: the destinations of a TCP or TLS route (V-21 without headers).
pub fn validate_route_destinations(
    routes: &[RouteDestination],
    gateway_semantics: bool,
) -> Diagnostics {
    run(|c| route_destinations(c, "", routes, gateway_semantics))
}

/// `validateDestination`: one destination (V-20).
pub fn validate_destination(destination: Option<&Destination>) -> Diagnostics {
    run(|c| destination_at(c, "", destination))
}

/// `agent.ValidateWildcardDomainForVirtualServiceBoundToGateway`: a VirtualService host (or
/// SNI host, `sni`) of a VirtualService bound to gateways: a wildcard domain (C-5), or with
/// `sni`, the name Istio generates for AUTO_PASSTHROUGH (`outbound_.<PORT>_._.<HOSTNAME>`).
pub fn validate_wildcard_domain_for_gateway(sni: bool, host: &str) -> Result<(), InvalidValue> {
    wildcard_domain_for_gateway(sni, host).map_err(|m| InvalidValue::new(ValueKind::GatewayHost, m))
}

fn wildcard_domain_for_gateway(sni: bool, host: &str) -> Result<(), String> {
    if host.len() > 255 {
        return Err(format!("domain name {} too long (max 255)", quote(host)));
    }
    if host.is_empty() {
        return Err("empty domain name not allowed".to_owned());
    }
    if sni && host.starts_with("outbound_") {
        let parts: Vec<&str> = host.split('_').collect();
        let (Some(port), Some(name)) = (parts.get(1), parts.get(3)) else {
            return Err(format!(
                "domain name {host} invalid, should follow '{OUTBOUND_SNI_FORMAT}' format"
            ));
        };
        let port = port.trim_matches('.');
        let name = name.trim_matches('.');
        if !port.bytes().any(|b| b.is_ascii_digit()) {
            return Err(format!(
                "domain name {} invalid (label {} invalid). should follow {OUTBOUND_SNI_FORMAT} format",
                quote(host),
                quote(port)
            ));
        }
        if !name.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "domain name {} invalid (label {} invalid). should follow {OUTBOUND_SNI_FORMAT} format",
                quote(host),
                quote(name)
            ));
        }
        return Ok(());
    }
    common::validate_wildcard_domain(host).map_err(String::from)
}

/// Runs a sub-object check with the default context.
fn run(f: impl FnOnce(&mut Checker<'_>)) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    f(&mut c);
    c.finish()
}

// ---------------------------------------------------------------------------------------------
// Resource level (V-1 … V-8)
// ---------------------------------------------------------------------------------------------

fn virtual_service(c: &mut Checker<'_>, path: &str, vs: &VirtualService) {
    let delegate = vs.hosts.is_empty();
    if delegate {
        // V-1: a delegate VirtualService holds HTTP routes only.
        if !vs.gateways.is_empty() {
            c.error(
                path::join(path, "gateways"),
                "delegate virtual service must have no gateways specified",
            );
        }
        if !vs.tls.is_empty() {
            c.error(
                path::join(path, "tls"),
                "delegate virtual service must have no tls route specified",
            );
        }
        if !vs.tcp.is_empty() {
            c.error(
                path::join(path, "tcp"),
                "delegate virtual service must have no tcp route specified",
            );
        }
    }
    let gateway_semantics = c.ctx.gateway_semantics;

    // V-2, V-3.
    let (applies_to_mesh, applies_to_gateway) = if vs.gateways.is_empty() {
        (true, false)
    } else {
        gateway_names(
            c,
            &path::join(path, "gateways"),
            &vs.gateways,
            gateway_semantics,
        );
        let gateway = is_gateway(vs);
        (!gateway, gateway)
    };

    // V-4: JWT-claim routing needs a gateway.
    if !applies_to_gateway {
        let listed = format!("[{}]", vs.gateways.join(" "));
        for (i, route) in vs.http.iter().enumerate() {
            let route_path = path::index(&path::join(path, "http"), i);
            for (j, m) in route.r#match.iter().enumerate() {
                let match_path = path::index(&path::join(&route_path, "match"), j);
                for (field, map) in [
                    ("headers", &m.headers),
                    ("withoutHeaders", &m.without_headers),
                ] {
                    for key in map.keys().filter(|k| common::is_jwt_claim_key(k)) {
                        c.error(
                            path::key(&path::join(&match_path, field), key),
                            format!(
                                "JWT claim based routing (key: {key}) is only supported for \
                                 gateway, found no gateways: {listed}"
                            ),
                        );
                    }
                }
            }
        }
    }

    // V-5: hosts.
    let sni = has_sni_hosts(vs);
    let hosts_path = path::join(path, "hosts");
    let mut all_hosts_valid = true;
    for (i, h) in vs.hosts.iter().enumerate() {
        let checked = if applies_to_gateway {
            validate_wildcard_domain_for_gateway(sni, h)
        } else {
            common::validate_wildcard_domain(h)
        };
        match checked {
            Err(message) => {
                if !common::is_ip_address(h) {
                    c.error(path::index(&hosts_path, i), message);
                    all_hosts_valid = false;
                }
            }
            Ok(()) if applies_to_mesh && h == "*" => {
                c.error(
                    path::index(&hosts_path, i),
                    "wildcard host * is not allowed for virtual services bound to the mesh gateway",
                );
                all_hosts_valid = false;
            }
            Ok(()) => {}
        }
    }

    // V-6: duplicate hosts.
    if all_hosts_valid {
        for (i, a) in vs.hosts.iter().enumerate() {
            for (j, b) in vs.hosts.iter().enumerate().skip(i + 1) {
                if host::matches(a, b) {
                    c.error(
                        path::index(&hosts_path, j),
                        format!("duplicate hosts in virtual service: {a} & {b}"),
                    );
                }
            }
        }
    }

    // V-7.
    if vs.http.is_empty() && vs.tcp.is_empty() && vs.tls.is_empty() {
        c.error(path, "http, tcp or tls must be provided in virtual service");
    }
    let http_path = path::join(path, "http");
    for (i, route) in vs.http.iter().enumerate() {
        http_route(
            c,
            &path::index(&http_path, i),
            route,
            delegate,
            gateway_semantics,
        );
    }
    let tls_path = path::join(path, "tls");
    for (i, route) in vs.tls.iter().enumerate() {
        tls_route(c, &path::index(&tls_path, i), route, vs, gateway_semantics);
    }
    let tcp_path = path::join(path, "tcp");
    for (i, route) in vs.tcp.iter().enumerate() {
        tcp_route(c, &path::index(&tcp_path, i), route, gateway_semantics);
    }

    // V-8.
    let namespace = c.ctx.namespace.clone();
    common::export_to_at(
        c,
        &path::join(path, "exportTo"),
        &namespace,
        &vs.export_to,
        false,
        false,
    );

    // V-29 … V-32.
    for finding in reachability(vs) {
        c.warning(finding.warning_path(path), finding.message());
    }
}

/// V-3: bound to gateways only (`mesh` not listed). A VirtualService without gateways counts as
/// gateway-bound here, as in Istio's `isGateway` (callers check for an empty list first where
/// it matters).
fn is_gateway(vs: &VirtualService) -> bool {
    !vs.gateways.iter().any(|g| g == MESH_GATEWAY)
}

/// Whether any TLS match lists SNI hosts (Istio's `isSniHost`).
fn has_sni_hosts(vs: &VirtualService) -> bool {
    vs.tls
        .iter()
        .flat_map(|t| &t.r#match)
        .any(|m| !m.sni_hosts.is_empty())
}

/// V-2 `validateGatewayNames`. Istio stops at the first entry without a `/`.
fn gateway_names(c: &mut Checker<'_>, path: &str, names: &[String], gateway_semantics: bool) {
    for (i, name) in names.iter().enumerate() {
        let at = path::index(path, i);
        let Some((namespace, gateway)) = name.split_once('/') else {
            if name.contains('.') {
                let mut parts = name.split('.');
                let first = parts.next().unwrap_or_default();
                let second = parts.next().unwrap_or_default();
                c.warning(
                    at.clone(),
                    format!(
                        "using legacy gatewayName format {}; prefer the <namespace>/<name> format: {}",
                        quote(name),
                        quote(&format!("{second}/{first}"))
                    ),
                );
            }
            if let Err(message) = common::validate_fqdn(name) {
                c.error(at, message);
            }
            return;
        };
        if namespace.is_empty() || gateway.is_empty() {
            c.error(
                at.clone(),
                "config namespace and gateway name cannot be empty",
            );
        }
        if !common::is_dns1123_label(namespace) {
            c.error(
                at.clone(),
                format!("invalid value for namespace: {}", quote(namespace)),
            );
        }
        if !common::is_dns1123_label(gateway) && !gateway_semantics {
            c.error(
                at,
                format!("invalid value for gateway name: {}", quote(gateway)),
            );
        }
    }
}

/// `validateGatewayNames` where Istio keeps only its errors.
fn gateway_names_errors(c: &mut Checker<'_>, path: &str, names: &[String]) {
    let found = c.isolated(|c| gateway_names(c, path, names, false));
    c.out.extend_errors(found);
}

// ---------------------------------------------------------------------------------------------
// HTTP routes (V-9 … V-22)
// ---------------------------------------------------------------------------------------------

/// How a route relates to delegation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RouteType {
    Independent,
    Root,
    Delegate,
}

fn http_route(
    c: &mut Checker<'_>,
    path: &str,
    route: &HttpRoute,
    delegate: bool,
    gateway_semantics: bool,
) {
    let route_type = if delegate {
        RouteType::Delegate
    } else if route.delegate.is_some() {
        RouteType::Root
    } else {
        RouteType::Independent
    };
    http_route_conflict(c, path, route, route_type);
    http_match_requests(c, path, route);
    header_operations(c, &path::join(path, "headers"), route.headers.as_ref());

    if let Some(policy) = &route.cors_policy {
        cors_policy(c, &path::join(path, "corsPolicy"), policy);
    }
    if let Some(fault) = &route.fault {
        http_fault(c, &path::join(path, "fault"), fault);
    }

    // V-15: mirroring.
    if let Some(percent) = route.mirror_percent {
        let at = path::join(path, "mirrorPercent");
        if percent > 100 {
            c.error(
                at.clone(),
                format!("mirror_percent must have a max value of 100 (it has {percent})"),
            );
        }
        c.warning(
            at,
            r#"using deprecated setting "mirrorPercent", use "mirrorPercentage" instead"#,
        );
    }
    if let Some(percentage) = &route.mirror_percentage {
        let at = path::join(path, "mirrorPercentage.value");
        let value = percentage.value;
        if value > 100.0 {
            c.error(
                at.clone(),
                format!("mirror_percentage must have a max value of 100 (it has {value:.6})"),
            );
        }
        if value < 0.0 {
            c.error(
                at,
                format!("mirror_percentage must have a min value of 0 (it has {value:.6})"),
            );
        }
    }
    destination_at(c, &path::join(path, "mirror"), route.mirror.as_ref());
    http_mirrors(c, &path::join(path, "mirrors"), &route.mirrors);

    if let Some(redirect) = &route.redirect {
        http_redirect(c, &path::join(path, "redirect"), redirect, &route.r#match);
    }
    if let Some(response) = &route.direct_response {
        http_direct_response(c, &path::join(path, "directResponse"), response);
    }
    if let Some(retries) = &route.retries {
        http_retry(c, &path::join(path, "retries"), retries);
    }
    if let Some(rewrite) = &route.rewrite {
        http_rewrite(c, &path::join(path, "rewrite"), rewrite);
    }
    authority_rewrite(c, path, route);
    http_route_destinations(
        c,
        &path::join(path, "route"),
        &route.route,
        gateway_semantics,
    );
    if let Some(timeout) = &route.timeout {
        duration(c, &path::join(path, "timeout"), timeout);
    }
}

/// V-9 `validateHTTPRouteConflict`.
fn http_route_conflict(c: &mut Checker<'_>, path: &str, route: &HttpRoute, route_type: RouteType) {
    if route_type == RouteType::Root {
        if route.redirect.is_some() {
            c.error(
                path::join(path, "redirect"),
                format!("root HTTP route {} must not specify redirect", route.name),
            );
        }
        if !route.route.is_empty() {
            c.error(
                path::join(path, "route"),
                format!("root HTTP route {} must not specify route", route.name),
            );
        }
        return;
    }
    if route_type == RouteType::Delegate && route.delegate.is_some() {
        c.error(
            path::join(path, "delegate"),
            "delegate HTTP route cannot contain delegate",
        );
    }
    // A redirect or a direct response excludes the other actions.
    let action = if route.redirect.is_some() {
        Some(("redirect", "redirect"))
    } else if route.direct_response.is_some() {
        Some(("directResponse", "direct_response"))
    } else {
        None
    };
    if let Some((field, name)) = action {
        let at = path::join(path, field);
        let conflicts = [
            (
                !route.route.is_empty(),
                "HTTP route cannot contain both route",
            ),
            (
                route.fault.is_some(),
                "HTTP route cannot contain both fault",
            ),
            (
                route.rewrite.is_some(),
                "HTTP route rule cannot contain both rewrite",
            ),
            (
                route.redirect.is_some() && route.direct_response.is_some(),
                "HTTP route rule cannot contain both direct_response",
            ),
        ];
        for (_, conflict) in conflicts.iter().filter(|(present, _)| *present) {
            c.error(at.clone(), format!("{conflict} and {name}"));
        }
    } else if route.route.is_empty() {
        c.error(
            path::join(path, "route"),
            "HTTP route, redirect or direct_response is required",
        );
    }
    if route.mirror.is_some() && !route.mirrors.is_empty() {
        c.error(
            path::join(path, "mirrors"),
            "HTTP route cannot contain both mirror and mirrors",
        );
    }
}

/// V-10 `validateHTTPRouteMatchRequest`.
fn http_match_requests(c: &mut Checker<'_>, path: &str, route: &HttpRoute) {
    let matches_path = path::join(path, "match");
    for (j, m) in route.r#match.iter().enumerate() {
        let at = path::index(&matches_path, j);
        http_match_request(c, &at, m);
    }
}

fn http_match_request(c: &mut Checker<'_>, path: &str, m: &HttpMatchRequest) {
    let headers_path = path::join(path, "headers");
    for (name, value) in &m.headers {
        let at = path::key(&headers_path, name);
        if let Err(message) = common::validate_header_match_name(name) {
            c.error(at.clone(), message);
        }
        common::string_match(c, &at, value, false);
    }
    let without_path = path::join(path, "withoutHeaders");
    for (name, value) in &m.without_headers {
        let at = path::key(&without_path, name);
        if let Err(message) = common::validate_header_match_name(name) {
            c.error(at.clone(), message);
        }
        // `regex: "*"` is not a regex: it means "the header is present".
        if !matches!(value, StringMatch::Regex(re) if re == "*") {
            common::string_match(c, &at, value, false);
        }
    }
    if let Some(uri) = &m.uri {
        common::string_match(c, &path::join(path, "uri"), uri, true);
    }
    for (field, value) in [
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(value) = value {
            common::string_match(c, &path::join(path, field), value, false);
        }
    }
    let params_path = path::join(path, "queryParams");
    for (name, value) in &m.query_params {
        common::string_match(c, &path::key(&params_path, name), value, false);
    }

    if m.port != 0
        && let Err(message) = common::validate_port_number(i64::from(m.port))
    {
        c.error(path::join(path, "port"), message);
    }
    if let Err(message) = common::validate_labels(&m.source_labels) {
        c.error(path::join(path, "sourceLabels"), message);
    }
    gateway_names_errors(c, &path::join(path, "gateways"), &m.gateways);
    if !m.source_namespace.is_empty() && !common::is_dns1123_label(&m.source_namespace) {
        c.error(
            path::join(path, "sourceNamespace"),
            format!("sourceNamespace match {} is invalid", m.source_namespace),
        );
    }
}

/// V-11: header operations of a route or of a route destination.
fn header_operations(c: &mut Checker<'_>, path: &str, headers: Option<&Headers>) {
    let Some(headers) = headers else {
        return;
    };
    if let Some(request) = &headers.request {
        let base = path::join(path, "request");
        for (op, map) in [("add", &request.add), ("set", &request.set)] {
            let op_path = path::join(&base, op);
            for (name, value) in map {
                let at = path::key(&op_path, name);
                if let Err(message) = request_header_operation_name(name) {
                    c.error(at.clone(), message);
                }
                if let Err(message) = common::validate_header_value(value) {
                    c.error(at, message);
                }
            }
        }
        let remove_path = path::join(&base, "remove");
        for (i, name) in request.remove.iter().enumerate() {
            if let Err(message) = header_operation_name(name) {
                c.error(path::index(&remove_path, i), message);
            }
        }
    }
    if let Some(response) = &headers.response {
        let base = path::join(path, "response");
        for (op, map) in [("add", &response.add), ("set", &response.set)] {
            let op_path = path::join(&base, op);
            for (name, value) in map {
                let at = path::key(&op_path, name);
                if let Err(message) = header_operation_name(name) {
                    c.error(at.clone(), message);
                }
                if let Err(message) = common::validate_header_value(value) {
                    c.error(at, message);
                }
            }
        }
        let remove_path = path::join(&base, "remove");
        for (i, name) in response.remove.iter().enumerate() {
            if let Err(message) = header_operation_name(name) {
                c.error(path::index(&remove_path, i), message);
            }
        }
    }
}

/// Go's `strings.EqualFold` against an ASCII lower-case word: ASCII case folding plus the two
/// non-ASCII letters that fold onto ASCII ones (`ſ` → `s`, Kelvin `K` → `k`).
fn equal_fold(name: &str, lower: &str) -> bool {
    let mut folded = name.chars().map(|ch| match ch {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        other => other.to_ascii_lowercase(),
    });
    let mut expected = lower.chars();
    loop {
        match (folded.next(), expected.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// A header Envoy computes itself (`:`-prefixed or `Host`).
fn is_internal_header(name: &str) -> bool {
    name.starts_with(':') || equal_fold(name, "host")
}

/// The authority header (`:authority` or `Host`).
fn is_authority_header(name: &str) -> bool {
    equal_fold(name, ":authority") || equal_fold(name, "host")
}

/// `ValidateHTTPHeaderWithAuthorityOperationName`: a request header to add or set.
fn request_header_operation_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_owned());
    }
    if is_internal_header(name) && !is_authority_header(name) {
        return Err(format!(
            "invalid header {}: header cannot have \":\" prefix",
            quote(name)
        ));
    }
    Ok(())
}

/// `ValidateHTTPHeaderOperationName`: a request header to remove, or any response header.
fn header_operation_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_owned());
    }
    if equal_fold(name, "host") {
        return Err(format!(
            "invalid header {}: cannot set Host header",
            quote(name)
        ));
    }
    if is_internal_header(name) {
        return Err(format!(
            "invalid header {}: header cannot have \":\" prefix",
            quote(name)
        ));
    }
    Ok(())
}

/// V-12 `validateAuthorityRewrite`: the authority is rewritten in one place at most.
fn authority_rewrite(c: &mut Checker<'_>, path: &str, route: &HttpRoute) {
    let mut current = route
        .rewrite
        .as_ref()
        .map(|r| r.authority.as_str())
        .unwrap_or_default();
    let Some(request) = route.headers.as_ref().and_then(|h| h.request.as_ref()) else {
        return;
    };
    for (op, map) in [("set", &request.set), ("add", &request.add)] {
        for (name, value) in map.iter().filter(|(k, _)| is_authority_header(k)) {
            if !current.is_empty() {
                c.error(
                    path::key(&path::join(path, &format!("headers.request.{op}")), name),
                    format!(
                        "authority header cannot be set multiple times: have {}, attempting to set {}",
                        quote(current),
                        quote(value)
                    ),
                );
                return;
            }
            current = value;
        }
    }
}

/// `ValidateCORSHTTPHeaderName`.
fn cors_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_owned());
    }
    if name == "*" || common::is_header_token(name) {
        return Ok(());
    }
    Err(format!("header name {name} is not a valid header name"))
}

/// V-13 `validateCORSPolicy`.
fn cors_policy(c: &mut Checker<'_>, path: &str, policy: &CorsPolicy) {
    let origins_path = path::join(path, "allowOrigins");
    for (i, origin) in policy.allow_origins.iter().enumerate() {
        let at = path::index(&origins_path, i);
        let value = match origin {
            StringMatch::Exact(v) | StringMatch::Prefix(v) | StringMatch::Regex(v) => v.as_str(),
            _ => "",
        };
        if value.is_empty() {
            c.error(
                at,
                format!("'{value}' is not a valid match type for CORS allow origins"),
            );
        } else if let StringMatch::Regex(re) = origin {
            c.regex(&path::join(&at, "regex"), re);
        }
    }
    let methods_path = path::join(path, "allowMethods");
    for (i, method) in policy.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&method.as_str()) {
            c.error(
                path::index(&methods_path, i),
                format!("{} is not a supported HTTP method", quote(method)),
            );
        }
    }
    for (field, names) in [
        ("allowHeaders", &policy.allow_headers),
        ("exposeHeaders", &policy.expose_headers),
    ] {
        let field_path = path::join(path, field);
        for (i, name) in names.iter().enumerate() {
            if let Err(message) = cors_header_name(name) {
                c.error(path::index(&field_path, i), message);
            }
        }
    }
    if let Some(max_age) = &policy.max_age {
        let at = path::join(path, "maxAge");
        duration(c, &at, max_age);
        // The proto's `nanos` part, which has the sign of the whole duration.
        if max_age.as_nanos() % 1_000_000_000 > 0 {
            c.error(at, "max_age duration is accurate only to seconds precision");
        }
    }
}

/// V-14 `validateHTTPFaultInjection`: only errors of the abort check propagate.
fn http_fault(c: &mut Checker<'_>, path: &str, fault: &HttpFaultInjection) {
    if fault.abort.is_none() && fault.delay.is_none() {
        c.error(
            path,
            "HTTP fault injection must have an abort and/or a delay",
        );
    }
    if let Some(abort) = &fault.abort {
        let found = c.isolated(|c| fault_abort(c, &path::join(path, "abort"), abort));
        c.out.extend_errors(found);
    }
    if let Some(delay) = &fault.delay {
        fault_delay(c, &path::join(path, "delay"), delay);
    }
}

/// C-23 on an optional `percentage`.
fn percentage(c: &mut Checker<'_>, path: &str, percentage: Option<&portcullis_model::Percent>) {
    if let Some(p) = percentage
        && let Err(message) = common::validate_percentage(p.value)
    {
        c.error(path::join(path, "percentage"), message);
    }
}

fn fault_abort(c: &mut Checker<'_>, path: &str, abort: &Abort) {
    percentage(c, path, abort.percentage.as_ref());
    match &abort.error_type {
        Some(ErrorType::GrpcStatus(status)) => {
            if !GRPC_STATUSES.contains(&status.as_str()) {
                c.error(
                    path::join(path, "grpcStatus"),
                    format!(
                        "gRPC status {} is not supported. See \
                         https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list \
                         of supported codes, for example 'NOT_FOUND'",
                        quote(status)
                    ),
                );
            }
        }
        Some(ErrorType::Http2Error(_)) => {
            c.error(
                path::join(path, "http2Error"),
                "HTTP/2 abort fault injection not supported yet",
            );
        }
        Some(ErrorType::HttpStatus(status)) => {
            if let Err(message) = validate_http_status(i64::from(*status)) {
                c.error(path::join(path, "httpStatus"), message);
            }
        }
        _ => c.warning(path, "abort configured, but error type not set"),
    }
}

fn fault_delay(c: &mut Checker<'_>, path: &str, delay: &Delay) {
    percentage(c, path, delay.percentage.as_ref());
    match &delay.http_delay_type {
        Some(HttpDelayType::FixedDelay(d)) => duration(c, &path::join(path, "fixedDelay"), d),
        Some(HttpDelayType::ExponentialDelay(d)) => {
            let at = path::join(path, "exponentialDelay");
            duration(c, &at, d);
            c.error(at, "exponentialDelay not supported yet");
        }
        _ => {}
    }
}

/// C-12 at `path`.
fn duration(c: &mut Checker<'_>, path: &str, d: &Duration) {
    if let Err(message) = common::validate_duration(d) {
        c.error(path, message);
    }
}

/// V-15 `validateHTTPMirrors`.
fn http_mirrors(c: &mut Checker<'_>, path: &str, mirrors: &[HttpMirrorPolicy]) {
    for (i, mirror) in mirrors.iter().enumerate() {
        let at = path::index(path, i);
        let Some(destination) = &mirror.destination else {
            c.error(
                path::join(&at, "destination"),
                "destination is required for mirrors",
            );
            continue;
        };
        destination_at(c, &path::join(&at, "destination"), Some(destination));
        if let Some(percentage) = &mirror.percentage {
            let value = percentage.value;
            let at = path::join(&at, "percentage.value");
            if value > 100.0 {
                c.error(
                    at.clone(),
                    format!("mirror percentage must have a max value of 100 (it has {value:.6})"),
                );
            }
            if value < 0.0 {
                c.error(
                    at,
                    format!("mirror percentage must have a min value of 0 (it has {value:.6})"),
                );
            }
        }
    }
}

/// V-16 `validateHTTPRedirect`: Istio reports the first failure only.
fn http_redirect(
    c: &mut Checker<'_>,
    path: &str,
    redirect: &HttpRedirect,
    matches: &[HttpMatchRequest],
) {
    if let Some((field, message)) = redirect_failure(redirect, matches) {
        c.error(path::join(path, field), message);
    }
}

fn redirect_failure(
    redirect: &HttpRedirect,
    matches: &[HttpMatchRequest],
) -> Option<(&'static str, String)> {
    if !redirect.uri.is_empty() && !redirect.prefix_rewrite.is_empty() {
        return Some((
            "",
            "redirect may only specify one of uri or prefix_rewrite".to_owned(),
        ));
    }
    if !redirect.prefix_rewrite.is_empty()
        && matches.iter().any(|m| {
            m.uri
                .as_ref()
                .is_some_and(|u| !matches!(u, StringMatch::Prefix(_)))
        })
    {
        return Some((
            "prefixRewrite",
            "redirect prefix_rewrite requires all URI matches to use prefix match type".to_owned(),
        ));
    }
    if redirect.uri.is_empty()
        && redirect.prefix_rewrite.is_empty()
        && redirect.authority.is_empty()
        && redirect.redirect_port.is_none()
        && redirect.scheme.is_empty()
    {
        return Some((
            "",
            "redirect must specify URI, authority, scheme, or port".to_owned(),
        ));
    }
    let code = redirect.redirect_code;
    if code != 0 && !(300..=399).contains(&code) {
        return Some((
            "redirectCode",
            format!("{code} is not a valid redirect code, must be 3xx"),
        ));
    }
    if !redirect.scheme.is_empty() && redirect.scheme != "http" && redirect.scheme != "https" {
        return Some((
            "scheme",
            r#"invalid redirect scheme, must be "http" or "https""#.to_owned(),
        ));
    }
    if let Some(RedirectPort::Port(port)) = redirect.redirect_port
        && port > 0
        && let Err(message) = common::validate_port_number(i64::from(port))
    {
        return Some(("port", message.into()));
    }
    None
}

/// V-17 `validateHTTPDirectResponse`.
fn http_direct_response(c: &mut Checker<'_>, path: &str, response: &HttpDirectResponse) {
    if let Some(body) = &response.body {
        let at = path::join(path, "body");
        let size = match body {
            HttpBody::String(s) => s.len(),
            HttpBody::Bytes(b) => match decode_proto_bytes(b) {
                Ok(bytes) => bytes.len(),
                Err(_) => {
                    c.error(path::join(&at, "bytes"), "bad Bytes: illegal base64 data");
                    0
                }
            },
            _ => 0,
        };
        if size > DIRECT_RESPONSE_MAX {
            c.error(
                at,
                "large direct_responses may impact control plane performance, must be less than 1MB",
            );
        } else if size > DIRECT_RESPONSE_WARN {
            c.warning(
                at,
                "large direct_responses may impact control plane performance",
            );
        }
    }
    if let Err(message) = validate_http_status(i64::from(response.status)) {
        c.error(path::join(path, "status"), message);
    }
}

/// Whether Go's `http.StatusText` knows the code.
fn is_known_http_status(code: i64) -> bool {
    matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=305
            | 307
            | 308
            | 400..=418
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    )
}

/// V-18 `agent.ValidateHTTPRetry`.
fn http_retry(c: &mut Checker<'_>, path: &str, retries: &HttpRetry) {
    if retries.attempts < 0 {
        c.error(path::join(path, "attempts"), "attempts cannot be negative");
    }
    if retries.attempts == 0
        && (retries.per_try_timeout.is_some()
            || !retries.retry_on.is_empty()
            || retries.retry_remote_localities.is_some())
    {
        c.error(
            path::join(path, "attempts"),
            "http retry policy configured when attempts are set to 0 (disabled)",
        );
    }
    if let Some(d) = &retries.per_try_timeout {
        duration(c, &path::join(path, "perTryTimeout"), d);
    }
    if !retries.retry_on.is_empty() {
        for policy in retries.retry_on.split(',') {
            // Go's `strconv.Atoi` then `http.StatusText`: an optional sign and digits.
            let known_code = policy.parse::<i64>().is_ok_and(is_known_http_status);
            if !known_code && !RETRY_ON_POLICIES.contains(&policy) {
                c.error(
                    path::join(path, "retryOn"),
                    format!("{} is not a valid retryOn policy", quote(policy)),
                );
            }
        }
    }
    if let Some(d) = &retries.backoff {
        duration(c, &path::join(path, "backoff"), d);
    }
}

/// V-19 `validateHTTPRewrite`: the first failure only.
fn http_rewrite(c: &mut Checker<'_>, path: &str, rewrite: &HttpRewrite) {
    if !rewrite.uri.is_empty() && rewrite.uri_regex_rewrite.is_some() {
        c.error(
            path,
            "rewrite may only contain one of URI or UriRegexRewrite",
        );
        return;
    }
    if rewrite.uri.is_empty() && rewrite.uri_regex_rewrite.is_none() && rewrite.authority.is_empty()
    {
        c.error(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of \
             URI or UriRegexRewrite may be specified",
        );
        return;
    }
    if let Some(regex_rewrite) = &rewrite.uri_regex_rewrite {
        let at = path::join(path, "uriRegexRewrite");
        let found = c.isolated(|c| uri_regex_rewrite(c, &at, regex_rewrite));
        for d in found.into_vec() {
            c.error(d.path, format!("UriRegexRewrite has errors: {}", d.message));
        }
    }
}

/// `validateURIRegexRewrite`.
fn uri_regex_rewrite(c: &mut Checker<'_>, path: &str, rewrite: &RegexRewrite) {
    if rewrite.r#match.is_empty() || rewrite.rewrite.is_empty() {
        c.error(
            path,
            "UriRegexRewrite requires both Rewrite and Match fields to be specified",
        );
        return;
    }
    c.regex(&path::join(path, "match"), &rewrite.r#match);
}

/// V-20 `validateDestination`.
fn destination_at(c: &mut Checker<'_>, path: &str, destination: Option<&Destination>) {
    let Some(destination) = destination else {
        return;
    };
    let host_path = path::join(path, "host");
    if destination.host == "*" {
        c.error(host_path, "invalid destination host *");
    } else if let Err(message) = common::validate_wildcard_domain(&destination.host) {
        c.error(host_path, message);
    }
    if !destination.subset.is_empty() && !common::is_dns1123_label(&destination.subset) {
        c.error(
            path::join(path, "subset"),
            format!("subset name is invalid: {}", destination.subset),
        );
    }
    if let Some(port) = &destination.port
        && let Err(message) = common::validate_port_number(i64::from(port.number))
    {
        c.error(path::join(path, "port.number"), message);
    }
}

/// V-21 `validateHTTPRouteDestinations`.
fn http_route_destinations(
    c: &mut Checker<'_>,
    path: &str,
    routes: &[HttpRouteDestination],
    gateway_semantics: bool,
) {
    let mut total: i32 = 0;
    for (i, route) in routes.iter().enumerate() {
        let at = path::index(path, i);
        if route.destination.is_none() {
            c.error(path::join(&at, "destination"), "destination is required");
        }
        header_operations(c, &path::join(&at, "headers"), route.headers.as_ref());
        if !gateway_semantics {
            destination_at(
                c,
                &path::join(&at, "destination"),
                route.destination.as_ref(),
            );
        }
        weight(c, &at, route.weight);
        total = total.wrapping_add(route.weight);
    }
    if routes.len() > 1 && total == 0 {
        c.error(path, "total destination weight = 0");
    }
}

/// V-21 for TCP and TLS routes (`validateRouteDestinations`).
fn route_destinations(
    c: &mut Checker<'_>,
    path: &str,
    routes: &[RouteDestination],
    gateway_semantics: bool,
) {
    let mut total: i32 = 0;
    for (i, route) in routes.iter().enumerate() {
        let at = path::index(path, i);
        if route.destination.is_none() {
            c.error(path::join(&at, "destination"), "destination is required");
        }
        if !gateway_semantics {
            destination_at(
                c,
                &path::join(&at, "destination"),
                route.destination.as_ref(),
            );
        }
        weight(c, &at, route.weight);
        total = total.wrapping_add(route.weight);
    }
    if routes.len() > 1 && total == 0 {
        c.error(path, "total destination weight = 0");
    }
}

fn weight(c: &mut Checker<'_>, path: &str, weight: i32) {
    if weight < 0 {
        c.error(path::join(path, "weight"), format!("weight {weight} < 0"));
    }
}

// ---------------------------------------------------------------------------------------------
// TLS and TCP routes (V-23 … V-28)
// ---------------------------------------------------------------------------------------------

fn tls_route(
    c: &mut Checker<'_>,
    path: &str,
    route: &TlsRoute,
    vs: &VirtualService,
    gateway_semantics: bool,
) {
    let matches_path = path::join(path, "match");
    if route.r#match.is_empty() {
        c.error(
            matches_path.clone(),
            "TLS route must have at least one match condition",
        );
    }
    for (i, m) in route.r#match.iter().enumerate() {
        tls_match(c, &path::index(&matches_path, i), m, vs);
    }
    let routes_path = path::join(path, "route");
    if route.route.is_empty() {
        c.error(routes_path.clone(), "TLS route is required");
    }
    route_destinations(c, &routes_path, &route.route, gateway_semantics);
}

fn tls_match(c: &mut Checker<'_>, path: &str, m: &TlsMatchAttributes, vs: &VirtualService) {
    let sni_path = path::join(path, "sniHosts");
    if m.sni_hosts.is_empty() {
        c.error(sni_path, "TLS match must have at least one SNI host");
    } else {
        for (i, sni) in m.sni_hosts.iter().enumerate() {
            sni_host(c, &path::index(&sni_path, i), sni, vs);
        }
    }
    l4_match_common(c, path, &m.destination_subnets, m.port, &m.source_labels);
    // Here the legacy gateway-name warning is kept.
    gateway_names(c, &path::join(path, "gateways"), &m.gateways, false);
}

/// V-24 `validateSniHost`.
fn sni_host(c: &mut Checker<'_>, path: &str, sni: &str, vs: &VirtualService) {
    let checked = if is_gateway(vs) {
        validate_wildcard_domain_for_gateway(true, sni)
    } else {
        common::validate_wildcard_domain(sni)
    };
    if let Err(message) = checked {
        if common::is_ip_address(sni) {
            c.warning(
                path,
                format!(
                    "using an IP address ({}) goes against SNI spec and most clients do not \
                     support this",
                    quote(sni)
                ),
            );
        } else {
            c.error(path, message);
        }
        return;
    }
    if !vs.hosts.iter().any(|h| host::subset_of(sni, h)) {
        c.error(
            path,
            format!(
                "SNI host {} is not a compatible subset of any of the virtual service hosts: [{}]",
                quote(sni),
                vs.hosts.join(", ")
            ),
        );
    }
}

/// Destination subnets, port and source labels of a TLS or TCP match.
fn l4_match_common(
    c: &mut Checker<'_>,
    path: &str,
    subnets: &[String],
    port: u32,
    labels: &BTreeMap<String, String>,
) {
    let subnets_path = path::join(path, "destinationSubnets");
    for (i, subnet) in subnets.iter().enumerate() {
        if let Err(message) = common::validate_ip_subnet(subnet) {
            c.error(path::index(&subnets_path, i), message);
        }
    }
    if port != 0
        && let Err(message) = common::validate_port_number(i64::from(port))
    {
        c.error(path::join(path, "port"), message);
    }
    if let Err(message) = common::validate_labels(labels) {
        c.error(path::join(path, "sourceLabels"), message);
    }
}

fn tcp_route(c: &mut Checker<'_>, path: &str, route: &TcpRoute, gateway_semantics: bool) {
    let matches_path = path::join(path, "match");
    for (i, m) in route.r#match.iter().enumerate() {
        tcp_match(c, &path::index(&matches_path, i), m);
    }
    let routes_path = path::join(path, "route");
    if route.route.is_empty() {
        c.error(routes_path.clone(), "TCP route is required");
    }
    route_destinations(c, &routes_path, &route.route, gateway_semantics);
}

fn tcp_match(c: &mut Checker<'_>, path: &str, m: &L4MatchAttributes) {
    l4_match_common(c, path, &m.destination_subnets, m.port, &m.source_labels);
    gateway_names_errors(c, &path::join(path, "gateways"), &m.gateways);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::crd::{CRD_DURATION, REQUIRED};
    use super::*;
    use serde_json::{Value, json};

    fn vs(spec: Value) -> VirtualService {
        serde_json::from_value(spec).unwrap()
    }

    fn check(spec: Value) -> Diagnostics {
        validate_virtual_service(&vs(spec), &Context::new("default", "vs"))
    }

    fn route(spec: Value) -> HttpRoute {
        serde_json::from_value(spec).unwrap()
    }

    fn errors(d: &Diagnostics) -> Vec<String> {
        d.errors().map(ToString::to_string).collect()
    }

    #[test]
    fn gateway_names_stop_after_the_first_entry_without_a_slash() {
        let base = json!({"hosts": ["a.example.com"], "http": [{"route": [{"destination": {"host": "a"}}]}]});
        let mut ok = base.clone();
        ok["gateways"] = json!(["mesh", "b@d"]);
        assert!(check(ok).is_valid());
        let mut bad = base.clone();
        bad["gateways"] = json!(["b@d", "mesh"]);
        assert!(!check(bad).is_valid());
        let mut wildcard_name = base;
        wildcard_name["gateways"] = json!(["ns1/*"]);
        let found = check(wildcard_name);
        assert!(
            errors(&found)
                .iter()
                .any(|e| e.contains("invalid value for gateway name")),
            "{found}"
        );
    }

    #[test]
    fn legacy_gateway_name_warns_with_the_recommended_form() {
        let found = check(json!({
            "hosts": ["a.example.com"], "gateways": ["gw.ns"],
            "http": [{"route": [{"destination": {"host": "a"}}]}]
        }));
        assert!(found.is_valid(), "{found}");
        assert!(
            found.warnings().any(|w| w
                .message
                .contains(r#"prefer the <namespace>/<name> format: "ns/gw""#)),
            "{found}"
        );
    }

    #[test]
    fn jwt_claim_routing_requires_a_gateway() {
        let spec = |gateways: Value| {
            json!({
                "hosts": ["a.example.com"], "gateways": gateways,
                "http": [{"match": [{"headers": {"@request.auth.claims.group": {"exact": "x"}}}],
                          "route": [{"destination": {"host": "a"}}]}]
            })
        };
        assert!(check(spec(json!(["gw"]))).is_valid());
        let found = check(spec(json!(["gw", "mesh"])));
        assert!(
            found
                .errors()
                .any(|e| e.message.contains("JWT claim based routing")
                    && e.path == "spec.http[0].match[0].headers.@request.auth.claims.group"),
            "{found}"
        );
    }

    #[test]
    fn hosts_accept_ips_and_reject_star_on_the_mesh_only() {
        let spec = |hosts: Value, gateways: Value| json!({"hosts": hosts, "gateways": gateways, "http": [{"route": [{"destination": {"host": "a"}}]}]});
        assert!(check(spec(json!(["10.0.0.1", "reviews"]), json!([]))).is_valid());
        assert!(!check(spec(json!(["*"]), json!([]))).is_valid());
        assert!(!check(spec(json!(["*"]), json!(["gw", "mesh"]))).is_valid());
        assert!(check(spec(json!(["*"]), json!(["gw"]))).is_valid());
        // Duplicates are case-sensitive suffix matches.
        assert!(!check(spec(json!(["*.foo.bar", "*.bar"]), json!([]))).is_valid());
        assert!(check(spec(json!(["a.x", "A.x"]), json!([]))).is_valid());
    }

    #[test]
    fn sni_hosts_of_a_virtual_service_without_gateways_are_checked_as_gateway_bound() {
        let spec = |gateways: Value| {
            json!({
                "hosts": ["*.mesh"],
                "gateways": gateways,
                "tls": [{"match": [{"sniHosts": ["outbound_.80_._.e2e.foobar.mesh"]}],
                         "route": [{"destination": {"host": "a"}}]}]
            })
        };
        // No gateways: the generated SNI form is accepted, as for gateway-bound services.
        let found = check(spec(json!([])));
        assert!(found.is_valid(), "{found}");
        // `mesh` listed: plain wildcard-domain rules, and `_` is not allowed in a label.
        assert!(!check(spec(json!(["mesh"]))).is_valid());
        let ip = check(json!({
            "hosts": ["a.example.com"],
            "tls": [{"match": [{"sniHosts": ["1.2.3.4"]}], "route": [{"destination": {"host": "a"}}]}]
        }));
        assert!(ip.is_valid() && ip.has_warnings(), "{ip}");
        let not_subset = check(json!({
            "hosts": ["a.example.com"],
            "tls": [{"match": [{"sniHosts": ["b.example.com"]}], "route": [{"destination": {"host": "a"}}]}]
        }));
        assert!(!not_subset.is_valid());
    }

    #[test]
    fn delegate_virtual_service_rules() {
        let found = check(
            json!({"gateways": ["gw"], "http": [{"route": [{"destination": {"host": "a"}}]}],
                                 "tcp": [{"route": [{"destination": {"host": "a"}}]}]}),
        );
        let errs = errors(&found);
        assert!(
            errs.iter().any(|e| e.contains("must have no gateways")),
            "{found}"
        );
        assert!(errs.iter().any(|e| e.contains("no tcp route")), "{found}");
        // Routes of a delegate must not delegate.
        let nested = check(json!({"http": [{"delegate": {"name": "x"}}]}));
        assert!(!nested.is_valid());
    }

    #[test]
    fn root_routes_skip_the_other_conflict_checks() {
        let root = route(
            json!({"delegate": {"name": "child"}, "fault": {"abort": {"httpStatus": 503}},
                                "directResponse": {"status": 200}, "mirror": {"host": "m"},
                                "mirrors": [{"destination": {"host": "n"}}]}),
        );
        let found = validate_http_route(&root, false, false);
        assert!(found.is_valid(), "{found}");
        let with_route = route(
            json!({"delegate": {"name": "child"}, "route": [{"destination": {"host": "a"}}]}),
        );
        assert!(!validate_http_route(&with_route, false, false).is_valid());
        let independent =
            route(json!({"directResponse": {"status": 200}, "rewrite": {"uri": "/x"}}));
        assert!(!validate_http_route(&independent, false, false).is_valid());
    }

    #[test]
    fn abort_without_error_type_warns_alone_but_not_inside_a_route() {
        let abort: Abort = serde_json::from_value(json!({"percentage": {"value": 10}})).unwrap();
        let alone = validate_fault_abort(Some(&abort));
        assert!(alone.is_valid() && alone.has_warnings());
        let r = route(json!({"fault": {"abort": {}}, "route": [{"destination": {"host": "a"}}]}));
        let found = validate_http_route(&r, false, false);
        assert!(found.is_empty(), "{found}");
    }

    #[test]
    fn http_status_range_is_200_to_600_inclusive() {
        assert!(validate_http_status(199).is_err());
        assert!(validate_http_status(200).is_ok());
        assert!(validate_http_status(600).is_ok());
        assert!(validate_http_status(601).is_err());
    }

    #[test]
    fn redirect_reports_only_the_first_failure() {
        let r: HttpRedirect = serde_json::from_value(
            json!({"uri": "/a", "prefixRewrite": "/b", "redirectCode": 200, "scheme": "ftp"}),
        )
        .unwrap();
        let found = validate_http_redirect(Some(&r));
        assert_eq!(found.len(), 1, "{found}");
        // `port: 0` counts as set; derivePort alone is enough.
        for spec in [
            json!({"port": 0}),
            json!({"derivePort": "FROM_REQUEST_PORT"}),
        ] {
            let r: HttpRedirect = serde_json::from_value(spec).unwrap();
            assert!(validate_http_redirect(Some(&r)).is_valid());
        }
        // prefixRewrite needs prefix uri matches.
        let with_exact = route(
            json!({"match": [{"uri": {"exact": "/a"}}], "redirect": {"prefixRewrite": "/b"}}),
        );
        assert!(!validate_http_route(&with_exact, false, false).is_valid());
        let with_prefix = route(
            json!({"match": [{"uri": {"prefix": "/a"}}, {"method": {"exact": "GET"}}],
                                       "redirect": {"prefixRewrite": "/b"}}),
        );
        assert!(validate_http_route(&with_prefix, false, false).is_valid());
    }

    #[test]
    fn retry_on_is_split_without_trimming_and_knows_go_status_codes() {
        let retry = |on: &str| {
            let r: HttpRetry =
                serde_json::from_value(json!({"attempts": 1, "retryOn": on})).unwrap();
            validate_http_retry(Some(&r)).is_valid()
        };
        assert!(retry("5xx,reset,418,425"));
        assert!(!retry("5xx, reset"));
        assert!(!retry("306"));
        assert!(!retry("5xx,"));
        let zero: HttpRetry =
            serde_json::from_value(json!({"attempts": 0, "retryRemoteLocalities": false})).unwrap();
        assert!(!validate_http_retry(Some(&zero)).is_valid());
        let zero_backoff: HttpRetry =
            serde_json::from_value(json!({"attempts": 0, "backoff": "1s"})).unwrap();
        assert!(validate_http_retry(Some(&zero_backoff)).is_valid());
    }

    #[test]
    fn direct_response_body_sizes_count_decoded_bytes() {
        let response = |body: Value| {
            let r: HttpDirectResponse =
                serde_json::from_value(json!({"status": 200, "body": body})).unwrap();
            validate_http_direct_response(Some(&r))
        };
        assert!(response(json!({"bytes": "aGVsbG8="})).is_empty());
        // 136_536 base64 characters decode to 102_402 bytes: over 100 KiB.
        let big = "YWFh".repeat(34_134);
        let found = response(json!({"bytes": big}));
        assert!(found.is_valid() && found.has_warnings(), "{found}");
        assert!(!response(json!({"bytes": "a$=="})).is_valid());
        for ok in ["aGVsbG8", "aGVsbG8=", "aGVsbA==", "_-8", "aGVs\nbG8\n"] {
            assert!(response(json!({"bytes": ok})).is_valid(), "{ok:?}");
        }
        for bad in ["a===", "aGVsbG8=\n", "+_8="] {
            assert!(!response(json!({"bytes": bad})).is_valid(), "{bad:?}");
        }
    }

    #[test]
    fn weights_only_reject_negatives_and_all_zero_lists() {
        let dests =
            |spec: Value| -> Vec<RouteDestination> { serde_json::from_value(spec).unwrap() };
        assert!(
            validate_route_destinations(&dests(json!([{"destination": {"host": "a"}}])), false)
                .is_valid()
        );
        assert!(
            validate_route_destinations(
                &dests(json!([{"destination": {"host": "a"}, "weight": 550},
                               {"destination": {"host": "b"}, "weight": 500}])),
                false
            )
            .is_valid()
        );
        assert!(
            !validate_route_destinations(
                &dests(json!([{"destination": {"host": "a"}}, {"destination": {"host": "b"}}])),
                false
            )
            .is_valid()
        );
        // Gateway semantics skip the destination check, not the weight check.
        assert!(validate_route_destinations(&dests(json!([{"destination": {}}])), true).is_valid());
    }

    #[test]
    fn cors_max_age_needs_whole_seconds() {
        let cors = |spec: Value| {
            let p: CorsPolicy = serde_json::from_value(spec).unwrap();
            validate_cors_policy(Some(&p)).is_valid()
        };
        assert!(cors(
            json!({"maxAge": "2s", "allowMethods": ["GET", "*"], "allowHeaders": ["*", "a,b"]})
        ));
        assert!(!cors(json!({"maxAge": "1.5s"})));
        assert!(!cors(json!({"allowMethods": ["get"]})));
        assert!(!cors(json!({"allowOrigins": [{"prefix": ""}]})));
        assert!(!cors(json!({"allowOrigins": [{"regex": "(?=a)"}]})));
    }

    #[test]
    fn header_operations_allow_authority_on_requests_only() {
        let r = |headers: Value| {
            let r = route(json!({"headers": headers, "route": [{"destination": {"host": "a"}}]}));
            validate_http_route(&r, false, false).is_valid()
        };
        assert!(r(
            json!({"request": {"set": {"Host": "x", "x-a": "%HOSTNAME%"}}})
        ));
        assert!(!r(json!({"request": {"set": {":path": "x"}}})));
        assert!(!r(json!({"request": {"remove": ["host"]}})));
        assert!(!r(json!({"response": {"set": {"host": "x"}}})));
        // The authority is rewritten in one place at most.
        let both = route(
            json!({"rewrite": {"authority": "a"}, "headers": {"request": {"set": {":authority": "b"}}},
                                "route": [{"destination": {"host": "a"}}]}),
        );
        assert!(!validate_http_route(&both, false, false).is_valid());
    }

    #[test]
    fn rewrite_and_regex_rewrite_rules() {
        let rw = |spec: Value| {
            let r: HttpRewrite = serde_json::from_value(spec).unwrap();
            validate_http_rewrite(Some(&r)).is_valid()
        };
        assert!(rw(json!({"authority": "a"})));
        assert!(!rw(json!({})));
        assert!(!rw(
            json!({"uri": "/a", "uriRegexRewrite": {"match": "a", "rewrite": "b"}})
        ));
        assert!(!rw(json!({"uriRegexRewrite": {"match": "a"}})));
        assert!(!rw(
            json!({"uriRegexRewrite": {"match": "(a", "rewrite": "b"}})
        ));
    }

    #[test]
    fn mirror_percent_is_deprecated_and_capped() {
        let r = route(
            json!({"mirror": {"host": "m"}, "mirrorPercent": 0, "route": [{"destination": {"host": "a"}}]}),
        );
        let found = validate_http_route(&r, false, false);
        assert!(found.is_valid() && found.has_warnings(), "{found}");
        let r = route(
            json!({"mirror": {"host": "m"}, "mirrorPercent": 101, "route": [{"destination": {"host": "a"}}]}),
        );
        assert!(!validate_http_route(&r, false, false).is_valid());
        let r = route(
            json!({"mirrors": [{"destination": {"host": "m"}, "percentage": {"value": -1}}],
                             "route": [{"destination": {"host": "a"}}]}),
        );
        assert!(!validate_http_route(&r, false, false).is_valid());
    }

    #[test]
    fn duplicate_matches_ignore_names_and_warn() {
        let found = check(json!({
            "hosts": ["a"],
            "http": [
                {"match": [{"name": "one", "uri": {"exact": "/a"}}], "route": [{"destination": {"host": "a"}}]},
                {"name": "second", "match": [{"name": "two", "uri": {"exact": "/a"}}],
                 "route": [{"destination": {"host": "a"}}]}
            ]
        }));
        assert!(found.is_valid(), "{found}");
        let warnings: Vec<_> = found.warnings().map(|w| w.message.clone()).collect();
        assert!(
            warnings.contains(&r#"virtualService rule "second" match "two" is not used (duplicate/overlapping match in rule #0)"#.to_owned()),
            "{warnings:?}"
        );
        assert!(
            warnings.contains(
                &r#"virtualService rule "second" not used (all matches used by prior rules)"#
                    .to_owned()
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn catch_all_rules_shadow_later_rules() {
        let found = check(json!({
            "hosts": ["a"],
            "tcp": [
                {"route": [{"destination": {"host": "a"}}]},
                {"route": [{"destination": {"host": "b"}}]},
                {"match": [{"port": 80}, {"port": 81}], "route": [{"destination": {"host": "c"}}]}
            ]
        }));
        let warnings: Vec<_> = found.warnings().map(|w| w.message.clone()).collect();
        assert_eq!(
            warnings,
            [
                "virtualService rule #1 not used (only the last rule can have no matches)",
                "virtualService rule #2 not used (route without matches defined before)",
                "virtualService rule #2 not used (route without matches defined before)",
            ]
        );
    }

    #[test]
    fn prefix_matches_covered_by_an_earlier_prefix_warn() {
        let found = check(json!({
            "hosts": ["a"],
            "http": [
                {"match": [{"uri": {"prefix": "/api/v1/product"}}], "route": [{"destination": {"host": "a"}}]},
                {"match": [{"uri": {"prefix": "/api/v1/products"}, "method": {"exact": "GET"}}],
                 "route": [{"destination": {"host": "b"}}]},
                {"match": [{"uri": {"prefix": "/api/v1/productsx"}, "method": {"exact": "POST"}}],
                 "route": [{"destination": {"host": "c"}}]}
            ]
        }));
        let warnings: Vec<_> = found.warnings().map(|w| w.message.clone()).collect();
        assert_eq!(
            warnings,
            [
                "virtualService rule #1 match #0 of prefix /api/v1/products is not used \
              (duplicate/overlapping match in rule #0 of prefix /api/v1/product on #0)"
            ],
        );
    }

    #[test]
    fn wildcard_domain_for_gateway_accepts_generated_sni_names() {
        assert!(
            validate_wildcard_domain_for_gateway(true, "outbound_.80_._.e2e.foobar.mesh").is_ok()
        );
        assert!(validate_wildcard_domain_for_gateway(true, "outbound_.80_._").is_err());
        assert!(validate_wildcard_domain_for_gateway(true, "outbound_.xx_._.e2e").is_err());
        assert!(
            validate_wildcard_domain_for_gateway(false, "outbound_.80_._.e2e.foobar.mesh").is_err()
        );
        assert!(validate_wildcard_domain_for_gateway(false, "*.bar.com").is_ok());
        assert!(validate_wildcard_domain_for_gateway(false, "").is_err());
    }

    #[test]
    fn crd_schema_rejects_what_the_webhook_skips_under_gateway_semantics() {
        let spec = vs(json!({"hosts": ["a"], "http": [{"route": [{"destination": {}}]}]}));
        let mut ctx = Context::new("default", "vs");
        ctx.gateway_semantics = true;
        assert!(validate_virtual_service(&spec, &ctx).is_valid());
        ctx.crd_schema = true;
        let found = validate_virtual_service(&spec, &ctx);
        assert!(
            found.errors().any(
                |e| e.path == "spec.http[0].route[0].destination.host" && e.message == REQUIRED
            ),
            "{found}"
        );
        let sub_ms = vs(
            json!({"hosts": ["a"], "http": [{"timeout": "0.0001s", "route": [{"destination": {"host": "a"}}]}]}),
        );
        assert!(
            validate_virtual_service(&sub_ms, &ctx)
                .errors()
                .any(|e| e.message == CRD_DURATION)
        );
    }

    #[test]
    fn metadata_annotations_stop_validation() {
        let mut ctx = Context::new("default", "vs");
        ctx.annotations
            .insert("internal.istio.io/parents".to_owned(), "x".to_owned());
        let found = validate_virtual_service(&vs(json!({})), &ctx);
        assert_eq!(found.len(), 1, "{found}");
    }
}
