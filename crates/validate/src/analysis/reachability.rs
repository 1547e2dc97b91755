//! Istio's reachability analysis of one VirtualService's rules (`analyzeUnreachable*Rules`):
//! rules that can never match (IST0130) and matches that duplicate or are covered by an earlier
//! one (IST0131).

use std::collections::BTreeMap;

use portcullis_model::virtual_service::{HttpMatchRequest, HttpRoute};
use portcullis_model::{StringMatch, VirtualService};

/// One reachability finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// `true` for IST0130 (a rule never used), `false` for IST0131 (a match never used).
    pub(crate) unreachable: bool,
    /// `http`, `tcp` or `tls`.
    pub(crate) protocol: &'static str,
    /// The index of the rule.
    pub(crate) rule: usize,
    /// The index of the match, for IST0131 and for IST0130 "route without matches defined
    /// before".
    pub(crate) match_index: Option<usize>,
    /// The template arguments: (rule, reason) for IST0130, (rule, match, earlier) for IST0131.
    pub(crate) args: Vec<String>,
}

fn rule_name(name: &str, index: usize) -> String {
    if name.is_empty() {
        format!("#{index}")
    } else {
        format!("{name:?}")
    }
}

/// Shared walk of Istio's three `analyzeUnreachable*Rules` functions: `matches[i]` is `None`
/// for a null rule, else the list of (match equality key, match display name).
fn walk<K: PartialEq>(
    protocol: &'static str,
    rules: &[(String, Vec<(K, String)>)],
    out: &mut Vec<Finding>,
    mut on_new: impl FnMut(usize, usize),
) {
    let mut seen: Vec<(&K, usize)> = Vec::new();
    let mut empty_seen = false;
    for (rule, (name, matches)) in rules.iter().enumerate() {
        if matches.is_empty() {
            if empty_seen {
                out.push(Finding {
                    unreachable: true,
                    protocol,
                    rule,
                    match_index: None,
                    args: vec![
                        name.clone(),
                        "only the last rule can have no matches".into(),
                    ],
                });
            }
            empty_seen = true;
            continue;
        }
        let mut duplicates = 0;
        for (m, (key, match_name)) in matches.iter().enumerate() {
            if empty_seen {
                out.push(Finding {
                    unreachable: true,
                    protocol,
                    rule,
                    match_index: Some(m),
                    args: vec![name.clone(), "route without matches defined before".into()],
                });
                continue;
            }
            if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == key) {
                let earlier_name = rules
                    .get(*earlier)
                    .map_or_else(String::new, |r| r.0.clone());
                out.push(Finding {
                    unreachable: false,
                    protocol,
                    rule,
                    match_index: Some(m),
                    args: vec![name.clone(), match_name.clone(), earlier_name],
                });
                duplicates += 1;
                continue;
            }
            seen.push((key, rule));
            on_new(rule, m);
        }
        if duplicates == matches.len() {
            out.push(Finding {
                unreachable: true,
                protocol,
                rule,
                match_index: None,
                args: vec![name.clone(), "all matches used by prior rules".into()],
            });
        }
    }
}

/// A prefix match reduced to what Istio's overlap check compares.
struct Overlap {
    rule: usize,
    match_index: usize,
    rule_name: String,
    match_name: String,
    prefix: String,
    port: u32,
    method: String,
    authority: String,
    headers: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    without: BTreeMap<String, String>,
}

fn exact_or_prefix(m: Option<&StringMatch>) -> String {
    match m {
        Some(StringMatch::Exact(v)) if !v.is_empty() => format!("exact:{v}"),
        Some(StringMatch::Prefix(v)) if !v.is_empty() => format!("prefix:{v}"),
        _ => String::new(),
    }
}

fn overlap_of(
    route: &HttpRoute,
    rule: usize,
    m: &HttpMatchRequest,
    index: usize,
) -> Option<Overlap> {
    let Some(StringMatch::Prefix(prefix)) = &m.uri else {
        return None;
    };
    if prefix.is_empty() {
        return None;
    }
    let mut method = exact_or_prefix(m.method.as_ref());
    if method.is_empty() {
        method = "exact:GET".to_owned();
    }
    let map = |map: &BTreeMap<String, StringMatch>| {
        map.iter()
            .map(|(k, v)| (k.clone(), exact_or_prefix(Some(v))))
            .collect()
    };
    Some(Overlap {
        rule,
        match_index: index,
        rule_name: rule_name(&route.name, rule),
        match_name: rule_name(&m.name, index),
        prefix: prefix.clone(),
        port: m.port,
        method,
        authority: exact_or_prefix(m.authority.as_ref()),
        headers: map(&m.headers),
        query: map(&m.query_params),
        without: map(&m.without_headers),
    })
}

fn value_covers(a: &str, b: &str) -> bool {
    a == b || a.starts_with(b)
}

fn map_covers(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|bv| value_covers(v, bv)))
}

/// Istio's `coveredValidation`: the earlier prefix match `a` covers the later `b`.
fn covered(a: &Overlap, b: &Overlap) -> bool {
    b.prefix.starts_with(&a.prefix)
        && a.port == b.port
        && value_covers(&a.method, &b.method)
        && value_covers(&a.authority, &b.authority)
        && map_covers(&a.headers, &b.headers)
        && map_covers(&a.query, &b.query)
        && map_covers(&a.without, &b.without)
}

/// Every IST0130/IST0131 finding of one VirtualService, as Istio's validation reports them.
pub(crate) fn analyze(vs: &VirtualService) -> Vec<Finding> {
    let mut out = Vec::new();
    let http: Vec<(String, Vec<(HttpMatchRequest, String)>)> = vs
        .http
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let matches = route
                .r#match
                .iter()
                .enumerate()
                .map(|(j, m)| {
                    let mut key = m.clone();
                    key.name = String::new();
                    (key, rule_name(&m.name, j))
                })
                .collect();
            (rule_name(&route.name, i), matches)
        })
        .collect();
    let mut overlaps = Vec::new();
    walk("http", &http, &mut out, |rule, m| {
        if let Some(route) = vs.http.get(rule)
            && let Some(o) = route
                .r#match
                .get(m)
                .and_then(|mr| overlap_of(route, rule, mr, m))
        {
            overlaps.push(o);
        }
    });
    for (i, a) in overlaps.iter().enumerate() {
        for b in overlaps.iter().skip(i + 1) {
            if b.prefix == a.prefix || !covered(a, b) {
                continue;
            }
            out.push(Finding {
                unreachable: false,
                protocol: "http",
                rule: b.rule,
                match_index: Some(b.match_index),
                args: vec![
                    b.rule_name.clone(),
                    format!("{} of prefix {}", b.match_name, b.prefix),
                    format!("{} of prefix {} on {}", a.match_name, a.prefix, a.rule_name),
                ],
            });
        }
    }
    let tcp: Vec<(String, Vec<(_, String)>)> = vs
        .tcp
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let matches = route
                .r#match
                .iter()
                .enumerate()
                .map(|(j, m)| (m.clone(), format!("#{j}")))
                .collect();
            (format!("#{i}"), matches)
        })
        .collect();
    walk("tcp", &tcp, &mut out, |_, _| {});
    let tls: Vec<(String, Vec<(_, String)>)> = vs
        .tls
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let matches = route
                .r#match
                .iter()
                .enumerate()
                .map(|(j, m)| (m.clone(), format!("#{j}")))
                .collect();
            (format!("#{i}"), matches)
        })
        .collect();
    walk("tls", &tls, &mut out, |_, _| {});
    out
}
