//! TLS for a gateway on rustls.
//!
//! **Not implemented yet.** This crate will turn Istio's server and client TLS settings into
//! rustls configurations, resolve certificates by SNI with live rotation, check client
//! certificates, and read a ClientHello for passthrough routing without terminating TLS.
#![forbid(unsafe_code)]
