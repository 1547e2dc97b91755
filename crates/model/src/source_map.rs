//! Where each field of a document stands in its source text.
//!
//! The loader deserializes documents through a generic value, so that every format and every
//! error takes one path; this map, built from the YAML event stream, gives each field path back
//! its line and column. A document read as a part of its stream (see the loader) keeps its text
//! and is mapped when first asked where a field is; a stream read whole is mapped as it is
//! split into documents.

use std::sync::{Arc, OnceLock};

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Tag};

/// A position in a source file: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

/// The key and value positions of one field, as 32-bit lines and columns (a line 0 key is
/// none): a configuration of ten thousand documents holds some 300,000 of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Where the mapping key is written; line 0 for sequence items and the root.
    key: (u32, u32),
    /// Where the value starts.
    value: (u32, u32),
}

impl Entry {
    fn new(key: Option<Location>, value: Location) -> Self {
        Self {
            key: key.map_or((0, 0), compact),
            value: compact(value),
        }
    }

    fn value(&self, shift: isize) -> Location {
        expand(self.value, shift)
    }

    fn key(&self, shift: isize) -> Location {
        if self.key.0 == 0 {
            self.value(shift)
        } else {
            expand(self.key, shift)
        }
    }
}

/// A location in 32 bits each; beyond four billion lines or columns, the largest.
fn compact(l: Location) -> (u32, u32) {
    (
        u32::try_from(l.line).unwrap_or(u32::MAX),
        u32::try_from(l.column).unwrap_or(u32::MAX),
    )
}

fn expand((line, column): (u32, u32), shift: isize) -> Location {
    Location {
        line: (line as usize).saturating_add_signed(shift).max(1),
        column: column as usize,
    }
}

/// Field path → source positions for one document.
///
/// Paths are written as the loader reports them: `spec.http[0].route[1].destination.host`.
///
/// ```
/// use portcullis_model::{Loader, Location};
///
/// let loaded = Loader::new().load_str("vs.yaml", "\
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: reviews}
/// spec:
///   hosts: [reviews]
///   http:
///   - route:
///     - destination:
///         host: reviews
/// ")?;
/// let map = &loaded.documents()[0].source_map;
/// assert_eq!(map.value("spec.http[0].route[0].destination.host"), Some(Location { line: 9, column: 15 }));
/// assert_eq!(map.key("spec.http"), Some(Location { line: 6, column: 3 }));
/// # Ok::<(), portcullis_model::LoadErrors>(())
/// ```
#[derive(Clone, Default)]
pub struct SourceMap {
    /// Shared, so that a document kept between loads (see [`LoadCache`](crate::LoadCache)) is
    /// copied for the price of a count.
    inner: Arc<Inner>,
    /// Added to every line: a document that moved up or down its file keeps its entries.
    line_shift: isize,
}

/// Field paths and their positions.
type Entries = Box<[(Box<str>, Entry)]>;

#[derive(Default)]
struct Inner {
    /// Sorted by path, one entry per path: looked up only to place a message, so a sorted
    /// list serves as well as a hash table, in half the memory.
    entries: OnceLock<Entries>,
    /// The document's text, when the entries are made on first use: most documents are never
    /// asked where a field is, and mapping them while loading cost as much as a second parse.
    text: Option<Box<str>>,
}

impl std::fmt::Debug for SourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries().iter().map(|(path, entry)| {
                (
                    path,
                    (entry.key(self.line_shift), entry.value(self.line_shift)),
                )
            }))
            .finish()
    }
}

/// Equal when every path is at the same place, however the lines are stored.
impl PartialEq for SourceMap {
    fn eq(&self, other: &Self) -> bool {
        let (mine, theirs) = (self.entries(), other.entries());
        mine.len() == theirs.len()
            && mine.iter().zip(theirs.iter()).all(|(a, b)| {
                a.0 == b.0
                    && a.1.key(self.line_shift) == b.1.key(other.line_shift)
                    && a.1.value(self.line_shift) == b.1.value(other.line_shift)
            })
    }
}

impl Eq for SourceMap {}

impl SourceMap {
    /// Sorts the entries recorded in document order, keeping the first of each path (a
    /// duplicate key is an error the loader reports anyway).
    fn sealed(mut entries: Vec<(Box<str>, Entry)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, first| later.0 == first.0);
        Self {
            inner: Arc::new(Inner {
                entries: OnceLock::from(entries.into_boxed_slice()),
                text: None,
            }),
            line_shift: 0,
        }
    }

    /// The map of the one document `text` holds, `text` starting at line `first_line` of its
    /// file; made when first looked into, with lines counted from the text's first (the shift
    /// makes them the file's).
    pub(crate) fn of_document(text: &str, first_line: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: OnceLock::new(),
                text: Some(Box::from(text)),
            }),
            line_shift: offset_between(1, first_line),
        }
    }

    fn entries(&self) -> &[(Box<str>, Entry)] {
        self.inner.entries.get_or_init(|| {
            let Some(text) = &self.inner.text else {
                return Box::default();
            };
            let (documents, _) = scan_documents(text);
            let Some(document) = documents.into_iter().next() else {
                return Box::default();
            };
            Arc::try_unwrap(document.source_map.inner)
                .ok()
                .and_then(|inner| inner.entries.into_inner())
                .unwrap_or_default()
        })
    }

    /// Where the value at `path` starts.
    pub fn value(&self, path: &str) -> Option<Location> {
        self.get(path).map(|e| e.value(self.line_shift))
    }

    /// Where the key of the field at `path` is written (for a sequence item, the item itself).
    pub fn key(&self, path: &str) -> Option<Location> {
        self.get(path).map(|e| e.key(self.line_shift))
    }

    /// Moves every position `lines` lines down (up, when negative).
    pub(crate) fn shift_lines(&mut self, lines: isize) {
        self.line_shift = self.line_shift.saturating_add(lines);
    }

    fn get(&self, path: &str) -> Option<&Entry> {
        let entries = self.entries();
        let i = entries.binary_search_by(|(p, _)| (**p).cmp(path)).ok()?;
        entries.get(i).map(|(_, e)| e)
    }

    /// The position of the closest field at or above `path` that the map knows: the field
    /// itself, or the nearest enclosing one (a missing field is reported at its parent).
    pub fn nearest(&self, path: &str) -> Option<Location> {
        let mut current = path;
        loop {
            if let Some(found) = self.key(current) {
                return Some(found);
            }
            current = parent_path(current)?;
        }
    }

    /// The part of this map below `prefix` (for the items of a `kind: List`), with paths
    /// relative to it.
    pub(crate) fn subtree(&self, prefix: &str) -> Self {
        // The paths under `prefix` are together in the sorted list, and without the prefix
        // they are still in order: one List item costs its own entries, not the whole List's.
        let all = self.entries();
        let first = all.partition_point(|(path, _)| &**path < prefix);
        let entries = all
            .get(first..)
            .unwrap_or_default()
            .iter()
            .take_while(|(path, _)| path.starts_with(prefix))
            .filter_map(|(path, entry)| {
                let rest = path.get(prefix.len()..)?;
                if rest.is_empty() {
                    return Some((Box::from(""), *entry));
                }
                rest.strip_prefix('.').map(|r| (Box::from(r), *entry))
            })
            .collect::<Vec<_>>();
        Self {
            inner: Arc::new(Inner {
                entries: OnceLock::from(entries.into_boxed_slice()),
                text: None,
            }),
            line_shift: self.line_shift,
        }
    }
}

/// Whether a document whose root is this scalar is empty: a `null` by its tag, or, untagged,
/// a plain empty, `~` or `null` (Go YAML's reading: `!!str null` is a string).
fn is_null_scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> bool {
    match tag {
        Some(tag) => tag.handle() == "tag:yaml.org,2002:" && tag.suffix() == "null",
        None => style == ScalarStyle::Plain && matches!(value, "" | "~" | "null" | "Null" | "NULL"),
    }
}

/// The root of the one document a text holds, as a scan sees it.
pub(crate) struct Root {
    /// Where it starts (what a scan maps as the path ``); none for an empty document.
    pub(crate) location: Option<Location>,
    /// Whether the document is empty or `null` (nothing to load).
    pub(crate) is_null: bool,
}

/// The root of the one document `text` holds, `text` starting at line `first_line` of its
/// file, read from the first few events only. A syntax error before the root reads as a root
/// that is not null, left to the parse to report.
pub(crate) fn root(text: &str, first_line: usize) -> Root {
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            break;
        };
        let location = Location {
            line: span
                .start
                .line()
                .saturating_add(first_line.saturating_sub(1)),
            column: span.start.col().saturating_add(1),
        };
        match event {
            Event::Scalar(value, style, _, tag) => {
                return Root {
                    location: Some(location),
                    is_null: is_null_scalar(&value, style, tag.as_deref()),
                };
            }
            Event::MappingStart(..) | Event::SequenceStart(..) | Event::Alias(_) => {
                return Root {
                    location: Some(location),
                    is_null: false,
                };
            }
            Event::DocumentEnd | Event::StreamEnd => {
                return Root {
                    location: None,
                    is_null: true,
                };
            }
            _ => {}
        }
    }
    Root {
        location: None,
        is_null: false,
    }
}

/// `to - from`, signed (lines and document indices move both ways).
pub(crate) fn offset_between(from: usize, to: usize) -> isize {
    let signed = |n: usize| isize::try_from(n).unwrap_or(isize::MAX);
    signed(to).saturating_sub(signed(from))
}

/// The parent of a field path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``, `` → none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path.get(..cut).unwrap_or(""))
}

/// One document of a stream: the byte range of its lines, and its field positions.
#[derive(Debug)]
pub(crate) struct DocumentSpan {
    /// Byte offset of the start of the document's first line.
    pub(crate) start: usize,
    /// Byte offset just past the document.
    pub(crate) end: usize,
    /// The document's first line (1-based); lines inside the slice are relative to it.
    pub(crate) first_line: usize,
    /// Whether the document's root is an empty or `null` scalar (nothing to load).
    pub(crate) is_null: bool,
    /// Field positions, with absolute lines.
    pub(crate) source_map: SourceMap,
}

/// A syntax error of the stream, located.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) location: Location,
}

/// One open collection while walking the events.
enum Frame {
    Mapping {
        path: String,
        /// The key just read, waiting for its value.
        pending_key: Option<(String, Location)>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
}

/// Splits a YAML (or JSON) stream into documents and maps every field path to its position.
///
/// Stops at the first syntax error, returning the documents completed before it.
pub(crate) fn scan_documents(text: &str) -> (Vec<DocumentSpan>, Option<SyntaxError>) {
    let mut documents = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut current: Option<DocumentSpan> = None;
    // The current document's entries, in document order until it ends.
    let mut entries: Vec<(Box<str>, Entry)> = Vec::new();
    let mut root_seen = false;
    let line_starts = line_start_offsets(text);
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(ok) => ok,
            Err(err) => {
                let marker = err.marker();
                let location = Location {
                    line: marker.line(),
                    column: marker.col() + 1,
                };
                return (
                    documents,
                    Some(SyntaxError {
                        message: err.info(),
                        location,
                    }),
                );
            }
        };
        let here = Location {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        match event {
            Event::DocumentStart(..) => {
                let first_line = span.start.line().max(1);
                let start = line_starts
                    .get(first_line - 1)
                    .copied()
                    .unwrap_or(text.len());
                stack.clear();
                entries.clear();
                root_seen = false;
                current = Some(DocumentSpan {
                    start,
                    end: text.len(),
                    first_line,
                    is_null: true,
                    source_map: SourceMap::default(),
                });
            }
            Event::DocumentEnd => {
                if let Some(mut doc) = current.take() {
                    doc.source_map = SourceMap::sealed(std::mem::take(&mut entries));
                    doc.end = byte_offset(text, &line_starts, span.end.line(), span.end.col())
                        .max(doc.start);
                    documents.push(doc);
                }
            }
            Event::Scalar(value, style, _, tag) => {
                let Some(doc) = current.as_mut() else {
                    continue;
                };
                if !root_seen {
                    root_seen = true;
                    doc.is_null = is_null_scalar(&value, style, tag.as_deref());
                }
                if let Some(Frame::Mapping { pending_key, .. }) = stack.last_mut()
                    && pending_key.is_none()
                {
                    *pending_key = Some((value.into_owned(), here));
                    continue;
                }
                record_value(&mut stack, &mut entries, here);
            }
            Event::Alias(_) => {
                if let Some(doc) = current.as_mut() {
                    root_seen = true;
                    doc.is_null = false;
                    if let Some(Frame::Mapping { pending_key, .. }) = stack.last_mut()
                        && pending_key.is_none()
                    {
                        *pending_key = Some(("*".to_owned(), here));
                        continue;
                    }
                    record_value(&mut stack, &mut entries, here);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let Some(doc) = current.as_mut() else {
                    continue;
                };
                root_seen = true;
                doc.is_null = false;
                // A collection used as a mapping key has no path of its own; it is mapped as `?`.
                if let Some(Frame::Mapping { pending_key, .. }) = stack.last_mut()
                    && pending_key.is_none()
                {
                    *pending_key = Some(("?".to_owned(), here));
                }
                let path = record_value(&mut stack, &mut entries, here).to_owned();
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        path,
                        pending_key: None,
                    }
                } else {
                    Frame::Sequence {
                        path,
                        next_index: 0,
                    }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    (documents, None)
}

/// Records a value node at the position the stack says it fills, and returns its path (as
/// recorded: a collection's frame copies it; a scalar's is only recorded).
fn record_value<'m>(
    stack: &mut [Frame],
    entries: &'m mut Vec<(Box<str>, Entry)>,
    value: Location,
) -> &'m str {
    let (path, key) = match stack.last_mut() {
        None => (String::new(), None),
        Some(Frame::Mapping { path, pending_key }) => match pending_key.take() {
            Some((name, key_location)) => (join_key(path, &name), Some(key_location)),
            None => (join_key(path, "?"), None),
        },
        Some(Frame::Sequence { path, next_index }) => {
            let item = format!("{path}[{next_index}]");
            *next_index += 1;
            (item, None)
        }
    };
    entries.push((path.into_boxed_str(), Entry::new(key, value)));
    entries.last().map_or("", |(path, _)| path)
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn line_start_offsets(text: &str) -> Vec<usize> {
    core::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The byte offset of a (1-based line, 0-based character column) position.
fn byte_offset(text: &str, line_starts: &[usize], line: usize, col: usize) -> usize {
    let Some(&start) = line_starts.get(line.saturating_sub(1)) else {
        return text.len();
    };
    let rest = text.get(start..).unwrap_or("");
    start
        + rest
            .char_indices()
            .nth(col)
            .map_or(rest.len(), |(offset, _)| offset)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_values_and_sequence_items() {
        let text = "a:\n  b: [1, {c: x}]\n  d:\n  - e: 1\n";
        let (docs, err) = scan_documents(text);
        assert!(err.is_none());
        let map = &docs[0].source_map;
        assert_eq!(map.key("a.b"), Some(Location { line: 2, column: 3 }));
        assert_eq!(map.value("a.b"), Some(Location { line: 2, column: 6 }));
        assert_eq!(
            map.value("a.b[1].c"),
            Some(Location {
                line: 2,
                column: 14
            })
        );
        assert_eq!(map.key("a.d[0].e"), Some(Location { line: 4, column: 5 }));
        assert_eq!(
            map.nearest("a.d[0].missing"),
            Some(Location { line: 4, column: 5 })
        );
    }

    #[test]
    fn splits_streams_and_marks_null_documents() {
        let text = "a: 1\n---\n---\nb: 2\n...\n";
        let (docs, err) = scan_documents(text);
        assert!(err.is_none());
        assert_eq!(docs.len(), 3);
        assert!(!docs[0].is_null && docs[1].is_null && !docs[2].is_null);
        assert_eq!(&text[docs[2].start..docs[2].end], "---\nb: 2\n...");
        assert_eq!(
            docs[2].source_map.key("b"),
            Some(Location { line: 4, column: 1 })
        );
    }

    #[test]
    fn reports_syntax_errors_with_a_position() {
        let (docs, err) = scan_documents("a: 1\n---\nb: [1, 2\n");
        assert_eq!(docs.len(), 1);
        let err = err.unwrap();
        assert!(err.location.line >= 3, "{err:?}");
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a.b"), Some("a"));
        assert_eq!(parent_path("a"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
