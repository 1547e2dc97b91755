//! Entry points for fuzzing (feature `fuzzing`): each takes arbitrary bytes, must never panic,
//! and asserts the properties the crate promises. `fuzz/` calls them from cargo-fuzz targets, and
//! the regression tests replay every finding through them.

use std::collections::BTreeMap;

use portcullis_model::virtual_service::{
    Destination, HeaderOperations, Headers, HttpMatchRequest, HttpRoute, HttpRouteDestination,
};
use portcullis_model::{Loader, StringMatch};

use crate::analysis::{Config, analyze_all};
use crate::common::{
    is_partial_wildcard, validate_fqdn, validate_header_match_name, validate_header_value,
    validate_ip_address, validate_ip_subnet, validate_wildcard_domain,
};
use crate::virtual_service::{validate_http_route, validate_wildcard_domain_for_gateway};
use crate::{Context, validate_document, validate_document_with};

/// Arbitrary bytes as a YAML or JSON stream: every loaded document is validated (as the webhook
/// does, and with the API server's schema rules first), then the whole set is analysed with
/// every analyzer. Nothing panics; validating is deterministic; the schema verdict only adds
/// to the webhook's (an object the webhook refuses is refused with the schema rules too).
pub fn validate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let loaded = Loader::new().read_str("fuzz.yaml", &text);
    let strict = Context {
        crd_schema: true,
        ..Context::default()
    };
    for document in loaded.documents() {
        let webhook = validate_document(&document.object);
        assert_eq!(webhook, validate_document(&document.object));
        let kubectl = validate_document_with(&document.object, &strict);
        if webhook.has_errors() {
            assert!(kubectl.has_errors(), "{webhook:?}\nvs\n{kubectl:?}");
        }
    }
    let config = Config::from_loaded(&loaded).with_default_resources();
    let _ = analyze_all(&config);
}

/// Arbitrary bytes as a host, domain, IP address or subnet: nothing panics; what the domain
/// validators accept is ASCII and at most 255 bytes; an IP address without a zone is also a
/// valid subnet.
pub fn host(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    for accepted in [
        validate_fqdn(text).is_ok(),
        validate_wildcard_domain(text).is_ok(),
        validate_wildcard_domain_for_gateway(false, text).is_ok(),
        validate_wildcard_domain_for_gateway(true, text).is_ok(),
    ] {
        if accepted {
            assert!(text.is_ascii() && text.len() <= 255, "{text:?}");
        }
    }
    let _ = is_partial_wildcard(text);
    // An IPv6 zone (`fe80::1%eth0`) may hold any character, `/` included, as in Go's netip.
    if validate_ip_address(text).is_ok() && !text.contains('%') {
        assert!(!text.contains('/'), "{text:?}");
        assert_eq!(validate_ip_subnet(text), Ok(()), "{text:?}");
    }
    let _ = validate_ip_subnet(text);
}

/// Arbitrary bytes as a regular expression in the places an HTTP route takes one (`uri`,
/// `authority`, a header and a query parameter): validating never panics, and refuses a pattern
/// that is empty or longer than Istio's 1024 bytes.
pub fn regex(data: &[u8]) {
    let Ok(pattern) = core::str::from_utf8(data) else {
        return;
    };
    let regex = || Some(StringMatch::Regex(pattern.to_owned()));
    let m = HttpMatchRequest {
        uri: regex(),
        authority: regex(),
        headers: BTreeMap::from([("x-fuzz".to_owned(), StringMatch::Regex(pattern.to_owned()))]),
        query_params: BTreeMap::from([("q".to_owned(), StringMatch::Regex(pattern.to_owned()))]),
        ..HttpMatchRequest::default()
    };
    let route = HttpRoute {
        r#match: vec![m],
        route: vec![destination()],
        ..HttpRoute::default()
    };
    let found = validate_http_route(&route, false, false);
    if pattern.is_empty() || pattern.len() > 1024 {
        assert!(found.has_errors(), "{pattern:?} accepted");
    }
}

/// Arbitrary bytes as a header name and value, as a header match and as header operations:
/// nothing panics; a value with a control character other than tab is refused.
pub fn header(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    // The first line is the name, the rest the value (so a value may hold line breaks).
    let (name, value) = text.split_once('\n').unwrap_or((text, text));
    let _ = validate_header_match_name(name);
    let checked = validate_header_value(value);
    if value.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        assert!(checked.is_err(), "{value:?} accepted");
    }
    let ops = HeaderOperations {
        set: BTreeMap::from([(name.to_owned(), value.to_owned())]),
        add: BTreeMap::from([(name.to_owned(), value.to_owned())]),
        remove: vec![name.to_owned()],
    };
    let m = HttpMatchRequest {
        headers: BTreeMap::from([(name.to_owned(), StringMatch::Exact(value.to_owned()))]),
        without_headers: BTreeMap::from([(name.to_owned(), StringMatch::Prefix(value.to_owned()))]),
        ..HttpMatchRequest::default()
    };
    let route = HttpRoute {
        r#match: vec![m],
        route: vec![destination()],
        headers: Some(Headers {
            request: Some(ops.clone()),
            response: Some(ops),
        }),
        ..HttpRoute::default()
    };
    let _ = validate_http_route(&route, false, false);
}

fn destination() -> HttpRouteDestination {
    HttpRouteDestination {
        destination: Some(Destination {
            host: "reviews".to_owned(),
            ..Destination::default()
        }),
        ..HttpRouteDestination::default()
    }
}
