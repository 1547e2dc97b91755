//! Load balancing helpers: request hashing and the consistent-hash tables.
//!
//! Picking itself lives on [`Cluster::pick`](crate::cluster::Cluster::pick).

pub(crate) mod hash;
pub(crate) mod tables;

pub use hash::{ConnectionAddresses, CookieHash, HashPolicy, RequestHash, hash_request, xx_hash64};
pub use tables::{DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_MAXIMUM_RING_SIZE, MAX_MAGLEV_TABLE_SIZE};
