//! istio-config-validator's test format: `testCases:` with `description`, `wantMatch`,
//! `request` (unfolded into every combination of authority, method and uri) and the fields of
//! the matched rule as written (`route`, `redirect`, `rewrite`, `fault`, `headers`,
//! `delegate`), compared by equality; `wantMatch: false` inverts every comparison.
//!
//! Portcullis extensions (the format stays a superset): `context:` (see
//! [`ContextSpec`]), query parameters in `uri`, and effective
//! results: `cluster`, `subset`, upstream `path` and `host` after rewrites, redirect
//! `location`, and `status` (redirect, direct response or fault abort; 404 without a route).

use std::collections::BTreeMap;
use std::rc::Rc;

use portcullis_model::from_value;
use portcullis_model::virtual_service::{
    Delegate, Headers, HttpFaultInjection, HttpRedirect, HttpRewrite, HttpRouteDestination,
};
use portcullis_translate::simulate::{Decision, Outcome as SimOutcome};
use serde::Serialize;
use serde_json::Value;

use super::{Expect, Probe, Written};
use crate::Outcome;
use crate::context::ContextSpec;

/// One test case.
#[derive(Debug, Default)]
pub(crate) struct Case {
    want_match: bool,
    route: Option<Vec<HttpRouteDestination>>,
    redirect: Option<HttpRedirect>,
    rewrite: Option<HttpRewrite>,
    fault: Option<HttpFaultInjection>,
    headers: Option<Headers>,
    delegate: Option<Delegate>,
    cluster: Option<String>,
    subset: Option<String>,
    path: Option<String>,
    host: Option<String>,
    location: Option<String>,
    status: Option<u16>,
}

fn field<T: serde::de::DeserializeOwned>(
    case: &Value,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let v = case.get(name)?;
    if v.is_null() {
        return None;
    }
    match from_value::<T>(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(format!("{name}: {e}"));
            None
        }
    }
}

fn strings(request: &Value, name: &str) -> Vec<String> {
    match request.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Unfolds the test cases of one `testCases:` document into probes.
pub(crate) fn probes(file: &str, doc: &Value, out: &mut Vec<Probe>) -> Result<(), Outcome> {
    let Some(cases) = doc.get("testCases").and_then(Value::as_array) else {
        return Err(Outcome::Input(format!("{file}: testCases is not a list")));
    };
    for (i, raw) in cases.iter().enumerate() {
        let description = raw
            .get("description")
            .and_then(Value::as_str)
            .map_or_else(|| format!("testCases[{i}]"), str::to_owned);
        let mut errors = Vec::new();
        let case = Case {
            want_match: raw
                .get("wantMatch")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            route: field(raw, "route", &mut errors),
            redirect: field(raw, "redirect", &mut errors),
            rewrite: field(raw, "rewrite", &mut errors),
            fault: field(raw, "fault", &mut errors),
            headers: field(raw, "headers", &mut errors),
            delegate: field(raw, "delegate", &mut errors),
            cluster: field(raw, "cluster", &mut errors),
            subset: field(raw, "subset", &mut errors),
            path: field(raw, "path", &mut errors),
            host: field(raw, "host", &mut errors),
            location: field(raw, "location", &mut errors),
            status: field(raw, "status", &mut errors),
        };
        let context: Option<ContextSpec> = match raw.get("context") {
            Some(v) => match serde_json::from_value(v.clone()) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(format!("context: {e}"));
                    None
                }
            },
            None => None,
        };
        let request = raw.get("request").cloned().unwrap_or(Value::Null);
        let authorities = strings(&request, "authority");
        let methods = strings(&request, "method");
        let uris = strings(&request, "uri");
        for (name, list) in [
            ("authority", &authorities),
            ("method", &methods),
            ("uri", &uris),
        ] {
            if list.is_empty() {
                errors.push(format!("request.{name}: the list is empty"));
            }
        }
        let headers: Vec<(String, String)> = request
            .get("headers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        if !errors.is_empty() {
            out.push(Probe {
                file: file.to_owned(),
                test: description,
                method: String::new(),
                authority: String::new(),
                uri: String::new(),
                headers: Vec::new(),
                written_headers: 0,
                random: 0,
                context: None,
                expect: Expect::Invalid(errors.join("; ")),
            });
            continue;
        }
        let case = Rc::new(case);
        for uri in &uris {
            for authority in &authorities {
                for method in &methods {
                    out.push(Probe {
                        file: file.to_owned(),
                        test: description.clone(),
                        method: method.clone(),
                        authority: authority.clone(),
                        uri: uri.clone(),
                        headers: headers.clone(),
                        written_headers: headers.len(),
                        random: 0,
                        context: context.clone(),
                        expect: Expect::Icv(Rc::clone(&case)),
                    });
                }
            }
        }
    }
    Ok(())
}

fn show<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Compares one field: equality must be `want_match`.
fn compare<T: PartialEq + Serialize>(
    name: &str,
    want: Option<T>,
    got: T,
    want_match: bool,
    failures: &mut Vec<(String, String, String)>,
) {
    let Some(want) = want else { return };
    if (want == got) != want_match {
        let want = if want_match {
            show(&want)
        } else {
            format!("anything but {}", show(&want))
        };
        failures.push((name.to_owned(), show(&got), want));
    }
}

/// Checks a simulated decision against a test case.
pub(crate) fn check(
    case: &Case,
    decision: &Decision<'_>,
    written: Option<&Written<'_>>,
    failures: &mut Vec<(String, String, String)>,
) {
    type Rule = portcullis_model::virtual_service::HttpRoute;
    let want = case.want_match;
    let effective = written.map(Written::effective);
    let root = written.map(|w| w.root);
    // Istio's merge of a delegated rule: the delegate's field, else the root's.
    let merged = |get: &dyn Fn(&Rule) -> bool| -> Option<&Rule> {
        match (written.and_then(|w| w.leaf), root) {
            (Some((_, _, _, leaf)), Some(root)) if !get(leaf) => Some(root),
            _ => effective,
        }
    };
    let some = |o: &Option<String>| o.clone().map(Some);
    compare(
        "delegate",
        case.delegate.clone().map(Some),
        root.and_then(|r| r.delegate.clone()),
        want,
        failures,
    );
    compare(
        "route",
        case.route.clone(),
        effective.map(|r| r.route.clone()).unwrap_or_default(),
        want,
        failures,
    );
    compare(
        "rewrite",
        case.rewrite.clone().map(Some),
        merged(&|r| r.rewrite.is_some()).and_then(|r| r.rewrite.clone()),
        want,
        failures,
    );
    compare(
        "fault",
        case.fault.clone().map(Some),
        merged(&|r| r.fault.is_some()).and_then(|r| r.fault.clone()),
        want,
        failures,
    );
    compare(
        "headers",
        case.headers.clone().map(Some),
        merged(&|r| r.headers.is_some()).and_then(|r| r.headers.clone()),
        want,
        failures,
    );
    compare(
        "redirect",
        case.redirect.clone().map(Some),
        effective.and_then(|r| r.redirect.clone()),
        want,
        failures,
    );
    // Effective results (Portcullis extensions).
    let eff = Effective::of(&decision.outcome);
    compare("cluster", some(&case.cluster), eff.cluster, want, failures);
    compare("subset", some(&case.subset), eff.subset, want, failures);
    compare("path", some(&case.path), eff.path, want, failures);
    compare("host", some(&case.host), eff.host, want, failures);
    compare(
        "location",
        some(&case.location),
        eff.location,
        want,
        failures,
    );
    compare("status", case.status.map(Some), eff.status, want, failures);
}

/// What the proxy does, in the terms the extension fields use.
#[derive(Debug, Default)]
pub(crate) struct Effective {
    pub(crate) cluster: Option<String>,
    pub(crate) subset: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) status: Option<u16>,
}

impl Effective {
    pub(crate) fn of(outcome: &SimOutcome) -> Self {
        match outcome {
            SimOutcome::Forward(f) => Self {
                subset: f.cluster.split('|').nth(2).map(str::to_owned),
                cluster: Some(f.cluster.clone()),
                path: Some(f.upstream.path.clone()),
                host: Some(f.upstream.authority.clone()),
                location: None,
                status: None,
            },
            SimOutcome::Redirect {
                status, location, ..
            } => Self {
                location: Some(location.clone()),
                status: Some(*status),
                ..Self::default()
            },
            SimOutcome::DirectResponse { status, .. }
            | SimOutcome::CorsPreflight { status, .. } => Self {
                status: Some(*status),
                ..Self::default()
            },
            SimOutcome::FaultAbort { status, .. } => Self {
                status: status.and_then(|s| u16::try_from(s).ok()),
                ..Self::default()
            },
            SimOutcome::NotFound(_) => Self {
                status: Some(404),
                ..Self::default()
            },
            SimOutcome::Probabilistic { otherwise, .. } => Self::of(otherwise),
            _ => Self::default(),
        }
    }
}
