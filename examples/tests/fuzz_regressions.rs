//! Replays every input the fuzzers found (`fuzz/regressions/<target>/*`) through the same entry
//! points the cargo-fuzz targets call, so CI reproduces each finding without cargo-fuzz.

use std::path::Path;

type Target = fn(&[u8]);

/// The fuzz targets, by the directory name their findings are kept under.
const TARGETS: &[(&str, Target)] = &[
    ("loader", portcullis_model::fuzzing::load),
    ("duration", portcullis_model::fuzzing::duration),
    ("decode", portcullis_model::fuzzing::decode),
    ("validate", portcullis_validate::fuzzing::validate),
    ("host", portcullis_validate::fuzzing::host),
    ("regex", portcullis_validate::fuzzing::regex),
    ("header", portcullis_validate::fuzzing::header),
    ("pipeline", portcullis_translate::fuzzing::pipeline),
    ("matcher", portcullis_route_match::fuzzing::differential),
    ("client_hello", portcullis_tls::fuzzing::client_hello),
    ("rewrite", portcullis_proxy_core::fuzzing::rewrite),
    ("h1_response", portcullis_proxy_core::fuzzing::h1_response),
    ("h1_request", portcullis_proxy_core::fuzzing::h1_request),
    (
        "proxy_protocol",
        portcullis_proxy_core::fuzzing::proxy_protocol,
    ),
    ("path", portcullis_proxy_core::fuzzing::path),
];

#[test]
fn every_fuzz_finding_is_replayed_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".gitkeep") {
                continue;
            }
            if let Ok(data) = std::fs::read(&path) {
                target(&data);
                replayed += 1;
            }
        }
    }
    // The seed findings below keep this test honest even before the fuzzers find anything.
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
}
