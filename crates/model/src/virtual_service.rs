//! `VirtualService`: how requests addressed to a set of hosts are matched and routed.
//!
//! The types follow Istio's `istio.networking.v1alpha3` messages of `virtual_service.proto`
//! (shared by `v1beta1` and `v1`), Rust-cased: `HTTPRoute` is [`HttpRoute`], `TLSRoute` is
//! [`TlsRoute`], and so on. See [`crate::common`] for the conventions.
//!
//! ```
//! use portcullis_model::VirtualService;
//! use portcullis_model::virtual_service::RedirectPort;
//!
//! let vs: VirtualService = serde_json::from_str(r#"{
//!     "hosts": ["reviews"],
//!     "http": [{"redirect": {"uri": "/v2", "port": 8080}}]
//! }"#)?;
//! let redirect = vs.http[0].redirect.as_ref().unwrap();
//! assert_eq!(redirect.redirect_port, Some(RedirectPort::Port(8080)));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{OneofError, is_default, one_of, proto_enum};
use crate::{Duration, Percent, StringMatch};

/// The spec of a `VirtualService`: routing rules for HTTP, TLS (SNI) and opaque TCP traffic
/// addressed to [`hosts`](Self::hosts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualService {
    /// The hosts the rules apply to: DNS names (optionally with a `*.` wildcard prefix), short
    /// names resolved in the VirtualService's namespace, or IP addresses (gateways only).
    /// Must be empty for a delegate VirtualService.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hosts: Vec<String>,
    /// The gateways (`[namespace/]name`) and sidecars (the reserved name `mesh`) that apply
    /// these rules; empty means `mesh` only.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gateways: Vec<String>,
    /// Ordered HTTP rules; the first one that matches a request is used.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub http: Vec<HttpRoute>,
    /// Ordered rules for TLS traffic that is not terminated, matched mostly on SNI.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tls: Vec<TlsRoute>,
    /// Ordered rules for opaque TCP traffic.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tcp: Vec<TcpRoute>,
    /// The namespaces that may use this VirtualService (`.` is its own namespace, `*` all);
    /// empty means all namespaces.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "export_to",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub export_to: Vec<String>,
}

/// A service (or a subset of it) that traffic is sent to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// The service's name in the registry (Kubernetes services, ServiceEntries); short names
    /// are resolved in the VirtualService's namespace. Required.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub host: String,
    /// The name of a subset declared by a DestinationRule for the host.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub subset: String,
    /// The port of the host; may be omitted when the service has exactly one port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// A port of a destination, by number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    /// The port number (validation checks the range 1–65535).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub number: u32,
}

/// One HTTP rule: match conditions and what to do with matching requests (forward, redirect,
/// respond directly or delegate), plus the policies that apply on the way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRoute {
    /// A name for the rule, used in logs, stats and the route name of the proxy.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The conditions, ORed; empty matches every request.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub r#match: Vec<HttpMatchRequest>,
    /// The weighted destinations matching requests are forwarded to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub route: Vec<HttpRouteDestination>,
    /// Answer with a redirect instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<HttpRedirect>,
    /// Answer with a fixed response instead of forwarding.
    #[serde(
        default,
        alias = "direct_response",
        skip_serializing_if = "Option::is_none"
    )]
    pub direct_response: Option<HttpDirectResponse>,
    /// Take the rules from another VirtualService (only for rules in a root VirtualService
    /// without `route` or `redirect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<Delegate>,
    /// Rewrite the path or authority before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
    /// The timeout for the whole request; unset means no timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<HttpRetry>,
    /// Faults (delays, aborts) injected on the client side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<HttpFaultInjection>,
    /// A destination that receives a copy of the traffic, whose responses are discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Destination>,
    /// Several mirror destinations, each with its own percentage.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// Deprecated (use [`mirror_percentage`](Self::mirror_percentage)): the whole percentage
    /// of traffic sent to [`mirror`](Self::mirror). A `UInt32Value`, so `0` differs from unset.
    #[serde(
        default,
        rename = "mirrorPercent",
        alias = "mirror_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_percent: Option<u32>,
    /// The percentage of traffic sent to [`mirror`](Self::mirror); unset means 100 %.
    #[serde(
        default,
        alias = "mirror_percentage",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_percentage: Option<Percent>,
    /// The Cross-Origin Resource Sharing policy.
    #[serde(
        default,
        alias = "cors_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub cors_policy: Option<CorsPolicy>,
    /// Header changes applied to requests and responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// A reference to the delegate VirtualService that holds the rules of an [`HttpRoute`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delegate {
    /// The delegate VirtualService's name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The delegate VirtualService's namespace; empty means the root's namespace.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// Header changes for requests and for responses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Headers {
    /// Changes applied to the request before it is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HeaderOperations>,
    /// Changes applied to the response before it is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HeaderOperations>,
}

/// Header changes in one direction (Istio's `Headers.HeaderOperations`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderOperations {
    /// Headers to set, replacing any existing value.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub set: BTreeMap<String, String>,
    /// Headers to append to, keeping existing values.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub add: BTreeMap<String, String>,
    /// Names of headers to remove.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remove: Vec<String>,
}

/// One rule for TLS traffic that is passed through (not terminated).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsRoute {
    /// The conditions, ORed. Required.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub r#match: Vec<TlsMatchAttributes>,
    /// The weighted destinations matching connections are forwarded to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub route: Vec<RouteDestination>,
}

/// One rule for opaque TCP traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpRoute {
    /// The conditions, ORed; empty matches every connection.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub r#match: Vec<L4MatchAttributes>,
    /// The weighted destinations matching connections are forwarded to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub route: Vec<RouteDestination>,
}

/// The conditions an HTTP request must meet for an [`HttpRoute`] to apply; all set fields
/// must hold (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatchRequest {
    /// A name for the match, appended to the rule's name in the proxy's route name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The request path (case-sensitive unless [`ignore_uri_case`](Self::ignore_uri_case)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// The URI scheme (`http`, `https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<StringMatch>,
    /// The HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    /// The authority (`Host` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<StringMatch>,
    /// Request headers that must match, by lower-case name; an empty match means the header is
    /// present.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub headers: BTreeMap<String, StringMatch>,
    /// The port the request was addressed to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub port: u32,
    /// Labels the source workload must carry (sidecars only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to, overriding the VirtualService's `gateways`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gateways: Vec<String>,
    /// Query parameters that must match (only `exact` and `regex` are supported).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "query_params",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub query_params: BTreeMap<String, StringMatch>,
    /// Match [`uri`](Self::uri) ignoring case (`exact` and `prefix` only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ignore_uri_case",
        skip_serializing_if = "is_default"
    )]
    pub ignore_uri_case: bool,
    /// Request headers that must NOT match, by lower-case name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "without_headers",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// The namespace the source workload must run in (sidecars only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_namespace",
        skip_serializing_if = "String::is_empty"
    )]
    pub source_namespace: String,
    /// A readable prefix for the statistics of this route.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "stat_prefix",
        skip_serializing_if = "String::is_empty"
    )]
    pub stat_prefix: String,
}

/// A weighted destination of an [`HttpRoute`], with its own header changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteDestination {
    /// Where the traffic goes. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// The relative share of traffic; with one destination, unset means all of it.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub weight: i32,
    /// Header changes applied when this destination is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
}

/// A weighted destination of a [`TlsRoute`] or [`TcpRoute`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteDestination {
    /// Where the traffic goes. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// The relative share of traffic; with one destination, unset means all of it.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub weight: i32,
}

/// The conditions a TCP connection must meet for a [`TcpRoute`] to apply (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L4MatchAttributes {
    /// Destination IP addresses or CIDR blocks.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "destination_subnets",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destination_subnets: Vec<String>,
    /// The port the connection was addressed to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub port: u32,
    /// Source IP address or CIDR block (ignored by current Istio).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_subnet",
        skip_serializing_if = "String::is_empty"
    )]
    pub source_subnet: String,
    /// Labels the source workload must carry (sidecars only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to, overriding the VirtualService's `gateways`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gateways: Vec<String>,
    /// The namespace the source workload must run in (sidecars only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_namespace",
        skip_serializing_if = "String::is_empty"
    )]
    pub source_namespace: String,
}

/// The conditions a TLS connection must meet for a [`TlsRoute`] to apply (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsMatchAttributes {
    /// The SNI values to match (wildcards allowed). Required.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "sni_hosts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sni_hosts: Vec<String>,
    /// Destination IP addresses or CIDR blocks.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "destination_subnets",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destination_subnets: Vec<String>,
    /// The port the connection was addressed to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub port: u32,
    /// Labels the source workload must carry (sidecars only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_labels: BTreeMap<String, String>,
    /// Gateways this match applies to, overriding the VirtualService's `gateways`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gateways: Vec<String>,
    /// The namespace the source workload must run in (sidecars only).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "source_namespace",
        skip_serializing_if = "String::is_empty"
    )]
    pub source_namespace: String,
}

/// An HTTP redirect sent instead of forwarding the request.
///
/// Fields left empty keep the corresponding part of the original URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HttpRedirectRepr", into = "HttpRedirectRepr")]
pub struct HttpRedirect {
    /// Replace the path with this value.
    pub uri: String,
    /// Replace the authority (host) with this value.
    pub authority: String,
    /// The port of the redirect URL: the `port | derivePort` oneof.
    pub redirect_port: Option<RedirectPort>,
    /// Replace the scheme with this value.
    pub scheme: String,
    /// The redirect status code; unset means 301.
    pub redirect_code: u32,
    /// Replace the matched path prefix with this value.
    pub prefix_rewrite: String,
}

/// The port of an [`HttpRedirect`]'s URL (Istio's `redirect_port` oneof).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectPort {
    /// This port number.
    Port(u32),
    /// A port chosen when redirecting.
    DerivePort(RedirectPortSelection),
}

proto_enum! {
    /// How an [`HttpRedirect`] derives its port (Istio's `HTTPRedirect.RedirectPortSelection`).
    pub enum RedirectPortSelection {
        /// 80 for `http`, 443 for `https`. The zero value.
        FromProtocolDefault = ("FROM_PROTOCOL_DEFAULT", 0),
        /// The port of the original request.
        FromRequestPort = ("FROM_REQUEST_PORT", 1),
    }
}

/// The wire shape of an [`HttpRedirect`].
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HttpRedirectRepr {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    uri: String,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    authority: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<u32>,
    #[serde(
        default,
        alias = "derive_port",
        skip_serializing_if = "Option::is_none"
    )]
    derive_port: Option<RedirectPortSelection>,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    scheme: String,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "redirect_code",
        skip_serializing_if = "is_default"
    )]
    redirect_code: u32,
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "prefix_rewrite",
        skip_serializing_if = "String::is_empty"
    )]
    prefix_rewrite: String,
}

impl TryFrom<HttpRedirectRepr> for HttpRedirect {
    type Error = OneofError;

    fn try_from(repr: HttpRedirectRepr) -> Result<Self, OneofError> {
        let HttpRedirectRepr {
            uri,
            authority,
            port,
            derive_port,
            scheme,
            redirect_code,
            prefix_rewrite,
        } = repr;
        let redirect_port = one_of(
            [
                port.map(RedirectPort::Port),
                derive_port.map(RedirectPort::DerivePort),
            ],
            &["port", "derivePort"],
        )?;
        Ok(Self {
            uri,
            authority,
            redirect_port,
            scheme,
            redirect_code,
            prefix_rewrite,
        })
    }
}

impl From<HttpRedirect> for HttpRedirectRepr {
    fn from(redirect: HttpRedirect) -> Self {
        let HttpRedirect {
            uri,
            authority,
            redirect_port,
            scheme,
            redirect_code,
            prefix_rewrite,
        } = redirect;
        let (port, derive_port) = match redirect_port {
            Some(RedirectPort::Port(port)) => (Some(port), None),
            Some(RedirectPort::DerivePort(selection)) => (None, Some(selection)),
            None => (None, None),
        };
        Self {
            uri,
            authority,
            port,
            derive_port,
            scheme,
            redirect_code,
            prefix_rewrite,
        }
    }
}

/// A fixed response sent instead of forwarding the request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpDirectResponse {
    /// The HTTP status code. Required.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub status: u32,
    /// The response body; unset means an empty body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<HttpBody>,
}

/// The body of an [`HttpDirectResponse`] (Istio's `HTTPBody` and its `specifier` oneof).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "HttpBodyRepr", into = "HttpBodyRepr")]
#[non_exhaustive]
pub enum HttpBody {
    /// The body as text.
    String(String),
    /// The body as bytes, in base64 exactly as written ([`HttpBody::to_bytes`] decodes it).
    Bytes(String),
    /// `{}`: no branch set, an empty body.
    Unset,
}

impl HttpBody {
    /// The body's bytes: the text of `String`, `Bytes` decoded as Istio's decoder reads a
    /// protobuf `bytes` field ([`crate::common::decode_proto_bytes`]), nothing for `Unset`.
    ///
    /// ```
    /// use portcullis_model::virtual_service::HttpBody;
    ///
    /// assert_eq!(&*HttpBody::Bytes("aGk=".into()).to_bytes()?, b"hi");
    /// assert_eq!(&*HttpBody::String("hi".into()).to_bytes()?, b"hi");
    /// assert!(HttpBody::Bytes("h!".into()).to_bytes().is_err());
    /// # Ok::<(), portcullis_model::InvalidBytes>(())
    /// ```
    pub fn to_bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, crate::InvalidBytes> {
        match self {
            Self::String(s) => Ok(s.as_bytes().into()),
            Self::Bytes(b) => crate::common::decode_proto_bytes(b).map(Into::into),
            Self::Unset => Ok((&[][..]).into()),
        }
    }
}

/// The wire shape of an [`HttpBody`].
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpBodyRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
}

impl TryFrom<HttpBodyRepr> for HttpBody {
    type Error = OneofError;

    fn try_from(repr: HttpBodyRepr) -> Result<Self, OneofError> {
        let HttpBodyRepr { string, bytes } = repr;
        one_of(
            [string.map(Self::String), bytes.map(Self::Bytes)],
            &["string", "bytes"],
        )
        .map(|body| body.unwrap_or(Self::Unset))
    }
}

impl From<HttpBody> for HttpBodyRepr {
    fn from(body: HttpBody) -> Self {
        let mut repr = Self::default();
        match body {
            HttpBody::String(s) => repr.string = Some(s),
            HttpBody::Bytes(b) => repr.bytes = Some(b),
            HttpBody::Unset => {}
        }
        repr
    }
}

/// Rewrites applied to a request before it is forwarded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRewrite {
    /// Replace the matched path prefix (or the whole path, for an exact match) with this value.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub uri: String,
    /// Replace the authority (`Host` header) with this value.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub authority: String,
    /// Rewrite the path with a regular expression (not together with [`uri`](Self::uri)).
    #[serde(
        default,
        alias = "uri_regex_rewrite",
        skip_serializing_if = "Option::is_none"
    )]
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

/// A regular-expression rewrite of the path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexRewrite {
    /// The RE2 expression whose matches are replaced.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub r#match: String,
    /// The replacement, which may refer to capture groups (`\1`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub rewrite: String,
}

/// The retry policy of an [`HttpRoute`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRetry {
    /// The number of retries; `0` disables retries. A plain `int32` in Istio's API.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub attempts: i32,
    /// The timeout of each attempt, the first included.
    #[serde(
        default,
        alias = "per_try_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_try_timeout: Option<Duration>,
    /// Comma-separated retry conditions (Envoy `x-envoy-retry-on` and
    /// `x-envoy-retry-grpc-on` names, or status codes).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "retry_on",
        skip_serializing_if = "String::is_empty"
    )]
    pub retry_on: String,
    /// Whether retries may go to other localities (a `BoolValue`).
    #[serde(
        default,
        alias = "retry_remote_localities",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_remote_localities: Option<bool>,
    /// Whether retries avoid hosts already tried (a `BoolValue`).
    #[serde(
        default,
        alias = "retry_ignore_previous_hosts",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_ignore_previous_hosts: Option<bool>,
    /// The base interval between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

/// The Cross-Origin Resource Sharing policy of an [`HttpRoute`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsPolicy {
    /// Deprecated (use [`allow_origins`](Self::allow_origins)): origins allowed, exactly.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "allow_origin",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_origin: Vec<String>,
    /// Patterns of the origins allowed.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "allow_origins",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_origins: Vec<StringMatch>,
    /// Methods allowed (`Access-Control-Allow-Methods`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "allow_methods",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_methods: Vec<String>,
    /// Request headers allowed (`Access-Control-Allow-Headers`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "allow_headers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_headers: Vec<String>,
    /// Response headers browsers may read (`Access-Control-Expose-Headers`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "expose_headers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub expose_headers: Vec<String>,
    /// How long preflight results may be cached (`Access-Control-Max-Age`).
    #[serde(default, alias = "max_age", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// Whether credentials are allowed (`Access-Control-Allow-Credentials`; a `BoolValue`).
    #[serde(
        default,
        alias = "allow_credentials",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_credentials: Option<bool>,
    /// What to do with preflight requests whose origin is not allowed.
    #[serde(
        default,
        alias = "unmatched_preflights",
        skip_serializing_if = "Option::is_none"
    )]
    pub unmatched_preflights: Option<UnmatchedPreflights>,
}

proto_enum! {
    /// What happens to preflight requests that match no allowed origin
    /// (Istio's `CorsPolicy.UnmatchedPreflights`).
    pub enum UnmatchedPreflights {
        /// Not set: the proxy's default, forward. The zero value.
        Unspecified = ("UNSPECIFIED", 0),
        /// Forward them to the upstream.
        Forward = ("FORWARD", 1),
        /// Answer them without forwarding.
        Ignore = ("IGNORE", 2),
    }
}

/// Faults injected into matching requests on the client side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpFaultInjection {
    /// Delay requests before forwarding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// Fail requests with an error instead of forwarding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
}

/// An injected delay (Istio's `HTTPFaultInjection.Delay`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DelayRepr", into = "DelayRepr")]
pub struct Delay {
    /// Deprecated (use [`percentage`](Self::percentage)): whole percentage (0–100) of requests
    /// delayed.
    pub percent: i32,
    /// The kind and length of the delay: the `fixedDelay | exponentialDelay` oneof.
    pub http_delay_type: Option<HttpDelayType>,
    /// The percentage of requests delayed; unset means all.
    pub percentage: Option<Percent>,
}

/// The delay of a [`Delay`] fault (Istio's `http_delay_type` oneof).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpDelayType {
    /// Wait this long before forwarding.
    FixedDelay(Duration),
    /// An exponential delay with this mean (not supported by Istio's proxy configuration).
    ExponentialDelay(Duration),
}

/// The wire shape of a [`Delay`].
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DelayRepr {
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    percent: i32,
    #[serde(
        default,
        alias = "fixed_delay",
        skip_serializing_if = "Option::is_none"
    )]
    fixed_delay: Option<Duration>,
    #[serde(
        default,
        alias = "exponential_delay",
        skip_serializing_if = "Option::is_none"
    )]
    exponential_delay: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percentage: Option<Percent>,
}

impl TryFrom<DelayRepr> for Delay {
    type Error = OneofError;

    fn try_from(repr: DelayRepr) -> Result<Self, OneofError> {
        let DelayRepr {
            percent,
            fixed_delay,
            exponential_delay,
            percentage,
        } = repr;
        let http_delay_type = one_of(
            [
                fixed_delay.map(HttpDelayType::FixedDelay),
                exponential_delay.map(HttpDelayType::ExponentialDelay),
            ],
            &["fixedDelay", "exponentialDelay"],
        )?;
        Ok(Self {
            percent,
            http_delay_type,
            percentage,
        })
    }
}

impl From<Delay> for DelayRepr {
    fn from(delay: Delay) -> Self {
        let Delay {
            percent,
            http_delay_type,
            percentage,
        } = delay;
        let (fixed_delay, exponential_delay) = match http_delay_type {
            Some(HttpDelayType::FixedDelay(d)) => (Some(d), None),
            Some(HttpDelayType::ExponentialDelay(d)) => (None, Some(d)),
            None => (None, None),
        };
        Self {
            percent,
            fixed_delay,
            exponential_delay,
            percentage,
        }
    }
}

/// An injected failure (Istio's `HTTPFaultInjection.Abort`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AbortRepr", into = "AbortRepr")]
pub struct Abort {
    /// The error returned: the `httpStatus | grpcStatus | http2Error` oneof.
    pub error_type: Option<ErrorType>,
    /// The percentage of requests aborted; unset means all.
    pub percentage: Option<Percent>,
}

/// The error of an [`Abort`] fault (Istio's `error_type` oneof).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorType {
    /// Answer with this HTTP status code.
    HttpStatus(i32),
    /// Answer with this gRPC status (a code name such as `UNAVAILABLE`, or a number).
    GrpcStatus(String),
    /// Reset the stream with this HTTP/2 error (not supported by Istio's proxy configuration).
    Http2Error(String),
}

/// The wire shape of an [`Abort`].
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AbortRepr {
    #[serde(
        default,
        alias = "http_status",
        skip_serializing_if = "Option::is_none"
    )]
    http_status: Option<i32>,
    #[serde(
        default,
        alias = "grpc_status",
        skip_serializing_if = "Option::is_none"
    )]
    grpc_status: Option<String>,
    #[serde(
        default,
        alias = "http2_error",
        skip_serializing_if = "Option::is_none"
    )]
    http2_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percentage: Option<Percent>,
}

impl TryFrom<AbortRepr> for Abort {
    type Error = OneofError;

    fn try_from(repr: AbortRepr) -> Result<Self, OneofError> {
        let AbortRepr {
            http_status,
            grpc_status,
            http2_error,
            percentage,
        } = repr;
        let error_type = one_of(
            [
                http_status.map(ErrorType::HttpStatus),
                grpc_status.map(ErrorType::GrpcStatus),
                http2_error.map(ErrorType::Http2Error),
            ],
            &["httpStatus", "grpcStatus", "http2Error"],
        )?;
        Ok(Self {
            error_type,
            percentage,
        })
    }
}

impl From<Abort> for AbortRepr {
    fn from(abort: Abort) -> Self {
        let Abort {
            error_type,
            percentage,
        } = abort;
        let mut repr = Self {
            percentage,
            ..Self::default()
        };
        match error_type {
            Some(ErrorType::HttpStatus(status)) => repr.http_status = Some(status),
            Some(ErrorType::GrpcStatus(status)) => repr.grpc_status = Some(status),
            Some(ErrorType::Http2Error(error)) => repr.http2_error = Some(error),
            None => {}
        }
        repr
    }
}

/// A mirror destination of an [`HttpRoute`] with its share of traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMirrorPolicy {
    /// Where the copies go. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// The percentage of traffic copied; unset means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A spec that sets every message of the file at least once.
    const FULL: &str = r#"{
        "hosts": ["reviews.prod.svc.cluster.local", "*.example.com"],
        "gateways": ["istio-system/public", "mesh"],
        "exportTo": ["."],
        "http": [
            {
                "name": "v2",
                "match": [
                    {
                        "name": "api",
                        "uri": {"prefix": "/api"},
                        "scheme": {"exact": "https"},
                        "method": {"regex": "GET|POST"},
                        "authority": {"exact": "example.com"},
                        "headers": {"x-user": {"exact": "jason"}, "x-present": {}},
                        "withoutHeaders": {"x-canary": {"exact": "no"}},
                        "queryParams": {"debug": {"exact": "1"}},
                        "port": 8080,
                        "sourceLabels": {"app": "frontend"},
                        "sourceNamespace": "web",
                        "gateways": ["mesh"],
                        "ignoreUriCase": true,
                        "statPrefix": "api"
                    }
                ],
                "route": [
                    {
                        "destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}},
                        "weight": 75,
                        "headers": {"request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]}}
                    },
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 25}
                ],
                "rewrite": {"authority": "internal", "uriRegexRewrite": {"match": "^/api/(.*)", "rewrite": "/\\1"}},
                "timeout": "10s",
                "retries": {
                    "attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset",
                    "retryRemoteLocalities": false, "retryIgnorePreviousHosts": true, "backoff": "0.025s"
                },
                "fault": {
                    "delay": {"fixedDelay": "5s", "percentage": {"value": 0.1}, "percent": 10},
                    "abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 50.5}}
                },
                "mirror": {"host": "shadow", "port": {"number": 80}},
                "mirrorPercent": 0,
                "mirrorPercentage": {"value": 12.5},
                "mirrors": [{"destination": {"host": "shadow2"}, "percentage": {"value": 1}}],
                "corsPolicy": {
                    "allowOrigin": ["https://legacy.example.com"],
                    "allowOrigins": [{"exact": "https://example.com"}, {"regex": ".*\\.example\\.org"}],
                    "allowMethods": ["GET"], "allowHeaders": ["x-a"], "exposeHeaders": ["x-b"],
                    "maxAge": "24h", "allowCredentials": false, "unmatchedPreflights": "IGNORE"
                },
                "headers": {"response": {"remove": ["server"]}}
            },
            {"redirect": {"uri": "/new", "authority": "b.example.com", "derivePort": "FROM_REQUEST_PORT",
                          "scheme": "https", "redirectCode": 308, "prefixRewrite": "/p"}},
            {"directResponse": {"status": 503, "body": {"string": "unavailable"}}},
            {"directResponse": {"status": 200, "body": {"bytes": "aGVsbG8="}}},
            {"delegate": {"name": "child", "namespace": "team"},
             "fault": {"delay": {"exponentialDelay": "1s"}, "abort": {"httpStatus": 503}}}
        ],
        "tls": [
            {
                "match": [{"sniHosts": ["a.example.com"], "port": 443, "destinationSubnets": ["10.0.0.0/8"],
                           "sourceLabels": {"app": "x"}, "gateways": ["mesh"], "sourceNamespace": "ns"}],
                "route": [{"destination": {"host": "a"}, "weight": 100}]
            }
        ],
        "tcp": [
            {
                "match": [{"port": 27017, "destinationSubnets": ["10.1.0.0/16"], "sourceSubnet": "10.2.0.0/16",
                           "sourceLabels": {"app": "y"}, "gateways": ["gw"], "sourceNamespace": "ns"}],
                "route": [{"destination": {"host": "mongo", "port": {"number": 5555}}}]
            }
        ]
    }"#;

    #[test]
    fn full_spec_round_trips() {
        let vs: VirtualService = serde_json::from_str(FULL).unwrap();
        let out = serde_json::to_string(&vs).unwrap();
        let back: VirtualService = serde_json::from_str(&out).unwrap();
        assert_eq!(vs, back);

        let route = &vs.http[0];
        assert_eq!(route.r#match[0].headers["x-present"], StringMatch::Unset);
        assert_eq!(route.timeout, Some(Duration::from_secs(10)));
        // Wrappers keep an explicit zero / false.
        assert_eq!(route.mirror_percent, Some(0));
        assert!(out.contains(r#""mirrorPercent":0"#), "{out}");
        let retries = route.retries.as_ref().unwrap();
        assert_eq!(retries.retry_remote_localities, Some(false));
        let fault = route.fault.as_ref().unwrap();
        let delay = fault.delay.as_ref().unwrap();
        assert_eq!(
            delay.http_delay_type,
            Some(HttpDelayType::FixedDelay(Duration::from_secs(5)))
        );
        assert_eq!(delay.percent, 10);
        assert_eq!(
            fault.abort.as_ref().unwrap().error_type,
            Some(ErrorType::GrpcStatus("UNAVAILABLE".into()))
        );
        assert_eq!(
            route.cors_policy.as_ref().unwrap().unmatched_preflights,
            Some(UnmatchedPreflights::Ignore)
        );
        let redirect = vs.http[1].redirect.as_ref().unwrap();
        assert_eq!(
            redirect.redirect_port,
            Some(RedirectPort::DerivePort(
                RedirectPortSelection::FromRequestPort
            ))
        );
        assert_eq!(
            vs.http[3].direct_response.as_ref().unwrap().body,
            Some(HttpBody::Bytes("aGVsbG8=".into()))
        );
        assert_eq!(vs.tcp[0].route[0].weight, 0);
    }

    #[test]
    fn unset_fields_are_omitted_and_oneof_zero_values_are_kept() {
        let vs: VirtualService = serde_json::from_str(
            r#"{"http": [{"redirect": {"port": 0}, "route": [{"destination": {"host": "a"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            vs.http[0].redirect.as_ref().unwrap().redirect_port,
            Some(RedirectPort::Port(0))
        );
        assert_eq!(
            serde_json::to_string(&vs).unwrap(),
            r#"{"http":[{"route":[{"destination":{"host":"a"}}],"redirect":{"port":0}}]}"#
        );
        assert_eq!(
            serde_json::to_string(&VirtualService::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn protobuf_field_names_load() {
        let vs: VirtualService = serde_json::from_str(
            r#"{
                "export_to": ["*"],
                "http": [{
                    "match": [{"ignore_uri_case": true, "source_labels": {"a": "b"}, "query_params": {"q": {}},
                               "without_headers": {"h": {}}, "source_namespace": "n", "stat_prefix": "s"}],
                    "redirect": {"prefix_rewrite": "/x", "redirect_code": 302, "derive_port": "FROM_PROTOCOL_DEFAULT"},
                    "rewrite": {"uri_regex_rewrite": {"match": "a", "rewrite": "b"}},
                    "retries": {"per_try_timeout": "1s", "retry_on": "5xx", "retry_remote_localities": true,
                                "retry_ignore_previous_hosts": false},
                    "fault": {"delay": {"fixed_delay": "1s"}, "abort": {"http_status": 500}},
                    "mirror_percent": 5,
                    "mirror_percentage": {"value": 5},
                    "cors_policy": {"allow_origins": [{"exact": "o"}], "allow_credentials": true,
                                    "max_age": "1m", "unmatched_preflights": "FORWARD"}
                }, {
                    "direct_response": {"status": 204}
                }],
                "tls": [{"match": [{"sni_hosts": ["a"], "destination_subnets": ["1.2.3.4"]}]}],
                "tcp": [{"match": [{"source_subnet": "1.2.3.0/24"}]}]
            }"#,
        )
        .unwrap();
        assert_eq!(vs.export_to, ["*"]);
        let route = &vs.http[0];
        assert!(route.r#match[0].ignore_uri_case);
        let redirect = route.redirect.as_ref().unwrap();
        assert_eq!(redirect.prefix_rewrite, "/x");
        assert_eq!(
            redirect.redirect_port,
            Some(RedirectPort::DerivePort(
                RedirectPortSelection::FromProtocolDefault
            ))
        );
        assert_eq!(route.mirror_percent, Some(5));
        assert_eq!(
            route
                .fault
                .as_ref()
                .unwrap()
                .abort
                .as_ref()
                .unwrap()
                .error_type,
            Some(ErrorType::HttpStatus(500))
        );
        assert_eq!(vs.http[1].direct_response.as_ref().unwrap().status, 204);
        assert_eq!(vs.tls[0].r#match[0].sni_hosts, ["a"]);
        assert_eq!(vs.tcp[0].r#match[0].source_subnet, "1.2.3.0/24");
        // Output uses the JSON names only.
        let out = serde_json::to_string(&vs).unwrap();
        assert!(
            out.contains(r#""mirrorPercent":5"#) && out.contains("sniHosts"),
            "{out}"
        );
    }

    #[test]
    fn oneofs_with_two_branches_are_rejected() {
        let cases = [
            (
                r#"{"port": 80, "derivePort": "FROM_REQUEST_PORT"}"#,
                "only one of port, derivePort may be set",
            ),
            (
                r#"{"fixedDelay": "1s", "exponentialDelay": "2s"}"#,
                "only one of fixedDelay, exponentialDelay may be set",
            ),
            (
                r#"{"httpStatus": 503, "grpcStatus": "UNAVAILABLE"}"#,
                "only one of httpStatus, grpcStatus, http2Error may be set",
            ),
            (
                r#"{"string": "a", "bytes": "YQ=="}"#,
                "only one of string, bytes may be set",
            ),
        ];
        let errors = [
            serde_json::from_str::<HttpRedirect>(cases[0].0).unwrap_err(),
            serde_json::from_str::<Delay>(cases[1].0).unwrap_err(),
            serde_json::from_str::<Abort>(cases[2].0).unwrap_err(),
            serde_json::from_str::<HttpBody>(cases[3].0).unwrap_err(),
        ];
        for ((_, expected), err) in cases.iter().zip(errors) {
            let err = err.to_string();
            assert!(err.contains(expected), "{err}");
        }
        assert_eq!(
            serde_json::from_str::<HttpBody>("{}").unwrap(),
            HttpBody::Unset
        );
        assert_eq!(
            serde_json::from_str::<Abort>("{}").unwrap(),
            Abort::default()
        );
    }

    #[test]
    fn unknown_enum_values_list_the_accepted_names() {
        let err = serde_json::from_str::<HttpRedirect>(r#"{"derivePort": "FROM_NOWHERE"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `FROM_NOWHERE`"), "{err}");
        assert!(
            err.contains("expected `FROM_PROTOCOL_DEFAULT` or `FROM_REQUEST_PORT`"),
            "{err}"
        );
        let err = serde_json::from_str::<CorsPolicy>(r#"{"unmatchedPreflights": "DROP"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "unknown variant `DROP`, expected one of `UNSPECIFIED`, `FORWARD`, `IGNORE`"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        // `websocketUpgrade` was removed from HTTPRoute.
        let err =
            serde_json::from_str::<VirtualService>(r#"{"http": [{"websocketUpgrade": true}]}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `websocketUpgrade`"), "{err}");
        // Also through the oneof wire shapes.
        for (json, field) in [
            (r#"{"redirect": {"code": 301}}"#, "code"),
            (r#"{"fault": {"delay": {"fixed": "1s"}}}"#, "fixed"),
            (r#"{"fault": {"abort": {"status": 500}}}"#, "status"),
            (
                r#"{"directResponse": {"status": 200, "body": {"text": "x"}}}"#,
                "text",
            ),
        ] {
            let err = serde_json::from_str::<HttpRoute>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("unknown field `{field}`")), "{err}");
        }
    }

    #[test]
    fn wrong_types_and_out_of_range_numbers_fail_but_large_ports_load() {
        assert!(serde_json::from_str::<Destination>(r#"{"host": "a", "port": 80}"#).is_err());
        assert!(serde_json::from_str::<RouteDestination>(r#"{"weight": "10"}"#).is_err());
        let m: L4MatchAttributes = serde_json::from_str(r#"{"port": 70000}"#).unwrap();
        assert_eq!(m.port, 70000);
        let d: RouteDestination = serde_json::from_str(r#"{"weight": -5}"#).unwrap();
        assert_eq!(d.weight, -5);
    }
}
