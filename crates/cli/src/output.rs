//! Output formats.

use serde_json::Value;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Lines for people (and for grep).
    Log,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Prints a value as JSON (pretty) or YAML.
pub(crate) fn print_structured(format: Format, value: &Value) {
    match format {
        Format::Yaml => match portcullis_model::to_yaml(value) {
            Ok(text) => out!("{text}"),
            Err(e) => eprintln!("cannot write YAML: {e}"),
        },
        _ => match serde_json::to_string_pretty(value) {
            Ok(text) => outln!("{text}"),
            Err(e) => eprintln!("cannot write JSON: {e}"),
        },
    }
}
