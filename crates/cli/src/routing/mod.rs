//! `portcullis test`: routing tests in istio-config-validator's format (`testCases:`) and in
//! Envoy's router check tool format (`tests:`), answered by simulating the proxy Istio would
//! configure.

mod envoy;
mod icv;
mod report;
mod simple;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use portcullis_model::virtual_service::HttpRoute as VsRule;
use portcullis_model::{Document, Object, Resource, VirtualService};
use portcullis_translate::{
    Simulation,
    simulate::{Decision, Outcome as SimOutcome},
};
use serde_json::Value;

use crate::context::{ContextSpec, Target, World, request};
use crate::input::{self, Loaded};
use crate::{Common, Outcome};

/// Arguments of `portcullis test`.
#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Test files and directories (`testCases:` or `tests:` documents; other documents are
    /// skipped). Repeatable.
    #[arg(short = 't', long = "tests", required = true, value_name = "TESTS")]
    tests: Vec<PathBuf>,
    /// Configuration files and directories (documents without `apiVersion` are skipped: they
    /// are tests).
    #[arg(required = true, value_name = "CONFIG")]
    config: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// Also writes the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// One request to simulate, with what the test expects.
#[derive(Debug)]
pub(crate) struct Probe {
    /// The test file.
    pub(crate) file: String,
    /// The test's name (`description` or `test_name`).
    pub(crate) test: String,
    pub(crate) method: String,
    pub(crate) authority: String,
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, String)>,
    /// How many of `headers` the test wrote (the rest are the format's own, such as
    /// `x-forwarded-proto`).
    pub(crate) written_headers: usize,
    pub(crate) random: u64,
    pub(crate) context: Option<ContextSpec>,
    pub(crate) expect: Expect,
}

impl Probe {
    /// `GET example.com/users x-user=1`.
    pub(crate) fn label(&self) -> String {
        let mut s = format!("{} {}{}", self.method, self.authority, self.uri);
        for (k, v) in self.headers.iter().take(self.written_headers) {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }
}

/// What a probe checks.
#[derive(Debug)]
pub(crate) enum Expect {
    /// An istio-config-validator test case (shared by its unfolded inputs).
    Icv(std::rc::Rc<icv::Case>),
    /// A router check tool test.
    Envoy(Box<envoy::Validate>),
    /// The test itself is malformed.
    Invalid(String),
}

/// A rule as written, where a simulated route came from.
#[derive(Debug)]
pub(crate) struct Written<'l> {
    pub(crate) vs: &'l Resource<VirtualService>,
    pub(crate) doc: &'l Document,
    pub(crate) http_index: usize,
    pub(crate) match_index: Option<usize>,
    pub(crate) root: &'l VsRule,
    /// For a delegated route: the delegate's document, resource, rule index and rule.
    pub(crate) leaf: Option<(
        &'l Document,
        &'l Resource<VirtualService>,
        usize,
        &'l VsRule,
    )>,
}

impl Written<'_> {
    /// `VirtualService name.ns spec.http[1] (file:line)`, and the delegate's rule.
    pub(crate) fn describe(&self) -> String {
        let path = match self.match_index {
            Some(m) => format!("spec.http[{}].match[{m}]", self.http_index),
            None => format!("spec.http[{}]", self.http_index),
        };
        let (line, _) = input::locate(self.doc, &path);
        let mut s = format!(
            "VirtualService {}.{} {path} ({}:{line})",
            self.vs.metadata.name, self.vs.metadata.namespace, self.doc.source.file
        );
        if let Some((doc, vs, i, _)) = &self.leaf {
            let path = format!("spec.http[{i}]");
            let (line, _) = input::locate(doc, &path);
            s.push_str(&format!(
                " delegating to VirtualService {}.{} {path} ({}:{line})",
                vs.metadata.name, vs.metadata.namespace, doc.source.file
            ));
        }
        s
    }

    /// The rule whose fields apply: the delegate's when delegated.
    pub(crate) fn effective(&self) -> &VsRule {
        self.leaf.map_or(self.root, |(_, _, _, r)| r)
    }
}

/// VirtualService documents by (namespace, name).
#[derive(Debug)]
pub(crate) struct VsIndex<'l> {
    by_name: HashMap<(&'l str, &'l str), (&'l Document, &'l Resource<VirtualService>)>,
}

impl<'l> VsIndex<'l> {
    pub(crate) fn new(loaded: &'l Loaded) -> Self {
        let mut by_name = HashMap::new();
        for d in &loaded.documents {
            if let Object::VirtualService(vs) = &d.object {
                by_name
                    .entry((vs.metadata.namespace.as_str(), vs.metadata.name.as_str()))
                    .or_insert((d, vs));
            }
        }
        Self { by_name }
    }

    pub(crate) fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(&'l Document, &'l Resource<VirtualService>)> {
        self.by_name.get(&(namespace, name)).copied()
    }

    /// The rule as written behind a simulated route.
    pub(crate) fn written(&self, decision: &Decision<'_>) -> Option<Written<'l>> {
        let route = decision.route?;
        let vs_ref = route.virtual_service.as_ref()?;
        let origin = route.origin.as_ref()?;
        let (doc, vs) = self.get(&vs_ref.namespace, &vs_ref.name)?;
        let root = vs.spec.http.get(origin.http_index)?;
        let leaf = match &origin.delegate {
            Some(d) => {
                let (ldoc, lvs) = self.get(&d.namespace, &d.name)?;
                Some((ldoc, lvs, d.http_index, lvs.spec.http.get(d.http_index)?))
            }
            None => None,
        };
        Some(Written {
            vs,
            doc,
            http_index: origin.http_index,
            match_index: origin.match_index,
            root,
            leaf,
        })
    }
}

/// The result of one probe.
#[derive(Debug)]
pub(crate) struct Result_ {
    pub(crate) file: String,
    pub(crate) test: String,
    pub(crate) input: String,
    /// Failed checks: (field, got, want).
    pub(crate) failures: Vec<(String, String, String)>,
    /// Where the request went, for people.
    pub(crate) decided_by: String,
    /// Where Istio's answer differs from istio-config-validator's simplified matching, why.
    pub(crate) notes: Vec<String>,
}

impl Result_ {
    pub(crate) fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What happened, in one phrase.
pub(crate) fn outcome_text(outcome: &SimOutcome) -> String {
    match outcome {
        SimOutcome::Forward(f) => format!(
            "forward to {} as {}{}",
            f.cluster, f.upstream.authority, f.upstream.path
        ),
        SimOutcome::Redirect {
            status, location, ..
        } => format!("redirect {status} to {location}"),
        SimOutcome::DirectResponse { status, .. } => format!("direct response {status}"),
        SimOutcome::FaultAbort {
            status,
            grpc_status,
        } => match (status, grpc_status) {
            (Some(s), _) => format!("fault abort {s}"),
            (None, Some(g)) => format!("fault abort grpc {g}"),
            _ => "fault abort".to_owned(),
        },
        SimOutcome::NotFound(reason) => format!("404 ({reason:?})"),
        SimOutcome::NoListener => "connection refused: no listener on the port".to_owned(),
        SimOutcome::NoFilterChain => "connection closed: no filter chain matches".to_owned(),
        SimOutcome::ConfigRejected(why) => format!("configuration rejected: {why}"),
        SimOutcome::ProtocolError => "protocol mismatch with the listener".to_owned(),
        SimOutcome::CorsPreflight { status, .. } => format!("CORS preflight {status}"),
        SimOutcome::TcpProxy { cluster, .. } => format!("TCP proxy to {cluster}"),
        SimOutcome::Probabilistic { otherwise, .. } => {
            format!(
                "fault abort sometimes, otherwise {}",
                outcome_text(otherwise)
            )
        }
        other => format!("{other:?}"),
    }
}

/// Reads the test documents of the sources: `testCases:` and `tests:` documents; documents
/// with `apiVersion` are configuration and skipped.
fn read_tests(sources: &[input::Source]) -> Result<Vec<Probe>, Outcome> {
    let mut probes = Vec::new();
    for source in sources {
        let docs: Vec<Value> = serde_saphyr::from_multiple(&source.text)
            .map_err(|e| Outcome::Input(format!("{}: {e}", source.name)))?;
        for (i, doc) in docs.iter().enumerate() {
            match doc {
                Value::Null => {}
                Value::Object(map) if map.contains_key("apiVersion") => {}
                Value::Object(map) if map.contains_key("testCases") => {
                    icv::probes(&source.name, doc, &mut probes)?;
                }
                Value::Object(map) if map.contains_key("tests") => {
                    envoy::probes(&source.name, doc, &mut probes)?;
                }
                _ => {
                    return Err(Outcome::Input(format!(
                        "{}: document {} is neither tests (testCases:, tests:) nor configuration (apiVersion:)",
                        source.name,
                        i + 1
                    )));
                }
            }
        }
    }
    Ok(probes)
}

pub(crate) fn run(args: &TestArgs) -> Outcome {
    let test_sources = match input::gather(&args.tests) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let config_sources = match input::gather(&args.config) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let probes = match read_tests(&test_sources) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let loaded = input::load(&config_sources, &args.common);
    if let Some(failure) = input::load_failure(&loaded.errors) {
        return failure;
    }
    let mut world = World::new(&loaded, &args.common.default_namespace);
    let targets: Vec<Result<Target, String>> = probes
        .iter()
        .map(|p| match &p.context {
            Some(spec) => world.target_from_spec(spec, &p.authority),
            None => world.default_target(&p.authority),
        })
        .collect();
    for t in targets.iter().flatten() {
        world.prepare(&t.view);
    }
    let index = VsIndex::new(&loaded);
    let simple = simple::Matcher::new(&loaded);
    let mut results = Vec::with_capacity(probes.len());
    for (probe, target) in probes.iter().zip(&targets) {
        let mut result = Result_ {
            file: probe.file.clone(),
            test: probe.test.clone(),
            input: probe.label(),
            failures: Vec::new(),
            decided_by: String::new(),
            notes: Vec::new(),
        };
        if let Expect::Invalid(why) = &probe.expect {
            result
                .failures
                .push(("test".to_owned(), why.clone(), String::new()));
            results.push(result);
            continue;
        }
        let target = match target {
            Ok(t) => t,
            Err(why) => {
                result
                    .failures
                    .push(("context".to_owned(), why.clone(), String::new()));
                results.push(result);
                continue;
            }
        };
        let Some(plan) = world.plan_ref(&target.view) else {
            continue;
        };
        let req = request(
            target,
            &probe.method,
            &probe.authority,
            &probe.uri,
            &probe.headers,
        );
        let mut req = req;
        req.random = probe.random;
        let mut decision = Simulation::new(plan).decide(&req);
        world.correct(&target.view, &mut decision);
        let written = index.written(&decision);
        result.decided_by = format!(
            "{} at {} port {}: {}",
            written
                .as_ref()
                .map_or_else(|| "no route".to_owned(), Written::describe),
            target.view,
            target.port,
            outcome_text(&decision.outcome)
        );
        match &probe.expect {
            Expect::Icv(case) => {
                icv::check(case, &decision, written.as_ref(), &mut result.failures);
                if let Some(note) =
                    simple::compare(&simple, probe, &decision, written.as_ref(), plan, &index)
                {
                    result.notes.push(note);
                }
            }
            Expect::Envoy(validate) => {
                envoy::check(validate, &decision, &mut result.failures);
            }
            Expect::Invalid(_) => {}
        }
        results.push(result);
    }
    report::print(&results, args.common.output);
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, report::junit(&results))
    {
        return Outcome::Input(format!("{}: cannot write: {e}", path.display()));
    }
    if results.iter().all(Result_::passed) {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}
