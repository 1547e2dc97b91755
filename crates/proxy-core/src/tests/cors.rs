use std::time::Duration;

use http::header::HeaderMap;
use http::{Method, StatusCode};

use super::{SVC_A, expect_forward, get, http, values, with_headers};
use crate::action::{ForwardAction, RouteAction};
use crate::cors::{
    Cors, CorsOutcome, OriginMatch, UnmatchedPreflights, cors_preflight, cors_response_headers,
    evaluate_cors,
};
use crate::decide;
use crate::decide::Decision;
use crate::headers::HeaderOps;
use crate::redirect::RedirectAction;
use crate::request::RequestHead;
use crate::rt::SequenceRandom;

fn policy() -> Cors {
    Cors::new()
        .allow_origin(OriginMatch::exact("https://app.example.com"))
        .allow_origin(OriginMatch::regex(r"https://.*\.trusted\.io").unwrap())
        .allow_methods(["GET", "POST"])
        .unwrap()
        .allow_headers(["x-token"])
        .unwrap()
        .expose_headers(["x-resp"])
        .unwrap()
        .max_age(Duration::from_secs(24 * 3600))
        .allow_credentials(true)
}

fn action(cors: Cors) -> RouteAction {
    RouteAction::from(ForwardAction::to_cluster(SVC_A).with_cors(cors))
}

fn preflight(origin: &str) -> RequestHead {
    with_headers(
        http(Method::OPTIONS, "example.com", "/api"),
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
        ],
    )
}

fn actual(method: Method, origin: &str) -> RequestHead {
    with_headers(http(method, "example.com", "/api"), &[("origin", origin)])
}

fn answered_preflight(decision: Decision) -> HeaderMap {
    match decision {
        Decision::CorsPreflight(p) => {
            assert_eq!(p.status, StatusCode::OK);
            p.headers
        }
        other => panic!("expected a CORS preflight reply, got {other:?}"),
    }
}

#[test]
fn allowed_preflight_is_answered_locally_with_origin_echoed() {
    let d = decide(
        &action(policy()),
        &preflight("https://app.example.com"),
        &mut SequenceRandom::new([0]),
    );
    let h = answered_preflight(d);
    assert_eq!(
        values(&h, "access-control-allow-origin"),
        ["https://app.example.com"]
    );
    assert_eq!(values(&h, "access-control-allow-methods"), ["GET,POST"]);
    assert_eq!(values(&h, "access-control-allow-headers"), ["x-token"]);
    assert_eq!(values(&h, "access-control-max-age"), ["86400"]);
    assert_eq!(values(&h, "access-control-allow-credentials"), ["true"]);
    assert!(h.get("access-control-expose-headers").is_none());
}

#[test]
fn regex_origin_is_matched_in_full_and_echoed() {
    let h = answered_preflight(decide(
        &action(policy()),
        &preflight("https://x.trusted.io"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(
        values(&h, "access-control-allow-origin"),
        ["https://x.trusted.io"]
    );
    // Full match: a longer origin does not match the regex.
    assert!(!policy().is_origin_allowed("https://x.trusted.io.evil.com"));
}

#[test]
fn disallowed_preflight_is_forwarded_by_default() {
    let d = expect_forward(decide(
        &action(policy()),
        &preflight("https://evil.com"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(&*d.cluster, SVC_A);
    assert!(d.response.cors_headers().is_none());
}

#[test]
fn disallowed_preflight_with_ignore_is_answered_without_allow_origin() {
    let cors = policy().unmatched_preflights(UnmatchedPreflights::Ignore);
    let h = answered_preflight(decide(
        &action(cors),
        &preflight("https://evil.com"),
        &mut SequenceRandom::new([0]),
    ));
    assert!(h.get("access-control-allow-origin").is_none());
    assert_eq!(values(&h, "access-control-allow-methods"), ["GET,POST"]);
    assert_eq!(values(&h, "access-control-allow-headers"), ["x-token"]);
    assert_eq!(values(&h, "access-control-max-age"), ["86400"]);
    assert_eq!(values(&h, "access-control-allow-credentials"), ["true"]);
}

#[test]
fn allowed_actual_request_is_forwarded_with_cors_response_headers() {
    let d = expect_forward(decide(
        &action(policy()),
        &actual(Method::GET, "https://app.example.com"),
        &mut SequenceRandom::new([0]),
    ));
    let h = d.response.cors_headers().expect("cors headers");
    assert_eq!(
        values(h, "access-control-allow-origin"),
        ["https://app.example.com"]
    );
    assert_eq!(values(h, "access-control-allow-credentials"), ["true"]);
    assert_eq!(values(h, "access-control-expose-headers"), ["x-resp"]);
    assert!(h.get("access-control-allow-methods").is_none());
}

#[test]
fn disallowed_actual_request_is_forwarded_without_cors_headers() {
    let d = expect_forward(decide(
        &action(policy()),
        &actual(Method::GET, "https://evil.com"),
        &mut SequenceRandom::new([0]),
    ));
    assert!(d.response.cors_headers().is_none());
    assert!(d.response.is_empty());
}

#[test]
fn options_without_request_method_is_an_actual_request() {
    let d = expect_forward(decide(
        &action(policy()),
        &actual(Method::OPTIONS, "https://app.example.com"),
        &mut SequenceRandom::new([0]),
    ));
    let h = d.response.cors_headers().expect("cors headers");
    assert_eq!(
        values(h, "access-control-allow-origin"),
        ["https://app.example.com"]
    );
    assert_eq!(values(h, "access-control-expose-headers"), ["x-resp"]);
}

#[test]
fn request_without_origin_is_not_a_cors_request() {
    let head = with_headers(
        http(Method::OPTIONS, "example.com", "/api"),
        &[("access-control-request-method", "POST")],
    );
    assert!(matches!(evaluate_cors(&policy(), &head), CorsOutcome::Pass));
    let empty = with_headers(get("example.com", "/"), &[("origin", "")]);
    assert!(matches!(
        evaluate_cors(&policy(), &empty),
        CorsOutcome::Pass
    ));
}

#[test]
fn an_entry_matching_star_allows_every_origin() {
    let cors = Cors::new().allow_origin(OriginMatch::exact("*"));
    assert!(cors.is_origin_allowed("https://anything.example"));
    let cors = Cors::new().allow_origin(OriginMatch::regex(".*").unwrap());
    assert!(cors.is_origin_allowed("https://anything.example"));
    let cors = Cors::new().allow_origin(OriginMatch::prefix("https://"));
    assert!(!cors.is_origin_allowed("http://x"));
    assert!(cors.is_origin_allowed("https://x"));
    let cors = Cors::new().allow_origin(OriginMatch::suffix(".example.com"));
    assert!(cors.is_origin_allowed("https://a.example.com"));
    assert!(!Cors::new().is_origin_allowed("https://a.example.com"));
}

#[test]
fn cors_headers_are_set_after_route_response_ops() {
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_cors(policy())
            .with_response_headers(
                HeaderOps::new()
                    .try_add("access-control-allow-origin", "route")
                    .unwrap(),
            ),
    );
    let d = expect_forward(decide(
        &action,
        &actual(Method::GET, "https://app.example.com"),
        &mut SequenceRandom::new([0]),
    ));
    let mut response = HeaderMap::new();
    response.insert("access-control-allow-origin", "upstream".parse().unwrap());
    d.response.apply(&mut response);
    assert_eq!(
        values(&response, "access-control-allow-origin"),
        ["https://app.example.com"]
    );
}

#[test]
fn helper_functions_agree_with_evaluate_cors() {
    assert!(cors_preflight(&policy(), &preflight("https://app.example.com")).is_some());
    assert!(cors_preflight(&policy(), &preflight("https://evil.com")).is_none());
    assert!(
        cors_response_headers(&policy(), &actual(Method::GET, "https://app.example.com")).is_some()
    );
    assert!(cors_response_headers(&policy(), &preflight("https://app.example.com")).is_none());
}

#[test]
fn empty_lists_send_no_header_and_invalid_values_are_rejected() {
    let cors = Cors::new()
        .allow_origin(OriginMatch::exact("o"))
        .allow_methods(Vec::<String>::new())
        .unwrap();
    let h = cors_preflight(&cors, &preflight("o")).unwrap();
    assert!(h.get("access-control-allow-methods").is_none());
    assert!(h.get("access-control-allow-credentials").is_none());
    assert!(Cors::new().allow_headers(["bad\nvalue"]).is_err());
    assert!(OriginMatch::regex("(").is_err());
}

#[test]
fn preflight_is_answered_on_redirect_routes_too() {
    let action = RouteAction::from(RedirectAction::new(301).unwrap().with_cors(policy()));
    let h = answered_preflight(decide(
        &action,
        &preflight("https://app.example.com"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(
        values(&h, "access-control-allow-origin"),
        ["https://app.example.com"]
    );
    // An actual request to the redirect gets the CORS headers on the redirect.
    match decide(
        &action,
        &actual(Method::GET, "https://app.example.com"),
        &mut SequenceRandom::new([0]),
    ) {
        Decision::Redirect(r) => {
            assert_eq!(
                values(&r.headers, "access-control-allow-origin"),
                ["https://app.example.com"]
            );
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

#[test]
fn unbalanced_origin_regex_is_rejected_before_anchoring() {
    assert!(OriginMatch::regex("a)|(b").is_err());
}
