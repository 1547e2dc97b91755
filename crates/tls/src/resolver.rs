//! Certificate selection by SNI for all the servers of one port.
//!
//! Matching follows Envoy's filter-chain selection as Istio configures it: the exact host
//! first, then the wildcard `*.suffix` with the longest suffix (a wildcard matches one or more
//! labels, never the bare suffix), then a server whose hosts include `*`. A ClientHello without
//! SNI only matches a `*` server. When two servers claim the same host, the first one wins,
//! as Istio's gateway host de-duplication does.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::store::CredentialStore;

/// The mesh identity an embedder supplies for `ISTIO_MUTUAL`: the workload certificate and
/// the mesh trust roots (Istio gets both from istiod over SDS).
///
/// [`certified_key`](Self::certified_key) is called for every handshake, so returning a newly
/// issued certificate rotates it.
pub trait MeshIdentity: Send + Sync + fmt::Debug {
    /// The current workload certificate chain and key, or `None` if none is issued yet
    /// (handshakes then fail).
    fn certified_key(&self) -> Option<Arc<CertifiedKey>>;

    /// The roots that peers' workload certificates must chain to.
    fn trust_roots(&self) -> Arc<RootCertStore>;
}

/// Where a server's certificates come from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Key pairs loaded once (files, `tlsCertificates`). Several pairs (RSA and ECDSA, say)
    /// are chosen between by the client's signature schemes.
    Static(Vec<Arc<CertifiedKey>>),
    /// Credentials looked up in a store for every handshake (`credentialName(s)`).
    Store {
        /// The store.
        store: Arc<dyn CredentialStore>,
        /// The credential names, in preference order.
        names: Vec<String>,
    },
    /// The mesh workload certificate (`ISTIO_MUTUAL`).
    Mesh(Arc<dyn MeshIdentity>),
    /// No certificate: a passthrough server. It takes part in matching, but resolving a
    /// certificate for it fails.
    None,
}

impl CertSource {
    fn candidates(&self) -> Vec<Arc<CertifiedKey>> {
        match self {
            Self::Static(keys) => keys.clone(),
            Self::Store { store, names } => names
                .iter()
                .filter_map(|name| store.get(name)?.certified_key().cloned())
                .collect(),
            Self::Mesh(identity) => identity.certified_key().into_iter().collect(),
            Self::None => Vec::new(),
        }
    }
}

/// One server's entry in an [`SniResolver`]: its hosts and its certificates.
#[derive(Debug, Clone)]
pub struct SniEntry {
    /// The server's hosts as written in the Gateway: `example.com`, `*.example.com`, `*`, with an
    /// optional `namespace/` prefix (ignored here).
    pub hosts: Vec<String>,
    /// Where its certificates come from.
    pub source: CertSource,
}

#[derive(Debug, Default)]
struct Table {
    exact: HashMap<String, usize>,
    /// Keyed by the suffix after `*.`.
    wildcard: HashMap<String, usize>,
    default: Option<usize>,
    sources: Vec<CertSource>,
}

/// Normalises a host or SNI for matching: drops a `namespace/` prefix and a trailing dot,
/// lowercases.
pub(crate) fn normalize_host(host: &str) -> String {
    let host = host.rsplit_once('/').map_or(host, |(_, h)| h);
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

impl Table {
    fn build(entries: Vec<SniEntry>) -> Self {
        let mut table = Self::default();
        for (index, entry) in entries.into_iter().enumerate() {
            for host in &entry.hosts {
                let host = normalize_host(host);
                if host == "*" {
                    table.default.get_or_insert(index);
                } else if let Some(suffix) = host.strip_prefix("*.") {
                    table.wildcard.entry(suffix.to_owned()).or_insert(index);
                } else {
                    table.exact.entry(host).or_insert(index);
                }
            }
            table.sources.push(entry.source);
        }
        table
    }

    fn lookup(&self, sni: Option<&str>) -> Option<usize> {
        let Some(sni) = sni else {
            return self.default;
        };
        let sni = normalize_host(sni);
        if let Some(&i) = self.exact.get(&sni) {
            return Some(i);
        }
        // Longest suffix first: walk the dots from the left.
        let mut rest = sni.as_str();
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(&i) = self.wildcard.get(suffix) {
                return Some(i);
            }
            rest = suffix;
        }
        self.default
    }
}

/// A [`ResolvesServerCert`] for all the terminating servers of one port, with live rotation.
///
/// The table is swapped whole by [`update`](Self::update); store- and mesh-backed servers also
/// pick up replaced credentials by themselves, at the next handshake.
#[derive(Debug)]
pub struct SniResolver {
    table: RwLock<Arc<Table>>,
}

impl SniResolver {
    /// A resolver over `entries`, in server order (the first server claiming a host wins).
    pub fn new(entries: Vec<SniEntry>) -> Self {
        Self {
            table: RwLock::new(Arc::new(Table::build(entries))),
        }
    }

    /// Replaces every entry at once. Handshakes in flight keep the certificate they already
    /// got; later ones see the new entries. Server positions are the new list's.
    pub fn update(&self, entries: Vec<SniEntry>) {
        let table = Arc::new(Table::build(entries));
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = table;
    }

    fn current(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The position of the server that `sni` selects, if any.
    pub fn server_for(&self, sni: Option<&str>) -> Option<usize> {
        self.current().lookup(sni)
    }

    /// The certificate that a handshake with this SNI and these signature schemes would get.
    pub fn certificate_for(
        &self,
        sni: Option<&str>,
        signature_schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let table = self.current();
        let source = table.sources.get(table.lookup(sni)?)?;
        choose_key(source.candidates(), signature_schemes)
    }
}

/// Picks the first key that can sign with one of the offered schemes (RSA vs ECDSA), else
/// the first key.
fn choose_key(
    mut keys: Vec<Arc<CertifiedKey>>,
    schemes: &[rustls::SignatureScheme],
) -> Option<Arc<CertifiedKey>> {
    if keys.len() > 1
        && let Some(pos) = keys
            .iter()
            .position(|k| k.key.choose_scheme(schemes).is_some())
    {
        return Some(keys.swap_remove(pos));
    }
    keys.into_iter().next()
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certificate_for(client_hello.server_name(), client_hello.signature_schemes())
    }
}
