//! The route table: the configuration a [`Router`](crate::Router) is built from.
//!
//! Everything here is plain owned data with public fields, cheap to build by hand or from another
//! model (a translator fills these in; nothing here knows about Istio or any wire format).

use std::fmt;

// === RouteTable ===

/// An ordered list of virtual hosts: the input to [`Router::new`](crate::Router::new) and
/// [`Reference::new`](crate::Reference::new).
///
/// `T` is the embedder's action payload attached to every route (a cluster name, a redirect, an
/// index into the embedder's own table, …). The matcher never looks inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTable<T> {
    /// The virtual hosts. A domain may appear in only one of them (compared after lower-casing).
    pub virtual_hosts: Vec<VirtualHost<T>>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self {
            virtual_hosts: Vec::new(),
        }
    }
}

impl<T> RouteTable<T> {
    /// A table with the given virtual hosts.
    pub fn new(virtual_hosts: Vec<VirtualHost<T>>) -> Self {
        Self { virtual_hosts }
    }
}

// === VirtualHost ===

/// A set of domains sharing one ordered route list.
///
/// Domains are case-insensitive and never carry a port (the request's port is ignored when
/// selecting a virtual host). Four forms are accepted:
///
/// | form | example | matches |
/// |---|---|---|
/// | exact | `api.example.com` | that host only |
/// | suffix wildcard | `*.example.com`, `*-web.example.com` | hosts *strictly longer* than the suffix that end with it |
/// | prefix wildcard | `api.*` | hosts strictly longer than the prefix that start with it |
/// | default | `*` | any host |
///
/// Any other use of `*` (two of them, or one in the middle) is a build error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualHost<T> {
    /// A name for diagnostics ([`Explanation`](crate::Explanation)); not used for matching.
    pub name: String,
    /// The domains this virtual host serves.
    pub domains: Vec<String>,
    /// The routes, in priority order: the first route whose [`RouteMatch`] holds wins.
    pub routes: Vec<Route<T>>,
}

impl<T> VirtualHost<T> {
    /// A virtual host named `name` serving `domains` with `routes`.
    pub fn new(
        name: impl Into<String>,
        domains: impl IntoIterator<Item = impl Into<String>>,
        routes: Vec<Route<T>>,
    ) -> Self {
        Self {
            name: name.into(),
            domains: domains.into_iter().map(Into::into).collect(),
            routes,
        }
    }
}

// === Route ===

/// One route: a single block of conditions (all must hold) and the action to take.
///
/// Alternatives ("match A *or* B") are expressed as consecutive routes with the same action, the
/// way Istio expands a rule's several match blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route<T> {
    /// A name for diagnostics; not used for matching.
    pub name: String,
    /// The conditions.
    pub matches: RouteMatch,
    /// The embedder's payload, returned on a match.
    pub action: T,
}

impl<T> Route<T> {
    /// A route named `name` taking `action` when `matches` holds.
    pub fn new(name: impl Into<String>, matches: RouteMatch, action: T) -> Self {
        Self {
            name: name.into(),
            matches,
            action,
        }
    }
}

// === RouteMatch ===

/// The conditions of one route, all of which must hold (logical AND).
///
/// The default value has no conditions and matches every request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMatch {
    /// The path condition; `None` means no condition on the path (every path matches, even an
    /// empty one). Istio's default for a rule without `uri` is a prefix `/`, which a translator
    /// should write out explicitly.
    pub path: Option<PathMatch>,
    /// Header conditions. Method, authority and scheme are header conditions on the `:method`,
    /// `:authority` and `:scheme` pseudo-headers; `:path` sees the raw path with its query.
    pub headers: Vec<HeaderMatch>,
    /// Query-parameter conditions.
    pub query_params: Vec<QueryParamMatch>,
}

impl RouteMatch {
    /// Conditions matching every request (same as [`Default`]).
    pub fn any() -> Self {
        Self::default()
    }

    /// Sets the path condition.
    #[must_use]
    pub fn with_path(mut self, path: PathMatch) -> Self {
        self.path = Some(path);
        self
    }

    /// Adds a header condition.
    #[must_use]
    pub fn with_header(mut self, header: HeaderMatch) -> Self {
        self.headers.push(header);
        self
    }

    /// Adds a query-parameter condition.
    #[must_use]
    pub fn with_query_param(mut self, param: QueryParamMatch) -> Self {
        self.query_params.push(param);
        self
    }
}

// === PathMatch ===

/// A condition on the request path, evaluated with the query string and fragment removed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathMatch {
    /// The whole path equals `path`.
    Exact {
        /// The expected path.
        path: String,
        /// Compare ASCII letters case-insensitively.
        ignore_case: bool,
    },
    /// The path starts with `prefix`, as a plain string: `/foo` matches `/foobar` (not
    /// segment-aware).
    Prefix {
        /// The expected prefix.
        prefix: String,
        /// Compare ASCII letters case-insensitively.
        ignore_case: bool,
    },
    /// The regular expression (RE2 syntax, as understood by the `regex` crate) matches the
    /// *entire* path. Case-insensitivity, if wanted, is written in the pattern (`(?i)`).
    Regex(String),
}

impl PathMatch {
    /// A case-sensitive exact path.
    pub fn exact(path: impl Into<String>) -> Self {
        Self::Exact {
            path: path.into(),
            ignore_case: false,
        }
    }

    /// A case-sensitive path prefix.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self::Prefix {
            prefix: prefix.into(),
            ignore_case: false,
        }
    }

    /// A full-match path regex.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self::Regex(pattern.into())
    }

    /// The same condition with `ignore_case` set (no effect on [`PathMatch::Regex`]).
    #[must_use]
    pub fn ignore_case(self, ignore: bool) -> Self {
        match self {
            Self::Exact { path, .. } => Self::Exact {
                path,
                ignore_case: ignore,
            },
            Self::Prefix { prefix, .. } => Self::Prefix {
                prefix,
                ignore_case: ignore,
            },
            Self::Regex(r) => Self::Regex(r),
        }
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ic = |i: bool| if i { " (ignore case)" } else { "" };
        match self {
            Self::Exact { path, ignore_case } => write!(f, "path exact {path}{}", ic(*ignore_case)),
            Self::Prefix {
                prefix,
                ignore_case,
            } => write!(f, "path prefix {prefix}{}", ic(*ignore_case)),
            Self::Regex(r) => write!(f, "path regex {r}"),
        }
    }
}

// === ValueMatch ===

/// A condition on one header or query-parameter value. Values are compared byte for byte
/// (case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueMatch {
    /// The value equals this string (`Exact("")` means "present with an empty value").
    Exact(String),
    /// The value starts with this string.
    Prefix(String),
    /// The regular expression matches the entire value.
    Regex(String),
    /// The header or parameter is present, with any value (including an empty one).
    Present,
}

impl fmt::Display for ValueMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(v) => write!(f, "exact {v:?}"),
            Self::Prefix(v) => write!(f, "prefix {v:?}"),
            Self::Regex(v) => write!(f, "regex {v:?}"),
            Self::Present => f.write_str("present"),
        }
    }
}

// === HeaderMatch ===

/// A condition on a request header.
///
/// * The name is case-insensitive. `:method`, `:scheme`, `:authority` and `:path` name the
///   request's pseudo-headers (`:authority` includes the port as sent, `:path` the query).
/// * A header sent several times is matched as its values joined with `,`.
/// * A missing header never satisfies a value matcher ([`ValueMatch::Exact`], `Prefix`,
///   `Regex`), whatever `invert` says — unless `treat_missing_as_empty` is set, in which case the
///   missing header is evaluated as the empty value and then inverted if `invert` is set.
/// * [`ValueMatch::Present`] tests presence only: with `invert` it matches exactly when the
///   header is absent; `treat_missing_as_empty` does not change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderMatch {
    /// The header name (case-insensitive).
    pub name: String,
    /// The condition on the value.
    pub matcher: ValueMatch,
    /// Negate the outcome of `matcher`.
    pub invert: bool,
    /// Evaluate a missing header as the empty value instead of failing.
    pub treat_missing_as_empty: bool,
}

impl HeaderMatch {
    /// A (non-inverted) condition on header `name`.
    pub fn new(name: impl Into<String>, matcher: ValueMatch) -> Self {
        Self {
            name: name.into(),
            matcher,
            invert: false,
            treat_missing_as_empty: false,
        }
    }

    /// Istio's `withoutHeaders` form: the condition inverted, and for value matchers a missing
    /// header treated as empty (so `exact: a` matches requests without the header, and
    /// `regex: .*` matches nothing).
    pub fn without(name: impl Into<String>, matcher: ValueMatch) -> Self {
        let treat_missing_as_empty = !matches!(matcher, ValueMatch::Present);
        Self {
            name: name.into(),
            matcher,
            invert: true,
            treat_missing_as_empty,
        }
    }
}

impl fmt::Display for HeaderMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "header {} ", self.name)?;
        if self.invert {
            f.write_str("not ")?;
        }
        write!(f, "{}", self.matcher)
    }
}

// === QueryParamMatch ===

/// A condition on a query parameter.
///
/// Parameters are split from the raw path (after `?`, before `#`) on `&` without any
/// URL-decoding; the first parameter with this exact (case-sensitive) name is used; `?key`
/// without `=` has the value `""`. A missing parameter never matches, not even
/// [`ValueMatch::Present`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryParamMatch {
    /// The raw parameter name.
    pub name: String,
    /// The condition on the raw value.
    pub matcher: ValueMatch,
}

impl QueryParamMatch {
    /// A condition on query parameter `name`.
    pub fn new(name: impl Into<String>, matcher: ValueMatch) -> Self {
        Self {
            name: name.into(),
            matcher,
        }
    }
}

impl fmt::Display for QueryParamMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query param {} {}", self.name, self.matcher)
    }
}
