//! The plan's TLS settings as `portcullis-tls` takes them (feature `tls`): a Gateway server's
//! [`TlsTermination`] → [`ServerSpec`](portcullis_tls::ServerSpec), a cluster's [`TlsOrigination`] →
//! [`ClientTlsSettings`](portcullis_tls::ClientTlsSettings). The conversions are typed (no
//! names parsed back), and what `portcullis-tls` cannot represent is an [`InvalidTls`].
//!
//! ```
//! use portcullis_translate::tls::client_mode;
//! use portcullis_model::destination_rule::ClientTlsMode;
//!
//! assert_eq!(client_mode(ClientTlsMode::Simple)?, portcullis_tls::ClientTlsMode::Simple);
//! # Ok::<(), portcullis_translate::tls::InvalidTls>(())
//! ```

use std::fmt;
use std::path::PathBuf;

use portcullis_model::destination_rule::ClientTlsMode;
use portcullis_model::gateway::{ServerTlsMode, TlsProtocol};
use portcullis_tls as ptls;

use crate::{CaSource, TlsOrigination, TlsTermination};

/// A TLS setting `portcullis-tls` has no counterpart for (a mode or version added to Istio's
/// API after this crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidTls {
    setting: &'static str,
    value: &'static str,
}

impl InvalidTls {
    /// The setting (`mode`, `minProtocolVersion`, …).
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for InvalidTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsupported TLS {} {}", self.setting, self.value)
    }
}

impl std::error::Error for InvalidTls {}

/// A Gateway server's TLS mode in `portcullis-tls` terms.
///
/// # Errors
/// A mode `portcullis-tls` does not know.
pub fn server_mode(mode: ServerTlsMode) -> Result<ptls::ServerTlsMode, InvalidTls> {
    Ok(match mode {
        ServerTlsMode::Passthrough => ptls::ServerTlsMode::Passthrough,
        ServerTlsMode::Simple => ptls::ServerTlsMode::Simple,
        ServerTlsMode::Mutual => ptls::ServerTlsMode::Mutual,
        ServerTlsMode::AutoPassthrough => ptls::ServerTlsMode::AutoPassthrough,
        ServerTlsMode::IstioMutual => ptls::ServerTlsMode::IstioMutual,
        ServerTlsMode::OptionalMutual => ptls::ServerTlsMode::OptionalMutual,
        other => {
            return Err(InvalidTls {
                setting: "mode",
                value: other.as_str(),
            });
        }
    })
}

/// A DestinationRule's TLS mode in `portcullis-tls` terms.
///
/// # Errors
/// A mode `portcullis-tls` does not know.
pub fn client_mode(mode: ClientTlsMode) -> Result<ptls::ClientTlsMode, InvalidTls> {
    Ok(match mode {
        ClientTlsMode::Disable => ptls::ClientTlsMode::Disable,
        ClientTlsMode::Simple => ptls::ClientTlsMode::Simple,
        ClientTlsMode::Mutual => ptls::ClientTlsMode::Mutual,
        ClientTlsMode::IstioMutual => ptls::ClientTlsMode::IstioMutual,
        other => {
            return Err(InvalidTls {
                setting: "mode",
                value: other.as_str(),
            });
        }
    })
}

/// A protocol version bound (`None`: not set, `TLS_AUTO`).
///
/// # Errors
/// A version `portcullis-tls` does not know.
pub fn tls_version(
    version: Option<TlsProtocol>,
    setting: &'static str,
) -> Result<ptls::TlsVersion, InvalidTls> {
    Ok(match version {
        None | Some(TlsProtocol::TlsAuto) => ptls::TlsVersion::Auto,
        Some(TlsProtocol::TlsV1_0) => ptls::TlsVersion::V1_0,
        Some(TlsProtocol::TlsV1_1) => ptls::TlsVersion::V1_1,
        Some(TlsProtocol::TlsV1_2) => ptls::TlsVersion::V1_2,
        Some(TlsProtocol::TlsV1_3) => ptls::TlsVersion::V1_3,
        Some(other) => {
            return Err(InvalidTls {
                setting,
                value: other.as_str(),
            });
        }
    })
}

// === impl TlsTermination ===

impl TlsTermination {
    /// The server as `portcullis_tls::PortTls::build` takes it: its SNI hosts (the chain's
    /// `sni_hosts`, else `server_names`, else `*`), `protocol` (which decides ALPN) and
    /// settings.
    ///
    /// # Errors
    /// A mode or version `portcullis-tls` does not know.
    pub fn to_server_spec(
        &self,
        protocol: ptls::ServerProtocol,
        server_names: &[String],
    ) -> Result<ptls::ServerSpec, InvalidTls> {
        let s = &self.settings;
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        let settings = ptls::ServerTlsSettings {
            https_redirect: s.https_redirect,
            mode: server_mode(self.mode)?,
            server_certificate: path(&s.server_certificate),
            private_key: path(&s.private_key),
            ca_certificates: path(&s.ca_certificates),
            ca_crl: path(&s.ca_crl),
            tls_certificates: s
                .tls_certificates
                .iter()
                .map(|c| ptls::TlsCertificate {
                    server_certificate: path(&c.server_certificate),
                    private_key: path(&c.private_key),
                    ca_certificates: path(&c.ca_certificates),
                })
                .collect(),
            credential_name: (!s.credential_name.is_empty()).then(|| s.credential_name.clone()),
            credential_names: s.credential_names.clone(),
            ca_cert_credential_name: (!s.ca_cert_credential_name.is_empty())
                .then(|| s.ca_cert_credential_name.clone()),
            subject_alt_names: s.subject_alt_names.clone(),
            verify_certificate_spki: s.verify_certificate_spki.clone(),
            verify_certificate_hash: s.verify_certificate_hash.clone(),
            min_protocol_version: tls_version(s.min_protocol_version, "minProtocolVersion")?,
            max_protocol_version: tls_version(s.max_protocol_version, "maxProtocolVersion")?,
            cipher_suites: s.cipher_suites.clone(),
        };
        let hosts = if !self.sni_hosts.is_empty() {
            self.sni_hosts.clone()
        } else if !server_names.is_empty() {
            server_names.to_vec()
        } else {
            vec!["*".to_owned()]
        };
        Ok(ptls::ServerSpec {
            hosts,
            protocol,
            tls: settings,
        })
    }
}

// === impl TlsOrigination ===

impl TlsOrigination {
    /// The origination settings as `portcullis_tls::client_tls` takes them: the mode, SNI,
    /// SANs, the CA (a file, a credential, or none: no verification) and, for `MUTUAL`, the
    /// client certificate and key files or the credential holding them.
    ///
    /// # Errors
    /// A mode `portcullis-tls` does not know.
    pub fn to_client_settings(&self) -> Result<ptls::ClientTlsSettings, InvalidTls> {
        let mut settings = ptls::ClientTlsSettings {
            mode: client_mode(self.mode)?,
            sni: self.sni.clone(),
            subject_alt_names: self.subject_alt_names.clone(),
            ..Default::default()
        };
        match &self.ca {
            CaSource::File(f) => settings.ca_certificates = Some(PathBuf::from(f)),
            CaSource::Credential(name) => settings.credential_name = Some(name.clone()),
            CaSource::None => settings.insecure_skip_verify = true,
            CaSource::System | CaSource::IstioRoot => {}
        }
        // MUTUAL: certificate and key files, or a credential (translation sets the key only
        // for files).
        match (&self.client_certificate, &self.private_key) {
            (Some(cert), Some(key)) => {
                settings.client_certificate = Some(PathBuf::from(cert));
                settings.private_key = Some(PathBuf::from(key));
            }
            (Some(cert), None) if settings.credential_name.as_deref() != Some(cert.as_str()) => {
                settings.credential_name = Some(cert.clone());
            }
            _ => {}
        }
        Ok(settings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_and_version_converts() {
        for (model, tls) in [
            (ServerTlsMode::Passthrough, ptls::ServerTlsMode::Passthrough),
            (ServerTlsMode::Simple, ptls::ServerTlsMode::Simple),
            (ServerTlsMode::Mutual, ptls::ServerTlsMode::Mutual),
            (
                ServerTlsMode::AutoPassthrough,
                ptls::ServerTlsMode::AutoPassthrough,
            ),
            (ServerTlsMode::IstioMutual, ptls::ServerTlsMode::IstioMutual),
            (
                ServerTlsMode::OptionalMutual,
                ptls::ServerTlsMode::OptionalMutual,
            ),
        ] {
            assert_eq!(server_mode(model).unwrap(), tls);
            assert_eq!(model.as_str(), tls.as_istio_str());
        }
        for (model, tls) in [
            (ClientTlsMode::Disable, ptls::ClientTlsMode::Disable),
            (ClientTlsMode::Simple, ptls::ClientTlsMode::Simple),
            (ClientTlsMode::Mutual, ptls::ClientTlsMode::Mutual),
            (ClientTlsMode::IstioMutual, ptls::ClientTlsMode::IstioMutual),
        ] {
            assert_eq!(client_mode(model).unwrap(), tls);
            assert_eq!(model.as_str(), tls.as_istio_str());
        }
        assert_eq!(tls_version(None, "x").unwrap(), ptls::TlsVersion::Auto);
        assert_eq!(
            tls_version(Some(TlsProtocol::TlsV1_3), "x").unwrap(),
            ptls::TlsVersion::V1_3
        );
    }
}
