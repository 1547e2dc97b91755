//! The one error type of the crate: why a route action could not be built.

use std::fmt;

/// Why a route action (or one of its parts) could not be built from configuration.
///
/// Building happens once per configuration change; deciding never fails. Every variant
/// corresponds to a configuration that Envoy would refuse (or that would make Istio emit a
/// route Envoy refuses), so the embedder should reject the configuration that produced it.
///
/// The `Display` text is meant for humans and is not part of the API: match on the variants.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidAction {
    /// A forward action needs at least one destination.
    NoDestinations,
    /// Several destinations were given but their weights add up to zero.
    ZeroTotalWeight,
    /// The redirect status is not one of 301, 302, 303, 307, 308 (or 0 for "unset").
    ///
    /// Istio's validation accepts any 3xx but only translates these five; for any other
    /// code pilot emits a route without an action, which Envoy rejects.
    RedirectStatus {
        /// The configured code.
        code: u16,
    },
    /// A direct-response status outside `200..=599`.
    DirectResponseStatus {
        /// The configured code.
        code: u16,
    },
    /// A direct-response body larger than [`MAX_DIRECT_RESPONSE_BODY`](crate::action::MAX_DIRECT_RESPONSE_BODY).
    DirectResponseBodyTooLarge {
        /// The body's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A fault-abort HTTP status outside `200..=599`.
    FaultAbortStatus {
        /// The configured code.
        code: u16,
    },
    /// A regular expression (rewrite pattern or CORS origin) that does not compile.
    Regex {
        /// The pattern as configured.
        pattern: String,
        /// The compiler's explanation (informational).
        reason: String,
    },
    /// A regex-rewrite substitution that is not valid RE2 rewrite syntax (only `\0`–`\9`
    /// and `\\` escapes are allowed) or that names a capture group the pattern does not have.
    RegexSubstitution {
        /// The substitution as configured.
        substitution: String,
        /// What is wrong with it (informational).
        reason: String,
    },
    /// A header name that is not a valid HTTP field name.
    HeaderName {
        /// The name as configured.
        name: String,
    },
    /// A header value that is not a valid HTTP field value.
    HeaderValue {
        /// The name of the header the value was meant for.
        name: String,
    },
}

impl fmt::Display for InvalidAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDestinations => f.write_str("a forward action needs at least one destination"),
            Self::ZeroTotalWeight => f.write_str("the destination weights add up to zero"),
            Self::RedirectStatus { code } => write!(
                f,
                "redirect status {code} is not one of 301, 302, 303, 307, 308"
            ),
            Self::DirectResponseStatus { code } => {
                write!(f, "direct response status {code} is outside 200..=599")
            }
            Self::DirectResponseBodyTooLarge { len, max } => write!(
                f,
                "direct response body of {len} bytes exceeds the limit of {max} bytes"
            ),
            Self::FaultAbortStatus { code } => {
                write!(f, "fault abort status {code} is outside 200..=599")
            }
            Self::Regex { pattern, reason } => {
                write!(f, "invalid regular expression {pattern:?}: {reason}")
            }
            Self::RegexSubstitution {
                substitution,
                reason,
            } => write!(f, "invalid regex substitution {substitution:?}: {reason}"),
            Self::HeaderName { name } => write!(f, "invalid header name {name:?}"),
            Self::HeaderValue { name } => write!(f, "invalid value for header {name:?}"),
        }
    }
}

impl std::error::Error for InvalidAction {}
