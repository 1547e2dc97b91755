//! VirtualService delegation (`mergeHTTPRoutes` in `virtualservice.go`): a root rule's
//! delegate's rules merged into it, each with the origin it was written at.

use std::collections::BTreeMap;

use portcullis_model::StringMatch;
use portcullis_model::virtual_service::{HttpMatchRequest, HttpRoute as VsHttpRoute};

use crate::plan::{DelegateOrigin, RouteOrigin};

/// Replaces delegate rules of a root VS's `http` list in place (`mergeVirtualServices`), each
/// resulting rule with where it was written.
pub(crate) fn merge_delegates(
    root_namespace: &str,
    http: &[VsHttpRoute],
    find_delegate: &dyn Fn(&str, &str) -> Option<Vec<VsHttpRoute>>,
) -> Vec<(VsHttpRoute, RouteOrigin)> {
    let mut out = Vec::with_capacity(http.len());
    for (ri, rule) in http.iter().enumerate() {
        let Some(delegate) = &rule.delegate else {
            out.push((rule.clone(), RouteOrigin::new(ri)));
            continue;
        };
        let ns = if delegate.namespace.is_empty() {
            root_namespace
        } else {
            delegate.namespace.as_str()
        };
        let Some(leaves) = find_delegate(&delegate.name, ns) else {
            continue;
        };
        for (li, leaf) in leaves.iter().enumerate() {
            if let Some(merged) = merge_http_route(rule, leaf) {
                let mut origin = RouteOrigin::new(ri);
                origin.delegate = Some(DelegateOrigin::new(&delegate.name, ns, li));
                out.push((merged, origin));
            }
        }
    }
    out
}

fn merge_http_route(root: &VsHttpRoute, leaf: &VsHttpRoute) -> Option<VsHttpRoute> {
    let matches = merge_matches(&root.r#match, &leaf.r#match)?;
    let mut out = leaf.clone();
    out.r#match = matches;
    out.delegate = None;
    out.name = match (root.name.is_empty(), leaf.name.is_empty()) {
        (false, false) => format!("{}-{}", root.name, leaf.name),
        (false, true) => root.name.clone(),
        _ => leaf.name.clone(),
    };
    if out.rewrite.is_none() {
        out.rewrite.clone_from(&root.rewrite);
    }
    if out.direct_response.is_none() {
        out.direct_response.clone_from(&root.direct_response);
    }
    if out.timeout.is_none() {
        out.timeout = root.timeout;
    }
    if out.retries.is_none() {
        out.retries.clone_from(&root.retries);
    }
    if out.fault.is_none() {
        out.fault.clone_from(&root.fault);
    }
    if out.mirror.is_none() {
        out.mirror.clone_from(&root.mirror);
    }
    if out.mirrors.is_empty() {
        out.mirrors.clone_from(&root.mirrors);
    }
    if out.mirror_percent.is_none() {
        out.mirror_percent = root.mirror_percent;
    }
    if out.mirror_percentage.is_none() {
        out.mirror_percentage = root.mirror_percentage;
    }
    if out.cors_policy.is_none() {
        out.cors_policy.clone_from(&root.cors_policy);
    }
    if out.headers.is_none() {
        out.headers.clone_from(&root.headers);
    }
    Some(out)
}

fn merge_matches(
    root: &[HttpMatchRequest],
    leaf: &[HttpMatchRequest],
) -> Option<Vec<HttpMatchRequest>> {
    if root.is_empty() {
        return Some(leaf.to_vec());
    }
    if leaf.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for l in leaf {
        let mut any = false;
        for r in root {
            if has_conflict(r, l) {
                continue;
            }
            any = true;
            out.push(merge_match(r, l));
        }
        if !any {
            return None;
        }
    }
    Some(out)
}

fn merge_match(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> HttpMatchRequest {
    let mut out = root.clone();
    if !leaf.name.is_empty() {
        out.name.clone_from(&leaf.name);
    }
    for (dst, src) in [
        (&mut out.uri, &leaf.uri),
        (&mut out.scheme, &leaf.scheme),
        (&mut out.method, &leaf.method),
        (&mut out.authority, &leaf.authority),
    ] {
        if src.is_some() {
            dst.clone_from(src);
        }
    }
    merge_map(&mut out.headers, &leaf.headers);
    merge_map(&mut out.without_headers, &leaf.without_headers);
    merge_map(&mut out.query_params, &leaf.query_params);
    merge_map(&mut out.source_labels, &leaf.source_labels);
    if leaf.port != 0 {
        out.port = leaf.port;
    }
    if !leaf.gateways.is_empty() {
        out.gateways.clone_from(&leaf.gateways);
    }
    if !leaf.source_namespace.is_empty() {
        out.source_namespace.clone_from(&leaf.source_namespace);
    }
    out.ignore_uri_case = leaf.ignore_uri_case || root.ignore_uri_case;
    out
}

fn merge_map<V: Clone>(dst: &mut BTreeMap<String, V>, src: &BTreeMap<String, V>) {
    for (k, v) in src {
        dst.insert(k.clone(), v.clone());
    }
}

fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(r), Some(l)) = (root, leaf) else {
        return false;
    };
    match (r, l) {
        (StringMatch::Regex(_), _) | (_, StringMatch::Regex(_)) => true,
        (StringMatch::Exact(a), StringMatch::Exact(b)) => a != b,
        (StringMatch::Exact(_), StringMatch::Prefix(_)) => true,
        (StringMatch::Prefix(p), StringMatch::Exact(e) | StringMatch::Prefix(e)) => {
            !e.starts_with(p.as_str())
        }
        _ => false,
    }
}

fn map_conflict(
    root: &BTreeMap<String, StringMatch>,
    leaf: &BTreeMap<String, StringMatch>,
) -> bool {
    leaf.iter()
        .any(|(k, l)| string_conflict(root.get(k), Some(l)))
}

/// `hasConflict` of `virtualservice.go`.
fn has_conflict(root: &HttpMatchRequest, leaf: &HttpMatchRequest) -> bool {
    if string_conflict(root.uri.as_ref(), leaf.uri.as_ref())
        || string_conflict(root.scheme.as_ref(), leaf.scheme.as_ref())
        || string_conflict(root.method.as_ref(), leaf.method.as_ref())
        || string_conflict(root.authority.as_ref(), leaf.authority.as_ref())
    {
        return true;
    }
    if map_conflict(&root.headers, &leaf.headers)
        || map_conflict(&root.without_headers, &leaf.without_headers)
        || map_conflict(&root.query_params, &leaf.query_params)
    {
        return true;
    }
    if root.ignore_uri_case != leaf.ignore_uri_case {
        return true;
    }
    if root.port != 0 && leaf.port != 0 && root.port != leaf.port {
        return true;
    }
    if !root.source_namespace.is_empty()
        && !leaf.source_namespace.is_empty()
        && root.source_namespace != leaf.source_namespace
    {
        return true;
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|rv| rv != v))
    {
        return true;
    }
    if !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && !leaf.gateways.iter().all(|g| root.gateways.contains(g))
    {
        return true;
    }
    false
}
