//! The extension points an embedder supplies, each seen called: a file-based mesh identity
//! for `ISTIO_MUTUAL` origination, the DNS resolver, the access-log sink.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_gateway::source::Objects;
use portcullis_gateway::{AccessLog, AccessLogSink, Gateway, Lookup, Resolver};
use portcullis_model::Loader;
use portcullis_tls::rustls;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

struct Pki {
    ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn pki() -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mesh root");
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        ca_der: cert.der().clone(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A workload certificate: (chain PEM, key PEM, chain DER, key DER).
fn workload(
    pki: &Pki,
    names: &[&str],
) -> (
    String,
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (cert.pem(), key.serialize_pem(), cert.der().clone(), key_der)
}

/// An upstream that requires a client certificate from the mesh and answers `mesh ok`;
/// counts the handshakes that presented one.
async fn mesh_upstream(pki: &Pki, verified: Arc<AtomicUsize>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (_, _, cert, key) = workload(pki, &["mesh.test"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let verified = Arc::clone(&verified);
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

/// A plaintext upstream answering `dns ok`.
async fn plain_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ndns ok",
                    )
                    .await;
            });
        }
    });
    addr
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

async fn get(addr: SocketAddr, host: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn istio_mutual_origination_dns_and_the_access_log_go_through_the_embedders_pieces() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("portcullis-mesh-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (chain, key, _, _) = workload(&pki, &["gateway.istio-system.svc"]);
    std::fs::write(dir.join("cert-chain.pem"), chain).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("root-cert.pem"), &pki.ca_pem).unwrap();

    let verified = Arc::new(AtomicUsize::new(0));
    let mesh = mesh_upstream(&pki, Arc::clone(&verified)).await;
    let plain = plain_upstream().await;
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
metadata: {{name: mesh, namespace: istio-system}}
spec:
  hosts: [mesh.test]
  location: MESH_INTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: {ip}, ports: {{http: {port}}}}}
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
  - {{address: upstream.named.test, ports: {{http: {plain_port}}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: routes, namespace: istio-system}}
spec:
  hosts: ['*']
  gateways: [gw]
  http:
  - match: [{{authority: {{exact: named.example.com}}}}]
    route: [{{destination: {{host: named.test}}}}]
  - route: [{{destination: {{host: mesh.test}}}}]
",
        ip = mesh.ip(),
        port = mesh.port(),
        plain_port = plain.port(),
    );
    let loaded = Loader::new().read_str("mesh.yaml", &text);
    assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());
    let resolver = Arc::new(FixedResolver {
        addr: plain,
        lookups: AtomicUsize::new(0),
    });
    let lines = Arc::new(Lines::default());
    let gw = Gateway::builder()
        .config(Objects::from_loaded(&loaded))
        .workers(1)
        .admin(None)
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .mesh_identity_dir(&dir)
        .resolver(Arc::clone(&resolver) as Arc<dyn Resolver>)
        .access_log(AccessLog::Sink(Arc::clone(&lines) as Arc<dyn AccessLogSink>))
        .start()
        .unwrap();
    let addr = gw.local_addr(80).unwrap();

    // ISTIO_MUTUAL: the gateway presents its workload certificate from the directory.
    let r = get(addr, "shop.example.com").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("mesh ok"), "{r}");
    assert_eq!(verified.load(Ordering::SeqCst), 1);

    // DNS: the name was looked up with the embedder's resolver.
    assert!(resolver.lookups.load(Ordering::SeqCst) >= 1);
    let r = get(addr, "named.example.com").await;
    assert!(r.ends_with("dns ok"), "{r}");

    // The access log reaches the sink (at the latest on the next worker tick).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lines.0.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no access-log lines");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = lines.0.lock().unwrap().clone();
    assert!(
        logged.iter().any(|l| l.contains("\"shop.example.com\"")),
        "{logged:?}"
    );
    gw.shutdown();
}
