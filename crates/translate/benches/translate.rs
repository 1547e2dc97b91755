//! Translation throughput: 1 000 Gateways and 10 000 VirtualServices (issue target ≤ 1 s).
#![allow(missing_docs, clippy::unwrap_used)]

use portcullis_model::gateway::{Port, Server};
use portcullis_model::virtual_service::{
    Destination, HttpMatchRequest, HttpRoute, HttpRouteDestination, PortSelector,
};
use portcullis_model::{ApiVersion, Gateway, Kind, Object, Resource, StringMatch, VirtualService};
use portcullis_translate::{Config, MeshSettings, Proxy, ServiceRegistry, translate};

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
