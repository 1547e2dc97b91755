//! Which proxy answers a request: a gateway (by its labels, namespace and port) or a sidecar
//! (the mesh view from a namespace), and the plans translated for each.

use std::collections::{BTreeMap, HashMap, HashSet};

use portcullis_model::gateway::ServerTlsMode;
use portcullis_model::host::resolve_short_name;
use portcullis_model::{Gateway, Object, Resource, VirtualService};
use portcullis_translate::{
    Config, GatewayPlan, MeshSettings, Proxy, Service, ServiceRegistry,
    simulate::{Protocol, Request},
    translate,
};
use serde::Deserialize;

use crate::input::Loaded;

/// The proxy a request is simulated against.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum View {
    /// A gateway workload: its namespace and labels.
    Gateway {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    /// A sidecar in a namespace, with its workload labels.
    Mesh {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
}

impl View {
    fn proxy(&self) -> Proxy {
        match self {
            Self::Gateway { namespace, labels } => Proxy::gateway(
                namespace,
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            Self::Mesh { namespace, labels } => Proxy::sidecar(
                namespace,
                labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
        }
    }
}

impl core::fmt::Display for View {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (what, namespace, labels) = match self {
            Self::Gateway { namespace, labels } => ("gateway", namespace, labels),
            Self::Mesh { namespace, labels } => ("mesh", namespace, labels),
        };
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if labels.is_empty() {
            write!(f, "{what} {namespace}")
        } else {
            write!(f, "{what} {namespace}/{}", labels.join(","))
        }
    }
}

/// Where a request goes: the proxy, the port it connects to, and whether over TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) view: View,
    pub(crate) port: u32,
    pub(crate) tls: bool,
    pub(crate) sni: Option<String>,
}

/// The `context:` of a test case (a Portcullis extension of the test formats).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContextSpec {
    /// A sidecar view.
    #[serde(default)]
    pub(crate) mesh: Option<ProxySpec>,
    /// A gateway view.
    #[serde(default)]
    pub(crate) gateway: Option<ProxySpec>,
    /// Connect over TLS.
    #[serde(default)]
    pub(crate) tls: bool,
    /// The SNI sent (default: the authority's host).
    #[serde(default)]
    pub(crate) sni: Option<String>,
}

/// A proxy of a `context:`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProxySpec {
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) port: Option<u32>,
}

/// The configuration, with what is needed to translate it for any view.
#[derive(Debug)]
pub(crate) struct World<'l> {
    config: Config,
    registry: ServiceRegistry,
    mesh: MeshSettings,
    default_namespace: String,
    /// Root VirtualServices (with hosts), in file order.
    roots: Vec<&'l Resource<VirtualService>>,
    gateways: Vec<&'l Resource<Gateway>>,
    /// Hosts of mesh VirtualServices modelled as Services on port 80 (no Service declares
    /// them).
    synthesized: HashSet<String>,
    plans: HashMap<View, GatewayPlan>,
}

/// Splits `host:port` (a numeric port only).
pub(crate) fn split_authority(authority: &str) -> (&str, Option<u32>) {
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

/// How well a configured host name covers a requested host: 3 exact, 2 wildcard (longer is
/// better, added), 1 `*`; `None` when it does not.
fn host_score(configured: &str, host: &str) -> Option<usize> {
    let configured = configured.to_ascii_lowercase();
    if configured == host {
        Some(usize::MAX)
    } else if configured == "*" {
        Some(1)
    } else if let Some(suffix) = configured.strip_prefix('*') {
        (host.ends_with(suffix) && host.len() > suffix.len()).then(|| 2 + suffix.len())
    } else {
        None
    }
}

impl<'l> World<'l> {
    pub(crate) fn new(loaded: &'l Loaded, default_namespace: &str) -> Self {
        let objects: Vec<Object> = loaded.objects();
        let config = Config::from_objects(&objects);
        let mesh = MeshSettings::default();
        let mut registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
        let mut synthesized = HashSet::new();
        let mut roots = Vec::new();
        let mut gateways = Vec::new();
        for d in &loaded.documents {
            match &d.object {
                Object::VirtualService(vs) if !vs.spec.hosts.is_empty() => roots.push(vs),
                Object::Gateway(gw) => gateways.push(gw),
                _ => {}
            }
        }
        // Istio gives a sidecar routes for the hosts of a mesh VirtualService that no Service
        // declares, on the listener port: model them as Services on port 80.
        for vs in &roots {
            let mesh_bound =
                vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
            if !mesh_bound {
                continue;
            }
            let ns = &vs.metadata.namespace;
            for h in &vs.spec.hosts {
                if h.contains('*') {
                    continue;
                }
                let fqdn = resolve_short_name(h, ns, &mesh.domain_suffix);
                if !registry.services.iter().any(|s| s.hostname == fqdn) {
                    synthesized.insert(fqdn.clone());
                    registry.push(Service::new(fqdn, ns.clone()).with_port(80, "http", "HTTP"));
                }
            }
        }
        Self {
            config,
            registry,
            mesh,
            default_namespace: default_namespace.to_owned(),
            roots,
            gateways,
            synthesized,
            plans: HashMap::new(),
        }
    }

    /// Corrects a sidecar decision for a host no Service declares: the modelled Service's
    /// default route does not exist in Istio, which builds no virtual host for such a host
    /// when its VirtualService yields no route.
    pub(crate) fn correct(
        &self,
        view: &View,
        decision: &mut portcullis_translate::simulate::Decision<'_>,
    ) {
        if !matches!(view, View::Mesh { .. }) {
            return;
        }
        let generated = decision.route.is_some_and(|r| r.virtual_service.is_none());
        let host = decision
            .virtual_host
            .as_deref()
            .map(|v| split_authority(v).0);
        if generated && host.is_some_and(|h| self.synthesized.contains(h)) {
            decision.route = None;
            decision.outcome = portcullis_translate::simulate::Outcome::NotFound(
                portcullis_translate::route_match::NotFound::NoVirtualHost,
            );
        }
    }

    /// The plan of a view, translated once.
    pub(crate) fn plan(&mut self, view: &View) -> &GatewayPlan {
        self.plans
            .entry(view.clone())
            .or_insert_with(|| translate(&self.config, &self.registry, &view.proxy(), &self.mesh))
    }

    /// Translates the plan of a view ahead of [`World::plan_ref`].
    pub(crate) fn prepare(&mut self, view: &View) {
        let _ = self.plan(view);
    }

    /// The plan of a view already [prepared](World::prepare).
    pub(crate) fn plan_ref(&self, view: &View) -> Option<&GatewayPlan> {
        self.plans.get(view)
    }

    /// The root VirtualService Istio would pick for a host: exact host first, then the
    /// longest wildcard, in file order.
    pub(crate) fn virtual_service_for(&self, host: &str) -> Option<&'l Resource<VirtualService>> {
        let host = host.to_ascii_lowercase();
        let mut best: Option<(usize, &Resource<VirtualService>)> = None;
        for vs in &self.roots {
            let ns = &vs.metadata.namespace;
            let score = vs
                .spec
                .hosts
                .iter()
                .filter_map(|h| {
                    host_score(h, &host).or_else(|| {
                        host_score(&resolve_short_name(h, ns, &self.mesh.domain_suffix), &host)
                    })
                })
                .max();
            if let Some(s) = score
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, vs));
            }
        }
        best.map(|(_, vs)| vs)
    }

    /// The Gateway a VirtualService names (`ns/name`, `name` in the VS namespace, or
    /// `name.ns`).
    fn gateway(&self, name: &str, vs_namespace: &str) -> Option<&'l Resource<Gateway>> {
        let (ns, short) = match name.split_once('/') {
            Some((ns, n)) => (ns.to_owned(), n.to_owned()),
            None => match name.split_once('.') {
                Some((n, rest)) => (
                    rest.split('.').next().unwrap_or(vs_namespace).to_owned(),
                    n.to_owned(),
                ),
                None => (vs_namespace.to_owned(), name.to_owned()),
            },
        };
        let ns = if ns == "." {
            vs_namespace.to_owned()
        } else {
            ns
        };
        self.gateways
            .iter()
            .find(|g| g.metadata.name == short && g.metadata.namespace == ns)
            .copied()
    }

    /// The target a request to `authority` goes to, by default: the first gateway of the
    /// VirtualService serving the host (on the port of the Gateway server for it), or the
    /// sidecar view from the VirtualService's namespace when it is bound to `mesh`.
    pub(crate) fn default_target(&self, authority: &str) -> Result<Target, String> {
        self.default_target_over(authority, false)
    }

    /// [`World::default_target`], preferring a gateway's HTTPS server for the host when
    /// `tls` (an `https://` URL).
    pub(crate) fn default_target_over(&self, authority: &str, tls: bool) -> Result<Target, String> {
        let (host, explicit_port) = split_authority(authority);
        let host = host.to_ascii_lowercase();
        let Some(vs) = self.virtual_service_for(&host) else {
            return Ok(Target {
                view: View::Mesh {
                    namespace: self.default_namespace.clone(),
                    labels: BTreeMap::new(),
                },
                port: explicit_port.unwrap_or(80),
                tls: false,
                sni: None,
            });
        };
        let ns = &vs.metadata.namespace;
        let gateway = vs.spec.gateways.iter().find(|g| *g != "mesh");
        let Some(gateway) = gateway else {
            return Ok(Target {
                view: View::Mesh {
                    namespace: ns.clone(),
                    labels: BTreeMap::new(),
                },
                port: explicit_port.unwrap_or(80),
                tls: false,
                sni: None,
            });
        };
        let gw = self.gateway(gateway, ns).ok_or_else(|| {
            format!(
                "VirtualService {}.{ns} serves {host} through gateway {gateway}, which is not in the configuration",
                vs.metadata.name
            )
        })?;
        self.gateway_target(gw, &host, explicit_port, tls)
    }

    /// The target at a gateway: the server for the host (plain HTTP first, HTTPS first when
    /// `prefer_tls`), or `port`.
    fn gateway_target(
        &self,
        gw: &Resource<Gateway>,
        host: &str,
        port: Option<u32>,
        prefer_tls: bool,
    ) -> Result<Target, String> {
        let view = View::Gateway {
            namespace: gw.metadata.namespace.clone(),
            labels: gw.spec.selector.clone(),
        };
        let mut best: Option<(u8, u32, bool)> = None;
        for server in &gw.spec.servers {
            let Some(p) = &server.port else { continue };
            if port.is_some_and(|want| want != p.number) {
                continue;
            }
            let protocol = p.protocol.to_ascii_uppercase();
            let passthrough = server.tls.as_ref().is_some_and(|t| {
                matches!(
                    t.mode,
                    None | Some(ServerTlsMode::Passthrough) | Some(ServerTlsMode::AutoPassthrough)
                )
            });
            let tls = protocol == "HTTPS";
            if !matches!(protocol.as_str(), "HTTP" | "HTTP2" | "GRPC" | "HTTPS")
                || (tls && passthrough)
            {
                continue;
            }
            let covers = server.hosts.iter().any(|h| {
                let h = h.split_once('/').map_or(h.as_str(), |(_, n)| n);
                host_score(h, host).is_some()
            });
            if !covers {
                continue;
            }
            let rank = u8::from(tls != prefer_tls);
            if best.is_none_or(|(r, _, _)| rank < r) {
                best = Some((rank, p.number, tls));
            }
        }
        let (_, number, tls) = best.ok_or_else(|| {
            format!(
                "Gateway {}.{} has no HTTP server for {host}{}",
                gw.metadata.name,
                gw.metadata.namespace,
                port.map(|p| format!(" on port {p}")).unwrap_or_default()
            )
        })?;
        Ok(Target {
            view,
            port: number,
            tls,
            sni: tls.then(|| host.to_owned()),
        })
    }

    /// The target of a `context:` (falling back on the default target for what it leaves
    /// out).
    pub(crate) fn target_from_spec(
        &self,
        spec: &ContextSpec,
        authority: &str,
    ) -> Result<Target, String> {
        let (host, explicit_port) = split_authority(authority);
        let mut target = if let Some(g) = &spec.gateway {
            let namespace = match &g.namespace {
                Some(ns) => ns.clone(),
                None => self
                    .gateways
                    .iter()
                    .find(|gw| !g.labels.is_empty() && gw.spec.selector == g.labels)
                    .map_or_else(
                        || "istio-system".to_owned(),
                        |gw| gw.metadata.namespace.clone(),
                    ),
            };
            Target {
                view: View::Gateway {
                    namespace,
                    labels: g.labels.clone(),
                },
                port: g.port.or(explicit_port).unwrap_or(80),
                tls: spec.tls,
                sni: None,
            }
        } else if let Some(m) = &spec.mesh {
            Target {
                view: View::Mesh {
                    namespace: m
                        .namespace
                        .clone()
                        .unwrap_or_else(|| self.default_namespace.clone()),
                    labels: m.labels.clone(),
                },
                port: m.port.or(explicit_port).unwrap_or(80),
                tls: spec.tls,
                sni: None,
            }
        } else {
            self.default_target(authority)?
        };
        if spec.tls {
            target.tls = true;
        }
        if spec.sni.is_some() {
            target.sni.clone_from(&spec.sni);
        } else if target.tls && target.sni.is_none() {
            target.sni = Some(host.to_ascii_lowercase());
        }
        Ok(target)
    }
}

/// A request for the simulation.
pub(crate) fn request(
    target: &Target,
    method: &str,
    authority: &str,
    uri: &str,
    headers: &[(String, String)],
) -> Request {
    let mut req = Request::http(target.port, authority, uri);
    method.clone_into(&mut req.method);
    if target.tls {
        req.protocol = Protocol::Https;
        req.sni.clone_from(&target.sni);
    }
    req.headers = headers.to_vec();
    req
}

/// Parses `[NS/]k=v,k=v` (gateway or mesh selector on the command line).
pub(crate) fn parse_selector(
    text: &str,
) -> Result<(Option<String>, BTreeMap<String, String>), String> {
    let (ns, labels) = match text.split_once('/') {
        Some((ns, rest)) => (Some(ns.to_owned()), rest),
        None if text.contains('=') => (None, text),
        None => (Some(text.to_owned()), ""),
    };
    let mut out = BTreeMap::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not a label KEY=VALUE"))?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok((ns, out))
}
