//! Property test: on random tables and requests, `Router`, `Reference` and `Router::explain`
//! choose the same virtual host and the same route.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use portcullis_route_match::*;
use proptest::prelude::*;
use proptest::sample::select;

// Small alphabets, so that domains, paths, names and values collide often.
const DOMAINS: &[&str] = &[
    "a.com",
    "A.com",
    "b.a.com",
    "*.a.com",
    "*.b.a.com",
    "*-x.a.com",
    "*.com",
    "a.*",
    "a.b.*",
    "*",
    "[::1]",
    "10.0.0.1",
];
const AUTHORITIES: &[&str] = &[
    "a.com",
    "A.COM:80",
    "b.a.com",
    "c.b.a.com",
    ".a.com",
    "y-x.a.com",
    "-x.a.com",
    "a.org",
    "a.b.c",
    "a.",
    "[::1]",
    "[::1]:8443",
    "10.0.0.1:1",
    "x.com:",
    "com",
    "",
];
const PATHS: &[&str] = &[
    "/", "", "/a", "/a/", "/a/b", "/A", "/ab", "/A/B", "/b", "/é",
];
const REQ_PATHS: &[&str] = &[
    "/",
    "",
    "/a",
    "/a/",
    "/a/b",
    "/A/b?q=1",
    "/ab?q&r=2",
    "/a?q=12&q=1",
    "/a#frag",
    "/x?q=1#y",
    "/A",
    "/ab/c?r=a%20b",
    "/b?q=",
    "/a/b?q=1,2",
    "/é/x",
    "/É",
    "/b/",
];
const REGEXES: &[&str] = &[
    "/a.*",
    "/[ab]+",
    ".*",
    "/a/b",
    "(?i)/a",
    "",
    "1.*",
    "[0-9]+",
    "1,2",
    "/a(/.*)?",
    "/(a|b)/.*",
    "/é.*",
    "(?i)/É",
    "/a|/ab.*",
    "[/A]b?",
];
const NAMES: &[&str] = &["x", "X", "y", ":method", ":authority", ":path", ":scheme"];
const VALUES: &[&str] = &["", "1", "12", "1,2", "GET", "a.com", "/a"];
const QUERY_NAMES: &[&str] = &["q", "r", "Q"];

fn value_match() -> impl Strategy<Value = ValueMatch> {
    prop_oneof![
        select(VALUES).prop_map(|v| ValueMatch::Exact(v.into())),
        select(VALUES).prop_map(|v| ValueMatch::Prefix(v.into())),
        select(REGEXES).prop_map(|v| ValueMatch::Regex(v.into())),
        Just(ValueMatch::Present),
    ]
}

fn path_match() -> impl Strategy<Value = Option<PathMatch>> {
    prop_oneof![
        1 => Just(None),
        3 => (select(PATHS), any::<bool>()).prop_map(|(p, ic)| Some(PathMatch::exact(p).ignore_case(ic))),
        4 => (select(PATHS), any::<bool>()).prop_map(|(p, ic)| Some(PathMatch::prefix(p).ignore_case(ic))),
        2 => select(REGEXES).prop_map(|r| Some(PathMatch::regex(r))),
    ]
}

fn route_match() -> impl Strategy<Value = RouteMatch> {
    let header = (select(NAMES), value_match(), any::<bool>(), any::<bool>()).prop_map(
        |(name, matcher, invert, treat_missing_as_empty)| HeaderMatch {
            name: name.into(),
            matcher,
            invert,
            treat_missing_as_empty,
        },
    );
    let query = (select(QUERY_NAMES), value_match()).prop_map(|(n, m)| QueryParamMatch::new(n, m));
    (
        path_match(),
        prop::collection::vec(header, 0..3),
        prop::collection::vec(query, 0..2),
    )
        .prop_map(|(path, headers, query_params)| RouteMatch {
            path,
            headers,
            query_params,
        })
}

fn table() -> impl Strategy<Value = RouteTable<usize>> {
    let vhost = (
        prop::collection::vec(select(DOMAINS), 0..4),
        prop::collection::vec(route_match(), 0..8),
    );
    prop::collection::vec(vhost, 0..5).prop_map(|vhosts| {
        // Domains must be unique across the table (case-insensitively).
        let mut seen = HashSet::new();
        let vhosts = vhosts
            .into_iter()
            .enumerate()
            .map(|(vi, (domains, routes))| {
                let domains: Vec<&str> = domains
                    .into_iter()
                    .filter(|d| seen.insert(d.to_ascii_lowercase()))
                    .collect();
                let routes = routes
                    .into_iter()
                    .enumerate()
                    .map(|(ri, m)| Route::new(format!("r{ri}"), m, ri))
                    .collect();
                VirtualHost::new(format!("v{vi}"), domains, routes)
            })
            .collect();
        RouteTable::new(vhosts)
    })
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, &'static str)>> {
    prop::collection::vec((select(NAMES), select(VALUES)), 0..4)
}

fn request_parts() -> impl Strategy<
    Value = (
        &'static str,
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
    ),
> {
    (
        select(&["GET", "POST"][..]),
        select(AUTHORITIES),
        select(REQ_PATHS),
        headers(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn router_reference_and_explain_agree(
        table in table(),
        requests in prop::collection::vec(request_parts(), 1..8),
    ) {
        let router = Router::new(table.clone()).unwrap();
        let reference = Reference::new(table).unwrap();
        for (method, authority, path, headers) in &requests {
            let mut map = http::HeaderMap::new();
            for (k, v) in headers {
                if let Ok(name) = http::HeaderName::from_bytes(k.as_bytes()) {
                    map.append(name, http::HeaderValue::from_static(v));
                }
            }
            let base = RequestHead::new(method, "https", authority, path);
            for req in [base.with_header_list(headers), base.with_header_map(&map)] {
                prop_assert_eq!(
                    router.find_virtual_host(authority),
                    reference.find_virtual_host(authority),
                    "vhost for {:?}", authority
                );
                let got = router.find(&req).map(|m| (m.virtual_host(), m.route(), *m.action()));
                let want = reference.find(&req).map(|m| (m.virtual_host(), m.route(), *m.action()));
                prop_assert_eq!(got, want, "request {:?}\n{}", req, router.explain(&req));
                let ex = router.explain(&req);
                prop_assert_eq!(ex.virtual_host.as_ref().map(|v| v.index), router.find_virtual_host(authority));
                prop_assert_eq!(ex.chosen.as_ref().map(|c| c.index), got.ok().map(|(_, r, _)| r));
            }
        }
    }

    #[test]
    fn build_errors_agree(table in table()) {
        // Every generated regex is valid, so both always build; this checks the error paths stay
        // in step on the same inputs with an absurdly small size limit.
        let options = Options::default().regex_size_limit(64);
        let a = Router::with_options(table.clone(), &options).err().map(|e| (e.virtual_host(), e.route(), e.condition()));
        let b = Reference::with_options(table, &options).err().map(|e| (e.virtual_host(), e.route(), e.condition()));
        prop_assert_eq!(a, b);
    }
}

// === SNI ===

const SERVER_NAMES: &[&str] = &[
    "a.com",
    "A.com",
    "b.a.com",
    "*.a.com",
    "*.b.a.com",
    "*.com",
    "*",
    "*-x.a.com",
    "*.",
    "com",
];
const SNIS: &[&str] = &[
    "a.com",
    "A.COM",
    "b.a.com",
    "c.b.a.com",
    ".a.com",
    "x.com",
    "com",
    "",
    "-x.a.com",
    "y-x.a.com",
    "a.",
    "..a.com",
];

/// The SNI rules, written plainly: exact name, else longest `*.` wildcard, else a route without
/// criterion; first route wins ties.
fn sni_spec(routes: &[SniRoute<usize>], sni: Option<&str>) -> Option<usize> {
    let catch_all = routes
        .iter()
        .position(|r| r.server_names.is_empty() || r.server_names.iter().any(|n| n == "*"));
    let Some(sni) = sni.filter(|s| !s.is_empty()).map(str::to_ascii_lowercase) else {
        return catch_all;
    };
    let candidates = || {
        routes.iter().enumerate().filter(|(_, r)| {
            !(r.server_names.is_empty() || r.server_names.iter().any(|n| n == "*"))
        })
    };
    if let Some((i, _)) = candidates().find(|(_, r)| {
        r.server_names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            !(n.starts_with("*.")) && n == sni
        })
    }) {
        return Some(i);
    }
    let mut best: Option<(usize, usize)> = None; // (suffix len, route)
    for (i, r) in candidates() {
        for n in &r.server_names {
            let n = n.to_ascii_lowercase();
            let Some(suffix) = n.strip_prefix('*').filter(|s| s.starts_with('.')) else {
                continue;
            };
            if sni.len() > suffix.len()
                && sni.ends_with(suffix)
                && best.is_none_or(|(l, _)| suffix.len() > l)
            {
                best = Some((suffix.len(), i));
            }
        }
    }
    best.map(|(_, i)| i).or(catch_all)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sni_router_agrees_with_spec(
        names in prop::collection::vec(prop::collection::vec(select(SERVER_NAMES), 0..3), 0..5),
        snis in prop::collection::vec(prop::option::of(select(SNIS)), 1..6),
    ) {
        let routes: Vec<SniRoute<usize>> = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| SniRoute::new(format!("c{i}"), n, i))
            .collect();
        let router = SniRouter::new(routes.clone());
        for sni in snis {
            let got = router.find(sni).map(|(i, a)| { assert_eq!(i, *a); i });
            prop_assert_eq!(got, sni_spec(&routes, sni), "sni {:?} routes {:?}", sni, routes);
        }
    }
}
