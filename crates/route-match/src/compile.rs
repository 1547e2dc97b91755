//! Conditions compiled once at build time, and their evaluation (the fast path).

use std::borrow::Cow;

use regex::bytes::{Regex, RegexBuilder};

use crate::error::{BuildError, Condition};
use crate::request::{HeaderKey, RequestHead};
use crate::table::{HeaderMatch, PathMatch, QueryParamMatch, RouteMatch, ValueMatch};

// === Options ===

/// Build-time knobs for [`Router`](crate::Router) and [`Reference`](crate::Reference).
///
/// ```
/// use portcullis_route_match::*;
///
/// let table = RouteTable::new(vec![VirtualHost::new("web", ["*"], vec![
///     Route::new("huge", RouteMatch::any().with_path(PathMatch::regex("[a-z]{1000}")), ()),
/// ])]);
/// let err = Router::with_options(table, &Options::default().regex_size_limit(10_000)).unwrap_err();
/// assert!(err.is_size_limit_exceeded());
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    regex_size_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            regex_size_limit: 1 << 20,
        }
    }
}

impl Options {
    /// Bounds the compiled size (in bytes, approximately) of every regex; a larger one is a build
    /// error. This keeps hostile patterns such as `(a{100}){100}` out. Default: 1 MiB.
    #[must_use]
    pub fn regex_size_limit(mut self, bytes: usize) -> Self {
        self.regex_size_limit = bytes;
        self
    }
}

/// Compiles `pattern` to match whole inputs only (`^(?:pattern)$`).
///
/// The pattern is first parsed on its own, so that one such as `a)|(b` cannot break out of the
/// group and turn the full match into a partial one.
pub(crate) fn compile_regex(pattern: &str, options: &Options) -> Result<Regex, regex::Error> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        return Err(regex::Error::Syntax(e.to_string()));
    }
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(options.regex_size_limit)
        .build()
}

// === Compiled conditions ===

#[derive(Clone, Debug)]
pub(crate) enum CompiledPath {
    Any,
    Exact { path: Box<str>, ignore_case: bool },
    Prefix { prefix: Box<str>, ignore_case: bool },
    Regex(Regex),
}

#[derive(Clone, Debug)]
pub(crate) enum CompiledValue {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Regex(Regex),
    Present,
}

#[derive(Clone, Debug)]
pub(crate) struct CompiledHeader {
    key: HeaderKey,
    value: CompiledValue,
    invert: bool,
    treat_missing_as_empty: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct CompiledQuery {
    name: Box<str>,
    value: CompiledValue,
}

/// One route's conditions, compiled.
#[derive(Clone, Debug)]
pub(crate) struct CompiledMatch {
    pub(crate) path: CompiledPath,
    headers: Box<[CompiledHeader]>,
    query: Box<[CompiledQuery]>,
}

impl CompiledMatch {
    /// Compiles `m`, the conditions of route `route` of virtual host `vhost`.
    pub(crate) fn new(
        m: &RouteMatch,
        vhost: usize,
        route: usize,
        options: &Options,
    ) -> Result<Self, BuildError> {
        let re = |cond: Condition, pattern: &str| {
            compile_regex(pattern, options)
                .map_err(|e| BuildError::regex(vhost, route, cond, pattern, e))
        };
        let value = |cond: Condition, v: &ValueMatch| -> Result<CompiledValue, BuildError> {
            Ok(match v {
                ValueMatch::Exact(s) => CompiledValue::Exact(s.as_bytes().into()),
                ValueMatch::Prefix(s) => CompiledValue::Prefix(s.as_bytes().into()),
                ValueMatch::Regex(p) => CompiledValue::Regex(re(cond, p)?),
                ValueMatch::Present => CompiledValue::Present,
            })
        };
        let path = match &m.path {
            None => CompiledPath::Any,
            Some(PathMatch::Exact { path, ignore_case }) => CompiledPath::Exact {
                path: path.as_str().into(),
                ignore_case: *ignore_case,
            },
            Some(PathMatch::Prefix {
                prefix,
                ignore_case,
            }) => CompiledPath::Prefix {
                prefix: prefix.as_str().into(),
                ignore_case: *ignore_case,
            },
            Some(PathMatch::Regex(p)) => CompiledPath::Regex(re(Condition::Path, p)?),
        };
        let headers = m
            .headers
            .iter()
            .enumerate()
            .map(|(i, h): (usize, &HeaderMatch)| {
                Ok(CompiledHeader {
                    key: HeaderKey::new(&h.name),
                    value: value(Condition::Header(i), &h.matcher)?,
                    invert: h.invert,
                    treat_missing_as_empty: h.treat_missing_as_empty,
                })
            })
            .collect::<Result<_, BuildError>>()?;
        let query = m
            .query_params
            .iter()
            .enumerate()
            .map(|(i, q): (usize, &QueryParamMatch)| {
                Ok(CompiledQuery {
                    name: q.name.as_str().into(),
                    value: value(Condition::QueryParam(i), &q.matcher)?,
                })
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(Self {
            path,
            headers,
            query,
        })
    }

    /// Whether the route has conditions other than its path.
    pub(crate) fn has_extra_conditions(&self) -> bool {
        !self.headers.is_empty() || !self.query.is_empty()
    }

    /// The first condition that fails for `req`, or `None` when the route matches. `path` is
    /// `req.path_without_query()`, passed in so it is computed once per lookup.
    pub(crate) fn first_failure(&self, req: &RequestHead<'_>, path: &str) -> Option<Condition> {
        if !self.path.matches(path) {
            return Some(Condition::Path);
        }
        self.first_extra_failure(req)
    }

    /// As [`Self::first_failure`], skipping the path (known to match).
    pub(crate) fn first_extra_failure(&self, req: &RequestHead<'_>) -> Option<Condition> {
        for (i, h) in self.headers.iter().enumerate() {
            if !h.matches(req) {
                return Some(Condition::Header(i));
            }
        }
        for (i, q) in self.query.iter().enumerate() {
            if !q.matches(req) {
                return Some(Condition::QueryParam(i));
            }
        }
        None
    }
}

impl CompiledMatch {
    /// What condition `cond` looked at in `req` (`None`: the header or parameter is missing).
    pub(crate) fn observed(
        &self,
        cond: Condition,
        req: &RequestHead<'_>,
        path: &str,
    ) -> Option<Vec<u8>> {
        match cond {
            Condition::Path => Some(path.as_bytes().to_vec()),
            Condition::Header(i) => self.headers.get(i)?.observe(req).map(Cow::into_owned),
            Condition::QueryParam(i) => req
                .query_param(&self.query.get(i)?.name)
                .map(|v| v.as_bytes().to_vec()),
        }
    }
}

impl CompiledPath {
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact {
                path: want,
                ignore_case: false,
            } => path == &**want,
            Self::Exact {
                path: want,
                ignore_case: true,
            } => path.eq_ignore_ascii_case(want),
            Self::Prefix {
                prefix,
                ignore_case: false,
            } => path.starts_with(&**prefix),
            Self::Prefix {
                prefix,
                ignore_case: true,
            } => path
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
            Self::Regex(re) => re.is_match(path.as_bytes()),
        }
    }
}

impl CompiledValue {
    fn matches(&self, value: &[u8]) -> bool {
        match self {
            Self::Exact(want) => value == &**want,
            Self::Prefix(want) => value.starts_with(want),
            Self::Regex(re) => re.is_match(value),
            Self::Present => true,
        }
    }
}

impl CompiledHeader {
    /// The header's value as matched: `None` when missing; repeated values joined with `,`
    /// (the only case that allocates).
    pub(crate) fn observe<'r>(&'r self, req: &'r RequestHead<'_>) -> Option<Cow<'r, [u8]>> {
        let mut values = req.values(&self.key);
        let first = values.next()?;
        let Some(second) = values.next() else {
            return Some(Cow::Borrowed(first));
        };
        let mut joined = Vec::with_capacity(first.len() + second.len() + 1);
        joined.extend_from_slice(first);
        for v in std::iter::once(second).chain(values) {
            joined.push(b',');
            joined.extend_from_slice(v);
        }
        Some(Cow::Owned(joined))
    }

    /// Evaluates the condition given the observed value.
    pub(crate) fn matches_observed(&self, observed: Option<&[u8]>) -> bool {
        match (observed, &self.value) {
            (None, CompiledValue::Present) => self.invert,
            (None, value) if self.treat_missing_as_empty => value.matches(b"") != self.invert,
            (None, _) => false,
            (Some(v), value) => value.matches(v) != self.invert,
        }
    }

    fn matches(&self, req: &RequestHead<'_>) -> bool {
        self.matches_observed(self.observe(req).as_deref())
    }
}

impl CompiledQuery {
    fn matches(&self, req: &RequestHead<'_>) -> bool {
        req.query_param(&self.name)
            .is_some_and(|v| self.value.matches(v.as_bytes()))
    }
}

// === FastHashMap ===

/// The lookup maps' hash map: the workspace's `foldhash`, with a fixed seed so that builds of
/// the same configuration are identical.
///
/// The maps' keys come from configuration, not from requests; a request only picks which key to
/// look up, which cannot lengthen probe sequences, so hash flooding is not a concern here.
pub(crate) type FastHashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
