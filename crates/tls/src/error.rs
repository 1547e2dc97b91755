//! The error type of this crate.

use std::path::PathBuf;

use crate::settings::TlsVersion;

/// Everything that can go wrong while loading credentials or building a TLS configuration.
///
/// Messages name the setting (in Istio's camelCase spelling) or the file involved, and what was
/// expected. The enum is `#[non_exhaustive]`: match on the variants you care about and keep a
/// fallback arm.
///
/// Handshake-time failures (a client certificate that does not match `subjectAltNames`, for
/// instance) are not reported through this type: rustls reports them as
/// [`rustls::Error`]s, whose text comes from [`PeerCertificateMismatch`](crate::PeerCertificateMismatch).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file named by a setting could not be read.
    #[error("{setting}: cannot read {}: {source}", path.display())]
    Io {
        /// The setting that named the file, such as `serverCertificate`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// PEM data did not contain what the setting needs.
    #[error("{setting} ({origin}): expected {expected}, {found}")]
    Pem {
        /// The setting or secret key the data came from, such as `privateKey` or `tls.key`.
        setting: &'static str,
        /// Where the data came from: a file path or `secret <name>`.
        origin: String,
        /// What was expected, such as `at least one PEM CERTIFICATE block`.
        expected: &'static str,
        /// What was found instead.
        found: String,
    },

    /// A private key could not be used by the crypto provider, or does not match its certificate.
    #[error("{origin}: the private key cannot be used: {reason}")]
    InvalidKey {
        /// Where the key came from.
        origin: String,
        /// Why the provider refused it.
        reason: String,
    },

    /// A setting that the mode needs is missing.
    #[error("{mode} TLS requires {setting}")]
    MissingSetting {
        /// The TLS mode, such as `MUTUAL`.
        mode: &'static str,
        /// The missing setting, such as `caCertificates`.
        setting: &'static str,
    },

    /// A setting is set that the mode cannot use.
    #[error("{mode} TLS does not support {setting}: {reason}")]
    SettingNotAllowed {
        /// The TLS mode.
        mode: &'static str,
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: &'static str,
    },

    /// An error in one server of a port.
    #[error("server {index} (hosts {hosts:?}): {source}")]
    InServer {
        /// The server's position in the list given.
        index: usize,
        /// The server's hosts.
        hosts: Vec<String>,
        /// What went wrong.
        #[source]
        source: Box<Self>,
    },

    /// Two settings that exclude each other are both set.
    #[error("{mode} TLS: {settings} cannot be used together")]
    ConflictingSettings {
        /// The TLS mode.
        mode: &'static str,
        /// The settings involved.
        settings: &'static str,
    },

    /// A protocol version that rustls does not implement was asked for.
    #[error(
        "{setting}: {version} is not supported (rustls speaks TLSV1_2 and TLSV1_3 only); \
         refusing to raise it silently"
    )]
    UnsupportedProtocolVersion {
        /// `minProtocolVersion` or `maxProtocolVersion`.
        setting: &'static str,
        /// The version that was asked for.
        version: TlsVersion,
    },

    /// `minProtocolVersion` is above `maxProtocolVersion`.
    #[error("minProtocolVersion {min} is above maxProtocolVersion {max}")]
    InvalidVersionRange {
        /// The minimum that was asked for.
        min: TlsVersion,
        /// The maximum that was asked for.
        max: TlsVersion,
    },

    /// A `cipherSuites` entry is not a cipher suite name this crate knows.
    #[error(
        "cipherSuites: unknown cipher suite {name:?}; expected an OpenSSL-style name such as \
         ECDHE-ECDSA-AES128-GCM-SHA256 or a TLS 1.3 name such as TLS_AES_128_GCM_SHA256"
    )]
    UnknownCipherSuite {
        /// The entry as written.
        name: String,
    },

    /// A `cipherSuites` entry names a real cipher suite that rustls does not implement.
    #[error("cipherSuites: {name:?} is not supported by rustls ({reason})")]
    UnsupportedCipherSuite {
        /// The entry as written.
        name: String,
        /// Why it is not available.
        reason: &'static str,
    },

    /// After applying `cipherSuites` and the version bounds, no cipher suite is left.
    #[error("cipherSuites: no listed cipher suite can be used with {versions}")]
    NoUsableCipherSuites {
        /// The enabled protocol versions, for the message.
        versions: &'static str,
    },

    /// A credential named by `credentialName` (or `caCertCredentialName`) is not in the store.
    #[error("{setting}: credential {name:?} not found in the credential store")]
    CredentialNotFound {
        /// `credentialName` or `caCertCredentialName`.
        setting: &'static str,
        /// The credential name.
        name: String,
    },

    /// A credential exists but lacks what the mode needs.
    #[error("credential {name:?}: expected {expected}")]
    IncompleteCredential {
        /// The credential name.
        name: String,
        /// What was expected, such as `a CA certificate (ca.crt or cacert, or a <name>-cacert secret)`.
        expected: &'static str,
    },

    /// `credentialName` is used but no [`CredentialStore`](crate::CredentialStore) was supplied.
    #[error("credentialName {name:?} is set but no credential store was supplied")]
    NoCredentialStore {
        /// The credential name.
        name: String,
    },

    /// `ISTIO_MUTUAL` is used but no [`MeshIdentity`](crate::MeshIdentity) was supplied.
    #[error("ISTIO_MUTUAL TLS requires a mesh identity, but none was supplied")]
    NoMeshIdentity,

    /// A server name (`sni`, or a host) is not a valid DNS name or IP address.
    #[error("{setting}: {value:?} is not a valid DNS name or IP address")]
    InvalidServerName {
        /// The setting, such as `sni`.
        setting: &'static str,
        /// The value as written.
        value: String,
    },

    /// A `verifyCertificateSpki` or `verifyCertificateHash` entry is malformed.
    #[error("{setting}: {value:?} is not valid; expected {expected}")]
    InvalidPin {
        /// The setting.
        setting: &'static str,
        /// The entry as written.
        value: String,
        /// The expected format.
        expected: &'static str,
    },

    /// The crypto provider lacks something a setting needs.
    #[error("{setting}: the crypto provider has no {what}")]
    ProviderLacks {
        /// The setting that needs it.
        setting: &'static str,
        /// What is missing.
        what: &'static str,
    },

    /// No system trust roots could be found for a setting that relies on them.
    #[error(
        "no system trust roots found (looked at SSL_CERT_FILE and the usual bundle paths); \
         set caCertificates or supply roots explicitly"
    )]
    NoSystemRoots,

    /// A port has no server that terminates TLS and yet a configuration was asked for.
    #[error("{what}")]
    NothingToServe {
        /// What is missing.
        what: &'static str,
    },

    /// rustls refused the configuration.
    #[error("{context}: {source}")]
    Rustls {
        /// What was being built.
        context: &'static str,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },

    /// rustls refused to build a certificate verifier.
    #[error("{context}: {source}")]
    Verifier {
        /// What was being built.
        context: &'static str,
        /// The rustls error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}
