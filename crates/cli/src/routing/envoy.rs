//! Envoy's router check tool format: `tests:` with `test_name`, `input` (`authority`, `path`,
//! `method`, `additional_request_headers`, `ssl`, `random_value`) and `validate`
//! (`cluster_name`, `virtual_host_name`, `path_rewrite`, `host_rewrite`, `path_redirect`,
//! `code_redirect`, `request_header_matches`, `response_header_matches`), answered from the
//! Istio configuration through the gateway or mesh view. An empty string expects no value (no
//! cluster, no redirect).

use portcullis_translate::simulate::{Decision, Outcome as SimOutcome};
use serde::Deserialize;
use serde_json::Value;

use super::{Expect, Probe};
use crate::Outcome;
use crate::context::ContextSpec;

/// `key`/`value` of a header in `additional_request_headers`.
#[derive(Debug, Deserialize)]
struct HeaderValue {
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    authority: String,
    path: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    random_value: u64,
    #[serde(default)]
    ssl: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default, alias = "additional_headers")]
    additional_request_headers: Vec<HeaderValue>,
    #[serde(default)]
    additional_response_headers: Vec<HeaderValue>,
    #[serde(default)]
    runtime: Option<String>,
}

/// A header check of `request_header_matches` / `response_header_matches` (Envoy's
/// `HeaderMatcher`).
#[derive(Debug, Deserialize)]
pub(crate) struct HeaderCheck {
    name: String,
    #[serde(default)]
    string_match: Option<StringMatch>,
    #[serde(default)]
    exact_match: Option<String>,
    #[serde(default)]
    present_match: Option<bool>,
    #[serde(default)]
    presence_match: Option<Value>,
    #[serde(default)]
    invert_match: bool,
}

#[derive(Debug, Deserialize)]
struct StringMatch {
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    safe_regex: Option<SafeRegex>,
    #[serde(default)]
    ignore_case: bool,
}

#[derive(Debug, Deserialize)]
struct SafeRegex {
    regex: String,
}

/// The `validate` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Validate {
    #[serde(default)]
    cluster_name: Option<String>,
    #[serde(default)]
    virtual_host_name: Option<String>,
    #[serde(default)]
    path_rewrite: Option<String>,
    #[serde(default)]
    host_rewrite: Option<String>,
    #[serde(default)]
    path_redirect: Option<String>,
    #[serde(default)]
    code_redirect: Option<u16>,
    #[serde(default)]
    request_header_matches: Vec<HeaderCheck>,
    #[serde(default)]
    response_header_matches: Vec<HeaderCheck>,
    #[serde(default)]
    virtual_cluster_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Test {
    test_name: String,
    input: Input,
    validate: Validate,
    #[serde(default)]
    context: Option<ContextSpec>,
}

/// The probes of one `tests:` document.
pub(crate) fn probes(file: &str, doc: &Value, out: &mut Vec<Probe>) -> Result<(), Outcome> {
    let Some(tests) = doc.get("tests").and_then(Value::as_array) else {
        return Err(Outcome::Input(format!("{file}: tests is not a list")));
    };
    for (i, raw) in tests.iter().enumerate() {
        let name = raw
            .get("test_name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("tests[{i}]"), str::to_owned);
        match serde_json::from_value::<Test>(raw.clone()) {
            Ok(t) => {
                let mut headers: Vec<(String, String)> = t
                    .input
                    .additional_request_headers
                    .into_iter()
                    .map(|h| (h.key, h.value))
                    .collect();
                let written_headers = headers.len();
                headers.push((
                    "x-forwarded-proto".to_owned(),
                    if t.input.ssl { "https" } else { "http" }.to_owned(),
                ));
                if t.input.internal {
                    headers.push(("x-envoy-internal".to_owned(), "true".to_owned()));
                }
                let unsupported = if t.validate.virtual_cluster_name.is_some() {
                    Some("validate.virtual_cluster_name is not supported")
                } else if t.input.runtime.is_some() {
                    Some("input.runtime is not supported")
                } else if !t.input.additional_response_headers.is_empty() {
                    Some("input.additional_response_headers is not supported")
                } else {
                    None
                };
                out.push(Probe {
                    file: file.to_owned(),
                    test: t.test_name,
                    method: t.input.method.unwrap_or_else(|| "GET".to_owned()),
                    authority: t.input.authority,
                    uri: t.input.path,
                    headers,
                    written_headers,
                    random: t.input.random_value,
                    context: t.context,
                    expect: match unsupported {
                        Some(why) => Expect::Invalid(why.to_owned()),
                        None => Expect::Envoy(Box::new(t.validate)),
                    },
                });
            }
            Err(e) => out.push(Probe {
                file: file.to_owned(),
                test: name,
                method: String::new(),
                authority: String::new(),
                uri: String::new(),
                headers: Vec::new(),
                written_headers: 0,
                random: 0,
                context: None,
                expect: Expect::Invalid(format!("not a router check test: {e}")),
            }),
        }
    }
    Ok(())
}

fn check_field(
    name: &str,
    want: Option<&String>,
    got: &str,
    failures: &mut Vec<(String, String, String)>,
) {
    if let Some(want) = want
        && want != got
    {
        failures.push((name.to_owned(), format!("{got:?}"), format!("{want:?}")));
    }
}

fn header_ok(check: &HeaderCheck, headers: &[(String, String)]) -> bool {
    let name = check.name.to_ascii_lowercase();
    let values: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(&name))
        .map(|(_, v)| v.as_str())
        .collect();
    let value = (!values.is_empty()).then(|| values.join(","));
    let matched = if let Some(exact) = &check.exact_match {
        value.as_deref() == Some(exact.as_str())
    } else if let Some(m) = &check.string_match {
        value.as_deref().is_some_and(|v| {
            let (v, fold) = if m.ignore_case {
                (v.to_ascii_lowercase(), true)
            } else {
                (v.to_owned(), false)
            };
            let f = |s: &String| {
                if fold {
                    s.to_ascii_lowercase()
                } else {
                    s.clone()
                }
            };
            if let Some(e) = &m.exact {
                v == f(e)
            } else if let Some(p) = &m.prefix {
                v.starts_with(&f(p))
            } else if let Some(s) = &m.suffix {
                v.ends_with(&f(s))
            } else if let Some(c) = &m.contains {
                v.contains(&f(c))
            } else if let Some(r) = &m.safe_regex {
                regex::Regex::new(&format!("^(?:{})$", r.regex)).is_ok_and(|re| re.is_match(&v))
            } else {
                true
            }
        })
    } else if let Some(present) = check.present_match {
        value.is_some() == present
    } else {
        let _ = &check.presence_match;
        value.is_some()
    };
    matched != check.invert_match
}

/// Checks a decision against a `validate` block.
pub(crate) fn check(
    v: &Validate,
    decision: &Decision<'_>,
    failures: &mut Vec<(String, String, String)>,
) {
    let outcome = match &decision.outcome {
        SimOutcome::Probabilistic { otherwise, .. } => otherwise.as_ref(),
        o => o,
    };
    let (cluster, path, host, request_headers, response_headers) = match outcome {
        SimOutcome::Forward(f) => (
            f.cluster.clone(),
            f.upstream.path.clone(),
            f.upstream.authority.clone(),
            f.upstream.headers.clone(),
            f.response_headers.clone(),
        ),
        _ => Default::default(),
    };
    let (location, code) = match outcome {
        SimOutcome::Redirect {
            status, location, ..
        } => (location.clone(), Some(*status)),
        _ => (String::new(), None),
    };
    check_field("cluster_name", v.cluster_name.as_ref(), &cluster, failures);
    check_field(
        "virtual_host_name",
        v.virtual_host_name.as_ref(),
        decision.virtual_host.as_deref().unwrap_or(""),
        failures,
    );
    check_field("path_rewrite", v.path_rewrite.as_ref(), &path, failures);
    check_field("host_rewrite", v.host_rewrite.as_ref(), &host, failures);
    check_field(
        "path_redirect",
        v.path_redirect.as_ref(),
        &location,
        failures,
    );
    if let Some(want) = v.code_redirect
        && Some(want) != code
    {
        failures.push((
            "code_redirect".to_owned(),
            code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            want.to_string(),
        ));
    }
    for (name, checks, headers) in [
        (
            "request_header_matches",
            &v.request_header_matches,
            &request_headers,
        ),
        (
            "response_header_matches",
            &v.response_header_matches,
            &response_headers,
        ),
    ] {
        for c in checks {
            if !header_ok(c, headers) {
                let got: Vec<&str> = headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                    .map(|(_, v)| v.as_str())
                    .collect();
                failures.push((
                    format!("{name}[{}]", c.name),
                    if got.is_empty() {
                        "absent".to_owned()
                    } else {
                        format!("{:?}", got.join(","))
                    },
                    describe_check(c),
                ));
            }
        }
    }
}

fn describe_check(c: &HeaderCheck) -> String {
    let what = if let Some(e) = &c.exact_match {
        format!("exact {e:?}")
    } else if let Some(m) = &c.string_match {
        if let Some(e) = &m.exact {
            format!("exact {e:?}")
        } else if let Some(p) = &m.prefix {
            format!("prefix {p:?}")
        } else if let Some(s) = &m.suffix {
            format!("suffix {s:?}")
        } else if let Some(s) = &m.contains {
            format!("contains {s:?}")
        } else if let Some(r) = &m.safe_regex {
            format!("regex {:?}", r.regex)
        } else {
            "present".to_owned()
        }
    } else if c.present_match == Some(false) {
        "absent".to_owned()
    } else {
        "present".to_owned()
    };
    if c.invert_match {
        format!("not {what}")
    } else {
        what
    }
}
