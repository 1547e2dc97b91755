//! PERF.md B2: route-lookup scaling, `Router` vs the linear `Reference`.
//!
//! Workloads (N routes in total):
//! * `spread`: N/10 hosts × 10 prefix routes each;
//! * `wildcard`: N/10 wildcard-suffix domains (`*.tK.example.com`) × 10 prefix routes each,
//!   looked up by `x.tK.example.com`;
//! * `hot_host`: 1 host × N prefix routes;
//! * `mixed`: 1 host × N routes, 70% prefix, 20% exact, 10% regex, a header condition on 20%.
//!
//! Each at N ∈ {10, 1000, 10000}, with a request hitting the first, middle or last route, or
//! none (404). Run: `cargo bench -p portcullis-route-match -- --sample-count 20 --max-time 0.5`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::fmt;

use divan::{Bencher, black_box};
use portcullis_route_match::*;

fn main() {
    divan::main();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hit {
    First,
    Middle,
    Last,
    None,
}

#[derive(Clone, Copy)]
struct Case {
    n: usize,
    hit: Hit,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hit = match self.hit {
            Hit::First => "first",
            Hit::Middle => "middle",
            Hit::Last => "last",
            Hit::None => "none",
        };
        write!(f, "{:>5}/{hit}", self.n)
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

const fn c(n: usize, hit: Hit) -> Case {
    Case { n, hit }
}

const CASES: &[Case] = &[
    c(10, Hit::First),
    c(10, Hit::Middle),
    c(10, Hit::Last),
    c(10, Hit::None),
    c(1000, Hit::First),
    c(1000, Hit::Middle),
    c(1000, Hit::Last),
    c(1000, Hit::None),
    c(10000, Hit::First),
    c(10000, Hit::Middle),
    c(10000, Hit::Last),
    c(10000, Hit::None),
];

trait Matcher: Sized {
    fn build(table: RouteTable<usize>) -> Self;
    fn lookup(&self, req: &RequestHead<'_>) -> Option<usize>;
}

impl Matcher for Router<usize> {
    fn build(table: RouteTable<usize>) -> Self {
        Self::new(table).unwrap()
    }
    fn lookup(&self, req: &RequestHead<'_>) -> Option<usize> {
        self.find(req).ok().map(|m| *m.action())
    }
}

impl Matcher for Reference<usize> {
    fn build(table: RouteTable<usize>) -> Self {
        Self::new(table).unwrap()
    }
    fn lookup(&self, req: &RequestHead<'_>) -> Option<usize> {
        self.find(req).ok().map(|m| *m.action())
    }
}

/// The route index (0..n) a case aims at.
fn target(case: Case) -> usize {
    match case.hit {
        Hit::First | Hit::None => 0,
        Hit::Middle => case.n / 2,
        Hit::Last => case.n - 1,
    }
}

/// Runs one lookup benchmark; `expect` is the action the request must select.
fn run<M: Matcher>(
    bencher: Bencher<'_, '_>,
    table: RouteTable<usize>,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    expect: Option<usize>,
) {
    let m = M::build(table);
    let req = RequestHead::new("GET", "https", authority, path).with_header_list(headers);
    assert_eq!(m.lookup(&req), expect, "{authority}{path}");
    bencher.bench_local(|| m.lookup(black_box(&req)));
}

// === spread and wildcard: N/10 hosts × 10 prefix routes ===

/// N/10 virtual hosts named `h{h}` with the one domain `domain(h)`, 10 prefix routes each.
fn hosts_table(n: usize, domain: impl Fn(usize) -> String) -> RouteTable<usize> {
    let hosts = (n / 10).max(1);
    RouteTable::new(
        (0..hosts)
            .map(|h| {
                let routes = (0..10)
                    .map(|r| {
                        let m = RouteMatch::any().with_path(PathMatch::prefix(format!("/svc{r}/")));
                        Route::new(format!("h{h}-r{r}"), m, h * 10 + r)
                    })
                    .collect();
                VirtualHost::new(format!("h{h}"), [domain(h)], routes)
            })
            .collect(),
    )
}

/// A lookup in [`hosts_table`], with the `Host` of host `h` given by `authority(h)`.
fn hosts_bench<M: Matcher>(
    bencher: Bencher<'_, '_>,
    case: Case,
    domain: impl Fn(usize) -> String,
    authority: impl Fn(usize) -> String,
) {
    let t = target(case);
    let (host, route) = (t / 10, t % 10);
    let (path, expect) = match case.hit {
        Hit::None => ("/nothing/here".to_owned(), None),
        _ => (format!("/svc{route}/items/42"), Some(t)),
    };
    let table = hosts_table(case.n, domain);
    run::<M>(bencher, table, &authority(host), &path, &[], expect);
}

/// N/10 exact domains `hK.example.com`.
#[divan::bench(types = [Router<usize>, Reference<usize>], args = CASES)]
fn spread<M: Matcher>(bencher: Bencher<'_, '_>, case: Case) {
    let name = |h: usize| format!("h{h}.example.com");
    hosts_bench::<M>(bencher, case, name, name);
}

/// N/10 wildcard-suffix domains `*.tK.example.com`, looked up by `x.tK.example.com`.
#[divan::bench(types = [Router<usize>, Reference<usize>], args = CASES)]
fn wildcard<M: Matcher>(bencher: Bencher<'_, '_>, case: Case) {
    hosts_bench::<M>(
        bencher,
        case,
        |h| format!("*.t{h}.example.com"),
        |h| format!("x.t{h}.example.com"),
    );
}

// === hot host: 1 host × N prefix routes ===

fn hot_table(n: usize) -> RouteTable<usize> {
    let routes = (0..n)
        .map(|r| {
            let m = RouteMatch::any().with_path(PathMatch::prefix(format!("/r{r}/")));
            Route::new(format!("r{r}"), m, r)
        })
        .collect();
    RouteTable::new(vec![VirtualHost::new("hot", ["hot.example.com"], routes)])
}

#[divan::bench(types = [Router<usize>, Reference<usize>], args = CASES)]
fn hot_host<M: Matcher>(bencher: Bencher<'_, '_>, case: Case) {
    let t = target(case);
    let (path, expect) = match case.hit {
        Hit::None => ("/nothing/here".to_owned(), None),
        _ => (format!("/r{t}/items/42"), Some(t)),
    };
    run::<M>(
        bencher,
        hot_table(case.n),
        "hot.example.com",
        &path,
        &[],
        expect,
    );
}

// === mixed: 70% prefix, 20% exact, 10% regex; header condition on 20% ===

fn mixed_table(n: usize) -> RouteTable<usize> {
    let routes = (0..n)
        .map(|r| {
            let mut m = RouteMatch::any().with_path(match r % 10 {
                0..=6 => PathMatch::prefix(format!("/m{r}/")),
                7 | 8 => PathMatch::exact(format!("/m{r}")),
                _ => PathMatch::regex(format!("/m{r}/[0-9]+")),
            });
            if r % 5 == 0 {
                m = m.with_header(HeaderMatch::new(
                    "x-tenant",
                    ValueMatch::Exact(format!("t{r}")),
                ));
            }
            Route::new(format!("r{r}"), m, r)
        })
        .collect();
    RouteTable::new(vec![VirtualHost::new(
        "mixed",
        ["mixed.example.com"],
        routes,
    )])
}

#[divan::bench(types = [Router<usize>, Reference<usize>], args = CASES)]
fn mixed<M: Matcher>(bencher: Bencher<'_, '_>, case: Case) {
    let t = target(case);
    let path = match (case.hit, t % 10) {
        (Hit::None, _) => "/nothing/here".to_owned(),
        (_, 0..=6) => format!("/m{t}/items"),
        (_, 7 | 8) => format!("/m{t}"),
        _ => format!("/m{t}/42"),
    };
    let tenant = format!("t{t}");
    let headers = [("x-tenant", tenant.as_str())];
    let expect = (case.hit != Hit::None).then_some(t);
    run::<M>(
        bencher,
        mixed_table(case.n),
        "mixed.example.com",
        &path,
        &headers,
        expect,
    );
}

// === build cost ===

#[divan::bench(args = [1000, 10000])]
fn build_router_mixed(bencher: Bencher<'_, '_>, n: usize) {
    bencher
        .with_inputs(|| mixed_table(n))
        .bench_local_values(|t| Router::new(t).unwrap());
}
