//! The service registry: the services a proxy can route to, with their ports and endpoints.
//!
//! Build it from Kubernetes `Service`s and `ServiceEntry`s ([`ServiceRegistry::from_objects`],
//! [`ServiceRegistry::add_service_entry`]) or directly ([`ServiceRegistry::push`]).

use std::collections::{BTreeMap, HashMap};

use portcullis_model::kube::{IntOrString, Service as KubeService};
use portcullis_model::service_entry::{
    ServiceEntryLocation, ServiceEntryResolution, WorkloadEntry,
};
use portcullis_model::{DEFAULT_NAMESPACE, Loaded, Object, ServiceEntry};

use portcullis_model::host::resolve_short_name;

/// How a service's endpoints are found, which decides the cluster type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resolution {
    /// Known endpoint addresses (Kubernetes services, `STATIC` ServiceEntries): an EDS cluster.
    #[default]
    Static,
    /// `DNS`: a `STRICT_DNS` cluster.
    Dns,
    /// `DNS_ROUND_ROBIN`: a `LOGICAL_DNS` cluster.
    DnsRoundRobin,
    /// `NONE`: original destination on sidecars, EDS on gateways.
    Passthrough,
    /// `DYNAMIC_DNS`: a dynamic forward proxy cluster.
    DynamicDns,
}

/// One port of a [`Service`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServicePort {
    /// The service port number.
    pub number: u32,
    /// The port name.
    pub name: String,
    /// The protocol (`HTTP`, `HTTPS`, `TCP`, `GRPC`, …) as written or derived from the name.
    pub protocol: String,
    /// The endpoint port, when it differs from `number` (a numeric Kubernetes `targetPort`,
    /// a ServiceEntry `targetPort`).
    pub target_port: Option<u32>,
}

impl ServicePort {
    /// Port `number` named `name` speaking `protocol`, to the same endpoint port.
    pub fn new(number: u32, name: &str, protocol: &str) -> Self {
        Self {
            number,
            name: name.to_owned(),
            protocol: protocol.to_owned(),
            target_port: None,
        }
    }
}

/// One endpoint (an instance) of a [`Service`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoint {
    /// The address: an IP, a host name (DNS resolution) or a Unix socket path.
    pub address: String,
    /// Per-port-name endpoint ports, overriding the service port's target port.
    pub ports: BTreeMap<String, u32>,
    /// The endpoint's labels (subset selection, `security.istio.io/tlsMode`).
    pub labels: BTreeMap<String, String>,
    /// The endpoint's service account, if known.
    pub service_account: String,
}

impl Endpoint {
    /// An endpoint at `address` with `labels`.
    pub fn new(address: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        Self {
            address: address.into(),
            labels,
            ..Self::default()
        }
    }
}

/// A service in the registry (Istio's `model.Service` with its instances).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Service {
    /// The fully qualified host name (`reviews.default.svc.cluster.local`, `api.example.com`).
    pub hostname: String,
    /// The namespace the service (or ServiceEntry) lives in.
    pub namespace: String,
    /// The ports.
    pub ports: Vec<ServicePort>,
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
    /// How endpoints are resolved.
    pub resolution: Resolution,
    /// `MESH_EXTERNAL` ServiceEntry: no auto mTLS.
    pub mesh_external: bool,
    /// The namespaces the service is visible to; empty means everywhere.
    pub export_to: Vec<String>,
    /// The labels of the Service object (for gateway service targets).
    pub labels: BTreeMap<String, String>,
    /// For Kubernetes `ExternalName` services, the aliased name routes go to.
    pub external_name: Option<String>,
    /// Service accounts (SPIFFE identities) of the service, for ISTIO_MUTUAL SAN checks.
    pub service_accounts: Vec<String>,
}

impl Service {
    /// A Kubernetes-style service `hostname` in `namespace` with `ports` and no endpoints.
    pub fn new(hostname: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            namespace: namespace.into(),
            ..Self::default()
        }
    }

    /// Adds a port.
    #[must_use]
    pub fn with_port(mut self, number: u32, name: &str, protocol: &str) -> Self {
        self.ports.push(ServicePort {
            number,
            name: name.to_owned(),
            protocol: protocol.to_owned(),
            target_port: None,
        });
        self
    }

    /// Adds an endpoint.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// The port with this number.
    pub fn port(&self, number: u32) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// Whether the service is visible from `namespace`.
    pub fn visible_to(&self, namespace: &str) -> bool {
        exported_to(&self.export_to, &self.namespace, namespace)
    }
}

/// Whether an `exportTo` list (empty = everywhere) lets a resource in `own` be seen from
/// `viewer`.
pub(crate) fn exported_to(export_to: &[String], own: &str, viewer: &str) -> bool {
    if export_to.is_empty() {
        return true;
    }
    export_to.iter().any(|e| match e.as_str() {
        "*" => true,
        "." => own == viewer,
        "~" => false,
        ns => ns == viewer,
    })
}

/// The services known to the control plane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRegistry {
    /// The services, in insertion order. Several entries may share a host name (the first
    /// visible one is used).
    pub services: Vec<Service>,
}

impl ServiceRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service.
    pub fn push(&mut self, service: Service) {
        self.services.push(service);
    }

    /// Builds a registry from the documents of one load, as [`ServiceRegistry::from_objects`]
    /// does from their objects.
    pub fn from_loaded(loaded: &Loaded, domain_suffix: &str) -> Self {
        Self::from_objects(loaded.documents().iter().map(|d| &d.object), domain_suffix)
    }

    /// Builds a registry from objects: every Kubernetes `Service` and every
    /// `ServiceEntry` (other kinds are ignored). Pods are not read: Kubernetes services get no
    /// endpoints unless added with [`ServiceRegistry::push`].
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a Object>,
        domain_suffix: &str,
    ) -> Self {
        let mut registry = Self::new();
        for object in objects {
            match object {
                Object::Service(svc) => registry.add_kube_service(svc, domain_suffix),
                Object::ServiceEntry(se) => {
                    registry.add_service_entry(
                        &se.spec,
                        namespace_or_default(&se.metadata.namespace),
                        domain_suffix,
                    );
                }
                _ => {}
            }
        }
        registry
    }

    /// Adds a Kubernetes `Service` as `<name>.<namespace>.svc.<domain_suffix>`.
    pub fn add_kube_service(&mut self, svc: &KubeService, domain_suffix: &str) {
        let namespace = namespace_or_default(&svc.metadata.namespace);
        let mut service = Service::new(
            format!("{}.{namespace}.svc.{domain_suffix}", svc.metadata.name),
            namespace,
        );
        service.labels = svc.metadata.labels.clone();
        for p in &svc.spec.ports {
            let protocol = p
                .app_protocol
                .clone()
                .unwrap_or_else(|| protocol_from_port_name(&p.name).to_owned());
            let target_port = match &p.target_port {
                Some(IntOrString::Int(n)) => u32::try_from(*n).ok(),
                _ => None,
            };
            service.ports.push(ServicePort {
                number: u32::try_from(p.port).unwrap_or(0),
                name: p.name.clone(),
                protocol,
                target_port,
            });
        }
        if svc.spec.service_type == "ExternalName" && !svc.spec.external_name.is_empty() {
            service.external_name = Some(svc.spec.external_name.clone());
            service.resolution = Resolution::Dns;
        }
        if let Some(export) = svc.metadata.annotations.get("networking.istio.io/exportTo") {
            service.export_to = export.split(',').map(|s| s.trim().to_owned()).collect();
        }
        self.push(service);
    }

    /// Adds a `ServiceEntry` in `namespace`: one service per host, sharing ports, endpoints
    /// and settings (`convertServices`, `convertServiceEntryToInstances`).
    pub fn add_service_entry(&mut self, se: &ServiceEntry, namespace: &str, domain_suffix: &str) {
        let resolution = match se.resolution.unwrap_or_default() {
            ServiceEntryResolution::Static => Resolution::Static,
            ServiceEntryResolution::Dns => Resolution::Dns,
            ServiceEntryResolution::DnsRoundRobin => Resolution::DnsRoundRobin,
            ServiceEntryResolution::DynamicDns => Resolution::DynamicDns,
            _ => Resolution::Passthrough,
        };
        let mesh_external = !matches!(
            se.location.unwrap_or_default(),
            ServiceEntryLocation::MeshInternal
        );
        let ports: Vec<ServicePort> = se
            .ports
            .iter()
            .map(|p| ServicePort {
                number: p.number,
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                target_port: (p.target_port != 0).then_some(p.target_port),
            })
            .collect();
        for host in &se.hosts {
            let hostname = resolve_short_name(host, namespace, domain_suffix);
            let mut endpoints: Vec<Endpoint> = se.endpoints.iter().map(convert_workload).collect();
            if endpoints.is_empty()
                && se.workload_selector.is_none()
                && matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
            {
                endpoints.push(Endpoint::new(hostname.clone(), BTreeMap::new()));
            }
            self.push(Service {
                hostname,
                namespace: namespace.to_owned(),
                ports: ports.clone(),
                endpoints,
                resolution,
                mesh_external,
                export_to: se.export_to.clone(),
                labels: BTreeMap::new(),
                external_name: None,
                service_accounts: se.subject_alt_names.clone(),
            });
        }
    }

    /// The service for `hostname` visible from `namespace`: first one in `preferred_namespace`,
    /// else the first visible one.
    pub fn lookup(
        &self,
        hostname: &str,
        viewer_namespace: &str,
        preferred_namespace: Option<&str>,
    ) -> Option<&Service> {
        let mut candidates = self
            .services
            .iter()
            .filter(|s| s.hostname == hostname && s.visible_to(viewer_namespace));
        if let Some(ns) = preferred_namespace
            && let Some(s) = self
                .services
                .iter()
                .find(|s| s.hostname == hostname && s.namespace == ns)
        {
            return Some(s);
        }
        candidates.next()
    }
}

fn convert_workload(we: &WorkloadEntry) -> Endpoint {
    let mut labels = we.labels.clone();
    if !labels.contains_key(TLS_MODE_LABEL) && !we.service_account.is_empty() {
        labels.insert(TLS_MODE_LABEL.to_owned(), "istio".to_owned());
    }
    Endpoint {
        address: we.address.clone(),
        ports: we.ports.clone(),
        labels,
        service_account: we.service_account.clone(),
    }
}

/// The label carrying an endpoint's TLS mode (`istio` = it accepts Istio mTLS).
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// Istio's protocol sniffing by port name prefix (`http-web` → HTTP).
pub(crate) fn protocol_from_port_name(name: &str) -> &'static str {
    let prefix = name.split('-').next().unwrap_or("").to_ascii_lowercase();
    match prefix.as_str() {
        "http" => "HTTP",
        "http2" => "HTTP2",
        "https" => "HTTPS",
        "grpc" => "GRPC",
        "grpc-web" => "GRPC-Web",
        "tls" => "TLS",
        "mongo" => "Mongo",
        "redis" => "Redis",
        "mysql" => "MySQL",
        "tcp" => "TCP",
        _ => "UnsupportedProtocol",
    }
}

/// The namespace of an object: the one it names, or [`DEFAULT_NAMESPACE`] for an object built in
/// code without one (the [`Loader`](portcullis_model::Loader) fills it in for loaded objects).
fn namespace_or_default(namespace: &str) -> &str {
    if namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        namespace
    }
}

/// The services a sidecar in `client_ns` sees (`SidecarScope` without a `Sidecar` resource):
/// those visible from its namespace, one per host name (the one in the client's namespace,
/// else the first), as indices into `registry`.
pub(crate) fn client_services(registry: &ServiceRegistry, client_ns: &str) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut by_host: HashMap<&str, usize> = HashMap::new();
    for (i, svc) in registry.services.iter().enumerate() {
        if !svc.visible_to(client_ns) {
            continue;
        }
        match by_host.get(svc.hostname.as_str()) {
            Some(&slot) => {
                let Some(j) = out.get_mut(slot) else { continue };
                let theirs = registry.services.get(*j).map(|s| s.namespace.as_str());
                if svc.namespace == client_ns && theirs != Some(client_ns) {
                    *j = i;
                }
            }
            None => {
                by_host.insert(&svc.hostname, out.len());
                out.push(i);
            }
        }
    }
    out
}
