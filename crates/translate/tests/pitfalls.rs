//! One test per point of ROUTING-PITFALLS.md (and its "Also often missed" list), plus golden
//! assertions on plan structure.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_model::{Loader, Object};
use portcullis_translate::{
    Config, GatewayPlan, LbPolicy, MeshSettings, Proxy, Service, ServiceRegistry, ServiceTarget,
    Simulation, UpstreamTls,
    simulate::{Outcome, Request},
    translate,
};

fn objects(yaml: &str) -> Vec<Object> {
    let loaded = Loader::new()
        .load_str("test.yaml", yaml)
        .expect("valid yaml");
    loaded
        .documents()
        .iter()
        .map(|d| d.object.clone())
        .collect()
}

fn plan_with(yaml: &str, registry: &ServiceRegistry, proxy: &Proxy) -> GatewayPlan {
    let objs = objects(yaml);
    let config = Config::from_objects(&objs);
    let mesh = MeshSettings::default();
    let mut reg = ServiceRegistry::from_objects(&objs, &mesh.domain_suffix);
    reg.services.extend(registry.services.iter().cloned());
    translate(&config, &reg, proxy, &mesh)
}

fn plan(yaml: &str) -> GatewayPlan {
    plan_with(yaml, &ServiceRegistry::new(), &Proxy::ingress_gateway())
}

fn cluster(plan: &GatewayPlan, req: &Request) -> String {
    match Simulation::new(plan).decide(req).outcome {
        Outcome::Forward(f) => f.cluster,
        Outcome::TcpProxy { cluster, .. } => cluster,
        other => panic!("not forwarded: {other:?}"),
    }
}

fn outcome(plan: &GatewayPlan, req: &Request) -> Outcome {
    Simulation::new(plan).decide(req).outcome
}

const GW80: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"#;

fn vs(name: &str, ts: &str, hosts: &str, http: &str) -> String {
    format!(
        r#"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: default, creationTimestamp: "{ts}"}}
spec:
  hosts: {hosts}
  gateways: [istio-system/gw]
  http:
{http}
"#
    )
}

#[test]
fn pitfall_01_merged_virtual_services_catch_alls_move_last() {
    let yaml = format!(
        "{GW80}{}{}",
        vs(
            "old",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            "  - route: [{destination: {host: old-svc, port: {number: 80}}}]"
        ),
        vs(
            "new",
            "2020-01-01T00:00:00Z",
            "[example.com]",
            "  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: new-svc, port: {number: 80}}}]"
        )
    );
    let p = plan(&yaml);
    assert_eq!(
        cluster(&p, &Request::http(80, "example.com", "/api/x")),
        "outbound|80||new-svc.default.svc.cluster.local"
    );
    assert_eq!(
        cluster(&p, &Request::http(80, "example.com", "/other")),
        "outbound|80||old-svc.default.svc.cluster.local"
    );
}

#[test]
fn pitfall_01_sidecar_oldest_virtual_service_wins() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a-old, namespace: default, creationTimestamp: "2010-01-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b-new, namespace: default, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: v2}}]
"#;
    let reg = ServiceRegistry {
        services: vec![
            Service::new("reviews.default.svc.cluster.local", "default")
                .with_port(9080, "http", "HTTP"),
        ],
    };
    let p = plan_with(yaml, &reg, &Proxy::sidecar("default", [("app", "x")]));
    assert_eq!(
        cluster(
            &p,
            &Request::http(9080, "reviews.default.svc.cluster.local", "/api")
        ),
        "outbound|9080|v1|reviews.default.svc.cluster.local"
    );
}

#[test]
fn pitfall_02_routes_after_catch_all_are_dropped_within_a_vs() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            "  - match: [{uri: {prefix: /}}, {uri: {prefix: /never}}]\n    route: [{destination: {host: a, port: {number: 80}}}]\n  - match: [{uri: {prefix: /b}}]\n    route: [{destination: {host: b, port: {number: 80}}}]"
        )
    );
    let p = plan(&yaml);
    let rc = &p.route_configs["http.80"];
    assert_eq!(rc.table().virtual_hosts[0].routes.len(), 1);
    assert_eq!(
        cluster(&p, &Request::http(80, "example.com", "/b")),
        "outbound|80||a.default.svc.cluster.local"
    );
}

#[test]
fn pitfall_03_host_intersection_narrower_name_and_namespace_restriction() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com", "app/*.app.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: [a.example.com, x.app.com]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a, port: {number: 80}}}]
"#;
    let p = plan(yaml);
    let rc = &p.route_configs["http.80"];
    assert_eq!(rc.table().virtual_hosts.len(), 1);
    assert_eq!(rc.table().virtual_hosts[0].name, "a.example.com:80");
    assert_eq!(rc.table().virtual_hosts[0].domains, ["a.example.com"]);
    assert!(matches!(
        outcome(&p, &Request::http(80, "b.example.com", "/")),
        Outcome::NotFound(_)
    ));
    // The app/ restricted host does not admit a VS from `default`.
    assert!(matches!(
        outcome(&p, &Request::http(80, "x.app.com", "/")),
        Outcome::NotFound(_)
    ));
}

#[test]
fn pitfall_03_vs_with_no_route_for_the_port_creates_no_vhost() {
    let yaml = format!(
        "{GW80}{}{}",
        vs(
            "a",
            "2010-01-01T00:00:00Z",
            "[a.example.com]",
            "  - match: [{port: 8080}]\n    route: [{destination: {host: a, port: {number: 80}}}]"
        ),
        vs(
            "b",
            "2020-01-01T00:00:00Z",
            "[\"*.example.com\"]",
            "  - route: [{destination: {host: b, port: {number: 80}}}]"
        )
    );
    let p = plan(&yaml);
    assert_eq!(
        cluster(&p, &Request::http(80, "a.example.com", "/")),
        "outbound|80||b.default.svc.cluster.local"
    );
}

#[test]
fn pitfall_04_gateway_names_resolve_in_vs_namespace_and_export_to_uses_pod_namespace() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public-gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: short, namespace: app}
spec:
  hosts: [short.example.com]
  gateways: [public-gw]
  http:
  - route: [{destination: {host: web, port: {number: 80}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: app}
spec:
  hosts: [private.example.com]
  gateways: [istio-system/public-gw]
  exportTo: ["."]
  http:
  - route: [{destination: {host: web, port: {number: 80}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ok, namespace: app}
spec:
  hosts: [ok.example.com]
  gateways: [istio-system/public-gw]
  http:
  - route: [{destination: {host: web, port: {number: 80}}}]
"#;
    let p = plan(yaml);
    for host in ["short.example.com", "private.example.com"] {
        assert!(
            matches!(
                outcome(&p, &Request::http(80, host, "/")),
                Outcome::NotFound(_)
            ),
            "{host}"
        );
    }
    assert_eq!(
        cluster(&p, &Request::http(80, "ok.example.com", "/")),
        "outbound|80||web.app.svc.cluster.local"
    );
}

#[test]
fn pitfall_05_default_destination_port() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /one}}]
    route: [{destination: {host: single}}]
  - route: [{destination: {host: unknown}}]
"#;
    let reg = ServiceRegistry {
        services: vec![
            Service::new("single.default.svc.cluster.local", "default")
                .with_port(9080, "http", "HTTP"),
        ],
    };
    let p = plan_with(yaml, &reg, &Proxy::ingress_gateway());
    let req = Request::http(443, "x.com", "/one").over_tls();
    assert_eq!(
        cluster(&p, &req),
        "outbound|9080||single.default.svc.cluster.local"
    );
    let req = Request::http(443, "x.com", "/").over_tls();
    let Outcome::Forward(f) = outcome(&p, &req) else {
        panic!()
    };
    assert_eq!(f.cluster, "outbound|443||unknown.default.svc.cluster.local");
    assert!(!f.cluster_defined, "missing cluster: Envoy answers 503");
}

#[test]
fn pitfall_06_server_port_not_listener_port() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[\"*\"]",
            "  - match: [{port: 80}]\n    redirect: {derivePort: FROM_REQUEST_PORT, scheme: https}"
        )
    );
    let proxy = Proxy::ingress_gateway().with_service_target(ServiceTarget::new(
        "istio-ingressgateway.istio-system.svc.cluster.local",
        "istio-system",
        80,
        8080,
    ));
    let p = plan_with(&yaml, &ServiceRegistry::new(), &proxy);
    assert_eq!(p.listeners[0].name, "0.0.0.0_8080");
    assert!(p.route_configs.contains_key("http.8080"));
    let d = Simulation::new(&p).decide(&Request::http(8080, "a.com", "/x"));
    assert_eq!(d.virtual_host.as_deref(), Some("*:80"));
    let Outcome::Redirect { location, .. } = d.outcome else {
        panic!("{:?}", d.outcome)
    };
    assert_eq!(location, "https://a.com:80/x");
}

#[test]
fn pitfall_07_server_merging_first_wins() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a-http, namespace: istio-system, creationTimestamp: "2010-01-01T00:00:00Z"}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b-https, namespace: istio-system, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["secure.example.com"]
    tls: {mode: SIMPLE, credentialName: c}
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
"#;
    let p = plan(yaml);
    let l = p.listener("0.0.0.0_8443").unwrap();
    assert_eq!(l.filter_chains.len(), 1, "HTTPS after HTTP is dropped");
    assert!(
        p.listener("0.0.0.0_9000").is_none(),
        "TCP server without VS: no listener"
    );
    let mut req = Request::http(8443, "secure.example.com", "/").over_tls();
    req.sni = Some("secure.example.com".into());
    assert_eq!(outcome(&p, &req), Outcome::ProtocolError);
    // HTTP server without VS: blackhole vhost, 404.
    let d = Simulation::new(&p).decide(&Request::http(8443, "x", "/"));
    assert_eq!(d.virtual_host.as_deref(), Some("blackhole:8443"));
}

#[test]
fn pitfall_08_https_server_own_chain_and_route_config_mode_default_passthrough() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: ["a.example.com"]
    tls: {mode: SIMPLE, credentialName: a}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: ["b.example.com"]
    tls: {mode: SIMPLE, credentialName: b}
  - port: {number: 8443, name: https-c, protocol: HTTPS}
    hosts: ["c.example.com"]
    tls: {credentialName: c}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: ["*.example.com"]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: a, port: {number: 80}}}]
"#;
    let p = plan(yaml);
    let l = p.listener("0.0.0.0_443").unwrap();
    assert_eq!(l.filter_chains.len(), 2);
    assert_eq!(l.filter_chains[0].server_names, ["a.example.com"]);
    assert!(
        p.route_configs
            .contains_key("https.443.https-a.gw.istio-system")
    );
    assert!(
        p.route_configs
            .contains_key("https.443.https-b.gw.istio-system")
    );
    // SNI a, Host b: looked up only among server a's vhosts.
    let mut req = Request::http(443, "b.example.com", "/").over_tls();
    req.sni = Some("a.example.com".into());
    assert!(matches!(outcome(&p, &req), Outcome::NotFound(_)));
    // mode omitted = PASSTHROUGH: no tls rules, no listener.
    assert!(p.listener("0.0.0.0_8443").is_none());
}

#[test]
fn pitfall_09_https_redirect_is_sticky_require_tls() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["example.com"]
    tls: {httpsRedirect: true}
  - port: {number: 80, name: http2, protocol: HTTP}
    hosts: ["example.com", "other.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: ["example.com"]
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {exact: /never-matches}}]
    route: [{destination: {host: a, port: {number: 80}}}]
"#;
    let p = plan(yaml);
    let Outcome::Redirect {
        status,
        location,
        require_tls,
        ..
    } = outcome(&p, &Request::http(80, "example.com:80", "/p?q=1"))
    else {
        panic!()
    };
    assert_eq!(
        (status, location.as_str(), require_tls),
        (301, "https://example.com:80/p?q=1", true)
    );
}

#[test]
fn pitfall_10_redirects() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /uri}}]
    redirect: {uri: /new}
  - match: [{uri: {prefix: /q}}]
    redirect: {uri: "/new?a=b"}
  - match: [{uri: {prefix: /auth}}]
    redirect: {authority: other.com, redirectCode: 302}
  - match: [{uri: {prefix: /pre}}]
    redirect: {prefixRewrite: /post}
  - match: [{uri: {prefix: /port}}]
    redirect: {port: 80}"#
        )
    );
    let p = plan(&yaml);
    let loc = |path: &str, authority: &str| match outcome(&p, &Request::http(80, authority, path)) {
        Outcome::Redirect {
            status, location, ..
        } => (status, location),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        loc("/uri?x=1", "example.com").1,
        "http://example.com/new?x=1"
    );
    assert_eq!(loc("/q?x=1", "example.com").1, "http://example.com/new?a=b");
    assert_eq!(
        loc("/auth", "example.com:8080"),
        (302, "http://other.com/auth".to_owned())
    );
    assert_eq!(
        loc("/prefix/x", "example.com").1,
        "http://example.com/postfix/x"
    );
    assert_eq!(
        loc("/port", "example.com:81").1,
        "http://example.com:81/port"
    );
}

#[test]
fn pitfall_10_invalid_redirect_code_rejects_route_config() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            "  - redirect: {uri: /x, redirectCode: 300}"
        )
    );
    let p = plan(&yaml);
    assert!(p.route_configs["http.80"].rejected.is_some());
    assert!(!p.diagnostics.is_empty());
    assert!(matches!(
        outcome(&p, &Request::http(80, "example.com", "/")),
        Outcome::ConfigRejected(_)
    ));
}

#[test]
fn pitfall_11_rewrites() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /foo}}]
    rewrite: {uri: /bar}
    route: [{destination: {host: a, port: {number: 80}}}]
  - match: [{uri: {exact: /exact}}]
    rewrite: {uri: /whole}
    route: [{destination: {host: a, port: {number: 80}}}]
  - match: [{uri: {prefix: /re}}]
    rewrite: {uriRegexRewrite: {match: "x", rewrite: "y"}}
    route: [{destination: {host: a, port: {number: 80}}}]"#
        )
    );
    let p = plan(&yaml);
    let up = |path: &str| match outcome(&p, &Request::http(80, "example.com", path)) {
        Outcome::Forward(f) => f.upstream.path,
        other => panic!("{other:?}"),
    };
    assert_eq!(up("/foobar"), "/barbar");
    assert_eq!(up("/foo/x?q=1"), "/bar/x?q=1");
    assert_eq!(up("/exact?q"), "/whole?q");
    assert_eq!(up("/re/xax"), "/re/yay");
}

#[test]
fn pitfall_12_matchers() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{withoutHeaders: {x: {regex: ".*"}}}]
    route: [{destination: {host: never, port: {number: 80}}}]
  - match: [{headers: {x-present: {}}}]
    route: [{destination: {host: present, port: {number: 80}}}]
  - match: [{uri: {regex: "/CASE"}, ignoreUriCase: true}]
    route: [{destination: {host: regex-case, port: {number: 80}}}]
  - match: [{sourceLabels: {istio: ingressgateway}, uri: {prefix: /src}}]
    route: [{destination: {host: source, port: {number: 80}}}]
  - route: [{destination: {host: fallback, port: {number: 80}}}]"#
        )
    );
    let p = plan(&yaml);
    let c = |req: Request| cluster(&p, &req);
    assert_eq!(
        c(Request::http(80, "example.com", "/").with_header("x-present", "")),
        "outbound|80||present.default.svc.cluster.local"
    );
    assert_eq!(
        c(Request::http(80, "example.com", "/case")),
        "outbound|80||fallback.default.svc.cluster.local",
        "ignoreUriCase does not apply to regex"
    );
    assert_eq!(
        c(Request::http(80, "example.com", "/src")),
        "outbound|80||source.default.svc.cluster.local",
        "sourceLabels compared with the gateway pod"
    );
}

#[test]
fn pitfall_13_header_op_precedence_single_vs_weighted() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /single}}]
    headers: {request: {set: {x-h: rule}}}
    route:
    - destination: {host: a, port: {number: 80}}
      headers: {request: {set: {x-h: dest}}}
  - headers: {request: {set: {x-h: rule}}}
    route:
    - destination: {host: a, port: {number: 80}}
      weight: 50
      headers: {request: {set: {x-h: dest}}}
    - destination: {host: b, port: {number: 80}}
      weight: 50
      headers: {request: {set: {x-h: dest}}}"#
        )
    );
    let p = plan(&yaml);
    let h = |path: &str| match outcome(&p, &Request::http(80, "example.com", path)) {
        Outcome::Forward(f) => f.upstream.headers,
        other => panic!("{other:?}"),
    };
    assert_eq!(h("/single"), [("x-h".to_owned(), "dest".to_owned())]);
    assert_eq!(h("/weighted"), [("x-h".to_owned(), "rule".to_owned())]);
}

#[test]
fn pitfall_14_defaults_timeout_retries_faults_mirrors_weights() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /noretry}}]
    retries: {attempts: 0}
    route: [{destination: {host: a, port: {number: 80}}}]
  - fault: {abort: {httpStatus: 500}}
    mirror: {host: shadow, port: {number: 80}}
    route:
    - destination: {host: a, port: {number: 80}}
      weight: 1
    - destination: {host: b, port: {number: 80}}
      weight: 0
    - destination: {host: c, port: {number: 80}}
      weight: 2"#
        )
    );
    let p = plan(&yaml);
    let d = Simulation::new(&p).decide(&Request::http(80, "example.com", "/"));
    let r = d.route.unwrap().forward().unwrap();
    assert_eq!(r.timeout(), std::time::Duration::ZERO);
    assert_eq!(r.max_grpc_timeout(), Some(std::time::Duration::ZERO));
    let retry = r.retry_policy().unwrap();
    assert_eq!(retry.num_retries(), 2);
    assert!(!retry.retry_on().contains("5xx"));
    assert!(r.fault().unwrap().abort().unwrap().percentage().is_zero());
    assert_eq!(r.mirrors()[0].percentage().per_million(), 1_000_000);
    let Outcome::Forward(f) = d.outcome else {
        panic!()
    };
    assert_eq!(
        f.weighted_clusters.len(),
        2,
        "weight 0 dropped, total 3 is fine"
    );
    let d = Simulation::new(&p).decide(&Request::http(80, "example.com", "/noretry"));
    assert!(d.route.unwrap().forward().unwrap().retry_policy().is_none());
}

#[test]
fn pitfall_15_destination_rules() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: reviews, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: specific-root, namespace: istio-system}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wildcard-svc-ns, namespace: default}
spec:
  host: "*.default.svc.cluster.local"
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    tls: {mode: DISABLE}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:
  - name: v1
    labels: {version: v1}
"#;
    let reg = ServiceRegistry {
        services: vec![
            Service::new("reviews.default.svc.cluster.local", "default")
                .with_port(9080, "http", "HTTP"),
        ],
    };
    let p = plan_with(yaml, &reg, &Proxy::ingress_gateway());
    let c = &p.clusters["outbound|9080||reviews.default.svc.cluster.local"];
    // The service namespace step wins over a more specific root rule.
    assert_eq!(c.policy.lb_policy, LbPolicy::Random);
    // Port-level settings replace the top level, tls included: auto mTLS.
    assert!(matches!(c.policy.tls, UpstreamTls::AutoMtls(_)));
    assert_eq!(c.policy.circuit_breakers.max_requests, u32::MAX);
    let UpstreamTls::AutoMtls(t) = &c.policy.tls else {
        panic!()
    };
    assert_eq!(
        t.sni.as_deref(),
        Some("outbound_.9080_._.reviews.default.svc.cluster.local")
    );
    assert!(
        p.clusters
            .contains_key("outbound|9080|v1|reviews.default.svc.cluster.local")
    );
}

#[test]
fn also_missed_tcp_first_matching_vs_wins_and_source_labels_ignored() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: old, namespace: default, creationTimestamp: "2010-01-01T00:00:00Z"}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  tcp:
  - match: [{sourceLabels: {app: nobody}}]
    route: [{destination: {host: a, port: {number: 80}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: new, namespace: default, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  hosts: ["*"]
  gateways: [istio-system/gw]
  tcp:
  - route: [{destination: {host: b, port: {number: 80}}}]
"#;
    let p = plan(yaml);
    let req = Request::tcp(31400);
    assert_eq!(
        cluster(&p, &req),
        "outbound|80||a.default.svc.cluster.local"
    );
}

#[test]
fn also_missed_delegate_rule_dropped_on_conflict() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: default}
spec:
  hosts: [bookinfo.com]
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /productpage}}]
    delegate: {name: leaf}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: leaf, namespace: default}
spec:
  http:
  - match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: conflict, port: {number: 80}}}]
  - match: [{uri: {prefix: /productpage/v1}}]
    route: [{destination: {host: ok, port: {number: 80}}}]
"#;
    let p = plan(yaml);
    assert_eq!(
        cluster(&p, &Request::http(80, "bookinfo.com", "/productpage/v1")),
        "outbound|80||ok.default.svc.cluster.local"
    );
    assert!(matches!(
        outcome(&p, &Request::http(80, "bookinfo.com", "/reviews")),
        Outcome::NotFound(_)
    ));
}

#[test]
fn also_missed_cors_origin_echoed_and_unmatched_preflight_forwarded() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - corsPolicy:
      allowOrigins: [{exact: "https://app.example.com"}]
      allowMethods: [GET]
    route: [{destination: {host: a, port: {number: 80}}}]"#
        )
    );
    let p = plan(&yaml);
    let preflight = |origin: &str| {
        let mut r = Request::http(80, "example.com", "/")
            .with_header("origin", origin)
            .with_header("access-control-request-method", "GET");
        r.method = "OPTIONS".into();
        outcome(&p, &r)
    };
    let Outcome::CorsPreflight {
        response_headers, ..
    } = preflight("https://app.example.com")
    else {
        panic!()
    };
    assert!(response_headers.contains(&(
        "access-control-allow-origin".to_owned(),
        "https://app.example.com".to_owned()
    )));
    assert!(matches!(preflight("https://evil.com"), Outcome::Forward(_)));
}

#[test]
fn golden_plan_structure() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["secure.example.com"]
    tls: {mode: SIMPLE, credentialName: cert}
  - port: {number: 8443, name: http-local, protocol: HTTP}
    bind: 127.0.0.1
    hosts: ["internal.local"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: v, namespace: default}
spec:
  hosts: [shop.example.com, secure.example.com]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"#;
    let reg = ServiceRegistry {
        services: vec![
            Service::new("reviews.default.svc.cluster.local", "default")
                .with_port(9080, "http", "HTTP"),
        ],
    };
    let p = plan_with(yaml, &reg, &Proxy::ingress_gateway());
    let names: Vec<&str> = p.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["0.0.0.0_80", "0.0.0.0_443", "127.0.0.1_8443"]);
    let rcs: Vec<&str> = p.route_configs.keys().map(String::as_str).collect();
    assert_eq!(
        rcs,
        [
            "http.80",
            "http.8443.127.0.0.1",
            "https.443.https.gw.istio-system"
        ]
    );
    let vh: Vec<&str> = p.route_configs["http.80"]
        .virtual_hosts()
        .iter()
        .map(|v| v.name())
        .collect();
    // Identical route lists are collapsed into one vhost named after the first domain.
    assert_eq!(vh, ["secure.example.com:80"]);
    assert_eq!(
        p.route_configs["http.80"].table().virtual_hosts[0].domains,
        ["secure.example.com", "shop.example.com"]
    );
    assert_eq!(
        p.route_configs["https.443.https.gw.istio-system"]
            .table()
            .virtual_hosts[0]
            .name,
        "secure.example.com:443"
    );
    assert_eq!(
        p.route_configs["http.8443.127.0.0.1"].table().virtual_hosts[0].name,
        "blackhole:8443"
    );
    let clusters: Vec<&str> = p.clusters.keys().map(String::as_str).collect();
    assert_eq!(
        clusters,
        [
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "outbound|9080||reviews.default.svc.cluster.local"
        ]
    );
}

#[test]
fn proxy_core_decision_agrees_with_simulation() {
    use http::{Method, uri::Scheme};
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /foo}}]
    rewrite: {uri: /bar, authority: up.example.com}
    headers: {request: {set: {x-a: "1"}}}
    route: [{destination: {host: a, port: {number: 80}}}]"#
        )
    );
    let p = plan(&yaml);
    let req = Request::http(80, "example.com", "/foo/x?y=1");
    let d = Simulation::new(&p).decide(&req);
    let action = &d.route.unwrap().action;
    let head = portcullis_proxy_core::decide::RequestHead::new(
        Method::GET,
        Scheme::HTTP,
        "example.com",
        "/foo/x?y=1",
    );
    let mut random = portcullis_proxy_core::rt::SequenceRandom::new([0]);
    let portcullis_proxy_core::decide::Decision::Forward(fwd) =
        portcullis_proxy_core::decide(action, &head, &mut random)
    else {
        panic!()
    };
    let Outcome::Forward(sim) = d.outcome else {
        panic!()
    };
    assert_eq!(&*fwd.cluster, sim.cluster);
    assert_eq!(fwd.upstream.path, sim.upstream.path);
    assert_eq!(fwd.upstream.authority, sim.upstream.authority);
    assert_eq!(fwd.upstream.headers["x-a"], "1");
}

#[test]
fn caller_random_source_samples_probabilistic_faults() {
    use portcullis_proxy_core::rt::SequenceRandom;
    use portcullis_translate::simulate::SimulationRandom;
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - fault: {abort: {httpStatus: 418, percentage: {value: 50}}}
    route:
    - destination: {host: a, port: {number: 80}}
      weight: 1
    - destination: {host: b, port: {number: 80}}
      weight: 1"#
        )
    );
    let p = plan(&yaml);
    let sim = Simulation::new(&p);
    let req = Request::http(80, "example.com", "/");
    // Deterministic: the abort fires only sometimes, so both branches are reported.
    let Outcome::Probabilistic { fault, otherwise } = sim.decide(&req).outcome else {
        panic!()
    };
    assert_eq!(fault.abort().unwrap().percentage().per_million(), 500_000);
    assert!(matches!(*otherwise, Outcome::Forward(_)));
    // Caller's source: stream draw 1 picks `b`, the abort draw 0 fires / 999 999 does not.
    let fired = sim.decide_with(&req, &mut SequenceRandom::new([1, 0]));
    assert_eq!(
        fired.outcome,
        Outcome::FaultAbort {
            status: Some(418),
            grpc_status: None
        }
    );
    let passed = sim.decide_with(&req, &mut SimulationRandom::new(1));
    let Outcome::Forward(f) = passed.outcome else {
        panic!("{passed:?}")
    };
    assert_eq!(f.cluster, "outbound|80||b.default.svc.cluster.local");
}

#[test]
fn invalid_action_drops_only_its_route() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /bad}}]
    rewrite: {uriRegexRewrite: {match: "(", rewrite: /x}}
    route: [{destination: {host: a, port: {number: 80}}}]
  - route: [{destination: {host: b, port: {number: 80}}}]"#
        )
    );
    let p = plan(&yaml);
    let rc = p.route_configs.get("http.80").unwrap();
    assert!(rc.rejected.is_none());
    assert!(
        p.diagnostics.iter().any(
            |d| d.severity == portcullis_translate::diag::Severity::Warning
                && d.path == "spec.http[0].match[0]"
                && d.message.contains("route dropped")
        ),
        "{:?}",
        p.diagnostics
    );
    assert_eq!(
        cluster(&p, &Request::http(80, "example.com", "/bad/1")),
        "outbound|80||b.default.svc.cluster.local"
    );
}

#[test]
fn direct_response_bytes_that_are_not_base64_drop_the_route() {
    let yaml = format!(
        "{GW80}{}",
        vs(
            "v",
            "2010-01-01T00:00:00Z",
            "[example.com]",
            r#"  - match: [{uri: {prefix: /bad}}]
    directResponse: {status: 200, body: {bytes: "aGVs bG8="}}
  - match: [{uri: {prefix: /good}}]
    directResponse: {status: 200, body: {bytes: "aGVsbG8"}}
  - route: [{destination: {host: b, port: {number: 80}}}]"#
        )
    );
    let p = plan(&yaml);
    assert!(
        p.diagnostics.iter().any(
            |d| d.severity == portcullis_translate::diag::Severity::Warning
                && d.path == "spec.http[0].match[0]"
                && d.message
                    .contains("route dropped: directResponse.body.bytes: illegal base64 data")
        ),
        "{:?}",
        p.diagnostics
    );
    // The undecodable route is gone, not answering with an empty body.
    assert_eq!(
        cluster(&p, &Request::http(80, "example.com", "/bad/1")),
        "outbound|80||b.default.svc.cluster.local"
    );
    let Outcome::DirectResponse { status, body, .. } =
        outcome(&p, &Request::http(80, "example.com", "/good"))
    else {
        panic!()
    };
    assert_eq!((status, body.as_deref()), (200, Some("hello")));
}
