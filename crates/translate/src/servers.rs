//! A Gateway server's protocol, and a server as accepted on a listener: what the listeners and
//! the HTTP route configurations both read.

use portcullis_model::gateway::{Server, ServerTlsMode};
use portcullis_model::{Gateway, Resource};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    Https,
    Tls,
    Tcp,
    Mongo,
    Redis,
    Mysql,
    Unsupported,
}

impl Protocol {
    pub(crate) fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "HTTP" => Self::Http,
            "HTTP2" => Self::Http2,
            "GRPC" => Self::Grpc,
            "GRPC-WEB" => Self::GrpcWeb,
            "HTTPS" => Self::Https,
            "TLS" => Self::Tls,
            "TCP" => Self::Tcp,
            "MONGO" => Self::Mongo,
            "REDIS" => Self::Redis,
            "MYSQL" => Self::Mysql,
            _ => Self::Unsupported,
        }
    }

    pub(crate) fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Http2 | Self::Grpc | Self::GrpcWeb)
    }
}

pub(crate) fn is_passthrough(s: &Server) -> bool {
    s.tls.as_ref().is_some_and(|t| {
        matches!(
            t.mode.unwrap_or_default(),
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
        )
    })
}

/// `IsTLSServer`: TLS settings on a non-HTTP-family protocol.
pub(crate) fn is_tls_server(s: &Server, p: Protocol) -> bool {
    s.tls.is_some() && !p.is_http()
}

/// `IsHTTPServer`: HTTP family, or HTTPS terminating TLS.
pub(crate) fn is_http_server(s: &Server, p: Protocol) -> bool {
    p.is_http() || (p == Protocol::Https && s.tls.is_some() && !is_passthrough(s))
}

/// A server accepted on a listener.
#[derive(Debug)]
pub(crate) struct MergedServer<'a> {
    pub(crate) gateway: &'a Resource<Gateway>,
    /// `ns/name` of the Gateway.
    pub(crate) gateway_name: String,
    pub(crate) server: &'a Server,
    pub(crate) server_index: usize,
    pub(crate) hosts: Vec<String>,
    pub(crate) protocol: Protocol,
    pub(crate) server_port: u32,
    /// The HTTP route configuration name, for HTTP servers.
    pub(crate) route_name: Option<String>,
}
