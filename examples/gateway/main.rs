//! `cargo run --release --example gateway -- [OPTIONS] [PATH...]`: the example gateway.
//! Without PATH it serves the built-in demo. See `examples/gateway/README.md`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;

use portcullis_examples::demo;
use portcullis_gateway::{Source, cli};

/// mimalloc: the request path's many small, short-lived allocations cost about a third less CPU
/// per request than with glibc malloc (scripts/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    if cli.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    // The gateway's diagnostics, on standard error.
    let _ = tracing::subscriber::set_global_default(cli::StderrLog);
    let demo_mode = cli.is_demo();
    let mut gateway = cli.gateway;
    if demo_mode {
        gateway = gateway.files([Source::Inline {
            name: "demo.yaml".to_owned(),
            text: demo::DEMO_YAML.to_owned(),
        }]);
    }

    if cli.check || cli.dump.is_some() {
        return match gateway.check() {
            Ok(built) => {
                for p in &built.report.problems {
                    eprintln!("{p}");
                }
                if let Some(kind) = cli.dump {
                    print!("{}", portcullis_gateway::dump_text(&built, kind));
                } else {
                    println!(
                        "configuration valid: {} documents, {} listeners, {} route configurations, {} clusters",
                        built.report.documents,
                        built.plan.listeners.len(),
                        built.plan.route_configs.len(),
                        built.plan.clusters.len()
                    );
                }
                // The process ends here: freeing a large configuration piece by piece would
                // only delay the answer.
                std::mem::forget(built);
                ExitCode::SUCCESS
            }
            Err(report) => {
                for p in &report.problems {
                    eprintln!("{p}");
                }
                let errors = report.problems.iter().filter(|p| p.is_error).count();
                eprintln!("configuration invalid: {errors} error(s)");
                ExitCode::FAILURE
            }
        };
    }

    let mut ca_file = None;
    if demo_mode {
        let specs: Vec<(SocketAddr, String, String)> = demo::ECHO_SERVICES
            .iter()
            .map(|(port, s, v)| {
                (
                    SocketAddr::from(([127, 0, 0, 1], *port)),
                    (*s).to_owned(),
                    (*v).to_owned(),
                )
            })
            .collect();
        if let Err(e) = demo::start_echo_servers(&specs) {
            eprintln!("error: cannot start the demo upstreams: {e}");
            return ExitCode::FAILURE;
        }
        match demo::credentials() {
            Ok((store, pem)) => {
                gateway = gateway.credential_store(store);
                let path = std::env::temp_dir().join("portcullis-demo-cert.pem");
                if std::fs::write(&path, pem).is_ok() {
                    ca_file = Some(path.display().to_string());
                }
            }
            Err(e) => {
                eprintln!("error: cannot generate the demo certificate: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let workers = gateway.worker_count();
    let announce = |listening: &[SocketAddr], admin: Option<SocketAddr>| {
        let addrs: Vec<String> = listening.iter().map(ToString::to_string).collect();
        eprintln!(
            "portcullis gateway: {workers} worker(s), listening on {}{}",
            addrs.join(", "),
            admin
                .map(|a| format!(", admin on http://{a}/"))
                .unwrap_or_default()
        );
        if demo_mode {
            eprintln!("\n{}", demo::curl_commands(ca_file.as_deref()));
        }
    };
    // One worker: the whole gateway on this thread (see `GatewayBuilder::serve_on_this_thread`).
    // Either way the gateway drains on SIGTERM or SIGINT, then returns.
    if workers <= 1 {
        return match gateway.serve_on_this_thread(announce) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let gw = match gateway.start() {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    announce(&gw.listening(), gw.admin_addr());
    gw.wait();
    ExitCode::SUCCESS
}
