//! Reading the configuration: files and directories (or embedded text) → documents →
//! validation → a [`GatewayPlan`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use std::collections::HashMap;

use portcullis_model::{
    DEFAULT_MAX_DOCUMENTS, Document, Edition, LoadCache, Loaded, Loader, Object,
};
use portcullis_tls::{InMemoryCredentialStore, SecretData};
use portcullis_translate::{
    GatewayPlan, MeshSettings, Proxy, ServiceRegistry, TranslationCache,
    diag::Severity as PlanSeverity, translate_cached, translate_objects,
};
use portcullis_validate::{Diagnostics, Severity, validate_document};

/// Where configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A YAML/JSON file, or a directory read recursively (`.yaml`, `.yml`, `.json`); watched.
    Path(PathBuf),
    /// Text given in memory (the embedded demo); never changes.
    Inline {
        /// The name used in messages (`demo.yaml`).
        name: String,
        /// The YAML or JSON text.
        text: String,
    },
}

/// The gateway's own identity: what Gateways select it and which namespace it sees from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The namespace of the gateway workload (`istio-system`).
    pub namespace: String,
    /// The labels of the gateway workload (`istio: ingressgateway`).
    pub labels: BTreeMap<String, String>,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            namespace: "istio-system".to_owned(),
            labels: BTreeMap::from([("istio".to_owned(), "ingressgateway".to_owned())]),
        }
    }
}

impl Identity {
    pub(crate) fn proxy(&self) -> Proxy {
        Proxy::gateway(
            &self.namespace,
            self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// One problem found in the configuration, ready to print (`file:line:col: path: message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Whether it makes the configuration unusable.
    pub is_error: bool,
    /// The message, with its location.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.is_error { "error" } else { "warning" };
        write!(f, "{level}: {}", self.message)
    }
}

/// Everything a configuration check found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Load errors, validation errors and warnings, translation notes, in that order.
    pub problems: Vec<Problem>,
    /// How many documents were read.
    pub documents: usize,
}

impl Report {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.is_error)
    }

    /// The errors only, one per line.
    pub fn errors_text(&self) -> String {
        let mut out = String::new();
        for p in self.problems.iter().filter(|p| p.is_error) {
            out.push_str(&p.to_string());
            out.push('\n');
        }
        out
    }
}

/// A configuration that loaded and validated, translated for this gateway.
#[derive(Debug)]
pub struct Built {
    /// The plan.
    pub plan: GatewayPlan,
    /// The documents it came from.
    pub documents: Vec<Document>,
    /// Credentials given as Kubernetes Secrets in the configuration.
    pub secrets: Vec<(String, SecretData)>,
    /// Warnings and translation notes.
    pub report: Report,
}

/// Reads every source, each file holding at most `max_documents` documents. With `parsed` (one
/// [`LoadCache`] per source, kept by the caller between calls), only the files whose bytes
/// changed since the last call are parsed.
pub(crate) fn load(
    sources: &[Source],
    max_documents: usize,
    mut parsed: Option<&mut Vec<LoadCache>>,
) -> Loaded {
    let loader = Loader::new().with_max_documents(max_documents);
    if let Some(caches) = parsed.as_deref_mut() {
        caches.resize_with(sources.len(), LoadCache::default);
    }
    // One path and its cache: the cache lends its documents (see `give_back`).
    if let ([Source::Path(p)], Some([cache])) =
        (sources, parsed.as_deref_mut().map(Vec::as_mut_slice))
    {
        return loader.lend_path_cached(p, cache);
    }
    let mut loaded = Loaded::default();
    for (i, source) in sources.iter().enumerate() {
        let cache = parsed.as_deref_mut().and_then(|caches| caches.get_mut(i));
        match (source, cache) {
            (Source::Path(p), Some(cache)) => loaded.extend(loader.read_path_cached(p, cache)),
            (Source::Path(p), None) => loaded.extend(loader.read_path(p)),
            (Source::Inline { name, text }, _) => loaded.extend(loader.read_str(name, text)),
        }
    }
    loaded
}

/// Hands a load of [`load`] back to the cache that lent its documents (one path and its
/// cache), so that the next load reuses them without copying them.
pub(crate) fn give_back(parsed: &mut [LoadCache], loaded: Loaded) {
    if let [cache] = parsed {
        cache.give_back(loaded);
    }
}

fn located(doc: &Document, path: &str) -> String {
    let loc = doc.source_map.nearest(path).unwrap_or(doc.source.location);
    let meta = doc.object.metadata();
    format!(
        "{}:{}:{}: {} {}/{}: {}",
        doc.source.file,
        loc.line,
        loc.column,
        doc.object.kind().as_str(),
        if meta.namespace.is_empty() {
            "default"
        } else {
            &meta.namespace
        },
        meta.name,
        path
    )
}

/// Loads, validates (Istio's webhook rules) and, when there is no error, translates; a file
/// may hold at most [`DEFAULT_MAX_DOCUMENTS`] documents (see [`check_with_max_documents`]).
pub fn check(sources: &[Source], identity: &Identity) -> Result<Built, Report> {
    check_with_max_documents(sources, identity, DEFAULT_MAX_DOCUMENTS)
}

/// [`check`], with files of at most `max_documents` documents instead of
/// [`DEFAULT_MAX_DOCUMENTS`] (the command line's `--max-documents`,
/// [`GatewayBuilder::max_documents`](crate::GatewayBuilder::max_documents)); a larger file is an
/// error that names the option.
pub fn check_with_max_documents(
    sources: &[Source],
    identity: &Identity,
    max_documents: usize,
) -> Result<Built, Report> {
    let result = check_loaded(load(sources, max_documents, None), identity);
    if !sources.is_empty() {
        return result;
    }
    let mut report = match result {
        Ok(built) => built.report,
        Err(report) => report,
    };
    report.problems.push(Problem {
        is_error: true,
        message: "no configuration given".to_owned(),
    });
    Err(report)
}

/// Validates (Istio's webhook rules) loaded documents and, when there is no error,
/// translates them.
pub(crate) fn check_loaded(loaded: Loaded, identity: &Identity) -> Result<Built, Report> {
    let checked = check_documents(&loaded, identity, &mut Derived::none())?;
    Ok(checked.with_documents(loaded.into_documents()))
}

/// What a checked configuration is served from: [`Built`] without its documents.
pub(crate) struct Checked {
    pub(crate) plan: GatewayPlan,
    pub(crate) secrets: Vec<(String, SecretData)>,
    pub(crate) report: Report,
}

impl Checked {
    /// The [`Built`] of the documents this was checked from.
    pub(crate) fn with_documents(self, documents: Vec<Document>) -> Built {
        Built {
            plan: self.plan,
            documents,
            secrets: self.secrets,
            report: self.report,
        }
    }
}

impl From<Built> for Checked {
    fn from(built: Built) -> Self {
        Self {
            plan: built.plan,
            secrets: built.secrets,
            report: built.report,
        }
    }
}

/// What checking a source's documents derived from them, kept for its next check: a document
/// whose [`Edition`] comes back (its file's [`LoadCache`] kept it) is not validated again, and
/// its VirtualService's routes are not translated again while nothing else they depend on has
/// changed ([`TranslationCache`]). Editions come back only from a source that keeps its parsed
/// documents ([`Files::keep_parsed`](crate::Files::keep_parsed)); once a check finds that none
/// came back although the last one kept some, it keeps no routes until they do again.
#[derive(Debug)]
pub(crate) struct Derived {
    /// Whether anything is kept (not for a check made once).
    keep: bool,
    /// Each document's validation, by edition: almost always empty.
    validation: HashMap<Edition, Diagnostics, foldhash::fast::FixedState>,
    translation: TranslationCache,
}

#[cfg(test)]
impl Derived {
    /// How many documents' validations are kept.
    pub(crate) fn validations(&self) -> usize {
        self.validation.len()
    }

    /// The routes kept.
    pub(crate) fn translation(&self) -> &TranslationCache {
        &self.translation
    }
}

impl Default for Derived {
    fn default() -> Self {
        Self {
            keep: true,
            validation: HashMap::default(),
            translation: TranslationCache::new(),
        }
    }
}

impl Derived {
    /// For a check made once: nothing is kept.
    pub(crate) fn none() -> Self {
        Self {
            keep: false,
            ..Self::default()
        }
    }
}

/// Validates (Istio's webhook rules) loaded documents and, when there is no error,
/// translates them.
pub(crate) fn check_documents(
    loaded: &Loaded,
    identity: &Identity,
    derived: &mut Derived,
) -> Result<Checked, Report> {
    let mut report = Report::default();
    for e in loaded.errors() {
        report.problems.push(Problem {
            is_error: true,
            message: e.to_string(),
        });
    }
    for w in loaded.warnings() {
        report.problems.push(Problem {
            is_error: false,
            message: w.to_string(),
        });
    }
    let documents = loaded.documents();
    report.documents = documents.len();
    let mut secrets = Vec::new();
    let mut previous = std::mem::take(&mut derived.validation);
    if derived.keep {
        // Sized once, for ten thousand documents would otherwise be moved as the table grows.
        derived.validation.reserve(documents.len());
    }
    let first = previous.is_empty();
    let mut recurred = false;
    for (doc, edition) in documents.iter().zip(loaded.editions()) {
        let here;
        let found = if derived.keep {
            if !derived.validation.contains_key(edition) {
                let found = match previous.remove(edition) {
                    Some(found) => {
                        recurred = true;
                        found
                    }
                    None => validate_document(&doc.object),
                };
                derived.validation.insert(*edition, found);
            }
            derived.validation.get(edition)
        } else {
            here = validate_document(&doc.object);
            Some(&here)
        };
        for d in found.into_iter().flatten() {
            report.problems.push(Problem {
                is_error: d.severity == Severity::Error,
                message: format!("{}: {}", located(doc, &d.path), d.message),
            });
        }
        if let Object::Secret(secret) = &doc.object {
            match secret_data(secret) {
                Ok(data) => secrets.push((secret.metadata.name.clone(), data)),
                Err(e) => report.problems.push(Problem {
                    is_error: true,
                    message: format!("{}: {e}", located(doc, "data")),
                }),
            }
        }
    }
    if report.has_errors() {
        return Err(report);
    }
    let mesh = MeshSettings::default();
    let registry = ServiceRegistry::from_loaded(loaded, &mesh.domain_suffix);
    let proxy = identity.proxy();
    // Routes are kept for the next check only from a source whose editions come back: with
    // any other, a copy of every route would cost memory and time and never be used.
    let plan = if derived.keep && (first || recurred) {
        translate_cached(loaded, &registry, &proxy, &mesh, &mut derived.translation)
    } else {
        derived.translation = TranslationCache::new();
        translate_objects(
            documents.iter().map(|d| &d.object),
            &registry,
            &proxy,
            &mesh,
        )
    };
    for d in &plan.diagnostics {
        report.problems.push(Problem {
            // Translation never fails; what Envoy would reject is an error for us too.
            is_error: d.severity == PlanSeverity::Error,
            message: format!("translation: {d}"),
        });
    }
    if report.has_errors() {
        return Err(report);
    }
    Ok(Checked {
        plan,
        secrets,
        report,
    })
}

fn secret_data(secret: &portcullis_model::kube::Secret) -> Result<SecretData, String> {
    let mut data = SecretData::new();
    for (k, v) in &secret.data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|e| format!("data.{k} is not base64: {e}"))?;
        data.insert(k.clone(), bytes);
    }
    for (k, v) in &secret.string_data {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    Ok(data)
}

/// Puts the Secrets of a configuration into a credential store.
pub(crate) fn install_secrets(
    store: &InMemoryCredentialStore,
    secrets: &[(String, SecretData)],
) -> Result<(), String> {
    for (name, data) in secrets {
        store
            .insert_secret(name, data)
            .map_err(|e| format!("Secret {name}: {e}"))?;
    }
    Ok(())
}

/// What the watcher compares: every file under the watched paths with its modification time
/// and length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<(PathBuf, Option<SystemTime>, u64)>);

impl Fingerprint {
    pub(crate) fn of(sources: &[Source]) -> Self {
        let mut out = Vec::new();
        for s in sources {
            if let Source::Path(p) = s {
                collect(p, &mut out, 0);
            }
        }
        out.sort();
        Self(out)
    }
}

fn collect(path: &Path, out: &mut Vec<(PathBuf, Option<SystemTime>, u64)>, depth: usize) {
    let Ok(meta) = std::fs::metadata(path) else {
        out.push((path.to_owned(), None, 0));
        return;
    };
    if meta.is_dir() {
        if depth > 32 {
            return;
        }
        out.push((path.to_owned(), meta.modified().ok(), 0));
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                collect(&e.path(), out, depth + 1);
            }
        }
    } else {
        out.push((path.to_owned(), meta.modified().ok(), meta.len()));
    }
}
