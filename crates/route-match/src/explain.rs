//! Routing traces: why a request went where it went.

use std::fmt;

use crate::compile::CompiledMatch;
use crate::error::Condition;
use crate::host::HostMatchKind;
use crate::request::RequestHead;
use crate::table::{HeaderMatch, PathMatch, QueryParamMatch, RouteMatch, ValueMatch};

/// A trace of one lookup, from [`Router::explain`](crate::Router::explain).
///
/// Structured data in public fields, plus a human-readable [`Display`](fmt::Display) (its text
/// is for people, not for parsing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explanation {
    /// The authority as sent.
    pub authority: String,
    /// The host used for virtual-host selection (port removed, lower-cased).
    pub host: String,
    /// The virtual host chosen, if any.
    pub virtual_host: Option<VirtualHostChoice>,
    /// Every route before the chosen one (all routes when none matched), with the first
    /// condition that failed.
    pub skipped: Vec<SkippedRoute>,
    /// The route chosen, if any.
    pub chosen: Option<ChosenRoute>,
}

/// The virtual host a request landed on, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VirtualHostChoice {
    /// Index in the table.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// How its domain matched.
    pub kind: HostMatchKind,
    /// The domain that matched (lower-cased, wildcard included).
    pub domain: String,
}

/// A route that was tried and did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedRoute {
    /// Index within the virtual host.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// The first condition that failed.
    pub failure: Failure,
}

/// The chosen route.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChosenRoute {
    /// Index within the virtual host.
    pub index: usize,
    /// Its name.
    pub name: String,
}

/// One failed condition: what was expected and what the request had.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// Which condition of the route.
    pub condition: Condition,
    /// The condition as configured.
    pub expected: Expected,
    /// What the condition looked at: the path (without query), the header value (repeated
    /// values joined with `,`) or the parameter value; `None` when the header or parameter is
    /// missing. Non-UTF-8 bytes are replaced with U+FFFD.
    pub observed: Option<String>,
}

/// A condition as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expected {
    /// A path condition.
    Path(PathMatch),
    /// A header condition.
    Header(HeaderMatch),
    /// A query-parameter condition.
    QueryParam(QueryParamMatch),
}

impl Explanation {
    pub(crate) fn new(authority: &str, host: String) -> Self {
        Self {
            authority: authority.to_owned(),
            host,
            virtual_host: None,
            skipped: Vec::new(),
            chosen: None,
        }
    }

    pub(crate) fn set_virtual_host(
        &mut self,
        index: usize,
        name: &str,
        kind: HostMatchKind,
        domain: String,
    ) {
        self.virtual_host = Some(VirtualHostChoice {
            index,
            name: name.to_owned(),
            kind,
            domain,
        });
    }

    pub(crate) fn set_chosen(&mut self, index: usize, name: &str) {
        self.chosen = Some(ChosenRoute {
            index,
            name: name.to_owned(),
        });
    }

    /// Records that route `index` (`name`, matching `spec`, compiled as `cond`) was skipped
    /// because `condition` failed for `req`.
    pub(crate) fn push_skipped(
        &mut self,
        index: usize,
        name: &str,
        spec: &RouteMatch,
        cond: &CompiledMatch,
        condition: Condition,
        req: &RequestHead<'_>,
    ) {
        let expected = match condition {
            Condition::Path => spec.path.clone().map(Expected::Path),
            Condition::Header(i) => spec.headers.get(i).cloned().map(Expected::Header),
            Condition::QueryParam(i) => spec.query_params.get(i).cloned().map(Expected::QueryParam),
        };
        // A failing condition always exists in the spec; skip the entry rather than panic.
        let Some(expected) = expected else { return };
        let observed = cond
            .observed(condition, req, req.path_without_query())
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        self.skipped.push(SkippedRoute {
            index,
            name: name.to_owned(),
            failure: Failure {
                condition,
                expected,
                observed,
            },
        });
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.expected, &self.observed) {
            (Expected::Path(p), Some(v)) => write!(f, "{p} did not match {v}"),
            (Expected::Path(p), None) => write!(f, "{p} did not match"),
            (Expected::Header(h), None) if !h.treat_missing_as_empty => {
                write!(f, "header {}: missing", h.name)
            }
            (Expected::Header(h), None) => write!(f, "{h}: missing (treated as \"\")"),
            (Expected::Header(h), Some(v))
                if matches!(h.matcher, ValueMatch::Present) && h.invert =>
            {
                write!(f, "header {}: present ({v:?}), expected absent", h.name)
            }
            (Expected::Header(h), Some(v)) => write!(f, "{h} did not match {v:?}"),
            (Expected::QueryParam(q), None) => write!(f, "query param {}: missing", q.name),
            (Expected::QueryParam(q), Some(v)) => write!(f, "{q} did not match {v:?}"),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "authority {:?} -> host {:?}", self.authority, self.host)?;
        let Some(vh) = &self.virtual_host else {
            return write!(f, "no virtual host matches (404)");
        };
        writeln!(
            f,
            "virtual host #{} {:?} chosen by {} {}",
            vh.index, vh.name, vh.kind, vh.domain
        )?;
        for s in &self.skipped {
            writeln!(
                f,
                "  route #{} {:?} skipped: {}",
                s.index, s.name, s.failure
            )?;
        }
        match &self.chosen {
            Some(c) => write!(f, "route #{} {:?} matched", c.index, c.name),
            None => write!(f, "no route matched (404)"),
        }
    }
}
