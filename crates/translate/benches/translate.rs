//! Translation throughput: 1 000 Gateways and 10 000 VirtualServices (issue target ≤ 1 s).
#![allow(missing_docs, clippy::unwrap_used)]

use portcullis_model::gateway::{Port, Server};
use portcullis_model::virtual_service::{
    Destination, HttpMatchRequest, HttpRoute, HttpRouteDestination, PortSelector,
};
use portcullis_model::{
    ApiVersion, Gateway, Kind, LoadCache, Loaded, Loader, Object, Resource, StringMatch,
    VirtualService,
};
use portcullis_translate::{
    Config, MeshSettings, Proxy, ServiceRegistry, TranslationCache, translate, translate_cached,
    translate_objects,
};

fn main() {
    divan::main();
}

fn config(gateways: usize, virtual_services: usize) -> Config {
    let mut config = Config::new();
    for g in 0..gateways {
        let mut gw: Resource<Gateway> = Resource::new(
            ApiVersion::NetworkingV1,
            Kind::Gateway,
            &format!("gw-{g}"),
            "istio-system",
        );
        gw.spec
            .selector
            .insert("istio".into(), "ingressgateway".into());
        gw.spec.servers.push(Server {
            port: Some(Port {
                number: 80,
                protocol: "HTTP".into(),
                name: "http".into(),
                target_port: 0,
            }),
            hosts: vec![format!("*.gw{g}.example.com")],
            ..Server::default()
        });
        config.push(Object::Gateway(gw));
    }
    for v in 0..virtual_services {
        let g = v % gateways.max(1);
        let mut vs: Resource<VirtualService> = Resource::new(
            ApiVersion::NetworkingV1,
            Kind::VirtualService,
            &format!("vs-{v}"),
            "default",
        );
        vs.spec.hosts.push(format!("svc{v}.gw{g}.example.com"));
        vs.spec.gateways.push(format!("istio-system/gw-{g}"));
        let dest = |host: &str| HttpRouteDestination {
            destination: Some(Destination {
                host: host.into(),
                subset: String::new(),
                port: Some(PortSelector { number: 8080 }),
            }),
            ..HttpRouteDestination::default()
        };
        vs.spec.http.push(HttpRoute {
            r#match: vec![HttpMatchRequest {
                uri: Some(StringMatch::Prefix(format!("/api/{v}"))),
                ..HttpMatchRequest::default()
            }],
            route: vec![dest("api")],
            ..HttpRoute::default()
        });
        vs.spec.http.push(HttpRoute {
            route: vec![dest("web")],
            ..HttpRoute::default()
        });
        config.push(Object::VirtualService(vs));
    }
    config
}

#[divan::bench(sample_count = 3)]
fn gateways_1000_virtual_services_10000(bencher: divan::Bencher<'_, '_>) {
    let config = config(1000, 10_000);
    let registry = ServiceRegistry::new();
    let proxy = Proxy::ingress_gateway();
    let mesh = MeshSettings::default();
    bencher.bench(|| translate(&config, &registry, &proxy, &mesh));
}

/// 10 000 VirtualServices of two routes on one Gateway, in ten files, loaded through a
/// `LoadCache`.
fn ten_files() -> Loaded {
    let dir = std::env::temp_dir().join(format!("portcullis-bench-cached-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("gateway.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Gateway\n\
         metadata: {name: gw, namespace: istio-system}\n\
         spec:\n  selector: {istio: ingressgateway}\n  \
         servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]\n",
    )
    .unwrap();
    for file in 0..10 {
        let text: Vec<String> = (0..1000)
            .map(|i| {
                let v = file * 1000 + i;
                format!(
                    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                     metadata: {{name: vs-{v}, namespace: istio-system}}\n\
                     spec:\n  hosts: [vs-{v}.example.com]\n  gateways: [gw]\n  http:\n  \
                     - match: [{{uri: {{prefix: /api}}}}]\n    \
                     route: [{{destination: {{host: api, port: {{number: 8080}}}}}}]\n  \
                     - route: [{{destination: {{host: web, port: {{number: 8080}}}}}}]\n"
                )
            })
            .collect();
        std::fs::write(dir.join(format!("vs-{file}.yaml")), text.join("---\n")).unwrap();
    }
    let mut load_cache = LoadCache::default();
    let loaded = Loader::new().read_path_cached(&dir, &mut load_cache);
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

/// `translate_cached` of the ten files' VirtualServices when all of them come back from the
/// cache: what a change to one of them costs in translation, less that one VirtualService's
/// own routes.
#[divan::bench(sample_count = 5)]
fn virtual_services_10000_cached(bencher: divan::Bencher<'_, '_>) {
    let loaded = ten_files();
    let registry = ServiceRegistry::new();
    let proxy = Proxy::ingress_gateway();
    let mesh = MeshSettings::default();
    let mut cache = TranslationCache::new();
    translate_cached(&loaded, &registry, &proxy, &mesh, &mut cache);
    bencher.bench_local(|| translate_cached(&loaded, &registry, &proxy, &mesh, &mut cache));
}

/// The same VirtualServices translated without a cache.
#[divan::bench(sample_count = 5)]
fn virtual_services_10000_uncached(bencher: divan::Bencher<'_, '_>) {
    let loaded = ten_files();
    let registry = ServiceRegistry::new();
    let proxy = Proxy::ingress_gateway();
    let mesh = MeshSettings::default();
    let objects = || loaded.documents().iter().map(|d| &d.object);
    bencher.bench(|| translate_objects(objects(), &registry, &proxy, &mesh));
}
