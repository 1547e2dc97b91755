//! Entry points for fuzzing (feature `fuzzing`): each takes arbitrary bytes, must never panic,
//! and asserts the properties the crate promises. `fuzz/` calls them from cargo-fuzz targets, and
//! the regression tests replay every finding through them.

use crate::{ClientHelloPeek, peek_client_hello};

/// Inputs up to this length are read at every prefix; longer ones at prefixes chosen by their
/// own bytes (so the chunking is arbitrary too), which keeps an execution linear-ish.
const EVERY_PREFIX_UP_TO: usize = 512;

/// Arbitrary bytes as the start of a connection, delivered in arbitrary chunks: the answer for
/// every prefix is either [`ClientHelloPeek::NeedMore`] — asking for more bytes than it has,
/// and no more than the whole input when the whole input gets a definite answer — or exactly
/// the answer for the whole input (a definite answer never changes as bytes arrive). A
/// ClientHello's server name is lower case.
pub fn client_hello(data: &[u8]) {
    let last = peek_client_hello(data);
    if let ClientHelloPeek::ClientHello(info) = &last {
        // `len` is the end of the record holding the message's last byte, which may lie
        // beyond the input when the record carries more than the ClientHello.
        assert!(info.len > 5, "{info:?}");
        if let Some(name) = &info.server_name {
            assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
        }
    }
    let mut end = 0;
    while end < data.len() {
        let prefix = data.get(..end).unwrap_or_default();
        match peek_client_hello(prefix) {
            ClientHelloPeek::NeedMore { needed } => {
                assert!(
                    needed > end,
                    "NeedMore {{ needed: {needed} }} with {end} bytes"
                );
                if !matches!(last, ClientHelloPeek::NeedMore { .. }) {
                    assert!(
                        needed <= data.len(),
                        "NeedMore {{ needed: {needed} }} at {end}, but {} bytes answer {last:?}",
                        data.len()
                    );
                }
            }
            answer => assert_eq!(answer, last, "the answer at {end} bytes changed later"),
        }
        end += if data.len() <= EVERY_PREFIX_UP_TO {
            1
        } else {
            1 + usize::from(data.get(end).copied().unwrap_or(0))
        };
    }
}
