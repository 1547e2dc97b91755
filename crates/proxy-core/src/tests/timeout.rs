use std::time::Duration;

use http::HeaderMap;
use http::header::HeaderValue;

use super::{SVC_A, expect_forward, get};
use crate::rt::SequenceRandom;
use crate::{
    action::{ForwardAction, RouteAction},
    decide,
    decide::{effective_timeout, is_grpc_request, parse_grpc_timeout},
};

fn grpc_headers(timeout: Option<&'static str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/grpc"));
    if let Some(t) = timeout {
        h.insert("grpc-timeout", HeaderValue::from_static(t));
    }
    h
}

#[test]
fn default_timeout_is_zero_and_max_grpc_timeout_matches() {
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.timeout, Duration::ZERO);
    assert_eq!(d.max_grpc_timeout, Some(Duration::ZERO));
}

#[test]
fn configured_timeout_sets_max_grpc_timeout_too() {
    let action =
        RouteAction::from(ForwardAction::to_cluster(SVC_A).with_timeout(Duration::from_secs(10)));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.timeout, Duration::from_secs(10));
    assert_eq!(d.max_grpc_timeout, Some(Duration::from_secs(10)));
}

#[test]
fn grpc_timeout_header_is_capped_by_max_grpc_timeout() {
    let ten = Duration::from_secs(10);
    // Not gRPC: the route timeout.
    assert_eq!(effective_timeout(ten, Some(ten), &HeaderMap::new()), ten);
    // gRPC without header: the cap.
    assert_eq!(effective_timeout(ten, Some(ten), &grpc_headers(None)), ten);
    // gRPC with a smaller header: the header.
    assert_eq!(
        effective_timeout(ten, Some(ten), &grpc_headers(Some("2S"))),
        Duration::from_secs(2)
    );
    // gRPC with a larger header: the cap.
    assert_eq!(
        effective_timeout(ten, Some(ten), &grpc_headers(Some("1M"))),
        ten
    );
    // No route timeout: the header alone, or none.
    assert_eq!(
        effective_timeout(
            Duration::ZERO,
            Some(Duration::ZERO),
            &grpc_headers(Some("1M"))
        ),
        Duration::from_secs(60)
    );
    assert_eq!(
        effective_timeout(Duration::ZERO, Some(Duration::ZERO), &grpc_headers(None)),
        Duration::ZERO
    );
    // max_grpc_timeout unset: header ignored.
    assert_eq!(effective_timeout(ten, None, &grpc_headers(Some("1S"))), ten);
}

#[test]
fn grpc_timeout_values_and_content_types_parse_like_envoy() {
    let parse = |s: &'static str| parse_grpc_timeout(&HeaderValue::from_static(s));
    assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
    assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
    assert_eq!(parse("4m"), Some(Duration::from_millis(4)));
    assert_eq!(parse("5u"), Some(Duration::from_micros(5)));
    assert_eq!(parse("6n"), Some(Duration::from_nanos(6)));
    assert_eq!(
        parse("99999999H"),
        Some(Duration::from_secs(99_999_999 * 3600))
    );
    assert_eq!(parse("123456789S"), None);
    assert_eq!(parse("S"), None);
    assert_eq!(parse(""), None);
    assert_eq!(parse("-1S"), None);
    let ct = |s: &'static str| {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static(s));
        is_grpc_request(&h)
    };
    assert!(ct("application/grpc"));
    assert!(ct("application/grpc+proto"));
    assert!(ct("application/grpc;charset=utf-8"));
    assert!(!ct("application/grpc-web"));
    assert!(!ct("application/json"));
    assert!(!is_grpc_request(&HeaderMap::new()));
}

#[test]
fn forward_decision_effective_timeout_uses_its_own_settings() {
    let action =
        RouteAction::from(ForwardAction::to_cluster(SVC_A).with_timeout(Duration::from_secs(10)));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(
        d.effective_timeout(&grpc_headers(Some("500m"))),
        Duration::from_millis(500)
    );
}
