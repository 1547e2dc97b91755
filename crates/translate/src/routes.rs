//! VirtualService HTTP rules → Envoy routes (`route.go: BuildHTTPRoutesForVirtualService`,
//! `TranslateRoute`, `TranslateRouteMatch`, `ApplyRedirect`, …); delegate merging is in
//! `delegate`.

use std::sync::Arc;

use std::time::Duration;

use bytes::Bytes;
use portcullis_model::common::decode_proto_bytes;
use portcullis_model::virtual_service::{
    ErrorType, HeaderOperations, Headers, HttpBody, HttpDelayType, HttpMatchRequest,
    HttpRoute as VsHttpRoute, RedirectPort, RedirectPortSelection, UnmatchedPreflights,
};
use portcullis_model::{Percent, StringMatch};
use portcullis_proxy_core::{
    action::{
        Destination as ProxyDestination, DirectResponseAction, ForwardAction, FractionalPercent,
        HeaderOps, InvalidAction, Mirror, RouteAction,
    },
    cors::{Cors, OriginMatch, UnmatchedPreflights as ProxyUnmatchedPreflights},
    fault::{Fault, FaultAbort, FaultDelay, grpc_status_code},
    redirect::{RedirectAction, RedirectPath, RedirectPort as PortSelection},
    retry::RetryPolicy,
    rewrite::{PathMatchKind, PathRewrite, RegexRewrite},
};
use portcullis_route_match::{
    HeaderMatch, PathMatch, QueryParamMatch, Route, RouteMatch, ValueMatch,
};

use crate::index::{Index, VsEntry};
use crate::plan::{HashPolicy, HttpRoute, RouteOrigin};

/// Where routes are being built: the port and gateway names the config-time conditions are
/// evaluated against.
pub(crate) struct RouteCtx<'a> {
    /// The server port (gateway) or service port (sidecar).
    pub listen_port: u32,
    /// The gateway names (`ns/name`), or `mesh` for sidecars.
    pub gateway_names: &'a [String],
}

/// Why one rule could not be translated.
#[derive(Clone, Debug)]
pub(crate) enum RouteProblem {
    /// Envoy would reject the route configuration holding this route.
    Reject(String),
    /// The rule's action cannot be built (a header, regex or status the engine refuses): the
    /// route is dropped, the rest of the configuration is unaffected.
    Invalid(InvalidAction),
    /// The rule cannot be read as written (a `directResponse` body that is not base64): the
    /// route is dropped, the rest of the configuration is unaffected.
    Dropped(String),
}

impl From<InvalidAction> for RouteProblem {
    fn from(err: InvalidAction) -> Self {
        Self::Invalid(err)
    }
}

/// Routes for one VirtualService at one place, with catch-all truncation. `Ok(vec![])` means the
/// VS yields no route here (it then creates no virtual host).
pub(crate) fn build_http_routes(
    index: &Index<'_>,
    ctx: &RouteCtx<'_>,
    vs: &VsEntry<'_>,
    problems: &mut Vec<(String, RouteProblem)>,
) -> Vec<Route<Arc<HttpRoute>>> {
    // At most one route per match (one for a rule without): sized once, since a route is
    // large and a growing list would be copied and its spare capacity kept in the plan.
    let most = vs.http.iter().map(|rule| rule.r#match.len().max(1)).sum();
    let mut out = Vec::with_capacity(most);
    'rules: for (ri, rule) in vs.http.iter().enumerate() {
        let origin = vs.http_origin(ri);
        if rule.r#match.is_empty() {
            match translate_route(index, ctx, vs, rule, None, origin) {
                Ok(route) => out.push(route),
                Err(p) => problems.push((format!("spec.http[{ri}]"), p)),
            }
            break 'rules;
        }
        for (mi, m) in rule.r#match.iter().enumerate() {
            if !keep_match(index, ctx, m) {
                continue;
            }
            let origin = origin.clone().map(|mut o| {
                if o.delegate.is_none() {
                    o.match_index = Some(mi);
                }
                o
            });
            match translate_route(index, ctx, vs, rule, Some(m), origin) {
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
    // Matches left out (another port or gateway) or cut off by a catch-all.
    out.shrink_to_fit();
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

fn translate_route(
    index: &Index<'_>,
    ctx: &RouteCtx<'_>,
    vs: &VsEntry<'_>,
    rule: &VsHttpRoute,
    m: Option<&HttpMatchRequest>,
    origin: Option<RouteOrigin>,
) -> Result<Route<Arc<HttpRoute>>, RouteProblem> {
    let matches = translate_match(m);
    let matched = match &matches.path {
        Some(PathMatch::Prefix { prefix, .. }) => PathMatchKind::Prefix(prefix.clone()),
        Some(PathMatch::Exact { path, .. }) => PathMatchKind::Exact(path.clone()),
        _ => PathMatchKind::Regex,
    };
    let mut hash_policy = Vec::new();
    let action = translate_action(index, ctx, vs, rule, matched, &mut hash_policy)?;
    Ok(Route::new(
        route_name(rule, m),
        matches,
        Arc::new(HttpRoute {
            name: route_name(rule, m),
            virtual_service: Some(crate::plan::ResourceRef {
                name: vs.name.to_owned(),
                namespace: vs.namespace.to_owned(),
            }),
            origin,
            hash_policy,
            action,
        }),
    ))
}

/// `TranslateRoute` minus the match: the rule's action as a proxy-core action, built (and
/// validated) once. Hash policies of the destinations are collected into `hash_policy`.
fn translate_action(
    index: &Index<'_>,
    ctx: &RouteCtx<'_>,
    vs: &VsEntry<'_>,
    rule: &VsHttpRoute,
    matched: PathMatchKind,
    hash_policy: &mut Vec<HashPolicy>,
) -> Result<RouteAction, RouteProblem> {
    let request_ops = |h: Option<&Headers>| header_ops(h.and_then(|h| h.request.as_ref()), true);
    let response_ops = |h: Option<&Headers>| header_ops(h.and_then(|h| h.response.as_ref()), false);
    let response = response_ops(rule.headers.as_ref())?;
    let fault = rule.fault.as_ref().map(fault).transpose()?;
    let cors = rule.cors_policy.as_ref().map(cors).transpose()?;

    let mut action: RouteAction = if let Some(redirect) = &rule.redirect {
        let status = u16::try_from(redirect.redirect_code).unwrap_or(u16::MAX);
        let Ok(action) = RedirectAction::new(status) else {
            return Err(RouteProblem::Reject(format!(
                "redirect code {} is not one of 301, 302, 303, 307, 308: Envoy rejects a route without action",
                redirect.redirect_code
            )));
        };
        // `derivePort: FROM_REQUEST_PORT` is the server port, known here.
        let port = match redirect.redirect_port {
            Some(RedirectPort::Port(p)) => Some(p),
            Some(RedirectPort::DerivePort(RedirectPortSelection::FromRequestPort)) => {
                Some(ctx.listen_port)
            }
            _ => None,
        };
        let path = if !redirect.uri.is_empty() {
            RedirectPath::Replace(redirect.uri.clone())
        } else if !redirect.prefix_rewrite.is_empty() {
            RedirectPath::PrefixRewrite {
                matched,
                replacement: redirect.prefix_rewrite.clone(),
            }
        } else {
            RedirectPath::Keep
        };
        action
            .with_scheme(redirect.scheme.clone())
            .with_authority(redirect.authority.clone())
            .with_port(
                port.and_then(|p| u16::try_from(p).ok())
                    .map_or(PortSelection::ProtocolDefault, PortSelection::Port),
            )
            .with_path(path)
            .with_response_headers(response)
            .into()
    } else if let Some(dr) = &rule.direct_response {
        let body = match &dr.body {
            Some(HttpBody::String(s)) => Some(Bytes::from(s.clone().into_bytes())),
            Some(HttpBody::Bytes(b)) => match decode_proto_bytes(b) {
                Ok(bytes) => Some(Bytes::from(bytes)),
                Err(err) => {
                    return Err(RouteProblem::Dropped(format!(
                        "directResponse.body.bytes: {err}"
                    )));
                }
            },
            _ => None,
        };
        let status = u16::try_from(dr.status).unwrap_or(u16::MAX);
        DirectResponseAction::new(status, body)?
            .with_response_headers(response)
            .into()
    } else if !rule.route.is_empty() {
        // One destination: a plain cluster (weight ignored). Several: weighted clusters,
        // zero weights dropped by `ForwardAction::new`.
        let weighted = rule.route.len() > 1;
        let mut destinations = Vec::new();
        for d in &rule.route {
            let Some(dest) = &d.destination else { continue };
            if !weighted || d.weight > 0 {
                hash_policy.extend(index.hash_policy_for(dest, vs.namespace));
            }
            let cluster = index.cluster_name(dest, vs.namespace, ctx.listen_port);
            destinations.push(
                ProxyDestination::new(cluster, u32::try_from(d.weight).unwrap_or(0))
                    .with_request_headers(request_ops(d.headers.as_ref())?)
                    .with_response_headers(response_ops(d.headers.as_ref())?),
            );
        }
        let forward = match ForwardAction::new(destinations) {
            Ok(forward) => forward,
            Err(InvalidAction::NoDestinations | InvalidAction::ZeroTotalWeight) => {
                return Err(RouteProblem::Reject(
                    "no destination with a positive weight".to_owned(),
                ));
            }
            Err(other) => return Err(other.into()),
        };
        let mut forward = forward
            .with_request_headers(request_ops(rule.headers.as_ref())?)
            .with_response_headers(response)
            .with_timeout(to_std(rule.timeout).unwrap_or(Duration::ZERO))
            .with_retry_policy(retry_policy(rule, !hash_policy.is_empty()));
        if let Some(rewrite) = &rule.rewrite {
            forward = forward.with_authority_rewrite(rewrite.authority.clone());
            if let Some(rr) = &rewrite.uri_regex_rewrite {
                let regex = RegexRewrite::new(&rr.r#match, &rr.rewrite)?;
                forward = forward.with_path_rewrite(PathRewrite::Regex(regex));
            } else if !rewrite.uri.is_empty() {
                forward = forward.with_path_rewrite(PathRewrite::Prefix {
                    matched,
                    replacement: rewrite.uri.clone(),
                });
            }
        }
        for mirror in mirrors(index, ctx, vs, rule) {
            forward = forward.with_mirror(mirror);
        }
        forward.into()
    } else {
        return Err(RouteProblem::Reject(
            "rule has no route, redirect or directResponse".to_owned(),
        ));
    };
    if !matches!(action, RouteAction::Forward(_)) {
        hash_policy.clear();
    }
    if let Some(fault) = fault {
        action = with_fault(action, fault);
    }
    if let Some(cors) = cors {
        action = with_cors(action, cors);
    }
    Ok(action)
}

fn with_fault(action: RouteAction, fault: Fault) -> RouteAction {
    match action {
        RouteAction::Forward(a) => a.with_fault(fault).into(),
        RouteAction::Redirect(a) => a.with_fault(fault).into(),
        RouteAction::DirectResponse(a) => a.with_fault(fault).into(),
        other => other,
    }
}

fn with_cors(action: RouteAction, cors: Cors) -> RouteAction {
    match action {
        RouteAction::Forward(a) => a.with_cors(cors).into(),
        RouteAction::Redirect(a) => a.with_cors(cors).into(),
        RouteAction::DirectResponse(a) => a.with_cors(cors).into(),
        other => other,
    }
}

/// Request (`request == true`) or response header operations. Pseudo-headers are dropped,
/// except a request `:authority`, which (like `host`) becomes an authority rewrite (see
/// [`portcullis_proxy_core::action::HeaderOps::take_authority`]).
fn header_ops(ops: Option<&HeaderOperations>, request: bool) -> Result<HeaderOps, InvalidAction> {
    let mut out = HeaderOps::new();
    let Some(ops) = ops else {
        return Ok(out);
    };
    let keep = |k: &str| !k.starts_with(':') || (request && k.eq_ignore_ascii_case(":authority"));
    for name in &ops.remove {
        out = out.try_remove(name)?;
    }
    for (name, value) in ops.set.iter().filter(|(k, _)| keep(k)) {
        out = out.try_set(name, value)?;
    }
    for (name, value) in ops.add.iter().filter(|(k, _)| keep(k)) {
        out = out.try_add(name, value)?;
    }
    Ok(out)
}

/// `retry.ConvertPolicy`: no `retries` gives Istio's default policy (without the
/// `previous_hosts` predicate when the destination hashes), `attempts <= 0` no policy.
fn retry_policy(rule: &VsHttpRoute, hash_policy: bool) -> Option<RetryPolicy> {
    let Some(r) = &rule.retries else {
        return Some(RetryPolicy::istio_default().with_previous_hosts(!hash_policy));
    };
    let mut policy = RetryPolicy::from_istio(
        r.attempts,
        to_std(r.per_try_timeout),
        &r.retry_on,
        r.retry_remote_localities == Some(true),
    )?
    .with_previous_hosts(r.retry_ignore_previous_hosts.unwrap_or(!hash_policy));
    if let Some(backoff) = to_std(r.backoff) {
        policy = policy.with_backoff(backoff);
    }
    Some(policy)
}

/// Pilot's `translatePercentToFractionalPercent`, or the deprecated integer percent.
fn percentage(value: Option<Percent>, integer: Option<u32>) -> Option<FractionalPercent> {
    match (value, integer) {
        (Some(p), _) => Some(FractionalPercent::from_istio(p.value)),
        (None, Some(p)) => Some(FractionalPercent::from_integer_percent(p)),
        (None, None) => None,
    }
}

/// `TranslateFault`.
fn fault(
    f: &portcullis_model::virtual_service::HttpFaultInjection,
) -> Result<Fault, InvalidAction> {
    let mut out = Fault::new();
    if let Some(d) = &f.delay
        && let Some(HttpDelayType::FixedDelay(fixed)) = d.http_delay_type
    {
        let integer = u32::try_from(d.percent).unwrap_or(0);
        out = out.with_delay(FaultDelay::new(
            fixed.to_std().unwrap_or(Duration::ZERO),
            percentage(d.percentage, Some(integer)),
        ));
    }
    if let Some(a) = &f.abort {
        let pct = percentage(a.percentage, None);
        match &a.error_type {
            Some(ErrorType::HttpStatus(s)) => {
                let status = u16::try_from(*s).unwrap_or(u16::MAX);
                out = out.with_abort(FaultAbort::http(status, pct)?);
            }
            Some(ErrorType::GrpcStatus(s)) => {
                // Pilot looks the name up in `grpc.SupportedGRPCStatus`; a miss is code 0.
                let code = grpc_status_code(s).unwrap_or(0);
                out = out.with_abort(FaultAbort::grpc(code, pct));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `TranslateCORSPolicy`.
fn cors(c: &portcullis_model::virtual_service::CorsPolicy) -> Result<Cors, InvalidAction> {
    let mut out = Cors::new();
    for origin in &c.allow_origin {
        out = out.allow_origin(OriginMatch::exact(origin.clone()));
    }
    for m in &c.allow_origins {
        out = match m {
            StringMatch::Exact(s) => out.allow_origin(OriginMatch::exact(s.clone())),
            StringMatch::Prefix(s) => out.allow_origin(OriginMatch::prefix(s.clone())),
            StringMatch::Regex(s) => out.allow_origin(OriginMatch::regex(s)?),
            _ => out,
        };
    }
    out = out
        .allow_methods(&c.allow_methods)?
        .allow_headers(&c.allow_headers)?
        .expose_headers(&c.expose_headers)?
        .allow_credentials(c.allow_credentials == Some(true))
        .unmatched_preflights(
            if c.unmatched_preflights == Some(UnmatchedPreflights::Ignore) {
                ProxyUnmatchedPreflights::Ignore
            } else {
                ProxyUnmatchedPreflights::Forward
            },
        );
    if let Some(max_age) = c.max_age.and_then(|d| d.to_std()) {
        out = out.max_age(max_age);
    }
    Ok(out)
}

/// `mirror` (+ `mirrorPercentage` / `mirrorPercent`) and `mirrors`; zero percentages are
/// dropped by `ForwardAction::with_mirror`.
fn mirrors(
    index: &Index<'_>,
    ctx: &RouteCtx<'_>,
    vs: &VsEntry<'_>,
    rule: &VsHttpRoute,
) -> Vec<Mirror> {
    let mut out = Vec::new();
    if let Some(dest) = &rule.mirror {
        out.push(Mirror::new(
            index.cluster_name(dest, vs.namespace, ctx.listen_port),
            percentage(rule.mirror_percentage, rule.mirror_percent),
        ));
    }
    for m in &rule.mirrors {
        let Some(dest) = &m.destination else { continue };
        out.push(Mirror::new(
            index.cluster_name(dest, vs.namespace, ctx.listen_port),
            percentage(m.percentage, None),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Delegation
