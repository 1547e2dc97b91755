//! Embedding `portcullis-gateway` in your own program: the program owns its tokio runtime,
//! builds the gateway from objects held in memory with the public builder, serves on that
//! runtime, and drains gracefully on Ctrl-C (Istio's drain: `/ready` would fail, requests in
//! flight finish, then the listeners close).
//!
//! ```sh
//! cargo run --example embed-serve -- [LISTEN] [BACKEND]
//! # LISTEN:  where the gateway's port 8080 binds (default 127.0.0.1:8080)
//! # BACKEND: the upstream's address (default 127.0.0.1:9000)
//! curl -i http://127.0.0.1:8080/healthz   # 200 "ok", answered by the gateway itself
//! curl -i http://127.0.0.1:8080/anything  # forwarded to BACKEND
//! ```
//!
//! `examples/tests/embed_serve.rs` runs [`serve`] and [`drain_on`] as this `main` does.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use portcullis_gateway::source::Objects;
use portcullis_gateway::{AccessLog, Gateway, GatewayBuilder, StartError};
use portcullis_model::{Loaded, Loader};

/// The port the configuration's Gateway server declares.
pub const PORT: u16 = 8080;

/// The configuration, built in memory: a Gateway on [`PORT`] for every host, a backend
/// ServiceEntry at `backend`, and a VirtualService answering `/healthz` itself and sending
/// everything else to the backend.
///
/// # Errors
/// The loader's errors, one per line (none for the text here: the test loads it).
pub fn config(backend: SocketAddr) -> Result<Loaded, String> {
    let text = format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {PORT}, name: http, protocol: HTTP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: backend, namespace: istio-system}}
spec:
  hosts: [backend.embed.internal]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: '{ip}', ports: {{http: {port}}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: edge, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [edge]
  http:
  - match: [{{uri: {{exact: /healthz}}}}]
    directResponse: {{status: 200, body: {{string: ok}}}}
  - route: [{{destination: {{host: backend.embed.internal}}}}]
",
        ip = backend.ip(),
        port = backend.port(),
    );
    let loaded = Loader::new().read_str("embed.yaml", &text);
    if !loaded.errors().is_empty() {
        let lines: Vec<String> = loaded.errors().iter().map(ToString::to_string).collect();
        return Err(lines.join("\n"));
    }
    Ok(loaded)
}

/// The gateway as this program runs it: [`config`] held in memory, [`PORT`] bound at
/// `listen`, no admin listener, access log on standard output, a 5 s drain. Tests add their
/// own extension points to it.
///
/// # Errors
/// As [`config`].
pub fn builder(listen: SocketAddr, backend: SocketAddr) -> Result<GatewayBuilder, String> {
    Ok(Gateway::builder()
        .config(Objects::from_loaded(&config(backend)?))
        .admin(None)
        .port_binding(PORT, listen)
        .access_log(AccessLog::Stdout)
        .drain_time(Duration::from_secs(5)))
}

/// Starts `builder` on the caller's runtime and returns once it serves.
///
/// # Errors
/// When the configuration is refused or a listener cannot be bound.
pub async fn serve(builder: GatewayBuilder) -> Result<Gateway, StartError> {
    builder.serve().await
}

/// Waits for `signal`, then drains `gateway` and returns once it has stopped: requests in
/// flight finish, new connections are answered with `connection: close` until the drain time
/// ends or no connection is left.
pub async fn drain_on(gateway: Gateway, signal: impl Future<Output = ()>) {
    signal.await;
    let handle = gateway.handle();
    handle.drain();
    handle.stopped().await;
}

fn address(arg: Option<String>, default: &str) -> Result<SocketAddr, String> {
    let text = arg.unwrap_or_else(|| default.to_owned());
    text.parse()
        .map_err(|e| format!("{text}: not a socket address: {e}"))
}

#[allow(
    dead_code,
    reason = "the embedding test includes this file for its functions, not for main"
)]
fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addresses = address(args.next(), "127.0.0.1:8080")
        .and_then(|listen| Ok((listen, address(args.next(), "127.0.0.1:9000")?)));
    let (listen, backend) = match addresses {
        Ok(addresses) => addresses,
        Err(e) => {
            eprintln!("embed-serve: {e}");
            return ExitCode::from(2);
        }
    };
    // The runtime is the program's; the gateway only spawns tasks on it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("embed-serve: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let started = match builder(listen, backend) {
            Ok(builder) => serve(builder).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let gateway = match started {
            Ok(gateway) => gateway,
            Err(e) => {
                eprintln!("embed-serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("serving on {listen} (backend {backend}); Ctrl-C drains and stops",);
        drain_on(gateway, async {
            // Without a signal handler nothing could stop the gateway gracefully: stop now.
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("embed-serve: cannot listen for Ctrl-C: {e}");
            }
        })
        .await;
        ExitCode::SUCCESS
    })
}
