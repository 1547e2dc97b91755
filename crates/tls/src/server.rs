//! Gateway side: rustls [`ServerConfig`]s from `servers[].tls`, one resolver per port.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::resolver::{CertSource, MeshIdentity, SniEntry, SniResolver};
use crate::store::{CredentialStore, resolve_client_ca};
use crate::verifier::{IstioClientVerifier, PeerChecks, StoreClientVerifier};
use crate::x509v1::{Purpose, V1Verifier};
use crate::{Error, ServerProtocol, ServerTlsMode, ServerTlsSettings, pem, policy};

/// What the embedder supplies besides the settings: the crypto provider, the credential
/// store for `credentialName`, the mesh identity for `ISTIO_MUTUAL`, and system roots.
#[derive(Clone)]
pub struct TlsContext {
    /// The crypto provider, passed to rustls explicitly.
    pub provider: Arc<CryptoProvider>,
    /// Where `credentialName` is looked up.
    pub credentials: Option<Arc<dyn CredentialStore>>,
    /// The mesh identity for `ISTIO_MUTUAL`.
    pub mesh_identity: Option<Arc<dyn MeshIdentity>>,
    /// Roots for upstream TLS without `caCertificates`. `None`: loaded with
    /// [`pem::system_roots`] when first needed.
    pub system_roots: Option<Arc<RootCertStore>>,
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsContext")
            .field("credentials", &self.credentials)
            .field("mesh_identity", &self.mesh_identity)
            .field("system_roots", &self.system_roots.as_ref().map(|r| r.len()))
            .finish_non_exhaustive()
    }
}

impl Default for TlsContext {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsContext {
    /// A context with the *ring* provider and nothing else.
    pub fn new() -> Self {
        Self::with_provider(Arc::new(rustls::crypto::ring::default_provider()))
    }

    /// A context with the given provider and nothing else.
    pub fn with_provider(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            credentials: None,
            mesh_identity: None,
            system_roots: None,
        }
    }

    /// Sets the credential store.
    #[must_use]
    pub fn credentials(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.credentials = Some(store);
        self
    }

    /// Sets the mesh identity.
    #[must_use]
    pub fn mesh_identity(mut self, identity: Arc<dyn MeshIdentity>) -> Self {
        self.mesh_identity = Some(identity);
        self
    }

    /// Sets the roots used where Istio uses the system roots.
    #[must_use]
    pub fn system_roots(mut self, roots: Arc<RootCertStore>) -> Self {
        self.system_roots = Some(roots);
        self
    }

    fn store(&self, name: &str) -> Result<&Arc<dyn CredentialStore>, Error> {
        self.credentials
            .as_ref()
            .ok_or_else(|| Error::NoCredentialStore {
                name: name.to_owned(),
            })
    }
}

/// One Gateway server, as far as TLS is concerned.
#[derive(Debug, Clone, Default)]
pub struct ServerSpec {
    /// `hosts` (SNI names; `ns/` prefixes are ignored, `*` matches any or no SNI).
    pub hosts: Vec<String>,
    /// `port.protocol`, which decides ALPN.
    pub protocol: ServerProtocol,
    /// `tls`.
    pub tls: ServerTlsSettings,
}

/// What a server does with a TLS connection.
#[derive(Debug, Clone)]
pub enum ServerTls {
    /// Terminate TLS with this configuration.
    Terminate(Arc<ServerConfig>),
    /// Do not terminate: forward the bytes (`PASSTHROUGH`, or `AUTO_PASSTHROUGH` when `auto`).
    /// Routing by SNI is the caller's job ([`peek_client_hello`](crate::peek_client_hello)
    /// gives the SNI).
    Passthrough {
        /// `AUTO_PASSTHROUGH`: the SNI names the mesh destination.
        auto: bool,
    },
}

impl ServerTls {
    /// The configuration, for a terminating server.
    pub fn config(&self) -> Option<&Arc<ServerConfig>> {
        match self {
            Self::Terminate(c) => Some(c),
            Self::Passthrough { .. } => None,
        }
    }

    /// Whether the server forwards TLS untouched.
    pub fn is_passthrough(&self) -> bool {
        matches!(self, Self::Passthrough { .. })
    }
}

/// The TLS side of one gateway port: every server's [`ServerTls`], sharing one [`SniResolver`].
///
/// Accept with rustls' [`Acceptor`](rustls::server::Acceptor): read the ClientHello, call
/// [`select`](Self::select) with its SNI, then terminate with the chosen configuration or
/// pass the bytes through. (For passthrough, keep the bytes you read and forward them; or
/// look at them with [`peek_client_hello`](crate::peek_client_hello) before choosing.)
///
/// ```
/// use std::sync::Arc;
/// use portcullis_tls::*;
/// use portcullis_tls::rustls::server::Acceptor;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let key = rcgen::KeyPair::generate()?;
/// # let cert = rcgen::CertificateParams::new(vec!["*.example.com".into()])?.self_signed(&key)?;
/// let store = InMemoryCredentialStore::new(Arc::new(rustls::crypto::ring::default_provider()));
/// let mut secret = SecretData::new();
/// secret.insert("tls.crt".into(), cert.pem().into_bytes());
/// secret.insert("tls.key".into(), key.serialize_pem().into_bytes());
/// store.insert_secret("wildcard", &secret)?;
/// let ctx = TlsContext::new().credentials(Arc::new(store));
/// let port = PortTls::build(
///     &[
///         ServerSpec {
///             hosts: vec!["*.example.com".into()],
///             tls: ServerTlsSettings {
///                 mode: ServerTlsMode::Simple,
///                 credential_name: Some("wildcard".into()),
///                 ..Default::default()
///             },
///             ..Default::default()
///         },
///         ServerSpec {
///             hosts: vec!["db.internal.net".into()],
///             protocol: ServerProtocol::Tls,
///             tls: ServerTlsSettings::default(), // PASSTHROUGH
///         },
///     ],
///     &ctx,
/// )?;
///
/// // The first bytes of a connection, here from an in-memory client.
/// # let mut roots = rustls::RootCertStore::empty();
/// # roots.add(cert.der().clone())?;
/// # let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
/// #     .with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth();
/// # let mut client = rustls::ClientConnection::new(Arc::new(client_config), "shop.example.com".try_into()?)?;
/// # let mut first_bytes = Vec::new();
/// # client.write_tls(&mut first_bytes)?;
/// let mut acceptor = Acceptor::default();
/// acceptor.read_tls(&mut first_bytes.as_slice())?;
/// let accepted = acceptor.accept().map_err(|(e, _alert)| e)?.ok_or("need more bytes")?;
/// match port.select(accepted.client_hello().server_name()) {
///     Some(ServerTls::Terminate(config)) => {
///         let conn = accepted.into_connection(Arc::clone(config)).map_err(|(e, _alert)| e)?;
///         assert_eq!(conn.server_name(), Some("shop.example.com"));
///     }
///     Some(ServerTls::Passthrough { .. }) => { /* forward `first_bytes` and the rest */ }
///     None => { /* no server for this SNI: close */ }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PortTls {
    resolver: Arc<SniResolver>,
    servers: Vec<ServerTls>,
}

impl PortTls {
    /// Builds every server of a port. An error names the server (position and hosts).
    pub fn build(servers: &[ServerSpec], ctx: &TlsContext) -> Result<Self, Error> {
        let resolver = Arc::new(SniResolver::new(Vec::new()));
        let mut entries = Vec::with_capacity(servers.len());
        let mut built = Vec::with_capacity(servers.len());
        for (index, spec) in servers.iter().enumerate() {
            let wrap = |e: Error| Error::InServer {
                index,
                hosts: spec.hosts.clone(),
                source: Box::new(e),
            };
            let source = cert_source(&spec.tls, ctx).map_err(wrap)?;
            built.push(build_one(spec, ctx, &resolver).map_err(wrap)?);
            entries.push(SniEntry {
                hosts: spec.hosts.clone(),
                source,
            });
        }
        resolver.update(entries);
        Ok(Self {
            resolver,
            servers: built,
        })
    }

    /// The server a ClientHello with this SNI goes to (exact host, then the longest
    /// wildcard, then a `*` server; without SNI only a `*` server).
    pub fn select(&self, sni: Option<&str>) -> Option<&ServerTls> {
        self.servers.get(self.resolver.server_for(sni)?)
    }

    /// The servers, in the order given.
    pub fn servers(&self) -> &[ServerTls] {
        &self.servers
    }

    /// The shared resolver.
    pub fn resolver(&self) -> &Arc<SniResolver> {
        &self.resolver
    }
}

/// Builds one server on its own (its resolver serves only its hosts).
pub fn server_tls(spec: &ServerSpec, ctx: &TlsContext) -> Result<ServerTls, Error> {
    let mut port = PortTls::build(std::slice::from_ref(spec), ctx)?;
    port.servers.pop().ok_or(Error::NothingToServe {
        what: "no server was built",
    })
}

fn mode_name(mode: ServerTlsMode) -> &'static str {
    mode.as_istio_str()
}

/// Where the server's certificates come from, applying Istio's "one source" rule.
fn cert_source(tls: &ServerTlsSettings, ctx: &TlsContext) -> Result<CertSource, Error> {
    let mode = mode_name(tls.mode);
    match tls.mode {
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => return Ok(CertSource::None),
        ServerTlsMode::IstioMutual => {
            if tls.server_certificate.is_some()
                || tls.private_key.is_some()
                || tls.ca_certificates.is_some()
                || !tls.tls_certificates.is_empty()
                || tls.credential_name.is_some()
                || !tls.credential_names.is_empty()
            {
                return Err(Error::ConflictingSettings {
                    mode,
                    settings: "the mesh identity and serverCertificate/privateKey/\
                               caCertificates/tlsCertificates/credentialName",
                });
            }
            let identity = ctx.mesh_identity.as_ref().ok_or(Error::NoMeshIdentity)?;
            return Ok(CertSource::Mesh(Arc::clone(identity)));
        }
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {}
    }
    let pair = tls.server_certificate.is_some() && tls.private_key.is_some();
    let names: Vec<String> = tls
        .credential_name
        .iter()
        .chain(&tls.credential_names)
        .cloned()
        .collect();
    let sources = usize::from(pair)
        + usize::from(tls.credential_name.is_some())
        + usize::from(!tls.credential_names.is_empty())
        + usize::from(!tls.tls_certificates.is_empty());
    if sources > 1 {
        return Err(Error::ConflictingSettings {
            mode,
            settings: "credentialName, credentialNames, serverCertificate/privateKey and \
                       tlsCertificates (only one certificate source)",
        });
    }
    if !names.is_empty() {
        let store = ctx.store(names.first().map_or("", String::as_str))?;
        for name in &names {
            let cred = store.get(name).ok_or_else(|| Error::CredentialNotFound {
                setting: "credentialName",
                name: name.clone(),
            })?;
            if cred.certified_key().is_none() {
                return Err(Error::IncompleteCredential {
                    name: name.clone(),
                    expected: "a certificate and private key (tls.crt and tls.key, or cert and key)",
                });
            }
        }
        return Ok(CertSource::Store {
            store: Arc::clone(store),
            names,
        });
    }
    if !tls.tls_certificates.is_empty() {
        let mut keys = Vec::with_capacity(tls.tls_certificates.len());
        for entry in &tls.tls_certificates {
            let cert = entry
                .server_certificate
                .as_deref()
                .ok_or(Error::MissingSetting {
                    mode,
                    setting: "tlsCertificates[].serverCertificate",
                })?;
            let key = entry.private_key.as_deref().ok_or(Error::MissingSetting {
                mode,
                setting: "tlsCertificates[].privateKey",
            })?;
            keys.push(pem::load_certified_key(
                "tlsCertificates[].serverCertificate",
                cert,
                "tlsCertificates[].privateKey",
                key,
                &ctx.provider,
            )?);
        }
        return Ok(CertSource::Static(keys));
    }
    match (&tls.server_certificate, &tls.private_key) {
        (Some(cert), Some(key)) => Ok(CertSource::Static(vec![pem::load_certified_key(
            "serverCertificate",
            cert,
            "privateKey",
            key,
            &ctx.provider,
        )?])),
        (Some(_), None) => Err(Error::MissingSetting {
            mode,
            setting: "privateKey",
        }),
        (None, Some(_)) => Err(Error::MissingSetting {
            mode,
            setting: "serverCertificate",
        }),
        (None, None) => Err(Error::MissingSetting {
            mode,
            setting: "a certificate (credentialName, serverCertificate and privateKey, or \
                      tlsCertificates)",
        }),
    }
}

/// A verifier whose CA (and CRLs) come from the credential store at handshake time.
fn store_client_verifier(
    tls: &ServerTlsSettings,
    ctx: &TlsContext,
    provider: &Arc<CryptoProvider>,
    name: &str,
    optional: bool,
) -> Result<Arc<dyn ClientCertVerifier>, Error> {
    if tls.ca_crl.is_some() {
        return Err(Error::SettingNotAllowed {
            mode: mode_name(tls.mode),
            setting: "caCrl",
            reason: "with credentialName the CRL must be in the credential (ca.crl)",
        });
    }
    let store = ctx.store(name)?;
    // Fail at build time if the CA is missing or unusable; later changes are picked up
    // per handshake.
    let ca_name = tls.ca_cert_credential_name.clone();
    let credential = resolve_client_ca(store.as_ref(), name, ca_name.as_deref())?;
    StoreClientVerifier::verifiers_for(&credential, provider, optional)?;
    let checks = PeerChecks::new(
        &tls.subject_alt_names,
        &tls.verify_certificate_spki,
        &tls.verify_certificate_hash,
        provider,
    )?;
    Ok(Arc::new(StoreClientVerifier::new(
        Arc::clone(store),
        name.to_owned(),
        ca_name,
        optional,
        checks,
        Arc::clone(provider),
    )))
}

/// The trust anchors and CRLs for client certificates, from files.
fn client_trust(
    tls: &ServerTlsSettings,
) -> Result<(RootCertStore, Vec<CertificateRevocationListDer<'static>>), Error> {
    let Some(path) = &tls.ca_certificates else {
        return Err(Error::MissingSetting {
            mode: mode_name(tls.mode),
            setting: "caCertificates (a client CA bundle)",
        });
    };
    let cas: Vec<CertificateDer<'static>> = pem::load_certificates("caCertificates", path)?;
    let mut crls = Vec::new();
    if let Some(path) = &tls.ca_crl {
        crls.extend(pem::load_crls("caCrl", path)?);
    }
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca).map_err(|source| Error::Rustls {
            context: "caCertificates: a CA certificate cannot be used as a trust anchor",
            source,
        })?;
    }
    Ok((roots, crls))
}

fn client_verifier(
    tls: &ServerTlsSettings,
    ctx: &TlsContext,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, Error> {
    let mode = mode_name(tls.mode);
    let (roots, crls, optional) = match tls.mode {
        ServerTlsMode::Simple => {
            if tls.ca_crl.is_some() {
                return Err(Error::SettingNotAllowed {
                    mode,
                    setting: "caCrl",
                    reason: "SIMPLE TLS does not ask for client certificates",
                });
            }
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            let optional = tls.mode == ServerTlsMode::OptionalMutual;
            if tls.ca_certificates.is_none()
                && let Some(name) = tls
                    .credential_name
                    .as_ref()
                    .or_else(|| tls.credential_names.first())
            {
                return store_client_verifier(tls, ctx, provider, name, optional);
            }
            let (roots, crls) = client_trust(tls)?;
            (roots, crls, optional)
        }
        ServerTlsMode::IstioMutual => {
            let identity = ctx.mesh_identity.as_ref().ok_or(Error::NoMeshIdentity)?;
            let roots = RootCertStore::clone(&identity.trust_roots());
            (roots, Vec::new(), false)
        }
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => {
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
    };
    let roots = Arc::new(roots);
    let v1 = V1Verifier::new(
        Arc::clone(&roots),
        crls.clone(),
        provider.signature_verification_algorithms,
        Purpose::ClientAuth,
    );
    let mut builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider));
    if !crls.is_empty() {
        // Envoy checks the leaf against the CRLs and does not fail when a CRL for an
        // intermediate is missing.
        builder = builder
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    if optional {
        builder = builder.allow_unauthenticated();
    }
    let inner = builder.build().map_err(|source| Error::Verifier {
        context: "client certificate verifier (caCertificates / caCrl)",
        source,
    })?;
    let checks = PeerChecks::new(
        &tls.subject_alt_names,
        &tls.verify_certificate_spki,
        &tls.verify_certificate_hash,
        provider,
    )?;
    Ok(Arc::new(IstioClientVerifier::new(
        inner, v1, checks, provider,
    )))
}

fn build_one(
    spec: &ServerSpec,
    ctx: &TlsContext,
    resolver: &Arc<SniResolver>,
) -> Result<ServerTls, Error> {
    let tls = &spec.tls;
    match tls.mode {
        ServerTlsMode::Passthrough => return Ok(ServerTls::Passthrough { auto: false }),
        ServerTlsMode::AutoPassthrough => return Ok(ServerTls::Passthrough { auto: true }),
        _ => {}
    }
    let versions = policy::protocol_versions(tls.min_protocol_version, tls.max_protocol_version)?;
    let provider = policy::restrict_cipher_suites(&ctx.provider, &tls.cipher_suites, versions)?;
    let verifier = client_verifier(tls, ctx, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|source| Error::Rustls {
            context: "minProtocolVersion/maxProtocolVersion/cipherSuites",
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::clone(resolver) as Arc<dyn rustls::server::ResolvesServerCert>);
    config.alpn_protocols = spec.protocol.alpn();
    Ok(ServerTls::Terminate(Arc::new(config)))
}
