//! What belongs to one worker thread: its index (metric shards, client pools), its random
//! source and its access-log buffer. Each worker runs a single-threaded tokio runtime, so the
//! request path reaches all of these through thread-locals, without locks.

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use portcullis_proxy_core::rt::{RandomSource, SplitMix64};

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

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    static RANDOM: RefCell<SplitMix64> = RefCell::new(SplitMix64::new(seed_from_time()));
    static AUX: RefCell<SplitMix64> = RefCell::new(SplitMix64::new(seed_from_time() ^ 0x5bd1_e995));
    static LOG: RefCell<(Vec<u8>, AccessLog)> = const { RefCell::new((Vec::new(), AccessLog::Off)) };
}

fn seed_from_time() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Fold the 128-bit value; the thread id makes threads started together differ.
    let id = format!("{:?}", std::thread::current().id());
    let mut h = (nanos as u64) ^ ((nanos >> 64) as u64);
    for b in id.bytes() {
        h = h.rotate_left(5) ^ u64::from(b);
    }
    h
}

/// Marks the current thread as worker `index`, with a random seed (deterministic when given)
/// and an access-log sink.
pub(crate) fn init(index: usize, seed: Option<u64>, log: AccessLog) {
    INDEX.with(|i| i.set(index));
    IS_WORKER.with(|w| w.set(true));
    if let Some(seed) = seed {
        RANDOM.with(|r| *r.borrow_mut() = SplitMix64::new(seed.wrapping_add(index as u64)));
    }
    LOG.with(|l| l.borrow_mut().1 = log);
}

/// Whether this thread is one of the gateway's own workers (housekeeping ticks flush its
/// access-log buffer and refresh its cached clock and date).
pub(crate) fn is_worker() -> bool {
    IS_WORKER.with(Cell::get)
}

/// On a thread that is not a worker (a caller's runtime, see `GatewayBuilder::serve`): the
/// access-log sink of the connection about to be served. Lines are written as they are made
/// there. A worker keeps the sink it was started with.
pub(crate) fn adopt_sink(sink: &AccessLog) {
    if !is_worker() {
        LOG.with(|l| {
            let mut l = l.borrow_mut();
            if !same_sink(&l.1, sink) {
                l.1 = sink.clone();
            }
        });
    }
}

fn same_sink(a: &AccessLog, b: &AccessLog) -> bool {
    match (a, b) {
        (AccessLog::Stdout, AccessLog::Stdout) | (AccessLog::Off, AccessLog::Off) => true,
        (AccessLog::Capture(a), AccessLog::Capture(b)) => Arc::ptr_eq(a, b),
        (AccessLog::Sink(a), AccessLog::Sink(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// The current worker's index (0 on other threads).
pub(crate) fn index() -> usize {
    INDEX.with(Cell::get)
}

/// The worker's random source: SplitMix64, seeded per worker.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_u64(&mut self) -> u64 {
        RANDOM.with(|r| r.borrow_mut().next_u64())
    }
}

/// A random value for anything but `decide` (load balancing, back-off jitter, request ids), so
/// that those draws never change which values `decide` gets.
pub(crate) fn aux_random() -> u64 {
    AUX.with(|r| r.borrow_mut().next_u64())
}

/// The text of an `x-request-id` value.
pub(crate) type RequestIdText = [u8; uuid::fmt::Hyphenated::LENGTH];

/// A new `x-request-id` value, written into `text`: a version 4 UUID from the worker's
/// generator.
pub(crate) fn request_id(text: &mut RequestIdText) -> &str {
    let random = AUX.with(|r| {
        let mut r = r.borrow_mut();
        (u128::from(r.next_u64()) << 64 | u128::from(r.next_u64())).to_be_bytes()
    });
    uuid::Builder::from_random_bytes(random)
        .into_uuid()
        .hyphenated()
        .encode_lower(text)
}

/// [`aux_random`] as a [`RandomSource`] (load balancing, back-off).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AuxRandom;

impl RandomSource for AuxRandom {
    fn next_u64(&mut self) -> u64 {
        aux_random()
    }
}

/// Whether access-log lines are wanted on this thread.
pub(crate) fn logging() -> bool {
    LOG.with(|l| !matches!(l.borrow().1, AccessLog::Off))
}

/// Appends one access-log line (written by `write`, which must end it with `\n`).
pub(crate) fn log_line(write: impl FnOnce(&mut Vec<u8>)) {
    let flush_now = LOG.with(|l| {
        let mut l = l.borrow_mut();
        if matches!(l.1, AccessLog::Off) {
            return false;
        }
        write(&mut l.0);
        l.0.len() > LOG_FLUSH_BYTES || !IS_WORKER.with(Cell::get)
    });
    if flush_now {
        flush();
    }
}

/// Writes out the buffered access-log lines of this thread.
pub(crate) fn flush() {
    LOG.with(|l| {
        let mut l = l.borrow_mut();
        if l.0.is_empty() {
            return;
        }
        let (buf, sink) = &mut *l;
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
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::request_id;

    #[test]
    fn request_ids_are_uuid_v4() {
        let (mut a, mut b) = ([0; 36], [0; 36]);
        let a = request_id(&mut a);
        let b = request_id(&mut b);
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
}
