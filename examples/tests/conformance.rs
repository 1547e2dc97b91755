//! `cargo test` runs every conformance suite on the data [`data_dir`] finds (`../shared/` or
//! `$PORTCULLIS_SHARED` when present, else the repository's `testdata/`). A case may fail only
//! if it is listed in `examples/src/conformance/known.rs` with the reason Portcullis
//! deliberately differs; a new failure, or a listed case that starts passing, fails the test.
//! Missing data fails too: nothing here is ever skipped.

#![allow(clippy::panic)]

use portcullis_examples::conformance::{Suite, data_dir, run};

fn check(suite: Suite, file: &str) {
    let data = data_dir().unwrap_or_else(|err| panic!("{err}"));
    let path = data.path.join("conformance").join(file);
    let report = run(suite, std::slice::from_ref(&path)).unwrap_or_else(|err| panic!("{err}"));
    let verdict = report.against_known(suite);
    println!(
        "conformance {file} from {data}: {}, {} of them known deviations",
        report.summary(),
        verdict.known.len()
    );
    assert!(verdict.is_clean(), "{verdict}{}", report.summary());
    assert!(report.passed > 0, "{}: no case ran", path.display());
}

#[test]
fn validation_suite_passes() {
    check(Suite::Validation, "validation.yaml");
}

#[test]
fn analysis_suite_passes() {
    check(Suite::Analysis, "analysis.yaml");
}

#[test]
fn routing_suite_passes() {
    check(Suite::Routing, "routing.yaml");
}

/// The sidecar (`mesh`) view. The file lives only in the repository's `testdata/` (the shared
/// reference data does not have it), so it is read from there whatever [`data_dir`] finds.
#[test]
fn routing_mesh_suite_passes() {
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/conformance/routing-mesh.yaml"
    ));
    let report = run(Suite::Routing, &[path.to_path_buf()]).unwrap_or_else(|err| panic!("{err}"));
    let verdict = report.against_known(Suite::Routing);
    println!(
        "conformance routing-mesh.yaml: {}, {} of them known deviations",
        report.summary(),
        verdict.known.len()
    );
    assert!(verdict.is_clean(), "{verdict}{}", report.summary());
    assert!(report.passed > 0, "{}: no case ran", path.display());
}
