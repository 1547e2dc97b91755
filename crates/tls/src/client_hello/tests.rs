#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn u16be(v: usize) -> [u8; 2] {
    u16::try_from(v).unwrap().to_be_bytes()
}

fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut out = ty.to_be_bytes().to_vec();
    out.extend(u16be(data.len()));
    out.extend(data);
    out
}

fn sni_ext(name: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend(u16be(name.len()));
    entry.extend(name.as_bytes());
    let mut list = u16be(entry.len()).to_vec();
    list.extend(entry);
    ext(EXT_SERVER_NAME, &list)
}

fn alpn_ext(protos: &[&[u8]]) -> Vec<u8> {
    let mut entries = Vec::new();
    for p in protos {
        entries.push(u8::try_from(p.len()).unwrap());
        entries.extend(*p);
    }
    let mut list = u16be(entries.len()).to_vec();
    list.extend(entries);
    ext(EXT_ALPN, &list)
}

fn versions_ext(versions: &[u16]) -> Vec<u8> {
    let mut list = vec![u8::try_from(versions.len() * 2).unwrap()];
    for v in versions {
        list.extend(v.to_be_bytes());
    }
    ext(EXT_SUPPORTED_VERSIONS, &list)
}

/// The ClientHello body (after the 4-byte handshake header).
fn body(legacy_version: u16, extensions: Option<Vec<u8>>) -> Vec<u8> {
    let mut b = legacy_version.to_be_bytes().to_vec();
    b.extend([7u8; 32]); // random
    b.push(0); // session id
    b.extend([0, 2, 0x13, 0x01]); // one cipher suite
    b.extend([1, 0]); // null compression
    if let Some(exts) = extensions {
        b.extend(u16be(exts.len()));
        b.extend(exts);
    }
    b
}

fn handshake(body: &[u8]) -> Vec<u8> {
    let mut h = vec![HANDSHAKE_CLIENT_HELLO];
    h.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    h.extend(body);
    h
}

/// Splits a handshake message into records of at most `chunk` bytes.
fn records(handshake: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in handshake.chunks(chunk) {
        out.extend([CONTENT_TYPE_HANDSHAKE, 3, 1]);
        out.extend(u16be(part.len()));
        out.extend(part);
    }
    out
}

pub(crate) fn hand_built(sni: Option<&str>, alpn: &[&[u8]], versions: &[u16]) -> Vec<u8> {
    let mut exts = Vec::new();
    exts.extend(ext(0xff01, &[0])); // renegotiation_info, ignored
    if let Some(name) = sni {
        exts.extend(sni_ext(name));
    }
    if !alpn.is_empty() {
        exts.extend(alpn_ext(alpn));
    }
    if !versions.is_empty() {
        exts.extend(versions_ext(versions));
    }
    records(&handshake(&body(0x0303, Some(exts))), 16384)
}

fn parsed(input: &[u8]) -> ClientHelloInfo {
    match peek_client_hello(input) {
        ClientHelloPeek::ClientHello(info) => info,
        other => panic!("expected a ClientHello, got {other:?}"),
    }
}

#[test]
fn hand_built_hello() {
    let bytes = hand_built(
        Some("Api.Example.COM"),
        &[b"h2", b"http/1.1"],
        &[0x0304, 0x0303],
    );
    let info = parsed(&bytes);
    assert_eq!(info.server_name.as_deref(), Some("api.example.com"));
    assert_eq!(info.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(info.max_version(), 0x0304);
    assert!(info.offers_alpn(b"h2"));
    assert_eq!(info.len, bytes.len());
    // Trailing application bytes after the ClientHello do not matter.
    let mut more = bytes;
    more.extend(b"trailing");
    assert_eq!(
        parsed(&more).server_name.as_deref(),
        Some("api.example.com")
    );
}

#[test]
fn no_extensions_and_no_sni() {
    let bytes = records(&handshake(&body(0x0301, None)), 16384);
    let info = parsed(&bytes);
    assert_eq!(info.server_name, None);
    assert!(info.alpn.is_empty());
    assert_eq!(info.max_version(), 0x0301);
    let bytes = hand_built(None, &[], &[]);
    assert_eq!(parsed(&bytes).server_name, None);
}

#[test]
fn every_prefix_needs_more() {
    let bytes = hand_built(Some("example.com"), &[b"h2"], &[0x0304]);
    for n in 0..bytes.len() {
        match peek_client_hello(&bytes[..n]) {
            ClientHelloPeek::NeedMore { needed } => {
                assert!(
                    needed > n && needed <= bytes.len(),
                    "prefix {n}: needed {needed}"
                );
            }
            other => panic!("prefix {n}: {other:?}"),
        }
    }
}

#[test]
fn needed_is_a_lower_bound_of_where_the_answer_changes() {
    // Fuzz finding (fuzz/regressions/client_hello/needed-overstated-at-record-header): after a
    // complete record, `needed` was the end of the next record header, though its first byte
    // alone already decides "not a handshake record".
    let mut bytes = vec![22, 3, 1, 0, 4, 1, 1, 0, 0];
    assert_eq!(
        peek_client_hello(&bytes),
        ClientHelloPeek::NeedMore { needed: 10 }
    );
    bytes.push(23);
    assert_eq!(
        peek_client_hello(&bytes),
        ClientHelloPeek::NotTls(NotTlsReason::NotHandshakeRecord)
    );
    // Likewise inside a record: the handshake type is checked at its first byte, the length
    // once the 4-byte handshake header is in.
    assert_eq!(
        peek_client_hello(&[22, 3, 1, 0, 100]),
        ClientHelloPeek::NeedMore { needed: 6 }
    );
    assert_eq!(
        peek_client_hello(&[22, 3, 1, 0, 100, 2]),
        ClientHelloPeek::NotTls(NotTlsReason::NotClientHello)
    );
    assert_eq!(
        peek_client_hello(&[22, 3, 1, 0, 100, 1, 0xff]),
        ClientHelloPeek::NeedMore { needed: 9 }
    );
    assert_eq!(
        peek_client_hello(&[22, 3, 1, 0, 100, 1, 0xff, 0, 0]),
        ClientHelloPeek::NotTls(NotTlsReason::TooLarge)
    );
    assert_eq!(
        peek_client_hello(&[22]),
        ClientHelloPeek::NeedMore { needed: 2 }
    );
    assert_eq!(
        peek_client_hello(&[22, 3]),
        ClientHelloPeek::NeedMore { needed: 5 }
    );
}

/// A reader that grows its buffer to what `NeedMore` asks, up to `MAX_CLIENT_HELLO_WIRE_LEN`
/// (as a listener peeking at its socket does), gets the largest ClientHello accepted.
#[test]
fn the_largest_hello_fits_in_the_wire_limit() {
    let sni = sni_ext("big.example.com");
    let base = body(0x0303, Some(sni.clone())).len();
    // A padding extension (type 21) fills the message up to the limit exactly.
    let pad = MAX_CLIENT_HELLO_LEN - base - 4;
    let exts = [sni, ext(21, &vec![0u8; pad])].concat();
    let hs = handshake(&body(0x0303, Some(exts)));
    assert_eq!(hs.len(), MAX_CLIENT_HELLO_LEN + 4);
    let wire = records(&hs, MAX_RECORD_LEN);
    assert_eq!(wire.len(), MAX_CLIENT_HELLO_WIRE_LEN);
    let mut have = 1;
    loop {
        match peek_client_hello(&wire[..have]) {
            ClientHelloPeek::NeedMore { needed } => {
                assert!(
                    needed > have && needed <= MAX_CLIENT_HELLO_WIRE_LEN,
                    "{needed}"
                );
                have = needed;
            }
            ClientHelloPeek::ClientHello(info) => {
                assert_eq!(info.server_name.as_deref(), Some("big.example.com"));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn spans_several_records() {
    let hs = handshake(&body(
        0x0303,
        Some([sni_ext("split.example.com"), alpn_ext(&[b"h2"])].concat()),
    ));
    for chunk in [1, 2, 3, 5, 17, 100] {
        let bytes = records(&hs, chunk);
        let info = parsed(&bytes);
        assert_eq!(
            info.server_name.as_deref(),
            Some("split.example.com"),
            "chunk {chunk}"
        );
        assert_eq!(info.len, bytes.len());
        for n in 0..bytes.len() {
            assert!(
                matches!(
                    peek_client_hello(&bytes[..n]),
                    ClientHelloPeek::NeedMore { .. }
                ),
                "chunk {chunk} prefix {n}"
            );
        }
    }
}

#[test]
fn not_tls() {
    let cases: &[(&[u8], NotTlsReason)] = &[
        (b"GET / HTTP/1.1\r\n", NotTlsReason::NotHandshakeRecord),
        (b"G", NotTlsReason::NotHandshakeRecord),
        (b"PRI * HTTP/2.0", NotTlsReason::NotHandshakeRecord),
        (&[0x16, 0x02], NotTlsReason::UnknownRecordVersion),
        (&[0x17, 0x03, 0x03, 0, 5], NotTlsReason::NotHandshakeRecord),
        (&[0x16, 0x03, 0x01, 0, 0], NotTlsReason::BadRecordLength),
        (
            &[0x16, 0x03, 0x01, 0x40, 0x01],
            NotTlsReason::BadRecordLength,
        ),
        (
            &[0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0],
            NotTlsReason::NotClientHello,
        ),
        (
            &[0x16, 0x03, 0x01, 0, 4, 1, 0x01, 0, 1],
            NotTlsReason::TooLarge,
        ),
        // SSLv2-compatible hello.
        (
            &[0x80, 0x2e, 0x01, 0x03, 0x01],
            NotTlsReason::NotHandshakeRecord,
        ),
    ];
    for (input, reason) in cases {
        assert_eq!(
            peek_client_hello(input),
            ClientHelloPeek::NotTls(*reason),
            "{input:?}"
        );
    }
}

#[test]
fn malformed_hellos() {
    let bad_bodies: Vec<Vec<u8>> = vec![
        // Truncated inside the random.
        0x0303u16
            .to_be_bytes()
            .iter()
            .copied()
            .chain([0u8; 5])
            .collect(),
        // Duplicate extension.
        body(0x0303, Some([sni_ext("a.com"), sni_ext("b.com")].concat())),
        // Extension length past the end.
        body(0x0303, Some(vec![0, 0, 0, 9, 0])),
        // Non-ASCII server name.
        body(0x0303, Some(sni_ext("bad\u{e9}.com"))),
        // Empty ALPN protocol.
        body(0x0303, Some(alpn_ext(&[b""]))),
        // Odd supported_versions length.
        body(0x0303, Some(ext(EXT_SUPPORTED_VERSIONS, &[3, 3, 4, 3]))),
        // legacy_version 2.0.
        body(0x0200, None),
    ];
    for b in bad_bodies {
        let bytes = records(&handshake(&b), 16384);
        assert!(
            matches!(
                peek_client_hello(&bytes),
                ClientHelloPeek::NotTls(NotTlsReason::Malformed(_))
            ),
            "{bytes:?} -> {:?}",
            peek_client_hello(&bytes)
        );
    }
}

fn rustls_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[test]
fn rustls_generated_hello() {
    let bytes = rustls_hello("www.example.org", &[b"h2", b"http/1.1"]);
    let info = parsed(&bytes);
    assert_eq!(info.server_name.as_deref(), Some("www.example.org"));
    assert_eq!(info.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert!(info.supported_versions.contains(&0x0304));
    for n in 0..bytes.len() {
        assert!(matches!(
            peek_client_hello(&bytes[..n]),
            ClientHelloPeek::NeedMore { .. }
        ));
    }
    // An IP address is never sent as SNI.
    let bytes = rustls_hello("10.0.0.1", &[]);
    assert_eq!(parsed(&bytes).server_name, None);
}

/// The ClientHello of `openssl s_client -tls1_1 -servername a.interop.test` (OpenSSL 3.0,
/// `-cipher DEFAULT:@SECLEVEL=0`), as scripts/tls-interop.sh sends it: record version 3.1,
/// `legacy_version` 3.2, no `supported_versions`, no `signature_algorithms`.
const OPENSSL_TLS11_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0x7a, 0x01, 0x00, 0x00, 0x76, 0x03, 0x02, 0x27, 0x55, 0xbd, 0xa7, 0xcf,
    0x27, 0xb9, 0xb8, 0x45, 0xb4, 0xe3, 0x93, 0x89, 0x36, 0x12, 0x31, 0xdf, 0xa9, 0xd7, 0x8a, 0xd3,
    0x22, 0x90, 0x63, 0x84, 0x77, 0x21, 0x8a, 0x05, 0x57, 0xf4, 0x62, 0x00, 0x00, 0x12, 0xc0, 0x0a,
    0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff,
    0x01, 0x00, 0x00, 0x3b, 0x00, 0x00, 0x00, 0x13, 0x00, 0x11, 0x00, 0x00, 0x0e, 0x61, 0x2e, 0x69,
    0x6e, 0x74, 0x65, 0x72, 0x6f, 0x70, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03,
    0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00,
    0x19, 0x00, 0x18, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00,
];

/// What rustls itself answers `hello` with: the alert description of its first record.
fn rustls_answer(hello: &[u8]) -> Option<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.interop.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
    conn.read_tls(&mut &hello[..]).unwrap();
    assert!(conn.process_new_packets().is_err());
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    (out.first() == Some(&21)).then(|| out[6])
}

#[test]
fn tls11_hello_gets_protocol_version_not_handshake_failure() {
    let info = parsed(OPENSSL_TLS11_HELLO);
    assert_eq!(info.server_name.as_deref(), Some("a.interop.test"));
    assert_eq!(info.max_version(), 0x0302);
    // rustls alone: handshake_failure (40), since the hello has no signature_algorithms.
    assert_eq!(rustls_answer(OPENSSL_TLS11_HELLO), Some(40));
    // What Envoy sends, and what the gateway writes instead: protocol_version (70).
    assert_eq!(
        info.protocol_version_alert(),
        Some([21, 0x03, 0x02, 0, 2, 2, 70])
    );
}

#[test]
fn protocol_version_alert_only_below_tls12() {
    // TLS 1.2 and 1.3 clients (GREASE ignored) are left to rustls.
    assert_eq!(
        parsed(&hand_built(None, &[], &[])).protocol_version_alert(),
        None
    );
    let tls13 = hand_built(Some("a.test"), &[], &[0x0a0a, 0x0304]);
    assert_eq!(parsed(&tls13).protocol_version_alert(), None);
    let tls12 = records(&handshake(&body(0x0303, None)), 16384);
    assert_eq!(parsed(&tls12).protocol_version_alert(), None);
    // supported_versions decides over legacy_version.
    let old = hand_built(Some("a.test"), &[], &[0x0302, 0x0301]);
    assert_eq!(
        parsed(&old).protocol_version_alert(),
        Some([21, 0x03, 0x03, 0, 2, 2, 70])
    );
    // TLS 1.0, and SSL 3.0 answered with a TLS 1.0 record.
    let tls10 = records(&handshake(&body(0x0301, None)), 16384);
    assert_eq!(
        parsed(&tls10).protocol_version_alert(),
        Some([21, 0x03, 0x01, 0, 2, 2, 70])
    );
    let ssl3 = records(&handshake(&body(0x0300, None)), 16384);
    assert_eq!(
        parsed(&ssl3).protocol_version_alert(),
        Some([21, 0x03, 0x01, 0, 2, 2, 70])
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = peek_client_hello(&bytes);
    }

    #[test]
    fn handshake_prefixed_bytes_never_panic(
        len in 0u16..600,
        tail in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        // Valid record and handshake headers with garbage inside exercise the parser itself.
        let mut bytes = vec![0x16, 3, 1];
        bytes.extend(len.to_be_bytes());
        bytes.push(1);
        bytes.extend(&u32::from(len.saturating_sub(4)).to_be_bytes()[1..]);
        bytes.extend(tail);
        let _ = peek_client_hello(&bytes);
    }

    #[test]
    fn mutated_hello_never_panics(
        pos in 0usize..200,
        value in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut bytes = hand_built(Some("mutate.example.com"), &[b"h2"], &[0x0304]);
        if let Some(b) = bytes.get_mut(pos) {
            *b = value;
        }
        bytes.truncate(bytes.len().saturating_sub(cut % 8));
        let _ = peek_client_hello(&bytes);
    }

    #[test]
    fn sni_round_trips(name in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,20}){0,4}", chunk in 1usize..64) {
        let hs = handshake(&body(0x0303, Some(sni_ext(&name))));
        let bytes = records(&hs, chunk);
        prop_assert_eq!(parsed(&bytes).server_name, Some(name));
    }
}
