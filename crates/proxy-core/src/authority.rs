//! The request's authority: which `Host` (or `:authority`, or absolute-form target) a request
//! names, and whether it is well formed.
//!
//! Two layers, both Envoy's:
//!
//! * [`authority_chars_are_valid`] is the character check of Envoy's codec
//!   (`HeaderUtility::authorityIsValid`, run by `HeaderUtility::requestHeadersValid`): the
//!   characters of HTTP/2's authority plus `@`. A space, `/`, `?`, `#`, a control character or
//!   a non-ASCII byte fails it.
//! * [`validate_authority`] adds the grammar of Envoy's universal header validator
//!   (`HeaderValidator::validateHostHeader`), which is RFC 9110 §7.2 and RFC 3986 §3.2.2:
//!   `uri-host [ ":" port ]`, no userinfo, a port from 1 to 65535.
//!
//! [`request_authority`] picks the authority of a request (RFC 9112 §3.2: exactly one `Host`;
//! §3.2.2: an absolute-form target wins over `Host`) and validates it.

use http::header::HOST;
use http::{HeaderMap, Uri};

use crate::rejection::Rejection;

/// Whether `b` may appear in an authority as Envoy's codec checks it: letters, digits and
/// `! $ % & ' ( ) * + , - . : ; = @ [ ] _ ~`.
fn is_authority_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b':'
                | b';'
                | b'='
                | b'@'
                | b'['
                | b']'
                | b'_'
                | b'~'
        )
}

/// Whether `b` may appear in a `reg-name` (RFC 3986 §3.2.2): unreserved, sub-delims and `%`.
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Envoy's codec check of an authority's characters (`HeaderUtility::authorityIsValid`). It
/// says nothing about structure: `user@host` and `host:abc` pass it; see
/// [`validate_authority`] for those.
///
/// ```
/// use portcullis_proxy_core::authority::authority_chars_are_valid;
///
/// assert!(authority_chars_are_valid(b"shop.example:8080"));
/// assert!(authority_chars_are_valid(b"[::1]:443"));
/// assert!(!authority_chars_are_valid(b"a b"));
/// assert!(!authority_chars_are_valid(b"h/../admin"));
/// ```
pub fn authority_chars_are_valid(value: &[u8]) -> bool {
    value.iter().all(|b| is_authority_char(*b))
}

/// Whether `port` is a decimal port from 1 to 65535 (Envoy's header validator refuses 0).
fn is_port(port: &[u8]) -> bool {
    if port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = port.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    (1..=65535).contains(&n)
}

/// Whether `address` (between the brackets of an IP literal) looks like an IPv6 address, as
/// Envoy's header validator checks it: at most eight groups of at most four hex digits, one
/// `::` at most. IPv4-suffixed and future (`v…`) literals are refused.
fn is_ipv6_literal(address: &[u8]) -> bool {
    if address == b"::" {
        return true;
    }
    if address.is_empty() {
        return false;
    }
    let mut groups = 0usize;
    let mut empty = 0usize;
    for group in address.split(|b| *b == b':') {
        groups += 1;
        if group.is_empty() {
            empty += 1;
        } else if group.len() > 4 || !group.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
    }
    if groups > 8 || empty >= 3 {
        return false;
    }
    // Two empty groups only for a `::` at either end.
    empty < 2 || address.starts_with(b"::") || address.ends_with(b"::")
}

/// Validates an authority (a `Host` value, an `:authority`, the authority of an absolute-form
/// target): Envoy's codec characters, then `uri-host [ ":" port ]` without userinfo as Envoy's
/// header validator checks it.
///
/// ```
/// use portcullis_proxy_core::authority::validate_authority;
/// use portcullis_proxy_core::hygiene::Rejection;
///
/// assert_eq!(validate_authority(b"shop.example"), Ok(()));
/// assert_eq!(validate_authority(b"10.0.0.1:8080"), Ok(()));
/// assert_eq!(validate_authority(b"[2001:db8::1]:443"), Ok(()));
/// assert_eq!(validate_authority(b"a b"), Err(Rejection::InvalidAuthority));
/// assert_eq!(validate_authority(b"user@h"), Err(Rejection::HostWithUserInfo));
/// assert_eq!(validate_authority(b"h:abc"), Err(Rejection::InvalidHost));
/// assert_eq!(validate_authority(b""), Err(Rejection::InvalidHost));
/// ```
pub fn validate_authority(value: &[u8]) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(Rejection::InvalidHost);
    }
    if !authority_chars_are_valid(value) {
        return Err(Rejection::InvalidAuthority);
    }
    if value.contains(&b'@') {
        return Err(Rejection::HostWithUserInfo);
    }
    let port = if let Some(literal) = value.strip_prefix(b"[") {
        let close = literal
            .iter()
            .position(|b| *b == b']')
            .ok_or(Rejection::InvalidHost)?;
        let (address, rest) = literal.split_at(close);
        if !is_ipv6_literal(address) {
            return Err(Rejection::InvalidHost);
        }
        // `rest` starts with the `]`.
        rest.get(1..).unwrap_or_default()
    } else {
        let end = value.iter().position(|b| *b == b':').unwrap_or(value.len());
        let (host, rest) = value.split_at(end);
        if host.is_empty() || !host.iter().all(|b| is_reg_name_char(*b)) {
            return Err(Rejection::InvalidHost);
        }
        rest
    };
    match port {
        [] => Ok(()),
        [b':', digits @ ..] if is_port(digits) => Ok(()),
        _ => Err(Rejection::InvalidHost),
    }
}

/// The authority a request names, validated ([`validate_authority`]):
///
/// * the target's authority when it has one — an absolute-form target (RFC 9112 §3.2.2: it
///   wins over `Host`, which is then ignored, as Envoy's codec replaces it), an HTTP/2
///   `:authority`, a `CONNECT` authority-form;
/// * otherwise the one `Host` field: none is [`Rejection::MissingHost`], more than one line is
///   [`Rejection::MultipleHosts`] (RFC 9112 §3.2).
///
/// ```
/// use http::{HeaderMap, HeaderValue, Uri};
/// use portcullis_proxy_core::authority::request_authority;
/// use portcullis_proxy_core::hygiene::Rejection;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("public.example"));
/// assert_eq!(request_authority(&Uri::from_static("/x"), &headers), Ok("public.example"));
/// // The absolute form names the authority; `Host` does not count.
/// let absolute = Uri::from_static("http://shop.example/x");
/// assert_eq!(request_authority(&absolute, &headers), Ok("shop.example"));
/// assert_eq!(request_authority(&Uri::from_static("/x"), &HeaderMap::new()), Err(Rejection::MissingHost));
/// ```
pub fn request_authority<'a>(
    target: &'a Uri,
    headers: &'a HeaderMap,
) -> Result<&'a str, Rejection> {
    let authority = match target.authority() {
        Some(authority) => authority.as_str(),
        None => {
            let mut hosts = headers.get_all(HOST).iter();
            let host = hosts.next().ok_or(Rejection::MissingHost)?;
            if hosts.next().is_some() {
                return Err(Rejection::MultipleHosts);
            }
            host.to_str().map_err(|_| Rejection::InvalidAuthority)?
        }
    };
    validate_authority(authority.as_bytes())?;
    Ok(authority)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    #[test]
    fn hosts_envoys_codec_refuses() {
        // Envoy's authority table (header_utility.cc, check_authority_h1_h2): SPC, `"`, `#`,
        // `/`, `<`, `>`, `?`, `\`, `^`, `` ` ``, `{`, `|`, `}`, DEL, controls, non-ASCII.
        for bad in [
            &b"a b"[..],
            b"h/../admin",
            b"h?x",
            b"h#f",
            b"h\\x",
            b"h\"",
            b"h<",
            b"h{",
            b"h|",
            b"h^",
            b"h`",
            b"h\x7f",
            b"h\x00",
            b"h\t",
            b"caf\xc3\xa9",
        ] {
            assert!(!authority_chars_are_valid(bad), "{bad:?}");
            assert_eq!(
                validate_authority(bad),
                Err(Rejection::InvalidAuthority),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hosts_envoys_header_validator_refuses() {
        // header_validator.cc, HeaderValidator::validateHostHeader: userinfo, empty host,
        // bad ports, malformed IPv6 literals.
        assert_eq!(
            validate_authority(b"user@h"),
            Err(Rejection::HostWithUserInfo)
        );
        assert_eq!(
            validate_authority(b"u:p@h:80"),
            Err(Rejection::HostWithUserInfo)
        );
        for bad in [
            &b"h:abc"[..],
            b":80",
            b"h:",
            b"h:0",
            b"h:65536",
            b"h:123456",
            b"h:80:80",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"[1:2:3:4:5:6:7:8:9]",
            b"[12345::]",
            b"[1::2::3]",
            b"[g::1]",
        ] {
            assert_eq!(
                validate_authority(bad),
                Err(Rejection::InvalidHost),
                "{bad:?}"
            );
        }
        for good in [
            &b"h"[..],
            b"h:1",
            b"h:65535",
            b"a.b-c_d~e",
            b"xn--caf-dma.example",
            b"[::]",
            b"[::1]:8443",
            b"[2001:db8:0:0:0:0:0:1]",
            b"[fe80::]",
            b"127.0.0.1:80",
            b"%41",
        ] {
            assert_eq!(validate_authority(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn the_target_authority_wins_over_host() {
        let mut two = HeaderMap::new();
        two.append(HOST, HeaderValue::from_static("a"));
        two.append(HOST, HeaderValue::from_static("b"));
        assert_eq!(
            request_authority(&Uri::from_static("/"), &two),
            Err(Rejection::MultipleHosts)
        );
        // RFC 9112 §3.2.2 (and codec_impl.cc, ServerConnectionImpl::handlePath: setHost from
        // the absolute URL).
        assert_eq!(
            request_authority(&Uri::from_static("http://c:8080/p"), &two),
            Ok("c:8080")
        );
        assert_eq!(
            request_authority(&"http://u@c/p".parse().unwrap(), &HeaderMap::new()),
            Err(Rejection::HostWithUserInfo)
        );
        let mut empty = HeaderMap::new();
        empty.insert(HOST, HeaderValue::from_static(""));
        assert_eq!(
            request_authority(&Uri::from_static("/"), &empty),
            Err(Rejection::InvalidHost)
        );
    }

    proptest! {
        /// Whatever the bytes, validation answers without panicking, a valid authority has
        /// only Envoy's characters, no `@`, and a valid port when it ends in one.
        #[test]
        fn valid_authorities_are_what_envoy_accepts(value in proptest::collection::vec(any::<u8>(), 0..40)) {
            if validate_authority(&value).is_ok() {
                prop_assert!(authority_chars_are_valid(&value));
                prop_assert!(!value.contains(&b'@'));
                prop_assert!(!value.is_empty());
                // The authority round-trips through `http`'s parser as an authority, except
                // for `%`, which Envoy's character table admits anywhere and `http` only in
                // a percent-encoded triplet.
                if !value.contains(&b'%') {
                    prop_assert!(http::uri::Authority::try_from(&value[..]).is_ok(), "{:?}", value);
                }
            }
        }

        /// Names and ports built from the grammar are accepted.
        #[test]
        fn grammatical_authorities_are_accepted(
            host in "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,3}",
            port in proptest::option::of(1u16..),
        ) {
            let value = match port {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            prop_assert_eq!(validate_authority(value.as_bytes()), Ok(()));
        }
    }
}
