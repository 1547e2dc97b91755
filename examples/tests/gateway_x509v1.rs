//! The example gateway with X.509 version-1 certificates, as Istio's "Secure Gateways" task
//! makes them (`openssl x509 -req`, fixtures in `crates/tls/tests/data/x509v1`): a SIMPLE
//! gateway serves a version-1 certificate, a MUTUAL gateway accepts a version-1 client
//! certificate from its CA and refuses expired, revoked and foreign ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_examples::demo;
use portcullis_gateway::{AccessLog, Gateway, GatewayBuilder, Identity, Source};
use portcullis_tls::{ClientTlsMode, ClientTlsSettings, TlsContext, client_tls, pem};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const HOST: &str = "v1.example.com";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/tls/tests/data/x509v1")
        .join(name)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-gateway-x509v1-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn echo() -> SocketAddr {
    demo::start_echo_servers(&[(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "a".to_owned(),
        "v1".to_owned(),
    )])
    .unwrap()[0]
}

/// A gateway with `mode` TLS and `credentialName: v1-cert` on a free port, routing to an echo
/// upstream; the credential directory holds `files` (secret key, fixture name).
fn start(name: &str, mode: &str, files: &[(&str, &str)]) -> (Gateway, u16) {
    let gw = try_start(name, mode, files).expect("the gateway starts");
    let port = gw.local_addr(443).unwrap().port();
    (gw, port)
}

fn try_start(
    name: &str,
    mode: &str,
    files: &[(&str, &str)],
) -> Result<Gateway, impl std::fmt::Debug> {
    let up = echo();
    let dir = temp_dir(name);
    let config = format!(
        r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: [{HOST}]
    tls: {{mode: {mode}, credentialName: v1-cert}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: v1, namespace: default}}
spec:
  hosts: [{HOST}]
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
  endpoints:
  - {{address: {}, ports: {{http: {}}}}}
",
        up.ip(),
        up.port()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let creds = temp_dir(&format!("{name}-creds"));
    std::fs::create_dir_all(creds.join("v1-cert")).unwrap();
    for (key, file) in files {
        std::fs::copy(fixture(file), creds.join("v1-cert").join(key)).unwrap();
    }
    options(&dir, creds).start()
}

fn options(dir: &Path, creds: PathBuf) -> GatewayBuilder {
    Gateway::builder()
        .files([Source::Path(dir.to_owned())])
        .identity(Identity::default())
        .workers(1)
        .admin(None)
        .port_binding(443, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Capture(Arc::new(Mutex::new(Vec::new()))))
        .poll_interval(Duration::from_millis(100))
        .random_seed(7)
        .credentials_dir(creds)
}

/// A client trusting the fixtures' CA (`sni` set: a version-1 certificate has no
/// subjectAltName to check a name against), presenting `client` (certificate and key fixture
/// names) if given.
fn client(client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let settings = ClientTlsSettings {
        mode: ClientTlsMode::Simple,
        ca_certificates: Some(fixture("ca.pem")),
        sni: Some(HOST.into()),
        ..Default::default()
    };
    let tls = client_tls(&settings, &[b"http/1.1"], &TlsContext::new())
        .unwrap()
        .unwrap();
    let mut config = rustls::ClientConfig::clone(tls.config());
    if let Some((cert, key)) = client {
        let chain = pem::load_certificates("cert", &fixture(cert)).unwrap();
        let key = pem::load_private_key("key", &fixture(key)).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let certified = pem::certified_key(chain, key, &provider, cert).unwrap();
        config.client_auth_cert_resolver =
            Arc::new(rustls::sign::SingleCertAndKey::from(certified));
    }
    Arc::new(config)
}

/// One HTTP/1.1 GET over TLS: the response, or the error (a TLS alert names the reason).
async fn tls_get(port: u16, config: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(HOST).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(
        format!("GET / HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn simple_gateway_serves_a_version_1_certificate() {
    let (gw, port) = start(
        "simple",
        "SIMPLE",
        &[("tls.crt", "server.pem"), ("tls.key", "server.key")],
    );
    let reply = tls_get(port, client(None)).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    gw.shutdown();
}

#[tokio::test]
async fn mutual_gateway_accepts_a_version_1_client_and_refuses_the_bad_ones() {
    let (gw, port) = start(
        "mutual",
        "MUTUAL",
        &[
            ("tls.crt", "server.pem"),
            ("tls.key", "server.key"),
            ("ca.crt", "ca.pem"),
            ("ca.crl", "ca.crl"),
        ],
    );
    let reply = tls_get(port, client(Some(("client.pem", "client.key"))))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    for (cert, alert) in [
        ("client-expired", "CertificateExpired"),
        ("client-future", "CertificateExpired"),
        ("client-revoked", "CertificateRevoked"),
        ("client-other", "UnknownCA"),
    ] {
        let key = format!("{cert}.key");
        let cert = format!("{cert}.pem");
        let result = tls_get(port, client(Some((&cert, &key)))).await;
        match result {
            Err(e) => assert!(e.contains(alert), "{cert}: {e} (expected {alert})"),
            Ok(reply) => panic!("{cert} was served: {reply}"),
        }
    }
    let without = tls_get(port, client(None)).await;
    assert!(
        without.as_deref().map_or(true, |r| !r.contains("200")),
        "served without a client certificate: {without:?}"
    );
    gw.shutdown();
}
