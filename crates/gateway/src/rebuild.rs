//! Building the next configuration, and freeing the last one, away from the workers.
//!
//! Loading, checking and translating a configuration and building its snapshot is the
//! heaviest work a gateway does (some twenty milliseconds of CPU for a change to one of ten
//! thousand VirtualServices, when only the changed documents are checked and translated again;
//! a third of a second to start with them), and freeing a large snapshot adds to it. What one
//! check derives travels with the source to the build thread and back (`Job::derived`).
//!
//! The control task that watches the source runs on the worker's own thread when the gateway
//! has one worker on the caller's thread
//! ([`GatewayBuilder::serve_on_this_thread`](crate::GatewayBuilder::serve_on_this_thread)) or
//! on a current-thread runtime ([`GatewayBuilder::serve`](crate::GatewayBuilder::serve)); done
//! there, every request would wait for the build. So each build runs on a thread of its own,
//! at a lower scheduling priority than the workers'
//! ([`GatewayBuilder::build_niceness`](crate::GatewayBuilder::build_niceness)), so that on a
//! CPU it shares with a busy worker it takes little from requests. It hands the snapshot back;
//! the swap itself stays on the control task (make before break), and replaced snapshots are
//! dropped on a thread of their own once no request holds them.

use std::sync::Arc;

use crate::config::{Derived, Identity, Problem};
use crate::snapshot::{self, BuildContext, Snapshot};
use crate::source::{self, Changed, ConfigSource};

/// What one build needs; the source travels to the build thread and back.
pub(crate) struct Job {
    pub(crate) source: Box<dyn ConfigSource>,
    /// What the last check of `source` derived; travels with it.
    pub(crate) derived: Derived,
    pub(crate) identity: Identity,
    pub(crate) ctx: BuildContext,
    pub(crate) generation: u64,
    pub(crate) previous: Arc<Snapshot>,
    /// How much lower the build thread's priority is (see
    /// [`GatewayBuilder::build_niceness`](crate::GatewayBuilder::build_niceness)).
    pub(crate) niceness: u8,
}

/// How a build ended.
pub(crate) enum Outcome {
    /// A complete snapshot, and the warnings of its configuration.
    Built {
        snapshot: Snapshot,
        problems: Vec<Problem>,
    },
    /// The configuration was refused; why.
    Refused(String),
}

/// What travels back from a build with its outcome.
pub(crate) struct Returned {
    pub(crate) source: Box<dyn ConfigSource>,
    pub(crate) derived: Derived,
}

impl Returned {
    fn of(job: Job) -> Self {
        let Job {
            source,
            derived,
            previous,
            ..
        } = job;
        drop(previous);
        Self { source, derived }
    }
}

/// Builds on a new thread and waits for it without blocking the runtime. The source comes
/// back with the outcome; it is `None` only if the build thread panicked, which is a bug.
pub(crate) async fn run(job: Job) -> (Option<Returned>, Outcome) {
    let (job_tx, job_rx) = std::sync::mpsc::channel::<Job>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let niceness = job.niceness;
    let spawned = std::thread::Builder::new()
        .name("portcullis-build".to_owned())
        .spawn(move || {
            lower_priority(niceness);
            if let Ok(mut job) = job_rx.recv() {
                let outcome = build_now(&mut job);
                let _ = done_tx.send((Returned::of(job), outcome));
            }
        });
    if spawned.is_err() {
        // No thread to spare: build here rather than not at all.
        let mut job = job;
        let outcome = build_now(&mut job);
        return (Some(Returned::of(job)), outcome);
    }
    if let Err(std::sync::mpsc::SendError(mut job)) = job_tx.send(job) {
        let outcome = build_now(&mut job);
        return (Some(Returned::of(job)), outcome);
    }
    match done_rx.await {
        Ok((returned, outcome)) => (Some(returned), outcome),
        Err(_) => (
            None,
            Outcome::Refused("the build thread stopped unexpectedly".to_owned()),
        ),
    }
}

/// Lowers the calling thread's scheduling priority by `niceness` (a nice value, at most to
/// 19), where the system lets a thread do so (Linux, where nice values are per thread);
/// elsewhere, or if refused, it keeps its priority. At 10, a build sharing a CPU with a busy
/// worker gets about a tenth of it (the kernel's weights), the worker the rest.
fn lower_priority(niceness: u8) {
    #[cfg(target_os = "linux")]
    if niceness > 0 {
        let thread = Some(rustix::thread::gettid());
        let lowered = rustix::process::getpriority_process(thread).and_then(|now| {
            let lower = now.saturating_add(i32::from(niceness)).min(19);
            rustix::process::setpriority_process(thread, lower)
        });
        if let Err(e) = lowered {
            tracing::debug!("the build thread keeps its priority: {e}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = niceness;
}

/// Loads, checks and builds on the calling thread, on a runtime of its own (DNS lookups).
fn build_now(job: &mut Job) -> Outcome {
    let checked = match source::check_source(job.source.as_mut(), &job.identity, &mut job.derived) {
        Ok(c) => c,
        Err(report) => return Outcome::Refused(report.errors_text()),
    };
    let problems = checked.report.problems.clone();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Outcome::Refused(format!("cannot start the build's runtime: {e}")),
    };
    match rt.block_on(snapshot::build(
        checked,
        &job.ctx,
        job.generation,
        Some(&job.previous),
    )) {
        Ok(snapshot) => Outcome::Built { snapshot, problems },
        Err(e) => Outcome::Refused(e.0),
    }
}

/// Snapshots replaced by a swap, kept until no request or worker view holds them, then
/// dropped on a thread of their own.
#[derive(Default)]
pub(crate) struct Retired(Vec<Arc<Snapshot>>);

impl Retired {
    pub(crate) fn push(&mut self, snapshot: Arc<Snapshot>) {
        self.0.push(snapshot);
    }

    /// Drops, away from this thread, the snapshots nothing else holds any more.
    pub(crate) fn collect(&mut self) {
        let (free, keep): (Vec<_>, Vec<_>) =
            self.0.drain(..).partition(|s| Arc::strong_count(s) == 1);
        self.0 = keep;
        if free.is_empty() {
            return;
        }
        if let Err(e) = std::thread::Builder::new()
            .name("portcullis-free".to_owned())
            .spawn(move || drop(free))
        {
            tracing::warn!("cannot start a thread to free old configurations: {e}");
        }
    }
}

/// The stand-in for the source while it is away on the build thread (and for good, if that
/// thread panicked): never changes, loads nothing.
#[derive(Debug)]
pub(crate) struct Away;

impl ConfigSource for Away {
    fn load(&mut self) -> portcullis_model::Loaded {
        portcullis_model::Loaded::default()
    }

    fn changed(&mut self) -> Changed<'_> {
        Box::pin(std::future::pending())
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::lower_priority;

    /// The calling thread's nice value.
    fn niceness() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[test]
    fn a_build_thread_lowers_its_own_priority_alone() {
        let before = niceness();
        let (lowered, kept) = std::thread::spawn(|| {
            let start = niceness();
            lower_priority(0);
            let kept = niceness() - start;
            lower_priority(5);
            (niceness() - start, kept)
        })
        .join()
        .unwrap();
        assert_eq!(kept, 0);
        assert_eq!(lowered, (before + 5).min(19) - before);
        // Nice values are per thread: the thread that started the build keeps its own.
        assert_eq!(niceness(), before);
    }
}
