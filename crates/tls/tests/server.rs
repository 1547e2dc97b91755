//! Gateway-side handshakes: for each mode, the clients that must be accepted and the ones
//! that must be refused.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use common::{Ca, ClientOpts, Leaf, Side, client_config, connect, handshake, temp_dir, write};
use portcullis_tls::rustls::{self, CipherSuite, ServerConnection};
use portcullis_tls::*;

const HOST: &str = "gw.example.com";

struct Pki {
    ca: Ca,
    server: Leaf,
    dir: PathBuf,
    cert_path: PathBuf,
    key_path: PathBuf,
}

fn pki() -> Pki {
    let ca = Ca::new("gateway CA");
    let server = ca.leaf(&[HOST, "*.wild.example.com"], 1);
    let dir = temp_dir("server");
    let cert_path = write(&dir, "cert.pem", &server.cert_pem);
    let key_path = write(&dir, "key.pem", &server.key_pem);
    Pki {
        ca,
        server,
        dir,
        cert_path,
        key_path,
    }
}

fn simple(p: &Pki) -> ServerTlsSettings {
    ServerTlsSettings {
        mode: ServerTlsMode::Simple,
        server_certificate: Some(p.cert_path.clone()),
        private_key: Some(p.key_path.clone()),
        ..Default::default()
    }
}

fn mutual(p: &Pki, client_ca: &Ca) -> ServerTlsSettings {
    ServerTlsSettings {
        mode: ServerTlsMode::Mutual,
        ca_certificates: Some(write(&p.dir, "client-ca.pem", &client_ca.pem())),
        ..simple(p)
    }
}

fn port(servers: Vec<(Vec<&str>, ServerTlsSettings)>, ctx: &TlsContext) -> Result<PortTls, Error> {
    let specs: Vec<ServerSpec> = servers
        .into_iter()
        .map(|(hosts, tls)| ServerSpec {
            hosts: hosts.into_iter().map(str::to_owned).collect(),
            protocol: ServerProtocol::Https,
            tls,
        })
        .collect();
    PortTls::build(&specs, ctx)
}

fn single(tls: ServerTlsSettings) -> PortTls {
    port(vec![(vec![HOST], tls)], &TlsContext::new()).unwrap()
}

/// Runs a handshake against the server that `sni` selects.
fn shake(
    port: &PortTls,
    client: &Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<(rustls::ClientConnection, ServerConnection), (Side, rustls::Error)> {
    let sni = name.parse::<std::net::IpAddr>().is_err().then_some(name);
    // Without a matching server there is nothing to hand the connection to; use the first
    // server's configuration so the handshake fails in rustls as it would on the wire.
    let config = port
        .select(sni)
        .or_else(|| port.servers().first())
        .and_then(ServerTls::config)
        .expect("a terminating server")
        .clone();
    let mut server = ServerConnection::new(config).unwrap();
    let mut client_conn = connect(client, name);
    handshake(&mut client_conn, &mut server).map(|()| (client_conn, server))
}

fn opts(p: &Pki) -> ClientOpts<'static> {
    ClientOpts {
        roots: vec![p.ca.der()],
        ..Default::default()
    }
}

// === SIMPLE ===

#[test]
fn simple_accepts_a_client_and_negotiates_alpn() {
    let p = pki();
    let port = single(simple(&p));
    let client = client_config(&ClientOpts {
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..opts(&p)
    });
    let (c, s) = shake(&port, &client, HOST).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(s.server_name(), Some(HOST));
    assert_eq!(c.peer_certificates().unwrap()[0], p.server.der);
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    // An HTTP/1.1-only client gets http/1.1.
    let client = client_config(&ClientOpts {
        alpn: vec![b"http/1.1".to_vec()],
        ..opts(&p)
    });
    let (c, _) = shake(&port, &client, HOST).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn simple_refuses_wrong_sni_and_missing_sni() {
    let p = pki();
    let port = single(simple(&p));
    assert!(port.select(Some("other.example.com")).is_none());
    assert!(port.select(None).is_none());
    let client = client_config(&opts(&p));
    let (side, err) = shake(&port, &client, "other.example.com").unwrap_err();
    assert_eq!(side, Side::Server, "{err}");
    // No SNI (connecting by IP) and no `*` server: refused too.
    let (side, _) = shake(&port, &client, "10.1.2.3").unwrap_err();
    assert_eq!(side, Side::Server);
}

#[test]
fn simple_refuses_a_client_that_does_not_trust_the_ca() {
    let p = pki();
    let port = single(simple(&p));
    let other = Ca::new("other");
    let client = client_config(&ClientOpts {
        roots: vec![other.der()],
        ..Default::default()
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Client);
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[test]
fn tls11_only_client_is_refused() {
    let p = pki();
    let port = single(simple(&p));
    let config = port.select(Some(HOST)).unwrap().config().unwrap().clone();
    let mut server = ServerConnection::new(config).unwrap();
    let hello = common::tls11_client_hello(HOST);
    // The ClientHello reader still sees it as TLS, with its SNI.
    match peek_client_hello(&hello) {
        ClientHelloPeek::ClientHello(info) => {
            assert_eq!(info.server_name.as_deref(), Some(HOST));
            assert_eq!(info.max_version(), 0x0302);
        }
        other => panic!("{other:?}"),
    }
    server.read_tls(&mut hello.as_slice()).unwrap();
    let err = server.process_new_packets().unwrap_err();
    assert!(
        matches!(err, rustls::Error::PeerIncompatible(_)),
        "expected PeerIncompatible, got {err:?}"
    );
}

#[test]
fn tls10_and_tls11_settings_are_build_errors() {
    let p = pki();
    for (min, max, setting) in [
        (TlsVersion::V1_0, TlsVersion::Auto, "minProtocolVersion"),
        (TlsVersion::V1_1, TlsVersion::V1_3, "minProtocolVersion"),
        (TlsVersion::Auto, TlsVersion::V1_1, "maxProtocolVersion"),
    ] {
        let tls = ServerTlsSettings {
            min_protocol_version: min,
            max_protocol_version: max,
            cipher_suites: vec!["ECDHE-RSA-AES128-GCM-SHA256".into()],
            ..simple(&p)
        };
        let err = port(vec![(vec![HOST], tls)], &TlsContext::new()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(setting), "{msg}");
        assert!(msg.contains("not supported"), "{msg}");
        let Error::InServer { source, .. } = err else {
            panic!("{err:?}")
        };
        assert!(matches!(*source, Error::UnsupportedProtocolVersion { .. }));
    }
}

#[test]
fn version_bounds_are_enforced_in_handshakes() {
    let p = pki();
    let tls13 = single(ServerTlsSettings {
        min_protocol_version: TlsVersion::V1_3,
        ..simple(&p)
    });
    let tls12_client = client_config(&ClientOpts {
        tls12_only: true,
        ..opts(&p)
    });
    let (side, err) = shake(&tls13, &tls12_client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(matches!(err, rustls::Error::PeerIncompatible(_)), "{err:?}");

    let tls12 = single(ServerTlsSettings {
        max_protocol_version: TlsVersion::V1_2,
        ..simple(&p)
    });
    let (c, _) = shake(&tls12, &client_config(&opts(&p)), HOST).unwrap();
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
}

#[test]
fn cipher_suites_restrict_tls12() {
    let p = pki();
    let port = single(ServerTlsSettings {
        max_protocol_version: TlsVersion::V1_2,
        cipher_suites: vec!["ECDHE-ECDSA-AES128-GCM-SHA256".into()],
        ..simple(&p)
    });
    let good = client_config(&ClientOpts {
        tls12_only: true,
        tls12_suites: Some(vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        ..opts(&p)
    });
    let (c, _) = shake(&port, &good, HOST).unwrap();
    assert_eq!(
        c.negotiated_cipher_suite().unwrap().suite(),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
    let bad = client_config(&ClientOpts {
        tls12_only: true,
        tls12_suites: Some(vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]),
        ..opts(&p)
    });
    let (side, _) = shake(&port, &bad, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
}

#[test]
fn unknown_cipher_suite_is_named() {
    let p = pki();
    for name in ["ECDHE-RSA-AES128-SHA", "NOT-A-SUITE", "DES-CBC3-SHA"] {
        let err = port(
            vec![(
                vec![HOST],
                ServerTlsSettings {
                    cipher_suites: vec!["ECDHE-RSA-AES128-GCM-SHA256".into(), name.into()],
                    ..simple(&p)
                },
            )],
            &TlsContext::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}

// === MUTUAL ===

#[test]
fn mutual_accepts_a_client_certificate_from_the_ca() {
    let p = pki();
    let clients = Ca::new("client CA");
    let port = single(mutual(&p, &clients));
    let leaf = clients.leaf(&["client.example.com"], 10);
    let client = client_config(&ClientOpts {
        client_cert: Some(&leaf),
        ..opts(&p)
    });
    let (_, s) = shake(&port, &client, HOST).unwrap();
    assert_eq!(s.peer_certificates().unwrap()[0], leaf.der);
}

#[test]
fn mutual_refuses_no_certificate_and_wrong_ca() {
    let p = pki();
    let clients = Ca::new("client CA");
    let port = single(mutual(&p, &clients));
    let (side, err) = shake(&port, &client_config(&opts(&p)), HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert_eq!(err, rustls::Error::NoCertificatesPresented);

    let stranger = Ca::new("stranger").leaf(&["client.example.com"], 10);
    let client = client_config(&ClientOpts {
        client_cert: Some(&stranger),
        ..opts(&p)
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{err:?}"
    );
}

#[test]
fn mutual_refuses_a_revoked_certificate() {
    let p = pki();
    let clients = Ca::new("client CA");
    let crl = write(&p.dir, "crl.pem", &clients.crl(&[66]));
    let port = single(ServerTlsSettings {
        ca_crl: Some(crl),
        ..mutual(&p, &clients)
    });
    let revoked = clients.leaf(&["revoked.example.com"], 66);
    let client = client_config(&ClientOpts {
        client_cert: Some(&revoked),
        ..opts(&p)
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
    );
    let fine = clients.leaf(&["fine.example.com"], 67);
    let client = client_config(&ClientOpts {
        client_cert: Some(&fine),
        ..opts(&p)
    });
    shake(&port, &client, HOST).unwrap();
}

#[test]
fn mutual_checks_subject_alt_names_and_says_what_it_saw() {
    let p = pki();
    let clients = Ca::new("client CA");
    let good_id = "spiffe://cluster.local/ns/shop/sa/frontend";
    let port = single(ServerTlsSettings {
        subject_alt_names: vec![good_id.into(), "trusted.example.com".into()],
        ..mutual(&p, &clients)
    });
    for sans in [&[good_id][..], &["trusted.example.com"][..]] {
        let leaf = clients.leaf(sans, 11);
        let client = client_config(&ClientOpts {
            client_cert: Some(&leaf),
            ..opts(&p)
        });
        shake(&port, &client, HOST).unwrap();
    }
    let bad = clients.leaf(&["spiffe://cluster.local/ns/shop/sa/intruder"], 12);
    let client = client_config(&ClientOpts {
        client_cert: Some(&bad),
        ..opts(&p)
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    let msg = err.to_string();
    assert!(msg.contains("subjectAltNames"), "{msg}");
    assert!(msg.contains(good_id), "{msg}");
    assert!(
        msg.contains("URI:spiffe://cluster.local/ns/shop/sa/intruder"),
        "{msg}"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    let provider = rustls::crypto::ring::default_provider();
    let hash = provider
        .cipher_suites
        .iter()
        .find_map(|s| match s {
            rustls::SupportedCipherSuite::Tls13(s)
                if s.common.hash_provider.algorithm()
                    == rustls::crypto::hash::HashAlgorithm::SHA256 =>
            {
                Some(s.common.hash_provider)
            }
            _ => None,
        })
        .unwrap();
    hash.hash(data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn mutual_checks_certificate_hash() {
    let p = pki();
    let clients = Ca::new("client CA");
    let pinned = clients.leaf(&["pinned.example.com"], 20);
    let port = single(ServerTlsSettings {
        verify_certificate_hash: vec![sha256_hex(&pinned.der)],
        ..mutual(&p, &clients)
    });
    let client = client_config(&ClientOpts {
        client_cert: Some(&pinned),
        ..opts(&p)
    });
    shake(&port, &client, HOST).unwrap();
    let other = clients.leaf(&["pinned.example.com"], 21);
    let client = client_config(&ClientOpts {
        client_cert: Some(&other),
        ..opts(&p)
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(err.to_string().contains("verifyCertificateHash"), "{err}");
}

#[test]
fn malformed_pins_are_build_errors() {
    let p = pki();
    let clients = Ca::new("client CA");
    let err = port(
        vec![(
            vec![HOST],
            ServerTlsSettings {
                verify_certificate_spki: vec!["not base64!".into()],
                ..mutual(&p, &clients)
            },
        )],
        &TlsContext::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("verifyCertificateSpki"), "{err}");
}

#[test]
fn mutual_requires_a_client_ca() {
    let p = pki();
    let tls = ServerTlsSettings {
        mode: ServerTlsMode::Mutual,
        ..simple(&p)
    };
    let err = port(vec![(vec![HOST], tls)], &TlsContext::new()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("MUTUAL TLS requires caCertificates"), "{msg}");
    assert!(msg.contains(HOST), "{msg}");
}

#[test]
fn simple_rejects_a_crl() {
    let p = pki();
    let tls = ServerTlsSettings {
        ca_crl: Some(write(&p.dir, "crl.pem", &p.ca.crl(&[1]))),
        ..simple(&p)
    };
    let err = port(vec![(vec![HOST], tls)], &TlsContext::new()).unwrap_err();
    assert!(err.to_string().contains("caCrl"), "{err}");
}

// === OPTIONAL_MUTUAL ===

#[test]
fn optional_mutual_accepts_no_certificate_but_checks_a_presented_one() {
    let p = pki();
    let clients = Ca::new("client CA");
    let port = single(ServerTlsSettings {
        mode: ServerTlsMode::OptionalMutual,
        ..mutual(&p, &clients)
    });
    let (_, s) = shake(&port, &client_config(&opts(&p)), HOST).unwrap();
    assert!(s.peer_certificates().is_none());

    let leaf = clients.leaf(&["client.example.com"], 30);
    let client = client_config(&ClientOpts {
        client_cert: Some(&leaf),
        ..opts(&p)
    });
    let (_, s) = shake(&port, &client, HOST).unwrap();
    assert!(s.peer_certificates().is_some());

    let stranger = Ca::new("stranger").leaf(&["client.example.com"], 31);
    let client = client_config(&ClientOpts {
        client_cert: Some(&stranger),
        ..opts(&p)
    });
    let (side, _) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
}

#[test]
fn optional_mutual_still_checks_subject_alt_names_of_a_presented_certificate() {
    let p = pki();
    let clients = Ca::new("client CA");
    let port = single(ServerTlsSettings {
        mode: ServerTlsMode::OptionalMutual,
        subject_alt_names: vec!["allowed.example.com".into()],
        ..mutual(&p, &clients)
    });
    shake(&port, &client_config(&opts(&p)), HOST).unwrap();
    let other = clients.leaf(&["other.example.com"], 32);
    let client = client_config(&ClientOpts {
        client_cert: Some(&other),
        ..opts(&p)
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(err.to_string().contains("DNS:other.example.com"), "{err}");
}

#[test]
fn mutual_checks_spki_pins() {
    let p = pki();
    let clients = Ca::new("client CA");
    let pinned = clients.leaf(&["pinned.example.com"], 22);
    let spki = {
        let cert = webpki_spki(&pinned.der);
        base64(&sha256(&cert))
    };
    let port = single(ServerTlsSettings {
        verify_certificate_spki: vec![spki],
        ..mutual(&p, &clients)
    });
    let client = client_config(&ClientOpts {
        client_cert: Some(&pinned),
        ..opts(&p)
    });
    shake(&port, &client, HOST).unwrap();
    let other = clients.leaf(&["pinned.example.com"], 23);
    let client = client_config(&ClientOpts {
        client_cert: Some(&other),
        ..opts(&p)
    });
    let (side, err) = shake(&port, &client, HOST).unwrap_err();
    assert_eq!(side, Side::Server);
    assert!(err.to_string().contains("verifyCertificateSpki"), "{err}");
}

/// The DER SubjectPublicKeyInfo of a certificate, found by walking the DER by hand (tests only).
fn webpki_spki(cert: &[u8]) -> Vec<u8> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serial, sigAlg,
    // issuer, validity, subject, spki, ... } ... }
    fn header(d: &[u8]) -> (usize, usize) {
        let len0 = d[1] as usize;
        if len0 < 0x80 {
            (2, len0)
        } else {
            let n = len0 & 0x7f;
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | d[2 + i] as usize;
            }
            (2 + n, len)
        }
    }
    let (h, _) = header(cert);
    let tbs = &cert[h..];
    let (h, _) = header(tbs);
    let mut rest = &tbs[h..];
    // Skip version, serial, signature, issuer, validity, subject.
    for _ in 0..6 {
        let (h, l) = header(rest);
        rest = &rest[h + l..];
    }
    let (h, l) = header(rest);
    rest[..h + l].to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    let provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .iter()
        .find_map(|s| match s {
            rustls::SupportedCipherSuite::Tls13(s)
                if s.common.hash_provider.algorithm()
                    == rustls::crypto::hash::HashAlgorithm::SHA256 =>
            {
                Some(s.common.hash_provider.hash(data).as_ref().to_vec())
            }
            _ => None,
        })
        .unwrap()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// === ISTIO_MUTUAL ===

#[derive(Debug)]
struct TestMesh {
    key: RwLock<Arc<rustls::sign::CertifiedKey>>,
    roots: Arc<rustls::RootCertStore>,
}

impl MeshIdentity for TestMesh {
    fn certified_key(&self) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.key.read().unwrap().clone())
    }
    fn trust_roots(&self) -> Arc<rustls::RootCertStore> {
        Arc::clone(&self.roots)
    }
}

fn certified(leaf: &Leaf) -> Arc<rustls::sign::CertifiedKey> {
    pem::certified_key(
        pem::certificates_from_pem("cert", "test", leaf.cert_pem.as_bytes()).unwrap(),
        pem::private_key_from_pem("key", "test", leaf.key_pem.as_bytes()).unwrap(),
        &rustls::crypto::ring::default_provider(),
        "test",
    )
    .unwrap()
}

fn mesh(ca: &Ca, id: &str) -> (Arc<TestMesh>, Leaf) {
    let leaf = ca.leaf(&[id], 40);
    let mesh = Arc::new(TestMesh {
        key: RwLock::new(certified(&leaf)),
        roots: Arc::new(ca.roots()),
    });
    (mesh, leaf)
}

#[test]
fn istio_mutual_uses_the_mesh_identity_both_ways() {
    let mesh_ca = Ca::new("mesh root");
    let (gateway_id, gateway_leaf) = mesh(&mesh_ca, "spiffe://cluster.local/ns/istio-system/sa/gw");
    let ctx = TlsContext::new().mesh_identity(gateway_id);
    let port = port(
        vec![(
            vec!["*"],
            ServerTlsSettings {
                mode: ServerTlsMode::IstioMutual,
                ..Default::default()
            },
        )],
        &ctx,
    )
    .unwrap();

    // A workload with a mesh certificate, through this crate's own client side.
    let (workload_id, _) = mesh(&mesh_ca, "spiffe://cluster.local/ns/shop/sa/frontend");
    let client_ctx = TlsContext::new().mesh_identity(workload_id);
    let sni = istio_mutual_sni(443, None, "gw.istio-system.svc.cluster.local");
    let upstream = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::IstioMutual,
            sni: Some(sni.clone()),
            subject_alt_names: vec!["spiffe://cluster.local/ns/istio-system/sa/gw".into()],
            ..Default::default()
        },
        // What a sidecar offers for HTTP/2 (rustls refuses a handshake whose ALPN lists
        // share nothing, where Envoy would carry on without ALPN).
        &[b"istio-h2", b"istio", b"h2"],
        &client_ctx,
    )
    .unwrap()
    .unwrap();
    let mut client = upstream.connect("ignored.example.com").unwrap();
    let config = port.select(Some(&sni)).unwrap().config().unwrap().clone();
    let mut server = ServerConnection::new(config).unwrap();
    handshake(&mut client, &mut server).unwrap();
    assert_eq!(client.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(client.peer_certificates().unwrap()[0], gateway_leaf.der);
    assert!(server.peer_certificates().is_some());

    // A client without a certificate is refused.
    let plain = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::Simple,
            sni: Some(sni),
            ..Default::default()
        },
        &[b"h2"],
        &TlsContext::new().system_roots(Arc::new(mesh_ca.roots())),
    )
    .unwrap()
    .unwrap();
    let config = port.select(None).unwrap().config().unwrap().clone();
    let mut server = ServerConnection::new(config).unwrap();
    let mut client = plain.connect("ignored.example.com").unwrap();
    let (side, _) = handshake(&mut client, &mut server).unwrap_err();
    assert_eq!(side, Side::Server);
}

#[test]
fn istio_mutual_forbids_certificates_and_needs_an_identity() {
    let p = pki();
    let tls = ServerTlsSettings {
        mode: ServerTlsMode::IstioMutual,
        ..simple(&p)
    };
    let mesh_ca = Ca::new("mesh");
    let ctx = TlsContext::new().mesh_identity(mesh(&mesh_ca, "spiffe://x/y").0);
    assert!(matches!(
        PortTls::build(
            &[ServerSpec {
                hosts: vec![HOST.into()],
                tls,
                ..Default::default()
            }],
            &ctx
        ),
        Err(Error::InServer { source, .. }) if matches!(*source, Error::ConflictingSettings { .. })
    ));
    let tls = ServerTlsSettings {
        mode: ServerTlsMode::IstioMutual,
        ..Default::default()
    };
    let err = port(vec![(vec![HOST], tls)], &TlsContext::new()).unwrap_err();
    assert!(err.to_string().contains("mesh identity"), "{err}");
}

// === PASSTHROUGH ===

#[test]
fn passthrough_servers_do_not_terminate() {
    let p = pki();
    let port = port(
        vec![
            (
                vec!["pass.example.com"],
                ServerTlsSettings {
                    // Certificates on a passthrough server are ignored, as in Istio.
                    credential_name: Some("ignored".into()),
                    ..Default::default()
                },
            ),
            (
                vec!["*.mesh.example.com"],
                ServerTlsSettings {
                    mode: ServerTlsMode::AutoPassthrough,
                    ..Default::default()
                },
            ),
            (vec![HOST], simple(&p)),
        ],
        &TlsContext::new(),
    )
    .unwrap();
    assert!(matches!(
        port.select(Some("pass.example.com")),
        Some(ServerTls::Passthrough { auto: false })
    ));
    assert!(matches!(
        port.select(Some("a.mesh.example.com")),
        Some(ServerTls::Passthrough { auto: true })
    ));
    assert!(port.select(Some(HOST)).unwrap().config().is_some());
    assert!(
        port.select(Some("pass.example.com"))
            .unwrap()
            .is_passthrough()
    );
}

// === SNI selection across servers ===

#[test]
fn sni_exact_then_longest_wildcard_then_default() {
    let ca = Ca::new("sni CA");
    let dir = temp_dir("sni");
    let mut servers = Vec::new();
    let mut leaves = Vec::new();
    for (i, hosts) in [
        vec!["api.example.com"],
        vec!["*.example.com"],
        vec!["*.eu.example.com"],
        vec!["*"],
        vec!["ns1/api.example.com", "late.example.com"],
    ]
    .into_iter()
    .enumerate()
    {
        let sans: Vec<&str> = hosts
            .iter()
            .map(|h| h.rsplit('/').next().unwrap())
            .map(|h| if h == "*" { "default.invalid" } else { h })
            .collect();
        let leaf = ca.leaf(&sans, 100 + i as u64);
        let tls = ServerTlsSettings {
            mode: ServerTlsMode::Simple,
            server_certificate: Some(write(&dir, &format!("{i}.crt"), &leaf.cert_pem)),
            private_key: Some(write(&dir, &format!("{i}.key"), &leaf.key_pem)),
            ..Default::default()
        };
        servers.push((hosts, tls));
        leaves.push(leaf);
    }
    let port = port(servers, &TlsContext::new()).unwrap();
    let r = port.resolver();
    assert_eq!(r.server_for(Some("api.example.com")), Some(0));
    assert_eq!(r.server_for(Some("API.Example.com.")), Some(0));
    assert_eq!(r.server_for(Some("www.example.com")), Some(1));
    assert_eq!(r.server_for(Some("a.b.example.com")), Some(1));
    assert_eq!(r.server_for(Some("x.eu.example.com")), Some(2));
    assert_eq!(r.server_for(Some("x.y.eu.example.com")), Some(2));
    assert_eq!(r.server_for(Some("eu.example.com")), Some(1));
    assert_eq!(r.server_for(Some("example.com")), Some(3));
    assert_eq!(r.server_for(Some("elsewhere.org")), Some(3));
    assert_eq!(r.server_for(None), Some(3));
    // The first server claiming a host keeps it.
    assert_eq!(r.server_for(Some("late.example.com")), Some(4));

    // And the handshakes see the matching certificates.
    let client = client_config(&ClientOpts {
        roots: vec![ca.der()],
        ..Default::default()
    });
    for (name, idx) in [
        ("api.example.com", 0),
        ("www.example.com", 1),
        ("x.eu.example.com", 2),
    ] {
        let (c, _) = shake(&port, &client, name).unwrap();
        assert_eq!(c.peer_certificates().unwrap()[0], leaves[idx].der, "{name}");
    }
    let (side, err) = shake(&port, &client, "10.0.0.1").unwrap_err();
    // The default certificate is served without SNI; it is not valid for the IP.
    assert_eq!(side, Side::Client, "{err}");
}

#[test]
fn tls_certificates_choose_by_client_signature_schemes() {
    let ca = Ca::new("dual CA");
    let dir = temp_dir("dual");
    let ecdsa = ca.leaf(HOST.split(' ').collect::<Vec<_>>().as_slice(), 1);
    let ed25519 = ca.leaf_with(&[HOST], 2, &rcgen::PKCS_ED25519);
    let entry = |leaf: &Leaf, n: &str| TlsCertificate {
        server_certificate: Some(write(&dir, &format!("{n}.crt"), &leaf.cert_pem)),
        private_key: Some(write(&dir, &format!("{n}.key"), &leaf.key_pem)),
        ca_certificates: None,
    };
    let port = single(ServerTlsSettings {
        mode: ServerTlsMode::Simple,
        tls_certificates: vec![entry(&ecdsa, "ecdsa"), entry(&ed25519, "ed")],
        ..Default::default()
    });
    let r = port.resolver();
    let ed_only = [rustls::SignatureScheme::ED25519];
    let ec_only = [rustls::SignatureScheme::ECDSA_NISTP256_SHA256];
    let pick = |schemes: &[rustls::SignatureScheme]| {
        r.certificate_for(Some(HOST), schemes).unwrap().cert[0].clone()
    };
    assert_eq!(pick(&ed_only), ed25519.der);
    assert_eq!(pick(&ec_only), ecdsa.der);
    let client = client_config(&ClientOpts {
        roots: vec![ca.der()],
        ..Default::default()
    });
    let (c, _) = shake(&port, &client, HOST).unwrap();
    assert_eq!(c.peer_certificates().unwrap()[0], ecdsa.der);
}

#[test]
fn one_certificate_source_only() {
    let p = pki();
    let store = InMemoryCredentialStore::new(common::provider());
    let ctx = TlsContext::new().credentials(Arc::new(store));
    let tls = ServerTlsSettings {
        credential_name: Some("x".into()),
        ..simple(&p)
    };
    let err = port(vec![(vec![HOST], tls)], &ctx).unwrap_err();
    assert!(
        err.to_string().contains("only one certificate source"),
        "{err}"
    );
}

#[test]
fn file_errors_name_the_setting_and_the_file() {
    let p = pki();
    let missing = p.dir.join("missing.pem");
    let tls = ServerTlsSettings {
        server_certificate: Some(missing.clone()),
        ..simple(&p)
    };
    let msg = port(vec![(vec![HOST], tls)], &TlsContext::new())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("serverCertificate"), "{msg}");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");

    let garbage = write(&p.dir, "garbage.pem", "hello");
    let tls = ServerTlsSettings {
        private_key: Some(garbage),
        ..simple(&p)
    };
    let msg = port(vec![(vec![HOST], tls)], &TlsContext::new())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("privateKey") && msg.contains("PRIVATE KEY"),
        "{msg}"
    );

    // A key that does not match the certificate.
    let other = p.ca.leaf(&[HOST], 9);
    let tls = ServerTlsSettings {
        private_key: Some(write(&p.dir, "other.key", &other.key_pem)),
        ..simple(&p)
    };
    let err = port(vec![(vec![HOST], tls)], &TlsContext::new()).unwrap_err();
    let Error::InServer { source, .. } = err else {
        panic!()
    };
    assert!(matches!(*source, Error::InvalidKey { .. }), "{source}");
}
