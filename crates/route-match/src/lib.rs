//! Host and route lookup with Envoy's matching rules, as Istio configures them.
//!
//! This crate answers one question per request: *which route of which virtual host does this
//! request take?* It knows nothing about Istio resources or any wire format: a translator builds
//! a [`RouteTable`] from its own model, attaching any action payload `T` to each route, and the
//! proxy asks a [`Router`] built from that table.
//!
//! # Example
//!
//! ```
//! use portcullis_route_match::*;
//!
//! // What a translator would produce for two VirtualServices on one gateway port.
//! let table = RouteTable::new(vec![
//!     VirtualHost::new("shop", ["shop.example.com"], vec![
//!         // A rule with two match blocks becomes two consecutive routes.
//!         Route::new("api.v2", RouteMatch::any()
//!             .with_path(PathMatch::prefix("/api/"))
//!             .with_header(HeaderMatch::new("x-version", ValueMatch::Exact("2".into()))),
//!             "api-v2"),
//!         Route::new("api.beta", RouteMatch::any()
//!             .with_path(PathMatch::prefix("/api/"))
//!             .with_query_param(QueryParamMatch::new("beta", ValueMatch::Present)),
//!             "api-v2"),
//!         Route::new("api", RouteMatch::any().with_path(PathMatch::prefix("/api/")), "api-v1"),
//!         Route::new("static", RouteMatch::any().with_path(PathMatch::regex(r"/.*\.(css|js)")), "cdn"),
//!         Route::new("web", RouteMatch::any().with_path(PathMatch::prefix("/")), "web"),
//!     ]),
//!     VirtualHost::new("tenants", ["*.tenants.example.com"], vec![
//!         Route::new("all", RouteMatch::any().with_path(PathMatch::prefix("/")), "tenant-web"),
//!     ]),
//! ]);
//! let router = Router::new(table)?;
//!
//! let req = RequestHead::new("GET", "https", "shop.example.com", "/api/cart?beta");
//! assert_eq!(*router.find(&req).unwrap().action(), "api-v2");
//!
//! let headers = [("X-Version", "2")];
//! let req = RequestHead::new("GET", "https", "SHOP.example.com:443", "/api/cart")
//!     .with_header_list(&headers);
//! assert_eq!(router.find(&req).unwrap().route_name(), "api.v2");
//!
//! let req = RequestHead::new("GET", "https", "acme.tenants.example.com", "/");
//! assert_eq!(*router.find(&req).unwrap().action(), "tenant-web");
//!
//! // Works on `http` types directly.
//! let req = http::Request::get("https://shop.example.com/app.js").body(()).unwrap();
//! assert_eq!(*router.find(&RequestHead::from(&req)).unwrap().action(), "cdn");
//!
//! // 404s say why.
//! let req = RequestHead::new("GET", "https", "tenants.example.com", "/");
//! assert_eq!(router.find(&req).unwrap_err(), NotFound::NoVirtualHost);
//! # Ok::<(), BuildError>(())
//! ```
//!
//! # Rules
//!
//! **Virtual host.** The request's authority loses a trailing `:<digits>` port (IPv6 literals
//! keep their brackets) and is lower-cased. Then, in order: a domain equal to the host; the
//! longest `*suffix` domain the host ends with, the host being strictly longer than the suffix
//! (`*.foo.com` matches `a.b.foo.com` but not `foo.com` nor `.foo.com`); the longest `prefix*`
//! domain; the `*` domain; otherwise [`NotFound::NoVirtualHost`]. Domains are lower-cased at
//! build time and must be unique across the table. There is no trailing-dot normalisation.
//!
//! **Route.** The first route, in table order, whose conditions all hold; otherwise
//! [`NotFound::NoRoute`]. A route's conditions ([`RouteMatch`]):
//!
//! * [`PathMatch`] on the path with query and fragment removed: `Exact`, `Prefix` (a plain
//!   string prefix, not segment-aware) or `Regex` (full match). `ignore_case` affects `Exact`
//!   and `Prefix` (ASCII only); a regex is case-sensitive unless written with `(?i)`.
//!   The path is matched byte for byte as given: it must already be normalized, as Envoy's
//!   connection manager normalizes `:path` before routing (dot segments, `%2e`, `\`, …; see
//!   `portcullis_proxy_core::path`). Matching a raw path would let `/public/%2e%2e/admin`
//!   take a route on prefix `/public`.
//! * [`HeaderMatch`]: names are case-insensitive; repeated headers are matched as their values
//!   joined with `,`; a missing header never matches a value matcher unless
//!   `treat_missing_as_empty` is set; [`ValueMatch::Present`] matches any value, even empty;
//!   `invert` negates. `:method`, `:scheme`, `:authority` (port as sent) and `:path` (with
//!   query) are the request's pseudo-headers.
//! * [`QueryParamMatch`]: parameters split from the raw path without decoding; the first one
//!   with the name is used; `?key` has the value `""`; a missing parameter never matches.
//!
//! Conditions Istio evaluates when it builds the configuration (ports, gateways, source labels)
//! are not represented: a translator drops the routes they exclude.
//!
//! Regexes use the `regex` crate's syntax (close to RE2's), compiled once when the router is
//! built, anchored at both ends, and bounded by [`Options::regex_size_limit`]. Every build
//! failure is a [`BuildError`] value; lookups cannot fail or panic.
//!
//! # Two matchers
//!
//! [`Router`] indexes hosts and paths so that a lookup costs about the same with ten routes as
//! with ten thousand. [`Reference`] implements the same rules by linear scan and serves as the
//! executable specification; property tests check that the two always agree. When a decision
//! is surprising, [`Router::explain`] returns an [`Explanation`]: the virtual host chosen and
//! why, and the first failed condition of every route tried before the winner.
//!
//! # Changing a large table
//!
//! A router is made of [`CompiledVirtualHost`]s behind `Arc`s. An embedder that rebuilds its
//! table after each configuration change can compile only the virtual hosts that changed and
//! put the next router together from those and the previous router's others
//! ([`Router::from_compiled`], [`Router::virtual_hosts`]); only the domains are indexed again.
//!
//! # TLS by server name
//!
//! [`SniRouter`] selects among [`SniRoute`]s (Envoy filter chains) by the server name a TLS
//! client sent: exact name, then the longest `*.` wildcard, then a route without SNI criterion.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod compile;
mod error;
mod explain;
// Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature): hidden from the docs and
// not part of the stable API; they change whenever the fuzz targets do.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod host;
mod reference;
mod request;
mod router;
mod sni;
mod table;

#[cfg(test)]
mod tests;

pub use compile::Options;
pub use error::{BuildError, Condition};
pub use explain::{ChosenRoute, Expected, Explanation, Failure, SkippedRoute, VirtualHostChoice};
pub use host::HostMatchKind;
pub use reference::Reference;
pub use request::RequestHead;
pub use router::{CompiledVirtualHost, Matched, NotFound, Router};
pub use sni::{SniRoute, SniRouter};
pub use table::{
    HeaderMatch, PathMatch, QueryParamMatch, Route, RouteMatch, RouteTable, ValueMatch, VirtualHost,
};

// The README's example is compiled and run with the crate's doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
