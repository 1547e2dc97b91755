use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderMap, Method, uri::Scheme};
use proptest::prelude::*;

use super::{build, endpoints, key, pick_octet, pick_with, zero_random};
use crate::cluster::{
    Cluster, ClusterSpec, EndpointSpec, InvalidCluster, LbPolicy, PickContext, SlowStart,
};
use crate::lb::{ConnectionAddresses, CookieHash, HashPolicy, hash_request, xx_hash64};
use crate::request::RequestHead;
use crate::rt::{Instant, RandomSource, SequenceRandom, SplitMix64};

#[test]
fn xx_hash64_matches_reference_vectors() {
    assert_eq!(xx_hash64(b"", 0), 0xEF46_DB37_51D8_E999);
    assert_eq!(xx_hash64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
    assert_eq!(xx_hash64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
    // 32+ bytes take the four-lane path.
    assert_eq!(
        xx_hash64(b"Nobody inspects the spammish repetition", 0),
        0xFBCE_A83C_8A37_8BF1
    );
}

#[test]
fn round_robin_cycles_endpoints_in_order() {
    let c = build(&ClusterSpec::new("rr", endpoints(3)).with_lb(LbPolicy::RoundRobin));
    let mut r = zero_random();
    let picks: Vec<u8> = (0..7)
        .map(|_| pick_octet(&c, Instant::ZERO, &mut r))
        .collect();
    assert_eq!(picks, [1, 2, 3, 1, 2, 3, 1]);
    assert_eq!(r.draws(), 0, "round robin draws no random value");
}

#[test]
fn weighted_round_robin_is_smooth_and_proportional() {
    let eps = vec![
        EndpointSpec::new("10.0.0.1", 80).with_weight(1),
        EndpointSpec::new("10.0.0.2", 80).with_weight(3),
    ];
    let c = build(&ClusterSpec::new("wrr", eps).with_lb(LbPolicy::RoundRobin));
    let mut r = zero_random();
    let picks: Vec<u8> = (0..8)
        .map(|_| pick_octet(&c, Instant::ZERO, &mut r))
        .collect();
    assert_eq!(picks, [2, 1, 2, 2, 2, 1, 2, 2]);
}

#[test]
fn least_request_p2c_picks_the_less_loaded_of_two_draws() {
    let c = build(&ClusterSpec::new("lr", endpoints(3)));
    let busy = c
        .pick(
            &PickContext::default(),
            Instant::ZERO,
            &mut SequenceRandom::new([0]),
        )
        .unwrap();
    let _g1 = busy.start_request();
    let _g2 = busy.start_request();
    // Draws 0 and 1 sample endpoints 1 and 2: 2 is idle.
    let mut r = SequenceRandom::new([0, 1]);
    assert_eq!(pick_octet(&c, Instant::ZERO, &mut r), 2);
    assert_eq!(r.draws(), 2, "choice_count draws");
    // Order does not matter.
    assert_eq!(
        pick_octet(&c, Instant::ZERO, &mut SequenceRandom::new([1, 0])),
        2
    );
    // Equal load: the first sample wins.
    assert_eq!(
        pick_octet(&c, Instant::ZERO, &mut SequenceRandom::new([2, 1])),
        3
    );
}

#[test]
fn random_picks_draw_modulo_endpoint_count() {
    let c = build(&ClusterSpec::new("rand", endpoints(4)).with_lb(LbPolicy::Random));
    assert_eq!(
        pick_octet(&c, Instant::ZERO, &mut SequenceRandom::new([6])),
        3
    );
}

#[test]
fn previous_hosts_repicks_up_to_max_attempts() {
    let c = build(&ClusterSpec::new("rand", endpoints(3)).with_lb(LbPolicy::Random));
    let avoid = [key(1)];
    let ctx = PickContext {
        avoid: &avoid,
        max_attempts: 5,
        ..PickContext::default()
    };
    let mut r = SequenceRandom::new([0, 0, 4]);
    assert_eq!(pick_with(&c, &ctx, Instant::ZERO, &mut r), 2);
    assert_eq!(r.draws(), 3);
    // Every attempt lands on an avoided host: the last pick is used anyway.
    let ctx = PickContext {
        avoid: &avoid,
        max_attempts: 2,
        ..PickContext::default()
    };
    assert_eq!(pick_with(&c, &ctx, Instant::ZERO, &mut zero_random()), 1);
}

#[test]
fn passthrough_uses_the_original_destination() {
    let c = build(&ClusterSpec::new("orig", vec![]).with_lb(LbPolicy::Passthrough));
    let ctx = PickContext {
        original_destination: Some("192.168.1.9:8443".parse().unwrap()),
        ..PickContext::default()
    };
    let picked = c.pick(&ctx, Instant::ZERO, &mut zero_random()).unwrap();
    assert_eq!(picked.key().to_string(), "192.168.1.9:8443");
    assert!(
        c.pick(&PickContext::default(), Instant::ZERO, &mut zero_random())
            .is_none()
    );
}

#[test]
fn subset_selects_endpoints_by_labels() {
    let eps = vec![
        EndpointSpec::new("10.0.0.1", 80).with_label("version", "v1"),
        EndpointSpec::new("10.0.0.2", 80)
            .with_label("version", "v2")
            .with_label("zone", "a"),
        EndpointSpec::new("10.0.0.3", 80).with_label("version", "v2"),
    ];
    let subset = BTreeMap::from([("version".to_owned(), "v2".to_owned())]);
    let c = build(
        &ClusterSpec::new("outbound|80|v2|svc", eps)
            .with_subset(subset)
            .with_lb(LbPolicy::RoundRobin),
    );
    assert_eq!(c.endpoints().len(), 2);
    let mut r = zero_random();
    let picks: Vec<u8> = (0..4)
        .map(|_| pick_octet(&c, Instant::ZERO, &mut r))
        .collect();
    assert_eq!(picks, [2, 3, 2, 3]);
}

fn ring_cluster(n: u8) -> Cluster {
    Cluster::build(
        &ClusterSpec::new("ring", endpoints(n)).with_lb(LbPolicy::ring_hash(1024)),
        None,
        Instant::ZERO,
    )
    .unwrap()
}

fn hashed_pick(c: &Cluster, hash: u64) -> u8 {
    let ctx = PickContext {
        hash: Some(hash),
        ..PickContext::default()
    };
    pick_with(c, &ctx, Instant::ZERO, &mut zero_random())
}

#[test]
fn ring_hash_size_follows_minimum_ring_size_and_weights() {
    let c = ring_cluster(4);
    assert_eq!(c.table_len(), 1024);
    assert_eq!(c.table_counts(), [256, 256, 256, 256]);
    let eps = vec![
        EndpointSpec::new("10.0.0.1", 80).with_weight(1),
        EndpointSpec::new("10.0.0.2", 80).with_weight(3),
    ];
    let c = build(&ClusterSpec::new("ring", eps).with_lb(LbPolicy::ring_hash(100)));
    // The lightest endpoint gets ceil(0.25 × 100) = 25 points.
    assert_eq!(c.table_counts(), [25, 75]);
}

#[test]
fn ring_hash_removal_moves_about_one_nth_of_keys() {
    let before = ring_cluster(5);
    let after = ring_cluster(4); // 10.0.0.5 removed
    let mut random = SplitMix64::new(7);
    let keys: Vec<u64> = (0..10_000).map(|_| random.next_u64()).collect();
    let mut moved_from_survivors = 0;
    let mut on_removed = 0;
    for &h in &keys {
        let (a, b) = (hashed_pick(&before, h), hashed_pick(&after, h));
        if a == 5 {
            on_removed += 1;
            assert_ne!(b, 5);
        } else if a != b {
            moved_from_survivors += 1;
        }
    }
    // The removed endpoint held about 1/5 of the keys; the survivors' keys mostly stay (they
    // move only to the extra points each survivor gains when the ring is rescaled).
    assert!((1500..2500).contains(&on_removed), "{on_removed}");
    assert!(moved_from_survivors < 1600, "{moved_from_survivors}");
}

#[test]
fn ring_hash_ejection_moves_only_the_ejected_endpoints_keys() {
    use crate::outlier::{Outcome, OutlierConfig};
    let spec = ClusterSpec::new("ring", endpoints(5))
        .with_lb(LbPolicy::ring_hash(1024))
        .with_outlier(OutlierConfig {
            max_ejection_percent: 100,
            consecutive_5xx: 1,
            ..OutlierConfig::default()
        });
    let c = build(&spec);
    let mut random = SplitMix64::new(11);
    let keys: Vec<u64> = (0..5_000).map(|_| random.next_u64()).collect();
    let before: Vec<u8> = keys.iter().map(|h| hashed_pick(&c, *h)).collect();
    let target = c
        .pick(
            &PickContext {
                hash: Some(keys[0]),
                ..PickContext::default()
            },
            Instant::ZERO,
            &mut zero_random(),
        )
        .unwrap();
    assert!(
        c.report(
            &target,
            Outcome::Response(500),
            Instant::ZERO,
            &mut zero_random()
        )
        .is_some()
    );
    let ejected = before[0];
    for (h, was) in keys.iter().zip(&before) {
        let now = hashed_pick(&c, *h);
        if *was == ejected {
            assert_ne!(now, ejected);
        } else {
            assert_eq!(now, *was);
        }
    }
}

#[test]
fn maglev_table_fills_every_slot_in_proportion_to_weight() {
    let eps = vec![
        EndpointSpec::new("10.0.0.1", 80),
        EndpointSpec::new("10.0.0.2", 80),
        EndpointSpec::new("10.0.0.3", 80).with_weight(2),
    ];
    let c = build(&ClusterSpec::new("maglev", eps).with_lb(LbPolicy::maglev(0)));
    assert_eq!(c.table_len(), 65_537);
    let counts = c.table_counts();
    assert_eq!(counts.iter().sum::<usize>(), 65_537);
    for (count, share) in counts.iter().zip([0.25, 0.25, 0.5]) {
        let expected = 65_537.0 * share;
        assert!(
            (*count as f64 - expected).abs() < expected * 0.01,
            "{counts:?}"
        );
    }
}

#[test]
fn maglev_rejects_a_non_prime_table_size() {
    let err = Cluster::build(
        &ClusterSpec::new("m", endpoints(2)).with_lb(LbPolicy::maglev(1000)),
        None,
        Instant::ZERO,
    )
    .unwrap_err();
    assert_eq!(err, InvalidCluster::MaglevTableSize(1000));
}

#[test]
fn maglev_removal_keeps_most_keys() {
    let build_n = |n| build(&ClusterSpec::new("m", endpoints(n)).with_lb(LbPolicy::maglev(65_537)));
    let (before, after) = (build_n(5), build_n(4));
    let mut random = SplitMix64::new(3);
    let mut moved = 0;
    for _ in 0..10_000 {
        let h = random.next_u64();
        let a = hashed_pick(&before, h);
        if a != 5 && a != hashed_pick(&after, h) {
            moved += 1;
        }
    }
    assert!(moved < 800, "{moved}");
}

fn head() -> RequestHead {
    RequestHead::new(
        Method::GET,
        Scheme::HTTP,
        "example.com",
        "/p?user=alice&x=1",
    )
}

fn cookie_policy(ttl: Option<Duration>) -> HashPolicy {
    HashPolicy::Cookie(CookieHash {
        name: "sticky".into(),
        path: "/app".into(),
        ttl,
        attributes: vec![("SameSite".into(), "Lax".into())],
    })
}

#[test]
fn cookie_is_minted_with_ttl_and_path_when_absent() {
    let conn = ConnectionAddresses {
        remote: Some("10.1.1.1:5555".parse().unwrap()),
        local: Some("10.2.2.2:443".parse().unwrap()),
    };
    let out = hash_request(
        &[cookie_policy(Some(Duration::from_secs(3600)))],
        &head(),
        &conn,
    );
    let value = format!("{:016x}", xx_hash64(b"10.1.1.1:555510.2.2.2:443", 0));
    assert_eq!(
        out.set_cookie.unwrap(),
        format!("sticky=\"{value}\"; Max-Age=3600; Path=/app; SameSite=Lax; HttpOnly").as_str()
    );
    assert_eq!(out.hash, Some(xx_hash64(value.as_bytes(), 0)));
    // The same request carrying the cookie hashes the same, and mints nothing.
    let mut headers = HeaderMap::new();
    headers.insert("cookie", format!("a=b; sticky={value}").parse().unwrap());
    let with = hash_request(
        &[cookie_policy(Some(Duration::from_secs(3600)))],
        &head().with_headers(headers),
        &conn,
    );
    assert_eq!(with.hash, out.hash);
    assert_eq!(with.set_cookie, None);
}

#[test]
fn cookie_without_ttl_is_not_minted_and_zero_ttl_is_a_session_cookie() {
    let out = hash_request(
        &[cookie_policy(None)],
        &head(),
        &ConnectionAddresses::default(),
    );
    assert_eq!(out, crate::lb::RequestHash::default());
    let out = hash_request(
        &[cookie_policy(Some(Duration::ZERO))],
        &head(),
        &ConnectionAddresses::default(),
    );
    let cookie = out.set_cookie.unwrap();
    assert!(!cookie.to_str().unwrap().contains("Max-Age"));
}

#[test]
fn header_source_ip_and_query_hashes() {
    let mut headers = HeaderMap::new();
    headers.append("x-user", "b".parse().unwrap());
    headers.append("x-user", "a".parse().unwrap());
    let h = hash_request(
        &[HashPolicy::Header("x-user".parse().unwrap())],
        &head().with_headers(headers),
        &ConnectionAddresses::default(),
    );
    let mut seed = xx_hash64(b"a", 0);
    seed = xx_hash64(b"b", seed);
    assert_eq!(h.hash, Some(seed), "values are sorted, then chained");

    let q = hash_request(
        &[HashPolicy::QueryParameter("user".into())],
        &head(),
        &ConnectionAddresses::default(),
    );
    assert_eq!(q.hash, Some(xx_hash64(b"alice", 0)));

    let conn = ConnectionAddresses {
        remote: Some("10.9.9.9:1234".parse().unwrap()),
        local: None,
    };
    let s = hash_request(&[HashPolicy::SourceIp], &head(), &conn);
    assert_eq!(s.hash, Some(xx_hash64(b"10.9.9.9", 0)));

    // Absent inputs give no hash; several policies combine.
    let none = hash_request(
        &[HashPolicy::Header("x-missing".parse().unwrap())],
        &head(),
        &conn,
    );
    assert_eq!(none.hash, None);
    let both = hash_request(
        &[
            HashPolicy::SourceIp,
            HashPolicy::QueryParameter("user".into()),
        ],
        &head(),
        &conn,
    );
    assert_eq!(
        both.hash,
        Some(s.hash.unwrap().rotate_left(1) ^ q.hash.unwrap())
    );
}

#[test]
fn slow_start_ramps_a_new_endpoints_share() {
    let spec = ClusterSpec::new("warm", endpoints(1))
        .with_lb(LbPolicy::RoundRobin)
        .with_slow_start(SlowStart::new(Duration::from_secs(100)));
    let v1 = Cluster::build(&spec, None, Instant::ZERO).unwrap();
    let spec2 = ClusterSpec {
        endpoints: endpoints(2),
        ..spec
    };
    let v2 = Cluster::build(&spec2, Some(&v1), Instant::ZERO).unwrap();
    let share = |at: u64| {
        let now = Instant::from_elapsed(Duration::from_secs(at));
        let mut r = zero_random();
        (0..1000)
            .filter(|_| pick_octet(&v2, now, &mut r) == 2)
            .count()
    };
    // 10 % floor at first, then linear, then equal.
    let early = share(1);
    let half = share(50);
    let done = share(200);
    assert!((80..100).contains(&early), "{early}");
    assert!((320..345).contains(&half), "{half}");
    assert_eq!(done, 500);
}

proptest! {
    #[test]
    fn consistent_hash_always_picks_a_member(hash in any::<u64>(), n in 1u8..12, maglev in any::<bool>()) {
        let lb = if maglev { LbPolicy::maglev(251) } else { LbPolicy::ring_hash(64) };
        let c = build(&ClusterSpec::new("p", endpoints(n)).with_lb(lb));
        let octet = hashed_pick(&c, hash);
        prop_assert!((1..=n).contains(&octet));
        prop_assert_eq!(octet, hashed_pick(&c, hash));
    }

    #[test]
    fn round_robin_visits_each_endpoint_once_per_cycle(n in 1u8..20, skip in 0usize..50) {
        let c = build(&ClusterSpec::new("p", endpoints(n)).with_lb(LbPolicy::RoundRobin));
        let mut r = zero_random();
        for _ in 0..skip { pick_octet(&c, Instant::ZERO, &mut r); }
        let mut seen: Vec<u8> = (0..n).map(|_| pick_octet(&c, Instant::ZERO, &mut r)).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (1..=n).collect::<Vec<_>>());
    }
}
