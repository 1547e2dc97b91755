use std::time::Duration;

use crate::rt::{Clock, Instant, ManualClock, RandomSource, SequenceRandom, SplitMix64};

#[test]
fn sequence_random_cycles_and_empty_yields_zero() {
    let mut r = SequenceRandom::new([1, 2]);
    assert_eq!([r.next_u64(), r.next_u64(), r.next_u64()], [1, 2, 1]);
    let mut empty = SequenceRandom::new(Vec::new());
    assert_eq!(empty.next_u64(), 0);
    assert_eq!(empty.draws(), 1);
}

#[test]
fn random_source_works_through_references_and_boxes() {
    fn draw(r: &mut impl RandomSource) -> u64 {
        r.next_u64()
    }
    let mut r = SequenceRandom::new([9]);
    assert_eq!(draw(&mut &mut r), 9);
    let mut boxed: Box<dyn RandomSource> = Box::new(SplitMix64::new(1));
    let a = draw(&mut boxed);
    assert_eq!(a, SplitMix64::new(1).next_u64());
}

#[test]
fn manual_clock_moves_only_when_advanced() {
    let clock = ManualClock::new();
    let t0 = clock.now();
    assert_eq!(t0, Instant::ZERO);
    clock.advance(Duration::from_secs(3));
    let t1 = clock.now();
    assert_eq!(t1.saturating_duration_since(t0), Duration::from_secs(3));
    assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
    assert_eq!(t1.elapsed_since_origin(), Duration::from_secs(3));
    assert_eq!(
        Instant::from_elapsed(Duration::from_secs(1)).checked_add(Duration::from_secs(2)),
        Some(t1)
    );
    clock.advance(Duration::MAX);
    assert!(clock.now() > t1);
    let by_ref: &dyn Clock = &clock;
    assert_eq!(by_ref.now(), clock.now());
}
