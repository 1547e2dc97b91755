//! `ServiceEntry`: adds a service to Istio's service registry.
//!
//! A service entry declares hosts (usually outside the mesh) with their ports, how their
//! addresses are resolved, and optionally their endpoints, given inline as
//! [`WorkloadEntry`]s or selected by label.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{WorkloadSelector, is_default, proto_enum};

/// The spec of a `ServiceEntry`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceEntry {
    /// The host names of the service (required); wildcard prefixes are allowed.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hosts: Vec<String>,
    /// Virtual IP addresses or CIDR ranges of the service.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<String>,
    /// The ports of the service.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<ServicePort>,
    /// Whether the service is outside or inside the mesh; unset means `MESH_EXTERNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ServiceEntryLocation>,
    /// How the proxy resolves the service's endpoints; unset means `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ServiceEntryResolution>,
    /// The endpoints of the service, given inline.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoints: Vec<WorkloadEntry>,
    /// Selects the pods and `WorkloadEntry`s backing the service by label (instead of
    /// `endpoints`; only for `MESH_INTERNAL` services).
    #[serde(
        default,
        alias = "workload_selector",
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_selector: Option<WorkloadSelector>,
    /// The namespaces the service is visible to (`.` the own namespace, `*` all); empty
    /// means the mesh-wide default.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "export_to",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub export_to: Vec<String>,
    /// Subject alternative names the proxy accepts in the server certificates of the service.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "subject_alt_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_alt_names: Vec<String>,
}

proto_enum! {
    /// Whether a service entry's service is part of the mesh (Istio's `ServiceEntry.Location`).
    pub enum ServiceEntryLocation {
        /// Outside the mesh: no mutual TLS, metrics from the client side only. The zero value.
        MeshExternal = ("MESH_EXTERNAL", 0),
        /// Inside the mesh, like services of the platform's registry.
        MeshInternal = ("MESH_INTERNAL", 1),
    }
}

proto_enum! {
    /// How the endpoints of a service entry are found (Istio's `ServiceEntry.Resolution`).
    pub enum ServiceEntryResolution {
        /// Forward to the IP the connection was addressed to. The zero value.
        None = ("NONE", 0),
        /// Use the static IP addresses of the endpoints.
        Static = ("STATIC", 1),
        /// Resolve the hosts (or the endpoints' addresses) by DNS, using every address returned.
        Dns = ("DNS", 2),
        /// Resolve by DNS and connect to the first address returned only.
        DnsRoundRobin = ("DNS_ROUND_ROBIN", 3),
        /// Resolve by DNS on demand, per requested host (for wildcard hosts).
        DynamicDns = ("DYNAMIC_DNS", 4),
    }
}

/// A port of a service entry (Istio's `ServicePort`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// The port number. Kept as `u32`, as in the proto, so validation can reject values above
    /// 65535.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub number: u32,
    /// The protocol as written (`HTTP`, `HTTPS`, `TCP`, `TLS`, `GRPC`, …); validation parses
    /// it.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol: String,
    /// The port's label.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The port on the endpoints that receives the traffic; zero means `number`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "target_port",
        skip_serializing_if = "is_default"
    )]
    pub target_port: u32,
}

/// One endpoint of a service: a workload outside Kubernetes (Istio's `WorkloadEntry`, as
/// `ServiceEntry.endpoints` embeds it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEntry {
    /// The address without port: an IP, a DNS name (with DNS resolution), or a Unix domain
    /// socket (`unix:///path`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub address: String,
    /// Port numbers on this endpoint, by service port name (overriding the service's ports).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub ports: BTreeMap<String, u32>,
    /// The endpoint's labels.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// The network (L3 domain) the endpoint lives in.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub network: String,
    /// The endpoint's locality, as `region/zone/subzone`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub locality: String,
    /// The endpoint's load-balancing weight; zero means the default.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub weight: u32,
    /// The service account of the workload, when it runs a sidecar.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "service_account",
        skip_serializing_if = "String::is_empty"
    )]
    pub service_account: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
        "hosts": ["api.example.com", "*.internal.example.com"],
        "addresses": ["240.0.0.1", "10.0.0.0/16"],
        "ports": [
            {"number": 443, "name": "https", "protocol": "TLS"},
            {"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 8080}
        ],
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
        "endpoints": [
            {
                "address": "10.1.1.1",
                "ports": {"https": 8443},
                "labels": {"app": "api"},
                "network": "net-1",
                "locality": "us-east1/us-east1-b",
                "weight": 3,
                "serviceAccount": "api"
            },
            {"address": "unix:///var/run/api.sock"}
        ],
        "exportTo": [".", "other"],
        "subjectAltNames": ["spiffe://cluster.local/ns/a/sa/api"]
    }"#;

    #[test]
    fn full_spec_round_trips() {
        let se: ServiceEntry = serde_json::from_str(FULL).unwrap();
        assert_eq!(se.location, Some(ServiceEntryLocation::MeshInternal));
        assert_eq!(se.resolution, Some(ServiceEntryResolution::Static));
        assert_eq!(se.ports[1].target_port, 8080);
        assert_eq!(se.endpoints[0].ports.get("https"), Some(&8443));
        assert_eq!(se.endpoints[0].weight, 3);
        let written = serde_json::to_string(&se).unwrap();
        assert_eq!(serde_json::from_str::<ServiceEntry>(&written).unwrap(), se);
    }

    #[test]
    fn workload_selector_round_trips_and_unset_fields_are_omitted() {
        let se: ServiceEntry = serde_json::from_str(
            r#"{"hosts":["a.b"],"workloadSelector":{"labels":{"app":"vm"}},"resolution":"NONE"}"#,
        )
        .unwrap();
        assert_eq!(
            se.workload_selector
                .as_ref()
                .unwrap()
                .labels
                .get("app")
                .unwrap(),
            "vm"
        );
        assert_eq!(
            serde_json::to_string(&se).unwrap(),
            r#"{"hosts":["a.b"],"resolution":"NONE","workloadSelector":{"labels":{"app":"vm"}}}"#
        );
    }

    #[test]
    fn out_of_range_numbers_load_for_validation() {
        let se: ServiceEntry = serde_json::from_str(
            r#"{"ports":[{"number":70000,"name":"x"}],"endpoints":[{"ports":{"x":99999}}]}"#,
        )
        .unwrap();
        assert_eq!(se.ports[0].number, 70000);
        assert_eq!(se.endpoints[0].ports.get("x"), Some(&99999));
    }

    #[test]
    fn protobuf_names_are_accepted() {
        let se: ServiceEntry = serde_json::from_str(
            r#"{"export_to": ["*"], "subject_alt_names": ["s"],
                "workload_selector": {"labels": {"a": "b"}},
                "ports": [{"number": 1, "name": "p", "target_port": 2}],
                "endpoints": [{"address": "1.1.1.1", "service_account": "sa"}]}"#,
        )
        .unwrap();
        assert_eq!(se.export_to, ["*"]);
        assert_eq!(se.subject_alt_names, ["s"]);
        assert!(se.workload_selector.is_some());
        assert_eq!(se.ports[0].target_port, 2);
        assert_eq!(se.endpoints[0].service_account, "sa");
    }

    #[test]
    fn enums_use_istio_numbers() {
        assert_eq!(ServiceEntryResolution::DynamicDns.number(), 4);
        assert_eq!(
            ServiceEntryResolution::default(),
            ServiceEntryResolution::None
        );
        assert_eq!(
            ServiceEntryLocation::default(),
            ServiceEntryLocation::MeshExternal
        );
        let se: ServiceEntry = serde_json::from_str(r#"{"resolution":3,"location":1}"#).unwrap();
        assert_eq!(se.resolution, Some(ServiceEntryResolution::DnsRoundRobin));
        assert_eq!(se.location, Some(ServiceEntryLocation::MeshInternal));
    }

    #[test]
    fn unknown_resolution_lists_accepted_names() {
        let err = serde_json::from_str::<ServiceEntry>(r#"{"resolution":"DNS_RR"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `DNS_RR`"), "{err}");
        assert!(
            err.contains("`NONE`, `STATIC`, `DNS`, `DNS_ROUND_ROBIN`, `DYNAMIC_DNS`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_json::from_str::<ServiceEntry>(r#"{"hosts":["a"],"host":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `host`"), "{err}");
        assert!(serde_json::from_str::<WorkloadEntry>(r#"{"ip":"1.1.1.1"}"#).is_err());
        assert!(serde_json::from_str::<ServicePort>(r#"{"port":1}"#).is_err());
    }
}
