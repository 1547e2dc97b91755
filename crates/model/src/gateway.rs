//! `Gateway`: a load balancer at the edge of the mesh.
use serde::{Deserialize, Serialize};

/// Placeholder, being written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gateway {}
