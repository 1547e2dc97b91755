//! The live snapshot as a dump view; the formatter is `portcullis_translate::dump`.

pub use portcullis_translate::dump::{DumpKind, View, json, text};

use super::snapshot::Snapshot;

/// The view of a live snapshot: clusters with their resolved endpoints.
pub(crate) fn of_snapshot(snap: &Snapshot) -> View<'_> {
    View::new(
        snap.listeners.iter().map(|l| &l.plan).collect(),
        snap.route_configs.iter().map(|r| &r.config).collect(),
        snap.clusters
            .iter()
            .map(|c| {
                (&c.plan, {
                    let mut eps: Vec<String> =
                        c.endpoints.values().map(|e| e.addr.to_string()).collect();
                    eps.sort();
                    eps
                })
            })
            .collect(),
    )
}
