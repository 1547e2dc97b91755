//! What translation looks things up in: VirtualServices with names resolved and delegates
//! merged, DestinationRules by host, and the services the proxy sees.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use foldhash::fast::FixedState;
use portcullis_model::Edition;

use portcullis_model::Resource;
use portcullis_model::host::{is_short_name, resolve_short_name};
use portcullis_model::virtual_service::{
    Destination, HttpRoute as VsHttpRoute, TcpRoute, TlsRoute,
};

use crate::config::{Resources, creation_order_key};
use crate::delegate::merge_delegates;
use crate::host::destination_host;
use crate::kept::{ByEdition, kept_or_made};
use crate::plan::{HashPolicy, RouteOrigin};
use crate::proxy::{MeshSettings, Proxy, ProxyKind};
use crate::registry::{Service, ServiceRegistry};

/// A VirtualService ready for binding: names resolved, delegates merged. Its rules are
/// borrowed from the configuration unless a delegate was merged or a match's gateway name
/// needed resolving: copying every rule cost a sixth of translating ten thousand
/// VirtualServices.
#[derive(Debug)]
pub(crate) struct VsEntry<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// Hosts as FQDNs (short names resolved in the VS namespace); borrowed when every host
    /// is one already.
    pub hosts: Cow<'a, [String]>,
    /// Resolved gateway names (`ns/name` or `mesh`); borrowed when written so.
    pub gateways: Cow<'a, [String]>,
    pub export_to: &'a [String],
    pub http: Cow<'a, [VsHttpRoute]>,
    /// Where each rule of `http` was written (same index), when rules were merged from
    /// delegates; `None` when each was written where it is (see [`VsEntry::http_origin`]).
    pub merged_origin: Option<Vec<RouteOrigin>>,
    pub tcp: Cow<'a, [TcpRoute]>,
    pub tls: Cow<'a, [TlsRoute]>,
    /// The edition of the document the VirtualService came from, when it is known and the
    /// VirtualService merges no delegate: its routes then depend on it alone (see
    /// [`crate::cache`]).
    pub edition: Option<Edition>,
}

impl VsEntry<'_> {
    /// Where rule `ri` of `http` was written.
    pub(crate) fn http_origin(&self, ri: usize) -> Option<RouteOrigin> {
        match &self.merged_origin {
            Some(merged) => merged.get(ri).cloned(),
            None => (ri < self.http.len()).then(|| RouteOrigin::new(ri)),
        }
    }
}

/// What indexing needs to know of a VirtualService's rules, which depends on the
/// VirtualService alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VsFacts {
    /// Whether an HTTP rule delegates (its VirtualService merges others' rules).
    pub delegates: bool,
    /// Whether a rule's match names a gateway by a name that resolves to another.
    pub renames_gateways: bool,
    /// Whether a host is a short name, to be resolved in the VirtualService's namespace.
    pub short_hosts: bool,
    /// Whether every gateway is named as [`resolve_gateway_name`] would name it.
    pub gateways_resolved: bool,
}

/// What one indexing keeps for the next: the facts by the edition of their VirtualService's
/// document, and the creation order it found.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    by_edition: ByEdition<VsFacts>,
    /// The VirtualServices' creation order, as indices into the configuration's list.
    vs_order: Vec<usize>,
}

/// The facts of one indexing: those of the last one it may reuse, and those it learnt. Learning
/// them reads every rule of every VirtualService, which in a large configuration is mostly
/// waiting for memory; a [`crate::TranslationCache`] keeps them from one translation to the next.
#[derive(Debug, Default)]
pub(crate) struct FactsMemo {
    previous: ByEdition<VsFacts>,
    current: ByEdition<VsFacts>,
    /// The last indexing's creation order, and this one's.
    previous_order: Vec<usize>,
    order: Vec<usize>,
    /// Whether anything is kept (an indexing without a cache keeps nothing).
    keep: bool,
}

impl FactsMemo {
    /// A memo that reuses `kept`, and keeps what it learns.
    pub(crate) fn resume(kept: Facts) -> Self {
        // Sized for what the last indexing learnt, as ten thousand facts would otherwise be
        // moved as the table grows.
        let current =
            ByEdition::with_capacity_and_hasher(kept.by_edition.len(), Default::default());
        Self {
            previous: kept.by_edition,
            current,
            previous_order: kept.vs_order,
            order: Vec::new(),
            keep: true,
        }
    }

    /// What this indexing used, for the next.
    pub(crate) fn into_kept(self) -> Facts {
        Facts {
            by_edition: self.current,
            vs_order: self.order,
        }
    }

    /// The facts of the VirtualService of `edition`: kept from the last indexing or this one,
    /// or learnt by `learn` (and kept). Without an edition, always learnt.
    fn facts(&mut self, edition: Option<Edition>, learn: impl Fn() -> VsFacts) -> VsFacts {
        let Some(edition) = edition.filter(|_| self.keep) else {
            return learn();
        };
        // `learn` always gives facts, so they are kept; the fallback is never taken.
        kept_or_made(&mut self.current, Some(&mut self.previous), edition, || {
            Some(learn())
        })
        .map_or_else(&learn, |(facts, _)| *facts)
    }
}

/// A DestinationRule with its host resolved.
#[derive(Debug)]
pub(crate) struct DrEntry<'a> {
    pub namespace: String,
    pub host: String,
    pub rule: &'a portcullis_model::DestinationRule,
}

/// Everything translation looks things up in.
pub(crate) struct Index<'a> {
    pub proxy: &'a Proxy,
    pub mesh: &'a MeshSettings,
    pub registry: ServiceRegistry,
    pub vs: Vec<VsEntry<'a>>,
    pub drs: Vec<DrEntry<'a>>,
    /// Gateway name → VS indices in binding order (§b.3).
    pub vs_by_gateway: GatewayBindings,
    /// For a sidecar: the services it sees, one per host name (indices into `registry`).
    pub client_services: Vec<usize>,
}

/// VirtualService indices by the name of the gateway they bind to.
pub(crate) type GatewayBindings = HashMap<String, Vec<usize>, FixedState>;

/// [`GatewayBindings`] being filled in binding order. A run of VirtualServices bound to the
/// same gateway, the usual case, is gathered apart and added to the map at once: the gateway's
/// name is hashed and copied once per run, not once per VirtualService.
#[derive(Default)]
struct Bindings<'v> {
    map: GatewayBindings,
    run: Option<(&'v str, Vec<usize>)>,
}

impl<'v> Bindings<'v> {
    fn bind(&mut self, gateway: &'v str, vs: usize) {
        match &mut self.run {
            Some((name, list)) if *name == gateway => list.push(vs),
            _ => {
                self.flush();
                self.run = Some((gateway, vec![vs]));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((name, list)) = self.run.take() {
            match self.map.get_mut(name) {
                Some(bound) => bound.extend(list),
                None => {
                    self.map.insert(name.to_owned(), list);
                }
            }
        }
    }

    fn finish(mut self) -> GatewayBindings {
        self.flush();
        self.map
    }
}

/// Sorts resources by [`creation_order_key`], made once for each (its timestamp parsed once,
/// not twice per comparison), with a stable sort, which finds the runs a load is often
/// already in.
fn sort_by_creation<'r, T: Copy, S: 'r>(
    items: &mut Vec<T>,
    resource: impl Fn(&T) -> &&'r Resource<S>,
) {
    let order = creation_order(items, resource, &[]);
    reorder(items, &order);
}

/// `items` in `order`.
fn reorder<T: Copy>(items: &mut Vec<T>, order: &[usize]) {
    let sorted: Vec<T> = order
        .iter()
        .filter_map(|i| items.get(*i).copied())
        .collect();
    *items = sorted;
}

/// The order in which a stable sort by [`creation_order_key`] puts `items`, as their indices;
/// `hint` is a guess (see [`stable_order`]).
fn creation_order<'r, T, S: 'r>(
    items: &[T],
    resource: impl Fn(&T) -> &&'r Resource<S>,
    hint: &[usize],
) -> Vec<usize> {
    let keys: Vec<_> = items
        .iter()
        .map(|item| creation_order_key(*resource(item)))
        .collect();
    stable_order(&keys, hint)
}

/// The order in which a stable sort puts `keys`, as their indices.
///
/// `hint` is a guess, the last indexing's order: a change rarely moves a resource in it, and
/// checking that the guess sorts the keys is one comparison per resource, where sorting ten
/// thousand of them afresh took a tenth of a change. The guess is taken only if each key, with
/// its index, is strictly below the next: that order is then a permutation, and the only one a
/// stable sort can give.
fn stable_order<K: Ord>(keys: &[K], hint: &[usize]) -> Vec<usize> {
    let keyed = |i: &usize| keys.get(*i).map(|k| (k, *i));
    let hint_holds = hint.len() == keys.len()
        && hint.iter().all(|i| *i < keys.len())
        && hint.windows(2).all(|w| match w {
            [a, b] => keyed(a) < keyed(b),
            _ => false,
        });
    if hint_holds {
        return hint.to_vec();
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|i| keys.get(*i));
    order
}

/// Istio's `resolveGatewayName`.
pub(crate) fn resolve_gateway_name(name: &str, namespace: &str) -> String {
    if is_resolved_gateway_name(name) {
        return name.to_owned();
    }
    if let Some(rest) = name.strip_prefix("./") {
        return format!("{namespace}/{rest}");
    }
    if let Some((short, rest)) = name.split_once('.') {
        let ns = rest.split('.').next().unwrap_or(namespace);
        return format!("{ns}/{short}");
    }
    format!("{namespace}/{name}")
}

/// Whether [`resolve_gateway_name`] keeps `name` as it is: `mesh`, or `ns/name` other than
/// `./name`.
fn is_resolved_gateway_name(name: &str) -> bool {
    name == "mesh" || (name.contains('/') && !name.starts_with("./"))
}

/// A VirtualService rule whose matches may name gateways.
trait MatchGateways: Clone {
    fn match_gateways(&self) -> impl Iterator<Item = &String>;
    fn match_gateways_mut(&mut self) -> impl Iterator<Item = &mut String>;
}

impl MatchGateways for VsHttpRoute {
    fn match_gateways(&self) -> impl Iterator<Item = &String> {
        self.r#match.iter().flat_map(|m| &m.gateways)
    }
    fn match_gateways_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.r#match.iter_mut().flat_map(|m| &mut m.gateways)
    }
}

impl MatchGateways for TcpRoute {
    fn match_gateways(&self) -> impl Iterator<Item = &String> {
        self.r#match.iter().flat_map(|m| &m.gateways)
    }
    fn match_gateways_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.r#match.iter_mut().flat_map(|m| &mut m.gateways)
    }
}

impl MatchGateways for TlsRoute {
    fn match_gateways(&self) -> impl Iterator<Item = &String> {
        self.r#match.iter().flat_map(|m| &m.gateways)
    }
    fn match_gateways_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.r#match.iter_mut().flat_map(|m| &mut m.gateways)
    }
}

/// Whether a rule's match names a gateway that [`resolve_gateway_name`] renames.
fn renames_match_gateways<R: MatchGateways>(rules: &[R], namespace: &str) -> bool {
    rules
        .iter()
        .flat_map(R::match_gateways)
        .any(|g| resolve_gateway_name(g, namespace) != *g)
}

/// Resolves the gateway names of the rules' matches ([`resolve_gateway_name`]), copying the
/// rules only when a name changes.
fn resolve_match_gateways<R: MatchGateways>(rules: &mut Cow<'_, [R]>, namespace: &str) {
    if renames_match_gateways(rules, namespace) {
        for g in rules.to_mut().iter_mut().flat_map(R::match_gateways_mut) {
            *g = resolve_gateway_name(g, namespace);
        }
    }
}

impl<'a> Index<'a> {
    pub(crate) fn new(
        config: &'a Resources<'_>,
        registry: &ServiceRegistry,
        proxy: &'a Proxy,
        mesh: &'a MeshSettings,
        memo: &mut FactsMemo,
    ) -> Self {
        let mut registry = registry.clone();
        for se in &config.service_entries {
            if !registry.services.iter().any(|s| {
                se.spec.hosts.contains(&s.hostname) && s.namespace == se.metadata.namespace
            }) {
                registry.add_service_entry(&se.spec, &se.metadata.namespace, &mesh.domain_suffix);
            }
        }
        let suffix = mesh.domain_suffix.as_str();

        // VirtualServices in creation order; delegates are looked up by (name, namespace).
        let mut order: Vec<(&Resource<portcullis_model::VirtualService>, _)> = config
            .virtual_services
            .iter()
            .enumerate()
            .map(|(i, r)| (&**r, config.virtual_service_edition(i)))
            .collect();
        let vs_order = creation_order(&order, |(r, _)| r, &memo.previous_order);
        reorder(&mut order, &vs_order);
        if memo.keep {
            memo.order = vs_order;
        }
        let delegates: HashMap<(&str, &str), &Resource<portcullis_model::VirtualService>> = order
            .iter()
            .map(|(v, _)| v)
            .filter(|v| v.spec.hosts.is_empty())
            .map(|v| {
                (
                    (v.metadata.name.as_str(), v.metadata.namespace.as_str()),
                    *v,
                )
            })
            .collect();
        let roots = || order.iter().filter(|(v, _)| !v.spec.hosts.is_empty());
        // Sized once: an entry is large, and a list grown by doubling copies every entry.
        let mut vs = Vec::with_capacity(roots().count());
        for (r, edition) in roots() {
            let ns = r.metadata.namespace.as_str();
            let find = |name: &str, dns: &str| -> Option<Vec<VsHttpRoute>> {
                let d = delegates.get(&(name, dns))?;
                if !crate::registry::exported_to(&d.spec.export_to, dns, ns) {
                    return None;
                }
                Some(d.spec.http.clone())
            };
            let facts = memo.facts(*edition, || VsFacts {
                delegates: r.spec.http.iter().any(|h| h.delegate.is_some()),
                renames_gateways: renames_match_gateways(&r.spec.http, ns)
                    || renames_match_gateways(&r.spec.tcp, ns)
                    || renames_match_gateways(&r.spec.tls, ns),
                short_hosts: r.spec.hosts.iter().any(|h| is_short_name(h)),
                gateways_resolved: r.spec.gateways.iter().all(|g| is_resolved_gateway_name(g)),
            });
            let merges = facts.delegates;
            let (mut http, merged_origin): (Cow<'_, [VsHttpRoute]>, _) = if merges {
                let (http, origins): (Vec<_>, Vec<_>) =
                    merge_delegates(ns, &r.spec.http, &find).into_iter().unzip();
                (Cow::Owned(http), Some(origins))
            } else {
                (Cow::Borrowed(&r.spec.http), None)
            };
            let mut tcp = Cow::Borrowed(&r.spec.tcp[..]);
            let mut tls = Cow::Borrowed(&r.spec.tls[..]);
            // Merged rules come from other VirtualServices too, which the facts do not cover.
            if merges || facts.renames_gateways {
                resolve_match_gateways(&mut http, ns);
            }
            if facts.renames_gateways {
                resolve_match_gateways(&mut tcp, ns);
                resolve_match_gateways(&mut tls, ns);
            }
            // Most VirtualServices write their hosts and gateways resolved already: those are
            // borrowed, saving four allocations for each of thousands of them on every change.
            let gateways = if r.spec.gateways.is_empty() {
                Cow::Owned(vec!["mesh".to_owned()])
            } else if facts.gateways_resolved {
                Cow::Borrowed(&r.spec.gateways[..])
            } else {
                r.spec
                    .gateways
                    .iter()
                    .map(|g| resolve_gateway_name(g, ns))
                    .collect()
            };
            let hosts = if facts.short_hosts {
                r.spec
                    .hosts
                    .iter()
                    .map(|h| resolve_short_name(h, ns, suffix))
                    .collect()
            } else {
                Cow::Borrowed(&r.spec.hosts[..])
            };
            vs.push(VsEntry {
                name: &r.metadata.name,
                namespace: ns,
                hosts,
                gateways,
                export_to: &r.spec.export_to,
                http,
                merged_origin,
                tcp,
                tls,
                edition: edition.filter(|_| !merges),
            });
        }

        // Binding order for the proxy namespace: private, exported, public; creation order within.
        let mut grouped: Vec<(u8, usize)> = vs
            .iter()
            .enumerate()
            .filter_map(|(i, v)| vs_group(v, &proxy.namespace).map(|g| (g, i)))
            .collect();
        grouped.sort_by_key(|(g, i)| (*g, *i));
        let mut bindings = Bindings::default();
        for (_, i) in grouped {
            match vs.get(i).map(|v| &v.gateways[..]) {
                // Most VirtualServices bind to one gateway: no set to build.
                Some([gateway]) => bindings.bind(gateway, i),
                Some(gateways) => {
                    let mut seen = HashSet::new();
                    for g in gateways {
                        if seen.insert(g) {
                            bindings.bind(g, i);
                        }
                    }
                }
                None => {}
            }
        }
        let vs_by_gateway = bindings.finish();

        let mut dr_order: Vec<&Resource<portcullis_model::DestinationRule>> =
            config.destination_rules.iter().map(|r| &**r).collect();
        sort_by_creation(&mut dr_order, |r| r);
        let drs = dr_order
            .into_iter()
            .map(|r| DrEntry {
                namespace: r.metadata.namespace.clone(),
                host: resolve_short_name(&r.spec.host, &r.metadata.namespace, suffix),
                rule: &r.spec,
            })
            .collect();

        let client_services = match proxy.kind {
            ProxyKind::Sidecar => crate::registry::client_services(&registry, &proxy.namespace),
            _ => Vec::new(),
        };
        Self {
            proxy,
            mesh,
            registry,
            vs,
            drs,
            vs_by_gateway,
            client_services,
        }
    }

    /// The service for a destination host, looked up in the VS namespace first.
    pub(crate) fn service(&self, host: &str, vs_namespace: &str) -> Option<&Service> {
        self.registry
            .lookup(host, &self.proxy.namespace, Some(vs_namespace))
    }

    /// `GetDestinationCluster`.
    pub(crate) fn cluster_name(
        &self,
        dest: &Destination,
        vs_namespace: &str,
        listen_port: u32,
    ) -> String {
        let mut host = destination_host(dest, vs_namespace, &self.mesh.domain_suffix);
        let sidecar = self.proxy.kind == ProxyKind::Sidecar;
        // A sidecar looks destinations up among the services of the route configuration's
        // port only (each reduced to that port), so the default port is the listener port.
        let svc = if sidecar {
            self.client_services
                .iter()
                .filter_map(|i| self.registry.services.get(*i))
                .find(|s| s.hostname == host && s.port(listen_port).is_some())
        } else {
            self.service(&host, vs_namespace)
        };
        let port = match &dest.port {
            Some(p) if p.number != 0 => p.number,
            _ if sidecar => listen_port,
            _ => match svc.map(|s| s.ports.as_slice()) {
                Some([only]) => only.number,
                _ => listen_port,
            },
        };
        if let Some(alias) = svc.and_then(|s| s.external_name.clone()) {
            host = alias;
        }
        format!("outbound|{port}|{}|{host}", dest.subset)
    }

    /// Hash policy for a destination from its DestinationRule (subset port-level > subset >
    /// DR port-level when the destination names a port > DR top-level).
    pub(crate) fn hash_policy_for(
        &self,
        dest: &Destination,
        vs_namespace: &str,
    ) -> Option<HashPolicy> {
        use portcullis_model::destination_rule::{LbPolicy, LoadBalancerSettings};
        let host = destination_host(dest, vs_namespace, &self.mesh.domain_suffix);
        let svc_ns = self
            .service(&host, vs_namespace)
            .map(|s| s.namespace.clone());
        let dr = self.destination_rule(&host, svc_ns.as_deref())?;
        let port = dest.port.as_ref().map(|p| p.number).filter(|p| *p != 0);
        let pick = |lb: Option<&LoadBalancerSettings>| -> Option<HashPolicy> {
            match lb?.lb_policy.as_ref()? {
                LbPolicy::ConsistentHash(h) => hash_policy_from(h),
                _ => None,
            }
        };
        let level =
            |tp: &portcullis_model::destination_rule::TrafficPolicy| -> Option<Option<HashPolicy>> {
                let port = port?;
                tp.port_level_settings
                    .iter()
                    .find(|p| p.port.as_ref().is_some_and(|s| s.number == port))
                    .map(|p| pick(p.load_balancer.as_ref()))
            };
        if !dest.subset.is_empty()
            && let Some(subset) = dr.subsets.iter().find(|s| s.name == dest.subset)
            && let Some(tp) = &subset.traffic_policy
        {
            if let Some(h) = level(tp) {
                return h;
            }
            if tp.load_balancer.is_some() {
                return pick(tp.load_balancer.as_ref());
            }
        }
        let tp = dr.traffic_policy.as_ref()?;
        if let Some(h) = level(tp) {
            return h;
        }
        pick(tp.load_balancer.as_ref())
    }
}

/// §b.3 group of a VS for a proxy namespace: 0 private, 1 exported, 2 public; `None` invisible.
fn vs_group(vs: &VsEntry<'_>, proxy_ns: &str) -> Option<u8> {
    if vs.export_to.is_empty() || vs.export_to.iter().any(|e| e == "*") {
        return Some(2);
    }
    if vs.export_to.iter().any(|e| e == "~") {
        return None;
    }
    let own = vs.namespace;
    if vs.export_to.iter().any(|e| e == "." || e == own) && proxy_ns == own {
        return Some(0);
    }
    if vs.export_to.iter().any(|e| e == proxy_ns) {
        return Some(1);
    }
    None
}

/// Hash policy from a DestinationRule consistent hash.
pub(crate) fn hash_policy_from(
    lb: &portcullis_model::destination_rule::ConsistentHashLb,
) -> Option<HashPolicy> {
    use portcullis_model::destination_rule::HashKey;
    match lb.hash_key.as_ref()? {
        HashKey::HttpHeaderName(h) => Some(HashPolicy::Header(h.clone())),
        HashKey::HttpCookie(c) => Some(HashPolicy::Cookie {
            name: c.name.clone(),
            path: c.path.clone(),
            ttl: c.ttl.and_then(|t| t.to_std()),
            attributes: c
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        }),
        HashKey::UseSourceIp(_) => Some(HashPolicy::SourceIp),
        HashKey::HttpQueryParameterName(q) => Some(HashPolicy::QueryParameter(q.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::stable_order;

    /// The order a stable sort gives, made the slow way.
    fn sorted<K: Ord + Clone>(keys: &[K]) -> Vec<usize> {
        let mut pairs: Vec<(K, usize)> = keys.iter().cloned().zip(0..).collect();
        pairs.sort();
        pairs.into_iter().map(|(_, i)| i).collect()
    }

    #[test]
    fn a_hint_is_taken_only_when_it_is_the_stable_order() {
        let keys = [3, 1, 2, 1, 5];
        let right = sorted(&keys);
        assert_eq!(right, [1, 3, 2, 0, 4]);
        assert_eq!(stable_order(&keys, &[]), right);
        assert_eq!(stable_order(&keys, &right), right);
        for wrong in [
            vec![3, 1, 2, 0, 4], // equal keys out of load order
            vec![1, 3, 2, 0],    // one short
            vec![1, 3, 2, 0, 4, 5],
            vec![1, 3, 2, 0, 9], // out of range
            vec![1, 1, 3, 2, 0], // a repeat
            vec![0, 1, 2, 3, 4],
        ] {
            assert_eq!(stable_order(&keys, &wrong), right, "{wrong:?}");
        }
        // A key that moved: the last order no longer sorts.
        let moved = [3, 1, 2, 6, 5];
        assert_eq!(stable_order(&moved, &right), sorted(&moved));
        assert!(stable_order::<u8>(&[], &[]).is_empty());
    }
}
