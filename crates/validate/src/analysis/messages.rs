//! Messages: what analysis reports, and the catalogue of message types it can report.

use core::fmt;

/// How serious an analysis message is (Istio's `diag.Level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// The configuration is broken: `istioctl analyze` fails by default.
    Error,
    /// The configuration probably does not do what was meant.
    Warning,
    /// Worth knowing; usually harmless.
    Info,
}

impl Level {
    /// The level as Istio writes it (`Error`, `Warning`, `Info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "Error",
            Self::Warning => "Warning",
            Self::Info => "Info",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of message: its code, name, level and text template (Istio's `diag.MessageType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The code (`IST0101`, or `PCS0001` for Portcullis' own analyzers).
    pub code: &'static str,
    /// The name (`ReferencedResourceNotFound`).
    pub name: &'static str,
    /// The level.
    pub level: Level,
    /// The text template, with Go verbs (`%s`, `%q`, `%v`, `%d`) for the arguments.
    pub template: &'static str,
}

macro_rules! catalogue {
    ($( $(#[$meta:meta])* $ident:ident = ($code:literal, $name:literal, $level:ident, $template:literal); )+) => {
        $(
            $(#[$meta])*
            pub const $ident: MessageType = MessageType {
                code: $code,
                name: $name,
                level: Level::$level,
                template: $template,
            };
        )+
        /// Every message type analysis can report.
        pub const ALL_MESSAGE_TYPES: &[MessageType] = &[$($ident),+];
    };
}

catalogue! {
    /// IST0002: a deprecated field or kind is used.
    DEPRECATED = ("IST0002", "Deprecated", Warning, "Deprecated: %s");
    /// IST0101: a referenced resource does not exist.
    REFERENCED_RESOURCE_NOT_FOUND = ("IST0101", "ReferencedResourceNotFound", Error, "Referenced %s not found: %q");
    /// IST0106: the resource fails validation.
    SCHEMA_VALIDATION_ERROR = ("IST0106", "SchemaValidationError", Error, "Schema validation error: %v");
    /// IST0109: several mesh VirtualServices define the same host.
    CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS = ("IST0109", "ConflictingMeshGatewayVirtualServiceHosts", Error, "The VirtualServices %s associated with mesh gateway define the same host %s which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.");
    /// IST0112: a destination needs a port because its service has several.
    VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED = ("IST0112", "VirtualServiceDestinationPortSelectorRequired", Error, "This VirtualService routes to a service %q that exposes multiple ports %v. Specifying a port in the destination is required to disambiguate.");
    /// IST0128: TLS origination without CA certificates.
    NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL = ("IST0128", "NoServerCertificateVerificationDestinationLevel", Warning, "DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s");
    /// IST0129: port-level TLS origination without CA certificates.
    NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL = ("IST0129", "NoServerCertificateVerificationPortLevel", Warning, "DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s at port %s");
    /// IST0130: a VirtualService rule can never match.
    VIRTUAL_SERVICE_UNREACHABLE_RULE = ("IST0130", "VirtualServiceUnreachableRule", Warning, "VirtualService rule %v not used (%s).");
    /// IST0131: a match of a VirtualService rule duplicates an earlier one.
    VIRTUAL_SERVICE_INEFFECTIVE_MATCH = ("IST0131", "VirtualServiceIneffectiveMatch", Info, "VirtualService rule %v match %v is not used (duplicate/overlapping match in rule %v).");
    /// IST0132: a VirtualService host is not served by its Gateway.
    VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY = ("IST0132", "VirtualServiceHostNotFoundInGateway", Warning, "one or more host %v defined in VirtualService %s not found in Gateway %s.");
    /// IST0133: the resource passes validation with a warning.
    SCHEMA_WARNING = ("IST0133", "SchemaWarning", Warning, "Schema validation warning: %v");
    /// IST0134: a ServiceEntry needs addresses for TCP ports.
    SERVICE_ENTRY_ADDRESSES_REQUIRED = ("IST0134", "ServiceEntryAddressesRequired", Warning, "ServiceEntry addresses are required for this protocol.");
    /// IST0138: the same certificate is served by several Gateways.
    GATEWAY_DUPLICATE_CERTIFICATE = ("IST0138", "GatewayDuplicateCertificate", Warning, "Duplicate certificate in multiple gateways %v may cause 404s if clients re-use HTTP2 connections.");
    /// IST0140: subset routing of a mesh VirtualService does not apply at the gateway.
    INGRESS_ROUTE_RULES_NOT_AFFECTED = ("IST0140", "IngressRouteRulesNotAffected", Warning, "Subset in virtual service %s has no effect on ingress gateway %s requests");
    /// IST0145: two Gateways claim the same workload, port and host.
    CONFLICTING_GATEWAYS = ("IST0145", "ConflictingGateways", Error, "Conflict with gateways %s (workload selector %s, port %s, hosts %v).");
    /// IST0149: JWT-claim routing without a RequestAuthentication on the gateway.
    JWT_CLAIM_BASED_ROUTING_WITHOUT_REQUEST_AUTHN = ("IST0149", "JwtClaimBasedRoutingWithoutRequestAuthN", Error, "The virtual service uses the JWT claim based routing (key: %s) but found no request authentication for the gateway (%s) pod (%s). The request authentication must first be applied for the gateway pods to validate the JWT token and make the claims available for routing.");
    /// IST0161: the Secret named by `credentialName` is not usable.
    INVALID_GATEWAY_CREDENTIAL = ("IST0161", "InvalidGatewayCredential", Error, "The credential referenced by the Gateway %s in namespace %s is invalid, which can cause the traffic not to work as expected.");
    /// IST0162: a Gateway port is not exposed by the workload's Service.
    GATEWAY_PORT_NOT_DEFINED_ON_SERVICE = ("IST0162", "GatewayPortNotDefinedOnService", Warning, "The gateway is listening on a target port (port %d) that is not defined in the Service associated with its workload instances (Pod selector %s). If you need to access the gateway port through the gateway Service, it will not be available.");
    /// IST0165: a VirtualService references an implementation-generated Gateway.
    REFERENCED_INTERNAL_GATEWAY = ("IST0165", "ReferencedInternalGateway", Warning, "Gateway reference in VirtualService %s is to an implementation-generated internal Gateway: %s.");
    /// IST0171: a status condition is negative.
    NEGATIVE_CONDITION_STATUS = ("IST0171", "NegativeConditionStatus", Warning, "A condition with a negative status is present: type=%s, reason=%s, message=%s.");
    /// IST0173: a DestinationRule subset selects no pod.
    DESTINATION_RULE_SUBSET_NOT_SELECT_PODS = ("IST0173", "DestinationRuleSubsetNotSelectPods", Error, "The Subset %s defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).");
    /// IST0174: a DestinationRule host is no known service.
    UNKNOWN_DESTINATION_RULE_HOST = ("IST0174", "UnknownDestinationRuleHost", Warning, "The host %s defined in the DestinationRule does not match any services in the mesh.");
    /// IST0177: ServiceEntries declare one host and port with different protocols.
    CONFLICTING_SERVICE_ENTRY_PROTOCOL = ("IST0177", "ConflictingServiceEntryProtocol", Warning, "Multiple ServiceEntries (%s) define the same host %q and port %d with conflicting protocols (%s).");
    /// PCS0001 (Portcullis): a route of one VirtualService can never match at a gateway host,
    /// because a route of another VirtualService merged before it matches every request it
    /// could match.
    SHADOWED_ROUTE = ("PCS0001", "ShadowedRoute", Warning, "%s can never match %s: %s, ordered before it, matches every request it could match.");
    /// PCS0002 (Portcullis): a route can never match because an earlier route of the same
    /// VirtualService matches every request it could match (cases IST0130/IST0131 miss).
    SHADOWED_ROUTE_IN_VIRTUAL_SERVICE = ("PCS0002", "ShadowedRouteInVirtualService", Warning, "%s can never match %s: %s, earlier in the same VirtualService, matches every request it could match.");
}

/// The resource a message is about, as Istio names it: `"<Kind> [<namespace>/]<name>"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceRef {
    /// The kind (`Gateway`, `VirtualService`, `Sidecar`, …).
    pub kind: String,
    /// The namespace as loaded (the loader puts a document without one in its default
    /// namespace); empty when the document was loaded with no default namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ResourceRef {
    /// `namespace/name`, or `name` when there is no namespace (Istio's `FullName`).
    pub fn full_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.full_name())
    }
}

/// A place in a source file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceRef {
    /// What is there (`VirtualService default/a spec.http[1].match[0]`).
    pub what: String,
    /// The file name given to the loader.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} ({}:{line})", self.what, self.file),
            None => write!(f, "{} ({})", self.what, self.file),
        }
    }
}

/// One analysis finding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Message {
    /// What kind of message this is.
    pub message_type: MessageType,
    /// The code (`IST0145`), as in [`MessageType::code`].
    pub code: &'static str,
    /// The name (`ConflictingGateways`).
    pub name: &'static str,
    /// The level.
    pub level: Level,
    /// The resource the message is about.
    pub resource: ResourceRef,
    /// The filled template.
    pub text: String,
    /// The file of the resource, when it came from one.
    pub file: Option<String>,
    /// The line where the resource (or the field the message is about) starts.
    pub line: Option<usize>,
    /// Other places the message is about (for shadowed routes: both routes).
    pub related: Vec<SourceRef>,
    /// The analyzer that reported it.
    pub analyzer: &'static str,
}

impl Message {
    /// `(code, level, "<Kind> [<ns>/]<name>")`: what Istio's analyzer tests compare.
    pub fn key(&self) -> (String, Level, String) {
        (self.code.to_owned(), self.level, self.resource.to_string())
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] ({}) {}",
            self.level, self.code, self.resource, self.text
        )?;
        if let Some(file) = &self.file {
            match self.line {
                Some(line) => write!(f, " at {file}:{line}")?,
                None => write!(f, " in {file}")?,
            }
        }
        Ok(())
    }
}

/// An argument of a message template.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    /// A string (`%s`, `%v`, or quoted for `%q`).
    Str(String),
    /// A number (`%d`, `%v`).
    Int(i64),
    /// A list, written as Go writes slices (`[a b]`).
    List(Vec<String>),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

/// Fills a Go-style template with arguments, in order.
pub(crate) fn fill(template: &str, args: &[Arg]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut args = args.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push('%');
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push('%');
            out.push(verb);
            continue;
        };
        match (verb, arg) {
            ('q', Arg::Str(s)) => out.push_str(&quote(s)),
            ('q', Arg::Int(n)) => out.push_str(&format!("'{n}'")),
            (_, Arg::Str(s)) => out.push_str(s),
            (_, Arg::Int(n)) => out.push_str(&n.to_string()),
            (_, Arg::List(items)) => {
                out.push('[');
                out.push_str(&items.join(" "));
                out.push(']');
            }
        }
    }
    out
}

/// A string quoted as Go's `%q` does for printable text.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_like_go() {
        assert_eq!(
            fill(
                REFERENCED_RESOURCE_NOT_FOUND.template,
                &["host".into(), "a\"b".into()]
            ),
            "Referenced host not found: \"a\\\"b\""
        );
        assert_eq!(
            fill(
                VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED.template,
                &["r".into(), Arg::List(vec!["80".into(), "443".into()])]
            ),
            "This VirtualService routes to a service \"r\" that exposes multiple ports [80 443]. Specifying a port in the destination is required to disambiguate."
        );
        assert_eq!(fill("%d%%", &[Arg::Int(5)]), "5%");
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<_> = ALL_MESSAGE_TYPES.iter().map(|m| m.code).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n);
    }
}
