//! ServiceEntry and WorkloadEntry validation (VALIDATION.md §5, rules S-1 … S-10, and the CRD
//! layer K-S).

use std::collections::BTreeSet;

use portcullis_model::ServiceEntry;
use portcullis_model::service_entry::{
    ServiceEntryLocation, ServiceEntryResolution, WorkloadEntry,
};

use crate::common::{
    Protocol, export_to_at, is_ip_address, is_label_shape, quote, validate_fqdn,
    validate_ip_subnet, validate_labels, validate_partial_wildcard, validate_port_name,
    validate_port_number, validate_unix_address, validate_wildcard_domain,
};
use crate::context::Checker;
use crate::{Context, Diagnostics, path};

/// Prefix of a unix-domain-socket endpoint address.
const UNIX_PREFIX: &str = "unix://";
/// Label opting a ServiceEntry out of IP auto-allocation.
const AUTOALLOCATE_LABEL: &str = "networking.istio.io/enable-autoallocate-ip";
/// Label binding a ServiceEntry to a waypoint.
const USE_WAYPOINT_LABEL: &str = "istio.io/use-waypoint";

/// Validates a ServiceEntry spec as Istio's webhook does (`ValidateServiceEntry`); with
/// `ctx.crd_schema`, also the CRD's OpenAPI/CEL rules.
///
/// ```
/// use portcullis_model::ServiceEntry;
/// use portcullis_validate::{Context, service_entry::validate_service_entry};
///
/// let se: ServiceEntry = serde_json::from_str(r#"{"hosts": ["*"]}"#)?;
/// assert!(!validate_service_entry(&se, &Context::new("default", "se")).is_valid());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn validate_service_entry(spec: &ServiceEntry, ctx: &Context) -> Diagnostics {
    let mut c = Checker::new(ctx);
    if crate::gateway::metadata_checks(&mut c, ctx) {
        if ctx.crd_schema {
            crd_service_entry(&mut c, "spec", spec);
        }
        service_entry_at(&mut c, "spec", spec, ctx);
    }
    c.finish()
}

/// Validates a standalone WorkloadEntry (`ValidateWorkloadEntry`): FQDN addresses are allowed
/// and port names are not checked against any service. Paths are relative to the entry.
pub fn validate_workload_entry(entry: &WorkloadEntry, ctx: &Context) -> Diagnostics {
    let mut c = Checker::new(ctx);
    if crate::gateway::metadata_checks(&mut c, ctx) {
        workload_entry_at(&mut c, "", entry, None, true);
    }
    c.finish()
}

/// `validateWorkloadEntry`: `service_ports` is the ServiceEntry's port names (when validating
/// its endpoints), `allow_fqdn` whether a DNS name may stand in for an IP.
fn workload_entry_at(
    c: &mut Checker<'_>,
    at: &str,
    entry: &WorkloadEntry,
    service_ports: Option<&BTreeSet<&str>>,
    allow_fqdn: bool,
) {
    let address_at = path::join(at, "address");
    let addr = entry.address.as_str();
    if addr.is_empty() {
        if entry.network.is_empty() {
            c.error(address_at, "address is required");
            return;
        }
        c.warning(
            address_at.clone(),
            format!("address is unset with network {}", quote(&entry.network)),
        );
    }
    let mut unix = false;
    if let Some(socket) = addr.strip_prefix(UNIX_PREFIX) {
        unix = true;
        if let Err(e) = validate_unix_address(socket) {
            c.error(address_at.clone(), e);
        }
        if !entry.ports.is_empty() {
            c.error(
                path::join(at, "ports"),
                format!("unix endpoint {addr} must not include ports"),
            );
        }
    } else if !addr.is_empty() && !is_ip_address(addr) {
        if !allow_fqdn {
            c.error(
                address_at.clone(),
                format!("endpoint address {} is not a valid IP address", quote(addr)),
            );
        } else if validate_fqdn(addr).is_err() {
            c.error(
                address_at.clone(),
                format!(
                    "endpoint address {} is not a valid FQDN or an IP address",
                    quote(addr)
                ),
            );
        }
    }
    endpoint_ports(c, at, entry, service_ports);
    if let Err(e) = validate_labels(&entry.labels) {
        c.error(path::join(at, "labels"), e);
    }
    if unix && service_ports.is_some_and(|p| p.len() != 1) {
        c.error(
            address_at,
            "exactly 1 service port required for unix endpoints",
        );
    }
}

/// An endpoint's port map: each name declared by the service (when known), a valid port name,
/// and a valid number.
fn endpoint_ports(
    c: &mut Checker<'_>,
    at: &str,
    entry: &WorkloadEntry,
    service_ports: Option<&BTreeSet<&str>>,
) {
    let ports_at = path::join(at, "ports");
    for (name, number) in &entry.ports {
        let port_at = path::key(&ports_at, name);
        if service_ports.is_some_and(|p| !p.contains(name.as_str())) {
            c.error(
                port_at.clone(),
                format!("endpoint port {number} is not defined by the service entry"),
            );
        }
        if let Err(e) = validate_port_name(name) {
            c.error(port_at.clone(), e);
        }
        if let Err(e) = validate_port_number(i64::from(*number)) {
            c.error(port_at, e);
        }
    }
}

fn service_entry_at(c: &mut Checker<'_>, at: &str, se: &ServiceEntry, ctx: &Context) {
    let field = |name: &str| path::join(at, name);
    let resolution = se.resolution.unwrap_or_default();

    // S-1: a bad selector is reported alone.
    if let Some(selector) = &se.workload_selector {
        let labels_at = path::join(&field("workloadSelector"), "labels");
        let mut bad = Vec::new();
        for (k, v) in &selector.labels {
            if k.is_empty() {
                bad.push(format!(
                    "empty key is not supported in selector: {}",
                    quote(&format!("{k}={v}"))
                ));
            }
            if k.contains('*') || v.contains('*') {
                bad.push(format!(
                    "wildcard is not supported in selector: {}",
                    quote(&format!("{k}={v}"))
                ));
            }
        }
        if !bad.is_empty() {
            for e in bad {
                c.error(labels_at.clone(), e);
            }
            return;
        }
        if selector.labels.is_empty() {
            c.warning(
                field("workloadSelector"),
                "service entry: workload selector specified without labels, will be applied to \
                 all services in namespace",
            );
        }
    }

    // S-2
    if se.workload_selector.is_some() && !se.endpoints.is_empty() {
        c.error(
            field("workloadSelector"),
            "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
        );
    }

    // S-3
    let hosts_at = field("hosts");
    if se.hosts.is_empty() {
        c.error(
            hosts_at.clone(),
            "service entry must have at least one host",
        );
    }
    for (i, hostname) in se.hosts.iter().enumerate() {
        let host_at = path::index(&hosts_at, i);
        if hostname == "*" {
            c.error(host_at, format!("invalid host {hostname}"));
            continue;
        }
        if let Err(e) = validate_wildcard_domain(hostname) {
            c.error(host_at.clone(), e);
        }
        if resolution != ServiceEntryResolution::DynamicDns
            && let Err(e) = validate_partial_wildcard(hostname)
        {
            c.warning(host_at, e);
        }
    }

    // S-4
    let addresses_at = field("addresses");
    let mut cidr = false;
    for (i, address) in se.addresses.iter().enumerate() {
        cidr = cidr || address.contains('/');
        if let Err(e) = validate_ip_subnet(address) {
            c.error(path::index(&addresses_at, i), e);
        }
    }
    if cidr
        && !matches!(
            resolution,
            ServiceEntryResolution::None | ServiceEntryResolution::Static
        )
    {
        c.error(
            addresses_at,
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
        );
    }

    // S-5, S-6
    let auto_allocate = ctx.ip_autoallocate
        && resolution != ServiceEntryResolution::None
        && !ctx
            .labels
            .get(AUTOALLOCATE_LABEL)
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        && se.addresses.is_empty();
    let ports_at = field("ports");
    let mut port_names: BTreeSet<&str> = BTreeSet::new();
    let mut port_numbers: BTreeSet<u32> = BTreeSet::new();
    for (i, port) in se.ports.iter().enumerate() {
        let port_at = path::index(&ports_at, i);
        if !port_names.insert(port.name.as_str()) {
            c.error(
                path::join(&port_at, "name"),
                format!(
                    "service entry port name {} already defined",
                    quote(&port.name)
                ),
            );
        }
        if !port_numbers.insert(port.number) {
            c.error(
                path::join(&port_at, "number"),
                format!("service entry port {} already defined", port.number),
            );
        }
        if port.target_port != 0
            && let Err(e) = validate_port_number(i64::from(port.target_port))
        {
            c.error(path::join(&port_at, "targetPort"), e);
        }
        if se.addresses.is_empty()
            && !auto_allocate
            && (port.protocol.is_empty() || port.protocol == "TCP")
        {
            c.warning(
                port_at.clone(),
                "addresses are required for ports serving TCP (or unset) protocol when IP \
                 Autoallocation is not enabled",
            );
        }
        if let Err(e) = validate_port_name(&port.name) {
            c.error(path::join(&port_at, "name"), e);
        }
        if !port.protocol.is_empty() && !Protocol::parse(&port.protocol).is_supported() {
            c.error(
                path::join(&port_at, "protocol"),
                format!("unsupported protocol: {}", port.protocol),
            );
        }
        if let Err(e) = validate_port_number(i64::from(port.number)) {
            c.error(path::join(&port_at, "number"), e);
        }
    }

    // S-7
    let endpoints_at = field("endpoints");
    match resolution {
        ServiceEntryResolution::None => {
            if !se.endpoints.is_empty() {
                c.error(
                    endpoints_at,
                    "no endpoints should be provided for resolution type none",
                );
            }
            if se.workload_selector.is_some() {
                c.warning(
                    field("workloadSelector"),
                    "workloadSelector should not be set when resolution mode is NONE",
                );
            }
        }
        ServiceEntryResolution::Static => {
            for (i, endpoint) in se.endpoints.iter().enumerate() {
                workload_entry_at(
                    c,
                    &path::index(&endpoints_at, i),
                    endpoint,
                    Some(&port_names),
                    false,
                );
            }
        }
        ServiceEntryResolution::Dns | ServiceEntryResolution::DnsRoundRobin => {
            let mode = resolution.as_str();
            if se.endpoints.is_empty() {
                for (i, hostname) in se.hosts.iter().enumerate() {
                    if let Err(e) = validate_fqdn(hostname) {
                        c.error(
                            path::index(&hosts_at, i),
                            format!(
                                "hosts must be FQDN or contain only prefix wildcards if no \
                                 endpoints are provided for resolution mode {mode}, {e}"
                            ),
                        );
                        break;
                    }
                }
            }
            if resolution == ServiceEntryResolution::DnsRoundRobin && se.endpoints.len() > 1 {
                c.error(
                    endpoints_at.clone(),
                    format!("there must only be 0 or 1 endpoint for resolution mode {mode}"),
                );
            }
            for (i, endpoint) in se.endpoints.iter().enumerate() {
                let endpoint_at = path::index(&endpoints_at, i);
                let addr = endpoint.address.as_str();
                if !is_ip_address(addr) && validate_fqdn(addr).is_err() {
                    c.error(
                        path::join(&endpoint_at, "address"),
                        format!(
                            "endpoint address {} is not a valid FQDN or an IP address",
                            quote(addr)
                        ),
                    );
                }
                if let Err(e) = validate_labels(&endpoint.labels) {
                    c.error(path::join(&endpoint_at, "labels"), e);
                }
                endpoint_ports(c, &endpoint_at, endpoint, Some(&port_names));
            }
            if !se.addresses.is_empty()
                && se.hosts.len() > 1
                && se
                    .ports
                    .iter()
                    .any(|p| Protocol::parse(&p.protocol).is_tcp())
            {
                c.warning(
                    ports_at.clone(),
                    "service entry can not have more than one host specified simultaneously \
                     with address and tcp port",
                );
            }
        }
        ServiceEntryResolution::DynamicDns => {
            let mode = resolution.as_str();
            if se.hosts.is_empty() {
                c.error(
                    hosts_at.clone(),
                    format!(
                        "at least one wildcard host must be provided for resolution type {mode}"
                    ),
                );
            }
            for (i, hostname) in se.hosts.iter().enumerate() {
                if !hostname.starts_with('*') {
                    c.error(
                        path::index(&hosts_at, i),
                        format!("host must be wildcarded for resolution mode {mode}"),
                    );
                }
            }
            if !se.addresses.is_empty() {
                c.error(
                    field("addresses"),
                    format!(
                        "addresses cannot be set for resolution type {mode}. HTTP route domains \
                         will only be generated from the hosts field values"
                    ),
                );
            }
            if !se.endpoints.is_empty() {
                c.error(
                    endpoints_at,
                    format!(
                        "endpoints cannot be set for resolution type {mode}. Destination IP \
                         address determined from hosts field values"
                    ),
                );
            }
            for (i, port) in se.ports.iter().enumerate() {
                let p = Protocol::parse(&port.protocol);
                if !matches!(
                    p,
                    Protocol::Http | Protocol::Tls | Protocol::Grpc | Protocol::Http2
                ) {
                    c.error(
                        path::join(&path::index(&ports_at, i), "protocol"),
                        format!(
                            "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for \
                             resolution type {mode}"
                        ),
                    );
                }
            }
            let uses_waypoint = ctx
                .labels
                .get(USE_WAYPOINT_LABEL)
                .is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case("none"));
            if se.location == Some(ServiceEntryLocation::MeshInternal) && uses_waypoint {
                c.error(
                    field("location"),
                    format!(
                        "location MESH_INTERNAL with resolution type {mode} is not supported \
                         when using waypoints"
                    ),
                );
            }
        }
        _ => c.error(field("resolution"), "unsupported resolution type"),
    }

    // S-9
    if resolution != ServiceEntryResolution::None
        && se.hosts.len() > 1
        && let Some(i) = se.ports.iter().position(|p| {
            let p = Protocol::parse(&p.protocol);
            !p.is_http() && !p.is_tls()
        })
    {
        c.error(
            path::index(&ports_at, i),
            "multiple hosts provided with non-HTTP, non-TLS ports",
        );
    }

    // S-10
    export_to_at(
        c,
        &field("exportTo"),
        &ctx.namespace,
        &se.export_to,
        true,
        false,
    );
}

/// K-S: what the ServiceEntry CRD's schema rejects (before the webhook runs).
fn crd_service_entry(c: &mut Checker<'_>, at: &str, se: &ServiceEntry) {
    let field = |name: &str| path::join(at, name);
    let resolution = se.resolution.unwrap_or_default();
    let hosts_at = field("hosts");
    if se.hosts.is_empty() {
        c.error(hosts_at.clone(), "Required value");
    } else if se.hosts.len() > 256 {
        c.error(hosts_at.clone(), "Too many: must have at most 256 items");
    }
    for (i, h) in se.hosts.iter().enumerate() {
        if h == "*" {
            c.error(path::index(&hosts_at, i), "hostname cannot be wildcard");
        }
    }
    let addresses_at = field("addresses");
    if se.addresses.len() > 256 {
        c.error(
            addresses_at.clone(),
            "Too many: must have at most 256 items",
        );
    }
    for (i, a) in se.addresses.iter().enumerate() {
        if a.chars().count() > 64 {
            c.error(
                path::index(&addresses_at, i),
                "Too long: may not be more than 64 bytes",
            );
        }
    }
    if se.workload_selector.is_some() && !se.endpoints.is_empty() {
        c.error(at, "only one of WorkloadSelector or Endpoints can be set");
    }
    if se.addresses.iter().any(|a| a.contains('/'))
        && !matches!(
            resolution,
            ServiceEntryResolution::None | ServiceEntryResolution::Static
        )
    {
        c.error(
            at,
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
        );
    }
    if resolution == ServiceEntryResolution::None && !se.endpoints.is_empty() {
        c.error(at, "NONE mode cannot set endpoints");
    }
    if resolution == ServiceEntryResolution::DnsRoundRobin && se.endpoints.len() > 1 {
        c.error(at, "DNS_ROUND_ROBIN mode cannot have multiple endpoints");
    }

    let ports_at = field("ports");
    if se.ports.len() > 256 {
        c.error(ports_at.clone(), "Too many: must have at most 256 items");
    }
    let mut names = BTreeSet::new();
    for (i, port) in se.ports.iter().enumerate() {
        let port_at = path::index(&ports_at, i);
        if port.name.is_empty() {
            c.error(path::join(&port_at, "name"), "Required value");
        } else if !names.insert(port.name.as_str()) {
            c.error(
                path::join(&port_at, "name"),
                format!("Duplicate value: {}", quote(&port.name)),
            );
        }
        if port.number == 0 {
            c.error(path::join(&port_at, "number"), "Required value");
        } else if port.number > 65535 {
            c.error(
                path::join(&port_at, "number"),
                "port must be between 1-65535",
            );
        }
        if port.target_port > 65535 {
            c.error(
                path::join(&port_at, "targetPort"),
                "port must be between 1-65535",
            );
        }
        if port.name.chars().count() > 256 || port.protocol.chars().count() > 256 {
            c.error(port_at, "Too long: may not be more than 256 bytes");
        }
    }
    let numbers: Vec<u32> = se.ports.iter().map(|p| p.number).collect();
    let unique: BTreeSet<u32> = numbers.iter().copied().collect();
    if unique.len() != numbers.len() {
        c.error(ports_at, "port number cannot be duplicated");
    }

    let endpoints_at = field("endpoints");
    if se.endpoints.len() > 4096 {
        c.error(
            endpoints_at.clone(),
            "Too many: must have at most 4096 items",
        );
    }
    for (i, endpoint) in se.endpoints.iter().enumerate() {
        let endpoint_at = path::index(&endpoints_at, i);
        let addr = endpoint.address.as_str();
        if addr.is_empty() && endpoint.network.is_empty() {
            c.error(endpoint_at.clone(), "Address is required");
        }
        if addr.starts_with(UNIX_PREFIX) && !endpoint.ports.is_empty() {
            c.error(endpoint_at.clone(), "UDS may not include ports");
        }
        let address_at = path::join(&endpoint_at, "address");
        if addr.chars().count() > 256 {
            c.error(
                address_at.clone(),
                "Too long: may not be more than 256 bytes",
            );
        }
        if let Some(socket) = addr.strip_prefix(UNIX_PREFIX) {
            if !socket.starts_with('/') && !socket.starts_with('@') {
                c.error(
                    address_at.clone(),
                    "UDS must be an absolute path or abstract socket",
                );
            }
            if addr.ends_with('/') {
                c.error(address_at, "UDS may not be a dir");
            }
        }
        let ports_at = path::join(&endpoint_at, "ports");
        if endpoint.ports.len() > 128 {
            c.error(ports_at.clone(), "Too many: must have at most 128 items");
        }
        if endpoint
            .ports
            .keys()
            .any(|k| k.chars().count() >= 63 || !is_label_shape(k))
        {
            c.error(ports_at.clone(), "port name must be valid");
        }
        for (name, number) in &endpoint.ports {
            if *number == 0 || *number > 65535 {
                c.error(path::key(&ports_at, name), "port must be between 1-65535");
            }
        }
        if endpoint.labels.len() > 256 {
            c.error(
                path::join(&endpoint_at, "labels"),
                "Too many: must have at most 256 items",
            );
        }
    }

    if let Some(selector) = &se.workload_selector {
        let labels_at = path::join(&field("workloadSelector"), "labels");
        if selector.labels.len() > 256 {
            c.error(labels_at.clone(), "Too many: must have at most 256 items");
        }
        for (k, v) in &selector.labels {
            if v.chars().count() > 63 {
                c.error(
                    path::key(&labels_at, k),
                    "Too long: may not be more than 63 bytes",
                );
            }
            if v.contains('*') {
                c.error(
                    path::key(&labels_at, k),
                    "wildcard is not supported in selector",
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn se(json: &str) -> ServiceEntry {
        serde_json::from_str(json).unwrap()
    }

    fn ctx() -> Context {
        Context::new("default", "se")
    }

    #[test]
    fn bad_selector_is_reported_alone() {
        let found = validate_service_entry(
            &se(r#"{"hosts": ["*"], "workloadSelector": {"labels": {"app": "*"}}}"#),
            &ctx(),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found
                .to_string()
                .contains("wildcard is not supported in selector")
        );
    }

    #[test]
    fn missing_addresses_warning_depends_on_autoallocation() {
        let spec = se(
            r#"{"hosts": ["a.example.com"], "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}], "resolution": "DNS"}"#,
        );
        assert!(!validate_service_entry(&spec, &ctx()).has_warnings());
        let mut opt_out = ctx();
        opt_out
            .labels
            .insert(AUTOALLOCATE_LABEL.into(), "False".into());
        assert!(validate_service_entry(&spec, &opt_out).has_warnings());
        let lower = se(
            r#"{"hosts": ["a.example.com"], "ports": [{"number": 5432, "name": "pg", "protocol": "tcp"}], "resolution": "NONE"}"#,
        );
        assert!(!validate_service_entry(&lower, &ctx()).has_warnings());
    }

    #[test]
    fn static_endpoints_must_be_ips_or_sockets() {
        let ok = se(
            r#"{"hosts": ["a.example.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}], "resolution": "STATIC", "endpoints": [{"address": "1.2.3.4", "ports": {"http": 8080}}, {"address": "unix:///sock"}]}"#,
        );
        assert!(validate_service_entry(&ok, &ctx()).is_valid());
        let bad = se(
            r#"{"hosts": ["a.example.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}], "resolution": "STATIC", "endpoints": [{"address": "foo.com", "ports": {"grpc": 8080}}]}"#,
        );
        let text = validate_service_entry(&bad, &ctx()).to_string();
        assert!(text.contains("is not a valid IP address"), "{text}");
        assert!(
            text.contains("is not defined by the service entry"),
            "{text}"
        );
    }

    #[test]
    fn dns_without_endpoints_needs_fqdn_hosts() {
        let bad = se(r#"{"hosts": ["*.example.com"], "resolution": "DNS"}"#);
        assert!(
            validate_service_entry(&bad, &ctx())
                .to_string()
                .contains("hosts must be FQDN")
        );
    }

    #[test]
    fn multiple_hosts_with_unset_protocol_fail_unless_none() {
        let spec = r#"{"hosts": ["a.com", "b.com"], "ports": [{"number": 80, "name": "p"}], "resolution": "#;
        let dns = se(&format!("{spec}\"DNS\"}}"));
        assert!(
            validate_service_entry(&dns, &ctx())
                .to_string()
                .contains("multiple hosts provided")
        );
        let none = se(&format!("{spec}\"NONE\"}}"));
        assert!(validate_service_entry(&none, &ctx()).is_valid());
    }

    #[test]
    fn dynamic_dns_rules() {
        let mut waypoint = ctx();
        waypoint
            .labels
            .insert(USE_WAYPOINT_LABEL.into(), "wp".into());
        let spec = se(
            r#"{"hosts": ["*.example.com"], "location": "MESH_INTERNAL", "resolution": "DYNAMIC_DNS", "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}"#,
        );
        assert!(validate_service_entry(&spec, &ctx()).is_valid());
        assert!(!validate_service_entry(&spec, &waypoint).is_valid());
        let https = se(
            r#"{"hosts": ["*.example.com"], "resolution": "DYNAMIC_DNS", "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}]}"#,
        );
        assert!(!validate_service_entry(&https, &ctx()).is_valid());
    }

    #[test]
    fn export_to_allows_none_alone() {
        let spec = se(r#"{"hosts": ["a.com"], "exportTo": ["~"]}"#);
        assert!(validate_service_entry(&spec, &ctx()).is_valid());
        let spec = se(r#"{"hosts": ["a.com"], "exportTo": ["~", "."]}"#);
        assert!(!validate_service_entry(&spec, &ctx()).is_valid());
    }

    #[test]
    fn standalone_workload_entry_accepts_fqdn() {
        let we: WorkloadEntry =
            serde_json::from_str(r#"{"address": "vm.example.com", "ports": {"http": 80}}"#)
                .unwrap();
        assert!(validate_workload_entry(&we, &ctx()).is_valid());
        let we: WorkloadEntry =
            serde_json::from_str(r#"{"address": "vm.example.com:9443"}"#).unwrap();
        assert!(!validate_workload_entry(&we, &ctx()).is_valid());
        let we: WorkloadEntry = serde_json::from_str(r#"{"network": "n1"}"#).unwrap();
        let found = validate_workload_entry(&we, &ctx());
        assert!(found.is_valid() && found.has_warnings());
    }

    #[test]
    fn crd_layer_checks_endpoint_port_names_shorter_than_webhook() {
        let name = "a".repeat(63);
        let spec = se(&format!(
            r#"{{"hosts": ["a.com"], "ports": [{{"number": 80, "name": "{name}"}}], "resolution": "STATIC", "endpoints": [{{"address": "1.1.1.1", "ports": {{"{name}": 80}}}}]}}"#
        ));
        assert!(validate_service_entry(&spec, &ctx()).is_valid());
        let mut crd = ctx();
        crd.crd_schema = true;
        assert!(!validate_service_entry(&spec, &crd).is_valid());
    }
}
