//! HTTP/1.1 as a proxy needs it, with no I/O, both ways: heads parsed with `httparse` into
//! header maps whose values share the read buffer (responses from upstreams, requests from
//! clients), heads written straight from a message's parts, and the message body framing of
//! RFC 9112 §6 (length, chunked, until close). The embedder moves the bytes; the example
//! gateway drives it from the request's own task, without connection tasks or channels in
//! between.
//!
//! ```
//! use bytes::BytesMut;
//! use http::Method;
//! use portcullis_proxy_core::h1::{Decoded, parse_response_head, response_framing};
//!
//! let mut buf = BytesMut::from(
//!     &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"[..],
//! );
//! let head = parse_response_head(&mut buf)?.expect("a complete head");
//! let (mut framing, reusable) = response_framing(&Method::GET, &head)?;
//! assert!(reusable);
//! assert_eq!(framing.decode(&mut buf)?, Decoded::Data("ok".into()));
//! assert_eq!(framing.decode(&mut buf)?, Decoded::Done);
//! # Ok::<(), portcullis_proxy_core::h1::ProtocolError>(())
//! ```

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, DATE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use smallvec::SmallVec;

pub use crate::framing::BodyFraming;
use crate::rejection::Rejection;

/// Largest head accepted (Envoy's default for headers is 60 KiB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers accepted in a head (hyper's and Envoy's default).
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (with extensions) or trailer line.
const MAX_LINE: usize = 4096;

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The head is not HTTP/1.x.
    Head(&'static str),
    /// The head is larger than [`MAX_HEAD_BYTES`] or has more than [`MAX_HEADERS`] headers.
    HeadTooLarge,
    /// `content-length` is not a number, or its values disagree.
    ContentLength,
    /// The chunked body is malformed.
    Chunk(&'static str),
    /// The connection ended before the body did.
    Truncated,
    /// The request head breaks one of the rules of [`hygiene`](crate::hygiene) (its body
    /// framing, for [`RequestHead::body_framing`]).
    Request(Rejection),
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Head(what) => write!(f, "malformed head: {what}"),
            Self::HeadTooLarge => write!(
                f,
                "head larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers"
            ),
            Self::ContentLength => f.write_str("invalid content-length"),
            Self::Chunk(what) => write!(f, "malformed chunked body: {what}"),
            Self::Truncated => f.write_str("connection closed before the end of the body"),
            Self::Request(r) => write!(f, "request refused: {r}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Writes `name: value` and the line end.
fn write_field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes `set`'s headers.
fn write_set(set: &[(&str, &[u8])], out: &mut Vec<u8>) {
    for (name, value) in set {
        write_field(name.as_bytes(), value, out);
    }
}

/// Writes every header but those `set` replaces and `content-length` when `framing` replaces
/// it, then the framing header.
fn write_headers(
    headers: &HeaderMap,
    set: &[(&str, &[u8])],
    framing: BodyFraming,
    out: &mut Vec<u8>,
) {
    for (name, value) in headers {
        if (name == CONTENT_LENGTH && framing != BodyFraming::None)
            || set.iter().any(|(n, _)| name.as_str() == *n)
        {
            continue;
        }
        write_field(name.as_str().as_bytes(), value.as_bytes(), out);
    }
    framing.write_header(out);
}

/// Writes `METHOD target HTTP/1.1`, the headers, the headers `set` gives (names in lower
/// case; they replace the map's of the same name) and the framing header into `out`. A proxy
/// sets what it adds (`host`, forwarding headers) this way without inserting it into the map.
/// The caller has removed hop-by-hop headers (so no `transfer-encoding` is left), and checked
/// that the values it sets hold no line breaks.
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use portcullis_proxy_core::h1::{BodyFraming, encode_request_head};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-proto", HeaderValue::from_static("ftp"));
/// let mut out = Vec::new();
/// let set: [(&str, &[u8]); 2] = [("host", b"shop:80"), ("x-forwarded-proto", b"http")];
/// encode_request_head(&Method::GET, "/", &headers, &set, BodyFraming::None, &mut out);
/// assert_eq!(out, b"GET / HTTP/1.1\r\nhost: shop:80\r\nx-forwarded-proto: http\r\n\r\n");
/// ```
pub fn encode_request_head(
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    set: &[(&str, &[u8])],
    framing: BodyFraming,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_set(set, out);
    write_headers(headers, set, framing, out);
    out.extend_from_slice(b"\r\n");
}

/// Writes an HTTP/1.1 status line, the headers and the framing header into `out`. `date` is
/// written as the `date` header when `headers` has none (origin servers must send one, RFC
/// 9110 §6.6.1, and a proxy answering locally is one); `close` adds `connection: close`,
/// telling the client that this connection ends after the response. The caller has removed
/// hop-by-hop headers.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use portcullis_proxy_core::h1::{BodyFraming, encode_response_head};
///
/// let mut out = Vec::new();
/// encode_response_head(StatusCode::OK, &HeaderMap::new(), BodyFraming::Length(2), None, false, &mut out);
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
/// ```
pub fn encode_response_head(
    status: StatusCode,
    headers: &HeaderMap,
    framing: BodyFraming,
    date: Option<&[u8]>,
    close: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(headers, &[], framing, out);
    if let Some(date) = date
        && !headers.contains_key(DATE)
    {
        write_field(b"date", date, out);
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether `name` is a header that only speaks to one connection (RFC 9110 §7.6.1), which a
/// proxy does not pass on: `connection`, `keep-alive`, `proxy-connection`, `te`,
/// `transfer-encoding`, `upgrade`.
fn is_hop_by_hop(name: &[u8]) -> bool {
    // By length first: one comparison at most for most names.
    match name.len() {
        2 => name.eq_ignore_ascii_case(b"te"),
        7 => name.eq_ignore_ascii_case(b"upgrade"),
        10 => name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive"),
        16 => name.eq_ignore_ascii_case(b"proxy-connection"),
        17 => name.eq_ignore_ascii_case(b"transfer-encoding"),
        _ => false,
    }
}

/// Writes an upstream's response head on to an HTTP/1.1 client, straight from the lines read:
/// the status line; every header but the connection-only ones (`connection`, `keep-alive`,
/// `proxy-connection`, `te`, `transfer-encoding`, `upgrade`, and those `connection` names), `content-length` when `framing` replaces it (or
/// `transfer-encoding` overrode it), and the headers `set` replaces; then `set`, `date` when
/// the upstream sent none, the framing header, and `connection: close` when `close`. Names
/// are written in lower case, as Envoy writes them.
///
/// ```
/// use bytes::BytesMut;
/// use portcullis_proxy_core::h1::{BodyFraming, encode_forwarded_response_head, parse_response_head};
///
/// let mut buf = BytesMut::from(
///     &b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\ncontent-length: 2\r\n\r\nok"[..],
/// );
/// let head = parse_response_head(&mut buf)?.expect("a complete head");
/// let mut out = Vec::new();
/// encode_forwarded_response_head(&head, &[("server", b"istio-envoy")], BodyFraming::Length(2), None, false, &mut out);
/// assert_eq!(
///     String::from_utf8_lossy(&out),
///     "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nserver: istio-envoy\r\ncontent-length: 2\r\n\r\n"
/// );
/// # Ok::<(), portcullis_proxy_core::h1::ProtocolError>(())
/// ```
pub fn encode_forwarded_response_head(
    head: &ResponseHead,
    set: &[(&str, &[u8])],
    framing: BodyFraming,
    date: Option<&[u8]>,
    close: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(head.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let named = if head.facts.connection_names_others {
        head.get("connection").unwrap_or_default()
    } else {
        b""
    };
    let skip_length = framing != BodyFraming::None || head.facts.transfer_encoding.is_some();
    let mut has_date = false;
    out.reserve(head.raw.len() + 192);
    for (name, value) in head.fields() {
        if is_hop_by_hop(name)
            || (skip_length && name.eq_ignore_ascii_case(b"content-length"))
            || set
                .iter()
                .any(|(n, _)| name.eq_ignore_ascii_case(n.as_bytes()))
            || (!named.is_empty()
                && named
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(name)))
        {
            continue;
        }
        has_date |= name.eq_ignore_ascii_case(b"date");
        let at = out.len();
        write_field(name, value, out);
        if let Some(written) = out.get_mut(at..at + name.len()) {
            written.make_ascii_lowercase();
        }
    }
    write_set(set, out);
    if let Some(date) = date.filter(|_| !has_date) {
        write_field(b"date", date, out);
    }
    framing.write_header(out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A response head taken off the read buffer. Its header lines stay as they were read — a
/// proxy mostly passes them on: [`ResponseHead::get`] finds one,
/// [`ResponseHead::header_map`] builds an `http::HeaderMap` when one is needed, and
/// [`encode_forwarded_response_head`] writes the head on to a client with no map at all.
/// Connection-only headers are left out (see [`parse_response_head`]).
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The status code.
    pub status: StatusCode,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    raw: Bytes,
    spans: Spans,
    facts: FramingFacts,
}

impl ResponseHead {
    /// The header lines in order, name and value as sent.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().filter_map(|span| field(&self.raw, span))
    }

    /// The first value of the header `name` (compared without regard to case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The headers as a map (names lower-cased, values sharing the bytes read), without
    /// `content-length` when `transfer-encoding` overrides it.
    pub fn header_map(&self) -> Result<HeaderMap, ProtocolError> {
        let skip_length = self.facts.transfer_encoding.is_some();
        header_map(&self.raw, &self.spans, self.spans.len(), |name| {
            skip_length && name.eq_ignore_ascii_case(b"content-length")
        })
    }

    /// A map of only the headers named in `names` (lower case): what a decision that reads a
    /// few headers needs, for the price of the ones present.
    pub fn header_map_of(&self, names: &[HeaderName]) -> Result<HeaderMap, ProtocolError> {
        // Usually none of them is there: a look at the lengths tells, and nothing is built.
        if !self.spans.iter().any(|span| {
            names
                .iter()
                .any(|n| u32::try_from(n.as_str().len()) == Ok(span.name_len))
        }) {
            return Ok(HeaderMap::new());
        }
        header_map(&self.raw, &self.spans, 0, |name| {
            !names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_str().as_bytes()))
        })
    }
}

/// A header line's name and value in `raw`.
fn field<'a>(raw: &'a Bytes, span: &Span) -> Option<(&'a [u8], &'a [u8])> {
    let (name_at, name_end) = span.name(raw)?;
    let (value_at, value_end) = span.value(raw)?;
    Some((raw.get(name_at..name_end)?, raw.get(value_at..value_end)?))
}

/// The headers that decide a message's framing and persistence, read once during parsing.
#[derive(Debug, Default, Clone)]
struct FramingFacts {
    /// `content-length` values agree (or there are none): the length, if any.
    content_length: Option<Result<u64, ProtocolError>>,
    /// `transfer-encoding` is present; whether its last coding is `chunked`.
    transfer_encoding: Option<bool>,
    /// `connection` lists `close`.
    close: bool,
    /// `connection` lists `keep-alive` (HTTP/1.0 persistence).
    keep_alive: bool,
    /// `upgrade` is present.
    upgrade: bool,
    /// `expect` is present.
    expect: bool,
    /// `connection` names other headers (or `upgrade`): those are connection-only too.
    connection_names_others: bool,
}

impl FramingFacts {
    /// Notes what `name: value` says about framing; `false` for a header that only speaks to
    /// this connection and is left out of the map (see [`parse_request_head`]).
    fn note(&mut self, name: &[u8], value: &[u8]) -> bool {
        // By length first: most headers are none of these, and most lengths rule them out.
        match name.len() {
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                for part in value.split(|b| *b == b',') {
                    let n = parse_decimal(part.trim_ascii());
                    self.content_length = Some(match (self.content_length, n) {
                        (Some(Err(e)), _) => Err(e),
                        (_, None) => Err(ProtocolError::ContentLength),
                        (Some(Ok(l)), Some(n)) if l != n => Err(ProtocolError::ContentLength),
                        (_, Some(n)) => Ok(n),
                    });
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                let last = value
                    .split(|b| *b == b',')
                    .map(<[u8]>::trim_ascii)
                    .rfind(|t| !t.is_empty());
                match last {
                    Some(t) => self.transfer_encoding = Some(t.eq_ignore_ascii_case(b"chunked")),
                    None => {
                        self.transfer_encoding.get_or_insert(false);
                    }
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                let mut names_others = false;
                for t in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    let close = t.eq_ignore_ascii_case(b"close");
                    let keep_alive = t.eq_ignore_ascii_case(b"keep-alive");
                    self.close |= close;
                    self.keep_alive |= keep_alive;
                    names_others |= !(close || keep_alive || t.is_empty());
                }
                // Kept only when it names other headers (or `upgrade`), which a proxy must
                // see to remove them or to pass an upgrade on.
                self.connection_names_others |= names_others;
                return names_others;
            }
            10 if name.eq_ignore_ascii_case(b"keep-alive") => return false,
            7 if name.eq_ignore_ascii_case(b"upgrade") => self.upgrade = true,
            6 if name.eq_ignore_ascii_case(b"expect") => self.expect = true,
            _ => {}
        }
        true
    }

    /// Whether the connection may carry another message after this one.
    fn persistent(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// Where a header's name and value lie in the head, as offsets from its first byte. A head is
/// at most [`MAX_HEAD_BYTES`], so 32 bits hold any offset; a span that does not fit reads as
/// out of range (and the header as malformed) rather than wrapping.
#[derive(Debug, Clone, Copy)]
struct Span {
    name_at: u32,
    name_len: u32,
    value_at: u32,
    value_len: u32,
}

impl Span {
    fn new(name_at: usize, name_len: usize, value_at: usize, value_len: usize) -> Self {
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            name_at: narrow(name_at),
            name_len: narrow(name_len),
            value_at: narrow(value_at),
            value_len: narrow(value_len),
        }
    }

    /// `raw[at..at + len]`, if it lies within `raw`.
    fn slice(raw: &[u8], at: u32, len: u32) -> Option<(usize, usize)> {
        let at = usize::try_from(at).ok()?;
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        (end <= raw.len()).then_some((at, end))
    }

    fn name(self, raw: &[u8]) -> Option<(usize, usize)> {
        Self::slice(raw, self.name_at, self.name_len)
    }

    fn value(self, raw: &[u8]) -> Option<(usize, usize)> {
        Self::slice(raw, self.value_at, self.value_len)
    }
}

/// The spans of a head's headers, in order: inline up to a dozen (a typical head has fewer),
/// so parsing a head allocates nothing for them.
type Spans = SmallVec<[Span; 12]>;

/// Notes the framing facts of `headers` and where they lie relative to `base`.
fn spans_of(headers: &[httparse::Header<'_>], base: *const u8, facts: &mut FramingFacts) -> Spans {
    let base = base as usize;
    let mut spans = Spans::new();
    for h in headers {
        if !facts.note(h.name.as_bytes(), h.value) {
            continue;
        }
        let name = (h.name.as_ptr() as usize).wrapping_sub(base);
        let value = (h.value.as_ptr() as usize).wrapping_sub(base);
        spans.push(Span::new(name, h.name.len(), value, h.value.len()));
    }
    spans
}

/// The header map of a head split off the buffer (the values share its bytes), without the
/// headers `skip` names.
fn header_map(
    head: &Bytes,
    spans: &[Span],
    capacity: usize,
    skip: impl Fn(&[u8]) -> bool,
) -> Result<HeaderMap, ProtocolError> {
    let mut headers = HeaderMap::with_capacity(capacity);
    for span in spans {
        let name = span
            .name(head)
            .and_then(|(at, end)| head.get(at..end))
            .ok_or(ProtocolError::Head("header name"))?;
        if skip(name) {
            continue;
        }
        let name = HeaderName::from_bytes(name).map_err(|_| ProtocolError::Head("header name"))?;
        let value = span
            .value(head)
            .map(|(at, end)| head.slice(at..end))
            .ok_or(ProtocolError::Head("header value"))?;
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| ProtocolError::Head("header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The length of a complete head, `None` while incomplete, or why it is refused.
fn head_len(
    parsed: httparse::Result<usize>,
    buffered: usize,
) -> Result<Option<usize>, ProtocolError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => {
            Err(ProtocolError::HeadTooLarge)
        }
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buffered >= MAX_HEAD_BYTES => {
            Err(ProtocolError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ProtocolError::HeadTooLarge),
        Err(e) => Err(ProtocolError::Head(error_text(e))),
    }
}

/// Parses a response head at the start of `buf`. `Ok(None)`: incomplete, read more. On success
/// the head's bytes are removed from `buf` (the head keeps sharing them). As in
/// [`parse_request_head`], `keep-alive` and a `connection` header saying only `close` or
/// `keep-alive` are read into the framing but left out of the head's headers.
pub fn parse_response_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, ProtocolError> {
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let Some(len) = head_len(parsed, buf.len())? else {
        return Ok(None);
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(ProtocolError::Head("status code"))?;
    let version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut facts = FramingFacts::default();
    let spans = spans_of(response.headers, buf.as_ptr(), &mut facts);
    let raw = buf.split_to(len).freeze();
    Ok(Some(ResponseHead {
        status,
        version,
        raw,
        spans,
        facts,
    }))
}

/// A request head taken off the read buffer.
#[derive(Debug)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The request target as sent (origin form `/path?query`, absolute form, `*`, or an
    /// authority for `CONNECT`).
    pub target: Uri,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: Version,
    /// The headers, in order; values share the bytes read.
    pub headers: HeaderMap,
    /// The head's bytes as read.
    raw: Bytes,
    facts: FramingFacts,
}

impl RequestHead {
    /// How the request body is framed (RFC 9112 §6.3), by the rules of
    /// [`framing::request_body_framing`](crate::framing::request_body_framing): chunked for
    /// one `transfer-encoding: chunked`, by `content-length` otherwise
    /// ([`BodyFraming::None`] for none or `0`). Both together, another transfer coding and a
    /// bad or repeated `content-length` are [`ProtocolError::Request`] errors (the server
    /// answers with the rejection's status and closes).
    pub fn body_framing(&self) -> Result<BodyFraming, ProtocolError> {
        crate::framing::request_body_framing(&self.method, &self.headers)
            .map_err(ProtocolError::Request)
    }

    /// Whether the client lets the connection carry another request after this one
    /// (HTTP/1.1 unless `connection: close`; HTTP/1.0 only with `connection: keep-alive`).
    pub fn keep_alive(&self) -> bool {
        self.facts.persistent(self.version)
    }

    /// Whether the request asks to leave HTTP/1.1 on this connection: an `upgrade` header
    /// (WebSocket, h2c) or the `CONNECT` method.
    pub fn switches_protocol(&self) -> bool {
        self.facts.upgrade || self.method == Method::CONNECT
    }

    /// Whether the request has an `expect` header (`100-continue`).
    pub fn expects(&self) -> bool {
        self.facts.expect
    }

    /// The head's bytes as read: what another HTTP/1 implementation needs to take the
    /// connection over from this request on.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}

/// Parses a request head at the start of `buf`, with at most `max_headers` headers (up to
/// [`MAX_HEADERS`]) and [`MAX_HEAD_BYTES`]. `Ok(None)`: incomplete, read more. On success the
/// head's bytes are removed from `buf` (header values and the target keep sharing them); on an
/// error `buf` holds what it held before.
///
/// The connection-only headers a proxy removes anyway — `keep-alive`, and a `connection` that
/// says nothing but `close` or `keep-alive` — are read (see [`RequestHead::keep_alive`]) but
/// left out of the map; a `connection` naming other headers, or `upgrade`, stays, because the
/// proxy needs it to remove them or to pass the upgrade on.
///
/// ```
/// use bytes::BytesMut;
/// use portcullis_proxy_core::h1::{BodyFraming, parse_request_head};
///
/// let mut buf = BytesMut::from(&b"GET /a?b HTTP/1.1\r\nhost: shop\r\n\r\nGET /next"[..]);
/// let head = parse_request_head(&mut buf, 100)?.expect("a complete head");
/// assert_eq!(head.target.path(), "/a");
/// assert_eq!(head.headers["host"], "shop");
/// assert_eq!(head.body_framing()?, BodyFraming::None);
/// assert!(head.keep_alive());
/// assert_eq!(&buf[..], b"GET /next");
/// # Ok::<(), portcullis_proxy_core::h1::ProtocolError>(())
/// ```
pub fn parse_request_head(
    buf: &mut BytesMut,
    max_headers: usize,
) -> Result<Option<RequestHead>, ProtocolError> {
    let mut slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let slots = slots
        .get_mut(..max_headers.min(MAX_HEADERS))
        .unwrap_or_default();
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buf,
        slots,
    );
    let Some(len) = head_len(parsed, buf.len())? else {
        return Ok(None);
    };
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(ProtocolError::Head("method"))?;
    let version = if request.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let base = buf.as_ptr() as usize;
    let target_span = request
        .path
        .map(|p| ((p.as_ptr() as usize).wrapping_sub(base), p.len()))
        .ok_or(ProtocolError::Head("request target"))?;
    let mut facts = FramingFacts::default();
    let spans = spans_of(request.headers, buf.as_ptr(), &mut facts);
    let raw = buf.split_to(len).freeze();
    let parts = target_span
        .0
        .checked_add(target_span.1)
        .filter(|end| *end <= raw.len() && target_span.0 <= *end)
        .map(|end| raw.slice(target_span.0..end))
        .and_then(|t| Uri::from_maybe_shared(t).ok())
        .ok_or(ProtocolError::Head("request target"))
        .and_then(|target| Ok((target, header_map(&raw, &spans, spans.len(), |_| false)?)));
    match parts {
        Ok((target, headers)) => Ok(Some(RequestHead {
            method,
            target,
            version,
            headers,
            raw,
            facts,
        })),
        Err(e) => {
            // Put the head back: whoever handles the error sees the bytes as they came.
            let mut whole = BytesMut::with_capacity(raw.len() + buf.len());
            whole.extend_from_slice(&raw);
            whole.extend_from_slice(buf);
            *buf = whole;
            Err(e)
        }
    }
}

fn error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "line ending",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::Version => "version",
        _ => "syntax",
    }
}

/// How a response body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(Chunked),
    /// Until the upstream closes the connection.
    UntilClose,
}

/// The body framing of a response to `method`, and whether the connection can carry another
/// request afterwards. A `content-length` that `transfer-encoding` overrides is ignored (and
/// left out of [`ResponseHead::header_map`]).
pub fn response_framing(
    method: &Method,
    head: &ResponseHead,
) -> Result<(Framing, bool), ProtocolError> {
    let facts = &head.facts;
    let mut reusable = facts.persistent(head.version);
    let status = head.status.as_u16();
    if *method == Method::HEAD || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok((Framing::Length(0), reusable));
    }
    if let Some(chunked) = facts.transfer_encoding {
        if facts.content_length.is_some() {
            // Both: the transfer coding wins, and the connection is not trusted again.
            reusable = false;
        }
        return Ok(if chunked {
            (Framing::Chunked(Chunked::default()), reusable)
        } else {
            (Framing::UntilClose, false)
        });
    }
    Ok(match facts.content_length.transpose()? {
        Some(n) => (Framing::Length(n), reusable),
        None => (Framing::UntilClose, false),
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// What the body decoder got out of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no more of the body: read from the connection.
    NeedMore,
    /// The body is complete.
    Done,
}

impl Framing {
    /// Takes the next piece of the body out of `buf`. For [`Framing::UntilClose`], the end
    /// is the connection's: the caller reports it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        match self {
            Self::Length(0) => Ok(Decoded::Done),
            Self::Length(remaining) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                *remaining -= n as u64;
                Ok(Decoded::Data(buf.split_to(n).freeze()))
            }
            Self::Chunked(chunked) => chunked.decode(buf),
            Self::UntilClose => {
                if buf.is_empty() {
                    Ok(Decoded::NeedMore)
                } else {
                    Ok(Decoded::Data(buf.split().freeze()))
                }
            }
        }
    }

    /// Whether nothing more will come.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Self::Length(0)
                | Self::Chunked(Chunked {
                    state: ChunkState::Done,
                    ..
                })
        )
    }

    /// Bytes left, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            _ => None,
        }
    }
}

/// The chunked-coding decoder (RFC 9112 §7.1). Chunk extensions and trailers are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        loop {
            match &mut self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                ChunkState::DataEnd => {
                    let crlf = b"\r\n".as_slice();
                    let seen = crlf.len().min(buf.len());
                    if buf.get(..seen) != crlf.get(..seen) {
                        return Err(ProtocolError::Chunk("no CRLF after chunk data"));
                    }
                    if seen < crlf.len() {
                        return Ok(Decoded::NeedMore);
                    }
                    let _ = buf.split_to(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                        return Ok(Decoded::Done);
                    }
                    self.trailer_bytes += line.len();
                    if self.trailer_bytes > MAX_HEAD_BYTES {
                        return Err(ProtocolError::Chunk("trailers too large"));
                    }
                }
                ChunkState::Done => return Ok(Decoded::Done),
            }
        }
    }
}

/// Takes one line (without its CRLF) off `buf`; `None` when the buffer holds no full line.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ProtocolError> {
    let Some(end) = buf.iter().position(|b| *b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Err(ProtocolError::Chunk("line too long"))
        } else {
            Ok(None)
        };
    };
    if end > MAX_LINE {
        return Err(ProtocolError::Chunk("line too long"));
    }
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() != Some(&b'\r') {
        return Err(ProtocolError::Chunk("bare LF"));
    }
    line.truncate(end - 1);
    Ok(Some(line))
}

/// The hexadecimal size at the start of a chunk-size line (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 {
        return Err(ProtocolError::Chunk("chunk size"));
    }
    digits.iter().try_fold(0u64, |n, d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(ProtocolError::Chunk("chunk size")),
        };
        Ok(n << 4 | u64::from(v))
    })
}

/// The chunk header for `len` bytes of data.
pub fn chunk_header(len: usize) -> Bytes {
    Bytes::from(format!("{len:x}\r\n"))
}

/// The end of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn head(text: &str) -> (ResponseHead, BytesMut) {
        let mut buf = BytesMut::from(text.as_bytes());
        let head = parse_response_head(&mut buf).unwrap().expect("complete");
        (head, buf)
    }

    fn body(framing: &mut Framing, input: &[u8]) -> Result<(Vec<u8>, bool), ProtocolError> {
        // Fed one byte at a time: every split point of the input is exercised.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in input {
            buf.extend_from_slice(&[*b]);
            loop {
                match framing.decode(&mut buf)? {
                    Decoded::Data(d) => out.extend_from_slice(&d),
                    Decoded::NeedMore => break,
                    Decoded::Done => return Ok((out, true)),
                }
            }
        }
        Ok((out, framing.is_done()))
    }

    #[test]
    fn request_heads_carry_their_framing() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("b:80"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("9"));
        let mut out = Vec::new();
        encode_request_head(
            &Method::POST,
            "/p?q",
            &headers,
            &[],
            BodyFraming::Length(3),
            &mut out,
        );
        assert_eq!(
            out,
            b"POST /p?q HTTP/1.1\r\nhost: b:80\r\ncontent-length: 3\r\n\r\n"
        );
        out.clear();
        encode_request_head(
            &Method::GET,
            "/",
            &headers,
            &[],
            BodyFraming::Chunked,
            &mut out,
        );
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nhost: b:80\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        out.clear();
        // What the proxy sets replaces the client's, and comes first.
        let set: [(&str, &[u8]); 2] = [("host", b"up:9"), ("x-forwarded-for", b"1.2.3.4")];
        encode_request_head(
            &Method::GET,
            "/",
            &headers,
            &set,
            BodyFraming::None,
            &mut out,
        );
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nhost: up:9\r\nx-forwarded-for: 1.2.3.4\r\ncontent-length: 9\r\n\r\n"
        );
    }

    fn request(text: &str) -> Result<RequestHead, ProtocolError> {
        let mut buf = BytesMut::from(text.as_bytes());
        parse_request_head(&mut buf, MAX_HEADERS).map(|h| h.expect("complete"))
    }

    #[test]
    fn request_heads_say_how_their_body_is_framed() {
        use crate::hygiene::Rejection;
        let framing = |extra: &str| {
            request(&format!("POST / HTTP/1.1\r\nhost: a\r\n{extra}\r\n"))
                .and_then(|h| h.body_framing())
        };
        let refused = |r| Err(ProtocolError::Request(r));
        assert_eq!(framing(""), Ok(BodyFraming::None));
        assert_eq!(framing("content-length: 0\r\n"), Ok(BodyFraming::None));
        assert_eq!(
            framing("content-length: 12\r\n"),
            Ok(BodyFraming::Length(12))
        );
        // Repeated or listed lengths are refused, even when they agree, as Envoy's parser
        // refuses them (framing.rs has the rules).
        assert_eq!(
            framing("content-length: 12\r\ncontent-length: 12\r\n"),
            refused(Rejection::InvalidContentLength)
        );
        assert_eq!(
            framing("content-length: 0, 0\r\n"),
            refused(Rejection::InvalidContentLength)
        );
        assert_eq!(
            framing("Content-Length: 1\r\ncontent-length: 2\r\n"),
            refused(Rejection::InvalidContentLength)
        );
        assert_eq!(
            framing("content-length: -1\r\n"),
            refused(Rejection::InvalidContentLength)
        );
        assert_eq!(
            framing("transfer-encoding: chunked\r\n"),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing("transfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n"),
            refused(Rejection::ContentLengthAndChunked)
        );
        assert_eq!(
            framing("transfer-encoding: chunked, gzip\r\n"),
            refused(Rejection::InvalidTransferEncoding)
        );
    }

    #[test]
    fn request_heads_know_persistence_and_protocol_switches() {
        let head = |text: &str| request(text).unwrap();
        assert!(head("GET / HTTP/1.1\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nconnection: x, Close\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.1\r\nupgrade: websocket\r\n\r\n").switches_protocol());
        assert!(head("CONNECT a:443 HTTP/1.1\r\n\r\n").switches_protocol());
        assert!(!head("GET / HTTP/1.1\r\n\r\n").switches_protocol());
        assert!(head("PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expects());
        let absolute = head("GET http://a.example/p?q HTTP/1.1\r\n\r\n");
        assert_eq!(absolute.target.host(), Some("a.example"));
        assert_eq!(absolute.target.path(), "/p");
    }

    #[test]
    fn request_heads_refused_leave_the_buffer_as_it_was() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nhost: a\r\n"[..]);
        assert!(parse_request_head(&mut buf, MAX_HEADERS).unwrap().is_none());
        assert_eq!(buf.len(), 25);
        for bad in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            // httparse takes this target; `Uri` does not.
            b"GET http:// HTTP/1.1\r\n\r\nrest",
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(
                parse_request_head(&mut buf, MAX_HEADERS).is_err(),
                "{bad:?}"
            );
            assert_eq!(&buf[..], bad);
        }
        let mut buf = BytesMut::from(&b"GET http:// HTTP/1.1\r\n\r\n"[..]);
        assert_eq!(
            parse_request_head(&mut buf, MAX_HEADERS).unwrap_err(),
            ProtocolError::Head("request target")
        );
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\n\r\n"[..]);
        assert_eq!(
            parse_request_head(&mut buf, 1).unwrap_err(),
            ProtocolError::HeadTooLarge
        );
    }

    #[test]
    fn response_heads_are_written_with_date_and_close_when_asked() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("7"));
        headers.insert("x-a", HeaderValue::from_static("b"));
        let mut out = Vec::new();
        encode_response_head(
            StatusCode::NOT_FOUND,
            &headers,
            BodyFraming::Chunked,
            Some(b"Sun, 22 Nov 2026 06:00:00 GMT"),
            true,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\nx-a: b\r\ntransfer-encoding: chunked\r\n\
             date: Sun, 22 Nov 2026 06:00:00 GMT\r\nconnection: close\r\n\r\n"
        );
        headers.insert(DATE, HeaderValue::from_static("upstream's"));
        let mut out = Vec::new();
        encode_response_head(
            StatusCode::OK,
            &headers,
            BodyFraming::None,
            Some(b"now"),
            false,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nx-a: b\r\ndate: upstream's\r\n\r\n"
        );
    }

    #[test]
    fn connection_only_headers_stay_out_of_the_map() {
        let (h, _) = head(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nx: 1\r\n\r\n",
        );
        assert_eq!(h.fields().collect::<Vec<_>>(), [(&b"x"[..], &b"1"[..])]);
        let (h, _) = head("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        assert!(h.get("connection").is_none());
        assert!(
            !response_framing(&Method::GET, &h).unwrap().1,
            "close still counts"
        );
        let (h, _) =
            head("HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ws\r\n\r\n");
        assert_eq!(h.get("connection"), Some(&b"Upgrade"[..]));
        let r = request("GET / HTTP/1.1\r\nconnection: close, x-secret\r\nx-secret: 1\r\n\r\n")
            .unwrap();
        assert_eq!(r.headers["connection"], "close, x-secret");
        assert!(!r.keep_alive());
        let r = request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(r.headers.is_empty());
        assert!(r.keep_alive());
    }

    #[test]
    fn forwarded_heads_drop_connection_only_headers_and_replace_what_the_proxy_sets() {
        let (h, _) = head(
            "HTTP/1.1 503 Service Unavailable\r\nServer: up\r\nConnection: close, X-Hop\r\n\
             X-Hop: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\
             Content-Length: 9\r\nDate: then\r\nUpgrade: h2c\r\nX-Kept: a\r\n\r\n",
        );
        let mut out = Vec::new();
        encode_forwarded_response_head(
            &h,
            &[
                ("server", b"istio-envoy"),
                ("x-envoy-upstream-service-time", b"4"),
            ],
            BodyFraming::Length(7),
            Some(b"now"),
            true,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\ndate: then\r\nx-kept: a\r\n\
             server: istio-envoy\r\nx-envoy-upstream-service-time: 4\r\n\
             content-length: 7\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn forwarded_header_lines_come_out_as_name_colon_space_value_whatever_their_spelling() {
        let (h, _) = head(
            "HTTP/1.1 200 OK\r\nX-Tight:1\r\nX-Wide:   2\r\nX-Trailing: 3  \r\nX-Usual: 4\r\n\
             X-Bare: 5\nX-Empty:\r\n\r\n",
        );
        let mut out = Vec::new();
        encode_forwarded_response_head(&h, &[], BodyFraming::None, None, false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nx-tight: 1\r\nx-wide: 2\r\nx-trailing: 3\r\nx-usual: 4\r\n\
             x-bare: 5\r\nx-empty: \r\n\r\n"
        );
    }

    #[test]
    fn forwarded_heads_keep_the_length_of_bodiless_answers() {
        let (h, _) = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
        let mut out = Vec::new();
        encode_forwarded_response_head(&h, &[], BodyFraming::None, Some(b"now"), false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-length: 12\r\ndate: now\r\n\r\n"
        );
        let view = h
            .header_map_of(&[HeaderName::from_static("grpc-status")])
            .unwrap();
        assert!(view.is_empty());
        assert_eq!(
            h.header_map_of(&[CONTENT_LENGTH]).unwrap()[CONTENT_LENGTH],
            "12"
        );
    }

    #[test]
    fn a_head_is_parsed_only_when_complete() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nserver: x\r\n"[..]);
        assert!(parse_response_head(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"content-length: 2\r\n\r\nok");
        let head = parse_response_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.get("Server"), Some(&b"x"[..]));
        assert_eq!(head.header_map().unwrap()["server"], "x");
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn oversized_and_malformed_heads_are_errors() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
        buf.extend_from_slice(&vec![b'a'; MAX_HEAD_BYTES]);
        assert_eq!(
            parse_response_head(&mut buf).unwrap_err(),
            ProtocolError::HeadTooLarge
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let mut buf = BytesMut::from(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes());
        assert_eq!(
            parse_response_head(&mut buf).unwrap_err(),
            ProtocolError::HeadTooLarge
        );
        let mut buf = BytesMut::from(&b"HTTP/1.1 2x0 OK\r\n\r\n"[..]);
        assert!(parse_response_head(&mut buf).is_err());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let (h, _) = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::Length(5), true))
        );
        assert_eq!(
            response_framing(&Method::HEAD, &h),
            Ok((Framing::Length(0), true))
        );
        let (h, _) = head("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::Length(0), true))
        );
        let (h, _) = head("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::UntilClose, false))
        );
        let (h, _) = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::Length(1), false))
        );
        let (h, _) =
            head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::Chunked(Chunked::default()), false))
        );
        assert!(!h.header_map().unwrap().contains_key(CONTENT_LENGTH));
        let (h, _) = head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::UntilClose, false))
        );
        let (h, _) = head("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n");
        assert_eq!(
            response_framing(&Method::GET, &h),
            Ok((Framing::Length(3), true))
        );
        for bad in ["3, 4", "-1", "", "1e3", "99999999999999999999"] {
            let (h, _) = head(&format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n"));
            assert_eq!(
                response_framing(&Method::GET, &h),
                Err(ProtocolError::ContentLength),
                "{bad}"
            );
        }
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut f = Framing::Length(3);
        assert_eq!(body(&mut f, b"abcdef"), Ok((b"abc".to_vec(), true)));
    }

    #[test]
    fn chunked_bodies_decode_at_every_split() {
        let mut f = Framing::Chunked(Chunked::default());
        let wire = b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
        assert_eq!(body(&mut f, wire), Ok((b"abc0123456789".to_vec(), true)));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [
            &b"g\r\n"[..],
            b"3\r\nabcX",
            b"3\nabc\r\n",
            b"ffffffffffffffff\r\n",
            b";\r\n",
        ] {
            let mut f = Framing::Chunked(Chunked::default());
            assert!(
                body(&mut f, wire).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let mut f = Framing::Chunked(Chunked::default());
        let long = vec![b'1'; MAX_LINE + 2];
        assert!(body(&mut f, &long).is_err());
    }

    proptest::proptest! {
        /// Whatever an upstream sends, reading it is an answer or an error, never a panic, and
        /// a body decodes the same however the bytes are split.
        #[test]
        fn any_bytes_and_any_split(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            chunked_prefix in proptest::bool::ANY,
            splits in proptest::collection::vec(0usize..512, 0..8),
        ) {
            let mut buf = BytesMut::from(&input[..]);
            if let Ok(Some(head)) = parse_response_head(&mut buf) {
                let _ = response_framing(&Method::GET, &head);
            }
            let wire: Vec<u8> = if chunked_prefix {
                [b"5\r\nhello\r\n".as_slice(), &input].concat()
            } else {
                input
            };
            let whole = decode_all(&wire, &[]);
            let mut cuts = splits;
            cuts.sort_unstable();
            proptest::prop_assert_eq!(decode_all(&wire, &cuts), whole);
        }
    }

    /// Decodes a chunked body fed in pieces cut at `cuts`: the data and how it ended.
    fn decode_all(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<bool, ProtocolError>) {
        let mut framing = Framing::Chunked(Chunked::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for end in cuts.iter().copied().chain([wire.len()]) {
            let end = end.clamp(start, wire.len());
            buf.extend_from_slice(&wire[start..end]);
            start = end;
            loop {
                match framing.decode(&mut buf) {
                    Ok(Decoded::Data(d)) => out.extend_from_slice(&d),
                    Ok(Decoded::NeedMore) => break,
                    Ok(Decoded::Done) => return (out, Ok(true)),
                    Err(e) => return (out, Err(e)),
                }
            }
        }
        (out, Ok(false))
    }
}
