//! The `portcullis` binary, run as CI would run it: every subcommand, output format and exit
//! status, on the fixtures under `tests/fixtures`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The output of one run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const GATEWAY: &str = "tests/fixtures/gateway";
const COMBINED: &str = "tests/fixtures/combined";

// === usage ===

#[test]
fn usage_errors_exit_64() {
    assert_eq!(run(&[]).code, 64);
    assert_eq!(run(&["frobnicate"]).code, 64);
    assert_eq!(run(&["test", GATEWAY]).code, 64, "test needs -t");
    assert_eq!(run(&["validate", "-o", "xml", GATEWAY]).code, 64);
    let r = run(&["dump", "bogus", GATEWAY]);
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("unknown dump \"bogus\""), "{}", r.stderr);
    assert_eq!(run(&["--help"]).code, 0);
}

#[test]
fn unreadable_input_exits_65() {
    assert_eq!(run(&["validate", "tests/fixtures/nope"]).code, 65);
    assert_eq!(run(&["analyze", "tests/fixtures/nope"]).code, 65);
    assert_eq!(
        run(&["test", "-t", "tests/fixtures/nope", GATEWAY]).code,
        65
    );
}

// === validate ===

#[test]
fn validate_reports_file_line_column_and_path() {
    let r = run(&["validate", "tests/fixtures/invalid"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        "tests/fixtures/invalid/vs.yaml:10:7: error: VirtualService default/reviews: spec.http[0].route[0].weight: weight -1 < 0\n"
    );
    assert!(r.stderr.contains("1 errors, 0 warnings"), "{}", r.stderr);
}

#[test]
fn validate_fills_the_default_namespace() {
    let r = run(&[
        "validate",
        "--default-namespace",
        "bookinfo",
        "tests/fixtures/invalid",
    ]);
    assert!(
        r.stdout.contains("VirtualService bookinfo/reviews"),
        "{}",
        r.stdout
    );
}

#[test]
fn validate_json_and_yaml() {
    let r = run(&["validate", "-o", "json", "tests/fixtures/invalid"]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["line"], 10);
    assert_eq!(v[0]["column"], 7);
    assert_eq!(v[0]["severity"], "error");
    assert_eq!(v[0]["path"], "spec.http[0].route[0].weight");
    let r = run(&["validate", "-o", "yaml", "tests/fixtures/invalid"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("path: spec.http[0].route[0].weight"),
        "{}",
        r.stdout
    );
}

#[test]
fn validate_accepts_valid_configuration_and_stdin() {
    let r = run(&["validate", GATEWAY]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/invalid/vs.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let r = run_with_stdin(&["validate", "-"], Some(&text));
    assert_eq!(r.code, 1);
    assert!(r.stdout.starts_with("-:10:7: error:"), "{}", r.stdout);
}

#[test]
fn validate_parse_errors_exit_65() {
    let r = run(&["validate", "tests/fixtures/broken"]);
    assert_eq!(r.code, 65);
    assert!(
        r.stdout
            .contains("tests/fixtures/broken/bad.yaml:11:13: spec.servers[0].tls.mode: unknown variant `SIMPL`"),
        "{}",
        r.stdout
    );
}

// === analyze ===

#[test]
fn analyze_prints_as_istioctl_and_exits_79() {
    let r = run(&["analyze", "tests/fixtures/analyze"]);
    assert_eq!(r.code, 79, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        "Error [IST0101] (VirtualService reviews.default tests/fixtures/analyze/vs.yaml:7) Referenced gateway not found: \"missing-gateway\"\n\
         Error [IST0101] (VirtualService reviews.default tests/fixtures/analyze/vs.yaml:10) Referenced host not found: \"reviews\"\n\
         Warning [IST0132] (VirtualService reviews.default tests/fixtures/analyze/vs.yaml:7) one or more host [reviews.example.com] defined in VirtualService default/reviews not found in Gateway missing-gateway.\n"
    );
    assert!(r.stderr.contains("Analyzers found issues"), "{}", r.stderr);
}

#[test]
fn analyze_json_has_istioctl_shape() {
    let r = run(&["analyze", "-o", "json", "tests/fixtures/analyze"]);
    assert_eq!(r.code, 79);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let first = v[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "code",
            "documentationUrl",
            "level",
            "message",
            "origin",
            "reference"
        ]
    );
    assert_eq!(first["origin"], "VirtualService reviews.default");
    assert_eq!(first["reference"], "tests/fixtures/analyze/vs.yaml:7");
    let r = run(&["analyze", "-o", "yaml", "tests/fixtures/analyze"]);
    assert!(r.stdout.contains("code: IST0101"), "{}", r.stdout);
}

#[test]
fn analyze_thresholds_and_suppressions() {
    // Suppressing both errors (wildcard) leaves a warning: below the default threshold.
    let r = run(&[
        "analyze",
        "--suppress",
        "IST0101=VirtualService *.default",
        "tests/fixtures/analyze",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("IST0101"));
    assert!(r.stdout.contains("IST0132"));
    let r = run(&[
        "analyze",
        "-S",
        "IST0101=VirtualService reviews.default",
        "--failure-threshold",
        "Warning",
        "tests/fixtures/analyze",
    ]);
    assert_eq!(r.code, 79);
    let r = run(&[
        "analyze",
        "--output-threshold",
        "error",
        "tests/fixtures/analyze",
    ]);
    assert!(!r.stdout.contains("IST0132"), "{}", r.stdout);
    assert_eq!(r.code, 79);
    assert_eq!(
        run(&["analyze", "-S", "IST0101", "tests/fixtures/analyze"]).code,
        64
    );
}

#[test]
fn analyze_reports_each_message_once() {
    let r = run(&["analyze", GATEWAY, "tests/fixtures/analyze"]);
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    let n = lines.len();
    lines.dedup();
    assert_eq!(lines.len(), n, "{}", r.stdout);
}

// === test ===

#[test]
fn test_runs_both_formats_and_summarises() {
    let r = run(&[
        "test",
        "-t",
        "tests/fixtures/gateway/tests.yaml",
        "-t",
        "tests/fixtures/gateway/envoy-tests.yaml",
        GATEWAY,
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().last(), Some("17 passed, 0 failed"));
    assert!(r.stdout.contains(
        "PASS tests/fixtures/gateway/envoy-tests.yaml: redirect [GET shop.example.com/old]\n"
    ));
    // The wildcard host is where istio-config-validator's exact host equality differs.
    assert!(
        r.stdout
            .contains("note: istio-config-validator would use no rule"),
        "{}",
        r.stdout
    );
}

#[test]
fn test_failures_name_the_field_and_exit_1() {
    let r = run(&[
        "test",
        "-t",
        "tests/fixtures/gateway/failing-tests.yaml",
        GATEWAY,
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout.lines().last(), Some("0 passed, 2 failed"));
    assert!(r.stdout.contains(
        "FAIL tests/fixtures/gateway/failing-tests.yaml: this expectation is wrong [GET shop.example.com/api/x]\n    route: got [{\"destination\":{\"host\":\"api\",\"port\":{\"number\":8080}}}], want [{\"destination\":{\"host\":\"web\"}}]\n    decided by VirtualService shop.shop spec.http[0].match[0] (tests/fixtures/gateway/config.yaml:27)"
    ), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("    cluster_name: got \"outbound|80||web.shop.svc.cluster.local\""),
        "{}",
        r.stdout
    );
}

#[test]
fn test_directory_holding_tests_and_configuration() {
    let r = run(&["test", "-t", COMBINED, COMBINED]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().last(), Some("5 passed, 0 failed"));
    // Istio matches header names case-insensitively; that tool does not.
    assert!(
        r.stdout.contains("header names are case-insensitive [GET reviews/ End-User=jason]\n    note: istio-config-validator would use reviews.bookinfo spec.http[1]"),
        "{}",
        r.stdout
    );
}

#[test]
fn test_writes_junit_and_json() {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("report.xml");
    let r = run(&[
        "test",
        "-t",
        "tests/fixtures/gateway/failing-tests.yaml",
        "--junit",
        junit.to_str().unwrap(),
        "-o",
        "json",
        GATEWAY,
    ]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["passed"], 0);
    assert_eq!(v["failed"], 2);
    assert_eq!(v["results"][1]["failures"][0]["field"], "cluster_name");
    assert_eq!(r.stderr.trim(), "0 passed, 2 failed");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites name=\"portcullis test\" tests=\"2\" failures=\"2\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"cluster_name: got"),
        "{xml}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let r = run(&["test", "-t", COMBINED, "-o", "yaml", COMBINED]);
    assert!(r.stdout.contains("passed: 5"), "{}", r.stdout);
}

#[test]
fn test_delegation_is_checked_against_the_delegate_rule() {
    let r = run(&["test", "-t", "tests/fixtures/gateway/tests.yaml", GATEWAY]);
    assert!(
        r.stdout
            .contains("PASS tests/fixtures/gateway/tests.yaml: the delegate answers admin users"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("PASS tests/fixtures/gateway/tests.yaml: the rest of admin is closed"),
        "{}",
        r.stdout
    );
}

// === explain ===

#[test]
fn explain_traces_the_decision() {
    let r = run(&[
        "explain",
        "GET http://shop.example.com/admin/settings",
        GATEWAY,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = "request: GET http://shop.example.com/admin/settings
proxy: gateway istio-system/istio=ingressgateway, port 80
listener: 0.0.0.0_80
filter chain: http.80
route configuration: http.80
virtual host: *.example.com:80 (chosen by suffix wildcard *.example.com)
  route #0 \"api\" skipped: path prefix /api/ did not match /admin/settings [VirtualService shop.shop spec.http[0].match[0] (tests/fixtures/gateway/config.yaml:27)]
  route #1 \"canary\" skipped: header x-canary: missing [VirtualService shop.shop spec.http[1].match[0] (tests/fixtures/gateway/config.yaml:33)]
  route #2 \"old\" skipped: path exact /old did not match /admin/settings [VirtualService shop.shop spec.http[2].match[0] (tests/fixtures/gateway/config.yaml:39)]
  route #3 \"admin-users\" skipped: path prefix /admin/users did not match /admin/settings [VirtualService shop.shop spec.http[3] (tests/fixtures/gateway/config.yaml:41) delegating to VirtualService admin.shop spec.http[0] (tests/fixtures/gateway/config.yaml:56)]
route: \"admin-closed\" from VirtualService shop.shop spec.http[3] (tests/fixtures/gateway/config.yaml:41) delegating to VirtualService admin.shop spec.http[1] (tests/fixtures/gateway/config.yaml:61)
decision: direct response 403
";
    assert_eq!(r.stdout, expected);
}

#[test]
fn explain_mesh_view_with_headers_as_json() {
    let r = run(&[
        "explain",
        "--mesh",
        "--from",
        "bookinfo",
        "http://reviews/r",
        "-H",
        "end-user: jason",
        "-o",
        "json",
        COMBINED,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["proxy"], "mesh bookinfo");
    assert_eq!(
        v["decision"],
        "forward to outbound|80|v2|reviews.bookinfo.svc.cluster.local as reviews/r"
    );
    assert_eq!(run(&["explain", "not a url", COMBINED]).code, 64);
}

#[test]
fn explain_gateway_selector_and_port() {
    let r = run(&[
        "explain",
        "--gateway",
        "istio-system/istio=ingressgateway",
        "--port",
        "80",
        "http://a.example.com/old",
        GATEWAY,
    ]);
    assert!(
        r.stdout
            .ends_with("decision: redirect 301 to http://a.example.com/new\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn explain_https_goes_to_the_https_server() {
    let r = run(&["explain", "https://shop.example.com/api/x", GATEWAY]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("proxy: gateway istio-system/istio=ingressgateway, port 443 over TLS (SNI shop.example.com)\nlistener: 0.0.0.0_443\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.ends_with("decision: forward to outbound|8080||api.shop.svc.cluster.local as shop.example.com/v2/x\n"),
        "{}",
        r.stdout
    );
}

// === dump ===

#[test]
fn dump_tables_and_json() {
    let r = run(&["dump", "routes", GATEWAY]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("NAME "), "{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("http.80 ")
            && l.contains(" *.example.com:80 ")
            && l.contains(" /old ")
            && l.ends_with(" shop.shop")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("https.443.https.public.istio-system"),
        "{}",
        r.stdout
    );
    let r = run(&[
        "dump",
        "listeners",
        "--mesh",
        "--from",
        "bookinfo",
        COMBINED,
    ]);
    assert!(
        r.stdout
            .contains("0.0.0.0       80       ALL       Route: 80"),
        "{}",
        r.stdout
    );
    let r = run(&["dump", "clusters", "-o", "json", GATEWAY]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["clusters"].as_array().is_some_and(|c| !c.is_empty()),
        "{v}"
    );
    let r = run(&["dump", "endpoints", GATEWAY]);
    assert!(r.stdout.starts_with("ENDPOINT"), "{}", r.stdout);
}
