//! VirtualService HTTP rules → Envoy routes (`route.go: BuildHTTPRoutesForVirtualService`,
//! `TranslateRoute`, `TranslateRouteMatch`, `ApplyRedirect`, …) and delegate merging
//! (`virtualservice.go: mergeHTTPRoute`).

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_model::StringMatch;
use portcullis_model::virtual_service::{
    Destination, ErrorType, Headers, HttpDelayType, HttpMatchRequest, HttpRoute as VsHttpRoute,
    HttpRouteDestination, RedirectPort, RedirectPortSelection, UnmatchedPreflights,
};
use portcullis_route_match::{
    HeaderMatch, PathMatch, QueryParamMatch, Route, RouteMatch, ValueMatch,
};

use crate::build::{Index, VsEntry};
use crate::plan::{
    CorsPolicy, DirectResponse, Fault, FaultAbort, Forward, HashPolicy, HeaderOps, HttpRoute,
    Mirror, OriginMatch, PREVIOUS_HOSTS_PREDICATE, PathRewrite, Redirect, RedirectPath,
    RetryPolicy, RouteAction, RouteDestination,
};

/// Where routes are being built: the port and gateway names the config-time conditions are
/// evaluated against.
pub(crate) struct RouteCtx<'a> {
    /// The server port (gateway) or service port (sidecar).
    pub listen_port: u32,
    /// The gateway names (`ns/name`), or `mesh` for sidecars.
    pub gateway_names: &'a [String],
    /// Whether the server has TLS settings (redirect port elision).
    pub server_tls: bool,
}

/// Why one rule could not be translated.
#[derive(Debug)]
pub(crate) enum RouteProblem {
    /// Envoy would reject the route configuration holding this route.
    Reject(String),
}

/// Routes for one VirtualService at one place, with catch-all truncation. `Ok(vec![])` means the
/// VS yields no route here (it then creates no virtual host).
pub(crate) fn build_http_routes(
    index: &Index<'_>,
    ctx: &RouteCtx<'_>,
    vs: &VsEntry,
    problems: &mut Vec<(String, RouteProblem)>,
) -> Vec<Route<HttpRoute>> {
    let mut out = Vec::new();
    'rules: for (ri, rule) in vs.http.iter().enumerate() {
        if rule.r#match.is_empty() {
            match translate_route(index, ctx, vs, rule, None) {
                Ok(route) => out.push(route),
                Err(p) => problems.push((format!("spec.http[{ri}]"), p)),
            }
            break 'rules;
        }
        for (mi, m) in rule.r#match.iter().enumerate() {
            if !keep_match(index, ctx, m) {
                continue;
            }
            match translate_route(index, ctx, vs, rule, Some(m)) {
                Ok(route) => {
                    let catch_all = is_catch_all(&route.matches);
                    out.push(route);
                    if catch_all {
                        break 'rules;
                    }
                }
                Err(p) => problems.push((format!("spec.http[{ri}].match[{mi}]"), p)),
            }
        }
    }
    out
}

/// The config-time conditions of a match block: port, gateways, source labels/namespace.
fn keep_match(index: &Index<'_>, ctx: &RouteCtx<'_>, m: &HttpMatchRequest) -> bool {
    if m.port != 0 && m.port != ctx.listen_port {
        return false;
    }
    if !m.gateways.is_empty() {
        return m.gateways.iter().any(|g| ctx.gateway_names.contains(g));
    }
    if !m.source_labels.is_empty() && !index.proxy.matches_labels(&m.source_labels) {
        return false;
    }
    if !m.source_namespace.is_empty() && m.source_namespace != index.proxy.namespace {
        return false;
    }
    true
}

/// Istio's `IsCatchAllRoute`.
pub(crate) fn is_catch_all(m: &RouteMatch) -> bool {
    let path_all = match &m.path {
        Some(PathMatch::Prefix { prefix, .. }) => prefix == "/",
        Some(PathMatch::Regex(r)) => r == ".*",
        Some(_) => false,
        None => true,
    };
    path_all && m.headers.is_empty() && m.query_params.is_empty()
}

fn value_match(m: &StringMatch) -> ValueMatch {
    match m {
        StringMatch::Exact(s) => ValueMatch::Exact(s.clone()),
        StringMatch::Prefix(s) => ValueMatch::Prefix(s.clone()),
        StringMatch::Regex(r) if r == "*" => ValueMatch::Present,
        StringMatch::Regex(r) => ValueMatch::Regex(r.clone()),
        _ => ValueMatch::Present,
    }
}

/// `TranslateRouteMatch`.
fn translate_match(m: Option<&HttpMatchRequest>) -> RouteMatch {
    let Some(m) = m else {
        return RouteMatch::any().with_path(PathMatch::prefix("/"));
    };
    let path = match &m.uri {
        Some(StringMatch::Exact(p)) => PathMatch::exact(p.clone()).ignore_case(m.ignore_uri_case),
        Some(StringMatch::Prefix(p)) => PathMatch::prefix(p.clone()).ignore_case(m.ignore_uri_case),
        Some(StringMatch::Regex(r)) => PathMatch::regex(r.clone()),
        _ => PathMatch::prefix("/").ignore_case(m.ignore_uri_case),
    };
    let mut out = RouteMatch::any().with_path(path);
    for (name, sm) in &m.headers {
        out = out.with_header(HeaderMatch::new(header_name(name), value_match(sm)));
    }
    for (name, sm) in &m.without_headers {
        out = out.with_header(HeaderMatch::without(header_name(name), value_match(sm)));
    }
    for (name, sm) in [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ] {
        if let Some(sm) = sm {
            out = out.with_header(HeaderMatch::new(name, value_match(sm)));
        }
    }
    for (name, sm) in &m.query_params {
        out = out.with_query_param(QueryParamMatch::new(name.clone(), value_match(sm)));
    }
    out
}

/// Header names as matched: lower-case; JWT claim keys stay as written (they never match a
/// request header, like a metadata matcher without RequestAuthentication).
fn header_name(name: &str) -> String {
    if name.starts_with("@request.auth.claims") {
        name.to_owned()
    } else {
        name.to_ascii_lowercase()
    }
}

fn route_name(rule: &VsHttpRoute, m: Option<&HttpMatchRequest>) -> String {
    let match_name = m.map(|m| m.name.as_str()).unwrap_or("");
    match (rule.name.is_empty(), match_name.is_empty()) {
        (false, false) => format!("{}.{match_name}", rule.name),
        (false, true) => rule.name.clone(),
        (true, false) => match_name.to_owned(),
        (true, true) => String::new(),
    }
}

fn to_std(d: Option<portcullis_model::Duration>) -> Option<Duration> {
    d.and_then(|d| d.to_std())
}

/// `value * 10000` per million, as Istio's `translatePercentToFractionalPercent`.
pub(crate) fn percent_per_million(value: f64) -> u32 {
    let v = (value * 10_000.0).clamp(0.0, f64::from(u32::MAX));
    // Truncation toward zero, like Go's uint32(float) conversion.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let out = v as u32;
    out
}

fn translate_route(
    index: &Index<'_>,
    ctx: &RouteCtx<'_>,
    vs: &VsEntry,
    rule: &VsHttpRoute,
    m: Option<&HttpMatchRequest>,
) -> Result<Route<HttpRoute>, RouteProblem> {
    let matches = translate_match(m);
    let matched_prefix = match &matches.path {
        Some(PathMatch::Prefix { prefix, .. }) => Some(prefix.clone()),
        _ => None,
    };
    let (rule_req, rule_host) = header_ops(rule.headers.as_ref(), true);
    let (rule_resp, _) = header_ops(rule.headers.as_ref(), false);
    let rewrite_host = rule
        .rewrite
        .as_ref()
        .map(|r| r.authority.clone())
        .filter(|a| !a.is_empty())
        .or(rule_host);

    let mut request_headers = rule_req;
    let mut response_headers = rule_resp;
    let mut hash_policy = Vec::new();
    let action = if let Some(redirect) = &rule.redirect {
        let status: u16 = match redirect.redirect_code {
            0 | 301 => 301,
            302 => 302,
            303 => 303,
            307 => 307,
            308 => 308,
            other => {
                return Err(RouteProblem::Reject(format!(
                    "redirect code {other} is not one of 301, 302, 303, 307, 308: Envoy rejects a route without action"
                )));
            }
        };
        let scheme = (!redirect.scheme.is_empty()).then(|| redirect.scheme.clone());
        let mut port = match redirect.redirect_port {
            Some(RedirectPort::Port(p)) => Some(p),
            Some(RedirectPort::DerivePort(RedirectPortSelection::FromRequestPort)) => {
                Some(ctx.listen_port)
            }
            _ => None,
        };
        if let Some(p) = port {
            let effective_scheme =
                scheme
                    .as_deref()
                    .unwrap_or(if ctx.server_tls { "https" } else { "http" });
            if (p == 80 && effective_scheme == "http") || (p == 443 && effective_scheme == "https")
            {
                port = None;
            }
        }
        let path = if !redirect.uri.is_empty() {
            RedirectPath::Replace(redirect.uri.clone())
        } else if !redirect.prefix_rewrite.is_empty() {
            RedirectPath::Prefix {
                matched_prefix,
                replacement: redirect.prefix_rewrite.clone(),
            }
        } else {
            RedirectPath::Keep
        };
        RouteAction::Redirect(Redirect {
            status,
            scheme,
            host: (!redirect.authority.is_empty()).then(|| redirect.authority.clone()),
            port,
            path,
        })
    } else if let Some(dr) = &rule.direct_response {
        let body = match &dr.body {
            Some(portcullis_model::virtual_service::HttpBody::String(s)) => Some(s.clone()),
            Some(portcullis_model::virtual_service::HttpBody::Bytes(b)) => {
                Some(decode_base64(b).unwrap_or_default())
            }
            _ => None,
        };
        RouteAction::DirectResponse(DirectResponse {
            status: u16::try_from(dr.status).unwrap_or(500),
            body,
        })
    } else if !rule.route.is_empty() {
        let dests: Vec<&HttpRouteDestination> = if rule.route.len() == 1 {
            rule.route.iter().collect()
        } else {
            rule.route.iter().filter(|d| d.weight > 0).collect()
        };
        let weighted = rule.route.len() > 1;
        let mut destinations = Vec::new();
        let mut host_rewrite = rewrite_host;
        for d in &dests {
            let Some(dest) = &d.destination else { continue };
            let cluster = index.cluster_name(dest, &vs.namespace, ctx.listen_port);
            let (dreq, dhost) = header_ops(d.headers.as_ref(), true);
            let (dresp, _) = header_ops(d.headers.as_ref(), false);
            hash_policy.extend(index.hash_policy_for(dest, &vs.namespace));
            if weighted {
                destinations.push(RouteDestination {
                    cluster,
                    weight: u32::try_from(d.weight).unwrap_or(0),
                    request_headers: dreq,
                    response_headers: dresp,
                    host_rewrite: dhost,
                });
            } else {
                request_headers.extend(&dreq);
                response_headers.extend(&dresp);
                if host_rewrite.is_none() {
                    host_rewrite = dhost;
                }
                destinations.push(RouteDestination {
                    cluster,
                    weight: u32::try_from(d.weight).unwrap_or(0),
                    request_headers: HeaderOps::default(),
                    response_headers: HeaderOps::default(),
                    host_rewrite: None,
                });
            }
        }
        if destinations.is_empty() {
            return Err(RouteProblem::Reject(
                "no destination with a positive weight".to_owned(),
            ));
        }
        let path_rewrite = rule.rewrite.as_ref().and_then(|r| {
            if let Some(rr) = &r.uri_regex_rewrite {
                Some(PathRewrite::Regex {
                    pattern: rr.r#match.clone(),
                    substitution: rr.rewrite.clone(),
                })
            } else if !r.uri.is_empty() {
                Some(PathRewrite::Prefix {
                    matched_prefix: matched_prefix.clone(),
                    replacement: r.uri.clone(),
                })
            } else {
                None
            }
        });
        RouteAction::Forward(Forward {
            destinations,
            weighted,
            host_rewrite,
            path_rewrite,
        })
    } else {
        return Err(RouteProblem::Reject(
            "rule has no route, redirect or directResponse".to_owned(),
        ));
    };

    let forwards = matches!(action, RouteAction::Forward(_));
    let retry_policy = if forwards {
        retry_policy(rule, !hash_policy.is_empty())
    } else {
        None
    };
    let timeout = to_std(rule.timeout).unwrap_or(Duration::ZERO);
    let mirrors = if forwards {
        mirrors(index, ctx, vs, rule)
    } else {
        Vec::new()
    };
    Ok(Route::new(
        route_name(rule, m),
        matches,
        HttpRoute {
            name: route_name(rule, m),
            virtual_service: Some(crate::plan::ResourceRef {
                name: vs.name.clone(),
                namespace: vs.namespace.clone(),
            }),
            action,
            request_headers,
            response_headers,
            timeout,
            max_grpc_timeout: timeout,
            retry_policy,
            hash_policy: if forwards { hash_policy } else { Vec::new() },
            fault: rule.fault.as_ref().map(fault),
            cors: rule.cors_policy.as_ref().map(cors),
            mirrors,
        },
    ))
}

/// Request (`request == true`) or response header operations, with `host`/`:authority`
/// set/add turned into an authority rewrite (set wins) and pseudo-headers dropped.
fn header_ops(headers: Option<&Headers>, request: bool) -> (HeaderOps, Option<String>) {
    let ops = headers.and_then(|h| {
        if request {
            h.request.as_ref()
        } else {
            h.response.as_ref()
        }
    });
    let Some(ops) = ops else {
        return (HeaderOps::default(), None);
    };
    let is_host = |k: &str| k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case(":authority");
    let mut host = None;
    if request {
        host = ops
            .set
            .iter()
            .chain(ops.add.iter())
            .find(|(k, _)| is_host(k))
            .map(|(_, v)| v.clone());
    }
    let keep = |k: &str| !(k.starts_with(':') || (request && is_host(k)));
    let out = HeaderOps {
        remove: ops.remove.iter().filter(|k| keep(k)).cloned().collect(),
        set: ops
            .set
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        add: ops
            .add
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    (out, host)
}

/// HTTP status codes Go's `http.StatusText` knows.
fn is_known_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

/// `retry.ConvertPolicy`.
fn retry_policy(rule: &VsHttpRoute, hash_policy: bool) -> Option<RetryPolicy> {
    let mut out = RetryPolicy::istio_default();
    if hash_policy {
        out.retry_host_predicate.clear();
    }
    let Some(r) = &rule.retries else {
        return Some(out);
    };
    if r.attempts <= 0 {
        return None;
    }
    out.num_retries = u32::try_from(r.attempts).unwrap_or(0);
    if !r.retry_on.is_empty() {
        let mut codes = Vec::new();
        let mut parts = Vec::new();
        for part in r
            .retry_on
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match part.parse::<u32>() {
                Ok(code) if is_known_status(code) => codes.push(code),
                _ => parts.push(part),
            }
        }
        out.retry_on = parts.join(",");
        if !codes.is_empty() && !out.retry_on.contains("retriable-status-codes") {
            out.retry_on.push_str(",retriable-status-codes");
        }
        out.retriable_status_codes = codes;
    }
    if let Some(t) = to_std(r.per_try_timeout) {
        out.per_try_timeout = Some(t);
    }
    if let Some(ignore) = r.retry_ignore_previous_hosts {
        out.retry_host_predicate = if ignore {
            vec![PREVIOUS_HOSTS_PREDICATE.to_owned()]
        } else {
            Vec::new()
        };
    }
    out.retry_remote_localities = r.retry_remote_localities == Some(true);
    out.backoff_base_interval = to_std(r.backoff);
    Some(out)
}

fn grpc_code(status: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
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
    if let Ok(n) = status.parse::<u32>() {
        return Some(n);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(status))
        .and_then(|p| u32::try_from(p).ok())
}

/// `TranslateFault`.
fn fault(f: &portcullis_model::virtual_service::HttpFaultInjection) -> Fault {
    let delay = f.delay.as_ref().and_then(|d| {
        let Some(HttpDelayType::FixedDelay(fixed)) = d.http_delay_type else {
            return None;
        };
        let pm = match d.percentage {
            Some(p) => percent_per_million(p.value),
            None => u32::try_from(d.percent.max(0))
                .unwrap_or(0)
                .saturating_mul(10_000),
        };
        Some((fixed.to_std().unwrap_or(Duration::ZERO), pm))
    });
    let abort = f.abort.as_ref().and_then(|a| {
        let per_million = a.percentage.map_or(0, |p| percent_per_million(p.value));
        match &a.error_type {
            Some(ErrorType::HttpStatus(s)) => Some(FaultAbort {
                http_status: u32::try_from(*s).ok(),
                grpc_status: None,
                per_million,
            }),
            Some(ErrorType::GrpcStatus(s)) => Some(FaultAbort {
                http_status: None,
                grpc_status: grpc_code(s),
                per_million,
            }),
            _ => None,
        }
    });
    Fault { delay, abort }
}

/// `TranslateCORSPolicy`.
fn cors(c: &portcullis_model::virtual_service::CorsPolicy) -> CorsPolicy {
    let mut allow_origins: Vec<OriginMatch> = c
        .allow_origin
        .iter()
        .map(|o| OriginMatch::Exact(o.clone()))
        .collect();
    for m in &c.allow_origins {
        match m {
            StringMatch::Exact(s) => allow_origins.push(OriginMatch::Exact(s.clone())),
            StringMatch::Prefix(s) => allow_origins.push(OriginMatch::Prefix(s.clone())),
            StringMatch::Regex(s) => allow_origins.push(OriginMatch::Regex(s.clone())),
            _ => {}
        }
    }
    CorsPolicy {
        allow_origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c
            .max_age
            .and_then(|d| d.to_std())
            .map(|d| d.as_secs().to_string()),
        allow_credentials: c.allow_credentials == Some(true),
        ignore_unmatched_preflights: c.unmatched_preflights == Some(UnmatchedPreflights::Ignore),
    }
}

fn mirrors(index: &Index<'_>, ctx: &RouteCtx<'_>, vs: &VsEntry, rule: &VsHttpRoute) -> Vec<Mirror> {
    let mut out = Vec::new();
    if let Some(dest) = &rule.mirror {
        let per_million = match (rule.mirror_percentage, rule.mirror_percent) {
            (Some(p), _) => percent_per_million(p.value),
            (None, Some(p)) => p.saturating_mul(10_000),
            (None, None) => 1_000_000,
        };
        if per_million > 0 {
            out.push(Mirror {
                cluster: index.cluster_name(dest, &vs.namespace, ctx.listen_port),
                per_million,
            });
        }
    }
    for m in &rule.mirrors {
        let Some(dest) = &m.destination else { continue };
        let per_million = m
            .percentage
            .map_or(1_000_000, |p| percent_per_million(p.value));
        if per_million > 0 {
            out.push(Mirror {
                cluster: index.cluster_name(dest, &vs.namespace, ctx.listen_port),
                per_million,
            });
        }
    }
    out
}

fn decode_base64(input: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in input.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push(u8::try_from((bits >> nbits) & 0xff).ok()?);
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------------
// Delegation

/// Replaces delegate rules of a root VS's `http` list in place (`mergeVirtualServices`).
pub(crate) fn merge_delegates(
    root_namespace: &str,
    http: &[VsHttpRoute],
    find_delegate: &dyn Fn(&str, &str) -> Option<Vec<VsHttpRoute>>,
) -> Vec<VsHttpRoute> {
    let mut out = Vec::with_capacity(http.len());
    for rule in http {
        let Some(delegate) = &rule.delegate else {
            out.push(rule.clone());
            continue;
        };
        let ns = if delegate.namespace.is_empty() {
            root_namespace
        } else {
            delegate.namespace.as_str()
        };
        let Some(leaves) = find_delegate(&delegate.name, ns) else {
            continue;
        };
        for leaf in &leaves {
            if let Some(merged) = merge_http_route(rule, leaf) {
                out.push(merged);
            }
        }
    }
    out
}

fn merge_http_route(root: &VsHttpRoute, leaf: &VsHttpRoute) -> Option<VsHttpRoute> {
    let matches = merge_matches(&root.r#match, &leaf.r#match)?;
    let mut out = leaf.clone();
    out.r#match = matches;
    out.delegate = None;
    out.name = match (root.name.is_empty(), leaf.name.is_empty()) {
        (false, false) => format!("{}-{}", root.name, leaf.name),
        (false, true) => root.name.clone(),
        _ => leaf.name.clone(),
    };
    if out.rewrite.is_none() {
        out.rewrite.clone_from(&root.rewrite);
    }
    if out.direct_response.is_none() {
        out.direct_response.clone_from(&root.direct_response);
    }
    if out.timeout.is_none() {
        out.timeout = root.timeout;
    }
    if out.retries.is_none() {
        out.retries.clone_from(&root.retries);
    }
    if out.fault.is_none() {
        out.fault.clone_from(&root.fault);
    }
    if out.mirror.is_none() {
        out.mirror.clone_from(&root.mirror);
    }
    if out.mirrors.is_empty() {
        out.mirrors.clone_from(&root.mirrors);
    }
    if out.mirror_percent.is_none() {
        out.mirror_percent = root.mirror_percent;
    }
    if out.mirror_percentage.is_none() {
        out.mirror_percentage = root.mirror_percentage;
    }
    if out.cors_policy.is_none() {
        out.cors_policy.clone_from(&root.cors_policy);
    }
    if out.headers.is_none() {
        out.headers.clone_from(&root.headers);
    }
    Some(out)
}

fn merge_matches(
    root: &[HttpMatchRequest],
    leaf: &[HttpMatchRequest],
) -> Option<Vec<HttpMatchRequest>> {
    if root.is_empty() {
        return Some(leaf.to_vec());
    }
    if leaf.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for l in leaf {
        let mut any = false;
        for r in root {
            if has_conflict(r, l) {
                continue;
            }
            any = true;
            out.push(merge_match(r, l));
        }
        if !any {
            return None;
        }
    }
    Some(out)
}

fn merge_match(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> HttpMatchRequest {
    let mut out = root.clone();
    if !leaf.name.is_empty() {
        out.name.clone_from(&leaf.name);
    }
    for (dst, src) in [
        (&mut out.uri, &leaf.uri),
        (&mut out.scheme, &leaf.scheme),
        (&mut out.method, &leaf.method),
        (&mut out.authority, &leaf.authority),
    ] {
        if src.is_some() {
            dst.clone_from(src);
        }
    }
    merge_map(&mut out.headers, &leaf.headers);
    merge_map(&mut out.without_headers, &leaf.without_headers);
    merge_map(&mut out.query_params, &leaf.query_params);
    merge_map(&mut out.source_labels, &leaf.source_labels);
    if leaf.port != 0 {
        out.port = leaf.port;
    }
    if !leaf.gateways.is_empty() {
        out.gateways.clone_from(&leaf.gateways);
    }
    if !leaf.source_namespace.is_empty() {
        out.source_namespace.clone_from(&leaf.source_namespace);
    }
    out.ignore_uri_case = leaf.ignore_uri_case || root.ignore_uri_case;
    out
}

fn merge_map<V: Clone>(dst: &mut BTreeMap<String, V>, src: &BTreeMap<String, V>) {
    for (k, v) in src {
        dst.insert(k.clone(), v.clone());
    }
}

fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(r), Some(l)) = (root, leaf) else {
        return false;
    };
    match (r, l) {
        (StringMatch::Regex(_), _) | (_, StringMatch::Regex(_)) => true,
        (StringMatch::Exact(a), StringMatch::Exact(b)) => a != b,
        (StringMatch::Exact(_), StringMatch::Prefix(_)) => true,
        (StringMatch::Prefix(p), StringMatch::Exact(e) | StringMatch::Prefix(e)) => {
            !e.starts_with(p.as_str())
        }
        _ => false,
    }
}

fn map_conflict(
    root: &BTreeMap<String, StringMatch>,
    leaf: &BTreeMap<String, StringMatch>,
) -> bool {
    leaf.iter()
        .any(|(k, l)| string_conflict(root.get(k), Some(l)))
}

/// `hasConflict` of `virtualservice.go`.
fn has_conflict(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> bool {
    if string_conflict(root.uri.as_ref(), leaf.uri.as_ref())
        || string_conflict(root.scheme.as_ref(), leaf.scheme.as_ref())
        || string_conflict(root.method.as_ref(), leaf.method.as_ref())
        || string_conflict(root.authority.as_ref(), leaf.authority.as_ref())
    {
        return true;
    }
    if map_conflict(&root.headers, &leaf.headers)
        || map_conflict(&root.without_headers, &leaf.without_headers)
        || map_conflict(&root.query_params, &leaf.query_params)
    {
        return true;
    }
    if root.ignore_uri_case != leaf.ignore_uri_case {
        return true;
    }
    if root.port != 0 && leaf.port != 0 && root.port != leaf.port {
        return true;
    }
    if !root.source_namespace.is_empty()
        && !leaf.source_namespace.is_empty()
        && root.source_namespace != leaf.source_namespace
    {
        return true;
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|rv| rv != v))
    {
        return true;
    }
    if !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && !leaf.gateways.iter().all(|g| root.gateways.contains(g))
    {
        return true;
    }
    false
}

/// The destination host of a [`Destination`] as an FQDN (short names in `namespace`).
pub(crate) fn destination_host(dest: &Destination, namespace: &str, domain_suffix: &str) -> String {
    crate::host::resolve_short_name(&dest.host, namespace, domain_suffix)
}

/// Hash policy from a DestinationRule consistent hash.
pub(crate) fn hash_policy_from(
    lb: &portcullis_model::destination_rule::ConsistentHashLb,
) -> Option<HashPolicy> {
    use portcullis_model::destination_rule::HashKey;
    match lb.hash_key.as_ref()? {
        HashKey::HttpHeaderName(h) => Some(HashPolicy::Header(h.clone())),
        HashKey::HttpCookie(c) => Some(HashPolicy::Cookie {
            name: c.name.clone(),
            path: c.path.clone(),
            ttl: c.ttl.and_then(|t| t.to_std()),
            attributes: c
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        }),
        HashKey::UseSourceIp(_) => Some(HashPolicy::SourceIp),
        HashKey::HttpQueryParameterName(q) => Some(HashPolicy::QueryParameter(q.clone())),
        _ => None,
    }
}
