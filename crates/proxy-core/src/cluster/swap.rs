//! Make-before-break configuration swaps.
//!
//! A new configuration is built completely, off the request path, then published with one
//! atomic pointer swap ([`Swap::store`]). A request loads the current `Arc` once
//! ([`Swap::load`]) and keeps it to the end, so it never sees half of a configuration and
//! the old one is freed when its last request finishes.
//!
//! [`ClusterSet::build`] builds the clusters of a new configuration from specs, adopting the
//! live state ([`ClusterState`](crate::cluster::ClusterState), per-endpoint outlier state and
//! counters) of clusters and endpoints that still exist in the previous set.
//!
//! `Swap` is a `std::sync::RwLock<Arc<T>>`: readers hold the lock only to clone the `Arc`
//! (one atomic increment), writers only to replace it. `arc-swap` would make `load`
//! lock-free, but configuration swaps are rare and the read-side critical section is a
//! handful of instructions, so a dependency is not worth it; the API leaves room to switch.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Cluster, ClusterSpec, InvalidCluster};
use crate::rt::Instant;

/// An atomically replaceable `Arc<T>`.
///
/// ```
/// use std::sync::Arc;
/// use portcullis_proxy_core::cluster::Swap;
///
/// let config = Swap::new(Arc::new("v1"));
/// let in_flight = config.load();
/// config.store(Arc::new("v2"));
/// assert_eq!(*in_flight, "v1"); // the request keeps what it started with
/// assert_eq!(*config.load(), "v2");
/// ```
#[derive(Debug, Default)]
pub struct Swap<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Swap<T> {
    /// A swap holding `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self {
            current: RwLock::new(value),
        }
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Publishes `value`; returns the previous one.
    pub fn store(&self, value: Arc<T>) -> Arc<T> {
        match self.current.write() {
            Ok(mut guard) => std::mem::replace(&mut *guard, value),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), value),
        }
    }

    /// Builds a new value from the current one with `build` (outside the lock) and publishes
    /// it, unless `build` fails. Concurrent updaters should be serialized by the caller (a
    /// configuration watcher usually is a single task).
    pub fn update<E>(&self, build: impl FnOnce(&T) -> Result<T, E>) -> Result<Arc<T>, E> {
        let current = self.load();
        let next = Arc::new(build(&current)?);
        self.store(Arc::clone(&next));
        Ok(next)
    }
}

/// The clusters of one configuration, by name.
#[derive(Debug, Default, Clone)]
pub struct ClusterSet {
    clusters: BTreeMap<Arc<str>, Arc<Cluster>>,
}

impl ClusterSet {
    /// Builds every cluster of `specs`; a cluster whose name is in `previous` adopts its
    /// state (see [`Cluster::build`]). Clusters of `previous` not in `specs` are dropped
    /// (their state lives on only while old requests hold them). A later spec with the name
    /// of an earlier one replaces it.
    ///
    /// ```
    /// use portcullis_proxy_core::{cluster::{ClusterSet, ClusterSpec, EndpointSpec}, rt::Instant};
    ///
    /// let v1 = ClusterSet::build(
    ///     [ClusterSpec::new("a", vec![EndpointSpec::new("10.0.0.1", 80)])].iter(),
    ///     None,
    ///     Instant::ZERO,
    /// )?;
    /// let v2 = ClusterSet::build(
    ///     [ClusterSpec::new("a", vec![EndpointSpec::new("10.0.0.1", 80), EndpointSpec::new("10.0.0.2", 80)])].iter(),
    ///     Some(&v1),
    ///     Instant::ZERO,
    /// )?;
    /// // Same live state: pool counters, round-robin position, outlier schedule.
    /// assert!(std::sync::Arc::ptr_eq(v1.get("a").unwrap().state(), v2.get("a").unwrap().state()));
    /// # Ok::<(), portcullis_proxy_core::cluster::InvalidCluster>(())
    /// ```
    pub fn build<'a>(
        specs: impl IntoIterator<Item = &'a ClusterSpec>,
        previous: Option<&Self>,
        now: Instant,
    ) -> Result<Self, InvalidCluster> {
        let mut clusters = BTreeMap::new();
        for spec in specs {
            let old = previous.and_then(|p| p.clusters.get(&spec.name));
            let cluster = Cluster::build(spec, old.map(AsRef::as_ref), now)?;
            clusters.insert(Arc::clone(&spec.name), Arc::new(cluster));
        }
        Ok(Self { clusters })
    }

    /// The cluster named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Every cluster, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Cluster>)> {
        self.clusters.iter().map(|(k, v)| (&**k, v))
    }

    /// How many clusters there are.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }
}
