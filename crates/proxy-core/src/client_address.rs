//! Who the client is, as an edge proxy configured by Istio decides it (Envoy's HTTP connection
//! manager with `use_remote_address: true` and `xff_num_trusted_hops`, Istio's
//! `gatewayTopology.numTrustedProxies`).
//!
//! With no trusted proxy in front (the default), the client is the connection's peer: the
//! address the PROXY protocol header gave, else the socket's. `x-forwarded-for` is then only
//! appended to, never believed, so a client cannot forge its address. With `N` trusted proxies,
//! the last of them is the peer and appended its own client to `x-forwarded-for`: the client is
//! the address `N - 1` entries from the right of the header as received, or the peer when the
//! header is shorter or that entry is not an IP address (Envoy's `getLastAddressFromXFF`).
//!
//! ```
//! use std::net::IpAddr;
//! use portcullis_proxy_core::client_address::ClientAddress;
//!
//! let peer: IpAddr = "10.0.0.5".parse().unwrap(); // the load balancer
//! let forged = Some("6.6.6.6, 203.0.113.7");
//!
//! // Nothing trusted: the peer, whatever the header says.
//! let client = ClientAddress::resolve(peer, forged, 0);
//! assert_eq!(client.address, peer);
//!
//! // One trusted proxy: the entry it appended, the rightmost.
//! let client = ClientAddress::resolve(peer, forged, 1);
//! assert_eq!(client.address, "203.0.113.7".parse::<IpAddr>().unwrap());
//! assert_eq!(client.external_address(), Some(client.address));
//! ```

use std::net::IpAddr;

/// The client of a request, and whether it comes from outside the trusted network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientAddress {
    /// The client's address: for `x-envoy-external-address`, `sourceIP` hashing, the access
    /// log's `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub address: IpAddr,
    /// Whether the request is internal: it came straight from an internal address (private,
    /// loopback or unique-local) with no `x-forwarded-for` of its own (Envoy's rule).
    pub internal: bool,
}

impl ClientAddress {
    /// The client of a request from `peer` (the connection's peer, after any PROXY protocol
    /// header) carrying `x_forwarded_for` (all its values joined by `,`, as received), with
    /// `trusted_hops` trusted proxies in front.
    pub fn resolve(peer: IpAddr, x_forwarded_for: Option<&str>, trusted_hops: u32) -> Self {
        let from_header = match (trusted_hops, x_forwarded_for) {
            (0, _) | (_, None) => None,
            (n, Some(xff)) => nth_from_right(xff, n - 1),
        };
        let address = from_header.unwrap_or(peer);
        Self {
            address,
            internal: x_forwarded_for.is_none() && is_internal(address),
        }
    }

    /// The value of `x-envoy-external-address`: the client's address for a request from
    /// outside (an edge request), none for an internal one.
    pub fn external_address(&self) -> Option<IpAddr> {
        (!self.internal).then_some(self.address)
    }
}

/// The entry `skip` places from the right of an `x-forwarded-for` value, if it is an address.
fn nth_from_right(xff: &str, skip: u32) -> Option<IpAddr> {
    let skip = usize::try_from(skip).ok()?;
    xff.rsplit(',').nth(skip)?.trim().parse().ok()
}

/// Envoy's `isInternalAddress`: RFC 1918, loopback, and IPv6 unique-local (`fd00::/8`) and
/// loopback addresses.
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_private() || v4.is_loopback();
            }
            v6.is_loopback() || v6.octets().first() == Some(&0xfd)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_hops_the_header_is_never_believed() {
        for xff in [
            None,
            Some("1.2.3.4"),
            Some("garbage"),
            Some("1.1.1.1, 2.2.2.2"),
        ] {
            let c = ClientAddress::resolve(ip("198.51.100.1"), xff, 0);
            assert_eq!(c.address, ip("198.51.100.1"));
        }
    }

    #[test]
    fn trusted_hops_count_from_the_right() {
        let xff = Some("203.0.113.1,198.51.100.2 , 10.1.1.1");
        let peer = ip("10.0.0.9");
        assert_eq!(ClientAddress::resolve(peer, xff, 1).address, ip("10.1.1.1"));
        assert_eq!(
            ClientAddress::resolve(peer, xff, 2).address,
            ip("198.51.100.2")
        );
        assert_eq!(
            ClientAddress::resolve(peer, xff, 3).address,
            ip("203.0.113.1")
        );
        // Fewer entries than hops, or an entry that is not an address: the peer.
        assert_eq!(ClientAddress::resolve(peer, xff, 4).address, peer);
        assert_eq!(
            ClientAddress::resolve(peer, Some("unknown"), 1).address,
            peer
        );
        assert_eq!(ClientAddress::resolve(peer, None, 1).address, peer);
    }

    #[test]
    fn internal_needs_an_internal_peer_and_no_header() {
        assert!(ClientAddress::resolve(ip("127.0.0.1"), None, 0).internal);
        assert!(ClientAddress::resolve(ip("192.168.1.2"), None, 0).internal);
        assert!(ClientAddress::resolve(ip("fd00::1"), None, 0).internal);
        assert!(!ClientAddress::resolve(ip("127.0.0.1"), Some("10.0.0.1"), 0).internal);
        let external = ClientAddress::resolve(ip("203.0.113.9"), None, 0);
        assert_eq!(external.external_address(), Some(ip("203.0.113.9")));
    }
}
