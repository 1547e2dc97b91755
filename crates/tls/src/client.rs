//! Upstream side: rustls [`ClientConfig`]s from DestinationRule `trafficPolicy.tls`.

use std::sync::Arc;

use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, RootCertStore, SignatureScheme};

use crate::resolver::MeshIdentity;
use crate::store::{CredentialStore, resolve_client_ca};
use crate::verifier::{IstioServerVerifier, NameCheck, PeerChecks};
use crate::x509v1::{Purpose, V1Verifier};
use crate::{ClientTlsMode, ClientTlsSettings, Error, TlsContext, pem, policy};

/// The ALPN Istio offers for `ISTIO_MUTUAL` when the caller gives none.
pub const ISTIO_MUTUAL_ALPN: &[&[u8]] = &[b"istio-peer-exchange", b"istio"];

/// Istio's default SNI for `ISTIO_MUTUAL`: `outbound_.<port>_.<subset>_.<host>`, with an empty
/// subset for none.
///
/// ```
/// assert_eq!(
///     portcullis_tls::istio_mutual_sni(8080, None, "reviews.default.svc.cluster.local"),
///     "outbound_.8080_._.reviews.default.svc.cluster.local",
/// );
/// ```
pub fn istio_mutual_sni(port: u16, subset: Option<&str>, host: &str) -> String {
    format!("outbound_.{port}_.{}_.{host}", subset.unwrap_or(""))
}

/// An upstream TLS configuration and the SNI to send.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    sni: Option<ServerName<'static>>,
}

impl ClientTls {
    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The server name for a connection to `host`: the `sni` setting if given, else `host`
    /// (Istio's auto SNI from the request's authority).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, Error> {
        if let Some(sni) = &self.sni {
            return Ok(sni.clone());
        }
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        ServerName::try_from(host.to_owned()).map_err(|_| Error::InvalidServerName {
            setting: "host",
            value: host.to_owned(),
        })
    }

    /// Starts a client connection to `host` (see [`server_name`](Self::server_name)).
    pub fn connect(&self, host: &str) -> Result<ClientConnection, Error> {
        ClientConnection::new(Arc::clone(&self.config), self.server_name(host)?).map_err(|source| {
            Error::Rustls {
                context: "starting the upstream TLS connection",
                source,
            }
        })
    }
}

#[derive(Debug)]
struct StoreClientCert {
    store: Arc<dyn CredentialStore>,
    name: String,
}

impl ResolvesClientCert for StoreClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.store.get(&self.name)?.certified_key().cloned()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct MeshClientCert(Arc<dyn MeshIdentity>);

impl ResolvesClientCert for MeshClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.certified_key()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Builds the upstream TLS configuration; `Ok(None)` for `DISABLE`.
///
/// `alpn` is what to offer (for instance `h2` when the upstream speaks HTTP/2); for
/// `ISTIO_MUTUAL` an empty list means [`ISTIO_MUTUAL_ALPN`].
///
/// Server verification follows Istio: the chain must lead to `caCertificates`, else the CA of
/// `credentialName` (its `ca.crt`/`cacert`, or `<name>-cacert`), else the mesh roots for
/// `ISTIO_MUTUAL`, else the system roots ([`TlsContext::system_roots`], or
/// [`pem::system_roots`](crate::pem::system_roots)). With `subjectAltNames` set a SAN must
/// equal one of them. For `SIMPLE` and `MUTUAL` with neither `subjectAltNames` nor `sni`, the
/// certificate must be valid for the host connected to (Istio's auto SAN validation); with
/// `sni` set and no `subjectAltNames` only the chain is checked, as in Istio; `ISTIO_MUTUAL`
/// never checks the host. `insecureSkipVerify` checks nothing about the certificate.
///
/// CA certificates come from the store when the configuration is built; client certificates
/// from `credentialName` or a [`MeshIdentity`] are looked up at every handshake (rotation).
pub fn client_tls(
    settings: &ClientTlsSettings,
    alpn: &[&[u8]],
    ctx: &TlsContext,
) -> Result<Option<ClientTls>, Error> {
    let mode = settings.mode.as_istio_str();
    let sni = settings
        .sni
        .as_ref()
        .map(|s| {
            ServerName::try_from(s.clone()).map_err(|_| Error::InvalidServerName {
                setting: "sni",
                value: s.clone(),
            })
        })
        .transpose()?;

    let mut ca_override: Option<RootCertStore> = None;
    let mut crls = Vec::new();
    let client_cert: Option<Arc<dyn ResolvesClientCert>> = match settings.mode {
        ClientTlsMode::Disable => return Ok(None),
        ClientTlsMode::Simple => {
            // With credentialName, SIMPLE takes only the CA from the credential.
            if let Some(name) = &settings.credential_name
                && settings.ca_certificates.is_none()
            {
                let store = ctx
                    .credentials
                    .as_ref()
                    .ok_or_else(|| Error::NoCredentialStore { name: name.clone() })?;
                let cred = resolve_client_ca(store.as_ref(), name, None)?;
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(cred.ca_certificates().iter().cloned());
                ca_override = Some(roots);
                crls.extend(cred.crls().iter().cloned());
            }
            None
        }
        ClientTlsMode::Mutual => {
            if let Some(name) = &settings.credential_name {
                let store = ctx
                    .credentials
                    .as_ref()
                    .ok_or_else(|| Error::NoCredentialStore { name: name.clone() })?;
                let cred = store.get(name).ok_or_else(|| Error::CredentialNotFound {
                    setting: "credentialName",
                    name: name.clone(),
                })?;
                if cred.certified_key().is_none() {
                    return Err(Error::IncompleteCredential {
                        name: name.clone(),
                        expected: "a client certificate and key (tls.crt and tls.key, or cert and key)",
                    });
                }
                // The CA, if the credential (or `<name>-cacert`) has one; else the system roots.
                if settings.ca_certificates.is_none()
                    && let Ok(ca) = resolve_client_ca(store.as_ref(), name, None)
                {
                    let mut roots = RootCertStore::empty();
                    roots.add_parsable_certificates(ca.ca_certificates().iter().cloned());
                    ca_override = Some(roots);
                    crls.extend(ca.crls().iter().cloned());
                }
                Some(Arc::new(StoreClientCert {
                    store: Arc::clone(store),
                    name: name.clone(),
                }))
            } else {
                let cert = settings
                    .client_certificate
                    .as_deref()
                    .ok_or(Error::MissingSetting {
                        mode,
                        setting: "clientCertificate (or credentialName)",
                    })?;
                let key = settings
                    .private_key
                    .as_deref()
                    .ok_or(Error::MissingSetting {
                        mode,
                        setting: "privateKey",
                    })?;
                let ck = pem::load_certified_key(
                    "clientCertificate",
                    cert,
                    "privateKey",
                    key,
                    &ctx.provider,
                )?;
                Some(Arc::new(rustls::sign::SingleCertAndKey::from(ck)))
            }
        }
        ClientTlsMode::IstioMutual => {
            let identity = ctx.mesh_identity.as_ref().ok_or(Error::NoMeshIdentity)?;
            if settings.ca_certificates.is_none() {
                ca_override = Some(RootCertStore::clone(&identity.trust_roots()));
            }
            Some(Arc::new(MeshClientCert(Arc::clone(identity))))
        }
    };

    let provider = Arc::clone(&ctx.provider);
    let inner = if settings.insecure_skip_verify {
        None
    } else {
        let roots = if let Some(path) = &settings.ca_certificates {
            let mut roots = RootCertStore::empty();
            for ca in pem::load_certificates("caCertificates", path)? {
                roots.add(ca).map_err(|source| Error::Rustls {
                    context: "caCertificates: a CA certificate cannot be used as a trust anchor",
                    source,
                })?;
            }
            Arc::new(roots)
        } else if let Some(roots) = ca_override {
            Arc::new(roots)
        } else if let Some(roots) = &ctx.system_roots {
            Arc::clone(roots)
        } else {
            Arc::new(pem::system_roots()?)
        };
        if let Some(path) = &settings.ca_crl {
            crls.extend(pem::load_crls("caCrl", path)?);
        }
        let v1 = V1Verifier::new(
            Arc::clone(&roots),
            crls.clone(),
            provider.signature_verification_algorithms,
            Purpose::ServerAuth,
        );
        let mut builder = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider));
        if !crls.is_empty() {
            builder = builder
                .with_crls(crls)
                .only_check_end_entity_revocation()
                .allow_unknown_revocation_status();
        }
        let webpki = builder.build().map_err(|source| Error::Verifier {
            context: "server certificate verifier (caCertificates / caCrl)",
            source,
        })?;
        Some((webpki, v1))
    };
    // Istio's auto SAN validation applies to SIMPLE and MUTUAL without `sni`; ISTIO_MUTUAL
    // checks the mesh chain and `subjectAltNames` (the service accounts) only.
    let name_check = if settings.subject_alt_names.is_empty()
        && settings.sni.is_none()
        && settings.mode != ClientTlsMode::IstioMutual
    {
        NameCheck::ServerName
    } else {
        NameCheck::ChainOnly
    };
    let checks = PeerChecks::new(&settings.subject_alt_names, &[], &[], &provider)?;
    let verifier = Arc::new(IstioServerVerifier::new(
        inner, name_check, checks, &provider,
    ));

    let versions = policy::protocol_versions(crate::TlsVersion::Auto, crate::TlsVersion::Auto)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|source| Error::Rustls {
            context: "client protocol versions",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if alpn.is_empty() && settings.mode == ClientTlsMode::IstioMutual {
        ISTIO_MUTUAL_ALPN.iter().map(|p| p.to_vec()).collect()
    } else {
        alpn.iter().map(|p| p.to_vec()).collect()
    };
    Ok(Some(ClientTls {
        config: Arc::new(config),
        sni,
    }))
}
