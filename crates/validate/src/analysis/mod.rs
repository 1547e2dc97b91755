//! Analysis of whole configurations: Istio's `istioctl analyze` analyzers for Gateway,
//! VirtualService, DestinationRule and ServiceEntry, and a shadowed-route analyzer of
//! Portcullis' own.
//!
//! Validation judges one resource at a time; analysis looks at a whole configuration: which
//! Services and Pods exist, which Gateways select the same workload, which routes can never be
//! used. A [`Config`] is built from one or more [`Loaded`] files (Istio resources, Services,
//! Pods, Secrets, and skipped kinds such as Nodes, Sidecars and RequestAuthentications), then
//! [`analyze`] runs the chosen [`Analyzer`]s and returns [`Message`]s with Istio's codes, levels
//! and texts (`analysis-messages.yaml`), each naming its resource and where it was written.
//!
//! ```
//! use portcullis_model::Loader;
//! use portcullis_validate::analysis::{Analyzer, Config, analyze};
//!
//! let loaded = Loader::new().load_str("gw.yaml", "
//! apiVersion: networking.istio.io/v1
//! kind: Gateway
//! metadata: {name: alpha, namespace: default}
//! spec:
//!   selector: {istio: ingressgateway}
//!   servers:
//!   - port: {number: 80, name: http, protocol: HTTP}
//!     hosts: [foo.bar]
//! ---
//! apiVersion: networking.istio.io/v1
//! kind: Gateway
//! metadata: {name: beta, namespace: default}
//! spec:
//!   selector: {istio: ingressgateway}
//!   servers:
//!   - port: {number: 80, name: http, protocol: HTTP}
//!     hosts: [foo.bar]
//! ")?;
//! let config = Config::from_loaded(&loaded).with_default_resources();
//! let found = analyze(&config, &[Analyzer::ConflictingGateway]);
//! assert_eq!(found.len(), 2);
//! assert_eq!(found[0].code, "IST0145");
//! assert_eq!(found[0].resource.to_string(), "Gateway default/alpha");
//! assert_eq!(found[0].line, Some(8)); // the conflicting server, `spec.servers[0]`
//! # Ok::<(), portcullis_model::LoadErrors>(())
//! ```
//!
//! # Portcullis' own codes
//!
//! Codes `PCS….` are Portcullis' and never collide with Istio's `IST….` codes:
//!
//! | code | name | level | meaning |
//! | --- | --- | --- | --- |
//! | PCS0001 | ShadowedRoute | Warning | at a gateway host, a route of one VirtualService can never match: a route merged before it (from another VirtualService) matches every request it could match |
//! | PCS0002 | ShadowedRouteInVirtualService | Warning | the same within one VirtualService, where Istio's IST0130/IST0131 do not already say so |
//!
//! See [`Analyzer::ShadowedRoutes`] for the rules.

mod conditions;
mod deprecation;
mod destination_rule;
mod gateway;
mod labels;
mod messages;
mod registry;
mod schema;
mod service_entry;
mod shadow;
mod store;
mod virtual_service;

use std::collections::BTreeMap;

use portcullis_model::{Document, Loaded, Loader, SkippedDocument};
use serde_json::Value;

pub use messages::{Level, Message, MessageType, ResourceRef, SourceRef};

/// The message catalogue: every [`MessageType`] analysis reports, Istio's and Portcullis' own.
pub mod catalogue {
    pub use super::messages::*;
}

/// The parts of Istio's MeshConfig that change analysis verdicts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeshConfig {
    /// `defaultConfig.proxyMetadata`: environment of every proxy (`ISTIO_META_DNS_CAPTURE`,
    /// `ISTIO_META_DNS_AUTO_ALLOCATE`, `PILOT_ENABLE_IP_AUTOALLOCATE`).
    pub proxy_metadata: BTreeMap<String, String>,
}

impl MeshConfig {
    /// Reads a MeshConfig document (as `istioctl analyze --meshConfigFile` takes it), keeping
    /// the fields analysis uses and ignoring the rest.
    pub fn from_value(value: &Value) -> Self {
        let proxy_metadata = value
            .get("defaultConfig")
            .and_then(|d| d.get("proxyMetadata"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { proxy_metadata }
    }

    /// Whether proxies capture DNS and allocate addresses themselves, so ServiceEntries need no
    /// addresses.
    pub(crate) fn dns_auto_allocates(&self) -> bool {
        let on = |key: &str| {
            self.proxy_metadata
                .get(key)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        on("ISTIO_META_DNS_CAPTURE")
            && (on("ISTIO_META_DNS_AUTO_ALLOCATE") || on("PILOT_ENABLE_IP_AUTOALLOCATE"))
    }
}

/// Istio's default ingress resources (`pkg/config/analysis/local/defaults.go`), which
/// `istioctl analyze` adds because the default MeshConfig has `ingressControllerMode: STRICT`.
const DEFAULT_RESOURCES: &str = "
apiVersion: v1
kind: Pod
metadata:
  labels:
    istio: ingressgateway
  name: istio-ingressgateway-dummypod
  namespace: istio-system
spec:
  containers:
  - name: istio-proxy
---
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
spec:
  ports:
  - {name: http2, nodePort: 31380, port: 80, protocol: TCP, targetPort: 80}
  - {name: https, nodePort: 31390, port: 443, protocol: TCP, targetPort: 443}
  - {name: tcp, nodePort: 31400, port: 31400, protocol: TCP, targetPort: 31400}
  - {name: tls, nodePort: 31447, port: 15443, protocol: TCP, targetPort: 15443}
  selector:
    istio: ingressgateway
";

/// The file name given to the built-in default resources.
pub const DEFAULT_RESOURCES_FILE: &str = "<istio default resources>";

/// A whole configuration to analyse: documents, the documents of other kinds, and the
/// environment (MeshConfig, the current time).
#[derive(Clone, Debug)]
pub struct Config {
    documents: Vec<Document>,
    skipped: Vec<SkippedDocument>,
    mesh: MeshConfig,
    now: Option<i64>,
    workloads_known: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            documents: Vec::new(),
            skipped: Vec::new(),
            mesh: MeshConfig::default(),
            now: None,
            workloads_known: true,
        }
    }
}

impl Config {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The documents (and skipped documents) of one load.
    pub fn from_loaded(loaded: &Loaded) -> Self {
        let mut config = Self::new();
        config.add(loaded);
        config
    }

    /// Adds the documents (and skipped documents) of another load, after those already held.
    pub fn add(&mut self, loaded: &Loaded) {
        self.documents.extend(loaded.documents().iter().cloned());
        self.skipped.extend(loaded.skipped().iter().cloned());
    }

    /// Adds one document.
    pub fn add_document(&mut self, document: Document) {
        self.documents.push(document);
    }

    /// Adds Istio's default ingress resources, as `istioctl analyze` does: a Pod
    /// `istio-ingressgateway-dummypod` labelled `istio: ingressgateway` and its Service
    /// `istio-ingressgateway` (ports 80, 443, 31400, 15443), both in `istio-system`.
    #[must_use]
    pub fn with_default_resources(mut self) -> Self {
        let loaded = Loader::new().read_str(DEFAULT_RESOURCES_FILE, DEFAULT_RESOURCES);
        self.add(&loaded);
        self
    }

    /// With this MeshConfig (default: Istio's defaults).
    #[must_use]
    pub fn with_mesh_config(mut self, mesh: MeshConfig) -> Self {
        self.mesh = mesh;
        self
    }

    /// The MeshConfig.
    pub fn mesh_config(&self) -> &MeshConfig {
        &self.mesh
    }

    /// With "now" fixed (seconds since the Unix epoch) for certificate validity checks;
    /// default: the system clock.
    #[must_use]
    pub fn with_now(mut self, unix_seconds: i64) -> Self {
        self.now = Some(unix_seconds);
        self
    }

    /// Declares whether the configuration lists the cluster's workloads (Pods). When it does
    /// not (`istioctl analyze --use-kube=false` on files without Pods), the analyzers that judge
    /// workload selection — gateway.IngressGatewayPortAnalyzer, gateway.SecretAnalyzer,
    /// virtualservice.JWTClaimRouteAnalyzer, destinationrule.SubsetSelectPodAnalyzer — are
    /// skipped. Default: `true`.
    #[must_use]
    pub fn with_workloads_known(mut self, known: bool) -> Self {
        self.workloads_known = known;
        self
    }

    /// The documents.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The documents of kinds the model does not type (Nodes, Sidecars, …).
    pub fn skipped(&self) -> &[SkippedDocument] {
        &self.skipped
    }

    pub(crate) fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }
}

/// The kinds `schema.ValidationAnalyzer` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SchemaKind {
    /// `schema.ValidationAnalyzer.Gateway`
    Gateway,
    /// `schema.ValidationAnalyzer.VirtualService`
    VirtualService,
    /// `schema.ValidationAnalyzer.DestinationRule`
    DestinationRule,
    /// `schema.ValidationAnalyzer.ServiceEntry`
    ServiceEntry,
}

/// One analyzer, named as Istio names it (see [`Analyzer::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Analyzer {
    /// `gateway.IngressGatewayPortAnalyzer`: Gateway ports against the Services of the
    /// selected pods (IST0101, IST0162).
    IngressGatewayPort,
    /// `gateway.ConflictingGatewayAnalyzer`: Gateways on one workload, port and host (IST0145,
    /// IST0101).
    ConflictingGateway,
    /// `gateway.CertificateAnalyzer`: one certificate served by several Gateways (IST0138).
    GatewayCertificate,
    /// `gateway.SecretAnalyzer`: Secrets named by `credentialName` (IST0101, IST0161).
    GatewaySecret,
    /// `virtualservice.ConflictingMeshGatewayHostsAnalyzer` (IST0109).
    ConflictingMeshGatewayHosts,
    /// `virtualservice.DestinationHostAnalyzer` (IST0101, IST0112, IST0140).
    DestinationHost,
    /// `virtualservice.DestinationRuleAnalyzer`: referenced subsets exist (IST0101).
    VirtualServiceDestinationRule,
    /// `virtualservice.GatewayAnalyzer`: referenced Gateways exist and serve the hosts
    /// (IST0101, IST0132, IST0165).
    VirtualServiceGateway,
    /// `virtualservice.JWTClaimRouteAnalyzer` (IST0149).
    JwtClaimRoute,
    /// `destinationrule.CaCertificateAnalyzer` (IST0128, IST0129).
    CaCertificate,
    /// `destinationrule.SubsetSelectPodAnalyzer` (IST0173, IST0174).
    SubsetSelectPod,
    /// `serviceentry.Analyzer`: addresses for TCP ports (IST0134).
    ServiceEntryAddresses,
    /// `serviceentry.ConflictingServiceEntryProtocolAnalyzer` (IST0177).
    ConflictingServiceEntryProtocol,
    /// `schema.ValidationAnalyzer.<Kind>`: validation errors and warnings (IST0106, IST0133,
    /// IST0130, IST0131).
    Schema(SchemaKind),
    /// `deprecation.DeprecationAnalyzer` (IST0002).
    Deprecation,
    /// `conditions.ConditionAnalyzer` (IST0171).
    Condition,
    /// `portcullis.ShadowedRouteAnalyzer` (PCS0001, PCS0002): routes that can never match.
    ///
    /// At a gateway, the routes of every VirtualService bound to a Gateway server and
    /// sharing a host are merged in VirtualService order (creation time, name, namespace), and
    /// catch-all routes are moved last (keeping their order). A route is reported when an
    /// earlier route of that table matches every request it could match: an earlier
    /// catch-all; an earlier `prefix: /api` with no more conditions than a later `prefix:
    /// /api/v1`; an identical earlier match. Conditions this analysis cannot decide (regexes
    /// other than equal ones, `sourceLabels`) never make a report. Within one VirtualService
    /// (also for sidecars) only what IST0130/IST0131 do not already say is reported.
    ShadowedRoutes,
}

impl Analyzer {
    /// Every analyzer, Istio's in the order of its registry, then Portcullis' own.
    pub const ALL: &'static [Self] = &[
        Self::Condition,
        Self::Deprecation,
        Self::CaCertificate,
        Self::SubsetSelectPod,
        Self::GatewayCertificate,
        Self::ConflictingGateway,
        Self::IngressGatewayPort,
        Self::GatewaySecret,
        Self::Schema(SchemaKind::DestinationRule),
        Self::Schema(SchemaKind::Gateway),
        Self::Schema(SchemaKind::ServiceEntry),
        Self::Schema(SchemaKind::VirtualService),
        Self::ServiceEntryAddresses,
        Self::ConflictingServiceEntryProtocol,
        Self::ConflictingMeshGatewayHosts,
        Self::DestinationHost,
        Self::VirtualServiceDestinationRule,
        Self::VirtualServiceGateway,
        Self::JwtClaimRoute,
        Self::ShadowedRoutes,
    ];

    /// Istio's name for the analyzer (`gateway.ConflictingGatewayAnalyzer`).
    pub fn name(self) -> &'static str {
        match self {
            Self::IngressGatewayPort => "gateway.IngressGatewayPortAnalyzer",
            Self::ConflictingGateway => "gateway.ConflictingGatewayAnalyzer",
            Self::GatewayCertificate => "gateway.CertificateAnalyzer",
            Self::GatewaySecret => "gateway.SecretAnalyzer",
            Self::ConflictingMeshGatewayHosts => {
                "virtualservice.ConflictingMeshGatewayHostsAnalyzer"
            }
            Self::DestinationHost => "virtualservice.DestinationHostAnalyzer",
            Self::VirtualServiceDestinationRule => "virtualservice.DestinationRuleAnalyzer",
            Self::VirtualServiceGateway => "virtualservice.GatewayAnalyzer",
            Self::JwtClaimRoute => "virtualservice.JWTClaimRouteAnalyzer",
            Self::CaCertificate => "destinationrule.CaCertificateAnalyzer",
            Self::SubsetSelectPod => "destinationrule.SubsetSelectPodAnalyzer",
            Self::ServiceEntryAddresses => "serviceentry.Analyzer",
            Self::ConflictingServiceEntryProtocol => {
                "serviceentry.ConflictingServiceEntryProtocolAnalyzer"
            }
            Self::Schema(SchemaKind::Gateway) => "schema.ValidationAnalyzer.Gateway",
            Self::Schema(SchemaKind::VirtualService) => "schema.ValidationAnalyzer.VirtualService",
            Self::Schema(SchemaKind::DestinationRule) => {
                "schema.ValidationAnalyzer.DestinationRule"
            }
            Self::Schema(SchemaKind::ServiceEntry) => "schema.ValidationAnalyzer.ServiceEntry",
            Self::Deprecation => "deprecation.DeprecationAnalyzer",
            Self::Condition => "conditions.ConditionAnalyzer",
            Self::ShadowedRoutes => "portcullis.ShadowedRouteAnalyzer",
        }
    }

    /// The analyzer with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Whether the analyzer judges workload (Pod) selection.
    fn needs_workloads(self) -> bool {
        matches!(
            self,
            Self::IngressGatewayPort
                | Self::GatewaySecret
                | Self::JwtClaimRoute
                | Self::SubsetSelectPod
        )
    }
}

impl core::fmt::Display for Analyzer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `analyzers` (each once, in the order given) over the configuration and returns what they
/// report, analyzer by analyzer. A message another analyzer already reported (the same code,
/// resource and text) is reported once.
pub fn analyze(config: &Config, analyzers: &[Analyzer]) -> Vec<Message> {
    let mut ctx = store::Ctx::new(config);
    let mut seen = Vec::new();
    for &analyzer in analyzers {
        if seen.contains(&analyzer) {
            continue;
        }
        seen.push(analyzer);
        if analyzer.needs_workloads() && !config.workloads_known {
            continue;
        }
        ctx.analyzer = analyzer.name();
        match analyzer {
            Analyzer::IngressGatewayPort => gateway::ingress_gateway_port(&mut ctx),
            Analyzer::ConflictingGateway => gateway::conflicting_gateways(&mut ctx),
            Analyzer::GatewayCertificate => gateway::duplicate_certificates(&mut ctx),
            Analyzer::GatewaySecret => gateway::secrets(&mut ctx),
            Analyzer::ConflictingMeshGatewayHosts => {
                virtual_service::conflicting_mesh_gateway_hosts(&mut ctx);
            }
            Analyzer::DestinationHost => virtual_service::destination_hosts(&mut ctx),
            Analyzer::VirtualServiceDestinationRule => {
                virtual_service::destination_rules(&mut ctx);
            }
            Analyzer::VirtualServiceGateway => virtual_service::gateways(&mut ctx),
            Analyzer::JwtClaimRoute => virtual_service::jwt_claim_routes(&mut ctx),
            Analyzer::CaCertificate => destination_rule::ca_certificates(&mut ctx),
            Analyzer::SubsetSelectPod => destination_rule::subsets_select_pods(&mut ctx),
            Analyzer::ServiceEntryAddresses => service_entry::addresses(&mut ctx),
            Analyzer::ConflictingServiceEntryProtocol => {
                service_entry::conflicting_protocols(&mut ctx);
            }
            Analyzer::Schema(kind) => schema::validate(&mut ctx, kind),
            Analyzer::Deprecation => deprecation::deprecations(&mut ctx),
            Analyzer::Condition => conditions::negative_conditions(&mut ctx),
            Analyzer::ShadowedRoutes => shadow::shadowed_routes(&mut ctx),
        }
    }
    ctx.finish()
}

/// Runs every analyzer ([`Analyzer::ALL`]).
pub fn analyze_all(config: &Config) -> Vec<Message> {
    analyze(config, Analyzer::ALL)
}
