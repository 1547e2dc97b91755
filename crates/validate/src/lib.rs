//! Istio's validation and cross-resource analysis for the networking API.
//!
//! **Not implemented yet.** This crate will hold, for `Gateway`, `VirtualService`,
//! `DestinationRule` and `ServiceEntry`, every rule of Istio's admission webhook (errors and
//! warnings with field paths) and the `istioctl analyze` analyzers that concern them, plus a
//! shadowed-route analysis of its own. It depends on [`portcullis_model`] only.
#![forbid(unsafe_code)]

pub use portcullis_model as model;
