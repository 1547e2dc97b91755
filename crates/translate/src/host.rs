//! Istio's host-name algebra (`pkg/config/host`): wildcard subsets, overlap, intersection,
//! namespace-qualified server hosts and short-name resolution.

/// Istio's `Name.SubsetOf`: every host `a` covers is also covered by `b`.
///
/// Two plain names are compared exactly (case-sensitive); `*.x` covers names ending in `.x`
/// (never `x` itself); `*` covers everything; between wildcards the longer one is the subset.
pub fn subset_of(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a_rest), Some(b_rest)) => a_rest.ends_with(b_rest),
        (Some(_), None) => false,
        (None, Some(b_rest)) => a.ends_with(b_rest),
        (None, None) => a == b,
    }
}

/// Istio's `Name.Matches`: the two names have at least one host in common.
pub fn overlaps(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a_rest), Some(b_rest)) => {
            if a.len() > b.len() {
                a_rest.ends_with(b_rest)
            } else {
                b_rest.ends_with(a_rest)
            }
        }
        (Some(a_rest), None) => b.ends_with(a_rest),
        (None, Some(b_rest)) => a.ends_with(b_rest),
        (None, None) => a == b,
    }
}

/// Istio's `Names.Intersection`: for every overlapping pair the more specific name, without
/// duplicates, in the order of `left` then `right`.
pub fn intersection(left: &[String], right: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in left {
        for r in right {
            let pick = if subset_of(l, r) {
                l
            } else if subset_of(r, l) {
                r
            } else {
                continue;
            };
            if !out.iter().any(|o| o == pick) {
                out.push(pick.clone());
            }
        }
    }
    out
}

/// Istio's `NamesForNamespace`: the server hosts a resource in `namespace` may use, with the
/// `ns/` qualifier removed. `ns/h` is kept when `ns` is `namespace` or `*`.
pub fn names_for_namespace(hosts: &[String], namespace: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(hosts.len());
    for h in hosts {
        match h.split_once('/') {
            Some((ns, name)) => {
                if ns == namespace || ns == "*" {
                    out.push(name.to_owned());
                }
            }
            None => out.push(h.clone()),
        }
    }
    out
}

/// Istio's `ResolveShortnameToFQDN`: a name without a dot (other than `*` and IP addresses)
/// becomes `name.<namespace>.svc.<domain_suffix>`.
pub fn resolve_short_name(name: &str, namespace: &str, domain_suffix: &str) -> String {
    if name == "*" || name.contains('.') || name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_owned();
    }
    if name.contains(':') {
        // IPv6 literal or something else that is not a short name.
        return name.to_owned();
    }
    format!("{name}.{namespace}.svc.{domain_suffix}")
}

/// Sanitizes a Gateway server's hosts as `sanitizeServerHostNamespace` does: `./h` becomes
/// `<gateway namespace>/h`, `*/h` becomes `h`, `*/*` replaces the whole list with `*`.
pub(crate) fn sanitize_server_hosts(hosts: &[String], gateway_namespace: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(hosts.len());
    for h in hosts {
        match h.split_once('/') {
            Some((".", name)) => out.push(format!("{gateway_namespace}/{name}")),
            Some(("*", "*")) => return vec!["*".to_owned()],
            Some(("*", name)) => out.push(name.to_owned()),
            _ => out.push(h.clone()),
        }
    }
    out
}

/// The host part of a server host (`ns/host` → `host`).
pub(crate) fn strip_namespace(host: &str) -> &str {
    host.split_once('/').map_or(host, |(_, h)| h)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn subset_rules() {
        assert!(subset_of("a.example.com", "*.example.com"));
        assert!(subset_of("a.b.example.com", "*.example.com"));
        assert!(!subset_of("example.com", "*.example.com"));
        assert!(subset_of("*.example.com", "*"));
        assert!(subset_of("*.a.example.com", "*.example.com"));
        assert!(!subset_of("*.example.com", "a.example.com"));
        assert!(!subset_of("Example.org", "example.org"));
    }

    #[test]
    fn intersection_picks_the_narrower_name() {
        assert_eq!(
            intersection(&v(&["*.example.com"]), &v(&["a.example.com"])),
            v(&["a.example.com"])
        );
        assert_eq!(
            intersection(&v(&["a.example.com"]), &v(&["*.example.com"])),
            v(&["a.example.com"])
        );
        assert_eq!(intersection(&v(&["*"]), &v(&["*.org"])), v(&["*.org"]));
        assert!(intersection(&v(&["*.example.com"]), &v(&["example.com"])).is_empty());
    }

    #[test]
    fn namespace_restricted_hosts() {
        assert_eq!(
            names_for_namespace(&v(&["app/*", "*/a.com", "b.com"]), "app"),
            v(&["*", "a.com", "b.com"])
        );
        assert_eq!(
            names_for_namespace(&v(&["app/*", "b.com"]), "other"),
            v(&["b.com"])
        );
    }

    #[test]
    fn short_names() {
        assert_eq!(
            resolve_short_name("reviews", "default", "cluster.local"),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(resolve_short_name("a.b", "default", "cluster.local"), "a.b");
        assert_eq!(resolve_short_name("*", "default", "cluster.local"), "*");
        assert_eq!(
            resolve_short_name("10.0.0.1", "default", "cluster.local"),
            "10.0.0.1"
        );
    }

    #[test]
    fn sanitize() {
        assert_eq!(
            sanitize_server_hosts(&v(&["./a.com", "*/b.com", "ns/c.com"]), "gw"),
            v(&["gw/a.com", "b.com", "ns/c.com"])
        );
        assert_eq!(
            sanitize_server_hosts(&v(&["a.com", "*/*"]), "gw"),
            v(&["*"])
        );
    }
}
