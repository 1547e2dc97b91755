//! Credentials by name (`credentialName`): the [`CredentialStore`] trait, an in-memory store and
//! a file-backed store, following Istio's secret conventions.
//!
//! A secret is a map from key to bytes, as in Kubernetes. Istio reads two layouts:
//!
//! | layout | certificate chain | private key | CA bundle | CRL |
//! |---|---|---|---|---|
//! | `kubernetes.io/tls` | `tls.crt` | `tls.key` | `ca.crt` | `ca.crl` |
//! | generic | `cert` | `key` | `cacert` | `crl` |
//!
//! The CA for client certificates comes from, in order: the secret named by
//! `caCertCredentialName`; the CA key of the credential itself; the secret `<name>-cacert`.
//!
//! Stores parse when a credential is inserted, so errors surface then and lookups during a
//! handshake are a map access under a read lock. Replacing a credential is how certificates
//! rotate: handshakes that start afterwards get the new one, handshakes already past
//! certificate selection keep the `Arc` they hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::{Error, pem};

/// The raw data of a secret: key (`tls.crt`, `cacert`, …) to bytes.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// The suffix of the secret that holds a credential's CA when the credential itself has none.
pub const CA_CERT_SUFFIX: &str = "-cacert";

/// A parsed credential: an optional certified key, optional CA certificates, optional CRLs.
#[derive(Debug, Clone)]
pub struct Credential {
    certified_key: Option<Arc<CertifiedKey>>,
    ca_certificates: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
}

impl Credential {
    /// Builds a credential from parts.
    pub fn new(
        certified_key: Option<Arc<CertifiedKey>>,
        ca_certificates: Vec<CertificateDer<'static>>,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Self {
        Self {
            certified_key,
            ca_certificates,
            crls,
        }
    }

    /// Parses a secret in either of Istio's layouts (see the [module docs](self)).
    ///
    /// A secret with neither a key pair nor a CA is an error; a certificate without its key
    /// (or the reverse) is an error that names the missing key.
    pub fn from_secret(
        name: &str,
        data: &SecretData,
        provider: &CryptoProvider,
    ) -> Result<Self, Error> {
        let origin = format!("secret {name}");
        let pair = if data.contains_key("cert") || data.contains_key("key") {
            Some(("cert", "key"))
        } else if data.contains_key("tls.crt") || data.contains_key("tls.key") {
            Some(("tls.crt", "tls.key"))
        } else {
            None
        };
        let certified_key = match pair {
            Some((cert_key, key_key)) => {
                let (Some(cert), Some(key)) = (data.get(cert_key), data.get(key_key)) else {
                    return Err(Error::IncompleteCredential {
                        name: name.to_owned(),
                        expected: "both the certificate and the private key (tls.crt and \
                                   tls.key, or cert and key)",
                    });
                };
                let setting = if cert_key == "cert" {
                    "cert"
                } else {
                    "tls.crt"
                };
                let key_setting = if key_key == "key" { "key" } else { "tls.key" };
                let chain = pem::certificates_from_pem(setting, &origin, cert)?;
                let key = pem::private_key_from_pem(key_setting, &origin, key)?;
                Some(pem::certified_key(chain, key, provider, &origin)?)
            }
            None => None,
        };
        let ca_certificates = match (data.get("cacert"), data.get("ca.crt")) {
            (Some(ca), _) => pem::certificates_from_pem("cacert", &origin, ca)?,
            (None, Some(ca)) => pem::certificates_from_pem("ca.crt", &origin, ca)?,
            (None, None) => Vec::new(),
        };
        let crls = match (data.get("crl"), data.get("ca.crl")) {
            (Some(crl), _) => pem::crls_from_pem("crl", &origin, crl)?,
            (None, Some(crl)) => pem::crls_from_pem("ca.crl", &origin, crl)?,
            (None, None) => Vec::new(),
        };
        if certified_key.is_none() && ca_certificates.is_empty() {
            return Err(Error::IncompleteCredential {
                name: name.to_owned(),
                expected: "tls.crt and tls.key, cert and key, or a CA (ca.crt or cacert)",
            });
        }
        Ok(Self {
            certified_key,
            ca_certificates,
            crls,
        })
    }

    /// The certificate chain and signing key, if the credential has one.
    pub fn certified_key(&self) -> Option<&Arc<CertifiedKey>> {
        self.certified_key.as_ref()
    }

    /// The CA certificates (`ca.crt` / `cacert`); empty when absent.
    pub fn ca_certificates(&self) -> &[CertificateDer<'static>] {
        &self.ca_certificates
    }

    /// The CRLs (`ca.crl` / `crl`); empty when absent.
    pub fn crls(&self) -> &[CertificateRevocationListDer<'static>] {
        &self.crls
    }
}

/// Where `credentialName` is looked up.
///
/// Implementations must be cheap to query: [`SniResolver`](crate::SniResolver) calls
/// [`get`](Self::get) once per handshake for store-backed servers, which is how a replaced
/// credential takes effect for the next handshake.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// The current credential named `name`.
    fn get(&self, name: &str) -> Option<Arc<Credential>>;
}

/// Finds the client CA (and CRLs) for a server using `credentialName`, following Istio: the
/// `caCertCredentialName` credential if given, else the credential's own CA, else
/// `<name>-cacert`.
pub fn resolve_client_ca(
    store: &dyn CredentialStore,
    name: &str,
    ca_cert_credential_name: Option<&str>,
) -> Result<Arc<Credential>, Error> {
    if let Some(ca_name) = ca_cert_credential_name {
        let cred = store
            .get(ca_name)
            .ok_or_else(|| Error::CredentialNotFound {
                setting: "caCertCredentialName",
                name: ca_name.to_owned(),
            })?;
        if cred.ca_certificates.is_empty() {
            return Err(Error::IncompleteCredential {
                name: ca_name.to_owned(),
                expected: "a CA certificate (ca.crt or cacert)",
            });
        }
        return Ok(cred);
    }
    if let Some(cred) = store.get(name)
        && !cred.ca_certificates.is_empty()
    {
        return Ok(cred);
    }
    let ca_name = format!("{name}{CA_CERT_SUFFIX}");
    match store.get(&ca_name) {
        Some(cred) if !cred.ca_certificates.is_empty() => Ok(cred),
        _ => Err(Error::IncompleteCredential {
            name: name.to_owned(),
            expected: "a CA certificate (ca.crt or cacert in the credential, a <name>-cacert \
                       credential, or caCertCredentialName)",
        }),
    }
}

/// A [`CredentialStore`] held in memory. Cloning shares the same store.
#[derive(Debug, Clone)]
pub struct InMemoryCredentialStore {
    provider: Arc<CryptoProvider>,
    credentials: Arc<RwLock<HashMap<String, Arc<Credential>>>>,
}

impl InMemoryCredentialStore {
    /// An empty store whose keys are loaded with `provider`.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            credentials: Arc::default(),
        }
    }

    /// Parses `data` ([`Credential::from_secret`]) and inserts or replaces `name`.
    /// On error the previous credential stays.
    pub fn insert_secret(&self, name: &str, data: &SecretData) -> Result<(), Error> {
        let cred = Credential::from_secret(name, data, &self.provider)?;
        self.insert(name, cred);
        Ok(())
    }

    /// Inserts or replaces an already parsed credential.
    pub fn insert(&self, name: &str, credential: Credential) {
        self.credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::new(credential));
    }

    /// Removes a credential; returns whether it was present.
    pub fn remove(&self, name: &str) -> bool {
        self.credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .is_some()
    }

    /// The names present, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}

impl CredentialStore for InMemoryCredentialStore {
    fn get(&self, name: &str) -> Option<Arc<Credential>> {
        self.credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

/// A [`CredentialStore`] backed by a directory, laid out like mounted Kubernetes secrets:
/// `<root>/<credential name>/<key>`, for instance `<root>/bookinfo/tls.crt`.
///
/// Nothing is read at handshake time. [`reload`](Self::reload) rereads the directory (call it
/// from a file watcher or a timer): credentials that parse are replaced, ones that fail keep
/// their previous version and are reported, and ones whose directory is gone are removed.
/// Files whose names start with `.` (Kubernetes' `..data` links) are skipped.
#[derive(Debug, Clone)]
pub struct FileCredentialStore {
    root: PathBuf,
    inner: InMemoryCredentialStore,
}

impl FileCredentialStore {
    /// A store over `root`, loaded once. Returns the store and the credentials that failed.
    pub fn open(root: impl Into<PathBuf>, provider: Arc<CryptoProvider>) -> (Self, Vec<Error>) {
        let store = Self {
            root: root.into(),
            inner: InMemoryCredentialStore::new(provider),
        };
        let errors = store.reload();
        (store, errors)
    }

    /// The directory this store reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Rereads every credential directory; returns the errors (the store keeps serving the
    /// previous version of a credential that fails).
    pub fn reload(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(source) => {
                errors.push(Error::Io {
                    setting: "credential directory",
                    path: self.root.clone(),
                    source,
                });
                return errors;
            }
        };
        let mut present = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            present.push(name.clone());
            if let Err(e) = self.reload_one(&name) {
                errors.push(e);
            }
        }
        for name in self.inner.names() {
            if !present.contains(&name) {
                self.inner.remove(&name);
            }
        }
        errors
    }

    /// Rereads one credential directory.
    pub fn reload_one(&self, name: &str) -> Result<(), Error> {
        let dir = self.root.join(name);
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            setting: "credentialName",
            path: dir.clone(),
            source,
        })?;
        let mut data = SecretData::new();
        for entry in entries.flatten() {
            let Some(key) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // `is_file` follows symlinks, as mounted secrets need.
            if key.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            data.insert(key, pem::read_file("credentialName", &entry.path())?);
        }
        self.inner.insert_secret(name, &data)
    }
}

impl CredentialStore for FileCredentialStore {
    fn get(&self, name: &str) -> Option<Arc<Credential>> {
        self.inner.get(name)
    }
}
