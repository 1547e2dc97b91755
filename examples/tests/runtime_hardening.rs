//! The example gateway against misbehaving clients, started in-process on ephemeral loopback
//! ports with short timeouts: client failures that must not count against upstreams, stalled
//! TLS ClientHellos that must cost nothing while they wait, and HTTP/2 connections that must
//! time out like HTTP/1 ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_examples::demo;
use portcullis_gateway::{AccessLog, Gateway, GatewayBuilder, Identity, Limits, Source};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-hardening-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An echo upstream on an ephemeral port.
fn echo() -> SocketAddr {
    let spec = (
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "a".to_owned(),
        "v1".to_owned(),
    );
    demo::start_echo_servers(&[spec]).unwrap()[0]
}

/// A gateway listening for HTTP on `port`, routing everything to `a.test` at `upstream`,
/// followed by `more` configuration.
fn http_config(port: u16, upstream: SocketAddr, more: &str) -> String {
    format!(
        r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: a, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{{destination: {{host: a.test}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: a, namespace: default}}
spec:
  hosts: [a.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: {}, ports: {{http: {}}}}}]
{more}",
        upstream.ip(),
        upstream.port()
    )
}

fn options(dir: &Path, log: &Arc<Mutex<Vec<String>>>) -> GatewayBuilder {
    Gateway::builder()
        .files([Source::Path(dir.to_owned())])
        .identity(Identity::default())
        .workers(1)
        .admin(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
        // The Gateway's ports (80, 443) on free loopback ports.
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .port_binding(443, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Capture(Arc::clone(log)))
        .poll_interval(Duration::from_millis(100))
        .random_seed(7)
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

async fn get(port: u16, path: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = http::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", "x")
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Reads until the peer closes (or resets) the connection, within `limit`; `None` if it
/// stays open.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let reading = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, reading).await.ok()?;
    Some(out)
}

async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, f).await.ok()
}

// === Client failures are the client's ===

#[tokio::test]
async fn client_failures_do_not_eject_a_healthy_upstream() {
    let _shared = CPU.read().await;
    let up = echo();
    let dir = temp_dir("client-failures");
    let config = http_config(
        80,
        up,
        r"---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: default}
spec:
  host: a.test
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s}
",
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();

    // Three bodies with an invalid chunk-size line: the client's protocol error, 400.
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(
            b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\nhello\r\nzz\r\n",
        )
        .await
        .unwrap();
        let out = read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .expect("the gateway closes the connection");
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    }
    // Three uploads abandoned mid-body: the client went away.
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nhello")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let _ = read_until_closed(&mut s, Duration::from_secs(5)).await;
    }
    // Each failure is logged as the client's before the next request goes out.
    let logged = eventually(Duration::from_secs(5), || {
        let lines = log.lock().unwrap();
        lines.iter().filter(|l| l.contains(" 400 DPE ")).count() == 3
            && lines.iter().filter(|l| l.contains(" 0 DC ")).count() == 3
    })
    .await;
    assert!(logged, "{:#?}", log.lock().unwrap());

    // The endpoint is healthy and still serves.
    let (status, body) = get(port, "/after").await;
    assert_eq!(status, 200, "{body}");

    let admin = gw.admin_addr().unwrap();
    let (_, metrics) = get(admin.port(), "/stats/prometheus").await;
    assert!(
        metrics.contains(
            "portcullis_cluster_outlier_detection_ejections_enforced_total{cluster=\"outbound|80||a.test\"} 0"
        ),
        "{metrics}"
    );
    // No upstream response or failure counted for the client's failures.
    assert!(
        !metrics.contains("portcullis_cluster_upstream_rq_total{cluster=\"outbound|80||a.test\",response_code=\"503\"}")
            && !metrics.contains("portcullis_cluster_upstream_rq_total{cluster=\"outbound|80||a.test\",response_code=\"400\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "portcullis_cluster_upstream_rq_total{cluster=\"outbound|80||a.test\",response_code=\"200\"} 1"
        ),
        "{metrics}"
    );
    gw.shutdown();
}

// === Stalled ClientHellos ===

/// Tests that measure the process's CPU time run alone; the others share.
static CPU: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// CPU time (user + system) of this whole process, from `/proc/self/stat` (clock ticks of
/// 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime): 11 and 12 after the name and state.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

struct Tls {
    port: u16,
    client: Arc<rustls::ClientConfig>,
    gw: Gateway,
}

/// A gateway terminating TLS for `tls.test` on a fresh port and answering `tls ok`.
fn tls_gateway(name: &str) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["tls.test".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let dir = temp_dir(name);
    let config = r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [tls.test]
    tls: {mode: SIMPLE, credentialName: tls-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [tls.test]
  gateways: [istio-system/gw]
  http:
  - directResponse: {status: 200, body: {string: tls ok}}
";
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let creds = temp_dir(&format!("{name}-creds"));
    std::fs::create_dir_all(creds.join("tls-cert")).unwrap();
    std::fs::write(creds.join("tls-cert/tls.crt"), cert.pem()).unwrap();
    std::fs::write(creds.join("tls-cert/tls.key"), key.serialize_pem()).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = options(&dir, &log)
        .credentials_dir(creds)
        .limits(Limits::default().with_handshake_timeout(Duration::from_secs(30)));
    let gw = opts.start().unwrap();
    let port = gw.local_addr(443).unwrap().port();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Tls {
        port,
        client: Arc::new(client),
        gw,
    }
}

#[tokio::test]
async fn stalled_client_hellos_cost_no_cpu() {
    let _alone = CPU.write().await;
    let tls = tls_gateway("stalled-hellos");
    // The start of a ClientHello record announcing 512 bytes, and then nothing.
    const PARTIAL: &[u8] = &[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(("127.0.0.1", tls.port)).await.unwrap();
        s.write_all(PARTIAL).await.unwrap();
        stalled.push(s);
    }
    let accepted = eventually(Duration::from_secs(10), || {
        tls.gw
            .metrics()
            .contains("portcullis_downstream_cx_total 200")
    })
    .await;
    assert!(accepted, "{}", tls.gw.metrics());
    // Let the first reads happen, then measure a quiet second.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = process_cpu();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = process_cpu() - before;
    eprintln!("CPU over one second with 200 stalled ClientHellos: {spent:?}");
    assert!(
        spent < Duration::from_millis(100),
        "200 stalled ClientHellos took {spent:?} of CPU in one second"
    );
    // They are all still waiting, not closed.
    for s in &mut stalled {
        let mut byte = [0u8; 1];
        assert!(
            within(Duration::from_millis(1), s.read(&mut byte))
                .await
                .is_none(),
            "a stalled connection was closed early"
        );
    }
    drop(stalled);
    tls.gw.shutdown();
}

/// Writes the first `first` bytes alone, waits `pause`, then writes the rest as asked.
struct SplitFirstWrite {
    inner: TcpStream,
    first: Option<usize>,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl tokio::io::AsyncRead for SplitFirstWrite {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SplitFirstWrite {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if let Some(first) = self.first {
            let n = first.min(buf.len());
            let written = std::pin::Pin::new(&mut self.inner).poll_write(cx, &buf[..n]);
            if let Poll::Ready(Ok(_)) = written {
                self.first = None;
                self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(300))));
            }
            return written;
        }
        if let Some(pause) = &mut self.pause {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_client_hello_split_over_two_writes_still_handshakes() {
    let _shared = CPU.read().await;
    let tls = tls_gateway("split-hello");
    for first in [3, 40] {
        let tcp = TcpStream::connect(("127.0.0.1", tls.port)).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let io = SplitFirstWrite {
            inner: tcp,
            first: Some(first),
            pause: None,
        };
        let name = rustls::pki_types::ServerName::try_from("tls.test").unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(Arc::clone(&tls.client))
            .connect(name, io)
            .await
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: tls.test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with("tls ok"), "{out}");
    }
    tls.gw.shutdown();
}

// === HTTP/2 connections time out ===

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `GET /` for host `x`, HPACK-encoded with the static table only.
const GET_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x41, 0x01, b'x'];

/// The frames in `bytes` (complete ones): type, flags, stream, payload.
fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest.len() < 9 + len {
            break;
        }
        let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        out.push((rest[3], rest[4], stream, rest[9..9 + len].to_vec()));
        rest = &rest[9 + len..];
    }
    out
}

/// A gateway in front of an echo upstream with these HTTP/2 timeouts.
fn h2_gateway(name: &str, header: Duration, idle: Duration) -> (u16, Gateway) {
    let up = echo();
    let dir = temp_dir(name);
    std::fs::write(dir.join("config.yaml"), http_config(80, up, "")).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let opts = options(&dir, &log).limits(
        Limits::default()
            .with_header_timeout(header)
            .with_idle_timeout(idle)
            .with_drain_timeout(Duration::from_millis(300)),
    );
    let gw = opts.start().unwrap();
    (gw.local_addr(80).unwrap().port(), gw)
}

#[tokio::test]
async fn an_h2_connection_without_requests_closes_at_the_idle_timeout() {
    let _shared = CPU.read().await;
    let (port, gw) = h2_gateway(
        "h2-idle",
        Duration::from_millis(300),
        Duration::from_millis(600),
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let start = Instant::now();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let out = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("the idle HTTP/2 connection is closed");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(500), "closed after {took:?}");
    let got = frames(&out);
    assert!(
        got.iter().any(|f| f.0 == GOAWAY),
        "no GOAWAY before the close: {got:?}"
    );
    gw.shutdown();
}

#[tokio::test]
async fn an_unfinished_h2_header_block_closes_at_the_header_timeout() {
    let _shared = CPU.read().await;
    // The idle timeout is long: only the header timeout can end this connection.
    let (port, gw) = h2_gateway(
        "h2-headers",
        Duration::from_millis(300),
        Duration::from_secs(60),
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    // A HEADERS frame without END_HEADERS: its CONTINUATION never comes.
    s.write_all(&frame(HEADERS, END_STREAM, 1, &GET_BLOCK[..3]))
        .await
        .unwrap();
    let closed = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "the unfinished header block kept the connection"
    );
    gw.shutdown();
}

#[tokio::test]
async fn an_h2_connection_quiet_after_a_request_closes_at_the_idle_timeout() {
    let _shared = CPU.read().await;
    let (port, gw) = h2_gateway(
        "h2-quiet",
        Duration::from_millis(300),
        Duration::from_millis(600),
    );
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // The client pings every 100 ms: pings do not make a connection busy.
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("http://x:{port}/one"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await.unwrap();
    let quiet_since = Instant::now();
    let ended = within(Duration::from_secs(10), conn).await;
    assert!(ended.is_some(), "the quiet HTTP/2 connection stayed open");
    let quiet = quiet_since.elapsed();
    assert!(
        quiet >= Duration::from_millis(500),
        "closed after {quiet:?}"
    );
    gw.shutdown();
}

#[tokio::test]
async fn h2_streams_past_the_limit_are_refused() {
    let _shared = CPU.read().await;
    let up = echo();
    let dir = temp_dir("h2-streams");
    std::fs::write(dir.join("config.yaml"), http_config(80, up, "")).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    // The default limits.
    let gw = options(&dir, &log).start().unwrap();
    let port = gw.local_addr(80).unwrap().port();
    let limit = gw_limit();
    assert!(
        limit <= 1000,
        "no practical limit on HTTP/2 streams: {limit}"
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    let mut out = frame(SETTINGS, 0, 0, &[]);
    // Requests whose bodies never come: each stream stays open.
    for i in 0..=limit {
        out.extend(frame(HEADERS, END_HEADERS, 2 * i + 1, GET_BLOCK));
    }
    s.write_all(&out).await.unwrap();
    let last = 2 * limit + 1;
    let mut read = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let refused = within(Duration::from_secs(10), async {
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {:?}", frames(&read));
            read.extend_from_slice(&buf[..n]);
            if frames(&read)
                .iter()
                .any(|f| f.0 == RST_STREAM && f.2 == last && f.3 == [0, 0, 0, 7])
            {
                break;
            }
        }
    })
    .await;
    let got = frames(&read);
    assert!(
        refused.is_some(),
        "stream {last} was not refused: {:?}",
        got.iter().map(|f| (f.0, f.2)).collect::<Vec<_>>()
    );
    // The server's SETTINGS say so (MAX_CONCURRENT_STREAMS, id 3).
    let settings = got
        .iter()
        .find(|f| f.0 == SETTINGS && f.1 == 0)
        .expect("server SETTINGS");
    let advertised = settings
        .3
        .chunks(6)
        .find(|c| c[..2] == [0, 3])
        .map(|c| u32::from_be_bytes([c[2], c[3], c[4], c[5]]));
    assert_eq!(advertised, Some(limit));
    // No stream below the limit was refused.
    assert!(
        !got.iter().any(|f| f.0 == RST_STREAM && f.2 < last),
        "{got:?}"
    );
    gw.shutdown();
}

/// The default limit on concurrent HTTP/2 streams.
fn gw_limit() -> u32 {
    Limits::default().max_concurrent_streams
}
