use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use tower_service::Service;

use crate::rt::SequenceRandom;
use crate::tower::RouteService;
use crate::{
    action::{DirectResponseAction, ForwardAction, HeaderOps, RouteAction},
    decide::{ForwardDecision, RequestHead},
};

/// Answers with the path it received and the cluster from the decision extension.
#[derive(Clone)]
struct Upstream;

impl Service<Request<Bytes>> for Upstream {
    type Response = Response<Bytes>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Bytes>, Infallible>>;

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
        let body = format!("{} {}", cluster, request.uri());
        ready(Ok(Response::new(Bytes::from(body))))
    }
}

fn call<S: Service<Request<Bytes>, Response = Response<Bytes>>>(
    service: &mut S,
    path: &str,
) -> Response<Bytes>
where
    S::Error: std::fmt::Debug,
{
    let mut future = Box::pin(
        service.call(
            Request::builder()
                .uri(path)
                .header("host", "example.com")
                .body(Bytes::new())
                .unwrap(),
        ),
    );
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result.unwrap(),
        Poll::Pending => panic!("pending"),
    }
}

use std::future::Future;

#[test]
fn route_service_forwards_with_the_decision_and_answers_locally() {
    let forward: Arc<RouteAction> = Arc::new(
        ForwardAction::to_cluster("outbound|80||svc")
            .with_response_headers(
                HeaderOps::new()
                    .try_set("x-served-by", "portcullis")
                    .unwrap(),
            )
            .into(),
    );
    let direct: Arc<RouteAction> = Arc::new(
        DirectResponseAction::new(418, Some("teapot".into()))
            .unwrap()
            .into(),
    );
    let route = move |head: &RequestHead| match head.path_without_query() {
        "/api" => Some(forward.clone()),
        "/tea" => Some(direct.clone()),
        _ => None,
    };
    let mut service = RouteService::new(Upstream, route, SequenceRandom::new([0]));

    let ok = call(&mut service, "/api?x=1");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.body(), "outbound|80||svc /api?x=1");
    assert_eq!(ok.headers()["x-served-by"], "portcullis");

    let tea = call(&mut service, "/tea");
    assert_eq!(tea.status(), 418);
    assert_eq!(tea.body(), "teapot");

    assert_eq!(call(&mut service, "/nope").status(), StatusCode::NOT_FOUND);
}
