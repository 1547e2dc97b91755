//! TLS for a gateway on rustls, following Istio's TLS settings.
//!
//! This crate turns Gateway `servers[].tls` and DestinationRule `trafficPolicy.tls` settings
//! into rustls configurations. It does not depend on any Istio model: its input types
//! ([`ServerTlsSettings`], [`ClientTlsSettings`]) mirror Istio's fields, so any gateway can
//! embed it. It does no I/O on connections; it hands out rustls configurations and reads
//! ClientHellos from byte slices.
//!
//! # The pieces
//!
//! * **Server side.** [`PortTls::build`] takes every server of one port ([`ServerSpec`]: hosts,
//!   protocol, TLS settings) and gives, per server, a [`ServerTls`]: either a rustls
//!   [`ServerConfig`](rustls::ServerConfig) to terminate with (`SIMPLE`, `MUTUAL`,
//!   `OPTIONAL_MUTUAL`, `ISTIO_MUTUAL`) or "passthrough" (`PASSTHROUGH`, `AUTO_PASSTHROUGH`).
//!   All the configurations of a port share one [`SniResolver`]: exact SNI, then the longest
//!   wildcard, then a `*` server; no SNI only matches a `*` server.
//! * **Credentials.** Files (`serverCertificate`, `privateKey`, `caCertificates`, `caCrl`,
//!   `tlsCertificates`), or `credentialName` looked up in a [`CredentialStore`]:
//!   [`InMemoryCredentialStore`] or [`FileCredentialStore`], with Istio's secret keys
//!   (`tls.crt`/`tls.key`/`ca.crt`/`ca.crl` or `cert`/`key`/`cacert`/`crl`, and the
//!   `<name>-cacert` secret). `ISTIO_MUTUAL` takes the workload certificate and mesh roots
//!   from a [`MeshIdentity`] the embedder implements.
//! * **Rotation.** Store- and mesh-backed certificates are looked up at every handshake, so
//!   replacing a credential in the store affects the next handshake, while handshakes in
//!   flight finish with the certificate they got. [`SniResolver::update`] swaps the whole
//!   host table. Nothing restarts.
//! * **Policy.** `minProtocolVersion`/`maxProtocolVersion` ([`protocol_versions`]): TLS 1.2
//!   and 1.3; TLS 1.0/1.1 are build errors. `cipherSuites` ([`restrict_cipher_suites`]):
//!   Envoy/OpenSSL names mapped to rustls suites; unknown or unsupported names are errors
//!   that name them. ALPN from the server protocol ([`ServerProtocol::alpn`]).
//! * **Client certificates** (`MUTUAL`, `OPTIONAL_MUTUAL`): chain to `caCertificates`, CRLs,
//!   then `subjectAltNames`, `verifyCertificateSpki`, `verifyCertificateHash`. A failure of
//!   the last three reads like [`PeerCertificateMismatch`]: expected versus presented.
//! * **X.509 version 1.** Certificates made by `openssl x509 -req` without extensions (Istio's
//!   docs make them so) are served, accepted from clients and from upstream servers, with the
//!   chain, validity, signature and CRL checks webpki applies to version 3: see [`x509v1`].
//! * **Passthrough.** [`peek_client_hello`] reads SNI and ALPN from the first bytes of a
//!   connection, saying "need more" or "not TLS" otherwise. Any input is safe. For a hello
//!   offering only TLS 1.0/1.1, [`ClientHelloInfo::protocol_version_alert`] is Envoy's answer
//!   (rustls' own would be `handshake_failure`).
//! * **Upstream.** [`client_tls`] builds the configuration for `SIMPLE`, `MUTUAL`,
//!   `ISTIO_MUTUAL` (and `None` for `DISABLE`), with `sni`, `subjectAltNames`,
//!   `caCertificates` (or system roots), `credentialName` and `insecureSkipVerify`.
//!
//! # Example
//!
//! A SIMPLE server whose certificate comes from a credential store, and an upstream client
//! trusting its CA, shaking hands in memory:
//!
//! ```
//! use std::sync::Arc;
//! use portcullis_tls::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A certificate for bookinfo.example.com (minted with rcgen here; a secret in real life).
//! let key = rcgen::KeyPair::generate()?;
//! let cert = rcgen::CertificateParams::new(vec!["bookinfo.example.com".into()])?
//!     .self_signed(&key)?;
//!
//! let ctx = TlsContext::new();
//! let store = InMemoryCredentialStore::new(Arc::clone(&ctx.provider));
//! let mut secret = SecretData::new();
//! secret.insert("tls.crt".into(), cert.pem().into_bytes());
//! secret.insert("tls.key".into(), key.serialize_pem().into_bytes());
//! store.insert_secret("bookinfo-cert", &secret)?;
//!
//! // The gateway port: one HTTPS server.
//! let ctx = ctx.credentials(Arc::new(store));
//! let port = PortTls::build(
//!     &[ServerSpec {
//!         hosts: vec!["bookinfo.example.com".into()],
//!         protocol: ServerProtocol::Https,
//!         tls: ServerTlsSettings {
//!             mode: ServerTlsMode::Simple,
//!             credential_name: Some("bookinfo-cert".into()),
//!             ..Default::default()
//!         },
//!     }],
//!     &ctx,
//! )?;
//! let server_config = port.select(Some("bookinfo.example.com")).and_then(ServerTls::config);
//! let mut server = rustls::ServerConnection::new(Arc::clone(server_config.ok_or("no server")?))?;
//!
//! // A client that trusts the certificate (as `caCertificates` would).
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(cert.der().clone())?;
//! let client_ctx = TlsContext::new().system_roots(Arc::new(roots));
//! let settings = ClientTlsSettings { mode: ClientTlsMode::Simple, ..Default::default() };
//! let upstream = client_tls(&settings, &[b"h2"], &client_ctx)?.ok_or("DISABLE")?;
//! let mut client = upstream.connect("bookinfo.example.com")?;
//!
//! // Pump bytes until both sides are done.
//! while client.is_handshaking() || server.is_handshaking() {
//!     let mut buf = Vec::new();
//!     client.write_tls(&mut buf)?;
//!     server.read_tls(&mut buf.as_slice())?;
//!     server.process_new_packets()?;
//!     let mut buf = Vec::new();
//!     server.write_tls(&mut buf)?;
//!     client.read_tls(&mut buf.as_slice())?;
//!     client.process_new_packets()?;
//! }
//! assert_eq!(client.alpn_protocol(), Some(&b"h2"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! # Not here
//!
//! `httpsRedirect` is the routing layer's job; SNI routing of passthrough connections (VirtualService
//! `tls` rules) is too. This crate has no async runtime dependency.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
pub mod client_hello;
mod error;
pub mod mesh;
// Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): hidden from the docs and
// not part of the stable API; they change whenever the fuzz targets do.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod pem;
mod policy;
mod resolver;
mod server;
mod settings;
pub mod store;
mod verifier;
pub mod x509v1;

pub use client::{ClientTls, ISTIO_MUTUAL_ALPN, client_tls, istio_mutual_sni};
pub use client_hello::{ClientHelloInfo, ClientHelloPeek, NotTlsReason, peek_client_hello};
pub use error::Error;
pub use mesh::FileMeshIdentity;
pub use policy::{protocol_versions, restrict_cipher_suites};
pub use resolver::{CertSource, MeshIdentity, SniEntry, SniResolver};
pub use server::{PortTls, ServerSpec, ServerTls, TlsContext, server_tls};
pub use settings::{
    ClientTlsMode, ClientTlsSettings, ParseEnumError, ServerProtocol, ServerTlsMode,
    ServerTlsSettings, TlsCertificate, TlsVersion,
};
pub use store::{
    Credential, CredentialStore, FileCredentialStore, InMemoryCredentialStore, SecretData,
};
pub use verifier::{IstioClientVerifier, IstioServerVerifier, PeerCertificateMismatch};

// Re-exported so that embedders use the same versions.
pub use rustls;
pub use rustls_pki_types as pki_types;

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
