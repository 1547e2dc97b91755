//! The conformance runner: Istio's behaviour, written down as data, replayed against Portcullis.
//!
//! The data is Istio's (`testdata/conformance/`, kept in the repository, or a newer copy in
//! `../shared/`, see [`data_dir`]). The runner contract (`testdata/conformance/README.md`): every case is run, one line is
//! printed per failing case (its id and what differed), and the run ends with the plain line
//! `N passed, M failed`.

mod analysis;
mod corpus;
mod known;
mod routing;
mod validation;

use std::fmt;
use std::path::{Path, PathBuf};

pub use corpus::run_corpus;
pub use known::{KNOWN_DEVIATIONS, KnownDeviation, Verdict};

/// The suites of `testdata/conformance/`.
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

/// Where the conformance data and the corpus were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataOrigin {
    /// `$PORTCULLIS_SHARED`.
    Env,
    /// `../shared/` beside the repository.
    Shared,
    /// The copy kept in the repository, `testdata/`.
    InRepo,
}

/// The directory holding `conformance/` and `corpus/`, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// Which of the places it is.
    pub origin: DataOrigin,
}

impl fmt::Display for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match self.origin {
            DataOrigin::Env => "$PORTCULLIS_SHARED",
            DataOrigin::Shared => "../shared beside the repository",
            DataOrigin::InRepo => "the repository's copy",
        };
        write!(f, "{} ({origin})", self.path.display())
    }
}

/// The conformance data to run: `$PORTCULLIS_SHARED` when set, else `../shared/` beside the
/// repository when present (either may be newer than the copy), else the repository's own copy
/// in `testdata/`.
///
/// # Errors
/// When `$PORTCULLIS_SHARED` names a directory without `conformance/` and `corpus/`, or no
/// place holds the data: a missing data set is an error, never a reason to skip.
pub fn data_dir() -> Result<DataDir, String> {
    let has_data = |dir: &Path| dir.join("conformance").is_dir() && dir.join("corpus").is_dir();
    if let Some(dir) = std::env::var_os("PORTCULLIS_SHARED") {
        let path = PathBuf::from(dir);
        return if has_data(&path) {
            Ok(DataDir {
                path,
                origin: DataOrigin::Env,
            })
        } else {
            Err(format!(
                "$PORTCULLIS_SHARED is {}, which has no conformance/ and corpus/",
                path.display()
            ))
        };
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the examples package has no parent directory")?;
    if let Some(shared) = repo.parent().map(|p| p.join("shared"))
        && has_data(&shared)
    {
        return Ok(DataDir {
            path: shared,
            origin: DataOrigin::Shared,
        });
    }
    let in_repo = repo.join("testdata");
    if has_data(&in_repo) {
        return Ok(DataDir {
            path: in_repo,
            origin: DataOrigin::InRepo,
        });
    }
    Err(format!(
        "no conformance data: neither $PORTCULLIS_SHARED, ../shared nor {} holds conformance/ and corpus/",
        in_repo.display()
    ))
}

/// Reads a YAML file into a generic value.
pub(crate) fn read_yaml(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
