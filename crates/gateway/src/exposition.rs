//! The exposition of the gateway's metrics through `prometheus-client`: the counters of
//! `metrics`, summed when a registry is encoded, and the outlier-detection state of the live
//! snapshot's clusters.

use std::sync::{Arc, OnceLock, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry as PromRegistry;

use super::metrics::Stats;
use super::snapshot::{Live, Snapshot};

/// Outlier detection, read from the live clusters (Envoy's `outlier_detection.ejections_*`):
/// endpoints ejected now, and ejections enforced on the current endpoints so far (endpoint
/// state survives configuration swaps, so this counts from the endpoint's first appearance).
/// Only clusters with outlier detection are listed.
fn outlier_detection(
    snap: &Snapshot,
    encoder: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    let clusters: Vec<_> = snap
        .clusters
        .iter()
        .filter(|c| c.pc.outlier_config().is_some())
        .collect();
    if clusters.is_empty() {
        return Ok(());
    }
    let mut m = encoder.encode_descriptor(
        "portcullis_cluster_outlier_detection_ejections_active",
        "Endpoints ejected now.",
        None,
        MetricType::Gauge,
    )?;
    for c in &clusters {
        let ejected = ConstGauge::new(c.pc.ejected_count());
        ejected.encode(m.encode_family(&[("cluster", c.plan.name.as_str())])?)?;
    }
    let mut m = encoder.encode_descriptor(
        "portcullis_cluster_outlier_detection_ejections_enforced",
        "Ejections of the cluster's current endpoints.",
        None,
        MetricType::Counter,
    )?;
    for c in &clusters {
        let total: u64 =
            c.pc.endpoints()
                .iter()
                .map(|e| e.outlier_status().num_ejections)
                .sum();
        ConstCounter::new(total).encode(m.encode_family(&[("cluster", c.plan.name.as_str())])?)?;
    }
    Ok(())
}

/// A gateway's metrics as a prometheus-client [`Collector`]: its counters once it has
/// started, and the outlier-detection state of the live snapshot once it serves. Every
/// registry the gateway's metrics appear in (the admin listener's, an embedder's) encodes
/// through it, so there is one exposition.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    stats: OnceLock<Arc<Stats>>,
    /// Weak: a registry that outlives the gateway must not keep its snapshot (pools, TLS
    /// configurations) alive.
    live: OnceLock<Weak<Live>>,
}

impl Exposition {
    /// The gateway's counters (set once, when it starts).
    pub(crate) fn set_stats(&self, stats: &Arc<Stats>) {
        let _ = self.stats.set(Arc::clone(stats));
    }

    /// The gateway's live snapshot (set once, when it serves).
    pub(crate) fn set_live(&self, live: &Arc<Live>) {
        let _ = self.live.set(Arc::downgrade(live));
    }

    /// The collector to register in a prometheus-client registry.
    pub(crate) fn collector(self: &Arc<Self>) -> Box<dyn Collector> {
        Box::new(Arc::clone(self))
    }

    /// The Prometheus text exposition format (version 0.0.4) of the gateway's metrics alone.
    pub(crate) fn prometheus_text(self: &Arc<Self>) -> String {
        let mut registry = PromRegistry::default();
        registry.register_collector(self.collector());
        let mut out = String::with_capacity(4096);
        // Writing to a String fails only if a metric's own encoding does, and ours do not.
        if prometheus_text::encode(&mut out, &registry).is_err() {
            tracing::warn!("the metrics could not be encoded");
        }
        out
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.stats.get() else {
            return Ok(());
        };
        let snap = self.live.get().and_then(Weak::upgrade).map(|l| l.get());
        stats.encode(&mut encoder)?;
        match snap.as_deref() {
            Some(snap) => outlier_detection(snap, &mut encoder),
            None => Ok(()),
        }
    }
}
