//! The error of the single-value checks (`validate_fqdn`, `validate_port_number`, …).

use std::fmt;

/// A value one of the single-value checks refused, with Istio's message for it.
///
/// The [`Display`](fmt::Display) text is the message Istio's webhook gives (the conformance
/// suites compare it); [`kind`](Self::kind) says which check refused the value.
///
/// ```
/// use portcullis_validate::common::validate_port_number;
/// use portcullis_validate::ValueKind;
///
/// let err = validate_port_number(70000).unwrap_err();
/// assert_eq!(err.kind(), ValueKind::PortNumber);
/// assert_eq!(err.to_string(), "port number 70000 must be in the range 1..65535");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidValue {
    kind: ValueKind,
    message: String,
}

impl InvalidValue {
    pub(crate) fn new(kind: ValueKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Which check refused the value.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// Istio's message, as [`Display`](fmt::Display) writes it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

// The resource validators record a refused value as a diagnostic, whose message is a string.
impl From<InvalidValue> for String {
    fn from(err: InvalidValue) -> Self {
        err.message
    }
}

/// The check that refused a value: one variant per single-value check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// A fully-qualified domain name ([`validate_fqdn`](crate::common::validate_fqdn)).
    Fqdn,
    /// A domain whose first label may be a wildcard
    /// ([`validate_wildcard_domain`](crate::common::validate_wildcard_domain)).
    WildcardDomain,
    /// A host of a VirtualService bound to gateways
    /// ([`validate_wildcard_domain_for_gateway`](crate::virtual_service::validate_wildcard_domain_for_gateway)).
    GatewayHost,
    /// An IP address ([`validate_ip_address`](crate::common::validate_ip_address)).
    IpAddress,
    /// An IP address or CIDR block ([`validate_ip_subnet`](crate::common::validate_ip_subnet)).
    IpSubnet,
    /// A port number ([`validate_port_number`](crate::common::validate_port_number)).
    PortNumber,
    /// A port name ([`validate_port_name`](crate::common::validate_port_name)).
    PortName,
    /// A duration ([`validate_duration`](crate::common::validate_duration)).
    Duration,
    /// A label set ([`validate_labels`](crate::common::validate_labels)).
    Labels,
    /// A unix socket address ([`validate_unix_address`](crate::common::validate_unix_address)).
    UnixAddress,
    /// A header-match name
    /// ([`validate_header_match_name`](crate::common::validate_header_match_name)).
    HeaderName,
    /// A header value ([`validate_header_value`](crate::common::validate_header_value)).
    HeaderValue,
    /// An integer percent ([`validate_percent`](crate::common::validate_percent)).
    Percent,
    /// A `Percent` value ([`validate_percentage`](crate::common::validate_percentage)).
    Percentage,
    /// An HTTP status ([`validate_http_status`](crate::virtual_service::validate_http_status)).
    HttpStatus,
    /// A list of localities
    /// ([`validate_localities`](crate::destination_rule::validate_localities)).
    Localities,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fqdn => "FQDN",
            Self::WildcardDomain => "wildcard domain",
            Self::GatewayHost => "gateway-bound host",
            Self::IpAddress => "IP address",
            Self::IpSubnet => "IP subnet",
            Self::PortNumber => "port number",
            Self::PortName => "port name",
            Self::Duration => "duration",
            Self::Labels => "labels",
            Self::UnixAddress => "unix address",
            Self::HeaderName => "header name",
            Self::HeaderValue => "header value",
            Self::Percent => "percent",
            Self::Percentage => "percentage",
            Self::HttpStatus => "HTTP status",
            Self::Localities => "localities",
        })
    }
}
