//! The example gateway binary on SIGTERM, as Kubernetes stops a pod: `/ready` fails at once, a
//! request in flight (two seconds long) completes with 200, a new request during the drain is
//! served with `connection: close`, and the process exits 0 within the drain period.
//!
//! `cargo test` builds the package's examples before its tests, so the binary is the
//! `gateway` example next to this test's own executable.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The `gateway` example built alongside this test (`target/<profile>/examples/gateway`).
fn gateway_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("examples").join("gateway");
    assert!(
        bin.exists(),
        "no gateway example at {} (cargo test builds it)",
        bin.display()
    );
    bin
}

/// An upstream that answers `/slow` after two seconds and anything else at once.
fn slow_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let slow = line.contains(" /slow ");
                    // Skip the rest of the head (requests here have no body).
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    if slow {
                        thread::sleep(Duration::from_secs(2));
                    }
                    let body = if slow { "slow" } else { "fast" };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on a new connection: (status, `connection` header, body).
fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let connection = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("connection")
            .then(|| v.trim().to_owned())
    });
    (status, connection, body.to_owned())
}

/// Reads the gateway's stderr until its start-up line, then keeps draining it (a full pipe
/// would block the gateway); returns the admin address.
fn admin_address(child: &mut Child) -> SocketAddr {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if !sent && let Some(rest) = line.split("admin on http://").nth(1) {
                let _ = tx.send(rest.trim_end_matches('/').to_owned());
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the gateway did not announce its admin listener");
    addr.parse().unwrap()
}

/// Kills the child if the test fails before it exits.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn sigterm_fails_ready_finishes_the_request_in_flight_and_exits_zero() {
    let up = slow_upstream();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("portcullis-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
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
metadata: {{name: shop, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{{destination: {{host: shop.test}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shop, namespace: default}}
spec:
  hosts: [shop.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: {}, ports: {{http: {}}}}}
",
            up.ip(),
            up.port()
        ),
    )
    .unwrap();

    let child = Command::new(gateway_binary())
        .args([
            "--workers",
            "2",
            "--admin",
            "127.0.0.1:0",
            "--drain-time",
            "5",
        ])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reap(Some(child));
    let admin = admin_address(child.0.as_mut().unwrap());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(get(admin, "/ready").0, 200);
    assert_eq!(get(addr, "/").0, 200);

    // A two-second request, in flight when SIGTERM arrives.
    let slow = thread::spawn(move || get(addr, "/slow"));
    thread::sleep(Duration::from_millis(300));
    let pid = child.0.as_ref().unwrap().id().to_string();
    let term_sent = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success(), "kill -TERM failed");

    // Readiness fails at once (poll briefly: the signal is delivered asynchronously).
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (status, _, body) = get(admin, "/ready");
        if status == 503 {
            assert_eq!(body, "DRAINING\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready still {status} after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // A new request during the drain is served, with `connection: close`.
    let (status, connection, body) = get(addr, "/");
    assert_eq!((status, body.as_str()), (200, "fast"));
    assert_eq!(connection.as_deref(), Some("close"));

    // The request in flight completes; the process exits 0 within the drain period.
    let (status, _, body) = slow.join().unwrap();
    assert_eq!((status, body.as_str()), (200, "slow"));
    let mut child = child.0.take().unwrap();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            term_sent.elapsed() < Duration::from_secs(5),
            "still running at the end of the drain period"
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    let _ = std::fs::remove_dir_all(&dir);
}
