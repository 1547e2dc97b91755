//! What validation needs to know beyond the object itself.

use std::collections::{BTreeMap, HashMap};

use portcullis_model::ObjectMeta;

use crate::diag::Diagnostics;

/// Annotation the Gateway-API conversion sets on Gateways it generates.
pub const GATEWAY_SEMANTICS_ANNOTATION: &str = "internal.istio.io/gateway-semantics";
/// Annotation the Gateway-API conversion sets on VirtualServices it generates.
pub const ROUTE_SEMANTICS_ANNOTATION: &str = "internal.istio.io/route-semantics";

/// The object's identity and the few switches of Istio's environment that change verdicts.
///
/// ```
/// use portcullis_validate::Context;
///
/// let ctx = Context::new("bookinfo", "reviews");
/// assert!(ctx.ip_autoallocate);
/// assert!(!ctx.gateway_semantics);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Context {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.labels` (ServiceEntry rules read `networking.istio.io/enable-autoallocate-ip`
    /// and `istio.io/use-waypoint`).
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// The object was generated from the Kubernetes Gateway API (annotation
    /// `internal.istio.io/gateway-semantics: gateway` or `internal.istio.io/route-semantics:
    /// gateway`), which relaxes a few name rules.
    pub gateway_semantics: bool,
    /// Istio's `PILOT_ENABLE_IP_AUTOALLOCATE` (default on): whether ServiceEntries without
    /// addresses get one allocated, which silences the "addresses are required" warning.
    pub ip_autoallocate: bool,
    /// Also apply the CRD's OpenAPI/CEL schema rules, as the Kubernetes API server does before
    /// the webhook: the verdict of `kubectl apply` rather than of the webhook alone.
    pub crd_schema: bool,
}

impl Default for Context {
    fn default() -> Self {
        Self {
            name: String::new(),
            namespace: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            gateway_semantics: false,
            ip_autoallocate: true,
            crd_schema: false,
        }
    }
}

impl Context {
    /// A context for the object `namespace/name`, with Istio's default environment.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            ..Self::default()
        }
    }

    /// A context from an object's metadata. Gateway semantics are left off: which annotation
    /// switches them on depends on the kind, and [`crate::validate_document`] reads it.
    pub fn from_meta(meta: &ObjectMeta) -> Self {
        Self {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
            ..Self::default()
        }
    }
}

/// The state of one validation run: its context, what it found, and the regexes already
/// checked (each pattern is compiled once per run).
#[derive(Debug)]
pub(crate) struct Checker<'a> {
    pub(crate) ctx: &'a Context,
    pub(crate) out: Diagnostics,
    regexes: HashMap<String, Result<(), String>>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(ctx: &'a Context) -> Self {
        Self {
            ctx,
            out: Diagnostics::new(),
            regexes: HashMap::new(),
        }
    }

    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.out.error(path, message);
    }

    pub(crate) fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.out.warning(path, message);
    }

    /// Checks a regex as Istio's RE2 would see it (C-21), once per pattern per run; records an
    /// error at `path` and returns `false` when it is not acceptable.
    pub(crate) fn regex(&mut self, path: &str, pattern: &str) -> bool {
        let verdict = self
            .regexes
            .entry(pattern.to_owned())
            .or_insert_with(|| crate::go_regex::check_regex(pattern))
            .clone();
        match verdict {
            Ok(()) => true,
            Err(message) => {
                self.out.error(path, message);
                false
            }
        }
    }

    /// Runs a sub-validation on a fresh diagnostics list (sharing the regex cache), returning
    /// what it found so the caller can keep only errors, as Istio sometimes does.
    pub(crate) fn isolated(&mut self, f: impl FnOnce(&mut Self)) -> Diagnostics {
        let saved = core::mem::take(&mut self.out);
        f(self);
        core::mem::replace(&mut self.out, saved)
    }

    pub(crate) fn finish(self) -> Diagnostics {
        self.out
    }
}
