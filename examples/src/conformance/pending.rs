//! Suites whose implementation has not landed yet: every case is reported as failed.

use std::path::Path;

use super::{Report, read_yaml};

/// Lists every case of a suite file as failed, naming the issue that will implement it.
pub(super) fn run(path: &Path, suite: &str, issue: u32) -> Result<Report, String> {
    let data = read_yaml(path)?;
    let cases = data
        .as_array()
        .or_else(|| data.get("cases").and_then(|c| c.as_array()))
        .or_else(|| data.get("vectors").and_then(|c| c.as_array()))
        .ok_or_else(|| format!("{}: no list of cases found", path.display()))?;
    let mut report = Report::default();
    for (i, case) in cases.iter().enumerate() {
        let id = case
            .get("id")
            .and_then(|v| v.as_str())
            .map_or_else(|| format!("case {i}"), str::to_owned);
        report.record(
            id,
            Err(format!(
                "not implemented: the {suite} suite lands with issue #{issue}"
            )),
        );
    }
    Ok(report)
}
