//! Entry points for fuzzing (feature `fuzzing`): each takes arbitrary bytes, must never panic,
//! and asserts the properties the crate promises. `fuzz/` calls them from cargo-fuzz targets, and
//! the regression tests replay every finding through them.
//!
//! [`pipeline`] is structure-aware: a compact generator turns the fuzzer's bytes (through
//! [`arbitrary::Unstructured`]) into a small but varied configuration — Gateways,
//! VirtualServices, DestinationRules, ServiceEntries and Services, written as JSON documents and
//! read by the model's loader like any file — and a handful of requests. Values come from small
//! alphabets, so that hosts, ports and names line up often, and now and then straight from the
//! bytes.

use std::fmt::Write as _;

use arbitrary::{Result, Unstructured};
use portcullis_model::Loader;

use crate::{
    Config, MeshSettings, Proxy, ServiceRegistry, ServiceTarget, Simulation,
    simulate::{Outcome, Protocol, Request},
    translate,
};

const NAMESPACES: &[&str] = &["istio-system", "default", "ns1"];
const HOSTS: &[&str] = &[
    "a.example.com",
    "b.example.com",
    "*.example.com",
    "*",
    "reviews",
    "reviews.default.svc.cluster.local",
    "*.com",
    "ns1/a.example.com",
    "./b.example.com",
    "*/a.example.com",
    "api.ext.io",
    "*.ext.io",
    "A.Example.com",
];
const DEST_HOSTS: &[&str] = &[
    "reviews",
    "reviews.default.svc.cluster.local",
    "ratings.ns1",
    "api.ext.io",
    "a.example.com",
    "*.ext.io",
];
const PORTS: &[u32] = &[80, 443, 8080, 9443, 15443, 0, 70000];
const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS", "MONGO", "http", "",
];
const TLS_MODES: &[&str] = &[
    "SIMPLE",
    "PASSTHROUGH",
    "MUTUAL",
    "AUTO_PASSTHROUGH",
    "ISTIO_MUTUAL",
    "OPTIONAL_MUTUAL",
];
const GATEWAYS: &[&str] = &[
    "gw0",
    "gw1",
    "istio-system/gw0",
    "istio-system/gw1",
    "default/gw0",
    "mesh",
];
const PATHS: &[&str] = &["/", "/a", "/a/", "/api", "/api/v1", "", "/é", "/A"];
const REGEXES: &[&str] = &["/a.*", ".*", "/[ab]+", "(?i)/API", "a)|(b", "/(a|b)/.*"];
const AUTHORITIES: &[&str] = &[
    "a.example.com",
    "b.example.com:80",
    "x.example.com",
    "api.ext.io:443",
    "reviews",
    "",
    "[::1]:80",
    "A.EXAMPLE.COM",
];
const REQ_PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/b",
    "/api/v1/x",
    "/A",
    "/a/../b",
    "/./a",
    "",
    "/é",
];
const HEADER_NAMES: &[&str] = &[
    "x-a",
    "origin",
    "access-control-request-method",
    "X-A",
    ":authority",
];
const HEADER_VALUES: &[&str] = &["1", "", "https://a.com", "GET", "a"];
const DURATIONS: &[&str] = &["1s", "0s", "0.5s", "10ms", "1h", "-1s", "x"];

/// One of `list`, or (one time in `one_in`) a short string from the fuzzer's bytes.
fn text(u: &mut Unstructured<'_>, list: &[&str], one_in: u8) -> Result<String> {
    if u.ratio(1, one_in)? {
        let s: &str = u.arbitrary()?;
        return Ok(s.chars().take(24).collect());
    }
    Ok((*u.choose(list)?).to_owned())
}

/// `s` as a double-quoted string, valid in JSON (ASCII) and YAML (the loader's parser) alike.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

fn q(u: &mut Unstructured<'_>, list: &[&str], one_in: u8) -> Result<String> {
    Ok(quoted(&text(u, list, one_in)?))
}

/// A JSON list of `0..=max` items made by `item`.
fn list(
    u: &mut Unstructured<'_>,
    max: u8,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<String>,
) -> Result<String> {
    let mut items = Vec::new();
    for _ in 0..u.int_in_range(0..=max)? {
        items.push(item(u)?);
    }
    Ok(format!("[{}]", items.join(",")))
}

fn port(u: &mut Unstructured<'_>) -> Result<u32> {
    if u.ratio(1, 16)? {
        return u.arbitrary();
    }
    Ok(*u.choose(PORTS)?)
}

fn meta(u: &mut Unstructured<'_>, name: &str) -> Result<String> {
    Ok(format!(
        r#"{{"name":{},"namespace":{}}}"#,
        quoted(name),
        q(u, NAMESPACES, 16)?
    ))
}

fn gateway(u: &mut Unstructured<'_>, i: usize) -> Result<String> {
    let servers = list(u, 3, |u| {
        let mut s = format!(
            r#""port":{{"number":{},"name":{},"protocol":{}}},"hosts":{}"#,
            port(u)?,
            q(u, &["http", "https", "tls", "tcp"], 16)?,
            q(u, PROTOCOLS, 16)?,
            list(u, 3, |u| q(u, HOSTS, 8))?,
        );
        if u.ratio(1, 2)? {
            let _ = write!(
                s,
                r#","tls":{{"mode":{},"credentialName":"cred","httpsRedirect":{}}}"#,
                q(u, TLS_MODES, 16)?,
                u.arbitrary::<bool>()?
            );
        }
        if u.ratio(1, 8)? {
            let _ = write!(s, r#","bind":{}"#, q(u, &["10.0.0.1", "0.0.0.0", "x"], 4)?);
        }
        Ok(format!("{{{s}}}"))
    })?;
    let selector = q(u, &["ingressgateway", "egressgateway"], 16)?;
    Ok(format!(
        r#"{{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{},"spec":{{"selector":{{"istio":{selector}}},"servers":{servers}}}}}"#,
        meta(u, &format!("gw{i}"))?
    ))
}

fn string_match(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => format!(r#"{{"exact":{}}}"#, q(u, PATHS, 8)?),
        1 => format!(r#"{{"prefix":{}}}"#, q(u, PATHS, 8)?),
        2 => format!(r#"{{"regex":{}}}"#, q(u, REGEXES, 6)?),
        _ => "{}".to_owned(),
    })
}

fn destination(u: &mut Unstructured<'_>) -> Result<String> {
    let mut d = format!(r#""host":{}"#, q(u, DEST_HOSTS, 8)?);
    if u.ratio(1, 3)? {
        let _ = write!(d, r#","subset":{}"#, q(u, &["v1", "v2"], 8)?);
    }
    if u.ratio(1, 2)? {
        let _ = write!(d, r#","port":{{"number":{}}}"#, port(u)?);
    }
    Ok(format!("{{{d}}}"))
}

fn header_ops(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(format!(
        r#"{{"request":{{"set":{{{}:{}}},"remove":[{}]}},"response":{{"add":{{{}:{}}}}}}}"#,
        q(u, HEADER_NAMES, 6)?,
        q(u, HEADER_VALUES, 6)?,
        q(u, HEADER_NAMES, 6)?,
        q(u, HEADER_NAMES, 6)?,
        q(u, HEADER_VALUES, 6)?,
    ))
}

fn http_route(u: &mut Unstructured<'_>) -> Result<String> {
    let matches = list(u, 2, |u| {
        let mut m = Vec::new();
        if u.arbitrary()? {
            m.push(format!(r#""uri":{}"#, string_match(u)?));
        }
        if u.ratio(1, 3)? {
            m.push(format!(
                r#""headers":{{{}:{}}}"#,
                q(u, HEADER_NAMES, 6)?,
                string_match(u)?
            ));
        }
        if u.ratio(1, 4)? {
            m.push(format!(r#""queryParams":{{"q":{}}}"#, string_match(u)?));
        }
        if u.ratio(1, 4)? {
            m.push(format!(r#""port":{}"#, port(u)?));
        }
        if u.ratio(1, 4)? {
            m.push(format!(
                r#""gateways":{}"#,
                list(u, 2, |u| q(u, GATEWAYS, 8))?
            ));
        }
        if u.ratio(1, 4)? {
            m.push(format!(r#""ignoreUriCase":{}"#, u.arbitrary::<bool>()?));
        }
        if u.ratio(1, 6)? {
            m.push(format!(r#""method":{}"#, string_match(u)?));
        }
        Ok(format!("{{{}}}", m.join(",")))
    })?;
    let mut r = vec![format!(r#""match":{matches}"#)];
    match u.int_in_range(0..=5u8)? {
        0 => r.push(format!(
            r#""redirect":{{"uri":{},"authority":{},"redirectCode":{},"scheme":{}}}"#,
            q(u, PATHS, 6)?,
            q(u, AUTHORITIES, 6)?,
            u.choose(&[301, 302, 308, 0, 200])?,
            q(u, &["", "https", "http"], 6)?,
        )),
        1 => r.push(format!(
            r#""directResponse":{{"status":{},"body":{{"string":{}}}}}"#,
            u.choose(&[200, 404, 503, 99, 1000])?,
            q(u, HEADER_VALUES, 4)?,
        )),
        _ => {
            let route = list(u, 3, |u| {
                Ok(format!(
                    r#"{{"destination":{},"weight":{}}}"#,
                    destination(u)?,
                    u.choose(&[0, 10, 50, 100, -1])?
                ))
            })?;
            r.push(format!(r#""route":{route}"#));
        }
    }
    if u.ratio(1, 3)? {
        r.push(if u.arbitrary()? {
            format!(
                r#""rewrite":{{"uri":{},"authority":{}}}"#,
                q(u, PATHS, 6)?,
                q(u, AUTHORITIES, 6)?
            )
        } else {
            format!(
                r#""rewrite":{{"uriRegexRewrite":{{"match":{},"rewrite":{}}}}}"#,
                q(u, REGEXES, 4)?,
                q(u, &["/x", "\\1", "/\\1/y", ""], 4)?
            )
        });
    }
    if u.ratio(1, 4)? {
        r.push(format!(r#""timeout":{}"#, q(u, DURATIONS, 8)?));
    }
    if u.ratio(1, 4)? {
        r.push(format!(
            r#""retries":{{"attempts":{},"perTryTimeout":{},"retryOn":{}}}"#,
            u.choose(&[0, 1, 3, -1])?,
            q(u, DURATIONS, 8)?,
            q(u, &["5xx", "gateway-error,connect-failure", "", "x"], 6)?
        ));
    }
    if u.ratio(1, 4)? {
        r.push(format!(
            r#""fault":{{"abort":{{"httpStatus":{},"percentage":{{"value":{}}}}},"delay":{{"fixedDelay":{},"percentage":{{"value":{}}}}}}}"#,
            u.choose(&[503, 400, 0])?,
            u.choose(&["100", "0", "50.5", "0.0001"])?,
            q(u, DURATIONS, 8)?,
            u.choose(&["100", "0", "12.5"])?,
        ));
    }
    if u.ratio(1, 4)? {
        r.push(format!(r#""headers":{}"#, header_ops(u)?));
    }
    if u.ratio(1, 4)? {
        r.push(format!(
            r#""corsPolicy":{{"allowOrigins":{},"allowMethods":["GET","POST"],"allowCredentials":{},"maxAge":{}}}"#,
            list(u, 2, string_match)?,
            u.arbitrary::<bool>()?,
            q(u, DURATIONS, 8)?,
        ));
    }
    if u.ratio(1, 6)? {
        r.push(format!(
            r#""mirror":{},"mirrorPercentage":{{"value":50}}"#,
            destination(u)?
        ));
    }
    Ok(format!("{{{}}}", r.join(",")))
}

fn virtual_service(u: &mut Unstructured<'_>, i: usize) -> Result<String> {
    let mut spec = vec![
        format!(r#""hosts":{}"#, list(u, 3, |u| q(u, HOSTS, 8))?),
        format!(r#""gateways":{}"#, list(u, 3, |u| q(u, GATEWAYS, 8))?),
        format!(r#""http":{}"#, list(u, 4, http_route)?),
    ];
    if u.ratio(1, 4)? {
        spec.push(format!(
            r#""exportTo":{}"#,
            list(u, 2, |u| q(u, &[".", "*", "ns1"], 8))?
        ));
    }
    if u.ratio(1, 4)? {
        spec.push(format!(
            r#""tcp":[{{"match":[{{"port":{}}}],"route":[{{"destination":{}}}]}}]"#,
            port(u)?,
            destination(u)?
        ));
    }
    if u.ratio(1, 4)? {
        spec.push(format!(
            r#""tls":[{{"match":[{{"sniHosts":{},"port":{}}}],"route":[{{"destination":{}}}]}}]"#,
            list(u, 2, |u| q(u, HOSTS, 8))?,
            port(u)?,
            destination(u)?
        ));
    }
    Ok(format!(
        r#"{{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{},"spec":{{{}}}}}"#,
        meta(u, &format!("vs{i}"))?,
        spec.join(",")
    ))
}

fn destination_rule(u: &mut Unstructured<'_>, i: usize) -> Result<String> {
    let lb = if u.arbitrary()? {
        r#"{"simple":"ROUND_ROBIN"}"#.to_owned()
    } else {
        format!(
            r#"{{"consistentHash":{{"httpHeaderName":{}}}}}"#,
            q(u, HEADER_NAMES, 6)?
        )
    };
    let policy = format!(
        r#"{{"tls":{{"mode":{},"sni":{}}},"loadBalancer":{lb},"outlierDetection":{{"consecutive5xxErrors":{}}},"connectionPool":{{"tcp":{{"maxConnections":{}}}}}}}"#,
        q(u, &["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"], 16)?,
        q(u, AUTHORITIES, 6)?,
        u.choose(&[0, 5, -1])?,
        u.choose(&[1, 100, 0])?,
    );
    let subsets = list(u, 2, |u| {
        Ok(format!(
            r#"{{"name":{},"labels":{{"version":{}}}}}"#,
            q(u, &["v1", "v2"], 8)?,
            q(u, &["v1", "v2"], 8)?
        ))
    })?;
    Ok(format!(
        r#"{{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{},"spec":{{"host":{},"trafficPolicy":{policy},"subsets":{subsets}}}}}"#,
        meta(u, &format!("dr{i}"))?,
        q(u, DEST_HOSTS, 8)?,
    ))
}

fn service_entry(u: &mut Unstructured<'_>, i: usize) -> Result<String> {
    let ports = list(u, 2, |u| {
        Ok(format!(
            r#"{{"number":{},"name":{},"protocol":{}}}"#,
            port(u)?,
            q(u, &["http", "https", "tls"], 8)?,
            q(u, PROTOCOLS, 16)?
        ))
    })?;
    let endpoints = list(u, 2, |u| {
        Ok(format!(
            r#"{{"address":{}}}"#,
            q(u, &["10.0.0.1", "api.ext.io", "::1"], 8)?
        ))
    })?;
    Ok(format!(
        r#"{{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{},"spec":{{"hosts":{},"ports":{ports},"resolution":{},"location":"MESH_EXTERNAL","endpoints":{endpoints}}}}}"#,
        meta(u, &format!("se{i}"))?,
        list(u, 2, |u| q(u, DEST_HOSTS, 8))?,
        q(u, &["DNS", "STATIC", "NONE"], 16)?,
    ))
}

fn service(u: &mut Unstructured<'_>) -> Result<String> {
    let name = text(u, &["reviews", "ratings", "a"], 8)?;
    Ok(format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{},"spec":{{"ports":[{{"name":{},"port":{},"targetPort":{}}}]}}}}"#,
        meta(u, &name)?,
        q(u, &["http", "https", "grpc", "tcp"], 8)?,
        port(u)?,
        port(u)?,
    ))
}

/// The configuration as a stream of JSON documents.
fn configuration(u: &mut Unstructured<'_>) -> Result<String> {
    let mut documents = Vec::new();
    for i in 0..u.int_in_range(0..=2usize)? {
        documents.push(gateway(u, i)?);
    }
    for i in 0..u.int_in_range(0..=3usize)? {
        documents.push(virtual_service(u, i)?);
    }
    for i in 0..u.int_in_range(0..=1usize)? {
        documents.push(destination_rule(u, i)?);
    }
    for i in 0..u.int_in_range(0..=1usize)? {
        documents.push(service_entry(u, i)?);
    }
    for _ in 0..u.int_in_range(0..=1usize)? {
        documents.push(service(u)?);
    }
    Ok(documents.join("\n---\n"))
}

fn proxy(u: &mut Unstructured<'_>) -> Result<Proxy> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Proxy::ingress_gateway().with_service_target(ServiceTarget {
            hostname: "istio-ingressgateway.istio-system.svc.cluster.local".to_owned(),
            namespace: "istio-system".to_owned(),
            port: port(u)?,
            target_port: port(u)?,
            ..ServiceTarget::default()
        }),
        1 => Proxy::sidecar("default", [("app", "reviews")]),
        2 => Proxy {
            unprivileged: true,
            ..Proxy::ingress_gateway()
        },
        _ => Proxy::ingress_gateway(),
    })
}

fn request(u: &mut Unstructured<'_>) -> Result<Request> {
    let protocol = *u.choose(&[
        Protocol::Http,
        Protocol::Https,
        Protocol::Tls,
        Protocol::Tcp,
    ])?;
    let authority = text(u, AUTHORITIES, 6)?;
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=3u8)? {
        headers.push((text(u, HEADER_NAMES, 6)?, text(u, HEADER_VALUES, 6)?));
    }
    let sni = if protocol == Protocol::Http {
        None
    } else {
        Some(text(u, AUTHORITIES, 6)?)
    };
    Ok(Request {
        protocol,
        port: port(u)?,
        sni,
        alpn: if u.arbitrary()? {
            vec!["h2".to_owned()]
        } else {
            Vec::new()
        },
        authority,
        method: text(u, &["GET", "POST", "OPTIONS"], 8)?,
        path: text(u, REQ_PATHS, 5)?,
        query: if u.arbitrary()? {
            Some(text(u, &["q=1", "", "a&b=c"], 6)?)
        } else {
            None
        },
        headers,
        random: u.arbitrary()?,
        ..Request::default()
    })
}

/// A generated configuration, translated for a generated proxy, then a few generated requests
/// through [`Simulation::decide`] (route lookup and the route's action included). Nothing
/// panics; listeners are named `<address>_<port>`; deciding is deterministic; an outcome that
/// comes from a route names the route.
pub fn pipeline(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(yaml) = configuration(&mut u) else {
        return;
    };
    let Ok(proxy) = proxy(&mut u) else {
        return;
    };
    let mut requests = Vec::new();
    while requests.len() < 6 {
        match request(&mut u) {
            Ok(r) => requests.push(r),
            Err(_) => break,
        }
    }
    let loaded = Loader::new().read_str("fuzz.yaml", &yaml);
    let objects: Vec<_> = loaded
        .documents()
        .iter()
        .map(|d| d.object.clone())
        .collect();
    let config = Config::from_objects(&objects);
    let mesh = MeshSettings::default();
    let registry = ServiceRegistry::from_objects(&objects, &mesh.domain_suffix);
    let plan = translate(&config, &registry, &proxy, &mesh);
    for listener in &plan.listeners {
        assert_eq!(
            listener.name,
            format!("{}_{}", listener.address, listener.port)
        );
    }
    let simulation = Simulation::new(&plan);
    for request in &requests {
        let decision = simulation.decide(request);
        assert_eq!(decision, simulation.decide(request), "{request:?}");
        if matches!(
            decision.outcome,
            Outcome::Forward(_) | Outcome::DirectResponse { .. } | Outcome::FaultAbort { .. }
        ) {
            assert!(decision.route.is_some(), "{decision:?}");
        }
    }
}
