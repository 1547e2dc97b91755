//! The build error.

use std::fmt;

/// Which condition of a route's [`RouteMatch`](crate::RouteMatch) is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Condition {
    /// The path condition.
    Path,
    /// The header condition at this index of `RouteMatch::headers`.
    Header(usize),
    /// The query-parameter condition at this index of `RouteMatch::query_params`.
    QueryParam(usize),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path => f.write_str("path"),
            Self::Header(i) => write!(f, "headers[{i}]"),
            Self::QueryParam(i) => write!(f, "query_params[{i}]"),
        }
    }
}

/// Why a [`RouteTable`](crate::RouteTable) could not be turned into a matcher.
///
/// The error says where the problem is ([`virtual_host`](Self::virtual_host),
/// [`route`](Self::route), [`condition`](Self::condition)) and what it is, through accessors.
/// Introspection is deliberately limited; the [`Display`](fmt::Display) text is meant for
/// people and is **not** part of the API.
///
/// ```
/// use portcullis_route_match::*;
///
/// let table = RouteTable::new(vec![VirtualHost::new("web", ["*"], vec![
///     Route::new("ok", RouteMatch::any().with_path(PathMatch::prefix("/")), ()),
///     Route::new("bad", RouteMatch::any().with_path(PathMatch::regex("/(unclosed")), ()),
/// ])]);
/// let err = Router::new(table).unwrap_err();
/// assert_eq!(err.virtual_host(), 0);
/// assert_eq!(err.route(), Some(1));
/// assert_eq!(err.condition(), Some(Condition::Path));
/// assert_eq!(err.pattern(), Some("/(unclosed"));
/// assert!(err.regex_error().is_some());
/// ```
#[derive(Clone, Debug)]
pub struct BuildError {
    kind: Kind,
    /// The virtual host was compiled on its own, so its index says nothing.
    alone: bool,
}

#[derive(Clone, Debug)]
enum Kind {
    InvalidDomain {
        vhost: usize,
        domain: String,
        reason: &'static str,
    },
    DuplicateDomain {
        vhost: usize,
        first: usize,
        domain: String,
    },
    Regex {
        vhost: usize,
        route: usize,
        condition: Condition,
        pattern: String,
        err: regex::Error,
    },
}

impl BuildError {
    pub(crate) fn invalid_domain(vhost: usize, domain: &str, reason: &'static str) -> Self {
        Self {
            kind: Kind::InvalidDomain {
                vhost,
                domain: domain.to_owned(),
                reason,
            },
            alone: false,
        }
    }

    pub(crate) fn duplicate_domain(vhost: usize, first: usize, domain: &str) -> Self {
        Self {
            kind: Kind::DuplicateDomain {
                vhost,
                first,
                domain: domain.to_owned(),
            },
            alone: false,
        }
    }

    pub(crate) fn regex(
        vhost: usize,
        route: usize,
        condition: Condition,
        pattern: &str,
        err: regex::Error,
    ) -> Self {
        Self {
            kind: Kind::Regex {
                vhost,
                route,
                condition,
                pattern: pattern.to_owned(),
                err,
            },
            alone: false,
        }
    }

    /// The same error, about a virtual host compiled on its own.
    pub(crate) fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// The index of the virtual host at fault (for a duplicate domain, the later one); 0 for a
    /// virtual host compiled on its own
    /// ([`CompiledVirtualHost::new`](crate::CompiledVirtualHost::new)).
    pub fn virtual_host(&self) -> usize {
        match &self.kind {
            Kind::InvalidDomain { vhost, .. }
            | Kind::DuplicateDomain { vhost, .. }
            | Kind::Regex { vhost, .. } => *vhost,
        }
    }

    /// The index of the route at fault within its virtual host, if a route is at fault.
    pub fn route(&self) -> Option<usize> {
        match &self.kind {
            Kind::Regex { route, .. } => Some(*route),
            _ => None,
        }
    }

    /// The condition at fault within the route, if a route is at fault.
    pub fn condition(&self) -> Option<Condition> {
        match &self.kind {
            Kind::Regex { condition, .. } => Some(*condition),
            _ => None,
        }
    }

    /// The domain at fault (as written), for an invalid or duplicate domain.
    pub fn domain(&self) -> Option<&str> {
        match &self.kind {
            Kind::InvalidDomain { domain, .. } | Kind::DuplicateDomain { domain, .. } => {
                Some(domain)
            }
            Kind::Regex { .. } => None,
        }
    }

    /// For a duplicate domain, the index of the virtual host that already has it.
    pub fn first_virtual_host(&self) -> Option<usize> {
        match &self.kind {
            Kind::DuplicateDomain { first, .. } => Some(*first),
            _ => None,
        }
    }

    /// The regular expression at fault (as written), if a regex failed to compile.
    pub fn pattern(&self) -> Option<&str> {
        match &self.kind {
            Kind::Regex { pattern, .. } => Some(pattern),
            _ => None,
        }
    }

    /// The `regex` crate's error, if a regex failed to compile.
    pub fn regex_error(&self) -> Option<&regex::Error> {
        match &self.kind {
            Kind::Regex { err, .. } => Some(err),
            _ => None,
        }
    }

    /// Whether a regex was rejected for exceeding the configured size limit (see
    /// [`Options::regex_size_limit`](crate::Options::regex_size_limit)).
    pub fn is_size_limit_exceeded(&self) -> bool {
        matches!(
            &self.kind,
            Kind::Regex {
                err: regex::Error::CompiledTooBig(_),
                ..
            }
        )
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::InvalidDomain { domain, reason, .. } if self.alone => {
                write!(f, "invalid domain {domain:?}: {reason}")
            }
            Kind::Regex {
                route,
                condition,
                pattern,
                err,
                ..
            } if self.alone => write!(
                f,
                "route {route}, {condition}: invalid regex {pattern:?}: {err}"
            ),
            Kind::InvalidDomain {
                vhost,
                domain,
                reason,
            } => write!(
                f,
                "virtual host {vhost}: invalid domain {domain:?}: {reason}"
            ),
            Kind::DuplicateDomain {
                vhost,
                first,
                domain,
            } => write!(
                f,
                "virtual host {vhost}: domain {domain:?} is already served by virtual host {first}"
            ),
            Kind::Regex {
                vhost,
                route,
                condition,
                pattern,
                err,
            } => write!(
                f,
                "virtual host {vhost}, route {route}, {condition}: invalid regex {pattern:?}: {err}"
            ),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Regex { err, .. } => Some(err),
            _ => None,
        }
    }
}
