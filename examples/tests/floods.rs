//! Floods and slow clients against the gateway, as an attacker would send them: HTTP/2 rapid
//! reset (CVE-2023-44487), CONTINUATION floods (CVE-2024-27316 and kin), SETTINGS and PING
//! floods, and slowloris on HTTP/1.1. Each is bounded in count and time, sent on 127.0.0.1, and
//! checked two ways: the abusive connection is cut off (or made harmless), and an ordinary
//! client on another connection is served meanwhile.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use portcullis_gateway::{Gateway, Limits};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

mod common;

/// The echo gateway of `common` with `limits`.
fn start(name: &str, limits: Limits) -> (Gateway, u16) {
    let gw = common::echo_gateway(name, |b| b.limits(limits));
    (gw.gateway, gw.port)
}

/// An ordinary HTTP/1.1 request on a new connection is answered 200 within `limit`.
async fn still_served(port: u16, limit: Duration) {
    let exchange = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    };
    let out = tokio::time::timeout(limit, exchange)
        .await
        .expect("an ordinary client waited too long");
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// `GET /` for host `x`, HPACK-encoded with the static table only.
const GET_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x41, 0x01, b'x'];

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Whether `bytes` hold a GOAWAY frame (after the server's SETTINGS and whatever else).
fn has_goaway(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest[3] == GOAWAY {
            return true;
        }
        if rest.len() < 9 + len {
            return false;
        }
        rest = &rest[9 + len..];
    }
    false
}

/// Writes `data` (ignoring a write refused once the gateway has closed), then reads what the
/// gateway answers until it closes the connection or `limit` passes; what was read, and
/// whether it closed.
async fn flood(port: u16, data: &[u8], limit: Duration) -> (Vec<u8>, bool) {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&data).await;
        wr
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    writer.abort();
    (out, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_is_cut_off() {
    let (gw, port) = start("rapid-reset", Limits::default());
    // 5,000 streams, each opened and cancelled at once (RST_STREAM CANCEL).
    let mut data = PREFACE.to_vec();
    data.extend(frame(SETTINGS, 0, 0, &[]));
    for i in 0..5_000u32 {
        let stream = 2 * i + 1;
        data.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, GET_BLOCK));
        data.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    let (answer, closed) = flood(port, &data, Duration::from_secs(10)).await;
    assert!(
        closed,
        "the connection stayed open after a rapid-reset flood"
    );
    assert!(has_goaway(&answer), "closed without GOAWAY");
    still_served(port, Duration::from_secs(2)).await;
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_floods_are_cut_off() {
    let (gw, port) = start("continuation", Limits::default());
    // A header block that never ends: HEADERS without END_HEADERS, then 2,000 CONTINUATION
    // frames of 16 KiB of literal headers (32 MiB in all, far past the 60 KiB head limit).
    let mut literal = Vec::new();
    while literal.len() < 16 * 1024 - 16 {
        // Literal header field without indexing, new name "x" (1 byte), value of 10 bytes.
        literal.extend_from_slice(&[0x00, 0x01, b'x', 0x0a]);
        literal.extend_from_slice(b"0123456789");
    }
    let mut data = PREFACE.to_vec();
    data.extend(frame(SETTINGS, 0, 0, &[]));
    data.extend(frame(HEADERS, END_STREAM, 1, GET_BLOCK));
    let continuation = frame(CONTINUATION, 0, 1, &literal);
    for _ in 0..2_000 {
        data.extend_from_slice(&continuation);
    }
    let started = Instant::now();
    let (_, closed) = flood(port, &data, Duration::from_secs(10)).await;
    assert!(
        closed,
        "the connection stayed open during a CONTINUATION flood"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    still_served(port, Duration::from_secs(2)).await;
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_ping_floods_do_not_stall_other_clients() {
    let (gw, port) = start(
        "ping",
        Limits::default().with_idle_timeout(Duration::from_secs(1)),
    );
    // 20,000 PINGs and 20,000 SETTINGS, never reading the acknowledgements back.
    let mut data = PREFACE.to_vec();
    for i in 0..20_000u64 {
        data.extend(frame(PING, 0, 0, &i.to_be_bytes()));
        data.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
    }
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&data).await;
        wr
    });
    // While the flood is written (and its answers pile up unread), others are served.
    still_served(port, Duration::from_secs(2)).await;
    // The flooding connection does not live on: acknowledgements keep no stream open, so it
    // closes at the idle timeout at the latest.
    let mut rd = rd;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    writer.abort();
    assert!(closed, "the flooding connection stayed open");
    gw.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_at_the_header_timeout() {
    let header_timeout = Duration::from_millis(500);
    let (gw, port) = start(
        "slowloris",
        Limits::default().with_header_timeout(header_timeout),
    );
    // 50 clients each send a request head one header every 100 ms, never finishing it.
    let mut slow = Vec::new();
    for i in 0..50 {
        slow.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let started = Instant::now();
            let _ = s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await;
            let mut out = Vec::new();
            let mut buf = [0u8; 1024];
            for n in 0.. {
                tokio::select! {
                    read = s.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(k) => out.extend_from_slice(&buf[..k]),
                    },
                    () = tokio::time::sleep(Duration::from_millis(100)) => {
                        let line = format!("x-slow-{i}-{n}: still coming\r\n");
                        if s.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                assert!(started.elapsed() < Duration::from_secs(10), "never closed");
            }
            (started.elapsed(), out)
        }));
    }
    // Meanwhile an ordinary client is served.
    still_served(port, Duration::from_secs(2)).await;
    for handle in slow {
        let (elapsed, answer) = handle.await.unwrap();
        // Timed from the head's first byte, whatever trickles in after it (plus two ticks).
        assert!(elapsed < header_timeout * 4, "{elapsed:?}");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    gw.shutdown();
}
