//! Reading the inputs: files, directories (recursively) and standard input, loaded into
//! documents with the default namespace filled in.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use portcullis_model::{Document, LoadError, LoadErrorKind, Loader, Object, SkippedDocument};

use crate::{Common, Outcome};

/// One input stream: its name as reported and its text.
#[derive(Debug)]
pub(crate) struct Source {
    /// The path as given (or found under a directory), `-` for standard input.
    pub(crate) name: String,
    /// The whole text.
    pub(crate) text: String,
}

/// Reads every path: a file, every `.yaml`, `.yml` and `.json` file under a directory (in path
/// order), or standard input for `-` (read once).
pub(crate) fn gather(paths: &[PathBuf]) -> Result<Vec<Source>, Outcome> {
    let mut sources = Vec::new();
    let mut stdin_read = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if !stdin_read {
                stdin_read = true;
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Outcome::Input(format!("-: cannot read standard input: {e}")))?;
                sources.push(Source {
                    name: "-".to_owned(),
                    text,
                });
            }
            continue;
        }
        let mut files = Vec::new();
        collect(path, true, &mut files)
            .map_err(|e| Outcome::Input(format!("{}: {e}", path.display())))?;
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Outcome::Input(format!("{}: {e}", file.display())))?;
            sources.push(Source {
                name: file.display().to_string(),
                text,
            });
        }
    }
    Ok(sources)
}

fn collect(path: &Path, top: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            collect(&entry, false, out)?;
        }
    } else if top || is_config_file(path) {
        out.push(path.to_owned());
    }
    Ok(())
}

fn is_config_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// The configuration read from the inputs.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// The typed documents, with the default namespace filled in.
    pub(crate) documents: Vec<Document>,
    /// Documents of other kinds, with the default namespace filled in.
    pub(crate) skipped: Vec<SkippedDocument>,
    /// Documents that did not load.
    pub(crate) errors: Vec<LoadError>,
}

impl Loaded {
    /// The objects of the documents.
    pub(crate) fn objects(&self) -> Vec<Object> {
        self.documents.iter().map(|d| d.object.clone()).collect()
    }
}

/// Loads the sources. Documents without `apiVersion` in a stream that holds routing tests
/// (`testCases:` or `tests:`) are not errors: they are the tests, which may sit beside the
/// configuration.
pub(crate) fn load(sources: &[Source], common: &Common) -> Loaded {
    // The loader puts objects without a namespace in `default_namespace`, everywhere.
    let loader = Loader::new()
        .with_default_namespace(common.default_namespace.as_str())
        .with_max_documents(common.max_documents);
    let mut out = Loaded::default();
    for source in sources {
        let loaded = loader.read_str(&source.name, &source.text);
        let has_tests = source.text.contains("testCases") || source.text.contains("tests");
        out.errors.extend(
            loaded
                .errors()
                .iter()
                .filter(|e| {
                    !(has_tests
                        && e.kind() == LoadErrorKind::MissingField
                        && matches!(e.path(), "apiVersion" | "kind"))
                })
                .cloned(),
        );
        out.skipped.extend(loaded.skipped().iter().cloned());
        out.documents.extend(loaded.into_documents());
    }
    out
}

/// `file:line:column` of a field of a document (the nearest enclosing field the source map
/// knows, or the document's start).
pub(crate) fn locate(doc: &Document, path: &str) -> (usize, usize) {
    let loc = doc.source_map.nearest(path).unwrap_or(doc.source.location);
    (loc.line, loc.column)
}

/// Every load error as one `Outcome::Input` line each, or `None`.
pub(crate) fn load_failure(errors: &[LoadError]) -> Option<Outcome> {
    if errors.is_empty() {
        return None;
    }
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    Some(Outcome::Input(text.join("\n")))
}
