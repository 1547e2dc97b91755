//! The service registry analyzers look hosts up in: every ServiceEntry host, and every
//! Kubernetes Service as a pseudo ServiceEntry `<name>.<namespace>.svc.cluster.local`.

use portcullis_model::host;
use std::collections::{BTreeMap, HashMap};

use super::labels::exports_to_all;
use super::store::Ctx;

/// The scope of a host visible to every namespace.
const ALL: &str = "*";

/// One service as the registry knows it.
#[derive(Clone, Debug)]
pub(crate) struct Service<'a> {
    /// The port numbers, in declaration order.
    pub(crate) ports: Vec<u32>,
    /// The ServiceEntry's `workloadSelector.labels` (none for Kubernetes Services).
    pub(crate) workload_labels: Option<&'a BTreeMap<String, String>>,
}

/// (scope, FQDN) → service, in insertion order (a later definition of a key replaces the
/// earlier one, as Istio's map assignment does).
#[derive(Debug, Default)]
pub(crate) struct Registry<'a> {
    entries: Vec<(String, String, Service<'a>)>,
    index: HashMap<(String, String), usize>,
}

impl<'a> Registry<'a> {
    /// Istio's `InitServiceEntryHostMap`.
    pub(crate) fn build(ctx: &Ctx<'a>) -> Self {
        let mut registry = Self::default();
        for se in &ctx.service_entries {
            let scopes: Vec<String> = if exports_to_all(&se.spec.export_to) {
                vec![ALL.to_owned()]
            } else {
                se.spec
                    .export_to
                    .iter()
                    .map(|e| {
                        if e == "." {
                            se.ns().to_owned()
                        } else {
                            e.clone()
                        }
                    })
                    .collect()
            };
            let service = Service {
                ports: se.spec.ports.iter().map(|p| p.number).collect(),
                workload_labels: se.spec.workload_selector.as_ref().map(|w| &w.labels),
            };
            for scope in &scopes {
                for host in &se.spec.hosts {
                    registry.insert(
                        scope.clone(),
                        host::convert_host_to_fqdn(se.ns(), host),
                        service.clone(),
                    );
                }
            }
        }
        for svc in &ctx.services {
            let service = Service {
                ports: svc
                    .spec
                    .ports
                    .iter()
                    .map(|p| u32::try_from(p.port).unwrap_or(0))
                    .collect(),
                workload_labels: None,
            };
            let fqdn = host::convert_host_to_fqdn(svc.ns(), svc.name());
            match svc.meta.annotations.get("networking.istio.io/exportTo") {
                Some(anno) if !anno.is_empty() => {
                    for ns in anno.split(',') {
                        let ns = ns.trim();
                        let scope = if ns == "." { svc.ns() } else { ns };
                        registry.insert(scope.to_owned(), fqdn.clone(), service.clone());
                    }
                }
                _ => registry.insert(ALL.to_owned(), fqdn, service),
            }
        }
        registry
    }

    fn insert(&mut self, scope: String, fqdn: String, service: Service<'a>) {
        let key = (scope, fqdn);
        if let Some(&i) = self.index.get(&key) {
            if let Some(slot) = self.entries.get_mut(i) {
                slot.2 = service;
            }
            return;
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key.0, key.1, service));
    }

    fn get(&self, scope: &str, fqdn: &str) -> Option<&Service<'a>> {
        self.index
            .get(&(scope.to_owned(), fqdn.to_owned()))
            .and_then(|&i| self.entries.get(i))
            .map(|e| &e.2)
    }

    /// Istio's `GetDestinationHost`: the service `host` names for a resource in `namespace`
    /// with `export_to`: exact FQDN visible to all; exact FQDN in the resource's namespace or
    /// export namespaces; then a wildcard host visible to the namespace whose suffix ends the
    /// host.
    pub(crate) fn lookup(
        &self,
        namespace: &str,
        export_to: &[String],
        host: &str,
    ) -> Option<&Service<'a>> {
        let fqdn = host::convert_host_to_fqdn(namespace, host);
        if let Some(s) = self.get(ALL, &fqdn) {
            return Some(s);
        }
        if export_to.is_empty() {
            if let Some(s) = self.get(namespace, &fqdn) {
                return Some(s);
            }
        } else {
            for e in export_to {
                let scope = if e == "." { namespace } else { e.as_str() };
                if let Some(s) = self.get(scope, &fqdn) {
                    return Some(s);
                }
            }
        }
        let wanted = host.strip_prefix('*').unwrap_or(host);
        self.entries
            .iter()
            .filter(|(scope, se_host, _)| {
                se_host.starts_with('*') && (scope == ALL || scope == namespace)
            })
            .find(|(_, se_host, _)| wanted.ends_with(se_host.get(1..).unwrap_or("")))
            .map(|e| &e.2)
    }
}
