use std::sync::Arc;
use std::time::Duration;

use super::{endpoints, key, pick_octet, zero_random};
use crate::cluster::{ClusterSet, Swap};
use crate::cluster::{ClusterSpec, EndpointSpec, LbPolicy, PickContext};
use crate::outlier::{Outcome, OutlierConfig};
use crate::pool::{PoolLimits, PoolResource};
use crate::rt::Instant;

fn spec(endpoints: Vec<EndpointSpec>) -> ClusterSpec {
    ClusterSpec::new("a", endpoints)
        .with_lb(LbPolicy::RoundRobin)
        .with_pool(PoolLimits::default().with_max_requests(10))
        .with_outlier(OutlierConfig {
            consecutive_5xx: 1,
            max_ejection_percent: 100,
            ..OutlierConfig::default()
        })
        .with_healthy_panic_threshold(Some(0.0))
}

#[test]
fn state_carries_over_across_a_swap() {
    let t0 = Instant::ZERO;
    let v1 = ClusterSet::build(
        [spec(endpoints(3)), ClusterSpec::new("gone", endpoints(1))].iter(),
        None,
        t0,
    )
    .unwrap();
    let plan = Swap::new(Arc::new(v1));

    let old = plan.load();
    let a1 = old.get("a").unwrap().clone();
    let mut r = zero_random();
    // Host 1 ejected, a request in flight, round robin moved on.
    let p1 = a1.pick(&PickContext::default(), t0, &mut r).unwrap();
    assert_eq!(p1.key(), &key(1));
    a1.report(&p1, Outcome::Response(500), t0, &mut r);
    let permit = a1.try_request().unwrap();
    let active = a1.pick(&PickContext::default(), t0, &mut r).unwrap();
    let _in_flight = active.start_request();
    let position = a1.state().round_robin_position();

    assert_eq!(active.key(), &key(3));

    // New plan: host 2 removed, host 4 added, "gone" dropped.
    let mut eps = endpoints(3);
    eps.remove(1);
    eps.push(EndpointSpec::new("10.0.0.4", 80));
    let v2 = ClusterSet::build(
        [spec(eps)].iter(),
        Some(&old),
        Instant::from_elapsed(Duration::from_secs(1)),
    )
    .unwrap();
    plan.store(Arc::new(v2));

    let new = plan.load();
    assert!(new.get("gone").is_none());
    assert!(
        old.get("gone").is_some(),
        "the old plan is intact for requests holding it"
    );
    let a2 = new.get("a").unwrap();
    assert!(Arc::ptr_eq(a1.state(), a2.state()));
    assert!(a2.endpoint(&key(1)).unwrap().is_ejected());
    assert!(
        !a2.endpoint(&EndpointSpec::new("10.0.0.4", 80).key)
            .unwrap()
            .is_ejected()
    );
    assert_eq!(a2.endpoint(active.key()).unwrap().active_requests(), 1);
    assert_eq!(a2.state().round_robin_position(), position);
    assert_eq!(a2.state().pool_usage(PoolResource::Requests), 1);

    // The old request gives its permit back to the shared counter.
    drop(permit);
    assert_eq!(a2.state().pool_usage(PoolResource::Requests), 0);
    // The ejection still ends on the old schedule, now swept by the new cluster.
    a2.tick(Instant::from_elapsed(Duration::from_secs(30)));
    assert!(!a2.endpoint(&key(1)).unwrap().is_ejected());
    // Round robin continues over the new endpoint list.
    let mut r = zero_random();
    let next: Vec<u8> = (0..3)
        .map(|_| pick_octet(a2, Instant::from_elapsed(Duration::from_secs(30)), &mut r))
        .collect();
    let mut sorted = next.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 3, 4], "{next:?}");
}

#[test]
fn swap_update_keeps_the_old_value_on_error() {
    let swap = Swap::new(Arc::new(1));
    assert!(swap.update(|v| Ok::<_, ()>(v + 1)).is_ok());
    assert_eq!(*swap.load(), 2);
    assert!(swap.update(|_| Err("bad config")).is_err());
    assert_eq!(*swap.load(), 2);
}
