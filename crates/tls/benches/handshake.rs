//! Full TLS handshakes (in memory, no resumption) against one port whose resolver holds 1, 10
//! or 1000 SNI certificates. The cost should not depend on the number of certificates.
//!
//! Run: `cargo bench -p portcullis-tls --bench handshake`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Ca, ClientOpts, client_config, connect, handshake};
use portcullis_tls::rustls::{self, ClientConfig, ServerConnection};
use portcullis_tls::*;

fn main() {
    divan::main();
}

struct Setup {
    port: PortTls,
    client: Arc<ClientConfig>,
    hosts: Vec<String>,
    next: AtomicUsize,
}

fn setup(n: usize) -> Setup {
    let ca = Ca::new("bench CA");
    let store = InMemoryCredentialStore::new(common::provider());
    let mut specs = Vec::with_capacity(n);
    let mut hosts = Vec::with_capacity(n);
    for i in 0..n {
        let host = format!("svc{i}.bench.example.com");
        let leaf = ca.leaf(&[host.as_str()], i as u64 + 1);
        let mut secret = SecretData::new();
        secret.insert("tls.crt".into(), leaf.cert_pem.into_bytes());
        secret.insert("tls.key".into(), leaf.key_pem.into_bytes());
        let name = format!("cert-{i}");
        store.insert_secret(&name, &secret).unwrap();
        specs.push(ServerSpec {
            hosts: vec![host.clone()],
            protocol: ServerProtocol::Https,
            tls: ServerTlsSettings {
                mode: ServerTlsMode::Simple,
                credential_name: Some(name),
                ..Default::default()
            },
        });
        hosts.push(host);
    }
    let ctx = TlsContext::new().credentials(Arc::new(store));
    let port = PortTls::build(&specs, &ctx).unwrap();
    let client = client_config(&ClientOpts {
        roots: vec![ca.der()],
        alpn: vec![b"h2".to_vec()],
        ..Default::default()
    });
    Setup {
        port,
        client,
        hosts,
        next: AtomicUsize::new(0),
    }
}

#[divan::bench(args = [1, 10, 1000], sample_count = 200)]
fn full_handshake(bencher: divan::Bencher<'_, '_>, n: usize) {
    let s = setup(n);
    bencher.bench(|| {
        // Spread the handshakes over all the certificates.
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.hosts.len();
        let host = &s.hosts[i];
        let config = s.port.select(Some(host)).unwrap().config().unwrap();
        let mut server = ServerConnection::new(Arc::clone(config)).unwrap();
        let mut client = connect(&s.client, host);
        handshake(&mut client, &mut server).unwrap();
        divan::black_box(client.alpn_protocol().is_some())
    });
}

#[divan::bench(args = [1, 10, 1000])]
fn resolve_only(bencher: divan::Bencher<'_, '_>, n: usize) {
    let s = setup(n);
    let schemes = [rustls::SignatureScheme::ECDSA_NISTP256_SHA256];
    bencher.bench(|| {
        let i = s.next.fetch_add(1, Ordering::Relaxed) % s.hosts.len();
        divan::black_box(
            s.port
                .resolver()
                .certificate_for(Some(&s.hosts[i]), &schemes),
        )
    });
}
