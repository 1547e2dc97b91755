//! Istio's reachability analysis of a VirtualService's rules (V-29 … V-32): warnings for
//! validation, IST0130 and IST0131 for analysis.

use std::collections::BTreeMap;

use portcullis_model::virtual_service::{HttpMatchRequest, HttpRoute};
use portcullis_model::{StringMatch, VirtualService};

use crate::common::quote;
use crate::path;

/// What a [`Reachability`] finding says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReachabilityKind {
    /// The rule can never be used, for `reason` (analysis: IST0130, VirtualServiceUnreachableRule).
    Unreachable {
        /// Why: `only the last rule can have no matches`, `route without matches defined
        /// before` or `all matches used by prior rules`.
        reason: &'static str,
    },
    /// A match of the rule can never be used (analysis: IST0131,
    /// VirtualServiceIneffectiveMatch).
    Ineffective {
        /// The match as the messages name it (`"name"` or `#N`, plus `of prefix P` when it
        /// is covered by an earlier prefix).
        matched: String,
        /// What takes its requests: the earlier rule, or the earlier prefix match and its rule.
        earlier: String,
    },
}

/// One finding of Istio's reachability analysis of a VirtualService's rules
/// (`analyzeUnreachable*Rules` and `coveredValidation`). Validation reports it as a warning
/// ([`Reachability::warning_path`], [`Reachability::message`]); analysis as IST0130 or IST0131
/// ([`Reachability::path`], [`Reachability::args`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reachability {
    /// What is not used, and why.
    pub(crate) kind: ReachabilityKind,
    /// The spec field holding the rule: `http`, `tcp` or `tls`.
    pub(crate) protocol: &'static str,
    /// The index of the rule.
    pub(crate) rule: usize,
    /// The index of the match: for every [`ReachabilityKind::Ineffective`] finding, and for the
    /// unreachable rule after a rule without matches (reported once per match).
    pub(crate) match_index: Option<usize>,
    /// The rule as the messages name it: its quoted name, or `#N`.
    pub(crate) rule_name: String,
}

impl Reachability {
    /// The path of the rule, under the VirtualService spec at `spec`.
    fn rule_path(&self, spec: &str) -> String {
        path::index(&path::join(spec, self.protocol), self.rule)
    }

    /// Where analysis reports the finding, under the VirtualService spec at `spec`: the match
    /// when there is one, else the rule.
    pub(crate) fn path(&self, spec: &str) -> String {
        let rule = self.rule_path(spec);
        match self.match_index {
            Some(m) => path::index(&path::join(&rule, "match"), m),
            None => rule,
        }
    }

    /// Where validation reports the finding: the rule for an unreachable rule (even one
    /// reported per match), the match for an ineffective match.
    pub(crate) fn warning_path(&self, spec: &str) -> String {
        match self.kind {
            ReachabilityKind::Unreachable { .. } => self.rule_path(spec),
            ReachabilityKind::Ineffective { .. } => self.path(spec),
        }
    }

    /// Validation's warning: `virtualService rule R not used (REASON)` or `virtualService rule
    /// R match M is not used (duplicate/overlapping match in rule D)`.
    pub(crate) fn message(&self) -> String {
        let rule = &self.rule_name;
        match &self.kind {
            ReachabilityKind::Unreachable { reason } => {
                format!("virtualService rule {rule} not used ({reason})")
            }
            ReachabilityKind::Ineffective { matched, earlier } => format!(
                "virtualService rule {rule} match {matched} is not used (duplicate/overlapping \
                 match in rule {earlier})"
            ),
        }
    }

    /// The arguments of the analysis message: rule and reason (IST0130); rule, match and what
    /// takes its requests (IST0131).
    pub(crate) fn args(&self) -> Vec<String> {
        match &self.kind {
            ReachabilityKind::Unreachable { reason } => {
                vec![self.rule_name.clone(), (*reason).to_owned()]
            }
            ReachabilityKind::Ineffective { matched, earlier } => {
                vec![self.rule_name.clone(), matched.clone(), earlier.clone()]
            }
        }
    }
}

/// V-29 … V-32: every reachability finding of a VirtualService's rules, in Istio's order
/// (`analyzeUnreachableHTTPRules` with its prefix overlaps, then the TCP and TLS ones).
pub(crate) fn reachability(vs: &VirtualService) -> Vec<Reachability> {
    let mut out = Vec::new();
    unreachable_http_rules(&mut out, &vs.http);
    unreachable_l4_rules(&mut out, "tcp", &vs.tcp, |r| &r.r#match);
    unreachable_l4_rules(&mut out, "tls", &vs.tls, |r| &r.r#match);
    out
}

/// An HTTP rule's name in these messages: its quoted name, or `#N`.
fn http_rule_name(route: &HttpRoute, index: usize) -> String {
    if route.name.is_empty() {
        format!("#{index}")
    } else {
        quote(&route.name)
    }
}

/// An HTTP match's name in these messages: its quoted name, or `#N`.
fn http_match_name(m: &HttpMatchRequest, index: usize) -> String {
    if m.name.is_empty() {
        format!("#{index}")
    } else {
        quote(&m.name)
    }
}

/// One rule as [`unreachable_rules`] sees it: its name and, per match, what makes two matches
/// the same and the match's name.
type Rule<K> = (String, Vec<(K, String)>);

/// The walk shared by Istio's `analyzeUnreachable*Rules` (V-29 … V-31) over the rules of
/// `protocol`. Returns the matches not seen before, as (rule, match) indexes in order.
fn unreachable_rules<K: PartialEq>(
    out: &mut Vec<Reachability>,
    protocol: &'static str,
    rules: &[Rule<K>],
) -> Vec<(usize, usize)> {
    let name = |i: usize| rules.get(i).map(|(n, _)| n.clone()).unwrap_or_default();
    let mut report = |rule, match_index, kind| {
        out.push(Reachability {
            kind,
            protocol,
            rule,
            match_index,
            rule_name: name(rule),
        });
    };
    let unreachable = |reason| ReachabilityKind::Unreachable { reason };
    // Matches seen so far, with the rule that had them first.
    let mut seen: Vec<(&K, usize)> = Vec::new();
    let mut first: Vec<(usize, usize)> = Vec::new();
    let mut empty_match_seen = false;
    for (i, (_, matches)) in rules.iter().enumerate() {
        if matches.is_empty() {
            if empty_match_seen {
                report(
                    i,
                    None,
                    unreachable("only the last rule can have no matches"),
                );
            }
            empty_match_seen = true;
            continue;
        }
        let mut duplicates = 0;
        for (j, (key, matched)) in matches.iter().enumerate() {
            if empty_match_seen {
                report(
                    i,
                    Some(j),
                    unreachable("route without matches defined before"),
                );
            } else if let Some((_, earlier)) = seen.iter().find(|(k, _)| *k == key) {
                let (matched, earlier) = (matched.clone(), name(*earlier));
                report(
                    i,
                    Some(j),
                    ReachabilityKind::Ineffective { matched, earlier },
                );
                duplicates += 1;
            } else {
                seen.push((key, i));
                first.push((i, j));
            }
        }
        if duplicates == matches.len() {
            report(i, None, unreachable("all matches used by prior rules"));
        }
    }
    first
}

/// What V-32 compares of a match with a non-empty `uri.prefix`.
struct PrefixMatch<'a> {
    rule: usize,
    match_index: usize,
    rule_name: &'a str,
    matched: &'a str,
    prefix: &'a str,
    port: u32,
    method: String,
    authority: String,
    headers: BTreeMap<String, String>,
    query_params: BTreeMap<String, String>,
    without_headers: BTreeMap<String, String>,
}

/// `exact:V` / `prefix:V` for a non-empty exact or prefix value, else empty.
fn exact_or_prefix(m: Option<&StringMatch>) -> String {
    match m {
        Some(StringMatch::Exact(v)) if !v.is_empty() => format!("exact:{v}"),
        Some(StringMatch::Prefix(v)) if !v.is_empty() => format!("prefix:{v}"),
        _ => String::new(),
    }
}

fn rendered(map: &BTreeMap<String, StringMatch>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), exact_or_prefix(Some(v))))
        .collect()
}

/// The match `match_index` of rule `rule` (named `rule_name` and `matched`), when it has a
/// non-empty `uri.prefix`.
fn prefix_match<'a>(
    (rule, match_index): (usize, usize),
    rule_name: &'a str,
    matched: &'a str,
    m: &'a HttpMatchRequest,
) -> Option<PrefixMatch<'a>> {
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
    Some(PrefixMatch {
        rule,
        match_index,
        rule_name,
        matched,
        prefix,
        port: m.port,
        method,
        authority: exact_or_prefix(m.authority.as_ref()),
        headers: rendered(&m.headers),
        query_params: rendered(&m.query_params),
        without_headers: rendered(&m.without_headers),
    })
}

/// An earlier value covers a later one: equal, or the earlier starts with the later.
fn value_covers(a: &str, b: &str) -> bool {
    a == b || a.starts_with(b)
}

fn map_covers(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, va)| b.get(k).is_some_and(|vb| value_covers(va, vb)))
}

/// Istio's `coveredValidation`: the earlier match `a` takes every request of the later `b`.
fn covers(a: &PrefixMatch<'_>, b: &PrefixMatch<'_>) -> bool {
    b.prefix.starts_with(a.prefix)
        && a.port == b.port
        && value_covers(&a.method, &b.method)
        && value_covers(&a.authority, &b.authority)
        && map_covers(&a.headers, &b.headers)
        && map_covers(&a.query_params, &b.query_params)
        && map_covers(&a.without_headers, &b.without_headers)
}

/// `analyzeUnreachableHTTPRules`: V-29 … V-31, then V-32 (prefix matches covered by an
/// earlier one).
fn unreachable_http_rules(out: &mut Vec<Reachability>, routes: &[HttpRoute]) {
    let rules: Vec<Rule<HttpMatchRequest>> = routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let matches = route
                .r#match
                .iter()
                .enumerate()
                .map(|(j, m)| {
                    // Names do not route.
                    let mut unnamed = m.clone();
                    unnamed.name.clear();
                    (unnamed, http_match_name(m, j))
                })
                .collect();
            (http_rule_name(route, i), matches)
        })
        .collect();
    let first = unreachable_rules(out, "http", &rules);
    let prefixes: Vec<PrefixMatch<'_>> = first
        .into_iter()
        .filter_map(|(i, j)| {
            let (rule_name, matches) = rules.get(i)?;
            let (_, matched) = matches.get(j)?;
            let m = routes.get(i)?.r#match.get(j)?;
            prefix_match((i, j), rule_name, matched, m)
        })
        .collect();
    for (k, a) in prefixes.iter().enumerate() {
        for b in prefixes.iter().skip(k + 1) {
            if a.prefix != b.prefix && covers(a, b) {
                out.push(Reachability {
                    kind: ReachabilityKind::Ineffective {
                        matched: format!("{} of prefix {}", b.matched, b.prefix),
                        earlier: format!("{} of prefix {} on {}", a.matched, a.prefix, a.rule_name),
                    },
                    protocol: "http",
                    rule: b.rule,
                    match_index: Some(b.match_index),
                    rule_name: b.rule_name.to_owned(),
                });
            }
        }
    }
}

/// `analyzeUnreachableTCPRules` / `analyzeUnreachableTLSRules` (rules and matches are `#N`).
fn unreachable_l4_rules<R, M: PartialEq>(
    out: &mut Vec<Reachability>,
    protocol: &'static str,
    routes: &[R],
    matches_of: impl Fn(&R) -> &Vec<M>,
) {
    let rules: Vec<Rule<&M>> = routes
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let matches = matches_of(route)
                .iter()
                .enumerate()
                .map(|(j, m)| (m, format!("#{j}")))
                .collect();
            (format!("#{i}"), matches)
        })
        .collect();
    unreachable_rules(out, protocol, &rules);
}
