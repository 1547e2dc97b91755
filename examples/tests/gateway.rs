//! The example gateway, started in-process on ephemeral loopback ports in front of local echo
//! upstreams: routing, redirects, rewrites, weights, TLS (mTLS refusal, passthrough,
//! origination), upgrades, limits, failures and live configuration swaps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_examples::demo;
use portcullis_gateway::{
    AccessLog, Gateway, GatewayBuilder, Identity, Limits, Lookup, Resolver, Source,
};
use portcullis_proxy_core::rt::{RandomSource as _, SplitMix64};
use portcullis_proxy_core::{action::pick_by_weight, h1};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Waits until `done` holds, checking every 20 ms, for at most 10 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port nothing listens on: for upstreams that must refuse connections.
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-gateway-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Echo upstreams on ephemeral ports: `(service, version)` → address.
fn echoes(specs: &[(&str, &str)]) -> Vec<SocketAddr> {
    let specs: Vec<_> = specs
        .iter()
        .map(|(s, v)| {
            (
                SocketAddr::from(([127, 0, 0, 1], 0)),
                (*s).to_owned(),
                (*v).to_owned(),
            )
        })
        .collect();
    demo::start_echo_servers(&specs).unwrap()
}

fn gateway_yaml(http_port: u16) -> String {
    format!(
        r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {http_port}, name: http, protocol: HTTP}}
    hosts: ['*']
"
    )
}

fn service_entry(name: &str, endpoints: &[(SocketAddr, &str)]) -> String {
    let mut eps = String::new();
    for (addr, version) in endpoints {
        eps.push_str(&format!(
            "  - {{address: {}, ports: {{http: {}}}, labels: {{version: {version}}}}}\n",
            addr.ip(),
            addr.port()
        ));
    }
    format!(
        r"---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
{eps}"
    )
}

fn options(dir: &Path, log: &Arc<Mutex<Vec<String>>>) -> GatewayBuilder {
    Gateway::builder()
        .files([Source::Path(dir.to_owned())])
        .identity(Identity::default())
        .workers(1)
        .admin(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        .access_log(AccessLog::Capture(Arc::clone(log)))
        // Every Gateway port the tests use, on a free loopback port.
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .port_binding(443, SocketAddr::from(([127, 0, 0, 1], 0)))
        .poll_interval(Duration::from_millis(100))
        .random_seed(7)
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

async fn get(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = http::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[tokio::test]
async fn routes_redirects_rewrites_and_answers_locally() {
    let up = echoes(&[("a", "v1"), ("b", "v1")]);
    let dir = temp_dir("routing");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/gw]
  http:
  - name: health
    match: [{uri: {exact: /healthz}}]
    directResponse: {status: 503, body: {string: down for maintenance}}
  - name: moved
    match: [{uri: {prefix: /old/}}]
    redirect: {uri: /new, redirectCode: 308}
  - name: api
    match: [{uri: {prefix: /api/}}]
    rewrite: {uri: /v2/}
    route: [{destination: {host: a.test}}]
  - name: renamed
    match: [{uri: {prefix: /renamed}}]
    rewrite: {authority: inside.example.com}
    route: [{destination: {host: a.test}}]
  - name: beta
    match: [{headers: {x-beta: {exact: 'yes'}}}]
    route: [{destination: {host: b.test}}]
    headers: {response: {set: {x-route: beta}}}
  - name: default
    route: [{destination: {host: a.test}}]
" + &service_entry("a", &[(up[0], "v1")])
        + &service_entry("b", &[(up[1], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    let r = get(port, "shop.example.com", "/healthz", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (503, "down for maintenance"));

    let r = get(port, "shop.example.com", "/old/page?x=1", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers["location"], "http://shop.example.com/new?x=1");

    let r = get(port, "shop.example.com", "/api/items?page=2", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("service: a\n"), "{}", r.body);
    assert!(
        r.body.contains("GET /v2/items?page=2 HTTP/1.1"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("x-envoy-original-path: /api/items?page=2"),
        "{}",
        r.body
    );
    assert!(r.body.contains("host: shop.example.com"), "{}", r.body);
    assert!(r.headers.contains_key("x-envoy-upstream-service-time"));

    // An authority rewrite: the upstream and the access log see the new host (Envoy's
    // router rewrites the request's :authority, which its access log then reads).
    let r = get(port, "shop.example.com", "/renamed", &[]).await;
    assert!(r.body.contains("host: inside.example.com"), "{}", r.body);

    let r = get(port, "shop.example.com", "/", &[("x-beta", "yes")]).await;
    assert!(r.body.starts_with("service: b\n"), "{}", r.body);
    assert_eq!(r.headers["x-route"], "beta");

    let r = get(port, "shop.example.com", "/", &[]).await;
    assert!(r.body.starts_with("service: a\n"), "{}", r.body);

    // What the gateway adds upstream: x-forwarded-for appended to the client's, its own
    // x-forwarded-proto, the host, and an x-request-id (a UUID) when the client sent none.
    let r = get(
        port,
        "shop.example.com",
        "/",
        &[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "ftp"),
        ],
    )
    .await;
    let sent: Vec<&str> = r.body.lines().collect();
    assert!(
        sent.contains(&"x-forwarded-for: 10.0.0.1,127.0.0.1"),
        "{}",
        r.body
    );
    assert!(sent.contains(&"x-forwarded-proto: http"), "{}", r.body);
    assert!(!r.body.contains("ftp"), "{}", r.body);
    assert!(sent.contains(&"host: shop.example.com"), "{}", r.body);
    let ids: Vec<&str> = sent
        .iter()
        .filter_map(|l| l.strip_prefix("x-request-id: "))
        .collect();
    assert!(matches!(ids[..], [id] if id.len() == 36), "{}", r.body);
    let r = get(
        port,
        "shop.example.com",
        "/",
        &[("x-request-id", "given-7")],
    )
    .await;
    let ids: Vec<&str> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("x-request-id: "))
        .collect();
    assert_eq!(ids, ["given-7"], "{}", r.body);

    // No virtual host for this authority: 404 NR.
    let r = get(port, "other.example.com", "/", &[]).await;
    assert_eq!(r.status, 404);

    // Access log lines in Envoy's default format, once the worker has flushed them.
    eventually("the access log of the 404", || {
        log.lock().unwrap().iter().any(|l| l.contains("\" 404 NR "))
    })
    .await;
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.iter().any(
            |l| l.contains("\"GET /api/items?page=2 HTTP/1.1\" 200 - 0 ")
                && l.ends_with(&format!("\"shop.example.com\" \"{}\"", up[0]))
        ),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("\" 404 NR ")), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /renamed HTTP/1.1\" 200 ")
                && l.ends_with(&format!("\"inside.example.com\" \"{}\"", up[0]))),
        "{lines:#?}"
    );

    // Metrics by route, cluster and code.
    let m = gw.metrics();
    assert!(
        m.contains("route=\"api\",cluster=\"outbound|80||a.test\",response_code=\"200\"} 1"),
        "{m}"
    );
    gw.shutdown();
}

#[tokio::test]
async fn request_bodies_reach_the_upstream_whole() {
    let up = echoes(&[("a", "v1")]);
    let dir = temp_dir("bodies");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a.test}}]
" + &service_entry("a", &[(up[0], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    // One connection, three requests: a length-delimited body, a chunked body (sent upstream
    // chunked: its length is unknown), and a bodiless request after them.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let payload = "x".repeat(100_000);
    let requests = [
        format!(
            "POST /a HTTP/1.1\r\nhost: shop\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        ),
        "POST /b HTTP/1.1\r\nhost: shop\r\ntransfer-encoding: chunked\r\n\r\n\
         4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
            .to_owned(),
        "GET /c HTTP/1.1\r\nhost: shop\r\n\r\n".to_owned(),
    ];
    for (request, expected) in
        requests
            .iter()
            .zip(["body bytes: 100000", "body bytes: 7", "body bytes: 0"])
    {
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains(expected), "{expected}: {response}");
    }
    drop(gw);
}

#[tokio::test]
async fn retries_replay_request_bodies_on_another_endpoint() {
    let up = echoes(&[("a", "v1")]);
    // An endpoint that takes the whole request, then answers 503.
    let failing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = failing.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = failing.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 20];
                // Read until the client has been quiet for a moment: the body is in.
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(50), conn.read(&mut buf)).await
                {
                    if n == 0 {
                        return;
                    }
                }
                let _ = conn
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    let dir = temp_dir("replay");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a.test}}]
    retries: {attempts: 2, retryOn: 5xx}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: default}
spec:
  host: a.test
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
" + &service_entry("a", &[(dead, "v1"), (up[0], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    // Round robin sends every other first attempt to the failing endpoint, which reads the
    // whole body before its 503; the retry must send the same body to the live one.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let payload = "y".repeat(70_000);
    for i in 0..4 {
        let request = if i % 2 == 0 {
            format!(
                "POST /r HTTP/1.1\r\nhost: shop\r\ncontent-length: {}\r\n\r\n{payload}",
                payload.len()
            )
        } else {
            "POST /r HTTP/1.1\r\nhost: shop\r\ntransfer-encoding: chunked\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n"
                .to_owned()
        };
        let expected = if i % 2 == 0 {
            "body bytes: 70000"
        } else {
            "body bytes: 5"
        };
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{i}: {response}");
        assert!(response.contains(expected), "{i}: {response}");
    }
    drop(gw);
}

#[tokio::test]
async fn mirrors_get_the_request_body_too() {
    let up = echoes(&[("a", "v1")]);
    // The mirror upstream reports each request's host, x-forwarded-proto and body length.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<(String, String, usize)>();
    let mirror = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mirror_addr = mirror.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = mirror.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen_tx = seen_tx.clone();
                        async move {
                            let header = |name| {
                                req.headers()
                                    .get(name)
                                    .map(|h| h.to_str().unwrap().to_owned())
                                    .unwrap_or_default()
                            };
                            let (host, proto) = (header("host"), header("x-forwarded-proto"));
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let _ = seen_tx.send((host, proto, body.len()));
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                Empty::<Bytes>::new(),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), service)
                    .await;
            });
        }
    });
    let dir = temp_dir("mirror-body");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a.test}}]
    mirror: {host: m.test}
" + &service_entry("a", &[(up[0], "v1")])
        + &service_entry("m", &[(mirror_addr, "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let payload = "z".repeat(50_000);
    let requests = [
        format!(
            "POST /m HTTP/1.1\r\nhost: shop\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        ),
        "POST /m HTTP/1.1\r\nhost: shop\r\ntransfer-encoding: chunked\r\n\r\n\
         4\r\nabcd\r\n0\r\n\r\n"
            .to_owned(),
    ];
    for (request, len) in requests.iter().zip([50_000, 4]) {
        stream.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut stream).await;
        assert!(
            response.contains(&format!("body bytes: {len}")),
            "{response}"
        );
        let (host, proto, mirrored) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (host.as_str(), proto.as_str(), mirrored),
            ("shop-shadow", "http", len)
        );
    }
    drop(gw);
}

/// Reads one HTTP/1.1 response with a `content-length` body off `stream`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Reads one response off `stream` (bytes past it stay in `buf`): head, and the body as its
/// framing says (decoded by `portcullis_proxy_core::h1`, which has tests of its own). The
/// head's `connection: close` is read into its framing, not kept as a header: see
/// [`closes`].
async fn next_response(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    method: &Method,
) -> (h1::ResponseHead, Vec<u8>) {
    let head = loop {
        if let Some(head) = h1::parse_response_head(buf).unwrap() {
            break head;
        }
        assert!(
            stream.read_buf(buf).await.unwrap() > 0,
            "closed before a head"
        );
    };
    let (mut framing, _) = h1::response_framing(method, &head).unwrap();
    let mut body = Vec::new();
    loop {
        match framing.decode(buf).unwrap() {
            h1::Decoded::Data(d) => body.extend_from_slice(&d),
            h1::Decoded::Done => return (head, body),
            h1::Decoded::NeedMore => {
                assert!(stream.read_buf(buf).await.unwrap() > 0, "closed mid-body");
            }
        }
    }
}

/// Whether a response head tells the client that the connection ends after it.
fn closes(head: &h1::ResponseHead) -> bool {
    !h1::response_framing(&Method::GET, head).unwrap().1
}

/// An upstream that answers `/chunked…` with a chunked body and anything else with 100 000
/// bytes of `x` by length, every request of a connection.
async fn chunked_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                while s.read_buf(&mut buf).await.is_ok_and(|n| n > 0) {
                    while let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = buf.split_to(at + 4);
                        let answer = if head.starts_with(b"GET /chunked") {
                            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                              5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                                .to_vec()
                        } else {
                            let mut big =
                                b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
                            big.resize(big.len() + 100_000, b'x');
                            big
                        };
                        if s.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn serves_http1_itself_and_hands_other_requests_to_hyper() {
    let up = echoes(&[("a", "v1")]);
    let chunked = chunked_upstream().await;
    let dir = temp_dir("downstream");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /chunked}}, {uri: {prefix: /big}}]
    route: [{destination: {host: c.test}}]
  - route: [{destination: {host: a.test}}]
" + &service_entry("a", &[(up[0], "v1")])
        + &service_entry("c", &[(chunked, "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();
    let get = Method::GET;

    // Two requests in one write (pipelined): two answers, in order, each with a date.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    s.write_all(b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    for path in ["/one", "/two"] {
        let (head, body) = next_response(&mut s, &mut buf, &get).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.get("server"), Some(&b"istio-envoy"[..]));
        assert!(head.get("date").is_some());
        assert!(head.get("x-envoy-upstream-service-time").is_some());
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains(&format!("GET {path} HTTP/1.1")), "{body}");
    }
    // A request with a body on the same connection: hyper takes the connection over from
    // that request on, with the bytes already read, and keeps serving it.
    s.write_all(b"POST /three HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let (head, body) = next_response(&mut s, &mut buf, &Method::POST).await;
    assert_eq!(head.status, 200);
    assert!(String::from_utf8(body).unwrap().contains("body bytes: 5"));
    s.write_all(b"GET /four HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = next_response(&mut s, &mut buf, &get).await;
    assert_eq!(head.status, 200);
    assert!(String::from_utf8(body).unwrap().contains("GET /four"));

    // HEAD: the upstream's content-length, no body; the connection carries on.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    s.write_all(b"HEAD /h HTTP/1.1\r\nhost: x\r\n\r\nGET /after-head HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = next_response(&mut s, &mut buf, &Method::HEAD).await;
    assert_eq!(head.status, 200);
    assert!(body.is_empty());
    let (head, body) = next_response(&mut s, &mut buf, &get).await;
    assert_eq!(head.status, 200);
    assert!(String::from_utf8(body).unwrap().contains("GET /after-head"));

    // A chunked upstream body goes out chunked, and the connection is reused after it.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    for _ in 0..2 {
        s.write_all(b"GET /chunked HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, body) = next_response(&mut s, &mut buf, &get).await;
        assert_eq!(head.get("transfer-encoding"), Some(&b"chunked"[..]));
        assert_eq!(body, b"hello world");
    }

    // A body larger than what the writer gathers behind the head, twice on one connection.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    for _ in 0..2 {
        s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, body) = next_response(&mut s, &mut buf, &get).await;
        assert_eq!(head.get("content-length"), Some(&b"100000"[..]));
        assert!(body.len() == 100_000 && body.iter().all(|b| *b == b'x'));
    }

    // `connection: close`: said back, and the connection ends after the response.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    s.write_all(b"GET /last HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = next_response(&mut s, &mut buf, &get).await;
    assert!(closes(&head), "connection: close expected");
    assert_eq!(s.read_buf(&mut buf).await.unwrap(), 0);

    // HTTP/1.0 (hyper's): answered, then closed.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /old HTTP/1.0\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out);
    // Upstream requests are HTTP/1.1 whatever the client spoke.
    assert!(
        out.starts_with("HTTP/1.0 200") && out.contains("GET /old HTTP/1.1"),
        "{out}"
    );
    gw.shutdown();
}

#[tokio::test]
async fn weights_follow_the_seeded_random_source() {
    let up = echoes(&[("a", "v1"), ("b", "v1")]);
    let dir = temp_dir("weights");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route:
    - {destination: {host: a.test}, weight: 30}
    - {destination: {host: b.test}, weight: 70}
" + &service_entry("a", &[(up[0], "v1")])
        + &service_entry("b", &[(up[1], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    // Worker 0 draws from SplitMix64(seed), one value per forwarded request.
    let mut random = SplitMix64::new(7);
    let mut counts = [0, 0];
    for _ in 0..40 {
        let expected = pick_by_weight([30u32, 70].into_iter(), random.next_u64()).unwrap();
        let r = get(port, "any", "/", &[]).await;
        let got = usize::from(r.body.starts_with("service: b\n"));
        assert_eq!(got, expected, "{}", r.body);
        counts[got] += 1;
    }
    assert!(counts[0] > 0 && counts[1] > counts[0], "{counts:?}");
    gw.shutdown();
}

/// A directory holding a Gateway on port 80 and two ServiceEntries, `a.test` and `b.test`,
/// each with an echo upstream.
fn two_services(name: &str) -> PathBuf {
    let up = echoes(&[("a", "v1"), ("b", "v1")]);
    let dir = temp_dir(name);
    let base = gateway_yaml(80)
        + &service_entry("a", &[(up[0], "v1")])
        + &service_entry("b", &[(up[1], "v1")]);
    std::fs::write(dir.join("base.yaml"), &base).unwrap();
    dir
}

/// The VirtualService `live`, bound to the test gateway, with `http` rules given as YAML list
/// items.
fn live_routes(http: &str) -> String {
    format!(
        r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: live, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
{http}"
    )
}

#[tokio::test]
async fn swaps_configuration_live_and_refuses_invalid_changes() {
    let dir = two_services("swap");
    let vs = |path: &str, host: &str| {
        live_routes(&format!(
            "  - match: [{{uri: {{prefix: {path}}}}}]\n    route: [{{destination: {{host: {host}}}}}]\n"
        ))
    };
    std::fs::write(dir.join("vs.yaml"), vs("/one", "a.test")).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();
    assert_eq!(gw.generation(), 1);
    assert_eq!(get(port, "x", "/one", &[]).await.status, 200);
    assert_eq!(get(port, "x", "/two", &[]).await.status, 404);

    // A new route appears once the poll sees the file.
    std::fs::write(dir.join("vs.yaml"), vs("/two", "b.test")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.generation() < 2 {
        assert!(Instant::now() < deadline, "the change was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = get(port, "x", "/two", &[]).await;
    assert!(r.body.starts_with("service: b\n"), "{}", r.body);
    assert_eq!(get(port, "x", "/one", &[]).await.status, 404);

    // An invalid change is refused: the previous configuration keeps serving.
    std::fs::write(
        dir.join("vs.yaml"),
        vs("/three", "b.test").replace(
            "route:",
            "route: [{destination: {host: b.test}, weight: -1}]\n    x-route:",
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw
        .metrics()
        .contains("portcullis_config_rejections_total 1")
    {
        assert!(Instant::now() < deadline, "the invalid change was not seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.generation(), 2);
    let r = get(port, "x", "/two", &[]).await;
    assert!(r.body.starts_with("service: b\n"), "{}", r.body);

    // The admin listener shows the live plan.
    let admin = gw.admin_addr().unwrap();
    let r = get(admin.port(), "admin", "/routes", &[]).await;
    assert!(r.body.contains("/two*"), "{}", r.body);
    let r = get(admin.port(), "admin", "/config_dump", &[]).await;
    let dump: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(dump["generation"], 2);
    gw.shutdown();
}

/// `--workers 1` runs the whole gateway on the calling thread: it serves, picks up a file
/// change there (the control work is a task on the same runtime), and returns the start error
/// of a configuration it cannot serve.
#[tokio::test]
async fn serves_and_swaps_on_the_calling_thread() {
    let dir = two_services("one-thread");
    let route =
        |host: &str| live_routes(&format!("  - route: [{{destination: {{host: {host}}}}}]\n"));
    std::fs::write(dir.join("vs.yaml"), route("a.test")).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = options(&dir, &log);
    let (tx, rx) = std::sync::mpsc::channel();
    // The thread serves until the test process ends.
    std::thread::spawn(move || {
        let outcome = opts.serve_on_this_thread(|listening, admin| {
            let _ = tx.send((listening.to_vec(), admin));
        });
        panic!("the gateway stopped serving: {outcome:?}");
    });
    let (listening, admin) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // The Gateway's port 80, bound where `port_bindings` says: a free loopback port.
    assert_eq!(listening.len(), 1);
    assert_eq!(listening[0].ip(), std::net::Ipv4Addr::LOCALHOST);
    let port = listening[0].port();
    assert_ne!(port, 0);
    assert!(admin.is_some());
    let r = get(port, "x", "/", &[]).await;
    assert!(r.body.starts_with("service: a\n"), "{}", r.body);

    std::fs::write(dir.join("vs.yaml"), route("b.test")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(port, "x", "/", &[]).await;
        assert_eq!(
            r.status, 200,
            "a request failed during the swap: {}",
            r.body
        );
        if r.body.starts_with("service: b\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the change was not picked up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A configuration with errors: no thread left serving, the error returned.
    let bad = temp_dir("one-thread-bad");
    std::fs::write(
        bad.join("vs.yaml"),
        route("a.test").replace(
            "route:",
            "route: [{destination: {host: a.test}, weight: -1}]\n    x-route:",
        ),
    )
    .unwrap();
    let outcome = options(&bad, &log)
        .serve_on_this_thread(|_, _| panic!("an invalid configuration was served"));
    assert!(
        matches!(outcome, Err(portcullis_gateway::StartError::Config(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn check_reports_errors_with_their_location() {
    let dir = temp_dir("check");
    std::fs::write(
        dir.join("bad.yaml"),
        gateway_yaml(8080)
            + "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: default}
spec:
  hosts: ['*']
  http:
  - route:
    - destination: {host: a.test}
      weight: -1
",
    )
    .unwrap();
    let report =
        portcullis_gateway::check(&[Source::Path(dir.clone())], &Identity::default()).unwrap_err();
    let text = report.errors_text();
    assert!(text.contains("bad.yaml:"), "{text}");
    assert!(text.contains("weight"), "{text}");
    let started = Gateway::builder()
        .files([Source::Path(dir)])
        .admin(None)
        .workers(1)
        .start();
    assert!(matches!(
        started,
        Err(portcullis_gateway::StartError::Config(_))
    ));
}

#[tokio::test]
async fn upstream_failures_answer_like_envoy() {
    let dead = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let dir = temp_dir("failures");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: f, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /dead}}]
    route: [{destination: {host: dead.test}}]
    retries: {attempts: 2, retryOn: connect-failure}
  - match: [{uri: {prefix: /empty}}]
    route: [{destination: {host: dead.test, subset: none}}]
  - route: [{destination: {host: nowhere.test}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dead, namespace: default}
spec:
  host: dead.test
  subsets: [{name: none, labels: {version: none}}]
" + &service_entry("dead", &[(dead, "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    let r = get(port, "x", "/dead", &[]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.contains("reset reason: connection failure"),
        "{}",
        r.body
    );
    let r = get(port, "x", "/empty", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (503, "no healthy upstream"));
    let r = get(port, "x", "/", &[]).await;
    assert_eq!(r.status, 503);
    eventually("the access log of the last request", || {
        log.lock().unwrap().iter().any(|l| l.contains(" 503 NC "))
    })
    .await;
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains(" 503 URX,UF ")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains(" 503 UH ")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(" 503 NC ")), "{lines:#?}");
    assert!(gw.metrics().contains(
        "portcullis_cluster_upstream_rq_retry_total{cluster=\"outbound|80||dead.test\"} 2"
    ));
    gw.shutdown();
}

#[tokio::test]
async fn upgrades_pass_through_and_limits_answer_408_and_431() {
    let up = echoes(&[("a", "v1")]);
    let dir = temp_dir("upgrade");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ws, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a.test}}]
" + &service_entry("a", &[(up[0], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = options(&dir, &log).limits(
        Limits::default()
            .with_header_timeout(Duration::from_millis(300))
            .with_idle_timeout(Duration::from_millis(600)),
    );
    let gw = opts.start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    // A keep-alive connection carries requests while they come, and is closed once it has
    // been idle for the idle timeout (give or take two ticks).
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut s).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle_since = Instant::now();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?} {out:?}");
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_millis(200) && idle < Duration::from_secs(2),
        "{idle:?}"
    );

    // An upgrade: 101, then bytes both ways.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        b"GET /chat HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping through the gateway").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 24 {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got[..], b"ping through the gateway");

    // A client that never finishes its head: 408.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{out:?}"
    );

    // Too many headers: 431.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut req = String::from("GET / HTTP/1.1\r\nhost: x\r\n");
    for i in 0..150 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431"),
        "{out:?}"
    );
    gw.shutdown();
}

// === TLS ===

struct Pki {
    ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portcullis test CA");
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        ca_der: cert.der().clone(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A leaf certificate for `names` signed by the CA: (cert PEM, key PEM, cert DER, key DER).
fn leaf(
    pki: &Pki,
    names: &[&str],
) -> (
    String,
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (cert.pem(), key.serialize_pem(), cert.der().clone(), key_der)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    pki: &Pki,
    client_cert: Option<(
        rustls::pki_types::CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Sends one HTTP/1.1 request over TLS; the response text, or `None` if TLS failed.
async fn tls_get(
    port: u16,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> Option<String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).ok()?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .ok()?;
    tls.write_all(
        format!("GET /tls HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A TLS upstream serving echo responses with a certificate for `names`.
async fn tls_backend(pki: &Pki, names: &[&str]) -> SocketAddr {
    let (_, _, cert, key) = leaf(pki, names);
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echoes(&[("secure", "tls")])[0];
    let addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = plain.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(echo_port).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate() {
    let pki = pki();
    let up = echoes(&[("a", "v1")]);
    let dir = temp_dir("mtls");
    let (cert_pem, key_pem, _, _) = leaf(&pki, &["secure.example.com"]);
    let config = r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [secure.example.com]
    tls: {mode: MUTUAL, credentialName: secure-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a.test}}]
"
    .to_owned()
        + &service_entry("a", &[(up[0], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    // The credential as a mounted secret: tls.crt, tls.key and the client CA.
    let creds = temp_dir("mtls-creds");
    std::fs::create_dir_all(creds.join("secure-cert")).unwrap();
    std::fs::write(creds.join("secure-cert/tls.crt"), &cert_pem).unwrap();
    std::fs::write(creds.join("secure-cert/tls.key"), &key_pem).unwrap();
    std::fs::write(creds.join("secure-cert/ca.crt"), &pki.ca_pem).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = options(&dir, &log).credentials_dir(creds);
    let gw = opts.start().unwrap();
    let port = gw.local_addr(443).unwrap().port();

    let (_, _, ccert, ckey) = leaf(&pki, &["client.example.com"]);
    let ok = tls_get(
        port,
        "secure.example.com",
        client_config(&pki, Some((ccert, ckey))),
        "secure.example.com",
    )
    .await;
    let ok = ok.expect("a client with a certificate is served");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("x-forwarded-proto: https"), "{ok}");

    let refused = tls_get(
        port,
        "secure.example.com",
        client_config(&pki, None),
        "secure.example.com",
    )
    .await;
    assert!(
        refused.as_deref().is_none_or(|r| !r.contains("200 OK")),
        "served without a client certificate: {refused:?}"
    );
    gw.shutdown();
}

#[tokio::test]
async fn passes_tls_through_by_sni_and_originates_tls_upstream() {
    let pki = pki();
    let backend = tls_backend(&pki, &["secure.test", "origin.test", "origin-h2.test"]).await;
    let ca_file = temp_dir("origin-ca").join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let (tls_port, http_port) = (443, 80);
    let dir = temp_dir("passthrough");
    let config = format!(
        r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {tls_port}, name: tls, protocol: TLS}}
    hosts: [secure.test]
    tls: {{mode: PASSTHROUGH}}
  - port: {{number: {http_port}, name: http, protocol: HTTP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: passthrough, namespace: default}}
spec:
  hosts: [secure.test]
  gateways: [istio-system/gw]
  tls:
  - match: [{{port: {tls_port}, sniHosts: [secure.test]}}]
    route: [{{destination: {{host: secure.test, port: {{number: 443}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: egress, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - match: [{{uri: {{prefix: /h2}}}}]
    route: [{{destination: {{host: origin-h2.test, port: {{number: 80}}}}}}]
  - route: [{{destination: {{host: origin.test, port: {{number: 80}}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: origin-h2, namespace: default}}
spec:
  hosts: [origin-h2.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {backend_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: origin-h2, namespace: default}}
spec:
  host: origin-h2.test
  trafficPolicy:
    tls: {{mode: SIMPLE, caCertificates: {ca}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [secure.test]
  location: MESH_EXTERNAL
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{tls: {backend_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: origin, namespace: default}}
spec:
  hosts: [origin.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: {backend_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: origin, namespace: default}}
spec:
  host: origin.test
  trafficPolicy:
    tls: {{mode: SIMPLE, caCertificates: {ca}}}
",
        backend_port = backend.port(),
        ca = ca_file.display()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    // Routing sees the Gateway's ports (443 in the TLS match above); clients connect to the
    // free ports they are bound to.
    let (tls_port, http_port) = (
        gw.local_addr(tls_port).unwrap().port(),
        gw.local_addr(http_port).unwrap().port(),
    );

    // Passthrough: the client's TLS session ends at the backend (its certificate verifies).
    let r = tls_get(
        tls_port,
        "secure.test",
        client_config(&pki, None),
        "secure.test",
    )
    .await
    .expect("TLS through the gateway");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("service: secure"), "{r}");
    // An unknown SNI is not routed.
    let none = tls_get(
        tls_port,
        "other.test",
        client_config(&pki, None),
        "other.test",
    )
    .await;
    assert!(none.is_none(), "{none:?}");

    // Origination: plaintext in, TLS (DestinationRule SIMPLE) to the backend.
    let r = get(http_port, "egress.example.com", "/via-tls", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("service: secure"), "{}", r.body);
    assert!(r.body.contains("GET /via-tls HTTP/1.1"), "{}", r.body);
    // A GRPC port: HTTP/2 inside the originated TLS (ALPN h2 offered).
    for _ in 0..2 {
        let r = get(http_port, "egress.example.com", "/h2/x", &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("GET /h2/x HTTP/2.0"), "{}", r.body);
    }
    gw.shutdown();
}

#[tokio::test]
async fn serves_http2_prior_knowledge() {
    let up = echoes(&[("a", "v1")]);
    let dir = temp_dir("h2c");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: h2, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a.test}}]
" + &service_entry("a", &[(up[0], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = http::Request::get(format!("http://h2.example.com:{port}/stream"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("host: h2.example.com:"), "{body}");
    }
    gw.shutdown();
}

/// A ServiceEntry for `name.test` whose port 80 has `protocol`.
fn service_entry_with_protocol(name: &str, endpoint: SocketAddr, protocol: &str) -> String {
    service_entry(name, &[(endpoint, "v1")])
        .replace("protocol: HTTP}", &format!("protocol: {protocol}}}"))
}

#[tokio::test]
async fn speaks_http2_upstream_when_the_cluster_does() {
    let up = echoes(&[("g", "v1"), ("u", "v1"), ("c", "v1"), ("p", "v1")]);
    let dir = temp_dir("h2-upstream");
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: h2, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /grpc}}]
    route: [{destination: {host: g.test}}]
  - match: [{uri: {prefix: /upgrade}}]
    route: [{destination: {host: u.test}}]
  - match: [{uri: {prefix: /client}}]
    route: [{destination: {host: c.test}}]
  - route: [{destination: {host: p.test}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: u, namespace: default}
spec:
  host: u.test
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: c, namespace: default}
spec:
  host: c.test
  trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}
" + &service_entry_with_protocol("g", up[0], "GRPC")
        + &service_entry("u", &[(up[1], "v1")])
        + &service_entry("c", &[(up[2], "v1")])
        + &service_entry("p", &[(up[3], "v1")]);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    // From an HTTP/1.1 client: the echo's third line is `METHOD path VERSION` as it saw it.
    for (path, version) in [
        ("/grpc/x", "HTTP/2.0"),
        ("/upgrade/x", "HTTP/2.0"),
        ("/client/x", "HTTP/1.1"),
        ("/plain/x", "HTTP/1.1"),
    ] {
        for _ in 0..2 {
            let r = get(port, "shop.example.com", path, &[]).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            let line = r.body.lines().nth(2).unwrap_or_default().to_owned();
            assert_eq!(line, format!("GET {path} {version}"), "{}", r.body);
            // What the gateway adds, whichever protocol the upstream spoke.
            assert_eq!(r.headers["server"], "istio-envoy", "{path}");
            assert!(
                r.headers.contains_key("x-envoy-upstream-service-time"),
                "{path}"
            );
        }
    }
    // From an HTTP/2 client, `useClientProtocol` follows it.
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://shop.example.com:{port}/client/y"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(
        body.lines().nth(2),
        Some("GET /client/y HTTP/2.0"),
        "{body}"
    );
    gw.shutdown();
}

#[tokio::test]
async fn consistent_hash_pins_requests_and_mints_cookies() {
    let up = echoes(&[("h", "v1"), ("h", "v2"), ("h", "v3"), ("h", "v4")]);
    let dir = temp_dir("hash");
    let endpoints: Vec<(SocketAddr, &str)> =
        up.iter().copied().zip(["v1", "v2", "v3", "v4"]).collect();
    let config = gateway_yaml(80)
        + r"---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hash, namespace: default}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /cookie}}]
    route: [{destination: {host: cookie.test}}]
  - route: [{destination: {host: header.test}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: header, namespace: default}
spec:
  host: header.test
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 1024}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cookie, namespace: default}
spec:
  host: cookie.test
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: sticky, path: /, ttl: 60s}, maglev: {tableSize: 65537}}}
" + &service_entry("header", &endpoints)
        + &service_entry("cookie", &endpoints);
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();
    let version = |r: &Reply| r.body.lines().nth(1).unwrap_or_default().to_owned();

    // Ring hash on a header: one user, one endpoint; users spread over endpoints.
    let mut seen = std::collections::BTreeSet::new();
    for user in 0..12 {
        let user = format!("user-{user}");
        let first = version(&get(port, "any", "/", &[("x-user", &user)]).await);
        for _ in 0..4 {
            let r = get(port, "any", "/", &[("x-user", &user)]).await;
            assert_eq!(version(&r), first, "{user}");
        }
        seen.insert(first);
    }
    assert!(seen.len() >= 2, "{seen:?}");

    // Maglev on a cookie: a request without it gets one minted, and the cookie pins the
    // endpoint.
    let r = get(port, "any", "/cookie", &[]).await;
    assert_eq!(r.status, 200);
    let set_cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("sticky=\""), "{set_cookie}");
    assert!(
        set_cookie.contains("Max-Age=60; Path=/; HttpOnly"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let pinned = version(&get(port, "any", "/cookie", &[("cookie", &cookie)]).await);
    for _ in 0..8 {
        let r = get(port, "any", "/cookie", &[("cookie", &cookie)]).await;
        assert!(!r.headers.contains_key("set-cookie"));
        assert_eq!(version(&r), pinned);
    }
    gw.shutdown();
}

/// A TLS 1.1-only ClientHello (`openssl s_client -tls1_1`, as scripts/tls-interop.sh sends it)
/// on a terminating port gets Envoy's `protocol_version` alert and a clean close, not rustls'
/// `handshake_failure`.
#[tokio::test]
async fn refuses_tls11_with_a_protocol_version_alert() {
    const HELLO: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0x7a, 0x01, 0x00, 0x00, 0x76, 0x03, 0x02, 0x27, 0x55, 0xbd, 0xa7,
        0xcf, 0x27, 0xb9, 0xb8, 0x45, 0xb4, 0xe3, 0x93, 0x89, 0x36, 0x12, 0x31, 0xdf, 0xa9, 0xd7,
        0x8a, 0xd3, 0x22, 0x90, 0x63, 0x84, 0x77, 0x21, 0x8a, 0x05, 0x57, 0xf4, 0x62, 0x00, 0x00,
        0x12, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x35,
        0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x3b, 0x00, 0x00, 0x00, 0x13, 0x00, 0x11, 0x00,
        0x00, 0x0e, 0x61, 0x2e, 0x69, 0x6e, 0x74, 0x65, 0x72, 0x6f, 0x70, 0x2e, 0x74, 0x65, 0x73,
        0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x0a,
        0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00, 0x23, 0x00, 0x00, 0x00,
        0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00,
    ];
    let pki = pki();
    let dir = temp_dir("tls11");
    let (cert_pem, key_pem, _, _) = leaf(&pki, &["a.interop.test"]);
    let config = r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.interop.test]
    tls: {mode: SIMPLE, credentialName: interop-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [a.interop.test]
  gateways: [istio-system/gw]
  http:
  - directResponse: {status: 200}
"
    .to_owned();
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let creds = temp_dir("tls11-creds");
    std::fs::create_dir_all(creds.join("interop-cert")).unwrap();
    std::fs::write(creds.join("interop-cert/tls.crt"), &cert_pem).unwrap();
    std::fs::write(creds.join("interop-cert/tls.key"), &key_pem).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = options(&dir, &log).credentials_dir(creds);
    let gw = opts.start().unwrap();
    let port = gw.local_addr(443).unwrap().port();

    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(HELLO).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .expect("the gateway closes the connection")
        .expect("a clean close, not a reset");
    // A fatal protocol_version alert (70) in a TLS 1.1 record.
    assert_eq!(answer, [21, 3, 2, 0, 2, 2, 70]);
    gw.shutdown();
}

/// A resolver whose answers the test sets, counting the lookups.
#[derive(Debug, Default)]
struct TestResolver {
    answers: Mutex<HashMap<String, Vec<SocketAddr>>>,
    lookups: AtomicUsize,
}

impl TestResolver {
    fn answer(&self, host: &str, addrs: &[SocketAddr]) {
        self.answers
            .lock()
            .unwrap()
            .insert(host.to_owned(), addrs.to_vec());
    }
}

impl Resolver for TestResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        self.lookups.fetch_add(1, AtomicOrdering::SeqCst);
        let answer = self.answers.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            let addrs = answer.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no answer for {host}"),
                )
            })?;
            Ok(addrs
                .into_iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect())
        })
    }
}

#[tokio::test]
async fn dns_refresh_swaps_on_changed_answers_only_and_admin_shows_ejections() {
    // Two echo upstreams on one port each; the name resolves to one, then to the other. The
    // port of an endpoint comes from the ServiceEntry, so both listen on loopback addresses
    // that differ only in IP: 127.0.0.1 and 127.0.0.2 on the same port.
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let shared_port = first.local_addr().unwrap().port();
    let second = std::net::TcpListener::bind(("127.0.0.2", shared_port)).unwrap();
    let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
    for (listener, version) in [(first, "v1"), (second, "v2")] {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        tokio::spawn(demo::echo_server(
            listener,
            "d".to_owned(),
            version.to_owned(),
        ));
    }
    let dir = temp_dir("dns");
    let config = gateway_yaml(80)
        + &format!(
            r"---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: dns, namespace: default}}
spec:
  hosts: [dns.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: DNS
  endpoints: [{{address: upstream.dns.test, ports: {{http: {shared_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: dns, namespace: default}}
spec:
  host: dns.test
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: dns, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{{destination: {{host: dns.test}}}}]
"
        );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let resolver = Arc::new(TestResolver::default());
    resolver.answer("upstream.dns.test", &[a]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log)
        .dns_refresh(Some(Duration::from_millis(100)))
        .resolver(Arc::clone(&resolver) as Arc<dyn Resolver>)
        .start()
        .unwrap();
    let port = gw.local_addr(80).unwrap().port();
    let r = get(port, "x", "/", &[]).await;
    assert!(r.body.contains("version: v1"), "{}", r.body);

    // The same answers, looked up again and again, swap nothing.
    let looked_up = resolver.lookups.load(AtomicOrdering::SeqCst);
    eventually("three more lookups", || {
        resolver.lookups.load(AtomicOrdering::SeqCst) >= looked_up + 3
    })
    .await;
    assert_eq!(gw.generation(), 1);
    let admin = gw.admin_addr().unwrap();
    let r = get(admin.port(), "admin", "/endpoints", &[]).await;
    assert!(r.body.contains(&a.to_string()), "{}", r.body);
    let r = get(admin.port(), "admin", "/stats/prometheus", &[]).await;
    assert!(
        r.body.contains(
            "portcullis_cluster_outlier_detection_ejections_active{cluster=\"outbound|80||dns.test\"} 0"
        ),
        "{}",
        r.body
    );

    // A changed answer is a new configuration: swapped in, and requests go to the new address.
    resolver.answer("upstream.dns.test", &[b]);
    eventually("a swap after the answer changed", || gw.generation() == 2).await;
    let r = get(port, "x", "/", &[]).await;
    assert!(r.body.contains("version: v2"), "{}", r.body);
    let r = get(admin.port(), "admin", "/endpoints", &[]).await;
    assert!(r.body.contains(&b.to_string()), "{}", r.body);
    assert!(!r.body.contains(&a.to_string()), "{}", r.body);
    gw.shutdown();
}
