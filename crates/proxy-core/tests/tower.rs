//! The tower adapter behind hyper-util's `TowerToHyperService`, which clones the service for
//! every request: weighted splits, hash policies, `require_tls` and local replies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use hyper::service::Service as _;
use hyper_util::service::TowerToHyperService;
use portcullis_proxy_core::rt::AtomicRandom;
use portcullis_proxy_core::tower::{Route, RouteBody, RouteLayer};
use portcullis_proxy_core::{
    action::{Destination, DirectResponseAction, ForwardAction},
    decide::{ForwardDecision, RequestHead},
    lb::{ConnectionAddresses, CookieHash, HashPolicy, RequestHash},
};
use tower_layer::Layer;
use tower_service::Service;

/// The upstream: answers with the cluster the decision picked, the path it received and the
/// request hash it was given, as a `Full` body (not the request's body type).
#[derive(Clone)]
struct Upstream;

impl Service<Request<String>> for Upstream {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        let decision = request.extensions().get::<ForwardDecision>().unwrap();
        let hash = request
            .extensions()
            .get::<RequestHash>()
            .and_then(|h| h.hash);
        let text = format!(
            "{} {} {hash:?} {}",
            decision.cluster,
            request.uri(),
            request.body()
        );
        ready(Ok(Response::new(Full::new(Bytes::from(text)))))
    }
}

/// Polls a future that is ready at once (the upstream answers without waiting).
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("pending"),
    }
}

/// Reads a body that is ready at once.
fn text<B: Body<Data = Bytes>>(body: B) -> String
where
    B::Error: std::fmt::Debug,
{
    let mut body = pin!(body);
    let mut out = Vec::new();
    while let Poll::Ready(Some(frame)) = body
        .as_mut()
        .poll_frame(&mut Context::from_waker(Waker::noop()))
    {
        if let Ok(data) = frame.unwrap().into_data() {
            out.extend_from_slice(&data);
        }
    }
    String::from_utf8(out).unwrap()
}

fn request(host: &str, path: &str) -> Request<String> {
    Request::builder()
        .uri(path)
        .header("host", host)
        .body("payload".to_owned())
        .unwrap()
}

type Hyper<F> =
    TowerToHyperService<portcullis_proxy_core::tower::RouteService<Upstream, F, Arc<AtomicRandom>>>;

fn hyper_service<F>(route: F, seed: u64) -> Hyper<F>
where
    F: Fn(&RequestHead) -> Option<Arc<Route>> + Clone,
{
    let layer = RouteLayer::new(route).with_random(Arc::new(AtomicRandom::new(seed)));
    TowerToHyperService::new(layer.layer(Upstream))
}

fn get<F>(service: &Hyper<F>, request: Request<String>) -> Response<RouteBody<Full<Bytes>>>
where
    F: Fn(&RequestHead) -> Option<Arc<Route>> + Clone,
{
    now(service.call(request)).unwrap()
}

#[test]
fn a_weighted_split_holds_when_hyper_clones_the_service_per_request() {
    let split = Arc::new(Route::new(
        ForwardAction::new(vec![Destination::new("v1", 80), Destination::new("v2", 20)]).unwrap(),
    ));
    for seed in [1, 2, 3] {
        let route = {
            let split = Arc::clone(&split);
            move |_: &RequestHead| Some(Arc::clone(&split))
        };
        let service = hyper_service(route, seed);
        let total = 2000;
        let mut v1 = 0;
        let mut v2 = 0;
        for _ in 0..total {
            let response = get(&service, request("shop.example", "/reviews"));
            assert_eq!(response.status(), StatusCode::OK);
            assert!(!response.body().is_local());
            match text(response.into_body()).split(' ').next().unwrap() {
                "v1" => v1 += 1,
                "v2" => v2 += 1,
                other => panic!("unexpected cluster {other}"),
            }
        }
        assert_eq!(v1 + v2, total);
        let share = |n: i32| f64::from(n) / f64::from(total) * 100.0;
        assert!(
            (77.0..=83.0).contains(&share(v1)),
            "seed {seed}: v1 {}%",
            share(v1)
        );
        assert!(
            (17.0..=23.0).contains(&share(v2)),
            "seed {seed}: v2 {}%",
            share(v2)
        );
    }
}

#[test]
fn the_hash_policy_reaches_the_upstream_and_a_minted_cookie_the_client() {
    let cookie = CookieHash {
        name: "session".into(),
        path: "/".into(),
        ttl: Some(Duration::from_secs(60)),
        attributes: vec![],
    };
    let by_header = Arc::new(
        Route::new(ForwardAction::to_cluster("sticky"))
            .with_hash_policy([HashPolicy::Header("x-user".parse().unwrap())]),
    );
    let by_cookie = Arc::new(
        Route::new(ForwardAction::to_cluster("cookie"))
            .with_hash_policy([HashPolicy::Cookie(cookie)]),
    );
    let plain = Arc::new(Route::new(ForwardAction::to_cluster("plain")));
    let route = move |head: &RequestHead| {
        Some(Arc::clone(match head.path_without_query() {
            "/header" => &by_header,
            "/cookie" => &by_cookie,
            _ => &plain,
        }))
    };
    let service = hyper_service(route, 9);

    let hashed = |user: &str| {
        let mut r = request("shop.example", "/header");
        r.headers_mut().insert("x-user", user.parse().unwrap());
        text(get(&service, r).into_body())
    };
    let jason = hashed("jason");
    assert!(jason.starts_with("sticky /header Some("), "{jason}");
    assert_eq!(hashed("jason"), jason, "the same key, the same hash");
    assert_ne!(hashed("ana"), jason);

    // No policy: no hash extension.
    let plain = text(get(&service, request("shop.example", "/")).into_body());
    assert_eq!(plain, "plain / None payload");

    // A cookie policy without the cookie mints one from the connection's addresses.
    let mut r = request("shop.example", "/cookie");
    r.extensions_mut().insert(ConnectionAddresses {
        remote: Some(SocketAddr::from(([10, 0, 0, 1], 5555))),
        local: Some(SocketAddr::from(([10, 0, 0, 2], 443))),
    });
    let response = get(&service, r);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.starts_with("session=\""), "{set_cookie}");
    assert!(text(response.into_body()).starts_with("cookie /cookie Some("));
}

#[test]
fn require_tls_redirects_plaintext_and_serves_the_tls_listener() {
    let secure = Arc::new(Route::new(ForwardAction::to_cluster("secure")).with_require_tls(true));
    let route = move |_: &RequestHead| Some(Arc::clone(&secure));

    let plaintext = hyper_service(route.clone(), 1);
    let response = get(&plaintext, request("shop.example", "/a?b=c"));
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()["location"], "https://shop.example/a?b=c");
    assert!(response.body().is_local());

    let layer = RouteLayer::new(route)
        .with_random(Arc::new(AtomicRandom::new(1)))
        .with_scheme(Scheme::HTTPS)
        .with_server_port(443);
    let tls = TowerToHyperService::new(layer.layer(Upstream));
    let response = now(tls.call(request("shop.example", "/a?b=c"))).unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response.into_body()), "secure /a?b=c None payload");
}

#[test]
fn local_replies_carry_their_body_and_no_route_is_a_404() {
    let direct = Arc::new(Route::new(
        DirectResponseAction::new(418, Some(Bytes::from_static(b"teapot"))).unwrap(),
    ));
    let route = move |head: &RequestHead| {
        (head.path_without_query() == "/tea").then(|| Arc::clone(&direct))
    };
    let service = hyper_service(route, 1);

    let tea = get(&service, request("shop.example", "/tea"));
    assert_eq!(tea.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(tea.body().size_hint().exact(), Some(6));
    assert_eq!(text(tea.into_body()), "teapot");

    let none = get(&service, request("shop.example", "/nope"));
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
    assert!(none.body().is_end_stream());
    assert_eq!(text(none.into_body()), "");
}
