//! What one translation of a load keeps for the next: each VirtualService's routes at each
//! gateway server, and the server's hosts it serves, under the [`Edition`] of the document the
//! VirtualService came from.
//!
//! A VirtualService's routes at a server are a function of the VirtualService, the server's
//! port and gateway name, and what route translation looks up; the hosts it serves there, of
//! the VirtualService and the server's hosts. A server is known by its port, its gateway's
//! name and its hosts. Route translation looks up the proxy, the mesh settings,
//! the registry with the ServiceEntries added, and the DestinationRules (hash policies). The
//! cache keeps the routes only while all of those but the VirtualServices are what they were
//! (the same editions of the other networking resources, an equal registry, proxy and mesh
//! settings); a VirtualService whose rules merge delegates is translated every time, since
//! its routes depend on other documents too.
//!
//! It also keeps what indexing learns of each VirtualService from the VirtualService alone
//! ([`FactsMemo`]), under its edition whatever the context.

use std::borrow::Cow;
use std::sync::Arc;

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use foldhash::fast::FixedState;
use portcullis_model::Edition;
use portcullis_route_match::{CompiledVirtualHost, Route};
use smallvec::SmallVec;

use crate::diag::Diagnostic;
use crate::index::{Facts, FactsMemo};
use crate::kept::{ByEdition, kept_or_made};
use crate::plan::HttpRoute;
use crate::proxy::{MeshSettings, Proxy};
use crate::registry::ServiceRegistry;
use crate::routes::RouteProblem;

/// What [`translate_cached`](crate::translate_cached) keeps from one call to the next, so
/// that a configuration loaded again after a change is translated again only where it
/// changed.
///
/// It holds each route's name and conditions, and shares the route's action with the plan
/// (`Arc<HttpRoute>`), so keeping the routes of ten thousand VirtualServices costs a few
/// megabytes. A call translates again every VirtualService whose document has a new
/// [`Edition`], and every VirtualService when anything else translation reads has changed
/// (another networking resource's document, the registry, the proxy or the mesh settings).
///
/// It also shares with the plan each compiled virtual host
/// ([`RouteConfig::virtual_hosts`](crate::RouteConfig::virtual_hosts)): a virtual host made
/// of the very routes it kept, serving the same domains, is not compiled again.
#[derive(Debug, Default)]
pub struct TranslationCache {
    context: Option<Context>,
    routes: Places,
    virtual_hosts: Compiled,
    facts: Facts,
    counts: Counts,
}

/// How many VirtualService translations at a server a call reused and made.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    reused: usize,
    made: usize,
}

/// Everything but the VirtualServices that route translation reads.
#[derive(Debug, PartialEq)]
struct Context {
    /// The editions of the Gateways, DestinationRules and ServiceEntries, in load order.
    editions: Vec<Edition>,
    registry: ServiceRegistry,
    proxy: Proxy,
    mesh: MeshSettings,
}

/// What each VirtualService made at each place (server port, gateway name and server hosts),
/// by the VirtualService's edition. A VirtualService that serves none of a server's hosts has
/// nothing kept there: a gateway of many servers on one port (one per certificate) would
/// otherwise keep an entry for each of its servers and each VirtualService bound to it.
type Places = HashMap<PlaceKey, ByEdition<Translated>, FixedState>;

/// A server as route translation sees it: its port, its gateway's name, and its hosts (which
/// decide what a VirtualService serves there).
type PlaceKey = (u32, String, Vec<String>);

/// A VirtualService's routes at one place, shared by every virtual host they go to and kept
/// from one translation to the next.
pub(crate) type Routes = Arc<[Route<Arc<HttpRoute>>]>;

/// The routes a virtual host is made of, in the order they were added (before sorting). Most
/// virtual hosts are one VirtualService's: its list is held without an allocation.
pub(crate) type Parts = SmallVec<[Routes; 1]>;

/// Whether `a` and `b` are the very same lists, in the same order: the routes they make are
/// then equal without being compared.
pub(crate) fn same_lists(a: &[Routes], b: &[Routes]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| Arc::ptr_eq(a, b))
}

/// One VirtualService's routes at one place, the hosts it serves there, and the problems
/// found translating them.
#[derive(Clone, Debug)]
pub(crate) struct Translated {
    /// The server's hosts the VirtualService serves, lower-cased: the names of the virtual
    /// hosts its routes go to. Shared, as every virtual host holds its name while its route
    /// configuration is assembled.
    pub(crate) hosts: Box<[Arc<str>]>,
    pub(crate) routes: Routes,
    pub(crate) problems: Vec<(String, RouteProblem)>,
    /// The sum of the routes' [`route_fingerprint`]s: equal routes, in any order, have equal
    /// sums.
    pub(crate) fingerprint: u64,
}

impl Translated {
    /// The routes made for `hosts` (as written; they are lower-cased here).
    pub(crate) fn new(
        hosts: Vec<String>,
        routes: Vec<Route<Arc<HttpRoute>>>,
        problems: Vec<(String, RouteProblem)>,
    ) -> Self {
        let fingerprint = routes
            .iter()
            .map(route_fingerprint)
            .fold(0, u64::wrapping_add);
        let hosts = hosts
            .into_iter()
            .map(|mut host| {
                host.make_ascii_lowercase();
                Arc::from(host)
            })
            .collect();
        Self {
            hosts,
            routes: routes.into(),
            problems,
            fingerprint,
        }
    }
}

/// A hash of the fields that tell routes apart cheaply: the route's name and where it was
/// written (its VirtualService and rule). Equal routes hash equally, since every field hashed
/// is one that equality compares. (The route types hold regexes and shared actions, which
/// have no `Hash`; formatting them whole for the hash cost a tenth of building ten thousand
/// VirtualServices.)
fn route_fingerprint(route: &Route<Arc<HttpRoute>>) -> u64 {
    FixedState::default().hash_one((
        &route.name,
        &route.action.name,
        &route.action.virtual_service,
        &route.action.origin,
    ))
}

/// Compiled virtual hosts by route configuration name, in the order of its table. (A slot is
/// empty once a translation has taken its virtual host.)
type Compiled = HashMap<String, Vec<Option<KeptVirtualHost>>, FixedState>;

/// A compiled virtual host, with what it was compiled from and what compiling it reported.
#[derive(Debug)]
struct KeptVirtualHost {
    /// The routes it was made of.
    parts: Parts,
    compiled: Arc<CompiledVirtualHost<Arc<HttpRoute>>>,
    diagnostics: Vec<Diagnostic>,
}

impl TranslationCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many VirtualServices (each at one gateway server) the last call took from the cache.
    pub fn reused(&self) -> usize {
        self.counts.reused
    }

    /// How many VirtualServices (each at one gateway server) the last call translated.
    pub fn translated(&self) -> usize {
        self.counts.made
    }

    /// The routes to start a translation with: what the last call kept, when it was made in
    /// the same context, and nothing otherwise.
    pub(crate) fn start(
        &mut self,
        editions: Vec<Edition>,
        registry: &ServiceRegistry,
        proxy: &Proxy,
        mesh: &MeshSettings,
    ) -> RouteMemo {
        let same = self.context.as_ref().is_some_and(|c| {
            c.editions == editions
                && c.registry == *registry
                && c.proxy == *proxy
                && c.mesh == *mesh
        });
        if !same {
            self.context = Some(Context {
                editions,
                registry: registry.clone(),
                proxy: proxy.clone(),
                mesh: mesh.clone(),
            });
            self.routes.clear();
            self.virtual_hosts.clear();
        }
        RouteMemo {
            previous: std::mem::take(&mut self.routes),
            current: Places::default(),
            previous_virtual_hosts: std::mem::take(&mut self.virtual_hosts),
            current_virtual_hosts: Compiled::default(),
            facts: FactsMemo::resume(std::mem::take(&mut self.facts)),
            keep: true,
            counts: Counts::default(),
        }
    }

    /// Keeps what a translation used, and only that.
    pub(crate) fn finish(&mut self, memo: RouteMemo) {
        self.routes = memo.current;
        self.virtual_hosts = memo.current_virtual_hosts;
        self.facts = memo.facts.into_kept();
        self.counts = memo.counts;
    }
}

/// The routes of one translation: those of the last one it may reuse, and those it made.
#[derive(Debug, Default)]
pub(crate) struct RouteMemo {
    previous: Places,
    current: Places,
    previous_virtual_hosts: Compiled,
    current_virtual_hosts: Compiled,
    /// What indexing learns of each VirtualService, by edition.
    pub(crate) facts: FactsMemo,
    /// Whether anything is kept (a translation without a cache keeps nothing).
    keep: bool,
    counts: Counts,
}

impl RouteMemo {
    /// A memo that keeps nothing.
    pub(crate) fn off() -> Self {
        Self::default()
    }

    /// The routes at one server: `port`, the name of its gateway, and its `hosts`.
    pub(crate) fn place(&mut self, port: u32, gateway: &str, hosts: &[String]) -> Place<'_> {
        if !self.keep {
            return Place {
                previous: None,
                current: None,
                counts: &mut self.counts,
            };
        }
        let key = (port, gateway.to_owned(), hosts.to_vec());
        let previous = self.previous.get_mut(&key);
        // Sized for what the last translation had here, as ten thousand entries would
        // otherwise be moved as the table grows.
        let expected = previous.as_ref().map_or(0, |p| p.len());
        Place {
            previous,
            current: Some(self.current.entry(key).or_insert_with(|| {
                HashMap::with_capacity_and_hasher(expected, FixedState::default())
            })),
            counts: &mut self.counts,
        }
    }
}

impl RouteMemo {
    /// The compiled virtual hosts of route configuration `name`.
    pub(crate) fn virtual_hosts(&mut self, name: &str) -> VirtualHosts<'_> {
        let (previous, current) = if self.keep {
            let previous = self.previous_virtual_hosts.remove(name).unwrap_or_default();
            let current = self
                .current_virtual_hosts
                .entry(name.to_owned())
                .or_insert_with(|| Vec::with_capacity(previous.len()));
            (previous, Some(current))
        } else {
            (Vec::new(), None)
        };
        VirtualHosts {
            previous,
            by_name: None,
            next: 0,
            misses: 0,
            current,
        }
    }
}

/// How many places on from where it is expected a virtual host is looked for before it is
/// taken to be new.
const LOOK_AHEAD: usize = 16;

/// The compiled virtual hosts of one route configuration: the last translation's, and this
/// one's.
///
/// A translation asks for its virtual hosts in table order, which a change rarely disturbs:
/// the one asked for is looked for where the last table had the next one, or a few places
/// on (those before it were renamed or removed: a VirtualService of several hosts makes
/// several virtual hosts in a row), so that an unchanged table is matched without a hash. A
/// virtual host found at none of them is taken to be new (compiling it is right whatever the
/// last table had); only when two in a row are not found are the last table's virtual hosts
/// indexed by name, once, and looked up there from then on. The search goes on from where
/// the last one was found.
pub(crate) struct VirtualHosts<'m> {
    previous: Vec<Option<KeptVirtualHost>>,
    /// The last table's positions by a hash of their names; candidates only, the names decide.
    by_name: Option<HashMap<u64, SmallVec<[usize; 1]>, FixedState>>,
    /// Where the last table's next virtual host is expected.
    next: usize,
    /// How many virtual hosts in a row were not found where expected.
    misses: usize,
    current: Option<&'m mut Vec<Option<KeptVirtualHost>>>,
}

impl VirtualHosts<'_> {
    /// Takes the last table's virtual host `name`, if it had one.
    fn take_previous(&mut self, name: VhostName<'_>) -> Option<KeptVirtualHost> {
        let named = |slot: &Option<KeptVirtualHost>| {
            slot.as_ref().is_some_and(|k| name.is(k.compiled.name()))
        };
        if self.previous.is_empty() {
            return None;
        }
        let expected = (self.next..self.next.saturating_add(LOOK_AHEAD))
            .find(|i| self.previous.get(*i).is_some_and(named));
        let at = if let Some(at) = expected {
            at
        } else {
            self.misses = self.misses.saturating_add(1);
            if self.by_name.is_none() && self.misses < 2 {
                return None;
            }
            let previous = &self.previous;
            let hash = |name: &str| FixedState::default().hash_one(name);
            let by_name = self.by_name.get_or_insert_with(|| {
                let mut by_name: HashMap<u64, SmallVec<[usize; 1]>, FixedState> =
                    HashMap::with_capacity_and_hasher(previous.len(), FixedState::default());
                for (i, slot) in previous.iter().enumerate() {
                    if let Some(k) = slot {
                        by_name.entry(hash(k.compiled.name())).or_default().push(i);
                    }
                }
                by_name
            });
            *by_name
                .get(&hash(&name.to_string()))?
                .iter()
                .find(|i| previous.get(**i).is_some_and(named))?
        };
        self.misses = 0;
        self.next = at.saturating_add(1);
        self.previous.get_mut(at)?.take()
    }

    /// Virtual host `name`, serving `domains`, made of `parts` (each a VirtualService's routes,
    /// in the order they were added): the last translation's, if it had this virtual host
    /// made of the very same routes and serving the same domains, else compiled by `compile`
    /// (which reports to the diagnostics it is given). The diagnostics compiling it gave are
    /// added to `diags` either way.
    pub(crate) fn get_or_compile(
        &mut self,
        name: VhostName<'_>,
        domains: &[Arc<str>],
        parts: Parts,
        diags: &mut Vec<Diagnostic>,
        compile: impl FnOnce(
            String,
            Vec<String>,
            &[Routes],
            &mut Vec<Diagnostic>,
        ) -> Option<CompiledVirtualHost<Arc<HttpRoute>>>,
    ) -> Option<Arc<CompiledVirtualHost<Arc<HttpRoute>>>> {
        if let Some(kept) = self.take_previous(name)
            && kept
                .compiled
                .domains()
                .iter()
                .map(String::as_str)
                .eq(domains.iter().map(|d| &**d))
            && same_lists(&kept.parts, &parts)
        {
            diags.extend(kept.diagnostics.iter().cloned());
            let compiled = kept.compiled.clone();
            if let Some(current) = self.current.as_deref_mut() {
                current.push(Some(kept));
            }
            return Some(compiled);
        }
        let domains = || domains.iter().map(|d| d.to_string()).collect();
        let Some(current) = self.current.as_deref_mut() else {
            return compile(name.to_string(), domains(), &parts, diags).map(Arc::new);
        };
        let mut reported = Vec::new();
        let compiled = compile(name.to_string(), domains(), &parts, &mut reported);
        diags.extend(reported.iter().cloned());
        let compiled = Arc::new(compiled?);
        current.push(Some(KeptVirtualHost {
            parts,
            compiled: compiled.clone(),
            diagnostics: reported,
        }));
        Some(compiled)
    }
}

/// A virtual host's name, `host:port`, as its two parts: it is compared with the last
/// table's names as it is, and put together only for a virtual host compiled again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VhostName<'a> {
    /// The first of its domains.
    pub(crate) host: &'a str,
    /// `:port`.
    pub(crate) port: &'a str,
}

impl VhostName<'_> {
    /// Whether `name` is this name.
    fn is(self, name: &str) -> bool {
        name.len() == self.host.len().saturating_add(self.port.len())
            && name.starts_with(self.host)
            && name.ends_with(self.port)
    }
}

impl std::fmt::Display for VhostName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.host)?;
        f.write_str(self.port)
    }
}

/// The routes of the VirtualServices at one server.
pub(crate) struct Place<'m> {
    previous: Option<&'m mut ByEdition<Translated>>,
    current: Option<&'m mut ByEdition<Translated>>,
    counts: &'m mut Counts,
}

impl Place<'_> {
    /// What the VirtualService of `edition` makes here: kept from this translation or the
    /// last, or made by `translate` (and kept), which gives `None` for a VirtualService that
    /// serves none of the server's hosts (nothing is kept then). Without an edition, always
    /// made.
    pub(crate) fn routes(
        &mut self,
        edition: Option<Edition>,
        translate: impl FnOnce() -> Option<Translated>,
    ) -> Option<Cow<'_, Translated>> {
        let (Some(edition), Some(current)) = (edition, self.current.as_deref_mut()) else {
            let made = translate()?;
            self.counts.made += 1;
            return Some(Cow::Owned(made));
        };
        let (routes, made) =
            kept_or_made(current, self.previous.as_deref_mut(), edition, translate)?;
        if made {
            self.counts.made += 1;
        } else {
            self.counts.reused += 1;
        }
        Some(Cow::Borrowed(routes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use portcullis_model::Loader;

    use super::*;
    use crate::translate_cached;

    #[test]
    fn nothing_is_kept_for_a_server_a_virtual_service_does_not_serve() {
        let vs = |host: &str| {
            format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                 metadata: {{name: {host}, namespace: shop}}\n\
                 spec:\n  hosts: [{host}.example.com]\n  gateways: [istio-system/gw]\n  \
                 http: [{{route: [{{destination: {{host: web}}}}]}}]\n"
            )
        };
        // One server per certificate, as an HTTPS gateway has, on one port.
        let gateway = "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
             metadata: {name: gw, namespace: istio-system}\n\
             spec:\n  selector: {istio: ingressgateway}\n  servers:\n  \
             - {port: {number: 443, name: a, protocol: HTTPS}, hosts: [a.example.com], \
                tls: {mode: SIMPLE, credentialName: a}}\n  \
             - {port: {number: 443, name: b, protocol: HTTPS}, hosts: [b.example.com], \
                tls: {mode: SIMPLE, credentialName: b}}\n";
        let text = [gateway.to_owned(), vs("a"), vs("b")].join("---\n");
        let loaded = Loader::new().load_str("config.yaml", &text).unwrap();
        let mut cache = TranslationCache::new();
        let (registry, proxy, mesh) = (
            ServiceRegistry::new(),
            Proxy::ingress_gateway(),
            MeshSettings::default(),
        );
        let plan = translate_cached(&loaded, &registry, &proxy, &mesh, &mut cache);
        assert_eq!(plan.route_configs.len(), 2);
        assert_eq!((cache.reused(), cache.translated()), (0, 2));
        let kept: Vec<usize> = cache.routes.values().map(HashMap::len).collect();
        assert_eq!(kept, [1, 1]);
    }
}
