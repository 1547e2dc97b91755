//! Label selectors as Kubernetes' `labels.SelectorFromSet` reads them, and host-name helpers.

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

/// The Kubernetes cluster domain.
pub(crate) const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// Istio's `ConvertHostToFQDN`: a short name (no dot, no leading `*`) becomes
/// `<name>.<namespace>.svc.cluster.local`; anything else is kept.
pub(crate) fn to_fqdn(namespace: &str, host: &str) -> String {
    if host.starts_with('*') || host.contains('.') {
        host.to_owned()
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// `host.Name(a).Matches(b)`: whether the two names (possibly `*`-prefixed wildcards) can
/// denote a common host.
pub(crate) fn hosts_match(a: &str, b: &str) -> bool {
    let a_wild = a.starts_with('*');
    let b_wild = b.starts_with('*');
    match (a_wild, b_wild) {
        (false, false) => a == b,
        (true, false) => b.ends_with(a.get(1..).unwrap_or("")),
        (false, true) => a.ends_with(b.get(1..).unwrap_or("")),
        (true, true) => {
            let (sa, sb) = (a.get(1..).unwrap_or(""), b.get(1..).unwrap_or(""));
            if sa.len() > sb.len() {
                sa.ends_with(sb)
            } else {
                sb.ends_with(sa)
            }
        }
    }
}

/// `host.Name(a).SubsetOf(b)`: every host `a` denotes is denoted by `b`.
pub(crate) fn host_subset_of(a: &str, b: &str) -> bool {
    if b.starts_with('*') {
        let suffix = b.get(1..).unwrap_or("");
        if let Some(a_suffix) = a.strip_prefix('*') {
            return a_suffix.ends_with(suffix);
        }
        return a.ends_with(suffix);
    }
    if a.starts_with('*') {
        return false;
    }
    a == b
}

/// Whether an `exportTo` list exports to every namespace (empty, or containing `*`).
pub(crate) fn exports_to_all(export_to: &[String]) -> bool {
    export_to.is_empty() || export_to.iter().any(|e| e == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_matching() {
        assert!(hosts_match("*.example.com", "a.example.com"));
        assert!(hosts_match("a.example.com", "*.example.com"));
        assert!(hosts_match("*", "a.b"));
        assert!(hosts_match("*.b.com", "*.com"));
        assert!(!hosts_match("a.com", "b.com"));
        assert!(host_subset_of("a.example.com", "*.example.com"));
        assert!(!host_subset_of("*.example.com", "a.example.com"));
        assert!(host_subset_of("*.a.com", "*"));
        assert_eq!(to_fqdn("ns", "r"), "r.ns.svc.cluster.local");
        assert_eq!(to_fqdn("ns", "r.default"), "r.default");
    }
}
