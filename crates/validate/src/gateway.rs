//! Gateway validation (VALIDATION.md §2, rules G-1 … G-19, and the CRD layer K-G), plus the
//! metadata annotation checks C-M1 … C-M3 every resource runs first.

use std::collections::BTreeSet;

use portcullis_model::Gateway;
use portcullis_model::gateway::{Port, Server, ServerTlsMode, ServerTlsSettings, TlsProtocol};

use crate::common::{
    Protocol, is_dns1123_label, is_ip_address, quote, validate_ip_address,
    validate_partial_wildcard, validate_port_number, validate_unix_address,
    validate_wildcard_domain,
};
use crate::context::Checker;
use crate::{Context, Diagnostics, path};

/// Prefix of a unix-domain-socket bind or endpoint address.
const UNIX_PREFIX: &str = "unix://";
/// Annotation only AuthorizationPolicies may carry.
const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";
/// Annotation that makes the webhook reject anything.
const ALWAYS_REJECT_ANNOTATION: &str = "internal.istio.io/webhook-always-reject";
/// Internal annotations users may not set (they escalate privileges).
const INTERNAL_PARENT_ANNOTATIONS: [&str; 2] = [
    "internal.istio.io/parent-namespace",
    "internal.istio.io/parents",
];

/// The cipher suites Envoy accepts by name (Istio's `security.ValidCipherSuites`).
const VALID_CIPHER_SUITES: [&str; 15] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

/// C-M1 … C-M3: the annotations Istio refuses on any networking object, checked before the
/// spec. Returns `false` when one was found: the caller must stop there, as Istio does.
pub(crate) fn metadata_checks(c: &mut Checker<'_>, ctx: &Context) -> bool {
    let at = "metadata.annotations";
    if ctx.annotations.contains_key(DRY_RUN_ANNOTATION) {
        c.error(
            path::key(at, DRY_RUN_ANNOTATION),
            format!(
                "{}/{} has unsupported annotation {DRY_RUN_ANNOTATION}, please remove the annotation",
                ctx.namespace, ctx.name
            ),
        );
        return false;
    }
    if ctx.annotations.contains_key(ALWAYS_REJECT_ANNOTATION) {
        c.error(
            path::key(at, ALWAYS_REJECT_ANNOTATION),
            format!(
                "{} annotation found, rejecting",
                quote(ALWAYS_REJECT_ANNOTATION)
            ),
        );
        return false;
    }
    for annotation in INTERNAL_PARENT_ANNOTATIONS {
        if ctx.annotations.contains_key(annotation) {
            c.error(
                path::key(at, annotation),
                format!(
                    "{} annotation found, this may not be set by users",
                    quote(annotation)
                ),
            );
            return false;
        }
    }
    true
}

/// Validates a Gateway spec as Istio's webhook does (`ValidateGateway`): the metadata checks,
/// the name, every server, unique port names; with `ctx.crd_schema`, also the CRD's rules.
///
/// ```
/// use portcullis_model::Gateway;
/// use portcullis_validate::{Context, gateway::validate_gateway};
///
/// let gw: Gateway = serde_json::from_str(r#"{"servers": [{"hosts": ["foo"],
///     "port": {"number": 80, "name": "http", "protocol": "HTTP"}}]}"#)?;
/// let found = validate_gateway(&gw, &Context::new("default", "gw"));
/// assert!(!found.is_valid()); // short names are not allowed on gateways
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn validate_gateway(spec: &Gateway, ctx: &Context) -> Diagnostics {
    let mut c = Checker::new(ctx);
    if metadata_checks(&mut c, ctx) {
        gateway_at(&mut c, "spec", spec, ctx);
    }
    c.finish()
}

fn gateway_at(c: &mut Checker<'_>, at: &str, spec: &Gateway, ctx: &Context) {
    let semantics = ctx.gateway_semantics;
    if ctx.crd_schema {
        crd_gateway(c, at, spec);
    }
    if !is_dns1123_label(&ctx.name) && !semantics {
        c.error(
            "metadata.name",
            format!("invalid gateway name: {}", quote(&ctx.name)),
        );
    }
    let servers = path::join(at, "servers");
    if spec.servers.is_empty() {
        c.error(servers.clone(), "gateway must have at least one server");
    }
    for (i, server) in spec.servers.iter().enumerate() {
        server_at(c, &path::index(&servers, i), server, semantics);
    }
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let Some(port) = &server.port else { continue };
        let at = path::index(&servers, i);
        if !names.insert(port.name.as_str()) {
            c.error(
                path::join(&at, "port.name"),
                format!(
                    "port names in servers must be unique: duplicate name {}",
                    port.name
                ),
            );
        }
        let redirect = server.tls.as_ref().is_some_and(|t| t.https_redirect);
        if redirect && !Protocol::parse(&port.protocol).is_http() {
            c.warning(
                path::join(&at, "tls.httpsRedirect"),
                "tls.httpsRedirect should only be used with http servers",
            );
        }
    }
}

/// K-G: what the Gateway CRD's schema rejects beyond the webhook.
fn crd_gateway(c: &mut Checker<'_>, at: &str, spec: &Gateway) {
    let servers = path::join(at, "servers");
    for (i, server) in spec.servers.iter().enumerate() {
        let Some(tls) = &server.tls else { continue };
        let at = path::join(&path::index(&servers, i), "tls");
        if tls.credential_names.len() > 2 {
            c.error(
                path::join(&at, "credentialNames"),
                format!(
                    "Too many: {}: must have at most 2 items",
                    tls.credential_names.len()
                ),
            );
        }
        if tls.tls_certificates.len() > 2 {
            c.error(
                path::join(&at, "tlsCertificates"),
                format!(
                    "Too many: {}: must have at most 2 items",
                    tls.tls_certificates.len()
                ),
            );
        }
        if !tls.credential_names.is_empty() && !tls.tls_certificates.is_empty() {
            c.error(
                at.clone(),
                "only one of credentialNames or tlsCertificates can be set",
            );
        }
        if !tls.credential_name.is_empty() && !tls.credential_names.is_empty() {
            c.error(
                at.clone(),
                "only one of credentialName or credentialNames can be set",
            );
        }
    }
}

/// Validates one Gateway server (`validateServer`): hosts, port, bind, TLS options, and the
/// consistency of the port's protocol with its TLS block. Paths are relative to the server.
pub fn validate_server(server: &Server, gateway_semantics: bool) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    server_at(&mut c, "", server, gateway_semantics);
    c.finish()
}

pub(crate) fn server_at(c: &mut Checker<'_>, at: &str, server: &Server, gateway_semantics: bool) {
    let hosts = path::join(at, "hosts");
    if server.hosts.is_empty() {
        c.error(
            hosts.clone(),
            "server config must contain at least one host",
        );
    }
    for (i, host) in server.hosts.iter().enumerate() {
        let at = path::index(&hosts, i);
        for e in gateway_host_problems(host, gateway_semantics) {
            c.error(at.clone(), e);
        }
    }
    let port_diags = c.isolated(|c| port_at(c, at, server.port.as_ref(), &server.bind));
    let port_ok = !port_diags.has_errors();
    c.out.extend(port_diags);
    bind_at(c, at, server.port.as_ref(), &server.bind);
    if let Some(tls) = &server.tls {
        tls_at(c, &path::join(at, "tls"), tls);
    }
    let Some(port) = server.port.as_ref().filter(|_| port_ok) else {
        return;
    };
    let protocol = Protocol::parse(&port.protocol);
    match &server.tls {
        None if protocol.is_tls() => c.error(
            path::join(at, "tls"),
            "server must have TLS settings for HTTPS/TLS protocols",
        ),
        Some(tls) if !protocol.is_tls() => {
            let passthrough = matches!(
                tls.mode.unwrap_or_default(),
                ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
            );
            if !protocol.is_http() {
                c.error(
                    path::join(at, "tls"),
                    "server cannot have TLS settings for non HTTPS/TLS ports",
                );
            } else if !passthrough
                || !tls.ca_certificates.is_empty()
                || !tls.private_key.is_empty()
                || !tls.server_certificate.is_empty()
            {
                c.error(
                    path::join(at, "tls"),
                    "server cannot have TLS settings for plain text HTTP ports",
                );
            }
        }
        _ => {}
    }
}

/// G-7/G-8 `ValidateNamespaceSlashWildcardHostname` for a gateway host: every problem found.
fn gateway_host_problems(host: &str, gateway_semantics: bool) -> Vec<String> {
    let Some((namespace, name)) = host.split_once('/') else {
        return hostname_part_problems(host);
    };
    let mut problems = Vec::new();
    if namespace.is_empty() || name.is_empty() {
        problems.push("config namespace and dnsName in host entry cannot be empty".to_owned());
    }
    let special = namespace == "*" || namespace == "." || (namespace == "~" && gateway_semantics);
    if !special && !is_dns1123_label(namespace) {
        problems.push(format!(
            "invalid namespace value {} in gateway",
            quote(namespace)
        ));
    }
    problems.extend(hostname_part_problems(name));
    problems
}

/// G-8: the host name of a gateway host entry.
fn hostname_part_problems(host: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if host != "*" && !host.contains('.') {
        problems.push("short names (non FQDN) are not allowed".to_owned());
    }
    if let Err(e) = validate_wildcard_domain(host)
        && !is_ip_address(host)
    {
        problems.push(e.into());
    }
    if let Err(e) = validate_partial_wildcard(host) {
        problems.push(e);
    }
    problems
}

/// Validates a Gateway server's port against its bind (`validateServerPort`). Paths are
/// relative to the server (`port`, `port.number`, …).
pub fn validate_server_port(port: Option<&Port>, bind: &str) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    port_at(&mut c, "", port, bind);
    c.finish()
}

fn port_at(c: &mut Checker<'_>, at: &str, port: Option<&Port>, bind: &str) {
    let port_path = path::join(at, "port");
    let Some(port) = port else {
        c.error(port_path, "port is required");
        return;
    };
    if !Protocol::parse(&port.protocol).is_supported() {
        c.error(
            path::join(&port_path, "protocol"),
            format!(
                "invalid protocol {}, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, \
                 REDIS, MYSQL, TCP",
                quote(&port.protocol)
            ),
        );
    }
    if (port.number > 0 || !bind.starts_with(UNIX_PREFIX))
        && let Err(e) = validate_port_number(i64::from(port.number))
    {
        c.error(path::join(&port_path, "number"), e);
    }
    if port.target_port > 0 {
        c.error(
            path::join(&port_path, "targetPort"),
            "targetPort has no impact on Gateways",
        );
    }
    if port.name.is_empty() {
        c.error(
            path::join(&port_path, "name"),
            format!("port name must be set: {}", describe_port(port)),
        );
    }
}

/// A port as Go's `%v` of the proto prints it, roughly.
fn describe_port(port: &Port) -> String {
    let mut parts = Vec::new();
    if port.number != 0 {
        parts.push(format!("number:{}", port.number));
    }
    if !port.protocol.is_empty() {
        parts.push(format!("protocol:{}", quote(&port.protocol)));
    }
    if !port.name.is_empty() {
        parts.push(format!("name:{}", quote(&port.name)));
    }
    if port.target_port != 0 {
        parts.push(format!("target_port:{}", port.target_port));
    }
    parts.join(" ")
}

/// G-10 `validateServerBind`.
fn bind_at(c: &mut Checker<'_>, at: &str, port: Option<&Port>, bind: &str) {
    let bind_path = path::join(at, "bind");
    if let Some(socket) = bind.strip_prefix(UNIX_PREFIX) {
        if let Err(e) = validate_unix_address(socket) {
            c.error(bind_path, e);
        }
        if let Some(port) = port.filter(|p| p.number != 0) {
            c.error(
                path::join(at, "port.number"),
                format!(
                    "port number must be 0 for unix domain socket: {}",
                    describe_port(port)
                ),
            );
        }
    } else if !bind.is_empty()
        && let Err(e) = validate_ip_address(bind)
    {
        c.error(bind_path, e);
    }
}

/// Validates a Gateway server's TLS settings (`validateTLSOptions`). Paths are relative to the
/// TLS block.
pub fn validate_server_tls(tls: &ServerTlsSettings) -> Diagnostics {
    let ctx = Context::default();
    let mut c = Checker::new(&ctx);
    tls_at(&mut c, "", tls);
    c.finish()
}

/// Istio's `security.IsValidCipherSuite`.
fn is_valid_cipher_suite(suite: &str) -> bool {
    let Some(&first) = suite.as_bytes().first() else {
        return true;
    };
    if suite == "ALL" {
        return true;
    }
    // Go converts the first byte to a rune: Latin-1 for bytes above 0x7F.
    if !char::from(first).is_alphanumeric() {
        return true;
    }
    VALID_CIPHER_SUITES.contains(&suite)
}

/// Go's `%v` of a sorted string list: `[a b c]`.
fn go_list(items: &BTreeSet<&str>) -> String {
    let joined: Vec<&str> = items.iter().copied().collect();
    format!("[{}]", joined.join(" "))
}

fn tls_at(c: &mut Checker<'_>, at: &str, tls: &ServerTlsSettings) {
    let field = |name: &str| path::join(at, name);
    let mode = tls.mode.unwrap_or_default();
    if matches!(
        tls.min_protocol_version,
        Some(TlsProtocol::TlsV1_0 | TlsProtocol::TlsV1_1)
    ) && tls.cipher_suites.is_empty()
    {
        c.warning(
            field("minProtocolVersion"),
            "TLS version below TLSV1_2 require setting compatible ciphers as by default they no \
             longer include compatible ciphers.",
        );
    }

    let mut invalid = BTreeSet::new();
    let mut valid = BTreeSet::new();
    let mut duplicate = BTreeSet::new();
    for suite in &tls.cipher_suites {
        if !is_valid_cipher_suite(suite) {
            invalid.insert(suite.as_str());
        } else if !valid.insert(suite.as_str()) {
            duplicate.insert(suite.as_str());
        }
    }
    if !invalid.is_empty() {
        c.warning(
            field("cipherSuites"),
            format!("ignoring invalid cipher suites: {}", go_list(&invalid)),
        );
    }
    if !duplicate.is_empty() {
        c.warning(
            field("cipherSuites"),
            format!("ignoring duplicate cipher suites: {}", go_list(&duplicate)),
        );
    }

    if mode == ServerTlsMode::IstioMutual {
        let forbidden = [
            (
                !tls.server_certificate.is_empty(),
                "serverCertificate",
                "server certificate",
            ),
            (!tls.private_key.is_empty(), "privateKey", "private key"),
            (
                !tls.ca_certificates.is_empty(),
                "caCertificates",
                "CA bundle",
            ),
            (
                !tls.tls_certificates.is_empty(),
                "tlsCertificates",
                "tlsCertificates",
            ),
            (
                !tls.credential_name.is_empty(),
                "credentialName",
                "credentialName",
            ),
            (
                !tls.credential_names.is_empty(),
                "credentialNames",
                "credentialNames",
            ),
        ];
        for (set, name, what) in forbidden {
            if set {
                c.error(
                    field(name),
                    format!("ISTIO_MUTUAL TLS cannot have associated {what}"),
                );
            }
        }
        return;
    }

    let has_any_cert = !tls.ca_crl.is_empty()
        || !tls.server_certificate.is_empty()
        || !tls.private_key.is_empty()
        || !tls.ca_certificates.is_empty()
        || !tls.tls_certificates.is_empty()
        || !tls.credential_name.is_empty()
        || !tls.credential_names.is_empty();
    if matches!(
        mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
    ) && has_any_cert
    {
        c.warning(
            at,
            format!(
                "{} mode does not use certificates, they will be ignored",
                mode.as_str()
            ),
        );
    }

    let sources = [
        !tls.server_certificate.is_empty() && !tls.private_key.is_empty(),
        !tls.credential_name.is_empty(),
        !tls.credential_names.is_empty(),
        !tls.tls_certificates.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        c.error(
            at,
            "only one of credential_name, credential_names, server_certificate/private_key, \
             tls_certificates should be specified",
        );
    }

    let terminating = matches!(
        mode,
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    let has_credential = !tls.credential_name.is_empty() || !tls.credential_names.is_empty();
    if terminating && has_credential {
        return;
    }
    if terminating {
        let prefix = if mode == ServerTlsMode::Simple {
            "SIMPLE TLS"
        } else {
            if tls.ca_certificates.is_empty() {
                c.error(
                    field("caCertificates"),
                    "MUTUAL TLS requires a client CA bundle",
                );
            }
            "MUTUAL TLS"
        };
        if tls.tls_certificates.len() > 2 {
            c.warning(
                field("tlsCertificates"),
                format!("{prefix} can support up to 2 server certificates"),
            );
        }
        if tls.tls_certificates.is_empty() {
            if tls.server_certificate.is_empty() {
                c.error(
                    field("serverCertificate"),
                    format!("{prefix} requires a server certificate"),
                );
            }
            if tls.private_key.is_empty() {
                c.error(
                    field("privateKey"),
                    format!("{prefix} requires a private key"),
                );
            }
        }
        for (i, cert) in tls.tls_certificates.iter().enumerate() {
            let cert_at = path::index(&field("tlsCertificates"), i);
            if cert.server_certificate.is_empty() {
                c.error(
                    path::join(&cert_at, "serverCertificate"),
                    format!("{prefix} requires a server certificate"),
                );
            }
            if cert.private_key.is_empty() {
                c.error(
                    path::join(&cert_at, "privateKey"),
                    format!("{prefix} requires a private key"),
                );
            }
        }
    }
    if !tls.ca_crl.is_empty() {
        if !tls.credential_name.is_empty() {
            c.error(
                field("caCrl"),
                "CRL is not supported with credentialName. CRL has to be specified in the \
                 credential",
            );
        }
        if mode == ServerTlsMode::Simple {
            c.error(field("caCrl"), "CRL is not supported with SIMPLE TLS");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn gateway(json: &str) -> Gateway {
        serde_json::from_str(json).unwrap()
    }

    fn tls(json: &str) -> ServerTlsSettings {
        serde_json::from_str(json).unwrap()
    }

    fn server(json: &str) -> Server {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn metadata_annotations_stop_validation() {
        let mut ctx = Context::new("ns", "gw");
        ctx.annotations
            .insert("internal.istio.io/parents".into(), "x".into());
        let found = validate_gateway(&Gateway::default(), &ctx);
        assert_eq!(found.len(), 1);
        assert!(found.to_string().contains("may not be set by users"));
    }

    #[test]
    fn port_names_must_be_unique_even_when_empty() {
        let gw = gateway(
            r#"{"servers": [
            {"hosts": ["a.example.com"], "port": {"number": 80, "protocol": "HTTP"}},
            {"hosts": ["b.example.com"], "port": {"number": 81, "protocol": "HTTP"}}]}"#,
        );
        let found = validate_gateway(&gw, &Context::new("ns", "gw"));
        assert!(
            found
                .to_string()
                .contains("port names in servers must be unique")
        );
    }

    #[test]
    fn gateway_hosts_need_a_dot_but_accept_ip_literals() {
        let ok = r#"{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["#;
        for host in [
            "\"1.1.1.1\"",
            "\"*/*\"",
            "\"./foo.bar.com\"",
            "\"::ffff:1.2.3.4\"",
        ] {
            let s = server(&format!("{ok}{host}]}}"));
            assert!(validate_server(&s, false).is_valid(), "{host}");
        }
        for host in [
            "\"foo\"",
            "\"::1\"",
            "\"*foo.com\"",
            "\"~/foo.com\"",
            "\"/foo.com\"",
        ] {
            let s = server(&format!("{ok}{host}]}}"));
            assert!(!validate_server(&s, false).is_valid(), "{host}");
        }
        let s = server(&format!("{ok}\"~/foo.com\"]}}"));
        assert!(validate_server(&s, true).is_valid());
    }

    #[test]
    fn tls_consistency_is_checked_only_when_the_port_is_valid() {
        let s = server(r#"{"hosts": ["a.b.c"], "port": {"number": 443, "protocol": "HTTPS"}}"#);
        let found = validate_server(&s, false);
        assert!(!found.to_string().contains("must have TLS settings"));
        let s = server(
            r#"{"hosts": ["a.b.c"], "port": {"number": 443, "name": "h", "protocol": "HTTPS"}}"#,
        );
        assert!(
            validate_server(&s, false)
                .to_string()
                .contains("must have TLS settings")
        );
    }

    #[test]
    fn unix_bind_allows_port_zero() {
        let port: Port = serde_json::from_str(r#"{"name": "http", "protocol": "HTTP"}"#).unwrap();
        assert!(validate_server_port(Some(&port), "unix:///sock").is_valid());
        assert!(!validate_server_port(Some(&port), "").is_valid());
        assert!(!validate_server_port(None, "").is_valid());
    }

    #[test]
    fn credential_name_short_circuits_file_requirements() {
        assert!(
            validate_server_tls(&tls(r#"{"mode": "MUTUAL", "credentialName": "c"}"#)).is_valid()
        );
        let found = validate_server_tls(&tls(
            r#"{"mode": "MUTUAL", "serverCertificate": "a", "privateKey": "b"}"#,
        ));
        assert!(
            found
                .to_string()
                .contains("MUTUAL TLS requires a client CA bundle")
        );
        let found = validate_server_tls(&tls(
            r#"{"mode": "SIMPLE", "serverCertificate": "a", "privateKey": "b", "caCrl": "c"}"#,
        ));
        assert!(
            found
                .to_string()
                .contains("CRL is not supported with SIMPLE TLS")
        );
    }

    #[test]
    fn passthrough_certificates_only_warn_and_istio_mutual_forbids_them() {
        let found = validate_server_tls(&tls(
            r#"{"mode": "PASSTHROUGH", "credentialName": "c", "caCrl": "x"}"#,
        ));
        assert!(found.has_errors());
        assert!(
            found
                .to_string()
                .contains("PASSTHROUGH mode does not use certificates")
        );
        let found = validate_server_tls(&tls(
            r#"{"mode": "AUTO_PASSTHROUGH", "serverCertificate": "a"}"#,
        ));
        assert!(found.is_valid() && found.has_warnings());
        let found = validate_server_tls(&tls(
            r#"{"mode": "ISTIO_MUTUAL", "caCrl": "x", "privateKey": "k"}"#,
        ));
        assert_eq!(found.errors().count(), 1);
    }

    #[test]
    fn one_certificate_source_counts_cert_and_key_as_a_pair() {
        let found = validate_server_tls(&tls(
            r#"{"mode": "SIMPLE", "serverCertificate": "a", "credentialName": "c"}"#,
        ));
        assert!(found.is_valid());
        let found = validate_server_tls(&tls(
            r#"{"mode": "SIMPLE", "credentialName": "c", "tlsCertificates": [{"serverCertificate": "a", "privateKey": "b"}]}"#,
        ));
        assert!(found.to_string().contains("only one of credential_name"));
    }

    #[test]
    fn cipher_suites_warn_sorted_and_never_fail() {
        let found = validate_server_tls(&tls(
            r#"{"mode": "SIMPLE", "credentialName": "c", "cipherSuites": ["b-bad", "a-bad", "-X", "AES128-SHA", "AES128-SHA"]}"#,
        ));
        assert!(found.is_valid());
        let text = found.to_string();
        assert!(
            text.contains("ignoring invalid cipher suites: [a-bad b-bad]"),
            "{text}"
        );
        assert!(
            text.contains("ignoring duplicate cipher suites: [AES128-SHA]"),
            "{text}"
        );
    }
}
