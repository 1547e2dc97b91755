//! Load balancing helpers: request hashing and the consistent-hash tables.
//!
//! Picking itself lives on [`Cluster::pick`](crate::Cluster::pick).

pub(crate) mod hash;
pub(crate) mod tables;
