//! A second, plain implementation of [`normalize`](super::normalize), for differential tests and
//! fuzzing; not part of the API.
//!
//! Where the real one follows Chromium's single pass over the bytes, this one works in stages a
//! reader can check against the module documentation: the path is cut into units (a slash, a
//! dot, or text), the units into segments, and `.` / `..` segments are resolved on a stack. It
//! does not model Chromium's nested-escape guard (a `%` that starts no escape, followed by
//! escapes that decode into one), so the two are only compared where every `%` of the path
//! starts an escape: see [`comparable`].

use super::PathNormalization;

/// Whether [`normalize`] is meant to agree with the real one on `target`: every `%` in the
/// path (before `?`, fragment removed) is followed by two hex digits.
pub(crate) fn comparable(target: &str) -> bool {
    let target = target.split('#').next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let bytes = path.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    })
}

/// The reference normalization: `None` when the path is invalid.
pub(crate) fn normalize(target: &str, mode: PathNormalization) -> Option<String> {
    let target = target.split('#').next().unwrap_or("");
    let (path, query) = match target.find('?') {
        Some(q) => target.split_at(q),
        None => (target, ""),
    };
    let mut path = path.to_owned();
    if mode == PathNormalization::DecodeAndMergeSlashes {
        // No replacement can produce or overlap another, so one pattern at a time is the
        // same as one pass.
        for (from, to) in [("%2F", "/"), ("%2f", "/"), ("%5C", "\\"), ("%5c", "\\")] {
            path = path.replace(from, to);
        }
    }
    if mode != PathNormalization::None {
        path = canonical(&path)?;
    }
    if matches!(
        mode,
        PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
    ) {
        path = merge(&path);
    }
    Some(path + query)
}

enum Unit {
    Slash,
    Dot,
    Text(String),
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~')
}

fn kept_as_is(b: u8) -> bool {
    unreserved(b) || b"!$&'()*+,:;=@[]".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn canonical(path: &str) -> Option<String> {
    let mut units = Vec::new();
    let mut invalid = false;
    let mut rest = path.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        let unit = match b {
            b'/' | b'\\' => Unit::Slash,
            b'.' => Unit::Dot,
            b'%' => match tail {
                [h, l, more @ ..] if hex(*h).is_some() && hex(*l).is_some() => {
                    rest = more;
                    let value = hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0);
                    if value == b'.' {
                        Unit::Dot
                    } else if unreserved(value) {
                        Unit::Text(char::from(value).to_string())
                    } else {
                        invalid |= value == 0;
                        Unit::Text(format!("%{}{}", char::from(*h), char::from(*l)))
                    }
                }
                _ => Unit::Text("%".to_owned()),
            },
            b if kept_as_is(b) => Unit::Text(char::from(b).to_string()),
            b => {
                invalid |= b == 0;
                Unit::Text(format!("%{b:02X}"))
            }
        };
        units.push(unit);
    }
    if invalid {
        return None;
    }
    // A path is read as if it started with a slash.
    if matches!(units.first(), Some(Unit::Slash)) {
        units.remove(0);
    }
    let mut segments: Vec<Vec<Unit>> = vec![Vec::new()];
    for unit in units {
        match unit {
            Unit::Slash => segments.push(Vec::new()),
            other => {
                if let Some(last) = segments.last_mut() {
                    last.push(other);
                }
            }
        }
    }
    let count = segments.len();
    let mut stack: Vec<String> = Vec::new();
    for (n, segment) in segments.into_iter().enumerate() {
        let last = n + 1 == count;
        match segment.as_slice() {
            [Unit::Dot] => {}
            [Unit::Dot, Unit::Dot] => {
                stack.pop();
            }
            units => {
                let text = units
                    .iter()
                    .map(|u| match u {
                        Unit::Dot => ".",
                        Unit::Text(t) => t.as_str(),
                        Unit::Slash => "/",
                    })
                    .collect();
                stack.push(text);
                continue;
            }
        }
        // A path ending in a dot segment ends with a slash.
        if last {
            stack.push(String::new());
        }
    }
    Some(stack.iter().map(|s| format!("/{s}")).collect())
}

fn merge(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    // Envoy rebuilds a path with `//` from its non-empty segments plus a leading and a
    // trailing slash: a path of slashes only keeps two.
    if out == "/" && path.starts_with("//") {
        out.push('/');
    }
    out
}
