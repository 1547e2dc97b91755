//! Entry points for fuzzing (feature `fuzzing`): each takes arbitrary bytes, must never panic,
//! and asserts the properties the crate promises. `fuzz/` calls them from cargo-fuzz targets, and
//! the regression tests replay every finding through them.

use crate::{Duration, Loader, from_value, to_json, to_yaml};

/// Arbitrary bytes as a YAML or JSON stream: loading never panics, and every loaded document
/// written back as YAML and as JSON loads back equal.
pub fn load(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let loaded = Loader::new().read_str("fuzz.yaml", &text);
    for document in loaded.documents() {
        for written in [
            to_yaml(&document.object).ok(),
            to_json(&document.object).ok(),
        ]
        .into_iter()
        .flatten()
        {
            let again = Loader::new().read_str("again.yaml", &written);
            let objects: Vec<_> = again.documents().iter().map(|d| &d.object).collect();
            assert_eq!(
                objects,
                [&document.object],
                "written form does not load back equal:\n{written}"
            );
        }
    }
}

/// Arbitrary bytes as a duration: parsing never panics, and a parsed duration's canonical form
/// parses back to the same value.
pub fn duration(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Duration>() {
        assert_eq!(d.to_string().parse::<Duration>(), Ok(d), "{text:?}");
    }
}

/// Arbitrary bytes as JSON decoded into each resource spec: never panics.
pub fn decode(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = from_value::<crate::Gateway>(value.clone());
    let _ = from_value::<crate::VirtualService>(value.clone());
    let _ = from_value::<crate::DestinationRule>(value.clone());
    let _ = from_value::<crate::ServiceEntry>(value);
}
