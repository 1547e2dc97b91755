//! The PROXY protocol (v1 text and v2 binary) a TCP load balancer puts in front of a
//! connection, so that the client's address survives it (Istio's
//! `gatewayTopology.proxyProtocol`, Envoy's `envoy.filters.listener.proxy_protocol`).
//!
//! Parsing is the `ppp` crate's; this module decides, as Envoy's listener filter does, what a
//! connection's addresses are once the header has been read: the header's for a `PROXY`
//! command over TCP, the socket's own for v1 `UNKNOWN`, a v2 `LOCAL` command (a load balancer's
//! health check) or an address family other than IP. Anything that is not a complete, valid
//! header is [`ProxyHeader::Invalid`]: the connection is closed, never served with the load
//! balancer's address standing in for the client's.
//!
//! ```
//! use std::net::SocketAddr;
//! use portcullis_proxy_core::proxy_protocol::{parse, ProxyHeader};
//!
//! let bytes = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n";
//! let ProxyHeader::Complete { consumed, source, .. } = parse(bytes) else { panic!() };
//! assert_eq!(source, Some("203.0.113.7:51000".parse::<SocketAddr>().unwrap()));
//! assert_eq!(&bytes[consumed..], b"GET / HTTP/1.1\r\n");
//!
//! assert_eq!(parse(b"PROXY TCP4 203.0"), ProxyHeader::Incomplete);
//! assert!(matches!(parse(b"GET / HTTP/1.1\r\n\r\n"), ProxyHeader::Invalid(_)));
//! ```

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use ppp::{HeaderResult, PartialResult as _, v1, v2};

/// The most bytes a v1 header takes (the specification's limit, CRLF included).
pub const MAX_V1_LEN: usize = 107;

/// The most bytes a v2 header takes: 16 fixed bytes and a 16-bit length.
pub const MAX_V2_LEN: usize = 16 + 65_535;

/// What the bytes read so far from a connection say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A whole header: `consumed` bytes of it, then the connection's own data.
    Complete {
        /// The header's length.
        consumed: usize,
        /// The client's address, when the header carries one for TCP over IP (`None`: use the
        /// socket's peer address).
        source: Option<SocketAddr>,
        /// The address the client connected to, when the header carries one.
        destination: Option<SocketAddr>,
    },
    /// A header may still come: read more (within the header timeout).
    Incomplete,
    /// Not a PROXY protocol header, or a malformed one: close the connection.
    Invalid(InvalidProxyHeader),
}

/// Why a connection's first bytes are not a PROXY protocol header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidProxyHeader(String);

impl fmt::Display for InvalidProxyHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PROXY protocol header: {}", self.0)
    }
}

impl std::error::Error for InvalidProxyHeader {}

/// Reads a PROXY protocol header, v2 or v1, off the start of `bytes`.
pub fn parse(bytes: &[u8]) -> ProxyHeader {
    // A v1 header is a line: read up to its CRLF (within the length limit) before parsing,
    // as Envoy does, since a cut-off line can look like a complete one with a bad field.
    let bytes = if bytes.starts_with(b"PROXY") || b"PROXY".starts_with(bytes) {
        match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(end) if end + 2 <= MAX_V1_LEN => bytes.get(..end + 2).unwrap_or(bytes),
            None if bytes.len() < MAX_V1_LEN => return ProxyHeader::Incomplete,
            _ => {
                return ProxyHeader::Invalid(InvalidProxyHeader(
                    "longer than the protocol allows".into(),
                ));
            }
        }
    } else {
        bytes
    };
    let result = HeaderResult::parse(bytes);
    if result.is_incomplete() {
        // A v1 header longer than the specification allows never completes.
        let v1_prefix = bytes.starts_with(b"PROXY");
        return if (v1_prefix && bytes.len() >= MAX_V1_LEN) || bytes.len() >= MAX_V2_LEN {
            ProxyHeader::Invalid(InvalidProxyHeader("longer than the protocol allows".into()))
        } else {
            ProxyHeader::Incomplete
        };
    }
    match result {
        HeaderResult::V1(Ok(header)) => {
            let consumed = header.header.len();
            if consumed > MAX_V1_LEN {
                return ProxyHeader::Invalid(InvalidProxyHeader(
                    "longer than the protocol allows".into(),
                ));
            }
            let (source, destination) = match header.addresses {
                v1::Addresses::Tcp4(a) => (
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        a.source_address,
                        a.source_port,
                    ))),
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        a.destination_address,
                        a.destination_port,
                    ))),
                ),
                v1::Addresses::Tcp6(a) => (
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        a.source_address,
                        a.source_port,
                        0,
                        0,
                    ))),
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        a.destination_address,
                        a.destination_port,
                        0,
                        0,
                    ))),
                ),
                v1::Addresses::Unknown => (None, None),
            };
            ProxyHeader::Complete {
                consumed,
                source,
                destination,
            }
        }
        HeaderResult::V2(Ok(header)) => {
            let consumed = header.len();
            let tcp = header.protocol == v2::Protocol::Stream;
            let (source, destination) = match (header.command, header.addresses) {
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) if tcp => (
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        a.source_address,
                        a.source_port,
                    ))),
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        a.destination_address,
                        a.destination_port,
                    ))),
                ),
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) if tcp => (
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        a.source_address,
                        a.source_port,
                        0,
                        0,
                    ))),
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        a.destination_address,
                        a.destination_port,
                        0,
                        0,
                    ))),
                ),
                // LOCAL (a health check by the load balancer itself), UDP, UNIX sockets or an
                // unspecified family: the connection's own addresses stand.
                _ => (None, None),
            };
            ProxyHeader::Complete {
                consumed,
                source,
                destination,
            }
        }
        HeaderResult::V1(Err(e)) => ProxyHeader::Invalid(InvalidProxyHeader(e.to_string())),
        HeaderResult::V2(Err(e)) => ProxyHeader::Invalid(InvalidProxyHeader(e.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn v2_ipv4(command: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        out.push(0x20 | command);
        out.push(0x11); // AF_INET, STREAM
        out.extend_from_slice(&12u16.to_be_bytes());
        out.extend_from_slice(&src);
        out.extend_from_slice(&dst);
        out.extend_from_slice(&sport.to_be_bytes());
        out.extend_from_slice(&dport.to_be_bytes());
        out
    }

    #[test]
    fn v1_tcp4_and_tcp6_give_the_client_address() {
        let ProxyHeader::Complete {
            consumed,
            source,
            destination,
        } = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\nrest")
        else {
            panic!()
        };
        assert_eq!(consumed, 45);
        assert_eq!(source, Some("[2001:db8::1]:4000".parse().unwrap()));
        assert_eq!(destination, Some("[2001:db8::2]:443".parse().unwrap()));
    }

    #[test]
    fn v1_unknown_keeps_the_socket_addresses() {
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            ProxyHeader::Complete {
                consumed: 15,
                source: None,
                destination: None
            }
        );
    }

    #[test]
    fn v2_proxy_command_gives_the_client_address_and_local_does_not() {
        let mut bytes = v2_ipv4(1, [198, 51, 100, 9], 40000, [10, 0, 0, 1], 8443);
        let header_len = bytes.len();
        bytes.extend_from_slice(b"\x16\x03\x01");
        let ProxyHeader::Complete {
            consumed, source, ..
        } = parse(&bytes)
        else {
            panic!("{:?}", parse(&bytes))
        };
        assert_eq!(consumed, header_len);
        assert_eq!(source, Some("198.51.100.9:40000".parse().unwrap()));

        let local = v2_ipv4(0, [198, 51, 100, 9], 40000, [10, 0, 0, 1], 8443);
        assert!(matches!(
            parse(&local),
            ProxyHeader::Complete { source: None, .. }
        ));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n";
        let v2 = v2_ipv4(1, [198, 51, 100, 9], 40000, [10, 0, 0, 1], 8443);
        for header in [&v1[..], &v2[..]] {
            for end in 1..header.len() {
                assert_eq!(parse(&header[..end]), ProxyHeader::Incomplete, "{end}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn a_complete_header_lies_within_the_bytes_and_parses_alone(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            v1 in proptest::prelude::any::<bool>(),
        ) {
            let data = if v1 { [b"PROXY ".as_slice(), &bytes].concat() } else { bytes };
            let parsed = parse(&data);
            if let ProxyHeader::Complete { consumed, .. } = &parsed {
                proptest::prop_assert!(*consumed <= data.len());
                proptest::prop_assert_eq!(parse(&data[..*consumed]), parsed.clone());
            }
        }
    }

    #[test]
    fn other_bytes_and_overlong_headers_are_invalid() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nhost: h\r\n\r\n"[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n",
            b"PROXY TCP4 not-an-ip 5.6.7.8 1 1\r\n",
        ] {
            assert!(
                matches!(parse(bytes), ProxyHeader::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(parse(&long), ProxyHeader::Invalid(_)));
    }
}
