use http::HeaderMap;

use super::{SVC_A, SVC_B, expect_forward, get, values, with_headers};
use crate::action::{Destination, ForwardAction, RouteAction};
use crate::decide;
use crate::error::InvalidAction;
use crate::headers::{HeaderOps, apply_header_ops};
use crate::rt::SequenceRandom;

fn upstream_headers(action: ForwardAction, head_headers: &[(&str, &str)]) -> HeaderMap {
    let action = RouteAction::from(action);
    let head = with_headers(get("example.com", "/"), head_headers);
    expect_forward(decide(&action, &head, &mut SequenceRandom::new([0])))
        .upstream
        .headers
}

#[test]
fn removes_run_first_then_sets_then_adds() {
    let ops = HeaderOps::new()
        .try_set("x-a", "1")
        .unwrap()
        .try_add("x-b", "2")
        .unwrap()
        .try_remove("x-c")
        .unwrap();
    let h = upstream_headers(
        ForwardAction::to_cluster(SVC_A).with_request_headers(ops),
        &[("x-a", "0"), ("x-b", "1"), ("x-c", "3")],
    );
    assert_eq!(values(&h, "x-a"), ["1"]);
    assert_eq!(values(&h, "x-b"), ["1", "2"]);
    assert!(h.get("x-c").is_none());
}

#[test]
fn set_then_add_on_the_same_name_keeps_both() {
    let ops = HeaderOps::new()
        .try_set("x-v", "s")
        .unwrap()
        .try_add("x-v", "a")
        .unwrap();
    let h = upstream_headers(
        ForwardAction::to_cluster(SVC_A).with_request_headers(ops),
        &[("x-v", "orig")],
    );
    assert_eq!(values(&h, "x-v"), ["s", "a"]);
}

#[test]
fn single_destination_set_wins_over_rule_set() {
    let dest = Destination::new(SVC_A, 0)
        .with_request_headers(HeaderOps::new().try_set("x-h", "dest").unwrap());
    let action = ForwardAction::new(vec![dest])
        .unwrap()
        .with_request_headers(HeaderOps::new().try_set("x-h", "rule").unwrap());
    assert_eq!(values(&upstream_headers(action, &[]), "x-h"), ["dest"]);
}

#[test]
fn single_destination_set_then_rule_add_appends_after_it() {
    // Errata of ROUTING.md §e.6: [rule set, rule add, dest set, dest add] run as sets, then adds.
    let dest = Destination::new(SVC_A, 0)
        .with_request_headers(HeaderOps::new().try_set("x", "d").unwrap());
    let action = ForwardAction::new(vec![dest])
        .unwrap()
        .with_request_headers(HeaderOps::new().try_add("x", "r").unwrap());
    assert_eq!(values(&upstream_headers(action, &[]), "x"), ["d", "r"]);
}

#[test]
fn single_destination_removes_run_before_any_add() {
    let dest = Destination::new(SVC_A, 0)
        .with_request_headers(HeaderOps::new().try_remove("x-d").unwrap());
    let action = ForwardAction::new(vec![dest])
        .unwrap()
        .with_request_headers(HeaderOps::new().try_add("x-d", "rule").unwrap());
    assert_eq!(
        values(&upstream_headers(action, &[("x-d", "client")]), "x-d"),
        ["rule"]
    );
}

#[test]
fn weighted_rule_set_wins_over_destination_set() {
    let dest = |cluster| {
        Destination::new(cluster, 50)
            .with_request_headers(HeaderOps::new().try_set("x-h", "dest").unwrap())
    };
    let action = ForwardAction::new(vec![dest(SVC_A), dest(SVC_B)])
        .unwrap()
        .with_request_headers(HeaderOps::new().try_set("x-h", "rule").unwrap());
    assert!(action.is_weighted());
    assert_eq!(values(&upstream_headers(action, &[]), "x-h"), ["rule"]);
}

#[test]
fn weighted_rule_remove_deletes_what_the_destination_added() {
    let dest = |cluster| {
        Destination::new(cluster, 50)
            .with_request_headers(HeaderOps::new().try_add("x-d", "dest").unwrap())
    };
    let action = ForwardAction::new(vec![dest(SVC_A), dest(SVC_B)])
        .unwrap()
        .with_request_headers(HeaderOps::new().try_remove("x-d").unwrap());
    let h = upstream_headers(action, &[("x-d", "client")]);
    assert!(h.get("x-d").is_none());
}

#[test]
fn response_ops_apply_to_the_upstream_response() {
    let ops = HeaderOps::new()
        .try_set("x-r", "1")
        .unwrap()
        .try_add("x-s", "2")
        .unwrap()
        .try_remove("server-timing")
        .unwrap();
    let action = RouteAction::from(ForwardAction::to_cluster(SVC_A).with_response_headers(ops));
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    let mut response = HeaderMap::new();
    response.insert("x-r", "0".parse().unwrap());
    response.insert("x-s", "1".parse().unwrap());
    response.insert("server-timing", "db;dur=1".parse().unwrap());
    d.response.apply(&mut response);
    assert_eq!(values(&response, "x-r"), ["1"]);
    assert_eq!(values(&response, "x-s"), ["1", "2"]);
    assert!(response.get("server-timing").is_none());
}

#[test]
fn weighted_response_ops_run_destination_first_then_rule() {
    let dest = |cluster| {
        Destination::new(cluster, 1)
            .with_response_headers(HeaderOps::new().try_set("x-h", "dest").unwrap())
    };
    let action = RouteAction::from(
        ForwardAction::new(vec![dest(SVC_A), dest(SVC_B)])
            .unwrap()
            .with_response_headers(HeaderOps::new().try_set("x-h", "rule").unwrap()),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([1]),
    ));
    assert_eq!(&*d.cluster, SVC_B);
    assert_eq!(d.response.header_ops().len(), 2);
    let mut response = HeaderMap::new();
    d.response.apply(&mut response);
    assert_eq!(values(&response, "x-h"), ["rule"]);
}

#[test]
fn single_destination_response_set_wins_over_rule_set() {
    let dest = Destination::new(SVC_A, 0)
        .with_response_headers(HeaderOps::new().try_set("x-h", "dest").unwrap());
    let action = RouteAction::from(
        ForwardAction::new(vec![dest])
            .unwrap()
            .with_response_headers(HeaderOps::new().try_set("x-h", "rule").unwrap()),
    );
    let d = expect_forward(decide(
        &action,
        &get("example.com", "/"),
        &mut SequenceRandom::new([0]),
    ));
    let mut response = HeaderMap::new();
    d.response.apply(&mut response);
    assert_eq!(values(&response, "x-h"), ["dest"]);
}

#[test]
fn inherited_rule_add_reaches_upstream() {
    // delegate-007: the root's `headers.request.add: {istio: test}` applies to the merged rule.
    let action = ForwardAction::to_cluster("outbound|80|v1|productpage.org")
        .with_request_headers(HeaderOps::new().try_add("istio", "test").unwrap());
    assert_eq!(values(&upstream_headers(action, &[]), "istio"), ["test"]);
}

#[test]
fn set_or_add_with_an_empty_value_is_a_no_op() {
    let ops = HeaderOps::new()
        .try_set("x", "")
        .unwrap()
        .try_add("y", "")
        .unwrap();
    let h = upstream_headers(
        ForwardAction::to_cluster(SVC_A).with_request_headers(ops),
        &[("x", "client")],
    );
    assert_eq!(values(&h, "x"), ["client"]);
    assert!(h.get("y").is_none());
}

#[test]
fn later_set_of_the_same_name_wins() {
    let ops = HeaderOps::new()
        .try_set("x", "1")
        .unwrap()
        .try_set("x", "2")
        .unwrap();
    let mut h = HeaderMap::new();
    apply_header_ops(&ops, &mut h);
    assert_eq!(values(&h, "x"), ["2"]);
}

#[test]
fn host_header_never_reaches_the_upstream_header_map() {
    let h = upstream_headers(
        ForwardAction::to_cluster(SVC_A),
        &[("host", "client.example.com")],
    );
    assert!(h.get("host").is_none());
}

#[test]
fn take_authority_prefers_set_over_add_and_drops_host_removes() {
    let mut ops = HeaderOps::new()
        .try_add("host", "added")
        .unwrap()
        .try_set("Host", "set")
        .unwrap()
        .try_set("x", "1")
        .unwrap()
        .remove(http::header::HOST);
    assert_eq!(ops.take_authority().unwrap(), "set");
    assert!(ops.adds().is_empty());
    assert_eq!(ops.sets().len(), 1);
    assert!(ops.removes().is_empty());
    assert!(ops.take_authority().is_none());
}

#[test]
fn pseudo_headers_and_host_cannot_be_removed() {
    let ops = HeaderOps::new()
        .try_remove(":path")
        .unwrap()
        .try_remove("HOST")
        .unwrap();
    assert!(ops.is_empty());
}

#[test]
fn invalid_header_names_and_values_are_rejected() {
    assert_eq!(
        HeaderOps::new().try_set("bad name", "v").unwrap_err(),
        InvalidAction::HeaderName {
            name: "bad name".into()
        }
    );
    assert_eq!(
        HeaderOps::new().try_add("x", "a\nb").unwrap_err(),
        InvalidAction::HeaderValue { name: "x".into() }
    );
    assert!(HeaderOps::new().try_remove("bad name").is_err());
}

#[test]
fn concat_keeps_one_parser_order() {
    let a = HeaderOps::new().try_set("x", "a").unwrap();
    let b = HeaderOps::new()
        .try_set("x", "b")
        .unwrap()
        .try_remove("y")
        .unwrap();
    let joined = a.concat(&b);
    assert_eq!(joined.sets().len(), 2);
    assert_eq!(joined.removes().len(), 1);
    let mut h = HeaderMap::new();
    h.insert("y", "1".parse().unwrap());
    apply_header_ops(&joined, &mut h);
    assert_eq!(values(&h, "x"), ["b"]);
    assert!(h.get("y").is_none());
}

#[test]
fn a_full_header_map_drops_edits_instead_of_panicking() {
    // Found by the hostile-input review of issue #6: `HeaderMap::insert`/`append` panic once the
    // map holds `MAX_HEADER_MAP_ENTRIES` entries, and a request may arrive with that many.
    let mut full = HeaderMap::new();
    for i in 0.. {
        let name = http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap();
        if full
            .try_append(name, http::HeaderValue::from_static("1"))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(full.len(), crate::headers::MAX_HEADER_MAP_ENTRIES);
    let ops = HeaderOps::new()
        .try_set("x-set", "1")
        .unwrap()
        .try_add("x-add", "1")
        .unwrap();
    let action = ForwardAction::new(vec![Destination::new(SVC_A, 1)])
        .unwrap()
        .with_request_headers(ops.clone())
        .with_response_headers(ops.clone())
        .with_path_rewrite(crate::rewrite::PathRewrite::Prefix {
            matched: crate::rewrite::PathMatchKind::catch_all(),
            replacement: "/v2/".into(),
        });
    let mut head = get("example.com", "/a");
    head.headers = full.clone();
    let forward = expect_forward(decide(
        &RouteAction::from(action),
        &head,
        &mut SequenceRandom::new([0]),
    ));
    assert_eq!(
        forward.upstream.headers.len(),
        crate::headers::MAX_HEADER_MAP_ENTRIES
    );
    assert!(forward.upstream.headers.get("x-set").is_none());
    assert_eq!(forward.upstream.path, "/v2/a");
    // The upstream response may be full too.
    let mut response = full;
    forward.response.apply(&mut response);
    apply_header_ops(&ops, &mut response);
    assert!(response.get("x-add").is_none());
}
