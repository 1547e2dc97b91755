//! The `corpus` suite: every real document loads and round-trips.
//!
//! A case is one file. It passes when every document in it loads (or fails only as
//! `validation-expectations.yaml` allows), when every loaded object, written as YAML and as
//! JSON, loads back equal, and when every document with a known verdict gets it from
//! validation (with the API server's and the CRD's rules, as `kubectl apply` would judge it).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use portcullis_model::{Loader, Object, to_json, to_yaml};
use portcullis_validate::{Context, validate_document_with};

use super::{Report, read_yaml};

/// What `validation-expectations.yaml` allows to fail.
#[derive(Default)]
struct Allowances {
    /// Files no YAML loader may accept.
    must_fail: HashSet<String>,
    /// (file, document index) → field paths whose schema violation may stop the document.
    schema_flags: HashMap<(String, usize), Vec<String>>,
    /// (file, document index) → the verdict validation must give.
    verdicts: HashMap<(String, usize), Verdict>,
}

/// A known verdict for one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Valid,
    ValidWithWarning,
    Invalid,
}

/// The (file, index) an expectations entry names.
fn doc_key(entry: &serde_json::Value) -> Option<(String, usize)> {
    let file = entry.get("file")?.as_str()?;
    let index = usize::try_from(entry.get("index")?.as_u64()?).ok()?;
    Some((file.to_owned(), index))
}

impl Allowances {
    fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("validation-expectations.yaml");
        if !path.exists() {
            return Ok(Self::default());
        }
        let data = read_yaml(&path)?;
        let mut allowances = Self::default();
        for entry in data
            .get("yaml_1_2_load_errors")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(file) = entry.get("file").and_then(|f| f.as_str()) {
                allowances.must_fail.insert(file.to_owned());
            }
        }
        for entry in data
            .get("crd_schema_flags")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let file = entry.get("file").and_then(|f| f.as_str());
            let index = entry.get("index").and_then(serde_json::Value::as_u64);
            let (Some(file), Some(index)) = (file, index) else {
                continue;
            };
            let flags = entry
                .get("schema_flags")
                .and_then(|f| f.as_array())
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .map(|f| f.split_once(": ").map_or(f, |(path, _)| path).to_owned());
            allowances
                .schema_flags
                .entry((
                    file.to_owned(),
                    usize::try_from(index).unwrap_or(usize::MAX),
                ))
                .or_default()
                .extend(flags);
        }
        let entries = |key: &str| {
            data.get(key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default()
        };
        for entry in entries("from_istio_tests") {
            let verdict = match entry.get("expected").and_then(|e| e.as_str()) {
                Some("valid") => Verdict::Valid,
                Some("valid-with-warning") => Verdict::ValidWithWarning,
                Some("invalid") => Verdict::Invalid,
                _ => continue,
            };
            if let Some(key) = doc_key(&entry) {
                allowances.verdicts.insert(key, verdict);
            }
        }
        // Documents that certainly break a rule of the API server or of Istio's webhook.
        for entry in entries("heuristic_flags") {
            if let Some(key) = doc_key(&entry) {
                allowances.verdicts.entry(key).or_insert(Verdict::Invalid);
            }
        }
        Ok(allowances)
    }
}

/// Runs the corpus suite on a directory (or one file).
///
/// # Errors
/// When the directory or its expectations cannot be read.
pub fn run_corpus(root: &Path) -> Result<Report, String> {
    let base = if root.is_dir() {
        root
    } else {
        root.parent().unwrap_or(root)
    };
    let allowances = Allowances::read(base)?;
    let mut files = Vec::new();
    collect(root, &mut files).map_err(|e| format!("{}: {e}", root.display()))?;
    if files.is_empty() {
        return Err(format!("{}: no documents found", root.display()));
    }
    let mut report = Report::default();
    for file in files {
        let name = file
            .strip_prefix(base)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        report.record(name.clone(), check_file(&file, &name, &allowances));
    }
    Ok(report)
}

fn check_file(path: &Path, name: &str, allowances: &Allowances) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let loaded = Loader::new().read_str(name, &text);
    if allowances.must_fail.contains(name) {
        return if loaded.errors().is_empty() {
            Err("loaded, but no YAML loader may accept this file".to_owned())
        } else {
            Ok(())
        };
    }
    let mut problems = Vec::new();
    for error in loaded.errors() {
        let flagged = allowances
            .schema_flags
            .get(&(name.to_owned(), error.document()))
            .is_some_and(|paths| paths.iter().any(|p| error.path().starts_with(p.as_str())));
        if !flagged {
            problems.push(format!("load error: {error}"));
        }
    }
    let mut kubectl = Context::default();
    kubectl.crd_schema = true;
    for document in loaded.documents() {
        let key = (name.to_owned(), document.source.index);
        if let Some(verdict) = allowances.verdicts.get(&key) {
            let found = validate_document_with(&document.object, &kubectl);
            let got = if found.has_errors() {
                Verdict::Invalid
            } else if found.has_warnings() {
                Verdict::ValidWithWarning
            } else {
                Verdict::Valid
            };
            // Istio's "valid" cases do not look at warnings.
            let agrees = got == *verdict || (*verdict == Verdict::Valid && got != Verdict::Invalid);
            if !agrees {
                problems.push(format!(
                    "document {}: expected {verdict:?}, validation says {got:?}: {}",
                    document.source.index,
                    found.to_string().replace('\n', " | ")
                ));
            }
        }
        if let Err(reason) = round_trip(&document.object) {
            problems.push(format!(
                "document {}: round trip: {reason}",
                document.source.index
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Writes the object as YAML and as JSON and checks each loads back equal.
fn round_trip(object: &Object) -> Result<(), String> {
    let yaml = to_yaml(object).map_err(|e| format!("cannot write YAML: {e}"))?;
    let json = to_json(object).map_err(|e| format!("cannot write JSON: {e}"))?;
    for (format, text) in [("YAML", yaml), ("JSON", json)] {
        let again = Loader::new()
            .load_str(format, &text)
            .map_err(|e| format!("written {format} does not load: {e}\n{text}"))?;
        match again.documents() {
            [one] if one.object == *object => {}
            [one] => {
                return Err(format!(
                    "written {format} loads as a different value:\n{:?}\nvs\n{:?}",
                    one.object, object
                ));
            }
            other => return Err(format!("written {format} holds {} documents", other.len())),
        }
    }
    Ok(())
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    for entry in entries {
        let file_name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if entry.is_dir() {
            // Templated documents hold placeholders and are not loadable as they are.
            if file_name != "templated" {
                collect(&entry, out)?;
            }
            continue;
        }
        let is_document = [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| file_name.ends_with(ext));
        let is_metadata = matches!(
            file_name.as_str(),
            "manifest.yaml" | "validation-expectations.yaml"
        ) || file_name.ends_with(".meshconfig.yaml");
        if is_document && !is_metadata {
            out.push(entry);
        }
    }
    Ok(())
}
