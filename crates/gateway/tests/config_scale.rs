//! The document limit: a file of 10,001 documents is refused by default, with an error that
//! names the option, and accepted with the option raised.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use portcullis_gateway::{GatewayBuilder, Identity, Source, check, check_with_max_documents};

/// `n` small ServiceEntries in one file.
fn bundle(n: usize) -> Vec<Source> {
    let mut text = String::with_capacity(n * 160);
    for i in 0..n {
        text.push_str(&format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: se-{i}}}\n\
             spec: {{hosts: [s{i}.example.com], ports: [{{number: 80, name: http, protocol: HTTP}}], resolution: DNS}}\n---\n"
        ));
    }
    vec![Source::Inline {
        name: "bundle.yaml".to_owned(),
        text,
    }]
}

#[test]
fn ten_thousand_and_one_documents_need_the_option_raised() {
    let sources = bundle(10_001);
    let report = check(&sources, &Identity::default()).unwrap_err();
    let text = report.errors_text();
    assert!(
        text.contains(
            "more than 10000 documents in one file; raise the limit with --max-documents"
        ),
        "{text}"
    );

    let built = check_with_max_documents(&sources, &Identity::default(), 10_001)
        .unwrap_or_else(|r| panic!("{}", r.errors_text()));
    assert_eq!(built.documents.len(), 10_001);

    let mut builder = GatewayBuilder::new().files(sources.clone());
    assert!(
        builder
            .check()
            .unwrap_err()
            .errors_text()
            .contains("--max-documents")
    );
    let mut builder = GatewayBuilder::new().files(sources).max_documents(20_000);
    assert_eq!(builder.check().unwrap().documents.len(), 10_001);
}

#[test]
fn exactly_the_limit_loads() {
    let built = check(&bundle(10_000), &Identity::default())
        .unwrap_or_else(|r| panic!("{}", r.errors_text()));
    assert_eq!(built.documents.len(), 10_000);
}

/// scripts/gen-virtualservices.sh's output (N=20) loads, validates and translates.
#[test]
fn generated_scale_scenario_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("portcullis-gen-vs-{}", std::process::id()));
    let status = std::process::Command::new("bash")
        .arg(root.join("scripts/gen-virtualservices.sh"))
        .arg(&dir)
        .env("N", "20")
        .status();
    let Ok(status) = status else {
        eprintln!("no bash: skipped");
        return;
    };
    assert!(status.success());
    let built = check(&[Source::Path(dir.clone())], &Identity::default())
        .unwrap_or_else(|r| panic!("{}", r.errors_text()));
    assert_eq!(built.documents.len(), 22);
    let _ = std::fs::remove_dir_all(&dir);
}
