//! A [`tower_service::Service`] adapter (feature `tower`): route decisions in front of an
//! upstream service.
//!
//! [`RouteService`] looks the request's [`Route`] up with a function you supply (for example
//! backed by the `route-match` crate), redirects a plaintext request when the route's virtual
//! host requires TLS, evaluates the route's consistent-hash policy, runs [`crate::decide`](crate::decide()),
//! and then either answers locally (redirect, direct response, fault abort, CORS preflight,
//! no route → 404) or rewrites the request as the decision says and calls the inner service.
//! The inner service finds the [`ForwardDecision`] (cluster, timeouts, retry policy, mirrors)
//! and, for a route with a hash policy, the [`RequestHash`] among the request's extensions;
//! the decision's response edits (and a minted hash cookie) are applied to its response.
//! [`RouteLayer`] makes the same service as a [`tower_layer::Layer`].
//!
//! Request bodies are passed through untouched, so any body type works; the inner service's
//! response body can be any [`http_body::Body`] whose data type can be made from [`Bytes`]
//! (every body whose data is `Bytes`, hyper's `Incoming` among them): responses are
//! [`RouteBody`], the inner body or a local reply's.
//!
//! # Randomness when the service is cloned
//!
//! Servers clone a tower service per connection or per request (hyper-util's
//! `TowerToHyperService` clones it for every request). A generator held by value in each clone
//! would start every request from the same state and draw the same value, so a weighted
//! route would always pick the same destination. The random source is therefore a
//! [`SharedRandom`]: one whose clones draw from one sequence. The default,
//! [`ThreadRandom`], keeps a generator per thread (no lock and no shared cache line per
//! draw, not reproducible); [`Arc<AtomicRandom>`](AtomicRandom) shares one seeded generator
//! between every clone and thread (reproducible for one thread, one atomic add per draw).
//!
//! It is deliberately thin: it owns no timer, so fault delays are **not** applied (the
//! delay is in the extension for a forwarded request; local replies are sent at once), and
//! it does not load balance, retry or mirror: that is the inner service's job, for example
//! with [`RetryState`](crate::retry::RetryState).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue, SET_COOKIE};
use http::uri::Scheme;
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use tower_service::Service;

use crate::action::RouteAction;
use crate::decide;
use crate::decide::{Decision, ForwardDecision};
use crate::fault::AbortStatus;
use crate::headers::ResponseEdits;
use crate::lb::{ConnectionAddresses, HashPolicy, RequestHash, hash_request};
use crate::redirect::require_tls_redirect;
use crate::request::RequestHead;
use crate::rt::{AtomicRandom, RandomSource, ThreadRandom};

// === Route ===

/// What the route function returns for a request: the route's action, its consistent-hash
/// policy and whether its virtual host requires TLS.
///
/// These are the three things a gateway reads from a matched route before it decides: in
/// `portcullis-translate`'s plan, `HttpRoute::action`, `HttpRoute::hash_policy` (converted
/// with `HashPolicy::to_proxy_core`) and the route configuration's `require_tls` entry for
/// the route's virtual host (a Gateway server with `httpsRedirect`).
///
/// ```
/// use portcullis_proxy_core::{action::ForwardAction, lb::HashPolicy, tower::Route};
///
/// let route = Route::new(ForwardAction::to_cluster("outbound|80||reviews"))
///     .with_hash_policy([HashPolicy::SourceIp])
///     .with_require_tls(true);
/// assert!(route.require_tls);
/// assert_eq!(route.hash_policy, [HashPolicy::SourceIp]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Route {
    /// What the route does.
    pub action: RouteAction,
    /// Consistent-hash policies, evaluated in order ([`hash_request`]); empty for none.
    pub hash_policy: Vec<HashPolicy>,
    /// Whether the route's virtual host answers plaintext requests with a redirect to
    /// `https` ([`require_tls_redirect`]).
    pub require_tls: bool,
}

impl Route {
    /// A route with `action`, no hash policy, TLS not required.
    pub fn new(action: impl Into<RouteAction>) -> Self {
        Self {
            action: action.into(),
            hash_policy: Vec::new(),
            require_tls: false,
        }
    }

    /// With these consistent-hash policies.
    #[must_use]
    pub fn with_hash_policy(mut self, policy: impl IntoIterator<Item = HashPolicy>) -> Self {
        self.hash_policy = policy.into_iter().collect();
        self
    }

    /// With TLS required (or not) by the route's virtual host.
    #[must_use]
    pub const fn with_require_tls(mut self, require_tls: bool) -> Self {
        self.require_tls = require_tls;
        self
    }
}

impl From<RouteAction> for Route {
    fn from(action: RouteAction) -> Self {
        Self::new(action)
    }
}

// === SharedRandom ===

/// A [`RandomSource`] whose clones draw from one sequence, so that a service cloned per
/// request or per connection still draws a new value for every request (see the
/// [module documentation](self#randomness-when-the-service-is-cloned)).
///
/// Implemented for [`ThreadRandom`], `Arc<AtomicRandom>` and `&'static AtomicRandom`.
/// Implement it for your own source only if its clones share their state: a generator
/// cloned by value ([`SplitMix64`](crate::rt::SplitMix64)) would replay the same draws.
pub trait SharedRandom: RandomSource + Clone {}

impl SharedRandom for ThreadRandom {}
impl SharedRandom for Arc<AtomicRandom> {}
impl SharedRandom for &'static AtomicRandom {}

// === RouteLayer ===

/// A [`tower_layer::Layer`] that wraps a service in a [`RouteService`].
///
/// Here the route's virtual host requires TLS, so the plaintext listener answers with a
/// redirect and the upstream is never called:
///
/// ```
/// use std::future::Future;
/// use std::pin::pin;
/// use std::sync::Arc;
/// use std::task::{Context, Poll, Waker};
/// use http::{Request, StatusCode};
/// use portcullis_proxy_core::{action::ForwardAction, decide::RequestHead, rt::AtomicRandom};
/// use portcullis_proxy_core::tower::{Route, RouteLayer};
/// use tower_layer::Layer;
/// use tower_service::Service;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[derive(Clone)]
/// # struct NeverCalled;
/// # impl Service<Request<String>> for NeverCalled {
/// #     type Response = http::Response<String>;
/// #     type Error = std::convert::Infallible;
/// #     type Future = std::future::Pending<Result<Self::Response, Self::Error>>;
/// #     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
/// #         Poll::Ready(Ok(()))
/// #     }
/// #     fn call(&mut self, _: Request<String>) -> Self::Future { unreachable!("a local reply") }
/// # }
///
/// let route = Arc::new(Route::new(ForwardAction::to_cluster("shop")).with_require_tls(true));
/// let layer = RouteLayer::new(move |_: &RequestHead| Some(Arc::clone(&route)))
///     .with_random(Arc::new(AtomicRandom::new(7)));
/// let mut service = layer.layer(NeverCalled);
///
/// let request = Request::builder().uri("/cart").header("host", "shop.example").body(String::new())?;
/// let Poll::Ready(Ok(response)) =
///     pin!(service.call(request)).poll(&mut Context::from_waker(Waker::noop()))
/// else {
///     unreachable!("a local reply is ready at once")
/// };
/// assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
/// assert_eq!(response.headers()["location"], "https://shop.example/cart");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RouteLayer<F, R = ThreadRandom> {
    route: F,
    random: R,
    listener: Listener,
}

impl<F> RouteLayer<F> {
    /// A layer looking routes up with `route` (`None`: no route, answered `404`), drawing
    /// from [`ThreadRandom`].
    pub const fn new(route: F) -> Self {
        Self {
            route,
            random: ThreadRandom,
            listener: Listener::NONE,
        }
    }
}

impl<F, R> RouteLayer<F, R> {
    /// Draws from `random` instead.
    pub fn with_random<R2: SharedRandom>(self, random: R2) -> RouteLayer<F, R2> {
        RouteLayer {
            route: self.route,
            random,
            listener: self.listener,
        }
    }

    /// The scheme requests arrive with on the listener the service serves (`https` behind
    /// TLS); by default the request URI's, else `http`. Decides `require_tls` redirects and
    /// the scheme other redirects keep.
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.listener.scheme = Some(scheme);
        self
    }

    /// The port of the listener the service serves, for redirects that keep it.
    #[must_use]
    pub const fn with_server_port(mut self, port: u16) -> Self {
        self.listener.server_port = Some(port);
        self
    }
}

impl<S, F: Clone, R: Clone> tower_layer::Layer<S> for RouteLayer<F, R> {
    type Service = RouteService<S, F, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            route: self.route.clone(),
            random: self.random.clone(),
            listener: self.listener.clone(),
        }
    }
}

/// What the adapter knows of the listener it serves.
#[derive(Debug, Clone)]
struct Listener {
    scheme: Option<Scheme>,
    server_port: Option<u16>,
}

impl Listener {
    const NONE: Self = Self {
        scheme: None,
        server_port: None,
    };
}

// === RouteService ===

/// Runs route decisions in front of `inner`; see the [module documentation](self).
///
/// `route` maps a request head to its [`Route`] (`None`: no route, answered `404`);
/// `random` is the [`SharedRandom`] source decisions draw from. Cloning the service is
/// cheap when `inner` and `route` are, and clones keep drawing new values.
///
/// ```
/// use std::convert::Infallible;
/// use std::future::{Ready, ready};
/// use std::sync::Arc;
/// use std::task::{Context, Poll, Waker};
/// use http::{Request, Response, StatusCode};
/// use portcullis_proxy_core::rt::AtomicRandom;
/// use portcullis_proxy_core::tower::{Route, RouteService};
/// use portcullis_proxy_core::{action::{Destination, DirectResponseAction, ForwardAction}, decide::{ForwardDecision, RequestHead}};
/// use tower_service::Service;
///
/// /// The upstream: answers with the cluster the decision picked.
/// #[derive(Clone)]
/// struct Upstream;
///
/// impl Service<Request<String>> for Upstream {
///     type Response = Response<String>;
///     type Error = Infallible;
///     type Future = Ready<Result<Response<String>, Infallible>>;
///
///     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
///         Poll::Ready(Ok(()))
///     }
///
///     fn call(&mut self, request: Request<String>) -> Self::Future {
///         let cluster = request.extensions().get::<ForwardDecision>().map(|d| d.cluster.clone());
///         ready(Ok(Response::new(cluster.as_deref().unwrap_or("?").to_owned())))
///     }
/// }
///
/// let split = Arc::new(Route::new(ForwardAction::new(vec![
///     Destination::new("v1", 80),
///     Destination::new("v2", 20),
/// ])?));
/// let health = Arc::new(Route::new(DirectResponseAction::new(200, Some("ok".into()))?));
/// let route = move |head: &RequestHead| match head.path_without_query() {
///     "/healthz" => Some(Arc::clone(&health)),
///     "/reviews" => Some(Arc::clone(&split)),
///     _ => None,
/// };
/// let service = RouteService::new(Upstream, route, Arc::new(AtomicRandom::new(1)));
///
/// // Each request on a fresh clone, as hyper-util's `TowerToHyperService` does.
/// let get = |path: &str| {
///     let request = Request::builder().uri(path).header("host", "shop.example").body(String::new());
///     let mut future = service.clone().call(request.unwrap());
///     match Pin::new(&mut future).poll(&mut Context::from_waker(Waker::noop())) {
///         Poll::Ready(Ok(response)) => response,
///         _ => unreachable!("the upstream answers at once"),
///     }
/// };
/// # use std::{future::Future, pin::Pin};
/// assert_eq!(get("/healthz").status(), StatusCode::OK);
/// assert_eq!(get("/nowhere").status(), StatusCode::NOT_FOUND);
/// let v1 = (0..100)
///     .filter(|_| get("/reviews").into_body().into_inner().as_deref() == Some("v1"))
///     .count();
/// assert!((60..=95).contains(&v1), "{v1} of 100 to v1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RouteService<S, F, R = ThreadRandom> {
    inner: S,
    route: F,
    random: R,
    listener: Listener,
}

impl<S, F, R: SharedRandom> RouteService<S, F, R> {
    /// Wraps `inner`.
    pub const fn new(inner: S, route: F, random: R) -> Self {
        Self {
            inner,
            route,
            random,
            listener: Listener::NONE,
        }
    }
}

impl<S, F, R> RouteService<S, F, R> {
    /// The inner service.
    pub const fn inner(&self) -> &S {
        &self.inner
    }

    /// See [`RouteLayer::with_scheme`].
    #[must_use]
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        self.listener.scheme = Some(scheme);
        self
    }

    /// See [`RouteLayer::with_server_port`].
    #[must_use]
    pub const fn with_server_port(mut self, port: u16) -> Self {
        self.listener.server_port = Some(port);
        self
    }
}

impl<S, F, R, B, RB> Service<Request<B>> for RouteService<S, F, R>
where
    S: Service<Request<B>, Response = Response<RB>>,
    F: Fn(&RequestHead) -> Option<Arc<Route>>,
    R: SharedRandom,
    RB: Body,
    RB::Data: From<Bytes>,
{
    type Response = Response<RouteBody<RB>>;
    type Error = S::Error;
    type Future = RouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let mut head = RequestHead::from_parts(&parts);
        if let Some(scheme) = &self.listener.scheme {
            head.scheme = scheme.clone();
        }
        head.server_port = self.listener.server_port;
        let Some(route) = (self.route)(&head) else {
            return RouteFuture::ready(local(StatusCode::NOT_FOUND, HeaderMap::new(), None));
        };
        if route.require_tls
            && let Some(redirect) = require_tls_redirect(&head)
        {
            return RouteFuture::ready(local(redirect.status, redirect.headers, None));
        }
        // On the request as it came, before the route's header edits, as Envoy's router
        // picks the host before it finalizes the headers.
        let hashed = (!route.hash_policy.is_empty()).then(|| {
            let connection = parts
                .extensions
                .get::<ConnectionAddresses>()
                .copied()
                .unwrap_or_default();
            hash_request(&route.hash_policy, &head, &connection)
        });
        let forward = match decide(&route.action, &head, &mut self.random) {
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
        let set_cookie = hashed.as_ref().and_then(|h| h.set_cookie.clone());
        if let Some(hashed) = hashed {
            parts.extensions.insert::<RequestHash>(hashed);
        }
        let future = self.inner.call(Request::from_parts(parts, body));
        RouteFuture {
            state: State::Inner {
                future,
                edits,
                set_cookie,
            },
        }
    }
}

/// A local reply; its body becomes a [`RouteBody`] when the future is polled, so that the
/// future's state does not depend on the inner body type.
fn local(status: StatusCode, headers: HeaderMap, body: Option<Bytes>) -> Response<Option<Bytes>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn abort(status: AbortStatus) -> Response<Option<Bytes>> {
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

// === RouteFuture ===

pin_project_lite::pin_project! {
    /// The future of [`RouteService`].
    pub struct RouteFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Ready { response: Option<Response<Option<Bytes>>> },
        Inner {
            #[pin]
            future: F,
            edits: ResponseEdits,
            set_cookie: Option<HeaderValue>,
        },
    }
}

impl<F> fmt::Debug for RouteFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteFuture").finish_non_exhaustive()
    }
}

impl<F> RouteFuture<F> {
    const fn ready(response: Response<Option<Bytes>>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }
}

impl<F, RB, E> Future for RouteFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RouteBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response.map(RouteBody::local))),
                // Polled again after it completed: never ready again, as futures may be.
                None => Poll::Pending,
            },
            StateProj::Inner {
                future,
                edits,
                set_cookie,
            } => match future.poll(cx) {
                Poll::Ready(Ok(response)) => {
                    let (mut parts, body) = response.into_parts();
                    edits.apply(&mut parts.headers);
                    if let Some(cookie) = set_cookie.take() {
                        parts.headers.append(SET_COOKIE, cookie);
                    }
                    Poll::Ready(Ok(Response::from_parts(parts, RouteBody::inner(body))))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

// === RouteBody ===

pin_project_lite::pin_project! {
    /// The body of a [`RouteService`] response: the inner service's, or a local reply's
    /// (redirect, direct response, abort, no route).
    pub struct RouteBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Local { data: Option<Bytes> },
    }
}

impl<B> RouteBody<B> {
    const fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    const fn local(data: Option<Bytes>) -> Self {
        Self {
            kind: Kind::Local { data },
        }
    }

    /// Whether the body is a local reply's rather than the inner service's.
    pub const fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local { .. })
    }

    /// The inner service's body; `None` for a local reply.
    pub fn into_inner(self) -> Option<B> {
        match self.kind {
            Kind::Inner { body } => Some(body),
            Kind::Local { .. } => None,
        }
    }
}

impl<B> fmt::Debug for RouteBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("RouteBody::Inner"),
            Kind::Local { data } => f.debug_tuple("RouteBody::Local").field(data).finish(),
        }
    }
}

impl<B> Body for RouteBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Local { data } => {
                Poll::Ready(data.take().map(|bytes| Ok(Frame::data(bytes.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Local { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Local { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
