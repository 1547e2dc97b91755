//! The multi-document loader.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{LoadError, LoadErrorKind, LoadErrors, LoadWarning, Place};
use crate::kube;
use crate::meta::{ApiVersion, Kind, ObjectMeta, Resource};
use crate::source_map::{DocumentSpan, Location, SourceMap, offset_between, root, scan_documents};
use crate::{DestinationRule, Gateway, ServiceEntry, VirtualService};

/// Limits and strictness of a [`Loader`].
///
/// The limits keep hostile input cheap: a file larger than `max_bytes`, or with more than
/// `max_documents` documents, is refused before it is deserialized, and nesting deeper than
/// `max_depth` is refused by the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Report unknown fields as [`LoadWarning`]s and load the rest, instead of failing the
    /// document. Default: `false` (unknown fields are errors).
    pub lenient_unknown_fields: bool,
    /// The largest file accepted, in bytes. Default: 16 MiB.
    pub max_bytes: usize,
    /// The most documents (counting a `kind: List` and each of its items) one file may hold;
    /// a file with more is refused with a [`LoadErrorKind::Limit`] error that names this
    /// option. Default: 10 000 ([`DEFAULT_MAX_DOCUMENTS`]). The gateway's and the `portcullis`
    /// command's `--max-documents` set it.
    pub max_documents: usize,
    /// The deepest nesting of mappings and sequences accepted. Default: 64 (Istio documents
    /// nest about 12 deep).
    pub max_depth: usize,
    /// The namespace of documents that name none, as `kubectl apply` would put them. Every
    /// namespaced document (the kinds this crate reads but `Namespace`, and skipped documents
    /// of kinds not known to be cluster-scoped) without `metadata.namespace`, or with it null
    /// or empty, gets this one when it is loaded, so no later stage sees an empty namespace.
    /// Default: [`DEFAULT_NAMESPACE`]. An empty string leaves such documents without one.
    pub default_namespace: String,
    /// How many files [`Loader::read_path`] and [`Loader::read_path_cached`] parse at once: the
    /// calling thread and up to `threads - 1` scoped threads (with a main thread's 8 MiB of
    /// stack), each taking the next file; the result is in path order whatever the count. `0`,
    /// the default, is the parallelism the process may use
    /// ([`std::thread::available_parallelism`], which honours CPU affinity and cgroup quotas);
    /// `1` parses every file on the calling thread.
    pub threads: usize,
}

/// The stack of a thread that parses files: a main thread's on Linux, so that a document
/// nested as deep as [`LoadOptions::max_depth`] allows loads on a helper wherever it loads on
/// the calling thread.
const LOAD_THREAD_STACK: usize = 8 << 20;

/// The default of [`LoadOptions::max_documents`]: 10 000 documents in one file.
pub const DEFAULT_MAX_DOCUMENTS: usize = 10_000;

/// The namespace Kubernetes gives objects applied without one: `default`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Kinds that have no namespace (Kubernetes' and its common extensions' cluster-scoped kinds).
/// The loader fills the default namespace into every other document without one.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "ComponentStatus",
    "CustomResourceDefinition",
    "FlowSchema",
    "GatewayClass",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "StorageClass",
    "SubjectAccessReview",
    "TokenReview",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Gives a namespaced document without `metadata.namespace` (or with it null or empty) the
/// namespace `namespace`. A `metadata` that is not a mapping is refused by `load_value`.
fn default_namespace(map: &mut serde_json::Map<String, Value>, kind: &str, namespace: &str) {
    if namespace.is_empty() || CLUSTER_SCOPED_KINDS.contains(&kind) {
        return;
    }
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if metadata.is_null() {
        *metadata = Value::Object(serde_json::Map::new());
    }
    let Value::Object(metadata) = metadata else {
        return;
    };
    let slot = metadata.entry("namespace").or_insert(Value::Null);
    if slot.is_null() || slot.as_str() == Some("") {
        *slot = Value::String(namespace.to_owned());
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            lenient_unknown_fields: false,
            max_bytes: 16 << 20,
            max_documents: DEFAULT_MAX_DOCUMENTS,
            max_depth: 64,
            default_namespace: DEFAULT_NAMESPACE.to_owned(),
            threads: 0,
        }
    }
}

/// Where a document came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentSource {
    /// The file name given to the loader.
    pub file: String,
    /// The 0-based index of the document in its file's stream (empty documents count).
    pub index: usize,
    /// For the items of a `kind: List` document, the item's index.
    pub item: Option<usize>,
    /// Where the document (or list item) starts.
    pub location: Location,
}

/// One loaded object. It serializes as the object itself (with its `apiVersion` and `kind`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "objects are loaded once and matched often; boxing would only add indirection"
)]
pub enum Object {
    /// A `networking.istio.io` Gateway.
    Gateway(Resource<Gateway>),
    /// A `networking.istio.io` VirtualService.
    VirtualService(Resource<VirtualService>),
    /// A `networking.istio.io` DestinationRule.
    DestinationRule(Resource<DestinationRule>),
    /// A `networking.istio.io` ServiceEntry.
    ServiceEntry(Resource<ServiceEntry>),
    /// A core Service.
    Service(kube::Service),
    /// A core Pod.
    Pod(kube::Pod),
    /// A core Secret.
    Secret(kube::Secret),
    /// A core Namespace.
    Namespace(kube::Namespace),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Gateway(_) => Kind::Gateway,
            Self::VirtualService(_) => Kind::VirtualService,
            Self::DestinationRule(_) => Kind::DestinationRule,
            Self::ServiceEntry(_) => Kind::ServiceEntry,
            Self::Service(_) => Kind::Service,
            Self::Pod(_) => Kind::Pod,
            Self::Secret(_) => Kind::Secret,
            Self::Namespace(_) => Kind::Namespace,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Gateway(r) => &r.metadata,
            Self::VirtualService(r) => &r.metadata,
            Self::DestinationRule(r) => &r.metadata,
            Self::ServiceEntry(r) => &r.metadata,
            Self::Service(r) => &r.metadata,
            Self::Pod(r) => &r.metadata,
            Self::Secret(r) => &r.metadata,
            Self::Namespace(r) => &r.metadata,
        }
    }

    /// The object's `apiVersion`.
    pub fn api_version(&self) -> ApiVersion {
        match self {
            Self::Gateway(r) => r.api_version,
            Self::VirtualService(r) => r.api_version,
            Self::DestinationRule(r) => r.api_version,
            Self::ServiceEntry(r) => r.api_version,
            Self::Service(r) => r.api_version,
            Self::Pod(r) => r.api_version,
            Self::Secret(r) => r.api_version,
            Self::Namespace(r) => r.api_version,
        }
    }
}

/// A loaded document: the object, where it came from, and where each of its fields is.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Where the document came from.
    pub source: DocumentSource,
    /// The object.
    pub object: Object,
    /// Field path → line and column, relative to the object (`spec.http[0]`).
    pub source_map: SourceMap,
}

impl Document {
    /// A document made in memory rather than read from a file (a Kubernetes watcher's or a
    /// test's object): `file` names it in messages, and it has no field locations.
    pub fn from_object(file: impl Into<String>, index: usize, object: Object) -> Self {
        Self {
            source: DocumentSource {
                file: file.into(),
                index,
                item: None,
                location: Location { line: 1, column: 1 },
            },
            object,
            source_map: SourceMap::default(),
        }
    }
}

/// A document of a kind this crate does not read (a Gateway API `Gateway`, a `Sidecar`, a
/// `ConfigMap`, …), kept so callers can list what they ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedDocument {
    /// Where the document came from.
    pub source: DocumentSource,
    /// Its `apiVersion` as written.
    pub api_version: String,
    /// Its `kind` as written.
    pub kind: String,
    /// Its `metadata.name`, if it has one.
    pub name: String,
    /// The whole document as written, for callers that read other kinds (analysis reads Nodes,
    /// Sidecars and RequestAuthentications).
    pub value: Value,
}

/// What a load produced: documents, skipped documents, warnings and errors, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    documents: Vec<Document>,
    skipped: Vec<SkippedDocument>,
    warnings: Vec<LoadWarning>,
    errors: Vec<LoadError>,
    /// Each document's edition (same index as `documents`).
    editions: Editions,
    /// Which lending of a [`LoadCache`] this load is, while nothing has changed it.
    lent: LendMark,
}

/// Which parse of its text a loaded document is. Two documents of the same edition hold equal
/// objects: they come from one parse of one text, though perhaps from different places in
/// their file, so their [sources](Document::source) and [field locations](Document::source_map)
/// may differ.
///
/// Each document a loader parses gets a new edition; a document a [`LoadCache`] keeps keeps
/// its edition, so a caller that loads a configuration again after a change can tell the
/// documents that changed from those that did not, and reuse what it derived from the latter
/// (a gateway, its validation and translation). Editions are unique within a process.
///
/// ```
/// use portcullis_model::{LoadCache, Loader};
///
/// let dir = std::env::temp_dir().join(format!("portcullis-edition-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let file = dir.join("config.yaml");
/// let write = |second: &str| {
///     std::fs::write(&file, format!(
///         "apiVersion: v1\nkind: Namespace\nmetadata: {{name: a}}\n---\n\
///          apiVersion: v1\nkind: Namespace\nmetadata: {{name: {second}}}\n"))
/// };
/// let (loader, mut cache) = (Loader::new(), LoadCache::default());
/// write("b")?;
/// let before = loader.read_path_cached(&dir, &mut cache).editions().to_vec();
/// write("c")?; // the second document changes, the first does not
/// let after = loader.read_path_cached(&dir, &mut cache).editions().to_vec();
/// assert_eq!(after[0], before[0]);
/// assert_ne!(after[1], before[1]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edition(u64);

impl Edition {
    /// An edition no other document of this process has.
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// The editions of a load's documents. Two loads are equal whatever their editions: equal
/// documents from two parses are still equal.
#[derive(Clone, Debug, Default)]
struct Editions(Vec<Edition>);

impl PartialEq for Editions {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The lending a load came from ([`Loader::lend_path_cached`]). Only the methods of [`Loaded`]
/// can change a load, and the one that does ([`Loaded::extend`]) clears it: a load that still
/// carries its mark holds exactly what its cache lent. Two loads are equal whatever their
/// marks.
#[derive(Clone, Copy, Debug, Default)]
struct LendMark(Option<u64>);

impl PartialEq for LendMark {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl LendMark {
    /// A mark no other lending in this process has.
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(Some(
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

impl Loaded {
    /// The loaded documents.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// Each document's [`Edition`], in the order of [`documents`](Self::documents).
    pub fn editions(&self) -> &[Edition] {
        &self.editions.0
    }

    /// Takes the loaded documents out.
    pub fn into_documents(self) -> Vec<Document> {
        self.documents
    }

    /// The documents of other kinds.
    pub fn skipped(&self) -> &[SkippedDocument] {
        &self.skipped
    }

    /// Warnings (unknown fields, in lenient mode).
    pub fn warnings(&self) -> &[LoadWarning] {
        &self.warnings
    }

    /// The documents that did not load, one error each.
    pub fn errors(&self) -> &[LoadError] {
        &self.errors
    }

    /// `Ok(self)` when every document loaded, else every error.
    pub fn into_result(self) -> Result<Self, LoadErrors> {
        if self.errors.is_empty() {
            Ok(self)
        } else {
            Err(LoadErrors::new(self.errors))
        }
    }

    /// Appends another load's results (to build one configuration from several files).
    /// A load [lent](Loader::lend_path_cached) by a cache is no longer its cache's to take
    /// back once extended, or extended into another.
    pub fn extend(&mut self, other: Self) {
        self.lent = LendMark::default();
        append(&mut self.documents, other.documents);
        append(&mut self.editions.0, other.editions.0);
        append(&mut self.skipped, other.skipped);
        append(&mut self.warnings, other.warnings);
        append(&mut self.errors, other.errors);
    }

    /// Appends clones of another load's results, without the intermediate copy that
    /// `extend(other.clone())` would make.
    fn extend_cloned(&mut self, other: &Self) {
        self.documents.extend_from_slice(&other.documents);
        self.editions.0.extend_from_slice(&other.editions.0);
        self.skipped.extend_from_slice(&other.skipped);
        self.warnings.extend_from_slice(&other.warnings);
        self.errors.extend_from_slice(&other.errors);
    }

    /// A load that is one error.
    fn refused(error: LoadError) -> Self {
        Self {
            errors: vec![error],
            ..Self::default()
        }
    }

    /// Moves what was loaded `indices` documents and `lines` lines along its stream (a part
    /// of a stream kept from an earlier text, see [`Loader::read_path_cached`]).
    fn rebase(&mut self, indices: isize, lines: isize) {
        if indices == 0 && lines == 0 {
            return;
        }
        let shift = |source: &mut DocumentSource| {
            source.index = source.index.saturating_add_signed(indices);
            source.location.line = source.location.line.saturating_add_signed(lines);
        };
        for doc in &mut self.documents {
            shift(&mut doc.source);
            doc.source_map.shift_lines(lines);
        }
        for skipped in &mut self.skipped {
            shift(&mut skipped.source);
        }
    }
}

/// `to.extend(from)`, taking `from` whole when `to` is empty: documents are large, and the
/// first of several loads appended is usually most of them.
fn append<T>(to: &mut Vec<T>, from: Vec<T>) {
    if to.is_empty() && to.capacity() <= from.capacity() {
        *to = from;
    } else {
        to.extend(from);
    }
}

/// A load of documents that are already objects (no warnings, no errors), each a new
/// [`Edition`].
impl FromIterator<Document> for Loaded {
    fn from_iter<I: IntoIterator<Item = Document>>(documents: I) -> Self {
        let documents: Vec<Document> = documents.into_iter().collect();
        let editions = Editions(documents.iter().map(|_| Edition::new()).collect());
        Self {
            documents,
            editions,
            ..Self::default()
        }
    }
}

/// Parsed files kept between calls of [`Loader::read_path_cached`]: each file's bytes and
/// what loading them produced, and the options they were loaded with. (Its `Debug` shows the
/// counts, not the texts and documents.)
#[derive(Clone, Default)]
pub struct LoadCache {
    files: std::collections::HashMap<std::path::PathBuf, CachedFile>,
    /// Every cached file's documents, file after file in the order of `order`, each file's
    /// parts in order: the documents of a load in one list, so that lending it and taking it
    /// back move the list, not each document (a document is about 2 KB, and a large
    /// configuration has tens of thousands).
    store: Stored,
    /// The files `store` holds the documents of, in its order, and how many each holds. Every
    /// file of `files` is here.
    order: Vec<(std::path::PathBuf, usize)>,
    options: Option<LoadOptions>,
    parsed: usize,
    kept: usize,
    /// The load lent out and not given back yet: the cached parts it took are empty.
    lent: Option<Lending>,
}

/// Documents and their editions, in the same order.
#[derive(Clone, Default)]
struct Stored {
    documents: Vec<Document>,
    editions: Vec<Edition>,
}

impl Stored {
    /// Takes the documents (and editions) out of a part's load, leaving it their count.
    fn take_from(part: &mut LoadedPart) -> Self {
        part.held = part.loaded.documents.len();
        Self {
            documents: std::mem::take(&mut part.loaded.documents),
            editions: std::mem::take(&mut part.loaded.editions.0),
        }
    }

    fn append(&mut self, mut other: Self) {
        append(&mut self.documents, std::mem::take(&mut other.documents));
        append(&mut self.editions, std::mem::take(&mut other.editions));
    }

    /// The documents of a file's freshly read parts, in order: each part's own, and those it
    /// reuses from this store, where the file's earlier text starts at `file_start`. A text
    /// written twice reuses the same documents twice: they are copied for all but the last.
    fn stow(&mut self, parts: &mut [LoadedPart], file_start: usize) -> Self {
        let mut uses: std::collections::HashMap<_, usize, foldhash::fast::RandomState> =
            std::collections::HashMap::default();
        for moved in parts.iter().filter_map(|part| part.moved.as_ref()) {
            *uses.entry(moved.held.clone()).or_insert(0) += 1;
        }
        for part in parts.iter_mut() {
            let last = part.moved.as_ref().is_some_and(|moved| {
                uses.get_mut(&moved.held).is_some_and(|left| {
                    *left = left.saturating_sub(1);
                    *left == 0
                })
            });
            self.move_to(part, file_start, last);
        }
        // Sized once: a list of large documents grown by doubling copies them all.
        let count = parts.iter().map(|part| part.loaded.documents.len()).sum();
        let mut stored = Self {
            documents: Vec::with_capacity(count),
            editions: Vec::with_capacity(count),
        };
        for part in parts.iter_mut() {
            stored.append(Self::take_from(part));
        }
        stored
    }

    /// Moves the documents a part reuses ([`LoadedPart::moved`]) from the store of its file's
    /// earlier text, which starts at `file_start`, into the part, at their new places, or
    /// copies them unless this is the `last` part to reuse them. What a move leaves behind in
    /// the store is a [`hole`] each, until the file's new documents replace its old ones.
    fn move_to(&mut self, part: &mut LoadedPart, file_start: usize, last: bool) {
        let Some(moved) = part.moved.take() else {
            return;
        };
        // `read_parts` checked the range against this same store, which nothing has changed
        // since.
        let from =
            file_start.saturating_add(moved.held.start)..file_start.saturating_add(moved.held.end);
        debug_assert!(from.end <= self.documents.len() && from.end <= self.editions.len());
        if let Some(documents) = self.documents.get_mut(from.clone()) {
            part.loaded.documents = if last {
                documents
                    .iter_mut()
                    .map(|document| std::mem::replace(document, hole()))
                    .collect()
            } else {
                documents.to_vec()
            };
        }
        if let Some(editions) = self.editions.get(from) {
            part.loaded.editions.0 = editions.to_vec();
        }
        part.loaded.rebase(moved.indices, moved.lines);
    }
}

/// What stands in a store for a document moved out of it: an object with nothing in it, which
/// costs no allocation.
fn hole() -> Document {
    let empty = Resource::new(ApiVersion::CoreV1, Kind::Namespace, "", "");
    Document::from_object(String::new(), 0, Object::Namespace(empty))
}

/// How long a file must have been left alone before what its metadata says is trusted to
/// tell whether it changed. A file's times are kept in ticks of the file system's own (from a
/// few milliseconds on Linux to two seconds on FAT): a file written twice within one tick, to
/// the same length, looks untouched by its metadata, so a file that changed less than a tick
/// before it was looked at is compared byte for byte.
const QUIET: std::time::Duration = std::time::Duration::from_secs(2);

/// What a file's metadata says of its content: its length, its times of last modification
/// and of last change (which a write or a rename always moves, and no program can set), and
/// which file it is. A file whose stamp is what it was when it was read, and which had been
/// quiet for [`QUIET`] then, holds the same bytes: it is not read again (make and git decide
/// the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: std::time::SystemTime,
    changed: (i64, i64),
    file: (u64, u64),
}

impl Stamp {
    /// The stamp of `meta`, when the file last changed at least [`QUIET`] before `now`; on
    /// systems without a change time, none.
    fn of(meta: &std::fs::Metadata, now: std::time::SystemTime) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let changed = std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(
                u64::try_from(meta.ctime()).ok()?,
                u32::try_from(meta.ctime_nsec()).ok()?,
            ))?;
            let quiet_since = now.checked_sub(QUIET)?;
            (changed < quiet_since).then_some(())?;
            Some(Self {
                len: meta.len(),
                modified: meta.modified().ok()?,
                changed: (meta.ctime(), meta.ctime_nsec()),
                file: (meta.dev(), meta.ino()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = (meta, now);
            None
        }
    }
}

/// Whether the file at `path`, whose metadata is `meta`, holds exactly `text`: its length,
/// then its bytes.
fn holds_text(path: &Path, meta: &std::fs::Metadata, text: &str) -> bool {
    u64::try_from(text.len()).is_ok_and(|len| len == meta.len())
        && holds(path, text.as_bytes()).unwrap_or(false)
}

/// Whether the file at `path` holds exactly `expected`.
fn holds(path: &Path, expected: &[u8]) -> std::io::Result<bool> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut piece = vec![0u8; 64 * 1024];
    let mut at = 0usize;
    loop {
        let n = file.read(&mut piece)?;
        if n == 0 {
            return Ok(at == expected.len());
        }
        let end = at.saturating_add(n);
        if expected.get(at..end) != piece.get(..n) {
            return Ok(false);
        }
        at = end;
    }
}

/// Moves the next `n` items of `from` into `into`, or drops them when they have no home.
fn refill<T>(from: &mut std::vec::IntoIter<T>, n: usize, into: Option<&mut Vec<T>>) {
    let taken = from.by_ref().take(n);
    match into {
        Some(into) => into.extend(taken),
        None => taken.for_each(drop),
    }
}

/// Where the pieces of a lent load go back to: in the load's order, each file's parts (or
/// the errors of a file that could not be read, which have no home in the cache).
#[derive(Clone)]
struct Lending {
    mark: u64,
    pieces: Vec<(Option<std::path::PathBuf>, Vec<PieceLen>)>,
}

/// How much of each of a load's lists but its documents (which a lending moves whole) one
/// piece of it holds.
#[derive(Clone, Copy)]
struct PieceLen {
    skipped: usize,
    warnings: usize,
    errors: usize,
}

impl PieceLen {
    fn of(loaded: &Loaded) -> Self {
        Self {
            skipped: loaded.skipped.len(),
            warnings: loaded.warnings.len(),
            errors: loaded.errors.len(),
        }
    }
}

#[derive(Clone)]
struct CachedFile {
    text: String,
    /// The file's [`Stamp`] when `text` was its content, if it had been quiet long enough.
    stamp: Option<Stamp>,
    /// The file's stamp when [`LoadCache::settle`] last found it changed: the same change is
    /// reported once, however long the file waits to be loaded again.
    reported: Option<Stamp>,
    /// What each part of `text` loaded to (see [`split_stream`]), but for the documents,
    /// which are in the cache's store.
    parts: Vec<LoadedPart>,
}

impl std::fmt::Debug for LoadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadCache")
            .field("files", &self.files.len())
            .field("parsed", &self.parsed)
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

impl LoadCache {
    /// How many files the last [`Loader::read_path_cached`] with this cache parsed (the rest
    /// came from the cache).
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// How many documents of the files the last [`Loader::read_path_cached`] parsed came
    /// from the cache all the same, their text unchanged: a file is read again from each line
    /// that starts a document (`---`), and only the parts whose text changed are parsed.
    pub fn kept_documents(&self) -> usize {
        self.kept
    }

    /// How many files the cache holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the cache holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Looks again at each file the cache read within two seconds of its last change, once it
    /// has been left alone for two seconds, and says whether one of them no longer holds the
    /// bytes the cache read. The others stay as they are; they are not read.
    ///
    /// A watcher that compares files' lengths and modification times (as most do, and the
    /// gateway's poller) cannot tell a file written twice within one tick of the file
    /// system's clock, to the same length, from one written once: if the cache read it in
    /// between, the second write goes unseen. Calling this on every poll finds it, once: a file
    /// found changed is not reported again until it changes again or a load reads it. A file
    /// whose bytes are the same is kept from then on by its stamp, and not looked at again. On
    /// systems without a change time (other than Unix) it does nothing.
    ///
    /// ```
    /// use portcullis_model::{LoadCache, Loader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("settle-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// std::fs::write(dir.join("a.yaml"), "kind: Namespace\napiVersion: v1\nmetadata: {name: a}\n")?;
    /// let mut cache = LoadCache::default();
    /// Loader::new().read_path_cached(&dir, &mut cache);
    /// // Just written: not yet left alone for two seconds, so not looked at again yet.
    /// assert!(!cache.settle());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn settle(&mut self) -> bool {
        self.settle_at(std::time::SystemTime::now())
    }

    /// [`settle`](Self::settle) with the clock read as `now`.
    fn settle_at(&mut self, now: std::time::SystemTime) -> bool {
        if cfg!(not(unix)) {
            return false;
        }
        let mut changed = false;
        for (path, file) in &mut self.files {
            if file.stamp.is_some() {
                continue;
            }
            let Some(meta) = std::fs::metadata(path).ok() else {
                continue;
            };
            let Some(stamp) = Stamp::of(&meta, now) else {
                continue;
            };
            if holds_text(path, &meta, &file.text) {
                file.stamp = Some(stamp);
            } else if file.reported != Some(stamp) {
                file.reported = Some(stamp);
                changed = true;
            }
        }
        changed
    }

    /// Forgets every file.
    fn clear(&mut self) {
        self.files.clear();
        self.store = Stored::default();
        self.order.clear();
    }

    /// Puts the documents of the files just parsed (`fresh`) into the store, which then holds
    /// the documents of the files in `order`, in that order, and forgets every other file.
    /// Usually the same files were read as last time: each changed file's documents then
    /// replace its old ones where they are, moving no other document unless their number
    /// changed.
    fn restock(
        &mut self,
        order: &[&std::path::PathBuf],
        mut fresh: std::collections::HashMap<std::path::PathBuf, Stored>,
    ) {
        debug_assert_eq!(
            self.store.documents.len(),
            self.order.iter().map(|(_, n)| n).sum::<usize>()
        );
        let same = self.order.len() == order.len()
            && self.order.iter().zip(order).all(|((a, _), b)| a == *b);
        if same {
            // From the last file back, so that the earlier ones stay where they are.
            let mut end = self.store.documents.len();
            for (file, n) in self.order.iter_mut().rev() {
                let start = end.saturating_sub(*n);
                if let Some(new) = fresh.remove(file) {
                    *n = new.documents.len();
                    self.store.documents.splice(start..end, new.documents);
                    self.store.editions.splice(start..end, new.editions);
                }
                end = start;
            }
        } else {
            // Files came, went or could not be read: the store is built again.
            let old = std::mem::take(&mut self.store);
            let (mut documents, mut editions) =
                (old.documents.into_iter(), old.editions.into_iter());
            let mut kept = std::collections::HashMap::with_capacity(self.order.len());
            for (file, n) in self.order.drain(..) {
                let stored = Stored {
                    documents: documents.by_ref().take(n).collect(),
                    editions: editions.by_ref().take(n).collect(),
                };
                kept.insert(file, stored);
            }
            for file in order {
                // Each file read is fresh or was kept: a file not stored is not cached.
                if let Some(stored) = fresh.remove(*file).or_else(|| kept.remove(*file)) {
                    self.order.push(((*file).clone(), stored.documents.len()));
                    self.store.append(stored);
                }
            }
        }
        let stored: std::collections::HashSet<&std::path::PathBuf> =
            self.order.iter().map(|(file, _)| file).collect();
        self.files.retain(|file, _| stored.contains(file));
    }

    /// Takes back the documents of the last [`Loader::lend_path_cached`] with this cache, so
    /// that the next call reuses them without copying them. A load that is not that one, or
    /// that was [extended](Loaded::extend) since, is dropped and changes nothing.
    pub fn give_back(&mut self, loaded: Loaded) {
        let Some(lending) = self.lent.take_if(|l| loaded.lent.0 == Some(l.mark)) else {
            return;
        };
        let Loaded {
            documents,
            editions,
            skipped,
            warnings,
            errors,
            ..
        } = loaded;
        let (mut skipped, mut warnings, mut errors) = (
            skipped.into_iter(),
            warnings.into_iter(),
            errors.into_iter(),
        );
        self.store = Stored {
            documents,
            editions: editions.0,
        };
        for (file, lens) in lending.pieces {
            let mut parts = file
                .and_then(|file| self.files.get_mut(&file))
                .map(|cached| cached.parts.iter_mut());
            for len in lens {
                // Back into the lists the part lent them from, which kept their allocations.
                let mut part = parts
                    .as_mut()
                    .and_then(Iterator::next)
                    .map(|part| &mut part.loaded);
                refill(
                    &mut skipped,
                    len.skipped,
                    part.as_mut().map(|p| &mut p.skipped),
                );
                refill(
                    &mut warnings,
                    len.warnings,
                    part.as_mut().map(|p| &mut p.warnings),
                );
                refill(
                    &mut errors,
                    len.errors,
                    part.as_mut().map(|p| &mut p.errors),
                );
            }
        }
    }
}

/// Reads YAML and JSON streams of Istio networking resources and the core kinds analysis needs.
///
/// * Multi-document YAML (`---`), JSON, and `kind: List` documents.
/// * Other kinds are [skipped](Loaded::skipped), not errors; so is any kind under an API group
///   this crate does not read (a Gateway API `Gateway` is not an Istio `Gateway`).
/// * Duplicate mapping keys are errors, as in `istioctl validate`.
/// * Unknown fields are errors unless [`LoadOptions::lenient_unknown_fields`] is set.
/// * Every error names the file, line, column and field path.
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone, Debug, Default)]
pub struct Loader {
    options: LoadOptions,
}

impl Loader {
    /// A loader with the default [`LoadOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader with these options.
    pub fn with_options(options: LoadOptions) -> Self {
        Self { options }
    }

    /// The same loader putting documents without a namespace in `namespace` (see
    /// [`LoadOptions::default_namespace`]).
    ///
    /// ```
    /// use portcullis_model::{Loader, Object};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let text = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
    ///             metadata: {name: cnn}\nspec: {hosts: [edition.cnn.com]}\n";
    /// let loaded = Loader::new().load_str("se.yaml", text)?;
    /// assert_eq!(loaded.documents()[0].object.metadata().namespace, "default");
    /// let loaded = Loader::new().with_default_namespace("egress").load_str("se.yaml", text)?;
    /// assert_eq!(loaded.documents()[0].object.metadata().namespace, "egress");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.options.default_namespace = namespace.into();
        self
    }

    /// Accepts files of at most `max` documents instead of [`DEFAULT_MAX_DOCUMENTS`] (see
    /// [`LoadOptions::max_documents`]).
    #[must_use]
    pub fn with_max_documents(mut self, max: usize) -> Self {
        self.options.max_documents = max;
        self
    }

    /// Parses at most `threads` files at once in [`read_path`](Self::read_path) and
    /// [`read_path_cached`](Self::read_path_cached) (see
    /// [`LoadOptions::threads`]; `0` is the available parallelism).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.options.threads = threads;
        self
    }

    /// The options in use.
    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// Loads one stream; fails with every error if any document does not load.
    pub fn load_str(&self, file: &str, text: &str) -> Result<Loaded, LoadErrors> {
        self.read_str(file, text).into_result()
    }

    /// Loads one file; fails with every error if any document does not load.
    pub fn load_file(&self, path: &Path) -> Result<Loaded, LoadErrors> {
        self.read_file(path).into_result()
    }

    /// Loads a file, or every `.yaml`, `.yml` and `.json` file under a directory (recursively,
    /// in path order); fails with every error if any document does not load.
    pub fn load_path(&self, path: &Path) -> Result<Loaded, LoadErrors> {
        self.read_path(path).into_result()
    }

    /// Loads a file, or every `.yaml`, `.yml` and `.json` file under a directory, keeping the
    /// documents that load beside the errors of those that do not.
    pub fn read_path(&self, path: &Path) -> Loaded {
        let mut files = Vec::new();
        if let Err(err) = collect_files(path, &mut files) {
            let mut loaded = Loaded::default();
            loaded.errors.push(io_error(path, &err));
            return loaded;
        }
        let mut loaded = Loaded::default();
        let per_file = self.read_files(&files);
        loaded
            .documents
            .reserve(per_file.iter().map(|l| l.documents.len()).sum());
        for one in per_file {
            loaded.extend(one);
        }
        loaded
    }

    /// Reads `files`, on as many threads as [`LoadOptions::threads`] allows, into one
    /// [`Loaded`] per file in the order given.
    fn read_files(&self, files: &[std::path::PathBuf]) -> Vec<Loaded> {
        self.parallel(files.len(), |i| {
            files.get(i).map(|f| self.read_file(f)).unwrap_or_default()
        })
    }

    /// `job(0) … job(n - 1)` in that order, run on the calling thread and up to
    /// [`LoadOptions::threads`]` - 1` scoped threads, each taking the next index. Parsing is
    /// most of loading, and files are independent; a thread that cannot be started leaves its
    /// share to the others, and a job that panics panics the calling thread once every thread
    /// has stopped, as it would without threads.
    fn parallel<T: Send>(&self, n: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
        let threads = match self.options.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            t => t,
        }
        .min(n);
        if threads <= 1 {
            return (0..n).map(&job).collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return done;
                }
                done.push((i, job(i)));
            }
        };
        let (mut done, panicked) = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .name("portcullis-load".to_owned())
                        .stack_size(LOAD_THREAD_STACK)
                        .spawn_scoped(scope, work)
                        .ok()
                })
                .collect();
            let mut done: Vec<(usize, T)> = work();
            let mut panicked = None;
            for helper in helpers {
                match helper.join() {
                    Ok(theirs) => done.extend(theirs),
                    Err(payload) => panicked = Some(payload),
                }
            }
            (done, panicked)
        });
        if let Some(payload) = panicked {
            std::panic::resume_unwind(payload);
        }
        done.sort_unstable_by_key(|(i, _)| *i);
        // Each index was taken by exactly one thread, which finished it; were one missing, it
        // is done here rather than left out.
        let mut out = Vec::with_capacity(n);
        let mut done = done.into_iter().peekable();
        for i in 0..n {
            match done.next_if(|(j, _)| *j == i) {
                Some((_, value)) => out.push(value),
                None => out.push(job(i)),
            }
        }
        out
    }

    /// As [`read_path`](Self::read_path), parsing only the files whose bytes differ from those
    /// `cache` holds from the last call with it, and in those only the documents whose text
    /// differs ([`LoadCache::kept_documents`]). The unchanged files' documents, warnings and
    /// errors come from the cache, and so do a changed file's unchanged documents, moved to
    /// their new lines (a document with a warning or an error is read again). A file is not
    /// even read again when its length, modification and change times and identity are those
    /// it had when the cache last saw it, if it had then been left alone for two seconds or
    /// more. (On a network file system that caches what it says of files, NFS's attribute
    /// cache for one, a change is seen once that cache says it too.) Files no longer
    /// under `path` leave the cache, and a cache used with other [`LoadOptions`] (but for
    /// [`threads`](LoadOptions::threads)) is emptied first. For a source read again after one
    /// of its files changed, such as a watched configuration directory.
    ///
    /// ```
    /// use portcullis_model::{LoadCache, Loader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("load-cache-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let se = |host: &str| format!("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
    ///                                metadata: {{name: {host}}}\nspec: {{hosts: [{host}]}}\n");
    /// std::fs::write(dir.join("a.yaml"), se("a.example"))?;
    /// std::fs::write(dir.join("b.yaml"), se("b.example"))?;
    /// let loader = Loader::new();
    /// let mut cache = LoadCache::default();
    /// assert_eq!(loader.read_path_cached(&dir, &mut cache).documents().len(), 2);
    /// assert_eq!(cache.parsed(), 2);
    /// std::fs::write(dir.join("b.yaml"), se("c.example"))?;
    /// let loaded = loader.read_path_cached(&dir, &mut cache);
    /// assert_eq!(loaded.documents()[1].object.metadata().name, "c.example");
    /// assert_eq!(cache.parsed(), 1); // a.yaml came from the cache
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_path_cached(&self, path: &Path, cache: &mut LoadCache) -> Loaded {
        self.read_path_cached_as(path, cache, Hand::Copy, std::time::SystemTime::now())
    }

    /// As [`read_path_cached`](Self::read_path_cached), but the documents the cache held are
    /// moved into the load rather than copied: give the load back with
    /// [`LoadCache::give_back`] once done with it, and the next call reuses them again. If it
    /// is not given back, the next call parses every file as if the cache were empty. For a
    /// caller that reads a large configuration again on every change, and needs each load only
    /// until it has checked it (copying ten thousand documents costs more than parsing the
    /// one that changed).
    ///
    /// ```
    /// use portcullis_model::{LoadCache, Loader};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("lend-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let se = |host: &str| format!("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
    ///                                metadata: {{name: {host}}}\nspec: {{hosts: [{host}]}}\n");
    /// std::fs::write(dir.join("a.yaml"), se("a.example"))?;
    /// let loader = Loader::new();
    /// let mut cache = LoadCache::default();
    /// let loaded = loader.lend_path_cached(&dir, &mut cache);
    /// assert_eq!(loaded.documents().len(), 1);
    /// cache.give_back(loaded);
    /// let again = loader.lend_path_cached(&dir, &mut cache);
    /// assert_eq!((again.documents().len(), cache.parsed()), (1, 0)); // nothing parsed again
    /// drop(again); // not given back: the next call parses a.yaml again
    /// loader.lend_path_cached(&dir, &mut cache);
    /// assert_eq!(cache.parsed(), 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lend_path_cached(&self, path: &Path, cache: &mut LoadCache) -> Loaded {
        self.read_path_cached_as(path, cache, Hand::Lend, std::time::SystemTime::now())
    }

    /// [`read_path_cached`](Self::read_path_cached) or
    /// [`lend_path_cached`](Self::lend_path_cached), with the clock read before any file's
    /// metadata as `now`.
    fn read_path_cached_as(
        &self,
        path: &Path,
        cache: &mut LoadCache,
        hand: Hand,
        now: std::time::SystemTime,
    ) -> Loaded {
        let mut files = Vec::new();
        cache.parsed = 0;
        cache.kept = 0;
        if cache.lent.take().is_some() {
            // What the cache lent last time never came back: its store is empty.
            cache.clear();
        }
        if let Err(err) = collect_files(path, &mut files) {
            let mut loaded = Loaded::default();
            loaded.errors.push(io_error(path, &err));
            return loaded;
        }
        // What a file loads to depends on every option but the thread count.
        let options = LoadOptions {
            threads: 0,
            ..self.options.clone()
        };
        if cache.options.as_ref() != Some(&options) {
            cache.clear();
            cache.options = Some(options);
        }
        // Each file is compared with the bytes its cached parse came from (`None`: the same):
        // by its stamp when it had been quiet, else by reading it, which is cheap next to
        // parsing.
        type Read = Result<Option<String>, LoadError>;
        let (mut texts, stamps): (Vec<Read>, Vec<Option<Stamp>>) = files
            .iter()
            .map(|f| match self.read_changed(f, cache.files.get(f), now) {
                Ok((text, stamp)) => (Ok(text), stamp),
                Err(e) => (Err(e), None),
            })
            .unzip();
        let misses: Vec<usize> = texts
            .iter()
            .zip(&files)
            .enumerate()
            .filter(|(_, (text, file))| match (text, cache.files.get(*file)) {
                (Ok(Some(text)), Some(cached)) => cached.text != *text,
                (Ok(Some(_)), None) => true,
                (Ok(None) | Err(_), _) => false,
            })
            .map(|(i, _)| i)
            .collect();
        // Where each cached file's documents are in the store.
        let mut held = std::collections::HashMap::with_capacity(cache.order.len());
        let mut at = 0usize;
        for (file, n) in &cache.order {
            held.insert(file, at..at.saturating_add(*n));
            at = at.saturating_add(*n);
        }
        // A changed file is read part by part, each part reusing what its text loaded to
        // last time: a one-line change to one of a thousand documents parses that one.
        let mut parsed = self.parallel(misses.len(), |m| {
            let i = misses.get(m).copied().unwrap_or(usize::MAX);
            match (files.get(i), texts.get(i)) {
                (Some(file), Some(Ok(Some(text)))) => {
                    let previous = cache.files.get(file).and_then(|c| {
                        let held = held.get(file)?.clone();
                        Some(Previous {
                            text: &c.text,
                            parts: &c.parts,
                            documents: cache.store.documents.get(held.clone())?,
                            editions: cache.store.editions.get(held)?,
                        })
                    });
                    self.read_parts(&file.display().to_string(), text, previous)
                }
                _ => Vec::new(),
            }
        });
        cache.parsed = parsed.len();
        let mut fresh = std::collections::HashMap::with_capacity(misses.len());
        for (i, parts) in misses.iter().zip(&mut parsed) {
            if let (Some(file), Some(Ok(text))) = (files.get(*i), texts.get_mut(*i)) {
                let file_start = held.get(file).map_or(0, |held| held.start);
                let stored = cache.store.stow(parts, file_start);
                cache.kept = parts
                    .iter()
                    .filter(|part| part.kept)
                    .map(|part| part.held)
                    .fold(cache.kept, usize::saturating_add);
                fresh.insert(file.clone(), stored);
                // Below, only whether each file could be read matters: its text can move.
                let parts = std::mem::take(parts);
                if let Some(text) = text.take() {
                    let stamp = stamps.get(*i).copied().flatten();
                    cache.files.insert(
                        file.clone(),
                        CachedFile {
                            text,
                            parts,
                            stamp,
                            reported: None,
                        },
                    );
                }
            }
        }
        for ((file, text), stamp) in files.iter().zip(&texts).zip(&stamps) {
            if let (Ok(None), Some(cached)) = (text, cache.files.get_mut(file)) {
                cached.stamp = *stamp;
            }
        }
        // The files read, in order: the store's new order.
        let order: Vec<&std::path::PathBuf> = files
            .iter()
            .zip(&texts)
            .filter(|(_, text)| text.is_ok())
            .map(|(file, _)| file)
            .collect();
        cache.restock(&order, fresh);
        let mut loaded = Loaded::default();
        let mut pieces = Vec::new();
        match hand {
            Hand::Copy => {
                loaded.documents.clone_from(&cache.store.documents);
                loaded.editions.0.clone_from(&cache.store.editions);
            }
            Hand::Lend => {
                loaded.documents = std::mem::take(&mut cache.store.documents);
                loaded.editions.0 = std::mem::take(&mut cache.store.editions);
            }
        }
        for (file, text) in files.iter().zip(texts) {
            match (text, cache.files.get_mut(file)) {
                (Ok(_), Some(cached)) => match hand {
                    Hand::Copy => {
                        for part in &cached.parts {
                            loaded.extend_cloned(&part.loaded);
                        }
                    }
                    Hand::Lend => {
                        let mut lens = Vec::with_capacity(cached.parts.len());
                        for part in &mut cached.parts {
                            lens.push(PieceLen::of(&part.loaded));
                            // Moved, not taken: each part keeps its lists' allocations for
                            // their return.
                            let part = &mut part.loaded;
                            loaded.skipped.append(&mut part.skipped);
                            loaded.warnings.append(&mut part.warnings);
                            loaded.errors.append(&mut part.errors);
                        }
                        pieces.push((Some(file.clone()), lens));
                    }
                },
                (Err(unread), _) => {
                    let unread = Loaded::refused(unread);
                    pieces.push((None, vec![PieceLen::of(&unread)]));
                    loaded.extend(unread);
                }
                (Ok(_), None) => {}
            }
        }
        if hand == Hand::Lend {
            loaded.lent = LendMark::new();
            if let Some(mark) = loaded.lent.0 {
                cache.lent = Some(Lending { mark, pieces });
            }
        }
        loaded
    }

    /// A file's text if it differs from `cached` (or there is none), `None` if it is the same.
    /// A file as long as its cached text is compared as it is read, a piece at a time: most
    /// files of a configuration read again have not changed, and reading each into a string
    /// of its own cost more than comparing it (new pages, which the kernel zeroes first).
    ///
    /// With the text, the file's [`Stamp`] as it was before it was read, if it had been quiet
    /// for [`QUIET`] before `now`; a file whose stamp is the one cached is not read.
    fn read_changed(
        &self,
        path: &Path,
        cached: Option<&CachedFile>,
        now: std::time::SystemTime,
    ) -> Result<(Option<String>, Option<Stamp>), LoadError> {
        let meta = std::fs::metadata(path).ok();
        let stamp = meta.as_ref().and_then(|meta| Stamp::of(meta, now));
        if let Some(cached) = cached {
            if stamp.is_some() && cached.stamp == stamp {
                return Ok((None, stamp));
            }
            if meta
                .as_ref()
                .is_some_and(|meta| holds_text(path, meta, &cached.text))
            {
                return Ok((None, stamp));
            }
        }
        Ok((Some(self.read_text(path)?), stamp))
    }

    /// A file's text, or why it cannot be read (too large, unreadable).
    fn read_text(&self, path: &Path) -> Result<String, LoadError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > u64::try_from(self.options.max_bytes).unwrap_or(u64::MAX) => {
                return Err(limit_error(
                    &path.display().to_string(),
                    format!(
                        "file is {} bytes, more than the limit of {}",
                        meta.len(),
                        self.options.max_bytes
                    ),
                ));
            }
            _ => {}
        }
        std::fs::read_to_string(path).map_err(|err| io_error(path, &err))
    }

    /// Loads one file, keeping the documents that load beside the errors of those that do not.
    pub fn read_file(&self, path: &Path) -> Loaded {
        match self.read_text(path) {
            Ok(text) => self.read_str(&path.display().to_string(), &text),
            Err(refused) => Loaded::refused(refused),
        }
    }

    /// Loads one stream, keeping the documents that load beside the errors of those that do not.
    pub fn read_str(&self, file: &str, text: &str) -> Loaded {
        let mut loaded = Loaded::default();
        for part in self.read_parts(file, text, None) {
            loaded.extend(part.loaded);
        }
        loaded
    }

    /// Loads a stream part by part (see [`split_stream`]), reusing what `previous` (an earlier
    /// text of the same file, and its parts) loaded for any part whose text is unchanged. A
    /// stream that cannot be split, or whose new parts do not all parse, or that holds more
    /// documents (or parts) than allowed, is read whole, so that its errors are exactly a
    /// whole read's. Both reads decide whether a document is empty by one rule (its root
    /// event), and what precedes the first marker by a scan.
    fn read_parts(
        &self,
        file: &str,
        text: &str,
        previous: Option<Previous<'_>>,
    ) -> Vec<LoadedPart> {
        let whole = || vec![self.read_whole(file, text)];
        if text.len() > self.options.max_bytes {
            return whole();
        }
        let Some(parts) = split_stream(text) else {
            return whole();
        };
        // Empty documents do not count against the limit, but each part costs its own read
        // and record: a stream of more parts than the limit allows documents is read whole.
        if parts.len() > self.options.max_documents.saturating_add(1) {
            return whole();
        }
        // Each reusable part of the earlier text, by its text, with where its documents are.
        // Hashed with foldhash (seeded per process): a change hashes every part's text twice,
        // hundreds of kilobytes for a file of a thousand documents, several times faster than
        // with std's SipHash.
        type Held = std::ops::Range<usize>;
        let reusable: std::collections::HashMap<
            &str,
            (&LoadedPart, Held),
            foldhash::fast::RandomState,
        > = previous
            .map(|old| {
                let mut at = 0usize;
                old.parts
                    .iter()
                    .filter_map(|p| {
                        let held = at..at.saturating_add(p.held);
                        at = held.end;
                        let text = old.text.get(p.range.clone())?;
                        p.reusable.then_some((text, (p, held)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        enum Step<'p> {
            Reuse(&'p LoadedPart, Held),
            /// What comes before the first marker, when it holds no document.
            Empty,
            /// An empty or `null` document.
            Null,
            /// One document, parsed, and where its root starts.
            Parsed(Value, Option<Location>),
        }
        let mut steps = Vec::with_capacity(parts.len());
        let mut documents = 0usize;
        for part in &parts {
            if let Some((old, held)) = reusable.get(part.text) {
                documents = documents.saturating_add(old.documents);
                steps.push(Step::Reuse(old, held.clone()));
                continue;
            }
            if !is_marker(part.text, "---") {
                // Before the first marker there is a document only if the scan finds one:
                // comments and white space, by YAML's rules, are not.
                let (spans, syntax_error) = scan_documents(part.text);
                if syntax_error.is_some() {
                    return whole();
                }
                if spans.is_empty() {
                    steps.push(Step::Empty);
                    continue;
                }
            }
            let root = root(part.text, part.first_line);
            if root.is_null {
                steps.push(Step::Null);
                continue;
            }
            // A part that does not parse alone may not be a document of its own (a quoted
            // scalar cut by a marker): the whole read says what is wrong, and where.
            let Ok(value) = parse_value(part.text, part.first_line, &self.options) else {
                return whole();
            };
            documents = documents.saturating_add(1);
            steps.push(Step::Parsed(value, root.location));
        }
        if documents > self.options.max_documents {
            return whole();
        }
        let mut budget = Budget {
            left: self.options.max_documents,
            exceeded: false,
        };
        let mut index = 0usize;
        let mut out = Vec::with_capacity(parts.len());
        for (part, step) in parts.iter().zip(steps) {
            let range = part.start..part.start.saturating_add(part.text.len());
            match step {
                Step::Reuse(old, held) => {
                    let Some(left) = budget.left.checked_sub(old.used) else {
                        return whole();
                    };
                    budget.left = left;
                    let stored = previous.is_some_and(|p| {
                        p.documents.get(held.clone()).is_some()
                            && p.editions.get(held.clone()).is_some()
                    });
                    if !stored {
                        return whole();
                    }
                    // The documents move later (`Stored::move_to`), out of the store this
                    // call only reads.
                    out.push(LoadedPart {
                        range,
                        first_line: part.first_line,
                        first_index: index,
                        loaded: old.loaded.clone(),
                        kept: true,
                        moved: Some(Moved {
                            held,
                            indices: offset_between(old.first_index, index),
                            lines: offset_between(old.first_line, part.first_line),
                        }),
                        ..*old
                    });
                    index = index.saturating_add(old.spans);
                }
                Step::Empty | Step::Null => {
                    let spans = usize::from(matches!(step, Step::Null));
                    out.push(LoadedPart {
                        range,
                        first_line: part.first_line,
                        first_index: index,
                        spans,
                        documents: 0,
                        used: 0,
                        reusable: true,
                        kept: false,
                        held: 0,
                        moved: None,
                        loaded: Loaded::default(),
                    });
                    index = index.saturating_add(spans);
                }
                Step::Parsed(value, start) => {
                    let left = budget.left;
                    let mut loaded = Loaded::default();
                    let start = start.unwrap_or(Location {
                        line: part.first_line,
                        column: 1,
                    });
                    let source_map = SourceMap::of_document(part.text, part.first_line);
                    let mut ctx = self.document(file, index, start, source_map, &mut loaded);
                    ctx.load(value, &mut budget);
                    if budget.exceeded {
                        return whole();
                    }
                    out.push(LoadedPart {
                        range,
                        first_line: part.first_line,
                        first_index: index,
                        spans: 1,
                        documents: 1,
                        used: left.saturating_sub(budget.left),
                        reusable: loaded.errors.is_empty() && loaded.warnings.is_empty(),
                        kept: false,
                        held: 0,
                        moved: None,
                        loaded,
                    });
                    index = index.saturating_add(1);
                }
            }
        }
        out
    }

    /// Loads one stream in one piece, as one part that is never reused.
    fn read_whole(&self, file: &str, text: &str) -> LoadedPart {
        let mut loaded = Loaded::default();
        let part = |loaded| LoadedPart {
            range: 0..text.len(),
            first_line: 1,
            first_index: 0,
            spans: 0,
            documents: 0,
            used: 0,
            reusable: false,
            kept: false,
            held: 0,
            moved: None,
            loaded,
        };
        if text.len() > self.options.max_bytes {
            loaded.errors.push(limit_error(
                file,
                format!(
                    "input is {} bytes, more than the limit of {}",
                    text.len(),
                    self.options.max_bytes
                ),
            ));
            return part(loaded);
        }
        let (spans, syntax_error) = scan_documents(text);
        if spans.iter().filter(|s| !s.is_null).count() > self.options.max_documents {
            loaded
                .errors
                .push(too_many_documents(file, self.options.max_documents));
            return part(loaded);
        }
        let mut budget = Budget {
            left: self.options.max_documents,
            exceeded: false,
        };
        self.load_spans(file, text, spans, 0, &mut budget, &mut loaded);
        if budget.exceeded {
            return part(loaded);
        }
        if let Some(err) = syntax_error {
            loaded.errors.push(LoadError::new(
                Place {
                    file: file.to_owned(),
                    document: 0,
                    line: Some(err.location.line),
                    column: Some(err.location.column),
                    path: String::new(),
                },
                LoadErrorKind::Syntax,
                err.message,
            ));
        }
        part(loaded)
    }

    /// The context loading the stream's document `index`, which starts at `start`.
    fn document<'c>(
        &'c self,
        file: &'c str,
        index: usize,
        start: Location,
        source_map: SourceMap,
        loaded: &'c mut Loaded,
    ) -> DocContext<'c> {
        DocContext {
            file,
            index,
            item: None,
            start,
            source_map,
            loaded,
            options: &self.options,
        }
    }

    /// Loads the documents `spans` found in `text`, the first of them the stream's document
    /// `first_index`; stops, after recording the error, when the budget runs out.
    fn load_spans(
        &self,
        file: &str,
        text: &str,
        spans: Vec<DocumentSpan>,
        first_index: usize,
        budget: &mut Budget,
        loaded: &mut Loaded,
    ) {
        for (i, span) in spans.into_iter().enumerate() {
            if span.is_null {
                continue;
            }
            let slice = text.get(span.start..span.end).unwrap_or("");
            let start = span.source_map.key("").unwrap_or(Location {
                line: span.first_line,
                column: 1,
            });
            let index = first_index.saturating_add(i);
            let mut ctx = self.document(file, index, start, span.source_map, loaded);
            match parse_value(slice, span.first_line, &self.options) {
                Ok(value) => ctx.load(value, budget),
                Err((message, location)) => {
                    let place = ctx.place_at(String::new(), location);
                    ctx.loaded
                        .errors
                        .push(LoadError::new(place, LoadErrorKind::Syntax, message));
                }
            }
            if budget.exceeded {
                loaded
                    .errors
                    .push(too_many_documents(file, self.options.max_documents));
                return;
            }
        }
    }
}

/// Whether a cached load copies the documents the cache holds or lends them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hand {
    Copy,
    Lend,
}

/// What one part of a stream loaded to, with what reusing it in a later text of the same
/// stream needs.
#[derive(Clone, Debug)]
struct LoadedPart {
    /// The part's bytes in its stream.
    range: std::ops::Range<usize>,
    /// Its first line in the stream.
    first_line: usize,
    /// The stream index of its first document.
    first_index: usize,
    /// How many documents of the stream it holds (empty ones count).
    spans: usize,
    /// How many of them are not empty (what [`LoadOptions::max_documents`] counts first).
    documents: usize,
    /// How much of the document budget it took (a List's items count).
    used: usize,
    /// Whether a later text may reuse it: read as a part, with no error or warning (whose
    /// places would need moving too).
    reusable: bool,
    /// Whether it was reused rather than read.
    kept: bool,
    /// How many documents it loaded, once they have moved to a cache's store (until then,
    /// they are in `loaded`).
    held: usize,
    /// The documents it reuses from the stream's earlier text, still in the cache's store.
    moved: Option<Moved>,
    loaded: Loaded,
}

/// Documents a part takes from the cache's store: where they are among the documents of the
/// stream's earlier text, and how far they move along the stream.
#[derive(Clone, Debug)]
struct Moved {
    held: std::ops::Range<usize>,
    indices: isize,
    lines: isize,
}

/// An earlier text of a stream, what its parts loaded to, and their documents.
#[derive(Clone, Copy)]
struct Previous<'p> {
    text: &'p str,
    parts: &'p [LoadedPart],
    documents: &'p [Document],
    editions: &'p [Edition],
}

/// One part of a stream: from a line that starts a document, or the stream's start, up to the
/// next such line.
struct StreamPart<'t> {
    text: &'t str,
    start: usize,
    first_line: usize,
}

/// Splits a stream at the lines that start with a document marker (`---`). YAML ends every
/// scalar and collection at such a line (a marker cannot be content, YAML 1.2 §9.1.4), so each
/// part parses alone as it does in the stream; a part that does not (a quoted scalar cut by a
/// marker) makes the caller read the stream whole. `None` for what this split does not follow
/// — directives (`%`), document end markers (`...`), byte order marks, and carriage returns
/// not followed by a line feed (line breaks of their own) — such streams are read whole.
fn split_stream(text: &str) -> Option<Vec<StreamPart<'_>>> {
    if text.contains('\u{feff}')
        || text
            .match_indices('\r')
            .any(|(i, _)| !text.get(i..).is_some_and(|rest| rest.starts_with("\r\n")))
    {
        return None;
    }
    let mut parts = Vec::new();
    let (mut start, mut first_line) = (0usize, 1usize);
    let (mut offset, mut line) = (0usize, 1usize);
    // Lines are found with `memchr`, which scans a whole file of short lines several times
    // faster than `str::split_inclusive` (a search set up again for every line); only a
    // line starting `%`, `.` or `-` is looked at.
    let ends = memchr::memchr_iter(b'\n', text.as_bytes())
        .map(|i| i.saturating_add(1))
        .chain(std::iter::once(text.len()));
    for end in ends {
        if end <= offset {
            break;
        }
        let l = text.get(offset..end)?;
        if l.starts_with(['%', '.', '-']) {
            if l.starts_with('%') || is_marker(l, "...") {
                return None;
            }
            if is_marker(l, "---") && offset > start {
                parts.push(StreamPart {
                    text: text.get(start..offset)?,
                    start,
                    first_line,
                });
                (start, first_line) = (offset, line);
            }
        }
        offset = end;
        line = line.saturating_add(1);
    }
    parts.push(StreamPart {
        text: text.get(start..)?,
        start,
        first_line,
    });
    Some(parts)
}

/// Whether a line is `marker` alone or followed by white space.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Parses one document's text into a generic value (YAML 1.2 with JSON as a subset), with
/// duplicate keys refused. Lines in errors are made absolute with `first_line`.
fn parse_value(
    slice: &str,
    first_line: usize,
    options: &LoadOptions,
) -> Result<Value, (String, Option<Location>)> {
    let mut saphyr = serde_saphyr::options! {
        with_snippet: false,
    };
    if let Some(budget) = saphyr.budget.as_mut() {
        budget.max_depth = options.max_depth;
    }
    serde_saphyr::from_str_with_options::<Value>(slice, saphyr).map_err(|err| {
        let location = err.location().map(|l| Location {
            line: usize::try_from(l.line()).unwrap_or(0) + first_line.saturating_sub(1),
            column: usize::try_from(l.column()).unwrap_or(0),
        });
        // The user-facing wording, without saphyr's location suffix (the loader adds its own,
        // relative to the whole file) and without hints about saphyr's options.
        let message = serde_saphyr::MessageFormatter::format_message(
            &serde_saphyr::UserMessageFormatter,
            err.without_snippet(),
        );
        (message.into_owned(), location)
    })
}

/// Brings a parsed value to what Istio's decoder (Go YAML, then protobuf JSON) sees: Go's YAML
/// reads a flow-sequence item such as `[fe80::]` as the string `fe80::`, where YAML 1.2 reads a
/// one-pair mapping `{"fe80:": null}`; such items become the string again.
///
/// (A field set to `null` is unset, as protobuf JSON reads it: the model's fields say so
/// themselves, so that a `null` map *value* stays an error.)
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(normalize),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Some(text) = go_flow_scalar(item) {
                    *item = Value::String(text);
                } else {
                    normalize(item);
                }
            }
        }
        _ => {}
    }
}

/// The string Go's YAML reads for `[text:]`: a one-pair mapping with an empty value whose key
/// ends with `:`.
fn go_flow_scalar(item: &Value) -> Option<String> {
    let map = item.as_object()?;
    let (key, value) = map.iter().next()?;
    (map.len() == 1 && value.is_null() && key.ends_with(':')).then(|| format!("{key}:"))
}

/// Everything needed to turn one document's value into objects and located diagnostics.
struct DocContext<'a> {
    file: &'a str,
    index: usize,
    item: Option<usize>,
    start: Location,
    source_map: SourceMap,
    loaded: &'a mut Loaded,
    options: &'a LoadOptions,
}

impl DocContext<'_> {
    fn place_at(&self, path: String, location: Option<Location>) -> Place {
        Place {
            file: self.file.to_owned(),
            document: self.index,
            line: location.map(|l| l.line),
            column: location.map(|l| l.column),
            path,
        }
    }

    /// A place for a field path, located through the source map (value position for bad values,
    /// key position otherwise, the nearest known parent for missing fields).
    fn place(&self, path: &str, prefer_value: bool) -> Place {
        let location = if prefer_value {
            self.source_map.value(path)
        } else {
            self.source_map.key(path)
        }
        .or_else(|| self.source_map.nearest(path));
        self.place_at(path.to_owned(), location)
    }

    fn source(&self) -> DocumentSource {
        DocumentSource {
            file: self.file.to_owned(),
            index: self.index,
            item: self.item,
            location: self.start,
        }
    }

    fn error(&mut self, path: &str, kind: LoadErrorKind, message: impl Into<String>) {
        let place = self.place(path, kind == LoadErrorKind::InvalidValue);
        self.loaded
            .errors
            .push(LoadError::new(place, kind, message));
    }

    /// Loads a document's parsed value, as Istio's decoder would see it (see [`normalize`]).
    fn load(&mut self, mut value: Value, budget: &mut Budget) {
        normalize(&mut value);
        self.load_value(value, budget);
    }

    fn load_value(&mut self, mut value: Value, budget: &mut Budget) {
        if !budget.take() {
            return;
        }
        if let Value::Object(map) = &mut value
            && let Some(kind) = map.get("kind").and_then(Value::as_str).map(str::to_owned)
            && kind != "List"
        {
            default_namespace(map, &kind, &self.options.default_namespace);
        }
        let Value::Object(map) = &value else {
            self.error(
                "",
                LoadErrorKind::InvalidValue,
                "a document must be a mapping with apiVersion and kind",
            );
            return;
        };
        // Kubernetes decodes `metadata` as an object only. The decoder here would also take a
        // sequence, field by field in declaration order (`[name, namespace, …]`), and such a
        // document would load with a name and without its default namespace.
        if map
            .get("metadata")
            .is_some_and(|m| !m.is_object() && !m.is_null())
        {
            self.error(
                "metadata",
                LoadErrorKind::InvalidValue,
                "`metadata` must be a mapping (name, namespace, labels, annotations, …)",
            );
            return;
        }
        let api_version = map.get("apiVersion").and_then(Value::as_str);
        let kind = map.get("kind").and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            let missing = if api_version.is_none() {
                "apiVersion"
            } else {
                "kind"
            };
            self.error(
                missing,
                LoadErrorKind::MissingField,
                format!("missing or non-string field `{missing}`: every document needs apiVersion and kind"),
            );
            return;
        };
        if kind == "List" && api_version == "v1" {
            self.load_list(value, budget);
            return;
        }
        let resolved = ApiVersion::from_name(api_version).and_then(|v| Kind::resolve(v, kind));
        let Some(kind_enum) = resolved else {
            if api_version.starts_with("networking.istio.io/")
                && matches!(
                    kind,
                    "Gateway" | "VirtualService" | "DestinationRule" | "ServiceEntry"
                )
            {
                self.error(
                    "apiVersion",
                    LoadErrorKind::InvalidValue,
                    format!(
                        "unsupported apiVersion {api_version:?} for {kind}, expected one of {}",
                        ApiVersion::NETWORKING.join(", ")
                    ),
                );
                return;
            }
            let name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let skipped = SkippedDocument {
                source: self.source(),
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                name,
                value: value.clone(),
            };
            self.loaded.skipped.push(skipped);
            return;
        };
        let object = match kind_enum {
            Kind::Gateway => self.typed(value).map(Object::Gateway),
            Kind::VirtualService => self.typed(value).map(Object::VirtualService),
            Kind::DestinationRule => self.typed(value).map(Object::DestinationRule),
            Kind::ServiceEntry => self.typed(value).map(Object::ServiceEntry),
            Kind::Service => self.typed(value).map(Object::Service),
            Kind::Pod => self.typed(value).map(Object::Pod),
            Kind::Secret => self.typed(value).map(Object::Secret),
            Kind::Namespace => self.typed(value).map(Object::Namespace),
        };
        if let Some(object) = object {
            let document = Document {
                source: self.source(),
                object,
                source_map: core::mem::take(&mut self.source_map),
            };
            self.loaded.documents.push(document);
            self.loaded.editions.0.push(Edition::new());
        }
    }

    fn load_list(&mut self, value: Value, budget: &mut Budget) {
        let items = match value {
            Value::Object(mut map) => match map.remove("items") {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(_) => {
                    self.error(
                        "items",
                        LoadErrorKind::InvalidValue,
                        "`items` of a List must be a sequence",
                    );
                    return;
                }
            },
            _ => return,
        };
        let whole = core::mem::take(&mut self.source_map);
        for (i, item) in items.into_iter().enumerate() {
            if budget.exceeded {
                return;
            }
            let prefix = format!("items[{i}]");
            let mut ctx = DocContext {
                file: self.file,
                index: self.index,
                item: Some(i),
                start: whole.key(&prefix).unwrap_or(self.start),
                source_map: whole.subtree(&prefix),
                loaded: &mut *self.loaded,
                options: self.options,
            };
            ctx.load_value(item, budget);
        }
    }

    /// Deserializes the value into `T`, recording the error (or, in lenient mode, the ignored
    /// unknown fields) at their positions.
    fn typed<T: DeserializeOwned>(&mut self, value: Value) -> Option<T> {
        let (result, ignored) = decode(value, self.options.lenient_unknown_fields);
        for field in ignored {
            let place = self.place(&field.path, false);
            self.loaded.warnings.push(LoadWarning::new(
                place,
                format!("ignored {}", field.message),
            ));
        }
        match result {
            Ok(typed) => Some(typed),
            Err(err) => {
                self.error(&err.path, err.kind, err.message);
                None
            }
        }
    }
}

/// Why a value did not decode into a model type: the field path, the kind of problem and the
/// message, without a source position (see [`Loader`] for located errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    path: String,
    kind: LoadErrorKind,
    message: String,
}

impl DecodeError {
    /// The field path (`spec.http[0].route`); empty for the value itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> LoadErrorKind {
        self.kind
    }

    /// The message alone.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a generic JSON value into a model type the way Istio's decoder reads it: `null`
/// fields are unset, numbers may be written as strings, unknown fields are errors.
///
/// This is what the [`Loader`] does for each document, for callers that already hold a value
/// (a spec embedded in another format, a test vector).
///
/// ```
/// use portcullis_model::{from_value, virtual_service::HttpRetry};
///
/// let retry: HttpRetry = from_value(serde_json::json!({"attempts": "3", "perTryTimeout": "2s", "retryOn": null}))?;
/// assert_eq!(retry.attempts, 3);
/// let err = from_value::<HttpRetry>(serde_json::json!({"atempts": 3})).unwrap_err();
/// assert_eq!(err.path(), "atempts");
/// # Ok::<(), portcullis_model::DecodeError>(())
/// ```
pub fn from_value<T: DeserializeOwned>(mut value: Value) -> Result<T, DecodeError> {
    normalize(&mut value);
    decode(value, false).0
}

/// Deserializes a normalized value into `T`. In lenient mode unknown fields are removed and
/// returned (as errors of kind `UnknownField`) until the value loads; numbers written as strings
/// are read as numbers.
fn decode<T: DeserializeOwned>(
    mut value: Value,
    lenient: bool,
) -> (Result<T, DecodeError>, Vec<DecodeError>) {
    let mut ignored = Vec::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(typed) => return (Ok(typed), ignored),
            Err(err) => err,
        };
        let path = display_path(err.path());
        let message = err.inner().to_string();
        let fail = |path: String, kind, message| DecodeError {
            path,
            kind,
            message,
        };
        if let Some(field) = unknown_field_name(&message) {
            // serde_path_to_error already ends the path with the unknown key.
            let field_path = if path == field || path.ends_with(&format!(".{field}")) {
                path.clone()
            } else {
                join(&path, field)
            };
            let holder = parent_of(&field_path, field);
            if lenient && remove_field(&mut value, &holder, field) {
                ignored.push(fail(field_path, LoadErrorKind::UnknownField, message));
                continue;
            }
            return (
                Err(fail(field_path, LoadErrorKind::UnknownField, message)),
                ignored,
            );
        }
        let wants_number = [" expected u", " expected i", " expected f"]
            .iter()
            .any(|m| message.contains(m));
        if wants_number && coerce_quoted_number(&mut value, &path, &message) {
            continue;
        }
        if let Some(field) = missing_field_name(&message) {
            let message = format!("missing required field `{field}`");
            return (
                Err(fail(
                    join(&path, field),
                    LoadErrorKind::MissingField,
                    message,
                )),
                ignored,
            );
        }
        return (
            Err(fail(path, LoadErrorKind::InvalidValue, message)),
            ignored,
        );
    }
}

/// A serde_path_to_error path in the loader's notation (`spec.http[0].route`; the root is ``).
fn display_path(path: &serde_path_to_error::Path) -> String {
    let shown = path.to_string();
    if shown == "." { String::new() } else { shown }
}

/// The path of the mapping that holds `field` at `field_path`.
fn parent_of(field_path: &str, field: &str) -> String {
    field_path
        .strip_suffix(field)
        .map(|p| p.strip_suffix('.').unwrap_or(p))
        .unwrap_or("")
        .to_owned()
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The field named by serde's "unknown field `x`, expected …" message.
fn unknown_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

/// The field named by serde's "missing field `x`" message.
fn missing_field_name(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

/// Removes `field` from the mapping at `path` (in the loader's path notation).
fn remove_field(value: &mut Value, path: &str, field: &str) -> bool {
    value_at_mut(value, path)
        .and_then(Value::as_object_mut)
        .is_some_and(|map| map.shift_remove(field).is_some())
}

/// The value at a path in the loader's notation (`spec.http[0].route`).
fn value_at_mut<'v>(value: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let mut current = value;
    if path.is_empty() {
        return Some(current);
    }
    for segment in path.split('.') {
        let (key, indices) = match segment.find('[') {
            Some(i) => (segment.get(..i)?, segment.get(i..)?),
            None => (segment, ""),
        };
        if !key.is_empty() {
            current = current.get_mut(key)?;
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            let i = index.strip_suffix(']')?.parse::<usize>().ok()?;
            current = current.get_mut(i)?;
        }
    }
    Some(current)
}

/// Protobuf JSON accepts numbers written as strings (`number: "8080"`), and so does Istio's
/// decoder. When serde refused a string where a number was expected, the string is replaced by
/// the number it spells, if it spells one.
fn coerce_quoted_number(value: &mut Value, path: &str, message: &str) -> bool {
    if !message.starts_with("invalid type: string") {
        return false;
    }
    let Some(slot) = value_at_mut(value, path) else {
        return false;
    };
    let Some(text) = slot.as_str() else {
        return false;
    };
    let number = if let Ok(n) = text.parse::<i64>() {
        serde_json::Number::from(n)
    } else if let Ok(n) = text.parse::<u64>() {
        serde_json::Number::from(n)
    } else if let Some(n) = text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        n
    } else {
        return false;
    };
    *slot = Value::Number(number);
    true
}

/// The documents one file may still hold (see [`LoadOptions::max_documents`]).
struct Budget {
    left: usize,
    /// A document came when none was left.
    exceeded: bool,
}

impl Budget {
    /// Counts one document; `false` (and `exceeded`) when none was left.
    fn take(&mut self) -> bool {
        if self.left == 0 {
            self.exceeded = true;
            return false;
        }
        self.left -= 1;
        true
    }
}

/// The error of a file with more than `max` documents, naming the option that raises it.
fn too_many_documents(file: &str, max: usize) -> LoadError {
    limit_error(
        file,
        format!(
            "more than {max} documents in one file; raise the limit with --max-documents \
             (gateway and portcullis command lines), GatewayBuilder::max_documents or \
             LoadOptions::max_documents"
        ),
    )
}

fn limit_error(file: &str, message: String) -> LoadError {
    LoadError::new(
        Place {
            file: file.to_owned(),
            document: 0,
            line: None,
            column: None,
            path: String::new(),
        },
        LoadErrorKind::Limit,
        message,
    )
}

fn io_error(path: &Path, err: &std::io::Error) -> LoadError {
    LoadError::new(
        Place {
            file: path.display().to_string(),
            document: 0,
            line: None,
            column: None,
            path: String::new(),
        },
        LoadErrorKind::Io,
        format!("cannot read: {err}"),
    )
}

fn collect_files(path: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod part_tests {
    use super::*;

    fn whole(text: &str) -> Loaded {
        Loader::new().read_whole("f.yaml", text).loaded
    }

    const SE: &str = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\nspec: {hosts: [a.example]}\n";

    /// Streams read in parts load exactly as they do whole, including those the split must
    /// leave whole.
    #[test]
    fn reading_in_parts_equals_reading_whole() {
        let streams = [
            format!("{SE}---\n{SE}"),
            format!("# header\n---\n{SE}---\n---\n{SE}"),
            format!("--- # comment\n{SE}--- \n{SE}"),
            format!(
                "---\r\n{}---\r\n{}",
                SE.replace('\n', "\r\n"),
                SE.replace('\n', "\r\n")
            ),
            format!("{SE}---\nkind: [\n---\n{SE}"),
            format!("{SE}---\nmetadata: \"open\n---\n{SE}"),
            format!("{SE}...\n---\n{SE}"),
            format!("%YAML 1.2\n---\n{SE}---\n{SE}"),
            format!("\u{feff}{SE}---\n{SE}"),
            format!("{SE}---\rkind: x\n"),
            format!("--- |\n  text\n---\n{SE}"),
            format!("---\n- a\n---\n{SE}---\nnull\n---\n~\n"),
            format!("{SE}----\n{SE}"),
            format!(
                "apiVersion: v1\nkind: List\nitems:\n- {}\n---\n{SE}",
                SE.replace('\n', "\n  ")
            ),
            format!(
                "{SE}---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: b, name: c}}\n"
            ),
            String::new(),
            "---\n".to_owned(),
            // What comes before the first marker is a document unless YAML says it is only
            // comments and white space.
            format!("# a\u{1}b\n---\n{SE}"),
            format!("\u{c}\n---\n{SE}"),
            format!("\u{b}\n---\n{SE}"),
            format!("\u{a0}\n---\n{SE}"),
            format!("\u{3000}\n---\n{SE}"),
            format!("\u{85}\n---\n{SE}"),
            format!("\t# c\n---\n{SE}"),
            format!("null\n---\n{SE}"),
            format!("# c\n{SE}# d\n---\n{SE}"),
            // Empty documents, by tag as Go YAML reads them.
            format!("--- !!str null\n---\n{SE}"),
            format!("--- !!str\n---\n{SE}"),
            format!("--- !!str ~\n---\n{SE}"),
            format!("--- !!null ''\n---\n{SE}"),
            format!("--- !foo null\n---\n{SE}"),
            format!("--- !!int null\n---\n{SE}"),
            format!("--- &a null\n---\n{SE}"),
            // Scalars at the root, cut or not by a marker.
            format!("--- |\nfoo\n---\nbar\n---\n{SE}"),
            format!("--- foo\nbar\n---\n{SE}"),
            format!("--- \"foo\nbar\"\n---\n{SE}"),
            format!("{SE}\0\n---\n{SE}"),
            format!("{SE}---\n# a\u{1}b\n---\n{SE}"),
            format!("{SE}\u{2028}---\u{2028}{SE}"),
            format!("{SE}  ---\n{SE}"),
            format!("{SE}---"),
            format!(
                "---\napiVersion: v1\nkind: ConfigMap\ndata: &a {{x: y}}\nother: *a\n---\n{SE}"
            ),
            format!("---\napiVersion: v1\nkind: ConfigMap\nother: *a\n---\n{SE}"),
            format!("{SE}---\napiVersion: v1\nkind: ConfigMap\ndata:\n\tk: v\n---\n{SE}"),
            format!("{}---\n{SE}", "a: ".repeat(100) + "1\n"),
            "---\n".repeat(50),
        ];
        for text in &streams {
            assert_eq!(
                Loader::new().read_str("f.yaml", text),
                whole(text),
                "{text:?}"
            );
        }
        let lenient = Loader::with_options(LoadOptions {
            lenient_unknown_fields: true,
            ..LoadOptions::default()
        });
        for text in &streams {
            assert_eq!(
                lenient.read_str("f.yaml", text),
                lenient.read_whole("f.yaml", text).loaded,
                "lenient: {text:?}"
            );
        }
        for max in [1, 2, 3] {
            let loader = Loader::new().with_max_documents(max);
            for text in &streams {
                assert_eq!(
                    loader.read_str("f.yaml", text),
                    loader.read_whole("f.yaml", text).loaded,
                    "max {max}: {text:?}"
                );
            }
        }
    }

    /// Every YAML file of the repository's test data (Istio's cases and real documents) loads
    /// the same in parts as whole.
    #[test]
    fn test_data_reads_the_same_in_parts() {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    out.push(path);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        let mut files = Vec::new();
        walk(&root, &mut files);
        assert!(
            files.len() > 500,
            "{} files under {}",
            files.len(),
            root.display()
        );
        let mut split = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            split += usize::from(split_stream(&text).is_some_and(|p| p.len() > 1));
            let name = file.display().to_string();
            assert_eq!(
                Loader::new().read_str(&name, &text),
                Loader::new().read_whole(&name, &text).loaded,
                "{name}"
            );
        }
        assert!(split > 100, "only {split} files had several parts");
    }

    /// A cache's store holds what its list of files says, each file's parts account for its
    /// documents, and it caches exactly the files listed.
    fn stored_as_listed(cache: &LoadCache, at: &str) {
        let listed: usize = cache.order.iter().map(|(_, n)| n).sum();
        assert_eq!(cache.store.documents.len(), listed, "{at}");
        assert_eq!(cache.store.editions.len(), listed, "{at}");
        assert_eq!(cache.files.len(), cache.order.len(), "{at}");
        for (file, n) in &cache.order {
            let parts = &cache.files[file].parts;
            assert_eq!(parts.iter().map(|p| p.held).sum::<usize>(), *n, "{at}");
            assert!(
                parts
                    .iter()
                    .all(|p| p.loaded.documents.is_empty() && p.moved.is_none())
            );
        }
        assert!(!cache.store.documents.contains(&hole()), "{at}");
    }

    /// Files edited at random, read through a cache, read as they do fresh and whole: the
    /// documents, where they are, and where their fields are.
    #[test]
    fn random_edits_read_the_same_cached_fresh_and_whole() {
        let pool: Vec<String> = vec![
            format!("---\n{SE}"),
            format!("---\n# c\n{SE}"),
            format!("--- # x\n{SE}\n\n"),
            "---\n".to_owned(),
            "---\nnull\n".to_owned(),
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n".to_owned(),
            format!(
                "---\napiVersion: v1\nkind: List\nitems:\n- {}\n- {}",
                SE.replace('\n', "\n  "),
                SE.replace('\n', "\n  ").trim_end()
            ),
            "\n".to_owned(),
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata: {name: b}\nspec: {hostz: [a]}\n"
                .to_owned(),
            "---\nkind: [\n".to_owned(),
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata:\n  name: c\nspec:\n  hosts:\n  - c.example\n  - d.example\n"
                .to_owned(),
        ];
        let heads = [
            "",
            "# header\n",
            "\n\n",
            "apiVersion: v1\nkind: ConfigMap\n",
        ];
        let dir = std::env::temp_dir().join(format!("portcullis-edits-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.yaml");
        let mut seed: u64 = 0x1234_5678;
        let mut random = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        for lenient in [false, true] {
            for max in [3, 5, 10_000] {
                let loader = Loader::with_options(LoadOptions {
                    lenient_unknown_fields: lenient,
                    max_documents: max,
                    threads: 1,
                    ..LoadOptions::default()
                });
                let mut cache = LoadCache::default();
                let mut lending = LoadCache::default();
                // a.yaml and c.yaml are edited; b.yaml, between them, comes and goes, and is
                // sometimes unreadable (not UTF-8).
                let mut texts: [Vec<String>; 2] = [
                    (0..6).map(|_| pool[random(pool.len())].clone()).collect(),
                    (0..3).map(|_| pool[random(pool.len())].clone()).collect(),
                ];
                let mut head = heads[0];
                // Every edition seen, with its object: an edition never names two objects.
                let mut seen: std::collections::HashMap<Edition, Object> =
                    std::collections::HashMap::new();
                let mut kept = 0;
                let mut check_editions = |load: &Loaded, at: &str| {
                    assert_eq!(load.editions().len(), load.documents().len(), "{at}");
                    for (doc, edition) in load.documents().iter().zip(load.editions()) {
                        match seen.get(edition) {
                            Some(object) => {
                                assert_eq!(object, &doc.object, "edition {edition:?}, {at}");
                                kept += 1;
                            }
                            None => {
                                seen.insert(*edition, doc.object.clone());
                            }
                        }
                    }
                };
                for step in 0..150 {
                    let docs = &mut texts[random(2)];
                    match random(5) {
                        0 => {
                            let i = random(docs.len() + 1);
                            docs.insert(i, pool[random(pool.len())].clone());
                        }
                        1 if !docs.is_empty() => {
                            docs.remove(random(docs.len()));
                        }
                        2 if !docs.is_empty() => {
                            let i = random(docs.len());
                            docs[i] = pool[random(pool.len())].clone();
                        }
                        3 => head = heads[random(heads.len())],
                        _ if !docs.is_empty() => {
                            let (i, j) = (random(docs.len()), random(docs.len()));
                            docs.swap(i, j);
                        }
                        _ => {}
                    }
                    let text = format!("{head}{}", texts[0].concat());
                    std::fs::write(&file, &text).unwrap();
                    std::fs::write(dir.join("c.yaml"), texts[1].concat()).unwrap();
                    let b = dir.join("b.yaml");
                    match random(8) {
                        0 => std::fs::write(&b, &pool[random(pool.len())]).unwrap(),
                        1 => std::fs::write(&b, b"kind: \xff\n").unwrap(),
                        2 => {
                            let _ = std::fs::remove_file(&b);
                        }
                        _ => {}
                    }
                    let cached = loader.read_path_cached(&dir, &mut cache);
                    let fresh = loader.read_path(&dir);
                    let whole = loader.read_whole(&file.display().to_string(), &text).loaded;
                    let at = format!("step {step}, max {max}, lenient {lenient}: {text:?}");
                    assert_eq!(loader.read_path(&file), whole, "fresh and whole, {at}");
                    assert_eq!(cached, fresh, "cached and fresh, {at}");
                    let lent = loader.lend_path_cached(&dir, &mut lending);
                    assert_eq!(lent, fresh, "lent and fresh, {at}");
                    check_editions(&cached, &at);
                    check_editions(&lent, &at);
                    stored_as_listed(&cache, &at);
                    // Given back as lent most of the time; else kept, or changed first.
                    match random(6) {
                        0 => drop(lent),
                        1 => {
                            let mut changed = lent.clone();
                            changed.extend(Loaded::default());
                            lending.give_back(changed);
                        }
                        _ => {
                            lending.give_back(lent);
                            stored_as_listed(&lending, &at);
                        }
                    }
                }
                assert!(kept > 50, "documents kept with their editions: {kept}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A lent load given back is reused without being parsed again; one not given back, or
    /// changed before it was, is not.
    #[test]
    fn lent_documents_come_back_only_as_lent() {
        let dir = std::env::temp_dir().join(format!("portcullis-lend-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stream = |hosts: &[&str]| {
            hosts
                .iter()
                .map(|h| {
                    SE.replace("a.example", h)
                        .replace("name: a", &format!("name: {h}"))
                })
                .collect::<Vec<_>>()
                .join("---\n")
        };
        std::fs::write(dir.join("a.yaml"), stream(&["a1", "a2", "a3"])).unwrap();
        std::fs::write(dir.join("b.yaml"), stream(&["b1"])).unwrap();
        std::fs::write(dir.join("c.yaml"), "kind: [\n").unwrap();
        let loader = Loader::new();
        let mut cache = LoadCache::default();
        let lent = loader.lend_path_cached(&dir, &mut cache);
        assert_eq!((cache.parsed(), lent.documents().len()), (3, 4));
        assert_eq!(lent.errors().len(), 1);
        cache.give_back(lent);
        // Unchanged: nothing parsed, the same load.
        let lent = loader.lend_path_cached(&dir, &mut cache);
        assert_eq!(cache.parsed(), 0);
        assert_eq!(lent, loader.read_path(&dir));
        // One document of a.yaml changed: a.yaml is read again, its other parts kept, with
        // their editions.
        let before = lent.editions().to_vec();
        cache.give_back(lent);
        std::fs::write(dir.join("a.yaml"), stream(&["a1", "x2", "a3"])).unwrap();
        let lent = loader.lend_path_cached(&dir, &mut cache);
        assert_eq!((cache.parsed(), cache.kept_documents()), (1, 2));
        assert_eq!(lent, loader.read_path(&dir));
        let after = lent.editions();
        assert_eq!(after.len(), 4);
        assert_eq!(
            (after[0], after[2], after[3]),
            (before[0], before[2], before[3])
        );
        assert_ne!(after[1], before[1]);
        // A load from elsewhere is not taken back; the lent one still may be.
        cache.give_back(loader.read_path(&dir));
        cache.give_back(lent);
        let lent = loader.lend_path_cached(&dir, &mut cache);
        assert_eq!(cache.parsed(), 0);
        // Extended, it is not taken back: the next call parses everything again.
        let mut extended = lent;
        extended.extend(Loaded::default());
        cache.give_back(extended);
        let lent = loader.lend_path_cached(&dir, &mut cache);
        assert_eq!(cache.parsed(), 3);
        assert_eq!(lent, loader.read_path(&dir));
        // Not given back at all: the same.
        drop(lent);
        let copied = loader.read_path_cached(&dir, &mut cache);
        assert_eq!(cache.parsed(), 3);
        assert_eq!(copied, loader.read_path(&dir));
        // A copying read keeps what it read: nothing to give back.
        loader.read_path_cached(&dir, &mut cache);
        assert_eq!(cache.parsed(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn streams_split_at_marker_lines_only() {
        let parts = split_stream("a: 1\n---\nb: 2\n----\n--- x\n").unwrap();
        let texts: Vec<_> = parts.iter().map(|p| (p.text, p.first_line)).collect();
        assert_eq!(
            texts,
            [("a: 1\n", 1), ("---\nb: 2\n----\n", 2), ("--- x\n", 5)]
        );
        assert!(split_stream("%YAML 1.2\n---\n").is_none());
        assert!(split_stream("a: 1\n...\n").is_none());
        assert!(split_stream("a: 1\rb: 2").is_none());
        assert_eq!(split_stream("a: 1\r\n---\r\n").unwrap().len(), 2);
    }

    /// `split_stream` by its definition: every line, one at a time.
    fn split_stream_line_by_line(text: &str) -> Option<Vec<(&str, usize, usize)>> {
        let mut parts = Vec::new();
        let (mut start, mut first_line, mut offset) = (0, 1, 0);
        for (i, l) in text.split_inclusive('\n').enumerate() {
            if l.starts_with('%') || is_marker(l, "...") {
                return None;
            }
            if is_marker(l, "---") && offset > start {
                parts.push((&text[start..offset], start, first_line));
                (start, first_line) = (offset, i + 1);
            }
            offset += l.len();
        }
        parts.push((&text[start..], start, first_line));
        Some(parts)
    }

    #[test]
    fn streams_split_as_line_by_line() {
        let pieces = [
            "---", "--- x", "----", "...", "... y", "%", "a: 1", "-", ".", " ", "\t", "\n", "\n",
            "\n", "\r\n", "é",
        ];
        let mut seed: u64 = 0x2545_f491;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            seed = seed.wrapping_add(1);
            let got = split_stream(&text).map(|parts| {
                parts
                    .iter()
                    .map(|p| (p.text, p.start, p.first_line))
                    .collect()
            });
            assert_eq!(got, split_stream_line_by_line(&text), "{text:?}");
        }
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod stamp_tests {
    use std::fs::{File, FileTimes};
    use std::os::unix::fs::MetadataExt as _;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;

    /// What `read_changed` says of `path` against `cached`: the text if it was read, and
    /// whether a stamp came with it.
    fn check(
        path: &Path,
        cached: Option<&CachedFile>,
        now: SystemTime,
    ) -> (Option<String>, Option<Stamp>) {
        Loader::new().read_changed(path, cached, now).unwrap()
    }

    /// When the file at `path` last changed.
    fn changed(path: &Path) -> SystemTime {
        let meta = std::fs::metadata(path).unwrap();
        let nanos = u32::try_from(meta.ctime_nsec()).unwrap();
        UNIX_EPOCH + Duration::new(u64::try_from(meta.ctime()).unwrap(), nanos)
    }

    fn modified_at(path: &Path) -> SystemTime {
        std::fs::metadata(path).unwrap().modified().unwrap()
    }

    /// Puts the file's modification time at `time` (its change time moves to now).
    fn set_modified(path: &Path, time: SystemTime) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_times(FileTimes::new().set_modified(time)).unwrap();
    }

    fn cached(text: &str, stamp: Option<Stamp>) -> CachedFile {
        CachedFile {
            reported: None,
            text: text.to_owned(),
            parts: Vec::new(),
            stamp,
        }
    }

    fn fresh_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("portcullis-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_quiet_file_is_not_read_again_and_a_changed_one_is() {
        let dir = fresh_dir("stamp");
        let path = dir.join("a.yaml");
        std::fs::write(&path, "kind: A\n").unwrap();
        // As seen long after the write, the file has been quiet: it comes with a stamp.
        let later = SystemTime::now() + Duration::from_secs(60);
        let (text, stamp) = check(&path, None, later);
        assert_eq!(text.as_deref(), Some("kind: A\n"));
        let stamp = stamp.expect("a quiet file has a stamp");
        let a = cached("kind: A\n", Some(stamp));
        assert_eq!(check(&path, Some(&a), later), (None, Some(stamp)));
        // The stamp alone decides: a cached text the file does not hold is not even compared.
        assert_eq!(
            check(&path, Some(&cached("kind: B\n", Some(stamp))), later).0,
            None
        );
        // Within two seconds of its change, the file has not been quiet: no stamp, and its
        // bytes decide.
        let soon = changed(&path) + Duration::from_secs(1);
        let (text, stamp_soon) = check(&path, Some(&cached("kind: B\n", Some(stamp))), soon);
        assert_eq!((text.as_deref(), stamp_soon), (Some("kind: A\n"), None));
        // Written again in place, to the same length, a tick of the file system's clock
        // later, its modification time then put back: the change time tells.
        let modified = modified_at(&path);
        std::thread::sleep(Duration::from_millis(30));
        std::fs::write(&path, "kind: C\n").unwrap();
        set_modified(&path, modified);
        let (text, moved) = check(&path, Some(&a), later);
        assert_eq!(text.as_deref(), Some("kind: C\n"));
        assert_ne!(moved, Some(stamp));
        // Replaced by a file of the same length renamed over it, as editors do.
        let c = cached("kind: C\n", moved);
        std::fs::write(dir.join("next"), "kind: D\n").unwrap();
        std::fs::rename(dir.join("next"), &path).unwrap();
        assert_eq!(
            check(&path, Some(&c), later).0.as_deref(),
            Some("kind: D\n")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_swapped_symbolic_link_is_a_changed_file() {
        // Kubernetes updates a mounted ConfigMap by pointing a link at a new directory; the
        // file's metadata is its target's.
        let dir = fresh_dir("stamp-link");
        for (version, text) in [("v1", "kind: A\n"), ("v2", "kind: Z\n")] {
            std::fs::create_dir_all(dir.join(version)).unwrap();
            std::fs::write(dir.join(version).join("a.yaml"), text).unwrap();
        }
        set_modified(&dir.join("v2/a.yaml"), modified_at(&dir.join("v1/a.yaml")));
        let path = dir.join("a.yaml");
        std::os::unix::fs::symlink(dir.join("v1/a.yaml"), &path).unwrap();
        let later = SystemTime::now() + Duration::from_secs(60);
        let (text, stamp) = check(&path, None, later);
        let a = cached(&text.unwrap(), stamp);
        std::os::unix::fs::symlink(dir.join("v2/a.yaml"), dir.join("next")).unwrap();
        std::fs::rename(dir.join("next"), &path).unwrap();
        assert_eq!(
            check(&path, Some(&a), later).0.as_deref(),
            Some("kind: Z\n")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn settling_finds_a_write_the_file_times_do_not_show() {
        let dir = fresh_dir("stamp-settle");
        let path = dir.join("a.yaml");
        let ns =
            |name: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n");
        std::fs::write(&path, ns("a")).unwrap();
        let loader = Loader::new();
        let mut cache = LoadCache::default();
        // Read right after its change: no stamp yet.
        let soon = changed(&path) + Duration::from_secs(1);
        loader.read_path_cached_as(&dir, &mut cache, Hand::Copy, soon);
        assert!(cache.files[&path].stamp.is_none());
        // Still within two seconds: not looked at.
        assert!(!cache.settle_at(soon));
        // Written again to the same length, its modification time put back: what a second
        // write within one tick of the clock looks like to a watcher.
        let modified = modified_at(&path);
        std::fs::write(&path, ns("b")).unwrap();
        set_modified(&path, modified);
        let later = SystemTime::now() + Duration::from_secs(60);
        assert!(cache.settle_at(later));
        assert!(cache.files[&path].stamp.is_none());
        // Reported once: a load that cannot take place (the directory unreadable, say) does not
        // make every poll report it again.
        assert!(!cache.settle_at(later));
        // Loaded again, the file is read and keeps a stamp; settling finds nothing more.
        let loaded = loader.read_path_cached_as(&dir, &mut cache, Hand::Copy, later);
        assert_eq!(loaded.documents()[0].object.metadata().name, "b");
        assert!(cache.files[&path].stamp.is_some());
        assert!(!cache.settle_at(later));
        // A file read within two seconds of its change that did not change again gets its
        // stamp once it settles.
        cache.files.get_mut(&path).unwrap().stamp = None;
        assert!(!cache.settle_at(later));
        assert!(cache.files[&path].stamp.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cached_load_keeps_the_stamps_of_quiet_files() {
        let dir = fresh_dir("stamp-load");
        let se = |host: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
                 metadata: {{name: {host}}}\nspec: {{hosts: [{host}]}}\n"
            )
        };
        std::fs::write(dir.join("a.yaml"), se("a.example")).unwrap();
        std::fs::write(dir.join("b.yaml"), se("b.example")).unwrap();
        let loader = Loader::new();
        let mut cache = LoadCache::default();
        let later = SystemTime::now() + Duration::from_secs(60);
        let load = |cache: &mut LoadCache, now| {
            let loaded = loader.read_path_cached_as(&dir, cache, Hand::Copy, now);
            let names: Vec<String> = loaded
                .documents()
                .iter()
                .map(|d| d.object.metadata().name.clone())
                .collect();
            (names, cache.parsed())
        };
        assert_eq!(
            load(&mut cache, later),
            (vec!["a.example".into(), "b.example".into()], 2)
        );
        assert!(cache.files.values().all(|f| f.stamp.is_some()));
        // The stamps alone decide: with a's cached text made different from the file, nothing
        // is read, so nothing is parsed.
        let a = cache.files.get_mut(&dir.join("a.yaml")).unwrap();
        let text = std::mem::replace(&mut a.text, "not the file".to_owned());
        assert_eq!(
            load(&mut cache, later),
            (vec!["a.example".into(), "b.example".into()], 0)
        );
        cache.files.get_mut(&dir.join("a.yaml")).unwrap().text = text;
        // A file of the same length renamed over b is read, and it alone is parsed.
        std::fs::write(dir.join("next"), se("c.example")).unwrap();
        std::fs::rename(dir.join("next"), dir.join("b.yaml")).unwrap();
        assert_eq!(
            load(&mut cache, later),
            (vec!["a.example".into(), "c.example".into()], 1)
        );
        assert!(cache.files.values().all(|f| f.stamp.is_some()));
        // Seen right after b changed, b is compared by its bytes and keeps no stamp.
        let soon = changed(&dir.join("b.yaml")) + Duration::from_secs(1);
        assert_eq!(
            load(&mut cache, soon),
            (vec!["a.example".into(), "c.example".into()], 0)
        );
        assert!(cache.files[&dir.join("b.yaml")].stamp.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
