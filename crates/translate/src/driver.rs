//! The translation driver: the index, then the gateway's listeners or the sidecar's view,
//! then the clusters.

use std::collections::BTreeMap;

use portcullis_model::{Loaded, Object};

use crate::cache::{RouteMemo, TranslationCache};
use crate::config::{Config, Resources};
use crate::index::Index;
use crate::listeners::build_gateway;
use crate::plan::GatewayPlan;
use crate::proxy::{MeshSettings, Proxy, ProxyKind};
use crate::registry::ServiceRegistry;

/// Translates `config` for `proxy`.
///
/// The registry is extended with the configuration's ServiceEntries. For a gateway proxy the
/// plan holds every rule of ROUTING.md §a–g; for a sidecar, the outbound `mesh` view: one HTTP
/// listener and route configuration (`<port>`) per HTTP service port, where for each host only
/// the oldest VirtualService applies (see the crate documentation).
pub fn translate(
    config: &Config,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
) -> GatewayPlan {
    let resources = Resources::of_config(config);
    translate_resources(&resources, registry, proxy, mesh, &mut RouteMemo::off())
}

/// [`translate`] for the networking resources among `objects` (other kinds are ignored),
/// as [`Config::from_objects`] would take them, without copying them into a [`Config`].
pub fn translate_objects<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
) -> GatewayPlan {
    let resources = Resources::of_objects(objects);
    translate_resources(&resources, registry, proxy, mesh, &mut RouteMemo::off())
}

/// [`translate_objects`] for the documents of a load, reusing what `cache` kept from the last
/// call: a VirtualService whose document has the same [`Edition`](portcullis_model::Edition)
/// as then is not translated again, as long as nothing else translation reads has changed
/// (see [`TranslationCache`]). The plan is the one [`translate_objects`] builds.
///
/// ```
/// use portcullis_model::Loader;
/// use portcullis_translate::{MeshSettings, Proxy, ServiceRegistry, TranslationCache};
/// use portcullis_translate::{translate_cached, translate_objects};
///
/// let loaded = Loader::new().load_str("config.yaml", r#"
/// apiVersion: networking.istio.io/v1
/// kind: Gateway
/// metadata: {name: gw, namespace: istio-system}
/// spec:
///   selector: {istio: ingressgateway}
///   servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
/// ---
/// apiVersion: networking.istio.io/v1
/// kind: VirtualService
/// metadata: {name: shop, namespace: istio-system}
/// spec:
///   hosts: [shop.example.com]
///   gateways: [gw]
///   http: [{route: [{destination: {host: shop}}]}]
/// "#)?;
/// let (registry, proxy, mesh) = (ServiceRegistry::new(), Proxy::ingress_gateway(), MeshSettings::default());
/// let mut cache = TranslationCache::new();
/// let first = translate_cached(&loaded, &registry, &proxy, &mesh, &mut cache);
/// let again = translate_cached(&loaded, &registry, &proxy, &mesh, &mut cache); // from the cache
/// let objects = loaded.documents().iter().map(|d| &d.object);
/// let fresh = translate_objects(objects, &registry, &proxy, &mesh);
/// assert_eq!(again.route_configs["http.80"].table(), fresh.route_configs["http.80"].table());
/// assert_eq!(first.route_configs["http.80"].table(), fresh.route_configs["http.80"].table());
/// # Ok::<(), portcullis_model::LoadErrors>(())
/// ```
pub fn translate_cached(
    loaded: &Loaded,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
    cache: &mut TranslationCache,
) -> GatewayPlan {
    let mut resources = Resources::of_loaded(loaded);
    let others = std::mem::take(&mut resources.other_editions);
    let mut memo = cache.start(others, registry, proxy, mesh);
    let plan = translate_resources(&resources, registry, proxy, mesh, &mut memo);
    cache.finish(memo);
    plan
}

fn translate_resources(
    config: &Resources<'_>,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
    memo: &mut RouteMemo,
) -> GatewayPlan {
    let index = Index::new(config, registry, proxy, mesh, &mut memo.facts);
    let mut plan = GatewayPlan {
        listeners: Vec::new(),
        route_configs: BTreeMap::new(),
        clusters: BTreeMap::new(),
        diagnostics: Vec::new(),
    };
    match proxy.kind {
        ProxyKind::Sidecar => crate::sidecar::build_sidecar(&index, &mut plan),
        _ => build_gateway(config, &index, &mut plan, memo),
    }
    crate::clusters::build_clusters(&index, &mut plan);
    if proxy.kind == ProxyKind::Sidecar {
        let passthrough = crate::clusters::passthrough_cluster(&index);
        plan.clusters.insert(passthrough.name.clone(), passthrough);
    }
    plan.listeners
        .sort_by(|a, b| (a.port, &a.address).cmp(&(b.port, &b.address)));
    plan
}
