//! The HTTP request path: route → `decide` → forward (retries, timeouts, mirrors, upgrades) or
//! answer locally; metrics and the access log line.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue, SERVER, TE,
    TRANSFER_ENCODING, UPGRADE, USER_AGENT,
};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Body as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use portcullis_proxy_core as pc;
use portcullis_route_match as rm;
use portcullis_translate::UpstreamProtocol;

use super::body::{DownBody, Replayable, UpBody};
use super::guard::Heads;
use super::log::PendingLog;
use super::metrics::{ClusterEvent, RouteCounter};
use super::response::{Payload, RespBody};
use super::snapshot::{self, ClusterRt, Live, Local, RouteRt, clock};
use super::upstream::{UpClient, UpHead, UpIncoming, UpOptions};
use super::worker::{RequestIdText, Worker};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_UPSTREAM_TIME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const SERVER_VALUE: HeaderValue = HeaderValue::from_static("istio-envoy");

/// Envoy's local reply bodies.
const NO_HEALTHY_UPSTREAM: &str = "no healthy upstream";
const CONNECT_FAILURE: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
const RESET: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
const UPSTREAM_TIMEOUT: &str = "upstream request timeout";
const FAULT_ABORT: &str = "fault filter abort";

/// What a connection knows when it starts serving HTTP.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    pub(crate) live: Arc<Live>,
    /// The worker's view of the snapshot the connection started on: its requests use it
    /// while that snapshot is live.
    pub(crate) local: Arc<Local>,
    /// The worker serving the connection.
    pub(crate) worker: Arc<Worker>,
    pub(crate) scheme: Scheme,
    /// The route configuration of the connection's chain, by index in `local`'s snapshot,
    /// and by name for later ones.
    pub(crate) route_config: usize,
    pub(crate) route_config_name: Arc<str>,
    /// The client address, for `x-forwarded-for`.
    pub(crate) remote_ip: HeaderValue,
    /// The connection's addresses, for consistent hashing (source IP, minted cookies); the
    /// remote one is the PROXY protocol header's when the listener expects one.
    pub(crate) addresses: pc::lb::ConnectionAddresses,
    /// Trusted proxies in front (`Topology::num_trusted_proxies`).
    pub(crate) trusted_hops: u32,
    pub(crate) no_route: Arc<RouteCounter>,
    /// Told when a request head has been read (for the header timeout).
    pub(crate) heads: Arc<Heads>,
    /// How request paths are normalized before routing.
    pub(crate) path_normalization: pc::path::PathNormalization,
}

/// One request's context: its connection, and what the access log and the counters need.
struct Ctx<'a> {
    conn: &'a ConnCtx,
    /// The start, and the wall-clock start, both read only when the access log is on.
    start: Option<(Instant, SystemTime)>,
    version: Version,
    method: http::Method,
    /// The response goes out through the gateway's own HTTP/1.1 writer, which takes an
    /// upstream's response head as read (see `downstream`).
    raw_heads: bool,
}

impl Ctx<'_> {
    /// The start and wall-clock start for the access log (read now if they were not then).
    fn log_start(&self) -> (Instant, SystemTime) {
        self.start
            .unwrap_or_else(|| (Instant::now(), SystemTime::now()))
    }
}

/// How the response to a request will be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// By hyper: every header in the response's map.
    Hyper,
    /// By the gateway's own HTTP/1.1 loop, which can write an upstream's head as read.
    Own,
}

/// Serves one request.
pub(crate) async fn handle(
    conn: Arc<ConnCtx>,
    req: Request<DownBody>,
    writer: Writer,
) -> Result<Response<RespBody>, Infallible> {
    conn.heads.started();
    let ctx = Ctx {
        conn: &conn,
        start: conn
            .worker
            .logging()
            .then(|| (Instant::now(), SystemTime::now())),
        version: req.version(),
        method: req.method().clone(),
        raw_heads: writer == Writer::Own,
    };
    let local = snapshot::current(
        &conn.live,
        &conn.local,
        &conn.worker.snapshots,
        &conn.worker.coarse,
    );
    let snap = &local.snap;
    let rc = if Arc::ptr_eq(&local, &conn.local) {
        snap.route_configs.get(conn.route_config)
    } else {
        snap.route_config_index
            .get(&*conn.route_config_name)
            .and_then(|i| snap.route_configs.get(*i))
    };
    let (mut parts, body) = req.into_parts();
    // Envoy's request-head checks (framing, authority, upgrade policy) before routing; the
    // authority is the absolute-form target's, or the one `Host`.
    let checked = pc::hygiene::check_request_head(
        &parts.method,
        &parts.uri,
        parts.version,
        &parts.headers,
        &pc::upgrade::UpgradePolicy::ISTIO,
    )
    .map(|c| (c.authority.to_owned(), c.upgrade));
    let authority = match checked {
        Ok((authority, upgrade)) => {
            if upgrade == pc::upgrade::UpgradeDecision::StripH2c {
                pc::upgrade::strip_h2c(&mut parts.headers);
            }
            authority
        }
        Err(rejection) => return Ok(rejected(&conn, &ctx, &parts, rejection)),
    };
    let raw_path = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    // Before anything reads the path, as Envoy's connection manager: the route is chosen on,
    // and the upstream receives, the normalized path.
    let path = match pc::path::normalize(raw_path, conn.path_normalization) {
        Ok(path) => path.into_owned(),
        Err(invalid) => {
            return Ok(local_reply(
                &ctx,
                Requested {
                    headers: &parts.headers,
                    authority: &authority,
                    path: raw_path,
                },
                &conn.no_route,
                Reply::new(invalid.status(), "-"),
            ));
        }
    };
    // No route configuration, or no route in it: Envoy's 404 with flag NR.
    let no_route = || {
        local_reply(
            &ctx,
            Requested {
                headers: &parts.headers,
                authority: &authority,
                path: &path,
            },
            &conn.no_route,
            Reply::new(StatusCode::NOT_FOUND, "NR"),
        )
    };
    let Some(rc) = rc else {
        return Ok(no_route());
    };
    let found = {
        let head = rm::RequestHead::new(
            parts.method.as_str(),
            conn.scheme.as_str(),
            &authority,
            &path,
        )
        .with_header_map(&parts.headers);
        rc.config.router.find(&head)
    };
    let Some((vh, route, action)) = found.ok().and_then(|m| {
        let vh = m.virtual_host();
        let route = m.route();
        Some((
            vh,
            rc.routes.get(vh)?.get(route)?,
            &rc.config.route(vh, route)?.action.action,
        ))
    }) else {
        return Ok(no_route());
    };
    let mut head =
        pc::decide::RequestHead::new(parts.method.clone(), conn.scheme.clone(), authority, path)
            .with_headers(std::mem::take(&mut parts.headers));
    if let Some(port) = rc.server_port {
        head = head.with_server_port(port);
    }
    if rc.config.require_tls.get(vh).copied().unwrap_or(false)
        && let Some(redirect) = pc::redirect::require_tls_redirect(&head)
    {
        return Ok(local_head_reply(
            &ctx,
            &head,
            &route.local_counter,
            Reply::new(redirect.status, "-").with_headers(redirect.headers),
        ));
    }
    // Consistent hashing (ring hash, maglev) on the request as it came, before the route's
    // header edits, as Envoy's router picks the host before it finalizes the headers; nothing
    // to do for routes without a hash policy.
    let hashed = (!route.hash_policy.is_empty())
        .then(|| pc::lb::hash_request(&route.hash_policy, &head, &request_addresses(&conn, &head)));
    // A forward takes the request's headers for the upstream request (no copy).
    let decision = pc::decide::decide_taking_headers(action, &mut head, &mut conn.worker.random());
    if let Some(delay) = decision.delay() {
        tokio::time::sleep(delay).await;
    }
    let delayed = decision.delay().is_some();
    Ok(match decision {
        pc::decide::Decision::Forward(mut forward) => {
            // Borrowed, not moved: the decision and the head are large, and an async call
            // copies what it takes by value into its future.
            let routed = Routed {
                local: &local,
                route,
                forward: &mut forward,
                head: &mut head,
                hashed,
                delayed,
            };
            forward_request(&ctx, routed, parts.extensions, body).await
        }
        pc::decide::Decision::Redirect(r) => local_head_reply(
            &ctx,
            &head,
            &route.local_counter,
            Reply::new(r.status, if delayed { "DI" } else { "-" }).with_headers(r.headers),
        ),
        pc::decide::Decision::DirectResponse(d) => local_head_reply(
            &ctx,
            &head,
            &route.local_counter,
            Reply::new(d.status, if delayed { "DI" } else { "-" })
                .with_body(d.body)
                .with_headers(d.headers),
        ),
        pc::decide::Decision::FaultAbort(a) => {
            let mut headers = HeaderMap::new();
            let status = match a.abort {
                pc::fault::AbortStatus::Http(s) => s,
                pc::fault::AbortStatus::Grpc(code) => {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                    headers.insert(
                        HeaderName::from_static("grpc-status"),
                        HeaderValue::from(code),
                    );
                    StatusCode::OK
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body =
                (status != StatusCode::OK).then(|| Bytes::from_static(FAULT_ABORT.as_bytes()));
            local_head_reply(
                &ctx,
                &head,
                &route.local_counter,
                Reply::new(status, if delayed { "DI,FI" } else { "FI" })
                    .with_body(body)
                    .with_headers(headers),
            )
        }
        pc::decide::Decision::CorsPreflight(c) => local_head_reply(
            &ctx,
            &head,
            &route.local_counter,
            Reply::new(c.status, "-").with_headers(c.headers),
        ),
        _ => local_head_reply(
            &ctx,
            &head,
            &route.local_counter,
            Reply::new(StatusCode::INTERNAL_SERVER_ERROR, "-"),
        ),
    })
}

/// What the gateway answers itself: status, response flags for the access log, body and
/// headers.
struct Reply {
    status: StatusCode,
    flags: &'static str,
    body: Option<Bytes>,
    headers: HeaderMap,
}

impl Reply {
    fn new(status: StatusCode, flags: &'static str) -> Self {
        Self {
            status,
            flags,
            body: None,
            headers: HeaderMap::new(),
        }
    }

    fn with_body(mut self, body: Option<Bytes>) -> Self {
        self.body = body;
        self
    }

    fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }
}

/// The request a local reply answers, as the access log names it.
struct Requested<'a> {
    headers: &'a HeaderMap,
    authority: &'a str,
    path: &'a str,
}

/// A local reply for a request that never became a `pc::decide::RequestHead`.
fn local_reply(
    ctx: &Ctx<'_>,
    req: Requested<'_>,
    counter: &RouteCounter,
    answer: Reply,
) -> Response<RespBody> {
    let conn = ctx.conn;
    let Reply {
        status,
        flags,
        body,
        headers,
    } = answer;
    let log = conn.worker.logging().then(|| {
        Box::new(PendingLog {
            worker: Arc::clone(&conn.worker),
            start: ctx.log_start(),
            method: ctx.method.clone(),
            path: HeaderValue::from_str(req.path).ok(),
            version: ctx.version,
            status: status.as_u16(),
            flags,
            bytes_received: None,
            upstream_service_time: None,
            xff: xff(req.headers.get(X_FORWARDED_FOR), &conn.remote_ip),
            user_agent: req.headers.get(USER_AGENT).cloned(),
            request_id: req.headers.get(X_REQUEST_ID).cloned(),
            authority: HeaderValue::from_str(req.authority).ok(),
            upstream_host: None,
        })
    });
    counter.inc(conn.worker.index(), status.as_u16());
    reply(status, headers, body, log)
}

/// The local reply to a request refused before routing: Envoy's status, its body for codec
/// errors, and `connection: close` on HTTP/1 when the framing is in doubt.
fn rejected(
    conn: &ConnCtx,
    ctx: &Ctx<'_>,
    parts: &http::request::Parts,
    rejection: pc::hygiene::Rejection,
) -> Response<RespBody> {
    use pc::hygiene::Rejection;
    let status = rejection.status();
    // Envoy's codec errors carry the downstream protocol error flag and the status text as
    // body; the connection manager's own refusals (no host, upgrade) neither.
    let codec_error = !matches!(rejection, Rejection::MissingHost | Rejection::UpgradeFailed);
    let mut headers = HeaderMap::new();
    if rejection.closes_connection() && ctx.version < Version::HTTP_2 {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    let authority = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    local_reply(
        ctx,
        Requested {
            headers: &parts.headers,
            authority,
            path: parts.uri.path_and_query().map_or("/", PathAndQuery::as_str),
        },
        &conn.no_route,
        Reply::new(status, if codec_error { "DPE" } else { "-" })
            .with_body(
                codec_error.then(|| {
                    Bytes::from_static(status.canonical_reason().unwrap_or("").as_bytes())
                }),
            )
            .with_headers(headers),
    )
}

/// A local reply to a routed request.
fn local_head_reply(
    ctx: &Ctx<'_>,
    head: &pc::decide::RequestHead,
    counter: &RouteCounter,
    answer: Reply,
) -> Response<RespBody> {
    let req = Requested {
        headers: &head.headers,
        authority: &head.authority,
        path: &head.path,
    };
    local_reply(ctx, req, counter, answer)
}

fn xff(existing: Option<&HeaderValue>, remote: &HeaderValue) -> Option<HeaderValue> {
    match existing {
        None => Some(remote.clone()),
        Some(v) => {
            let mut joined = Vec::with_capacity(v.len() + remote.len() + 1);
            joined.extend_from_slice(v.as_bytes());
            joined.push(b',');
            joined.extend_from_slice(remote.as_bytes());
            HeaderValue::from_bytes(&joined).ok()
        }
    }
}

fn reply(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Option<Bytes>,
    log: Option<Box<PendingLog>>,
) -> Response<RespBody> {
    if let Some(b) = &body
        && !b.is_empty()
    {
        headers
            .entry(CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("text/plain"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(b.len()));
    } else {
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    headers.insert(SERVER, SERVER_VALUE);
    let mut resp = Response::new(RespBody::new(Payload::Full(body), log));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

const HOP_CONNECTION: u8 = 1;
const HOP_UPGRADE: u8 = 2;
const HOP_KEEP_ALIVE: u8 = 4;
const HOP_PROXY_CONNECTION: u8 = 8;
const HOP_TRANSFER_ENCODING: u8 = 16;
const HOP_TE: u8 = 32;

/// Which hop-by-hop header `name` is (a bit of the `HOP_*` set), 0 for the others.
fn hop_bit(name: &HeaderName) -> u8 {
    if name == CONNECTION {
        HOP_CONNECTION
    } else if name == UPGRADE {
        HOP_UPGRADE
    } else if name == TRANSFER_ENCODING {
        HOP_TRANSFER_ENCODING
    } else if name == TE {
        HOP_TE
    } else if name == KEEP_ALIVE {
        HOP_KEEP_ALIVE
    } else if name == PROXY_CONNECTION {
        HOP_PROXY_CONNECTION
    } else {
        0
    }
}

/// Removes hop-by-hop headers (those named by `connection` too).
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names (cheap comparisons) instead of a hashed removal per name: most
    // messages carry none or one of them.
    let seen = headers.keys().fold(0, |seen, name| seen | hop_bit(name));
    if seen == 0 {
        return;
    }
    if seen & HOP_CONNECTION != 0
        && let Some(conn) = headers.get(CONNECTION).cloned()
        && let Ok(list) = conn.to_str()
    {
        for name in list.split(',').map(str::trim) {
            if keep_upgrade && name.eq_ignore_ascii_case("upgrade") {
                continue;
            }
            // `keep-alive` (the usual value) is removed below anyway.
            if name.eq_ignore_ascii_case("keep-alive") || name.eq_ignore_ascii_case("close") {
                continue;
            }
            if let Ok(n) = HeaderName::from_bytes(name.as_bytes())
                && n != TE
            {
                headers.remove(n);
            }
        }
    }
    if !keep_upgrade {
        if seen & HOP_CONNECTION != 0 {
            headers.remove(CONNECTION);
        }
        if seen & HOP_UPGRADE != 0 {
            headers.remove(UPGRADE);
        }
    }
    if seen & HOP_KEEP_ALIVE != 0 {
        headers.remove(KEEP_ALIVE);
    }
    if seen & HOP_PROXY_CONNECTION != 0 {
        headers.remove(PROXY_CONNECTION);
    }
    if seen & HOP_TRANSFER_ENCODING != 0 {
        headers.remove(TRANSFER_ENCODING);
    }
    if seen & HOP_TE != 0
        && headers
            .get(TE)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(TE);
    }
}

fn is_upgrade(headers: &HeaderMap, version: Version) -> bool {
    version == Version::HTTP_11
        && headers.contains_key(UPGRADE)
        && headers
            .get(CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// Admission, the first step of a forward: the route's counter for the picked destination,
/// its cluster and this worker's client for it; or the local reply when the cluster is
/// missing (503 NC) or cannot be used (503 UH).
fn admit<'l>(
    ctx: &Ctx<'_>,
    local: &'l Local,
    route: &'l RouteRt,
    forward: &pc::decide::ForwardDecision,
) -> Result<(&'l RouteCounter, &'l ClusterRt, &'l UpClient), Box<Response<RespBody>>> {
    let di = forward.destination_index;
    let counter = route
        .destination_counters
        .get(di)
        .unwrap_or(&route.local_counter);
    let requested = || Requested {
        headers: &forward.upstream.headers,
        authority: &forward.upstream.authority,
        path: &forward.upstream.path,
    };
    let cluster_index = route.destination_clusters.get(di).copied().flatten();
    let found =
        cluster_index.and_then(|i| Some((local.snap.clusters.get(i)?, local.clients.get(i)?)));
    let Some((cluster, client)) = found else {
        let answer = Reply::new(StatusCode::SERVICE_UNAVAILABLE, "NC");
        return Err(Box::new(local_reply(ctx, requested(), counter, answer)));
    };
    if cluster.broken.is_some() {
        let worker = &*ctx.conn.worker;
        cluster.stats.event(worker.index(), ClusterEvent::NoHealthy);
        cluster.stats.codes.inc(worker.index(), 503);
        let answer = Reply::new(StatusCode::SERVICE_UNAVAILABLE, "UH")
            .with_body(Some(Bytes::from_static(NO_HEALTHY_UPSTREAM.as_bytes())));
        return Err(Box::new(local_reply(ctx, requested(), counter, answer)));
    }
    Ok((counter, cluster, client))
}

/// The route's decision for a request it forwards, with what routing learnt on the way.
struct Routed<'a> {
    /// The worker's view of the snapshot the request was routed on.
    local: &'a Local,
    route: &'a RouteRt,
    /// The forward; its upstream request holds the request's headers, authority and path
    /// (see `decide_taking_headers`).
    forward: &'a mut pc::decide::ForwardDecision,
    /// The request as the access log reports it.
    head: &'a mut pc::decide::RequestHead,
    /// The request's hash, when the route has a hash policy.
    hashed: Option<pc::lb::RequestHash>,
    /// A fault delayed the request (flag `DI`).
    delayed: bool,
}

/// What the attempts of a forward send, and to whom: one head, built once and borrowed by
/// every attempt; the client's body for the first, its replay for the others.
struct Attempts<'a> {
    counter: &'a RouteCounter,
    cluster: &'a ClusterRt,
    client: &'a UpClient,
    options: UpOptions,
    scheme: Scheme,
    method: &'a http::Method,
    path: &'a PathAndQuery,
    headers: &'a HeaderMap,
    /// What the gateway sets on the head (see [`Added`]).
    added: &'a [(&'static str, &'a [u8])],
    /// The first attempt's body (taken by it).
    body: Option<UpBody>,
    /// The body kept for retries, if the route retries.
    replay: Option<&'a Replayable>,
}

/// How the retry loop ends.
// Both variants are a response: boxing either would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Attempted {
    /// The upstream's response to deliver, and the upstream service time (from the first
    /// attempt to the last event).
    Deliver(Response<UpIncoming>, Duration),
    /// The local reply the forward ends with (counted, its access log line attached).
    Reply(Response<RespBody>),
}

/// Forwards a routed request: admission ([`admit`]), the upstream head, mirrors, the retry
/// loop ([`retry_loop`]), then the response ([`respond`]).
async fn forward_request(
    ctx: &Ctx<'_>,
    routed: Routed<'_>,
    mut extensions: http::Extensions,
    body: DownBody,
) -> Response<RespBody> {
    let conn = ctx.conn;
    let worker = &*conn.worker;
    let Routed {
        local,
        route,
        forward,
        head,
        hashed,
        delayed,
    } = routed;
    let (counter, cluster, client) = match admit(ctx, local, route, forward) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };

    // The request's headers, authority and path are the upstream request's now (see
    // `decide_taking_headers`).
    let upgrading = is_upgrade(&forward.upstream.headers, ctx.version);
    let downstream_upgrade = if upgrading {
        extensions.remove::<OnUpgrade>()
    } else {
        None
    };
    let timeout = forward.effective_timeout(&forward.upstream.headers);
    let retry_policy = forward.retry_policy.clone();
    let pc::decide::ForwardDecision {
        upstream,
        response: edits,
        mirrors,
        ..
    } = forward;
    let mut headers = std::mem::take(&mut upstream.headers);
    strip_hop_by_hop(&mut headers, upgrading);
    if worker.logging() {
        // The access log reads these from the request as Envoy's does, after the route's
        // edits (the forward took them from the head for the upstream request).
        for name in [USER_AGENT, pc::decide::X_ENVOY_ORIGINAL_PATH] {
            if let Some(v) = headers.get(&name) {
                head.headers.insert(name, v.clone());
            }
        }
        head.authority.clone_from(&upstream.authority);
        head.path.clone_from(&upstream.path);
    }
    // What the gateway adds — host, x-forwarded-for, x-forwarded-proto, x-request-id when
    // the client sent none — is written into the upstream head as it is encoded, replacing
    // the client's, rather than inserted into the map (see `h1::encode_request_head`).
    // x-forwarded-for: the client's address, appended to what the client sent if anything
    // (the common case borrows the connection's value: no copy, no reference count).
    let client_xff = headers.get(X_FORWARDED_FOR);
    let joined_xff = client_xff.and_then(|existing| xff(Some(existing), &conn.remote_ip));
    let xff_bytes = match (client_xff, &joined_xff) {
        (None, _) => Some(conn.remote_ip.as_bytes()),
        (Some(_), joined) => joined.as_ref().map(HeaderValue::as_bytes),
    };
    let xff_value = worker
        .logging()
        .then(|| xff_bytes.and_then(|b| HeaderValue::from_bytes(b).ok()))
        .flatten();
    let mut id_text: RequestIdText = [0; 36];
    let minted_id = (!headers.contains_key(X_REQUEST_ID)).then(|| worker.request_id(&mut id_text));
    let request_id = worker
        .logging()
        .then(|| match minted_id {
            Some(id) => HeaderValue::from_str(id).ok(),
            None => headers.get(X_REQUEST_ID).cloned(),
        })
        .flatten();
    let mut added = Added::default();
    // The authority comes from the client's `host` or the route's rewrite: a value with a
    // line break must not reach the wire (nor would it have made a header value).
    if pc::header::header_value_is_valid(upstream.authority.as_bytes()) {
        added.push("host", upstream.authority.as_bytes());
    }
    if let Some(v) = xff_bytes {
        added.push("x-forwarded-for", v);
    }
    added.push(
        "x-forwarded-proto",
        if conn.scheme == Scheme::HTTPS {
            b"https"
        } else {
            b"http"
        },
    );
    if let Some(id) = minted_id {
        added.push("x-request-id", id.as_bytes());
    }
    // An edge request (from outside the trusted network) says who its client is, as Envoy's
    // x-envoy-external-address; an internal one (an internal peer, no x-forwarded-for) does
    // not, which is also what keeps this off the benchmark's path.
    let external = client_address(conn, &headers).external_address();
    let mut external_text = [0u8; 39];
    if let Some(text) = external.and_then(|ip| ip_text(ip, &mut external_text)) {
        added.push("x-envoy-external-address", text);
    }
    let path_and_query =
        PathAndQuery::from_maybe_shared(Bytes::from(std::mem::take(&mut upstream.path)))
            .unwrap_or_else(|_| PathAndQuery::from_static("/"));

    let body_empty = body.is_end_stream();
    let bytes_received = (!body_empty).then(|| Arc::new(AtomicU64::new(0)));
    // A body is kept (up to REPLAY_LIMIT) when the route retries or mirrors this request; an
    // upgrade's body is the upgraded stream and is never replayed.
    let retries = retry_policy.is_some() && !upgrading;
    let mirroring = !upgrading && mirrors.iter().any(|m| m.mirrored);
    let (body, replay) = if body_empty {
        (Some(UpBody::empty()), None)
    } else if retries || mirroring {
        let replay = Replayable::new(body, bytes_received.clone());
        (replay.reader(), Some(replay))
    } else {
        (Some(UpBody::streaming(body, bytes_received.clone())), None)
    };

    // Mirrors: fire and forget; a body is replayed to them as the request's attempt reads it.
    for m in mirrors.iter().filter(|m| m.mirrored && !upgrading) {
        let mirror_body = match &replay {
            None => UpBody::empty(),
            Some(r) => match r.mirror() {
                Some(b) => b,
                None => continue,
            },
        };
        if let Some(mi) = local.snap.cluster_index.get(&*m.cluster).copied()
            && let (Some(mc), Some(mclient)) = (local.snap.clusters.get(mi), local.clients.get(mi))
        {
            spawn_mirror(
                &conn.worker,
                mc,
                mclient.clone(),
                up_options(mc, ctx.version),
                mirror_body,
                &upstream.method,
                &path_and_query,
                &headers,
                added.fields(),
                &upstream.authority,
            );
        }
    }
    let policy = retry_policy.filter(|_| retries);
    // proxy-core's retry state machine: admission (circuit breakers), endpoint picks,
    // retries with back-off, per-try and overall timeouts, outlier detection reports.
    // The request hash, if the route has a hash policy, picks the endpoint of every attempt.
    let mut state = pc::retry::RetryState::new(Arc::clone(&cluster.pc), policy, timeout)
        .with_request_headers(&headers)
        .with_hash(hashed.as_ref().and_then(|h| h.hash));
    let mut fields = Forwarded {
        bytes_received,
        xff: xff_value,
        request_id,
        endpoint: None,
    };
    let mut attempts = Attempts {
        counter,
        cluster,
        client,
        options: up_options(cluster, ctx.version),
        scheme: if cluster.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        },
        method: &upstream.method,
        path: &path_and_query,
        headers: &headers,
        added: added.fields(),
        body,
        replay: replay.as_ref(),
    };
    let (resp, service_time) =
        match retry_loop(ctx, head, &mut attempts, &mut state, &mut fields).await {
            Attempted::Deliver(resp, service_time) => (resp, service_time),
            Attempted::Reply(reply) => return reply,
        };
    let delivered = Delivered {
        resp,
        service_time,
        delayed,
        edits,
        set_cookie: hashed.and_then(|h| h.set_cookie),
        downstream_upgrade,
    };
    respond(ctx, head, cluster, counter, fields, delivered)
}

/// The retry loop, the step of a forward between the upstream head and the response: runs
/// the attempts proxy-core's retry state machine asks for (sends, back-offs, timeouts) until
/// it delivers a response or gives up. A reply that ends the forward here is counted on the
/// route (and the cluster when it is the upstream's failure) and carries its log line.
async fn retry_loop(
    ctx: &Ctx<'_>,
    head: &pc::decide::RequestHead,
    attempts: &mut Attempts<'_>,
    state: &mut pc::retry::RetryState,
    fields: &mut Forwarded,
) -> Attempted {
    let worker = &*ctx.conn.worker;
    let (counter, cluster) = (attempts.counter, attempts.cluster);
    // The upstream service time runs from here to the last event (the clock the retry state
    // reads anyway).
    let upstream_start = clock::now();
    let mut last_event = upstream_start;
    let mut pending: Option<Response<UpIncoming>> = None;
    let mut action = state.start(upstream_start, &mut worker.aux());
    let outcome = loop {
        action = match action {
            pc::retry::Action::Send(attempt) => {
                if attempt.number > 1 {
                    cluster.stats.event(worker.index(), ClusterEvent::Retry);
                }
                // The first attempt sends the client's body; later ones replay it, unless it
                // outgrew the replay limit: then the last answer stands.
                let attempt_body = match (attempts.body.take(), attempts.replay) {
                    (Some(b), _) => b,
                    (None, None) => UpBody::empty(),
                    (None, Some(r)) => match r.reader() {
                        Some(b) => b,
                        None => match pending.take() {
                            Some(resp) => break Ok(resp),
                            None => break Err((StatusCode::SERVICE_UNAVAILABLE, "UC", RESET)),
                        },
                    },
                };
                pending = None;
                let Some(ep) = cluster.endpoints.get(&attempt.endpoint) else {
                    break Err((StatusCode::SERVICE_UNAVAILABLE, "UH", NO_HEALTHY_UPSTREAM));
                };
                fields.endpoint = Some(ep.addr);
                // Every attempt sends the same head (borrowed, not copied).
                let up_head = UpHead {
                    method: attempts.method,
                    scheme: &attempts.scheme,
                    endpoint: &ep.authority,
                    path: attempts.path,
                    headers: attempts.headers,
                    set: attempts.added,
                };
                let (client, options) = (attempts.client, attempts.options);
                // Each branch makes its own future where it is awaited (a future made
                // before the branch would be copied into place).
                let result = match attempt.deadline {
                    Some(until) => tokio::time::timeout_at(
                        clock::to_tokio(until),
                        client.send(up_head, attempt_body, options),
                    )
                    .await
                    .ok(),
                    None => Some(client.send(up_head, attempt_body, options).await),
                };
                let now = clock::now();
                last_event = now;
                match result {
                    None => state.on_event(pc::retry::Event::Timer, now, &mut worker.aux()),
                    Some(Ok(resp)) => {
                        // A head kept as read: the retry decision gets the few headers it
                        // reads (usually none, and then no map is built).
                        let kept;
                        let headers = match resp.body().raw_head() {
                            Some(head) => {
                                kept = head
                                    .header_map_of(&pc::retry::RETRY_RESPONSE_HEADERS)
                                    .unwrap_or_default();
                                &kept
                            }
                            None => resp.headers(),
                        };
                        let next = state.on_event(
                            pc::retry::Event::Response {
                                status: resp.status(),
                                headers,
                            },
                            now,
                            &mut worker.aux(),
                        );
                        pending = Some(resp);
                        next
                    }
                    Some(Err(e)) => {
                        let kind = if let Some(failure) = e.downstream() {
                            pc::retry::ErrorKind::Downstream(failure)
                        } else if e.is_connect() {
                            cluster
                                .stats
                                .event(worker.index(), ClusterEvent::ConnectFail);
                            pc::retry::ErrorKind::ConnectFailure
                        } else {
                            pc::retry::ErrorKind::Reset
                        };
                        state.on_event(pc::retry::Event::Error(kind), now, &mut worker.aux())
                    }
                }
            }
            pc::retry::Action::Backoff { until } => {
                pending = None;
                tokio::time::sleep_until(clock::to_tokio(until)).await;
                state.on_event(pc::retry::Event::Timer, clock::now(), &mut worker.aux())
            }
            pc::retry::Action::Deliver => match pending.take() {
                Some(resp) => break Ok(resp),
                None => break Err((StatusCode::SERVICE_UNAVAILABLE, "UC", RESET)),
            },
            pc::retry::Action::GiveUp {
                reply: local,
                reason: pc::retry::GiveUpReason::Downstream(failure),
            } => {
                // The client's failure: the route counts it, the cluster does not.
                let status = local.status;
                counter.inc(worker.index(), status.as_u16());
                let mut log = make_log(
                    ctx,
                    head,
                    std::mem::take(fields),
                    status,
                    failure.response_flag(),
                    None,
                );
                if failure == pc::failure::DownstreamFailure::Disconnect
                    && let Some(log) = &mut log
                {
                    // Nothing reaches a client that is gone: Envoy logs response code 0.
                    log.status = 0;
                }
                return Attempted::Reply(reply(status, local.headers, Some(local.body), log));
            }
            pc::retry::Action::GiveUp {
                reply: local,
                reason,
            } => {
                let retried = state.attempts() > 1;
                let (flags, text): (&'static str, Option<&'static str>) = match reason {
                    pc::retry::GiveUpReason::Overflow(_) => {
                        cluster.stats.event(worker.index(), ClusterEvent::Overflow);
                        ("UO", None)
                    }
                    pc::retry::GiveUpReason::NoHealthyUpstream => {
                        cluster.stats.event(worker.index(), ClusterEvent::NoHealthy);
                        ("UH", Some(NO_HEALTHY_UPSTREAM))
                    }
                    pc::retry::GiveUpReason::Timeout | pc::retry::GiveUpReason::PerTryTimeout => {
                        cluster.stats.event(worker.index(), ClusterEvent::Timeout);
                        ("UT", Some(UPSTREAM_TIMEOUT))
                    }
                    pc::retry::GiveUpReason::Upstream(
                        pc::retry::ErrorKind::ConnectFailure | pc::retry::ErrorKind::ConnectTimeout,
                    ) => (if retried { "URX,UF" } else { "UF" }, Some(CONNECT_FAILURE)),
                    _ => (if retried { "URX,UC" } else { "UC" }, Some(RESET)),
                };
                let status = local.status;
                cluster.stats.codes.inc(worker.index(), status.as_u16());
                counter.inc(worker.index(), status.as_u16());
                let body = match text {
                    Some(t) => Bytes::from_static(t.as_bytes()),
                    None => local.body,
                };
                let log = make_log(ctx, head, std::mem::take(fields), status, flags, None);
                return Attempted::Reply(reply(status, local.headers, Some(body), log));
            }
            pc::retry::Action::Reset | pc::retry::Action::Done => {
                break Err((StatusCode::SERVICE_UNAVAILABLE, "UC", RESET));
            }
            _ => break Err((StatusCode::SERVICE_UNAVAILABLE, "UC", RESET)),
        };
    };
    match outcome {
        Ok(resp) => Attempted::Deliver(resp, last_event.saturating_duration_since(upstream_start)),
        Err((status, flags, text)) => {
            cluster.stats.codes.inc(worker.index(), status.as_u16());
            counter.inc(worker.index(), status.as_u16());
            let log = make_log(ctx, head, std::mem::take(fields), status, flags, None);
            Attempted::Reply(reply(
                status,
                HeaderMap::new(),
                Some(Bytes::from_static(text.as_bytes())),
                log,
            ))
        }
    }
}

/// An upstream's response, as the retry loop delivers it, with what [`respond`] applies to it.
struct Delivered<'a> {
    resp: Response<UpIncoming>,
    /// From the first attempt to the last event.
    service_time: Duration,
    /// A fault delayed the request (flag `DI`).
    delayed: bool,
    /// The route's response header edits.
    edits: &'a pc::decide::ResponseEdits,
    /// A cookie minted for consistent hashing.
    set_cookie: Option<HeaderValue>,
    /// The client's side of an upgrade the response may accept.
    downstream_upgrade: Option<OnUpgrade>,
}

/// The last step of a forward: counters, the response head edited as Envoy's router does
/// (or kept as read), an accepted upgrade spliced, the access log line attached.
fn respond(
    ctx: &Ctx<'_>,
    head: &pc::decide::RequestHead,
    cluster: &ClusterRt,
    counter: &RouteCounter,
    fields: Forwarded,
    delivered: Delivered<'_>,
) -> Response<RespBody> {
    let worker = &*ctx.conn.worker;
    let Delivered {
        mut resp,
        service_time,
        delayed,
        edits,
        set_cookie,
        downstream_upgrade,
    } = delivered;
    let flags = if delayed { "DI" } else { "-" };
    let status = resp.status();
    cluster.stats.latency(worker.index(), service_time);
    cluster.stats.codes.inc(worker.index(), status.as_u16());
    counter.inc(worker.index(), status.as_u16());

    // Upgrades (WebSocket, …): splice the two upgraded connections.
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    // The head goes on as read unless something must change in it beyond what the writer
    // does itself (hop-by-hop headers, `server`, the service time).
    let raw = ctx.raw_heads
        && resp.body().raw_head().is_some()
        && !switching
        && edits.is_empty()
        && set_cookie.is_none();
    if !raw && UpIncoming::into_headers(&mut resp).is_err() {
        let log = make_log(ctx, head, fields, StatusCode::BAD_GATEWAY, "UPE", None);
        return reply(StatusCode::BAD_GATEWAY, HeaderMap::new(), None, log);
    }
    if switching && let Some(down) = downstream_upgrade {
        let up = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(down), Ok(up)) = (down.await, up.await) {
                let mut down = TokioIo::new(down);
                let mut up = TokioIo::new(up);
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            }
        });
    }
    let (mut parts, incoming) = resp.into_parts();
    let service_ms = u64::try_from(service_time.as_millis()).unwrap_or(u64::MAX);
    if !raw {
        strip_hop_by_hop(&mut parts.headers, switching);
        parts.headers.reserve(2);
        edits.apply(&mut parts.headers);
        if let Some(cookie) = set_cookie {
            parts.headers.append(http::header::SET_COOKIE, cookie);
        }
        parts
            .headers
            .insert(X_UPSTREAM_TIME, HeaderValue::from(service_ms));
        parts.headers.insert(SERVER, SERVER_VALUE);
    }
    let log = make_log(ctx, head, fields, status, flags, Some(service_ms));
    let mut body = RespBody::new(Payload::Upstream(incoming), log);
    if raw {
        body.set_upstream_service_ms(service_ms);
    }
    let mut out = Response::from_parts(parts, body);
    *out.version_mut() = ctx.version;
    out
}

/// The client of a request on `conn`: the connection's peer, or with trusted proxies in front,
/// the address they put in `x-forwarded-for` (see `portcullis_proxy_core::client_address`).
fn client_address(conn: &ConnCtx, headers: &HeaderMap) -> pc::client_address::ClientAddress {
    let peer = conn
        .addresses
        .remote
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| {
            a.ip()
        });
    let mut values = headers.get_all(X_FORWARDED_FOR).iter();
    let Some(first) = values.next() else {
        return pc::client_address::ClientAddress::resolve(peer, None, conn.trusted_hops);
    };
    // Several x-forwarded-for lines are one list, as Envoy joins them.
    let joined;
    let xff = match values.next() {
        None => String::from_utf8_lossy(first.as_bytes()),
        Some(second) => {
            let mut all = Vec::from(first.as_bytes());
            for v in std::iter::once(second).chain(values) {
                all.push(b',');
                all.extend_from_slice(v.as_bytes());
            }
            joined = all;
            String::from_utf8_lossy(&joined)
        }
    };
    pc::client_address::ClientAddress::resolve(peer, Some(&xff), conn.trusted_hops)
}

/// The connection's addresses with the request's client as the remote one (for `sourceIP`
/// hashing): the same as the connection's without trusted proxies.
fn request_addresses(
    conn: &ConnCtx,
    head: &pc::decide::RequestHead,
) -> pc::lb::ConnectionAddresses {
    if conn.trusted_hops == 0 {
        return conn.addresses;
    }
    let client = client_address(conn, &head.headers);
    pc::lb::ConnectionAddresses {
        remote: Some(SocketAddr::new(
            client.address,
            conn.addresses.remote.map_or(0, |r| r.port()),
        )),
        local: conn.addresses.local,
    }
}

/// `ip` as text in `buf`, without allocating.
fn ip_text(ip: std::net::IpAddr, buf: &mut [u8; 39]) -> Option<&[u8]> {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{ip}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    buf.get(..len)
}

/// The headers the gateway sets on an upstream request (see `forward_request`).
#[derive(Debug, Default)]
struct Added<'a> {
    fields: [(&'static str, &'a [u8]); 5],
    len: usize,
}

impl<'a> Added<'a> {
    fn push(&mut self, name: &'static str, value: &'a [u8]) {
        if let Some(slot) = self.fields.get_mut(self.len) {
            *slot = (name, value);
            self.len += 1;
        }
    }

    fn fields(&self) -> &[(&'static str, &'a [u8])] {
        self.fields.get(..self.len).unwrap_or_default()
    }
}

/// What the access log line of a forwarded request takes from the forward: gathered before
/// the first attempt, completed with the endpoint of the last.
#[derive(Default)]
struct Forwarded {
    bytes_received: Option<Arc<AtomicU64>>,
    xff: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    endpoint: Option<SocketAddr>,
}

/// The access log line of a forwarded request (`None` with the log off).
fn make_log(
    ctx: &Ctx<'_>,
    head: &pc::decide::RequestHead,
    fields: Forwarded,
    status: StatusCode,
    flags: &'static str,
    upstream_service_time: Option<u64>,
) -> Option<Box<PendingLog>> {
    let Forwarded {
        bytes_received,
        xff: xff_value,
        request_id,
        endpoint: upstream_host,
    } = fields;
    ctx.conn.worker.logging().then(|| {
        Box::new(PendingLog {
            worker: Arc::clone(&ctx.conn.worker),
            start: ctx.log_start(),
            method: ctx.method.clone(),
            path: head
                .headers
                .get(pc::decide::X_ENVOY_ORIGINAL_PATH)
                .cloned()
                .or_else(|| HeaderValue::from_str(&head.path).ok()),
            version: ctx.version,
            status: status.as_u16(),
            flags,
            bytes_received,
            upstream_service_time,
            xff: xff_value,
            user_agent: head.headers.get(USER_AGENT).cloned(),
            request_id,
            authority: HeaderValue::from_str(&head.authority).ok(),
            upstream_host,
        })
    })
}

/// How requests to `cluster` go upstream: over HTTP/2 when the cluster's protocol says so (or,
/// under `useClientProtocol`, when the downstream request's `version` is HTTP/2), and with its
/// connection-pool limits.
fn up_options(cluster: &ClusterRt, version: Version) -> UpOptions {
    let policy = &cluster.plan.policy;
    UpOptions {
        http2: match policy.upstream_protocol {
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::UseDownstream => version == Version::HTTP_2,
            _ => false,
        },
        max_requests_per_connection: policy.max_requests_per_connection,
        idle_timeout: policy.idle_timeout,
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_mirror(
    worker: &Arc<Worker>,
    cluster: &ClusterRt,
    client: UpClient,
    options: UpOptions,
    body: UpBody,
    method: &http::Method,
    path: &PathAndQuery,
    headers: &HeaderMap,
    set: &[(&str, &[u8])],
    authority: &str,
) {
    let Some(ep) = cluster.pick_endpoint(worker.aux()) else {
        return;
    };
    let scheme = if cluster.tls.is_some() {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    };
    let mut parts = Uri::from_static("/").into_parts();
    parts.scheme = Some(scheme);
    parts.authority = Some(ep.authority.clone());
    parts.path_and_query = Some(path.clone());
    let Ok(uri) = Uri::from_parts(parts) else {
        return;
    };
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers.clone();
    super::upstream::set_fields(req.headers_mut(), set);
    // Envoy appends `-shadow` to the host of mirrored requests.
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => format!("{h}-shadow:{p}"),
        _ => format!("{authority}-shadow"),
    };
    if let Ok(v) = HeaderValue::from_str(&host) {
        req.headers_mut().insert(HOST, v);
    }
    let stats = Arc::clone(&cluster.stats);
    let worker = Arc::clone(worker);
    tokio::spawn(async move {
        let sent =
            tokio::time::timeout(Duration::from_secs(30), client.request(req, options)).await;
        match sent {
            Ok(Ok(resp)) => {
                stats.codes.inc(worker.index(), resp.status().as_u16());
                // Drain the body so that the connection goes back to the pool.
                let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
            }
            _ => stats.event(worker.index(), ClusterEvent::ConnectFail),
        }
    });
}
