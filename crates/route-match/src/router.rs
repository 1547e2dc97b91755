//! The optimised matcher.

use std::fmt;
use std::sync::Arc;

use crate::compile::{CompiledMatch, CompiledPath, FastHashMap, Options};
use crate::error::BuildError;
use crate::host::{self, DomainPattern, HostIndex};
use crate::request::RequestHead;
use crate::table::{PathMatch, Route, RouteTable, VirtualHost};

// === Matched / NotFound ===

/// The route a request selected.
#[derive(Debug)]
pub struct Matched<'r, T> {
    vhost: usize,
    vhost_name: &'r str,
    route: usize,
    route_name: &'r str,
    action: &'r T,
}

impl<T> Clone for Matched<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Matched<'_, T> {}

impl<'r, T> Matched<'r, T> {
    pub(crate) fn new(
        vhost: usize,
        vhost_name: &'r str,
        route: usize,
        route_name: &'r str,
        action: &'r T,
    ) -> Self {
        Self {
            vhost,
            vhost_name,
            route,
            route_name,
            action,
        }
    }

    /// The index of the virtual host in the table.
    pub fn virtual_host(&self) -> usize {
        self.vhost
    }

    /// The name of the virtual host.
    pub fn virtual_host_name(&self) -> &'r str {
        self.vhost_name
    }

    /// The index of the route within its virtual host.
    pub fn route(&self) -> usize {
        self.route
    }

    /// The name of the route.
    pub fn route_name(&self) -> &'r str {
        self.route_name
    }

    /// The route's action.
    pub fn action(&self) -> &'r T {
        self.action
    }
}

/// Why no route was selected (Envoy answers both with a 404).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotFound {
    /// No virtual host serves the request's host.
    NoVirtualHost,
    /// The virtual host at this index was selected, but none of its routes matched.
    NoRoute {
        /// The index of the selected virtual host.
        virtual_host: usize,
    },
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVirtualHost => f.write_str("no virtual host matches the request's host"),
            Self::NoRoute { virtual_host } => {
                write!(f, "no route of virtual host {virtual_host} matches")
            }
        }
    }
}

impl std::error::Error for NotFound {}

// === Router ===

/// The route lookup engine: built once from a [`RouteTable`], then queried per request.
///
/// Selection follows Envoy's rules as configured by Istio: a virtual host by the request's
/// host (port removed, lower-cased; exact domain, then the longest `*suffix`, then the longest
/// `prefix*`, then `*`), then the **first** route of that virtual host whose conditions all hold.
///
/// Internally, exact hosts sit in a hash map and wildcard domains in one hash map per length.
/// Within a virtual host, routes are indexed by path where possible: case-sensitive exact paths
/// in a hash map, case-sensitive prefixes in one hash map per prefix length, and regexes whose
/// matches all start with one of a few literal strings (`/api/v[12]/.*`) under those strings as
/// prefixes. A lookup collects the candidates the path reaches, checks their remaining
/// conditions in route order, and scans the routes the index cannot reach (case-insensitive
/// paths, regexes such as `.*\.js`, routes without a path condition) only up to the best
/// candidate found, so declaration order is kept exactly. The cost of a lookup depends on the
/// number of distinct prefix lengths and unindexable routes of the chosen virtual host, not on
/// the size of the table. A lookup does not allocate unless a header it tests is repeated or the
/// host is longer than 256 bytes and not lower case.
///
/// [`Reference`](crate::Reference) implements the same rules by linear scan; the two are tested
/// to agree.
#[derive(Debug)]
pub struct Router<T> {
    vhosts: Box<[Arc<CompiledVirtualHost<T>>]>,
    hosts: HostIndex,
}

/// One virtual host compiled on its own: its routes' conditions compiled and indexed by path,
/// ready to be selected by host in a [`Router`].
///
/// A router is made of these behind `Arc`s ([`Router::from_compiled`]), so that routers built
/// one after another can share the virtual hosts that did not change between them: a
/// configuration of ten thousand virtual hosts in which one changed compiles one, and the
/// next router only indexes the domains again.
///
/// ```
/// use std::sync::Arc;
/// use portcullis_route_match::*;
///
/// let shop = Arc::new(CompiledVirtualHost::new(
///     VirtualHost::new("shop", ["shop.example.com"], vec![
///         Route::new("all", RouteMatch::any().with_path(PathMatch::prefix("/")), "shop-v1"),
///     ]),
///     &Options::default(),
/// ).unwrap());
/// let blog = |backend| Arc::new(CompiledVirtualHost::new(
///     VirtualHost::new("blog", ["blog.example.com"], vec![
///         Route::new("all", RouteMatch::any().with_path(PathMatch::prefix("/")), backend),
///     ]),
///     &Options::default(),
/// ).unwrap());
///
/// let before = Router::from_compiled(vec![shop.clone(), blog("blog-v1")]).unwrap();
/// // The blog changes; the shop is not compiled again.
/// let after = Router::from_compiled(vec![shop.clone(), blog("blog-v2")]).unwrap();
/// assert!(Arc::ptr_eq(&before.virtual_hosts()[0], &after.virtual_hosts()[0]));
///
/// let req = RequestHead::new("GET", "http", "blog.example.com", "/");
/// assert_eq!(*after.find(&req).unwrap().action(), "blog-v2");
/// assert_eq!(after.virtual_hosts()[1].routes()[0].action, "blog-v2");
/// ```
#[derive(Debug)]
pub struct CompiledVirtualHost<T> {
    name: String,
    domains: Vec<String>,
    patterns: Box<[DomainPattern]>,
    routes: Box<[Route<T>]>,
    /// The compiled conditions of `routes`, at the same indices.
    conds: Box<[CompiledMatch]>,
    index: RouteIndex,
}

impl<T> CompiledVirtualHost<T> {
    /// Compiles `vhost`: its domains are checked and its regexes compiled here, once. That a
    /// domain is served twice (by another virtual host, or twice by this one) is found by
    /// [`Router::from_compiled`]. An error names the route at fault, and virtual host 0, as
    /// the virtual host is on its own.
    pub fn new(vhost: VirtualHost<T>, options: &Options) -> Result<Self, BuildError> {
        let patterns =
            host::parse_virtual_host_domains(0, &vhost.domains).map_err(BuildError::alone)?;
        Self::with_patterns(vhost, 0, patterns, options).map_err(BuildError::alone)
    }

    /// Compiles `vhost` as [`new`](Self::new) does, but leaves out each route the matcher
    /// rejects instead of failing: those come back with their errors, in route order (an
    /// error's [`route`](BuildError::route) is the index in `vhost`). Only an invalid domain
    /// fails the virtual host.
    ///
    /// ```
    /// use portcullis_route_match::*;
    ///
    /// let (vhost, skipped) = CompiledVirtualHost::skipping_invalid_routes(
    ///     VirtualHost::new("web", ["*"], vec![
    ///         Route::new("bad", RouteMatch::any().with_path(PathMatch::regex("/(")), 1),
    ///         Route::new("rest", RouteMatch::any(), 2),
    ///     ]),
    ///     &Options::default(),
    /// ).unwrap();
    /// assert_eq!(vhost.routes().len(), 1);
    /// assert_eq!(skipped[0].0.name, "bad");
    /// assert_eq!(skipped[0].1.route(), Some(0));
    /// ```
    #[allow(clippy::type_complexity)] // a pair, spelled out for the reader
    pub fn skipping_invalid_routes(
        mut vhost: VirtualHost<T>,
        options: &Options,
    ) -> Result<(Self, Vec<(Route<T>, BuildError)>), BuildError> {
        let patterns =
            host::parse_virtual_host_domains(0, &vhost.domains).map_err(BuildError::alone)?;
        let mut conds = Vec::with_capacity(vhost.routes.len());
        let mut skipped = Vec::new();
        let mut routes = Vec::with_capacity(vhost.routes.len());
        for (ri, r) in std::mem::take(&mut vhost.routes).into_iter().enumerate() {
            match CompiledMatch::new(&r.matches, 0, ri, options) {
                Ok(c) => {
                    conds.push(c);
                    routes.push(r);
                }
                Err(e) => skipped.push((r, e.alone())),
            }
        }
        vhost.routes = routes;
        let conds = conds.into_boxed_slice();
        Ok((Self::with_conds(vhost, patterns, conds), skipped))
    }

    /// Compiles `vhost`, at `vi` in its table, whose domains are parsed already.
    fn with_patterns(
        vhost: VirtualHost<T>,
        vi: usize,
        patterns: Vec<DomainPattern>,
        options: &Options,
    ) -> Result<Self, BuildError> {
        let conds = vhost
            .routes
            .iter()
            .enumerate()
            .map(|(ri, r)| CompiledMatch::new(&r.matches, vi, ri, options))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(Self::with_conds(vhost, patterns, conds))
    }

    /// `vhost` with its parsed domains and the compiled conditions of its routes.
    fn with_conds(
        vhost: VirtualHost<T>,
        patterns: Vec<DomainPattern>,
        conds: Box<[CompiledMatch]>,
    ) -> Self {
        let index = RouteIndex::new(&vhost.routes, &conds);
        Self {
            name: vhost.name,
            domains: vhost.domains,
            patterns: patterns.into_boxed_slice(),
            routes: vhost.routes.into_boxed_slice(),
            conds,
            index,
        }
    }

    /// The virtual host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The domains it serves, as written.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// The routes, in priority order.
    pub fn routes(&self) -> &[Route<T>] {
        &self.routes
    }
}

/// Equal when the name, the domains and the routes are: what was built from them is then the
/// same (the [`Options`] they were compiled with are not compared).
impl<T: PartialEq> PartialEq for CompiledVirtualHost<T> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.domains == other.domains && self.routes == other.routes
    }
}

/// Candidate routes, ascending by route index. A list stops at the first route that has no
/// condition besides the indexed path (later ones could never win). A `Vec` trimmed to its
/// length, so that the maps are not rebuilt to box every list.
type Candidates = Vec<Candidate>;

/// Candidate lists by prefix, one map per prefix length, shortest first.
type ByLength = Vec<(usize, FastHashMap<Box<str>, Candidates>)>;

#[derive(Clone, Copy, Debug)]
struct Candidate {
    route: usize,
    /// The path itself must still be checked (a regex indexed by its literal prefix); otherwise
    /// the index already proved the path condition.
    check_path: bool,
}

#[derive(Debug, Default)]
struct RouteIndex {
    exact: FastHashMap<Box<str>, Candidates>,
    /// Prefix candidates grouped by prefix length, shortest first.
    prefixes: ByLength,
    /// Routes not reachable through the maps, ascending.
    scan: Box<[usize]>,
}

impl<T> Router<T> {
    /// Builds a router with default [`Options`].
    pub fn new(table: RouteTable<T>) -> Result<Self, BuildError> {
        Self::with_options(table, &Options::default())
    }

    /// Builds a router. Every regex is compiled here, once; invalid domains, duplicate domains
    /// and invalid or oversized regexes are reported as a [`BuildError`].
    pub fn with_options(table: RouteTable<T>, options: &Options) -> Result<Self, BuildError> {
        let parsed = host::parse_domains(table.virtual_hosts.iter().map(|v| &v.domains[..]))?;
        let vhosts = table
            .virtual_hosts
            .into_iter()
            .zip(parsed)
            .enumerate()
            .map(|(vi, (vh, patterns))| {
                CompiledVirtualHost::with_patterns(vh, vi, patterns, options).map(Arc::new)
            })
            .collect::<Result<Box<[_]>, _>>()?;
        Self::indexed(vhosts)
    }

    /// Builds a router from virtual hosts compiled already, which other routers may share.
    /// Only the domains are indexed here; a domain served by two of them is a [`BuildError`]
    /// naming the later one.
    pub fn from_compiled(
        vhosts: impl IntoIterator<Item = Arc<CompiledVirtualHost<T>>>,
    ) -> Result<Self, BuildError> {
        Self::indexed(vhosts.into_iter().collect())
    }

    /// A router without virtual hosts: every request is [`NotFound::NoVirtualHost`].
    pub fn empty() -> Self {
        Self {
            vhosts: Box::default(),
            hosts: HostIndex::default(),
        }
    }

    /// The router over `vhosts`, whose domains are valid: a domain served twice is an error.
    fn indexed(vhosts: Box<[Arc<CompiledVirtualHost<T>>]>) -> Result<Self, BuildError> {
        let hosts = HostIndex::new(vhosts.iter().map(|v| (&v.patterns[..], &v.domains[..])))?;
        Ok(Self { vhosts, hosts })
    }

    /// The virtual hosts, in table order: a match's [`virtual_host`](Matched::virtual_host)
    /// is an index into this.
    pub fn virtual_hosts(&self) -> &[Arc<CompiledVirtualHost<T>>] {
        &self.vhosts
    }

    /// Selects the route for `req`.
    ///
    /// ```
    /// use portcullis_route_match::*;
    ///
    /// let router = Router::new(RouteTable::new(vec![VirtualHost::new("shop", ["shop.example.com"], vec![
    ///     Route::new("api", RouteMatch::any().with_path(PathMatch::prefix("/api/")), "api-backend"),
    /// ])])).unwrap();
    ///
    /// let hit = router.find(&RequestHead::new("GET", "http", "Shop.Example.com:80", "/api/v1")).unwrap();
    /// assert_eq!(*hit.action(), "api-backend");
    ///
    /// let miss = router.find(&RequestHead::new("GET", "http", "shop.example.com", "/web"));
    /// assert_eq!(miss.unwrap_err(), NotFound::NoRoute { virtual_host: 0 });
    /// let miss = router.find(&RequestHead::new("GET", "http", "other.example.com", "/api/"));
    /// assert_eq!(miss.unwrap_err(), NotFound::NoVirtualHost);
    /// ```
    pub fn find(&self, req: &RequestHead<'_>) -> Result<Matched<'_, T>, NotFound> {
        let (vi, vh) = self
            .find_vhost(req.authority())
            .ok_or(NotFound::NoVirtualHost)?;
        let path = req.path_without_query();
        let ri = vh
            .index
            .find(&vh.conds, req, path)
            .ok_or(NotFound::NoRoute { virtual_host: vi })?;
        let route = vh
            .routes
            .get(ri)
            .ok_or(NotFound::NoRoute { virtual_host: vi })?;
        Ok(Matched::new(vi, &vh.name, ri, &route.name, &route.action))
    }

    /// The index of the virtual host serving `authority` (a `Host` value, port allowed).
    pub fn find_virtual_host(&self, authority: &str) -> Option<usize> {
        self.find_vhost(authority).map(|(i, _)| i)
    }

    /// The number of virtual hosts.
    pub fn virtual_host_count(&self) -> usize {
        self.vhosts.len()
    }

    fn find_vhost(&self, authority: &str) -> Option<(usize, &CompiledVirtualHost<T>)> {
        let vi = host::with_lowercase(host::strip_port(authority), |h| {
            self.hosts.find(h).map(|hit| hit.vhost)
        })?;
        Some((vi, self.vhosts.get(vi)?))
    }

    /// Explains how `req` is routed: the virtual host chosen and why, and for each route before
    /// the chosen one, the first condition that failed. Slower than [`Router::find`] and meant
    /// for debugging; it always agrees with it.
    ///
    /// ```
    /// use portcullis_route_match::*;
    ///
    /// let router = Router::new(RouteTable::new(vec![VirtualHost::new("web", ["*.example.com"], vec![
    ///     Route::new("api", RouteMatch::any().with_path(PathMatch::prefix("/api")), 1),
    ///     Route::new("users", RouteMatch::any().with_header(HeaderMatch::new("x-user", ValueMatch::Present)), 2),
    ///     Route::new("rest", RouteMatch::any(), 3),
    /// ])])).unwrap();
    ///
    /// let ex = router.explain(&RequestHead::new("GET", "http", "www.example.com", "/v1/x"));
    /// assert_eq!(ex.chosen.as_ref().map(|r| r.index), Some(2));
    /// let text = ex.to_string();
    /// assert!(text.contains("suffix wildcard *.example.com"), "{text}");
    /// assert!(text.contains("path prefix /api did not match /v1/x"), "{text}");
    /// assert!(text.contains("header x-user: missing"), "{text}");
    /// ```
    pub fn explain(&self, req: &RequestHead<'_>) -> crate::Explanation {
        let authority = req.authority();
        let host = host::strip_port(authority).to_ascii_lowercase();
        let hit = self.hosts.find(&host);
        let mut ex = crate::explain::Explanation::new(authority, host.clone());
        let Some(hit) = hit else {
            return ex;
        };
        let Some(vh) = self.vhosts.get(hit.vhost) else {
            return ex;
        };
        ex.set_virtual_host(hit.vhost, &vh.name, hit.kind, hit.domain());
        let path = req.path_without_query();
        for (ri, (route, compiled)) in vh.routes.iter().zip(&vh.conds).enumerate() {
            match compiled.first_failure(req, path) {
                None => {
                    ex.set_chosen(ri, &route.name);
                    break;
                }
                Some(cond) => {
                    ex.push_skipped(ri, &route.name, &route.matches, compiled, cond, req);
                }
            }
        }
        ex
    }
}

// === RouteIndex ===

/// The candidate list of prefix `key` in `by_len` (ascending by length), made empty, with room
/// for one (most keys have one candidate), if it is new.
fn prefix_list<'m>(by_len: &'m mut ByLength, key: &str) -> Option<&'m mut Vec<Candidate>> {
    let len = key.len();
    let pos = by_len.partition_point(|(l, _)| *l < len);
    if by_len.get(pos).is_none_or(|(l, _)| *l != len) {
        by_len.insert(pos, (len, FastHashMap::default()));
    }
    let (_, map) = by_len.get_mut(pos)?;
    Some(
        map.entry(key.into())
            .or_insert_with(|| Vec::with_capacity(1)),
    )
}

impl RouteIndex {
    fn new<T>(routes: &[Route<T>], conds: &[CompiledMatch]) -> Self {
        let mut exact: FastHashMap<Box<str>, Vec<Candidate>> = FastHashMap::default();
        // Prefix candidates go straight into their length's map. Most keys have one
        // candidate: lists start with room for one, so that trimming them moves nothing.
        let mut by_len: ByLength = Vec::new();
        let mut scan = Vec::new();
        // Appends a candidate unless the list already ends with one that shadows everything
        // after it (its path is proven by the index and it has no other condition).
        let push = |list: &mut Vec<Candidate>, c: Candidate| {
            let closed = list.last().is_some_and(|last| {
                !last.check_path
                    && conds
                        .get(last.route)
                        .is_some_and(|c| !c.has_extra_conditions())
            });
            if !closed && list.last().is_none_or(|last| last.route != c.route) {
                list.push(c);
            }
        };
        for (ri, (route, cond)) in routes.iter().zip(conds).enumerate() {
            let proven = Candidate {
                route: ri,
                check_path: false,
            };
            match (&cond.path, &route.matches.path) {
                (
                    CompiledPath::Exact {
                        path,
                        ignore_case: false,
                    },
                    _,
                ) => push(
                    exact
                        .entry(path.clone())
                        .or_insert_with(|| Vec::with_capacity(1)),
                    proven,
                ),
                (
                    CompiledPath::Prefix {
                        prefix,
                        ignore_case: false,
                    },
                    _,
                ) => {
                    if let Some(list) = prefix_list(&mut by_len, prefix) {
                        push(list, proven);
                    }
                }
                (CompiledPath::Regex(_), Some(PathMatch::Regex(pattern))) => {
                    match regex_literal_prefixes(pattern) {
                        Some(keys) => {
                            let c = Candidate {
                                route: ri,
                                check_path: true,
                            };
                            for key in keys {
                                if let Some(list) = prefix_list(&mut by_len, &key) {
                                    push(list, c);
                                }
                            }
                        }
                        None => scan.push(ri),
                    }
                }
                _ => scan.push(ri),
            }
        }
        for list in exact
            .values_mut()
            .chain(by_len.iter_mut().flat_map(|(_, map)| map.values_mut()))
        {
            list.shrink_to_fit();
        }
        Self {
            exact,
            prefixes: by_len,
            scan: scan.into_boxed_slice(),
        }
    }

    /// The index of the first route matching `req`.
    #[inline]
    fn find(&self, conds: &[CompiledMatch], req: &RequestHead<'_>, path: &str) -> Option<usize> {
        let mut best = usize::MAX;
        // Lowers `best` to the first candidate (below it) whose other conditions hold.
        let consider = |candidates: &[Candidate], best: &mut usize| {
            for c in candidates {
                if c.route >= *best {
                    return;
                }
                let Some(cond) = conds.get(c.route) else {
                    continue;
                };
                let failure = if c.check_path {
                    cond.first_failure(req, path)
                } else {
                    cond.first_extra_failure(req)
                };
                if failure.is_none() {
                    *best = c.route;
                    return;
                }
            }
        };
        if let Some(c) = self.exact.get(path) {
            consider(c, &mut best);
        }
        for (len, map) in &self.prefixes {
            let Some(head) = path.get(..*len) else {
                if *len > path.len() {
                    break;
                }
                continue;
            };
            if let Some(c) = map.get(head) {
                consider(c, &mut best);
            }
        }
        for &ri in self.scan.iter() {
            if ri >= best {
                break;
            }
            if conds
                .get(ri)
                .is_some_and(|c| c.first_failure(req, path).is_none())
            {
                return Some(ri);
            }
        }
        (best != usize::MAX).then_some(best)
    }
}

/// Literal strings one of which every match of `pattern` starts with, if the set is small and
/// known; `None` when the regex must be scanned.
///
/// A full match of the path starts at its first byte, so a route with such a regex can only
/// match paths starting with one of these strings: it is indexed under each of them like a
/// prefix route, and its regex is still run on every path the index yields.
pub(crate) fn regex_literal_prefixes(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};

    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_total(64)
        .extract(&hir);
    let mut keys: Vec<String> = Vec::new();
    for lit in seq.literals()? {
        let bytes = lit.as_bytes();
        // A literal truncated inside a UTF-8 sequence: its valid head is still a prefix.
        let valid = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(bytes.get(..e.valid_up_to())?).ok()?,
        };
        if !keys.iter().any(|k| k == valid) {
            keys.push(valid.to_owned());
        }
    }
    (!keys.is_empty()).then_some(keys)
}
