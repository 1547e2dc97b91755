//! The `gateway.*` analyzers.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use portcullis_model::Gateway;
use portcullis_model::gateway::ServerTlsSettings;
use portcullis_model::kube::{IntOrString, Secret};

use super::labels::{selector_string, selects};
use super::messages::{
    Arg, CONFLICTING_GATEWAYS, GATEWAY_DUPLICATE_CERTIFICATE, GATEWAY_PORT_NOT_DEFINED_ON_SERVICE,
    INVALID_GATEWAY_CREDENTIAL, REFERENCED_RESOURCE_NOT_FOUND,
};
use super::store::{Ctx, Item};

/// The pods (in any namespace) a selector selects.
fn selected_pods<'a>(
    ctx: &Ctx<'a>,
    selector: &BTreeMap<String, String>,
) -> Vec<Item<'a, serde_json::Value>> {
    ctx.pods
        .iter()
        .filter(|p| selects(selector, &p.meta.labels))
        .copied()
        .collect()
}

/// `gateway.IngressGatewayPortAnalyzer`.
pub(crate) fn ingress_gateway_port(ctx: &mut Ctx<'_>) {
    for gw in ctx.gateways.clone() {
        let selector = selector_string(&gw.spec.selector);
        let pods = selected_pods(ctx, &gw.spec.selector);
        if pods.is_empty() {
            ctx.report(
                REFERENCED_RESOURCE_NOT_FOUND,
                &gw.at("spec.selector"),
                &["selector".into(), selector.into()],
            );
            continue;
        }
        let mut target_ports = BTreeSet::new();
        let mut service_ports = BTreeSet::new();
        for pod in &pods {
            for svc in ctx.services.iter().filter(|s| s.ns() == pod.ns()) {
                if !selects(&svc.spec.selector, &pod.meta.labels) {
                    continue;
                }
                for port in &svc.spec.ports {
                    if !(port.protocol.is_empty() || port.protocol == "TCP") {
                        continue;
                    }
                    let number = i64::from(port.port);
                    service_ports.insert(number);
                    match &port.target_port {
                        Some(IntOrString::Int(target)) => {
                            target_ports.insert(*target);
                        }
                        _ => {
                            target_ports.insert(number);
                        }
                    }
                }
            }
        }
        for (i, server) in gw.spec.servers.iter().enumerate() {
            let Some(port) = &server.port else { continue };
            let number = i64::from(port.number);
            if !target_ports.contains(&number) && !service_ports.contains(&number) {
                ctx.report(
                    GATEWAY_PORT_NOT_DEFINED_ON_SERVICE,
                    &gw.at(&format!("spec.servers[{i}].port")),
                    &[Arg::Int(number), selector.clone().into()],
                );
            }
        }
    }
}

/// One server of a Gateway, as the conflicting-gateway index holds it.
struct Indexed<'a> {
    gateway: String,
    selector: &'a BTreeMap<String, String>,
    selector_string: String,
    port: u32,
    hosts: Vec<(&'a str, &'a str)>,
}

/// Whether two Gateway selectors put them on the same workload: identical selector strings,
/// or one string containing the other and a pod selected by both.
fn same_workload(
    ctx: &Ctx<'_>,
    a: (&str, &BTreeMap<String, String>),
    b: (&str, &BTreeMap<String, String>),
) -> bool {
    if a.0 == b.0 {
        return true;
    }
    if !(a.0.contains(b.0) || b.0.contains(a.0)) {
        return false;
    }
    ctx.pods
        .iter()
        .any(|p| selects(a.1, &p.meta.labels) && selects(b.1, &p.meta.labels))
}

/// `gateway.ConflictingGatewayAnalyzer`.
pub(crate) fn conflicting_gateways(ctx: &mut Ctx<'_>) {
    let gateways = ctx.gateways.clone();
    let mut index: Vec<Indexed<'_>> = Vec::new();
    for gw in &gateways {
        for server in &gw.spec.servers {
            index.push(Indexed {
                gateway: gw.full_name(),
                selector: &gw.spec.selector,
                selector_string: selector_string(&gw.spec.selector),
                port: server.port.as_ref().map_or(0, |p| p.number),
                hosts: server
                    .hosts
                    .iter()
                    .map(|h| (h.as_str(), server.bind.as_str()))
                    .collect(),
            });
        }
    }
    for gw in &gateways {
        let name = gw.full_name();
        let selector = selector_string(&gw.spec.selector);
        if !selector.is_empty() && !index.iter().any(|e| e.selector_string.contains(&selector)) {
            ctx.report(
                REFERENCED_RESOURCE_NOT_FOUND,
                &gw.at("spec.selector"),
                &["selector".into(), selector.into()],
            );
            continue;
        }
        for (i, server) in gw.spec.servers.iter().enumerate() {
            let port = server.port.as_ref().map_or(0, |p| p.number);
            let mut others: Vec<String> = Vec::new();
            for entry in &index {
                if entry.gateway == name
                    || entry.port != port
                    || !same_workload(
                        ctx,
                        (&selector, &gw.spec.selector),
                        (&entry.selector_string, entry.selector),
                    )
                {
                    continue;
                }
                let clash = server
                    .hosts
                    .iter()
                    .any(|h| entry.hosts.contains(&(h.as_str(), server.bind.as_str())));
                if clash && !others.contains(&entry.gateway) {
                    others.push(entry.gateway.clone());
                }
            }
            if !others.is_empty() {
                ctx.report(
                    CONFLICTING_GATEWAYS,
                    &gw.at(&format!("spec.servers[{i}]")),
                    &[
                        others.join(",").into(),
                        selector.clone().into(),
                        port.to_string().into(),
                        server.hosts.join(",").into(),
                    ],
                );
            }
        }
    }
}

/// Whether two servers' TLS settings serve the same certificate.
fn same_certificate(a: &ServerTlsSettings, b: &ServerTlsSettings) -> bool {
    if !a.credential_name.is_empty() && !b.credential_name.is_empty() {
        return a.credential_name == b.credential_name;
    }
    a.credential_name.is_empty()
        && b.credential_name.is_empty()
        && !a.server_certificate.is_empty()
        && a.server_certificate == b.server_certificate
        && !a.private_key.is_empty()
        && a.private_key == b.private_key
}

/// `gateway.CertificateAnalyzer`.
pub(crate) fn duplicate_certificates(ctx: &mut Ctx<'_>) {
    let gateways = ctx.gateways.clone();
    for current in &gateways {
        let name = current.full_name();
        for other in &gateways {
            let other_name = other.full_name();
            if other_name == name || !selects(&current.spec.selector, &other.spec.selector) {
                continue;
            }
            for server in &current.spec.servers {
                for other_server in &other.spec.servers {
                    let (Some(a), Some(b)) = (&server.tls, &other_server.tls) else {
                        continue;
                    };
                    if same_certificate(a, b) {
                        ctx.report(
                            GATEWAY_DUPLICATE_CERTIFICATE,
                            &current.at("metadata.name"),
                            &[Arg::List(vec![name.clone(), other_name.clone()])],
                        );
                    }
                }
            }
        }
    }
}

/// `gateway.SecretAnalyzer`.
pub(crate) fn secrets(ctx: &mut Ctx<'_>) {
    let now = ctx.config.now();
    for gw in ctx.gateways.clone() {
        let Some(pod) = selected_pods(ctx, &gw.spec.selector).first().copied() else {
            ctx.report(
                REFERENCED_RESOURCE_NOT_FOUND,
                &gw.at("spec.selector"),
                &["selector".into(), selector_string(&gw.spec.selector).into()],
            );
            continue;
        };
        check_credentials(ctx, &gw, pod.ns(), now);
    }
}

fn check_credentials<'a>(ctx: &mut Ctx<'a>, gw: &Item<'a, Gateway>, namespace: &str, now: i64) {
    for (i, server) in gw.spec.servers.iter().enumerate() {
        let Some(tls) = &server.tls else { continue };
        let name = tls.credential_name.as_str();
        if name.is_empty() {
            continue;
        }
        let (ns, short) = name.split_once('/').unwrap_or((namespace, name));
        let secret = ctx
            .secrets
            .iter()
            .find(|(_, s)| s.metadata.namespace == ns && s.metadata.name == short)
            .map(|(_, s)| *s);
        let path = format!("spec.servers[{i}].tls.credentialName");
        match secret {
            None => ctx.report(
                REFERENCED_RESOURCE_NOT_FOUND,
                &gw.at(&path),
                &["credentialName".into(), name.into()],
            ),
            Some(secret) if !credential_usable(secret, now) => ctx.report(
                INVALID_GATEWAY_CREDENTIAL,
                &gw.at(&path),
                &[gw.name().into(), gw.ns().into()],
            ),
            Some(_) => {}
        }
    }
}

/// A Secret value by key, decoded (`data` is base64, `stringData` plain).
fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = secret.data.get(key) {
        let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .ok();
    }
    secret.string_data.get(key).map(|v| v.as_bytes().to_vec())
}

/// Whether a gateway credential Secret holds a certificate and key, the certificate being a
/// PEM X.509 certificate valid at `now`.
fn credential_usable(secret: &Secret, now: i64) -> bool {
    let pair = |cert: &str, key: &str| {
        let cert = secret_value(secret, cert).filter(|v| !v.is_empty())?;
        secret_value(secret, key).filter(|v| !v.is_empty())?;
        Some(cert)
    };
    let Some(cert) = pair("cert", "key").or_else(|| pair("tls.crt", "tls.key")) else {
        return false;
    };
    certificate_valid_at(&cert, now)
}

/// Whether the first PEM certificate parses and `now` is within its validity.
#[cfg(feature = "x509")]
fn certificate_valid_at(pem: &[u8], now: i64) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(pem) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let validity = cert.validity();
    validity.not_before.timestamp() <= now && now <= validity.not_after.timestamp()
}

/// Without the `x509` feature the certificate is not parsed: a Secret holding a certificate
/// and a key counts as usable.
#[cfg(not(feature = "x509"))]
fn certificate_valid_at(_pem: &[u8], _now: i64) -> bool {
    true
}
