//! The gateway behind a load balancer (Istio's `gatewayTopology`): PROXY protocol v1 and v2
//! headers give the client's address, trusted proxies' `x-forwarded-for` entries are believed
//! only as far as configured, and a cap on downstream connections closes the ones past it.
//! Raw bytes on 127.0.0.1 against the gateway in front of an echo upstream that writes back
//! the request headers it received.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_gateway::{Gateway, Limits, Topology};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

mod common;

/// The echo gateway of `common` with `topology` and `limits`; the gateway, its port and its
/// access log.
fn start(
    name: &str,
    topology: Topology,
    limits: Limits,
) -> (Gateway, u16, Arc<Mutex<Vec<String>>>) {
    let common::EchoGateway { gateway, port, log } =
        common::echo_gateway(name, |b| b.topology(topology).limits(limits));
    (gateway, port, log)
}

/// Writes `parts` with a pause between them, then reads until the gateway closes the
/// connection (or 5 s): everything it answered.
async fn exchange(port: u16, parts: &[&[u8]], pause: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        if s.write_all(part).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of header `name` in the echo's answer (the request as the upstream got it).
fn upstream_header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n";

/// A v2 header for TCP over IPv4 from `src` to 10.0.0.1:80.
fn proxy_v2(src: [u8; 4], port: u16) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&[10, 0, 0, 1]);
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&80u16.to_be_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_headers_carry_the_client_address() {
    let (gw, port, log) = start(
        "proxy",
        Topology::new().with_proxy_protocol(true),
        Limits::default().with_header_timeout(Duration::from_millis(500)),
    );

    // v1, then the request in the same segment.
    let v1 = [
        b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n".as_slice(),
        GET,
    ]
    .concat();
    let answer = exchange(port, &[&v1], Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        upstream_header(&answer, "x-forwarded-for"),
        Some("203.0.113.7")
    );
    assert_eq!(
        upstream_header(&answer, "x-envoy-external-address"),
        Some("203.0.113.7")
    );

    // v2 (binary), split across two writes, the second after a pause.
    let v2 = proxy_v2([198, 51, 100, 9], 40000);
    let answer = exchange(
        port,
        &[&v2[..7], &[&v2[7..], GET].concat()],
        Duration::from_millis(100),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        upstream_header(&answer, "x-forwarded-for"),
        Some("198.51.100.9")
    );

    // A v2 LOCAL command (the load balancer's own health check): the socket's address.
    let mut local = proxy_v2([198, 51, 100, 9], 40000);
    local[12] = 0x20;
    let answer = exchange(port, &[&[&local[..], GET].concat()], Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        upstream_header(&answer, "x-forwarded-for"),
        Some("127.0.0.1")
    );

    // The access log shows the client's address.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("\"198.51.100.9\""))
    {
        assert!(Instant::now() < deadline, "{:#?}", log.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // No header, a malformed one, or one that never completes: closed without an answer.
    assert_eq!(exchange(port, &[GET], Duration::ZERO).await, "");
    assert_eq!(
        exchange(
            port,
            &[b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n", GET],
            Duration::ZERO
        )
        .await,
        ""
    );
    let started = Instant::now();
    assert_eq!(
        exchange(port, &[b"PROXY TCP4 203.0"], Duration::ZERO).await,
        ""
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        gw.metrics()
            .contains("portcullis_downstream_cx_proxy_proto_error_total 3"),
        "{}",
        gw.metrics()
    );
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let forged: &[u8] = b"GET /x HTTP/1.1\r\nhost: shop.example.com\r\n\
        x-forwarded-for: 6.6.6.6, 203.0.113.7\r\nconnection: close\r\n\r\n";

    // None trusted (the default): the peer is the client; the header is appended to.
    let (gw, port, _) = start("untrusted", Topology::new(), Limits::default());
    let answer = exchange(port, &[forged], Duration::ZERO).await;
    assert_eq!(
        upstream_header(&answer, "x-forwarded-for"),
        Some("6.6.6.6, 203.0.113.7,127.0.0.1"),
        "{answer}"
    );
    assert_eq!(
        upstream_header(&answer, "x-envoy-external-address"),
        Some("127.0.0.1")
    );
    // A request from the (internal) peer with no header of its own is internal: no external
    // address, nothing to forge.
    let answer = exchange(port, &[GET], Duration::ZERO).await;
    assert_eq!(upstream_header(&answer, "x-envoy-external-address"), None);
    gw.shutdown();

    // One trusted proxy: the entry it appended, the rightmost.
    let (gw, port, _) = start(
        "trusted",
        Topology::new().with_trusted_proxies(1),
        Limits::default(),
    );
    let answer = exchange(port, &[forged], Duration::ZERO).await;
    assert_eq!(
        upstream_header(&answer, "x-envoy-external-address"),
        Some("203.0.113.7"),
        "{answer}"
    );
    gw.shutdown();

    // Two trusted: one further left.
    let (gw, port, _) = start(
        "trusted2",
        Topology::new().with_trusted_proxies(2),
        Limits::default(),
    );
    let answer = exchange(port, &[forged], Duration::ZERO).await;
    assert_eq!(
        upstream_header(&answer, "x-envoy-external-address"),
        Some("6.6.6.6"),
        "{answer}"
    );
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_and_the_others_served() {
    let (gw, port, _) = start(
        "cap",
        Topology::new(),
        Limits::default().with_max_connections(Some(2)),
    );
    let keep_alive = b"GET /x HTTP/1.1\r\nhost: shop.example.com\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(keep_alive).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        open.push(s);
    }
    // The third is closed at once, before it can send anything.
    let mut third = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("closed, not left waiting")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        gw.metrics()
            .contains("portcullis_downstream_cx_overflow_total 1"),
        "{}",
        gw.metrics()
    );
    // The open ones go on being served.
    for s in &mut open {
        s.write_all(keep_alive).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    // Once one closes, a new connection is served again.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = exchange(port, &[GET], Duration::ZERO).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "a place never came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.shutdown();
}
