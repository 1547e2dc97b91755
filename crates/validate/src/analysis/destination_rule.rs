//! The `destinationrule.*` analyzers.

use std::collections::BTreeMap;

use portcullis_model::destination_rule::{ClientTlsMode, ClientTlsSettings};

use super::labels::selects;
use super::messages::{
    DESTINATION_RULE_SUBSET_NOT_SELECT_PODS, NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL,
    NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL, UNKNOWN_DESTINATION_RULE_HOST,
};
use super::registry::Registry;
use super::store::Ctx;

/// The TLS mode when the settings originate TLS without verifying the server, else `None`.
fn unverified_mode(tls: &ClientTlsSettings, has_workload_selector: bool) -> Option<ClientTlsMode> {
    let mode = tls.mode?;
    if !matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual) {
        return None;
    }
    if !tls.ca_certificates.is_empty() {
        return None;
    }
    if !tls.credential_name.is_empty() && has_workload_selector {
        return None;
    }
    Some(mode)
}

/// `destinationrule.CaCertificateAnalyzer`.
pub(crate) fn ca_certificates(ctx: &mut Ctx<'_>) {
    for dr in ctx.destination_rules.clone() {
        let Some(policy) = &dr.spec.traffic_policy else {
            continue;
        };
        let has_selector = dr.spec.workload_selector.is_some();
        if let Some(mode) = policy
            .tls
            .as_ref()
            .and_then(|tls| unverified_mode(tls, has_selector))
        {
            ctx.report(
                NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL,
                &dr.at("spec.trafficPolicy.tls.mode"),
                &[
                    dr.name().into(),
                    dr.ns().into(),
                    mode.as_str().into(),
                    dr.spec.host.clone().into(),
                ],
            );
        }
        for (i, port_policy) in policy.port_level_settings.iter().enumerate() {
            let Some(mode) = port_policy
                .tls
                .as_ref()
                .and_then(|tls| unverified_mode(tls, has_selector))
            else {
                continue;
            };
            let port = port_policy.port.as_ref().map_or(0, |p| p.number);
            ctx.report(
                NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL,
                &dr.at(&format!(
                    "spec.trafficPolicy.portLevelSettings[{i}].tls.mode"
                )),
                &[
                    dr.name().into(),
                    dr.ns().into(),
                    mode.as_str().into(),
                    dr.spec.host.clone().into(),
                    port.to_string().into(),
                ],
            );
        }
    }
}

/// Node label keys whose values pilot copies onto the labels of the node's pods.
const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// `destinationrule.SubsetSelectPodAnalyzer`.
pub(crate) fn subsets_select_pods(ctx: &mut Ctx<'_>) {
    let registry = Registry::build(ctx);
    let nodes: BTreeMap<String, BTreeMap<String, String>> = ctx
        .raw_of("Node", None)
        .iter()
        .map(|n| (n.name().to_owned(), n.labels()))
        .collect();
    // Pod labels as pilot sees them: the pod's own, plus its node's topology and host name.
    let pods: Vec<BTreeMap<String, String>> = ctx
        .pods
        .iter()
        .map(|pod| {
            let mut labels = pod.meta.labels.clone();
            let node_name = pod
                .spec
                .get("nodeName")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            if let Some(node) = nodes.get(node_name) {
                for key in TOPOLOGY_LABELS {
                    if let Some(value) = node.get(*key).filter(|v| !v.is_empty()) {
                        labels
                            .entry((*key).to_owned())
                            .or_insert_with(|| value.clone());
                    }
                }
                labels
                    .entry("kubernetes.io/hostname".to_owned())
                    .or_insert_with(|| node_name.to_owned());
            }
            labels
        })
        .collect();
    for dr in ctx.destination_rules.clone() {
        let Some(service) = registry.lookup(dr.ns(), &dr.spec.export_to, &dr.spec.host) else {
            ctx.report(
                UNKNOWN_DESTINATION_RULE_HOST,
                &dr.at("spec.host"),
                &[dr.spec.host.clone().into()],
            );
            continue;
        };
        let base = service.workload_labels.cloned().unwrap_or_default();
        for (i, subset) in dr.spec.subsets.iter().enumerate() {
            let mut selector = base.clone();
            selector.extend(subset.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            if !pods.iter().any(|labels| selects(&selector, labels)) {
                ctx.report(
                    DESTINATION_RULE_SUBSET_NOT_SELECT_PODS,
                    &dr.at(&format!("spec.subsets[{i}]")),
                    &[subset.name.clone().into()],
                );
            }
        }
    }
}
