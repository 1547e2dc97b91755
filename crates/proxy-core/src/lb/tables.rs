//! The consistent-hash tables: Envoy's ring hash and maglev, built once per cluster.

use super::hash::xx_hash64;

/// Envoy's default `maximum_ring_size`.
pub const DEFAULT_MAXIMUM_RING_SIZE: u64 = 8 * 1024 * 1024;

/// Envoy's default (and Istio's) maglev table size.
pub const DEFAULT_MAGLEV_TABLE_SIZE: u64 = 65_537;

/// Largest maglev table Envoy accepts.
pub const MAX_MAGLEV_TABLE_SIZE: u64 = 5_000_011;

/// A hash ring: `(hash, endpoint index)` sorted by hash.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashRing {
    entries: Vec<(u64, usize)>,
}

impl HashRing {
    /// Envoy's `RingHashLoadBalancer::Ring`: each endpoint gets a share of `scale` points in
    /// proportion to its weight, where `scale` makes the lightest endpoint get at least
    /// `ceil(min_weight × minimum_ring_size)` points, capped by `maximum_ring_size`; point `i`
    /// of an endpoint hashes `"{address}_{i}"`.
    pub(crate) fn build(hosts: &[(String, u32)], minimum: u64, maximum: u64) -> Self {
        let total: f64 = hosts.iter().map(|(_, w)| f64::from(*w)).sum();
        if hosts.is_empty() || total <= 0.0 {
            return Self::default();
        }
        let min_weight = hosts
            .iter()
            .map(|(_, w)| f64::from(*w) / total)
            .fold(f64::INFINITY, f64::min);
        let maximum = maximum.max(1) as f64;
        let minimum = (minimum.max(1) as f64).min(maximum);
        let scale = ((min_weight * minimum).ceil() / min_weight).min(maximum);
        let mut entries = Vec::with_capacity(scale.ceil() as usize);
        let mut current = 0.0f64;
        let mut target = 0.0f64;
        for (index, (key, weight)) in hosts.iter().enumerate() {
            target += scale * f64::from(*weight) / total;
            let mut i = 0u64;
            while current < target {
                let point = format!("{key}_{i}");
                entries.push((xx_hash64(point.as_bytes(), 0), index));
                i += 1;
                current += 1.0;
            }
        }
        entries.sort_by_key(|(hash, _)| *hash);
        Self { entries }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The endpoint indices from the first point at or after `hash`, walking the ring
    /// (`attempt` points further on, as Envoy does for host-predicate retries).
    pub(crate) fn walk(&self, hash: u64, attempt: u32) -> impl Iterator<Item = usize> + '_ {
        let len = self.entries.len();
        let start = self.entries.partition_point(|(h, _)| *h < hash);
        let start = if len == 0 {
            0
        } else {
            (start + attempt as usize) % len
        };
        self.entries
            .iter()
            .skip(start)
            .chain(self.entries.iter().take(start))
            .map(|(_, index)| *index)
    }

    /// How many points each endpoint holds (by endpoint index).
    #[cfg(test)]
    pub(crate) fn points_per_endpoint(&self, endpoints: usize) -> Vec<usize> {
        let mut counts = vec![0; endpoints];
        for (_, index) in &self.entries {
            if let Some(c) = counts.get_mut(*index) {
                *c += 1;
            }
        }
        counts
    }
}

/// A maglev lookup table of endpoint indices; its size is prime.
#[derive(Debug, Clone, Default)]
pub(crate) struct MaglevTable {
    table: Vec<usize>,
}

impl MaglevTable {
    /// Envoy's weighted `MaglevTable`: endpoint `i` has offset `xxHash64(address, 0) % M` and
    /// skip `xxHash64(address, 1) % (M - 1) + 1`; endpoints take turns filling their next free
    /// preferred slot, an endpoint of normalized weight `w` taking a turn on iterations where
    /// `iteration × w ≥` its running target (which grows by the largest weight per turn).
    pub(crate) fn build(hosts: &[(String, u32)], size: u64) -> Self {
        let total: f64 = hosts.iter().map(|(_, w)| f64::from(*w)).sum();
        if hosts.is_empty() || total <= 0.0 || size < 2 {
            return Self::default();
        }
        let size_usize = usize::try_from(size).unwrap_or(usize::MAX);
        let max_weight = hosts
            .iter()
            .map(|(_, w)| f64::from(*w) / total)
            .fold(0.0, f64::max);
        struct Entry {
            offset: u64,
            skip: u64,
            weight: f64,
            target: f64,
            next: u64,
        }
        let mut entries: Vec<Entry> = hosts
            .iter()
            .map(|(key, w)| Entry {
                offset: xx_hash64(key.as_bytes(), 0) % size,
                skip: xx_hash64(key.as_bytes(), 1) % (size - 1) + 1,
                weight: f64::from(*w) / total,
                target: 0.0,
                next: 0,
            })
            .collect();
        let mut table: Vec<Option<usize>> = vec![None; size_usize];
        let mut filled = 0usize;
        let mut iteration = 0u64;
        let mut stuck = false;
        while filled < size_usize {
            for (index, entry) in entries.iter_mut().enumerate() {
                if filled >= size_usize {
                    break;
                }
                if (iteration as f64) * entry.weight < entry.target {
                    continue;
                }
                entry.target += max_weight;
                // `skip` is coprime with the prime `size`, so the permutation visits every
                // slot within `size` steps; the bound only guards against a non-prime size.
                let mut placed = false;
                for _ in 0..size {
                    let slot = (entry.offset + entry.skip.wrapping_mul(entry.next) % size) % size;
                    entry.next += 1;
                    let slot = usize::try_from(slot).unwrap_or(0);
                    if let Some(cell) = table.get_mut(slot)
                        && cell.is_none()
                    {
                        *cell = Some(index);
                        filled += 1;
                        placed = true;
                        break;
                    }
                }
                if !placed {
                    stuck = true;
                    break;
                }
            }
            if stuck {
                break;
            }
            iteration += 1;
        }
        Self {
            table: table.into_iter().map(|c| c.unwrap_or(0)).collect(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The endpoint indices from slot `hash % M` onwards (the first one is Envoy's pick).
    pub(crate) fn walk(&self, hash: u64, attempt: u32) -> impl Iterator<Item = usize> + '_ {
        let hash = if attempt == 0 {
            hash
        } else {
            xx_hash64(&hash.to_le_bytes(), u64::from(attempt))
        };
        let len = self.table.len();
        let start = if len == 0 {
            0
        } else {
            usize::try_from(hash % len as u64).unwrap_or(0)
        };
        self.table
            .iter()
            .skip(start)
            .chain(self.table.iter().take(start))
            .copied()
    }

    /// How many slots each endpoint holds (by endpoint index).
    #[cfg(test)]
    pub(crate) fn slots_per_endpoint(&self, endpoints: usize) -> Vec<usize> {
        let mut counts = vec![0; endpoints];
        for index in &self.table {
            if let Some(c) = counts.get_mut(*index) {
                *c += 1;
            }
        }
        counts
    }
}

/// Whether `n` is prime (trial division; table sizes are at most a few million).
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}
