//! credentialName: Istio's secret conventions, the stores, and rotation without restarts.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::{
    Ca, ClientOpts, Leaf, Side, client_config, client_to_server, connect, handshake, temp_dir,
    write,
};
use portcullis_tls::rustls::{self, ServerConnection};
use portcullis_tls::*;

const HOST: &str = "shop.example.com";

fn tls_secret(leaf: &Leaf, ca: Option<&Ca>) -> SecretData {
    let mut s = SecretData::new();
    s.insert("tls.crt".into(), leaf.cert_pem.clone().into_bytes());
    s.insert("tls.key".into(), leaf.key_pem.clone().into_bytes());
    if let Some(ca) = ca {
        s.insert("ca.crt".into(), ca.pem().into_bytes());
    }
    s
}

fn ca_secret(ca: &Ca, key: &str) -> SecretData {
    let mut s = SecretData::new();
    s.insert(key.into(), ca.pem().into_bytes());
    s
}

fn store() -> InMemoryCredentialStore {
    InMemoryCredentialStore::new(common::provider())
}

fn port_with(store: Arc<dyn CredentialStore>, tls: ServerTlsSettings) -> Result<PortTls, Error> {
    PortTls::build(
        &[ServerSpec {
            hosts: vec![HOST.into()],
            protocol: ServerProtocol::Https,
            tls,
        }],
        &TlsContext::new().credentials(store),
    )
}

fn by_name(mode: ServerTlsMode, name: &str) -> ServerTlsSettings {
    ServerTlsSettings {
        mode,
        credential_name: Some(name.into()),
        ..Default::default()
    }
}

fn server_for(port: &PortTls) -> ServerConnection {
    ServerConnection::new(port.select(Some(HOST)).unwrap().config().unwrap().clone()).unwrap()
}

#[test]
fn secret_layouts() {
    let ca = Ca::new("ca");
    let leaf = ca.leaf(&[HOST], 1);
    let provider = common::provider();
    let c = Credential::from_secret("a", &tls_secret(&leaf, Some(&ca)), &provider).unwrap();
    assert!(c.certified_key().is_some());
    assert_eq!(c.ca_certificates().len(), 1);

    let mut generic = SecretData::new();
    generic.insert("cert".into(), leaf.cert_pem.clone().into_bytes());
    generic.insert("key".into(), leaf.key_pem.clone().into_bytes());
    generic.insert("cacert".into(), ca.pem().into_bytes());
    generic.insert("crl".into(), ca.crl(&[5]).into_bytes());
    let c = Credential::from_secret("b", &generic, &provider).unwrap();
    assert!(c.certified_key().is_some());
    assert_eq!(c.crls().len(), 1);

    let c = Credential::from_secret("c-cacert", &ca_secret(&ca, "ca.crt"), &provider).unwrap();
    assert!(c.certified_key().is_none());

    let mut half = tls_secret(&leaf, None);
    half.remove("tls.key");
    let err = Credential::from_secret("half", &half, &provider).unwrap_err();
    assert!(
        err.to_string().contains("\"half\"") && err.to_string().contains("tls.key"),
        "{err}"
    );

    let mut garbage = tls_secret(&leaf, None);
    garbage.insert("tls.crt".into(), b"not pem".to_vec());
    let msg = Credential::from_secret("g", &garbage, &provider)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("tls.crt") && msg.contains("secret g"), "{msg}");

    let err = Credential::from_secret("empty", &SecretData::new(), &provider).unwrap_err();
    assert!(matches!(err, Error::IncompleteCredential { .. }));
}

#[test]
fn simple_with_credential_name() {
    let ca = Ca::new("ca");
    let leaf = ca.leaf(&[HOST], 1);
    let s = store();
    s.insert_secret("shop-cert", &tls_secret(&leaf, None))
        .unwrap();
    let port = port_with(Arc::new(s), by_name(ServerTlsMode::Simple, "shop-cert")).unwrap();
    let client = client_config(&ClientOpts {
        roots: vec![ca.der()],
        ..Default::default()
    });
    let mut c = connect(&client, HOST);
    handshake(&mut c, &mut server_for(&port)).unwrap();
    assert_eq!(c.peer_certificates().unwrap()[0], leaf.der);
}

#[test]
fn missing_credential_and_missing_store_are_named() {
    let err = port_with(Arc::new(store()), by_name(ServerTlsMode::Simple, "nope")).unwrap_err();
    assert!(
        err.to_string().contains("credential \"nope\" not found"),
        "{err}"
    );
    let err = PortTls::build(
        &[ServerSpec {
            hosts: vec![HOST.into()],
            tls: by_name(ServerTlsMode::Simple, "nope"),
            ..Default::default()
        }],
        &TlsContext::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no credential store"), "{err}");
}

#[test]
fn mutual_client_ca_sources_follow_istio() {
    let server_ca = Ca::new("server ca");
    let leaf = server_ca.leaf(&[HOST], 1);
    let clients = Ca::new("client ca");
    let me = clients.leaf(&["me.example.com"], 2);
    let client = client_config(&ClientOpts {
        roots: vec![server_ca.der()],
        client_cert: Some(&me),
        ..Default::default()
    });
    let accepted = |port: &PortTls| {
        let mut c = connect(&client, HOST);
        handshake(&mut c, &mut server_for(port))
    };

    // 1. ca.crt inside the credential.
    let s = store();
    s.insert_secret("own", &tls_secret(&leaf, Some(&clients)))
        .unwrap();
    accepted(&port_with(Arc::new(s), by_name(ServerTlsMode::Mutual, "own")).unwrap()).unwrap();

    // 2. The `<name>-cacert` secret.
    let s = store();
    s.insert_secret("split", &tls_secret(&leaf, None)).unwrap();
    s.insert_secret("split-cacert", &ca_secret(&clients, "cacert"))
        .unwrap();
    accepted(&port_with(Arc::new(s), by_name(ServerTlsMode::Mutual, "split")).unwrap()).unwrap();

    // 3. caCertCredentialName wins over the credential's own CA.
    let s = store();
    s.insert_secret("named", &tls_secret(&leaf, Some(&Ca::new("decoy"))))
        .unwrap();
    s.insert_secret("client-cas", &ca_secret(&clients, "ca.crt"))
        .unwrap();
    let tls = ServerTlsSettings {
        ca_cert_credential_name: Some("client-cas".into()),
        ..by_name(ServerTlsMode::Mutual, "named")
    };
    accepted(&port_with(Arc::new(s.clone()), tls).unwrap()).unwrap();
    // ... and with the decoy CA the same client is refused.
    let port = port_with(Arc::new(s), by_name(ServerTlsMode::Mutual, "named")).unwrap();
    assert_eq!(accepted(&port).unwrap_err().0, Side::Server);

    // 4. No CA anywhere: a build error that says where it looked.
    let s = store();
    s.insert_secret("bare", &tls_secret(&leaf, None)).unwrap();
    let msg = port_with(Arc::new(s), by_name(ServerTlsMode::Mutual, "bare"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("-cacert") && msg.contains("caCertCredentialName"),
        "{msg}"
    );
}

#[test]
fn crl_from_the_credential_revokes() {
    let server_ca = Ca::new("server ca");
    let clients = Ca::new("client ca");
    let mut secret = tls_secret(&server_ca.leaf(&[HOST], 1), Some(&clients));
    secret.insert("ca.crl".into(), clients.crl(&[77]).into_bytes());
    let s = store();
    s.insert_secret("crl", &secret).unwrap();
    let port = port_with(Arc::new(s), by_name(ServerTlsMode::Mutual, "crl")).unwrap();
    let revoked = clients.leaf(&["r.example.com"], 77);
    let client = client_config(&ClientOpts {
        roots: vec![server_ca.der()],
        client_cert: Some(&revoked),
        ..Default::default()
    });
    let mut c = connect(&client, HOST);
    let (side, err) = handshake(&mut c, &mut server_for(&port)).unwrap_err();
    assert_eq!(side, Side::Server);
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
    );
}

#[test]
fn rotation_in_memory_new_handshakes_see_the_new_certificate() {
    let ca = Ca::new("ca");
    let old = ca.leaf(&[HOST], 1);
    let new = ca.leaf(&[HOST], 2);
    let s = store();
    s.insert_secret("shop-cert", &tls_secret(&old, None))
        .unwrap();
    let port = port_with(
        Arc::new(s.clone()),
        by_name(ServerTlsMode::Simple, "shop-cert"),
    )
    .unwrap();
    let config = port.select(Some(HOST)).unwrap().config().unwrap().clone();
    let client = client_config(&ClientOpts {
        roots: vec![ca.der()],
        ..Default::default()
    });

    // A handshake in flight: the server has read the ClientHello and chosen its certificate.
    let mut in_flight_client = connect(&client, HOST);
    let mut in_flight_server = ServerConnection::new(Arc::clone(&config)).unwrap();
    client_to_server(&mut in_flight_client, &mut in_flight_server).unwrap();

    // Rotate.
    s.insert_secret("shop-cert", &tls_secret(&new, None))
        .unwrap();

    // The in-flight handshake completes on the old certificate.
    handshake(&mut in_flight_client, &mut in_flight_server).unwrap();
    assert_eq!(in_flight_client.peer_certificates().unwrap()[0], old.der);

    // A new handshake, same ServerConfig (no restart), gets the new one.
    let mut c = connect(&client, HOST);
    handshake(&mut c, &mut ServerConnection::new(config).unwrap()).unwrap();
    assert_eq!(c.peer_certificates().unwrap()[0], new.der);

    // Removing the credential makes new handshakes fail rather than serve a stale one.
    assert!(s.remove("shop-cert"));
    let mut c = connect(&client, HOST);
    assert_eq!(
        handshake(&mut c, &mut server_for(&port)).unwrap_err().0,
        Side::Server
    );
}

#[test]
fn rotation_from_files() {
    let ca = Ca::new("ca");
    let old = ca.leaf(&[HOST], 1);
    let new = ca.leaf(&[HOST], 2);
    let root = temp_dir("filestore");
    write(&root, "shop-cert/tls.crt", &old.cert_pem);
    write(&root, "shop-cert/tls.key", &old.key_pem);
    write(&root, "shop-cert/..data", "kubernetes link, skipped");
    write(&root, "shop-cert-cacert/ca.crt", &ca.pem());
    let (files, errors) = FileCredentialStore::open(&root, common::provider());
    assert!(errors.is_empty(), "{errors:?}");
    let files = Arc::new(files);
    let port = port_with(files.clone(), by_name(ServerTlsMode::Simple, "shop-cert")).unwrap();
    let client = client_config(&ClientOpts {
        roots: vec![ca.der()],
        ..Default::default()
    });
    let served = |port: &PortTls| {
        let mut c = connect(&client, HOST);
        handshake(&mut c, &mut server_for(port)).map(|()| c.peer_certificates().unwrap()[0].clone())
    };
    assert_eq!(served(&port).unwrap(), old.der);

    write(&root, "shop-cert/tls.crt", &new.cert_pem);
    write(&root, "shop-cert/tls.key", &new.key_pem);
    // Not yet reloaded: still the old one.
    assert_eq!(served(&port).unwrap(), old.der);
    assert!(files.reload().is_empty());
    assert_eq!(served(&port).unwrap(), new.der);

    // A broken update keeps serving the last good certificate and is reported.
    write(&root, "shop-cert/tls.key", "broken");
    let errors = files.reload();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("tls.key"), "{}", errors[0]);
    assert_eq!(served(&port).unwrap(), new.der);

    // A removed directory removes the credential.
    std::fs::remove_dir_all(root.join("shop-cert")).unwrap();
    assert!(files.reload().is_empty());
    assert!(files.get("shop-cert").is_none());
    assert!(served(&port).is_err());
}

#[test]
fn resolver_update_swaps_the_table() {
    let ca = Ca::new("ca");
    let a = ca.leaf(&["a.example.com"], 1);
    let b = ca.leaf(&["b.example.com"], 2);
    let key = |l: &Leaf| {
        pem::certified_key(
            vec![l.der.clone()],
            pem::private_key_from_pem("k", "t", l.key_pem.as_bytes()).unwrap(),
            &rustls::crypto::ring::default_provider(),
            "t",
        )
        .unwrap()
    };
    let resolver = SniResolver::new(vec![SniEntry {
        hosts: vec!["a.example.com".into()],
        source: CertSource::Static(vec![key(&a)]),
    }]);
    assert!(
        resolver
            .certificate_for(Some("a.example.com"), &[])
            .is_some()
    );
    assert!(
        resolver
            .certificate_for(Some("b.example.com"), &[])
            .is_none()
    );
    resolver.update(vec![SniEntry {
        hosts: vec!["b.example.com".into()],
        source: CertSource::Static(vec![key(&b)]),
    }]);
    assert!(
        resolver
            .certificate_for(Some("a.example.com"), &[])
            .is_none()
    );
    assert_eq!(
        resolver
            .certificate_for(Some("b.example.com"), &[])
            .unwrap()
            .cert[0],
        b.der
    );
}

#[test]
fn rotation_of_the_client_ca() {
    let server_ca = Ca::new("server ca");
    let leaf = server_ca.leaf(&[HOST], 1);
    let first = Ca::new("first client ca");
    let second = Ca::new("second client ca");
    let s = store();
    s.insert_secret("shop", &tls_secret(&leaf, Some(&first)))
        .unwrap();
    let port = port_with(Arc::new(s.clone()), by_name(ServerTlsMode::Mutual, "shop")).unwrap();
    let from = |ca: &Ca, serial| {
        let me = ca.leaf(&["me.example.com"], serial);
        let client = client_config(&ClientOpts {
            roots: vec![server_ca.der()],
            client_cert: Some(&me),
            ..Default::default()
        });
        let mut c = connect(&client, HOST);
        handshake(&mut c, &mut server_for(&port))
    };
    from(&first, 10).unwrap();
    assert_eq!(from(&second, 11).unwrap_err().0, Side::Server);

    // The CA is replaced in the store: same PortTls, the other client is now the good one.
    s.insert_secret("shop", &tls_secret(&leaf, Some(&second)))
        .unwrap();
    from(&second, 12).unwrap();
    assert_eq!(from(&first, 13).unwrap_err().0, Side::Server);

    // A CRL added to the credential applies at once too.
    let mut with_crl = tls_secret(&leaf, Some(&second));
    with_crl.insert("ca.crl".into(), second.crl(&[14]).into_bytes());
    s.insert_secret("shop", &with_crl).unwrap();
    let (side, err) = from(&second, 14).unwrap_err();
    assert_eq!(side, Side::Server);
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
    );
}

#[test]
fn upstream_simple_takes_the_ca_from_credential_name() {
    let ca = Ca::new("upstream ca");
    let leaf = ca.leaf(&[HOST], 1);
    // The upstream: a gateway port of our own, SIMPLE with a file-free credential.
    let s = store();
    s.insert_secret("up", &tls_secret(&leaf, None)).unwrap();
    s.insert_secret("client-side-cacert", &ca_secret(&ca, "ca.crt"))
        .unwrap();
    let port = port_with(Arc::new(s.clone()), by_name(ServerTlsMode::Simple, "up")).unwrap();
    let ctx = TlsContext::new().credentials(Arc::new(s));
    let tls = client_tls(
        &ClientTlsSettings {
            mode: ClientTlsMode::Simple,
            credential_name: Some("client-side".into()),
            ..Default::default()
        },
        &[],
        &ctx,
    )
    .unwrap()
    .unwrap();
    let mut c = tls.connect(HOST).unwrap();
    handshake(&mut c, &mut server_for(&port)).unwrap();
    assert_eq!(c.peer_certificates().unwrap()[0], leaf.der);
}
