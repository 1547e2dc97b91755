//! Istio's host-name algebra (`pkg/config/host`): wildcard matching, subsets, intersections,
//! namespace-qualified server hosts and short-name resolution.
//!
//! A host name here is what Istio's `host.Name` is: a plain string compared case-sensitively,
//! where a leading `*` makes a wildcard. `*.example.com` covers every name ending in
//! `.example.com` (never `example.com` itself), `*foo.com` covers `barfoo.com`, and `*` covers
//! every name. Nothing is lower-cased or validated; validation is `portcullis-validate`'s job.
//!
//! ```
//! use portcullis_model::host;
//!
//! assert!(host::matches("*.example.com", "a.example.com"));
//! assert!(host::subset_of("a.example.com", "*.example.com"));
//! assert!(!host::subset_of("*.example.com", "a.example.com"));
//! assert_eq!(
//!     host::resolve_short_name("reviews", "default", "cluster.local"),
//!     "reviews.default.svc.cluster.local",
//! );
//! ```

/// The domain `ConvertHostToFQDN` appends to short names: Kubernetes' default cluster domain.
pub const CLUSTER_LOCAL_DOMAIN: &str = "svc.cluster.local";

/// Istio's `Name.IsWildCarded`: the name starts with `*`.
pub fn is_wildcard(name: &str) -> bool {
    name.starts_with('*')
}

/// Istio's `Name.Matches`: the two names have at least one host in common.
///
/// ```
/// use portcullis_model::host::matches;
///
/// assert!(matches("*.com", "*.foo.com"));
/// assert!(matches("*foo.com", "barfoo.com"));
/// assert!(!matches("a.com", "b.com"));
/// assert!(!matches("a.facebook.com", "*.facebook.COM"));
/// ```
pub fn matches(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a_rest), Some(b_rest)) => {
            if a.len() < b.len() {
                b_rest.ends_with(a_rest)
            } else {
                a_rest.ends_with(b_rest)
            }
        }
        (Some(a_rest), None) => b.ends_with(a_rest),
        (None, Some(b_rest)) => a.ends_with(b_rest),
        (None, None) => a == b,
    }
}

/// Istio's `Name.SubsetOf`: every host `a` covers is also covered by `b`.
///
/// Two plain names are compared exactly; `*.x` covers names ending in `.x`; `*` covers
/// everything; between wildcards the longer one is the subset.
///
/// ```
/// use portcullis_model::host::subset_of;
///
/// assert!(subset_of("a.b.example.com", "*.example.com"));
/// assert!(!subset_of("example.com", "*.example.com"));
/// assert!(subset_of("*.a.example.com", "*.example.com"));
/// assert!(!subset_of("*.com", "*.foo.com"));
/// assert!(subset_of("", "*"));
/// ```
pub fn subset_of(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        // `a_rest` ending in `b_rest` implies `a` is at least as long as `b`.
        (Some(a_rest), Some(b_rest)) => a_rest.ends_with(b_rest),
        (Some(_), None) => false,
        (None, Some(b_rest)) => a.ends_with(b_rest),
        (None, None) => a == b,
    }
}

/// Istio's `Names.Intersection`: for every pair of `left` × `right` where one name is a subset
/// of the other, the more specific one, without duplicates, in the order found.
///
/// ```
/// use portcullis_model::host::intersection;
///
/// let left = ["*.example.com".to_owned(), "b.org".to_owned()];
/// let right = ["a.example.com".to_owned(), "*".to_owned()];
/// assert_eq!(intersection(&left, &right), ["a.example.com", "*.example.com", "b.org"]);
/// ```
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

/// Istio's `NamesForNamespace`: the server hosts (`namespace/host` or `host`) a resource in
/// `namespace` may use, with the `namespace/` qualifier removed. `ns/h` is kept when `ns` is
/// `namespace` or `*`.
///
/// ```
/// use portcullis_model::host::names_for_namespace;
///
/// let hosts = ["app/*".to_owned(), "*/a.com".to_owned(), "other/c.com".to_owned(), "b.com".to_owned()];
/// assert_eq!(names_for_namespace(&hosts, "app"), ["*", "a.com", "b.com"]);
/// ```
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

/// Istio's `ResolveShortnameToFQDN`, as routes and registries resolve destination hosts: a
/// name without a dot (other than `*` and IP addresses) becomes
/// `name.<namespace>.svc.<domain_suffix>`.
///
/// ```
/// use portcullis_model::host::resolve_short_name;
///
/// assert_eq!(resolve_short_name("reviews", "ns", "cluster.local"), "reviews.ns.svc.cluster.local");
/// assert_eq!(resolve_short_name("a.b", "ns", "cluster.local"), "a.b");
/// assert_eq!(resolve_short_name("10.0.0.1", "ns", "cluster.local"), "10.0.0.1");
/// assert_eq!(resolve_short_name("*", "ns", "cluster.local"), "*");
/// ```
pub fn resolve_short_name(name: &str, namespace: &str, domain_suffix: &str) -> String {
    if is_short_name(name) {
        format!("{name}.{namespace}.svc.{domain_suffix}")
    } else {
        name.to_owned()
    }
}

/// Whether [`resolve_short_name`] expands `name`: a name without a dot or a colon (so not an
/// IP address, nor an IPv6 literal with a zone) that is not `*`.
///
/// ```
/// use portcullis_model::host::is_short_name;
///
/// assert!(is_short_name("reviews"));
/// assert!(!is_short_name("reviews.default"));
/// assert!(!is_short_name("*"));
/// assert!(!is_short_name("fe80::1%eth0"));
/// ```
pub fn is_short_name(name: &str) -> bool {
    !(name == "*" || name.contains(['.', ':']))
}

/// Istio's analyzer helper `ConvertHostToFQDN`: a short name (no dot, not a wildcard) becomes
/// `<name>.<namespace>.svc.cluster.local` ([`CLUSTER_LOCAL_DOMAIN`]); anything else is kept.
///
/// Unlike [`resolve_short_name`], IP addresses and `*`-prefixed names are never expanded and
/// the domain is fixed, as in Istio's analyzers.
///
/// ```
/// use portcullis_model::host::convert_host_to_fqdn;
///
/// assert_eq!(convert_host_to_fqdn("ns", "r"), "r.ns.svc.cluster.local");
/// assert_eq!(convert_host_to_fqdn("ns", "r.default"), "r.default");
/// assert_eq!(convert_host_to_fqdn("ns", "*x"), "*x");
/// ```
pub fn convert_host_to_fqdn(namespace: &str, host: &str) -> String {
    if is_wildcard(host) || host.contains('.') {
        host.to_owned()
    } else {
        format!("{host}.{namespace}.{CLUSTER_LOCAL_DOMAIN}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn matching_is_case_sensitive_string_suffix() {
        assert!(matches("*.example.com", "a.example.com"));
        assert!(matches("a.example.com", "*.example.com"));
        assert!(matches("*", "a.b"));
        assert!(matches("*.b.com", "*.com"));
        assert!(matches("*.com", "*.b.com"));
        assert!(matches("*foo.com", "barfoo.com"));
        assert!(matches("*a.com", "*b.com") == matches("*b.com", "*a.com"));
        assert!(!matches("a.com", "b.com"));
        assert!(!matches("a.facebook.com", "*.facebook.COM"));
        assert!(!matches("example.com", "*.example.com"));
    }

    #[test]
    fn subset_rules() {
        assert!(subset_of("a.example.com", "*.example.com"));
        assert!(subset_of("a.b.example.com", "*.example.com"));
        assert!(!subset_of("example.com", "*.example.com"));
        assert!(subset_of("*.example.com", "*"));
        assert!(subset_of("*.a.example.com", "*.example.com"));
        assert!(subset_of("*.a.com", "*"));
        assert!(!subset_of("*.example.com", "a.example.com"));
        assert!(!subset_of("*.com", "*.foo.com"));
        assert!(!subset_of("Example.org", "example.org"));
        assert!(subset_of("", "*"));
        assert!(subset_of("", ""));
        assert!(!subset_of("*", ""));
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
        assert_eq!(
            intersection(&v(&["a.com", "a.com"]), &v(&["*"])),
            v(&["a.com"])
        );
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
        assert_eq!(resolve_short_name("::1", "default", "cluster.local"), "::1");
        assert_eq!(
            resolve_short_name("fe80::1%eth0", "ns", "d"),
            "fe80::1%eth0"
        );
        assert_eq!(convert_host_to_fqdn("ns", "r"), "r.ns.svc.cluster.local");
        assert_eq!(convert_host_to_fqdn("ns", "r.default"), "r.default");
        assert_eq!(convert_host_to_fqdn("ns", "*"), "*");
    }

    proptest::proptest! {
        // The algebra's laws over a small alphabet, so that suffixes collide often.
        #[test]
        fn laws(a in "\\*?[ab.]{0,4}", b in "\\*?[ab.]{0,4}", c in "\\*?[ab.]{0,4}") {
            proptest::prop_assert_eq!(matches(&a, &b), matches(&b, &a));
            proptest::prop_assert!(subset_of(&a, &a));
            if subset_of(&a, &b) {
                proptest::prop_assert!(matches(&a, &b));
                if subset_of(&b, &c) {
                    proptest::prop_assert!(subset_of(&a, &c));
                }
            }
        }
    }
}
