//! Virtual-host selection: authority normalisation, domain patterns and the host index.

use std::fmt;

use crate::compile::FastHashMap;
use crate::error::BuildError;

/// How the chosen virtual host's domain matched the request's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostMatchKind {
    /// The domain equals the host.
    Exact,
    /// A `*suffix` domain: the longest matching suffix won.
    SuffixWildcard,
    /// A `prefix*` domain: the longest matching prefix won.
    PrefixWildcard,
    /// The `*` domain.
    Default,
}

impl fmt::Display for HostMatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exact => "exact domain",
            Self::SuffixWildcard => "suffix wildcard",
            Self::PrefixWildcard => "prefix wildcard",
            Self::Default => "default domain",
        })
    }
}

/// Removes a trailing `:<digits>` port from an authority. An IPv6 literal keeps its brackets
/// (`[::1]:80` → `[::1]`; `[::1]` is unchanged, as its last `:` is followed by `1]`).
pub(crate) fn strip_port(authority: &str) -> &str {
    // Byte by byte from the end: on every request, and cheaper than a string search.
    let bytes = authority.as_bytes();
    let digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    match bytes.len().checked_sub(digits + 1) {
        Some(colon) if digits > 0 && bytes.get(colon) == Some(&b':') => {
            authority.get(..colon).unwrap_or(authority)
        }
        _ => authority,
    }
}

/// Runs `f` on the ASCII-lower-cased `host` without allocating when the host is short (a stack
/// buffer) or already lower case (the common cases).
pub(crate) fn with_lowercase<R>(host: &str, f: impl FnOnce(&str) -> R) -> R {
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(host);
    }
    let mut buf = [0u8; 256];
    if let Some(dst) = buf.get_mut(..host.len()) {
        for (d, s) in dst.iter_mut().zip(host.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        // Lower-casing ASCII bytes keeps the text valid UTF-8, so this never fails.
        if let Ok(lower) = std::str::from_utf8(dst) {
            return f(lower);
        }
    }
    f(&host.to_ascii_lowercase())
}

/// A parsed, lower-cased domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DomainPattern {
    Exact(String),
    Suffix(String),
    Prefix(String),
    Any,
}

impl DomainPattern {
    pub(crate) fn parse(domain: &str) -> Result<Self, &'static str> {
        let lower = domain.to_ascii_lowercase();
        if lower.is_empty() {
            return Err("empty domain");
        }
        if lower == "*" {
            return Ok(Self::Any);
        }
        if lower.matches('*').count() > 1 {
            return Err("more than one '*'");
        }
        if let Some(suffix) = lower.strip_prefix('*') {
            return Ok(Self::Suffix(suffix.to_owned()));
        }
        if let Some(prefix) = lower.strip_suffix('*') {
            return Ok(Self::Prefix(prefix.to_owned()));
        }
        if lower.contains('*') {
            return Err("'*' may only be the first or the last character");
        }
        Ok(Self::Exact(lower))
    }
}

/// Parses every domain of every virtual host, rejecting invalid and duplicate ones, in the order
/// they come. Returns, per virtual host, its parsed domains.
pub(crate) fn parse_domains<'d>(
    vhosts: impl Iterator<Item = &'d [String]>,
) -> Result<Vec<Vec<DomainPattern>>, BuildError> {
    // Sized for one domain per virtual host, the usual case, so that ten thousand of them
    // are not rehashed on the way.
    let mut seen: FastHashMap<DomainPattern, usize> =
        FastHashMap::with_capacity_and_hasher(vhosts.size_hint().0, Default::default());
    let mut out = Vec::with_capacity(vhosts.size_hint().0);
    for (vi, domains) in vhosts.enumerate() {
        let parsed = parse_virtual_host_domains(vi, domains)?;
        for (p, d) in parsed.iter().zip(domains) {
            if let Some(first) = seen.insert(p.clone(), vi) {
                return Err(BuildError::duplicate_domain(vi, first, d));
            }
        }
        out.push(parsed);
    }
    Ok(out)
}

/// Parses the domains of virtual host `vi`, rejecting invalid ones.
pub(crate) fn parse_virtual_host_domains(
    vi: usize,
    domains: &[String],
) -> Result<Vec<DomainPattern>, BuildError> {
    domains
        .iter()
        .map(|d| DomainPattern::parse(d).map_err(|r| BuildError::invalid_domain(vi, d, r)))
        .collect()
}

/// Where a host landed: the virtual host, how, and the matching key (the domain for exact, the
/// part without `*` for wildcards, empty for the default).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostHit<'i> {
    pub(crate) vhost: usize,
    pub(crate) kind: HostMatchKind,
    pub(crate) key: &'i str,
}

impl HostHit<'_> {
    /// The domain as configured (lower-cased).
    pub(crate) fn domain(&self) -> String {
        match self.kind {
            HostMatchKind::Exact => self.key.to_owned(),
            HostMatchKind::SuffixWildcard => format!("*{}", self.key),
            HostMatchKind::PrefixWildcard => format!("{}*", self.key),
            HostMatchKind::Default => "*".to_owned(),
        }
    }
}

/// Wildcard keys grouped by length, longest first.
type ByLength = Vec<(usize, FastHashMap<Box<str>, usize>)>;

/// Exact hosts in a hash map; wildcard suffixes and prefixes in one hash map per length.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostIndex {
    exact: FastHashMap<Box<str>, usize>,
    suffixes: ByLength,
    prefixes: ByLength,
    default: Option<usize>,
}

impl HostIndex {
    /// The index of virtual hosts given as their parsed domains and the domains as written (in
    /// the same order); a domain served twice is a [`BuildError`] naming the later virtual host.
    pub(crate) fn new<'p>(
        vhosts: impl Iterator<Item = (&'p [DomainPattern], &'p [String])> + Clone,
    ) -> Result<Self, BuildError> {
        // Sized once: most domains are exact, and ten thousand of them would otherwise be
        // moved as the map grows.
        let domains = vhosts.clone().map(|(parsed, _)| parsed.len()).sum();
        let mut index = Self {
            exact: FastHashMap::with_capacity_and_hasher(domains, Default::default()),
            ..Self::default()
        };
        for (vi, (parsed, written)) in vhosts.enumerate() {
            for (d, domain) in parsed.iter().zip(written) {
                let first = match d {
                    DomainPattern::Exact(h) => index.exact.insert(h.as_str().into(), vi),
                    DomainPattern::Suffix(s) => insert_by_len(&mut index.suffixes, s, vi),
                    DomainPattern::Prefix(p) => insert_by_len(&mut index.prefixes, p, vi),
                    DomainPattern::Any => index.default.replace(vi),
                };
                if let Some(first) = first {
                    return Err(BuildError::duplicate_domain(vi, first, domain));
                }
            }
        }
        Ok(index)
    }

    /// Selects the virtual host for an already port-stripped, lower-cased host.
    pub(crate) fn find(&self, host: &str) -> Option<HostHit<'_>> {
        #[allow(clippy::borrowed_box)] // the shape `get_key_value` returns
        fn hit<'i>((key, vhost): (&'i Box<str>, &usize), kind: HostMatchKind) -> HostHit<'i> {
            HostHit {
                vhost: *vhost,
                kind,
                key: key.as_ref(),
            }
        }
        if let Some(kv) = self.exact.get_key_value(host) {
            return Some(hit(kv, HostMatchKind::Exact));
        }
        for (len, map) in &self.suffixes {
            let Some(start) = host.len().checked_sub(*len).filter(|s| *s > 0) else {
                continue;
            };
            if let Some(kv) = host.get(start..).and_then(|tail| map.get_key_value(tail)) {
                return Some(hit(kv, HostMatchKind::SuffixWildcard));
            }
        }
        for (len, map) in &self.prefixes {
            if host.len() <= *len {
                continue;
            }
            if let Some(kv) = host.get(..*len).and_then(|head| map.get_key_value(head)) {
                return Some(hit(kv, HostMatchKind::PrefixWildcard));
            }
        }
        self.default.map(|vhost| HostHit {
            vhost,
            kind: HostMatchKind::Default,
            key: "",
        })
    }
}

/// Adds `key` for `vhost`; the virtual host that had it already, if one did.
fn insert_by_len(groups: &mut ByLength, key: &str, vhost: usize) -> Option<usize> {
    let len = key.len();
    // Longest first.
    let pos = groups.partition_point(|(l, _)| *l > len);
    match groups.get_mut(pos) {
        Some((l, map)) if *l == len => map.insert(key.into(), vhost),
        _ => {
            let mut map = FastHashMap::default();
            map.insert(key.into(), vhost);
            groups.insert(pos, (len, map));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn only_a_trailing_numeric_port_is_stripped() {
        for (authority, host) in [
            ("shop:80", "shop"),
            ("shop", "shop"),
            ("127.0.0.1:18180", "127.0.0.1"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("shop:", "shop:"),
            ("shop:8x", "shop:8x"),
            (":80", ""),
            ("a:1:2", "a:1"),
            ("80", "80"),
            ("", ""),
        ] {
            assert_eq!(strip_port(authority), host, "{authority}");
        }
    }
}
