//! The reference matcher: the rules written down as plainly as possible.

use regex::bytes::Regex;

use crate::compile::{Options, compile_regex};
use crate::error::{BuildError, Condition};
use crate::host;
use crate::request::RequestHead;
use crate::router::{Matched, NotFound};
use crate::table::{PathMatch, RouteMatch, RouteTable, ValueMatch};

/// A linear matcher: the executable specification that [`Router`](crate::Router) is tested
/// against.
///
/// It looks at every domain of every virtual host, then at every route in order, and evaluates
/// conditions the obvious way (allocating freely). It rejects exactly the tables `Router`
/// rejects. Use it in tests, or when a table is tiny and built per request; otherwise use
/// `Router`.
///
/// ```
/// use portcullis_route_match::*;
///
/// let table = RouteTable::new(vec![VirtualHost::new("web", ["*"], vec![
///     Route::new("a", RouteMatch::any().with_path(PathMatch::exact("/a")), 'a'),
///     Route::new("rest", RouteMatch::any(), 'r'),
/// ])]);
/// let reference = Reference::new(table.clone()).unwrap();
/// let router = Router::new(table).unwrap();
/// let req = RequestHead::new("GET", "http", "x", "/a?q");
/// assert_eq!(reference.find(&req).unwrap().route(), router.find(&req).unwrap().route());
/// ```
#[derive(Debug)]
pub struct Reference<T> {
    table: RouteTable<T>,
    /// Per virtual host, per route: the compiled regexes by condition.
    regexes: Vec<Vec<Vec<(Condition, Regex)>>>,
}

impl<T> Reference<T> {
    /// Builds the reference matcher with default [`Options`].
    pub fn new(table: RouteTable<T>) -> Result<Self, BuildError> {
        Self::with_options(table, &Options::default())
    }

    /// Builds the reference matcher.
    pub fn with_options(table: RouteTable<T>, options: &Options) -> Result<Self, BuildError> {
        host::parse_domains(table.virtual_hosts.iter().map(|v| &v.domains[..]))?;
        let mut regexes = Vec::new();
        for (vi, vh) in table.virtual_hosts.iter().enumerate() {
            let mut per_route = Vec::new();
            for (ri, r) in vh.routes.iter().enumerate() {
                let mut patterns: Vec<(Condition, &str)> = Vec::new();
                if let Some(PathMatch::Regex(p)) = &r.matches.path {
                    patterns.push((Condition::Path, p));
                }
                for (i, h) in r.matches.headers.iter().enumerate() {
                    if let ValueMatch::Regex(p) = &h.matcher {
                        patterns.push((Condition::Header(i), p));
                    }
                }
                for (i, q) in r.matches.query_params.iter().enumerate() {
                    if let ValueMatch::Regex(p) = &q.matcher {
                        patterns.push((Condition::QueryParam(i), p));
                    }
                }
                let mut compiled = Vec::new();
                for (cond, p) in patterns {
                    let re = compile_regex(p, options)
                        .map_err(|e| BuildError::regex(vi, ri, cond, p, e))?;
                    compiled.push((cond, re));
                }
                per_route.push(compiled);
            }
            regexes.push(per_route);
        }
        Ok(Self { table, regexes })
    }

    /// Selects the route for `req`; same contract as [`Router::find`](crate::Router::find).
    pub fn find(&self, req: &RequestHead<'_>) -> Result<Matched<'_, T>, NotFound> {
        let vi = self
            .find_virtual_host(req.authority())
            .ok_or(NotFound::NoVirtualHost)?;
        let no_route = NotFound::NoRoute { virtual_host: vi };
        let vh = self.table.virtual_hosts.get(vi).ok_or(no_route)?;
        for (ri, route) in vh.routes.iter().enumerate() {
            if self.route_matches(vi, ri, &route.matches, req) {
                return Ok(Matched::new(vi, &vh.name, ri, &route.name, &route.action));
            }
        }
        Err(no_route)
    }

    /// The index of the virtual host serving `authority`.
    pub fn find_virtual_host(&self, authority: &str) -> Option<usize> {
        // Strip a trailing ":<digits>".
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => authority,
        };
        let host = host.to_ascii_lowercase();
        // Rank: 0 exact, 1 suffix wildcard, 2 prefix wildcard, 3 default; then longer is better.
        let mut best: Option<(u8, std::cmp::Reverse<usize>, usize)> = None;
        for (vi, vh) in self.table.virtual_hosts.iter().enumerate() {
            for domain in &vh.domains {
                let d = domain.to_ascii_lowercase();
                let candidate = if d == "*" {
                    Some((3, 0))
                } else if let Some(suffix) = d.strip_prefix('*') {
                    (host.len() > suffix.len() && host.ends_with(suffix))
                        .then_some((1, suffix.len()))
                } else if let Some(prefix) = d.strip_suffix('*') {
                    (host.len() > prefix.len() && host.starts_with(prefix))
                        .then_some((2, prefix.len()))
                } else {
                    (d == host).then_some((0, 0))
                };
                if let Some((rank, len)) = candidate {
                    let key = (rank, std::cmp::Reverse(len), vi);
                    if best.is_none_or(|b| key < b) {
                        best = Some(key);
                    }
                }
            }
        }
        best.map(|(_, _, vi)| vi)
    }

    fn regex(&self, vi: usize, ri: usize, cond: Condition) -> Option<&Regex> {
        self.regexes
            .get(vi)?
            .get(ri)?
            .iter()
            .find(|(c, _)| *c == cond)
            .map(|(_, re)| re)
    }

    fn route_matches(&self, vi: usize, ri: usize, m: &RouteMatch, req: &RequestHead<'_>) -> bool {
        let raw = req.path();
        let path = raw.split(['?', '#']).next().unwrap_or("");
        let path_ok = match &m.path {
            None => true,
            Some(PathMatch::Exact {
                path: p,
                ignore_case,
            }) => {
                if *ignore_case {
                    path.eq_ignore_ascii_case(p)
                } else {
                    path == p
                }
            }
            Some(PathMatch::Prefix {
                prefix,
                ignore_case,
            }) => {
                if *ignore_case {
                    path.to_ascii_lowercase()
                        .as_bytes()
                        .starts_with(prefix.to_ascii_lowercase().as_bytes())
                } else {
                    path.as_bytes().starts_with(prefix.as_bytes())
                }
            }
            Some(PathMatch::Regex(_)) => self
                .regex(vi, ri, Condition::Path)
                .is_some_and(|re| re.is_match(path.as_bytes())),
        };
        if !path_ok {
            return false;
        }
        let headers = req.all_headers();
        for (i, h) in m.headers.iter().enumerate() {
            let values: Vec<&[u8]> = headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(&h.name))
                .map(|(_, v)| *v)
                .collect();
            let ok = if values.is_empty() {
                match &h.matcher {
                    ValueMatch::Present => h.invert,
                    other if h.treat_missing_as_empty => {
                        self.value_matches(vi, ri, Condition::Header(i), other, b"") != h.invert
                    }
                    _ => false,
                }
            } else {
                let joined = values.join(&b","[..]);
                self.value_matches(vi, ri, Condition::Header(i), &h.matcher, &joined) != h.invert
            };
            if !ok {
                return false;
            }
        }
        let query = raw
            .split('#')
            .next()
            .and_then(|p| p.split_once('?'))
            .map(|(_, q)| q);
        for (i, q) in m.query_params.iter().enumerate() {
            let value = query.and_then(|query| {
                query
                    .split('&')
                    .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                    .find(|(k, _)| *k == q.name)
                    .map(|(_, v)| v)
            });
            let ok = value.is_some_and(|v| {
                self.value_matches(vi, ri, Condition::QueryParam(i), &q.matcher, v.as_bytes())
            });
            if !ok {
                return false;
            }
        }
        true
    }

    fn value_matches(
        &self,
        vi: usize,
        ri: usize,
        cond: Condition,
        m: &ValueMatch,
        value: &[u8],
    ) -> bool {
        match m {
            ValueMatch::Exact(s) => value == s.as_bytes(),
            ValueMatch::Prefix(s) => value.starts_with(s.as_bytes()),
            ValueMatch::Regex(_) => self
                .regex(vi, ri, cond)
                .is_some_and(|re| re.is_match(value)),
            ValueMatch::Present => true,
        }
    }
}
