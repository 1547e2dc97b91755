use std::time::Duration;

use http::{Method, StatusCode};

use super::{SVC_A, expect_forward, get, http, with_headers};
use crate::action::{DirectResponseAction, ForwardAction, RouteAction};
use crate::cors::{Cors, OriginMatch};
use crate::decide;
use crate::decide::Decision;
use crate::error::InvalidAction;
use crate::fault::{AbortStatus, Fault, FaultAbort, FaultDelay, grpc_status_code};
use crate::percent::FractionalPercent;
use crate::rt::SequenceRandom;

fn with_fault(fault: Fault) -> RouteAction {
    RouteAction::from(ForwardAction::to_cluster(SVC_A).with_fault(fault))
}

fn abort_http(status: u16, percent: Option<f64>) -> FaultAbort {
    FaultAbort::http(status, percent.map(FractionalPercent::from_istio)).unwrap()
}

#[test]
fn abort_at_100_percent_replies_with_the_status() {
    let abort = abort_http(503, Some(100.0));
    assert_eq!(abort.percentage().per_million(), 1_000_000);
    let action = with_fault(Fault::new().with_abort(abort));
    let mut random = SequenceRandom::new([0, 999_999]);
    match decide(&action, &get("example.com", "/"), &mut random) {
        Decision::FaultAbort(a) => {
            assert_eq!(a.abort, AbortStatus::Http(StatusCode::SERVICE_UNAVAILABLE));
            assert_eq!(a.delay, None);
        }
        other => panic!("expected an abort, got {other:?}"),
    }
    assert_eq!(random.draws(), 2);
}

#[test]
fn abort_without_percentage_never_fires() {
    let abort = abort_http(503, None);
    assert_eq!(abort.percentage().per_million(), 0);
    let action = with_fault(Fault::new().with_abort(abort));
    for r in [0, 1, 999_999] {
        let d = expect_forward(decide(
            &action,
            &get("example.com", "/"),
            &mut SequenceRandom::new([r]),
        ));
        assert_eq!(&*d.cluster, SVC_A);
    }
}

#[test]
fn fractional_abort_percentage_is_per_million_and_sampled() {
    let abort = abort_http(400, Some(0.1));
    assert_eq!(abort.percentage().per_million(), 1000);
    let action = with_fault(Fault::new().with_abort(abort));
    // Draw order: stream value, then the abort draw.
    match decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([7, 999]),
    ) {
        Decision::FaultAbort(a) => assert_eq!(a.abort, AbortStatus::Http(StatusCode::BAD_REQUEST)),
        other => panic!("expected an abort, got {other:?}"),
    }
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([7, 1000]),
    ));
    assert_eq!(&*d.cluster, SVC_A);
    // Only the remainder modulo one million counts.
    assert!(matches!(
        decide(
            &action,
            &get("example.com", "/"),
            &mut SequenceRandom::new([7, 3_000_500])
        ),
        Decision::FaultAbort(_)
    ));
}

#[test]
fn delay_at_100_percent_delays_then_forwards() {
    let delay = FaultDelay::new(
        Duration::from_secs(5),
        Some(FractionalPercent::from_istio(100.0)),
    );
    assert_eq!(delay.percentage().per_million(), 1_000_000);
    let action = with_fault(Fault::new().with_delay(delay));
    let decision = decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0, 0]),
    );
    assert_eq!(decision.delay(), Some(Duration::from_secs(5)));
    let d = expect_forward(decision);
    assert_eq!(&*d.cluster, SVC_A);
}

#[test]
fn delay_without_percentage_never_fires() {
    let delay = FaultDelay::new(Duration::from_secs(5), None);
    assert_eq!(delay.duration(), Duration::from_secs(5));
    assert_eq!(delay.percentage().per_million(), 0);
    let action = with_fault(Fault::new().with_delay(delay));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.delay, None);
}

#[test]
fn grpc_abort_replies_with_the_grpc_status() {
    let code = grpc_status_code("UNAVAILABLE").unwrap();
    assert_eq!(code, 14);
    let action = with_fault(Fault::new().with_abort(FaultAbort::grpc(
        code,
        Some(FractionalPercent::from_istio(100.0)),
    )));
    let head = with_headers(
        get("example.com", "/"),
        &[("content-type", "application/grpc")],
    );
    match decide(&action, &head, &mut SequenceRandom::new([0])) {
        Decision::FaultAbort(a) => assert_eq!(a.abort, AbortStatus::Grpc(14)),
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn delay_is_drawn_before_abort_and_carried_by_the_abort() {
    let fault = Fault::new()
        .with_delay(FaultDelay::new(
            Duration::from_millis(10),
            Some(FractionalPercent::from_istio(50.0)),
        ))
        .with_abort(abort_http(500, Some(50.0)));
    let action = with_fault(fault);
    // stream, delay draw (fires: 0 < 500000), abort draw (fires).
    let mut random = SequenceRandom::new([0, 0, 0]);
    match decide(&action, &get("example.com", "/"), &mut random) {
        Decision::FaultAbort(a) => assert_eq!(a.delay, Some(Duration::from_millis(10))),
        other => panic!("expected an abort, got {other:?}"),
    }
    assert_eq!(random.draws(), 3);
    // Delay does not fire, abort does not fire.
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0, 600_000, 600_000]),
    ));
    assert_eq!(d.delay, None);
}

#[test]
fn fault_runs_before_cors_preflight() {
    let cors = Cors::new().allow_origin(OriginMatch::exact("https://app.example.com"));
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_cors(cors)
            .with_fault(Fault::new().with_abort(abort_http(503, Some(100.0)))),
    );
    let head = with_headers(
        http(Method::OPTIONS, "example.com", "/api"),
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ],
    );
    match decide(&action, &head, &mut SequenceRandom::new([0])) {
        Decision::FaultAbort(a) => {
            assert_eq!(a.abort, AbortStatus::Http(StatusCode::SERVICE_UNAVAILABLE));
        }
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn fault_applies_to_direct_response_routes_too() {
    let action = RouteAction::from(
        DirectResponseAction::new(200, None)
            .unwrap()
            .with_fault(Fault::new().with_abort(abort_http(429, Some(100.0)))),
    );
    assert!(matches!(
        decide(
            &action,
            &get("example.com", "/"),
            &mut SequenceRandom::new([0])
        ),
        Decision::FaultAbort(_)
    ));
}

#[test]
fn abort_status_outside_200_to_599_is_rejected() {
    for code in [0, 199, 600, 1000] {
        assert_eq!(
            FaultAbort::http(code, None).unwrap_err(),
            InvalidAction::FaultAbortStatus { code }
        );
    }
}

#[test]
fn unknown_grpc_status_name_has_no_code() {
    assert_eq!(grpc_status_code("OK"), Some(0));
    assert_eq!(grpc_status_code("UNAUTHENTICATED"), Some(16));
    assert_eq!(grpc_status_code("unavailable"), None);
}

#[test]
fn istio_percent_conversion_truncates_like_pilot() {
    assert_eq!(FractionalPercent::from_istio(0.1).per_million(), 1000);
    assert_eq!(FractionalPercent::from_istio(25.5).per_million(), 255_000);
    assert_eq!(FractionalPercent::from_istio(0.57).per_million(), 5699);
    assert_eq!(FractionalPercent::from_istio(f64::NAN).per_million(), 0);
    assert_eq!(FractionalPercent::from_istio(-3.0).per_million(), 0);
    let hundred = FractionalPercent::from_integer_percent(100);
    assert_eq!(hundred.per_million(), 1_000_000);
    assert!(hundred.sample(u64::MAX));
    assert!(!FractionalPercent::ZERO.sample(0));
}
