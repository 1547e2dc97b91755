//! The bridge from Istio configuration to the Portcullis engines.
//!
//! **Not implemented yet.** Given a loaded configuration, a service registry and a gateway
//! workload's labels, this crate will build listeners, filter chains, route tables and clusters
//! in the types of `portcullis-route-match`, `portcullis-tls` and `portcullis-proxy-core`, as
//! Istio's pilot builds them for Envoy.
#![forbid(unsafe_code)]
