//! Unit tests. Every lookup goes through both `Router` and `Reference` (and `Router::explain`),
//! which must agree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use crate::*;

// === harness ===

struct Both {
    router: Router<u32>,
    reference: Reference<u32>,
}

fn build(vhosts: Vec<VirtualHost<u32>>) -> Both {
    let table = RouteTable::new(vhosts);
    Both {
        router: Router::new(table.clone()).expect("router builds"),
        reference: Reference::new(table).expect("reference builds"),
    }
}

fn vhost(name: &str, domains: &[&str], routes: Vec<RouteMatch>) -> VirtualHost<u32> {
    let routes = routes
        .into_iter()
        .enumerate()
        .map(|(i, m)| Route::new(format!("{name}-r{i}"), m, i as u32))
        .collect();
    VirtualHost::new(name, domains.iter().copied(), routes)
}

impl Both {
    /// (vhost, route) chosen, after checking the router, the reference and explain agree.
    fn pick(&self, req: &RequestHead<'_>) -> Result<(usize, usize), NotFound> {
        let r = self.router.find(req).map(|m| (m.virtual_host(), m.route()));
        let s = self
            .reference
            .find(req)
            .map(|m| (m.virtual_host(), m.route()));
        assert_eq!(r, s, "router and reference disagree on {req:?}");
        let ex = self.router.explain(req);
        assert_eq!(
            ex.virtual_host.as_ref().map(|v| v.index),
            self.router.find_virtual_host(req.authority()),
            "explain disagrees on the vhost: {ex}"
        );
        assert_eq!(
            ex.chosen.as_ref().map(|c| c.index),
            r.ok().map(|(_, ri)| ri),
            "explain disagrees on the route: {ex}"
        );
        r
    }

    fn host(&self, authority: &str) -> Option<usize> {
        self.pick(&RequestHead::new("GET", "http", authority, "/"))
            .ok()
            .map(|(v, _)| v)
            .or_else(|| {
                let r = self.router.find_virtual_host(authority);
                assert_eq!(r, self.reference.find_virtual_host(authority));
                r
            })
    }
}

fn get<'a>(authority: &'a str, path: &'a str) -> RequestHead<'a> {
    RequestHead::new("GET", "http", authority, path)
}

// === virtual host selection ===

fn hosts_table() -> Both {
    build(vec![
        vhost(
            "exact",
            &["foo.com", "WWW.Foo.Com"],
            vec![RouteMatch::any()],
        ),
        vhost("star-foo", &["*.foo.com"], vec![RouteMatch::any()]),
        vhost(
            "star-bar",
            &["*.bar.foo.com", "*-api.foo.com"],
            vec![RouteMatch::any()],
        ),
        vhost("prefix", &["api.*", "api.v2.*"], vec![RouteMatch::any()]),
        vhost("ipv6", &["[::1]", "10.0.0.1"], vec![RouteMatch::any()]),
    ])
}

#[test]
fn vhost_selection_follows_exact_then_suffix_then_prefix_rules() {
    let t = hosts_table();
    #[rustfmt::skip]
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("exact domain", "foo.com", Some(0)),
        ("exact domain is case-insensitive", "FOO.com", Some(0)),
        ("configured domain is lower-cased", "www.foo.com", Some(0)),
        ("port is stripped", "foo.com:8080", Some(0)),
        ("exact beats suffix wildcard", "www.foo.com:80", Some(0)),
        ("suffix wildcard", "a.foo.com", Some(1)),
        ("suffix wildcard matches several labels", "a.b.c.foo.com", Some(1)),
        ("longest suffix wins", "x.bar.foo.com", Some(2)),
        ("non-label suffix wildcard", "web-api.foo.com", Some(2)),
        ("suffix needs a strictly longer host", "-api.foo.com", Some(1)),
        ("suffix never matches the bare suffix", ".foo.com", None),
        ("apex is not covered by *.foo.com", "bar.foo.com", Some(1)),
        ("prefix wildcard", "api.example.org", Some(3)),
        ("longest prefix wins", "api.v2.example.org", Some(3)),
        ("prefix needs a strictly longer host", "api.", None),
        ("trailing dot is not normalised", "foo.com.", None),
        ("bracketed IPv6 keeps brackets", "[::1]", Some(4)),
        ("bracketed IPv6 with port", "[::1]:443", Some(4)),
        ("IPv4 with port", "10.0.0.1:80", Some(4)),
        ("non-digit port is not stripped", "foo.com:http", None),
        ("empty port is not stripped", "foo.com:", None),
        ("unknown host", "example.com", None),
        ("empty authority", "", None),
    ];
    for (what, authority, want) in cases {
        assert_eq!(t.host(authority), *want, "{what}: {authority:?}");
    }
}

#[test]
fn vhost_longest_prefix_wildcard_wins() {
    let t = build(vec![
        vhost("short", &["api.*"], vec![RouteMatch::any()]),
        vhost("long", &["api.v2.*"], vec![RouteMatch::any()]),
    ]);
    assert_eq!(t.host("api.v2.x"), Some(1));
    assert_eq!(t.host("api.v3.x"), Some(0));
}

#[test]
fn vhost_default_star_catches_everything_else() {
    let t = build(vec![
        vhost("a", &["a.com"], vec![RouteMatch::any()]),
        vhost("default", &["*"], vec![RouteMatch::any()]),
    ]);
    assert_eq!(t.host("a.com"), Some(0));
    assert_eq!(t.host("b.com:99"), Some(1));
    assert_eq!(t.host(""), Some(1));
}

#[test]
fn vhost_only_default_is_used_for_any_host() {
    let t = build(vec![vhost("blackhole", &["*"], vec![])]);
    assert_eq!(
        t.pick(&get("anything", "/")),
        Err(NotFound::NoRoute { virtual_host: 0 })
    );
}

#[test]
fn vhost_no_match_is_no_virtual_host() {
    let t = build(vec![vhost("a", &["a.com"], vec![RouteMatch::any()])]);
    assert_eq!(t.pick(&get("b.com", "/")), Err(NotFound::NoVirtualHost));
}

#[test]
fn vhost_long_uppercase_host_is_lowercased_without_stack_buffer() {
    let long = format!("{}.example.com", "a".repeat(300));
    let t = build(vec![vhost("long", &[&long], vec![RouteMatch::any()])]);
    assert_eq!(t.host(&long.to_ascii_uppercase()), Some(0));
}

#[test]
fn build_rejects_invalid_and_duplicate_domains() {
    for bad in ["", "a*b.com", "**", "*.a.*", "*a*"] {
        let err = Router::new(RouteTable::new(vec![vhost("x", &[bad], vec![])])).unwrap_err();
        assert_eq!(err.domain(), Some(bad), "{err}");
        assert!(Reference::new(RouteTable::new(vec![vhost("x", &[bad], vec![])])).is_err());
    }
    let dup = RouteTable::new(vec![
        vhost("one", &["a.com"], vec![]),
        vhost("two", &["b.com", "A.COM"], vec![]),
    ]);
    let err = Router::new(dup.clone()).unwrap_err();
    assert_eq!(
        (
            err.virtual_host(),
            err.first_virtual_host(),
            err.domain(),
            err.route()
        ),
        (1, Some(0), Some("A.COM"), None)
    );
    assert!(Reference::new(dup).is_err());
}

#[test]
fn compiled_virtual_hosts_are_shared_and_checked_for_duplicates_when_put_together() {
    let compile = |vh| Arc::new(CompiledVirtualHost::new(vh, &Options::default()).unwrap());
    let one = compile(vhost("one", &["a.com"], vec![RouteMatch::any()]));
    let two = compile(vhost(
        "two",
        &["*.b.com"],
        vec![
            RouteMatch::any().with_path(PathMatch::exact("/x")),
            RouteMatch::any(),
        ],
    ));
    let first = Router::from_compiled([one.clone(), two.clone()]).unwrap();
    let second = Router::from_compiled([two.clone(), one.clone()]).unwrap();
    assert!(Arc::ptr_eq(
        &first.virtual_hosts()[0],
        &second.virtual_hosts()[1]
    ));
    assert_eq!(Arc::strong_count(&one), 3);
    // Each router selects by its own order of the same virtual hosts.
    let req = RequestHead::new("GET", "http", "www.B.com", "/x");
    let hit = first.find(&req).unwrap();
    assert_eq!((hit.virtual_host(), hit.route(), *hit.action()), (1, 0, 0));
    let hit = second.find(&req).unwrap();
    assert_eq!((hit.virtual_host(), hit.route()), (0, 0));
    assert_eq!(second.virtual_hosts()[1].name(), "one");
    assert_eq!(second.virtual_hosts()[0].domains(), ["*.b.com"]);
    assert_eq!(second.virtual_hosts()[0].routes().len(), 2);
    // The same as building the table whole.
    let whole = Router::new(RouteTable::new(vec![
        vhost("one", &["a.com"], vec![RouteMatch::any()]),
        vhost(
            "two",
            &["*.b.com"],
            vec![
                RouteMatch::any().with_path(PathMatch::exact("/x")),
                RouteMatch::any(),
            ],
        ),
    ]))
    .unwrap();
    assert_eq!(whole.virtual_hosts(), first.virtual_hosts());

    let again = compile(vhost("again", &["x.com", "A.COM"], vec![]));
    let err = Router::from_compiled([one, two, again]).unwrap_err();
    assert_eq!(
        (err.virtual_host(), err.first_virtual_host(), err.domain()),
        (2, Some(0), Some("A.COM"))
    );
    let err =
        CompiledVirtualHost::new(vhost("bad", &["a*b"], vec![]), &Options::default()).unwrap_err();
    assert_eq!((err.virtual_host(), err.domain()), (0, Some("a*b")));
    let err = CompiledVirtualHost::new(
        vhost(
            "bad",
            &["c.com"],
            vec![
                RouteMatch::any(),
                RouteMatch::any().with_path(PathMatch::regex("(")),
            ],
        ),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!((err.virtual_host(), err.route()), (0, Some(1)));
    // On its own, the virtual host has no index to name.
    assert!(
        err.to_string().starts_with("route 1, path: invalid regex"),
        "{err}"
    );
    assert!(Router::<u32>::empty().virtual_hosts().is_empty());
}

// === conditions, one route at a time ===

struct Case {
    name: &'static str,
    route: RouteMatch,
    method: &'static str,
    authority: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    matches: bool,
}

fn case(name: &'static str, route: RouteMatch, path: &'static str, matches: bool) -> Case {
    Case {
        name,
        route,
        method: "GET",
        authority: "example.com",
        path,
        headers: &[],
        matches,
    }
}

fn with_headers(mut c: Case, headers: &'static [(&'static str, &'static str)]) -> Case {
    c.headers = headers;
    c
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let t = build(vec![vhost("v", &["*"], vec![c.route.clone()])]);
        let list =
            RequestHead::new(c.method, "https", c.authority, c.path).with_header_list(c.headers);
        let mut map = http::HeaderMap::new();
        for (k, v) in c.headers {
            // Pseudo-headers cannot be in a `HeaderMap`; the list form covers them.
            if let Ok(name) = http::HeaderName::from_bytes(k.as_bytes()) {
                map.append(name, http::HeaderValue::from_str(v).unwrap());
            }
        }
        let mapped = RequestHead::new(c.method, "https", c.authority, c.path).with_header_map(&map);
        for req in [list, mapped] {
            let got = t.pick(&req).is_ok();
            assert_eq!(
                got,
                c.matches,
                "{}: {:?}\n{}",
                c.name,
                req,
                t.router.explain(&req)
            );
        }
    }
}

fn path(p: PathMatch) -> RouteMatch {
    RouteMatch::any().with_path(p)
}

#[test]
fn path_conditions() {
    run(vec![
        case(
            "exact matches equal path",
            path(PathMatch::exact("/a")),
            "/a",
            true,
        ),
        case(
            "exact ignores the query",
            path(PathMatch::exact("/a")),
            "/a?x=1",
            true,
        ),
        case(
            "exact ignores the fragment",
            path(PathMatch::exact("/a")),
            "/a#top",
            true,
        ),
        case(
            "exact rejects a longer path",
            path(PathMatch::exact("/a")),
            "/a/",
            false,
        ),
        case(
            "exact is case-sensitive",
            path(PathMatch::exact("/a")),
            "/A",
            false,
        ),
        case(
            "exact ignore_case",
            path(PathMatch::exact("/a/B").ignore_case(true)),
            "/A/b",
            true,
        ),
        case(
            "prefix is a plain string prefix",
            path(PathMatch::prefix("/foo")),
            "/foobar",
            true,
        ),
        case(
            "prefix rejects a shorter path",
            path(PathMatch::prefix("/foo")),
            "/fo",
            false,
        ),
        case(
            "prefix does not see the query",
            path(PathMatch::prefix("/a?b")),
            "/a?b",
            false,
        ),
        case(
            "prefix is case-sensitive",
            path(PathMatch::prefix("/api")),
            "/API/x",
            false,
        ),
        case(
            "prefix ignore_case",
            path(PathMatch::prefix("/api").ignore_case(true)),
            "/API/x",
            true,
        ),
        case(
            "prefix ignore_case short path",
            path(PathMatch::prefix("/api").ignore_case(true)),
            "/A",
            false,
        ),
        case(
            "empty prefix matches everything",
            path(PathMatch::prefix("")),
            "",
            true,
        ),
        case(
            "regex must match the whole path",
            path(PathMatch::regex("/a")),
            "/a/b",
            false,
        ),
        case(
            "regex full match",
            path(PathMatch::regex("/a/[0-9]+")),
            "/a/42",
            true,
        ),
        case(
            "regex alternation is anchored as a whole",
            path(PathMatch::regex("/a|/b")),
            "/b/c",
            false,
        ),
        case(
            "regex does not see the query",
            path(PathMatch::regex("/a.*")),
            "/ab?q=1",
            true,
        ),
        case(
            "regex query chars excluded",
            path(PathMatch::regex(".*q=1")),
            "/a?q=1",
            false,
        ),
        case(
            "regex is case-sensitive (ignore_case not applied)",
            path(PathMatch::regex("/a").ignore_case(true)),
            "/A",
            false,
        ),
        case(
            "regex (?i) flag",
            path(PathMatch::regex("(?i)/a")),
            "/A",
            true,
        ),
        case(
            "no path condition matches an empty path",
            RouteMatch::any(),
            "",
            true,
        ),
    ]);
}

#[test]
fn regex_build_errors_are_values() {
    let table =
        |p: &str| RouteTable::new(vec![vhost("v", &["*"], vec![path(PathMatch::regex(p))])]);
    // A pattern cannot break out of the anchoring group.
    for bad in ["a)|(b", "(", "a)", "[", "\\"] {
        let err = Router::new(table(bad)).unwrap_err();
        assert_eq!(
            (err.route(), err.condition(), err.pattern()),
            (Some(0), Some(Condition::Path), Some(bad))
        );
        assert!(
            err.regex_error().is_some() && !err.is_size_limit_exceeded(),
            "{err}"
        );
        assert!(Reference::new(table(bad)).is_err());
    }
    let hostile = "((a{100}){100}){100}";
    let err = Router::new(table(hostile)).unwrap_err();
    assert!(err.is_size_limit_exceeded(), "{err}");
    let err = Router::with_options(
        table("[a-z]{500}"),
        &Options::default().regex_size_limit(1000),
    )
    .unwrap_err();
    assert!(err.is_size_limit_exceeded(), "{err}");
    // Header and query regexes are located too.
    let t = RouteTable::new(vec![vhost(
        "v",
        &["*"],
        vec![
            RouteMatch::any(),
            RouteMatch::any()
                .with_header(HeaderMatch::new("a", ValueMatch::Regex("x".into())))
                .with_query_param(QueryParamMatch::new("q", ValueMatch::Regex("(".into()))),
        ],
    )]);
    let err = Router::new(t).unwrap_err();
    assert_eq!(
        (err.route(), err.condition()),
        (Some(1), Some(Condition::QueryParam(0)))
    );
}

fn header(name: &str, m: ValueMatch) -> RouteMatch {
    RouteMatch::any().with_header(HeaderMatch::new(name, m))
}

fn without(name: &str, m: ValueMatch) -> RouteMatch {
    RouteMatch::any().with_header(HeaderMatch::without(name, m))
}

fn exact(s: &str) -> ValueMatch {
    ValueMatch::Exact(s.into())
}

#[test]
fn header_conditions() {
    use ValueMatch::{Prefix, Present, Regex};
    run(vec![
        with_headers(
            case("exact value", header("x-user", exact("alice")), "/", true),
            &[("x-user", "alice")],
        ),
        with_headers(
            case(
                "header name is case-insensitive",
                header("X-User", exact("alice")),
                "/",
                true,
            ),
            &[("x-USER", "alice")],
        ),
        with_headers(
            case(
                "value is case-sensitive",
                header("x-user", exact("alice")),
                "/",
                false,
            ),
            &[("x-user", "Alice")],
        ),
        case(
            "missing header never matches exact",
            header("x-user", exact("")),
            "/",
            false,
        ),
        case(
            "missing header never matches regex .*",
            header("x-user", Regex(".*".into())),
            "/",
            false,
        ),
        case(
            "missing header never matches present",
            header("x-user", Present),
            "/",
            false,
        ),
        with_headers(
            case(
                "present matches an empty value",
                header("x", Present),
                "/",
                true,
            ),
            &[("x", "")],
        ),
        with_headers(
            case(
                "exact empty means present and empty",
                header("x", exact("")),
                "/",
                true,
            ),
            &[("x", "")],
        ),
        with_headers(
            case(
                "exact empty rejects a value",
                header("x", exact("")),
                "/",
                false,
            ),
            &[("x", "v")],
        ),
        with_headers(
            case(
                "repeated values are joined with a comma",
                header("x", exact("a,b")),
                "/",
                true,
            ),
            &[("x", "a"), ("x", "b")],
        ),
        with_headers(
            case(
                "joined value is not the first value",
                header("x", exact("a")),
                "/",
                false,
            ),
            &[("x", "a"), ("x", "b")],
        ),
        with_headers(
            case(
                "prefix over joined values",
                header("x", Prefix("a,b".into())),
                "/",
                true,
            ),
            &[("x", "a"), ("x", "bc")],
        ),
        with_headers(
            case(
                "regex over joined values",
                header("x", Regex("a,[a-z]+".into())),
                "/",
                true,
            ),
            &[("x", "a"), ("x", "bc")],
        ),
        with_headers(
            case(
                "regex is a full match",
                header("x", Regex("b".into())),
                "/",
                false,
            ),
            &[("x", "abc")],
        ),
        with_headers(
            case("prefix value", header("x", Prefix("ab".into())), "/", true),
            &[("x", "abc")],
        ),
        with_headers(
            case(
                "other headers do not count",
                header("x", Present),
                "/",
                false,
            ),
            &[("y", "1")],
        ),
        case(
            ":method pseudo-header",
            header(":method", exact("GET")),
            "/",
            true,
        ),
        case(
            ":scheme pseudo-header",
            header(":scheme", exact("https")),
            "/",
            true,
        ),
        case(
            ":authority pseudo-header",
            header(":authority", exact("example.com")),
            "/",
            true,
        ),
        Case {
            authority: "example.com:8080",
            ..case(
                ":authority keeps the port",
                header(":authority", exact("example.com")),
                "/",
                false,
            )
        },
        case(
            ":path includes the query",
            header(":path", exact("/a?b=1")),
            "/a?b=1",
            true,
        ),
        case(
            "unknown pseudo-header is never present",
            header(":protocol", Present),
            "/",
            false,
        ),
        with_headers(
            case(
                "pseudo-header in the list is ignored",
                header(":method", exact("POST")),
                "/",
                false,
            ),
            &[(":method", "POST")],
        ),
    ]);
}

#[test]
fn inverted_header_conditions() {
    use ValueMatch::{Present, Regex};
    let inverted_no_missing = |m| {
        RouteMatch::any().with_header(HeaderMatch {
            invert: true,
            ..HeaderMatch::new("x", m)
        })
    };
    run(vec![
        case(
            "without exact matches a missing header",
            without("x", exact("a")),
            "/",
            true,
        ),
        with_headers(
            case(
                "without exact matches another value",
                without("x", exact("a")),
                "/",
                true,
            ),
            &[("x", "b")],
        ),
        with_headers(
            case(
                "without exact rejects the value",
                without("x", exact("a")),
                "/",
                false,
            ),
            &[("x", "a")],
        ),
        case(
            "without present matches a missing header",
            without("x", Present),
            "/",
            true,
        ),
        with_headers(
            case(
                "without present rejects any value",
                without("x", Present),
                "/",
                false,
            ),
            &[("x", "")],
        ),
        case(
            "without regex .* matches nothing (missing is empty)",
            without("x", Regex(".*".into())),
            "/",
            false,
        ),
        with_headers(
            case(
                "without regex .* matches nothing (value)",
                without("x", Regex(".*".into())),
                "/",
                false,
            ),
            &[("x", "v")],
        ),
        case(
            "without regex .+ matches a missing header",
            without("x", Regex(".+".into())),
            "/",
            true,
        ),
        case(
            "invert without treat_missing: missing never matches",
            inverted_no_missing(exact("a")),
            "/",
            false,
        ),
        with_headers(
            case(
                "invert without treat_missing: other value matches",
                inverted_no_missing(exact("a")),
                "/",
                true,
            ),
            &[("x", "b")],
        ),
        Case {
            method: "POST",
            ..case(
                "without :method GET on POST",
                without(":method", exact("GET")),
                "/",
                true,
            )
        },
    ]);
}

fn query(name: &str, m: ValueMatch) -> RouteMatch {
    RouteMatch::any().with_query_param(QueryParamMatch::new(name, m))
}

#[test]
fn query_param_conditions() {
    use ValueMatch::{Prefix, Present, Regex};
    run(vec![
        case("exact value", query("q", exact("1")), "/a?q=1", true),
        case(
            "first occurrence wins",
            query("q", exact("2")),
            "/a?q=1&q=2",
            false,
        ),
        case(
            "first occurrence wins (match)",
            query("q", exact("1")),
            "/a?x&q=1&q=2",
            true,
        ),
        case(
            "key without = has an empty value",
            query("q", exact("")),
            "/a?q",
            true,
        ),
        case(
            "key with = and nothing has an empty value",
            query("q", exact("")),
            "/a?q=",
            true,
        ),
        case(
            "missing parameter never matches present",
            query("q", Present),
            "/a?r=1",
            false,
        ),
        case("no query never matches", query("q", Present), "/a", false),
        case("present", query("q", Present), "/a?r&q", true),
        case(
            "values are not decoded",
            query("q", exact("a b")),
            "/a?q=a%20b",
            false,
        ),
        case(
            "raw value matches",
            query("q", exact("a%20b")),
            "/a?q=a%20b",
            true,
        ),
        case(
            "names are not decoded",
            query("q x", Present),
            "/a?q%20x=1",
            false,
        ),
        case(
            "names are case-sensitive",
            query("Q", Present),
            "/a?q=1",
            false,
        ),
        case(
            "fragment is not part of the value",
            query("q", exact("1")),
            "/a?q=1#frag",
            true,
        ),
        case(
            "prefix value",
            query("q", Prefix("ab".into())),
            "/a?q=abc",
            true,
        ),
        case(
            "regex full match",
            query("q", Regex("[0-9]+".into())),
            "/a?q=12x",
            false,
        ),
        case(
            "value may contain =",
            query("q", exact("a=b")),
            "/a?q=a=b",
            true,
        ),
    ]);
}

#[test]
fn all_conditions_are_anded() {
    let m = RouteMatch::any()
        .with_path(PathMatch::prefix("/api"))
        .with_header(HeaderMatch::new(":method", exact("POST")))
        .with_query_param(QueryParamMatch::new("v", exact("2")));
    run(vec![
        Case {
            method: "POST",
            ..case("all hold", m.clone(), "/api?v=2", true)
        },
        case("method fails", m.clone(), "/api?v=2", false),
        Case {
            method: "POST",
            ..case("query fails", m.clone(), "/api?v=1", false)
        },
        Case {
            method: "POST",
            ..case("path fails", m, "/web?v=2", false)
        },
    ]);
}

// === ordering across indexed and scanned routes ===

#[test]
fn first_matching_route_wins_across_index_kinds() {
    let t = build(vec![vhost(
        "v",
        &["*"],
        vec![
            /* 0 */
            path(PathMatch::prefix("/api/")).with_header(HeaderMatch::new("x", Present_())),
            /* 1 */ path(PathMatch::regex("/api/v[0-9]/.*")),
            /* 2 */ path(PathMatch::exact("/api/v1/users")),
            /* 3 */ path(PathMatch::prefix("/api/")),
            /* 4 */ path(PathMatch::prefix("/api/")), // shadowed by 3
            /* 5 */ path(PathMatch::prefix("/API").ignore_case(true)),
            /* 6 */
            path(PathMatch::exact("/only-exact"))
                .with_query_param(QueryParamMatch::new("q", exact("1"))),
            /* 7 */ path(PathMatch::exact("/only-exact")),
            /* 8 */ path(PathMatch::prefix("/")),
        ],
    )]);
    let headers = [("x", "")];
    #[rustfmt::skip]
    let cases: &[(&str, RequestHead<'_>, usize)] = &[
        ("earlier indexed route with extra condition wins", get("h", "/api/v1/users").with_header_list(&headers), 0),
        ("earlier regex beats later exact", get("h", "/api/v1/users"), 1),
        ("exact beats later prefix", get("h", "/api/v10/users"), 3),
        ("prefix when regex fails", get("h", "/api/x"), 3),
        ("ignore-case prefix scanned in order", get("h", "/Api/x"), 5),
        ("exact with query condition", get("h", "/only-exact?q=1"), 6),
        ("exact falls through when extra condition fails", get("h", "/only-exact?q=2"), 7),
        ("catch-all last", get("h", "/zzz"), 8),
    ];
    for (what, req, want) in cases {
        assert_eq!(
            t.pick(req),
            Ok((0, *want)),
            "{what}\n{}",
            t.router.explain(req)
        );
    }
}

#[allow(non_snake_case)]
fn Present_() -> ValueMatch {
    ValueMatch::Present
}

#[test]
fn empty_virtual_host_is_no_route() {
    let t = build(vec![vhost("v", &["a.com"], vec![])]);
    assert_eq!(
        t.pick(&get("a.com", "/")),
        Err(NotFound::NoRoute { virtual_host: 0 })
    );
}

// === explain ===

#[test]
fn explain_names_the_vhost_rule_and_first_failed_condition() {
    let t = build(vec![
        vhost("exact", &["a.com"], vec![]),
        vhost(
            "wild",
            &["*.a.com"],
            vec![
                path(PathMatch::prefix("/api")),
                path(PathMatch::prefix("/v1"))
                    .with_header(HeaderMatch::new("x-user", ValueMatch::Present)),
                path(PathMatch::prefix("/v1"))
                    .with_header(HeaderMatch::new("x-env", exact("prod"))),
                query("debug", ValueMatch::Present),
                RouteMatch::any().with_header(HeaderMatch::without("x-env", ValueMatch::Present)),
                RouteMatch::any(),
            ],
        ),
    ]);
    let headers = [("x-env", "dev")];
    let req = get("www.A.com:8443", "/v1/x?y").with_header_list(&headers);
    let ex = t.router.explain(&req);
    let vh = ex.virtual_host.clone().unwrap();
    assert_eq!(
        (vh.index, vh.kind, vh.domain.as_str()),
        (1, HostMatchKind::SuffixWildcard, "*.a.com")
    );
    assert_eq!(ex.host, "www.a.com");
    let failures: Vec<String> = ex.skipped.iter().map(|s| s.failure.to_string()).collect();
    assert_eq!(
        failures,
        [
            "path prefix /api did not match /v1/x",
            "header x-user: missing",
            "header x-env exact \"prod\" did not match \"dev\"",
            "query param debug: missing",
            "header x-env: present (\"dev\"), expected absent",
        ]
    );
    assert_eq!(ex.skipped[1].failure.condition, Condition::Header(0));
    assert_eq!(ex.chosen.as_ref().map(|c| c.index), Some(5));
    let text = ex.to_string();
    assert!(
        text.contains("virtual host #1 \"wild\" chosen by suffix wildcard *.a.com"),
        "{text}"
    );
    assert!(text.ends_with("route #5 \"wild-r5\" matched"), "{text}");
    t.pick(&req).unwrap();

    let ex = t.router.explain(&get("a.com", "/"));
    assert_eq!(
        ex.virtual_host.as_ref().map(|v| v.kind),
        Some(HostMatchKind::Exact)
    );
    assert!(ex.to_string().ends_with("no route matched (404)"), "{ex}");
    let ex = t.router.explain(&get("b.org", "/"));
    assert!(ex.virtual_host.is_none());
    assert!(
        ex.to_string().ends_with("no virtual host matches (404)"),
        "{ex}"
    );
}

#[test]
fn explain_shows_without_header_with_treat_missing() {
    let t = build(vec![vhost(
        "v",
        &["*"],
        vec![without("x", ValueMatch::Regex(".*".into()))],
    )]);
    let ex = t.router.explain(&get("h", "/"));
    assert_eq!(
        ex.skipped[0].failure.to_string(),
        "header x not regex \".*\": missing (treated as \"\")"
    );
    assert_eq!(
        ex.virtual_host.map(|v| v.kind),
        Some(HostMatchKind::Default)
    );
}

// === http conversions ===

#[test]
fn request_head_from_http_request_uses_host_header_and_path_with_query() {
    let req = http::Request::builder()
        .method("POST")
        .uri("/cart?id=7")
        .header("host", "Shop.example.com:80")
        .header("x-user", "a")
        .header("x-user", "b")
        .body(())
        .unwrap();
    let head = RequestHead::from(&req);
    assert_eq!(
        (head.method(), head.scheme(), head.authority(), head.path()),
        ("POST", "", "Shop.example.com:80", "/cart?id=7")
    );
    let (parts, ()) = req.into_parts();
    let head = RequestHead::from(&parts).with_scheme("https");
    assert_eq!(head.scheme(), "https");
    let t = build(vec![vhost(
        "shop",
        &["shop.example.com"],
        vec![
            header("x-user", exact("a,b")).with_query_param(QueryParamMatch::new("id", exact("7"))),
        ],
    )]);
    assert_eq!(t.pick(&head), Ok((0, 0)));
}

#[test]
fn request_head_from_absolute_uri_takes_authority_and_scheme() {
    let req = http::Request::get("https://a.com:8443/x").body(()).unwrap();
    let head = RequestHead::from(&req);
    assert_eq!(
        (head.scheme(), head.authority(), head.path()),
        ("https", "a.com:8443", "/x")
    );
}

#[test]
fn request_head_query_helpers() {
    let r = get("h", "/p?a=1&b&a=2#f?x");
    assert_eq!(
        (r.path_without_query(), r.query()),
        ("/p", Some("a=1&b&a=2"))
    );
    assert_eq!(
        (r.query_param("a"), r.query_param("b"), r.query_param("c")),
        (Some("1"), Some(""), None)
    );
    let r = get("h", "/p#frag?notquery");
    assert_eq!((r.path_without_query(), r.query()), ("/p", None));
}

#[test]
fn regex_literal_prefix_extraction_for_indexing() {
    use crate::router::regex_literal_prefixes as lit;
    assert_eq!(lit("/api/.*"), Some(vec!["/api/".to_owned()]));
    let mut keys = lit("/(a|b)/.*").unwrap();
    keys.sort();
    assert_eq!(keys, ["/a/", "/b/"]);
    // Patterns that can start anywhere, or are invalid, are scanned instead.
    assert_eq!(lit(".*"), None);
    assert_eq!(lit("[^/]+/x"), None);
    assert_eq!(lit("(a"), None);
    // Case-insensitive literals expand to every case variant.
    assert!(lit("(?i)/a").unwrap().len() >= 2);
}

#[test]
fn regex_indexed_by_literal_prefix_keeps_route_order() {
    let t = build(vec![vhost(
        "v",
        &["*"],
        vec![
            /* 0 */ path(PathMatch::regex("/img/[0-9]+\\.png")),
            /* 1 */ path(PathMatch::prefix("/img/")),
            /* 2 */ path(PathMatch::regex("/(img|css)/.*")),
            /* 3 */ path(PathMatch::regex("(?i)/CSS/x")),
            /* 4 */ path(PathMatch::regex(".*\\.js")),
            /* 5 */ path(PathMatch::prefix("/")),
        ],
    )]);
    #[rustfmt::skip]
    let cases: &[(&str, usize)] = &[
        ("/img/12.png", 0), ("/img/a.png", 1), ("/css/x", 2), ("/Css/x", 3), ("/a.js", 4), ("/css", 5),
    ];
    for (p, want) in cases {
        assert_eq!(t.pick(&get("h", p)), Ok((0, *want)), "{p}");
    }
}

// === SNI ===

#[test]
fn sni_exact_then_longest_wildcard_then_catch_all() {
    let router = SniRouter::new(vec![
        SniRoute::new("exact", ["api.example.com", "API2.example.com"], 0),
        SniRoute::new("wild", ["*.example.com"], 1),
        SniRoute::new("deeper", ["*.eu.example.com"], 2),
        SniRoute::new("dup", ["api.example.com"], 3),
        SniRoute::new("any", Vec::<String>::new(), 4),
        SniRoute::new("star", ["*"], 5),
    ]);
    #[rustfmt::skip]
    let cases: &[(&str, Option<&str>, Option<usize>)] = &[
        ("exact", Some("api.example.com"), Some(0)),
        ("exact is case-insensitive", Some("Api2.Example.COM"), Some(0)),
        ("first route keeps a duplicated name", Some("api.example.com"), Some(0)),
        ("wildcard", Some("www.example.com"), Some(1)),
        ("wildcard matches several labels", Some("a.b.example.com"), Some(1)),
        ("longest wildcard wins", Some("fr.eu.example.com"), Some(2)),
        ("wildcard never matches the apex", Some("example.com"), Some(4)),
        ("wildcard needs a label before the dot", Some(".example.com"), Some(4)),
        ("unknown name takes the first catch-all", Some("other.org"), Some(4)),
        ("no SNI takes the first catch-all", None, Some(4)),
        ("empty SNI is no SNI", Some(""), Some(4)),
    ];
    for (what, sni, want) in cases {
        assert_eq!(router.find(*sni).map(|(i, _)| i), *want, "{what}");
    }
}

#[test]
fn sni_without_catch_all_closes_unknown_and_missing_names() {
    let router = SniRouter::new(vec![SniRoute::new("only", ["a.com", "*-x.a.com"], ())]);
    assert_eq!(router.find(None), None);
    assert_eq!(router.find(Some("b.com")), None);
    // `*` other than a leading `*.` label is literal.
    assert_eq!(router.find(Some("y-x.a.com")), None);
    assert_eq!(router.find(Some("*-x.a.com")).map(|(i, _)| i), Some(0));
    assert_eq!(router.route(0).map(|r| r.name.as_str()), Some("only"));
}
