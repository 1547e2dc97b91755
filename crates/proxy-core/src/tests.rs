//! Unit tests. Numbers are copied from the routing conformance vectors
//! (`/work/shared/conformance/routing.yaml`, `action-*` / `action2-*` / `gw-*`); each test is
//! named for the rule it checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cors;
mod fault;
mod forward;
mod headers;
mod redirect;
mod retry;
mod rewrite;
mod rt;
mod timeout;
mod weighted;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::Scheme;
use http::{Method, Request};

use crate::decide::{Decision, ForwardDecision};
use crate::request::RequestHead;

const SVC_A: &str = "outbound|80||svc-a.default.svc.cluster.local";
const SVC_B: &str = "outbound|80||svc-b.default.svc.cluster.local";
const SVC_C: &str = "outbound|80||svc-c.default.svc.cluster.local";

/// A plaintext request.
fn http(method: Method, authority: &str, path: &str) -> RequestHead {
    RequestHead::new(method, Scheme::HTTP, authority, path)
}

/// A plaintext GET.
fn get(authority: &str, path: &str) -> RequestHead {
    http(Method::GET, authority, path)
}

/// Appends headers to a request.
fn with_headers(mut head: RequestHead, headers: &[(&str, &str)]) -> RequestHead {
    for (name, value) in headers {
        head.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    head
}

/// All values of a header, as strings.
fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

fn expect_forward(decision: Decision) -> ForwardDecision {
    match decision {
        Decision::Forward(forward) => forward,
        other => panic!("expected a forward decision, got {other:?}"),
    }
}

#[test]
fn request_head_from_parts_prefers_host_header_and_keeps_query() {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/a/b?x=1")
        .header("host", "example.com:8080")
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let head = RequestHead::from_parts(&parts);
    assert_eq!(head.authority, "example.com:8080");
    assert_eq!(head.path, "/a/b?x=1");
    assert_eq!(head.scheme, Scheme::HTTP);
    assert_eq!(head.method, Method::POST);
    assert_eq!(head.query(), Some("x=1"));
    assert_eq!(head.path_without_query(), "/a/b");
}

#[test]
fn request_head_from_parts_uses_uri_authority_without_host_header() {
    let request = Request::builder()
        .uri("https://example.org/p")
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let head = RequestHead::from_parts(&parts);
    assert_eq!(head.authority, "example.org");
    assert_eq!(head.scheme, Scheme::HTTPS);
    assert_eq!(head.path, "/p");
}
