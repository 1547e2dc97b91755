//! Request hygiene: the checks a gateway makes on a request head before it routes it, and the
//! answer it gives when one fails.
//!
//! Each rule lives in the module of its concept — [`authority`](crate::authority) (`Host` and
//! `:authority`), [`framing`](crate::framing) (`content-length`, `transfer-encoding`),
//! [`upgrade`](crate::upgrade) (which protocol switches go on) and [`header`](crate::header)
//! (field name and value characters) — and every failure is a [`Rejection`] that knows the
//! status and the response code details Envoy gives it. [`check_request_head`] runs the
//! request-head rules in Envoy's order (codec framing, then the authority, then the upgrade
//! decision of the filter chain) and returns what the caller needs to go on.
//!
//! Nothing here allocates for a valid request: the checks read the header map and compare
//! bytes.

use http::{HeaderMap, Method, Uri, Version};

use crate::framing::BodyFraming;
use crate::upgrade::{UpgradeDecision, UpgradePolicy};

pub use crate::rejection::Rejection;

/// What a request head that passed [`check_request_head`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedHead<'a> {
    /// The authority to route on and to send upstream: the target's when it has one
    /// (absolute form, HTTP/2 `:authority`, `CONNECT`), the `Host` field's otherwise.
    pub authority: &'a str,
    /// How the request body is framed.
    pub body: BodyFraming,
    /// What to do with a protocol switch the request asks for.
    pub upgrade: UpgradeDecision,
}

/// Checks a request head as Envoy's codec and connection manager do before routing, in their
/// order: body framing ([`framing::request_body_framing`](crate::framing::request_body_framing)),
/// then the authority ([`authority::request_authority`](crate::authority::request_authority)),
/// then the protocol switch ([`UpgradePolicy::decide`]).
///
/// `target` is the request target as parsed (for HTTP/2, hyper puts `:scheme` and
/// `:authority` in it); `headers` are the fields as received, repeated lines included.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method, Uri, Version};
/// use portcullis_proxy_core::hygiene::{Rejection, check_request_head};
/// use portcullis_proxy_core::upgrade::{UpgradeDecision, UpgradePolicy};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("shop.example:8080"));
/// let target = Uri::from_static("/cart");
/// let head = check_request_head(&Method::GET, &target, Version::HTTP_11, &headers, &UpgradePolicy::ISTIO)?;
/// assert_eq!(head.authority, "shop.example:8080");
/// assert_eq!(head.upgrade, UpgradeDecision::None);
///
/// headers.append("host", HeaderValue::from_static("admin.internal"));
/// let refused = check_request_head(&Method::GET, &target, Version::HTTP_11, &headers, &UpgradePolicy::ISTIO);
/// assert_eq!(refused, Err(Rejection::MultipleHosts));
/// assert_eq!(Rejection::MultipleHosts.status(), 400);
/// # Ok::<(), Rejection>(())
/// ```
pub fn check_request_head<'a>(
    method: &Method,
    target: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    upgrades: &UpgradePolicy,
) -> Result<CheckedHead<'a>, Rejection> {
    let body = crate::framing::request_body_framing(method, headers)?;
    let authority = crate::authority::request_authority(target, headers)?;
    let upgrade = upgrades.decide(method, version, headers);
    if upgrade == UpgradeDecision::Reject {
        return Err(Rejection::UpgradeFailed);
    }
    Ok(CheckedHead {
        authority,
        body,
        upgrade,
    })
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

    fn check(
        target: &str,
        fields: &[(&str, &str)],
    ) -> Result<(&'static str, BodyFraming), Rejection> {
        let target: &'static Uri = Box::leak(Box::new(target.parse::<Uri>().unwrap()));
        let mut headers = HeaderMap::new();
        for (n, v) in fields {
            headers.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let headers: &'static HeaderMap = Box::leak(Box::new(headers));
        check_request_head(
            &Method::POST,
            target,
            Version::HTTP_11,
            headers,
            &UpgradePolicy::ISTIO,
        )
        .map(|h| (h.authority, h.body))
    }

    #[test]
    fn framing_is_checked_before_the_authority_as_in_envoys_codec() {
        // Envoy's codec rejects CL+TE in onHeadersCompleteImpl, before handlePath and
        // requestHeadersValid look at the host (codec_impl.cc, ConnectionImpl::onHeadersCompleteImpl).
        assert_eq!(
            check(
                "/",
                &[("content-length", "1"), ("transfer-encoding", "chunked")]
            ),
            Err(Rejection::ContentLengthAndChunked)
        );
        assert_eq!(
            check("/", &[("host", "a"), ("content-length", "3")]),
            Ok(("a", BodyFraming::Length(3)))
        );
        assert_eq!(check("/", &[]), Err(Rejection::MissingHost));
    }

    #[test]
    fn every_rejection_has_envoys_status_and_details() {
        for (r, status, details) in [
            (Rejection::MissingHost, 400, "missing_host_header"),
            (Rejection::InvalidAuthority, 400, "http.invalid_authority"),
            (
                Rejection::InvalidTransferEncoding,
                501,
                "http1.invalid_transfer_encoding",
            ),
            (Rejection::UpgradeFailed, 403, "upgrade_failed"),
            (Rejection::InvalidContentLength, 400, "http1.codec_error"),
        ] {
            assert_eq!((r.status().as_u16(), r.details()), (status, details));
            assert_eq!(r.closes_connection(), r != Rejection::UpgradeFailed);
        }
    }
}
