//! The Kubernetes envelope around every resource.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::is_default;

/// The `apiVersion` of a document this crate reads.
///
/// The three networking versions share one schema; `v1` is the core Kubernetes group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ApiVersion {
    /// `networking.istio.io/v1alpha3`
    #[serde(rename = "networking.istio.io/v1alpha3")]
    NetworkingV1Alpha3,
    /// `networking.istio.io/v1beta1`
    #[serde(rename = "networking.istio.io/v1beta1")]
    NetworkingV1Beta1,
    /// `networking.istio.io/v1`
    #[serde(rename = "networking.istio.io/v1")]
    NetworkingV1,
    /// `v1`: the core Kubernetes group (Service, Pod, Secret, Namespace).
    #[serde(rename = "v1")]
    CoreV1,
}

impl ApiVersion {
    /// The networking versions, as written in documents.
    pub const NETWORKING: &'static [&'static str] = &[
        "networking.istio.io/v1alpha3",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1",
    ];

    /// The version as written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NetworkingV1Alpha3 => "networking.istio.io/v1alpha3",
            Self::NetworkingV1Beta1 => "networking.istio.io/v1beta1",
            Self::NetworkingV1 => "networking.istio.io/v1",
            Self::CoreV1 => "v1",
        }
    }

    /// Parses a version as written in documents.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "networking.istio.io/v1alpha3" => Some(Self::NetworkingV1Alpha3),
            "networking.istio.io/v1beta1" => Some(Self::NetworkingV1Beta1),
            "networking.istio.io/v1" => Some(Self::NetworkingV1),
            "v1" => Some(Self::CoreV1),
            _ => None,
        }
    }

    /// Whether this is one of the `networking.istio.io` versions.
    pub fn is_networking(self) -> bool {
        !matches!(self, Self::CoreV1)
    }
}

/// The `kind` of a document this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Kind {
    /// `networking.istio.io` Gateway.
    Gateway,
    /// `networking.istio.io` VirtualService.
    VirtualService,
    /// `networking.istio.io` DestinationRule.
    DestinationRule,
    /// `networking.istio.io` ServiceEntry.
    ServiceEntry,
    /// Core Service.
    Service,
    /// Core Pod.
    Pod,
    /// Core Secret.
    Secret,
    /// Core Namespace.
    Namespace,
}

impl Kind {
    /// The kind as written in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "Gateway",
            Self::VirtualService => "VirtualService",
            Self::DestinationRule => "DestinationRule",
            Self::ServiceEntry => "ServiceEntry",
            Self::Service => "Service",
            Self::Pod => "Pod",
            Self::Secret => "Secret",
            Self::Namespace => "Namespace",
        }
    }

    /// The kind for an (`apiVersion`, `kind`) pair this crate reads, if it is one.
    pub fn resolve(api_version: ApiVersion, kind: &str) -> Option<Self> {
        let kind = match kind {
            "Gateway" => Self::Gateway,
            "VirtualService" => Self::VirtualService,
            "DestinationRule" => Self::DestinationRule,
            "ServiceEntry" => Self::ServiceEntry,
            "Service" => Self::Service,
            "Pod" => Self::Pod,
            "Secret" => Self::Secret,
            "Namespace" => Self::Namespace,
            _ => return None,
        };
        (api_version.is_networking() == kind.is_networking()).then_some(kind)
    }

    /// Whether this is one of the four `networking.istio.io` kinds.
    pub fn is_networking(self) -> bool {
        matches!(
            self,
            Self::Gateway | Self::VirtualService | Self::DestinationRule | Self::ServiceEntry
        )
    }
}

impl core::fmt::Display for Kind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kubernetes object metadata (`metadata`), with the fields Istio and analysis use typed and the
/// rest of Kubernetes' `ObjectMeta` kept as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The object's name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The object's namespace; empty means the namespace the configuration is applied to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 creation time; Istio orders Gateways and VirtualServices by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// The server's opaque version of the object.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub resource_version: String,
    /// The generation of the desired state.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub generation: i64,
    /// The object's unique id.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub uid: String,
    /// Prefix for a server-generated name.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub generate_name: String,
    /// Deletion time, when deletion was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// Grace period for deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Finalizers.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub finalizers: Vec<String>,
    /// Owner references, kept as written.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub owner_references: Vec<serde_json::Value>,
    /// Server-side apply bookkeeping, kept as written.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub managed_fields: Vec<serde_json::Value>,
    /// Deprecated self link.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub self_link: String,
}

/// A Kubernetes object: the envelope (`apiVersion`, `kind`, `metadata`, `status`) around a
/// `spec` of type `S`.
///
/// `status` is kept as written and never interpreted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resource<S> {
    /// The document's `apiVersion`.
    pub api_version: ApiVersion,
    /// The document's `kind`.
    pub kind: Kind,
    /// Name, namespace, labels and the rest of the metadata.
    #[serde(default, deserialize_with = "crate::common::null_as_default")]
    pub metadata: ObjectMeta,
    /// The resource's specification; `spec: null` and a missing `spec` read as the empty spec.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        bound(deserialize = "S: Deserialize<'de> + Default")
    )]
    pub spec: S,
    /// The status, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl<S: Default> Resource<S> {
    /// A resource of `kind` with an empty spec, for building configurations in code.
    pub fn new(api_version: ApiVersion, kind: Kind, name: &str, namespace: &str) -> Self {
        Self {
            api_version,
            kind,
            metadata: ObjectMeta {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                ..ObjectMeta::default()
            },
            spec: S::default(),
            status: None,
        }
    }
}
