//! The request head a decision is made from, and the rewritten head sent upstream.

use http::header::{HOST, HeaderMap};
use http::uri::Scheme;
use http::{Method, Uri};

/// The parts of a downstream request that decisions look at.
///
/// Strings are kept exactly as the client sent them (after the HTTP codec and path
/// normalization, before any route edit): `authority` is the `Host`/`:authority` value
/// including a port if one was sent, and `path` is the full `:path`, query included.
///
/// `scheme` is the scheme the gateway received the request with (`http` on plaintext,
/// `https` after TLS termination). At an Istio gateway `x-forwarded-proto` is derived from the
/// connection (`use_remote_address: true`), so this is also the value Envoy compares against.
///
/// `server_port` is the port a redirect with "derive port from the request" uses. At an Istio
/// gateway that is the Gateway *server* port (`server.port.number`), not the port the listener
/// binds.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Request method.
    pub method: Method,
    /// Scheme the request arrived with.
    pub scheme: Scheme,
    /// `Host` / `:authority` exactly as sent (port included when present).
    pub authority: String,
    /// `:path` exactly as sent, query included (`/a/b?x=1`).
    pub path: String,
    /// Request headers. A `host` entry here is ignored: `authority` is authoritative.
    pub headers: HeaderMap,
    /// The server port the request was received on, if known.
    pub server_port: Option<u16>,
}

impl RequestHead {
    /// A request with no headers and no known server port.
    ///
    /// ```
    /// use http::{Method, uri::Scheme};
    /// use portcullis_proxy_core::decide::RequestHead;
    ///
    /// let head = RequestHead::new(Method::GET, Scheme::HTTP, "example.com", "/p?x=1");
    /// assert_eq!(head.path_without_query(), "/p");
    /// assert_eq!(head.query(), Some("x=1"));
    /// ```
    pub fn new(
        method: Method,
        scheme: Scheme,
        authority: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self {
            method,
            scheme,
            authority: authority.into(),
            path: path.into(),
            headers: HeaderMap::new(),
            server_port: None,
        }
    }

    /// Replaces the headers.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the server port (see the type documentation).
    pub fn with_server_port(mut self, port: u16) -> Self {
        self.server_port = Some(port);
        self
    }

    /// Builds a head from `http` request parts.
    ///
    /// The authority is the `Host` header if present (HTTP/1.1), else the URI's authority
    /// (HTTP/2 `:authority`), else empty. The path is the URI's path and query, `/` if absent.
    /// The scheme is the URI's scheme, or `http` if the URI has none.
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        let authority = parts
            .headers
            .get(HOST)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        Self {
            method: parts.method.clone(),
            scheme: parts.uri.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority,
            path,
            headers: parts.headers.clone(),
            server_port: None,
        }
    }

    /// The path without its query string (and without a fragment, should one be present).
    pub fn path_without_query(&self) -> &str {
        path_without_query(&self.path)
    }

    /// The raw query string without its `?`, if the path has one.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }
}

/// `path` up to (not including) its first `?` or `#`, as Envoy's `removeQueryAndFragment`.
pub(crate) fn path_without_query(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(end) => path.get(..end).unwrap_or(path),
        None => path,
    }
}

/// The request as it leaves for the upstream, after every route-level edit.
///
/// Only the edits the route configuration asks for are applied (header operations, authority
/// and path rewrites, `x-envoy-original-path`). Connection-manager additions such as
/// `x-forwarded-for`, `x-request-id` or `x-envoy-expected-rq-timeout-ms` are the embedder's.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// Request method (unchanged).
    pub method: Method,
    /// Scheme of the downstream request (unchanged; the upstream transport is the cluster's).
    pub scheme: Scheme,
    /// `Host` / `:authority` to send.
    pub authority: String,
    /// `:path` to send, query included.
    pub path: String,
    /// Headers to send. Never contains `host`: see [`authority`](Self::authority).
    pub headers: HeaderMap,
}

impl UpstreamRequest {
    /// The absolute URI `scheme://authority/path`, if those parts are valid URI components.
    pub fn uri(&self) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.as_str())
            .path_and_query(self.path.as_str())
            .build()
    }
}
