//! What the gateway's integration tests share: a gateway on Gateway port 80 (bound to a free
//! loopback port) routing every request to one echo upstream, which writes back the request
//! line and headers it received.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_examples::demo;
use portcullis_gateway::{AccessLog, Gateway, GatewayBuilder, Identity, Source};

/// The started gateway, the port its Gateway port 80 is bound to, and its access log.
pub(crate) struct EchoGateway {
    pub(crate) gateway: Gateway,
    pub(crate) port: u16,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

/// Starts an echo upstream and a gateway in front of it; `configure` sets what the test needs
/// on top of the defaults (one worker, no admin listener, captured access log).
pub(crate) fn echo_gateway(
    name: &str,
    configure: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> EchoGateway {
    let up = demo::start_echo_servers(&[(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "a".to_owned(),
        "v1".to_owned(),
    )])
    .unwrap()[0];
    let dir: PathBuf =
        std::env::temp_dir().join(format!("portcullis-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: all, namespace: default}}
spec:
  hosts: ['*']
  gateways: [istio-system/gw]
  http:
  - route: [{{destination: {{host: a.test}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: a, namespace: default}}
spec:
  hosts: [a.test]
  location: MESH_EXTERNAL
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints:
  - {{address: {}, ports: {{http: {}}}}}
",
        up.ip(),
        up.port()
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let builder = Gateway::builder()
        .files([Source::Path(dir)])
        .identity(Identity::default())
        .workers(1)
        .admin(None)
        .port_binding(80, SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(AccessLog::Capture(Arc::clone(&log)))
        .poll_interval(Duration::from_secs(60));
    let gateway = configure(builder).start().unwrap();
    let port = gateway.local_addr(80).unwrap().port();
    EchoGateway { gateway, port, log }
}
