use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

use crate::action::{DirectResponseAction, ForwardAction};
use crate::decide::ForwardDecision;
use crate::headers::HeaderOps;
use crate::request::RequestHead;
use crate::rt::ThreadRandom;
use crate::tower::{Route, RouteBody, RouteService};

/// Answers with the path it received and the cluster from the decision extension.
#[derive(Clone)]
struct Upstream;

impl Service<Request<Bytes>> for Upstream {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let cluster = request
            .extensions()
            .get::<ForwardDecision>()
            .unwrap()
            .cluster
            .clone();
        ready(Ok(Response::new(format!("{} {}", cluster, request.uri()))))
    }
}

fn call<S>(service: &mut S, path: &str) -> (StatusCode, http::HeaderMap, String)
where
    S: Service<Request<Bytes>, Response = Response<RouteBody<String>>>,
    S::Error: std::fmt::Debug,
{
    let future = service.call(
        Request::builder()
            .uri(path)
            .header("host", "example.com")
            .body(Bytes::new())
            .unwrap(),
    );
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(result) = pin!(future).poll(&mut cx) else {
        panic!("pending")
    };
    let (parts, body) = result.unwrap().into_parts();
    let mut body = pin!(body);
    let mut text = String::new();
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(&mut cx) {
        text.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    (parts.status, parts.headers, text)
}

#[test]
fn route_service_forwards_with_the_decision_and_answers_locally() {
    let forward = Arc::new(Route::new(
        ForwardAction::to_cluster("outbound|80||svc").with_response_headers(
            HeaderOps::new()
                .try_set("x-served-by", "portcullis")
                .unwrap(),
        ),
    ));
    let direct = Arc::new(Route::new(
        DirectResponseAction::new(418, Some("teapot".into())).unwrap(),
    ));
    let route = move |head: &RequestHead| match head.path_without_query() {
        "/api" => Some(forward.clone()),
        "/tea" => Some(direct.clone()),
        _ => None,
    };
    let mut service = RouteService::new(Upstream, route, ThreadRandom);

    let (status, headers, body) = call(&mut service, "/api?x=1");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "outbound|80||svc /api?x=1");
    assert_eq!(headers["x-served-by"], "portcullis");

    let (status, _, body) = call(&mut service, "/tea");
    assert_eq!(status, 418);
    assert_eq!(body, "teapot");

    assert_eq!(call(&mut service, "/nope").0, StatusCode::NOT_FOUND);
}
