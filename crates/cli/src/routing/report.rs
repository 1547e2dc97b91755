//! Test results: lines (PASS/FAIL per input and a closing `N passed, M failed`), JSON, YAML
//! and JUnit XML.

use serde_json::{Value, json};

use super::Result_;
use crate::output::{Format, print_structured};

fn summary(results: &[Result_]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

pub(crate) fn print(results: &[Result_], format: Format) {
    if format != Format::Log {
        let list: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({
                    "file": r.file,
                    "test": r.test,
                    "input": r.input,
                    "passed": r.passed(),
                    "failures": r.failures.iter().map(|(f, got, want)| json!({"field": f, "got": got, "want": want})).collect::<Vec<_>>(),
                    "decidedBy": r.decided_by,
                    "notes": r.notes,
                })
            })
            .collect();
        let passed = results.iter().filter(|r| r.passed()).count();
        print_structured(
            format,
            &json!({
                "results": list,
                "passed": passed,
                "failed": results.len() - passed,
            }),
        );
        eprintln!("{}", summary(results));
        return;
    }
    for r in results {
        let verdict = if r.passed() { "PASS" } else { "FAIL" };
        if r.input.is_empty() {
            outln!("{verdict} {}: {}", r.file, r.test);
        } else {
            outln!("{verdict} {}: {} [{}]", r.file, r.test, r.input);
        }
        for (field, got, want) in &r.failures {
            if want.is_empty() {
                outln!("    {field}: {got}");
            } else {
                outln!("    {field}: got {got}, want {want}");
            }
        }
        if !r.passed() && !r.decided_by.is_empty() {
            outln!("    decided by {}", r.decided_by);
        }
        for note in &r.notes {
            outln!("    note: {note}");
        }
    }
    outln!("{}", summary(results));
}

/// XML text escaping (attributes and content).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per test file, one test case per input.
pub(crate) fn junit(results: &[Result_]) -> String {
    let mut files: Vec<&str> = Vec::new();
    for r in results {
        if !files.contains(&r.file.as_str()) {
            files.push(&r.file);
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"portcullis test\" tests=\"{}\" failures=\"{failed}\">\n",
        results.len()
    );
    for file in files {
        let suite: Vec<&Result_> = results.iter().filter(|r| r.file == file).collect();
        let suite_failed = suite.iter().filter(|r| !r.passed()).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failed}\">\n",
            escape(file),
            suite.len()
        ));
        for r in suite {
            let name = if r.input.is_empty() {
                r.test.clone()
            } else {
                format!("{} [{}]", r.test, r.input)
            };
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape(file),
                escape(&name)
            ));
            if r.passed() {
                out.push_str("/>\n");
                continue;
            }
            let message: Vec<String> = r
                .failures
                .iter()
                .map(|(f, got, want)| {
                    if want.is_empty() {
                        format!("{f}: {got}")
                    } else {
                        format!("{f}: got {got}, want {want}")
                    }
                })
                .collect();
            let mut detail = message.join("\n");
            if !r.decided_by.is_empty() {
                detail.push_str(&format!("\ndecided by {}", r.decided_by));
            }
            for note in &r.notes {
                detail.push_str(&format!("\nnote: {note}"));
            }
            out.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                escape(&message.join("; ")),
                escape(&detail)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
