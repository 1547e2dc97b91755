//! PEM loading with errors that name the setting and the file.
//!
//! Parsing uses `rustls-pki-types`' PEM support. Every function takes the name of the setting
//! (`serverCertificate`, `tls.key`, …) and an origin (a path or `secret <name>`) only to
//! build the error message.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::{Error, x509v1};

/// Reads a whole file, naming `setting` in the error.
pub fn read_file(setting: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        setting,
        path: path.to_owned(),
        source,
    })
}

fn describe(err: &pem::Error) -> String {
    match err {
        pem::Error::NoItemsFound => "found no PEM block of that kind".to_owned(),
        other => format!("found malformed PEM: {other}"),
    }
}

/// Parses every `CERTIFICATE` block; at least one is required.
pub fn certificates_from_pem(
    setting: &'static str,
    origin: &str,
    data: &[u8],
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem {
            setting,
            origin: origin.to_owned(),
            expected: "PEM CERTIFICATE blocks",
            found: describe(&e),
        })?;
    if certs.is_empty() {
        return Err(Error::Pem {
            setting,
            origin: origin.to_owned(),
            expected: "at least one PEM CERTIFICATE block",
            found: "found none".to_owned(),
        });
    }
    Ok(certs)
}

/// Parses the first private key block (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
pub fn private_key_from_pem(
    setting: &'static str,
    origin: &str,
    data: &[u8],
) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(data).map_err(|e| Error::Pem {
        setting,
        origin: origin.to_owned(),
        expected: "a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
        found: describe(&e),
    })
}

/// Parses every `X509 CRL` block; at least one is required.
pub fn crls_from_pem(
    setting: &'static str,
    origin: &str,
    data: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let crls = CertificateRevocationListDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem {
            setting,
            origin: origin.to_owned(),
            expected: "PEM X509 CRL blocks",
            found: describe(&e),
        })?;
    if crls.is_empty() {
        return Err(Error::Pem {
            setting,
            origin: origin.to_owned(),
            expected: "at least one PEM X509 CRL block",
            found: "found none".to_owned(),
        });
    }
    Ok(crls)
}

/// Reads a file of certificates ([`certificates_from_pem`]).
pub fn load_certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    certificates_from_pem(
        setting,
        &path.display().to_string(),
        &read_file(setting, path)?,
    )
}

/// Reads a private key file ([`private_key_from_pem`]).
pub fn load_private_key(
    setting: &'static str,
    path: &Path,
) -> Result<PrivateKeyDer<'static>, Error> {
    private_key_from_pem(
        setting,
        &path.display().to_string(),
        &read_file(setting, path)?,
    )
}

/// Reads a CRL file ([`crls_from_pem`]).
pub fn load_crls(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    crls_from_pem(
        setting,
        &path.display().to_string(),
        &read_file(setting, path)?,
    )
}

/// Turns a chain and a key into a rustls [`CertifiedKey`], checking that the key can sign with
/// `provider` and that it matches the leaf certificate.
///
/// A version-1 or version-2 leaf (as `openssl x509 -req` makes without an extension file),
/// which rustls' own consistency check cannot parse, is compared with the key here: the
/// certificate's SubjectPublicKeyInfo must equal the key's.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
    origin: &str,
) -> Result<Arc<CertifiedKey>, Error> {
    let invalid = |reason: String| Error::InvalidKey {
        origin: origin.to_owned(),
        reason,
    };
    let pre_v3 = chain
        .first()
        .is_some_and(|leaf| x509v1::is_pre_v3(leaf.as_ref()));
    if !pre_v3 {
        return CertifiedKey::from_der(chain, key, provider)
            .map(Arc::new)
            .map_err(|e| invalid(e.to_string()));
    }
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(e.to_string()))?;
    let cert_spki = chain
        .first()
        .and_then(|leaf| x509v1::subject_public_key_info(leaf.as_ref()))
        .ok_or_else(|| invalid("the version-1 certificate cannot be parsed".to_owned()))?;
    // As rustls does: a key that cannot tell its public half is not checked.
    if let Some(key_spki) = signing_key.public_key()
        && key_spki.as_ref() != cert_spki
    {
        return Err(invalid(
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch).to_string(),
        ));
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// Loads a certificate chain file and a key file into a [`CertifiedKey`].
pub fn load_certified_key(
    cert_setting: &'static str,
    cert_path: &Path,
    key_setting: &'static str,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, Error> {
    let chain = load_certificates(cert_setting, cert_path)?;
    let key = load_private_key(key_setting, key_path)?;
    certified_key(
        chain,
        key,
        provider,
        &format!("{} and {}", cert_path.display(), key_path.display()),
    )
}

/// Where [`system_roots`] looks for a PEM bundle, after the `SSL_CERT_FILE` variable.
pub const SYSTEM_BUNDLE_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Loads the system trust roots from `SSL_CERT_FILE` or the first bundle found in
/// [`SYSTEM_BUNDLE_PATHS`]. Certificates the parser cannot use are skipped.
pub fn system_roots() -> Result<rustls::RootCertStore, Error> {
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        candidates.push(path.into());
    }
    candidates.extend(SYSTEM_BUNDLE_PATHS.iter().map(std::path::PathBuf::from));
    for path in candidates {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_slice_iter(&data).filter_map(Result::ok);
        let _ = roots.add_parsable_certificates(certs);
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(Error::NoSystemRoots)
}
