//! Consistent-hash keys: Envoy's route `hash_policy` evaluated against a request, and the
//! xxHash64 function Envoy uses for them and for its hash rings.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{COOKIE, HeaderName, HeaderValue};

use crate::request::RequestHead;

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u64::from_le_bytes(buf)
}

fn read_u32(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 4];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    u64::from(u32::from_le_bytes(buf))
}

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge(acc: u64, val: u64) -> u64 {
    (acc ^ round(0, val)).wrapping_mul(P1).wrapping_add(P4)
}

/// xxHash64 of `bytes` with `seed`: the hash Envoy uses for hash policies, ring hash and
/// maglev (`HashUtil::xxHash64`).
///
/// ```
/// use portcullis_proxy_core::lb::xx_hash64;
///
/// assert_eq!(xx_hash64(b"", 0), 0xEF46_DB37_51D8_E999);
/// assert_eq!(xx_hash64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
/// ```
pub fn xx_hash64(bytes: &[u8], seed: u64) -> u64 {
    let len = bytes.len() as u64;
    let mut rest = bytes;
    let mut h = if bytes.len() >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while rest.len() >= 32 {
            let (stripe, tail) = rest.split_at(32);
            let (a, b) = stripe.split_at(16);
            let (a1, a2) = a.split_at(8);
            let (b1, b2) = b.split_at(8);
            v1 = round(v1, read_u64(a1));
            v2 = round(v2, read_u64(a2));
            v3 = round(v3, read_u64(b1));
            v4 = round(v4, read_u64(b2));
            rest = tail;
        }
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge(h, v1);
        h = merge(h, v2);
        h = merge(h, v3);
        merge(h, v4)
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len);
    while rest.len() >= 8 {
        let (word, tail) = rest.split_at(8);
        h ^= round(0, read_u64(word));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = tail;
    }
    if rest.len() >= 4 {
        let (word, tail) = rest.split_at(4);
        h ^= read_u32(word).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = tail;
    }
    for byte in rest {
        h ^= u64::from(*byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// Envoy's `xxHash64` over a list: each element hashed with the previous hash as seed.
fn xx_hash64_all<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    parts
        .into_iter()
        .fold(0, |seed, part| xx_hash64(part, seed))
}

/// A cookie hash policy: hash the cookie `name`; when the request has none and `ttl` is set,
/// mint one (see [`hash_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieHash {
    /// Cookie name.
    pub name: String,
    /// `Path` attribute of a minted cookie (omitted when empty).
    pub path: String,
    /// Lifetime of a minted cookie; `None` means no cookie is minted, zero mints a session
    /// cookie (no `Max-Age`).
    pub ttl: Option<Duration>,
    /// Extra attributes of a minted cookie, `(name, value)`; an empty value writes the name
    /// alone.
    pub attributes: Vec<(String, String)>,
}

/// One entry of a route's consistent-hash policy (Istio `DestinationRule`
/// `loadBalancer.consistentHash`, which pilot puts on the route as Envoy's `hash_policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashPolicy {
    /// `httpHeaderName`: hash every value of the header (sorted, so order does not matter).
    Header(HeaderName),
    /// `httpCookie`.
    Cookie(CookieHash),
    /// `useSourceIp`: hash the downstream IP address (without port).
    SourceIp,
    /// `httpQueryParameterName`: hash the first value of the query parameter.
    QueryParameter(String),
}

/// The downstream connection's addresses, used by source-IP hashing and cookie minting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionAddresses {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// The gateway's local address of the connection.
    pub local: Option<SocketAddr>,
}

/// The result of [`hash_request`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHash {
    /// The hash to pick an endpoint with; `None` when no policy produced one (the consistent
    /// hash load balancers then pick with a random value, as Envoy does).
    pub hash: Option<u64>,
    /// A `set-cookie` value to add to the response, when a cookie was minted.
    pub set_cookie: Option<HeaderValue>,
}

/// Evaluates hash policies in order, as Envoy's `HashPolicyImpl::generateHash`: each policy
/// that yields a hash is combined into the running one (`rotl(h, 1) ^ new`).
///
/// A cookie policy whose cookie is absent and whose `ttl` is set mints a cookie the way
/// Envoy's router does: the value is the 16-hex-digit xxHash64 of the connection's remote
/// then local address (`"10.0.0.1:5555" + "10.0.0.2:443"`), so concurrent requests of one
/// connection receive the same cookie, and the request is hashed as if it had carried it.
///
/// ```
/// use std::time::Duration;
/// use http::{Method, uri::Scheme};
/// use portcullis_proxy_core::{lb::{hash_request, ConnectionAddresses, CookieHash, HashPolicy}, decide::RequestHead};
///
/// let policy = [HashPolicy::Cookie(CookieHash {
///     name: "session".into(),
///     path: "/".into(),
///     ttl: Some(Duration::from_secs(60)),
///     attributes: vec![],
/// })];
/// let head = RequestHead::new(Method::GET, Scheme::HTTP, "example.com", "/");
/// let out = hash_request(&policy, &head, &ConnectionAddresses::default());
/// let cookie = out.set_cookie.unwrap();
/// assert!(cookie.to_str().unwrap().starts_with("session=\""));
/// assert!(cookie.to_str().unwrap().ends_with("\"; Max-Age=60; Path=/; HttpOnly"));
/// assert!(out.hash.is_some());
/// ```
pub fn hash_request(
    policies: &[HashPolicy],
    head: &RequestHead,
    connection: &ConnectionAddresses,
) -> RequestHash {
    let mut out = RequestHash::default();
    for policy in policies {
        let next = match policy {
            HashPolicy::Header(name) => {
                let mut values: Vec<&[u8]> = head
                    .headers
                    .get_all(name)
                    .iter()
                    .map(HeaderValue::as_bytes)
                    .collect();
                if values.is_empty() {
                    None
                } else {
                    values.sort_unstable();
                    Some(xx_hash64_all(values))
                }
            }
            HashPolicy::SourceIp => connection
                .remote
                .map(|addr| xx_hash64(addr.ip().to_string().as_bytes(), 0)),
            HashPolicy::QueryParameter(name) => head.query().and_then(|query| {
                query
                    .split('&')
                    .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| xx_hash64(v.as_bytes(), 0))
            }),
            HashPolicy::Cookie(cookie) => match find_cookie(head, &cookie.name) {
                Some(value) => Some(xx_hash64(value.as_bytes(), 0)),
                None => cookie.ttl.map(|ttl| {
                    let value = mint_cookie_value(connection);
                    out.set_cookie = set_cookie_value(cookie, &value, ttl);
                    xx_hash64(value.as_bytes(), 0)
                }),
            },
        };
        if let Some(next) = next {
            out.hash = Some(match out.hash {
                Some(h) => h.rotate_left(1) ^ next,
                None => next,
            });
        }
    }
    out
}

/// The value of cookie `name` in the request's `cookie` headers, if present.
fn find_cookie<'a>(head: &'a RequestHead, name: &str) -> Option<&'a str> {
    head.headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn mint_cookie_value(connection: &ConnectionAddresses) -> String {
    let mut key = String::new();
    if let Some(remote) = connection.remote {
        key.push_str(&remote.to_string());
    }
    if let Some(local) = connection.local {
        key.push_str(&local.to_string());
    }
    format!("{:016x}", xx_hash64(key.as_bytes(), 0))
}

/// Envoy's `makeSetCookieValue(key, value, path, max_age, httponly = true, attributes)`.
fn set_cookie_value(cookie: &CookieHash, value: &str, ttl: Duration) -> Option<HeaderValue> {
    let mut text = format!("{}=\"{value}\"", cookie.name);
    if ttl.as_secs() != 0 {
        text.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if !cookie.path.is_empty() {
        text.push_str("; Path=");
        text.push_str(&cookie.path);
    }
    for (name, value) in &cookie.attributes {
        text.push_str("; ");
        text.push_str(name);
        if !value.is_empty() {
            text.push('=');
            text.push_str(value);
        }
    }
    text.push_str("; HttpOnly");
    HeaderValue::from_str(&text).ok()
}
