//! The cases that fail on purpose, and why; and the verdict of a run against them.
//!
//! A listed case must still fail: one that starts passing (or disappears from the data) is
//! reported, so that the list never holds more than the deviations that are real.

use std::fmt;

use super::{Failure, Report, Suite};

/// A case Portcullis deliberately answers differently from the data, with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownDeviation {
    /// The suite the case belongs to.
    pub suite: Suite,
    /// The case id.
    pub id: &'static str,
    /// Why Portcullis differs.
    pub reason: &'static str,
}

/// Every known deviation.
pub const KNOWN_DEVIATIONS: &[KnownDeviation] = &[
    KnownDeviation {
        suite: Suite::Validation,
        id: "serviceentry/derived/unknown-resolution-int",
        reason: "Istio's decoder accepts any integer for an enum (`resolution: 7`) and its webhook \
                 then says \"unsupported resolution type\"; Portcullis rejects unknown enum values \
                 when loading, listing the accepted names, as issue #2 requires. The verdict \
                 (error) agrees, the message differs.",
    },
    KnownDeviation {
        suite: Suite::Analysis,
        id: "authorizationpolicies",
        reason: "auth.AuthorizationPoliciesAnalyzer concerns AuthorizationPolicy, not the four \
                 networking kinds this project covers.",
    },
    KnownDeviation {
        suite: Suite::Analysis,
        id: "istioctl analyze TestRunSpecificAnalyzer",
        reason: "the case describes three istioctl runs with different expectations in one entry \
                 (all analyzers / schema.ValidationAnalyzer.Gateway must fail, \
                 gateway.ConflictingGatewayAnalyzer must pass); each part is covered by other \
                 cases.",
    },
];

/// A run's report judged against [`KNOWN_DEVIATIONS`].
#[derive(Debug)]
pub struct Verdict<'a> {
    /// Failures that are not known deviations.
    pub unexpected: Vec<&'a Failure>,
    /// Known deviations of the suite that did fail, as listed.
    pub known: Vec<&'a Failure>,
    /// Known deviations of the suite that did not fail: fixed, or gone from the data.
    pub no_longer_failing: Vec<&'static KnownDeviation>,
}

impl Verdict<'_> {
    /// Whether the run is as expected: no unexpected failure, every known deviation failed.
    pub fn is_clean(&self) -> bool {
        self.unexpected.is_empty() && self.no_longer_failing.is_empty()
    }
}

impl fmt::Display for Verdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for failure in &self.unexpected {
            writeln!(f, "{failure}")?;
        }
        for failure in &self.known {
            writeln!(f, "KNOWN {}: {}", failure.id, failure.reason)?;
        }
        for deviation in &self.no_longer_failing {
            writeln!(
                f,
                "NO LONGER FAILING {}: listed as a known deviation, but it did not fail; \
                 remove it from KNOWN_DEVIATIONS (examples/src/conformance/known.rs)",
                deviation.id
            )?;
        }
        Ok(())
    }
}

impl Report {
    /// Judges this report, a run of `suite`, against [`KNOWN_DEVIATIONS`].
    pub fn against_known(&self, suite: Suite) -> Verdict<'_> {
        let listed = |id: &str| {
            KNOWN_DEVIATIONS
                .iter()
                .any(|d| d.suite == suite && d.id == id)
        };
        let (known, unexpected) = self.failures.iter().partition(|f| listed(&f.id));
        let no_longer_failing = KNOWN_DEVIATIONS
            .iter()
            .filter(|d| d.suite == suite && !self.failures.iter().any(|f| f.id == d.id))
            .collect();
        Verdict {
            unexpected,
            known,
            no_longer_failing,
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn failure(id: &str) -> Failure {
        Failure {
            id: id.to_owned(),
            reason: "differs".to_owned(),
        }
    }

    #[test]
    fn a_listed_case_that_fails_is_expected() {
        let report = Report {
            passed: 3,
            failures: vec![failure("serviceentry/derived/unknown-resolution-int")],
        };
        let verdict = report.against_known(Suite::Validation);
        assert!(verdict.is_clean(), "{verdict}");
        assert_eq!(verdict.known.len(), 1);
    }

    #[test]
    fn a_listed_case_that_passes_fails_the_verdict() {
        let report = Report {
            passed: 3,
            failures: Vec::new(),
        };
        let verdict = report.against_known(Suite::Validation);
        assert!(!verdict.is_clean());
        assert_eq!(
            verdict.no_longer_failing[0].id,
            "serviceentry/derived/unknown-resolution-int"
        );
        assert!(verdict.to_string().contains("NO LONGER FAILING"));
    }

    #[test]
    fn an_unlisted_failure_or_another_suites_deviation_is_unexpected() {
        let report = Report {
            passed: 3,
            failures: vec![failure("routing-001"), failure("authorizationpolicies")],
        };
        let verdict = report.against_known(Suite::Routing);
        assert_eq!(verdict.unexpected.len(), 2);
        assert!(verdict.no_longer_failing.is_empty());
        assert!(!verdict.is_clean());
    }
}
