//! `conditions.ConditionAnalyzer`: negative status conditions.

use serde_json::Value;

use super::messages::NEGATIVE_CONDITION_STATUS;
use super::store::{Ctx, Target};

/// The condition types reported when `False`, by (API group, kind).
fn negative_types(group: &str, kind: &str) -> &'static [&'static str] {
    match (group, kind) {
        ("", "Service") | ("networking.istio.io", "ServiceEntry") => &["istio.io/WaypointBound"],
        ("security.istio.io", "AuthorizationPolicy") => &["ZtunnelAccepted", "WaypointAccepted"],
        ("gateway.networking.k8s.io", "Gateway" | "HTTPRoute" | "GRPCRoute") => {
            &["Accepted", "Programmed", "ResolvedRefs"]
        }
        _ => &[],
    }
}

/// The conditions of a status: `status.conditions`, or for routes those of every parent.
fn conditions<'v>(kind: &str, status: &'v Value) -> Vec<&'v Value> {
    if matches!(kind, "HTTPRoute" | "GRPCRoute") {
        return status
            .get("parents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("conditions").and_then(Value::as_array))
            .flatten()
            .collect();
    }
    status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect()
}

fn field<'v>(condition: &'v Value, key: &str) -> &'v str {
    condition.get(key).and_then(Value::as_str).unwrap_or("")
}

fn check<'a>(
    ctx: &mut Ctx<'a>,
    group: &str,
    kind: &str,
    status: Option<&Value>,
    target: &Target<'a>,
) {
    let Some(status) = status else { return };
    let negative = negative_types(group, kind);
    for condition in conditions(kind, status) {
        let ty = field(condition, "type");
        let reason = field(condition, "reason");
        let report = (negative.contains(&ty) && field(condition, "status") == "False")
            || (kind == "AuthorizationPolicy"
                && ty == "WaypointAccepted"
                && reason == "PartiallyInvalid");
        if report {
            ctx.report(
                NEGATIVE_CONDITION_STATUS,
                target,
                &[ty.into(), reason.into(), field(condition, "message").into()],
            );
        }
    }
}

/// `conditions.ConditionAnalyzer`.
pub(crate) fn negative_conditions(ctx: &mut Ctx<'_>) {
    for svc in ctx.services.clone() {
        check(ctx, "", "Service", svc.status, &svc.target());
    }
    for se in ctx.service_entries.clone() {
        check(
            ctx,
            "networking.istio.io",
            "ServiceEntry",
            se.status,
            &se.target(),
        );
    }
    for raw in ctx.skipped.clone() {
        check(
            ctx,
            raw.group(),
            &raw.doc.kind,
            raw.value().get("status"),
            &raw.target(),
        );
    }
}
