//! The conformance runner.
//!
//! ```text
//! cargo run --release --example conformance -- <validation|routing|analysis|corpus> <path>...
//! ```
//!
//! Prints one line per failing case and ends with `N passed, M failed`; exits non-zero when a
//! case fails.

use std::path::PathBuf;
use std::process::ExitCode;

use portcullis_examples::conformance::{Suite, run};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let usage = "usage: conformance <validation|routing|analysis|corpus> <path>...";
    let Some(suite) = args.next().as_deref().and_then(Suite::from_name) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    match run(suite, &paths) {
        Ok(report) => {
            for failure in &report.failures {
                println!("{failure}");
            }
            println!("{}", report.summary());
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
