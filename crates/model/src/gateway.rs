//! `Gateway`: a load balancer at the edge of the mesh.
//!
//! A gateway names the proxies it configures (`selector`) and the listeners they open
//! (`servers`): a port with its protocol, the hosts served there, and optional TLS settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{is_default, proto_enum};

/// The spec of a `Gateway`: the servers a set of gateway proxies expose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    /// The listeners the selected proxies open.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub servers: Vec<Server>,
    /// Labels of the gateway workloads (in the gateway's namespace) this configuration applies
    /// to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub selector: BTreeMap<String, String>,
}

/// One listener of a gateway: a port, the hosts it serves and how it terminates TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// The port to listen on. Required by Istio; `None` when the document omits it, so that
    /// validation can report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// The IP address or Unix domain socket (`unix:///path`, `unix://@name`) to bind to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub bind: String,
    /// The hosts served, as `[namespace/]dnsName`, the DNS name possibly with a leading `*`
    /// wildcard.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hosts: Vec<String>,
    /// TLS settings of this listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    /// An optional name for the server, unique among the gateway's servers when set.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The loopback address or Unix domain socket (`127.0.0.1:PORT`, `unix:///path`) that
    /// traffic is forwarded to (sidecar ingress listeners).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "default_endpoint",
        skip_serializing_if = "String::is_empty"
    )]
    pub default_endpoint: String,
}

/// A port a server listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// The port number. Kept as `u32`, as in the proto, so validation can reject values above
    /// 65535.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "is_default"
    )]
    pub number: u32,
    /// The protocol as written (`HTTP`, `HTTPS`, `GRPC`, `HTTP2`, `MONGO`, `TCP`, `TLS`, …);
    /// Istio compares it case-insensitively, and validation parses it.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol: String,
    /// The port's label.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Deprecated: the port on the workload the traffic is sent to.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "target_port",
        skip_serializing_if = "is_default"
    )]
    pub target_port: u32,
}

proto_enum! {
    /// How a server handles TLS (Istio's `ServerTLSSettings.TLSmode`).
    pub enum ServerTlsMode {
        /// Do not terminate TLS: route on the SNI the client presents. The zero value.
        Passthrough = ("PASSTHROUGH", 0),
        /// Terminate TLS with a server certificate.
        Simple = ("SIMPLE", 1),
        /// Terminate TLS and require a client certificate.
        Mutual = ("MUTUAL", 2),
        /// Pass TLS through, routing on the destination Istio encodes in the SNI (no
        /// VirtualService needed).
        AutoPassthrough = ("AUTO_PASSTHROUGH", 3),
        /// Mutual TLS with the certificates Istio issues to the gateway workload.
        IstioMutual = ("ISTIO_MUTUAL", 4),
        /// Terminate TLS and verify a client certificate when one is presented.
        OptionalMutual = ("OPTIONAL_MUTUAL", 5),
    }
}

proto_enum! {
    /// A TLS protocol version bound (Istio's `ServerTLSSettings.TLSProtocol`).
    pub enum TlsProtocol {
        /// The proxy's default. The zero value.
        TlsAuto = ("TLS_AUTO", 0),
        /// TLS 1.0.
        TlsV1_0 = ("TLSV1_0", 1),
        /// TLS 1.1.
        TlsV1_1 = ("TLSV1_1", 2),
        /// TLS 1.2.
        TlsV1_2 = ("TLSV1_2", 3),
        /// TLS 1.3.
        TlsV1_3 = ("TLSV1_3", 4),
    }
}

/// The TLS settings of a server (Istio's `ServerTLSSettings`).
///
/// The certificate can come from files (`serverCertificate`/`privateKey`), from one or two
/// Kubernetes secrets (`credentialName`, `credentialNames`) or from a list of file pairs
/// (`tlsCertificates`); validation checks that only one source is used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Answer plain HTTP requests with a 301 redirect to HTTPS.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "https_redirect",
        skip_serializing_if = "is_default"
    )]
    pub https_redirect: bool,
    /// The TLS mode; unset means `PASSTHROUGH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
    /// Path of the server certificate file.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "server_certificate",
        skip_serializing_if = "String::is_empty"
    )]
    pub server_certificate: String,
    /// Path of the server private key file.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "private_key",
        skip_serializing_if = "String::is_empty"
    )]
    pub private_key: String,
    /// Path of the CA certificates that verify client certificates (mutual modes).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ca_certificates",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_certificates: String,
    /// Path of a certificate revocation list used when verifying client certificates.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ca_crl",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_crl: String,
    /// Name of the secret holding the certificate, key and (for mutual TLS) CA certificates.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "credential_name",
        skip_serializing_if = "String::is_empty"
    )]
    pub credential_name: String,
    /// Like `credentialName`, for one or two certificates (e.g. RSA and ECDSA).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "credential_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credential_names: Vec<String>,
    /// One or two certificate/key file sets (e.g. RSA and ECDSA).
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "tls_certificates",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tls_certificates: Vec<TlsCertificate>,
    /// Name of the secret or config map holding the CA certificates for mutual TLS; takes
    /// precedence over CA certificates in the credential secret.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ca_cert_credential_name",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_cert_credential_name: String,
    /// Subject alternative names accepted in client certificates.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "subject_alt_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_alt_names: Vec<String>,
    /// Base64 SHA-256 hashes of the SPKIs of accepted client certificates.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "verify_certificate_spki",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verify_certificate_spki: Vec<String>,
    /// Hex SHA-256 hashes (plain or colon-separated) of accepted client certificates.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "verify_certificate_hash",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub verify_certificate_hash: Vec<String>,
    /// The lowest TLS version accepted.
    #[serde(
        default,
        alias = "min_protocol_version",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_protocol_version: Option<TlsProtocol>,
    /// The highest TLS version accepted.
    #[serde(
        default,
        alias = "max_protocol_version",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_protocol_version: Option<TlsProtocol>,
    /// The cipher suites offered, instead of the proxy's defaults.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "cipher_suites",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cipher_suites: Vec<String>,
    /// The ECDH curves offered, instead of the proxy's defaults.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ecdh_curves",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ecdh_curves: Vec<String>,
    /// Verify client certificates but let connections through when verification fails
    /// (a `BoolValue`: unset and `false` differ).
    #[serde(
        default,
        alias = "insecure_skip_verify",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_verify: Option<bool>,
}

/// One server certificate given as files (Istio's `ServerTLSSettings.TLSCertificate`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsCertificate {
    /// Path of the server certificate file.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "server_certificate",
        skip_serializing_if = "String::is_empty"
    )]
    pub server_certificate: String,
    /// Path of the server private key file.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "private_key",
        skip_serializing_if = "String::is_empty"
    )]
    pub private_key: String,
    /// Path of the CA certificates that verify client certificates.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        alias = "ca_certificates",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_certificates: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
                "hosts": ["uk.bookinfo.com", "ns1/*"],
                "tls": {"httpsRedirect": true}
            },
            {
                "port": {"number": 443, "name": "https-443", "protocol": "HTTPS", "targetPort": 8443},
                "hosts": ["*.example.com"],
                "name": "main",
                "bind": "0.0.0.0",
                "tls": {
                    "mode": "MUTUAL",
                    "credentialName": "example-cert",
                    "caCertCredentialName": "example-ca",
                    "caCrl": "/etc/crl.pem",
                    "subjectAltNames": ["spiffe://cluster.local/ns/a/sa/b"],
                    "verifyCertificateSpki": ["AAAA"],
                    "verifyCertificateHash": ["ab:cd"],
                    "minProtocolVersion": "TLSV1_2",
                    "maxProtocolVersion": "TLSV1_3",
                    "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256"],
                    "ecdhCurves": ["X25519"],
                    "insecureSkipVerify": false
                }
            },
            {
                "port": {"number": 8443, "name": "tls", "protocol": "TLS"},
                "hosts": ["*"],
                "defaultEndpoint": "127.0.0.1:8080",
                "tls": {
                    "mode": "SIMPLE",
                    "tlsCertificates": [
                        {"serverCertificate": "/a.pem", "privateKey": "/a.key", "caCertificates": "/ca.pem"},
                        {"serverCertificate": "/b.pem", "privateKey": "/b.key"}
                    ]
                }
            }
        ]
    }"#;

    #[test]
    fn full_spec_round_trips() {
        let gw: Gateway = serde_json::from_str(FULL).unwrap();
        assert_eq!(gw.servers.len(), 3);
        let tls = gw.servers[1].tls.as_ref().unwrap();
        assert_eq!(tls.mode, Some(ServerTlsMode::Mutual));
        assert_eq!(tls.min_protocol_version, Some(TlsProtocol::TlsV1_2));
        assert_eq!(tls.insecure_skip_verify, Some(false));
        assert_eq!(gw.servers[1].port.as_ref().unwrap().target_port, 8443);
        assert_eq!(
            gw.servers[2].tls.as_ref().unwrap().tls_certificates.len(),
            2
        );
        let written = serde_json::to_string(&gw).unwrap();
        assert!(
            written.contains(r#""insecureSkipVerify":false"#),
            "{written}"
        );
        assert_eq!(serde_json::from_str::<Gateway>(&written).unwrap(), gw);
    }

    #[test]
    fn unset_fields_are_omitted() {
        let gw = Gateway {
            servers: vec![Server {
                hosts: vec!["*".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&gw).unwrap(),
            r#"{"servers":[{"hosts":["*"]}]}"#
        );
    }

    #[test]
    fn server_without_port_loads() {
        let gw: Gateway = serde_json::from_str(r#"{"servers":[{"hosts":["*"]}]}"#).unwrap();
        assert_eq!(gw.servers[0].port, None);
    }

    #[test]
    fn port_above_u16_loads_for_validation() {
        let p: Port =
            serde_json::from_str(r#"{"number":70000,"name":"x","protocol":"http"}"#).unwrap();
        assert_eq!(p.number, 70000);
        assert_eq!(p.protocol, "http");
    }

    #[test]
    fn protobuf_names_are_accepted() {
        let tls: ServerTlsSettings = serde_json::from_str(
            r#"{"https_redirect": true, "server_certificate": "/c", "private_key": "/k",
                "ca_certificates": "/ca", "ca_crl": "/crl", "credential_name": "n",
                "credential_names": ["a"], "tls_certificates": [{"server_certificate": "/x",
                "private_key": "/y", "ca_certificates": "/z"}], "ca_cert_credential_name": "c",
                "subject_alt_names": ["s"], "verify_certificate_spki": ["p"],
                "verify_certificate_hash": ["h"], "min_protocol_version": "TLSV1_1",
                "max_protocol_version": "TLSV1_3", "cipher_suites": ["c"],
                "ecdh_curves": ["P-256"], "insecure_skip_verify": true}"#,
        )
        .unwrap();
        assert!(tls.https_redirect);
        assert_eq!(tls.tls_certificates[0].ca_certificates, "/z");
        assert_eq!(tls.insecure_skip_verify, Some(true));
        assert_eq!(tls.ecdh_curves, ["P-256"]);
        let server: Server =
            serde_json::from_str(r#"{"default_endpoint":"unix:///s","port":{"target_port":1}}"#)
                .unwrap();
        assert_eq!(server.default_endpoint, "unix:///s");
        assert_eq!(server.port.unwrap().target_port, 1);
    }

    #[test]
    fn enums_use_istio_numbers() {
        assert_eq!(ServerTlsMode::OptionalMutual.number(), 5);
        assert_eq!(ServerTlsMode::default(), ServerTlsMode::Passthrough);
        assert_eq!(TlsProtocol::TlsV1_3.number(), 4);
        let tls: ServerTlsSettings = serde_json::from_str(r#"{"mode": 4}"#).unwrap();
        assert_eq!(tls.mode, Some(ServerTlsMode::IstioMutual));
    }

    #[test]
    fn unknown_mode_lists_accepted_names() {
        let err = serde_json::from_str::<ServerTlsSettings>(r#"{"mode":"SIMPL"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `SIMPL`"), "{err}");
        assert!(err.contains("`OPTIONAL_MUTUAL`"), "{err}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_json::from_str::<Server>(r#"{"hosts":["*"],"hostz":["a"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `hostz`"), "{err}");
        assert!(serde_json::from_str::<ServerTlsSettings>(r#"{"sni":"a"}"#).is_err());
    }
}
