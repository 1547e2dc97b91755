//! `deprecation.DeprecationAnalyzer` (Istio's `FieldAnalyzer`).

use serde_json::Value;

use super::messages::DEPRECATED;
use super::store::Ctx;

/// Istio CRDs that were removed.
const REMOVED_CRDS: &[(&str, &str)] = &[
    ("rbac.istio.io", "ClusterRbacConfig"),
    ("rbac.istio.io", "RbacConfig"),
    ("rbac.istio.io", "ServiceRole"),
    ("rbac.istio.io", "ServiceRoleBinding"),
];

/// `deprecation.DeprecationAnalyzer`.
pub(crate) fn deprecations(ctx: &mut Ctx<'_>) {
    for vs in ctx.virtual_services.clone() {
        for (i, rule) in vs.spec.http.iter().enumerate() {
            let delay = rule.fault.as_ref().and_then(|f| f.delay.as_ref());
            if delay.is_some_and(|d| d.percent > 0) {
                ctx.report(
                    DEPRECATED,
                    &vs.at(&format!("spec.http[{i}].fault.delay.percent")),
                    &["HTTPRoute.fault.delay.percent is deprecated; use HTTPRoute.fault.delay.percentage".into()],
                );
            }
        }
    }
    for sidecar in ctx.raw_of("Sidecar", Some("networking.istio.io")) {
        let egress_proxy = sidecar
            .value()
            .get("spec")
            .and_then(|s| s.get("outboundTrafficPolicy"))
            .and_then(|o| o.get("egressProxy"))
            .is_some_and(|e| !e.is_null());
        if egress_proxy {
            ctx.report(
                DEPRECATED,
                &sidecar.target(),
                &["OutboundTrafficPolicy.EgressProxy ignored".into()],
            );
        }
    }
    for crd in ctx.raw_of("CustomResourceDefinition", Some("apiextensions.k8s.io")) {
        let spec = crd.value().get("spec");
        let group = spec.and_then(|s| s.get("group")).and_then(Value::as_str);
        let kind = spec
            .and_then(|s| s.get("names"))
            .and_then(|n| n.get("kind"))
            .and_then(Value::as_str);
        for (g, k) in REMOVED_CRDS {
            if group == Some(*g) && kind == Some(*k) {
                ctx.report(
                    DEPRECATED,
                    &crd.target(),
                    &[format!("Custom resource type {g} {k} is removed").into()],
                );
            }
        }
    }
}
