//! Vectors ported from Envoy, Chromium and Istio (each with the file and line it comes from),
//! then properties.
//!
//! Sources, as read:
//! * Envoy `test/common/http/path_utility_test.cc` at envoyproxy/envoy 044d8204fd5d;
//! * Chromium `url/url_canon_unittest.cc` (`TEST(URLCanonTest, Path)`), in the googleurl copy
//!   zasdaym/googleurl 49d975227bbc; only the 8-bit cases that are valid UTF-8 (a `&str` cannot
//!   hold the others), with the results of the 8-bit run, which Envoy's snapshot shares;
//! * Istio `tests/integration/security/normalization_test.go` (`TestNormalization`), lines of the
//!   copy read from the code index (istio/istio, 2025).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;

use proptest::prelude::*;

use super::{
    PathNormalization, canonical_path, canonicalize_into, is_canonical, merge_slashes, normalize,
    reference, unescape_slashes,
};

const MODES: [PathNormalization; 4] = PathNormalization::ALL;

fn canon(path: &str) -> Option<String> {
    canonical_path(path).ok().map(Cow::into_owned)
}

fn norm(target: &str, mode: PathNormalization) -> Option<String> {
    normalize(target, mode).ok().map(Cow::into_owned)
}

// === Envoy ===

#[test]
fn envoy_already_normal_paths_are_borrowed() {
    // path_utility_test.cc:31 (AlreadyNormalPaths).
    for path in ["/xyz", "/x/y/z"] {
        assert!(matches!(canonical_path(path), Ok(Cow::Borrowed(p)) if p == path));
        assert!(matches!(
            normalize(path, PathNormalization::Base),
            Ok(Cow::Borrowed(_))
        ));
    }
}

#[test]
fn envoy_invalid_paths() {
    // path_utility_test.cc:51-52 (InvalidPaths).
    for path in [
        "/xyz/.%00../abc",
        "/xyz/%00.%00./abc",
        "/xyz/AAAAA%%0000/abc",
    ] {
        let err = canonical_path(path).unwrap_err();
        assert_eq!(err.details(), "path_normalization_failed", "{path}");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }
}

#[test]
fn envoy_normalize_valid_paths() {
    // path_utility_test.cc:71-80 (NormalizeValidPaths).
    let cases = [
        ("/a/b/../c", "/a/c"),
        ("/a/b/./c", "/a/b/c"),
        ("a/b/../c", "/a/c"),
        ("/a/b/../../../../c", "/c"),
        ("/a/..\\c", "/c"),
        ("/%c0%af", "/%c0%af"),
        ("/%5c%25", "/%5c%25"),
        ("/a/b/%2E%2E/c", "/a/c"),
        ("/a/b/%2E./c", "/a/c"),
        ("/a/b/%2E/c", "/a/b/c"),
        ("..", "/"),
        ("/../a/b", "/a/b"),
        ("/./a/b", "/a/b"),
    ];
    for (input, want) in cases {
        assert_eq!(canon(input).as_deref(), Some(want), "{input}");
    }
}

#[test]
fn envoy_normalize_case_path() {
    // path_utility_test.cc:121-124 (NormalizeCasePath).
    let cases = [
        ("/A/B/C", "/A/B/C"),
        ("/a/b/%2E%2E/c", "/a/c"),
        ("/a/b/%2e%2e/c", "/a/c"),
        ("/a/%2F%2f/c", "/a/%2F%2f/c"),
    ];
    for (input, want) in cases {
        assert_eq!(canon(input).as_deref(), Some(want), "{input}");
    }
}

#[test]
fn envoy_merge_slashes() {
    // path_utility_test.cc:164-176 (MergeSlashes).
    let cases = [
        ("", ""),
        ("a//b/c", "a/b/c"),
        ("/a//b/c/", "/a/b/c/"),
        ("a//b/c/", "a/b/c/"),
        ("/a", "/a"),
        ("//a/b/c", "/a/b/c"),
        ("/a//b/c", "/a/b/c"),
        ("/a/b/c//", "/a/b/c/"),
        ("/a///b/c", "/a/b/c"),
        ("/a////b/c", "/a/b/c"),
        ("/a//b?a=///c", "/a/b?a=///c"),
        ("/a//b?", "/a/b?"),
        ("//a/?b", "/a/?b"),
    ];
    for (input, want) in cases {
        assert_eq!(merge_slashes(input), want, "{input}");
    }
    // Not an Envoy vector: what its StrJoin-based rebuild gives for slashes only.
    assert_eq!(merge_slashes("//"), "//");
    assert_eq!(merge_slashes("////?x"), "//?x");
}

#[test]
fn envoy_query_is_kept() {
    // path_utility.cc `PathTransformer::rfcNormalize`: the path before the first `?` only.
    assert_eq!(canon("/a/../b?c=/../d").as_deref(), Some("/b?c=/../d"));
    assert_eq!(canon("/a/%2e?%2e").as_deref(), Some("/a/?%2e"));
    assert_eq!(canon("?q").as_deref(), Some("/?q"));
    assert_eq!(canon("").as_deref(), Some("/"));
}

#[test]
fn envoy_unescape_slashes() {
    // path_utility.cc `PathUtil::unescapeSlashes`: %2F %2f %5C %5c, path only.
    assert_eq!(
        unescape_slashes("/a%2fb%2Fc%5cd%5Ce?%2f"),
        "/a/b/c\\d\\e?%2f"
    );
    assert_eq!(unescape_slashes("%%2F2F"), "%/2F");
    assert!(matches!(unescape_slashes("/a%20b"), Cow::Borrowed(_)));
    assert!(matches!(unescape_slashes("/a?%2f"), Cow::Borrowed(_)));
}

// === Chromium ===

#[test]
fn chromium_path_collapsing() {
    // url_canon_unittest.cc:1072-1093.
    let cases = [
        ("/././foo", "/foo"),                        // :1072
        ("/./.foo", "/.foo"),                        // :1073
        ("/foo/.", "/foo/"),                         // :1074
        ("/foo/./", "/foo/"),                        // :1075
        ("/foo/bar/..", "/foo/"),                    // :1077
        ("/foo/bar/../", "/foo/"),                   // :1078
        ("/foo/..bar", "/foo/..bar"),                // :1080
        ("/foo/bar/../ton", "/foo/ton"),             // :1082
        ("/foo/bar/../ton/../../a", "/a"),           // :1083
        ("/foo/../../..", "/"),                      // :1085
        ("/foo/../../../ton", "/ton"),               // :1086
        ("/foo/%2e", "/foo/"),                       // :1088
        ("/foo/%2e%2", "/foo/.%2"),                  // :1089
        ("/foo/%2e./%2e%2e/.%2e/%2e.bar", "/..bar"), // :1090
        ("////../..", "//"),                         // :1093
    ];
    for (input, want) in cases {
        assert_eq!(canon(input).as_deref(), Some(want), "{input}");
    }
}

#[test]
fn chromium_escaping() {
    // url_canon_unittest.cc:1096-1142 (8-bit inputs; 1106, 1110-1111 are not valid UTF-8 or
    // are UTF-16 only).
    let cases = [
        ("/foo", "/foo"),                                         // :1096
        ("/%20foo", "/%20foo"),                                   // :1098
        ("/foo%", "/foo%"),                                       // :1100
        ("/foo%2", "/foo%2"),                                     // :1101
        ("/foo%2zbar", "/foo%2zbar"),                             // :1104
        ("/foo%2\u{a9}zbar", "/foo%2%C2%A9zbar"),                 // :1105
        ("/foo%41%7a", "/fooAz"),                                 // :1108
        ("/(%28:%3A%29)", "/(%28:%3A%29)"),                       // :1115
        ("/%3A%3a%3C%3c", "/%3A%3a%3C%3c"),                       // :1118
        ("/foo\tbar", "/foo%09bar"),                              // :1120
        ("\\foo\\bar", "/foo/bar"),                               // :1122
        ("/foo#bar", "/foo%23bar"),                               // :1125
        ("/%7Ffp3%3Eju%3Dduvgw%3Dd", "/%7Ffp3%3Eju%3Dduvgw%3Dd"), // :1128
        ("/@asdf%40", "/@asdf%40"),                               // :1130
        ("/%A%42", "/%25AB"),                                     // :1133
        ("/%%41B", "/%25AB"),                                     // :1134
        ("/%%41%42", "/%25AB"),                                   // :1135
        ("/%%41", "/%A"),                                         // :1138
        ("/%%470", "/%G0"),                                       // :1141
        ("/%%2D%41", "/%-A"),                                     // :1142
    ];
    for (input, want) in cases {
        assert_eq!(canon(input).as_deref(), Some(want), "{input}");
    }
}

#[test]
fn chromium_encoding_and_invalid() {
    // url_canon_unittest.cc:1149, 1152.
    assert_eq!(
        canon("/\u{4f60}\u{597d}\u{4f60}\u{597d}").as_deref(),
        Some("/%E4%BD%A0%E5%A5%BD%E4%BD%A0%E5%A5%BD")
    );
    assert_eq!(canon("/\u{fdd0}zyx").as_deref(), Some("/%EF%B7%90zyx"));
    // url_canon_unittest.cc:1113: `%00` fails (Chromium's output would be "/foo%00Q").
    assert!(canonical_path("/foo%00%51").is_err());
    // url_canon_unittest.cc:1195-1205: a raw NUL fails (output "/ab%00c").
    assert!(canonical_path("/ab\0c").is_err());
    let mut out = Vec::new();
    assert!(!canonicalize_into(b"/ab\0c", &mut out));
    assert_eq!(out, b"/ab%00c");
}

// === Istio ===

/// `TestNormalization`'s table for one mode: (request path, path the upstream sees).
fn istio_table(mode: PathNormalization, cases: &[(&str, &str)]) {
    for (input, want) in cases {
        assert_eq!(norm(input, mode).as_deref(), Some(*want), "{mode} {input}");
    }
}

#[test]
fn istio_none() {
    // normalization_test.go:95-110 ("None").
    istio_table(
        PathNormalization::None,
        &[
            ("/", "/"),
            ("/app#foo", "/app"),
            ("/app/", "/app/"),
            ("/app/../admin", "/app/../admin"),
            ("/app", "/app"),
            ("/app//", "/app//"),
            ("/app/%2f", "/app/%2f"),
            ("/app%2f/", "/app%2f/"),
            ("/xyz%30..//abc", "/xyz%30..//abc"),
            ("/app/%2E./admin", "/app/%2E./admin"),
            (r"/app\admin", r"/app\admin"),
            (r"/app/\/\/\admin", r"/app/\/\/\admin"),
            (r"/%2Fapp%5cadmin%5Cabc", r"/%2Fapp%5cadmin%5Cabc"),
            (
                r"/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc",
                r"/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc",
            ),
            ("/app//../admin", "/app//../admin"),
            ("/app//../../admin", "/app//../../admin"),
        ],
    );
}

#[test]
fn istio_base() {
    // normalization_test.go:117-132 ("Base").
    istio_table(
        PathNormalization::Base,
        &[
            ("/", "/"),
            ("/app#foo", "/app"),
            ("/app/", "/app/"),
            ("/app/../admin", "/admin"),
            ("/app", "/app"),
            ("/app//", "/app//"),
            ("/app/%2f", "/app/%2f"),
            ("/app%2f/", "/app%2f/"),
            ("/xyz%30..//abc", "/xyz0..//abc"),
            ("/app/%2E./admin", "/admin"),
            (r"/app\admin", "/app/admin"),
            (r"/app/\/\/\admin", "/app//////admin"),
            (r"/%2Fapp%5cadmin%5Cabc", r"/%2Fapp%5cadmin%5Cabc"),
            (
                r"/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc",
                "/%5Capp%2f%5c%2F..%2fadmin%5c/abc",
            ),
            ("/app//../admin", "/app/admin"),
            ("/app//../../admin", "/admin"),
        ],
    );
}

#[test]
fn istio_merge_slashes() {
    // normalization_test.go:139-154 ("MergeSlashes").
    istio_table(
        PathNormalization::MergeSlashes,
        &[
            ("/", "/"),
            ("/app#foo", "/app"),
            ("/app/", "/app/"),
            ("/app/../admin", "/admin"),
            ("/app", "/app"),
            ("/app//", "/app/"),
            ("/app/%2f", "/app/%2f"),
            ("/app%2f/", "/app%2f/"),
            ("/xyz%30..//abc", "/xyz0../abc"),
            ("/app/%2E./admin", "/admin"),
            (r"/app\admin", "/app/admin"),
            (r"/app/\/\/\admin", "/app/admin"),
            (r"/%2Fapp%5cadmin%5Cabc", r"/%2Fapp%5cadmin%5Cabc"),
            (
                r"/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc",
                "/%5Capp%2f%5c%2F..%2fadmin%5c/abc",
            ),
            ("/app//../admin", "/app/admin"),
            ("/app//../../admin", "/admin"),
        ],
    );
}

#[test]
fn istio_decode_and_merge_slashes() {
    // normalization_test.go:161-178 ("DecodeAndMergeSlashes").
    istio_table(
        PathNormalization::DecodeAndMergeSlashes,
        &[
            ("/", "/"),
            ("/app#foo", "/app"),
            ("/app/", "/app/"),
            ("/app/../admin", "/admin"),
            ("/app", "/app"),
            ("/app//", "/app/"),
            ("/app/%2f", "/app/"),
            ("/app%2f/", "/app/"),
            ("/xyz%30..//abc", "/xyz0../abc"),
            ("/app/%2E./admin", "/admin"),
            (r"/app\admin", "/app/admin"),
            (r"/app/\/\/\admin", "/app/admin"),
            (r"/%2Fapp%5cadmin%5Cabc", "/app/admin/abc"),
            (r"/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc", "/app/admin/abc"),
            ("/app//../admin", "/app/admin"),
            ("/app//../../admin", "/admin"),
            ("/%c0%2e%c0%2e/admin", "/%c0.%c0./admin"),
            ("/%c0%2fadmin", "/%c0/admin"),
        ],
    );
}

#[test]
fn istio_not_normalized() {
    // normalization_test.go:185-207 ("NotNormalized", in DECODE_AND_MERGE_SLASHES).
    let unchanged = [
        "/0x2e0x2e/admin",
        "/0x2e0x2e0x2fadmin",
        "/0x2e0x2e0x5cadmin",
        "/0x2f0x2fadmin",
        "/0x5c0x5cadmin",
        "/%25c0%25ae%25c1%259cadmin",
        "/%25c0%25ae%25c0%25ae/admin",
        "/%25c0%25afadmin",
        "/%25c1%259cadmin",
        "/%252e%252e/admin",
        "/%252e%252e%252fadmin",
        "/%c1%9cadmin",
        "/%c0%ae%c0%ae/admin",
        "/%c0%afadmin",
        "/.../admin",
        "/..../admin",
        "/..;/admin",
        "/;/admin",
        "/admin;a=b",
        "/admin;a=b/xyz",
        "/admin,a=b/xyz",
        "/Admin",
        "/ADMIN",
    ];
    for path in unchanged {
        assert_eq!(
            norm(path, PathNormalization::DecodeAndMergeSlashes).as_deref(),
            Some(path)
        );
    }
}

#[test]
fn istio_percent_encoded() {
    // normalization_test.go:33-58 (`supportedPercentEncode`), 64-82 and 211-215
    // ("PercentEncoded", DECODE_AND_MERGE_SLASHES): `/admin%xx` for every byte but NUL; the
    // unreserved characters, `.`, `/` and `\` (as `/`) are decoded, the rest kept.
    for byte in 1..=0xffu8 {
        let input = format!("/admin%{byte:02x}");
        let decoded = byte.is_ascii_alphanumeric() || b"-._~/\\".contains(&byte);
        let want = if decoded {
            let c = if byte == b'\\' { '/' } else { char::from(byte) };
            format!("/admin{c}")
        } else {
            input.clone()
        };
        assert_eq!(
            norm(&input, PathNormalization::DecodeAndMergeSlashes),
            Some(want),
            "{input}"
        );
    }
    // normalization_test.go:220 ("Invalid"): `/admin%00` is answered 400.
    assert!(normalize("/admin%00", PathNormalization::DecodeAndMergeSlashes).is_err());
}

// === The defect this module fixes (issue 15) ===

#[test]
fn encoded_dot_segments_do_not_escape_a_prefix() {
    for target in [
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/public/%2e./admin",
        r"/public\..\admin",
        "/public/../admin",
    ] {
        for mode in [
            PathNormalization::Base,
            PathNormalization::MergeSlashes,
            PathNormalization::DecodeAndMergeSlashes,
        ] {
            assert_eq!(
                norm(target, mode).as_deref(),
                Some("/admin"),
                "{mode} {target}"
            );
        }
    }
}

#[test]
fn vectors_of_the_functions_this_replaces() {
    // The gateway's and the simulation's own dot-segment removal had these; BASE keeps them.
    for (input, want) in [
        ("/a/./b/../c?x=/../", "/a/c?x=/../"),
        ("/public/../admin", "/admin"),
        ("/..", "/"),
        ("/a/b/..", "/a/"),
        ("/plain?q", "/plain?q"),
        ("/plain?/./x", "/plain?/./x"),
        ("/file.txt", "/file.txt"),
        ("/a/./b?", "/a/b?"),
        ("/a/.hidden", "/a/.hidden"),
        ("/a/../b", "/b"),
        ("/a/./b/", "/a/b/"),
        ("/../x", "/x"),
    ] {
        assert_eq!(
            norm(input, PathNormalization::Base).as_deref(),
            Some(want),
            "{input}"
        );
    }
}

#[test]
fn modes_parse_and_print() {
    for mode in MODES {
        assert_eq!(mode.as_str().parse::<PathNormalization>(), Ok(mode));
        assert_eq!(mode.to_string(), mode.as_str());
    }
    assert_eq!("DEFAULT".parse(), Ok(PathNormalization::Base));
    assert_eq!(PathNormalization::default(), PathNormalization::Base);
    assert!("base".parse::<PathNormalization>().is_err());
}

#[test]
fn unchanged_targets_are_borrowed() {
    for (target, mode) in [
        ("/a/b?c=/../d", PathNormalization::Base),
        ("/a/%20b", PathNormalization::Base),
        ("/a//b", PathNormalization::Base),
        ("/a/b", PathNormalization::DecodeAndMergeSlashes),
        ("/a/b#frag", PathNormalization::MergeSlashes),
        ("/a/../b", PathNormalization::None),
    ] {
        assert!(
            matches!(normalize(target, mode), Ok(Cow::Borrowed(_))),
            "{mode} {target}"
        );
    }
}

// === Properties ===

/// Pieces that make dot segments, escapes and slashes likely.
const PIECES: &[&str] = &[
    "/", "/", "\\", ".", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%", "%%", "%2",
    "%3", "%4", "%41", "%7e", "%25", "%30", "%c0", "%00", "a", "b", "A", "e", "E", "2", "5", "?",
    "#", " ", "\u{e9}", ";", "~", "//",
];

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|p| p.concat()),
        1 => ".{0,32}",
    ]
}

/// The path of a target (before `?`).
fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or("")
}

fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn canonical_paths_have_no_dot_segment_and_no_backslash(t in target(), mode in 1..4usize) {
        let mode = MODES[mode];
        if let Ok(out) = normalize(&t, mode) {
            let path = path_of(&out);
            prop_assert!(!has_dot_segment(path), "{} {:?} -> {:?}", mode, t, out);
            prop_assert!(!path.contains('\\'), "{} {:?} -> {:?}", mode, t, out);
            prop_assert!(!path.to_ascii_lowercase().contains("%2e"), "{} {:?} -> {:?}", mode, t, out);
            prop_assert!(path.starts_with('/'), "{} {:?} -> {:?}", mode, t, out);
            prop_assert!(!out.contains('#'), "{} {:?} -> {:?}", mode, t, out);
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing(t in target(), mode in 0..4usize) {
        let mode = MODES[mode];
        if let Ok(once) = normalize(&t, mode) {
            let twice = normalize(&once, mode);
            prop_assert!(
                matches!(&twice, Ok(Cow::Borrowed(_))),
                "{} {:?} -> {:?} -> {:?}", mode, t, once, twice
            );
        }
    }

    #[test]
    fn borrowed_exactly_when_unchanged(t in target(), mode in 0..4usize) {
        let mode = MODES[mode];
        let without_fragment = t.split('#').next().unwrap_or("");
        if let Ok(out) = normalize(&t, mode) {
            prop_assert_eq!(matches!(out, Cow::Borrowed(_)), out == without_fragment);
        }
    }

    #[test]
    fn the_fast_path_agrees(t in target()) {
        let path = path_of(&t);
        if is_canonical(path.as_bytes()) {
            let mut out = Vec::new();
            prop_assert!(canonicalize_into(path.as_bytes(), &mut out));
            prop_assert_eq!(out, path.as_bytes());
        }
    }

    #[test]
    fn agrees_with_the_reference(t in target(), mode in 0..4usize) {
        let mode = MODES[mode];
        if !reference::comparable(&t) {
            return Ok(());
        }
        let got = norm(&t, mode);
        let want = reference::normalize(&t, mode);
        prop_assert_eq!(got, want, "{} {:?}", mode, t);
    }
}
