//! Analysis: shadowed routes and a few of Istio's analyzer rules.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_model::Loader;
use portcullis_validate::analysis::{Analyzer, Config, Level, MeshConfig, analyze};

fn config(yaml: &str) -> Config {
    let loaded = Loader::new().load_str("test.yaml", yaml).unwrap();
    Config::from_loaded(&loaded).with_default_resources()
}

fn keys(config: &Config, analyzer: Analyzer) -> Vec<(String, String)> {
    let mut found: Vec<_> = analyze(config, &[analyzer])
        .into_iter()
        .map(|m| (m.code.to_owned(), m.resource.to_string()))
        .collect();
    found.sort();
    found
}

const GATEWAY: &str = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*/example.com']
";

fn vs(name: &str, ns: &str, http: &str) -> String {
    format!(
        "---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [example.com]
  gateways: [istio-system/gw]
  http:
{http}"
    )
}

#[test]
fn catch_all_of_an_earlier_virtual_service_shadows_a_later_catch_all() {
    let yaml = format!(
        "{GATEWAY}{}{}",
        vs("a", "default", "  - route: [{destination: {host: one}}]\n"),
        vs("b", "default", "  - route: [{destination: {host: two}}]\n"),
    );
    let found = analyze(&config(&yaml), &[Analyzer::ShadowedRoutes]);
    assert_eq!(found.len(), 1, "{found:?}");
    let m = &found[0];
    assert_eq!(m.code, "PCS0001");
    assert_eq!(m.level, Level::Warning);
    assert_eq!(m.resource.to_string(), "VirtualService default/b");
    assert_eq!(m.related.len(), 2);
    assert!(m.text.contains("VirtualService default/a"), "{}", m.text);
    assert!(m.related.iter().all(|r| r.line.is_some()));
}

#[test]
fn catch_all_moves_last_so_a_newer_specific_route_is_not_shadowed() {
    let yaml = format!(
        "{GATEWAY}{}{}",
        vs("a", "default", "  - route: [{destination: {host: one}}]\n"),
        vs(
            "b",
            "default",
            "  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: two}}]\n"
        ),
    );
    assert!(analyze(&config(&yaml), &[Analyzer::ShadowedRoutes]).is_empty());
}

#[test]
fn earlier_prefix_with_fewer_conditions_shadows_a_longer_prefix() {
    let yaml = format!(
        "{GATEWAY}{}{}",
        vs(
            "a",
            "default",
            "  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: one}}]\n"
        ),
        vs(
            "b",
            "default",
            "  - match: [{uri: {prefix: /api/v1}, headers: {x-user: {exact: bob}}}]\n    route: [{destination: {host: two}}]\n"
        ),
    );
    let found = keys(&config(&yaml), Analyzer::ShadowedRoutes);
    assert_eq!(
        found,
        [("PCS0001".into(), "VirtualService default/b".into())]
    );
}

#[test]
fn an_earlier_route_with_more_conditions_does_not_shadow() {
    let yaml = format!(
        "{GATEWAY}{}{}",
        vs(
            "a",
            "default",
            "  - match: [{uri: {prefix: /api}, method: {exact: GET}}]\n    route: [{destination: {host: one}}]\n"
        ),
        vs(
            "b",
            "default",
            "  - match: [{uri: {prefix: /api/v1}}]\n    route: [{destination: {host: two}}]\n"
        ),
    );
    assert!(analyze(&config(&yaml), &[Analyzer::ShadowedRoutes]).is_empty());
}

#[test]
fn different_hosts_and_different_ports_do_not_merge() {
    let yaml = format!(
        "{GATEWAY}{}{}",
        vs(
            "a",
            "default",
            "  - match: [{uri: {prefix: /}, port: 8080}]\n    route: [{destination: {host: one}}]\n"
        ),
        vs("b", "default", "  - route: [{destination: {host: two}}]\n"),
    );
    assert!(analyze(&config(&yaml), &[Analyzer::ShadowedRoutes]).is_empty());
}

#[test]
fn identical_action_is_not_reported() {
    let yaml = format!(
        "{GATEWAY}{}{}",
        vs("a", "default", "  - route: [{destination: {host: one}}]\n"),
        vs("b", "default", "  - route: [{destination: {host: one}}]\n"),
    );
    assert!(analyze(&config(&yaml), &[Analyzer::ShadowedRoutes]).is_empty());
}

#[test]
fn within_one_virtual_service_only_what_istio_misses() {
    // Istio's overlap check (IST0131) treats an unset method as GET, so it misses a prefix
    // covering a later POST route: reported as PCS0002. A duplicate match is IST0131's.
    let yaml = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: default}
spec:
  hosts: [r]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: one}}]
  - match: [{uri: {prefix: /api/v1}, method: {exact: POST}}]
    route: [{destination: {host: two}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: three}}]
";
    let config = config(yaml);
    let found = keys(&config, Analyzer::ShadowedRoutes);
    assert_eq!(
        found,
        [("PCS0002".into(), "VirtualService default/r".into())]
    );
    let schema = keys(
        &config,
        Analyzer::Schema(portcullis_validate::analysis::SchemaKind::VirtualService),
    );
    assert!(schema.iter().any(|(c, _)| c == "IST0130"), "{schema:?}");
    assert!(schema.iter().any(|(c, _)| c == "IST0131"), "{schema:?}");
}

#[test]
fn conflicting_gateways_report_both() {
    let yaml = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [foo.bar]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [foo.bar], bind: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: c}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [foo.bar]}]
";
    let found = keys(&config(yaml), Analyzer::ConflictingGateway);
    assert_eq!(
        found,
        [
            ("IST0145".into(), "Gateway default/a".into()),
            ("IST0145".into(), "Gateway default/c".into())
        ]
    );
}

#[test]
fn gateway_port_must_be_on_the_service() {
    let yaml = "
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: g}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}
  - {port: {number: 8004, name: http2, protocol: HTTP}, hosts: ['*']}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: typo}
spec:
  selector: {istio: ingresstypo}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
";
    let found = analyze(&config(yaml), &[Analyzer::IngressGatewayPort]);
    let codes: Vec<_> = found
        .iter()
        .map(|m| (m.code, m.resource.name.as_str()))
        .collect();
    assert_eq!(codes, [("IST0162", "g"), ("IST0101", "typo")]);
    assert!(found[0].text.contains("port 8004"), "{}", found[0].text);
    assert_eq!(
        found[1].text,
        "Referenced selector not found: \"istio=ingresstypo\""
    );
}

#[test]
fn destination_hosts_use_the_registry() {
    let yaml = "
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{port: 80}, {port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ok, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, port: {number: 80}}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: noport, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: short-form, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews.default, port: {number: 80}}}]}]
";
    let found = keys(&config(yaml), Analyzer::DestinationHost);
    assert_eq!(
        found,
        [
            ("IST0101".into(), "VirtualService default/short-form".into()),
            ("IST0112".into(), "VirtualService default/noport".into()),
        ]
    );
}

#[test]
fn service_entry_addresses_and_mesh_config() {
    let yaml = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: tcp}, {number: 80, name: http, protocol: HTTP}]
";
    let config = config(yaml);
    assert_eq!(
        keys(&config, Analyzer::ServiceEntryAddresses),
        [("IST0134".into(), "ServiceEntry default/se".into())]
    );
    let config = config.with_mesh_config(MeshConfig::from_value(&serde_json::json!({
        "defaultConfig": {"proxyMetadata": {
            "ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"}}
    })));
    assert!(keys(&config, Analyzer::ServiceEntryAddresses).is_empty());
}

#[test]
fn analyzer_names_round_trip() {
    for a in Analyzer::ALL {
        assert_eq!(Analyzer::from_name(a.name()), Some(*a));
    }
    assert_eq!(
        Analyzer::from_name("gateway.ConflictingGatewayAnalyzer"),
        Some(Analyzer::ConflictingGateway)
    );
}

/// Istio's egress TLS-origination task (the egress gateway's part) as published: no namespaces.
const EGRESS_WITHOUT_NAMESPACES: &str = "
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn}
spec:
  hosts: [edition.cnn.com]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: https, protocol: HTTPS}
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: https-port-for-tls-origination, protocol: HTTPS}
    hosts: [edition.cnn.com]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-cnn-through-egress-gateway}
spec:
  hosts: [edition.cnn.com]
  gateways: [istio-egressgateway]
  http:
  - match:
    - {gateways: [istio-egressgateway], port: 80}
    route:
    - destination: {host: edition.cnn.com, port: {number: 443}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: originate-tls-for-edition-cnn-com}
spec:
  host: edition.cnn.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE}
";

#[test]
fn documents_without_a_namespace_are_analysed_in_default() {
    let config = config(EGRESS_WITHOUT_NAMESPACES);
    let found = portcullis_validate::analysis::analyze_all(&config);
    let keys: Vec<String> = found
        .iter()
        .map(|m| format!("{} {}", m.code, m.resource))
        .collect();
    // The VirtualService's short gateway name resolves in its namespace, `default`, where the
    // Gateway is; its destination is the ServiceEntry's host, also in `default`.
    assert!(
        !found.iter().any(|m| m.name == "ReferencedResourceNotFound"),
        "{keys:?}"
    );
    // Messages name the objects in `default`.
    assert!(
        keys.contains(
            &"IST0129 DestinationRule default/originate-tls-for-edition-cnn-com".to_owned()
        ),
        "{keys:?}"
    );
    for message in &found {
        assert!(
            message.resource.namespace == "default" || message.resource.namespace == "istio-system",
            "{message}"
        );
    }
}

#[test]
fn documents_without_a_namespace_are_validated_in_the_loaders_default_namespace() {
    use portcullis_validate::{Context, validate_document_with};
    // A `configmap://` CA must be in the DestinationRule's own namespace.
    let text = "
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cnn}
spec:
  host: edition.cnn.com
  trafficPolicy:
    tls: {mode: SIMPLE, credentialName: 'configmap://default/cnn-ca'}
";
    let validate = |loader: Loader| {
        let loaded = loader.load_str("dr.yaml", text).unwrap();
        validate_document_with(&loaded.documents()[0].object, &Context::default())
    };
    let diagnostics = validate(Loader::new());
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    let diagnostics = validate(Loader::new().with_default_namespace("egress"));
    assert!(diagnostics.has_errors(), "{diagnostics:?}");
}

#[test]
fn analyze_all_reports_a_message_two_analyzers_find_once() {
    // A Gateway whose selector selects no pod: the ingress-port and the secret analyzers both
    // find the same IST0101.
    let config = config(&GATEWAY.replace("istio: ingressgateway", "istio: nowhere"))
        .with_workloads_known(true);
    let both = [Analyzer::IngressGatewayPort, Analyzer::GatewaySecret];
    for analyzer in both {
        assert_eq!(
            keys(&config, analyzer),
            [("IST0101".to_owned(), "Gateway istio-system/gw".to_owned())],
        );
    }
    let found: Vec<_> = portcullis_validate::analysis::analyze_all(&config)
        .into_iter()
        .filter(|m| m.code == "IST0101")
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(analyze(&config, &both).len(), 1);
}
