//! Selection by TLS server name (SNI): which filter chain a TLS connection takes.

use crate::compile::FastHashMap;
use crate::host::with_lowercase;

/// One TLS route (an Envoy filter chain): the server names it serves and the action to take.
///
/// `server_names` holds exact names (`api.example.com`) and wildcards of the form
/// `*.example.com`, which match names with one or more labels before `.example.com` (never
/// `example.com` itself). An empty list, or one containing `*`, means "no SNI criterion": the
/// route then catches connections whose name matches no other route, including connections
/// that send no SNI at all. Names are compared case-insensitively. A `*` anywhere else is taken
/// literally (and so never matches a real name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniRoute<T> {
    /// A name for diagnostics; not used for matching.
    pub name: String,
    /// The server names; see the type's documentation.
    pub server_names: Vec<String>,
    /// The embedder's payload.
    pub action: T,
}

impl<T> SniRoute<T> {
    /// A route named `name` serving `server_names`.
    pub fn new(
        name: impl Into<String>,
        server_names: impl IntoIterator<Item = impl Into<String>>,
        action: T,
    ) -> Self {
        Self {
            name: name.into(),
            server_names: server_names.into_iter().map(Into::into).collect(),
            action,
        }
    }
}

/// Selects a [`SniRoute`] by the server name a TLS client sent, with Envoy's filter-chain rules:
/// an exact name first, then the longest matching `*.` wildcard, then the first route without
/// an SNI criterion. When several routes list the same name, the first one keeps it (Istio drops
/// the later duplicates).
///
/// ```
/// use portcullis_route_match::{SniRoute, SniRouter};
///
/// let router = SniRouter::new(vec![
///     SniRoute::new("api", ["api.example.com"], 1),
///     SniRoute::new("wild", ["*.example.com"], 2),
///     SniRoute::new("deep", ["*.internal.example.com"], 3),
///     SniRoute::new("fallback", ["*"], 4),
/// ]);
/// let pick = |sni| router.find(sni).map(|(_, action)| *action);
/// assert_eq!(pick(Some("API.example.com")), Some(1));
/// assert_eq!(pick(Some("a.b.example.com")), Some(2));
/// assert_eq!(pick(Some("db.internal.example.com")), Some(3));
/// assert_eq!(pick(Some("example.com")), Some(4)); // a wildcard never matches the apex
/// assert_eq!(pick(None), Some(4));
/// ```
#[derive(Debug)]
pub struct SniRouter<T> {
    routes: Box<[SniRoute<T>]>,
    exact: FastHashMap<Box<str>, usize>,
    /// Wildcards by their suffix, leading dot included (`*.a.com` is stored as `.a.com`).
    wildcard: FastHashMap<Box<str>, usize>,
    catch_all: Option<usize>,
}

impl<T> SniRouter<T> {
    /// Builds the router. It cannot fail: every string is a valid server name to compare with.
    pub fn new(routes: Vec<SniRoute<T>>) -> Self {
        let mut exact = FastHashMap::default();
        let mut wildcard = FastHashMap::default();
        let mut catch_all = None;
        for (i, route) in routes.iter().enumerate() {
            let names = &route.server_names;
            if names.is_empty() || names.iter().any(|n| n == "*") {
                catch_all = catch_all.or(Some(i));
                continue;
            }
            for name in names {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix('*').filter(|s| s.starts_with('.')) {
                    Some(suffix) => wildcard.entry(suffix.into()).or_insert(i),
                    None => exact.entry(name.into_boxed_str()).or_insert(i),
                };
            }
        }
        Self {
            routes: routes.into_boxed_slice(),
            exact,
            wildcard,
            catch_all,
        }
    }

    /// The index and action of the route for server name `sni` (`None` or `""`: the client sent
    /// no SNI). `None` when no route applies (the connection is closed).
    pub fn find(&self, sni: Option<&str>) -> Option<(usize, &T)> {
        let i = self.find_index(sni.filter(|s| !s.is_empty()))?;
        self.routes.get(i).map(|r| (i, &r.action))
    }

    /// The route at `index`.
    pub fn route(&self, index: usize) -> Option<&SniRoute<T>> {
        self.routes.get(index)
    }

    fn find_index(&self, sni: Option<&str>) -> Option<usize> {
        let Some(sni) = sni else {
            return self.catch_all;
        };
        with_lowercase(sni, |name| {
            if let Some(i) = self.exact.get(name) {
                return Some(*i);
            }
            // Longest suffix first: cut at each dot from the left, keeping at least one
            // character before it.
            for (pos, _) in name.match_indices('.').filter(|(pos, _)| *pos > 0) {
                if let Some(i) = name.get(pos..).and_then(|suffix| self.wildcard.get(suffix)) {
                    return Some(*i);
                }
            }
            self.catch_all
        })
    }
}
