//! Hostile requests, sent as raw bytes to the example gateway in front of a *recording*
//! upstream (a TCP server that keeps every byte it receives): for each, what the gateway
//! answers and what reached the upstream — usually nothing. Only `/public` is routed; a
//! request that reaches `/admin` upstream got past the routing.
//!
//! The rules are Envoy's as Istio configures it; each test names the Envoy source it follows
//! (envoyproxy/envoy: `source/common/http/http1/codec_impl.cc`, `header_utility.cc`,
//! `conn_manager_impl.cc`, `source/extensions/http/header_validators/envoy_default/
//! header_validator.cc`; istio/istio: `pilot/pkg/networking/core/listener_builder.go`).

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

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_gateway::{AccessLog, Gateway, Identity, Source};
use portcullis_proxy_core::h1;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Everything the upstream received, over all its connections, in arrival order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u8>>>);

impl Recorder {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The end of the body that follows `head` at the start of `rest`, when it has all arrived.
fn body_end(head: &str, rest: &[u8]) -> Option<usize> {
    let lower = head.to_ascii_lowercase();
    if lower.contains("transfer-encoding: chunked") {
        return rest
            .windows(5)
            .position(|w| w == b"0\r\n\r\n")
            .map(|at| at + 5);
    }
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
    (rest.len() >= length).then_some(length)
}

/// An upstream that records every byte it receives and answers each request `200 ok`, except
/// a request asking for an upgrade, which it answers `101` — then it echoes whatever comes
/// next on the connection: an open tunnel.
async fn recording_upstream() -> (SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorder = Recorder::default();
    let rec = recorder.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let rec = rec.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                let mut tunnel = false;
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    rec.0.lock().unwrap().extend_from_slice(&chunk[..n]);
                    if tunnel {
                        let _ = s.write_all(&chunk[..n]).await;
                        continue;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..at + 4]).into_owned();
                        if head.to_ascii_lowercase().contains("\r\nupgrade:") {
                            tunnel = true;
                            let _ = s
                                .write_all(
                                    b"HTTP/1.1 101 Switching Protocols\r\n\
                                      connection: upgrade\r\nupgrade: h2c\r\n\r\n",
                                )
                                .await;
                            let _ = buf.split_to(at + 4);
                            let rest = buf.split();
                            let _ = s.write_all(&rest).await;
                            break;
                        }
                        let Some(len) = body_end(&head, &buf[at + 4..]) else {
                            break;
                        };
                        let _ = buf.split_to(at + 4 + len);
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                }
            });
        }
    });
    (addr, recorder)
}

/// A gateway routing only `/public` to a recording upstream.
fn start(name: &str) -> (Gateway, u16, Recorder, tokio::runtime::Handle) {
    let (up, recorder) = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(recording_upstream())
    });
    let dir: PathBuf =
        std::env::temp_dir().join(format!("portcullis-hostile-{name}-{}", std::process::id()));
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
  - match: [{{uri: {{prefix: /public}}}}]
    route: [{{destination: {{host: rec.test}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: rec, namespace: default}}
spec:
  hosts: [rec.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: {}, ports: {{http: {}}}}}
",
        up.ip(),
        up.port()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let gw = Gateway::builder()
        .files([Source::Path(dir)])
        .identity(Identity::default())
        .workers(1)
        .admin(None)
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Capture(Arc::new(Mutex::new(Vec::new()))))
        .poll_interval(Duration::from_millis(100))
        .random_seed(7)
        .start()
        .unwrap();
    let port = gw.local_addr(80).unwrap().port();
    (gw, port, recorder, tokio::runtime::Handle::current())
}

/// Sends `request` on a new connection and reads until the gateway closes it (or 5 s).
async fn exchange(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response off `stream` (bytes past it stay in `buf`).
async fn next_response(stream: &mut TcpStream, buf: &mut BytesMut) -> (h1::ResponseHead, String) {
    let head = loop {
        if let Some(head) = h1::parse_response_head(buf).unwrap() {
            break head;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a head");
    };
    let (mut framing, _) = h1::response_framing(&Method::GET, &head).unwrap();
    let mut body = Vec::new();
    loop {
        match framing.decode(buf).unwrap() {
            h1::Decoded::Data(d) => body.extend_from_slice(&d),
            h1::Decoded::Done => return (head, String::from_utf8_lossy(&body).into_owned()),
            h1::Decoded::NeedMore => {
                assert!(stream.read_buf(buf).await.unwrap() > 0, "closed mid-body");
            }
        }
    }
}

/// Asserts the answer's status line and that the upstream received nothing.
async fn refused(port: u16, recorder: &Recorder, request: &str, status: &str) {
    recorder.clear();
    let answer = exchange(port, request.as_bytes()).await;
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{request:?} → {answer:?}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(recorder.text(), "", "{request:?} reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upgrade_opens_no_tunnel() {
    let (gw, port, recorder, _) = start("h2c");
    // Envoy's codec strips h2c upgrade headers and serves the request as HTTP/1.1
    // (codec_impl.cc, ConnectionImpl::onHeadersCompleteImpl, "removing unsupported h2c upgrade
    // headers"): the upstream's 101 never happens, and `/admin` after it is routed (404).
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    s.write_all(
        b"GET /public/x HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = next_response(&mut s, &mut buf).await;
    assert_eq!(head.status, 200, "{body}");
    assert_eq!(body, "ok");
    s.write_all(b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = next_response(&mut s, &mut buf).await;
    assert_eq!(head.status, 404);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let seen = recorder.text().to_ascii_lowercase();
    assert!(seen.starts_with("get /public/x http/1.1\r\n"), "{seen}");
    assert!(!seen.contains("upgrade"), "{seen}");
    assert!(!seen.contains("http2-settings"), "{seen}");
    assert!(!seen.contains("/admin"), "{seen}");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_websocket_upgrades_go_through() {
    let (gw, port, recorder, _) = start("upgrades");
    // Istio's HCM has upgrade_configs [websocket] (listener_builder.go,
    // buildHTTPConnectionManager, "Allow websocket upgrades"); any other type is refused with
    // 403 upgrade_failed (conn_manager_impl.cc, "Do not allow upgrades if the route does not
    // support it").
    refused(
        port,
        &recorder,
        "GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: spdy/3.1\r\n\r\n",
        "403",
    )
    .await;
    refused(
        port,
        &recorder,
        "CONNECT rec.test:80 HTTP/1.1\r\nHost: rec.test:80\r\n\r\n",
        "403",
    )
    .await;
    recorder.clear();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        b"GET /public/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = BytesMut::new();
    let (head, _) = next_response(&mut s, &mut buf).await;
    assert_eq!(head.status, 101);
    s.write_all(b"frames").await.unwrap();
    let mut echoed = buf.to_vec();
    while echoed.len() < 6 {
        let mut chunk = [0u8; 64];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        echoed.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(echoed, b"frames");
    let seen = recorder.text().to_ascii_lowercase();
    assert!(seen.contains("upgrade: websocket"), "{seen}");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_validated_on_both_paths() {
    let (gw, port, recorder, _) = start("host");
    // RFC 9112 §3.2: no Host on HTTP/1.1, more than one Host line, an invalid Host: 400.
    // Characters: Envoy's HeaderUtility::authorityIsValid (header_utility.cc,
    // check_authority_h1_h2); userinfo and ports: its header validator
    // (header_validator.cc, HeaderValidator::validateHostHeader).
    for (fields, status) in [
        ("", "400"),
        ("Host: a\r\nHost: b\r\n", "400"),
        ("Host: a b\r\n", "400"),
        ("Host: user@h\r\n", "400"),
        ("Host: h/../admin\r\n", "400"),
        ("Host: h:abc\r\n", "400"),
        ("Host:\r\n", "400"),
        ("Host: h:0\r\n", "400"),
    ] {
        // Bodiless: the gateway's own HTTP/1.1 server.
        refused(
            port,
            &recorder,
            &format!("GET /public/x HTTP/1.1\r\n{fields}\r\n"),
            status,
        )
        .await;
        // With a body: hyper's server, the same checks.
        refused(
            port,
            &recorder,
            &format!("POST /public/x HTTP/1.1\r\n{fields}Content-Length: 2\r\n\r\nhi"),
            status,
        )
        .await;
    }
    // A connection hyper has taken over (after a request with a body) is checked the same.
    recorder.clear();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = BytesMut::new();
    s.write_all(b"POST /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .unwrap();
    assert_eq!(next_response(&mut s, &mut buf).await.0.status, 200);
    s.write_all(b"GET /public/y HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(next_response(&mut s, &mut buf).await.0.status, 400);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !recorder.text().contains("/public/y"),
        "{}",
        recorder.text()
    );

    // The absolute form names the authority, and Host gives way to it (RFC 9112 §3.2.2;
    // codec_impl.cc, ServerConnectionImpl::handlePath, setHost from the URL).
    recorder.clear();
    let answer = exchange(
        port,
        b"GET http://public.example/public/abs HTTP/1.1\r\nHost: admin.internal\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = recorder.text().to_ascii_lowercase();
    assert!(seen.contains("\r\nhost: public.example\r\n"), "{seen}");
    assert!(!seen.contains("admin.internal"), "{seen}");
    refused(
        port,
        &recorder,
        "GET http://user@public.example/public/abs HTTP/1.1\r\nHost: x\r\n\r\n",
        "400",
    )
    .await;

    // HTTP/2: `:authority` goes through the same check.
    recorder.clear();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://user@h/public/x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    let _ = resp.into_body().collect().await;
    let req = http::Request::get("http://h2.example/public/x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(send.send_request(req).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let seen = recorder.text().to_ascii_lowercase();
    assert!(!seen.contains("user@"), "{seen}");
    assert!(seen.contains("host: h2.example"), "{seen}");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_classes_never_reach_the_upstream() {
    let (gw, port, recorder, _) = start("smuggling");
    let admin = "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
    for (request, status) in [
        // Repeated and listed Content-Length: Envoy's Balsa parser refuses them
        // (balsa_parser.cc, disallow_multiple_content_length; a list is not 1*DIGIT).
        (
            "GET /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n".to_owned(),
            "400",
        ),
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello{admin}"
            ),
            "400",
        ),
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\nhello{admin}"
            ),
            "400",
        ),
        // CL + TE: 400 (codec_impl.cc, onHeadersCompleteImpl; allow_chunked_length is off).
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{admin}"
            ),
            "400",
        ),
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{admin}"
            ),
            "400",
        ),
        // Obfuscated Transfer-Encoding: anything but `chunked` is 501 (the same function,
        // "unsupported transfer encoding").
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{admin}"
            ),
            "501",
        ),
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{admin}"
            ),
            "501",
        ),
        (
            format!(
                "POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n{admin}"
            ),
            "501",
        ),
        // obs-fold (RFC 9112 §5.2) and a bare CR inside the head: the parser refuses the head.
        (
            "GET /public/x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_owned(),
            "400",
        ),
        (
            "GET /public/x HTTP/1.1\r\nHost: x\r\nX-A: a\rTransfer-Encoding: chunked\r\n\r\n"
                .to_owned(),
            "400",
        ),
        (
            "GET /public/x HTTP/1.1\r\nHost: x\r\n\rX: 1\r\n\r\n".to_owned(),
            "400",
        ),
        // A NUL in a value: Envoy's codec, "header value contains invalid chars".
        (
            "GET /public/x HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_owned(),
            "400",
        ),
    ] {
        refused(port, &recorder, &request, status).await;
    }
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tolerated_spellings_reach_the_upstream_in_one_reading() {
    let (gw, port, recorder, _) = start("spellings");
    // ` chunked`: whitespace before a value is not part of it (RFC 9110 §5.5), so this is
    // chunked for the gateway and, rewritten, for the upstream.
    recorder.clear();
    let answer = exchange(
        port,
        b"POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked\r\nConnection: close\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let seen = recorder.text();
    assert!(seen.contains("abc"), "{seen}");
    assert_eq!(seen.matches("POST ").count(), 1, "{seen}");
    // Bare LF line ends (RFC 9112 §2.2 lets a recipient take LF alone as a line end): the
    // upstream gets the same fields, each line ended by CRLF — no field the gateway did not see.
    recorder.clear();
    let answer = exchange(
        port,
        b"GET /public/lf HTTP/1.1\nHost: x\nX-A: a\nConnection: close\n\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let seen = recorder.text();
    assert!(seen.starts_with("GET /public/lf HTTP/1.1\r\n"), "{seen:?}");
    assert!(seen.contains("\r\nx-a: a\r\n"), "{seen:?}");
    assert!(!seen.replace("\r\n", "").contains('\n'), "{seen:?}");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_chunk_sizes_are_client_errors() {
    let (gw, port, recorder, _) = start("chunks");
    // A chunk size that overflows 64 bits (2^64 + 5) or is not hex digits (`0x5`) is the
    // client's error: Envoy's codec answers 400 (codec_impl.cc, dispatchSlice:
    // sendProtocolError on a parser error, HPE_INVALID_CHUNK_SIZE), not 503.
    for size in ["10000000000000005", "0x5"] {
        recorder.clear();
        let answer = exchange(
            port,
            format!("POST /public/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nhello\r\n0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{size}: {answer:?}");
    }
    gw.shutdown();
}
