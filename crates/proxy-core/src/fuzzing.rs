//! Entry points for fuzzing (feature `fuzzing`): each takes arbitrary bytes, must never panic,
//! and asserts the properties the crate promises. `fuzz/` calls them from cargo-fuzz targets, and
//! the regression tests replay every finding through them.

use arbitrary::{Result, Unstructured};
use http::uri::Scheme;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::action::{Destination, ForwardAction, RouteAction};
use crate::decide;
use crate::decide::Decision;
use crate::headers::HeaderOps;
use crate::redirect::{
    RedirectAction, RedirectPath, RedirectPort, build_redirect_location, https_redirect_location,
    require_tls_redirect,
};
use crate::request::RequestHead;
use crate::rewrite::{PathMatchKind, PathRewrite, RegexRewrite, prefix_rewrite, rewrite_path};
use crate::rt::SequenceRandom;

const PATHS: &[&str] = &[
    "/",
    "",
    "/a",
    "/a/b",
    "/api/v1?x=1",
    "/a?b#c",
    "/é/x",
    "?q",
    "/a//b",
    "//",
];
const PREFIXES: &[&str] = &["/", "/a", "/api/", "", "/é", "/A"];
const REPLACEMENTS: &[&str] = &["/", "", "/v2/", "/b", "x", "/$1", "/${1}", "/\\1"];
const REGEXES: &[&str] = &[
    "^/a(.*)$",
    "a",
    "",
    "(?i)/A",
    "^/([^/]+)(/.*)$",
    "\\d+",
    ".*",
    "$",
];
const SUBSTITUTIONS: &[&str] = &["\\1", "/x", "", "\\0\\0", "\\\\", "$1", "\\2/\\1", "\\9"];
const AUTHORITIES: &[&str] = &[
    "example.com",
    "example.com:80",
    "example.com:443",
    "[::1]:8080",
    "[::1]",
    "a:b:c",
    "",
    "x.com:99999",
    ":",
];
const SCHEMES: &[&str] = &["", "http", "https", "ftp"];
const NAMES: &[&str] = &["x-a", "origin", "host", ":authority", "X-B", "bad name", ""];
const VALUES: &[&str] = &["1", "", "https://a.com", "a\u{7f}", "é"];

/// One of `list`, or (one time in `one_in`) a short string from the fuzzer's bytes.
fn text(u: &mut Unstructured<'_>, list: &[&str], one_in: u8) -> Result<String> {
    if u.ratio(1, one_in)? {
        let s: &str = u.arbitrary()?;
        return Ok(s.chars().take(64).collect());
    }
    Ok((*u.choose(list)?).to_owned())
}

fn path_match_kind(u: &mut Unstructured<'_>) -> Result<PathMatchKind> {
    Ok(match u.int_in_range(0..=2u8)? {
        0 => PathMatchKind::Prefix(text(u, PREFIXES, 4)?),
        1 => PathMatchKind::Exact(text(u, PATHS, 4)?),
        _ => PathMatchKind::Regex,
    })
}

fn head(u: &mut Unstructured<'_>) -> Result<RequestHead> {
    let method = if u.arbitrary()? {
        Method::GET
    } else {
        Method::OPTIONS
    };
    let scheme = if u.arbitrary()? {
        Scheme::HTTP
    } else {
        Scheme::HTTPS
    };
    let mut headers = HeaderMap::new();
    for _ in 0..u.int_in_range(0..=3u8)? {
        let (name, value) = (text(u, NAMES, 6)?, text(u, VALUES, 6)?);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    let mut head = RequestHead::new(method, scheme, text(u, AUTHORITIES, 4)?, text(u, PATHS, 3)?)
        .with_headers(headers);
    if u.arbitrary()? {
        head = head.with_server_port(u.arbitrary()?);
    }
    Ok(head)
}

fn header_ops(u: &mut Unstructured<'_>) -> Result<HeaderOps> {
    let mut ops = HeaderOps::new();
    for _ in 0..u.int_in_range(0..=2u8)? {
        let (name, value) = (text(u, NAMES, 6)?, text(u, VALUES, 6)?);
        let next = match u.int_in_range(0..=2u8)? {
            0 => ops.clone().try_set(&name, &value),
            1 => ops.clone().try_add(&name, &value),
            _ => ops.clone().try_remove(&name),
        };
        if let Ok(next) = next {
            ops = next;
        }
    }
    Ok(ops)
}

fn path_rewrite(u: &mut Unstructured<'_>) -> Result<Option<PathRewrite>> {
    Ok(if u.arbitrary()? {
        Some(PathRewrite::Prefix {
            matched: path_match_kind(u)?,
            replacement: text(u, REPLACEMENTS, 4)?,
        })
    } else {
        RegexRewrite::new(&text(u, REGEXES, 3)?, &text(u, SUBSTITUTIONS, 3)?)
            .ok()
            .map(PathRewrite::Regex)
    })
}

fn redirect(u: &mut Unstructured<'_>) -> Result<Option<RedirectAction>> {
    let code = *u.choose(&[0u16, 301, 302, 303, 307, 308, 200, 399])?;
    let Ok(mut r) = RedirectAction::new(code) else {
        return Ok(None);
    };
    if u.arbitrary()? {
        r = r.with_scheme(text(u, SCHEMES, 4)?);
    }
    if u.arbitrary()? {
        r = r.with_authority(text(u, AUTHORITIES, 4)?);
    }
    r = r.with_port(match u.int_in_range(0..=2u8)? {
        0 => RedirectPort::ProtocolDefault,
        1 => RedirectPort::Port(u.arbitrary()?),
        _ => RedirectPort::FromRequestPort,
    });
    r = r.with_path(match u.int_in_range(0..=2u8)? {
        0 => RedirectPath::Keep,
        1 => RedirectPath::Replace(text(u, PATHS, 3)?),
        _ => RedirectPath::PrefixRewrite {
            matched: path_match_kind(u)?,
            replacement: text(u, REPLACEMENTS, 4)?,
        },
    });
    Ok(Some(r.with_response_headers(header_ops(u)?)))
}

/// Path rewrites, redirect `Location`s and whole decisions for generated actions and request
/// heads: nothing panics; a prefix rewrite is the replacement followed by the rest of the path;
/// a regex rewrite keeps the query; every `Location` starts with its scheme and `://`; the
/// `require_tls` redirect answers exactly the requests that did not arrive over TLS.
pub fn rewrite(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(head) = head(&mut u) else {
        return;
    };

    // Prefix rewrites.
    if let (Ok(kind), Ok(replacement)) = (path_match_kind(&mut u), text(&mut u, REPLACEMENTS, 4)) {
        let out = prefix_rewrite(&head.path, &kind, &replacement);
        assert!(out.starts_with(&replacement), "{out:?}");
        if let PathMatchKind::Prefix(prefix) = &kind
            && let Some(rest) = head.path.strip_prefix(prefix.as_str())
        {
            assert_eq!(out, format!("{replacement}{rest}"));
        }
    }

    // Path rewrites of either kind.
    if let Ok(Some(rewrite)) = path_rewrite(&mut u) {
        let out = rewrite_path(&head.path, &rewrite);
        if let PathRewrite::Regex(_) = rewrite
            && let Some(q) = head.path.find(['?', '#'])
        {
            let tail = head.path.get(q..).unwrap_or_default();
            assert!(out.ends_with(tail), "{out:?} lost {tail:?}");
        }
    }

    // Redirects.
    let redirect = redirect(&mut u).ok().flatten();
    if let Some(r) = &redirect {
        let location = build_redirect_location(r, &head);
        let scheme = r.scheme().unwrap_or(head.scheme.as_str());
        assert!(
            location.starts_with(&format!("{scheme}://")),
            "{location:?}"
        );
    }
    let location = https_redirect_location(&head);
    assert!(location.starts_with("https://"));
    assert_eq!(
        require_tls_redirect(&head).is_some(),
        head.scheme != Scheme::HTTPS
    );

    // A whole decision.
    let action: Option<RouteAction> = match (redirect, u.arbitrary::<bool>()) {
        (Some(r), Ok(true)) => Some(r.into()),
        _ => {
            let mut destinations = Vec::new();
            for i in 0..u.int_in_range(1..=3u8).unwrap_or(1) {
                let weight = u.int_in_range(0..=100u32).unwrap_or(1);
                destinations.push(
                    Destination::new(format!("c{i}"), weight)
                        .with_request_headers(header_ops(&mut u).unwrap_or_default()),
                );
            }
            ForwardAction::new(destinations).ok().map(|mut f| {
                f = f.with_request_headers(header_ops(&mut u).unwrap_or_default());
                if let Ok(Some(rewrite)) = path_rewrite(&mut u) {
                    f = f.with_path_rewrite(rewrite);
                }
                if let Ok(authority) = text(&mut u, AUTHORITIES, 4)
                    && !authority.is_empty()
                {
                    f = f.with_authority_rewrite(authority);
                }
                f.into()
            })
        }
    };
    let Some(action) = action else {
        return;
    };
    let draws: Vec<u64> = (0..4).map_while(|_| u.arbitrary().ok()).collect();
    let decision = decide(&action, &head, &mut SequenceRandom::new(draws));
    if let Decision::Forward(forward) = decision {
        assert!(
            !forward.upstream.headers.contains_key(http::header::HOST),
            "the upstream authority is carried apart from the headers"
        );
    }
}

/// An upstream's bytes through [`crate::h1`]: the response head read in pieces of arbitrary
/// sizes, its framing, then the body decoded whole and in pieces. Never panics; the two body
/// decodings agree (data, and whether and how it ended).
pub fn h1_response(data: &[u8]) {
    use bytes::BytesMut;

    use crate::h1::{Decoded, Framing, ProtocolError, parse_response_head, response_framing};

    let (control, wire) = data.split_at(data.len().min(9));
    let method = if control.first().is_some_and(|b| b & 1 == 1) {
        Method::HEAD
    } else {
        Method::GET
    };
    let cuts: Vec<usize> = control.iter().skip(1).map(|b| usize::from(*b)).collect();

    // The head, fed in pieces.
    let mut buf = BytesMut::new();
    let mut rest = wire;
    let mut piece = cuts.iter().copied().cycle().map(|c| c.max(1));
    let head = loop {
        match parse_response_head(&mut buf) {
            Ok(Some(head)) => break Some(head),
            Ok(None) if rest.is_empty() => break None,
            Ok(None) => {
                let n = piece.next().unwrap_or(1).min(rest.len());
                let (now, later) = rest.split_at(n);
                buf.extend_from_slice(now);
                rest = later;
            }
            Err(_) => break None,
        }
    };
    let Some(head) = head else { return };
    let _ = head.header_map();
    forwarded_head_reparses(&head);
    let Ok((framing, _reusable)) = response_framing(&method, &head) else {
        return;
    };
    buf.extend_from_slice(rest);
    let body = buf.freeze();

    fn decode(
        mut framing: Framing,
        body: &[u8],
        cuts: &[usize],
    ) -> (Vec<u8>, Result<bool, ProtocolError>) {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for end in cuts.iter().copied().chain([body.len()]) {
            let end = end.clamp(start, body.len());
            buf.extend_from_slice(body.get(start..end).unwrap_or_default());
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
        (out, Ok(framing.is_done()))
    }
    let mut sorted = cuts.clone();
    sorted.sort_unstable();
    let whole = decode(framing.clone(), &body, &[]);
    let split = decode(framing, &body, &sorted);
    assert_eq!(
        whole, split,
        "body decoding depends on how the bytes arrive"
    );
}

/// A head written on by [`crate::h1::encode_forwarded_response_head`] parses again (unless
/// the additions pushed it past the limits), with the same status, the proxy's headers, and no
/// connection-only header but the framing one it wrote.
fn forwarded_head_reparses(head: &crate::h1::ResponseHead) {
    use bytes::BytesMut;

    use crate::h1::{
        BodyFraming, ProtocolError, encode_forwarded_response_head, parse_response_head,
    };

    let mut out = Vec::new();
    encode_forwarded_response_head(
        head,
        &[("server", b"istio-envoy")],
        BodyFraming::Chunked,
        Some(b"Sun, 22 Nov 2026 06:00:00 GMT"),
        true,
        &mut out,
    );
    let mut again = BytesMut::from(&out[..]);
    let parsed = parse_response_head(&mut again);
    if matches!(parsed, Err(ProtocolError::HeadTooLarge)) {
        return;
    }
    assert!(
        matches!(parsed, Ok(Some(_))),
        "a forwarded head does not parse again: {parsed:?}"
    );
    let Ok(Some(forwarded)) = parsed else { return };
    assert!(again.is_empty(), "a forwarded head has bytes after its end");
    assert_eq!(forwarded.status, head.status);
    assert_eq!(forwarded.get("server"), Some(&b"istio-envoy"[..]));
    let mut framing = 0;
    for (name, _) in forwarded.fields() {
        let name = name.to_ascii_lowercase();
        assert!(
            !matches!(
                &name[..],
                b"keep-alive" | b"proxy-connection" | b"te" | b"upgrade" | b"content-length"
            ),
            "{name:?} was forwarded"
        );
        framing += usize::from(name == b"transfer-encoding");
    }
    assert_eq!(framing, 1, "one framing header");
}

/// A client's bytes through [`crate::h1::parse_request_head`], fed in pieces of arbitrary
/// sizes with a header limit from the input. Never panics; while a head is incomplete or
/// refused, the buffer holds exactly what was fed (nothing a server hands on to another HTTP
/// implementation is lost); a parsed head's raw bytes and what is left are what was fed; and
/// parsing everything at once gives the same outcome as parsing in pieces.
pub fn h1_request(data: &[u8]) {
    use bytes::BytesMut;

    use crate::h1::{RequestHead, parse_request_head};

    let (control, wire) = data.split_at(data.len().min(9));
    let max_headers = control.first().map_or(100, |b| usize::from(*b));
    let cuts: Vec<usize> = control.iter().skip(1).map(|b| usize::from(*b)).collect();

    fn summary(head: &RequestHead) -> (String, String, usize, Vec<(String, Vec<u8>)>) {
        (
            head.method.to_string(),
            head.target.to_string(),
            head.raw().len(),
            head.headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut piece = cuts.iter().copied().cycle().map(|c| c.max(1));
    let in_pieces = loop {
        let before = buf.clone();
        let parsed = parse_request_head(&mut buf, max_headers);
        assert!(
            matches!(parsed, Ok(Some(_))) || buf == before,
            "a refused or partial head changed the buffer"
        );
        match parsed {
            Ok(Some(head)) => {
                let mut again = head.raw().to_vec();
                again.extend_from_slice(&buf);
                assert_eq!(again, before, "a parsed head lost or changed bytes");
                let _ = head.body_framing();
                let _ = (head.keep_alive(), head.switches_protocol(), head.expects());
                break Some(Ok(summary(&head)));
            }
            Err(e) => break Some(Err(e)),
            Ok(None) if fed == wire.len() => break None,
            Ok(None) => {
                let n = piece.next().unwrap_or(1).min(wire.len() - fed);
                buf.extend_from_slice(wire.get(fed..fed + n).unwrap_or_default());
                fed += n;
            }
        }
    };
    let mut whole = BytesMut::from(wire.get(..fed).unwrap_or_default());
    let at_once = match parse_request_head(&mut whole, max_headers) {
        Ok(Some(head)) => Some(Ok(summary(&head))),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    };
    assert_eq!(
        in_pieces, at_once,
        "parsing depends on how the bytes arrive"
    );
}

/// [`crate::proxy_protocol::parse`] on arbitrary bytes: never panics, a complete header is
/// within the data and the protocol's limits, and the header alone parses the same.
pub fn proxy_protocol(data: &[u8]) {
    use crate::proxy_protocol::{MAX_V2_LEN, ProxyHeader, parse};
    let parsed = parse(data);
    if let ProxyHeader::Complete { consumed, .. } = &parsed {
        assert!(*consumed <= data.len() && *consumed <= MAX_V2_LEN);
        let alone = data.get(..*consumed).map(parse);
        assert_eq!(alone.as_ref(), Some(&parsed));
    }
}

/// A request target through [`crate::path::normalize`] in the mode the first byte picks (the
/// rest is the target, lossily UTF-8). Never panics; in every mode but `NONE` a normalized path
/// starts with `/`, has no `.` or `..` segment (`%2e` counted as a dot), no `%2e`, no `\` and
/// no `#`; normalizing again changes nothing and borrows; the result borrows exactly when it
/// equals the target without its fragment; the single-pass fast check agrees with the full
/// canonicalizer; and where every `%` of the path starts an escape, the result is the one of a
/// plain staged reimplementation ([`reference_normalize`]).
pub fn path(data: &[u8]) {
    use std::borrow::Cow;

    use crate::path::{PathNormalization, normalize};

    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let modes = PathNormalization::ALL;
    let mode = modes
        .get(usize::from(selector) % modes.len())
        .copied()
        .unwrap_or_default();
    let target = String::from_utf8_lossy(rest);
    let without_fragment = target.split('#').next().unwrap_or("");
    let result = normalize(&target, mode);
    if let Ok(out) = &result {
        assert_eq!(
            matches!(out, Cow::Borrowed(_)),
            *out == without_fragment,
            "borrowed exactly when unchanged: {target:?}"
        );
        let again = normalize(out, mode);
        assert!(
            matches!(again, Ok(Cow::Borrowed(_))),
            "{mode}: {target:?} -> {out:?} -> {again:?}"
        );
        if mode != PathNormalization::None {
            let path = out.split('?').next().unwrap_or("");
            assert!(path.starts_with('/'), "{mode}: {target:?} -> {out:?}");
            assert!(!path.contains('\\'), "{mode}: {target:?} -> {out:?}");
            assert!(!out.contains('#'), "{mode}: {target:?} -> {out:?}");
            let lower = path.to_ascii_lowercase();
            assert!(!lower.contains("%2e"), "{mode}: {target:?} -> {out:?}");
            assert!(
                lower.split('/').all(|s| s != "." && s != ".."),
                "{mode}: {target:?} -> {out:?}"
            );
        }
    }
    let path = without_fragment.split('?').next().unwrap_or("");
    if crate::path::is_canonical(path.as_bytes()) {
        let mut out = Vec::new();
        assert!(crate::path::canonicalize_into(path.as_bytes(), &mut out));
        assert_eq!(out, path.as_bytes(), "fast path disagrees on {path:?}");
    }
    if crate::path::reference::comparable(&target) {
        let got = result.ok().map(Cow::into_owned);
        assert_eq!(
            got,
            reference_normalize(&target, mode),
            "{mode}: {target:?} against the reference"
        );
    }
}

/// The staged reimplementation of [`crate::path::normalize`] the `path` target compares with
/// (`None`: invalid path). It does not model Chromium's nested-escape guard, so it only agrees
/// on targets whose every `%` in the path starts an escape. Not a stable API.
#[doc(hidden)]
pub fn reference_normalize(target: &str, mode: crate::path::PathNormalization) -> Option<String> {
    crate::path::reference::normalize(target, mode)
}
