//! Header operations (`set` / `add` / `remove`) and the order Envoy runs them in.

use std::sync::Arc;

use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};

use crate::error::InvalidAction;

/// One block of header operations: what Envoy calls a header parser
/// (`*_headers_to_add` + `*_headers_to_remove` of one route or one weighted cluster).
///
/// [`apply_header_ops`] runs a block as Envoy's `HeaderParser::evaluateHeaders` does:
///
/// 1. every `remove`;
/// 2. every `set` in order (overwrite, or add when absent), so a later `set` of the same name
///    wins;
/// 3. every `add` in order (append, or add when absent).
///
/// A `set` or `add` with an empty value does nothing (Istio never asks Envoy to keep empty
/// values), so the client's header survives `set: {x: ""}`.
///
/// Istio writes `set` and `add` as maps and sorts each by key; this type keeps whatever order
/// it is given, so a caller translating Istio should insert keys in sorted order.
///
/// `host` entries are not header operations in Envoy (it refuses to mutate `Host` that way):
/// Istio turns a `host` / `:authority` entry of `set` (winning) or `add` into an authority
/// rewrite, and drops it from `remove`. [`ForwardAction`](crate::action::ForwardAction) and
/// [`Destination`](crate::action::Destination) do that automatically through
/// [`take_authority`](Self::take_authority).
///
/// ```
/// use http::HeaderMap;
/// use portcullis_proxy_core::{action::{apply_header_ops, HeaderOps}};
///
/// let ops = HeaderOps::new()
///     .try_set("x-a", "1")?
///     .try_add("x-b", "2")?
///     .try_remove("x-c")?;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-a", "0".parse()?);
/// headers.insert("x-b", "1".parse()?);
/// headers.insert("x-c", "3".parse()?);
/// apply_header_ops(&ops, &mut headers);
/// assert_eq!(headers.get_all("x-a").iter().collect::<Vec<_>>(), ["1"]);
/// assert_eq!(headers.get_all("x-b").iter().collect::<Vec<_>>(), ["1", "2"]);
/// assert!(headers.get("x-c").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOps {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderOps {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a `set` (overwrite-or-add) entry.
    pub fn set(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.set.push((name, value));
        self
    }

    /// Appends an `add` (append-or-add) entry.
    pub fn add(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.add.push((name, value));
        self
    }

    /// Appends a `remove` entry.
    pub fn remove(mut self, name: HeaderName) -> Self {
        self.remove.push(name);
        self
    }

    /// Like [`set`](Self::set) from strings. The name is lower-cased; `:authority` is taken as
    /// `host` (see [`take_authority`](Self::take_authority)).
    pub fn try_set(self, name: &str, value: &str) -> Result<Self, InvalidAction> {
        let (name, value) = parse_entry(name, value)?;
        Ok(self.set(name, value))
    }

    /// Like [`add`](Self::add) from strings. The name is lower-cased; `:authority` is taken as
    /// `host`.
    pub fn try_add(self, name: &str, value: &str) -> Result<Self, InvalidAction> {
        let (name, value) = parse_entry(name, value)?;
        Ok(self.add(name, value))
    }

    /// Like [`remove`](Self::remove) from a string. As in Istio, pseudo-headers (`:…`) and
    /// `host` cannot be removed and are silently dropped.
    pub fn try_remove(self, name: &str) -> Result<Self, InvalidAction> {
        if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
            return Ok(self);
        }
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| InvalidAction::HeaderName {
                name: name.to_owned(),
            })?;
        Ok(self.remove(name))
    }

    /// The `set` entries, in evaluation order.
    pub fn sets(&self) -> &[(HeaderName, HeaderValue)] {
        &self.set
    }

    /// The `add` entries, in evaluation order.
    pub fn adds(&self) -> &[(HeaderName, HeaderValue)] {
        &self.add
    }

    /// The `remove` entries.
    pub fn removes(&self) -> &[HeaderName] {
        &self.remove
    }

    /// Whether the block does nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// One block made of `self` followed by `other`, as Istio builds the route-level block
    /// for a single destination (rule operations, then destination operations).
    ///
    /// Because all removes run first, then all sets, then all adds, a destination `set` wins
    /// over a rule `set`, and a rule `add` is appended after a destination `set`.
    pub fn concat(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.set.extend(other.set.iter().cloned());
        out.add.extend(other.add.iter().cloned());
        out.remove.extend(other.remove.iter().cloned());
        out
    }

    /// Removes every `host` entry and returns the authority they asked for, Istio style:
    /// the last `set` value if any, else the last `add` value.
    pub fn take_authority(&mut self) -> Option<HeaderValue> {
        let from_set = take_host(&mut self.set);
        let from_add = take_host(&mut self.add);
        self.remove.retain(|name| name != HOST);
        from_set.or(from_add)
    }
}

fn take_host(entries: &mut Vec<(HeaderName, HeaderValue)>) -> Option<HeaderValue> {
    let last = entries
        .iter()
        .rev()
        .find(|(name, _)| name == HOST)
        .map(|(_, value)| value.clone());
    entries.retain(|(name, _)| name != HOST);
    last
}

fn parse_entry(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), InvalidAction> {
    let header = if name.eq_ignore_ascii_case(":authority") {
        HOST
    } else {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| InvalidAction::HeaderName {
            name: name.to_owned(),
        })?
    };
    let value = HeaderValue::from_str(value).map_err(|_| InvalidAction::HeaderValue {
        name: name.to_owned(),
    })?;
    Ok((header, value))
}

/// Applies one block of header operations in Envoy's order (see [`HeaderOps`]).
///
/// A [`HeaderMap`] holds at most [`MAX_HEADER_MAP_ENTRIES`] entries; a set or add that would go
/// beyond is dropped (`http`'s own `insert`/`append` would panic there).
pub fn apply_header_ops(ops: &HeaderOps, headers: &mut HeaderMap) {
    for name in &ops.remove {
        headers.remove(name);
    }
    for (name, value) in &ops.set {
        if !value.is_empty() {
            let _ = headers.try_insert(name.clone(), value.clone());
        }
    }
    for (name, value) in &ops.add {
        if !value.is_empty() {
            let _ = headers.try_append(name.clone(), value.clone());
        }
    }
}

/// The most entries an [`http::HeaderMap`] holds (`http` 1.x: 32 768 slots at a ¾ load
/// factor). Header maps come from requests and upstream responses, so they may be full
/// already: every edit this crate makes to one is dropped rather than panicking when the map is
/// full. Keeping header counts far below this (hyper's HTTP/1 default is 100 headers, its
/// HTTP/2 default a 16 KiB header list) is the HTTP codec's job.
pub const MAX_HEADER_MAP_ENTRIES: usize = 24_576;

/// Edits to make to the upstream response before it goes back to the client.
///
/// Produced by [`decide`](crate::decide()) for forwarded requests: the header blocks run in
/// order (for weighted destinations the destination's block first, then the rule's, as
/// Envoy's weighted cluster entry does), then the CORS headers of an allowed cross-origin
/// request are set, overwriting (the CORS filter encodes after the router).
#[derive(Debug, Clone, Default)]
pub struct ResponseEdits {
    header_ops: HeaderBlocks,
    cors: Option<HeaderMap>,
}

/// The response header blocks of a forward: the rule's, or a weighted destination's and the
/// rule's. Kept inline, so deciding a forward allocates nothing for them.
#[derive(Debug, Clone, Default)]
pub(crate) enum HeaderBlocks {
    #[default]
    None,
    One([Arc<HeaderOps>; 1]),
    Two([Arc<HeaderOps>; 2]),
}

impl ResponseEdits {
    pub(crate) fn new(header_ops: HeaderBlocks, cors: Option<HeaderMap>) -> Self {
        Self { header_ops, cors }
    }

    /// The header blocks, in the order they run.
    pub fn header_ops(&self) -> &[Arc<HeaderOps>] {
        match &self.header_ops {
            HeaderBlocks::None => &[],
            HeaderBlocks::One(blocks) => blocks,
            HeaderBlocks::Two(blocks) => blocks,
        }
    }

    /// The CORS response headers (`access-control-allow-origin`, `…-allow-credentials`,
    /// `…-expose-headers`), if the request was an allowed cross-origin request.
    pub fn cors_headers(&self) -> Option<&HeaderMap> {
        self.cors.as_ref()
    }

    /// Whether applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.header_ops().iter().all(|ops| ops.is_empty()) && self.cors.is_none()
    }

    /// Applies every edit to the upstream response's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for ops in self.header_ops() {
            apply_header_ops(ops, headers);
        }
        if let Some(cors) = &self.cors {
            set_all(cors, headers);
        }
    }
}

/// Overwrites `into` with every entry of `from`.
pub(crate) fn set_all(from: &HeaderMap, into: &mut HeaderMap) {
    for (name, value) in from {
        // A full map drops the entry (see `MAX_HEADER_MAP_ENTRIES`).
        let _ = into.try_insert(name.clone(), value.clone());
    }
}
