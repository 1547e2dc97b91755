//! Shared test helpers: a tiny PKI minted with rcgen, temp files, and an in-memory
//! handshake driver.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
    SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate authority.
pub struct Ca {
    pub cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).unwrap();
        roots
    }

    /// A leaf with DNS/IP SANs (strings) and URI SANs (`spiffe://…` strings), ECDSA P-256.
    pub fn leaf(&self, sans: &[&str], serial: u64) -> Leaf {
        self.leaf_with(sans, serial, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    pub fn leaf_with(&self, sans: &[&str], serial: u64, alg: &'static SignatureAlgorithm) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        for san in sans {
            let san_type = if san.contains("://") {
                SanType::URI((*san).try_into().unwrap())
            } else if let Ok(ip) = san.parse() {
                SanType::IpAddress(ip)
            } else {
                SanType::DnsName((*san).try_into().unwrap())
            };
            params.subject_alt_names.push(san_type);
        }
        params
            .distinguished_name
            .push(DnType::CommonName, sans.first().copied().unwrap_or("leaf"));
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A CRL revoking these serial numbers.
    pub fn crl(&self, revoked: &[u64]) -> String {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|&s| RevokedCertParams {
                    serial_number: SerialNumber::from(s),
                    revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "portcullis-tls-{}-{}-{tag}-{n}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, contents).unwrap();
    path
}

/// Which side of the handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Drives a handshake in memory. On failure the failing side's alert is delivered to the
/// other side, and the first error is returned.
pub fn handshake(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), (Side, rustls::Error)> {
    for _ in 0..32 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        client_to_server(client, server)?;
        server_to_client(server, client)?;
    }
    panic!("handshake did not finish in 32 rounds");
}

pub fn client_to_server(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), (Side, rustls::Error)> {
    let mut buf = Vec::new();
    client.write_tls(&mut buf).unwrap();
    if buf.is_empty() {
        return Ok(());
    }
    let mut rd = buf.as_slice();
    while !rd.is_empty() {
        server.read_tls(&mut rd).unwrap();
        if let Err(e) = server.process_new_packets() {
            let mut alert = Vec::new();
            let _ = server.write_tls(&mut alert);
            let _ = client.read_tls(&mut alert.as_slice());
            let _ = client.process_new_packets();
            return Err((Side::Server, e));
        }
    }
    Ok(())
}

pub fn server_to_client(
    server: &mut ServerConnection,
    client: &mut ClientConnection,
) -> Result<(), (Side, rustls::Error)> {
    let mut buf = Vec::new();
    server.write_tls(&mut buf).unwrap();
    if buf.is_empty() {
        return Ok(());
    }
    let mut rd = buf.as_slice();
    while !rd.is_empty() {
        client.read_tls(&mut rd).unwrap();
        if let Err(e) = client.process_new_packets() {
            let mut alert = Vec::new();
            let _ = client.write_tls(&mut alert);
            let _ = server.read_tls(&mut alert.as_slice());
            let _ = server.process_new_packets();
            return Err((Side::Client, e));
        }
    }
    Ok(())
}

/// Options for a plain rustls test client.
#[derive(Default)]
pub struct ClientOpts<'a> {
    pub roots: Vec<CertificateDer<'static>>,
    pub client_cert: Option<&'a Leaf>,
    pub alpn: Vec<Vec<u8>>,
    pub tls12_only: bool,
    pub tls12_suites: Option<Vec<rustls::CipherSuite>>,
}

pub fn client_config(opts: &ClientOpts<'_>) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = &opts.tls12_suites {
        provider
            .cipher_suites
            .retain(|s| suites.contains(&s.suite()));
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if opts.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut roots = RootCertStore::empty();
    for r in &opts.roots {
        roots.add(r.clone()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match opts.client_cert {
        Some(leaf) => {
            use rustls::pki_types::pem::PemObject;
            let chain = vec![leaf.der.clone()];
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = opts.alpn.clone();
    // Every handshake in these tests is a full one: a resumed session would show the
    // certificate of the session it resumes.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

pub fn connect(config: &Arc<ClientConfig>, name: &str) -> ClientConnection {
    ClientConnection::new(
        Arc::clone(config),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap()
}

/// A TLS 1.1-only ClientHello (no supported_versions, CBC suites only), as an old client
/// would send.
pub fn tls11_client_hello(sni: &str) -> Vec<u8> {
    let mut exts = Vec::new();
    let name = sni.as_bytes();
    let mut sni_ext = Vec::new();
    sni_ext.extend(((name.len() + 3) as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend((name.len() as u16).to_be_bytes());
    sni_ext.extend(name);
    exts.extend(0u16.to_be_bytes());
    exts.extend((sni_ext.len() as u16).to_be_bytes());
    exts.extend(sni_ext);

    let mut body = vec![0x03, 0x02];
    body.extend([9u8; 32]);
    body.push(0);
    body.extend([0, 4, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend([1, 0]);
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);

    let mut hs = vec![1u8];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut rec = vec![22, 3, 1];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}
