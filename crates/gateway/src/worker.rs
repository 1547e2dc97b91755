//! What belongs to one worker: its index (metric shards), its random sources, its access-log
//! buffer, its cached clocks and its view of the snapshot with its upstream pools, in a
//! [`Worker`] made when it starts and passed down to its connections and requests.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use portcullis_proxy_core::rt::AtomicRandom;

use super::snapshot;
use super::upstream::CoarseClock;

/// Where access-log lines go.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum AccessLog {
    /// Standard output (buffered per worker, flushed at least every 250 ms).
    #[default]
    Stdout,
    /// Nowhere.
    Off,
    /// Into memory (tests read it).
    Capture(Arc<Mutex<Vec<String>>>),
    /// To the embedder's sink.
    Sink(Arc<dyn AccessLogSink>),
}

/// Where an embedder takes access-log lines (Envoy's default format, see
/// [`AccessLog::Sink`]). Workers buffer lines and hand them over in batches (past 32 KiB,
/// and at least every 250 ms), so a sink is called rarely and off the request path.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use portcullis_gateway::{AccessLog, AccessLogSink};
///
/// #[derive(Debug, Default)]
/// struct Lines(Mutex<Vec<String>>);
///
/// impl AccessLogSink for Lines {
///     fn write_lines(&self, lines: &str) {
///         self.0.lock().unwrap().extend(lines.lines().map(str::to_owned));
///     }
/// }
///
/// let sink = AccessLog::Sink(Arc::new(Lines::default()));
/// # let _ = sink;
/// ```
pub trait AccessLogSink: std::fmt::Debug + Send + Sync + 'static {
    /// Takes whole lines, each ending with `\n`.
    fn write_lines(&self, lines: &str);
}

/// Flush the buffer past this size.
const LOG_FLUSH_BYTES: usize = 32 * 1024;

/// `date_second` while the words are rewritten (and, above it, `u64::MAX`: never written).
const DATE_BEING_WRITTEN: u64 = u64::MAX - 1;

/// The length of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
const DATE_LEN: usize = 29;

/// What one worker owns, made when it starts and handed to its connection tasks and to every
/// request they serve: its index (metric shards), its random sources, its access-log buffer,
/// its cached `date` and coarse clock, and its view of the live snapshot (with its upstream
/// connection pools).
///
/// A worker of the gateway's own ([`GatewayBuilder::start`](crate::GatewayBuilder::start),
/// [`serve_on_this_thread`](crate::GatewayBuilder::serve_on_this_thread)) runs a
/// single-threaded runtime and its tasks are the only ones to touch its `Worker`: the atomics
/// in it sit on cache lines no other core writes, so they cost what plain fields would, and
/// its locks are never contended. Nothing in it is shared between workers.
///
/// Embedders that keep their own server loop make one with [`Worker::new`] per thread (or one
/// for a whole multi-threaded runtime, at the cost of sharing it) and pass it to
/// [`forward`](crate::forward).
///
/// ```
/// use portcullis_gateway::{AccessLog, Worker};
///
/// let worker = Worker::new(AccessLog::Off);
/// # let _ = worker;
/// ```
#[derive(Debug)]
pub struct Worker {
    index: usize,
    /// Run by the gateway's own housekeeping tick: the access log is buffered, the `date` and
    /// the coarse clock cached. Elsewhere lines are written as they are made and the clocks
    /// read when needed.
    housekept: bool,
    /// `decide`'s draws.
    random: AtomicRandom,
    /// Every other draw (load balancing, back-off jitter, request ids), so that those never
    /// change which values `decide` gets.
    aux: AtomicRandom,
    logging: bool,
    log: Mutex<(Vec<u8>, AccessLog)>,
    /// The `date` value (`DATE_LEN` bytes, packed) and the second it is for (`u64::MAX`: none
    /// yet). Written by the housekeeping tick on the worker's own thread only.
    date_second: AtomicU64,
    date: [AtomicU64; 4],
    /// The coarse clock for upstream pools, shared with them.
    pub(crate) coarse: Arc<CoarseClock>,
    /// The worker's view of the live snapshot and its upstream clients.
    pub(crate) snapshots: Mutex<snapshot::Cache>,
}

/// What a [`Worker`]'s upstream connection pools hold at one moment (see
/// [`Worker::upstream_pools`]).
///
/// The pools and their connector stay private: they are tied to the snapshot's clusters (TLS
/// settings, connect timeouts, HTTP/2) and to the worker's clock, and [`forward`](crate::forward)
/// is the way to use them. These counts are what an embedder can watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connection pools (one per connect timeout for plaintext upstreams, one per cluster
    /// that originates TLS).
    pub pools: usize,
    /// Idle HTTP/1.1 connections kept for reuse (one closed by its upstream since is counted
    /// until a request takes it out).
    pub idle_http1: usize,
    /// HTTP/2 connections (one per endpoint, multiplexed).
    pub http2: usize,
}

impl Worker {
    /// What this worker's upstream connection pools hold now (it takes their locks: for
    /// monitoring, not for every request).
    pub fn upstream_pools(&self) -> PoolStats {
        let cache = self
            .snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut stats = PoolStats::default();
        for client in cache.clients() {
            let (idle, h2) = client.pooled();
            stats.pools += 1;
            stats.idle_http1 += idle;
            stats.http2 += h2;
        }
        stats
    }

    /// A context for a server loop of the embedder's own, writing access-log lines to `log`
    /// as they are made.
    pub fn new(log: AccessLog) -> Arc<Self> {
        Arc::new(Self::make(0, None, log, false))
    }

    /// Worker `index` of the gateway's own, with a random seed (deterministic when given) and
    /// an access-log sink.
    pub(crate) fn own(index: usize, seed: Option<u64>, log: AccessLog) -> Arc<Self> {
        Arc::new(Self::make(index, seed, log, true))
    }

    /// The context of a gateway serving on the caller's runtime
    /// ([`GatewayBuilder::serve`](crate::GatewayBuilder::serve)).
    pub(crate) fn shared(seed: Option<u64>, log: AccessLog) -> Arc<Self> {
        Arc::new(Self::make(0, seed, log, false))
    }

    fn make(index: usize, seed: Option<u64>, log: AccessLog, housekept: bool) -> Self {
        let seed = seed.map_or_else(seed_from_time, |s| s.wrapping_add(index as u64));
        Self {
            index,
            housekept,
            random: AtomicRandom::new(seed),
            aux: AtomicRandom::new(seed_from_time() ^ 0x5bd1_e995),
            logging: !matches!(log, AccessLog::Off),
            log: Mutex::new((Vec::new(), log)),
            date_second: AtomicU64::new(u64::MAX),
            date: Default::default(),
            coarse: Arc::new(CoarseClock::default()),
            snapshots: Mutex::new(snapshot::Cache::default()),
        }
    }

    /// The worker's index (its metric shard).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// `decide`'s random source.
    pub(crate) fn random(&self) -> &AtomicRandom {
        &self.random
    }

    /// The random source for anything but `decide`.
    pub(crate) fn aux(&self) -> &AtomicRandom {
        &self.aux
    }

    /// Whether access-log lines are wanted.
    pub(crate) fn logging(&self) -> bool {
        self.logging
    }

    /// A new `x-request-id` value, written into `text`: a version 4 UUID from the worker's
    /// generator.
    pub(crate) fn request_id<'a>(&self, text: &'a mut RequestIdText) -> &'a str {
        let random =
            (u128::from(self.aux.next()) << 64 | u128::from(self.aux.next())).to_be_bytes();
        uuid::Builder::from_random_bytes(random)
            .into_uuid()
            .hyphenated()
            .encode_lower(text)
    }

    /// Appends one access-log line (written by `write`, which must end it with `\n`).
    pub(crate) fn log_line(&self, write: impl FnOnce(&mut Vec<u8>)) {
        if !self.logging {
            return;
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        write(&mut log.0);
        if log.0.len() > LOG_FLUSH_BYTES || !self.housekept {
            write_out(&mut log);
        }
    }

    /// Writes out the buffered access-log lines.
    pub(crate) fn flush(&self) {
        write_out(&mut self.log.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The housekeeping tick: buffered lines written, the `date` and the coarse clock
    /// refreshed.
    pub(crate) fn tick(&self) {
        self.flush();
        self.refresh_date();
        self.coarse.set(Instant::now());
    }

    /// The `date` header's value: the cached one, which the housekeeping tick keeps current,
    /// so answering reads no clock (nginx caches its time per event-loop turn the same way).
    pub(crate) fn http_date(&self) -> [u8; DATE_LEN] {
        // A sequence lock: the second is read before and after the words, and a rewrite in
        // between (or in progress) sends the reader to format its own, so that a worker
        // shared by several threads never sends half of one date and half of the next.
        let before = self.date_second.load(Ordering::Acquire);
        if !self.housekept || before >= DATE_BEING_WRITTEN {
            return date_now().1;
        }
        let mut packed = [0u8; 32];
        for (chunk, word) in packed.chunks_exact_mut(8).zip(&self.date) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        std::sync::atomic::fence(Ordering::Acquire);
        if self.date_second.load(Ordering::Relaxed) != before {
            return date_now().1;
        }
        let mut out = [0u8; DATE_LEN];
        out.copy_from_slice(packed.get(..DATE_LEN).unwrap_or(&[0; DATE_LEN]));
        out
    }

    /// Formats the cached `date` value again when the second has changed, so a date is at
    /// most a tick (250 ms) late. Only the housekeeping tick writes it.
    fn refresh_date(&self) {
        let (second, out) = date_now();
        if self.housekept && self.date_second.load(Ordering::Relaxed) != second {
            self.date_second
                .store(DATE_BEING_WRITTEN, Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Release);
            let mut packed = [0u8; 32];
            if let Some(head) = packed.get_mut(..DATE_LEN) {
                head.copy_from_slice(&out);
            }
            for (chunk, word) in packed.chunks_exact(8).zip(&self.date) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                word.store(u64::from_le_bytes(b), Ordering::Relaxed);
            }
            self.date_second.store(second, Ordering::Release);
        }
    }
}

/// The current second and its HTTP date.
fn date_now() -> (u64, [u8; DATE_LEN]) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let text = httpdate::fmt_http_date(now);
    let mut out = [0u8; DATE_LEN];
    if let Some(bytes) = text.as_bytes().get(..DATE_LEN) {
        out.copy_from_slice(bytes);
    }
    (second, out)
}

fn seed_from_time() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Fold the 128-bit value; the thread id makes threads started together differ.
    let id = format!("{:?}", std::thread::current().id());
    let mut h = (nanos as u64) ^ ((nanos >> 64) as u64);
    for b in id.bytes() {
        h = h.rotate_left(5) ^ u64::from(b);
    }
    h
}

/// The text of an `x-request-id` value.
pub(crate) type RequestIdText = [u8; uuid::fmt::Hyphenated::LENGTH];

fn write_out(log: &mut (Vec<u8>, AccessLog)) {
    let (buf, sink) = log;
    if buf.is_empty() {
        return;
    }
    match sink {
        AccessLog::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(buf);
            let _ = out.flush();
        }
        AccessLog::Capture(lines) => {
            let text = String::from_utf8_lossy(buf);
            let mut lines = lines.lock().unwrap_or_else(PoisonError::into_inner);
            lines.extend(text.lines().map(str::to_owned));
        }
        AccessLog::Sink(sink) => sink.write_lines(&String::from_utf8_lossy(buf)),
        AccessLog::Off => {}
    }
    buf.clear();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{AccessLog, Worker};

    #[test]
    fn request_ids_are_uuid_v4() {
        let worker = Worker::new(AccessLog::Off);
        let (mut a, mut b) = ([0; 36], [0; 36]);
        let a = worker.request_id(&mut a);
        let b = worker.request_id(&mut b);
        assert_ne!(a, b);
        for s in [a, b] {
            assert_eq!(s.len(), 36, "{s}");
            for (i, c) in s.chars().enumerate() {
                match i {
                    8 | 13 | 18 | 23 => assert_eq!(c, '-', "{s}"),
                    14 => assert_eq!(c, '4', "{s}"),
                    19 => assert!("89ab".contains(c), "{s}"),
                    _ => assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{s}"),
                }
            }
        }
    }

    #[test]
    fn the_cached_date_is_the_formatted_one() {
        for worker in [
            Worker::own(0, Some(1), AccessLog::Off),
            Worker::new(AccessLog::Off),
        ] {
            worker.tick();
            let date = worker.http_date();
            let text = std::str::from_utf8(&date).unwrap();
            assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
            assert!(text.ends_with(" GMT"), "{text}");
        }
    }

    #[test]
    fn a_worker_buffers_lines_until_flushed_and_a_loop_of_its_own_does_not() {
        use std::sync::{Arc, Mutex};
        let lines = Arc::new(Mutex::new(Vec::new()));
        let own = Worker::own(0, None, AccessLog::Capture(Arc::clone(&lines)));
        own.log_line(|out| out.extend_from_slice(b"one\n"));
        assert!(lines.lock().unwrap().is_empty());
        own.flush();
        assert_eq!(*lines.lock().unwrap(), ["one"]);
        let embedded = Worker::new(AccessLog::Capture(Arc::clone(&lines)));
        embedded.log_line(|out| out.extend_from_slice(b"two\n"));
        assert_eq!(*lines.lock().unwrap(), ["one", "two"]);
    }
}
