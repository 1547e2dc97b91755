//! The `analysis` suite: an `istioctl analyze` fixture and the messages one analyzer reports.
//!
//! Each case names corpus files (`fixture_files[].corpus_file` and `support_file`, relative to
//! the suite's `corpus_root`), optionally a MeshConfig file, and one analyzer. The runner loads
//! the files plus Istio's default resources (`istio/analyzer-default-resources.support.yaml`
//! under the corpus root), runs that analyzer, and compares the reported messages with
//! `expected_messages` as an unordered multiset of (code, level, resource).
//!
//! Cases naming `(all analyzers, … --failure-threshold ERROR)` run every Istio analyzer and
//! compare only messages at Error level; `--use-kube=false` there means the files are all there
//! is, so workload-dependent analyzers do not run (see `Config::with_workloads_known`). A case
//! naming an analyzer Portcullis does not implement fails with that reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis_model::Loader;
use portcullis_validate::analysis::{Analyzer, Config, Level, MeshConfig, analyze};
use serde_json::Value;

use super::{Report, read_yaml};

/// The default resources `istioctl analyze` adds, relative to the corpus root.
const DEFAULT_RESOURCES: &str = "istio/analyzer-default-resources.support.yaml";

/// Runs every case of an analysis suite file.
pub(super) fn run(path: &Path) -> Result<Report, String> {
    let data = read_yaml(path)?;
    let cases = data
        .get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no `cases` list", path.display()))?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let corpus_root = base.join(
        data.get("corpus_root")
            .and_then(Value::as_str)
            .unwrap_or("../corpus"),
    );
    let mut report = Report::default();
    for (i, case) in cases.iter().enumerate() {
        let id = case
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("case {i}"), str::to_owned);
        report.record(id, run_case(case, &corpus_root));
    }
    Ok(report)
}

/// What is compared: (code, level, resource).
type Key = (String, String, String);

fn run_case(case: &Value, root: &Path) -> Result<(), String> {
    let analyzer_text = case
        .get("analyzer")
        .and_then(Value::as_str)
        .ok_or("case without `analyzer`")?;
    let (analyzers, errors_only, files_only) = select_analyzers(analyzer_text)?;

    let mut files: Vec<PathBuf> = Vec::new();
    for fixture in case
        .get("fixture_files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for key in ["corpus_file", "support_file"] {
            if let Some(file) = fixture.get(key).and_then(Value::as_str) {
                files.push(root.join(file));
            }
        }
    }
    files.push(root.join(DEFAULT_RESOURCES));

    // Istio's analyzer tests run without a default namespace, so a document without one keeps
    // none and messages name it bare (`Gateway httpbin-gateway`); `istioctl analyze` and the
    // loader's default put it in `default`.
    let loader = Loader::new().with_default_namespace("");
    let mut config = Config::new();
    for file in &files {
        let loaded = loader.read_file(file);
        if let Some(error) = loaded.errors().first() {
            return Err(format!("{} did not load: {error}", file.display()));
        }
        config.add(&loaded);
    }
    if let Some(mesh) = case
        .get("mesh_config_file")
        .and_then(|m| m.get("corpus_file"))
        .and_then(Value::as_str)
    {
        let value = read_yaml(&root.join(mesh))?;
        config = config.with_mesh_config(MeshConfig::from_value(&value));
    }
    if files_only {
        config = config.with_workloads_known(false);
    }

    let found: Vec<Key> = analyze(&config, &analyzers)
        .into_iter()
        .filter(|m| !errors_only || m.level == Level::Error)
        .map(|m| {
            (
                m.code.to_owned(),
                m.level.as_str().to_owned(),
                m.resource.to_string(),
            )
        })
        .collect();
    let expected: Vec<Key> = case
        .get("expected_messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (field("code"), field("level"), field("resource"))
        })
        .collect();
    compare(&expected, &found)
}

/// The analyzers a case names, whether only Error messages count, and whether the case
/// analyses files only (`--use-kube=false`).
fn select_analyzers(text: &str) -> Result<(Vec<Analyzer>, bool, bool), String> {
    if let Some(analyzer) = Analyzer::from_name(text) {
        return Ok((vec![analyzer], false, false));
    }
    if text.starts_with("(all analyzers") {
        let istio: Vec<Analyzer> = Analyzer::ALL
            .iter()
            .copied()
            .filter(|a| *a != Analyzer::ShadowedRoutes)
            .collect();
        let errors_only = text.contains("--failure-threshold ERROR");
        let files_only = text.contains("--use-kube=false");
        return Ok((istio, errors_only, files_only));
    }
    Err(format!(
        "analyzer {text:?} is not implemented by Portcullis"
    ))
}

/// Compares two multisets, naming what is missing and what is unexpected.
fn compare(expected: &[Key], found: &[Key]) -> Result<(), String> {
    let mut counts: BTreeMap<&Key, i64> = BTreeMap::new();
    for key in expected {
        *counts.entry(key).or_default() += 1;
    }
    for key in found {
        *counts.entry(key).or_default() -= 1;
    }
    let show = |(code, level, resource): &Key, n: i64| {
        let times = if n.abs() > 1 {
            format!(" ×{}", n.abs())
        } else {
            String::new()
        };
        format!("{code} {level} {resource}{times}")
    };
    let missing: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| show(k, *n))
        .collect();
    let unexpected: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(k, n)| show(k, *n))
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing [{}]", missing.join("; ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected [{}]", unexpected.join("; ")));
    }
    Err(parts.join(", "))
}
