//! Gateway server-host helpers. Istio's host-name algebra itself (`host.Name`) is
//! [`portcullis_model::host`].

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

/// The destination host of a [`Destination`](portcullis_model::virtual_service::Destination) as an FQDN (short names in `namespace`).
pub(crate) fn destination_host(
    dest: &portcullis_model::virtual_service::Destination,
    namespace: &str,
    domain_suffix: &str,
) -> String {
    portcullis_model::host::resolve_short_name(&dest.host, namespace, domain_suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
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
