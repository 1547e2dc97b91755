use std::time::Duration;

use super::{build, clock, endpoints, key, pick_octet, zero_random};
use crate::rt::{Clock, Instant, SequenceRandom};
use crate::{
    cluster::{Cluster, ClusterSpec, LbPolicy, PickContext, Picked},
    outlier::{EjectionKind, IstioOutlierDetection, Outcome, OutlierConfig},
};

fn picked(c: &Cluster, i: u8) -> Picked {
    // Round robin over all endpoints reaches any of them; find the one wanted.
    for _ in 0..c.endpoints().len() * 2 {
        let p = c
            .pick(&PickContext::default(), Instant::ZERO, &mut zero_random())
            .unwrap();
        if p.key() == &key(i) {
            return p;
        }
    }
    panic!("endpoint {i} not pickable");
}

fn fail(c: &Cluster, p: &Picked, status: u16, times: u32, now: Instant) -> Option<EjectionKind> {
    let mut last = None;
    for _ in 0..times {
        last = c
            .report(p, Outcome::Response(status), now, &mut zero_random())
            .or(last);
    }
    last
}

fn spec(n: u8, config: OutlierConfig) -> ClusterSpec {
    ClusterSpec::new("od", endpoints(n))
        .with_lb(LbPolicy::RoundRobin)
        .with_outlier(config)
        .with_healthy_panic_threshold(Some(0.0))
}

fn secs(s: u64) -> Instant {
    Instant::from_elapsed(Duration::from_secs(s))
}

#[test]
fn outlier_ejection_time_grows_with_each_ejection_and_unejects_on_sweeps() {
    let config = OutlierConfig {
        max_ejection_percent: 100,
        ..OutlierConfig::default()
    };
    let c = build(&spec(2, config));
    let p = picked(&c, 1);
    assert_eq!(fail(&c, &p, 500, 4, secs(0)), None);
    assert_eq!(
        fail(&c, &p, 500, 1, secs(0)),
        Some(EjectionKind::Consecutive5xx)
    );
    assert!(c.endpoint(&key(1)).unwrap().is_ejected());
    // Ejected endpoints are not picked.
    let mut r = zero_random();
    assert!((0..4).all(|_| pick_octet(&c, secs(1), &mut r) == 2));
    // Sweeps run every 10 s; base ejection 30 s × 1.
    assert_eq!(c.tick(secs(20)), Some(secs(30)));
    assert!(c.endpoint(&key(1)).unwrap().is_ejected());
    c.tick(secs(30));
    assert!(!c.endpoint(&key(1)).unwrap().is_ejected());
    let status = c.endpoint(&key(1)).unwrap().outlier_status();
    assert_eq!(
        (
            status.num_ejections,
            status.multiplier,
            status.consecutive_5xx
        ),
        (1, 1, 0)
    );

    // Second ejection at 35 s lasts 2 × 30 s: still out at the 90 s sweep, back at 100 s.
    assert_eq!(
        fail(&c, &p, 503, 5, secs(35)),
        Some(EjectionKind::Consecutive5xx)
    );
    c.tick(secs(40));
    c.tick(secs(90));
    assert!(c.endpoint(&key(1)).unwrap().is_ejected());
    c.tick(secs(100));
    assert!(!c.endpoint(&key(1)).unwrap().is_ejected());
    assert_eq!(c.endpoint(&key(1)).unwrap().outlier_status().multiplier, 2);
}

#[test]
fn ejection_time_is_capped_by_max_ejection_time() {
    let config = OutlierConfig {
        max_ejection_time: Duration::from_secs(300),
        ..OutlierConfig::default()
    };
    assert_eq!(config.ejection_duration(1), Duration::from_secs(30));
    assert_eq!(config.ejection_duration(10), Duration::from_secs(300));
    assert_eq!(config.ejection_duration(50), Duration::from_secs(300));
    // The multiplier stops growing once base × m reaches max + base.
    let c = build(&spec(
        1,
        OutlierConfig {
            max_ejection_percent: 100,
            consecutive_5xx: 1,
            base_ejection_time: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(20),
            interval: Duration::from_secs(1),
            ..OutlierConfig::default()
        },
    ));
    let p = picked(&c, 1);
    let mut t = 0;
    for _ in 0..5 {
        assert!(fail(&c, &p, 500, 1, secs(t)).is_some());
        t += 25;
        c.tick(secs(t));
        assert!(!c.endpoint(&key(1)).unwrap().is_ejected());
    }
    assert_eq!(c.endpoint(&key(1)).unwrap().outlier_status().multiplier, 3);
}

#[test]
fn multiplier_decreases_after_a_healthy_interval() {
    let c = build(&spec(
        1,
        OutlierConfig {
            max_ejection_percent: 100,
            consecutive_5xx: 1,
            ..OutlierConfig::default()
        },
    ));
    let p = picked(&c, 1);
    fail(&c, &p, 500, 1, secs(0));
    c.tick(secs(30));
    assert_eq!(c.endpoint(&key(1)).unwrap().outlier_status().multiplier, 1);
    c.tick(secs(40));
    assert_eq!(c.endpoint(&key(1)).unwrap().outlier_status().multiplier, 0);
}

#[test]
fn gateway_errors_eject_only_when_enforced() {
    // Envoy's defaults: gateway failure detection is not enforced; 5xx is.
    let c = build(&spec(
        2,
        OutlierConfig {
            max_ejection_percent: 100,
            consecutive_5xx: 0,
            ..OutlierConfig::default()
        },
    ));
    let p = picked(&c, 1);
    assert_eq!(fail(&c, &p, 502, 10, secs(0)), None);

    // Istio's consecutiveGatewayErrors: 3 gateway errors eject; with consecutive5xxErrors 0,
    // other 5xx do not count. The deprecated consecutiveErrors is ignored, as pilot does.
    let (config, panic) = OutlierConfig::from_istio(&IstioOutlierDetection {
        consecutive_errors: 1,
        consecutive_5xx_errors: Some(0),
        consecutive_gateway_errors: Some(3),
        max_ejection_percent: 100,
        ..IstioOutlierDetection::default()
    });
    let c = build(&spec(2, config).with_healthy_panic_threshold(panic));
    let p = picked(&c, 1);
    assert_eq!(fail(&c, &p, 500, 10, secs(0)), None);
    assert_eq!(fail(&c, &p, 504, 2, secs(0)), None);
    assert_eq!(fail(&c, &p, 200, 1, secs(0)), None, "a success resets");
    assert_eq!(
        fail(&c, &p, 502, 3, secs(0)),
        Some(EjectionKind::ConsecutiveGatewayFailure)
    );
}

#[test]
fn istio_mapping_ignores_the_deprecated_field() {
    let (config, panic) = OutlierConfig::from_istio(&IstioOutlierDetection {
        consecutive_errors: 3,
        consecutive_5xx_errors: Some(7),
        consecutive_gateway_errors: Some(0),
        max_ejection_percent: 0,
        min_health_percent: -1,
        ..IstioOutlierDetection::default()
    });
    assert_eq!(
        (config.consecutive_5xx, config.enforcing_consecutive_5xx),
        (7, 100)
    );
    assert_eq!(
        (
            config.consecutive_gateway_failure,
            config.enforcing_consecutive_gateway_failure
        ),
        (0, 0)
    );
    assert_eq!(config.max_ejection_percent, 10);
    assert_eq!(panic, None);

    // consecutiveErrors alone: Envoy's defaults, as pilot leaves them.
    let (config, _) = OutlierConfig::from_istio(&IstioOutlierDetection {
        consecutive_errors: 3,
        ..IstioOutlierDetection::default()
    });
    assert_eq!(config, OutlierConfig::default());
}

#[test]
fn local_origin_failures_count_separately_when_split() {
    let config = OutlierConfig {
        max_ejection_percent: 100,
        split_external_local_origin_errors: true,
        consecutive_local_origin_failure: 2,
        ..OutlierConfig::default()
    };
    let c = build(&spec(2, config));
    let p = picked(&c, 1);
    let mut r = zero_random();
    assert_eq!(c.report(&p, Outcome::ConnectFailed, secs(0), &mut r), None);
    assert_eq!(
        c.report(&p, Outcome::ConnectSucceeded, secs(0), &mut r),
        None
    );
    assert_eq!(c.report(&p, Outcome::Timeout, secs(0), &mut r), None);
    // Local failures do not count as 5xx when split.
    assert_eq!(
        c.endpoint(&key(1))
            .unwrap()
            .outlier_status()
            .consecutive_5xx,
        0
    );
    assert_eq!(
        c.report(&p, Outcome::Reset, secs(0), &mut r),
        Some(EjectionKind::ConsecutiveLocalOriginFailure)
    );

    // Not split: a connect failure is a 503 for the 5xx detector.
    let c = build(&spec(
        2,
        OutlierConfig {
            max_ejection_percent: 100,
            consecutive_5xx: 2,
            ..OutlierConfig::default()
        },
    ));
    let p = picked(&c, 1);
    assert_eq!(c.report(&p, Outcome::ConnectFailed, secs(0), &mut r), None);
    assert_eq!(
        c.report(&p, Outcome::Timeout, secs(0), &mut r),
        Some(EjectionKind::Consecutive5xx)
    );
}

#[test]
fn max_ejection_percent_limits_ejections() {
    let c = build(&spec(
        4,
        OutlierConfig {
            max_ejection_percent: 50,
            consecutive_5xx: 1,
            ..OutlierConfig::default()
        },
    ));
    for i in 1..=4 {
        let p = picked(&c, i);
        fail(&c, &p, 500, 1, secs(0));
    }
    // 0 % and 25 % ejected are below 50 %; at 50 % no more ejections.
    assert_eq!(c.ejected_count(), 2);
    // Envoy's default 10 % still ejects the first host of a small cluster (0 % < 10 %).
    let c = build(&spec(
        3,
        OutlierConfig {
            consecutive_5xx: 1,
            ..OutlierConfig::default()
        },
    ));
    for i in 1..=3 {
        let p = picked(&c, i);
        fail(&c, &p, 500, 1, secs(0));
    }
    assert_eq!(c.ejected_count(), 1);
}

#[test]
fn enforcing_percentage_draws_a_random_value() {
    let config = OutlierConfig {
        max_ejection_percent: 100,
        consecutive_5xx: 1,
        enforcing_consecutive_5xx: 30,
        ..OutlierConfig::default()
    };
    let c = build(&spec(2, config));
    let p = picked(&c, 1);
    let mut r = SequenceRandom::new([30]);
    assert_eq!(
        c.report(&p, Outcome::Response(500), secs(0), &mut r),
        None,
        "30 % 100 is not < 30"
    );
    assert_eq!(r.draws(), 1);
    let p2 = picked(&c, 2);
    let mut r = SequenceRandom::new([129]);
    assert!(
        c.report(&p2, Outcome::Response(500), secs(0), &mut r)
            .is_some(),
        "29 < 30"
    );
}

#[test]
fn panic_mode_balances_across_all_endpoints() {
    let config = OutlierConfig {
        max_ejection_percent: 100,
        consecutive_5xx: 1,
        ..OutlierConfig::default()
    };
    // 3 of 4 ejected: 25 % healthy < 50 % threshold → panic, all four are picked.
    let c = build(
        &ClusterSpec::new("p", endpoints(4))
            .with_lb(LbPolicy::RoundRobin)
            .with_outlier(config),
    );
    for i in 1..=3 {
        let p = picked(&c, i);
        fail(&c, &p, 500, 1, secs(0));
    }
    assert_eq!(c.ejected_count(), 3);
    assert!(c.in_panic());
    let mut r = zero_random();
    let mut picks: Vec<u8> = (0..4).map(|_| pick_octet(&c, secs(1), &mut r)).collect();
    picks.sort_unstable();
    assert_eq!(picks, [1, 2, 3, 4]);

    // Threshold 0 (Istio with outlier detection): no panic, only the healthy one.
    let c = build(&spec(4, config));
    for i in 1..=3 {
        let p = picked(&c, i);
        fail(&c, &p, 500, 1, secs(0));
    }
    assert!(!c.in_panic());
    assert!((0..4).all(|_| pick_octet(&c, secs(1), &mut r) == 4));
    // ... and with every endpoint ejected there is nothing to pick.
    let p = picked(&c, 4);
    fail(&c, &p, 500, 1, secs(1));
    assert!(c.pick(&PickContext::default(), secs(1), &mut r).is_none());
}

#[test]
fn picks_run_the_sweep_lazily() {
    let c = build(&spec(
        2,
        OutlierConfig {
            max_ejection_percent: 100,
            consecutive_5xx: 1,
            ..OutlierConfig::default()
        },
    ));
    let p = picked(&c, 1);
    fail(&c, &p, 500, 1, secs(0));
    let clock = clock();
    clock.advance(Duration::from_secs(31));
    let mut r = zero_random();
    let picks: Vec<u8> = (0..2)
        .map(|_| pick_octet(&c, clock.now(), &mut r))
        .collect();
    assert!(picks.contains(&1), "{picks:?}");
}
