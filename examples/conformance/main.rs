//! The conformance runner.
//!
//! ```text
//! cargo run --release --example conformance -- [--known-deviations] <validation|routing|analysis|corpus> <path>...
//! ```
//!
//! Prints one line per failing case and ends with `N passed, M failed`; exits non-zero when a
//! case fails. With `--known-deviations` (what CI runs), the cases listed in
//! `examples/src/conformance/known.rs` are printed as `KNOWN` and must fail: the run exits
//! non-zero on any other failure, and on a listed case that no longer fails.

use std::path::PathBuf;
use std::process::ExitCode;

use portcullis_examples::conformance::{Suite, run};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let usage =
        "usage: conformance [--known-deviations] <validation|routing|analysis|corpus> <path>...";
    let known_deviations = args.next_if(|a| a == "--known-deviations").is_some();
    let Some(suite) = args.next().as_deref().and_then(Suite::from_name) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let report = match run(suite, &paths) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let clean = if known_deviations {
        let verdict = report.against_known(suite);
        print!("{verdict}");
        verdict.is_clean()
    } else {
        for failure in &report.failures {
            println!("{failure}");
        }
        report.failures.is_empty()
    };
    println!("{}", report.summary());
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
