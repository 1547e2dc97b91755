use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};

use super::{build, clock, endpoints, key};
use crate::retry::Backoff;
use crate::rt::{Clock, Instant, SequenceRandom};
use crate::{
    cluster::{ClusterSpec, LbPolicy},
    pool::{PoolLimits, PoolResource},
    retry::{Action, Attempt, ErrorKind, Event, GiveUpReason, RetryOn, RetryPolicy, RetryState},
};

fn policy(retries: i32, per_try: Option<Duration>, retry_on: &str) -> Option<Arc<RetryPolicy>> {
    RetryPolicy::from_istio(retries, per_try, retry_on, false).map(Arc::new)
}

fn response(status: u16) -> (StatusCode, HeaderMap) {
    (StatusCode::from_u16(status).unwrap(), HeaderMap::new())
}

fn on_response(
    sm: &mut RetryState,
    status: u16,
    headers: &HeaderMap,
    now: Instant,
    r: &mut SequenceRandom,
) -> Action {
    let (status, _) = response(status);
    sm.on_event(Event::Response { status, headers }, now, r)
}

fn expect_send(action: Action) -> Attempt {
    match action {
        Action::Send(attempt) => attempt,
        other => panic!("expected Send, got {other:?}"),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn retriable_status_backs_off_then_tries_another_host_then_succeeds() {
    let c = build(&ClusterSpec::new("r", endpoints(2)).with_lb(LbPolicy::Random));
    let clock = clock();
    // Draws: first pick (0 → host 1), back-off (7 % 25 = 7 ms), retry pick: 0 (host 1, a
    // previous host, so picked again) then 1 (host 2).
    let mut r = SequenceRandom::new([0, 7, 0, 1]);
    let mut sm = RetryState::new(c.clone(), policy(2, None, "5xx"), Duration::ZERO);
    let first = expect_send(sm.start(clock.now(), &mut r));
    assert_eq!(
        (first.endpoint.clone(), first.number, first.deadline),
        (key(1), 1, None)
    );

    let headers = HeaderMap::new();
    let action = on_response(&mut sm, 503, &headers, clock.now(), &mut r);
    assert_eq!(
        action,
        Action::Backoff {
            until: Instant::from_elapsed(ms(7))
        }
    );
    assert_eq!(sm.next_deadline(), Some(Instant::from_elapsed(ms(7))));
    assert_eq!(c.state().pool_usage(PoolResource::Retries), 1);

    clock.advance(ms(3));
    assert_eq!(
        sm.on_event(Event::Timer, clock.now(), &mut r),
        Action::Ignore,
        "early timer"
    );
    clock.advance(ms(4));
    let second = expect_send(sm.on_event(Event::Timer, clock.now(), &mut r));
    assert_eq!((second.endpoint.clone(), second.number), (key(2), 2));
    assert_eq!(r.draws(), 4);

    assert_eq!(
        on_response(&mut sm, 200, &headers, clock.now(), &mut r),
        Action::Deliver
    );
    assert_eq!(
        c.state().pool_usage(PoolResource::Retries),
        0,
        "released once the retry's outcome is known"
    );
    assert_eq!(
        c.state().pool_usage(PoolResource::Requests),
        1,
        "held while delivering"
    );
    assert_eq!(
        sm.on_event(Event::ResponseComplete, clock.now(), &mut r),
        Action::Done
    );
    assert_eq!(c.state().pool_usage(PoolResource::Requests), 0);
    assert_eq!(sm.tried(), [key(1), key(2)]);
}

#[test]
fn non_retriable_or_exhausted_responses_are_delivered() {
    let c = build(&ClusterSpec::new("r", endpoints(2)).with_lb(LbPolicy::RoundRobin));
    let mut r = SequenceRandom::new([0]);
    let headers = HeaderMap::new();
    // Istio's default conditions do not include 5xx.
    let mut sm = RetryState::new(
        c.clone(),
        Some(Arc::new(RetryPolicy::istio_default())),
        Duration::ZERO,
    );
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert_eq!(
        on_response(&mut sm, 503, &headers, Instant::ZERO, &mut r),
        Action::Deliver
    );

    // One retry, then the second 503 goes downstream.
    let mut sm = RetryState::new(c.clone(), policy(1, None, "503"), Duration::ZERO);
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert!(matches!(
        on_response(&mut sm, 503, &headers, Instant::ZERO, &mut r),
        Action::Backoff { .. }
    ));
    expect_send(sm.on_event(Event::Timer, Instant::from_elapsed(ms(30)), &mut r));
    assert_eq!(
        on_response(&mut sm, 503, &headers, Instant::ZERO, &mut r),
        Action::Deliver
    );

    // An upstream's x-envoy-overloaded response is never retried.
    let mut sm = RetryState::new(c, policy(3, None, "5xx"), Duration::ZERO);
    expect_send(sm.start(Instant::ZERO, &mut r));
    let mut overloaded = HeaderMap::new();
    overloaded.insert("x-envoy-overloaded", "true".parse().unwrap());
    assert_eq!(
        on_response(&mut sm, 503, &overloaded, Instant::ZERO, &mut r),
        Action::Deliver
    );
}

#[test]
fn grpc_status_and_connection_errors_map_to_retry_on_conditions() {
    let on = RetryOn::parse(crate::retry::ISTIO_DEFAULT_RETRY_ON);
    let mut grpc = HeaderMap::new();
    grpc.insert("grpc-status", "14".parse().unwrap());
    assert!(on.response_is_retriable(StatusCode::OK, &grpc, &[]));
    grpc.insert("grpc-status", "13".parse().unwrap());
    assert!(!on.response_is_retriable(StatusCode::OK, &grpc, &[]));
    assert!(on.error_is_retriable(ErrorKind::ConnectFailure));
    assert!(on.error_is_retriable(ErrorKind::RefusedStream));
    assert!(!on.error_is_retriable(ErrorKind::Reset));
    assert!(!on.error_is_retriable(ErrorKind::Overflow));
    assert!(!on.timeout_is_retriable());
    let reset = RetryOn::parse("reset");
    assert!(reset.error_is_retriable(ErrorKind::Reset) && reset.timeout_is_retriable());
    let codes = RetryOn::parse("retriable-status-codes,retriable-4xx");
    assert!(codes.response_is_retriable(StatusCode::CONFLICT, &HeaderMap::new(), &[]));
    assert!(codes.response_is_retriable(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), &[429]));
    assert!(!codes.response_is_retriable(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), &[]));
}

#[test]
fn connect_failure_is_retried_and_exhaustion_answers_503() {
    let c = build(&ClusterSpec::new("r", endpoints(2)).with_lb(LbPolicy::RoundRobin));
    let mut r = SequenceRandom::new([0]);
    let mut sm = RetryState::new(
        c,
        Some(Arc::new(RetryPolicy::istio_default().with_num_retries(1))),
        Duration::ZERO,
    );
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert_eq!(
        sm.on_event(
            Event::Error(ErrorKind::ConnectFailure),
            Instant::ZERO,
            &mut r
        ),
        Action::Backoff {
            until: Instant::ZERO
        }
    );
    expect_send(sm.on_event(Event::Timer, Instant::ZERO, &mut r));
    let Action::GiveUp { reply, reason } = sm.on_event(
        Event::Error(ErrorKind::ConnectFailure),
        Instant::ZERO,
        &mut r,
    ) else {
        panic!("expected give-up");
    };
    assert_eq!(reason, GiveUpReason::Upstream(ErrorKind::ConnectFailure));
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure"
    );
    // Events after the end are ignored.
    assert_eq!(
        sm.on_event(Event::Timer, Instant::ZERO, &mut r),
        Action::Ignore
    );
}

#[test]
fn per_try_timeout_retries_then_answers_504() {
    let c = build(&ClusterSpec::new("r", endpoints(2)).with_lb(LbPolicy::RoundRobin));
    let clock = clock();
    let mut r = SequenceRandom::new([10]);
    let mut sm = RetryState::new(
        c,
        policy(1, Some(Duration::from_secs(1)), "5xx"),
        Duration::from_secs(5),
    );
    let first = expect_send(sm.start(clock.now(), &mut r));
    assert_eq!(
        first.deadline,
        Some(Instant::from_elapsed(Duration::from_secs(1)))
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        sm.on_event(Event::Timer, clock.now(), &mut r),
        Action::Backoff {
            until: clock.now().saturating_add(ms(10))
        }
    );
    clock.advance(ms(10));
    let second = expect_send(sm.on_event(Event::Timer, clock.now(), &mut r));
    assert_eq!(second.endpoint, key(2));
    assert_eq!(
        second.deadline,
        Some(clock.now().saturating_add(Duration::from_secs(1)))
    );
    clock.advance(Duration::from_secs(1));
    let Action::GiveUp { reply, reason } = sm.on_event(Event::PerTryTimeout, clock.now(), &mut r)
    else {
        panic!("expected give-up");
    };
    assert_eq!(reason, GiveUpReason::PerTryTimeout);
    assert_eq!(reply.status, 504);
    assert_eq!(reply.body, "upstream request timeout");
}

#[test]
fn overall_timeout_ends_backoff_in_flight_and_delivery() {
    let c = build(&ClusterSpec::new("r", endpoints(1)));
    let headers = HeaderMap::new();
    let mut r = SequenceRandom::new([24]);
    // The overall deadline caps the attempt deadline.
    let mut sm = RetryState::new(
        c.clone(),
        policy(5, Some(Duration::from_secs(10)), "5xx"),
        ms(20),
    );
    assert_eq!(
        expect_send(sm.start(Instant::ZERO, &mut r)).deadline,
        Some(Instant::from_elapsed(ms(20)))
    );
    // Back-off until 24 ms, but the overall timer fires at 20 ms.
    assert!(matches!(
        on_response(&mut sm, 500, &headers, Instant::ZERO, &mut r),
        Action::Backoff { .. }
    ));
    assert_eq!(sm.next_deadline(), Some(Instant::from_elapsed(ms(20))));
    let Action::GiveUp { reply, reason } =
        sm.on_event(Event::Timer, Instant::from_elapsed(ms(20)), &mut r)
    else {
        panic!("expected timeout");
    };
    assert_eq!(
        (reply.status.as_u16(), reason),
        (504, GiveUpReason::Timeout)
    );
    assert_eq!(c.state().pool_usage(PoolResource::Retries), 0);

    // In flight.
    let mut sm = RetryState::new(c.clone(), None, ms(20));
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert!(matches!(
        sm.on_event(Event::GlobalTimeout, Instant::from_elapsed(ms(20)), &mut r),
        Action::GiveUp {
            reason: GiveUpReason::Timeout,
            ..
        }
    ));

    // While the body streams: reset.
    let mut sm = RetryState::new(c, None, ms(20));
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert_eq!(
        on_response(&mut sm, 200, &headers, Instant::ZERO, &mut r),
        Action::Deliver
    );
    assert_eq!(sm.next_deadline(), Some(Instant::from_elapsed(ms(20))));
    assert_eq!(
        sm.on_event(Event::Timer, Instant::from_elapsed(ms(20)), &mut r),
        Action::Reset
    );
}

#[test]
fn retries_budget_is_the_pools_max_retries() {
    let c = build(
        &ClusterSpec::new("r", endpoints(2))
            .with_lb(LbPolicy::RoundRobin)
            .with_pool(PoolLimits::default().with_max_retries(1)),
    );
    let headers = HeaderMap::new();
    let mut r = SequenceRandom::new([0]);
    let mut a = RetryState::new(c.clone(), policy(3, None, "5xx"), Duration::ZERO);
    let mut b = RetryState::new(c.clone(), policy(3, None, "5xx"), Duration::ZERO);
    expect_send(a.start(Instant::ZERO, &mut r));
    expect_send(b.start(Instant::ZERO, &mut r));
    assert!(matches!(
        on_response(&mut a, 503, &headers, Instant::ZERO, &mut r),
        Action::Backoff { .. }
    ));
    // The budget is taken: b's 503 goes downstream as is.
    assert_eq!(
        on_response(&mut b, 503, &headers, Instant::ZERO, &mut r),
        Action::Deliver
    );
    drop(a);
    assert_eq!(c.state().pool_usage(PoolResource::Retries), 0);
}

#[test]
fn no_endpoint_answers_no_healthy_upstream() {
    let c = build(&ClusterSpec::new("empty", vec![]));
    let mut sm = RetryState::new(c, None, Duration::ZERO);
    let Action::GiveUp { reply, reason } = sm.start(Instant::ZERO, &mut SequenceRandom::new([0]))
    else {
        panic!("expected give-up");
    };
    assert_eq!(
        (reply.status.as_u16(), reason),
        (503, GiveUpReason::NoHealthyUpstream)
    );
    assert_eq!(reply.body, "no healthy upstream");
}

#[test]
fn retries_report_outcomes_to_outlier_detection() {
    let c = build(
        &ClusterSpec::new("r", endpoints(2))
            .with_lb(LbPolicy::RoundRobin)
            .with_outlier(crate::outlier::OutlierConfig {
                consecutive_5xx: 1,
                max_ejection_percent: 100,
                ..Default::default()
            })
            .with_healthy_panic_threshold(Some(0.0)),
    );
    let mut r = SequenceRandom::new([0]);
    let mut sm = RetryState::new(c.clone(), policy(1, None, "5xx"), Duration::ZERO);
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert!(matches!(
        sm.on_event(Event::Error(ErrorKind::Reset), Instant::ZERO, &mut r),
        Action::Backoff { .. }
    ));
    assert!(c.endpoint(&key(1)).unwrap().is_ejected());
}

#[test]
fn backoff_is_jittered_exponential_capped_at_ten_times_base() {
    let mut backoff = Backoff::new(ms(25));
    // 999 % n = n - 1 for every interval below.
    let mut r = SequenceRandom::new([999]);
    let waits: Vec<u64> = (0..6)
        .map(|_| backoff.next(&mut r).as_millis() as u64)
        .collect();
    assert_eq!(waits, [24, 49, 99, 199, 249, 249]);
}

#[test]
fn request_header_adds_retriable_status_codes() {
    let c = build(&ClusterSpec::new("r", endpoints(1)));
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-envoy-retriable-status-codes",
        "418, 429".parse().unwrap(),
    );
    let mut r = SequenceRandom::new([0]);
    let mut sm = RetryState::new(
        c,
        Some(Arc::new(RetryPolicy::istio_default())),
        Duration::ZERO,
    )
    .with_request_headers(&headers);
    expect_send(sm.start(Instant::ZERO, &mut r));
    assert!(matches!(
        on_response(&mut sm, 429, &HeaderMap::new(), Instant::ZERO, &mut r),
        Action::Backoff { .. }
    ));
}

#[test]
fn downstream_failures_are_not_retried_nor_counted_against_the_endpoint() {
    use crate::{
        failure::{DownstreamFailure, FailureOrigin},
        outlier::OutlierConfig,
    };
    let config = OutlierConfig {
        consecutive_5xx: 3,
        max_ejection_percent: 100,
        ..OutlierConfig::default()
    };
    let c = build(
        &ClusterSpec::new("r", endpoints(1))
            .with_lb(LbPolicy::RoundRobin)
            .with_outlier(config)
            .with_healthy_panic_threshold(Some(0.0)),
    );
    let mut r = SequenceRandom::new([0]);
    for failure in [
        DownstreamFailure::ProtocolError,
        DownstreamFailure::Disconnect,
        DownstreamFailure::ProtocolError,
        DownstreamFailure::Disconnect,
    ] {
        let kind = ErrorKind::Downstream(failure);
        assert_eq!(kind.origin(), FailureOrigin::Downstream);
        // A policy that retries everything upstream-side: still no retry.
        let mut sm = RetryState::new(
            Arc::clone(&c),
            policy(3, None, "5xx,reset,connect-failure"),
            Duration::ZERO,
        );
        expect_send(sm.start(Instant::ZERO, &mut r));
        let Action::GiveUp { reply, reason } =
            sm.on_event(Event::Error(kind), Instant::ZERO, &mut r)
        else {
            panic!("expected give-up");
        };
        assert_eq!(reason, GiveUpReason::Downstream(failure));
        assert_eq!(reply.status, failure.status());
        assert_eq!(sm.attempts(), 1);
    }
    let status = c.endpoints()[0].outlier_status();
    assert!(!status.ejected);
    assert_eq!(
        (status.consecutive_5xx, status.num_ejections),
        (0, 0),
        "{status:?}"
    );
    // The endpoint still serves, and upstream resets still count.
    for _ in 0..3 {
        let mut sm = RetryState::new(Arc::clone(&c), None, Duration::ZERO);
        expect_send(sm.start(Instant::ZERO, &mut r));
        sm.on_event(Event::Error(ErrorKind::Reset), Instant::ZERO, &mut r);
    }
    assert!(c.endpoints()[0].outlier_status().ejected);
}

#[test]
fn downstream_failures_classify_like_envoy() {
    use crate::failure::DownstreamFailure;
    use std::io::ErrorKind as Io;
    assert_eq!(
        DownstreamFailure::from_io_error_kind(Io::InvalidData),
        DownstreamFailure::ProtocolError
    );
    for kind in [
        Io::UnexpectedEof,
        Io::ConnectionReset,
        Io::BrokenPipe,
        Io::Other,
    ] {
        assert_eq!(
            DownstreamFailure::from_io_error_kind(kind),
            DownstreamFailure::Disconnect
        );
    }
    assert_eq!(
        DownstreamFailure::from_io_error_kind(Io::TimedOut).response_flag(),
        "SI"
    );
    assert_eq!(
        DownstreamFailure::from_h2_error_code(0x8),
        DownstreamFailure::Disconnect
    );
    assert_eq!(
        DownstreamFailure::from_h2_error_code(0x1),
        DownstreamFailure::ProtocolError
    );
    assert!(
        !RetryOn::parse("5xx,reset,gateway-error,connect-failure")
            .error_is_retriable(ErrorKind::Downstream(DownstreamFailure::Disconnect))
    );
}
