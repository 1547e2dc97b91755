//! `cargo test` runs the corpus suite: every real Istio document of the corpus that
//! [`data_dir`] finds (`../shared/corpus` or `$PORTCULLIS_SHARED` when present, else the
//! repository's `testdata/corpus`) loads (or fails only as its expectations allow) and
//! round-trips through YAML and JSON. Missing data fails the test.

#![allow(clippy::panic)]

use portcullis_examples::conformance::{data_dir, run_corpus};

#[test]
fn every_corpus_document_loads_and_round_trips() {
    let data = data_dir().unwrap_or_else(|err| panic!("{err}"));
    let report = run_corpus(&data.path.join("corpus"))
        .unwrap_or_else(|err| panic!("corpus suite could not run: {err}"));
    println!("corpus from {data}: {}", report.summary());
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
