//! A lookup allocates nothing on the heap: host lower-casing, indexes and matching all work on
//! borrowed data. Counted with a counting global allocator.

#![allow(clippy::unwrap_used)]

use portcullis_route_match::{
    HeaderMatch, PathMatch, QueryParamMatch, RequestHead, Route, RouteMatch, RouteTable, Router,
    ValueMatch, VirtualHost,
};

fn table(n: usize) -> RouteTable<usize> {
    let mut shop = Vec::new();
    for r in 0..n {
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
        if r % 7 == 0 {
            m = m.with_query_param(QueryParamMatch::new("v", ValueMatch::Present));
        }
        shop.push(Route::new(format!("r{r}"), m, r));
    }
    shop.push(Route::new(
        "all",
        RouteMatch::any().with_path(PathMatch::prefix("/")),
        n,
    ));
    RouteTable::new(vec![
        VirtualHost::new("shop", ["shop.example.com", "*.shop.example.com"], shop),
        VirtualHost::new("default", ["*"], vec![]),
    ])
}

#[test]
fn lookups_do_not_allocate() {
    let router = Router::new(table(1000)).unwrap();
    let headers = [("x-tenant", "t500"), ("accept", "text/html")];
    let requests = [
        RequestHead::new("GET", "https", "shop.example.com", "/m500/items?v"),
        RequestHead::new("GET", "https", "SHOP.Example.com:8443", "/m997"),
        RequestHead::new("GET", "https", "eu.shop.example.com", "/m999/42"),
        RequestHead::new("GET", "https", "shop.example.com", "/nothing/here"),
        RequestHead::new("GET", "https", "other.example.org", "/"),
    ];
    let mut found = 0;
    // The first regex search on a thread fills the regex crate's reusable scratch space; what is
    // measured is the steady state, every lookup after that.
    for req in &requests {
        let _ = router.find(&(*req).with_header_list(&headers));
    }
    let info = allocation_counter::measure(|| {
        for req in &requests {
            let req = (*req).with_header_list(&headers);
            found += usize::from(router.find(&req).is_ok());
        }
    });
    assert_eq!(
        found, 4,
        "four requests find a route, the last one a 404 vhost"
    );
    assert_eq!(info.count_total, 0, "lookups allocated: {info:?}");
}
