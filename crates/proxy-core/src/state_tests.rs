//! Unit tests of the state-machine half, driven with `ManualClock` and deterministic random
//! sources; each test is named for the behaviour it checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod lb;
mod outlier;
mod pool;
mod retry;
mod swap;
#[cfg(feature = "tower")]
mod tower;

use std::sync::Arc;

use crate::cluster::{Cluster, ClusterSpec, EndpointKey, EndpointSpec, PickContext};
use crate::rt::{Instant, ManualClock, RandomSource, SequenceRandom};

/// `n` endpoints `10.0.0.1:80`, `10.0.0.2:80`, …
fn endpoints(n: u8) -> Vec<EndpointSpec> {
    (1..=n)
        .map(|i| EndpointSpec::new(format!("10.0.0.{i}"), 80))
        .collect()
}

fn key(i: u8) -> EndpointKey {
    EndpointKey::new(format!("10.0.0.{i}"), 80)
}

fn build(spec: &ClusterSpec) -> Arc<Cluster> {
    Arc::new(Cluster::build(spec, None, Instant::ZERO).unwrap())
}

/// One pick with a default context; the endpoint's last address octet.
fn pick_octet(cluster: &Cluster, now: Instant, random: &mut impl RandomSource) -> u8 {
    pick_with(cluster, &PickContext::default(), now, random)
}

fn pick_with(
    cluster: &Cluster,
    ctx: &PickContext<'_>,
    now: Instant,
    random: &mut impl RandomSource,
) -> u8 {
    let picked = cluster.pick(ctx, now, random).expect("an endpoint");
    picked
        .key()
        .address()
        .rsplit('.')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn clock() -> ManualClock {
    ManualClock::new()
}

fn zero_random() -> SequenceRandom {
    SequenceRandom::new([0])
}
