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
use super::metrics::Stats;
use super::snapshot::{Live, Snapshot};

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
    stats: Arc<Stats>,
    lifecycle: Arc<Lifecycle>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let live = Arc::clone(&live);
        let stats = Arc::clone(&stats);
        let lifecycle = Arc::clone(&lifecycle);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let r = answer(&req, &live, &stats, &lifecycle);
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
    stats: &Stats,
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
        "/stats/prometheus" | "/metrics" => {
            let mut text = stats.prometheus();
            outlier_metrics(&snap, &mut text);
            ("text/plain; version=0.0.4", text)
        }
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

/// Outlier detection, read from the live clusters (Envoy's `outlier_detection.ejections_*`):
/// endpoints ejected now, and ejections enforced on the current endpoints so far (endpoint
/// state survives configuration swaps, so this counts from the endpoint's first appearance).
/// Only clusters with outlier detection are listed.
fn outlier_metrics(snap: &Snapshot, out: &mut String) {
    use std::fmt::Write as _;

    let clusters: Vec<_> = snap
        .clusters
        .iter()
        .filter(|c| c.pc.outlier_config().is_some())
        .collect();
    if clusters.is_empty() {
        return;
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let label = |name: &str| name.replace('\\', "\\\\").replace('"', "\\\"");
    out.push_str(
        "# HELP portcullis_cluster_outlier_detection_ejections_active Endpoints ejected now.\n\
         # TYPE portcullis_cluster_outlier_detection_ejections_active gauge\n",
    );
    for c in &clusters {
        let _ = writeln!(
            out,
            "portcullis_cluster_outlier_detection_ejections_active{{cluster=\"{}\"}} {}",
            label(&c.plan.name),
            c.pc.ejected_count()
        );
    }
    out.push_str(
        "# HELP portcullis_cluster_outlier_detection_ejections_enforced_total Ejections of the \
         cluster's current endpoints.\n\
         # TYPE portcullis_cluster_outlier_detection_ejections_enforced_total counter\n",
    );
    for c in &clusters {
        let total: u64 =
            c.pc.endpoints()
                .iter()
                .map(|e| e.outlier_status().num_ejections)
                .sum();
        let _ = writeln!(
            out,
            "portcullis_cluster_outlier_detection_ejections_enforced_total{{cluster=\"{}\"}} {total}",
            label(&c.plan.name),
        );
    }
}
