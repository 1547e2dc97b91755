//! istio-config-validator's own matching, to say where Istio's answer differs from it: that
//! tool takes the first VirtualService (in file order) listing the authority exactly in
//! `hosts`, and its first rule whose match block holds for the URI path, method, authority and
//! headers (exact, prefix or full regex), ignoring gateways, ports, query parameters,
//! `withoutHeaders`, `ignoreUriCase`, catch-all ordering across VirtualServices and
//! delegation's merge rules.

use std::cell::RefCell;
use std::collections::HashMap;

use portcullis_model::virtual_service::HttpMatchRequest;
use portcullis_model::{Object, Resource, StringMatch, VirtualService};
use portcullis_route_match::RequestHead;
use portcullis_translate::{
    GatewayPlan,
    simulate::{Decision, Outcome as SimOutcome},
};

use super::{Probe, VsIndex, Written};
use crate::input::Loaded;

/// The simplified matcher over every VirtualService, in file order.
#[derive(Debug)]
pub(crate) struct Matcher<'l> {
    services: Vec<&'l Resource<VirtualService>>,
    /// Exact host → indices of the VirtualServices listing it.
    by_host: HashMap<&'l str, Vec<usize>>,
    regexes: RefCell<HashMap<String, Option<regex::Regex>>>,
}

impl<'l> Matcher<'l> {
    pub(crate) fn new(loaded: &'l Loaded) -> Self {
        let services: Vec<_> = loaded
            .documents
            .iter()
            .filter_map(|d| match &d.object {
                Object::VirtualService(vs) => Some(vs),
                _ => None,
            })
            .collect();
        let mut by_host: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, vs) in services.iter().enumerate() {
            for h in &vs.spec.hosts {
                let list = by_host.entry(h.as_str()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        Self {
            services,
            by_host,
            regexes: RefCell::new(HashMap::new()),
        }
    }

    fn string_match(&self, m: Option<&StringMatch>, s: &str) -> bool {
        match m {
            None => true,
            Some(StringMatch::Exact(e)) => e.is_empty() || e == s,
            Some(StringMatch::Prefix(p)) => s.starts_with(p.as_str()),
            Some(StringMatch::Regex(r)) => {
                let mut cache = self.regexes.borrow_mut();
                let re = cache
                    .entry(r.clone())
                    .or_insert_with(|| regex::Regex::new(&format!("^(?:{r})$")).ok());
                re.as_ref().is_some_and(|re| re.is_match(s))
            }
            Some(_) => false,
        }
    }

    fn matches(&self, m: &HttpMatchRequest, probe: &Probe, path: &str) -> bool {
        for (name, sm) in &m.headers {
            let Some((_, v)) = probe.headers.iter().find(|(k, _)| k == name) else {
                return false;
            };
            if !self.string_match(Some(sm), v) {
                return false;
            }
        }
        self.string_match(m.uri.as_ref(), path)
            && self.string_match(m.authority.as_ref(), &probe.authority)
            && self.string_match(m.method.as_ref(), &probe.method)
    }

    /// The VirtualService and rule index that tool would pick.
    pub(crate) fn pick(&self, probe: &Probe) -> Option<(&'l Resource<VirtualService>, usize)> {
        let path = probe.uri.split(['?', '#']).next().unwrap_or("");
        for &i in self.by_host.get(probe.authority.as_str())? {
            let vs = self.services.get(i)?;
            for (ri, rule) in vs.spec.http.iter().enumerate() {
                if rule.r#match.is_empty()
                    || rule.r#match.iter().any(|m| self.matches(m, probe, path))
                {
                    return Some((vs, ri));
                }
            }
        }
        None
    }
}

fn name(vs: &Resource<VirtualService>) -> String {
    format!("{}.{}", vs.metadata.name, vs.metadata.namespace)
}

/// Whether root and delegate match blocks conflict on a field, as Istio's `hasConflict`
/// judges it: a regex on either side, different exact values, a prefix under an exact, a
/// delegate's value outside the root's prefix.
fn conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    match (root, leaf) {
        (StringMatch::Regex(_), _) | (_, StringMatch::Regex(_)) => true,
        (StringMatch::Exact(r), StringMatch::Exact(l)) => r != l,
        (StringMatch::Exact(_), StringMatch::Prefix(_)) => true,
        (StringMatch::Prefix(r), StringMatch::Exact(l)) => !l.starts_with(r.as_str()),
        (StringMatch::Prefix(r), StringMatch::Prefix(l)) => !l.starts_with(r.as_str()),
        _ => false,
    }
}

/// One string field of a match block.
type MatchField = fn(&HttpMatchRequest) -> Option<&StringMatch>;

/// Why Istio has no route from a rule that delegates, if it is the delegation.
fn delegation_reason(
    vs: &Resource<VirtualService>,
    rule: usize,
    index: &VsIndex<'_>,
) -> Option<String> {
    let r = vs.spec.http.get(rule)?;
    let d = r.delegate.as_ref()?;
    let ns = if d.namespace.is_empty() {
        vs.metadata.namespace.as_str()
    } else {
        d.namespace.as_str()
    };
    let Some((_, leaf)) = index.get(ns, &d.name) else {
        return Some(format!(
            "Istio drops spec.http[{rule}] of {}: its delegate VirtualService {}.{ns} does not exist",
            name(vs),
            d.name
        ));
    };
    let fields: [(&str, MatchField); 4] = [
        ("uri", |m| m.uri.as_ref()),
        ("method", |m| m.method.as_ref()),
        ("authority", |m| m.authority.as_ref()),
        ("scheme", |m| m.scheme.as_ref()),
    ];
    let mut conflicts = Vec::new();
    for (li, lr) in leaf.spec.http.iter().enumerate() {
        for rm in &r.r#match {
            for lm in &lr.r#match {
                for (field, get) in &fields {
                    if conflict(get(rm), get(lm)) {
                        conflicts.push(format!("{field} of spec.http[{li}]"));
                    }
                }
            }
        }
    }
    conflicts.dedup();
    if conflicts.is_empty() {
        return None;
    }
    Some(format!(
        "Istio merges the match blocks of spec.http[{rule}] of {} with those of its delegate {}.{ns} and drops each pair that conflicts (a regex on either side of the same field, or disjoint exact/prefix values): {}",
        name(vs),
        d.name,
        conflicts.join(", ")
    ))
}

/// A note when Istio's route differs from the one istio-config-validator would compare with.
pub(crate) fn compare(
    matcher: &Matcher<'_>,
    probe: &Probe,
    decision: &Decision<'_>,
    written: Option<&Written<'_>>,
    plan: &GatewayPlan,
    index: &VsIndex<'_>,
) -> Option<String> {
    let theirs = matcher.pick(probe);
    let ours = written.map(|w| (w.vs, w.http_index));
    let same = match (theirs, ours) {
        (Some((a, i)), Some((b, j))) => std::ptr::eq(a, b) && i == j,
        (None, None) => true,
        _ => false,
    };
    if same {
        return None;
    }
    let host = crate::context::split_authority(&probe.authority)
        .0
        .to_ascii_lowercase();
    let theirs_text = theirs.map_or_else(
        || {
            "no rule (no VirtualService lists the authority in hosts, or no rule matches)"
                .to_owned()
        },
        |(vs, i)| format!("{} spec.http[{i}]", name(vs)),
    );
    let why = match (theirs, ours) {
        (Some((vs, i)), None) => delegation_reason(vs, i, index).unwrap_or_else(|| {
            match &decision.outcome {
                SimOutcome::NotFound(portcullis_translate::route_match::NotFound::NoVirtualHost) => format!(
                    "the proxy has no virtual host for {host}: {} is not bound to this proxy (gateways, exportTo) or its hosts are not served here",
                    name(vs)
                ),
                _ => skipped_reason(probe, decision, plan, i)
                    .unwrap_or_else(|| "Istio's matching rules differ here".to_owned()),
            }
        }),
        (theirs, Some((vs, j))) => {
            if !vs.spec.hosts.contains(&probe.authority) {
                format!(
                    "Istio serves {} from {} (host names match case-insensitively, without the port, by wildcard and by short name); that tool needs the authority written exactly in hosts",
                    probe.authority,
                    name(vs)
                )
            } else if let Some((tvs, i)) = theirs.filter(|(t, _)| std::ptr::eq(*t, vs)) {
                skipped_reason(probe, decision, plan, i).unwrap_or_else(|| {
                    format!(
                        "Istio picks spec.http[{j}] of {}: its header names are case-insensitive, it matches query parameters, withoutHeaders, ignoreUriCase, ports and gateways, and stops at the first catch-all",
                        name(tvs)
                    )
                })
            } else {
                format!(
                    "Istio orders VirtualServices by creation time and name, binds them to gateways, and moves catch-all routes last; it picks spec.http[{j}] of {}",
                    name(vs)
                )
            }
        }
        (None, None) => return None,
    };
    Some(format!(
        "istio-config-validator would use {theirs_text}: {why}"
    ))
}

/// Why the router skipped the route built from rule `rule` (of the chosen virtual host), from
/// `Router::explain`.
fn skipped_reason(
    probe: &Probe,
    decision: &Decision<'_>,
    plan: &GatewayPlan,
    rule: usize,
) -> Option<String> {
    let rc = plan.route_configs.get(decision.route_config.as_deref()?)?;
    let headers: Vec<(&str, &str)> = probe
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let head = RequestHead::new(&probe.method, "http", &probe.authority, &probe.uri)
        .with_header_list(&headers);
    let ex = rc.router.explain(&head);
    let vh = rc.virtual_hosts().get(ex.virtual_host.as_ref()?.index)?;
    for s in &ex.skipped {
        let route = vh.routes().get(s.index)?;
        if route
            .action
            .origin
            .as_ref()
            .is_some_and(|o| o.http_index == rule)
        {
            return Some(format!("Istio skipped spec.http[{rule}]: {}", s.failure));
        }
    }
    None
}
