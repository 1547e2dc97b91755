//! Runnable programs built on the Portcullis crates. See the `[[example]]` entries of this
//! package: `cargo run --release --example conformance -- <suite> <file>...`.
#![forbid(unsafe_code)]
