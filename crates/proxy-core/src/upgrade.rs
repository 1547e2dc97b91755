//! Which protocol switches a gateway lets through, as Envoy's connection manager decides it.
//!
//! An HTTP/1 request asks to switch protocols with `upgrade` and a `connection` listing
//! `upgrade` (Envoy's `Utility::isUpgrade`); `CONNECT` asks for a tunnel. Envoy:
//!
//! * strips an `h2c` upgrade in its HTTP/1 codec — `upgrade` and `http2-settings` go, and the
//!   `upgrade` and `http2-settings` tokens leave `connection` — and serves the request as plain
//!   HTTP/1.1 (`ConnectionImpl::onHeadersCompleteImpl`, "removing unsupported h2c upgrade
//!   headers");
//! * lets an upgrade through when its type is among the connection manager's
//!   `upgrade_configs` (compared without regard to case), and otherwise answers 403 with the
//!   details `upgrade_failed`; `CONNECT` counts as the upgrade type `CONNECT`.
//!
//! Istio configures `upgrade_configs` with `websocket` only (`buildHTTPConnectionManager`,
//! "Allow websocket upgrades"): [`UpgradePolicy::ISTIO`], the default.

use std::borrow::Cow;

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};

/// `HTTP2-Settings`, sent with an `h2c` upgrade (RFC 7540 §3.2.1).
pub const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// What to do with a request's protocol switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeDecision {
    /// The request asks for no switch (an `upgrade` without `connection: upgrade` is only a
    /// hop-by-hop header, removed as such).
    None,
    /// An allowed switch: forward it with its `upgrade` and `connection` headers, and splice
    /// the connections if the upstream answers 101.
    Forward,
    /// An `h2c` upgrade: remove it with [`strip_h2c`] and serve the request as HTTP/1.1.
    StripH2c,
    /// A switch the policy does not allow: 403 `upgrade_failed`.
    Reject,
}

/// The upgrade types a gateway forwards (Envoy's `upgrade_configs`). Types compare without
/// regard to case; `CONNECT` is the type of the `CONNECT` method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePolicy {
    allowed: Cow<'static, [Cow<'static, str>]>,
}

impl UpgradePolicy {
    /// Istio's gateways and sidecars: `websocket` only.
    pub const ISTIO: Self = Self {
        allowed: Cow::Borrowed(&[Cow::Borrowed("websocket")]),
    };

    /// A policy allowing these upgrade types.
    pub fn new<I, S>(allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Cow<'static, str>>,
    {
        Self {
            allowed: allowed.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether upgrades of type `upgrade` are allowed.
    pub fn allows(&self, upgrade: &[u8]) -> bool {
        let upgrade = upgrade.trim_ascii();
        self.allowed
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(upgrade))
    }

    /// Decides what happens to the protocol switch a request asks for. HTTP/2 requests have
    /// no `upgrade` (it is a connection-specific field there); only their `CONNECT` counts.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, Method, Version};
    /// use portcullis_proxy_core::upgrade::{UpgradeDecision, UpgradePolicy, strip_h2c};
    ///
    /// let policy = UpgradePolicy::default();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("connection", HeaderValue::from_static("Upgrade, HTTP2-Settings"));
    /// headers.insert("upgrade", HeaderValue::from_static("h2c"));
    /// headers.insert("http2-settings", HeaderValue::from_static("AAMAAABkAAQAoAAAAAIAAAAA"));
    /// let decision = policy.decide(&Method::GET, Version::HTTP_11, &headers);
    /// assert_eq!(decision, UpgradeDecision::StripH2c);
    /// strip_h2c(&mut headers);
    /// assert!(headers.is_empty());
    ///
    /// headers.insert("connection", HeaderValue::from_static("upgrade"));
    /// headers.insert("upgrade", HeaderValue::from_static("WebSocket"));
    /// assert_eq!(policy.decide(&Method::GET, Version::HTTP_11, &headers), UpgradeDecision::Forward);
    /// headers.insert("upgrade", HeaderValue::from_static("spdy/3.1"));
    /// assert_eq!(policy.decide(&Method::GET, Version::HTTP_11, &headers), UpgradeDecision::Reject);
    /// ```
    pub fn decide(
        &self,
        method: &Method,
        version: Version,
        headers: &HeaderMap,
    ) -> UpgradeDecision {
        if *method == Method::CONNECT {
            return if self.allows(b"CONNECT") {
                UpgradeDecision::Forward
            } else {
                UpgradeDecision::Reject
            };
        }
        if version != Version::HTTP_11 && version != Version::HTTP_10 {
            return UpgradeDecision::None;
        }
        let mut upgrades = headers.get_all(UPGRADE).iter();
        let Some(upgrade) = upgrades.next() else {
            return UpgradeDecision::None;
        };
        if !connection_has_token(headers, b"upgrade") {
            return UpgradeDecision::None;
        }
        // Several `upgrade` lines make one list (Envoy joins them): neither `h2c` nor an
        // allowed type.
        if upgrades.next().is_some() {
            return UpgradeDecision::Reject;
        }
        let upgrade = upgrade.as_bytes().trim_ascii();
        if upgrade.eq_ignore_ascii_case(b"h2c") {
            UpgradeDecision::StripH2c
        } else if self.allows(upgrade) {
            UpgradeDecision::Forward
        } else {
            UpgradeDecision::Reject
        }
    }
}

impl Default for UpgradePolicy {
    fn default() -> Self {
        Self::ISTIO
    }
}

/// The comma-separated tokens of every `connection` field.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Whether a `connection` field lists `token` (without regard to case).
fn connection_has_token(headers: &HeaderMap, token: &[u8]) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(token))
}

/// Removes an `h2c` upgrade from a request, as Envoy's HTTP/1 codec does: `upgrade` and
/// `http2-settings` go, `connection` loses its `upgrade` and `http2-settings` tokens and goes
/// too when nothing else is left in it.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use portcullis_proxy_core::upgrade::strip_h2c;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", HeaderValue::from_static("keep-alive, Upgrade, HTTP2-Settings"));
/// headers.insert("upgrade", HeaderValue::from_static("h2c"));
/// strip_h2c(&mut headers);
/// assert_eq!(headers["connection"], "keep-alive");
/// assert!(!headers.contains_key("upgrade"));
/// ```
pub fn strip_h2c(headers: &mut HeaderMap) {
    headers.remove(UPGRADE);
    headers.remove(HTTP2_SETTINGS);
    if !headers.contains_key(CONNECTION) {
        return;
    }
    let kept: Vec<&[u8]> = connection_tokens(headers)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case(b"upgrade")
                && !t.eq_ignore_ascii_case(HTTP2_SETTINGS.as_str().as_bytes())
        })
        .collect();
    let value = kept.join(&b","[..]);
    match HeaderValue::from_bytes(&value) {
        Ok(v) if !value.is_empty() => {
            headers.insert(CONNECTION, v);
        }
        _ => {
            headers.remove(CONNECTION);
        }
    }
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
    use proptest::prelude::*;

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn istio_allows_websocket_only() {
        let p = UpgradePolicy::default();
        let decide =
            |fields: &[(&str, &str)]| p.decide(&Method::GET, Version::HTTP_11, &headers(fields));
        assert_eq!(
            decide(&[("connection", "Upgrade"), ("upgrade", "websocket")]),
            UpgradeDecision::Forward
        );
        // Anything else that asks for a switch: 403 upgrade_failed (conn_manager_impl.cc,
        // "Do not allow upgrades if the route does not support it").
        for other in ["echo", "spdy/3.1", "websocket, h2c", "TLS/1.0"] {
            assert_eq!(
                decide(&[("connection", "upgrade"), ("upgrade", other)]),
                UpgradeDecision::Reject,
                "{other}"
            );
        }
        assert_eq!(
            decide(&[
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("upgrade", "websocket")
            ]),
            UpgradeDecision::Reject
        );
        // h2c: stripped by the codec (codec_impl.cc, onHeadersCompleteImpl).
        assert_eq!(
            decide(&[
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", "H2C")
            ]),
            UpgradeDecision::StripH2c
        );
        // No `connection: upgrade`: no switch at all (Utility::isUpgrade).
        assert_eq!(decide(&[("upgrade", "websocket")]), UpgradeDecision::None);
        assert_eq!(decide(&[("connection", "upgrade")]), UpgradeDecision::None);
        assert_eq!(
            p.decide(&Method::CONNECT, Version::HTTP_11, &HeaderMap::new()),
            UpgradeDecision::Reject
        );
        assert_eq!(
            p.decide(
                &Method::GET,
                Version::HTTP_2,
                &headers(&[("connection", "upgrade"), ("upgrade", "websocket")])
            ),
            UpgradeDecision::None
        );
        let tunnels = UpgradePolicy::new(["websocket", "CONNECT"]);
        assert_eq!(
            tunnels.decide(&Method::CONNECT, Version::HTTP_11, &HeaderMap::new()),
            UpgradeDecision::Forward
        );
    }

    #[test]
    fn stripping_h2c_keeps_the_other_connection_tokens() {
        let mut h = headers(&[
            ("connection", "Upgrade"),
            ("connection", "x-hop, http2-settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAA"),
            ("x-kept", "1"),
        ]);
        strip_h2c(&mut h);
        assert_eq!(h.get_all(CONNECTION).iter().count(), 1);
        assert_eq!(h[CONNECTION], "x-hop");
        assert_eq!(h["x-kept"], "1");
        assert!(!h.contains_key(HTTP2_SETTINGS));
        let mut h = headers(&[("upgrade", "h2c")]);
        strip_h2c(&mut h);
        assert!(h.is_empty());
    }

    proptest! {
        /// After stripping, no header asks for a switch, whatever the request carried.
        #[test]
        fn nothing_switches_after_strip_h2c(
            tokens in proptest::collection::vec("[a-zA-Z0-9-]{0,12}", 0..5),
            upgrade in "[a-zA-Z0-9/.]{0,10}",
        ) {
            let mut h = headers(&[("connection", &tokens.join(", ")), ("upgrade", &upgrade)]);
            strip_h2c(&mut h);
            prop_assert_eq!(
                UpgradePolicy::new(["websocket", "h2c"]).decide(&Method::GET, Version::HTTP_11, &h),
                UpgradeDecision::None
            );
            prop_assert!(!connection_has_token(&h, b"upgrade"));
        }
    }
}
