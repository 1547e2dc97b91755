//! `portcullis analyze`: the analyzers of `istioctl analyze`, printed as istioctl prints them.

use std::path::PathBuf;

use clap::Args;
use portcullis_model::{Loader, Object};
use portcullis_validate::analysis::{Config, Level, MeshConfig, Message, analyze_all};
use serde_json::{Value, json};

use crate::input;
use crate::output::{Format, print_structured};
use crate::{Common, Outcome};

/// Arguments of `portcullis analyze`.
#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// Files and directories (searched recursively for .yaml, .yml, .json); `-` reads
    /// standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// The level at which messages make the exit status non-zero (79).
    #[arg(long, value_enum, ignore_case = true, default_value = "Error")]
    failure_threshold: LevelArg,
    /// The lowest level printed.
    #[arg(long, value_enum, ignore_case = true, default_value = "Info")]
    output_threshold: LevelArg,
    /// Suppresses a message code on a resource, as `CODE=Kind name.namespace`; `*` matches
    /// any text (`IST0101=VirtualService *.default`). Repeatable.
    #[arg(short = 'S', long, value_name = "CODE=RESOURCE")]
    suppress: Vec<String>,
    /// A MeshConfig file (as `istioctl analyze --meshConfigFile`).
    #[arg(long, value_name = "FILE")]
    mesh_config_file: Option<PathBuf>,
}

/// A message level, as `--failure-threshold` and `--output-threshold` take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LevelArg {
    #[value(name = "Error")]
    Error,
    #[value(name = "Warning")]
    Warning,
    #[value(name = "Info")]
    Info,
}

impl LevelArg {
    /// Whether a message at `level` is at least this serious.
    fn admits(self, level: Level) -> bool {
        rank(level)
            <= match self {
                Self::Error => 0,
                Self::Warning => 1,
                Self::Info => 2,
            }
    }
}

fn rank(level: Level) -> u8 {
    match level {
        Level::Error => 0,
        Level::Warning => 1,
        _ => 2,
    }
}

/// One `--suppress` value.
#[derive(Debug)]
struct Suppression {
    code: String,
    resource: String,
}

pub(crate) fn run(args: &AnalyzeArgs) -> Outcome {
    let mut suppressions = Vec::new();
    for s in &args.suppress {
        let Some((code, resource)) = s
            .split_once('=')
            .filter(|(c, r)| !c.is_empty() && !r.is_empty() && !r.contains('='))
        else {
            return Outcome::Usage(format!(
                "{s} is not a valid suppression value: expected CODE=Kind name.namespace"
            ));
        };
        if !portcullis_validate::analysis::catalogue::ALL_MESSAGE_TYPES
            .iter()
            .any(|m| m.code == code)
        {
            eprintln!(
                "Warning: Supplied message code '{code}' is an unknown message code and will not have any effect."
            );
        }
        suppressions.push(Suppression {
            code: code.to_owned(),
            resource: resource.to_owned(),
        });
    }
    let sources = match input::gather(&args.paths) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let loaded = input::load(&sources, &args.common);
    for e in &loaded.errors {
        eprintln!("{e}");
    }

    let mut config = Config::new();
    let workloads_known = loaded
        .documents
        .iter()
        .any(|d| matches!(d.object, Object::Pod(_)));
    for doc in &loaded.documents {
        config.add_document(doc.clone());
    }
    add_skipped(&mut config, &loaded.skipped);
    config = config
        .with_default_resources()
        .with_workloads_known(workloads_known);
    if let Some(file) = &args.mesh_config_file {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => return Outcome::Input(format!("{}: {e}", file.display())),
        };
        match serde_saphyr::from_str::<Value>(&text) {
            Ok(v) => config = config.with_mesh_config(MeshConfig::from_value(&v)),
            Err(e) => return Outcome::Input(format!("{}: {e}", file.display())),
        }
    }

    let messages = sort(analyze_all(&config))
        .into_iter()
        .filter(|m| !suppressions.iter().any(|s| suppresses(s, m)))
        .collect::<Vec<_>>();
    let shown: Vec<&Message> = messages
        .iter()
        .filter(|m| args.output_threshold.admits(m.level))
        .collect();
    match args.common.output {
        Format::Log => {
            let lines: Vec<String> = shown.iter().map(|m| istioctl_line(m)).collect();
            outln!("{}", lines.join("\n"));
            if shown.is_empty() && loaded.errors.is_empty() {
                let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                eprintln!(
                    "\u{2714} No validation issues found when analyzing {}.",
                    names.join("\n")
                );
            }
        }
        format => {
            let list: Vec<Value> = shown.iter().map(|m| istioctl_json(m)).collect();
            print_structured(format, &Value::Array(list));
        }
    }
    if messages
        .iter()
        .any(|m| args.failure_threshold.admits(m.level))
    {
        eprintln!(
            "Error: Analyzers found issues when analyzing {}.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.",
            if sources.len() == 1 {
                sources.first().map_or("", |s| s.name.as_str()).to_owned()
            } else {
                format!("{} inputs", sources.len())
            }
        );
        return Outcome::Issues;
    }
    if !loaded.errors.is_empty() {
        return Outcome::Input("Some files couldn't be parsed.".to_owned());
    }
    Outcome::Ok
}

/// Adds documents of kinds the model does not type (Sidecars, Nodes, …), namespace filled in.
/// They are written back as YAML, each starting on the line where it stood in its file (its
/// inner lines may differ from the original's).
fn add_skipped(config: &mut Config, skipped: &[portcullis_model::SkippedDocument]) {
    let mut by_file: Vec<(&str, String, usize)> = Vec::new();
    for doc in skipped {
        let Ok(yaml) = portcullis_model::to_yaml(&doc.value) else {
            continue;
        };
        let index = match by_file.iter().position(|(f, _, _)| *f == doc.source.file) {
            Some(i) => i,
            None => {
                by_file.push((&doc.source.file, String::new(), 1));
                by_file.len() - 1
            }
        };
        let Some((_, text, line)) = by_file.get_mut(index) else {
            continue;
        };
        if !text.is_empty() {
            text.push_str("---\n");
            *line += 1;
        }
        while *line < doc.source.location.line {
            text.push('\n');
            *line += 1;
        }
        text.push_str(&yaml);
        if !yaml.ends_with('\n') {
            text.push('\n');
        }
        *line += yaml.lines().count();
    }
    // The documents were loaded once already; the limit applied then.
    let loader = Loader::new().with_max_documents(usize::MAX);
    for (file, text, _) in by_file {
        config.add(&loader.read_str(file, &text));
    }
}

/// Istio's order (level, code, resource, line). Repeats from two analyzers are already gone
/// (`analyze` reports each message once).
fn sort(mut messages: Vec<Message>) -> Vec<Message> {
    messages.sort_by(|a, b| {
        (rank(a.level), a.code, friendly_name(a), a.line).cmp(&(
            rank(b.level),
            b.code,
            friendly_name(b),
            b.line,
        ))
    });
    messages
}

/// Istio's `FriendlyName`: `Kind name.namespace`.
fn friendly_name(m: &Message) -> String {
    if m.resource.namespace.is_empty() {
        format!("{} {}", m.resource.kind, m.resource.name)
    } else {
        format!(
            "{} {}.{}",
            m.resource.kind, m.resource.name, m.resource.namespace
        )
    }
}

/// `file:line`, as istioctl's reference.
fn reference(m: &Message) -> Option<String> {
    let file = m.file.as_deref()?;
    if file == portcullis_validate::analysis::DEFAULT_RESOURCES_FILE {
        return None;
    }
    Some(match m.line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    })
}

/// `Error [IST0101] (VirtualService name.namespace file.yaml:12) text`.
fn istioctl_line(m: &Message) -> String {
    let origin = match reference(m) {
        Some(r) => format!(" ({} {r})", friendly_name(m)),
        None => format!(" ({})", friendly_name(m)),
    };
    format!("{} [{}]{origin} {}", m.level.as_str(), m.code, m.text)
}

fn documentation_url(code: &str) -> String {
    if code.starts_with("IST") {
        format!(
            "https://istio.io/latest/docs/reference/config/analysis/{}/?ref=istioctl-analyze",
            code.to_ascii_lowercase()
        )
    } else {
        "https://docs.rs/portcullis-validate/latest/portcullis_validate/analysis/index.html#portcullis-own-codes".to_owned()
    }
}

/// istioctl's JSON shape: `{code, level, origin, reference, message, documentationUrl}`.
fn istioctl_json(m: &Message) -> Value {
    let mut v = json!({
        "code": m.code,
        "documentationUrl": documentation_url(m.code),
        "level": m.level.as_str(),
        "message": m.text,
        "origin": friendly_name(m),
    });
    if let (Some(r), Value::Object(map)) = (reference(m), &mut v) {
        map.insert("reference".to_owned(), Value::String(r));
    }
    v
}

/// Whether a suppression covers a message: same code, and the resource (`Kind
/// name.namespace`) matches, `*` matching any text.
fn suppresses(s: &Suppression, m: &Message) -> bool {
    s.code == m.code && glob(&s.resource, &friendly_name(m))
}

/// A match where `*` stands for any text (possibly empty).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::{add_skipped, glob};
    use portcullis_model::Loader;
    use portcullis_validate::analysis::Config;

    #[test]
    fn skipped_documents_keep_their_starting_lines() {
        let text = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n---\n# a comment\n\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: a\nspec:\n  egress:\n  - hosts: [\"./*\"]\n";
        let loaded = Loader::new().read_str("f.yaml", text);
        let lines: Vec<usize> = loaded
            .skipped()
            .iter()
            .map(|d| d.source.location.line)
            .collect();
        assert_eq!(lines, [1, 8]);
        let mut config = Config::new();
        add_skipped(&mut config, loaded.skipped());
        let again: Vec<usize> = config
            .skipped()
            .iter()
            .map(|d| d.source.location.line)
            .collect();
        assert_eq!(again, lines);
    }

    #[test]
    fn globs() {
        assert!(glob("VirtualService *.default", "VirtualService a.default"));
        assert!(!glob("VirtualService *.default", "VirtualService a.other"));
        assert!(glob("*", "anything"));
        assert!(glob("Gateway a*b.c", "Gateway ab.c"));
        assert!(!glob("Gateway a", "Gateway ab"));
    }
}
