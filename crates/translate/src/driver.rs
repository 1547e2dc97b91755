//! The translation driver: the index, then the gateway's listeners or the sidecar's view,
//! then the clusters.

use std::collections::BTreeMap;

use portcullis_model::Object;

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
    translate_resources(&Resources::of_config(config), registry, proxy, mesh)
}

/// [`translate`] for the networking resources among `objects` (other kinds are ignored),
/// as [`Config::from_objects`] would take them, without copying them into a [`Config`].
pub fn translate_objects<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
) -> GatewayPlan {
    translate_resources(&Resources::of_objects(objects), registry, proxy, mesh)
}

fn translate_resources(
    config: &Resources<'_>,
    registry: &ServiceRegistry,
    proxy: &Proxy,
    mesh: &MeshSettings,
) -> GatewayPlan {
    let index = Index::new(config, registry, proxy, mesh);
    let mut plan = GatewayPlan {
        listeners: Vec::new(),
        route_configs: BTreeMap::new(),
        clusters: BTreeMap::new(),
        diagnostics: Vec::new(),
    };
    match proxy.kind {
        ProxyKind::Sidecar => crate::sidecar::build_sidecar(&index, &mut plan),
        _ => build_gateway(config, &index, &mut plan),
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
