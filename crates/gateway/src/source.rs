//! Where a gateway's configuration comes from: a [`ConfigSource`].
//!
//! The gateway loads the source once to start, then waits on [`ConfigSource::changed`] and
//! loads it again after each change. Every load is validated and translated, and the result
//! replaces the serving configuration only when it is complete and valid (make before break):
//! a load with an error is refused, counted in `portcullis_config_rejections_total`, and the
//! previous configuration keeps serving.
//!
//! Three sources come with the crate:
//!
//! * [`Files`]: YAML/JSON files and directories, polled for changes (what the command line
//!   serves), and text given in memory.
//! * [`Objects`]: a fixed set of objects built in memory.
//! * [`channel`]: snapshots pushed by the embedder (a Kubernetes watcher, an xDS client, a
//!   test) through a [`ConfigSender`].
//!
//! ```
//! use portcullis_gateway::source::{self, ConfigSource as _};
//! use portcullis_model::Loader;
//!
//! let text = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
//!             metadata: {name: edge, namespace: istio-system}\n\
//!             spec: {selector: {istio: ingressgateway}, servers: []}\n";
//! let loaded = Loader::new().read_str("edge.yaml", text);
//! let (sender, mut pushed) = source::channel(loaded.into_documents());
//! assert_eq!(pushed.load().documents().len(), 1);
//! sender.send(Vec::new());
//! assert_eq!(pushed.load().documents().len(), 0);
//! ```

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use portcullis_model::{Document, LoadCache, Loaded, Object};
use tokio::sync::watch;

use super::config::{self, Built, Checked, Derived, Fingerprint, Identity, Report, Source};

/// The future [`ConfigSource::changed`] returns.
pub type Changed<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where a gateway's configuration comes from.
///
/// `load` is called to start, after each [`changed`](Self::changed), and again whenever the
/// gateway rebuilds its configuration for another reason (DNS answers that changed), so it
/// must be repeatable. After the first, each load runs on a thread the gateway starts for the
/// build, away from its workers: a source that reads files does so there, as [`Files`] does.
pub trait ConfigSource: fmt::Debug + Send + Sync + 'static {
    /// The configuration as it is now. Documents that did not load are the result's errors;
    /// any error refuses the whole configuration.
    fn load(&mut self) -> Loaded;

    /// Resolves once the configuration may have changed since the last [`load`](Self::load).
    /// A source that never changes returns a future that never resolves.
    fn changed(&mut self) -> Changed<'_>;

    /// Takes back what [`load`](Self::load) returned, once the gateway has checked and
    /// translated it and keeps nothing of it. A source that keeps what it parsed can reuse
    /// those documents on the next load instead of copying them, as [`Files`] does; by default
    /// the load is dropped.
    fn give_back(&mut self, loaded: Loaded) {
        drop(loaded);
    }
}

// === checking a source ===

/// Loads `source`, checks what it loaded and gives the load back: what a gateway serves is
/// made from the plan and the Secrets, not from the documents. What the check derives from
/// each document is kept in `derived` for the next check of the same source.
pub(crate) fn check_source(
    source: &mut dyn ConfigSource,
    identity: &Identity,
    derived: &mut Derived,
) -> Result<Checked, Report> {
    let loaded = source.load();
    let checked = config::check_documents(&loaded, identity, derived);
    source.give_back(loaded);
    checked
}

/// [`check_source`], keeping a copy of the documents with the plan for the caller (a check
/// made once, whose source may serve afterwards).
pub(crate) fn check_source_keeping_documents(
    source: &mut dyn ConfigSource,
    identity: &Identity,
) -> Result<Built, Report> {
    let loaded = source.load();
    let checked = config::check_documents(&loaded, identity, &mut Derived::none())
        .map(|c| c.with_documents(loaded.documents().to_vec()));
    source.give_back(loaded);
    checked
}

// === impl Files ===

/// Files and directories (read recursively: `.yaml`, `.yml`, `.json`) and text given in
/// memory, polled for changes: a change is acted on when the modification times and lengths
/// of the files under the paths differ from the last load's, and a second look agrees (a file
/// renamed into place while the first look was taken can leave it torn). On Unix, a file that
/// was read within two seconds of its last change is also compared byte for byte once it has
/// been left alone that long, when the parse is kept ([`LoadCache::settle`]): a second write
/// within one tick of the file system's clock, to the same length, leaves the times as they
/// were.
///
/// Unless [`keep_parsed`](Self::keep_parsed) says otherwise, each load after the first parses
/// only the files whose bytes changed; the others' documents come from the last load's (see
/// [`Loader::read_path_cached`](portcullis_model::Loader::read_path_cached)). With one path,
/// they are lent rather than copied: a load that is not [given back](ConfigSource::give_back)
/// leaves the next to parse every file again (the gateway gives back every load).
#[derive(Debug, Clone)]
pub struct Files {
    sources: Vec<Source>,
    poll_interval: Duration,
    max_documents: usize,
    fingerprint: Fingerprint,
    /// The last load's parsed files, per source: a change re-parses only the files it touched.
    parsed: Vec<LoadCache>,
    keep_parsed: bool,
}

impl Files {
    /// Reads `sources`, polled every second.
    pub fn new(sources: impl IntoIterator<Item = Source>) -> Self {
        Self {
            sources: sources.into_iter().collect(),
            poll_interval: Duration::from_secs(1),
            max_documents: portcullis_model::DEFAULT_MAX_DOCUMENTS,
            fingerprint: Fingerprint::default(),
            parsed: Vec::new(),
            keep_parsed: true,
        }
    }

    /// Reads the files and directories of `paths`.
    pub fn paths(paths: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        Self::new(paths.into_iter().map(|p| Source::Path(p.into())))
    }

    /// Checks the files for changes every `interval` instead of every second.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Accepts files of at most `max` documents instead of 10 000 (see
    /// [`GatewayBuilder::max_documents`](crate::GatewayBuilder::max_documents)).
    #[must_use]
    pub fn with_max_documents(mut self, max: usize) -> Self {
        self.max_documents = max;
        self
    }

    /// Whether the parsed documents of each file are kept between loads (the default), so
    /// that a change parses only the documents it touched, and the gateway validates and
    /// translates only those (a kept document keeps its
    /// [`Edition`](portcullis_model::Edition)): a one-line change to one of ten files of
    /// 10,000 VirtualServices is served in about a quarter of the time. What is kept costs
    /// about a sixth of the gateway's memory right after loading, and less than it saves
    /// after a few changes (BENCHMARKS.md, configuration at scale). `false` parses every
    /// file on every load and keeps nothing between them.
    #[must_use]
    pub fn keep_parsed(mut self, keep: bool) -> Self {
        self.keep_parsed = keep;
        if !keep {
            self.parsed = Vec::new();
        }
        self
    }

    /// What is read.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }
}

impl ConfigSource for Files {
    fn load(&mut self) -> Loaded {
        self.fingerprint = Fingerprint::of(&self.sources);
        let parsed = self.keep_parsed.then_some(&mut self.parsed);
        config::load(&self.sources, self.max_documents, parsed)
    }

    /// With one path and [`keep_parsed`](Self::keep_parsed), its documents were lent by
    /// [`LoadCache`] rather than copied out of it (see
    /// [`Loader::lend_path_cached`](portcullis_model::Loader::lend_path_cached)): they go back
    /// to it for the next load.
    fn give_back(&mut self, loaded: Loaded) {
        config::give_back(&mut self.parsed, loaded);
    }

    fn changed(&mut self) -> Changed<'_> {
        Box::pin(async move {
            loop {
                tokio::time::sleep(self.poll_interval).await;
                let now = Fingerprint::of(&self.sources);
                if now != self.fingerprint && now == Fingerprint::of(&self.sources) {
                    return;
                }
                if self.parsed.iter_mut().any(LoadCache::settle) {
                    return;
                }
            }
        })
    }
}

// === impl Objects ===

/// A fixed set of objects built in memory; it never changes.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    documents: Vec<Document>,
}

impl Objects {
    /// Objects built in code, named `memory` in messages.
    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> Self {
        Self {
            documents: documents_of(objects),
        }
    }

    /// The documents of a [`portcullis_model`] load result (they keep their file names and field
    /// locations); its warnings and errors are not kept.
    pub fn from_loaded(loaded: &Loaded) -> Self {
        Self {
            documents: loaded.documents().to_vec(),
        }
    }
}

impl ConfigSource for Objects {
    fn load(&mut self) -> Loaded {
        self.documents.iter().cloned().collect()
    }

    fn changed(&mut self) -> Changed<'_> {
        Box::pin(std::future::pending())
    }
}

fn documents_of(objects: impl IntoIterator<Item = Object>) -> Vec<Document> {
    objects
        .into_iter()
        .enumerate()
        .map(|(i, o)| Document::from_object("memory", i, o))
        .collect()
}

// === impl Pushed ===

/// A source of snapshots pushed through a [`ConfigSender`]; made by [`channel`].
#[derive(Debug)]
pub struct Pushed {
    rx: watch::Receiver<Arc<Vec<Document>>>,
}

/// Pushes whole configurations to a gateway reading the [`Pushed`] end of its [`channel`].
#[derive(Debug, Clone)]
pub struct ConfigSender {
    tx: Arc<watch::Sender<Arc<Vec<Document>>>>,
}

/// A source fed by the embedder: every [`ConfigSender::send`] is a new configuration,
/// applied as a whole (or refused as a whole). `initial` is the configuration to start with.
/// Snapshots sent faster than the gateway builds them are coalesced: the latest wins.
pub fn channel(initial: Vec<Document>) -> (ConfigSender, Pushed) {
    let (tx, rx) = watch::channel(Arc::new(initial));
    (ConfigSender { tx: Arc::new(tx) }, Pushed { rx })
}

impl ConfigSender {
    /// Replaces the configuration with `documents`.
    pub fn send(&self, documents: Vec<Document>) {
        self.tx.send_replace(Arc::new(documents));
    }

    /// Replaces the configuration with objects built in memory.
    pub fn send_objects(&self, objects: impl IntoIterator<Item = Object>) {
        self.send(documents_of(objects));
    }
}

impl ConfigSource for Pushed {
    fn load(&mut self) -> Loaded {
        let documents = Arc::clone(&self.rx.borrow_and_update());
        documents.iter().cloned().collect()
    }

    fn changed(&mut self) -> Changed<'_> {
        Box::pin(async move {
            if self.rx.changed().await.is_err() {
                // Every sender is gone: nothing will change again.
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const SE: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
                      metadata: {name: NAME}\nspec: {hosts: [NAME.example]}\n";

    /// One path: a load given back is reused by the next without parsing; one kept is not.
    /// Several paths: each load copies, and giving one back changes nothing.
    #[test]
    fn loads_given_back_are_reused_without_parsing() {
        let dir = std::env::temp_dir().join(format!("portcullis-give-back-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), SE.replace("NAME", "a")).unwrap();
        std::fs::write(dir.join("b.yaml"), SE.replace("NAME", "b")).unwrap();
        let fresh = || portcullis_model::Loader::new().read_path(&dir);
        let mut files = Files::new([Source::Path(dir.clone())]);
        let first = files.load();
        assert_eq!(first, fresh());
        files.give_back(first);
        let again = files.load();
        assert_eq!(files.parsed[0].parsed(), 0);
        assert_eq!(again, fresh());
        drop(again);
        assert_eq!(files.load(), fresh());
        assert_eq!(files.parsed[0].parsed(), 2);

        let mut two = Files::new([
            Source::Path(dir.join("a.yaml")),
            Source::Path(dir.join("b.yaml")),
        ]);
        let first = two.load();
        assert_eq!(first, fresh());
        two.give_back(first);
        assert_eq!(two.load(), fresh());
        assert_eq!(two.parsed.iter().map(LoadCache::parsed).sum::<usize>(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(all(test, unix))]
mod settle_tests {
    #![allow(clippy::unwrap_used)]
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn a_write_the_file_times_do_not_show_is_found_once_the_file_settles() {
        let dir = std::env::temp_dir().join(format!("portcullis-settle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.yaml");
        let ns =
            |name: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n");
        let names = |loaded: &Loaded| -> Vec<String> {
            let names = loaded
                .documents()
                .iter()
                .map(|d| d.object.metadata().name.clone());
            names.collect()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let waited = |files: &mut Files, secs| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(secs), files.changed())
                    .await
                    .is_ok()
            })
        };
        let mut files =
            Files::new([Source::Path(dir.clone())]).with_poll_interval(Duration::from_millis(20));
        // Loaded right after it was written, then left alone: once it settles, its bytes are
        // found the same, and nothing is reported.
        std::fs::write(&path, ns("a")).unwrap();
        let loaded = files.load();
        files.give_back(loaded);
        assert!(
            !waited(&mut files, 3),
            "a change reported where there was none"
        );
        // Written and loaded again, then written a second time to the same length within what
        // the watcher sees as one tick: the modification time is the one the load saw.
        std::fs::write(&path, ns("c")).unwrap();
        let loaded = files.load();
        assert_eq!(names(&loaded), ["c"]);
        files.give_back(loaded);
        let modified: SystemTime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, ns("b")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(modified))
            .unwrap();
        assert_eq!(Fingerprint::of(files.sources()), files.fingerprint);
        assert!(waited(&mut files, 10), "the second write was never seen");
        let loaded = files.load();
        assert_eq!(names(&loaded), ["b"]);
        files.give_back(loaded);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
pub(crate) mod check_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::{Derived, Identity, check};
    use portcullis_translate::GatewayPlan;

    /// A Gateway `istio-system/gw` serving every host on port 80 (also the snapshot tests').
    pub(crate) const GATEWAY: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
        metadata: {name: gw, namespace: istio-system}\n\
        spec:\n  selector: {istio: ingressgateway}\n  \
        servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n";

    fn virtual_service(i: usize, path: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: vs{i}, namespace: istio-system}}\n\
             spec:\n  hosts: [h{i}.example.com]\n  gateways: [gw]\n  \
             http: [{{match: [{{uri: {{prefix: {path}}}}}], route: [{{destination: {{host: web}}}}]}}]\n"
        )
    }

    /// A check of a source that keeps its parse validates and translates again only the
    /// documents that changed, and reports every problem of the others all the same.
    #[test]
    fn checks_reuse_what_unchanged_documents_gave() {
        let dir = std::env::temp_dir().join(format!("portcullis-derived-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let write = |seventh: &str| {
            let mut docs = vec![GATEWAY.to_owned()];
            docs.extend((0..10).map(|i| virtual_service(i, if i == 7 { seventh } else { "/" })));
            docs.push(
                "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
                 metadata: {name: web, namespace: istio-system}\n\
                 spec: {host: web, workloadSelector: {}}\n"
                    .to_owned(),
            );
            std::fs::write(dir.join("config.yaml"), docs.join("---\n")).unwrap();
        };
        let identity = Identity::default();
        let mut files = Files::new([Source::Path(dir.clone())]);
        let mut derived = Derived::default();
        write("/");
        let first = check_source(&mut files, &identity, &mut derived).unwrap();
        // The DestinationRule's warning, found once, is reported by every check.
        assert_eq!(
            first.report.problems.len(),
            1,
            "{:?}",
            first.report.problems
        );
        assert!(!first.report.problems[0].is_error);
        assert_eq!(derived.validations(), 12);
        assert_eq!(
            (
                derived.translation().reused(),
                derived.translation().translated()
            ),
            (0, 10)
        );
        write("/seven");
        let second = check_source(&mut files, &identity, &mut derived).unwrap();
        assert_eq!(derived.validations(), 12);
        assert_eq!(
            (
                derived.translation().reused(),
                derived.translation().translated()
            ),
            (9, 1)
        );
        // What a fresh check finds, the cached one finds.
        let fresh = check(&[Source::Path(dir.clone())], &identity).unwrap();
        assert_eq!(second.report.problems, fresh.report.problems);
        assert_eq!(first.report.problems, fresh.report.problems);
        let table = |plan: &GatewayPlan| plan.route_configs["http.80"].table();
        assert_eq!(table(&second.plan), table(&fresh.plan));
        assert_ne!(table(&first.plan), table(&fresh.plan));

        // A source that parses everything again: after the first check, no route is kept.
        let mut files = Files::new([Source::Path(dir.clone())]).keep_parsed(false);
        let mut derived = Derived::default();
        check_source(&mut files, &identity, &mut derived).unwrap();
        assert_eq!(derived.translation().translated(), 10);
        for _ in 0..2 {
            let again = check_source(&mut files, &identity, &mut derived).unwrap();
            assert_eq!(derived.translation().translated(), 0);
            assert_eq!(table(&again.plan), table(&fresh.plan));
            assert_eq!(again.report.problems, fresh.report.problems);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
