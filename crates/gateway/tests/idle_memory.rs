//! What an idle keep-alive connection costs the gateway on the heap, so that it cannot grow
//! back unnoticed: at most 4 KiB for an HTTP/1.1 connection between requests (about 2.4 KiB:
//! the connection's task, its context and timers; no buffer), and at most 48 KiB for an
//! HTTP/2 connection between streams. The HTTP/2 figure is what the `h2` crate allocates when
//! a connection starts and keeps for its life: a 16 KiB write buffer, an 8 KiB read buffer
//! and the HPACK tables and decoder buffer; a lower one needs `h2` to allocate its buffers on
//! readiness.
//!
//! The gateway serves on a current-thread runtime on the test's thread, where
//! `allocation-counter` counts every allocation it makes (the counter is per thread). The
//! clients are plain blocking sockets on another thread, so nothing of theirs is counted: the
//! bytes still held once every connection has had one answered request and gone quiet are
//! the gateway's, divided by the number of connections. The upstream runs on a thread of its
//! own as well.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use portcullis_gateway::source::Objects;
use portcullis_gateway::{AccessLog, Gateway};
use portcullis_model::{Loaded, Loader};

/// Connections held idle per measurement: enough for the gateway's shared state (timers,
/// pools, caches) to vanish in the average.
const CONNECTIONS: usize = 400;

/// An upstream on a thread of its own answering every request on a connection with `ok`.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut pending = Vec::new();
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = find(&pending, b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn config(upstream: SocketAddr) -> Loaded {
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
  endpoints: [{{address: {ip}, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - route:
    - destination: {{host: shop.test}}
",
        ip = upstream.ip(),
        port = upstream.port()
    );
    let loaded = Loader::new().read_str("shop.yaml", &text);
    assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());
    loaded
}

/// Reads from `stream` until `done` says the bytes so far are a whole answer.
fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&got) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// One HTTP/1.1 keep-alive request on a new connection, answered; the connection stays open.
fn http1_exchange(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: shop.example.com\r\n\r\n")
        .unwrap();
    let got = read_until(&mut stream, |b| b.ends_with(b"\r\n\r\nok"));
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    stream
}

/// An HTTP/2 frame: length, type, flags, stream and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Whether `bytes` (frames after the server's preface) hold the end of stream 1.
fn stream_one_ended(bytes: &[u8]) -> bool {
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 9) {
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if bytes.len() < at + 9 + len {
            return false;
        }
        // HEADERS or DATA with END_STREAM on stream 1.
        if stream == 1 && (kind == 0 || kind == 1) && flags & 1 == 1 {
            return true;
        }
        at += 9 + len;
    }
    false
}

/// One request over HTTP/2 with prior knowledge on a new connection, answered; the
/// connection stays open with the server's SETTINGS acknowledged.
fn http2_exchange(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    // HPACK: indexed :method GET (2), :scheme http (6), :path / (4), then :authority as a
    // literal with an indexed name (1) and without indexing.
    let authority = b"shop.example.com";
    let mut block = vec![
        0x82,
        0x86,
        0x84,
        0x01,
        u8::try_from(authority.len()).unwrap(),
    ];
    block.extend_from_slice(authority);
    // END_STREAM | END_HEADERS.
    out.extend(frame(1, 0x5, 1, &block));
    stream.write_all(&out).unwrap();
    let got = read_until(&mut stream, stream_one_ended);
    // SETTINGS (type 4) from the server, then the answer: acknowledge the settings.
    assert_eq!(got.get(3), Some(&4), "{got:?}");
    stream.write_all(&frame(4, 1, 0, &[])).unwrap();
    stream
}

/// The heap bytes the gateway still holds per connection once `CONNECTIONS` connections,
/// made by `exchange`, have each had one request answered and gone quiet.
fn held_per_idle_connection(exchange: fn(SocketAddr) -> TcpStream) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = runtime.enter();
    let gateway = runtime.block_on(async {
        Gateway::builder()
            .workers(1)
            .admin(None)
            .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
            .access_log(AccessLog::Off)
            .config(Objects::from_loaded(&config(upstream())))
            .serve()
            .await
            .unwrap()
    });
    let addr = gateway.local_addr(80).unwrap();
    // Whatever the first requests create once (the upstream connection, caches, the timer
    // wheel's levels) is made before counting, by connections of the same kind, then closed.
    let warm = runtime.block_on(clients(addr, exchange, 8));
    drop(warm);
    runtime.block_on(tokio::time::sleep(Duration::from_millis(200)));

    let mut idle = Vec::new();
    let held = allocation_counter::measure(|| {
        idle = runtime.block_on(clients(addr, exchange, CONNECTIONS));
        // Each connection's task gets back to waiting for its next request.
        runtime.block_on(tokio::time::sleep(Duration::from_millis(200)));
    });
    assert_eq!(idle.len(), CONNECTIONS);
    gateway.shutdown();
    held.bytes_current / i64::try_from(CONNECTIONS).unwrap()
}

/// Runs `count` exchanges on a thread of their own while the gateway serves on this one.
async fn clients(
    addr: SocketAddr,
    exchange: fn(SocketAddr) -> TcpStream,
    count: usize,
) -> Vec<TcpStream> {
    let client = thread::spawn(move || (0..count).map(|_| exchange(addr)).collect::<Vec<_>>());
    while !client.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.join().unwrap()
}

#[test]
fn an_idle_http1_keep_alive_connection_holds_at_most_4_kib() {
    let held = held_per_idle_connection(http1_exchange);
    println!("idle HTTP/1.1 connection: {held} bytes held");
    assert!(
        held <= 4096,
        "an idle HTTP/1.1 connection holds {held} bytes"
    );
}

#[test]
fn an_idle_http2_connection_holds_at_most_48_kib() {
    let held = held_per_idle_connection(http2_exchange);
    println!("idle HTTP/2 connection: {held} bytes held");
    assert!(
        held <= 48 * 1024,
        "an idle HTTP/2 connection holds {held} bytes"
    );
}
