//! Runnable programs built on the Portcullis crates, and the code they share.
//!
//! * `cargo run --release --example conformance -- <suite> <file>...` runs a conformance suite
//!   of `testdata/conformance/` (see [`conformance`]).
//! * `cargo run --release --example gateway -- [PATH...]` runs the example gateway, a thin
//!   binary over `portcullis-gateway`; without arguments it serves a built-in [`demo`].
#![forbid(unsafe_code)]

pub mod conformance;
pub mod demo;
