//! The built-in demo: its configuration, a self-signed certificate, and echo upstreams that
//! answer with who they are and the request they received.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use portcullis_tls::{InMemoryCredentialStore, SecretData};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// The demo configuration (`examples/gateway/demo.yaml`).
pub const DEMO_YAML: &str = include_str!("../gateway/demo.yaml");

/// The echo upstreams the demo configuration points at: port, service, version.
pub const ECHO_SERVICES: &[(u16, &str, &str)] = &[
    (9081, "productpage", "v1"),
    (9082, "reviews", "v1"),
    (9083, "reviews", "v2"),
    (9084, "reviews", "v3"),
    (9085, "ratings", "v1"),
    (9086, "details", "v1"),
];

/// A self-signed certificate for `localhost`, `bookinfo.example.com` and `127.0.0.1`, as the
/// credential `demo-cert`. Returns the store and the certificate's PEM (for `curl --cacert`).
///
/// # Errors
/// When rcgen or the store refuses (never with these inputs).
pub fn credentials() -> Result<(Arc<InMemoryCredentialStore>, String), String> {
    let names = vec![
        "localhost".to_owned(),
        "bookinfo.example.com".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    self_signed("demo-cert", names)
}

/// A self-signed certificate for `names`, stored as the credential `name`.
///
/// # Errors
/// When rcgen or the store refuses.
pub fn self_signed(
    name: &str,
    names: Vec<String>,
) -> Result<(Arc<InMemoryCredentialStore>, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(names)
        .map_err(|e| e.to_string())?
        .self_signed(&key)
        .map_err(|e| e.to_string())?;
    let store = InMemoryCredentialStore::new(Arc::new(rustls::crypto::ring::default_provider()));
    let mut secret = SecretData::new();
    secret.insert("tls.crt".into(), cert.pem().into_bytes());
    secret.insert("tls.key".into(), key.serialize_pem().into_bytes());
    store
        .insert_secret(name, &secret)
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(store), cert.pem()))
}

/// Serves echo responses on `listener` forever: `service`, `version`, the request line and
/// headers it received, and the size of the body. A request with an `upgrade` header gets
/// `101 Switching Protocols` and then every byte echoed back.
pub async fn echo_server(listener: TcpListener, service: String, version: String) {
    let service: Arc<str> = Arc::from(service);
    let version: Arc<str> = Arc::from(version);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = Arc::clone(&service);
        let version = Arc::clone(&version);
        tokio::spawn(async move {
            let svc = service_fn(move |req| echo(req, Arc::clone(&service), Arc::clone(&version)));
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn echo(
    mut req: Request<Incoming>,
    service: Arc<str>,
    version: Arc<str>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.headers().contains_key(UPGRADE) {
        let upgrade = req.headers().get(UPGRADE).cloned();
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 4096];
                while let Ok(n) = io.read(&mut buf).await {
                    let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                        break;
                    };
                    if io.write_all(chunk).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        resp.headers_mut()
            .insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
        if let Some(u) = upgrade {
            resp.headers_mut().insert(UPGRADE, u);
        }
        return Ok(resp);
    }
    let mut text = String::with_capacity(512);
    let _ = writeln!(text, "service: {service}\nversion: {version}");
    let _ = writeln!(
        text,
        "{} {} {:?}",
        req.method(),
        req.uri()
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str),
        req.version()
    );
    for (k, v) in req.headers() {
        let _ = writeln!(text, "{k}: {}", String::from_utf8_lossy(v.as_bytes()));
    }
    if req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(':').next().is_some_and(|h| h.ends_with("-shadow")))
    {
        eprintln!(
            "echo {service} {version}: mirrored request {} {}",
            req.method(),
            req.uri()
        );
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let _ = writeln!(text, "body bytes: {body}");
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp.headers_mut().insert(
        "x-echo-service",
        http::HeaderValue::from_str(&format!("{service}-{version}"))
            .unwrap_or_else(|_| http::HeaderValue::from_static("echo")),
    );
    Ok(resp)
}

/// Starts echo servers on their own thread (one single-threaded runtime), returning the bound
/// addresses in order (port 0 binds an ephemeral port).
///
/// # Errors
/// When a port cannot be bound.
pub fn start_echo_servers(specs: &[(SocketAddr, String, String)]) -> io::Result<Vec<SocketAddr>> {
    let specs = specs.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("portcullis-echo".to_owned())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let mut addrs = Vec::new();
                for (addr, service, version) in specs {
                    match TcpListener::bind(addr).await {
                        Ok(l) => {
                            addrs.push(l.local_addr().unwrap_or(addr));
                            tokio::spawn(echo_server(l, service, version));
                        }
                        Err(e) => {
                            let _ = tx.send(Err(io::Error::new(
                                e.kind(),
                                format!("echo server on {addr}: {e}"),
                            )));
                            return;
                        }
                    }
                }
                let _ = tx.send(Ok(addrs));
                std::future::pending::<()>().await;
            });
        })?;
    rx.recv()
        .map_err(|_| io::Error::other("the echo thread stopped"))?
}

/// The curl commands that exercise each rule of the demo.
pub fn curl_commands(ca_file: Option<&str>) -> String {
    let mut out = String::from(
        "Try the demo (access log on stdout, gateway messages on stderr):\n\
         \n\
         # direct response: the gateway answers by itself\n\
         curl -i http://localhost:8080/healthz\n\
         # redirect: 301 to /productpage\n\
         curl -i http://localhost:8080/old/index.html\n\
         # default route: productpage v1 sees x-gateway: portcullis\n\
         curl -i http://localhost:8080/productpage\n\
         # mirror: details gets a copy (its echo server logs it on stderr)\n\
         curl -i http://localhost:8080/shadowed\n\
         # header match: end-user jason goes to reviews v2\n\
         curl -i -H 'end-user: jason' http://localhost:8080/reviews/1\n\
         # weights: reviews v1 80 %, v3 20 %\n\
         for i in $(seq 10); do curl -s http://localhost:8080/reviews/1 | sed -n 2p; done | sort | uniq -c\n\
         # rewrite: /api/v1/ratings/7 reaches ratings as /ratings/7\n\
         curl -i http://localhost:8080/api/v1/ratings/7\n\
         # HTTP/2 without TLS (prior knowledge)\n\
         curl -i --http2-prior-knowledge http://localhost:8080/productpage\n",
    );
    match ca_file {
        Some(ca) => {
            let _ = writeln!(
                out,
                "# HTTPS on 8443 with the generated certificate (HTTP/2 by ALPN)\n\
                 curl -i --cacert {ca} https://localhost:8443/productpage"
            );
        }
        None => out.push_str(
            "# HTTPS on 8443 with the generated certificate (HTTP/2 by ALPN)\n\
             curl -ik https://localhost:8443/productpage\n",
        ),
    }
    out.push_str(
        "# admin: metrics and the live plan\n\
         curl -s http://127.0.0.1:15000/stats/prometheus | grep portcullis_requests_total\n\
         curl -s http://127.0.0.1:15000/routes\n\
         curl -s http://127.0.0.1:15000/config_dump | head -40\n",
    );
    out
}
