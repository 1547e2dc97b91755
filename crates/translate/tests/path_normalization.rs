//! Path normalization in the simulation: the route is chosen on the normalized path, which is
//! also what the upstream receives, and `explain` looks at the same path as `decide`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_model::{Loader, Object};
use portcullis_proxy_core::path::PathNormalization;
use portcullis_translate::{
    Config, GatewayPlan, MeshSettings, Proxy, ServiceRegistry, Simulation,
    route_match::NotFound,
    simulate::{Outcome, Request},
    translate,
};

/// A route on prefix `/public` and on exact `/productpage`, none for `/admin`.
const CONFIG: &str = r#"
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
metadata: {name: vs, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /public}}]
    route: [{destination: {host: public.default.svc.cluster.local}}]
  - match: [{uri: {exact: /productpage}}]
    route: [{destination: {host: product.default.svc.cluster.local}}]
"#;

fn plan() -> GatewayPlan {
    let objs: Vec<Object> = Loader::new()
        .load_str("test.yaml", CONFIG)
        .expect("valid yaml")
        .documents()
        .iter()
        .map(|d| d.object.clone())
        .collect();
    let config = Config::from_objects(&objs);
    let mesh = MeshSettings::default();
    let registry = ServiceRegistry::from_objects(&objs, &mesh.domain_suffix);
    translate(&config, &registry, &Proxy::ingress_gateway(), &mesh)
}

fn upstream_path(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Forward(f) => Some(&f.upstream.path),
        _ => None,
    }
}

#[test]
fn encoded_dot_segments_do_not_take_the_prefix_route() {
    let plan = plan();
    let sim = Simulation::new(&plan);
    assert_eq!(sim.path_normalization(), PathNormalization::Base);
    for path in [
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public/%2e./admin",
        r"/public\..\admin",
        "/public/../admin",
    ] {
        let d = sim.decide(&Request::http(80, "example.com", path));
        assert!(
            matches!(d.outcome, Outcome::NotFound(NotFound::NoRoute { .. })),
            "{path}: {:?}",
            d.outcome
        );
    }
}

#[test]
fn the_upstream_receives_the_normalized_path() {
    let plan = plan();
    let sim = Simulation::new(&plan);
    let d = sim.decide(&Request::http(
        80,
        "example.com",
        "/public/a/%2e/b/../c?x=/../y",
    ));
    assert_eq!(upstream_path(&d.outcome), Some("/public/a/c?x=/../y"));
    let d = sim.decide(&Request::http(80, "example.com", "/x/../productpage"));
    assert_eq!(upstream_path(&d.outcome), Some("/productpage"));
}

#[test]
fn modes_change_what_is_routed() {
    let plan = plan();
    let req = Request::http(80, "example.com", "/public//%2fa%5Cb");
    let path = |mode| {
        let d = Simulation::new(&plan)
            .with_path_normalization(mode)
            .decide(&req);
        upstream_path(&d.outcome).map(str::to_owned)
    };
    assert_eq!(
        path(PathNormalization::None).as_deref(),
        Some("/public//%2fa%5Cb")
    );
    assert_eq!(
        path(PathNormalization::Base).as_deref(),
        Some("/public//%2fa%5Cb")
    );
    assert_eq!(
        path(PathNormalization::MergeSlashes).as_deref(),
        Some("/public/%2fa%5Cb")
    );
    assert_eq!(
        path(PathNormalization::DecodeAndMergeSlashes).as_deref(),
        Some("/public/a/b")
    );
    // Without normalization the dot segments reach the router: the prefix route matches.
    let raw = Simulation::new(&plan)
        .with_path_normalization(PathNormalization::None)
        .decide(&Request::http(80, "example.com", "/public/%2e%2e/admin"));
    assert_eq!(upstream_path(&raw.outcome), Some("/public/%2e%2e/admin"));
}

#[test]
fn a_path_that_cannot_be_normalized_is_answered_400() {
    let plan = plan();
    let sim = Simulation::new(&plan);
    let d = sim.decide(&Request::http(80, "example.com", "/public/%00"));
    assert_eq!(
        d.outcome,
        Outcome::BadRequest {
            details: "path_normalization_failed"
        }
    );
    assert!(d.route.is_none());
    assert!(
        sim.explain(&Request::http(80, "example.com", "/public/%00"))
            .is_none()
    );
    // NONE does not canonicalize, so it does not refuse either.
    let d = Simulation::new(&plan)
        .with_path_normalization(PathNormalization::None)
        .decide(&Request::http(80, "example.com", "/public/%00"));
    assert!(matches!(d.outcome, Outcome::Forward(_)), "{:?}", d.outcome);
}

#[test]
fn explain_sees_the_path_decide_routes() {
    let plan = plan();
    let sim = Simulation::new(&plan);
    let req = Request::http(80, "example.com", "/x/../productpage");
    assert!(matches!(sim.decide(&req).outcome, Outcome::Forward(_)));
    let ex = sim.explain(&req).expect("an HTTP route configuration");
    assert_eq!(ex.chosen.as_ref().map(|c| c.index), Some(1), "{ex}");

    let req = Request::http(80, "example.com", "/public/%2e%2e/admin");
    let ex = sim.explain(&req).expect("an HTTP route configuration");
    assert!(ex.chosen.is_none(), "{ex}");
    assert!(ex.to_string().contains("/admin"), "{ex}");

    // No listener on the port: no route lookup to explain.
    assert!(
        sim.explain(&Request::http(81, "example.com", "/"))
            .is_none()
    );
}
