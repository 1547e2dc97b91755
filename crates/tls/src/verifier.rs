//! Certificate verifiers: Istio's checks wrapped around rustls' WebPKI verifiers.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, hash::HashAlgorithm};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use rustls::{SignatureScheme, SupportedCipherSuite};

use crate::Error;
use crate::store::{Credential, CredentialStore, resolve_client_ca};
use crate::x509v1::{self, Purpose, V1Verifier};

/// A peer certificate that chains correctly but fails one of Istio's extra checks.
///
/// It reaches the caller as `rustls::Error::InvalidCertificate(CertificateError::Other(..))`;
/// its message names the setting, what was expected and what the peer presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificateMismatch {
    /// The setting that failed: `subjectAltNames`, or `verifyCertificateSpki/Hash`.
    pub setting: &'static str,
    /// What the setting allows.
    pub expected: Vec<String>,
    /// What the certificate carries (its SANs, or its SPKI and certificate hashes).
    pub presented: Vec<String>,
}

impl fmt::Display for PeerCertificateMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer certificate does not satisfy {}: expected one of {:?}, presented {:?}",
            self.setting, self.expected, self.presented
        )
    }
}

impl std::error::Error for PeerCertificateMismatch {}

fn mismatch(err: PeerCertificateMismatch) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
}

/// SHA-256 through the crypto provider, so no second crypto library is linked.
#[derive(Clone, Copy)]
struct Sha256(&'static dyn rustls::crypto::hash::Hash);

impl Sha256 {
    fn from_provider(provider: &CryptoProvider) -> Option<Self> {
        provider.cipher_suites.iter().find_map(|suite| {
            let hash = match suite {
                SupportedCipherSuite::Tls13(s) => s.common.hash_provider,
                SupportedCipherSuite::Tls12(s) => s.common.hash_provider,
            };
            (hash.algorithm() == HashAlgorithm::SHA256).then_some(Self(hash))
        })
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        self.0.hash(data).as_ref().to_vec()
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256")
    }
}

/// SHA-256 from the provider's cipher suites.
fn sha256_of(provider: &CryptoProvider) -> Result<Sha256, Error> {
    Sha256::from_provider(provider).ok_or(Error::ProviderLacks {
        setting: "verifyCertificateSpki/verifyCertificateHash",
        what: "cipher suite with SHA-256 to hash certificates with",
    })
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    }
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The identity checks Istio adds on top of chain validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerChecks {
    /// Accept if any SAN (DNS, URI or IP) equals one of these. Empty: no SAN check.
    pub(crate) subject_alt_names: Vec<String>,
    /// SHA-256 of acceptable SPKIs.
    spki: Vec<Vec<u8>>,
    /// SHA-256 of acceptable certificates.
    cert_hashes: Vec<Vec<u8>>,
    sha256: Option<Sha256>,
}

impl PeerChecks {
    pub(crate) fn new(
        subject_alt_names: &[String],
        verify_certificate_spki: &[String],
        verify_certificate_hash: &[String],
        provider: &CryptoProvider,
    ) -> Result<Self, Error> {
        let spki = verify_certificate_spki
            .iter()
            .map(|s| match decode_base64(s) {
                Some(d) if d.len() == 32 => Ok(d),
                _ => Err(Error::InvalidPin {
                    setting: "verifyCertificateSpki",
                    value: s.clone(),
                    expected: "the base64 SHA-256 of a SubjectPublicKeyInfo (44 characters)",
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cert_hashes = verify_certificate_hash
            .iter()
            .map(|s| match decode_hex(s) {
                Some(d) if d.len() == 32 => Ok(d),
                _ => Err(Error::InvalidPin {
                    setting: "verifyCertificateHash",
                    value: s.clone(),
                    expected: "the hex SHA-256 of a certificate (64 hex digits, colons allowed)",
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sha256 = if spki.is_empty() && cert_hashes.is_empty() {
            None
        } else {
            Some(sha256_of(provider)?)
        };
        Ok(Self {
            subject_alt_names: subject_alt_names.to_vec(),
            spki,
            cert_hashes,
            sha256,
        })
    }

    fn is_empty(&self) -> bool {
        self.subject_alt_names.is_empty() && self.spki.is_empty() && self.cert_hashes.is_empty()
    }

    /// Runs the checks on a certificate that already chains to a trusted root.
    pub(crate) fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.is_empty() {
            return Ok(());
        }
        if x509v1::is_pre_v3(end_entity.as_ref()) {
            return self.check_pre_v3(end_entity);
        }
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if !self.subject_alt_names.is_empty() {
            let dns: Vec<&str> = cert.valid_dns_names().collect();
            let uris: Vec<&str> = cert.valid_uri_names().collect();
            let matched = self.subject_alt_names.iter().any(|want| {
                dns.iter().any(|d| d.eq_ignore_ascii_case(want))
                    || uris.iter().any(|u| u == want)
                    || want.parse::<IpAddr>().is_ok_and(|ip| {
                        cert.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
                            .is_ok()
                    })
            });
            if !matched {
                let presented = dns
                    .iter()
                    .map(|d| format!("DNS:{d}"))
                    .chain(uris.iter().map(|u| format!("URI:{u}")))
                    .collect();
                return Err(mismatch(PeerCertificateMismatch {
                    setting: "subjectAltNames",
                    expected: self.subject_alt_names.clone(),
                    presented,
                }));
            }
        }
        self.check_pins(end_entity.as_ref(), cert.subject_public_key_info().as_ref())
    }

    /// The checks for a version-1 or -2 certificate: it has no subjectAltName extension, so
    /// `subjectAltNames` cannot match; the pins work as for any certificate.
    fn check_pre_v3(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if !self.subject_alt_names.is_empty() {
            return Err(mismatch(PeerCertificateMismatch {
                setting: "subjectAltNames",
                expected: self.subject_alt_names.clone(),
                presented: Vec::new(),
            }));
        }
        let spki = x509v1::subject_public_key_info(end_entity.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        self.check_pins(end_entity.as_ref(), spki)
    }

    /// `verifyCertificateSpki` and `verifyCertificateHash`: either may match.
    fn check_pins(&self, end_entity: &[u8], spki: &[u8]) -> Result<(), rustls::Error> {
        if let Some(sha) = self.sha256 {
            let spki = sha.digest(spki);
            let hash = sha.digest(end_entity);
            if !self.spki.contains(&spki) && !self.cert_hashes.contains(&hash) {
                let expected = self
                    .spki
                    .iter()
                    .map(|d| format!("spki:{}", to_base64(d)))
                    .chain(
                        self.cert_hashes
                            .iter()
                            .map(|d| format!("hash:{}", to_hex(d))),
                    )
                    .collect();
                return Err(mismatch(PeerCertificateMismatch {
                    setting: "verifyCertificateSpki/verifyCertificateHash",
                    expected,
                    presented: vec![
                        format!("spki:{}", to_base64(&spki)),
                        format!("hash:{}", to_hex(&hash)),
                    ],
                }));
            }
        }
        Ok(())
    }
}

/// A client-certificate verifier: rustls' WebPKI verifier (chain, CRLs) followed by Istio's
/// `subjectAltNames`, `verifyCertificateSpki` and `verifyCertificateHash` checks.
///
/// Version-1 and version-2 client certificates, which webpki refuses, are verified against the
/// same trust anchors and CRLs by [`x509v1`] instead.
#[derive(Debug)]
pub struct IstioClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    v1: V1Verifier,
    checks: PeerChecks,
    algorithms: WebPkiSupportedAlgorithms,
}

impl IstioClientVerifier {
    pub(crate) fn new(
        inner: Arc<dyn ClientCertVerifier>,
        v1: V1Verifier,
        checks: PeerChecks,
        provider: &CryptoProvider,
    ) -> Self {
        Self {
            inner,
            v1,
            checks,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

/// Chain verification for a client certificate: webpki for version 3, [`x509v1`] otherwise.
fn verify_client_chain(
    webpki: &dyn ClientCertVerifier,
    v1: &V1Verifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<ClientCertVerified, rustls::Error> {
    if x509v1::is_pre_v3(end_entity.as_ref()) {
        v1.verify(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    } else {
        webpki.verify_client_cert(end_entity, intermediates, now)
    }
}

/// A handshake signature check that also reads version-1 and version-2 certificates.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if x509v1::is_pre_v3(cert.as_ref()) {
        x509v1::verify_handshake_signature(message, cert, dss, algorithms, tls13)
    } else if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }
}

impl ClientCertVerifier for IstioClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = verify_client_chain(
            self.inner.as_ref(),
            &self.v1,
            end_entity,
            intermediates,
            now,
        )?;
        self.checks.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if x509v1::is_pre_v3(cert.as_ref()) {
            return verify_signature(message, cert, dss, &self.algorithms, false);
        }
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if x509v1::is_pre_v3(cert.as_ref()) {
            return verify_signature(message, cert, dss, &self.algorithms, true);
        }
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client-certificate verifier whose CA and CRLs come from a [`CredentialStore`] at every
/// handshake, so that replacing the CA credential takes effect without rebuilding anything.
///
/// The WebPKI verifier is rebuilt only when the credential changes. It sends no
/// `certificate_authorities` hints (rustls clients and most others send their certificate
/// regardless).
#[derive(Debug)]
pub(crate) struct StoreClientVerifier {
    store: Arc<dyn CredentialStore>,
    name: String,
    ca_name: Option<String>,
    optional: bool,
    checks: PeerChecks,
    provider: Arc<CryptoProvider>,
    cache: RwLock<Option<CachedVerifier>>,
}

type CachedVerifier = (Arc<Credential>, Arc<dyn ClientCertVerifier>, V1Verifier);

impl StoreClientVerifier {
    pub(crate) fn new(
        store: Arc<dyn CredentialStore>,
        name: String,
        ca_name: Option<String>,
        optional: bool,
        checks: PeerChecks,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            store,
            name,
            ca_name,
            optional,
            checks,
            provider,
            cache: RwLock::new(None),
        }
    }

    /// Builds the WebPKI verifier, and the one for version-1 certificates, for a CA credential.
    pub(crate) fn verifiers_for(
        credential: &Credential,
        provider: &Arc<CryptoProvider>,
        optional: bool,
    ) -> Result<(Arc<dyn ClientCertVerifier>, V1Verifier), Error> {
        let mut roots = RootCertStore::empty();
        for ca in credential.ca_certificates() {
            roots.add(ca.clone()).map_err(|source| Error::Rustls {
                context: "client CA credential: a CA certificate cannot be used as a trust anchor",
                source,
            })?;
        }
        let roots = Arc::new(roots);
        let v1 = V1Verifier::new(
            Arc::clone(&roots),
            credential.crls().to_vec(),
            provider.signature_verification_algorithms,
            Purpose::ClientAuth,
        );
        let mut builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider));
        if !credential.crls().is_empty() {
            builder = builder
                .with_crls(credential.crls().iter().cloned())
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status();
        }
        if optional {
            builder = builder.allow_unauthenticated();
        }
        let webpki = builder.build().map_err(|source| Error::Verifier {
            context: "client certificate verifier (client CA credential)",
            source,
        })?;
        Ok((webpki, v1))
    }

    fn current(&self) -> Result<(Arc<dyn ClientCertVerifier>, V1Verifier), rustls::Error> {
        let credential =
            resolve_client_ca(self.store.as_ref(), &self.name, self.ca_name.as_deref())
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        if let Some((cached, verifier, v1)) =
            &*self.cache.read().unwrap_or_else(PoisonError::into_inner)
            && Arc::ptr_eq(cached, &credential)
        {
            return Ok((Arc::clone(verifier), v1.clone()));
        }
        let (verifier, v1) = Self::verifiers_for(&credential, &self.provider, self.optional)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) =
            Some((credential, Arc::clone(&verifier), v1.clone()));
        Ok((verifier, v1))
    }
}

impl ClientCertVerifier for StoreClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        !self.optional
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let (webpki, v1) = self.current()?;
        let verified = verify_client_chain(webpki.as_ref(), &v1, end_entity, intermediates, now)?;
        self.checks.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
            false,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
            true,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How the server's name is checked, after the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameCheck {
    /// The certificate must be valid for the server name of the connection (Istio's auto SAN
    /// validation when `sni` is unset).
    ServerName,
    /// Only the chain and the [`PeerChecks`] (Istio with `sni` or `subjectAltNames` set).
    ChainOnly,
}

/// A server-certificate verifier for upstream TLS: chain (and CRLs) through rustls' WebPKI
/// verifier, then either the server name or Istio's `subjectAltNames`. With
/// `insecureSkipVerify` nothing about the certificate is checked (handshake signatures still are).
///
/// A version-1 or version-2 server certificate is verified by [`x509v1`] against the same
/// trust anchors and CRLs. It has no subjectAltName, so it is accepted only when the name is not
/// checked (`sni` set, no `subjectAltNames`).
#[derive(Debug)]
pub struct IstioServerVerifier {
    inner: Option<(Arc<WebPkiServerVerifier>, V1Verifier)>,
    name_check: NameCheck,
    checks: PeerChecks,
    algorithms: WebPkiSupportedAlgorithms,
}

impl IstioServerVerifier {
    pub(crate) fn new(
        inner: Option<(Arc<WebPkiServerVerifier>, V1Verifier)>,
        name_check: NameCheck,
        checks: PeerChecks,
        provider: &CryptoProvider,
    ) -> Self {
        Self {
            inner,
            name_check,
            checks,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for IstioServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((inner, v1)) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        if x509v1::is_pre_v3(end_entity.as_ref()) {
            v1.verify(end_entity, intermediates, now)?;
            if self.name_check == NameCheck::ServerName {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext {
                        expected: server_name.to_owned(),
                        presented: Vec::new(),
                    },
                ));
            }
            self.checks.check(end_entity)?;
            return Ok(ServerCertVerified::assertion());
        }
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(_) => {}
            // WebPKI checks the name after the chain and revocation, so this error means
            // everything else passed.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.name_check == NameCheck::ChainOnly => {}
            Err(e) => return Err(e),
        }
        self.checks.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, &self.algorithms, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(message, cert, dss, &self.algorithms, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for len in 0..40usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            assert_eq!(decode_base64(&to_base64(&data)), Some(data));
        }
        assert_eq!(decode_base64("*"), None);
    }

    #[test]
    fn hex_with_colons() {
        assert_eq!(decode_hex("AB:cd:01"), Some(vec![0xab, 0xcd, 0x01]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(to_hex(&[0xab, 0x01]), "ab01");
    }
}
