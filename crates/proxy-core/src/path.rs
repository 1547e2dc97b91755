//! Request-path normalization before routing, as Envoy does it for Istio.
//!
//! A route on prefix `/public` must not see `/public/%2e%2e/admin`: the upstream would resolve
//! it to `/admin`, a path no route allowed. Envoy's HTTP connection manager therefore rewrites
//! the `:path` of every request before any filter or the router reads it, and Istio configures
//! that rewrite through the mesh setting `pathNormalization.normalization`
//! ([`PathNormalization`], default `BASE`). [`normalize`] is that rewrite: the router matches
//! the path it returns, and the upstream receives it.
//!
//! # Steps
//!
//! In the order of Envoy's `ConnectionManagerUtility::maybeNormalizePath`
//! (`source/common/http/conn_manager_utility.cc`), on the request target (path and query):
//!
//! 1. A fragment (`#` and what follows) is removed, in every mode. Envoy rejects such paths by
//!    default; Istio turns `envoy.reloadable_features.http_reject_path_with_fragment` off in its
//!    bootstrap, which makes Envoy strip the fragment instead.
//! 2. `DECODE_AND_MERGE_SLASHES` only: [`unescape_slashes`] decodes `%2F`/`%2f` to `/` and
//!    `%5C`/`%5c` to `\` in the path (Envoy's `path_with_escaped_slashes_action:
//!    UNESCAPE_AND_FORWARD`).
//! 3. Every mode but `NONE`: [`canonical_path`] (Envoy's `normalize_path: true`,
//!    `PathUtil::canonicalPath`), which is Chromium's `url::CanonicalizePath` as snapshotted in
//!    Envoy's `source/common/chromium_url/url_canon_path.cc`:
//!    * `\` is a `/`;
//!    * `%2e` and `%2E` are dots; `.` and `..` segments are removed (never above the root;
//!      empty segments count as segments: `/a//../b` is `/a/b`);
//!    * percent-encoded unreserved characters (`A-Z a-z 0-9 - _ ~`) are decoded; every other
//!      escape is kept as written (hex case included: `%2F` stays `%2F`);
//!    * control characters, space, `"`, `#`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`, DEL and
//!      non-ASCII bytes are percent-encoded;
//!    * a `%` that does not start an escape is kept, unless decoding what follows it would
//!      form a new escape, then it becomes `%25` (`/%%41B` is `/%25AB`);
//!    * a NUL byte, raw or as `%00`, makes the path invalid: [`InvalidPath`], answered `400`;
//!    * a path that does not start with `/` or `\` gets a leading `/`.
//! 4. `MERGE_SLASHES` and `DECODE_AND_MERGE_SLASHES`: [`merge_slashes`] collapses runs of `/`.
//!
//! The query is never changed. Envoy answers requests whose path does not start with `/` with
//! `404` before it normalizes (`absolute_path_rejected`); that check is the caller's.
//!
//! # Why hand-written
//!
//! The point of this module is that the gateway routes on the same bytes Envoy would route on,
//! so that an Istio configuration keeps its meaning. General URL libraries normalize
//! differently (the `url` crate follows the WHATWG URL standard: it treats `%2e` as a dot too
//! but escapes another set of characters, never decodes unreserved escapes and never fails on
//! `%00`), and none of them offers Envoy's slash merging or escaped-slash handling. So this is
//! a reimplementation of Envoy's algorithm, character table and quirks included, checked
//! against the test vectors of Envoy, Chromium and Istio's normalization integration test.
//!
//! It also runs on every request: when nothing changes it returns the input borrowed, without
//! allocating, after one pass over the path.
//!
//! # Example
//!
//! ```
//! use std::borrow::Cow;
//! use portcullis_proxy_core::path::{PathNormalization, normalize};
//!
//! let mode = PathNormalization::default(); // BASE
//! assert_eq!(normalize("/public/%2e%2e/admin?x=/../", mode)?, "/admin?x=/../");
//! assert_eq!(normalize(r"/public\..\admin", mode)?, "/admin");
//! assert!(matches!(normalize("/public/index.html", mode)?, Cow::Borrowed(_)));
//!
//! let err = normalize("/admin%00", mode).unwrap_err();
//! assert_eq!(err.details(), "path_normalization_failed");
//! assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
//! # Ok::<(), portcullis_proxy_core::path::InvalidPath>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod reference;
#[cfg(test)]
mod tests;

// === PathNormalization ===

/// How request paths are normalized: Istio's mesh setting `pathNormalization.normalization`.
///
/// Each mode maps to Envoy's HTTP connection manager settings as pilot writes them
/// (`pilot/pkg/networking/core/listener_builder.go`, `buildHTTPConnectionManager`); all of
/// them strip a fragment (see the [module documentation](self)).
///
/// | mode | `normalize_path` | `merge_slashes` | `path_with_escaped_slashes_action` |
/// |---|---|---|---|
/// | `NONE` | false | false | `KEEP_UNCHANGED` |
/// | `BASE` (and `DEFAULT`) | true | false | `KEEP_UNCHANGED` |
/// | `MERGE_SLASHES` | true | true | `KEEP_UNCHANGED` |
/// | `DECODE_AND_MERGE_SLASHES` | true | true | `UNESCAPE_AND_FORWARD` |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathNormalization {
    /// `NONE`: the path is forwarded as received (fragment removed).
    None,
    /// `BASE`, Istio's default: [`canonical_path`].
    #[default]
    Base,
    /// `MERGE_SLASHES`: [`canonical_path`], then [`merge_slashes`].
    MergeSlashes,
    /// `DECODE_AND_MERGE_SLASHES`: [`unescape_slashes`], [`canonical_path`], then
    /// [`merge_slashes`].
    DecodeAndMergeSlashes,
}

impl PathNormalization {
    /// Every mode, in the order of Istio's enum.
    pub const ALL: [Self; 4] = [
        Self::None,
        Self::Base,
        Self::MergeSlashes,
        Self::DecodeAndMergeSlashes,
    ];

    /// The name in Istio's mesh configuration (`BASE`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Base => "BASE",
            Self::MergeSlashes => "MERGE_SLASHES",
            Self::DecodeAndMergeSlashes => "DECODE_AND_MERGE_SLASHES",
        }
    }

    const fn unescapes_slashes(self) -> bool {
        matches!(self, Self::DecodeAndMergeSlashes)
    }

    const fn canonicalizes(self) -> bool {
        !matches!(self, Self::None)
    }

    const fn merges_slashes(self) -> bool {
        matches!(self, Self::MergeSlashes | Self::DecodeAndMergeSlashes)
    }
}

impl fmt::Display for PathNormalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown [`PathNormalization`] name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPathNormalization(String);

impl fmt::Display for UnknownPathNormalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown path normalization {:?} (expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPathNormalization {}

impl FromStr for PathNormalization {
    type Err = UnknownPathNormalization;

    /// Istio's names; `DEFAULT` is `BASE`, as in pilot.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NONE" => Ok(Self::None),
            "BASE" | "DEFAULT" => Ok(Self::Base),
            "MERGE_SLASHES" => Ok(Self::MergeSlashes),
            "DECODE_AND_MERGE_SLASHES" => Ok(Self::DecodeAndMergeSlashes),
            other => Err(UnknownPathNormalization(other.to_owned())),
        }
    }
}

// === InvalidPath ===

/// A path Envoy refuses to normalize; the request is answered `400 Bad Request`.
///
/// The only cause today is a NUL byte in the path, raw or as `%00`. The `Display` text is for
/// people; [`details`](Self::details) is Envoy's response-code details string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPath {
    _private: (),
}

impl InvalidPath {
    const fn new() -> Self {
        Self { _private: () }
    }

    /// Envoy's response-code details (`%RESPONSE_CODE_DETAILS%` in access logs):
    /// `path_normalization_failed`.
    pub const fn details(&self) -> &'static str {
        "path_normalization_failed"
    }

    /// The status the request is answered with: `400`.
    pub const fn status(&self) -> http::StatusCode {
        http::StatusCode::BAD_REQUEST
    }
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request path cannot be normalized")
    }
}

impl std::error::Error for InvalidPath {}

// === normalize ===

/// Normalizes a request target (path, optionally `?` and a query) as Envoy does before
/// routing, in the given mode; see the [module documentation](self) for the steps.
///
/// Returns the input borrowed when nothing changes (removing a fragment borrows too), and
/// [`InvalidPath`] for a path the request must be answered `400` for.
///
/// ```
/// use portcullis_proxy_core::path::{PathNormalization, normalize};
///
/// let target = r"/a//b/%2E%2e/%2f\c?q=/./";
/// assert_eq!(normalize(target, PathNormalization::None)?, target);
/// assert_eq!(normalize(target, PathNormalization::Base)?, "/a//%2f/c?q=/./");
/// assert_eq!(normalize(target, PathNormalization::MergeSlashes)?, "/a/%2f/c?q=/./");
/// assert_eq!(normalize(target, PathNormalization::DecodeAndMergeSlashes)?, "/a/c?q=/./");
/// assert_eq!(normalize("/a#/../b", PathNormalization::Base)?, "/a");
/// # Ok::<(), portcullis_proxy_core::path::InvalidPath>(())
/// ```
///
/// # Errors
///
/// [`InvalidPath`] when the mode canonicalizes and the path holds a NUL byte (raw or `%00`).
pub fn normalize(target: &str, mode: PathNormalization) -> Result<Cow<'_, str>, InvalidPath> {
    let target = match target.find('#') {
        Some(hash) => target.get(..hash).unwrap_or(target),
        None => target,
    };
    let mut out = Cow::Borrowed(target);
    if mode.unescapes_slashes() {
        replace(&mut out, unescape_slashes);
    }
    if mode.canonicalizes() {
        let canonical = match canonical_path(&out)? {
            Cow::Borrowed(_) => None,
            Cow::Owned(s) => Some(s),
        };
        if let Some(s) = canonical {
            out = Cow::Owned(s);
        }
    }
    if mode.merges_slashes() {
        replace(&mut out, merge_slashes);
    }
    Ok(out)
}

/// Applies a step that borrows when nothing changes.
fn replace(s: &mut Cow<'_, str>, step: fn(&str) -> Cow<'_, str>) {
    let changed = match step(s) {
        Cow::Borrowed(_) => None,
        Cow::Owned(t) => Some(t),
    };
    if let Some(t) = changed {
        *s = Cow::Owned(t);
    }
}

/// Splits a target at the first `?` (the query keeps its `?`).
fn split_query(target: &str) -> (&str, &str) {
    match target.find('?') {
        Some(q) => (
            target.get(..q).unwrap_or(target),
            target.get(q..).unwrap_or(""),
        ),
        None => (target, ""),
    }
}

// === canonical_path ===

/// Envoy's `PathUtil::canonicalPath` (`normalize_path: true`): the path before the first `?`
/// canonicalized by Chromium's algorithm (see the [module documentation](self)), the query
/// appended unchanged. A `#` is not special here (it is percent-encoded): [`normalize`]
/// removes fragments first.
///
/// ```
/// use portcullis_proxy_core::path::canonical_path;
///
/// assert_eq!(canonical_path("/a/b/%2E%2E/c")?, "/a/c");
/// assert_eq!(canonical_path("/foo%41%7a/%3a?a/../b")?, "/fooAz/%3a?a/../b");
/// assert_eq!(canonical_path("a/b/../c")?, "/a/c");
/// assert!(canonical_path("/xyz/.%00../abc").is_err());
/// # Ok::<(), portcullis_proxy_core::path::InvalidPath>(())
/// ```
///
/// # Errors
///
/// [`InvalidPath`] when the path holds a NUL byte, raw or as `%00`.
pub fn canonical_path(target: &str) -> Result<Cow<'_, str>, InvalidPath> {
    let (path, query) = split_query(target);
    if is_canonical(path.as_bytes()) {
        return Ok(Cow::Borrowed(target));
    }
    let mut out = Vec::with_capacity(target.len() + 8);
    if !canonicalize_into(path.as_bytes(), &mut out) {
        return Err(InvalidPath::new());
    }
    out.extend_from_slice(query.as_bytes());
    if out == target.as_bytes() {
        return Ok(Cow::Borrowed(target));
    }
    // The output is ASCII by construction (every other byte is percent-encoded), so this
    // cannot fail; a failure would be a bug, reported as an unusable path rather than a panic.
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| InvalidPath::new())
}

/// How Chromium's path canonicalizer treats a byte (`kPathCharLookup`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// Copied as is, and kept escaped when it comes escaped.
    Pass,
    /// Copied as is, and decoded when it comes escaped (the unreserved characters).
    Unescape,
    /// Percent-encoded (`%` and `\` get their own handling first).
    Escape,
    /// The dot: a possible `.` or `..` segment.
    Dot,
    /// NUL: percent-encoded, and the path is invalid.
    Invalid,
}

const fn class_of(b: u8) -> Class {
    match b {
        0 => Class::Invalid,
        b'.' => Class::Dot,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => Class::Unescape,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'/' | b':' | b';'
        | b'=' | b'@' | b'[' | b']' => Class::Pass,
        // Controls, space, `"`, `#`, `%`, `<`, `>`, `?`, `\`, `^`, `` ` ``, `{`, `|`, `}`, DEL
        // and every byte of a non-ASCII character.
        _ => Class::Escape,
    }
}

const fn is_slash(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Whether canonicalizing `path` would give it back unchanged, in one pass and without
/// building anything: it starts with `/`, holds only bytes copied as they are, and no dot
/// starts a `.` or `..` segment.
pub(crate) fn is_canonical(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    for (i, &b) in path.iter().enumerate() {
        match class_of(b) {
            Class::Pass | Class::Unescape => {}
            Class::Dot => {
                // Escapes are not copied as they are, so only literal dots can be here.
                let after_slash = i.checked_sub(1).and_then(|p| path.get(p)) == Some(&b'/');
                if after_slash {
                    let ends_segment = |at: usize| path.get(at).is_none_or(|&c| is_slash(c));
                    if ends_segment(i + 1)
                        || (path.get(i + 1) == Some(&b'.') && ends_segment(i + 2))
                    {
                        return false;
                    }
                }
            }
            Class::Escape | Class::Invalid => return false,
        }
    }
    true
}

/// The value of a hex digit.
const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte a `%XX` escape at `at` stands for (`DecodeEscaped`); nothing is checked at `at`
/// itself.
fn decode_escape(s: &[u8], at: usize) -> Option<u8> {
    let hi = hex_value(*s.get(at + 1)?)?;
    let lo = hex_value(*s.get(at + 2)?)?;
    Some((hi << 4) | lo)
}

/// The length of the dot at `at` (`IsDot`): 1 for `.`, 3 for `%2e` or `%2E`, else 0.
fn dot_len(s: &[u8], at: usize) -> usize {
    match s.get(at..) {
        Some([b'.', ..]) => 1,
        Some([b'%', b'2', b'e' | b'E', ..]) => 3,
        _ => 0,
    }
}

/// What a dot that starts a segment is (`ClassifyAfterDot`).
enum AfterDot {
    /// Part of a name.
    Name,
    /// A `.` segment; the input to skip after the dot.
    Current(usize),
    /// A `..` segment; the input to skip after the first dot.
    Parent(usize),
}

fn classify_after_dot(s: &[u8], after_dot: usize) -> AfterDot {
    let Some(&next) = s.get(after_dot) else {
        return AfterDot::Current(0);
    };
    if is_slash(next) {
        return AfterDot::Current(1);
    }
    let second = dot_len(s, after_dot);
    if second > 0 {
        match s.get(after_dot + second) {
            None => return AfterDot::Parent(second),
            Some(&c) if is_slash(c) => return AfterDot::Parent(second + 1),
            Some(_) => {}
        }
    }
    AfterDot::Name
}

/// Shortens `out`, which ends with a `/`, to the `/` before (`BackUpToPreviousSlash`); never
/// before `begin`.
fn back_up_to_previous_slash(begin: usize, out: &mut Vec<u8>) {
    let Some(mut i) = out.len().checked_sub(1) else {
        return;
    };
    if i <= begin {
        return;
    }
    i -= 1;
    while i > begin && out.get(i) != Some(&b'/') {
        i -= 1;
    }
    out.truncate(i + 1);
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(b: u8, out: &mut Vec<u8>) {
    out.push(b'%');
    out.push(HEX_UPPER.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
    out.push(HEX_UPPER.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
}

/// Chromium's nested-escape guard (`CheckForNestedEscapes`): a byte was just decoded within two
/// output bytes of a `%` that did not start an escape in the input (at `percent` in `out`).
/// When that `%` and the bytes after it now read as an escape, the `%` becomes `%25`, so that
/// canonicalizing again does not decode it. `next` is the next input byte to read.
fn check_nested_escapes(input: &[u8], next: usize, percent: usize, out: &mut Vec<u8>) {
    let len = out.len();
    let Some(&last) = out.last() else {
        return;
    };
    let append_next = percent + 2 == len;
    if append_next {
        match input.get(next) {
            Some(&b) if b < 0x80 => out.push(b),
            _ => return,
        }
    }
    if decode_escape(out, percent).is_some() {
        if !append_next && let Some(&c) = out.get(percent + 1) {
            out.push(c);
        }
        if let Some(b) = out.get_mut(percent + 1) {
            *b = b'2';
        }
        if let Some(b) = out.get_mut(percent + 2) {
            *b = b'5';
        }
        out.push(last);
    } else if append_next {
        out.truncate(len);
    }
}

/// Chromium's `DoPath` over the whole `path` (no query), appended to `out`; `false` when the
/// path is invalid (what was appended is then the canonical form with the NUL encoded).
pub(crate) fn canonicalize_into(path: &[u8], out: &mut Vec<u8>) -> bool {
    let begin = out.len();
    match path.first() {
        None => {
            out.push(b'/');
            return true;
        }
        Some(&first) if !is_slash(first) => out.push(b'/'),
        Some(_) => {}
    }
    let mut valid = true;
    // Where in `out` a `%` that did not start an escape was copied (the last one).
    let mut stray_percent: Option<usize> = None;
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        let class = class_of(b);
        if matches!(class, Class::Pass | Class::Unescape) {
            out.push(b);
            i += 1;
            continue;
        }
        let dot = dot_len(path, i);
        if dot > 0 {
            if out.len() > begin && out.last() == Some(&b'/') {
                match classify_after_dot(path, i + dot) {
                    AfterDot::Name => {
                        out.push(b'.');
                        i += dot;
                    }
                    AfterDot::Current(skip) => i += dot + skip,
                    AfterDot::Parent(skip) => {
                        back_up_to_previous_slash(begin, out);
                        i += dot + skip;
                    }
                }
            } else {
                out.push(b'.');
                i += dot;
            }
        } else if b == b'\\' {
            out.push(b'/');
            i += 1;
        } else if b == b'%' {
            match decode_escape(path, i) {
                Some(value) if class_of(value) == Class::Unescape => {
                    out.push(value);
                    i += 3;
                    if let Some(percent) = stray_percent
                        && percent + 3 >= out.len()
                    {
                        check_nested_escapes(path, i, percent, out);
                    }
                }
                Some(value) => {
                    // Kept as written, hex case included.
                    out.extend_from_slice(path.get(i..i + 3).unwrap_or(b"%"));
                    if class_of(value) == Class::Invalid {
                        valid = false;
                    }
                    i += 3;
                }
                None => {
                    stray_percent = Some(out.len());
                    out.push(b'%');
                    i += 1;
                }
            }
        } else {
            push_escaped(b, out);
            if class == Class::Invalid {
                valid = false;
            }
            i += 1;
        }
    }
    valid
}

// === merge_slashes, unescape_slashes ===

/// Envoy's `PathUtil::mergeSlashes` (`merge_slashes: true`): in the path before the first `?`,
/// runs of `/` become one. Envoy rebuilds such a path from its non-empty segments, with a
/// leading and a trailing `/` when the path had them, so `//` stays `//`.
///
/// ```
/// use portcullis_proxy_core::path::merge_slashes;
///
/// assert_eq!(merge_slashes("//a///b/?c=//d"), "/a/b/?c=//d");
/// assert_eq!(merge_slashes("a//b"), "a/b");
/// ```
pub fn merge_slashes(target: &str) -> Cow<'_, str> {
    let (path, query) = split_query(target);
    if !path.contains("//") {
        return Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len());
    if path.starts_with('/') {
        out.push('/');
    }
    for (n, segment) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if n > 0 {
            out.push('/');
        }
        out.push_str(segment);
    }
    if path.ends_with('/') {
        out.push('/');
    }
    out.push_str(query);
    if out == target {
        // Slashes only: `//` rebuilds as `//`.
        return Cow::Borrowed(target);
    }
    Cow::Owned(out)
}

/// Envoy's `PathUtil::unescapeSlashes` (`path_with_escaped_slashes_action:
/// UNESCAPE_AND_FORWARD`): in the path before the first `?`, `%2F` and `%2f` become `/`, `%5C`
/// and `%5c` become `\`. The result is not scanned again (`%%2F2F` is `%/2F`).
///
/// ```
/// use portcullis_proxy_core::path::unescape_slashes;
///
/// assert_eq!(unescape_slashes("/a%2Fb%5cc?d=%2F"), r"/a/b\c?d=%2F");
/// ```
pub fn unescape_slashes(target: &str) -> Cow<'_, str> {
    let (path, query) = split_query(target);
    let bytes = path.as_bytes();
    let escaped_slash = |at: usize| match bytes.get(at..at + 3) {
        Some([b'%', b'2', b'f' | b'F']) => Some('/'),
        Some([b'%', b'5', b'c' | b'C']) => Some('\\'),
        _ => None,
    };
    let Some(first) = path
        .match_indices('%')
        .map(|(at, _)| at)
        .find(|&at| escaped_slash(at).is_some())
    else {
        return Cow::Borrowed(target);
    };
    let mut out = String::with_capacity(target.len());
    out.push_str(path.get(..first).unwrap_or(""));
    let mut rest_start = first;
    let mut i = first;
    while i < path.len() {
        if let Some(slash) = escaped_slash(i) {
            out.push_str(path.get(rest_start..i).unwrap_or(""));
            out.push(slash);
            i += 3;
            rest_start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(path.get(rest_start..).unwrap_or(""));
    out.push_str(query);
    Cow::Owned(out)
}
