//! `portcullis dump`: what a gateway or sidecar would be configured with, as
//! `istioctl proxy-config` shows it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use portcullis_translate::dump::{self, DumpKind, View as DumpView};

use crate::context::{View, World, parse_selector};
use crate::input;
use crate::output::{Format, print_structured};
use crate::{Common, Outcome};

/// Arguments of `portcullis dump`.
#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// What to print: listeners, routes, clusters or endpoints.
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    kind: DumpKind,
    /// Configuration files and directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The gateway workload: `[NAMESPACE/]key=value,…` (default: Istio's ingress gateway,
    /// `istio-system/istio=ingressgateway`).
    #[arg(long, value_name = "[NS/]LABELS", conflicts_with_all = ["mesh", "from"])]
    gateway: Option<String>,
    /// The sidecar (mesh) view.
    #[arg(long, requires = "from")]
    mesh: bool,
    /// The sidecar's namespace and labels: `NAMESPACE[/key=value,…]`.
    #[arg(long, value_name = "NAMESPACE[/LABELS]")]
    from: Option<String>,
    #[command(flatten)]
    common: Common,
}

fn parse_kind(s: &str) -> Result<DumpKind, String> {
    s.parse()
        .map_err(|e: dump::ParseDumpKindError| e.to_string())
}

pub(crate) fn run(args: &DumpArgs) -> Outcome {
    let view = if let Some(from) = &args.from {
        let (namespace, labels) = match from.split_once('/') {
            Some((ns, l)) => match parse_selector(l) {
                Ok((_, labels)) => (ns.to_owned(), labels),
                Err(e) => return Outcome::Usage(e),
            },
            None => (from.clone(), BTreeMap::new()),
        };
        View::Mesh { namespace, labels }
    } else {
        let sel = args
            .gateway
            .as_deref()
            .unwrap_or("istio-system/istio=ingressgateway");
        match parse_selector(sel) {
            Ok((namespace, labels)) => View::Gateway {
                namespace: namespace.unwrap_or_else(|| "istio-system".to_owned()),
                labels,
            },
            Err(e) => return Outcome::Usage(e),
        }
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
    let plan = world.plan(&view);
    let dump_view = DumpView::of_plan(plan);
    match args.common.output {
        Format::Log => out!("{}", dump::text(&dump_view, args.kind)),
        format => print_structured(format, &dump::json(&dump_view, None)),
    }
    Outcome::Ok
}
