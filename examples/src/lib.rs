//! Runnable programs built on the Portcullis crates, and the code they share.
//!
//! * `cargo run --release --example conformance -- <suite> <file>...` runs a conformance suite
//!   of `../shared/conformance/` (see [`conformance`]).
#![forbid(unsafe_code)]

pub mod conformance;
