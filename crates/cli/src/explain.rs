//! `portcullis explain`: the decision trace of one request.

use std::path::PathBuf;

use clap::Args;
use portcullis_route_match::RequestHead;
use portcullis_translate::Simulation;
use serde_json::{Value, json};

use crate::context::{ContextSpec, ProxySpec, World, parse_selector, request};
use crate::input;
use crate::output::{Format, print_structured};
use crate::routing::{VsIndex, Written, outcome_text};
use crate::{Common, Outcome};

/// Arguments of `portcullis explain`.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The request: `[METHOD] URL` (`GET https://shop.example.com/api?x=1`).
    #[arg(value_name = "REQUEST")]
    request: String,
    /// Configuration files and directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// A request header, `name: value`. Repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Simulate a gateway workload: `[NAMESPACE/]key=value,…` (its namespace and labels).
    #[arg(long, value_name = "[NS/]LABELS", conflicts_with_all = ["mesh", "from"])]
    gateway: Option<String>,
    /// The port the request is sent to (default: the URL's, else the gateway server's, else
    /// 80).
    #[arg(long, value_name = "N")]
    port: Option<u32>,
    /// Simulate a sidecar (the mesh view).
    #[arg(long, requires = "from")]
    mesh: bool,
    /// The sidecar's namespace and labels: `NAMESPACE[/key=value,…]`.
    #[arg(long, value_name = "NAMESPACE[/LABELS]")]
    from: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// A parsed `[METHOD] URL`.
#[derive(Debug)]
pub(crate) struct Url {
    pub(crate) method: String,
    pub(crate) tls: bool,
    pub(crate) authority: String,
    pub(crate) path: String,
}

pub(crate) fn parse_request(text: &str) -> Result<Url, String> {
    let text = text.trim();
    let (method, url) = match text.split_once(char::is_whitespace) {
        Some((m, u)) => (m.to_owned(), u.trim()),
        None => ("GET".to_owned(), text),
    };
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok(Url {
        method,
        tls,
        authority: authority.to_owned(),
        path,
    })
}

fn parse_header(h: &str) -> Result<(String, String), String> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| format!("{h:?} is not a header `name: value`"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

/// The `context:` the command line describes, if any.
pub(crate) fn context_of(
    gateway: Option<&str>,
    mesh: bool,
    from: Option<&str>,
    port: Option<u32>,
    tls: bool,
) -> Result<Option<ContextSpec>, String> {
    if let Some(sel) = gateway {
        let (namespace, labels) = parse_selector(sel)?;
        return Ok(Some(ContextSpec {
            gateway: Some(ProxySpec {
                namespace,
                labels,
                port,
            }),
            tls,
            ..ContextSpec::default()
        }));
    }
    if mesh || from.is_some() {
        let from = from.unwrap_or("default");
        let (namespace, labels) = match from.split_once('/') {
            Some((ns, l)) => (ns.to_owned(), parse_selector(l)?.1),
            None => (from.to_owned(), Default::default()),
        };
        return Ok(Some(ContextSpec {
            mesh: Some(ProxySpec {
                namespace: Some(namespace),
                labels,
                port,
            }),
            tls,
            ..ContextSpec::default()
        }));
    }
    Ok((tls || port.is_some()).then(|| ContextSpec {
        tls,
        ..ContextSpec::default()
    }))
}

pub(crate) fn run(args: &ExplainArgs) -> Outcome {
    let url = match parse_request(&args.request) {
        Ok(u) => u,
        Err(e) => return Outcome::Usage(e),
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        match parse_header(h) {
            Ok(h) => headers.push(h),
            Err(e) => return Outcome::Usage(e),
        }
    }
    let spec = match context_of(
        args.gateway.as_deref(),
        args.mesh,
        args.from.as_deref(),
        args.port,
        url.tls,
    ) {
        Ok(s) => s,
        Err(e) => return Outcome::Usage(e),
    };
    let sources = match input::gather(&args.paths) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let loaded = input::load(&sources, &args.common);
    if let Some(failure) = input::load_failure(&loaded.errors) {
        return failure;
    }
    let mut world = World::new(&loaded, &args.common.default_namespace);
    let target = match &spec {
        Some(spec) if spec.gateway.is_some() || spec.mesh.is_some() => {
            world.target_from_spec(spec, &url.authority)
        }
        _ => world
            .default_target_over(&url.authority, url.tls)
            .map(|mut t| {
                if let Some(p) = args.port {
                    t.port = p;
                }
                if url.tls && !t.tls {
                    t.tls = true;
                    t.sni = Some(crate::context::split_authority(&url.authority).0.to_owned());
                }
                t
            }),
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => return Outcome::Input(e),
    };
    world.prepare(&target.view);
    let Some(plan) = world.plan_ref(&target.view) else {
        return Outcome::Input("no plan".to_owned());
    };
    let req = request(&target, &url.method, &url.authority, &url.path, &headers);
    let mut decision = Simulation::new(plan).decide(&req);
    world.correct(&target.view, &mut decision);
    let index = VsIndex::new(&loaded);
    let written = index.written(&decision);

    // The route lookup, traced.
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let scheme = if url.tls { "https" } else { "http" };
    let rc = decision
        .route_config
        .as_deref()
        .and_then(|n| plan.route_configs.get(n));
    let explanation = rc.map(|rc| {
        let head = RequestHead::new(&url.method, scheme, &url.authority, &url.path)
            .with_header_list(&header_refs);
        rc.router.explain(&head)
    });
    let source_of = |vi: usize, ri: usize| -> Option<String> {
        let route = rc?.route(vi, ri)?;
        let vs = route.action.virtual_service.as_ref()?;
        let origin = route.action.origin.as_ref()?;
        let (doc, _) = index.get(&vs.namespace, &vs.name)?;
        let path = match origin.match_index {
            Some(m) => format!("spec.http[{}].match[{m}]", origin.http_index),
            None => format!("spec.http[{}]", origin.http_index),
        };
        let (line, _) = input::locate(doc, &path);
        let mut text = format!(
            "VirtualService {}.{} {path} ({}:{line})",
            vs.name, vs.namespace, doc.source.file
        );
        if let Some(d) = &origin.delegate
            && let Some((ddoc, _)) = index.get(&d.namespace, &d.name)
        {
            let path = format!("spec.http[{}]", d.http_index);
            let (line, _) = input::locate(ddoc, &path);
            text.push_str(&format!(
                " delegating to VirtualService {}.{} {path} ({}:{line})",
                d.name, d.namespace, ddoc.source.file
            ));
        }
        Some(text)
    };
    let mut skipped = Vec::new();
    let mut vhost = None;
    if let Some(ex) = &explanation
        && let Some(vh) = &ex.virtual_host
    {
        vhost = Some(format!("{} (chosen by {} {})", vh.name, vh.kind, vh.domain));
        for s in &ex.skipped {
            skipped.push((
                s.index,
                s.name.clone(),
                s.failure.to_string(),
                source_of(vh.index, s.index),
            ));
        }
    }
    let transport = if target.tls {
        format!(
            " over TLS (SNI {})",
            target.sni.as_deref().unwrap_or("none")
        )
    } else {
        String::new()
    };
    let chosen = written.as_ref().map(Written::describe);
    let decision_text = outcome_text(&decision.outcome);
    match args.common.output {
        Format::Log => {
            outln!(
                "request: {} {scheme}://{}{}",
                url.method,
                url.authority,
                url.path
            );
            outln!("proxy: {}, port {}{transport}", target.view, target.port);
            outln!(
                "listener: {}",
                decision.listener.as_deref().unwrap_or("none")
            );
            outln!(
                "filter chain: {}",
                decision.filter_chain.as_deref().unwrap_or("none")
            );
            outln!(
                "route configuration: {}",
                decision.route_config.as_deref().unwrap_or("none")
            );
            outln!(
                "virtual host: {}",
                vhost
                    .as_deref()
                    .or(decision.virtual_host.as_deref())
                    .unwrap_or("none")
            );
            for (i, name, failure, source) in &skipped {
                match source {
                    Some(src) => outln!("  route #{i} {name:?} skipped: {failure} [{src}]"),
                    None => outln!("  route #{i} {name:?} skipped: {failure}"),
                }
            }
            match (&decision.route, &chosen) {
                (Some(r), Some(src)) => outln!("route: {:?} from {src}", r.name),
                (Some(r), None) => outln!("route: {:?} (generated)", r.name),
                (None, _) => outln!("route: none"),
            }
            outln!("decision: {decision_text}");
        }
        format => {
            let v = json!({
                "request": {"method": url.method, "scheme": scheme, "authority": url.authority, "path": url.path},
                "proxy": target.view.to_string(),
                "port": target.port,
                "tls": target.tls,
                "listener": decision.listener,
                "filterChain": decision.filter_chain,
                "routeConfiguration": decision.route_config,
                "virtualHost": decision.virtual_host,
                "skipped": skipped.iter().map(|(i, n, f, s)| json!({"index": i, "name": n, "failure": f, "source": s})).collect::<Vec<_>>(),
                "route": decision.route.map(|r| Value::String(r.name.clone())),
                "source": chosen,
                "decision": decision_text,
            });
            print_structured(format, &v);
        }
    }
    Outcome::Ok
}
