//! `cargo test` runs the corpus suite: every real Istio document under `../shared/corpus`
//! loads (or fails only as its expectations allow) and round-trips through YAML and JSON.

#![allow(clippy::panic)]

use portcullis_examples::conformance::{run_corpus, shared_dir};

#[test]
fn every_corpus_document_loads_and_round_trips() {
    let Some(shared) = shared_dir() else {
        eprintln!(
            "skipped: ../shared (or $PORTCULLIS_SHARED) is not present beside the repository"
        );
        return;
    };
    let report = match run_corpus(&shared.join("corpus")) {
        Ok(report) => report,
        Err(err) => panic!("corpus suite could not run: {err}"),
    };
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        report.summary()
    );
    assert!(
        report.passed > 500,
        "only {} corpus files ran",
        report.passed
    );
}
