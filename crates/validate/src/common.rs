//! The primitives every resource's validation uses (VALIDATION.md §1, rules C-1 … C-23).
//!
//! Each follows the Istio function it is named after: the same verdicts, and messages close to
//! Istio's own texts.

use std::collections::{BTreeMap, BTreeSet};

use portcullis_model::{Duration, StringMatch};

use crate::context::Checker;
pub use crate::invalid::{InvalidValue, ValueKind};
use crate::ip::{is_prefix, parse_addr};
use crate::path;

/// Longest DNS-1123 label.
const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-subdomain prefix of a label key (without its `/`).
const DNS_PREFIX_MAX: usize = 253;
/// Longest domain name `CheckDNS1123Preconditions` accepts.
const DOMAIN_MAX: usize = 255;
/// Quotes a string as Go's `%q` does (close enough for messages).
pub(crate) fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// The `[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?` pattern, without a length limit.
pub(crate) fn is_label_shape(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// C-1: a DNS-1123 label, upper case allowed (1–63 of `[a-zA-Z0-9-]`, alphanumeric at both ends).
pub fn is_dns1123_label(label: &str) -> bool {
    label.len() <= DNS1123_LABEL_MAX && is_label_shape(label)
}

/// C-2: `*`, a DNS-1123 label, or one prefixed by `*` or `*-`; at most 63 characters.
pub(crate) fn is_wildcard_dns1123_label(label: &str) -> bool {
    if label.len() > DNS1123_LABEL_MAX {
        return false;
    }
    if label == "*" {
        return true;
    }
    let rest = label
        .strip_prefix("*-")
        .filter(|r| is_label_shape(r))
        .or_else(|| label.strip_prefix('*'))
        .unwrap_or(label);
    is_label_shape(rest)
}

/// C-3 `CheckDNS1123Preconditions`.
fn check_dns1123_preconditions(name: &str) -> Result<(), String> {
    if name.len() > DOMAIN_MAX {
        return Err(format!("domain name {} too long (max 255)", quote(name)));
    }
    if name.is_empty() {
        return Err("empty domain name not allowed".to_owned());
    }
    Ok(())
}

/// Go's `strconv.Atoi` succeeding: an optional sign and decimal digits fitting an `int64`.
fn go_atoi_ok(s: &str) -> bool {
    let digits = s
        .strip_prefix('+')
        .or_else(|| s.strip_prefix('-'))
        .unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

/// `ValidateDNS1123Labels`: a non-numeric last label, C-1 labels, an optional trailing dot.
fn validate_dns1123_labels(domain: &str) -> Result<(), String> {
    let parts: Vec<&str> = domain.split('.').collect();
    let top = parts.last().copied().unwrap_or_default();
    if go_atoi_ok(top) {
        return Err(format!(
            "domain name {} invalid (top level domain {} cannot be all-numeric)",
            quote(domain),
            quote(top)
        ));
    }
    let last = parts.len().saturating_sub(1);
    for (i, label) in parts.iter().enumerate() {
        if i == last && label.is_empty() {
            return Ok(());
        }
        if !is_dns1123_label(label) {
            return Err(format!(
                "domain name {} invalid (label {} invalid)",
                quote(domain),
                quote(label)
            ));
        }
    }
    Ok(())
}

/// C-4 `ValidateFQDN`.
pub fn validate_fqdn(fqdn: &str) -> Result<(), InvalidValue> {
    check_dns1123_preconditions(fqdn)
        .and_then(|()| validate_dns1123_labels(fqdn))
        .map_err(|m| InvalidValue::new(ValueKind::Fqdn, m))
}

/// C-5 `ValidateWildcardDomain`.
pub fn validate_wildcard_domain(domain: &str) -> Result<(), InvalidValue> {
    wildcard_domain(domain).map_err(|m| InvalidValue::new(ValueKind::WildcardDomain, m))
}

fn wildcard_domain(domain: &str) -> Result<(), String> {
    check_dns1123_preconditions(domain)?;
    let (first, rest) = match domain.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (domain, None),
    };
    if !is_wildcard_dns1123_label(first) {
        return Err(format!(
            "domain name {} invalid (label {} invalid)",
            quote(domain),
            quote(first)
        ));
    }
    match rest {
        Some(rest) => validate_dns1123_labels(rest),
        None => Ok(()),
    }
}

/// C-6: a host containing `*` anywhere but as the whole host or a leading `*.` label.
pub fn is_partial_wildcard(host: &str) -> bool {
    host.contains('*') && host.len() != 1 && !host.starts_with("*.")
}

/// C-6 `ValidatePartialWildCard` with Istio's message.
pub(crate) fn validate_partial_wildcard(host: &str) -> Result<(), String> {
    if is_partial_wildcard(host) {
        Err(format!("partial wildcard {} not allowed", quote(host)))
    } else {
        Ok(())
    }
}

/// C-7 `ValidateIPAddress` (Go `netip.ParseAddr` semantics, IPv6 zones accepted).
pub fn validate_ip_address(address: &str) -> Result<(), InvalidValue> {
    match parse_addr(address) {
        Some(_) => Ok(()),
        None => Err(InvalidValue::new(
            ValueKind::IpAddress,
            format!("{address} is not a valid IP"),
        )),
    }
}

/// C-7 as a predicate.
pub fn is_ip_address(address: &str) -> bool {
    validate_ip_address(address).is_ok()
}

/// C-8 `ValidateIPSubnet`: an IP address or a CIDR prefix (host bits may be set).
pub fn validate_ip_subnet(subnet: &str) -> Result<(), InvalidValue> {
    if subnet.matches('/').count() == 1 {
        if is_prefix(subnet) {
            return Ok(());
        }
        return Err(InvalidValue::new(
            ValueKind::IpSubnet,
            format!("{subnet} is not a valid CIDR block"),
        ));
    }
    validate_ip_address(subnet).map_err(|e| InvalidValue::new(ValueKind::IpSubnet, e))
}

/// C-9 `ValidatePort`: 1..=65535.
pub fn validate_port_number(port: i64) -> Result<(), InvalidValue> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(InvalidValue::new(
            ValueKind::PortNumber,
            format!("port number {port} must be in the range 1..65535"),
        ))
    }
}

/// C-10 `ValidatePortName`.
pub fn validate_port_name(name: &str) -> Result<(), InvalidValue> {
    if is_dns1123_label(name) {
        Ok(())
    } else {
        Err(InvalidValue::new(
            ValueKind::PortName,
            format!("invalid port name: {name}"),
        ))
    }
}

/// C-11: the protocols Istio knows, parsed case-insensitively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// `TCP`
    Tcp,
    /// `UDP`
    Udp,
    /// `GRPC`
    Grpc,
    /// `GRPC-Web`
    GrpcWeb,
    /// `HTTP`
    Http,
    /// `HTTP_PROXY`
    HttpProxy,
    /// `HTTP2`
    Http2,
    /// `HTTPS`
    Https,
    /// `TLS`
    Tls,
    /// `Mongo`
    Mongo,
    /// `Redis`
    Redis,
    /// `MySQL`
    MySql,
    /// Anything else, including the empty string.
    Unsupported,
}

impl Protocol {
    /// Parses a protocol name case-insensitively (`protocol.Parse`).
    pub fn parse(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "tcp" => Self::Tcp,
            "udp" => Self::Udp,
            "grpc" => Self::Grpc,
            "grpc-web" => Self::GrpcWeb,
            "http" => Self::Http,
            "http_proxy" => Self::HttpProxy,
            "http2" => Self::Http2,
            "https" => Self::Https,
            "tls" => Self::Tls,
            "mongo" => Self::Mongo,
            "redis" => Self::Redis,
            "mysql" => Self::MySql,
            _ => Self::Unsupported,
        }
    }

    /// The name as Istio writes it (`GRPC-Web`, `MySQL`, `UnsupportedProtocol`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Grpc => "GRPC",
            Self::GrpcWeb => "GRPC-Web",
            Self::Http => "HTTP",
            Self::HttpProxy => "HTTP_PROXY",
            Self::Http2 => "HTTP2",
            Self::Https => "HTTPS",
            Self::Tls => "TLS",
            Self::Mongo => "Mongo",
            Self::Redis => "Redis",
            Self::MySql => "MySQL",
            Self::Unsupported => "UnsupportedProtocol",
        }
    }

    /// HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Self::Http | Self::Http2 | Self::HttpProxy | Self::Grpc | Self::GrpcWeb
        )
    }

    /// HTTPS, TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Https | Self::Tls)
    }

    /// TCP, HTTPS, TLS, Mongo, Redis, MySQL.
    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            Self::Tcp | Self::Https | Self::Tls | Self::Mongo | Self::Redis | Self::MySql
        )
    }

    /// Anything but [`Protocol::Unsupported`].
    pub fn is_supported(self) -> bool {
        self != Self::Unsupported
    }
}

/// C-12 `ValidateDuration`: at least 1 ms and whole milliseconds.
pub fn validate_duration(duration: &Duration) -> Result<(), InvalidValue> {
    let nanos = duration.as_nanos();
    if nanos < 1_000_000 {
        return Err(InvalidValue::new(
            ValueKind::Duration,
            "duration must be greater than 1ms",
        ));
    }
    if nanos % 1_000_000 != 0 {
        return Err(InvalidValue::new(
            ValueKind::Duration,
            "only durations to ms precision are supported",
        ));
    }
    Ok(())
}

/// Kubernetes' qualified name: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, no length limit.
fn is_qualified_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A label key: an optional DNS-subdomain prefix ending in `/`, then a qualified name.
fn validate_tag_key(key: &str) -> Result<(), String> {
    let invalid = || format!("invalid tag key: {}", quote(key));
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !prefix.split('.').all(is_label_shape)
    {
        return Err(invalid());
    }
    if !is_qualified_name(name) {
        return Err(invalid());
    }
    if prefix.is_some_and(|p| p.len() > DNS_PREFIX_MAX) {
        return Err(format!(
            "invalid tag key: {} (DNS prefix is too long)",
            quote(key)
        ));
    }
    if name.len() > DNS1123_LABEL_MAX {
        return Err(format!(
            "invalid tag key: {} (name is too long)",
            quote(key)
        ));
    }
    Ok(())
}

/// C-13 `labels.Instance.Validate`: every key and value (all problems, joined).
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), InvalidValue> {
    let mut problems = Vec::new();
    for (key, value) in labels {
        if let Err(e) = validate_tag_key(key) {
            problems.push(e);
        }
        if !value.is_empty() && !is_qualified_name(value) {
            problems.push(format!("invalid tag value: {}", quote(value)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidValue::new(ValueKind::Labels, problems.join("; ")))
    }
}

/// C-15 `validateExportTo`.
pub fn validate_export_to(
    namespace: &str,
    export_to: &[String],
    is_service_entry: bool,
    is_destination_rule_with_selector: bool,
) -> crate::Diagnostics {
    let ctx = crate::Context::default();
    let mut c = Checker::new(&ctx);
    export_to_at(
        &mut c,
        "exportTo",
        namespace,
        export_to,
        is_service_entry,
        is_destination_rule_with_selector,
    );
    c.finish()
}

/// `visibility.Instance.Validate`.
fn validate_visibility(v: &str) -> Result<(), String> {
    match v {
        "." | "*" => Ok(()),
        "~" => Err("exportTo ~ (none) is not allowed for Istio configuration objects".to_owned()),
        _ if is_dns1123_label(v) => Ok(()),
        _ => Err("only .,*, or a valid DNS 1123 label is allowed as exportTo entry".to_owned()),
    }
}

pub(crate) fn export_to_at(
    c: &mut Checker<'_>,
    path: &str,
    namespace: &str,
    export_to: &[String],
    is_service_entry: bool,
    is_destination_rule_with_selector: bool,
) {
    if export_to.is_empty() {
        return;
    }
    let mut set: BTreeSet<&str> = BTreeSet::new();
    for (i, entry) in export_to.iter().enumerate() {
        let at = path::index(path, i);
        let key = if entry == "." {
            namespace
        } else {
            entry.as_str()
        };
        if set.contains(key) {
            if key != entry {
                c.error(
                    at,
                    format!("duplicate entries in exportTo: . and current namespace {namespace}"),
                );
            } else {
                c.error(
                    at,
                    format!("duplicate entries in exportTo for entry {entry}"),
                );
            }
        } else if is_service_entry && entry == "~" {
            set.insert(key);
        } else {
            match validate_visibility(key) {
                Ok(()) => {
                    set.insert(key);
                }
                Err(e) => c.error(at, e),
            }
        }
    }
    if is_destination_rule_with_selector && !set.is_empty() {
        if set.contains(namespace) {
            if set.len() > 1 {
                c.error(
                    path,
                    "destination rule with workload selector cannot have multiple entries in exportTo",
                );
            }
        } else {
            c.error(
                path,
                "destination rule with workload selector cannot have exportTo beyond current namespace",
            );
        }
    }
    if set.contains("*") && export_to.len() > 1 {
        c.error(
            path,
            "cannot have both public (*) and non-public exportTo values for a resource",
        );
    }
    if set.contains("~") && export_to.len() > 1 {
        c.error(
            path,
            "cannot export service entry to no one (~) and someone",
        );
    }
}

/// C-16: Istio's host-name comparisons (`host.Name`), case-sensitive string-suffix logic;
/// the one implementation is [`portcullis_model::host`].
pub use portcullis_model::host;

/// C-17: a unix socket address after `unix://`.
pub fn validate_unix_address(address: &str) -> Result<(), InvalidValue> {
    if address.is_empty() {
        return Err(InvalidValue::new(
            ValueKind::UnixAddress,
            "unix address must not be empty",
        ));
    }
    if address.starts_with('@') {
        return Ok(());
    }
    if !address.starts_with('/') || address.ends_with('/') {
        return Err(InvalidValue::new(
            ValueKind::UnixAddress,
            format!("{address} is not an absolute path to a file"),
        ));
    }
    Ok(())
}

/// The RFC 7230 token class as Istio writes it (`[!#$%&'*+-.^_`|~A-Za-z0-9]`, where `+-.` is a
/// range, so `,` is in it too).
pub(crate) fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b','
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// HTTP/2 pseudo headers a match may name.
const PSEUDO_HEADERS: [&str; 5] = [":method", ":scheme", ":authority", ":path", ":status"];

/// C-18 `ValidateHTTPHeaderNameOrJwtClaimRoute`: a header-match key.
pub fn validate_header_match_name(name: &str) -> Result<(), InvalidValue> {
    if name.is_empty() {
        return Err(InvalidValue::new(
            ValueKind::HeaderName,
            "header name cannot be empty",
        ));
    }
    if is_jwt_claim_key(name) || PSEUDO_HEADERS.contains(&name) || is_header_token(name) {
        return Ok(());
    }
    Err(InvalidValue::new(
        ValueKind::HeaderName,
        format!("header name {name} is not a valid header name"),
    ))
}

/// The prefix of JWT-claim routing keys.
const JWT_CLAIM_PREFIX: &str = "@request.auth.claims";

/// C-18: a JWT-claim routing key (`@request.auth.claims.x`, `@request.auth.claims[x]`).
pub fn is_jwt_claim_key(name: &str) -> bool {
    let Some(head) = name.get(..JWT_CLAIM_PREFIX.len()) else {
        return false;
    };
    if !head.eq_ignore_ascii_case(JWT_CLAIM_PREFIX) {
        return false;
    }
    let rest = name.get(JWT_CLAIM_PREFIX.len()..).unwrap_or_default();
    (rest.starts_with('.') && rest.len() > 1)
        || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2)
}

/// Envoy's `%VAR%` substitution syntax, as Istio's `validateHeaderValue` parses it.
fn validate_header_substitution(value: &str) -> Result<(), String> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Literal,
        VariableName,
        ExpectArray,
        ExpectString,
        String,
        ExpectArrayDelimiterOrEnd,
        ExpectArgsEnd,
        ExpectVariableEnd,
    }
    let bytes = value.as_bytes();
    let mut state = State::Literal;
    let mut pos = 0usize;
    while let Some(&ch) = bytes.get(pos) {
        let next = bytes.get(pos + 1).copied();
        match state {
            State::Literal => {
                if ch == b'%' {
                    match next {
                        None => return Err("invalid header configuration. Un-escaped %".to_owned()),
                        Some(b'%') => pos += 1,
                        Some(_) => state = State::VariableName,
                    }
                }
            }
            State::VariableName => {
                if ch == b'%' {
                    state = State::Literal;
                } else if ch == b'(' {
                    state = State::ExpectArray;
                }
            }
            State::ExpectArray => {
                if ch == b'[' {
                    state = State::ExpectString;
                } else if ch != b' ' {
                    state = State::String;
                }
            }
            State::ExpectArrayDelimiterOrEnd => {
                if ch == b',' {
                    state = State::ExpectString;
                } else if ch == b']' {
                    state = State::ExpectArgsEnd;
                } else if ch != b' ' {
                    return Err(
                        "invalid header configuration. Expecting ',', ']', or whitespace"
                            .to_owned(),
                    );
                }
            }
            State::ExpectString => {
                if ch == b'"' {
                    state = State::String;
                } else if ch != b' ' {
                    return Err("invalid header configuration. Expecting '\"'".to_owned());
                }
            }
            State::String => {
                if ch == b'\\' {
                    if next.is_none() {
                        return Err(
                            "invalid header configuration. Un-terminated backslash in JSON string"
                                .to_owned(),
                        );
                    }
                    pos += 1;
                } else if ch == b')' {
                    state = State::ExpectVariableEnd;
                } else if ch == b'"' {
                    state = State::ExpectArrayDelimiterOrEnd;
                }
            }
            State::ExpectArgsEnd => {
                if ch == b')' {
                    state = State::ExpectVariableEnd;
                } else if ch != b' ' {
                    return Err(
                        "invalid header configuration. Expecting ')' or whitespace".to_owned()
                    );
                }
            }
            State::ExpectVariableEnd => {
                if ch == b'%' {
                    state = State::Literal;
                } else if ch != b' ' {
                    return Err(
                        "invalid header configuration. Expecting '%' or whitespace after"
                            .to_owned(),
                    );
                }
            }
        }
        pos += 1;
    }
    if state != State::Literal {
        return Err(format!(
            "invalid header configuration. Un-terminated variable expression '{value}'"
        ));
    }
    Ok(())
}

/// C-19 `ValidateHTTPHeaderValue`: control characters and Envoy `%` substitution syntax.
pub fn validate_header_value(value: &str) -> Result<(), InvalidValue> {
    if value
        .bytes()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0A..=0x1F | 0x7F))
    {
        return Err(InvalidValue::new(
            ValueKind::HeaderValue,
            format!("header value configuration {value} is invalid"),
        ));
    }
    validate_header_substitution(value).map_err(|e| {
        InvalidValue::new(
            ValueKind::HeaderValue,
            format!("header value configuration: {e}"),
        )
    })
}

/// C-20: a StringMatch; `uri` selects the uri variant (empty prefix allowed).
pub(crate) fn string_match(c: &mut Checker<'_>, path: &str, m: &StringMatch, uri: bool) {
    match m {
        StringMatch::Prefix(p) if p.is_empty() && !uri => {
            c.error(
                path::join(path, "prefix"),
                "prefix string match should not be empty",
            );
        }
        StringMatch::Regex(re) => {
            if re.is_empty() {
                c.error(
                    path::join(path, "regex"),
                    "regex string match should not be empty",
                );
            } else {
                c.regex(&path::join(path, "regex"), re);
            }
        }
        _ => {}
    }
}

/// C-22: an integer percent, 0..=100.
pub fn validate_percent(percent: i32) -> Result<(), InvalidValue> {
    if (0..=100).contains(&percent) {
        Ok(())
    } else {
        Err(InvalidValue::new(
            ValueKind::Percent,
            format!("percentage {percent} is not in range 0..100"),
        ))
    }
}

/// C-23: a `Percent` value: exactly 0, or within [0.0001, 100].
#[allow(
    clippy::manual_range_contains,
    reason = "NaN passes in Istio's comparisons; a range check would reject it"
)]
pub fn validate_percentage(value: f64) -> Result<(), InvalidValue> {
    if value < 0.0 || value > 100.0 || (value > 0.0 && value < 0.0001) {
        Err(InvalidValue::new(
            ValueKind::Percentage,
            format!("percentage {value} is neither 0.0, nor in range [0.0001, 100.0]"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_follow_go_netip() {
        for ok in [
            "1.1.1.1",
            "0.0.0.0",
            "2001:1::1",
            "001:db8::",
            "::",
            "::1",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
        ] {
            assert!(is_ip_address(ok), "{ok}");
        }
        for bad in [
            "",
            "1.1.A.1",
            "188.188.188.1888",
            "01.1.1.1",
            "1.1.1",
            "1.1.1.1.1",
            "2001:1:G::1",
            "1.1.1.1%eth0",
            "fe80::1%",
            "1::2::3",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8",
            "12345::1",
            "::1.2.3",
            "1:2:3:4:5:1.2.3.4",
            "[::1]",
        ] {
            assert!(!is_ip_address(bad), "{bad}");
        }
    }

    #[test]
    fn refused_values_carry_their_check_and_istios_message() {
        let err = validate_ip_subnet("1.1.1.1/48").unwrap_err();
        assert_eq!(err.kind(), ValueKind::IpSubnet);
        assert_eq!(err.to_string(), "1.1.1.1/48 is not a valid CIDR block");
        let err = validate_ip_subnet("nope").unwrap_err();
        assert_eq!(err.kind(), ValueKind::IpSubnet);
        assert_eq!(err.message(), "nope is not a valid IP");
        let err = validate_header_value("%A").unwrap_err();
        assert_eq!(err.kind(), ValueKind::HeaderValue);
        assert_eq!(
            err.to_string(),
            "header value configuration: invalid header configuration. Un-terminated variable \
             expression '%A'"
        );
        let err = validate_fqdn("a..b").unwrap_err();
        assert_eq!(err.kind(), ValueKind::Fqdn);
        assert_eq!(
            String::from(err),
            "domain name \"a..b\" invalid (label \"\" invalid)"
        );
        let source: &dyn std::error::Error = &validate_percent(101).unwrap_err();
        assert_eq!(source.to_string(), "percentage 101 is not in range 0..100");
    }

    #[test]
    fn subnets_allow_host_bits_and_reject_bad_lengths() {
        assert!(validate_ip_subnet("1.1.1.1/24").is_ok());
        assert!(validate_ip_subnet("172.1.2.16/16").is_ok());
        assert!(validate_ip_subnet("2001:1::1/64").is_ok());
        assert!(validate_ip_subnet("1.1.1.1/48").is_err());
        assert!(validate_ip_subnet("1.1.1.1/024").is_err());
        assert!(validate_ip_subnet("1.1.1.1/").is_err());
        assert!(validate_ip_subnet("fe80::1%eth0/64").is_err());
        assert!(validate_ip_subnet("1.1.1.1/2/3").is_err());
    }

    #[test]
    fn domains_reject_numeric_tld_and_allow_trailing_dot() {
        assert!(validate_fqdn("istio.io.").is_ok());
        assert!(validate_fqdn("foo").is_ok());
        assert!(validate_fqdn("1.1.1.1").is_err());
        assert!(validate_fqdn("a.+1").is_err());
        assert!(validate_fqdn("a..b").is_err());
        assert!(validate_fqdn("*.foo.com").is_err());
        assert!(validate_wildcard_domain(&"x".repeat(63)).is_ok());
        assert!(validate_wildcard_domain(&"x".repeat(64)).is_err());
        for ok in [
            "*",
            "*.bar.com",
            "*foo",
            "*foo.bar.com",
            "*-foo.bar.com",
            "A.B",
        ] {
            assert!(validate_wildcard_domain(ok).is_ok(), "{ok}");
        }
        for bad in [
            "foo.*.com",
            "foo*.bar.com",
            "1.1.1.1",
            "-",
            "foo.ba!r",
            "ns/svc",
            "**",
        ] {
            assert!(validate_wildcard_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_keys_take_a_dns_prefix() {
        let one = |k: &str, v: &str| validate_labels(&BTreeMap::from([(k.into(), v.into())]));
        assert!(one("app.kubernetes.io/name", "v").is_ok());
        assert!(one("istio./key", "v").is_err());
        assert!(one("", "v").is_err());
        assert!(one("key", "value_").is_err());
        assert!(one("key", &"v".repeat(100)).is_ok());
        assert!(one(&"k".repeat(64), "v").is_err());
        assert!(one("a/b/c", "v").is_err());
    }

    #[test]
    fn header_names_accept_comma_and_claims() {
        assert!(validate_header_match_name("a,b").is_ok());
        assert!(validate_header_match_name(":authority").is_ok());
        assert!(validate_header_match_name("@request.auth.claims.sub").is_ok());
        assert!(validate_header_match_name("@Request.Auth.Claims[a][b]").is_ok());
        assert!(validate_header_match_name("@request.auth.claims[]").is_err());
        assert!(validate_header_match_name("::").is_err());
        assert!(validate_header_match_name("a b").is_err());
    }

    #[test]
    fn header_values_follow_envoy_substitution() {
        for ok in [
            "",
            "foo",
            "100%%",
            "%HOSTNAME%",
            "%DOWNSTREAM_PEER_CERT_V_END(%b %d %H:%M:%S %Y %Z)%",
            "a\tb",
        ] {
            assert!(validate_header_value(ok).is_ok(), "{ok}");
        }
        for bad in ["abc%123", "%START_TIME%%", "abcd%oijasodifj", "a\nb", "%"] {
            assert!(validate_header_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_to_duplicates_and_none() {
        let errs = |ns: &str, l: &[&str], se: bool, dr: bool| {
            let list: Vec<String> = l.iter().map(|s| (*s).to_owned()).collect();
            validate_export_to(ns, &list, se, dr).errors().count()
        };
        assert_eq!(errs("ns5", &[".", "ns1"], false, false), 0);
        assert_eq!(errs("ns5", &["ns5", "."], false, false), 1);
        assert!(errs("ns5", &["~"], false, false) > 0);
        assert_eq!(errs("ns5", &["~"], true, false), 0);
        assert!(errs("ns5", &["~", "ns1"], true, false) > 0);
        assert!(errs("ns5", &["*", "ns1"], false, false) > 0);
        assert!(errs("ns5", &["*"], false, true) > 0);
    }

    #[test]
    fn durations_need_whole_milliseconds() {
        assert!(validate_duration(&"1ms".parse().unwrap()).is_ok());
        assert!(validate_duration(&"0s".parse().unwrap()).is_err());
        assert!(validate_duration(&"1.000000001s".parse().unwrap()).is_err());
    }

    #[test]
    fn percentages() {
        assert!(validate_percentage(0.0).is_ok());
        assert!(validate_percentage(0.00001).is_err());
        assert!(validate_percentage(100.1).is_err());
        assert!(validate_percent(101).is_err());
    }
}
