//! Sans-IO forwarding decisions and state machines for a gateway.
//!
//! **Not implemented yet.** This crate will decide what to do with a request once its route is
//! known (forward, redirect, direct response, fault, CORS) and hold the load-balancing,
//! connection-pool, outlier-detection and retry state machines. It owns no async runtime, clock
//! or random source: the embedder passes them in.
#![forbid(unsafe_code)]
