//! The admin listener: Prometheus metrics and dumps of the live plan.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

use super::Lifecycle;
use super::dump::{self, DumpKind};
use super::exposition::Exposition;
use super::snapshot::Live;

/// The admin endpoints, listed by `/`.
pub(crate) const INDEX: &str = "\
admin endpoints:
  /stats/prometheus   metrics in the Prometheus text format (also /metrics)
  /config_dump        the live plan as JSON
  /listeners          listeners and filter chains (like istioctl proxy-config listeners)
  /routes             route configurations (like istioctl proxy-config routes)
  /clusters           clusters (like istioctl proxy-config clusters)
  /endpoints          endpoints (like istioctl proxy-config endpoints)
  /ready              200 LIVE once a configuration is serving; 503 DRAINING once a drain started
";

pub(crate) async fn serve(
    listener: TcpListener,
    live: Arc<Live>,
    metrics: Arc<Exposition>,
    lifecycle: Arc<Lifecycle>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let live = Arc::clone(&live);
        let metrics = Arc::clone(&metrics);
        let lifecycle = Arc::clone(&lifecycle);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let r = answer(&req, &live, &metrics, &lifecycle);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(
    req: &Request<Incoming>,
    live: &Live,
    metrics: &Arc<Exposition>,
    lifecycle: &Lifecycle,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/ready" && lifecycle.is_draining() {
        // Load balancers stop sending once readiness fails (Envoy answers 503 while draining).
        let mut r = Response::new(Full::new(Bytes::from_static(b"DRAINING\n")));
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return r;
    }
    let snap = live.get();
    let view = dump::of_snapshot(&snap);
    let (ctype, body) = match req.uri().path() {
        "/" => ("text/plain", INDEX.to_owned()),
        "/ready" => ("text/plain", "LIVE\n".to_owned()),
        "/stats/prometheus" | "/metrics" => (
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            metrics.prometheus_text(),
        ),
        "/config_dump" => (
            "application/json",
            serde_json::to_string_pretty(&dump::json(&view, Some(snap.generation)))
                .unwrap_or_default(),
        ),
        "/listeners" => ("text/plain", dump::text(&view, DumpKind::Listeners)),
        "/routes" => ("text/plain", dump::text(&view, DumpKind::Routes)),
        "/clusters" => ("text/plain", dump::text(&view, DumpKind::Clusters)),
        "/endpoints" => ("text/plain", dump::text(&view, DumpKind::Endpoints)),
        _ => {
            let mut r = Response::new(Full::new(Bytes::from_static(INDEX.as_bytes())));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}
