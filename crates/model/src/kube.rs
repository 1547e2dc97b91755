//! The core Kubernetes kinds that analysis needs, typed as far as analysis reads them.
//!
//! These are other people's objects with many fields this crate does not use, so unlike the
//! Istio kinds they accept unknown fields and keep them (in `other`) so that writing them back
//! loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::is_default;
use crate::meta::{ApiVersion, Kind, ObjectMeta, Resource};

/// A Kubernetes `Service`.
pub type Service = Resource<ServiceSpec>;
/// A Kubernetes `Pod`; only its metadata (labels) is typed.
pub type Pod = Resource<serde_json::Value>;
/// A Kubernetes `Namespace`; only its metadata (labels) is typed.
pub type Namespace = Resource<serde_json::Value>;

/// The `spec` of a Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// The ports the Service exposes.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<ServicePort>,
    /// The labels of the pods behind the Service.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub selector: BTreeMap<String, String>,
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        rename = "type",
        skip_serializing_if = "String::is_empty"
    )]
    pub service_type: String,
    /// The cluster IP, or `None` for headless Services.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        rename = "clusterIP",
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_ip: String,
    /// The DNS name an `ExternalName` Service aliases.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub external_name: String,
    /// Every other field, kept as written.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One port of a Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port's name; Istio reads the protocol from its prefix (`http-web`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The port the Service listens on.
    #[serde(default)]
    pub port: i32,
    /// The pod port traffic goes to: a number or a named container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol: String,
    /// The application protocol (`http`, `grpc`, …), which Istio prefers to the name prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The node port, for `NodePort` and `LoadBalancer` Services.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub node_port: i32,
}

/// A Kubernetes `IntOrString`: a port number or a port name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name.
    String(String),
}

/// A Kubernetes `Secret`: its type and data keys, which credential analysis checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Always `v1`.
    pub api_version: ApiVersion,
    /// Always `Secret`.
    pub kind: Kind,
    /// Name, namespace, labels.
    #[serde(default, deserialize_with = "crate::common::null_as_default")]
    pub metadata: ObjectMeta,
    /// The Secret type (`kubernetes.io/tls`, `Opaque`, `istio.io/…`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        rename = "type",
        skip_serializing_if = "String::is_empty"
    )]
    pub secret_type: String,
    /// Base64-encoded data by key (`tls.crt`, `tls.key`, `ca.crt`, `cert`, `key`, `cacert`).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, String>,
    /// Plain-text data by key.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub string_data: BTreeMap<String, String>,
    /// Every other field, kept as written.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Secret {
    /// Whether the Secret has `key` in `data` or `stringData`.
    pub fn has_key(&self, key: &str) -> bool {
        self.data.contains_key(key) || self.string_data.contains_key(key)
    }
}
