use bytes::Bytes;
use http::StatusCode;

use super::{SVC_A, expect_forward, get, values};
use crate::action::{
    DirectResponseAction, ForwardAction, MAX_DIRECT_RESPONSE_BODY, Mirror, RouteAction,
};
use crate::decide;
use crate::decide::Decision;
use crate::error::InvalidAction;
use crate::headers::HeaderOps;
use crate::percent::FractionalPercent;
use crate::rt::SequenceRandom;

const SHADOW: &str = "outbound|8080||shadow.default.svc.cluster.local";
const SVC_M: &str = "outbound|80||svc-m.default.svc.cluster.local";

#[test]
fn zero_percent_mirror_is_not_configured() {
    let action = ForwardAction::to_cluster(SVC_A).with_mirror(Mirror::new(
        SHADOW,
        Some(FractionalPercent::from_istio(0.0)),
    ));
    assert!(action.mirrors().is_empty());
    let d = expect_forward(decide(
        &RouteAction::from(action),
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert!(d.mirrors.is_empty());
}

#[test]
fn fractional_mirror_percentage_uses_the_stream_random() {
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A).with_mirror(Mirror::new(
        SHADOW,
        Some(FractionalPercent::from_istio(25.5)),
    )));
    for (random, mirrored) in [
        (0, true),
        (254_999, true),
        (255_000, false),
        (1_254_999, true),
    ] {
        let mut source = SequenceRandom::new([random]);
        let d = expect_forward(decide(&action, &get("example.com", "/"), &mut source));
        assert_eq!(source.draws(), 1, "mirrors reuse the stream value");
        assert_eq!(d.mirrors.len(), 1);
        assert_eq!(&*d.mirrors[0].cluster, SHADOW);
        assert_eq!(d.mirrors[0].percentage.per_million(), 255_000);
        assert_eq!(d.mirrors[0].mirrored, mirrored, "random {random}");
    }
}

#[test]
fn mirrors_list_defaults_to_100_percent_each() {
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_mirror(Mirror::new(SHADOW, None))
            .with_mirror(Mirror::new(
                SVC_M,
                Some(FractionalPercent::from_istio(10.0)),
            )),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([500_000]),
    ));
    let got: Vec<_> = d
        .mirrors
        .iter()
        .map(|m| (&*m.cluster, m.percentage.per_million(), m.mirrored))
        .collect();
    assert_eq!(got, [(SHADOW, 1_000_000, true), (SVC_M, 100_000, false)]);
}

#[test]
fn direct_response_with_string_body() {
    let action = RouteAction::from(
        DirectResponseAction::new(200, Some(Bytes::from_static(b"hello"))).unwrap(),
    );
    match decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ) {
        Decision::DirectResponse(d) => {
            assert_eq!(d.status, StatusCode::OK);
            assert_eq!(d.body.as_deref(), Some(&b"hello"[..]));
            assert_eq!(values(&d.headers, "content-type"), ["text/plain"]);
        }
        other => panic!("expected a direct response, got {other:?}"),
    }
}

#[test]
fn direct_response_without_body_gets_response_header_ops() {
    let action = RouteAction::from(
        DirectResponseAction::new(503, None)
            .unwrap()
            .with_response_headers(HeaderOps::new().try_set("retry-after", "30").unwrap()),
    );
    match decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ) {
        Decision::DirectResponse(d) => {
            assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(d.body, None);
            assert_eq!(values(&d.headers, "retry-after"), ["30"]);
            assert!(d.headers.get("content-type").is_none());
        }
        other => panic!("expected a direct response, got {other:?}"),
    }
}

#[test]
fn direct_response_status_and_body_size_are_validated() {
    for code in [0, 100, 199, 600] {
        assert_eq!(
            DirectResponseAction::new(code, None).unwrap_err(),
            InvalidAction::DirectResponseStatus { code }
        );
    }
    assert!(DirectResponseAction::new(599, None).is_ok());
    let max = Bytes::from(vec![b'a'; MAX_DIRECT_RESPONSE_BODY]);
    assert!(DirectResponseAction::new(200, Some(max)).is_ok());
    let over = Bytes::from(vec![b'a'; MAX_DIRECT_RESPONSE_BODY + 1]);
    assert_eq!(
        DirectResponseAction::new(200, Some(over)).unwrap_err(),
        InvalidAction::DirectResponseBodyTooLarge {
            len: MAX_DIRECT_RESPONSE_BODY + 1,
            max: MAX_DIRECT_RESPONSE_BODY
        }
    );
}

#[test]
fn forward_keeps_method_scheme_and_unrelated_headers() {
    let head = super::with_headers(
        super::http(http::Method::PUT, "example.com:8080", "/x?y"),
        &[("x-keep", "1"), ("x-keep", "2")],
    );
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A));
    let d = expect_forward(decide(&action, &head, &mut SequenceRandom::new([0])));
    assert_eq!(d.upstream.method, http::Method::PUT);
    assert_eq!(d.upstream.authority, "example.com:8080");
    assert_eq!(values(&d.upstream.headers, "x-keep"), ["1", "2"]);
    assert_eq!(
        d.upstream.uri().unwrap().to_string(),
        "http://example.com:8080/x?y"
    );
    assert_eq!(d.delay, None);
}

#[test]
fn every_decision_draws_the_stream_value_first() {
    let mut random = SequenceRandom::new([0]);
    let action = RouteAction::from(DirectResponseAction::new(200, None).unwrap());
    let _ = decide(&action, &get("example.com", "/"), &mut random);
    assert_eq!(random.draws(), 1);
}

#[test]
fn decide_survives_odd_inputs() {
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A).with_path_rewrite(
        crate::rewrite::PathRewrite::Prefix {
            matched: crate::rewrite::PathMatchKind::Prefix("/ü".into()),
            replacement: "/x".into(),
        },
    ));
    for (authority, path) in [("", ""), ("[", "ü"), ("a:b:c", "/\u{1F600}?#"), (":", "?")] {
        let d = expect_forward(decide(
            &action,
            &get(authority, path),
            &mut SequenceRandom::new([]),
        ));
        assert!(d.upstream.path.starts_with("/x"));
    }
    let redirect = RouteAction::from(
        crate::redirect::RedirectAction::new(301)
            .unwrap()
            .with_port(crate::redirect::RedirectPort::FromRequestPort),
    );
    for (authority, path) in [("", ""), ("[", "ü"), ("[::1", "x"), ("a:99999", "?")] {
        let _ = decide(
            &redirect,
            &get(authority, path),
            &mut SequenceRandom::new([]),
        );
    }
}

#[test]
fn actions_compare_by_configuration() {
    let build = |pattern: &str, origin: &str| -> RouteAction {
        ForwardAction::to_cluster(SVC_A)
            .with_path_rewrite(crate::rewrite::PathRewrite::Regex(
                crate::rewrite::RegexRewrite::new(pattern, r"/\1").unwrap(),
            ))
            .with_cors(
                crate::cors::Cors::new()
                    .allow_origin(crate::cors::OriginMatch::regex(origin).unwrap()),
            )
            .into()
    };
    // Regular expressions compare by their source: equal configuration, equal actions
    // (compiled twice), so a configuration reload can keep routes that did not change.
    assert_eq!(
        build("^/a/(.*)$", "https://.*"),
        build("^/a/(.*)$", "https://.*")
    );
    assert_ne!(
        build("^/a/(.*)$", "https://.*"),
        build("^/b/(.*)$", "https://.*")
    );
    assert_ne!(
        build("^/a/(.*)$", "https://.*"),
        build("^/a/(.*)$", "http://.*")
    );
    assert_ne!(
        build("^/a/(.*)$", "https://.*"),
        RouteAction::from(ForwardAction::to_cluster(SVC_A))
    );
}

#[test]
fn taking_the_head_decides_the_same_and_empties_it_only_for_forwards() {
    use super::with_headers;
    use crate::{action::Destination, decide::decide_taking_headers};

    let forward = RouteAction::from(
        ForwardAction::new(vec![
            Destination::new(SVC_A, 3)
                .with_request_headers(HeaderOps::new().try_set("x-dest", "a").unwrap()),
            Destination::new(SVC_M, 1),
        ])
        .unwrap()
        .with_mirror(Mirror::new(
            SHADOW,
            Some(FractionalPercent::from_istio(50.0)),
        )),
    );
    let direct = RouteAction::from(DirectResponseAction::new(204, None).unwrap());
    let request = with_headers(
        get("example.com", "/p"),
        &[("x-user", "jason"), ("host", "h")],
    );
    for action in [&forward, &direct] {
        for seed in [0, 400_000, 999_999] {
            let copied = decide(action, &request, &mut SequenceRandom::new([seed]));
            let mut head = request.clone();
            let taken = decide_taking_headers(action, &mut head, &mut SequenceRandom::new([seed]));
            assert_eq!(format!("{copied:?}"), format!("{taken:?}"), "seed {seed}");
            let forwarded = matches!(taken, Decision::Forward(_));
            assert_eq!(head.headers.is_empty(), forwarded, "seed {seed}");
            assert_eq!(head.authority.is_empty(), forwarded, "seed {seed}");
            assert_eq!(head.path.is_empty(), forwarded, "seed {seed}");
        }
    }
}
