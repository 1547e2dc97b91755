//! Path rewrites: Envoy's `prefix_rewrite` and `regex_rewrite`.

use regex::{Regex, RegexBuilder};

use crate::error::InvalidAction;
use crate::request::path_without_query;

/// Upper bound on the compiled size of one configured regular expression.
const REGEX_SIZE_LIMIT: usize = 1 << 22;

/// How the route's path was matched; a prefix rewrite replaces exactly the part this matched.
///
/// Istio generates one Envoy route per match block, each with the same action, so the action
/// of each route knows its own path-match kind. A match block without a `uri` condition is a
/// prefix match on `/` ([`PathMatchKind::catch_all`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatchKind {
    /// `uri: {prefix: …}` — the rewrite replaces this many leading bytes of the path
    /// (the same number when the match ignored case).
    Prefix(String),
    /// `uri: {exact: …}` — the rewrite replaces the whole path; the query is kept.
    Exact(String),
    /// `uri: {regex: …}` — the rewrite replaces the whole path; the query is kept.
    Regex,
}

impl PathMatchKind {
    /// The implicit match of a block without a `uri` condition: prefix `/`.
    pub fn catch_all() -> Self {
        Self::Prefix("/".to_owned())
    }
}

/// A compiled `uriRegexRewrite` (Envoy `regex_rewrite`): every non-overlapping match in the
/// path (query excluded) is replaced by the substitution; `\1`…`\9` name capture groups.
///
/// ```
/// use portcullis_proxy_core::rewrite::RegexRewrite;
///
/// let rewrite = RegexRewrite::new("^/service/([^/]+)(/.*)$", r"\2/instance/\1")?;
/// assert_eq!(rewrite.apply("/service/foo/v1/api?x=1"), "/v1/api/instance/foo?x=1");
/// # Ok::<(), portcullis_proxy_core::action::InvalidAction>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegexRewrite {
    regex: Regex,
    substitution: String,
    replacement: String,
}

/// Compares the configuration: same pattern and same substitution.
impl PartialEq for RegexRewrite {
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str() && self.substitution == other.substitution
    }
}

impl RegexRewrite {
    /// Compiles `pattern` (RE2 syntax, searched unanchored) and checks `substitution`
    /// (RE2 rewrite syntax: `\0`–`\9` for groups, `\\` for a backslash).
    pub fn new(pattern: &str, substitution: &str) -> Result<Self, InvalidAction> {
        let regex = compile_regex(pattern)?;
        let replacement = re2_substitution_to_rust(substitution, regex.captures_len())?;
        Ok(Self {
            regex,
            substitution: substitution.to_owned(),
            replacement,
        })
    }

    /// The pattern as configured.
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    /// The substitution as configured.
    pub fn substitution(&self) -> &str {
        &self.substitution
    }

    /// Rewrites a `:path`: the part before `?`/`#` is rewritten, the rest is kept as is.
    pub fn apply(&self, path: &str) -> String {
        let just_path = path_without_query(path);
        let rest = path.get(just_path.len()..).unwrap_or("");
        let mut out = self
            .regex
            .replace_all(just_path, self.replacement.as_str())
            .into_owned();
        out.push_str(rest);
        out
    }
}

pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, InvalidAction> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| InvalidAction::Regex {
            pattern: pattern.to_owned(),
            reason: err.to_string(),
        })
}

/// Converts an RE2 rewrite string (`\1`, `\\`) into `regex`'s replacement syntax (`${1}`, `$$`).
fn re2_substitution_to_rust(
    substitution: &str,
    captures_len: usize,
) -> Result<String, InvalidAction> {
    let invalid = |reason: String| InvalidAction::RegexSubstitution {
        substitution: substitution.to_owned(),
        reason,
    };
    let mut out = String::with_capacity(substitution.len() + 8);
    let mut chars = substitution.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some(d @ '0'..='9') => {
                    let group = d.to_digit(10).map_or(usize::MAX, |g| g as usize);
                    if group >= captures_len {
                        return Err(invalid(format!(
                            "group \\{group} does not exist in the pattern"
                        )));
                    }
                    out.push_str("${");
                    out.push(d);
                    out.push('}');
                }
                Some(other) => {
                    return Err(invalid(format!("invalid escape \\{other}")));
                }
                None => return Err(invalid("trailing backslash".to_owned())),
            },
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A route's path rewrite.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum PathRewrite {
    /// Istio `rewrite.uri` (Envoy `prefix_rewrite`): replaces the part of the path the route
    /// matched, see [`prefix_rewrite`].
    Prefix {
        /// How the route matched the path.
        matched: PathMatchKind,
        /// What replaces the matched part.
        replacement: String,
    },
    /// Istio `rewrite.uriRegexRewrite` (Envoy `regex_rewrite`).
    Regex(RegexRewrite),
}

/// Applies a [`PathRewrite`] to a `:path` (query included).
pub fn rewrite_path(path: &str, rewrite: &PathRewrite) -> String {
    match rewrite {
        PathRewrite::Prefix {
            matched,
            replacement,
        } => prefix_rewrite(path, matched, replacement),
        PathRewrite::Regex(regex) => regex.apply(path),
    }
}

/// Envoy's prefix rewrite: `replacement` + the path after the matched part.
///
/// * prefix match: exactly `prefix.len()` leading bytes are replaced, not a path segment:
///   prefix `/foo`, rewrite `/bar`: `/foobar` → `/barbar`; rewrite `/` gives `/foo/x` → `//x`;
/// * exact match: the whole path is replaced, the query kept (`/login?x=1` → `/auth/login?x=1`);
/// * regex match: the whole path (up to `?`/`#`) is replaced, the query kept.
///
/// The caller guarantees that `path` did match; if it is shorter than the matched part,
/// only `replacement` remains.
///
/// ```
/// use portcullis_proxy_core::{rewrite::{prefix_rewrite, PathMatchKind}};
///
/// let foo = PathMatchKind::Prefix("/foo".into());
/// assert_eq!(prefix_rewrite("/foobar", &foo, "/bar"), "/barbar");
/// assert_eq!(prefix_rewrite("/foo/x?q", &foo, "/"), "//x?q");
/// assert_eq!(prefix_rewrite("/a", &PathMatchKind::catch_all(), "/v2/"), "/v2/a");
/// ```
pub fn prefix_rewrite(path: &str, matched: &PathMatchKind, replacement: &str) -> String {
    let matched_len = match matched {
        PathMatchKind::Prefix(prefix) => prefix.len(),
        PathMatchKind::Exact(exact) => exact.len(),
        PathMatchKind::Regex => path_without_query(path).len(),
    };
    let rest = path.get(matched_len..).unwrap_or("");
    let mut out = String::with_capacity(replacement.len() + rest.len());
    out.push_str(replacement);
    out.push_str(rest);
    out
}
