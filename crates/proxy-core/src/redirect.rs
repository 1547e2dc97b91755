//! Redirects: the `Location` Envoy builds (`newUri`, `processRequestHost`) and the
//! virtual-host-level `require_tls` redirect produced by a Gateway's `httpsRedirect`.

use std::sync::Arc;

use http::StatusCode;
use http::header::{HeaderMap, HeaderValue, LOCATION};

use crate::cors::Cors;
use crate::error::InvalidAction;
use crate::fault::Fault;
use crate::headers::HeaderOps;
use crate::request::RequestHead;
use crate::rewrite::{PathMatchKind, prefix_rewrite};

/// The port of a redirect's `Location`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedirectPort {
    /// No explicit port (Istio `derivePort: FROM_PROTOCOL_DEFAULT`, or nothing set). The
    /// request's `Host` port is kept unless the scheme changes away from its default port.
    #[default]
    ProtocolDefault,
    /// An explicit port (Istio `port: N`).
    Port(u16),
    /// The port the request came in on (Istio `derivePort: FROM_REQUEST_PORT`): the request's
    /// [`server_port`](RequestHead::server_port), else the port of its `Host`, else none.
    FromRequestPort,
}

/// The path of a redirect's `Location`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RedirectPath {
    /// Keep the request's path and query.
    #[default]
    Keep,
    /// Istio `uri`: replaces the whole path. The request's query is appended unless the
    /// replacement has a `?` of its own, which then replaces the query.
    Replace(String),
    /// Istio `prefixRewrite`: replaces the part of the path the route matched (see
    /// [`prefix_rewrite`]); the query is kept.
    PrefixRewrite {
        /// How the route matched the path.
        matched: PathMatchKind,
        /// What replaces the matched part.
        replacement: String,
    },
}

/// A redirect route (Istio `HTTPRoute.redirect`, Envoy `RedirectAction`).
///
/// ```
/// use http::{Method, uri::Scheme};
/// use portcullis_proxy_core::{redirect::{build_redirect_location, RedirectAction, RedirectPath}, decide::RequestHead};
///
/// let redirect = RedirectAction::new(302)?
///     .with_authority("other.com")
///     .with_path(RedirectPath::Replace("/new".into()));
/// let head = RequestHead::new(Method::GET, Scheme::HTTP, "example.com:8080", "/old?x=1");
/// assert_eq!(build_redirect_location(&redirect, &head), "http://other.com/new?x=1");
/// # Ok::<(), portcullis_proxy_core::action::InvalidAction>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectAction {
    pub(crate) status: StatusCode,
    scheme: Option<String>,
    authority: Option<String>,
    port: RedirectPort,
    path: RedirectPath,
    pub(crate) response_headers: Arc<HeaderOps>,
    pub(crate) fault: Option<Fault>,
    pub(crate) cors: Option<Cors>,
}

impl RedirectAction {
    /// A redirect with status `code`: 0 (unset) and 301 give 301; 302, 303, 307 and 308 are
    /// kept; anything else is refused, as pilot emits no usable route for it.
    pub fn new(code: u16) -> Result<Self, InvalidAction> {
        let status = match code {
            0 | 301 => StatusCode::MOVED_PERMANENTLY,
            302 => StatusCode::FOUND,
            303 => StatusCode::SEE_OTHER,
            307 => StatusCode::TEMPORARY_REDIRECT,
            308 => StatusCode::PERMANENT_REDIRECT,
            code => return Err(InvalidAction::RedirectStatus { code }),
        };
        Ok(Self {
            status,
            scheme: None,
            authority: None,
            port: RedirectPort::ProtocolDefault,
            path: RedirectPath::Keep,
            response_headers: Arc::default(),
            fault: None,
            cors: None,
        })
    }

    /// Istio `scheme`: the `Location` scheme (default: the request's). Empty means unset.
    pub fn with_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = Some(scheme.into()).filter(|s| !s.is_empty());
        self
    }

    /// Istio `authority`: the `Location` host, used verbatim (the request's port is dropped).
    /// Empty means unset.
    pub fn with_authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into()).filter(|s| !s.is_empty());
        self
    }

    /// The `Location` port (Istio `port` / `derivePort`).
    pub fn with_port(mut self, port: RedirectPort) -> Self {
        self.port = port;
        self
    }

    /// The `Location` path (Istio `uri` / `prefixRewrite`). An empty replacement means keep.
    pub fn with_path(mut self, path: RedirectPath) -> Self {
        self.path = match path {
            RedirectPath::Replace(uri) if uri.is_empty() => RedirectPath::Keep,
            other => other,
        };
        self
    }

    /// Response header operations of the rule; they apply to the redirect response.
    pub fn with_response_headers(mut self, ops: HeaderOps) -> Self {
        self.response_headers = Arc::new(ops);
        self
    }

    /// Fault injection of the rule (evaluated before the redirect).
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// CORS policy of the rule (evaluated before the redirect).
    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The configured scheme, if any.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The configured authority, if any.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    /// The configured port selection.
    pub fn port(&self) -> RedirectPort {
        self.port
    }

    /// The configured path handling.
    pub fn path(&self) -> &RedirectPath {
        &self.path
    }

    /// The response header operations.
    pub fn response_headers(&self) -> &HeaderOps {
        &self.response_headers
    }
}

/// The port of `authority` (`host:port` or `[v6]:port`), if it has a numeric one.
fn authority_port(authority: &str) -> Option<u16> {
    let (start, _) = port_start(authority)?;
    authority.get(start + 1..)?.parse().ok()
}

/// Index of the `:` that starts the port of `host`, Envoy style: for a bracketed IPv6
/// literal the `:` right after `]`, otherwise the last `:`. Also returns the host part.
fn port_start(host: &str) -> Option<(usize, &str)> {
    let colon = if host.starts_with('[') {
        host.rfind("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    }?;
    Some((colon, host.get(..colon)?))
}

/// Envoy's `processRequestHost`: the request's `Host` as it goes into a redirect `Location`
/// when the redirect sets no authority.
///
/// The `Host` port is removed when the redirect sets a port of its own (`new_port_set`), or
/// when the scheme changes and the `Host` port is the default port of the request's scheme
/// (`:80` for `http`, `:443` for `https`). Otherwise `Host` is used verbatim.
///
/// ```
/// use portcullis_proxy_core::redirect::process_request_host;
///
/// assert_eq!(process_request_host("example.com:9090", "http", "http", true), "example.com");
/// assert_eq!(process_request_host("example.com:80", "http", "https", false), "example.com");
/// assert_eq!(process_request_host("example.com:80", "http", "http", false), "example.com:80");
/// assert_eq!(process_request_host("[::1]:443", "https", "http", false), "[::1]");
/// ```
pub fn process_request_host<'a>(
    host: &'a str,
    request_scheme: &str,
    new_scheme: &str,
    new_port_set: bool,
) -> &'a str {
    let Some((colon, without_port)) = port_start(host) else {
        return host;
    };
    let port = host.get(colon..).unwrap_or("");
    let mut remove_port = new_port_set;
    if new_scheme != request_scheme {
        remove_port |= request_scheme == "https" && port == ":443";
        remove_port |= request_scheme == "http" && port == ":80";
    }
    if remove_port { without_port } else { host }
}

/// The `Location` of a redirect for a request, exactly as Envoy configured by pilot builds it:
/// `scheme://host[:port]path`.
///
/// * scheme: the redirect's, else the request's;
/// * port: see [`RedirectPort`]; as pilot does, an explicit or derived port of 80 with scheme
///   `http` or 443 with scheme `https` is left out (pilot decides this at configuration time
///   from the redirect's scheme, else `https` when the server terminates TLS; the request's
///   scheme stands in for the latter here);
/// * host: the redirect's authority verbatim, else [`process_request_host`];
/// * path: see [`RedirectPath`]; a missing leading `/` is added.
pub fn build_redirect_location(redirect: &RedirectAction, head: &RequestHead) -> String {
    let request_scheme = head.scheme.as_str();
    let scheme = redirect.scheme.as_deref().unwrap_or(request_scheme);

    let port = match redirect.port {
        RedirectPort::ProtocolDefault => None,
        RedirectPort::Port(port) => Some(port),
        RedirectPort::FromRequestPort => {
            head.server_port.or_else(|| authority_port(&head.authority))
        }
    }
    .filter(|&port| {
        port != 0 && !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443)
    });

    let host = match &redirect.authority {
        Some(authority) => authority.as_str(),
        None => process_request_host(&head.authority, request_scheme, scheme, port.is_some()),
    };

    let mut path = match &redirect.path {
        RedirectPath::Keep => head.path.clone(),
        RedirectPath::Replace(uri) if uri.contains('?') => uri.clone(),
        RedirectPath::Replace(uri) => match head.path.find('?') {
            Some(query_start) => {
                let mut out = uri.clone();
                out.push_str(head.path.get(query_start..).unwrap_or(""));
                out
            }
            None => uri.clone(),
        },
        RedirectPath::PrefixRewrite {
            matched,
            replacement,
        } => prefix_rewrite(&head.path, matched, replacement),
    };
    if !path.starts_with('/') {
        path.insert(0, '/');
    }

    let mut location = String::with_capacity(scheme.len() + 3 + host.len() + 6 + path.len());
    location.push_str(scheme);
    location.push_str("://");
    location.push_str(host);
    if let Some(port) = port {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(&path);
    location
}

/// The `Location` of the `require_tls` redirect (Envoy `createSslRedirectPath`):
/// `https://` + the `Host` header verbatim (port kept) + the `:path` verbatim (query kept).
pub fn https_redirect_location(head: &RequestHead) -> String {
    let mut location = String::with_capacity(8 + head.authority.len() + head.path.len());
    location.push_str("https://");
    location.push_str(&head.authority);
    location.push_str(&head.path);
    location
}

/// The virtual-host check a Gateway server's `tls.httpsRedirect: true` turns on
/// (`require_tls: ALL`): a request that did not arrive over TLS gets a 301 to
/// [`https_redirect_location`]; a request that did passes (`None`).
///
/// Envoy runs this check before route selection, so it does not depend on any route; call it
/// for every request of a virtual host that requires TLS. No route header operation, fault or
/// CORS policy applies to this reply.
pub fn require_tls_redirect(head: &RequestHead) -> Option<RedirectDecision> {
    if head.scheme.as_str() == "https" {
        return None;
    }
    let location = https_redirect_location(head);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(LOCATION, value);
    }
    Some(RedirectDecision {
        status: StatusCode::MOVED_PERMANENTLY,
        location,
        headers,
        delay: None,
    })
}

/// A redirect reply: what [`decide`](crate::decide()) returns for a redirect route.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct RedirectDecision {
    /// 301, 302, 303, 307 or 308.
    pub status: StatusCode,
    /// The `Location` value.
    pub location: String,
    /// Response headers: `location` (when it is a valid header value), then the rule's
    /// response header operations, then CORS headers for an allowed cross-origin request.
    pub headers: HeaderMap,
    /// Fault-injected delay to wait before replying, if one fired.
    pub delay: Option<std::time::Duration>,
}
