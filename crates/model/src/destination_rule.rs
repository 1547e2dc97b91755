//! `DestinationRule`.
use serde::{Deserialize, Serialize};

/// Placeholder, being written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DestinationRule {}
