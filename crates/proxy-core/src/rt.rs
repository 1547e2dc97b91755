//! What the embedder injects: randomness and time.
//!
//! The crate owns no async runtime, no clock and no random generator (compare `hyper::rt`).
//! Every function that needs one takes it as an argument, so that a test can replay exactly
//! the same decisions and a production gateway can plug in whatever source it already has.
//!
//! * [`RandomSource`] is used by [`decide`](crate::decide()) (weighted clusters, fault and mirror
//!   percentages) and will be used by the load-balancing state machines.
//! * [`Clock`] is not used by the decision half yet; it is defined here so that the retry,
//!   outlier-detection and pool state machines share one notion of time.
//!
//! Deterministic implementations for tests and simulations: [`SequenceRandom`],
//! [`SplitMix64`] and [`ManualClock`]. For production: [`AtomicRandom`] and [`ThreadRandom`]
//! (thread-safe, shareable, so a service cloned per request keeps drawing new values) and
//! [`SystemClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// === RandomSource ===

/// A source of uniformly distributed 64-bit values.
///
/// Envoy draws one value per stream (its stream id, used for weighted-cluster selection and
/// request mirroring) and one value per fault-percentage check; [`decide`](crate::decide())
/// documents exactly which draws it makes, in which order.
///
/// Implementations should return values uniformly distributed over the whole `u64` range.
/// Nothing in this crate assumes cryptographic quality.
pub trait RandomSource {
    /// Returns the next value.
    fn next_u64(&mut self) -> u64;
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

impl<R: RandomSource + ?Sized> RandomSource for Box<R> {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// A [`RandomSource`] that replays a fixed list of values, cycling when it runs out.
///
/// Meant for tests: with `SequenceRandom::new([5])` every draw returns 5, so a weighted
/// selection over weights `[1, 2]` picks the second entry (`5 % 3 = 2`).
/// An empty list yields 0 forever.
///
/// ```
/// use portcullis_proxy_core::rt::{RandomSource, SequenceRandom};
///
/// let mut random = SequenceRandom::new([7, 9]);
/// assert_eq!(random.next_u64(), 7);
/// assert_eq!(random.next_u64(), 9);
/// assert_eq!(random.next_u64(), 7);
/// assert_eq!(random.draws(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceRandom {
    values: Vec<u64>,
    draws: usize,
}

impl SequenceRandom {
    /// Creates a source that returns `values` in order, then starts over.
    pub fn new(values: impl Into<Vec<u64>>) -> Self {
        Self {
            values: values.into(),
            draws: 0,
        }
    }

    /// How many values have been drawn so far.
    pub fn draws(&self) -> usize {
        self.draws
    }
}

impl RandomSource for SequenceRandom {
    fn next_u64(&mut self) -> u64 {
        let value = match self.values.len() {
            0 => 0,
            len => self.values.get(self.draws % len).copied().unwrap_or(0),
        };
        self.draws = self.draws.wrapping_add(1);
        value
    }
}

/// A small seeded pseudo-random generator (SplitMix64), deterministic for a given seed.
///
/// Good enough for simulations and property tests; production embedders usually pass their
/// own generator.
///
/// ```
/// use portcullis_proxy_core::rt::{RandomSource, SplitMix64};
///
/// let mut a = SplitMix64::new(42);
/// let mut b = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Creates a generator from a seed.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(SPLITMIX_GAMMA);
        splitmix_mix(self.state)
    }
}

/// SplitMix64 over an atomic state: one `fetch_add` per draw, no lock, and every clone of an
/// `Arc<AtomicRandom>` (and every `&AtomicRandom`) draws from the same sequence. Use it where a
/// service is cloned per request or shared between threads: a [`SplitMix64`] copied into each
/// clone would replay the same draws.
///
/// The values are SplitMix64's for the same seed, in the order the draws happen.
///
/// ```
/// use portcullis_proxy_core::rt::{AtomicRandom, RandomSource, SplitMix64};
///
/// let shared = AtomicRandom::new(42);
/// let (mut a, mut b) = (&shared, &shared);
/// let mut reference = SplitMix64::new(42);
/// assert_eq!(a.next_u64(), reference.next_u64());
/// assert_eq!(b.next_u64(), reference.next_u64());
/// ```
#[derive(Debug, Default)]
pub struct AtomicRandom {
    state: AtomicU64,
}

impl AtomicRandom {
    /// A generator from a seed.
    pub const fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the system clock and the address of a stack variable (different
    /// per process and per call).
    pub fn from_entropy() -> Self {
        Self::new(entropy())
    }

    /// The next value.
    pub fn next(&self) -> u64 {
        let state = self
            .state
            .fetch_add(SPLITMIX_GAMMA, Ordering::Relaxed)
            .wrapping_add(SPLITMIX_GAMMA);
        splitmix_mix(state)
    }
}

impl RandomSource for AtomicRandom {
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
}

impl RandomSource for &AtomicRandom {
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
}

impl RandomSource for std::sync::Arc<AtomicRandom> {
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
}

/// A SplitMix64 per thread, seeded from [`AtomicRandom::from_entropy`]'s sources and the
/// thread: no shared cache line and no lock per draw, and copies on one thread share its
/// sequence. Not reproducible (use [`SplitMix64`] or [`AtomicRandom::new`] for that).
///
/// ```
/// use portcullis_proxy_core::rt::{RandomSource, ThreadRandom};
///
/// let (mut a, mut b) = (ThreadRandom, ThreadRandom);
/// assert_ne!(a.next_u64(), b.next_u64());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRandom;

thread_local! {
    static THREAD_RANDOM: std::cell::Cell<u64> = std::cell::Cell::new(entropy());
}

impl RandomSource for ThreadRandom {
    fn next_u64(&mut self) -> u64 {
        THREAD_RANDOM.with(|state| {
            let next = state.get().wrapping_add(SPLITMIX_GAMMA);
            state.set(next);
            splitmix_mix(next)
        })
    }
}

impl RandomSource for &ThreadRandom {
    fn next_u64(&mut self) -> u64 {
        ThreadRandom.next_u64()
    }
}

/// SplitMix64's increment.
const SPLITMIX_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function.
const fn splitmix_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed that differs between processes, threads and calls: the wall clock, a counter and a
/// stack address, mixed.
#[allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "seeding is the one place the wall clock is read; decisions still take time from a Clock"
)]
fn entropy() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let local = 0u8;
    let address = std::ptr::addr_of!(local) as usize as u64;
    let calls = CALLS.fetch_add(1, Ordering::Relaxed);
    splitmix_mix(
        (nanos as u64)
            ^ ((nanos >> 64) as u64).rotate_left(17)
            ^ address.rotate_left(32)
            ^ calls.wrapping_mul(SPLITMIX_GAMMA),
    )
}

// === Clock ===

/// A point on a monotonic timeline, measured from an origin chosen by the [`Clock`].
///
/// This is the crate's replacement for `std::time::Instant`, which it never reads: only
/// differences between two instants of the same clock are meaningful.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The instant `elapsed` after the clock's origin.
    pub const fn from_elapsed(elapsed: Duration) -> Self {
        Self(elapsed)
    }

    /// Time since the clock's origin.
    pub const fn elapsed_since_origin(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + duration`, or `None` on overflow.
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        self.0.checked_add(duration).map(Self)
    }

    /// `self + duration`, saturating at the largest representable instant.
    pub fn saturating_add(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration))
    }
}

/// A monotonic clock.
///
/// Implementations must never go backwards. The embedder provides one (for example backed by
/// `std::time::Instant` or by its runtime's timer); tests use [`ManualClock`].
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// A [`Clock`] that only moves when told to; shareable across threads.
///
/// ```
/// use std::time::Duration;
/// use portcullis_proxy_core::rt::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now().saturating_duration_since(start), Duration::from_millis(250));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at its origin.
    pub const fn new() -> Self {
        Self {
            nanos: AtomicU64::new(0),
        }
    }

    /// Moves the clock forward by `by` (saturating after about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant(Duration::from_nanos(self.nanos.load(Ordering::SeqCst)))
    }
}

/// The system's monotonic clock (`std::time::Instant`), measured from when the `SystemClock`
/// was made; copies share that origin.
///
/// ```
/// use portcullis_proxy_core::rt::{Clock, SystemClock};
///
/// let clock = SystemClock::new();
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
#[derive(Debug, Clone, Copy)]
#[allow(
    clippy::disallowed_types,
    reason = "the system clock is the one Clock implementation that reads std::time::Instant"
)]
pub struct SystemClock {
    origin: std::time::Instant,
}

#[allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the system clock is the one Clock implementation that reads std::time::Instant"
)]
impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the system clock is the one Clock implementation that reads std::time::Instant"
)]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant(self.origin.elapsed())
    }
}
