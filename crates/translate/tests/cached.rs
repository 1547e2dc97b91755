//! `translate_cached` builds the plan `translate_objects` builds, whatever changed between
//! two calls: a configuration edited at random, loaded through a `LoadCache` (so unchanged
//! documents keep their editions), translated both ways after every edit.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use portcullis_model::{LoadCache, Loaded, Loader};
use portcullis_translate::{
    GatewayPlan, MeshSettings, Proxy, Service, ServiceRegistry, TranslationCache, translate_cached,
    translate_objects,
};

const GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [\"*/*.example.com\"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [\"*/a.example.com\", \"*/b.example.com\"]
    tls: {mode: SIMPLE, credentialName: cert}
";

/// Documents an edit picks from: VirtualServices with and without delegates, bound to one or
/// two servers, with match conditions the gateway decides at translation time, a match that
/// names its gateway by another name, rules the engine refuses, and the other kinds route
/// translation reads.
fn pool() -> Vec<String> {
    let vs = |name: &str, host: &str, body: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: {name}, namespace: shop}}\n\
             spec:\n  hosts: [{host}]\n  gateways: [istio-system/gw]\n{body}"
        )
    };
    vec![
        vs("a", "a.example.com", "  http: [{route: [{destination: {host: web}}]}]\n"),
        vs(
            "a",
            "a.example.com",
            "  http:\n  - match: [{uri: {prefix: /api}}, {port: 443}]\n    \
             route: [{destination: {host: api, port: {number: 8080}}}]\n  \
             - route: [{destination: {host: web, subset: v1}}]\n",
        ),
        vs(
            "b",
            "b.example.com",
            "  http:\n  - match: [{headers: {x-user: {exact: x}}}]\n    \
             headers: {request: {set: {\"x bad\": v}}}\n    \
             route: [{destination: {host: web}}]\n  \
             - route: [{destination: {host: ring}}]\n",
        ),
        vs(
            "b",
            "b.example.com",
            "  http: [{redirect: {uri: /moved}, match: [{sourceLabels: {app: other}}]}, \
             {route: [{destination: {host: web}}]}]\n",
        ),
        vs(
            "e",
            "e.example.com",
            "  http:\n  - match: [{gateways: [gw.istio-system], uri: {prefix: /e}}]\n    \
             route: [{destination: {host: web}}]\n  \
             - route: [{destination: {host: api}}]\n",
        ),
        vs("c", "c.example.com", "  http: [{delegate: {name: d, namespace: shop}}]\n"),
        vs("c2", "c.example.com", "  http: [{route: [{destination: {host: ring}}]}]\n"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: d, namespace: shop}\n\
         spec:\n  http: [{route: [{destination: {host: api}}]}]\n"
            .to_owned(),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
         metadata: {name: d, namespace: shop}\n\
         spec:\n  http: [{match: [{uri: {exact: /d}}], route: [{destination: {host: web}}]}]\n"
            .to_owned(),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {name: ring, namespace: istio-system}\n\
         spec:\n  host: ring.shop.svc.cluster.local\n  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n"
            .to_owned(),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {name: ring, namespace: istio-system}\n\
         spec:\n  host: ring.shop.svc.cluster.local\n  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}\n"
            .to_owned(),
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: {name: api, namespace: shop}\n\
         spec:\n  hosts: [api.shop.svc.cluster.local]\n  ports: [{number: 9000, name: http, protocol: HTTP}]\n  resolution: DNS\n"
            .to_owned(),
        GATEWAY.replace("*/*.example.com", "*/c.example.com"),
        // Two hosts with the same routes make one virtual host, until another VirtualService
        // adds routes to one of them.
        vs(
            "m",
            "m1.example.com, m2.example.com",
            "  http: [{match: [{uri: {prefix: /m}}], route: [{destination: {host: web}}]}]\n",
        ),
        vs("m2", "m2.example.com", "  http: [{route: [{destination: {host: api}}]}]\n"),
    ]
}

/// What two plans must agree on: listeners, each route configuration's table, TLS
/// requirements and verdict, clusters and diagnostics.
fn assert_same(cached: &GatewayPlan, fresh: &GatewayPlan, at: &str) {
    assert_eq!(cached.listeners, fresh.listeners, "listeners, {at}");
    assert_eq!(
        cached.route_configs.keys().collect::<Vec<_>>(),
        fresh.route_configs.keys().collect::<Vec<_>>(),
        "route configurations, {at}"
    );
    for (name, rc) in &fresh.route_configs {
        let other = &cached.route_configs[name];
        assert_eq!(other.virtual_hosts(), rc.virtual_hosts(), "{name}, {at}");
        assert_eq!(other.require_tls, rc.require_tls, "{name}, {at}");
        assert_eq!(other.rejected, rc.rejected, "{name}, {at}");
        assert_eq!(
            other.router.virtual_host_count(),
            rc.router.virtual_host_count(),
            "{name}, {at}"
        );
    }
    assert_eq!(cached.clusters, fresh.clusters, "clusters, {at}");
    assert_eq!(cached.diagnostics, fresh.diagnostics, "diagnostics, {at}");
}

fn fresh(loaded: &Loaded, registry: &ServiceRegistry, proxy: &Proxy) -> GatewayPlan {
    let objects = loaded.documents().iter().map(|d| &d.object);
    translate_objects(objects, registry, proxy, &MeshSettings::default())
}

/// One configuration file in a directory of its own, loaded through a `LoadCache` and
/// translated through a `TranslationCache` after each write, for an ingress gateway.
struct Harness {
    dir: std::path::PathBuf,
    loader: Loader,
    load_cache: LoadCache,
    cache: TranslationCache,
    registry: ServiceRegistry,
    proxy: Proxy,
    mesh: MeshSettings,
}

impl Harness {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            loader: Loader::new(),
            load_cache: LoadCache::default(),
            cache: TranslationCache::new(),
            registry: ServiceRegistry::new(),
            proxy: Proxy::ingress_gateway(),
            mesh: MeshSettings::default(),
        }
    }

    /// Writes `docs` as the file, loads it, and translates it through the cache, checking the
    /// plan is the one a translation without it makes.
    fn translate(&mut self, docs: &[&str]) -> GatewayPlan {
        std::fs::write(self.dir.join("config.yaml"), docs.join("---\n")).unwrap();
        let loaded = self
            .loader
            .read_path_cached(&self.dir, &mut self.load_cache);
        let plan = translate_cached(
            &loaded,
            &self.registry,
            &self.proxy,
            &self.mesh,
            &mut self.cache,
        );
        assert_same(
            &plan,
            &fresh(&loaded, &self.registry, &self.proxy),
            &format!("{docs:?}"),
        );
        plan
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn random_edits_translate_as_fresh() {
    let dir = std::env::temp_dir().join(format!("portcullis-cached-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    let pool = pool();
    let mut seed: u64 = 0x9e37_79b9;
    let mut random = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    };
    let loader = Loader::new();
    let mut load_cache = LoadCache::default();
    let mut cache = TranslationCache::new();
    let proxy = Proxy::ingress_gateway();
    let mesh = MeshSettings::default();
    let mut docs: Vec<String> = vec![GATEWAY.to_owned()];
    docs.extend((0..5).map(|_| pool[random(pool.len())].clone()));
    let (mut reused, mut translated) = (0, 0);
    for step in 0..300 {
        match random(6) {
            0 => {
                let i = random(docs.len() + 1);
                docs.insert(i, pool[random(pool.len())].clone());
            }
            1 if docs.len() > 1 => {
                docs.remove(random(docs.len()));
            }
            2 | 3 if !docs.is_empty() => {
                let i = random(docs.len());
                docs[i] = pool[random(pool.len())].clone();
            }
            4 if !docs.is_empty() => {
                let (i, j) = (random(docs.len()), random(docs.len()));
                docs.swap(i, j);
            }
            _ => {}
        }
        // The registry changes now and then, as a gateway's Services would.
        let mut registry = ServiceRegistry::new();
        if (step / 20) % 2 == 0 {
            registry.push(
                Service::new("web.shop.svc.cluster.local", "shop").with_port(81, "http", "HTTP"),
            );
        }
        let text = docs.join("---\n");
        std::fs::write(&file, &text).unwrap();
        let loaded = loader.read_path_cached(&dir, &mut load_cache);
        assert!(loaded.errors().is_empty(), "{:?}", loaded.errors());
        let cached = translate_cached(&loaded, &registry, &proxy, &mesh, &mut cache);
        reused += cache.reused();
        translated += cache.translated();
        assert_same(
            &cached,
            &fresh(&loaded, &registry, &proxy),
            &format!("step {step}: {text}"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The test means something only if both ways were taken often.
    assert!(
        reused > 200 && translated > 200,
        "reused {reused}, translated {translated}"
    );
}

#[test]
fn a_changed_virtual_service_is_translated_alone() {
    let mut h = Harness::new("cached-one");
    let vs = |i: usize, path: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: vs{i}, namespace: shop}}\n\
             spec:\n  hosts: [h{i}.example.com]\n  gateways: [istio-system/gw]\n  \
             http: [{{match: [{{uri: {{prefix: {path}}}}}], route: [{{destination: {{host: web}}}}]}}]\n"
        )
    };
    let docs = |changed: &str| {
        let mut docs = vec![GATEWAY.to_owned()];
        docs.extend((0..20).map(|i| vs(i, if i == 7 { changed } else { "/" })));
        docs
    };
    let first = docs("/");
    let before = h.translate(&first.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!((h.cache.reused(), h.cache.translated()), (0, 20));
    let changed = docs("/seven");
    let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
    let plan = h.translate(&changed);
    assert_eq!((h.cache.reused(), h.cache.translated()), (19, 1));
    // Only the changed VirtualService's virtual host is compiled again; the plan shares the
    // others with the last one.
    let (was, now) = (
        before.route_configs["http.80"].virtual_hosts(),
        plan.route_configs["http.80"].virtual_hosts(),
    );
    assert_eq!(was.len(), 20);
    let compiled_again: Vec<&str> = was
        .iter()
        .zip(now)
        .filter(|(a, b)| !std::sync::Arc::ptr_eq(a, b))
        .map(|(_, b)| b.name())
        .collect();
    assert_eq!(compiled_again, ["h7.example.com:80"]);
    // Another proxy: everything again.
    h.proxy = Proxy::gateway(
        "istio-system",
        [("istio", "ingressgateway"), ("app", "other")],
    );
    h.translate(&changed);
    assert_eq!((h.cache.reused(), h.cache.translated()), (0, 20));
}

#[test]
fn a_changed_destination_rule_translates_everything_again() {
    let mut h = Harness::new("cached-dr");
    let pool = pool();
    for dr in [&pool[8], &pool[9], &pool[8]] {
        h.translate(&[GATEWAY, &pool[5], dr]);
        assert_eq!((h.cache.reused(), h.cache.translated()), (0, 1));
    }
}

#[test]
fn a_virtual_host_whose_domains_change_is_compiled_again() {
    let mut h = Harness::new("cached-split");
    let pool = pool();
    let (collapsed, other) = (&pool[pool.len() - 2], &pool[pool.len() - 1]);
    // m1 and m2 share one virtual host, then each has its own, then share one again: the
    // virtual host named after m1 keeps its routes throughout, but not its domains.
    let mut names = Vec::new();
    for docs in [
        vec![GATEWAY, collapsed],
        vec![GATEWAY, collapsed, other],
        vec![GATEWAY, collapsed],
    ] {
        let plan = h.translate(&docs);
        names.push(
            plan.route_configs["http.80"]
                .virtual_hosts()
                .iter()
                .map(|v| format!("{} {:?}", v.name(), v.domains()))
                .collect::<Vec<_>>(),
        );
    }
    let together = [r#"m1.example.com:80 ["m1.example.com", "m2.example.com"]"#];
    assert_eq!(names[0], together);
    assert_eq!(
        names[1],
        [
            r#"m1.example.com:80 ["m1.example.com"]"#,
            r#"m2.example.com:80 ["m2.example.com"]"#
        ]
    );
    assert_eq!(names[2], together);
}

#[test]
fn virtual_hosts_are_shared_when_others_come_and_go() {
    let mut h = Harness::new("cached-shift");
    let vs = |name: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
             metadata: {{name: {name}, namespace: shop}}\n\
             spec:\n  hosts: [{name}.example.com]\n  gateways: [istio-system/gw]\n  \
             http: [{{route: [{{destination: {{host: web}}}}]}}]\n"
        )
    };
    let mut translate = |names: &[&str]| {
        let mut docs = vec![GATEWAY.to_owned()];
        docs.extend(names.iter().map(|n| vs(n)));
        h.translate(&docs.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Virtual hosts come in creation order, here by name: one added first, in the middle and
    // last, then all three removed, then two new ones where two were, then three in a row
    // removed.
    let some = ["b", "c", "e", "f", "h"];
    let more = ["a", "b", "c", "d", "e", "f", "h", "i"];
    let other = ["b", "c", "d1", "d2", "h", "j", "k"];
    let fewer = ["b", "h", "j", "k"];
    let plans = [
        translate(&some),
        translate(&more),
        translate(&some),
        translate(&other),
        translate(&fewer),
    ];
    for pair in plans.windows(2) {
        let (was, now) = (
            pair[0].route_configs["http.80"].virtual_hosts(),
            pair[1].route_configs["http.80"].virtual_hosts(),
        );
        for vh in now {
            let before = was.iter().find(|w| w.name() == vh.name());
            assert_eq!(
                before.is_some_and(|w| std::sync::Arc::ptr_eq(w, vh)),
                before.is_some(),
                "{} is shared if the last plan had it",
                vh.name()
            );
        }
    }
    // Twenty removed in a row: the next virtual host is too far on to be looked for, and is
    // compiled again; the one after it is a second miss in a row, so the last table is
    // indexed by name, and it and the rest are shared again.
    let mut long = vec!["b".to_owned(), "c".to_owned()];
    long.extend((0..20).map(|i| format!("d{i:02}")));
    long.extend(["h", "j", "k"].map(str::to_owned));
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let (was, now) = (translate(&long), translate(&["b", "c", "h", "j", "k"]));
    let shared: Vec<&str> = now.route_configs["http.80"]
        .virtual_hosts()
        .iter()
        .filter(|vh| {
            was.route_configs["http.80"]
                .virtual_hosts()
                .iter()
                .any(|w| std::sync::Arc::ptr_eq(w, vh))
        })
        .map(|vh| vh.name())
        .collect();
    assert_eq!(
        shared,
        [
            "b.example.com:80",
            "c.example.com:80",
            "j.example.com:80",
            "k.example.com:80"
        ]
    );
}

#[test]
fn servers_on_one_port_keep_what_each_serves() {
    // Two servers of one gateway on one port share a route configuration, and a
    // VirtualService serves different hosts at each: what it serves at one is not taken for
    // the other, in one translation or the next.
    let gateway = GATEWAY.replace(
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*/*.example.com\"]\n",
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*/m1.example.com\"]\n  \
         - port: {number: 80, name: http2, protocol: HTTP}\n    hosts: [\"*/m2.example.com\"]\n",
    );
    assert_ne!(gateway, GATEWAY);
    let pool = pool();
    let (both, other) = (&pool[pool.len() - 2], &pool[pool.len() - 1]);
    let mut h = Harness::new("cached-two-servers");
    // What each server's routes were made and kept as: `both` at each server, then `other`
    // at the second alone.
    for (docs, counts) in [
        (vec![gateway.as_str(), both], (0, 2)),
        (vec![gateway.as_str(), both, other], (2, 1)),
    ] {
        let plan = h.translate(&docs);
        assert_eq!((h.cache.reused(), h.cache.translated()), counts);
        let domains: Vec<&String> = plan.route_configs["http.80"]
            .virtual_hosts()
            .iter()
            .flat_map(|v| v.domains())
            .collect();
        assert_eq!(domains, ["m1.example.com", "m2.example.com"]);
    }
}
