//! Upstream (DestinationRule) handshakes against a plain rustls server.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::{Ca, Leaf, Side, handshake, temp_dir, write};
use portcullis_tls::rustls::{self, ServerConfig, ServerConnection};
use portcullis_tls::*;

const UPSTREAM: &str = "api.upstream.example";

/// A plain rustls server presenting `leaf`, optionally requiring client certs from `client_ca`.
fn upstream_server(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<ServerConfig> {
    let provider = common::provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(ca.roots()),
                provider,
            )
            .build()
            .unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    let key = pem::private_key_from_pem("key", "test", leaf.key_pem.as_bytes()).unwrap();
    let mut config = builder
        .with_single_cert(vec![leaf.der.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn run(
    settings: &ClientTlsSettings,
    ctx: &TlsContext,
    server: &Arc<ServerConfig>,
    host: &str,
) -> Result<(rustls::ClientConnection, ServerConnection), (Side, rustls::Error)> {
    let tls = client_tls(settings, &[b"h2"], ctx).unwrap().unwrap();
    let mut client = tls.connect(host).unwrap();
    let mut server = ServerConnection::new(Arc::clone(server)).unwrap();
    handshake(&mut client, &mut server).map(|()| (client, server))
}

struct Setup {
    ca: Ca,
    leaf: Leaf,
    ca_file: std::path::PathBuf,
    server: Arc<ServerConfig>,
}

fn setup() -> Setup {
    let ca = Ca::new("upstream CA");
    let leaf = ca.leaf(&[UPSTREAM, "spiffe://cluster.local/ns/api/sa/api"], 1);
    let dir = temp_dir("client");
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let server = upstream_server(&leaf, None);
    Setup {
        ca,
        leaf,
        ca_file,
        server,
    }
}

fn simple_with_ca(s: &Setup) -> ClientTlsSettings {
    ClientTlsSettings {
        mode: ClientTlsMode::Simple,
        ca_certificates: Some(s.ca_file.clone()),
        ..Default::default()
    }
}

#[test]
fn disable_builds_nothing() {
    assert!(
        client_tls(&ClientTlsSettings::default(), &[], &TlsContext::new())
            .unwrap()
            .is_none()
    );
}

#[test]
fn simple_verifies_chain_and_host() {
    let s = setup();
    let ctx = TlsContext::new();
    let (c, server) = run(&simple_with_ca(&s), &ctx, &s.server, UPSTREAM).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(server.server_name(), Some(UPSTREAM));
    // No sni and no subjectAltNames: the certificate must be valid for the host.
    let (side, err) = run(&simple_with_ca(&s), &ctx, &s.server, "other.example").unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(
        err.to_string().contains("certificate not valid for name"),
        "{err}"
    );
}

#[test]
fn simple_refuses_wrong_ca_unless_insecure() {
    let s = setup();
    let other = Ca::new("other CA");
    let settings = ClientTlsSettings {
        ca_certificates: Some(write(&temp_dir("other"), "ca.pem", &other.pem())),
        ..simple_with_ca(&s)
    };
    let (side, err) = run(&settings, &TlsContext::new(), &s.server, UPSTREAM).unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    let insecure = ClientTlsSettings {
        insecure_skip_verify: true,
        ..settings
    };
    run(&insecure, &TlsContext::new(), &s.server, "whatever.example").unwrap();
}

#[test]
fn system_roots_are_used_without_ca_certificates() {
    let s = setup();
    let ctx = TlsContext::new().system_roots(Arc::new(s.ca.roots()));
    let settings = ClientTlsSettings {
        mode: ClientTlsMode::Simple,
        ..Default::default()
    };
    run(&settings, &ctx, &s.server, UPSTREAM).unwrap();
    let ctx = TlsContext::new().system_roots(Arc::new(Ca::new("unrelated").roots()));
    let (side, _) = run(&settings, &ctx, &s.server, UPSTREAM).unwrap_err();
    assert_eq!(side, Side::Client);
}

#[test]
fn sni_is_sent_and_subject_alt_names_replace_the_host_check() {
    let s = setup();
    let ctx = TlsContext::new();
    let settings = ClientTlsSettings {
        sni: Some(UPSTREAM.into()),
        subject_alt_names: vec!["spiffe://cluster.local/ns/api/sa/api".into()],
        ..simple_with_ca(&s)
    };
    // Connecting "to" an IP: the SNI setting still names the server.
    let (_, server) = run(&settings, &ctx, &s.server, "10.0.0.7").unwrap();
    assert_eq!(server.server_name(), Some(UPSTREAM));

    let wrong = ClientTlsSettings {
        subject_alt_names: vec!["spiffe://cluster.local/ns/api/sa/impostor".into()],
        ..settings
    };
    let (side, err) = run(&wrong, &ctx, &s.server, UPSTREAM).unwrap_err();
    assert_eq!(side, Side::Client);
    let msg = err.to_string();
    assert!(
        msg.contains("impostor") && msg.contains("URI:spiffe://cluster.local/ns/api/sa/api"),
        "{msg}"
    );
    assert!(msg.contains(&format!("DNS:{UPSTREAM}")), "{msg}");

    // sni set and no subjectAltNames: as in Istio, only the chain is checked.
    let chain_only = ClientTlsSettings {
        sni: Some("not-in-the-cert.example".into()),
        ..simple_with_ca(&s)
    };
    run(&chain_only, &ctx, &s.server, UPSTREAM).unwrap();
}

#[test]
fn invalid_sni_is_a_build_error() {
    let err = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::Simple,
            sni: Some("bad name!".into()),
            insecure_skip_verify: true,
            ..Default::default()
        },
        &[],
        &TlsContext::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("sni"), "{err}");
}

#[test]
fn mutual_with_files_and_with_credential_name() {
    let s = setup();
    let client_ca = Ca::new("client CA");
    let server = upstream_server(&s.leaf, Some(&client_ca));
    let me = client_ca.leaf(&["spiffe://cluster.local/ns/gw/sa/gw"], 5);
    let dir = temp_dir("mutual");

    // Without a client certificate the server refuses.
    let (side, _) = run(&simple_with_ca(&s), &TlsContext::new(), &server, UPSTREAM).unwrap_err();
    assert_eq!(side, Side::Server);

    let files = ClientTlsSettings {
        mode: ClientTlsMode::Mutual,
        client_certificate: Some(write(&dir, "c.crt", &me.cert_pem)),
        private_key: Some(write(&dir, "c.key", &me.key_pem)),
        ..simple_with_ca(&s)
    };
    let (_, srv) = run(&files, &TlsContext::new(), &server, UPSTREAM).unwrap();
    assert_eq!(srv.peer_certificates().unwrap()[0], me.der);

    // credentialName: key pair and the CA for the upstream from one secret.
    let store = InMemoryCredentialStore::new(common::provider());
    let mut secret = SecretData::new();
    secret.insert("cert".into(), me.cert_pem.clone().into_bytes());
    secret.insert("key".into(), me.key_pem.into_bytes());
    secret.insert("cacert".into(), s.ca.pem().into_bytes());
    store.insert_secret("upstream-client", &secret).unwrap();
    let ctx = TlsContext::new().credentials(Arc::new(store));
    let by_name = ClientTlsSettings {
        mode: ClientTlsMode::Mutual,
        credential_name: Some("upstream-client".into()),
        ..Default::default()
    };
    run(&by_name, &ctx, &server, UPSTREAM).unwrap();

    // MUTUAL without any client certificate is a build error.
    let err = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::Mutual,
            ..simple_with_ca(&s)
        },
        &[],
        &TlsContext::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("clientCertificate"), "{err}");
}

#[test]
fn istio_mutual_default_sni_is_a_valid_server_name() {
    let sni = istio_mutual_sni(9080, Some("v2"), "reviews.default.svc.cluster.local");
    assert_eq!(sni, "outbound_.9080_.v2_.reviews.default.svc.cluster.local");
    let tls = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::Simple,
            sni: Some(sni.clone()),
            insecure_skip_verify: true,
            ..Default::default()
        },
        &[],
        &TlsContext::new(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        tls.server_name("ignored").unwrap(),
        rustls::pki_types::ServerName::try_from(sni).unwrap()
    );
    // Without sni the host is used, IPv6 brackets removed.
    let tls = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::Simple,
            insecure_skip_verify: true,
            ..Default::default()
        },
        &[],
        &TlsContext::new(),
    )
    .unwrap()
    .unwrap();
    assert!(matches!(
        tls.server_name("[::1]").unwrap(),
        rustls::pki_types::ServerName::IpAddress(_)
    ));
}

#[derive(Debug)]
struct Mesh {
    key: Arc<rustls::sign::CertifiedKey>,
    roots: Arc<rustls::RootCertStore>,
}

impl MeshIdentity for Mesh {
    fn certified_key(&self) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.key))
    }
    fn trust_roots(&self) -> Arc<rustls::RootCertStore> {
        Arc::clone(&self.roots)
    }
}

#[test]
fn istio_mutual_checks_the_mesh_chain_and_service_accounts_not_the_host() {
    let mesh_ca = Ca::new("mesh");
    let server_leaf = mesh_ca.leaf(&["spiffe://cluster.local/ns/api/sa/api"], 1);
    let server = upstream_server(&server_leaf, Some(&mesh_ca));
    let me = mesh_ca.leaf(&["spiffe://cluster.local/ns/gw/sa/gw"], 2);
    let key = pem::certified_key(
        vec![me.der.clone()],
        pem::private_key_from_pem("key", "test", me.key_pem.as_bytes()).unwrap(),
        &rustls::crypto::ring::default_provider(),
        "test",
    )
    .unwrap();
    let ctx = TlsContext::new().mesh_identity(Arc::new(Mesh {
        key,
        roots: Arc::new(mesh_ca.roots()),
    }));
    let base = ClientTlsSettings {
        mode: ClientTlsMode::IstioMutual,
        ..Default::default()
    };
    // No sni, no subjectAltNames: the host is not checked against the SPIFFE certificate.
    let tls = client_tls(&base, &[b"h2"], &ctx).unwrap().unwrap();
    let mut c = tls.connect("reviews.default.svc.cluster.local").unwrap();
    let mut s = ServerConnection::new(Arc::clone(&server)).unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(s.peer_certificates().unwrap()[0], me.der);

    // Default ALPN when none is given.
    let tls = client_tls(&base, &[], &ctx).unwrap().unwrap();
    assert_eq!(
        tls.config().alpn_protocols,
        vec![b"istio-peer-exchange".to_vec(), b"istio".to_vec()]
    );

    // The wrong service account is refused.
    let wrong = ClientTlsSettings {
        subject_alt_names: vec!["spiffe://cluster.local/ns/api/sa/other".into()],
        ..base
    };
    let (side, err) = run(&wrong, &ctx, &server, "reviews").unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(err.to_string().contains("sa/other"), "{err}");

    // Without a mesh identity ISTIO_MUTUAL cannot be built.
    let err = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::IstioMutual,
            ..Default::default()
        },
        &[],
        &TlsContext::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoMeshIdentity));
}
