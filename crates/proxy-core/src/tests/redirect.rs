use http::uri::Scheme;
use http::{Method, StatusCode};

use super::{get, values};
use crate::action::RouteAction;
use crate::decide;
use crate::decide::Decision;
use crate::error::InvalidAction;
use crate::headers::HeaderOps;
use crate::redirect::{
    RedirectAction, RedirectDecision, RedirectPath, RedirectPort, build_redirect_location,
    https_redirect_location, require_tls_redirect,
};
use crate::request::RequestHead;
use crate::rewrite::PathMatchKind;
use crate::rt::SequenceRandom;

fn redirect(action: RedirectAction, head: &RequestHead) -> RedirectDecision {
    let action = RouteAction::from(action);
    match decide(&action, head, &mut SequenceRandom::new([0])) {
        Decision::Redirect(r) => r,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn location(action: &RedirectAction, head: &RequestHead) -> String {
    build_redirect_location(action, head)
}

#[test]
fn unset_code_is_301_and_uri_replaces_path_keeping_query() {
    let action = RedirectAction::new(0)
        .unwrap()
        .with_path(RedirectPath::Replace("/new".into()));
    let d = redirect(action, &get("example.com", "/old?x=1"));
    assert_eq!(d.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(d.location, "http://example.com/new?x=1");
    assert_eq!(
        values(&d.headers, "location"),
        ["http://example.com/new?x=1"]
    );
}

#[test]
fn code_302_with_authority_only_keeps_path_and_query() {
    let action = RedirectAction::new(302)
        .unwrap()
        .with_authority("other.com");
    let d = redirect(action, &get("example.com", "/p?q=1"));
    assert_eq!(d.status, StatusCode::FOUND);
    assert_eq!(d.location, "http://other.com/p?q=1");
}

#[test]
fn uri_with_its_own_query_replaces_the_query() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_path(RedirectPath::Replace("/new?a=b".into()));
    assert_eq!(
        location(&action, &get("example.com", "/old?x=1")),
        "http://example.com/new?a=b"
    );
}

#[test]
fn authority_is_verbatim_and_drops_the_request_port() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_authority("other.com");
    assert_eq!(
        location(&action, &get("example.com:8080", "/p")),
        "http://other.com/p"
    );
}

#[test]
fn explicit_port_is_appended() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_port(RedirectPort::Port(8443));
    assert_eq!(
        location(&action, &get("example.com", "/p")),
        "http://example.com:8443/p"
    );
}

#[test]
fn explicit_port_replaces_the_host_port() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_port(RedirectPort::Port(8443));
    assert_eq!(
        location(&action, &get("example.com:9090", "/p")),
        "http://example.com:8443/p"
    );
}

#[test]
fn derive_port_from_request_uses_the_server_port() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_port(RedirectPort::FromRequestPort)
        .with_path(RedirectPath::Replace("/x".into()));
    let head = get("example.com", "/p").with_server_port(8080);
    assert_eq!(location(&action, &head), "http://example.com:8080/x");
}

#[test]
fn derive_port_80_is_elided_for_http() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_port(RedirectPort::FromRequestPort)
        .with_path(RedirectPath::Replace("/x".into()));
    let head = get("example.com", "/p").with_server_port(80);
    assert_eq!(location(&action, &head), "http://example.com/x");
}

#[test]
fn derive_port_without_server_port_falls_back_to_host_port() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_port(RedirectPort::FromRequestPort);
    assert_eq!(
        location(&action, &get("example.com:8081", "/p")),
        "http://example.com:8081/p"
    );
}

#[test]
fn port_443_is_elided_for_https_scheme() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_scheme("https")
        .with_port(RedirectPort::Port(443));
    assert_eq!(
        location(&action, &get("example.com", "/p")),
        "https://example.com/p"
    );
}

#[test]
fn port_80_is_kept_when_the_scheme_is_https() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_scheme("https")
        .with_port(RedirectPort::Port(80));
    assert_eq!(
        location(&action, &get("example.com", "/p")),
        "https://example.com:80/p"
    );
}

#[test]
fn scheme_change_strips_the_default_port_of_the_old_scheme() {
    let action = RedirectAction::new(301).unwrap().with_scheme("https");
    assert_eq!(
        location(&action, &get("example.com:80", "/p?q")),
        "https://example.com/p?q"
    );
    // A non-default port survives the scheme change.
    assert_eq!(
        location(&action, &get("example.com:8080", "/p")),
        "https://example.com:8080/p"
    );
}

#[test]
fn same_scheme_keeps_the_host_port_verbatim() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_path(RedirectPath::Replace("/x".into()));
    assert_eq!(
        location(&action, &get("example.com:80", "/p")),
        "http://example.com:80/x"
    );
}

#[test]
fn ipv6_host_port_is_found_after_the_bracket() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_port(RedirectPort::Port(8443));
    assert_eq!(
        location(&action, &get("[::1]:9090", "/p")),
        "http://[::1]:8443/p"
    );
    assert_eq!(
        location(&action, &get("[::1]", "/p")),
        "http://[::1]:8443/p"
    );
}

#[test]
fn prefix_rewrite_replaces_the_matched_prefix_and_keeps_query() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_path(RedirectPath::PrefixRewrite {
            matched: PathMatchKind::Prefix("/old".into()),
            replacement: "/new".into(),
        });
    assert_eq!(
        location(&action, &get("example.com", "/old/x?y=1")),
        "http://example.com/new/x?y=1"
    );
}

#[test]
fn prefix_rewrite_to_slash_leaves_a_double_slash() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_path(RedirectPath::PrefixRewrite {
            matched: PathMatchKind::Prefix("/foo".into()),
            replacement: "/".into(),
        });
    assert_eq!(
        location(&action, &get("example.com", "/foo/baz")),
        "http://example.com//baz"
    );
}

#[test]
fn missing_leading_slash_is_added() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_path(RedirectPath::Replace("new".into()));
    assert_eq!(
        location(&action, &get("example.com", "/old")),
        "http://example.com/new"
    );
}

#[test]
fn empty_uri_keeps_the_request_path() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_path(RedirectPath::Replace(String::new()))
        .with_authority("")
        .with_scheme("");
    assert_eq!(action.path(), &RedirectPath::Keep);
    assert_eq!(
        location(&action, &get("example.com", "/old?x")),
        "http://example.com/old?x"
    );
}

#[test]
fn response_header_ops_apply_to_the_redirect() {
    let action = RedirectAction::new(308)
        .unwrap()
        .with_path(RedirectPath::Replace("/new".into()))
        .with_authority("example.org")
        .with_response_headers(
            HeaderOps::new()
                .try_set(
                    "Strict-Transport-Security",
                    "max-age=31536000; includeSubDomains; preload",
                )
                .unwrap(),
        );
    let d = redirect(action, &get("example.com", "/old"));
    assert_eq!(d.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(d.location, "http://example.org/new");
    assert_eq!(
        values(&d.headers, "strict-transport-security"),
        ["max-age=31536000; includeSubDomains; preload"]
    );
}

#[test]
fn redirect_on_a_tls_terminated_request_keeps_https() {
    let action = RedirectAction::new(301)
        .unwrap()
        .with_authority("new.example.com");
    let head = RequestHead::new(Method::GET, Scheme::HTTPS, "example.com", "/p");
    assert_eq!(location(&action, &head), "https://new.example.com/p");
}

#[test]
fn every_supported_code_is_kept_and_others_are_rejected() {
    for (code, status) in [
        (301, StatusCode::MOVED_PERMANENTLY),
        (302, StatusCode::FOUND),
        (303, StatusCode::SEE_OTHER),
        (307, StatusCode::TEMPORARY_REDIRECT),
        (308, StatusCode::PERMANENT_REDIRECT),
    ] {
        assert_eq!(RedirectAction::new(code).unwrap().status(), status);
    }
    for code in [300, 304, 305, 306, 200, 404] {
        assert_eq!(
            RedirectAction::new(code).unwrap_err(),
            InvalidAction::RedirectStatus { code }
        );
    }
}

#[test]
fn require_tls_redirects_plaintext_to_https_with_host_verbatim() {
    let d = require_tls_redirect(&get("example.com", "/")).unwrap();
    assert_eq!(d.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(d.location, "https://example.com/");
    assert_eq!(values(&d.headers, "location"), ["https://example.com/"]);
}

#[test]
fn require_tls_keeps_the_host_port_and_query() {
    let d = require_tls_redirect(&get("example.com:80", "/a?b=c")).unwrap();
    assert_eq!(d.location, "https://example.com:80/a?b=c");
    assert_eq!(
        https_redirect_location(&get("a.example.com", "/")),
        "https://a.example.com/"
    );
}

#[test]
fn require_tls_lets_tls_requests_through() {
    let head = RequestHead::new(Method::GET, Scheme::HTTPS, "example.com", "/");
    assert!(require_tls_redirect(&head).is_none());
}
