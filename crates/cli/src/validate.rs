//! `portcullis validate`: Istio's admission-webhook validation with source locations.

use std::path::PathBuf;

use portcullis_validate::{Context, Severity, validate_document_with};
use serde_json::{Value, json};

use crate::input::{self, locate};
use crate::output::{Format, print_structured};
use crate::{Common, Outcome};

pub(crate) fn run(paths: &[PathBuf], common: &Common) -> Outcome {
    let sources = match input::gather(paths) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let loaded = input::load(&sources, common);
    let environment = Context::new(&common.default_namespace, "");
    let mut entries = Vec::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
    for e in &loaded.errors {
        errors += 1;
        entries.push(json!({
            "file": e.file(),
            "line": e.line(),
            "column": e.column(),
            "severity": "error",
            "kind": Value::Null,
            "name": Value::Null,
            "namespace": Value::Null,
            "path": e.path(),
            "message": e.message(),
        }));
        if common.output == Format::Log {
            outln!("{e}");
        }
    }
    for doc in &loaded.documents {
        let found = validate_document_with(&doc.object, &environment);
        let meta = doc.object.metadata();
        let kind = doc.object.kind();
        for d in found.iter() {
            let severity = match d.severity {
                Severity::Error => {
                    errors += 1;
                    "error"
                }
                _ => {
                    warnings += 1;
                    "warning"
                }
            };
            let (line, column) = locate(doc, &d.path);
            if common.output == Format::Log {
                outln!(
                    "{}:{line}:{column}: {severity}: {} {}/{}: {}: {}",
                    doc.source.file,
                    kind.as_str(),
                    meta.namespace,
                    meta.name,
                    if d.path.is_empty() { "-" } else { &d.path },
                    d.message
                );
            }
            entries.push(json!({
                "file": doc.source.file,
                "line": line,
                "column": column,
                "severity": severity,
                "kind": kind.as_str(),
                "name": meta.name,
                "namespace": meta.namespace,
                "path": d.path,
                "message": d.message,
            }));
        }
    }
    if common.output == Format::Log {
        eprintln!(
            "validated {} objects in {} inputs: {errors} errors, {warnings} warnings",
            loaded.documents.len(),
            sources.len()
        );
    } else {
        print_structured(common.output, &Value::Array(entries));
    }
    if !loaded.errors.is_empty() {
        Outcome::Input(format!(
            "{} documents could not be parsed",
            loaded.errors.len()
        ))
    } else if errors > 0 {
        Outcome::Failed
    } else {
        Outcome::Ok
    }
}
