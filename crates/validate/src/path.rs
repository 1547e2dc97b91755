//! Field paths, written as the loader writes them: `spec.http[0].route[1].destination.host`.

/// Joins a parent path and a child (`"spec"` + `"hosts[0]"` → `"spec.hosts[0]"`; an empty side
/// gives the other; a child starting with `[` is appended without a dot).
pub(crate) fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_owned(),
        (_, true) => parent.to_owned(),
        _ if child.starts_with('[') => format!("{parent}{child}"),
        _ => format!("{parent}.{child}"),
    }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// `parent.key`, for a map key (written as is, even when it holds dots).
pub(crate) fn key(parent: &str, key: &str) -> String {
    join(parent, key)
}
