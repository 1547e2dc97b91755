//! A server loop of its own around `portcullis_gateway::forward`: it accepts connections with
//! hyper itself and hands each request to the gateway's request path, against a snapshot built
//! from configuration objects made in memory. Nothing else of the gateway runs: no listeners,
//! no watcher, no admin.
//!
//! ```sh
//! cargo run --example embed-own-loop -- 127.0.0.1:9090
//! curl -i http://127.0.0.1:8080/anything    # answered by the upstream at 127.0.0.1:9090
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use portcullis_gateway::source::Objects;
use portcullis_gateway::{
    AccessLog, Downstream, Identity, RespBody, Snapshot, SnapshotBuilder, Worker, forward,
};
use portcullis_model::{Gateway, Object, Resource, ServiceEntry, VirtualService};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// The Gateway server port the loop serves as.
pub const PORT: u16 = 8080;

/// The configuration: a Gateway on port 8080 for every host, a VirtualService sending every
/// request to `upstream.test`, and a ServiceEntry saying that `upstream.test` is `upstream`.
pub fn objects(upstream: SocketAddr) -> Result<Vec<Object>, serde_json::Error> {
    let gateway: Resource<Gateway> = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "istio-system"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [{"port": {"number": PORT, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
        },
    }))?;
    let route: Resource<VirtualService> = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "upstream", "namespace": "istio-system"},
        "spec": {
            "hosts": ["*"],
            "gateways": ["edge"],
            "http": [{"route": [{"destination": {"host": "upstream.test"}}]}],
        },
    }))?;
    let service: Resource<ServiceEntry> = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "upstream", "namespace": "istio-system"},
        "spec": {
            "hosts": ["upstream.test"],
            "location": "MESH_EXTERNAL",
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "resolution": "STATIC",
            "endpoints": [{"address": upstream.ip().to_string(), "ports": {"http": upstream.port()}}],
        },
    }))?;
    Ok(vec![
        Object::Gateway(gateway),
        Object::VirtualService(route),
        Object::ServiceEntry(service),
    ])
}

/// Checks and builds the snapshot the loop serves.
pub async fn snapshot(upstream: SocketAddr) -> Result<Snapshot, Box<dyn std::error::Error>> {
    let mut source = Objects::from_objects(objects(upstream)?);
    let builder = SnapshotBuilder::from_source(&mut source, &Identity::default())
        .map_err(|report| report.errors_text())?;
    Ok(builder.build().await?)
}

/// Serves one accepted connection: every request goes through `forward`.
pub async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    snapshot: Snapshot,
    worker: Arc<Worker>,
) {
    let service = service_fn(move |req: Request<Incoming>| {
        let (snapshot, worker) = (snapshot.clone(), Arc::clone(&worker));
        async move {
            let from = Downstream::new(PORT, remote);
            Ok::<Response<RespBody>, Infallible>(forward(&snapshot, &worker, &from, req).await)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        eprintln!("connection from {remote}: {e}");
    }
}

/// Accepts connections on `listener` forever.
pub async fn serve(
    listener: TcpListener,
    snapshot: Snapshot,
    worker: Arc<Worker>,
) -> std::io::Result<()> {
    loop {
        let (stream, remote) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            remote,
            snapshot.clone(),
            Arc::clone(&worker),
        ));
    }
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9090".to_owned())
        .parse()?;
    let snapshot = snapshot(upstream).await?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], PORT))).await?;
    println!(
        "serving on {}, forwarding to {upstream}",
        listener.local_addr()?
    );
    serve(listener, snapshot, Worker::new(AccessLog::Stdout)).await?;
    Ok(())
}
