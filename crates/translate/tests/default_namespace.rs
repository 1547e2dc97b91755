//! Objects applied without `metadata.namespace` live in `default`, as with `kubectl apply`: the
//! egress TLS-origination configuration of Istio's "Egress Gateways with TLS Origination" task,
//! copied without namespaces, originates TLS to port 443.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_model::destination_rule::ClientTlsMode;
use portcullis_model::{Loader, Object};
use portcullis_translate::{
    Config, MeshSettings, Proxy, ServiceRegistry, Simulation, UpstreamTls,
    simulate::{Outcome, Request},
    translate,
};

/// istio.io, tasks/traffic-management/egress/egress-gateway-tls-origination (corpus
/// `istio.io/…egress-gateway-tls-origination__index.md__L84`, `L123`, `L217`, `L298`), as
/// published: no namespaces.
const EGRESS_TLS_ORIGINATION: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: https-port-for-tls-origination
      protocol: HTTPS
    hosts:
    - edition.cnn.com
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: edition.cnn.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
spec:
  host: edition.cnn.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE # initiates HTTPS for connections to edition.cnn.com
";

fn objects(loader: &Loader) -> Vec<Object> {
    loader
        .load_str("egress.yaml", EGRESS_TLS_ORIGINATION)
        .unwrap()
        .documents()
        .iter()
        .map(|d| d.object.clone())
        .collect()
}

fn egress_gateway() -> Proxy {
    Proxy::gateway("istio-system", [("istio", "egressgateway")])
}

#[test]
fn egress_tls_origination_without_namespaces_originates_tls() {
    let objects = objects(&Loader::new());
    for object in &objects {
        assert_eq!(
            object.metadata().namespace,
            "default",
            "{:?}",
            object.kind()
        );
    }
    let mesh = MeshSettings::default();
    let registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
    let cnn = registry
        .services
        .iter()
        .find(|s| s.hostname == "edition.cnn.com")
        .unwrap();
    assert_eq!(cnn.namespace, "default");

    let plan = translate(
        &Config::from_objects(&objects),
        &registry,
        &egress_gateway(),
        &mesh,
    );
    // The gateway's route: edition.cnn.com:80 (ISTIO_MUTUAL from the sidecar) to port 443.
    let request = Request::http(80, "edition.cnn.com", "/politics").over_tls();
    let Outcome::Forward(forward) = Simulation::new(&plan).decide(&request).outcome else {
        panic!("not forwarded");
    };
    assert_eq!(forward.cluster, "outbound|443||edition.cnn.com");
    // The cluster originates TLS, as the DestinationRule (also in `default`) says.
    let cluster = &plan.clusters["outbound|443||edition.cnn.com"];
    match &cluster.policy.tls {
        UpstreamTls::Tls(tls) => assert_eq!(tls.mode, ClientTlsMode::Simple),
        other => panic!("plain text to port 443: {other:?}"),
    }
}

#[test]
fn the_default_namespace_is_the_loaders() {
    // In another default namespace the objects still find each other.
    let objects = objects(&Loader::new().with_default_namespace("egress"));
    let mesh = MeshSettings::default();
    let registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
    let plan = translate(
        &Config::from_objects(&objects),
        &registry,
        &egress_gateway(),
        &mesh,
    );
    let cluster = &plan.clusters["outbound|443||edition.cnn.com"];
    assert!(
        matches!(&cluster.policy.tls, UpstreamTls::Tls(tls) if tls.mode == ClientTlsMode::Simple),
        "{:?}",
        cluster.policy.tls
    );
}

#[test]
fn objects_built_without_a_namespace_are_in_default_too() {
    // Objects that did not come through the loader: the registry and the configuration both
    // place them in `default`.
    let objects = objects(&Loader::new().with_default_namespace(""));
    for object in &objects {
        assert_eq!(object.metadata().namespace, "");
    }
    let mesh = MeshSettings::default();
    let registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
    let plan = translate(
        &Config::from_objects(&objects),
        &registry,
        &egress_gateway(),
        &mesh,
    );
    let cluster = &plan.clusters["outbound|443||edition.cnn.com"];
    assert!(
        matches!(&cluster.policy.tls, UpstreamTls::Tls(tls) if tls.mode == ClientTlsMode::Simple),
        "{:?}",
        cluster.policy.tls
    );
}

#[test]
fn from_loaded_reads_the_objects_of_the_load() {
    let loaded = Loader::new()
        .load_str("egress.yaml", EGRESS_TLS_ORIGINATION)
        .unwrap();
    let objects = objects(&Loader::new());
    let mesh = MeshSettings::default();
    assert_eq!(Config::from_loaded(&loaded), Config::from_objects(&objects));
    assert_eq!(
        ServiceRegistry::from_loaded(&loaded, &mesh.domain_suffix),
        ServiceRegistry::from_objects(&objects, &mesh.domain_suffix)
    );
    assert!(!Config::from_loaded(&loaded).service_entries.is_empty());
}

/// Translating loaded objects in place gives the plan that copying them into a `Config`
/// gives, with or without namespaces.
#[test]
fn translating_objects_equals_translating_their_config() {
    let dump = |plan: &portcullis_translate::GatewayPlan| {
        let view = portcullis_translate::dump::View::new(
            plan.listeners.iter().collect(),
            plan.route_configs.values().collect(),
            plan.clusters.values().map(|c| (c, Vec::new())).collect(),
        );
        let diagnostics: Vec<String> = plan.diagnostics.iter().map(ToString::to_string).collect();
        (portcullis_translate::dump::json(&view, None), diagnostics)
    };
    for namespace in ["", "egress", "default"] {
        let objects = objects(&Loader::new().with_default_namespace(namespace));
        let mesh = MeshSettings::default();
        let registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
        for proxy in [egress_gateway(), Proxy::ingress_gateway()] {
            let copied = translate(&Config::from_objects(&objects), &registry, &proxy, &mesh);
            let in_place =
                portcullis_translate::translate_objects(&objects, &registry, &proxy, &mesh);
            assert_eq!(dump(&in_place), dump(&copied), "namespace {namespace:?}");
        }
        let copied = translate(
            &Config::from_objects(&objects),
            &registry,
            &egress_gateway(),
            &mesh,
        );
        assert!(!copied.route_configs.is_empty() && !copied.clusters.is_empty());
    }
}
