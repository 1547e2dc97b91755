//! The CRD schema layer for VirtualServices (K-V): the OpenAPI/CEL rules the API server applies
//! before the webhook.

use portcullis_model::common::decode_openapi_bytes;
use portcullis_model::virtual_service::{
    Destination, HttpBody, HttpDelayType, HttpRoute, RouteDestination,
};
use portcullis_model::{Duration, VirtualService};

use crate::context::Checker;
use crate::path;

/// The OpenAPI "required" error.
pub(super) const REQUIRED: &str = "Required value";
/// The CEL rule on every duration field.
pub(super) const CRD_DURATION: &str = "must be a valid duration greater than 1ms";

/// The parts of the CRD's schema the model does not already enforce when decoding (oneofs,
/// enums and unknown fields are decode errors): required fields, durations of at least 1 ms,
/// and `bytes` in standard base64.
pub(super) fn crd_virtual_service(c: &mut Checker<'_>, path: &str, vs: &VirtualService) {
    let http_path = path::join(path, "http");
    for (i, route) in vs.http.iter().enumerate() {
        crd_http_route(c, &path::index(&http_path, i), route);
    }
    let tls_path = path::join(path, "tls");
    for (i, route) in vs.tls.iter().enumerate() {
        let at = path::index(&tls_path, i);
        if route.r#match.is_empty() {
            c.error(path::join(&at, "match"), REQUIRED);
        }
        let matches_path = path::join(&at, "match");
        for (j, m) in route.r#match.iter().enumerate() {
            if m.sni_hosts.is_empty() {
                c.error(
                    path::join(&path::index(&matches_path, j), "sniHosts"),
                    REQUIRED,
                );
            }
        }
        crd_route_destinations(c, &path::join(&at, "route"), &route.route);
    }
    let tcp_path = path::join(path, "tcp");
    for (i, route) in vs.tcp.iter().enumerate() {
        crd_route_destinations(
            c,
            &path::join(&path::index(&tcp_path, i), "route"),
            &route.route,
        );
    }
}

fn crd_route_destinations(c: &mut Checker<'_>, path: &str, routes: &[RouteDestination]) {
    for (i, route) in routes.iter().enumerate() {
        crd_destination(
            c,
            &path::join(&path::index(path, i), "destination"),
            route.destination.as_ref(),
        );
    }
}

/// A required destination, whose `host` is required.
fn crd_destination(c: &mut Checker<'_>, path: &str, destination: Option<&Destination>) {
    match destination {
        None => c.error(path, REQUIRED),
        Some(d) if d.host.is_empty() => c.error(path::join(path, "host"), REQUIRED),
        Some(_) => {}
    }
}

fn crd_duration(c: &mut Checker<'_>, path: &str, d: Option<&Duration>) {
    if d.is_some_and(|d| d.as_nanos() < 1_000_000) {
        c.error(path, CRD_DURATION);
    }
}

fn crd_http_route(c: &mut Checker<'_>, path: &str, route: &HttpRoute) {
    let routes_path = path::join(path, "route");
    for (i, r) in route.route.iter().enumerate() {
        crd_destination(
            c,
            &path::join(&path::index(&routes_path, i), "destination"),
            r.destination.as_ref(),
        );
    }
    if let Some(mirror) = &route.mirror
        && mirror.host.is_empty()
    {
        c.error(path::join(path, "mirror.host"), REQUIRED);
    }
    let mirrors_path = path::join(path, "mirrors");
    for (i, m) in route.mirrors.iter().enumerate() {
        crd_destination(
            c,
            &path::join(&path::index(&mirrors_path, i), "destination"),
            m.destination.as_ref(),
        );
    }
    if let Some(response) = &route.direct_response {
        let at = path::join(path, "directResponse");
        if response.status == 0 {
            c.error(path::join(&at, "status"), REQUIRED);
        }
        if let Some(HttpBody::Bytes(b)) = &response.body
            && decode_openapi_bytes(b).is_err()
        {
            c.error(
                path::join(&at, "body.bytes"),
                "Invalid value: bytes must be base64-encoded",
            );
        }
    }
    crd_duration(c, &path::join(path, "timeout"), route.timeout.as_ref());
    if let Some(retries) = &route.retries {
        let at = path::join(path, "retries");
        crd_duration(
            c,
            &path::join(&at, "perTryTimeout"),
            retries.per_try_timeout.as_ref(),
        );
        crd_duration(c, &path::join(&at, "backoff"), retries.backoff.as_ref());
    }
    if let Some(policy) = &route.cors_policy {
        crd_duration(
            c,
            &path::join(path, "corsPolicy.maxAge"),
            policy.max_age.as_ref(),
        );
    }
    if let Some(delay) = route.fault.as_ref().and_then(|f| f.delay.as_ref()) {
        let at = path::join(path, "fault.delay");
        match &delay.http_delay_type {
            Some(HttpDelayType::FixedDelay(d)) => {
                crd_duration(c, &path::join(&at, "fixedDelay"), Some(d));
            }
            Some(HttpDelayType::ExponentialDelay(d)) => {
                crd_duration(c, &path::join(&at, "exponentialDelay"), Some(d));
            }
            _ => {}
        }
    }
}
