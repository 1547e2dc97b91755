//! The gateway's life from the public API: configuration sources (files, objects in memory,
//! snapshots pushed through a channel), serving on the caller's runtime, reloads and the
//! graceful drain.
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
use portcullis_gateway::source::{self, Objects};
use portcullis_gateway::{AccessLog, Gateway, GatewayBuilder, GatewayHandle};
use portcullis_model::{Loaded, Loader};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// An upstream answering `<name>`; `/slow` after two seconds.
async fn upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| async move {
                    if req.uri().path() == "/slow" {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(name))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A Gateway on port 80 routing everything to `shop.test`, whose endpoints are `upstreams`
/// with their weights.
fn config(upstreams: &[(SocketAddr, u32)]) -> Loaded {
    config_on(80, upstreams)
}

/// [`config`] with the Gateway's server on `port`.
fn config_on(port: u16, upstreams: &[(SocketAddr, u32)]) -> Loaded {
    let mut eps = String::new();
    let mut routes = String::new();
    for (i, (addr, weight)) in upstreams.iter().enumerate() {
        eps.push_str(&format!(
            "  - {{address: {}, ports: {{http: {}}}, labels: {{version: v{i}}}}}\n",
            addr.ip(),
            addr.port()
        ));
        routes.push_str(&format!(
            "    - destination: {{host: shop.test, subset: v{i}}}\n      weight: {weight}\n"
        ));
    }
    let mut subsets = String::new();
    for i in 0..upstreams.len() {
        subsets.push_str(&format!("  - {{name: v{i}, labels: {{version: v{i}}}}}\n"));
    }
    let text = format!(
        r"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
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
{eps}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: shop, namespace: istio-system}}
spec:
  host: shop.test
  subsets:
{subsets}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - route:
{routes}"
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
        .random_seed(7)
}

/// One HTTP/1.1 request on a new connection: the status, the `connection` header and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: shop.example.com\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
            if buf.len() >= end + 4 + length {
                let status = head[9..12].parse().unwrap();
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                return (status, header(&head, "connection"), body);
            }
        }
    }
    panic!("connection closed early: {}", String::from_utf8_lossy(&buf));
}

/// Waits up to `within` for `done`, failing with `what` when it does not come.
async fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for the gateway of `handle` to stop, and checks that nothing listens on `addr` any
/// more once it says so.
async fn assert_stopped_and_closed(handle: &GatewayHandle, addr: SocketAddr) {
    tokio::time::timeout(Duration::from_secs(5), handle.stopped())
        .await
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

#[tokio::test]
async fn a_drain_fails_ready_finishes_requests_closes_connections_and_stops() {
    let up = upstream("shop").await;
    let gw = builder()
        .config(Objects::from_loaded(&config(&[(up, 100)])))
        .drain_time(Duration::from_secs(5))
        .start()
        .unwrap();
    let addr = gw.local_addr(80).unwrap();
    let admin = gw.admin_addr().unwrap();
    let (status, _, body) = get(admin, "/ready").await;
    assert_eq!((status, body.as_str()), (200, "LIVE\n"));
    let (status, connection, _) = get(addr, "/").await;
    assert_eq!((status, connection), (200, None));

    // A request that takes two seconds, in flight when the drain starts.
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let handle = gw.handle();
    let drain_started = Instant::now();
    handle.drain();
    assert!(handle.is_draining());

    // Readiness fails at once; new connections are still served, and closed.
    let (status, _, body) = get(admin, "/ready").await;
    assert_eq!((status, body.as_str()), (503, "DRAINING\n"));
    let (status, connection, body) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert_eq!(body, "shop");
    assert_eq!(connection.as_deref(), Some("close"));

    // The request in flight finishes, then the gateway stops, well within the drain time.
    let (status, _, body) = slow.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "shop"));
    tokio::task::spawn_blocking(move || gw.wait())
        .await
        .unwrap();
    let took = drain_started.elapsed();
    assert!(took < Duration::from_secs(4), "the drain took {took:?}");
    handle.stopped().await;
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

#[tokio::test]
async fn a_drain_ends_at_the_drain_time_with_requests_in_flight() {
    let up = upstream("shop").await;
    let gw = builder()
        .config(Objects::from_loaded(&config(&[(up, 100)])))
        .drain_time(Duration::from_millis(500))
        .start()
        .unwrap();
    let addr = gw.local_addr(80).unwrap();
    let slow = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
        buf
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::task::spawn_blocking(move || gw.drain())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // The connection ended with the gateway, before the upstream answered.
    assert!(slow.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_on_the_callers_runtime_a_pushed_snapshot_swaps_and_an_invalid_one_is_refused() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let (sender, pushed) = source::channel(config(&[(a, 100)]).into_documents());
    let gw = builder().config(pushed).serve().await.unwrap();
    let addr = gw.local_addr(80).unwrap();
    assert_eq!(get(addr, "/").await.2, "a");
    assert_eq!(gw.generation(), 1);

    sender.send(config(&[(b, 100)]).into_documents());
    wait_until("no swap", Duration::from_secs(10), || gw.generation() == 2).await;
    assert_eq!(get(addr, "/").await.2, "b");

    // A VirtualService without hosts: refused, generation 2 keeps serving.
    let mut bad = config(&[(a, 100)]).into_documents();
    let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                metadata: {name: bad, namespace: istio-system}\n\
                spec: {hosts: [], gateways: [gw], http: [{route: [{destination: {host: shop.test}}]}]}\n";
    let loaded = Loader::new().read_str("bad.yaml", text);
    assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());
    bad.extend(loaded.into_documents());
    sender.send(bad);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.generation(), 2);
    assert_eq!(get(addr, "/").await.2, "b");
    assert!(
        gw.metrics()
            .contains("portcullis_config_rejections_total 1"),
        "{}",
        gw.metrics()
    );

    let handle = gw.handle();
    handle.drain();
    assert_stopped_and_closed(&handle, addr).await;
}

/// A shutdown from a handle: once `stopped` resolves, nothing listens (the port can be bound
/// again at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_shutdown_stopped_means_the_listeners_are_closed() {
    let up = upstream("shop").await;
    let gw = builder()
        .config(Objects::from_loaded(&config(&[(up, 100)])))
        .serve()
        .await
        .unwrap();
    let addr = gw.local_addr(80).unwrap();
    assert_eq!(get(addr, "/").await.2, "shop");
    let handle = gw.handle();
    handle.shutdown();
    assert_stopped_and_closed(&handle, addr).await;
}

/// The embedder's socket serves the Gateway's port on each of two workers. While a
/// configuration has no server on the port nothing accepts from it and a connection waits in
/// its backlog; the configuration that brings the port back answers it. The socket closes
/// with the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedders_socket_serves_its_port_and_keeps_it_across_reloads() {
    let up = upstream("shop").await;
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (sender, pushed) = source::channel(config(&[(up, 100)]).into_documents());
    let gw = Gateway::builder()
        .workers(2)
        .admin(None)
        .port_listener(80, socket)
        .port_binding(81, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Off)
        .config(pushed)
        .start()
        .unwrap();
    assert_eq!(gw.local_addr(80), Some(addr));
    for _ in 0..8 {
        assert_eq!(get(addr, "/").await.2, "shop");
    }

    sender.send(config_on(81, &[(up, 100)]).into_documents());
    // Swapped, and the accept loops on port 80 are gone.
    wait_until("port 80 still served", Duration::from_secs(10), || {
        gw.generation() == 2 && gw.local_addr(80).is_none()
    })
    .await;
    let mut waiting = TcpStream::connect(addr).await.unwrap();
    waiting
        .write_all(b"GET / HTTP/1.1\r\nhost: shop.example.com\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let unanswered =
        tokio::time::timeout(Duration::from_millis(300), waiting.read(&mut answer)).await;
    assert!(unanswered.is_err(), "answered with no server on the port");

    sender.send(config(&[(up, 100)]).into_documents());
    let n = tokio::time::timeout(Duration::from_secs(10), waiting.read(&mut answer))
        .await
        .expect("the waiting connection is answered once the port is back")
        .unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..n]
    );
    assert_eq!(gw.generation(), 3);
    assert_eq!(get(addr, "/").await.2, "shop");

    tokio::task::spawn_blocking(move || gw.shutdown())
        .await
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

/// A socket that is not listening cannot serve a port: starting says so.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_socket_that_is_not_listening_is_refused() {
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connected = std::net::TcpStream::connect(peer.local_addr().unwrap()).unwrap();
    let not_listening = std::net::TcpListener::from(std::os::fd::OwnedFd::from(connected));
    let started = Gateway::builder()
        .workers(1)
        .admin(None)
        .port_listener(80, not_listening)
        .access_log(AccessLog::Off)
        .config(Objects::from_loaded(&config(&[(
            peer.local_addr().unwrap(),
            100,
        )])))
        .serve()
        .await;
    let Err(error) = started else {
        panic!("started on a socket that is not listening");
    };
    assert!(error.to_string().contains("not listening"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_traffic_on_the_callers_runtime() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let gw = builder()
        .config(Objects::from_loaded(&config(&[(a, 80), (b, 20)])))
        .serve()
        .await
        .unwrap();
    let addr = gw.local_addr(80).unwrap();
    let mut to_a = 0;
    let total = 2000;
    for _ in 0..total {
        if get(addr, "/").await.2 == "a" {
            to_a += 1;
        }
    }
    let share = f64::from(to_a) / f64::from(total) * 100.0;
    assert!((77.0..=83.0).contains(&share), "{share}% to the 80 % side");
    gw.handle().shutdown();
}

/// A source whose second load blocks until the test lets it go (or five seconds pass, which
/// the test then reports as a failure).
#[derive(Debug)]
struct BlockingSource {
    loaded: Loaded,
    loads: usize,
    change: std::sync::Arc<tokio::sync::Notify>,
    started: std::sync::mpsc::Sender<()>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    released_by_timeout: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl source::ConfigSource for BlockingSource {
    fn load(&mut self) -> Loaded {
        self.loads += 1;
        if self.loads > 1 {
            let _ = self.started.send(());
            let release = self.release.lock().unwrap();
            if release.recv_timeout(Duration::from_secs(5)).is_err() {
                self.released_by_timeout
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.loaded.clone()
    }

    fn changed(&mut self) -> source::Changed<'_> {
        let change = std::sync::Arc::clone(&self.change);
        Box::pin(async move { change.notified().await })
    }
}

// A current-thread runtime: the control task and the connections share its one thread, as a
// gateway with one worker on the caller's thread does; a configuration being built must not
// hold up the requests.
#[tokio::test]
async fn requests_are_served_while_a_change_is_being_built() {
    let up = upstream("shop").await;
    let change = std::sync::Arc::new(tokio::sync::Notify::new());
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let released_by_timeout = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let source = BlockingSource {
        loaded: config(&[(up, 100)]),
        loads: 0,
        change: std::sync::Arc::clone(&change),
        started: started_tx,
        release: std::sync::Mutex::new(release_rx),
        released_by_timeout: std::sync::Arc::clone(&released_by_timeout),
    };
    let gw = builder().config(source).serve().await.unwrap();
    let addr = gw.local_addr(80).unwrap();
    assert_eq!(get(addr, "/").await.0, 200);

    change.notify_one();
    let deadline = Instant::now() + Duration::from_secs(5);
    while started_rx.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the change was not loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The load is blocked now; a request is still answered.
    let answered = tokio::time::timeout(Duration::from_secs(3), get(addr, "/")).await;
    release_tx.send(()).unwrap();
    assert!(
        !released_by_timeout.load(std::sync::atomic::Ordering::SeqCst),
        "the request waited for the configuration build"
    );
    assert_eq!(answered.expect("no answer during the build").0, 200);
    wait_until("no swap", Duration::from_secs(5), || gw.generation() == 2).await;
    gw.handle().shutdown();
}
