//! Label selectors as Kubernetes' `labels.SelectorFromSet` reads them, and `exportTo` scopes.
//! Host names are [`portcullis_model::host`]'s.

use std::collections::BTreeMap;

/// Whether every key/value of `selector` is among `labels` (an empty selector selects all).
pub(crate) fn selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The selector as Kubernetes prints it: `k1=v1,k2=v2`, keys sorted; empty for none.
pub(crate) fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether an `exportTo` list exports to every namespace (empty, or containing `*`).
pub(crate) fn exports_to_all(export_to: &[String]) -> bool {
    export_to.is_empty() || export_to.iter().any(|e| e == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [
            ("app".to_owned(), "a".to_owned()),
            ("v".to_owned(), "1".to_owned()),
        ]
        .into();
        let selector: BTreeMap<String, String> = [("app".to_owned(), "a".to_owned())].into();
        assert!(selects(&selector, &labels));
        assert!(selects(&BTreeMap::new(), &labels));
        assert!(!selects(&labels, &selector));
        assert_eq!(selector_string(&labels), "app=a,v=1");
        assert!(exports_to_all(&[]));
        assert!(!exports_to_all(&[".".to_owned()]));
    }
}
