//! Typed model of Istio's networking API and a loader that says exactly what is wrong.
//!
//! This crate holds serde types for every field of the four resources of
//! `networking.istio.io` (`v1alpha3`, `v1beta1` and `v1`, which share one schema):
//! [`Gateway`], [`VirtualService`], [`DestinationRule`] and [`ServiceEntry`]; the Kubernetes
//! envelope ([`Resource`], [`ObjectMeta`]); and the few core Kubernetes kinds that analysis needs
//! ([`kube::Service`], [`kube::Pod`], [`kube::Secret`], [`kube::Namespace`]).
//!
//! The [`Loader`] reads multi-document YAML and JSON streams (and `kind: List`), and reports each
//! problem with its file, line, column and field path:
//!
//! ```
//! use portcullis_model::{Loader, Object};
//!
//! let yaml = r#"
//! apiVersion: networking.istio.io/v1
//! kind: Gateway
//! metadata:
//!   name: public
//! spec:
//!   selector:
//!     istio: ingressgateway
//!   servers:
//!   - port: {number: 443, name: https, protocol: HTTPS}
//!     hosts: ["*.example.com"]
//!     tls:
//!       mode: SIMPL
//! "#;
//! let err = Loader::new().load_str("gw.yaml", yaml).unwrap_err();
//! let first = &err.errors()[0];
//! assert_eq!(first.path(), "spec.servers[0].tls.mode");
//! assert_eq!((first.line(), first.column()), (Some(13), Some(13)));
//! assert!(first.to_string().starts_with("gw.yaml:13:13: spec.servers[0].tls.mode: unknown variant `SIMPL`"));
//!
//! let ok = Loader::new().load_str("gw.yaml", &yaml.replace("SIMPL", "SIMPLE"))?;
//! let Object::Gateway(gw) = &ok.documents()[0].object else { unreachable!() };
//! assert_eq!(gw.spec.servers[0].port.as_ref().map(|p| p.number), Some(443));
//! # Ok::<(), portcullis_model::LoadErrors>(())
//! ```
//!
//! Every type (de)serializes with plain serde derives, so it also works with `serde_json` and
//! `serde_yaml` directly; the loader adds the locations, the `kind` dispatch and the limits.
//! See [`common`] for the conventions the types follow.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod common;
pub mod destination_rule;
mod duration;
mod error;
// Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): hidden from the docs and
// not part of the stable API; they change whenever the fuzz targets do.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod host;
pub mod kube;
mod load;
mod meta;
mod output;
pub mod service_entry;
mod source_map;
pub mod virtual_service;

pub use common::{
    InvalidBytes, OneofError, Percent, StringMatch, UnknownEnumValue, WorkloadSelector,
};
pub use destination_rule::DestinationRule;
pub use duration::{Duration, ParseDurationError};
pub use error::{LoadError, LoadErrorKind, LoadErrors, LoadWarning};
pub use gateway::Gateway;
pub use load::{
    DEFAULT_MAX_DOCUMENTS, DEFAULT_NAMESPACE, DecodeError, Document, DocumentSource, Edition,
    LoadCache, LoadOptions, Loaded, Loader, Object, SkippedDocument, from_value,
};
pub use meta::{ApiVersion, Kind, ObjectMeta, Resource};
pub use output::{to_json, to_yaml};
pub use service_entry::ServiceEntry;
pub use source_map::{Location, SourceMap};
pub use virtual_service::VirtualService;

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
