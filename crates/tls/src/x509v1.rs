//! X.509 version-1 (and version-2) certificates, which webpki refuses and Envoy accepts.
//!
//! `openssl x509 -req` without an extension file (the way Istio's "Secure Gateways" task and
//! many guides make certificates) signs version-1 certificates: no extensions, so no
//! subjectAltName, basicConstraints or keyUsage. webpki, and so rustls, refuse them
//! (`UnsupportedCertVersion`) both as a server's own certificate and as a peer's certificate.
//! Envoy (BoringSSL) accepts them. This module fills that gap and nothing else: certificates of
//! version 3 never come here and keep going through webpki unchanged.
//!
//! # What is checked for a version-1 or version-2 end-entity certificate
//!
//! The rules follow webpki's for version-3 certificates, as far as they apply to a certificate
//! without extensions:
//!
//! * **Validity**: `notBefore <= now <= notAfter`, for the leaf and every intermediate.
//! * **Chain**: the leaf's issuer name equals a trust anchor's subject (byte for byte, as in
//!   webpki) and the signature verifies with the anchor's key; or it equals the subject of a
//!   presented intermediate that is itself checked the same way, up to
//!   [`MAX_INTERMEDIATES`] deep, with backtracking between candidates of the same name.
//!   Intermediates must be version-3 CA certificates: `basicConstraints` `cA` set, its
//!   `pathLenConstraint` respected, `keyUsage` (if present) with `keyCertSign`, extended key
//!   usage (if present) allowing the purpose, and no critical extension webpki would not
//!   process. A version-1 certificate can be a CA only as a configured trust anchor (RFC 5280
//!   6.1.4 (k)); webpki already accepts such anchors.
//! * **Name constraints**: a path through a name-constrained anchor or intermediate is
//!   refused rather than checked (a certificate without subjectAltName has only its subject to
//!   constrain, and webpki's rules for that are not reimplemented here).
//! * **Signatures**: with the crypto provider's
//!   [`WebPkiSupportedAlgorithms`], the same algorithm list webpki uses. The certificate's
//!   `signatureAlgorithm` and the issuer key's algorithm identifier must match one of them
//!   byte for byte, exactly as in webpki; so SHA-1 signatures stay refused.
//! * **Revocation**: as the verifiers configure webpki, for the leaf only and with unknown
//!   status allowed: a CRL whose issuer is the leaf's issuer must be signed by the issuer's
//!   key (and the issuer's `keyUsage`, if present, must allow `cRLSign`); the leaf is refused
//!   if its serial number is listed. A CRL whose issuing distribution point scopes it to
//!   distribution points (a version-1 certificate names none), to CA or attribute
//!   certificates, to some reasons, or makes it indirect is not authoritative and is skipped.
//! * **Handshake signatures** (`CertificateVerify`): the key from the certificate's
//!   subjectPublicKeyInfo, with the provider's scheme mapping (TLS 1.3: the first algorithm of
//!   the scheme, as rustls does; TLS 1.2: any of them).
//!
//! A version-1 certificate has no subjectAltName, so Istio's `subjectAltNames` never matches
//! it and upstream server-name verification fails for it; `verifyCertificateSpki` and
//! `verifyCertificateHash` work as for any certificate.
//!
//! # Dependencies
//!
//! Parsing is `x509-parser` (rusticata; already used by `portcullis-validate`, no `unsafe` on
//! our side, and its `verify` feature is left off). Signatures are verified by the rustls
//! [`CryptoProvider`](rustls::crypto::CryptoProvider)'s algorithms, not by x509-parser's ring
//! code, so that a certificate chain is held to the same algorithm policy whether its leaf is
//! version 1 or 3, and an embedder's provider (aws-lc-rs, FIPS) is the only crypto used.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
use rustls::{
    CertRevocationListError, CertificateError, DigitallySignedStruct, OtherError, PeerMisbehaved,
    RootCertStore,
};
use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::time::ASN1Time;

/// How many intermediates a version-1 leaf's chain may have (webpki allows six as well).
pub const MAX_INTERMEDIATES: usize = 6;

/// Why a chain ending in a version-1 certificate was refused, when rustls has no
/// [`CertificateError`] variant that says it.
///
/// It reaches the caller as `rustls::Error::InvalidCertificate(CertificateError::Other(..))`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum V1ChainError {
    /// A presented intermediate cannot act as a CA.
    IntermediateNotCa {
        /// The intermediate's subject, as text.
        subject: String,
        /// Why: a version-1 certificate, no `basicConstraints` `cA`, `keyUsage` without
        /// `keyCertSign`, or a `pathLenConstraint` exceeded.
        reason: &'static str,
    },
    /// An anchor or intermediate on the path has name constraints, which are not evaluated
    /// for version-1 leaves.
    NameConstrained {
        /// The constrained certificate's subject (for an anchor, its DER, hex-encoded).
        subject: String,
    },
}

impl fmt::Display for V1ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IntermediateNotCa { subject, reason } => write!(
                f,
                "intermediate {subject:?} of a version-1 certificate's chain cannot be a CA: {reason}"
            ),
            Self::NameConstrained { subject } => write!(
                f,
                "{subject:?} has name constraints, which are not checked for version-1 \
                 certificates; refusing the chain"
            ),
        }
    }
}

impl std::error::Error for V1ChainError {}

fn chain_error(err: V1ChainError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
}

/// Whether `der` is an X.509 certificate of version 1 or 2, which webpki cannot parse.
///
/// Reads only the start of the structure; anything unexpected answers `false`, leaving the
/// certificate to webpki and its errors.
pub fn is_pre_v3(der: &[u8]) -> bool {
    fn version(der: &[u8]) -> Option<u32> {
        let (_, cert) = Any::from_der(der).ok()?;
        let (_, tbs) = Any::from_der(cert.data).ok()?;
        let (_, first) = Any::from_der(tbs.data).ok()?;
        // `version [0] EXPLICIT Version DEFAULT v1`: absent means v1.
        if first.class() != Class::ContextSpecific || first.tag() != Tag(0) {
            return Some(0);
        }
        let (_, version) = Any::from_der(first.data).ok()?;
        if version.tag() != Tag::Integer {
            return None;
        }
        match version.data {
            [v] => Some(u32::from(*v)),
            _ => None,
        }
    }
    matches!(version(der), Some(0 | 1))
}

/// The three parts of a signed structure (certificate or CRL).
struct Signed<'a> {
    /// The DER of the to-be-signed part, header included: the signed message.
    tbs: &'a [u8],
    /// The contents of the `AlgorithmIdentifier` (webpki's and rustls' form).
    algorithm: &'a [u8],
    signature: &'a [u8],
}

impl<'a> Signed<'a> {
    fn parse(der: &'a [u8]) -> Option<Self> {
        let (rest, outer) = Any::from_der(der).ok()?;
        if !rest.is_empty() || outer.tag() != Tag::Sequence {
            return None;
        }
        let inner = outer.data;
        let (after_tbs, _) = Any::from_der(inner).ok()?;
        let tbs = inner.get(..inner.len().checked_sub(after_tbs.len())?)?;
        let (after_alg, algorithm) = Any::from_der(after_tbs).ok()?;
        let (end, signature) = Any::from_der(after_alg).ok()?;
        if !end.is_empty() || algorithm.tag() != Tag::Sequence {
            return None;
        }
        Some(Self {
            tbs,
            algorithm: algorithm.data,
            signature: bit_string(&signature)?,
        })
    }
}

/// The bytes of a BIT STRING with no unused bits.
fn bit_string<'a>(any: &Any<'a>) -> Option<&'a [u8]> {
    if any.tag() != Tag::BitString {
        return None;
    }
    match any.data {
        [0, bytes @ ..] => Some(bytes),
        _ => None,
    }
}

/// A public key as webpki matches it: `AlgorithmIdentifier` contents and key bytes.
#[derive(Clone, Copy)]
struct PublicKey<'a> {
    algorithm: &'a [u8],
    key: &'a [u8],
}

impl<'a> PublicKey<'a> {
    /// From the *contents* of a SubjectPublicKeyInfo (a trust anchor's form).
    fn from_spki_contents(contents: &'a [u8]) -> Option<Self> {
        let (rest, algorithm) = Any::from_der(contents).ok()?;
        let (end, key) = Any::from_der(rest).ok()?;
        if !end.is_empty() || algorithm.tag() != Tag::Sequence {
            return None;
        }
        Some(Self {
            algorithm: algorithm.data,
            key: bit_string(&key)?,
        })
    }

    /// From a whole SubjectPublicKeyInfo (a certificate's form).
    fn from_spki(spki: &'a [u8]) -> Option<Self> {
        let (end, outer) = Any::from_der(spki).ok()?;
        if !end.is_empty() || outer.tag() != Tag::Sequence {
            return None;
        }
        Self::from_spki_contents(outer.data)
    }
}

enum SignatureFailure {
    UnknownAlgorithm,
    AlgorithmNotForKey,
    Invalid,
}

fn verify_signed(
    algorithms: &WebPkiSupportedAlgorithms,
    key: PublicKey<'_>,
    signed: &Signed<'_>,
) -> Result<(), SignatureFailure> {
    let mut known = false;
    for alg in algorithms.all {
        if alg.signature_alg_id().as_ref() != signed.algorithm {
            continue;
        }
        known = true;
        if alg.public_key_alg_id().as_ref() != key.algorithm {
            continue;
        }
        return alg
            .verify_signature(key.key, signed.tbs, signed.signature)
            .map_err(|_| SignatureFailure::Invalid);
    }
    Err(if known {
        SignatureFailure::AlgorithmNotForKey
    } else {
        SignatureFailure::UnknownAlgorithm
    })
}

fn certificate_signature_error(
    failure: SignatureFailure,
    algorithms: &WebPkiSupportedAlgorithms,
    signed: &Signed<'_>,
    key: PublicKey<'_>,
) -> rustls::Error {
    rustls::Error::InvalidCertificate(match failure {
        SignatureFailure::Invalid => CertificateError::BadSignature,
        SignatureFailure::UnknownAlgorithm => {
            CertificateError::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: signed.algorithm.to_vec(),
                supported_algorithms: algorithms
                    .all
                    .iter()
                    .map(|a| a.signature_alg_id())
                    .collect(),
            }
        }
        SignatureFailure::AlgorithmNotForKey => {
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: signed.algorithm.to_vec(),
                public_key_algorithm_id: key.algorithm.to_vec(),
            }
        }
    })
}

/// A certificate parsed twice over: x509-parser for its fields, [`Signed`] for its bytes.
struct Parsed<'a> {
    cert: X509Certificate<'a>,
    signed: Signed<'a>,
    key: PublicKey<'a>,
}

impl<'a> Parsed<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, rustls::Error> {
        let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
        let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| bad())?;
        if !rest.is_empty() {
            return Err(bad());
        }
        let signed = Signed::parse(der).ok_or_else(bad)?;
        let key = PublicKey::from_spki(cert.tbs_certificate.subject_pki.raw).ok_or_else(bad)?;
        Ok(Self { cert, signed, key })
    }

    fn subject_text(&self) -> String {
        self.cert.subject().to_string()
    }
}

fn unix(time: ASN1Time) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(time.timestamp()).unwrap_or(0),
    ))
}

fn check_validity(cert: &X509Certificate<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let validity = cert.validity();
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now_secs < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: unix(validity.not_before),
            },
        ));
    }
    if now_secs > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: unix(validity.not_after),
            },
        ));
    }
    Ok(())
}

/// Which extended key usage the chain must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A server certificate (`id-kp-serverAuth`).
    ServerAuth,
    /// A client certificate (`id-kp-clientAuth`).
    ClientAuth,
}

/// Checks a presented intermediate as a CA that has `below` intermediates under it.
fn check_intermediate(
    int: &Parsed<'_>,
    below: usize,
    purpose: Purpose,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let not_ca = |reason| {
        chain_error(V1ChainError::IntermediateNotCa {
            subject: int.subject_text(),
            reason,
        })
    };
    let cert = &int.cert;
    if cert.version().0 < 2 {
        return Err(not_ca(
            "a version-1 or version-2 certificate can be a CA only as a configured trust anchor",
        ));
    }
    check_validity(cert, now)?;
    let bad = |_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    match cert.basic_constraints().map_err(bad)? {
        Some(bc) if bc.value.ca => {
            if let Some(limit) = bc.value.path_len_constraint
                && usize::try_from(limit).unwrap_or(usize::MAX) < below
            {
                return Err(not_ca("its basicConstraints pathLenConstraint is exceeded"));
            }
        }
        _ => return Err(not_ca("it lacks basicConstraints with cA set")),
    }
    if let Some(ku) = cert.key_usage().map_err(bad)?
        && !ku.value.key_cert_sign()
    {
        return Err(not_ca("its keyUsage lacks keyCertSign"));
    }
    if let Some(eku) = cert.extended_key_usage().map_err(bad)? {
        let allowed = eku.value.any
            || match purpose {
                Purpose::ServerAuth => eku.value.server_auth,
                Purpose::ClientAuth => eku.value.client_auth,
            };
        if !allowed {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose,
            ));
        }
    }
    if cert.name_constraints().map_err(bad)?.is_some() {
        return Err(chain_error(V1ChainError::NameConstrained {
            subject: int.subject_text(),
        }));
    }
    let processed = [
        &OID_X509_EXT_BASIC_CONSTRAINTS,
        &OID_X509_EXT_KEY_USAGE,
        &OID_X509_EXT_EXTENDED_KEY_USAGE,
        &OID_X509_EXT_SUBJECT_ALT_NAME,
        &OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
        &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
        &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
    ];
    if cert
        .extensions()
        .iter()
        .any(|ext| ext.critical && !processed.contains(&&ext.oid))
    {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::UnhandledCriticalExtension,
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The issuer that signed the leaf, for the revocation check.
struct LeafIssuer<'a> {
    key: PublicKey<'a>,
    /// `Some(false)` when the issuer is a certificate whose `keyUsage` lacks `cRLSign`.
    crl_sign: Option<bool>,
}

/// Verifies chains ending in a version-1 or version-2 certificate (see the
/// [module docs](self)).
#[derive(Clone)]
pub(crate) struct V1Verifier {
    roots: Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
    purpose: Purpose,
}

impl fmt::Debug for V1Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1Verifier")
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl V1Verifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        crls: Vec<CertificateRevocationListDer<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
        purpose: Purpose,
    ) -> Self {
        Self {
            roots,
            crls,
            algorithms,
            purpose,
        }
    }

    /// Verifies `end_entity` (a version-1 or -2 certificate) against the roots and CRLs.
    pub(crate) fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let leaf = Parsed::parse(end_entity.as_ref())?;
        check_validity(&leaf.cert, now)?;
        // Intermediates that do not parse cannot be on the path; webpki skips them too.
        let candidates: Vec<Parsed<'_>> = intermediates
            .iter()
            .filter_map(|der| Parsed::parse(der.as_ref()).ok())
            .collect();
        let mut used = Vec::new();
        let issuer = self.find_path(&leaf, &candidates, &mut used, now)?;
        self.check_revocation(&leaf, &issuer)
    }

    /// Finds a path from `cert` to a trust anchor; returns `cert`'s issuer.
    fn find_path<'c>(
        &'c self,
        cert: &Parsed<'_>,
        candidates: &'c [Parsed<'c>],
        used: &mut Vec<usize>,
        now: UnixTime,
    ) -> Result<LeafIssuer<'c>, rustls::Error> {
        let issuer_name = cert.cert.issuer().as_raw();
        let issuer_contents = Any::from_der(issuer_name)
            .map(|(_, any)| any.data)
            .unwrap_or(issuer_name);
        let mut best: Option<rustls::Error> = None;
        let mut note = |err: rustls::Error| {
            if best.is_none() {
                best = Some(err);
            }
        };
        for anchor in &self.roots.roots {
            if anchor.subject.as_ref() != issuer_contents {
                continue;
            }
            match self.signed_by_anchor(cert, anchor) {
                Ok(key) => {
                    return Ok(LeafIssuer {
                        key,
                        crl_sign: None,
                    });
                }
                Err(e) => note(e),
            }
        }
        if used.len() < MAX_INTERMEDIATES {
            for (index, int) in candidates.iter().enumerate() {
                if used.contains(&index) || int.cert.subject().as_raw() != issuer_name {
                    continue;
                }
                let step = check_intermediate(int, used.len(), self.purpose, now)
                    .and_then(|()| {
                        verify_signed(&self.algorithms, int.key, &cert.signed).map_err(|f| {
                            certificate_signature_error(f, &self.algorithms, &cert.signed, int.key)
                        })
                    })
                    .and_then(|()| {
                        used.push(index);
                        let found = self.find_path(int, candidates, used, now);
                        used.pop();
                        found
                    });
                match step {
                    Ok(_) => {
                        let crl_sign = int
                            .cert
                            .key_usage()
                            .ok()
                            .flatten()
                            .map(|ku| ku.value.crl_sign());
                        return Ok(LeafIssuer {
                            key: int.key,
                            crl_sign: Some(crl_sign.unwrap_or(true)),
                        });
                    }
                    Err(e) => note(e),
                }
            }
        }
        Err(best.unwrap_or(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )))
    }

    fn signed_by_anchor<'c>(
        &self,
        cert: &Parsed<'_>,
        anchor: &'c TrustAnchor<'static>,
    ) -> Result<PublicKey<'c>, rustls::Error> {
        let key = PublicKey::from_spki_contents(anchor.subject_public_key_info.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        verify_signed(&self.algorithms, key, &cert.signed)
            .map_err(|f| certificate_signature_error(f, &self.algorithms, &cert.signed, key))?;
        if anchor.name_constraints.is_some() {
            return Err(chain_error(V1ChainError::NameConstrained {
                subject: hex(anchor.subject.as_ref()),
            }));
        }
        Ok(key)
    }

    fn check_revocation(
        &self,
        leaf: &Parsed<'_>,
        issuer: &LeafIssuer<'_>,
    ) -> Result<(), rustls::Error> {
        let crl_error = rustls::Error::InvalidCertRevocationList;
        for der in &self.crls {
            let parsed = x509_parser::parse_x509_crl(der.as_ref())
                .map_err(|_| crl_error(CertRevocationListError::ParseError))?;
            let crl: CertificateRevocationList<'_> = parsed.1;
            if crl.issuer().as_raw() != leaf.cert.issuer().as_raw() {
                continue;
            }
            // Not authoritative for this leaf: a CRL scoped to distribution points (the leaf
            // names none), to CA or attribute certificates, to some reasons, or indirect.
            let partial = crl.extensions().iter().any(|ext| {
                matches!(
                    ext.parsed_extension(),
                    ParsedExtension::IssuingDistributionPoint(idp)
                        if idp.distribution_point.is_some()
                            || idp.only_contains_ca_certs
                            || idp.only_contains_attribute_certs
                            || idp.only_some_reasons.is_some()
                            || idp.indirect_crl
                )
            });
            if partial {
                continue;
            }
            if issuer.crl_sign == Some(false) {
                return Err(crl_error(CertRevocationListError::IssuerInvalidForCrl));
            }
            let signed = Signed::parse(der.as_ref())
                .ok_or(crl_error(CertRevocationListError::ParseError))?;
            verify_signed(&self.algorithms, issuer.key, &signed).map_err(|f| {
                crl_error(match f {
                    SignatureFailure::Invalid => CertRevocationListError::BadSignature,
                    SignatureFailure::UnknownAlgorithm => {
                        CertRevocationListError::UnsupportedSignatureAlgorithmContext {
                            signature_algorithm_id: signed.algorithm.to_vec(),
                            supported_algorithms: self
                                .algorithms
                                .all
                                .iter()
                                .map(|a| a.signature_alg_id())
                                .collect(),
                        }
                    }
                    SignatureFailure::AlgorithmNotForKey => {
                        CertRevocationListError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                            signature_algorithm_id: signed.algorithm.to_vec(),
                            public_key_algorithm_id: issuer.key.algorithm.to_vec(),
                        }
                    }
                })
            })?;
            let serial = leaf.cert.raw_serial();
            if crl
                .iter_revoked_certificates()
                .any(|revoked| revoked.raw_serial() == serial)
            {
                return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
            }
        }
        Ok(())
    }
}

/// The whole DER SubjectPublicKeyInfo of a certificate of any version, for `verifyCertificateSpki`
/// and for matching a private key to its certificate.
pub(crate) fn subject_public_key_info(der: &[u8]) -> Option<&[u8]> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    rest.is_empty()
        .then_some(cert.tbs_certificate.subject_pki.raw)
}

/// RFC 8446 4.2.3, as rustls applies it: no MD5, SHA-1 or SHA-224, no RSA PKCS#1 and no DSA
/// in TLS 1.3 (a deny list, so that newer schemes pass).
fn allowed_in_tls13(scheme: rustls::SignatureScheme) -> bool {
    let [hash, sign] = u16::from(scheme).to_be_bytes();
    !matches!(hash, 0..=3) && !matches!(sign, 1 | 2)
}

/// Verifies a handshake signature (`CertificateVerify`, `ServerKeyExchange`) made with the key
/// of a version-1 or version-2 certificate, as rustls' `verify_tls12_signature` and
/// `verify_tls13_signature` do for version 3.
pub(crate) fn verify_handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let unadvertised =
        || rustls::Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme);
    if tls13 && !allowed_in_tls13(dss.scheme) {
        return Err(unadvertised());
    }
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or_else(unadvertised)?;
    let candidates = if tls13 {
        candidates.get(..1).unwrap_or_default()
    } else {
        candidates
    };
    let parsed = Parsed::parse(cert.as_ref())?;
    let key = parsed.key;
    let mut mismatch = None;
    for alg in candidates {
        if alg.public_key_alg_id().as_ref() != key.algorithm {
            mismatch = Some(
                CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                    signature_algorithm_id: alg.signature_alg_id().as_ref().to_vec(),
                    public_key_algorithm_id: key.algorithm.to_vec(),
                },
            );
            continue;
        }
        return alg
            .verify_signature(key.key, message, dss.signature())
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature));
    }
    Err(rustls::Error::InvalidCertificate(
        mismatch.unwrap_or(CertificateError::BadSignature),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn fixture(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn verifier() -> V1Verifier {
        let mut roots = RootCertStore::empty();
        roots
            .add(fixture(include_str!("../tests/data/x509v1/ca.pem")))
            .unwrap();
        let crl = CertificateRevocationListDer::from_pem_slice(
            include_bytes!("../tests/data/x509v1/ca.crl").as_slice(),
        )
        .unwrap();
        V1Verifier::new(
            Arc::new(roots),
            vec![crl],
            rustls::crypto::ring::default_provider().signature_verification_algorithms,
            Purpose::ClientAuth,
        )
    }

    /// Every truncation and every single-byte change of a good chain is handled without a
    /// panic, and none of the truncations verifies.
    #[test]
    fn damaged_certificates_are_errors() {
        let v = verifier();
        let now = UnixTime::now();
        let leaf = fixture(include_str!("../tests/data/x509v1/client-int.pem"));
        let int = fixture(include_str!("../tests/data/x509v1/int.pem"));
        v.verify(&leaf, std::slice::from_ref(&int), now).unwrap();
        for len in 0..leaf.len() {
            let cut = CertificateDer::from(&leaf[..len]);
            assert!(v.verify(&cut, std::slice::from_ref(&int), now).is_err());
            let _ = is_pre_v3(&cut);
            let _ = subject_public_key_info(&cut);
        }
        for i in 0..int.len() {
            let mut bytes = int.to_vec();
            bytes[i] ^= 0x55;
            let _ = v.verify(&leaf, &[CertificateDer::from(bytes)], now);
        }
    }
}
