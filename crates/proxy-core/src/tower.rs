//! A [`tower_service::Service`] adapter (feature `tower`): route decisions in front of an
//! upstream service.
//!
//! [`RouteService`] looks the request's route up with a function you supply (for example
//! backed by the `route-match` crate), runs [`crate::decide`](crate::decide()), and then either
//! answers locally (redirect, direct response, fault abort, CORS preflight, no route → 404) or
//! rewrites the request as the decision says and calls the inner service, attaching the
//! [`ForwardDecision`] as a request extension (the inner service reads the cluster, timeouts,
//! retry policy and mirrors from it) and applying the decision's response edits to the
//! inner service's response.
//!
//! It is deliberately thin: it owns no timer, so fault delays are **not** applied (the
//! delay is in the extension for a forwarded request; local replies are sent at once), and
//! it does not load balance, retry or mirror: that is the inner service's job, for example
//! with [`RetryState`](crate::retry::RetryState).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use tower_service::Service;

use crate::rt::RandomSource;
use crate::{
    action::RouteAction,
    decide,
    decide::{Decision, ForwardDecision, RequestHead, ResponseEdits},
    fault::AbortStatus,
};

/// Runs route decisions in front of `inner`; see the [module documentation](self).
///
/// `route` maps a request head to its route's action (`None`: no route, answered `404`);
/// `random` is the random source decisions draw from.
#[derive(Debug, Clone)]
pub struct RouteService<S, F, R> {
    inner: S,
    route: F,
    random: R,
}

impl<S, F, R> RouteService<S, F, R> {
    /// Wraps `inner`.
    pub fn new(inner: S, route: F, random: R) -> Self {
        Self {
            inner,
            route,
            random,
        }
    }

    /// The inner service.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S, F, R, B, RB> Service<Request<B>> for RouteService<S, F, R>
where
    S: Service<Request<B>, Response = Response<RB>>,
    F: Fn(&RequestHead) -> Option<Arc<RouteAction>>,
    R: RandomSource,
    RB: From<Bytes> + Default,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = RouteFuture<S::Future, RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let head = RequestHead::from_parts(&parts);
        let Some(action) = (self.route)(&head) else {
            return RouteFuture::ready(local(StatusCode::NOT_FOUND, HeaderMap::new(), None));
        };
        let forward = match decide(&action, &head, &mut self.random) {
            Decision::Forward(forward) => forward,
            Decision::Redirect(r) => return RouteFuture::ready(local(r.status, r.headers, None)),
            Decision::DirectResponse(d) => {
                return RouteFuture::ready(local(d.status, d.headers, d.body));
            }
            Decision::CorsPreflight(c) => {
                return RouteFuture::ready(local(c.status, c.headers, None));
            }
            Decision::FaultAbort(f) => return RouteFuture::ready(abort(f.abort)),
        };
        parts.method = forward.upstream.method.clone();
        let mut headers = forward.upstream.headers.clone();
        if let Ok(host) = HeaderValue::from_str(&forward.upstream.authority) {
            headers.insert(HOST, host);
        }
        parts.headers = headers;
        if let Ok(uri) = forward.upstream.path.parse::<Uri>() {
            parts.uri = uri;
        }
        let edits = forward.response.clone();
        parts.extensions.insert::<ForwardDecision>(forward);
        let future = self.inner.call(Request::from_parts(parts, body));
        RouteFuture {
            state: State::Inner {
                future: Box::pin(future),
                edits,
            },
        }
    }
}

fn local<RB: From<Bytes> + Default>(
    status: StatusCode,
    headers: HeaderMap,
    body: Option<Bytes>,
) -> Response<RB> {
    let mut response = Response::new(body.map(RB::from).unwrap_or_default());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn abort<RB: From<Bytes> + Default>(status: AbortStatus) -> Response<RB> {
    match status {
        AbortStatus::Http(status) => local(status, HeaderMap::new(), None),
        AbortStatus::Grpc(code) => {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", HeaderValue::from(code));
            local(StatusCode::OK, headers, None)
        }
    }
}

/// The future of [`RouteService`].
pub struct RouteFuture<F, RB> {
    state: State<F, RB>,
}

impl<F, RB> std::fmt::Debug for RouteFuture<F, RB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteFuture").finish_non_exhaustive()
    }
}

// Nothing is structurally pinned: the inner future is boxed and the response is moved out.
impl<F, RB> Unpin for RouteFuture<F, RB> {}

enum State<F, RB> {
    Ready(Option<Response<RB>>),
    Inner {
        future: Pin<Box<F>>,
        edits: ResponseEdits,
    },
}

impl<F, RB> RouteFuture<F, RB> {
    fn ready(response: Response<RB>) -> Self {
        Self {
            state: State::Ready(Some(response)),
        }
    }
}

impl<F, RB, E> Future for RouteFuture<F, RB>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            State::Inner { future, edits } => match future.as_mut().poll(cx) {
                Poll::Ready(Ok(mut response)) => {
                    edits.apply(response.headers_mut());
                    Poll::Ready(Ok(response))
                }
                other => other,
            },
        }
    }
}
