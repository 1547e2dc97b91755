//! Name resolution for `resolution: DNS` endpoints, as a trait so that an embedder (or a test)
//! can answer lookups itself.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

/// The future a [`Resolver`] returns.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Looks DNS names of endpoints up. Called when a configuration is built and on every DNS
/// refresh ([`GatewayBuilder::dns_refresh`](super::GatewayBuilder::dns_refresh)); the gateway bounds each
/// lookup with its own timeout.
pub trait Resolver: fmt::Debug + Send + Sync + 'static {
    /// The addresses of `host`, each with `port`, in the order the answer gave them (a
    /// `LOGICAL_DNS` cluster uses the first).
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a>;
}

/// The system resolver (`getaddrinfo`, through tokio's blocking pool).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}
