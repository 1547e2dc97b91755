//! The sidecar view, one test per rule of `BuildSidecarOutboundVirtualHosts` the module
//! implements.

use std::borrow::Cow;

use portcullis_model::{Loader, Object};

use crate::{
    ClusterType, Config, GatewayPlan, HashPolicy, MeshSettings, Proxy, Service, ServiceRegistry,
    Simulation,
    simulate::{Outcome, Request},
    translate,
};

fn objects(yaml: &str) -> Vec<Object> {
    let loaded = Loader::new()
        .load_str("test.yaml", yaml)
        .unwrap_or_else(|e| panic!("{e}"));
    loaded
        .documents()
        .iter()
        .map(|d| d.object.clone())
        .collect()
}

/// `reviews` (9080) and `ratings` (9080) in `default`, `known` (80, 8080) in `default`, a TCP
/// `db` (5432) in `data`.
fn registry() -> ServiceRegistry {
    let mut r = ServiceRegistry::new();
    r.push(
        Service::new("reviews.default.svc.cluster.local", "default")
            .with_port(9080, "http", "HTTP"),
    );
    r.push(
        Service::new("ratings.default.svc.cluster.local", "default")
            .with_port(9080, "http", "HTTP"),
    );
    r.push(
        Service::new("known.default.svc.cluster.local", "default")
            .with_port(80, "http", "HTTP")
            .with_port(8080, "http-alt", "HTTP"),
    );
    r.push(Service::new("db.data.svc.cluster.local", "data").with_port(5432, "tcp", "TCP"));
    r
}

fn sidecar_plan(yaml: &str, namespace: &str, labels: &[(&str, &str)]) -> GatewayPlan {
    let objs = objects(yaml);
    let mesh = MeshSettings::default();
    let mut reg = registry();
    reg.services
        .extend(ServiceRegistry::from_objects(&objs, &mesh.domain_suffix).services);
    let proxy = Proxy::sidecar(namespace, labels.iter().copied());
    translate(&Config::from_objects(&objs), &reg, &proxy, &mesh)
}

/// The cluster a request goes to, and the virtual host that routed it.
fn routed(plan: &GatewayPlan, port: u32, authority: &str, path: &str) -> (String, String) {
    let d = Simulation::new(plan).decide(&Request::http(port, authority, path));
    let vhost = d.virtual_host.clone().unwrap_or_default();
    match d.outcome {
        Outcome::Forward(f) => (f.cluster, vhost),
        other => panic!("{authority}:{port}{path} not forwarded: {other:?}"),
    }
}

fn vs(name: &str, namespace: &str, extra_meta: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {{name: {name}, namespace: {namespace}{extra_meta}}}\nspec:\n{spec}\n"
    )
}

fn domains(plan: &GatewayPlan, route_config: &str, vhost: &str) -> Vec<String> {
    plan.route_configs[route_config]
        .virtual_hosts()
        .iter()
        .find(|v| v.name() == vhost)
        .map(|v| v.domains().to_vec())
        .unwrap_or_else(|| panic!("no virtual host {vhost} in {route_config}"))
}

#[test]
fn one_route_configuration_per_http_port() {
    let plan = sidecar_plan("", "default", &[]);
    let names: Vec<&str> = plan.route_configs.keys().map(String::as_str).collect();
    assert_eq!(names, ["80", "8080", "9080"]);
    let listeners: Vec<&str> = plan.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(listeners, ["0.0.0.0_80", "0.0.0.0_8080", "0.0.0.0_9080"]);
    // Every configuration ends with the catch-all.
    let last = plan.route_configs["9080"]
        .virtual_hosts()
        .last()
        .map(|v| v.name());
    assert_eq!(last, Some("allow_any"));
}

#[test]
fn simulation_answers_for_a_sidecar() {
    let plan = sidecar_plan("", "default", &[("app", "productpage")]);
    let d = Simulation::new(&plan).decide(&Request::http(9080, "reviews:9080", "/"));
    assert_eq!(d.listener.as_deref(), Some("0.0.0.0_9080"));
    assert_eq!(d.route_config.as_deref(), Some("9080"));
    assert_eq!(
        d.virtual_host.as_deref(),
        Some("reviews.default.svc.cluster.local:9080")
    );
    let Outcome::Forward(f) = d.outcome else {
        panic!("{:?}", d.outcome)
    };
    assert_eq!(
        f.cluster,
        "outbound|9080||reviews.default.svc.cluster.local"
    );
    assert!(f.cluster_defined);
    assert_eq!(f.upstream.authority, "reviews:9080");
}

#[test]
fn service_domains_follow_the_client_namespace() {
    let same = sidecar_plan("", "default", &[]);
    assert_eq!(
        domains(&same, "9080", "reviews.default.svc.cluster.local:9080"),
        [
            "reviews.default.svc.cluster.local",
            "reviews.default.svc.cluster.local.",
            "reviews",
            "reviews.default.svc",
            "reviews.default",
        ]
    );
    let other = sidecar_plan("", "other", &[]);
    assert_eq!(
        domains(&other, "9080", "reviews.default.svc.cluster.local:9080"),
        [
            "reviews.default.svc.cluster.local",
            "reviews.default.svc.cluster.local.",
            "reviews.default",
            "reviews.default.svc",
        ]
    );
    // Ports are ignored when matching hosts.
    assert_eq!(
        routed(&other, 9080, "reviews.default:9080", "/").0,
        "outbound|9080||reviews.default.svc.cluster.local"
    );
    // A bare short name from another namespace is not a known host.
    assert_eq!(routed(&other, 9080, "reviews", "/").0, "PassthroughCluster");
}

#[test]
fn unknown_hosts_reach_the_passthrough_cluster() {
    let plan = sidecar_plan("", "default", &[]);
    let (cluster, vhost) = routed(&plan, 80, "example.org", "/");
    assert_eq!(
        (cluster.as_str(), vhost.as_str()),
        ("PassthroughCluster", "allow_any")
    );
    let passthrough = &plan.clusters["PassthroughCluster"];
    assert_eq!(passthrough.cluster_type, ClusterType::OriginalDst);
    let d = Simulation::new(&plan).decide(&Request::http(80, "example.org", "/"));
    let retries = d
        .route
        .and_then(|r| r.forward())
        .and_then(|f| f.retry_policy());
    assert!(retries.is_none(), "allow_any has no retry policy");
}

#[test]
fn virtual_services_for_mesh_only() {
    let yaml = vs(
        "gw-only",
        "default",
        "",
        "  hosts: [reviews]\n  gateways: [istio-system/gw]\n  http:\n  - route: [{destination: {host: ratings}}]",
    ) + &vs(
        "both",
        "default",
        "",
        "  hosts: [known]\n  gateways: [mesh, istio-system/gw]\n  http:\n  - route: [{destination: {host: ratings}}]",
    );
    let plan = sidecar_plan(&yaml, "default", &[]);
    assert_eq!(
        routed(&plan, 9080, "reviews", "/").0,
        "outbound|9080||reviews.default.svc.cluster.local"
    );
    // No destination port: the route configuration's port.
    assert_eq!(
        routed(&plan, 8080, "known", "/").0,
        "outbound|8080||ratings.default.svc.cluster.local"
    );
}

#[test]
fn short_hosts_resolve_in_the_virtual_service_namespace() {
    let yaml = vs(
        "r",
        "default",
        "",
        "  hosts: [reviews]\n  http:\n  - route: [{destination: {host: ratings}}]",
    ) + &vs(
        "elsewhere",
        "team",
        "",
        "  hosts: [ratings]\n  http:\n  - route: [{destination: {host: reviews}}]",
    );
    let plan = sidecar_plan(&yaml, "other", &[]);
    assert_eq!(
        routed(&plan, 9080, "reviews.default", "/").0,
        "outbound|9080||ratings.default.svc.cluster.local"
    );
    // `ratings` in `team` is ratings.team.svc.cluster.local, not the default service.
    assert_eq!(
        routed(&plan, 9080, "ratings.default", "/").0,
        "outbound|9080||ratings.default.svc.cluster.local"
    );
}

#[test]
fn hosts_that_are_not_services_attach_on_port_80_or_with_a_service() {
    let yaml = vs(
        "ext",
        "default",
        "",
        "  hosts: [bookinfo.com]\n  http:\n  - route: [{destination: {host: test.org, port: {number: 63}}}]",
    ) + &vs(
        "mixed",
        "default",
        "",
        "  hosts: [reviews, example.com]\n  http:\n  - route: [{destination: {host: test.org, port: {number: 64}}}]",
    );
    let plan = sidecar_plan(&yaml, "default", &[]);
    assert_eq!(
        routed(&plan, 80, "bookinfo.com", "/"),
        (
            "outbound|63||test.org".to_owned(),
            "bookinfo.com:80".to_owned()
        )
    );
    assert_eq!(
        routed(&plan, 8080, "bookinfo.com", "/").0,
        "PassthroughCluster"
    );
    assert_eq!(
        routed(&plan, 9080, "example.com", "/"),
        (
            "outbound|64||test.org".to_owned(),
            "example.com:9080".to_owned()
        )
    );
    assert_eq!(domains(&plan, "80", "bookinfo.com:80"), ["bookinfo.com"]);
}

#[test]
fn wildcard_hosts_take_services_they_are_most_specific_for() {
    let yaml = vs(
        "wild",
        "default",
        ", creationTimestamp: \"2019-01-01T00:00:00Z\"",
        "  hosts: [\"*.cluster.local\"]\n  http:\n  - route: [{destination: {host: wild.example.com}}]",
    ) + &vs(
        "narrow",
        "default",
        ", creationTimestamp: \"2020-01-01T00:00:00Z\"",
        "  hosts: [\"*.default.svc.cluster.local\"]\n  http:\n  - route: [{destination: {host: narrow.example.com}}]",
    ) + &vs(
        "exact",
        "default",
        ", creationTimestamp: \"2021-01-01T00:00:00Z\"",
        "  hosts: [ratings]\n  http:\n  - route: [{destination: {host: exact.example.com}}]",
    ) + &vs(
        "tld",
        "default",
        "",
        "  hosts: [\"*.tld\"]\n  http:\n  - route: [{destination: {host: tld.example.com}}]",
    );
    let plan = sidecar_plan(&yaml, "default", &[]);
    assert_eq!(
        routed(&plan, 9080, "reviews", "/").0,
        "outbound|9080||narrow.example.com"
    );
    assert_eq!(
        routed(&plan, 9080, "ratings", "/").0,
        "outbound|9080||exact.example.com"
    );
    // Matching services, the wildcards have no virtual host of their own…
    assert_eq!(
        routed(&plan, 9080, "x.cluster.local", "/").0,
        "PassthroughCluster"
    );
    // …while one matching no service is a virtual host as written, on port 80.
    assert_eq!(
        routed(&plan, 80, "a.tld", "/"),
        (
            "outbound|80||tld.example.com".to_owned(),
            "*.tld:80".to_owned()
        )
    );
}

#[test]
fn the_oldest_virtual_service_for_a_host_wins() {
    let yaml = vs(
        "new",
        "default",
        ", creationTimestamp: \"2021-01-01T00:00:00Z\"",
        "  hosts: [reviews, ratings]\n  http:\n  - match: [{uri: {prefix: /new}}]\n    route: [{destination: {host: new.example.com}}]",
    ) + &vs(
        "old",
        "other",
        ", creationTimestamp: \"2019-01-01T00:00:00Z\"",
        "  hosts: [reviews.default.svc.cluster.local]\n  http:\n  - route: [{destination: {host: old.example.com}}]",
    );
    let plan = sidecar_plan(&yaml, "default", &[]);
    // No merging: the newer VS's /new route does not exist for reviews.
    assert_eq!(
        routed(&plan, 9080, "reviews", "/new").0,
        "outbound|9080||old.example.com"
    );
    // The newer VS still owns the hosts the older one does not name.
    assert_eq!(
        routed(&plan, 9080, "ratings", "/new").0,
        "outbound|9080||new.example.com"
    );
}

#[test]
fn export_to_is_judged_from_the_client_namespace() {
    let yaml = vs(
        "private",
        "default",
        "",
        "  hosts: [reviews]\n  exportTo: [\".\"]\n  http:\n  - route: [{destination: {host: ratings}}]",
    ) + "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {name: se, namespace: team}\nspec:\n  hosts: [api.example.com]\n  exportTo: [\".\"]\n\
         \x20 ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n\
         ---\napiVersion: v1\nkind: Service\n\
         metadata: {name: hidden, namespace: default, annotations: {networking.istio.io/exportTo: \".\"}}\n\
         spec:\n  ports: [{name: http, port: 9090}]\n";
    let inside = sidecar_plan(&yaml, "default", &[]);
    let outside = sidecar_plan(&yaml, "other", &[]);
    let team = sidecar_plan(&yaml, "team", &[]);
    assert_eq!(
        routed(&inside, 9080, "reviews", "/").0,
        "outbound|9080||ratings.default.svc.cluster.local"
    );
    assert_eq!(
        routed(&outside, 9080, "reviews.default", "/").0,
        "outbound|9080||reviews.default.svc.cluster.local"
    );
    assert_eq!(
        routed(&team, 80, "api.example.com", "/").0,
        "outbound|80||api.example.com"
    );
    assert_eq!(
        routed(&outside, 80, "api.example.com", "/").0,
        "PassthroughCluster"
    );
    assert!(inside.route_configs.contains_key("9090"));
    assert!(!outside.route_configs.contains_key("9090"));
    assert!(
        !outside
            .clusters
            .contains_key("outbound|9090||hidden.default.svc.cluster.local")
    );
}

fn dr(name: &str, namespace: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  host: reviews.default.svc.cluster.local\n{extra}\n"
    )
}

#[test]
fn destination_rules_are_looked_up_from_the_client_namespace() {
    let route_v1 = vs(
        "r",
        "default",
        "",
        "  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v1}}]",
    );
    let subset = |s: &str| format!("  subsets: [{{name: {s}, labels: {{version: {s}}}}}]");
    let v1 = "outbound|9080|v1|reviews.default.svc.cluster.local";
    // Client namespace first, even without the subset the route names.
    let yaml = route_v1.clone()
        + &dr("mine", "other", &subset("v2"))
        + &dr("svc", "default", &subset("v1"));
    let plan = sidecar_plan(&yaml, "other", &[]);
    assert!(!plan.clusters.contains_key(v1));
    // The service namespace next.
    let yaml = route_v1.clone() + &dr("svc", "default", &subset("v1"));
    assert!(sidecar_plan(&yaml, "other", &[]).clusters.contains_key(v1));
    // A rule exported to its own namespace only gives way to the root namespace's.
    let yaml = route_v1
        + &dr(
            "svc",
            "default",
            &format!("{}\n  exportTo: [\".\"]", subset("v2")),
        )
        + &dr("root", "istio-system", &subset("v1"));
    assert!(sidecar_plan(&yaml, "other", &[]).clusters.contains_key(v1));
    assert!(
        !sidecar_plan(&yaml, "default", &[])
            .clusters
            .contains_key(v1)
    );
}

#[test]
fn default_routes_carry_the_consistent_hash_of_the_destination_rule() {
    let yaml = dr(
        "hash",
        "default",
        "  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}",
    );
    let plan = sidecar_plan(&yaml, "default", &[]);
    let d = Simulation::new(&plan).decide(&Request::http(9080, "reviews", "/"));
    let route = d.route.unwrap_or_else(|| panic!("no route"));
    assert_eq!(route.name, "default");
    assert_eq!(route.hash_policy, [HashPolicy::Header("x-user".to_owned())]);
    assert!(route.virtual_service.is_none());
}

#[test]
fn source_matches_are_evaluated_against_the_client() {
    let yaml = vs(
        "src",
        "default",
        ", creationTimestamp: \"2019-01-01T00:00:00Z\"",
        "  hosts: [reviews]\n  http:\n\
         \x20 - match: [{sourceLabels: {app: productpage}}]\n    route: [{destination: {host: v2.example.com}}]\n\
         \x20 - match: [{sourceNamespace: other}]\n    route: [{destination: {host: v3.example.com}}]",
    ) + &vs(
        "fallback",
        "default",
        ", creationTimestamp: \"2021-01-01T00:00:00Z\"",
        "  hosts: [reviews]\n  http:\n  - route: [{destination: {host: fallback.example.com}}]",
    );
    let labelled = sidecar_plan(&yaml, "default", &[("app", "productpage")]);
    assert_eq!(
        routed(&labelled, 9080, "reviews", "/").0,
        "outbound|9080||v2.example.com"
    );
    let other_ns = sidecar_plan(&yaml, "other", &[("app", "web")]);
    assert_eq!(
        routed(&other_ns, 9080, "reviews.default", "/").0,
        "outbound|9080||v3.example.com"
    );
    // Neither applies: the older VS yields no route for this client, so the newer one serves.
    let neither = sidecar_plan(&yaml, "default", &[("app", "web")]);
    assert_eq!(
        routed(&neither, 9080, "reviews", "/").0,
        "outbound|9080||fallback.example.com"
    );
}

#[test]
fn delegates_are_merged_for_sidecars() {
    let yaml = vs(
        "root",
        "default",
        "",
        "  hosts: [reviews]\n  http:\n\
         \x20 - match: [{uri: {prefix: /api}}]\n    delegate: {name: leaf, namespace: team}\n\
         \x20 - route: [{destination: {host: reviews, subset: v1}}]",
    ) + &vs(
        "leaf",
        "team",
        "",
        "  http:\n  - match: [{uri: {prefix: /api/v2}}]\n    route: [{destination: {host: ratings.default.svc.cluster.local}}]",
    );
    let plan = sidecar_plan(&yaml, "default", &[]);
    assert_eq!(
        routed(&plan, 9080, "reviews", "/api/v2/x").0,
        "outbound|9080||ratings.default.svc.cluster.local"
    );
    assert_eq!(
        routed(&plan, 9080, "reviews", "/api/v1").0,
        "outbound|9080|v1|reviews.default.svc.cluster.local"
    );
}

#[test]
fn most_specific_virtual_service_index() {
    let mk = |name: &'static str, hosts: &[&str]| super::VsEntry {
        name,
        namespace: "default",
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        gateways: Cow::Owned(vec!["mesh".to_owned()]),
        export_to: &[],
        http: Cow::Borrowed(&[]),
        merged_origin: Some(Vec::new()),
        tcp: Cow::Borrowed(&[]),
        tls: Cow::Borrowed(&[]),
        edition: None,
    };
    let all = mk("all", &["*"]);
    let org = mk("org", &["*.org"]);
    let exact = mk("exact", &["a.example.org"]);
    let list = [&all, &org, &exact];
    assert_eq!(super::most_specific_vs(&list, "a.example.org"), Some(2));
    assert_eq!(super::most_specific_vs(&list, "b.example.org"), Some(1));
    assert_eq!(super::most_specific_vs(&list, "example.com"), Some(0));
    assert_eq!(super::most_specific_vs(&list[1..], "example.com"), None);
}

#[test]
fn address_and_external_host_domains() {
    let d = |host: &str| {
        super::service_domains(&Service::new(host, "default"), "default", "cluster.local").0
    };
    assert_eq!(d("10.0.0.1"), ["10.0.0.1"]);
    assert_eq!(d("2406:3003::1"), ["[2406:3003::1]"]);
    assert_eq!(
        d("api.example.com"),
        ["api.example.com", "api.example.com."]
    );
    // Not under the mesh's Kubernetes domain: no short forms.
    assert_eq!(
        d("foo.default.svc.bar.baz"),
        ["foo.default.svc.bar.baz", "foo.default.svc.bar.baz."]
    );
}
