//! Host and route lookup with Envoy's matching rules.
//!
//! **Not implemented yet.** This crate will select a listener by port, a filter chain by SNI, a
//! virtual host by authority and the first matching route of an ordered table, with its own small
//! input types so that gateways that do not use Istio's model can embed it.
#![forbid(unsafe_code)]
