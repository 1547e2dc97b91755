//! The proxy being configured and the mesh-wide settings translation depends on.

use std::collections::BTreeMap;

/// What kind of proxy receives the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// A gateway (Istio's `router` node type).
    #[default]
    Gateway,
    /// A sidecar: the outbound `mesh` view of a client workload (route configurations per
    /// service port; see the crate documentation).
    Sidecar,
}

/// A Service selecting the gateway pod, and one of its ports: how a Gateway server port maps to
/// the port the proxy actually listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceTarget {
    /// The Service's host name (`istio-ingressgateway.istio-system.svc.cluster.local`).
    pub hostname: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service port.
    pub port: u32,
    /// The pod port traffic to `port` goes to.
    pub target_port: u32,
    /// The Service's labels (`experimental.istio.io/disable-gateway-port-translation`).
    pub service_labels: BTreeMap<String, String>,
}

impl ServiceTarget {
    /// Service `hostname` in `namespace`, whose `port` goes to the pod's `target_port`
    /// (no Service labels).
    ///
    /// ```
    /// use portcullis_translate::{Proxy, ServiceTarget};
    ///
    /// let proxy = Proxy::ingress_gateway().with_service_target(ServiceTarget::new(
    ///     "istio-ingressgateway.istio-system.svc.cluster.local",
    ///     "istio-system",
    ///     80,
    ///     8080,
    /// ));
    /// assert_eq!(proxy.service_targets[0].target_port, 8080);
    /// ```
    pub fn new(hostname: &str, namespace: &str, port: u32, target_port: u32) -> Self {
        Self {
            hostname: hostname.to_owned(),
            namespace: namespace.to_owned(),
            port,
            target_port,
            service_labels: BTreeMap::new(),
        }
    }
}

/// The proxy a plan is built for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Proxy {
    /// Gateway or sidecar.
    pub kind: ProxyKind,
    /// The namespace of the proxy's pod (visibility is evaluated against it).
    pub namespace: String,
    /// The pod's labels (Gateway `selector`, `sourceLabels`).
    pub labels: BTreeMap<String, String>,
    /// The Services selecting the pod, one entry per port.
    pub service_targets: Vec<ServiceTarget>,
    /// The proxy cannot bind ports below 1024 (they are skipped).
    pub unprivileged: bool,
}

impl Proxy {
    /// A gateway proxy in `namespace` with `labels`.
    pub fn gateway<'a>(
        namespace: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self {
            kind: ProxyKind::Gateway,
            namespace: namespace.to_owned(),
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            service_targets: Vec::new(),
            unprivileged: false,
        }
    }

    /// Istio's default ingress gateway: `istio: ingressgateway` in `istio-system`.
    pub fn ingress_gateway() -> Self {
        Self::gateway("istio-system", [("istio", "ingressgateway")])
    }

    /// A sidecar proxy of a client workload in `namespace` with `labels`: visibility,
    /// DestinationRule lookup and `sourceNamespace` use the namespace, `sourceLabels` the labels.
    pub fn sidecar<'a>(
        namespace: &str,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self {
            kind: ProxyKind::Sidecar,
            ..Self::gateway(namespace, labels)
        }
    }

    /// Adds a service target.
    #[must_use]
    pub fn with_service_target(mut self, target: ServiceTarget) -> Self {
        self.service_targets.push(target);
        self
    }

    /// Whether every `selector` label is on the proxy.
    pub(crate) fn matches_labels(&self, selector: &BTreeMap<String, String>) -> bool {
        selector
            .iter()
            .all(|(k, v)| self.labels.get(k).is_some_and(|l| l == v))
    }
}

/// Mesh-wide settings (Istio's MeshConfig and pilot flags) that change translation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeshSettings {
    /// The DNS suffix of Kubernetes services (`cluster.local`).
    pub domain_suffix: String,
    /// The root (config) namespace (`istio-system`).
    pub root_namespace: String,
    /// `enableAutoMtls` (default true).
    pub enable_auto_mtls: bool,
    /// `connectTimeout` in milliseconds (default 10 s).
    pub connect_timeout_ms: u64,
    /// `h2UpgradePolicy: UPGRADE` (default `DO_NOT_UPGRADE`): HTTP ports speak HTTP/2 to
    /// their endpoints unless a DestinationRule says otherwise.
    pub h2_upgrade: bool,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self {
            domain_suffix: "cluster.local".to_owned(),
            root_namespace: "istio-system".to_owned(),
            enable_auto_mtls: true,
            connect_timeout_ms: 10_000,
            h2_upgrade: false,
        }
    }
}
