//! Embedding `portcullis-gateway` from its public API only: the `embed-serve` example
//! (`examples/embed/serve.rs`, included here) served on the test's runtime and drained while a
//! request is in flight, and the embedder's own credential store, mesh identity, DNS resolver
//! and access-log sink, each seen called.
//!
//! The rest of the embedding contract is tested beside the library, also from its public API:
//! a live swap driven by `source::channel` and an 80/20 weighted route over 2,000 requests
//! (`crates/gateway/tests/lifecycle.rs`), the embedder's own `prometheus-client` registry
//! showing the gateway's metrics (`crates/gateway/tests/metrics.rs`), and the file-based mesh
//! identity (`crates/gateway/tests/extensions.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "../embed/serve.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's main is not called here"
)]
mod embed;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_gateway::source::Objects;
use portcullis_gateway::{AccessLog, AccessLogSink, Lookup, Resolver};
use portcullis_model::Loader;
use portcullis_tls::rustls;
use portcullis_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use portcullis_tls::rustls::sign::CertifiedKey;
use portcullis_tls::{Credential, CredentialStore, MeshIdentity};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A backend answering `backend <path>`; `/slow` after one second.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    if req.uri().path() == "/slow" {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let body = format!("backend {}", req.uri().path());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One HTTP/1.1 request with `connection: close` over `stream`: the whole response.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // A TLS peer may close without close_notify after the response: what was read counts.
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        TcpStream::connect(addr).await.unwrap(),
        "shop.example.com",
        path,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_serves_on_the_callers_runtime_and_drains_with_a_request_in_flight() {
    assert!(
        embed::config(loopback()).is_ok(),
        "{:?}",
        embed::config(loopback()).err()
    );
    let backend = backend().await;
    let builder = embed::builder(loopback(), backend)
        .unwrap()
        .access_log(AccessLog::Off);
    let gateway = embed::serve(builder).await.unwrap();
    let addr = gateway.local_addr(embed::PORT).unwrap();

    let health = get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("\r\n\r\nok"), "{health}");
    let forwarded = get(addr, "/cart").await;
    assert!(forwarded.ends_with("backend /cart"), "{forwarded}");

    // A request in flight when the signal comes finishes; then the gateway stops.
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
    let drained = tokio::spawn(embed::drain_on(gateway, async {
        let _ = signalled.await;
    }));
    signal.send(()).unwrap();
    let slow = slow.await.unwrap();
    assert!(slow.starts_with("HTTP/1.1 200"), "{slow}");
    assert!(slow.ends_with("backend /slow"), "{slow}");
    // Generous: the drain ends once the last connection is gone, well before its 5 s.
    tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .expect("the gateway did not stop")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

// === The embedder's extension points ===

struct Pki {
    ca_der: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn pki(name: &str) -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_der: cert.der().clone(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A leaf for `names`: (chain PEM, key PEM, chain DER, key DER).
fn leaf(
    pki: &Pki,
    names: &[&str],
) -> (
    String,
    String,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &pki.issuer)
        .unwrap();
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (cert.pem(), key.serialize_pem(), cert.der().clone(), key_der)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Credentials in memory (as a Kubernetes secret watcher would keep them), counting lookups.
#[derive(Debug)]
struct Secrets {
    credentials: BTreeMap<String, Arc<Credential>>,
    lookups: AtomicUsize,
}

impl CredentialStore for Secrets {
    fn get(&self, name: &str) -> Option<Arc<Credential>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.credentials.get(name).cloned()
    }
}

/// A workload certificate issued in memory (as an SDS client would hold it), counting uses.
#[derive(Debug)]
struct Workload {
    key: Arc<CertifiedKey>,
    roots: Arc<rustls::RootCertStore>,
    uses: AtomicUsize,
}

impl MeshIdentity for Workload {
    fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        self.uses.fetch_add(1, Ordering::SeqCst);
        Some(Arc::clone(&self.key))
    }

    fn trust_roots(&self) -> Arc<rustls::RootCertStore> {
        Arc::clone(&self.roots)
    }
}

/// Answers every name with one address, counting lookups.
#[derive(Debug)]
struct FixedResolver {
    addr: SocketAddr,
    lookups: AtomicUsize,
}

impl Resolver for FixedResolver {
    fn lookup<'a>(&'a self, _host: &'a str, port: u16) -> Lookup<'a> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let addr = SocketAddr::new(self.addr.ip(), port);
        Box::pin(async move { Ok(vec![addr]) })
    }
}

/// Keeps the access-log lines it is given.
#[derive(Debug, Default)]
struct Lines(Mutex<Vec<String>>);

impl AccessLogSink for Lines {
    fn write_lines(&self, lines: &str) {
        self.0
            .lock()
            .unwrap()
            .extend(lines.lines().map(str::to_owned));
    }
}

/// A mesh upstream: requires a client certificate from the mesh, answers `mesh ok`, counts
/// the handshakes that presented one.
async fn mesh_upstream(mesh: &Pki, verified: Arc<AtomicUsize>) -> SocketAddr {
    let (_, _, cert, key) = leaf(mesh, &["mesh.test"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(mesh.ca_der.clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, verified) = (acceptor.clone(), Arc::clone(&verified));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if tls.get_ref().1.peer_certificates().is_some() {
                    verified.fetch_add(1, Ordering::SeqCst);
                }
                let mut buf = vec![0; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nmesh ok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

// A multi-threaded runtime: a request's access-log line reaches the sink whichever of the
// runtime's threads polls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedders_credential_store_mesh_identity_resolver_and_access_log_are_used() {
    let (edge, mesh) = (pki("edge root"), pki("mesh root"));
    let (chain, key, _, _) = leaf(&edge, &["shop.example.com"]);
    let secret = BTreeMap::from([
        ("tls.crt".to_owned(), chain.into_bytes()),
        ("tls.key".to_owned(), key.into_bytes()),
    ]);
    let secrets = Arc::new(Secrets {
        credentials: BTreeMap::from([(
            "shop-cert".to_owned(),
            Arc::new(Credential::from_secret("shop-cert", &secret, &provider()).unwrap()),
        )]),
        lookups: AtomicUsize::new(0),
    });
    let (_, _, workload_cert, workload_key) = leaf(&mesh, &["gateway.istio-system.svc"]);
    let mut mesh_roots = rustls::RootCertStore::empty();
    mesh_roots.add(mesh.ca_der.clone()).unwrap();
    let workload = Arc::new(Workload {
        key: Arc::new(
            CertifiedKey::from_der(vec![workload_cert], workload_key, &provider()).unwrap(),
        ),
        roots: Arc::new(mesh_roots),
        uses: AtomicUsize::new(0),
    });
    let verified = Arc::new(AtomicUsize::new(0));
    let mesh_addr = mesh_upstream(&mesh, Arc::clone(&verified)).await;
    let named = backend().await;
    let resolver = Arc::new(FixedResolver {
        addr: named,
        lookups: AtomicUsize::new(0),
    });
    let lines = Arc::new(Lines::default());

    let text = format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 8443, name: https, protocol: HTTPS}}
    hosts: [shop.example.com]
    tls: {{mode: SIMPLE, credentialName: shop-cert}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: mesh, namespace: istio-system}}
spec:
  hosts: [mesh.test]
  location: MESH_INTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: '{mesh_ip}', ports: {{http: {mesh_port}}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: mesh, namespace: istio-system}}
spec:
  host: mesh.test
  trafficPolicy:
    tls: {{mode: ISTIO_MUTUAL, sni: mesh.test}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: named, namespace: istio-system}}
spec:
  hosts: [named.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: DNS
  endpoints:
  - {{address: backend.named.test, ports: {{http: {named_port}}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: istio-system}}
spec:
  hosts: [shop.example.com]
  gateways: [edge]
  http:
  - match: [{{uri: {{prefix: /named}}}}]
    route: [{{destination: {{host: named.test}}}}]
  - route: [{{destination: {{host: mesh.test}}}}]
",
        mesh_ip = mesh_addr.ip(),
        mesh_port = mesh_addr.port(),
        named_port = named.port(),
    );
    let loaded = Loader::new().read_str("extensions.yaml", &text);
    assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());

    // The example's builder, with this test's configuration and extension points.
    let gateway = embed::builder(loopback(), named)
        .unwrap()
        .config(Objects::from_loaded(&loaded))
        .port_binding(8443, loopback())
        .credential_store(Arc::clone(&secrets) as Arc<dyn CredentialStore>)
        .mesh_identity(Arc::clone(&workload) as Arc<dyn MeshIdentity>)
        .resolver(Arc::clone(&resolver) as Arc<dyn Resolver>)
        .access_log(AccessLog::Sink(Arc::clone(&lines) as Arc<dyn AccessLogSink>));
    let gateway = embed::serve(gateway).await.unwrap();
    let addr = gateway.local_addr(8443).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(edge.ca_der.clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let https = |path: &'static str| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("shop.example.com").unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            exchange(tls, "shop.example.com", path).await
        }
    };

    // The certificate served came from the embedder's store.
    let r = https("/named/x").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("backend /named/x"), "{r}");
    assert!(secrets.lookups.load(Ordering::SeqCst) >= 1);
    // The DNS name was resolved by the embedder's resolver.
    assert!(resolver.lookups.load(Ordering::SeqCst) >= 1);

    // ISTIO_MUTUAL origination presents the embedder's workload certificate.
    let r = https("/cart").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("mesh ok"), "{r}");
    assert!(workload.uses.load(Ordering::SeqCst) >= 1);
    assert_eq!(verified.load(Ordering::SeqCst), 1);

    // The access log reaches the embedder's sink.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lines.0.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no access-log lines");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = lines.0.lock().unwrap().clone();
    assert!(logged.iter().any(|l| l.contains("/named/x")), "{logged:?}");
    assert!(logged.iter().any(|l| l.contains("/cart")), "{logged:?}");
    gateway.handle().shutdown();
}
