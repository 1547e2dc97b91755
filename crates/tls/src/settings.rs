//! Input types: this crate's own mirror of Istio's `ServerTLSSettings` and `ClientTLSSettings`.
//!
//! They are plain structs with public fields and `Default`, so an embedder fills them from
//! whatever configuration it has (an Istio model, its own YAML, code). Field names follow
//! Istio's, in Rust spelling; error messages use Istio's camelCase names.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A TLS protocol version bound (`minProtocolVersion` / `maxProtocolVersion`).
///
/// `Auto` means "the default": TLS 1.2 for the minimum, TLS 1.3 for the maximum, which is
/// what Istio's gateways use. TLS 1.0 and 1.1 exist so that a configuration asking for them can
/// be represented and then refused with a clear error: rustls does not implement them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TlsVersion {
    /// `TLS_AUTO`: the default bound.
    #[default]
    Auto,
    /// `TLSV1_0` (refused when a configuration is built).
    V1_0,
    /// `TLSV1_1` (refused when a configuration is built).
    V1_1,
    /// `TLSV1_2`.
    V1_2,
    /// `TLSV1_3`.
    V1_3,
}

impl TlsVersion {
    /// Istio's name for the version (`TLSV1_2`, `TLS_AUTO`, …).
    pub fn as_istio_str(self) -> &'static str {
        match self {
            Self::Auto => "TLS_AUTO",
            Self::V1_0 => "TLSV1_0",
            Self::V1_1 => "TLSV1_1",
            Self::V1_2 => "TLSV1_2",
            Self::V1_3 => "TLSV1_3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_istio_str())
    }
}

/// The error returned when parsing an Istio enum name fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}; expected one of {expected}")]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for TlsVersion {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "TLS_AUTO" => Self::Auto,
            "TLSV1_0" => Self::V1_0,
            "TLSV1_1" => Self::V1_1,
            "TLSV1_2" => Self::V1_2,
            "TLSV1_3" => Self::V1_3,
            _ => {
                return Err(ParseEnumError {
                    what: "TLS protocol version",
                    value: s.to_owned(),
                    expected: "TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2, TLSV1_3",
                });
            }
        })
    }
}

/// The TLS mode of a Gateway server (`servers[].tls.mode`).
///
/// The default is `Passthrough`, as in Istio (enum value 0): a server written as
/// `tls: {credentialName: x}` without a mode does not terminate TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ServerTlsMode {
    /// `PASSTHROUGH`: route on SNI, forward the bytes untouched.
    #[default]
    Passthrough,
    /// `SIMPLE`: terminate TLS with a server certificate.
    Simple,
    /// `MUTUAL`: terminate TLS and require a client certificate.
    Mutual,
    /// `AUTO_PASSTHROUGH`: passthrough to the mesh service named by the SNI.
    AutoPassthrough,
    /// `ISTIO_MUTUAL`: mutual TLS with the mesh identity (see [`MeshIdentity`](crate::MeshIdentity)).
    IstioMutual,
    /// `OPTIONAL_MUTUAL`: ask for a client certificate, verify it if presented.
    OptionalMutual,
}

impl ServerTlsMode {
    /// Istio's name for the mode.
    pub fn as_istio_str(self) -> &'static str {
        match self {
            Self::Passthrough => "PASSTHROUGH",
            Self::Simple => "SIMPLE",
            Self::Mutual => "MUTUAL",
            Self::AutoPassthrough => "AUTO_PASSTHROUGH",
            Self::IstioMutual => "ISTIO_MUTUAL",
            Self::OptionalMutual => "OPTIONAL_MUTUAL",
        }
    }

    /// Whether the gateway forwards the TLS bytes without terminating them.
    pub fn is_passthrough(self) -> bool {
        matches!(self, Self::Passthrough | Self::AutoPassthrough)
    }
}

impl fmt::Display for ServerTlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_istio_str())
    }
}

impl FromStr for ServerTlsMode {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "PASSTHROUGH" => Self::Passthrough,
            "SIMPLE" => Self::Simple,
            "MUTUAL" => Self::Mutual,
            "AUTO_PASSTHROUGH" => Self::AutoPassthrough,
            "ISTIO_MUTUAL" => Self::IstioMutual,
            "OPTIONAL_MUTUAL" => Self::OptionalMutual,
            _ => {
                return Err(ParseEnumError {
                    what: "server TLS mode",
                    value: s.to_owned(),
                    expected: "PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, \
                               OPTIONAL_MUTUAL",
                });
            }
        })
    }
}

/// The protocol of a Gateway server's port, as far as TLS cares: it decides the ALPN list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerProtocol {
    /// `HTTPS`: ALPN `h2`, `http/1.1`.
    #[default]
    Https,
    /// `HTTP` (TLS on an HTTP port happens only for redirects): ALPN `h2`, `http/1.1`.
    Http,
    /// `HTTP2`: ALPN `h2`, `http/1.1`.
    Http2,
    /// `GRPC`: ALPN `h2`, `http/1.1`.
    Grpc,
    /// `TLS`: no ALPN (the bytes inside are opaque).
    Tls,
    /// Anything else (`TCP`, `MONGO`, …): no ALPN.
    Other,
}

impl ServerProtocol {
    /// Parses an Istio port protocol name, case-insensitively, as Istio does.
    /// Unknown names become [`ServerProtocol::Other`].
    pub fn from_istio_name(name: &str) -> Self {
        match name.to_ascii_uppercase().as_str() {
            "HTTPS" => Self::Https,
            "HTTP" => Self::Http,
            "HTTP2" => Self::Http2,
            "GRPC" | "GRPC-WEB" => Self::Grpc,
            "TLS" => Self::Tls,
            _ => Self::Other,
        }
    }

    /// The ALPN protocols a server of this protocol offers, most preferred first.
    pub fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Self::Https | Self::Http | Self::Http2 | Self::Grpc => {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            }
            Self::Tls | Self::Other => Vec::new(),
        }
    }
}

/// One entry of `tlsCertificates`: a key pair given as files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsCertificate {
    /// `serverCertificate`: PEM certificate chain, leaf first.
    pub server_certificate: Option<PathBuf>,
    /// `privateKey`: PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// `caCertificates` of this entry. Istio does not use it for client verification (the
    /// top-level `caCertificates` does that); it is kept for completeness and ignored.
    pub ca_certificates: Option<PathBuf>,
}

/// A Gateway server's TLS settings (`servers[].tls`).
///
/// Build one with struct update syntax:
///
/// ```
/// use portcullis_tls::{ServerTlsMode, ServerTlsSettings};
/// let tls = ServerTlsSettings {
///     mode: ServerTlsMode::Simple,
///     credential_name: Some("bookinfo-cert".into()),
///     ..Default::default()
/// };
/// assert!(!tls.mode.is_passthrough());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTlsSettings {
    /// `httpsRedirect`. Not used here: redirects are the routing layer's job.
    pub https_redirect: bool,
    /// `mode`.
    pub mode: ServerTlsMode,
    /// `serverCertificate`: PEM certificate chain file.
    pub server_certificate: Option<PathBuf>,
    /// `privateKey`: PEM private key file.
    pub private_key: Option<PathBuf>,
    /// `caCertificates`: PEM file of CAs that client certificates must chain to.
    pub ca_certificates: Option<PathBuf>,
    /// `caCrl`: PEM file of certificate revocation lists for client certificates.
    pub ca_crl: Option<PathBuf>,
    /// `tlsCertificates`: several key pairs (for instance RSA and ECDSA); the one used is chosen
    /// by the signature schemes the client offers.
    pub tls_certificates: Vec<TlsCertificate>,
    /// `credentialName`: a credential in the [`CredentialStore`](crate::CredentialStore).
    pub credential_name: Option<String>,
    /// `credentialNames`: several credentials (for instance RSA and ECDSA).
    pub credential_names: Vec<String>,
    /// `caCertCredentialName`: a credential holding the client CA, instead of
    /// `<credentialName>-cacert`.
    pub ca_cert_credential_name: Option<String>,
    /// `subjectAltNames`: a client certificate must carry one of these SANs.
    pub subject_alt_names: Vec<String>,
    /// `verifyCertificateSpki`: base64 SHA-256 hashes of acceptable client SPKIs.
    pub verify_certificate_spki: Vec<String>,
    /// `verifyCertificateHash`: hex SHA-256 hashes of acceptable client certificates
    /// (colons allowed, case-insensitive).
    pub verify_certificate_hash: Vec<String>,
    /// `minProtocolVersion`.
    pub min_protocol_version: TlsVersion,
    /// `maxProtocolVersion`.
    pub max_protocol_version: TlsVersion,
    /// `cipherSuites`: OpenSSL-style names (`ECDHE-ECDSA-AES128-GCM-SHA256`) for TLS 1.2, and
    /// optionally TLS 1.3 names (`TLS_AES_128_GCM_SHA256`).
    pub cipher_suites: Vec<String>,
}

/// The TLS mode of a DestinationRule traffic policy (`trafficPolicy.tls.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientTlsMode {
    /// `DISABLE`: plaintext.
    #[default]
    Disable,
    /// `SIMPLE`: TLS origination.
    Simple,
    /// `MUTUAL`: TLS origination with a client certificate.
    Mutual,
    /// `ISTIO_MUTUAL`: mutual TLS with the mesh identity.
    IstioMutual,
}

impl ClientTlsMode {
    /// Istio's name for the mode.
    pub fn as_istio_str(self) -> &'static str {
        match self {
            Self::Disable => "DISABLE",
            Self::Simple => "SIMPLE",
            Self::Mutual => "MUTUAL",
            Self::IstioMutual => "ISTIO_MUTUAL",
        }
    }
}

impl fmt::Display for ClientTlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_istio_str())
    }
}

impl FromStr for ClientTlsMode {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "DISABLE" => Self::Disable,
            "SIMPLE" => Self::Simple,
            "MUTUAL" => Self::Mutual,
            "ISTIO_MUTUAL" => Self::IstioMutual,
            _ => {
                return Err(ParseEnumError {
                    what: "client TLS mode",
                    value: s.to_owned(),
                    expected: "DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL",
                });
            }
        })
    }
}

/// A DestinationRule's client TLS settings (`trafficPolicy.tls`, or a `portLevelSettings[].tls`,
/// which replaces the top-level one for its port: pick the right one before calling this crate).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTlsSettings {
    /// `mode`.
    pub mode: ClientTlsMode,
    /// `clientCertificate`: PEM certificate chain file (MUTUAL).
    pub client_certificate: Option<PathBuf>,
    /// `privateKey`: PEM private key file (MUTUAL).
    pub private_key: Option<PathBuf>,
    /// `caCertificates`: PEM file of CAs the server certificate must chain to. Unset: the
    /// system roots (SIMPLE/MUTUAL) or the mesh roots (ISTIO_MUTUAL).
    pub ca_certificates: Option<PathBuf>,
    /// `caCrl`: PEM file of CRLs for the server certificate.
    pub ca_crl: Option<PathBuf>,
    /// `credentialName`: client certificate, key and CA from the credential store.
    pub credential_name: Option<String>,
    /// `subjectAltNames`: the server certificate must carry one of these SANs.
    pub subject_alt_names: Vec<String>,
    /// `sni`: the server name sent. Unset: the host the connection is for.
    pub sni: Option<String>,
    /// `insecureSkipVerify`: do not verify the server certificate at all.
    pub insecure_skip_verify: bool,
}
