//! `portcullis`: Istio networking configuration checked offline, in CI.
//!
//! * `portcullis validate PATH…`: Istio's admission-webhook validation, each problem with its
//!   file, line, column and field path.
//! * `portcullis analyze PATH…`: the `istioctl analyze` analyzers (IST codes) and Portcullis'
//!   own (PCS codes), printed as istioctl prints them.
//! * `portcullis test -t TESTS… CONFIG…`: routing tests in istio-config-validator's format
//!   (`testCases:`) or Envoy's router check tool format (`tests:`), answered by simulating the
//!   proxy Istio would configure.
//! * `portcullis explain 'GET http://host/path' PATH…`: the decision trace of one request.
//! * `portcullis dump listeners|routes|clusters|endpoints PATH…`: the configuration a gateway
//!   or sidecar would get, in the spirit of `istioctl proxy-config`.
//!
//! Exit statuses follow istioctl's: 64 incorrect usage, 65 input that cannot be read or parsed,
//! 79 analysis found issues at or above the failure threshold, 1 validation errors or failed
//! tests, 0 otherwise.
#![forbid(unsafe_code)]

/// `println!` that ignores a closed standard output (`portcullis … | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed standard output.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod analyze;
mod context;
mod dump;
mod explain;
mod input;
mod output;
mod routing;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// Offline checks of Istio networking configuration: validation, analysis, routing tests,
/// request traces and proxy configuration dumps.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
struct Common {
    /// The namespace of objects that name none.
    #[arg(long, value_name = "NS", default_value = "default")]
    default_namespace: String,
    /// The most documents one file may hold, counting a `kind: List` and each of its items;
    /// a larger file is refused.
    #[arg(long, value_name = "N", default_value_t = portcullis_model::DEFAULT_MAX_DOCUMENTS)]
    max_documents: usize,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Log)]
    output: Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validates resources as Istio's admission webhook does.
    Validate {
        /// Files and directories (searched recursively for .yaml, .yml, .json); `-` reads
        /// standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Runs the analyzers of `istioctl analyze` (IST codes) and Portcullis' own (PCS codes).
    Analyze(analyze::AnalyzeArgs),
    /// Runs routing tests (istio-config-validator's `testCases:` or Envoy's router check
    /// tool `tests:`) against the configuration.
    Test(routing::TestArgs),
    /// Explains how one request is routed: listener, filter chain, route configuration,
    /// virtual host, the routes tried and the decision.
    Explain(explain::ExplainArgs),
    /// Prints what a gateway or sidecar would be configured with.
    Dump(dump::DumpArgs),
}

/// How a run ends, and the exit status it maps to.
#[derive(Debug)]
enum Outcome {
    /// Success (0).
    Ok,
    /// Validation errors or failed tests (1).
    Failed,
    /// Analysis found issues at or above the failure threshold (79).
    Issues,
    /// Incorrect usage (64).
    Usage(String),
    /// Input that cannot be read or parsed (65).
    Input(String),
}

impl Outcome {
    fn code(&self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::Issues => 79,
            Self::Usage(_) => 64,
            Self::Input(_) => 65,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 64 } else { 0 });
        }
    };
    let outcome = match cli.command {
        Command::Validate { paths, common } => validate::run(&paths, &common),
        Command::Analyze(args) => analyze::run(&args),
        Command::Test(args) => routing::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Dump(args) => dump::run(&args),
    };
    match &outcome {
        Outcome::Usage(msg) => eprintln!("error: {msg}"),
        Outcome::Input(msg) => eprintln!("{msg}"),
        _ => {}
    }
    ExitCode::from(outcome.code())
}
