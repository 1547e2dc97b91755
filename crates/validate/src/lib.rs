//! Istio's validation of the networking API, and analysis of whole configurations.
//!
//! Validation judges one resource (or one sub-object) as Istio's admission webhook does: every
//! error and warning, each with its field path and a message close to Istio's, accumulated rather
//! than stopping at the first.
//!
//! ```
//! use portcullis_model::Loader;
//! use portcullis_validate::validate_document;
//!
//! let loaded = Loader::new().load_str("vs.yaml", "
//! apiVersion: networking.istio.io/v1
//! kind: VirtualService
//! metadata: {name: reviews, namespace: bookinfo}
//! spec:
//!   hosts: [reviews]
//!   http:
//!   - route:
//!     - destination: {host: reviews}
//!       weight: -1
//! ")?;
//! let found = validate_document(&loaded.documents()[0].object);
//! assert!(!found.is_valid());
//! # Ok::<(), portcullis_model::LoadErrors>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod analysis;
pub mod common;
mod context;
pub mod destination_rule;
mod diag;
// Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): hidden from the docs and
// not part of the stable API; they change whenever the fuzz targets do.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
mod go_regex;
mod invalid;
mod ip;
mod path;
pub mod service_entry;
pub mod virtual_service;

pub use context::{Context, GATEWAY_SEMANTICS_ANNOTATION, ROUTE_SEMANTICS_ANNOTATION};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use invalid::{InvalidValue, ValueKind};

use portcullis_model::Object;

/// Validates a loaded object as Istio's webhook would, with the context its metadata gives.
/// Kinds Istio does not validate (Service, Pod, …) give no diagnostics.
pub fn validate_document(object: &Object) -> Diagnostics {
    validate_document_with(object, &Context::default())
}

/// Like [`validate_document`], with the environment switches of `environment` (its
/// `ip_autoallocate` and `crd_schema`, and its `namespace` as the namespace of objects that name
/// none — `default` if it is empty too; identity and annotations come from the object).
///
/// With `crd_schema`, the verdict is the one of `kubectl apply`: the Kubernetes API server's own
/// rules for object names and the CRD schema come first, then Istio's webhook.
pub fn validate_document_with(object: &Object, environment: &Context) -> Diagnostics {
    if environment.crd_schema {
        let api_server = api_server_checks(object.metadata());
        if api_server.has_errors() {
            return api_server;
        }
    }
    let context = |meta: &portcullis_model::ObjectMeta, semantics_annotation: &str| {
        let mut ctx = Context::from_meta(meta);
        // An object without a namespace lands in the namespace it is applied to; like
        // `istioctl validate`, judge it there (`default` unless the caller says otherwise).
        if ctx.namespace.is_empty() {
            ctx.namespace = if environment.namespace.is_empty() {
                portcullis_model::DEFAULT_NAMESPACE.to_owned()
            } else {
                environment.namespace.clone()
            };
        }
        // Each kind reads only its own annotation: a Gateway ignores route semantics.
        ctx.gateway_semantics = meta
            .annotations
            .get(semantics_annotation)
            .is_some_and(|v| v == "gateway");
        ctx.ip_autoallocate = environment.ip_autoallocate;
        ctx.crd_schema = environment.crd_schema;
        ctx
    };
    match object {
        Object::Gateway(r) => {
            gateway::validate_gateway(&r.spec, &context(&r.metadata, GATEWAY_SEMANTICS_ANNOTATION))
        }
        Object::VirtualService(r) => virtual_service::validate_virtual_service(
            &r.spec,
            &context(&r.metadata, ROUTE_SEMANTICS_ANNOTATION),
        ),
        Object::DestinationRule(r) => destination_rule::validate_destination_rule(
            &r.spec,
            &context(&r.metadata, ROUTE_SEMANTICS_ANNOTATION),
        ),
        Object::ServiceEntry(r) => service_entry::validate_service_entry(
            &r.spec,
            &context(&r.metadata, ROUTE_SEMANTICS_ANNOTATION),
        ),
        _ => Diagnostics::new(),
    }
}

/// The API server's checks of an object's identity: a name is required and must be a DNS-1123
/// subdomain (lower case, at most 253 characters); a namespace must be a DNS-1123 label.
fn api_server_checks(meta: &portcullis_model::ObjectMeta) -> Diagnostics {
    let mut found = Diagnostics::new();
    if meta.name.is_empty() {
        found.error(
            "metadata.name",
            "name or generateName is required: the API server refuses an object without a name",
        );
    } else if !is_dns1123_subdomain(&meta.name) {
        found.error(
            "metadata.name",
            format!(
                "{:?} is not a DNS-1123 subdomain: lower case letters, digits, '-' and '.', \
                 starting and ending with a letter or digit, at most 253 characters",
                meta.name
            ),
        );
    }
    let namespace_ok = meta.namespace.len() <= 63
        && common::is_dns1123_label(&meta.namespace)
        && !meta.namespace.bytes().any(|b| b.is_ascii_uppercase());
    if !meta.namespace.is_empty() && !namespace_ok {
        found.error(
            "metadata.namespace",
            format!("{:?} is not a DNS-1123 label", meta.namespace),
        );
    }
    found
}

fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && label
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && label
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_the_api_server_rules() {
        assert!(is_dns1123_subdomain("reviews.v1-canary"));
        assert!(!is_dns1123_subdomain("Reviews"));
        assert!(!is_dns1123_subdomain(
            "gw~istio-autogenerated-k8s-gateway~http"
        ));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    }
}

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
