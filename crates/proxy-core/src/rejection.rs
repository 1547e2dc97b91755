//! The answer to a request refused before routing: its status and Envoy's response code
//! details. Public as [`hygiene::Rejection`](crate::hygiene::Rejection).

use http::StatusCode;

/// Why a request is refused before routing, with the status and Envoy's response code details
/// (`%RESPONSE_CODE_DETAILS%` in an access log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// An HTTP/1 request without `Host` (and without an absolute-form target), or an HTTP/2
    /// request without `:authority` or `host`: 400 `missing_host_header`.
    MissingHost,
    /// More than one `Host` line (RFC 9112 §3.2): 400 `http.invalid_authority`.
    MultipleHosts,
    /// The authority holds a character outside Envoy's authority set (space, `/`, `?`, `#`,
    /// controls, non-ASCII, …): 400 `http.invalid_authority`.
    InvalidAuthority,
    /// The authority is not `host [":" port]` (empty, empty host, a port that is not a number
    /// from 1 to 65535, a malformed IP literal): 400 `uhv.invalid_host`.
    InvalidHost,
    /// The authority carries userinfo (`user@host`, RFC 9110 §4.2.4): 400
    /// `uhv.invalid_host_deprecated_user_info`.
    HostWithUserInfo,
    /// Both `content-length` and `transfer-encoding`: 400
    /// `http1.content_length_and_chunked_not_allowed`.
    ContentLengthAndChunked,
    /// A `transfer-encoding` other than exactly one `chunked` (or any on `CONNECT`): 501
    /// `http1.invalid_transfer_encoding`.
    InvalidTransferEncoding,
    /// A `content-length` that is not one field of digits (repeated, a list, a sign, too
    /// large): 400 `http1.codec_error`.
    InvalidContentLength,
    /// A `CONNECT` request with a body: 400 `http1.body_disallowed`.
    BodyDisallowed,
    /// A header name or value with characters HTTP does not allow: 400
    /// `http1.invalid_characters`.
    InvalidCharacters,
    /// A protocol switch (`upgrade`, `CONNECT`) that the configuration does not allow: 403
    /// `upgrade_failed`.
    UpgradeFailed,
}

impl Rejection {
    /// The status of the local reply.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            Self::UpgradeFailed => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Envoy's response code details for this rejection.
    pub fn details(self) -> &'static str {
        match self {
            Self::MissingHost => "missing_host_header",
            Self::MultipleHosts | Self::InvalidAuthority => "http.invalid_authority",
            Self::InvalidHost => "uhv.invalid_host",
            Self::HostWithUserInfo => "uhv.invalid_host_deprecated_user_info",
            Self::ContentLengthAndChunked => "http1.content_length_and_chunked_not_allowed",
            Self::InvalidTransferEncoding => "http1.invalid_transfer_encoding",
            Self::InvalidContentLength => "http1.codec_error",
            Self::BodyDisallowed => "http1.body_disallowed",
            Self::InvalidCharacters => "http1.invalid_characters",
            Self::UpgradeFailed => "upgrade_failed",
        }
    }

    /// Whether the connection must close after the reply: every rejection but a refused
    /// upgrade leaves the message framing in doubt (Envoy closes after a codec error).
    pub fn closes_connection(self) -> bool {
        self != Self::UpgradeFailed
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.status(), self.details())
    }
}

impl std::error::Error for Rejection {}
