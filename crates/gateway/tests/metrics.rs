//! The gateway's metrics through `prometheus-client`: counters that stay monotonic across
//! configuration swaps, label values escaped by the encoder, and the metrics shown in a
//! registry the embedder supplies, next to the embedder's own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_gateway::prometheus_client::encoding::text::encode;
use portcullis_gateway::prometheus_client::metrics::counter::Counter;
use portcullis_gateway::prometheus_client::registry::Registry;
use portcullis_gateway::source;
use portcullis_gateway::{AccessLog, Gateway, GatewayBuilder};
use portcullis_model::{Loaded, Loader};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// An upstream answering `ok`.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|_: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A Gateway on port 80 whose one route, named `route` (YAML), sends everything to
/// `shop.test`, whose endpoint is `upstream`.
fn config(upstream: SocketAddr, route: &str) -> Loaded {
    let text = format!(
        r"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shop, namespace: istio-system}}
spec:
  hosts: [shop.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: {}, ports: {{http: {}}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - name: {route}
    route:
    - destination: {{host: shop.test}}
",
        upstream.ip(),
        upstream.port()
    );
    let loaded = Loader::new().read_str("shop.yaml", &text);
    assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());
    loaded
}

fn builder() -> GatewayBuilder {
    Gateway::builder()
        .workers(1)
        .admin(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Off)
}

/// One HTTP/1.1 request on a new connection; the status.
async fn get(addr: SocketAddr) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"))
}

/// The value of the one sample of `metric` (its name up to the labels) whose line holds
/// every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> u64 {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|want| l.contains(want))
        })
        .collect();
    assert_eq!(lines.len(), 1, "{metric} {labels:?} in:\n{text}");
    lines[0].rsplit(' ').next().unwrap().parse().unwrap()
}

/// The admin listener's `/stats/prometheus`.
async fn scrape(admin: SocketAddr) -> String {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /stats/prometheus HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

async fn swapped_to(gw: &Gateway, generation: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.generation() != generation {
        assert!(Instant::now() < deadline, "no swap to {generation}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_stay_monotonic_across_a_configuration_swap() {
    let up = upstream().await;
    let (sender, pushed) = source::channel(config(up, "shop").into_documents());
    let gw = builder().config(pushed).serve().await.unwrap();
    let addr = gw.local_addr(80).unwrap();
    let admin = gw.admin_addr().unwrap();
    for _ in 0..3 {
        assert_eq!(get(addr).await, 200);
    }
    let before = scrape(admin).await;
    let ok = ["route=\"shop\"", "response_code=\"200\""];
    assert_eq!(sample(&before, "portcullis_requests_total", &ok), 3);
    let upstream_ok = [
        "cluster=\"outbound|80||shop.test\"",
        "response_code=\"200\"",
    ];
    assert_eq!(
        sample(
            &before,
            "portcullis_cluster_upstream_rq_total",
            &upstream_ok
        ),
        3
    );
    assert_eq!(sample(&before, "portcullis_config_swaps_total", &[]), 0);
    assert_eq!(sample(&before, "portcullis_downstream_cx_total", &[]), 3);

    // Another configuration, the cluster's endpoint moved: the same counters go on.
    sender.send(config(upstream().await, "shop").into_documents());
    swapped_to(&gw, 2).await;
    for _ in 0..2 {
        assert_eq!(get(addr).await, 200);
    }
    let after = scrape(admin).await;
    assert_eq!(sample(&after, "portcullis_config_swaps_total", &[]), 1);
    assert_eq!(sample(&after, "portcullis_requests_total", &ok), 5);
    assert_eq!(
        sample(&after, "portcullis_cluster_upstream_rq_total", &upstream_ok),
        5
    );
    let latency = ["cluster=\"outbound|80||shop.test\"", "le=\"+Inf\""];
    assert_eq!(
        sample(
            &after,
            "portcullis_cluster_upstream_rq_time_seconds_bucket",
            &latency
        ),
        5
    );
    assert_eq!(sample(&after, "portcullis_downstream_cx_total", &[]), 5);
    // The API's exposition is the admin listener's.
    assert_eq!(sample(&gw.metrics(), "portcullis_requests_total", &ok), 5);
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_values_are_escaped() {
    let up = upstream().await;
    // A route named `a"b\c`, a newline, `d`.
    let gw = builder()
        .config(source::Objects::from_loaded(&config(up, r#""a\"b\\c\nd""#)))
        .serve()
        .await
        .unwrap();
    assert_eq!(get(gw.local_addr(80).unwrap()).await, 200);
    let text = scrape(gw.admin_addr().unwrap()).await;
    let escaped = r#"route="a\"b\\c\nd""#;
    assert_eq!(
        sample(
            &text,
            "portcullis_requests_total",
            &[escaped, "response_code=\"200\""]
        ),
        1
    );
    // No sample line was broken by the newline.
    assert!(
        text.lines()
            .all(|l| l.starts_with('#') || l.starts_with("portcullis_")),
        "{text}"
    );
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedders_registry_shows_the_gateways_metrics_next_to_its_own() {
    let up = upstream().await;
    let mut registry = Registry::default();
    let logins: Counter = Counter::default();
    registry.register("logins", "Logins seen by the embedder.", logins.clone());
    let gw = builder()
        // No admin listener: the embedder's registry is the only exposition.
        .admin(None)
        .config(source::Objects::from_loaded(&config(up, "shop")))
        .metrics_registry(registry.sub_registry_with_prefix("edge"))
        .serve()
        .await
        .unwrap();
    for _ in 0..4 {
        assert_eq!(get(gw.local_addr(80).unwrap()).await, 200);
    }
    logins.inc_by(2);

    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    assert_eq!(sample(&text, "logins_total", &[]), 2);
    assert_eq!(
        sample(
            &text,
            "edge_portcullis_requests_total",
            &["route=\"shop\"", "response_code=\"200\""]
        ),
        4
    );
    assert_eq!(
        sample(
            &text,
            "edge_portcullis_cluster_upstream_rq_total",
            &[
                "cluster=\"outbound|80||shop.test\"",
                "response_code=\"200\""
            ]
        ),
        4
    );
    assert!(
        text.contains("# TYPE edge_portcullis_cluster_upstream_rq_time_seconds histogram"),
        "{text}"
    );
    // OpenMetrics: one exposition, ended once.
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    gw.shutdown();
}
