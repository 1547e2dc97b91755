//! A [`MeshIdentity`] read from files, as istio-proxy mounts them: `cert-chain.pem` (the
//! workload certificate chain), `key.pem` and `root-cert.pem` (the mesh roots) in one
//! directory (Istio's `OUTPUT_CERTS` / `/etc/certs` layout).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::{Error, MeshIdentity, pem};

/// The workload certificate chain's file name.
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";
/// The workload key's file name.
pub const KEY_FILE: &str = "key.pem";
/// The mesh roots' file name.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";

/// The mesh identity for `ISTIO_MUTUAL` from a directory holding [`CERT_CHAIN_FILE`],
/// [`KEY_FILE`] and [`ROOT_CERT_FILE`]. [`reload`](Self::reload) reads the files again (after
/// a rotation); handshakes use the newest certificate that loaded.
///
/// ```no_run
/// use std::sync::Arc;
/// use portcullis_tls::{FileMeshIdentity, MeshIdentity, TlsContext};
///
/// let ctx = TlsContext::new();
/// let identity = FileMeshIdentity::open("/etc/certs", Arc::clone(&ctx.provider))?;
/// assert!(identity.certified_key().is_some());
/// let ctx = ctx.mesh_identity(Arc::new(identity));
/// # Ok::<(), portcullis_tls::Error>(())
/// ```
#[derive(Debug)]
pub struct FileMeshIdentity {
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Arc<RootCertStore>)>,
}

impl FileMeshIdentity {
    /// Reads the identity in `dir`.
    ///
    /// # Errors
    /// A file missing or unreadable, PEM without what is expected, a key that does not match
    /// the certificate, or no usable root.
    pub fn open(dir: impl Into<PathBuf>, provider: Arc<CryptoProvider>) -> Result<Self, Error> {
        let dir = dir.into();
        let current = read(&dir, &provider)?;
        Ok(Self {
            dir,
            provider,
            current: RwLock::new(current),
        })
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the files again; on error the identity loaded before stays.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn reload(&self) -> Result<(), Error> {
        let next = read(&self.dir, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }
}

fn read(
    dir: &Path,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, Arc<RootCertStore>), Error> {
    let key = pem::load_certified_key(
        "cert-chain.pem",
        &dir.join(CERT_CHAIN_FILE),
        "key.pem",
        &dir.join(KEY_FILE),
        provider,
    )?;
    let mut roots = RootCertStore::empty();
    for root in pem::load_certificates("root-cert.pem", &dir.join(ROOT_CERT_FILE))? {
        roots.add(root).map_err(|source| Error::Rustls {
            context: "root-cert.pem",
            source,
        })?;
    }
    Ok((key, Arc::new(roots)))
}

impl MeshIdentity for FileMeshIdentity {
    fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Some(Arc::clone(&current.0))
    }

    fn trust_roots(&self) -> Arc<RootCertStore> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&current.1)
    }
}
