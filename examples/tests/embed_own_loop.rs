//! The own-loop embedding example (`examples/embed/own_loop.rs`): its snapshot and serving
//! function, run here against a local upstream, forward a request and bring its response
//! back.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use portcullis_gateway::{AccessLog, Worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[allow(dead_code, unreachable_pub)]
#[path = "../embed/own_loop.rs"]
mod own_loop;

/// An upstream that records the head of each request it gets and answers 200 `hello`.
async fn upstream(received: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                received
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-upstream: yes\r\n\r\nhello";
                stream.write_all(reply).await.unwrap();
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_request_goes_through_forward_to_the_upstream_and_back() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let up = upstream(Arc::clone(&received)).await;
    let snapshot = own_loop::snapshot(up).await.unwrap();
    assert_eq!(snapshot.ports(), [own_loop::PORT]);

    let log = Arc::new(Mutex::new(Vec::new()));
    let worker = Worker::new(AccessLog::Capture(Arc::clone(&log)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(own_loop::serve(listener, snapshot.clone(), worker));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/some/path?q=1")
        .header("host", "shop.example")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-upstream"], "yes");
    assert_eq!(resp.headers()["server"], "istio-envoy");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    let head = received[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /some/path?q=1 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nhost: shop.example\r\n"), "{head}");
    assert!(head.contains("\r\nx-forwarded-proto: http\r\n"), "{head}");
    assert!(head.contains("\r\nx-request-id: "), "{head}");

    // The access log line, written as the response ended.
    let lines = log.lock().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("\"GET /some/path?q=1 HTTP/1.1\" 200 - "),
        "{lines:?}"
    );
}

/// `forward` takes a body of any type, not only hyper's: here a `Full`, boxed on the way.
#[tokio::test]
async fn forward_takes_a_body_of_another_type() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let up = upstream(Arc::clone(&received)).await;
    let snapshot = own_loop::snapshot(up).await.unwrap();
    let worker = Worker::new(AccessLog::Off);
    let from = portcullis_gateway::Downstream::new(own_loop::PORT, ([127, 0, 0, 1], 40000).into());
    let req = Request::post("/upload")
        .header("host", "shop.example")
        .body(http_body_util::Full::new(Bytes::from_static(b"ping")))
        .unwrap();
    let resp = portcullis_gateway::forward(&snapshot, &worker, &from, req).await;
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(
        received[0]
            .to_ascii_lowercase()
            .starts_with("post /upload http/1.1\r\n"),
        "{received:?}"
    );
    // The worker's pools, as an embedder watches them: the plaintext one the request used.
    let pools = worker.upstream_pools();
    assert_eq!(pools.pools, 1, "{pools:?}");
    assert_eq!(pools.http2, 0, "{pools:?}");
}
