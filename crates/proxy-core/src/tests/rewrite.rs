use super::{SVC_A, expect_forward, get};
use crate::action::{Destination, ForwardAction, RouteAction};
use crate::decide;
use crate::decide::X_ENVOY_ORIGINAL_PATH;
use crate::error::InvalidAction;
use crate::headers::HeaderOps;
use crate::rewrite::{PathMatchKind, PathRewrite, RegexRewrite, prefix_rewrite, rewrite_path};
use crate::rt::SequenceRandom;

fn forward_path(rewrite: PathRewrite, path: &str) -> String {
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A).with_path_rewrite(rewrite));
    let d = expect_forward(decide(
        &action,
        &get("example.com", path),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(&*d.cluster, SVC_A);
    d.upstream.path
}

fn prefix(matched: PathMatchKind, replacement: &str) -> PathRewrite {
    PathRewrite::Prefix {
        matched,
        replacement: replacement.into(),
    }
}

#[test]
fn prefix_rewrite_to_slash_after_prefix_without_slash_leaves_double_slash() {
    let rw = prefix(PathMatchKind::Prefix("/foo".into()), "/");
    assert_eq!(forward_path(rw, "/foo/x"), "//x");
}

#[test]
fn prefix_rewrite_to_slash_after_prefix_with_slash() {
    let rw = prefix(PathMatchKind::Prefix("/foo/".into()), "/");
    assert_eq!(forward_path(rw, "/foo/x"), "/x");
}

#[test]
fn prefix_rewrite_replaces_bytes_not_segments() {
    let rw = prefix(PathMatchKind::Prefix("/foo".into()), "/bar");
    assert_eq!(rewrite_path("/foo/x", &rw), "/bar/x");
    assert_eq!(rewrite_path("/foobar", &rw), "/barbar");
}

#[test]
fn prefix_rewrite_after_case_insensitive_match_replaces_the_same_length() {
    let rw = prefix(PathMatchKind::Prefix("/foo".into()), "/bar");
    assert_eq!(rewrite_path("/FOO/x?q=1", &rw), "/bar/x?q=1");
}

#[test]
fn exact_match_rewrite_replaces_whole_path_and_keeps_query() {
    let rw = prefix(PathMatchKind::Exact("/login".into()), "/auth/login");
    assert_eq!(forward_path(rw, "/login?x=1"), "/auth/login?x=1");
}

#[test]
fn regex_match_rewrite_replaces_whole_path_and_keeps_query() {
    let rw = prefix(PathMatchKind::Regex, "/new");
    assert_eq!(forward_path(rw, "/api/v1/users?id=3"), "/new?id=3");
}

#[test]
fn catch_all_rewrite_replaces_the_leading_slash() {
    let rw = prefix(PathMatchKind::catch_all(), "/v2/");
    assert_eq!(forward_path(rw.clone(), "/a"), "/v2/a");
    assert_eq!(rewrite_path("/", &rw), "/v2/");
}

#[test]
fn prefix_rewrite_of_a_path_shorter_than_the_match_keeps_only_the_replacement() {
    assert_eq!(
        prefix_rewrite("/f", &PathMatchKind::Prefix("/foo".into()), "/x"),
        "/x"
    );
}

#[test]
fn regex_rewrite_case_insensitive_example() {
    let rw = PathRewrite::Regex(RegexRewrite::new("(?i)/xxx/", "/yyy/").unwrap());
    assert_eq!(forward_path(rw, "/aaa/XxX/bbb"), "/aaa/yyy/bbb");
}

#[test]
fn regex_rewrite_uses_capture_groups_and_keeps_query() {
    let rw = RegexRewrite::new("^/service/([^/]+)(/.*)$", r"\2/instance/\1").unwrap();
    assert_eq!(rw.apply("/service/foo/v1/api"), "/v1/api/instance/foo");
    assert_eq!(
        rw.apply("/service/foo/v1/api?a=/service/x/y"),
        "/v1/api/instance/foo?a=/service/x/y"
    );
    assert_eq!(rw.substitution(), r"\2/instance/\1");
    assert_eq!(rw.pattern(), "^/service/([^/]+)(/.*)$");
}

#[test]
fn regex_rewrite_replaces_every_match() {
    let rw = RegexRewrite::new("o", "0").unwrap();
    assert_eq!(rw.apply("/foo/boo?o=o"), "/f00/b00?o=o");
}

#[test]
fn regex_rewrite_whole_match_and_literal_dollar_and_backslash() {
    let rw = RegexRewrite::new("[0-9]+", r"<\0>$\\").unwrap();
    assert_eq!(rw.apply("/a12/b3"), r"/a<12>$\/b<3>$\");
}

#[test]
fn regex_rewrite_rejects_bad_substitutions_and_patterns() {
    assert!(matches!(
        RegexRewrite::new("(a)", r"\2"),
        Err(InvalidAction::RegexSubstitution { .. })
    ));
    assert!(matches!(
        RegexRewrite::new("a", r"\x"),
        Err(InvalidAction::RegexSubstitution { .. })
    ));
    assert!(matches!(
        RegexRewrite::new("a", "x\\"),
        Err(InvalidAction::RegexSubstitution { .. })
    ));
    assert!(matches!(
        RegexRewrite::new("(", "x"),
        Err(InvalidAction::Regex { .. })
    ));
}

#[test]
fn path_rewrite_records_the_original_path() {
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_path_rewrite(prefix(PathMatchKind::Prefix("/a".into()), "/b")),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/a/x?q"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.path, "/b/x?q");
    assert_eq!(d.upstream.headers[X_ENVOY_ORIGINAL_PATH], "/a/x?q");

    let quiet = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_path_rewrite(prefix(PathMatchKind::Prefix("/a".into()), "/b"))
            .with_original_path_header(false),
    );
    let d = expect_forward(decide(
        &quiet,
        &get("example.com", "/a"),
        &mut SequenceRandom::new([0]),
    ));
    assert!(d.upstream.headers.get(X_ENVOY_ORIGINAL_PATH).is_none());
}

#[test]
fn no_rewrite_leaves_path_and_adds_no_original_path() {
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/p?x"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.path, "/p?x");
    assert_eq!(d.upstream.authority, "example.com");
    assert!(d.upstream.headers.get(X_ENVOY_ORIGINAL_PATH).is_none());
}

#[test]
fn authority_rewrite_replaces_host() {
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A).with_authority_rewrite("bar.example.org"),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/p"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.path, "/p");
    assert_eq!(d.upstream.authority, "bar.example.org");
}

#[test]
fn rule_request_set_host_becomes_the_authority_rewrite() {
    let action = RouteAction::from(
        ForwardAction::to_cluster(SVC_A)
            .with_request_headers(HeaderOps::new().try_set("host", "foo.extsvc.com").unwrap()),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.authority, "foo.extsvc.com");
    assert!(d.upstream.headers.get("host").is_none());
}

#[test]
fn destination_authority_header_is_used_when_the_rule_sets_none() {
    let dest = Destination::new(SVC_A, 0).with_request_headers(
        HeaderOps::new()
            .try_set(":authority", "dest.example.com")
            .unwrap(),
    );
    let action = RouteAction::from(ForwardAction::new(vec![dest.clone()]).unwrap());
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.authority, "dest.example.com");

    // The rule's authority wins over the destination's.
    let action = RouteAction::from(
        ForwardAction::new(vec![dest])
            .unwrap()
            .with_authority_rewrite("rule.example.com"),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.authority, "rule.example.com");
}

#[test]
fn weighted_destination_authority_is_overridden_by_the_rule() {
    let dests = vec![
        Destination::new(SVC_A, 1).with_authority("a.example.com"),
        Destination::new("b", 1),
    ];
    let action = RouteAction::from(ForwardAction::new(dests.clone()).unwrap());
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.authority, "a.example.com");

    let action = RouteAction::from(
        ForwardAction::new(dests).unwrap().with_request_headers(
            HeaderOps::new()
                .try_add("host", "rule.example.com")
                .unwrap(),
        ),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(d.upstream.authority, "rule.example.com");
}

#[test]
fn explicit_authority_rewrite_wins_over_a_host_header_operation() {
    let action = ForwardAction::to_cluster(SVC_A)
        .with_authority_rewrite("explicit.example.com")
        .with_request_headers(
            HeaderOps::new()
                .try_set("host", "header.example.com")
                .unwrap(),
        );
    assert_eq!(action.authority_rewrite(), Some("explicit.example.com"));
}
