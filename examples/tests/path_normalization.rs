//! Issue 15: requests must not reach a route through encoded dot segments. The gateway starts
//! in-process on ephemeral loopback ports with a route on prefix `/public` (and none for
//! `/admin`) in front of an echo upstream, which writes back the request line it received;
//! requests go out as raw bytes, so no client library normalizes them first.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_examples::demo;
use portcullis_gateway::{AccessLog, Gateway, Identity, Source};
use portcullis_proxy_core::path::PathNormalization;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The gateway on a fresh port: `/public` (prefix) and `/open/` (prefix) go to the echo
/// upstream, nothing else has a route.
fn start(name: &str, mode: PathNormalization) -> (Gateway, u16) {
    let upstream: SocketAddr = demo::start_echo_servers(&[(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "public".to_owned(),
        "v1".to_owned(),
    )])
    .unwrap()[0];
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "portcullis-path-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: public, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - match: [{{uri: {{prefix: /public}}}}, {{uri: {{prefix: /open/}}}}]
    route: [{{destination: {{host: public.test}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: public, namespace: default}}
spec:
  hosts: [public.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: {ip}, ports: {{http: {up}}}}}
",
        ip = upstream.ip(),
        up = upstream.port(),
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let options = Gateway::builder()
        .files([Source::Path(dir)])
        .identity(Identity::default())
        .workers(1)
        .admin(None)
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Capture(Arc::new(Mutex::new(Vec::new()))))
        .poll_interval(Duration::from_secs(60))
        .random_seed(7)
        .path_normalization(mode);
    let gw = options.start().unwrap();
    let port = gw.local_addr(80).unwrap().port();
    (gw, port)
}

/// Sends `GET <target>` as raw bytes on a new connection; the status and the body.
async fn raw_get(port: u16, target: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the gateway answers")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The request line the echo upstream received, from its answer.
fn upstream_line(body: &str) -> Option<&str> {
    body.lines().find(|l| l.starts_with("GET "))
}

#[tokio::test]
async fn encoded_dot_segments_do_not_reach_the_prefix_route() {
    let (gw, port) = start("base", PathNormalization::Base);
    // Each of these resolves to /admin, which has no route: 404, nothing forwarded.
    for target in [
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public/%2e./admin",
        "/public/../admin",
        "/public/%2e%2e/admin?x=1",
        "/public/%2e%2e/admin#frag",
    ] {
        let (status, body) = raw_get(port, target.as_bytes()).await;
        assert_eq!(status, 404, "{target}: {body}");
        assert_eq!(upstream_line(&body), None, "{target}: forwarded: {body}");
    }
    // A backslash is a slash.
    let (status, body) = raw_get(port, br"/public\..\admin").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(upstream_line(&body), None, "{body}");
    // A NUL as `%00` cannot be normalized: 400.
    let (status, body) = raw_get(port, b"/public/%00").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(upstream_line(&body), None, "{body}");
    gw.shutdown();
}

#[tokio::test]
async fn the_upstream_receives_the_normalized_path() {
    let (gw, port) = start("forward", PathNormalization::Base);
    for (target, forwarded) in [
        ("/public/x/%2e%2e/y", "GET /public/y HTTP/1.1"),
        ("/admin/%2e%2e/public/a", "GET /public/a HTTP/1.1"),
        (
            "/public/%7e%41/./b/..?q=/../",
            "GET /public/~A/?q=/../ HTTP/1.1",
        ),
        ("/open/%2e/a//b", "GET /open/a//b HTTP/1.1"),
        ("/public#/../admin", "GET /public HTTP/1.1"),
        (r"/admin\..\public\x", "GET /public/x HTTP/1.1"),
    ] {
        let (status, body) = raw_get(port, target.as_bytes()).await;
        assert_eq!(status, 200, "{target}: {body}");
        assert_eq!(upstream_line(&body), Some(forwarded), "{target}: {body}");
    }
    gw.shutdown();
}

#[tokio::test]
async fn modes_from_the_options() {
    let (gw, port) = start("none", PathNormalization::None);
    // Istio's NONE: the raw path is routed and forwarded (the behaviour BASE prevents).
    let (status, body) = raw_get(port, b"/public/%2e%2e/admin").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        upstream_line(&body),
        Some("GET /public/%2e%2e/admin HTTP/1.1")
    );
    gw.shutdown();

    let (gw, port) = start("decode", PathNormalization::DecodeAndMergeSlashes);
    let (status, body) = raw_get(port, b"/open//a%2Fb%5cc").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream_line(&body), Some("GET /open/a/b/c HTTP/1.1"));
    let (status, body) = raw_get(port, b"/public%2f..%2fadmin").await;
    assert_eq!(status, 404, "{body}");
    gw.shutdown();
}

#[tokio::test]
async fn http2_paths_are_normalized_too() {
    let (gw, port) = start("h2c", PathNormalization::Base);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    for (path, status, forwarded) in [
        ("/public/%2e%2e/admin", 404, None),
        ("/public/.%2E/admin", 404, None),
        ("/public/%00", 400, None),
        (
            "/public/x/%2E%2e/y?z",
            200,
            Some("GET /public/y?z HTTP/1.1"),
        ),
    ] {
        let req = http::Request::get(format!("http://shop.example.com:{port}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(upstream_line(&body), forwarded, "{path}: {body}");
    }
    gw.shutdown();
}
