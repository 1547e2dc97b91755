//! CORS as Envoy's CORS filter applies a route's policy (configured by Istio's
//! `TranslateCORSPolicy`).

use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderName, HeaderValue, ORIGIN,
};
use http::{Method, StatusCode};
use regex::Regex;

use crate::error::InvalidAction;
use crate::request::RequestHead;
use crate::rewrite::compile_regex;

/// One `allowOrigins` entry (an Istio `StringMatch`).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum OriginMatch {
    /// The origin equals this string.
    Exact(String),
    /// The origin starts with this string.
    Prefix(String),
    /// The origin ends with this string.
    Suffix(String),
    /// The whole origin matches this regular expression (RE2 full match).
    Regex(Regex),
}

/// Compares the configuration: a regex entry equals another with the same pattern.
impl PartialEq for OriginMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b))
            | (Self::Prefix(a), Self::Prefix(b))
            | (Self::Suffix(a), Self::Suffix(b)) => a == b,
            (Self::Regex(a), Self::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl OriginMatch {
    /// `exact` match.
    pub fn exact(value: impl Into<String>) -> Self {
        Self::Exact(value.into())
    }

    /// `prefix` match.
    pub fn prefix(value: impl Into<String>) -> Self {
        Self::Prefix(value.into())
    }

    /// `suffix` match.
    pub fn suffix(value: impl Into<String>) -> Self {
        Self::Suffix(value.into())
    }

    /// `regex` match; the pattern must match the whole origin.
    pub fn regex(pattern: &str) -> Result<Self, InvalidAction> {
        // Validate the pattern on its own first: wrapping an unbalanced pattern such as
        // `a)|(b` in `^(?:…)$` would otherwise compile into something else.
        compile_regex(pattern)?;
        let anchored = compile_regex(&format!("^(?:{pattern})$")).map_err(|err| match err {
            InvalidAction::Regex { reason, .. } => InvalidAction::Regex {
                pattern: pattern.to_owned(),
                reason,
            },
            other => other,
        })?;
        Ok(Self::Regex(anchored))
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(s) => value == s,
            Self::Prefix(s) => value.starts_with(s.as_str()),
            Self::Suffix(s) => value.ends_with(s.as_str()),
            Self::Regex(re) => re.is_match(value),
        }
    }
}

/// What happens to a preflight whose origin is not allowed (Istio `unmatchedPreflights`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnmatchedPreflights {
    /// Forward it to the route's target like any request (Istio `UNSPECIFIED` / `FORWARD`).
    #[default]
    Forward,
    /// Answer it locally with 200 but without `access-control-allow-origin` (Istio `IGNORE`).
    Ignore,
}

/// A route's CORS policy (Istio `corsPolicy`).
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, Method, uri::Scheme};
/// use portcullis_proxy_core::{cors::{cors_preflight, Cors, OriginMatch}, decide::RequestHead};
///
/// let cors = Cors::new()
///     .allow_origin(OriginMatch::exact("https://app.example.com"))
///     .allow_methods(["GET", "POST"])?
///     .max_age(Duration::from_secs(86400));
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", "https://app.example.com".parse()?);
/// headers.insert("access-control-request-method", "POST".parse()?);
/// let head = RequestHead::new(Method::OPTIONS, Scheme::HTTP, "example.com", "/api")
///     .with_headers(headers);
/// let reply = cors_preflight(&cors, &head).expect("answered locally");
/// assert_eq!(reply["access-control-allow-origin"], "https://app.example.com");
/// assert_eq!(reply["access-control-allow-methods"], "GET,POST");
/// assert_eq!(reply["access-control-max-age"], "86400");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cors {
    allow_origins: Vec<OriginMatch>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    allow_credentials: bool,
    unmatched_preflights: UnmatchedPreflights,
}

fn joined(
    header: &HeaderName,
    items: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<Option<HeaderValue>, InvalidAction> {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.as_ref());
    }
    if out.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&out)
        .map(Some)
        .map_err(|_| InvalidAction::HeaderValue {
            name: header.as_str().to_owned(),
        })
}

impl Cors {
    /// A policy that allows no origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an allowed origin. An entry that matches the literal `*` allows every origin.
    pub fn allow_origin(mut self, origin: OriginMatch) -> Self {
        self.allow_origins.push(origin);
        self
    }

    /// `access-control-allow-methods`: the methods joined with `,` (omitted when empty).
    pub fn allow_methods(
        mut self,
        methods: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, InvalidAction> {
        self.allow_methods = joined(&ACCESS_CONTROL_ALLOW_METHODS, methods)?;
        Ok(self)
    }

    /// `access-control-allow-headers`: the names joined with `,` (omitted when empty).
    pub fn allow_headers(
        mut self,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, InvalidAction> {
        self.allow_headers = joined(&ACCESS_CONTROL_ALLOW_HEADERS, headers)?;
        Ok(self)
    }

    /// `access-control-expose-headers`: the names joined with `,` (omitted when empty).
    pub fn expose_headers(
        mut self,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, InvalidAction> {
        self.expose_headers = joined(&ACCESS_CONTROL_EXPOSE_HEADERS, headers)?;
        Ok(self)
    }

    /// `access-control-max-age`, in whole seconds (pilot sends the duration's seconds).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(HeaderValue::from(max_age.as_secs()));
        self
    }

    /// Whether to send `access-control-allow-credentials: true`.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.allow_credentials = allow;
        self
    }

    /// What to do with preflights from origins that are not allowed.
    pub fn unmatched_preflights(mut self, unmatched: UnmatchedPreflights) -> Self {
        self.unmatched_preflights = unmatched;
        self
    }

    /// Envoy's origin check: some entry matches `origin`, or some entry matches `*`.
    pub fn is_origin_allowed(&self, origin: &str) -> bool {
        self.allow_origins
            .iter()
            .any(|m| m.matches(origin) || m.matches("*"))
    }

    fn preflight_headers(&self, origin: Option<&HeaderValue>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if self.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let optional = [
            (ACCESS_CONTROL_ALLOW_METHODS, &self.allow_methods),
            (ACCESS_CONTROL_ALLOW_HEADERS, &self.allow_headers),
            (ACCESS_CONTROL_MAX_AGE, &self.max_age),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                headers.insert(name, value.clone());
            }
        }
        headers
    }

    fn actual_headers(&self, origin: &HeaderValue) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(expose) = &self.expose_headers {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        headers
    }
}

/// What the CORS filter does with one request.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum CorsOutcome {
    /// Not a CORS request (no or empty `Origin`), or a request the policy leaves alone:
    /// forward it without CORS response headers.
    Pass,
    /// Answer locally with 200 and these headers; do not forward.
    Preflight(HeaderMap),
    /// Forward it; set these headers on the response (allowed cross-origin request).
    Allowed(HeaderMap),
}

/// Runs a CORS policy on a request, as Envoy's CORS filter does.
///
/// * Only a request with a non-empty `Origin` is a CORS request.
/// * A preflight is `OPTIONS` with `Origin` and a non-empty `Access-Control-Request-Method`.
///   Allowed origin: local 200 with `access-control-allow-origin` (the request's origin,
///   echoed), `-allow-credentials: true` if configured, `-allow-methods`, `-allow-headers`,
///   `-max-age` when configured. Origin not allowed: forwarded
///   ([`UnmatchedPreflights::Forward`]) or answered with the same headers minus
///   `access-control-allow-origin` ([`UnmatchedPreflights::Ignore`]).
/// * Any other request with an allowed origin is forwarded and its response gets
///   `access-control-allow-origin`, `-allow-credentials`, `-expose-headers`.
pub fn evaluate_cors(cors: &Cors, head: &RequestHead) -> CorsOutcome {
    let Some(origin) = head.headers.get(ORIGIN).filter(|o| !o.is_empty()) else {
        return CorsOutcome::Pass;
    };
    let allowed = origin
        .to_str()
        .is_ok_and(|origin| cors.is_origin_allowed(origin));
    let preflight = head.method == Method::OPTIONS
        && head
            .headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| !m.is_empty());
    match (allowed, preflight) {
        (true, true) => CorsOutcome::Preflight(cors.preflight_headers(Some(origin))),
        (true, false) => CorsOutcome::Allowed(cors.actual_headers(origin)),
        (false, true) if cors.unmatched_preflights == UnmatchedPreflights::Ignore => {
            CorsOutcome::Preflight(cors.preflight_headers(None))
        }
        (false, _) => CorsOutcome::Pass,
    }
}

/// The local preflight reply's headers, if [`evaluate_cors`] answers this request locally.
pub fn cors_preflight(cors: &Cors, head: &RequestHead) -> Option<HeaderMap> {
    match evaluate_cors(cors, head) {
        CorsOutcome::Preflight(headers) => Some(headers),
        _ => None,
    }
}

/// The headers to set on the upstream response, if [`evaluate_cors`] forwards this request
/// as an allowed cross-origin request.
pub fn cors_response_headers(cors: &Cors, head: &RequestHead) -> Option<HeaderMap> {
    match evaluate_cors(cors, head) {
        CorsOutcome::Allowed(headers) => Some(headers),
        _ => None,
    }
}

/// A local CORS preflight reply: what [`decide`](crate::decide()) returns for an answered
/// preflight.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct CorsPreflightDecision {
    /// Always 200.
    pub status: StatusCode,
    /// The `access-control-*` headers of the reply.
    pub headers: HeaderMap,
    /// Fault-injected delay to wait before replying, if one fired.
    pub delay: Option<Duration>,
}
