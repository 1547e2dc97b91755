//! The `serviceentry.*` analyzers.

use portcullis_model::ServiceEntry;

use super::labels::exports_to_all;
use super::messages::{Arg, CONFLICTING_SERVICE_ENTRY_PROTOCOL, SERVICE_ENTRY_ADDRESSES_REQUIRED};
use super::store::{Ctx, Item};

/// `serviceentry.Analyzer` (Istio's `ProtocolAddressesAnalyzer`).
pub(crate) fn addresses(ctx: &mut Ctx<'_>) {
    if ctx.config.mesh_config().dns_auto_allocates() {
        return;
    }
    for se in ctx.service_entries.clone() {
        let allocated = se
            .status
            .and_then(|s| s.get("addresses"))
            .and_then(serde_json::Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if allocated || !se.spec.addresses.is_empty() {
            continue;
        }
        for (i, port) in se.spec.ports.iter().enumerate() {
            if port.protocol.is_empty() || port.protocol.eq_ignore_ascii_case("TCP") {
                ctx.report(
                    SERVICE_ENTRY_ADDRESSES_REQUIRED,
                    &se.at(&format!("spec.ports[{i}]")),
                    &[],
                );
            }
        }
    }
}

/// `serviceentry.ConflictingServiceEntryProtocolAnalyzer`.
pub(crate) fn conflicting_protocols(ctx: &mut Ctx<'_>) {
    // (scope, host, port) → (ServiceEntry, protocol), in first-seen order.
    type Key = (String, String, u32);
    let mut keys: Vec<Key> = Vec::new();
    let mut entries: Vec<(Key, Item<'_, ServiceEntry>, String)> = Vec::new();
    for se in ctx.service_entries.clone() {
        let scopes: Vec<String> = if exports_to_all(&se.spec.export_to) {
            vec!["*".to_owned()]
        } else {
            let mut scopes = Vec::new();
            for e in &se.spec.export_to {
                let scope = if e == "." {
                    se.ns().to_owned()
                } else {
                    e.clone()
                };
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
            scopes
        };
        for scope in &scopes {
            for host in &se.spec.hosts {
                for port in &se.spec.ports {
                    let key = (scope.clone(), host.clone(), port.number);
                    if !keys.contains(&key) {
                        keys.push(key.clone());
                    }
                    entries.push((key, se, port.protocol.to_ascii_uppercase()));
                }
            }
        }
    }
    let mut reported: Vec<String> = Vec::new();
    for key in &keys {
        let involved: Vec<&(Key, Item<'_, ServiceEntry>, String)> = entries
            .iter()
            .filter(|(k, _, _)| {
                k == key || (key.0 != "*" && k.0 == "*" && k.1 == key.1 && k.2 == key.2)
            })
            .collect();
        let mut protocols: Vec<&str> = involved.iter().map(|(_, _, p)| p.as_str()).collect();
        protocols.sort_unstable();
        protocols.dedup();
        if protocols.len() < 2 {
            continue;
        }
        let mut names: Vec<String> = Vec::new();
        for (_, se, _) in &involved {
            let name = se.full_name();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for (_, se, _) in &involved {
            let name = se.full_name();
            if reported.contains(&name) {
                continue;
            }
            reported.push(name);
            ctx.report(
                CONFLICTING_SERVICE_ENTRY_PROTOCOL,
                &se.at("spec.ports"),
                &[
                    names.join(", ").into(),
                    key.1.clone().into(),
                    Arg::Int(i64::from(key.2)),
                    protocols.join(", ").into(),
                ],
            );
        }
    }
}
