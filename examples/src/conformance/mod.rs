//! The conformance runner: Istio's behaviour, written down as data, replayed against Portcullis.
//!
//! The runner contract (`../shared/conformance/README.md`): every case is run, one line is
//! printed per failing case (its id and what differed), and the run ends with the plain line
//! `N passed, M failed`.

mod analysis;
mod corpus;
mod routing;
mod validation;

use std::fmt;
use std::path::{Path, PathBuf};

pub use corpus::run_corpus;

/// The suites of `../shared/conformance/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// `validation.yaml`: one resource or sub-object judged by one Istio validation entry point.
    Validation,
    /// `routing.yaml`: a configuration, a gateway proxy and one request, and Istio's decision.
    Routing,
    /// `analysis.yaml`: an `istioctl analyze` fixture and the messages one analyzer reports.
    Analysis,
    /// A directory of real documents that must load and round-trip.
    Corpus,
}

impl Suite {
    /// The suite with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "validation" => Some(Self::Validation),
            "routing" => Some(Self::Routing),
            "analysis" => Some(Self::Analysis),
            "corpus" => Some(Self::Corpus),
            _ => None,
        }
    }
}

/// One failing case: its id and what differed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The case id (a vector id, or a corpus file and document).
    pub id: String,
    /// What differed from the expectation.
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FAIL {}: {}", self.id, self.reason)
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// How many cases passed.
    pub passed: usize,
    /// The cases that failed, in run order.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Records a case's outcome.
    pub fn record(&mut self, id: impl Into<String>, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(reason) => self.failures.push(Failure {
                id: id.into(),
                reason,
            }),
        }
    }

    /// Adds another report's counts and failures.
    pub fn merge(&mut self, other: Self) {
        self.passed += other.passed;
        self.failures.extend(other.failures);
    }

    /// The closing line the runner contract asks for.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failures.len())
    }
}

/// Runs `suite` on each of `paths`.
///
/// # Errors
/// When a suite file cannot be read or is not in the suite's format.
pub fn run(suite: Suite, paths: &[PathBuf]) -> Result<Report, String> {
    let mut report = Report::default();
    for path in paths {
        let part = match suite {
            Suite::Corpus => run_corpus(path)?,
            Suite::Validation => validation::run(path)?,
            Suite::Routing => routing::run(path)?,
            Suite::Analysis => analysis::run(path)?,
        };
        report.merge(part);
    }
    Ok(report)
}

/// The `../shared/` directory beside the repository (or `$PORTCULLIS_SHARED`), if present.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PORTCULLIS_SHARED") {
        return Some(PathBuf::from(dir));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let shared = repo.parent()?.join("shared");
    shared.is_dir().then_some(shared)
}

/// Reads a YAML file into a generic value.
pub(crate) fn read_yaml(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
