use std::time::Duration;

use super::{build, endpoints, zero_random};
use crate::rt::Instant;
use crate::{
    cluster::ClusterSpec,
    pool::{PoolLimits, PoolResource},
    retry::{Action, GiveUpReason, RetryState},
};

#[test]
fn pool_overflow_answers_503_with_x_envoy_overloaded() {
    let c = build(
        &ClusterSpec::new("p", endpoints(1)).with_pool(PoolLimits::default().with_max_requests(1)),
    );
    let mut r = zero_random();
    let mut first = RetryState::new(c.clone(), None, Duration::ZERO);
    assert!(matches!(
        first.start(Instant::ZERO, &mut r),
        Action::Send(_)
    ));
    assert_eq!(c.state().pool_usage(PoolResource::Requests), 1);

    let mut second = RetryState::new(c.clone(), None, Duration::ZERO);
    let Action::GiveUp { reply, reason } = second.start(Instant::ZERO, &mut r) else {
        panic!("expected an overflow");
    };
    assert_eq!(reason, GiveUpReason::Overflow(PoolResource::Requests));
    assert_eq!(reply.status, 503);
    assert_eq!(reply.headers["x-envoy-overloaded"], "true");
    assert_eq!(
        reply.body,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow"
    );

    drop(first);
    assert_eq!(c.state().pool_usage(PoolResource::Requests), 0);
    let mut third = RetryState::new(c, None, Duration::ZERO);
    assert!(matches!(
        third.start(Instant::ZERO, &mut r),
        Action::Send(_)
    ));
}

#[test]
fn connection_and_pending_limits_are_admission_counters() {
    let limits = PoolLimits::default()
        .with_max_connections(1)
        .with_max_pending_requests(1)
        .with_max_requests_per_connection(Some(2));
    let c = build(&ClusterSpec::new("p", endpoints(1)).with_pool(limits));
    let conn = c.try_connection().unwrap();
    assert_eq!(
        c.try_connection().unwrap_err().resource,
        PoolResource::Connections
    );
    let pending = c.try_pending().unwrap();
    let overflow = c.try_pending().unwrap_err();
    assert_eq!(overflow.resource, PoolResource::PendingRequests);
    assert_eq!(overflow.local_reply().headers["x-envoy-overloaded"], "true");
    drop(pending);
    assert!(c.try_pending().is_ok());

    assert!(conn.try_take_request());
    assert!(conn.accepts_requests());
    assert!(conn.try_take_request());
    assert!(!conn.accepts_requests());
    assert!(!conn.try_take_request());
    assert_eq!(conn.requests(), 2);
    drop(conn);
    assert!(c.try_connection().is_ok());
}
