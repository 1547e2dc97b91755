//! Entry points for fuzzing (feature `fuzzing`): each takes arbitrary bytes, must never panic,
//! and asserts the properties the crate promises. `fuzz/` calls them from cargo-fuzz targets, and
//! the regression tests replay every finding through them.

use arbitrary::{Result, Unstructured};

use crate::{
    CompiledVirtualHost, HeaderMatch, Options, PathMatch, QueryParamMatch, Reference, RequestHead,
    Route, RouteMatch, RouteTable, Router, ValueMatch, VirtualHost,
};

// Small alphabets, so that domains, paths, names and values collide often; now and then a
// string straight from the fuzzer's bytes takes their place.
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
    "a.com.",
    "**",
    "*.*",
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
    "a.com:99999999999999999999",
];
const PATHS: &[&str] = &[
    "/", "", "/a", "/a/", "/a/b", "/A", "/ab", "/A/B", "/b", "/é", "/a?", "/a%2F",
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
    "?q=1",
    "#",
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
    "a)|(b",
    "\\",
    "(?-u:\\xff)",
    "^/a$",
];
const NAMES: &[&str] = &[
    "x",
    "X",
    "y",
    ":method",
    ":authority",
    ":path",
    ":scheme",
    ":status",
    "bad name",
];
const VALUES: &[&str] = &["", "1", "12", "1,2", "GET", "a.com", "/a", "é"];
const QUERY_NAMES: &[&str] = &["q", "r", "Q", ""];
const METHODS: &[&str] = &["GET", "POST", "get", ""];
const SCHEMES: &[&str] = &["https", "http", ""];

/// One of `list`, or (one time in `one_in`) a short string from the fuzzer's bytes.
fn text(u: &mut Unstructured<'_>, list: &[&str], one_in: u8) -> Result<String> {
    if u.ratio(1, one_in)? {
        let s: &str = u.arbitrary()?;
        return Ok(s.chars().take(24).collect());
    }
    Ok((*u.choose(list)?).to_owned())
}

fn value_match(u: &mut Unstructured<'_>) -> Result<ValueMatch> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => ValueMatch::Exact(text(u, VALUES, 8)?),
        1 => ValueMatch::Prefix(text(u, VALUES, 8)?),
        2 => ValueMatch::Regex(text(u, REGEXES, 6)?),
        _ => ValueMatch::Present,
    })
}

fn route_match(u: &mut Unstructured<'_>) -> Result<RouteMatch> {
    let path = match u.int_in_range(0..=9u8)? {
        0 => None,
        1..=3 => Some(PathMatch::exact(text(u, PATHS, 8)?).ignore_case(u.arbitrary()?)),
        4..=7 => Some(PathMatch::prefix(text(u, PATHS, 8)?).ignore_case(u.arbitrary()?)),
        _ => Some(PathMatch::regex(text(u, REGEXES, 6)?)),
    };
    let mut m = RouteMatch {
        path,
        ..RouteMatch::any()
    };
    for _ in 0..u.int_in_range(0..=2u8)? {
        m.headers.push(HeaderMatch {
            name: text(u, NAMES, 8)?,
            matcher: value_match(u)?,
            invert: u.arbitrary()?,
            treat_missing_as_empty: u.arbitrary()?,
        });
    }
    for _ in 0..u.int_in_range(0..=1u8)? {
        m.query_params.push(QueryParamMatch::new(
            text(u, QUERY_NAMES, 8)?,
            value_match(u)?,
        ));
    }
    Ok(m)
}

/// A small route table whose actions are `(virtual host, route)` indices. Domains may repeat
/// (a build error both matchers must report alike).
fn table(u: &mut Unstructured<'_>) -> Result<RouteTable<(usize, usize)>> {
    let mut vhosts = Vec::new();
    for vi in 0..u.int_in_range(0..=4usize)? {
        let mut domains = Vec::new();
        for _ in 0..u.int_in_range(0..=3u8)? {
            domains.push(text(u, DOMAINS, 10)?);
        }
        let mut routes = Vec::new();
        for ri in 0..u.int_in_range(0..=7usize)? {
            routes.push(Route::new(format!("r{ri}"), route_match(u)?, (vi, ri)));
        }
        vhosts.push(VirtualHost::new(format!("v{vi}"), domains, routes));
    }
    Ok(RouteTable::new(vhosts))
}

struct Request {
    method: String,
    scheme: String,
    authority: String,
    path: String,
    headers: Vec<(String, String)>,
}

fn request(u: &mut Unstructured<'_>) -> Result<Request> {
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        headers.push((text(u, NAMES, 8)?, text(u, VALUES, 8)?));
    }
    Ok(Request {
        method: text(u, METHODS, 10)?,
        scheme: text(u, SCHEMES, 10)?,
        authority: text(u, AUTHORITIES, 6)?,
        path: text(u, REQ_PATHS, 5)?,
        headers,
    })
}

/// Differential matcher: arbitrary bytes drive a generator of route tables and requests. The
/// indexed [`Router`] and the linear [`Reference`] build (or refuse) the same tables, and choose
/// the same virtual host and route for every request, with the headers as a list and as an
/// [`http::HeaderMap`]; [`Router::explain`] agrees with both, and so does a router put together
/// from virtual hosts compiled one at a time ([`Router::from_compiled`]).
pub fn differential(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(table) = table(&mut u) else {
        return;
    };
    let mut requests = Vec::new();
    while requests.len() < 8 {
        match request(&mut u) {
            Ok(r) => requests.push(r),
            Err(_) => break,
        }
    }
    // A small regex budget keeps hostile patterns cheap; both matchers get the same one.
    let options = Options::default().regex_size_limit(1 << 18);
    let router = Router::with_options(table.clone(), &options);
    // The same table compiled one virtual host at a time, then put together.
    let piecewise = table
        .virtual_hosts
        .iter()
        .map(|vh| CompiledVirtualHost::new(vh.clone(), &options).map(std::sync::Arc::new))
        .collect::<Result<Vec<_>, _>>()
        .and_then(Router::from_compiled);
    assert_eq!(
        piecewise.is_ok(),
        router.is_ok(),
        "building piecewise and whole disagree"
    );
    let reference = Reference::with_options(table, &options);
    let key = |e: crate::BuildError| {
        (
            e.virtual_host(),
            e.route(),
            e.condition(),
            e.domain().map(str::to_owned),
        )
    };
    let (router, reference) = match (router, reference) {
        (Ok(router), Ok(reference)) => (router, reference),
        (router, reference) => {
            // Both refuse the table, for the same reason.
            assert_eq!(
                router.err().map(key),
                reference.err().map(key),
                "the matchers disagree on building the table"
            );
            return;
        }
    };
    for r in &requests {
        let list: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut map = http::HeaderMap::new();
        for (k, v) in &r.headers {
            if k.starts_with(':') {
                continue;
            }
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                map.append(name, value);
            }
        }
        assert_eq!(
            router.find_virtual_host(&r.authority),
            reference.find_virtual_host(&r.authority),
            "virtual host for {:?}",
            r.authority
        );
        let base = RequestHead::new(&r.method, &r.scheme, &r.authority, &r.path);
        // The list keeps names that are not valid HTTP names; the map only valid ones.
        for req in [base.with_header_list(&list), base.with_header_map(&map)] {
            let got = router
                .find(&req)
                .map(|m| (m.virtual_host(), m.route(), *m.action()));
            if let Ok(piecewise) = &piecewise {
                let same = piecewise
                    .find(&req)
                    .map(|m| (m.virtual_host(), m.route(), *m.action()));
                assert_eq!(same, got, "piecewise router, request {req:?}");
            }
            let want = reference
                .find(&req)
                .map(|m| (m.virtual_host(), m.route(), *m.action()));
            assert_eq!(got, want, "request {req:?}\n{}", router.explain(&req));
            if let Ok((vi, ri, action)) = got {
                assert_eq!((vi, ri), action, "the action is the route's own");
            }
            let explained = router.explain(&req);
            assert_eq!(
                explained.virtual_host.as_ref().map(|v| v.index),
                router.find_virtual_host(&r.authority)
            );
            assert_eq!(
                explained.chosen.as_ref().map(|c| c.index),
                got.ok().map(|(_, ri, _)| ri)
            );
        }
    }
}
