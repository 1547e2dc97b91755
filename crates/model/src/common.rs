//! Types shared by several resources, and the conventions every model type follows.
//!
//! # Conventions
//!
//! The model mirrors Istio's protobuf messages, read the way Istio's own decoder reads them:
//!
//! * Field names are the proto3 JSON names (`sniHosts`); the protobuf names (`sni_hosts`) are
//!   accepted as aliases, as Istio's decoder accepts them.
//! * Plain proto3 scalars (`string`, `bool`, `uint32`, …) have no presence: they are plain Rust
//!   values whose unset state is the zero value, and they are omitted from output when zero.
//!   Wrapper types (`google.protobuf.UInt32Value`, `BoolValue`, `DoubleValue`) and messages have
//!   presence and are `Option`s. Repeated fields are `Vec`s and maps are `BTreeMap`s (empty means
//!   unset, as in proto3).
//! * Enumerations are `#[non_exhaustive]` Rust enums that read Istio's names (and, like Istio's
//!   decoder, the protobuf numbers); an unknown name is an error listing the accepted ones.
//! * A `oneof` is a Rust enum, so a document that sets two branches does not load.
//! * Unknown fields are errors ([`crate::LoadOptions`] can turn them into warnings).

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Whether a value equals its type's default: the proto3 "unset" test for plain scalars.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Reads `null` as the type's default, as protobuf JSON decoders read an explicit null message.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// The error for a name or number that is not one of an enumeration's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {enumeration} value {value:?}, expected one of {}", .accepted.join(", "))]
pub struct UnknownEnumValue {
    enumeration: &'static str,
    value: String,
    accepted: &'static [&'static str],
}

impl UnknownEnumValue {
    pub(crate) fn new(
        enumeration: &'static str,
        value: String,
        accepted: &'static [&'static str],
    ) -> Self {
        Self {
            enumeration,
            value,
            accepted,
        }
    }

    /// The names the enumeration accepts.
    pub fn accepted(&self) -> &'static [&'static str] {
        self.accepted
    }
}

/// Declares an Istio enumeration: a `#[non_exhaustive]` Rust enum that (de)serializes as
/// Istio's name, also reads the protobuf number, and implements `Display` and `FromStr`.
///
/// The first variant must be the proto3 zero value; it is the `Default`.
macro_rules! proto_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(#[$first_meta:meta])* $first:ident = ($first_wire:literal, $first_number:literal)
            $(, $(#[$vmeta:meta])* $variant:ident = ($wire:literal, $number:literal) )* $(,)?
        }
    ) => {
        $crate::common::proto_enum! {
            @emit $(#[$meta])* $name;
            ($(#[$first_meta])* #[default] $first, $first_wire, $first_number)
            $( ($(#[$vmeta])* $variant, $wire, $number) )*
        }
    };
    (
        @emit $(#[$meta:meta])* $name:ident;
        $( ($(#[$vmeta:meta])* $variant:ident, $wire:literal, $number:literal) )+
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        #[allow(clippy::use_self, reason = "generated for every enumeration")]
        impl $name {
            /// Every accepted name, in the order of Istio's API.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The name as Istio writes it.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $wire ),+ }
            }

            /// The protobuf enum number.
            pub fn number(self) -> i32 {
                match self { $( Self::$variant => $number ),+ }
            }

            /// The value with this name, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $wire => Some(Self::$variant), )+ _ => None }
            }

            /// The value with this protobuf number, if any.
            pub fn from_number(number: i64) -> Option<Self> {
                match number { $( $number => Some(Self::$variant), )+ _ => None }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::common::UnknownEnumValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_name(s).ok_or_else(|| {
                    $crate::common::UnknownEnumValue::new(stringify!($name), s.to_owned(), Self::NAMES)
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct EnumVisitor;
                impl ::serde::de::Visitor<'_> for EnumVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        write!(f, "one of {}", $name::NAMES.join(", "))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v).ok_or_else(|| E::unknown_variant(v, $name::NAMES))
                    }
                    fn visit_i64<E: ::serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::from_number(v).ok_or_else(|| {
                            E::invalid_value(::serde::de::Unexpected::Signed(v), &self)
                        })
                    }
                    fn visit_u64<E: ::serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        i64::try_from(v)
                            .ok()
                            .and_then($name::from_number)
                            .ok_or_else(|| E::invalid_value(::serde::de::Unexpected::Unsigned(v), &self))
                    }
                }
                deserializer.deserialize_any(EnumVisitor)
            }
        }
    };
}
pub(crate) use proto_enum;

/// How a string is compared: Istio's `StringMatch` oneof.
///
/// Regular expressions use RE2 syntax and must match the whole value.
///
/// ```
/// use portcullis_model::StringMatch;
///
/// let m: StringMatch = serde_json::from_str(r#"{"prefix": "/api"}"#)?;
/// assert_eq!(m, StringMatch::Prefix("/api".into()));
/// assert!(serde_json::from_str::<StringMatch>(r#"{"prefix": "/a", "exact": "/b"}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "StringMatchRepr", into = "StringMatchRepr")]
#[non_exhaustive]
pub enum StringMatch {
    /// The whole value equals this string.
    Exact(String),
    /// The value starts with this string.
    Prefix(String),
    /// The whole value matches this RE2 regular expression.
    Regex(String),
    /// `{}`: no branch set. Istio ignores such a match for `uri`, and treats it as "the header or
    /// parameter is present" for `headers`, `withoutHeaders` and `queryParams`.
    Unset,
}

impl StringMatch {
    /// The branch name as Istio writes it (`exact`, `prefix`, `regex`), or `None` for
    /// [`StringMatch::Unset`].
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Exact(_) => Some("exact"),
            Self::Prefix(_) => Some("prefix"),
            Self::Regex(_) => Some("regex"),
            Self::Unset => None,
        }
    }
}

/// The wire shape of a [`StringMatch`]: one optional key per branch.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StringMatchRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<StringMatchRepr> for StringMatch {
    type Error = OneofError;

    fn try_from(repr: StringMatchRepr) -> Result<Self, OneofError> {
        let StringMatchRepr {
            exact,
            prefix,
            regex,
        } = repr;
        let set = [
            exact.map(Self::Exact),
            prefix.map(Self::Prefix),
            regex.map(Self::Regex),
        ];
        one_of(set, &["exact", "prefix", "regex"]).map(|m| m.unwrap_or(Self::Unset))
    }
}

impl From<StringMatch> for StringMatchRepr {
    fn from(m: StringMatch) -> Self {
        let mut repr = Self::default();
        match m {
            StringMatch::Exact(s) => repr.exact = Some(s),
            StringMatch::Prefix(s) => repr.prefix = Some(s),
            StringMatch::Regex(s) => repr.regex = Some(s),
            StringMatch::Unset => {}
        }
        repr
    }
}

/// Two or more branches of a protobuf `oneof` were set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneofError {
    set: Vec<&'static str>,
    branches: &'static [&'static str],
}

impl fmt::Display for OneofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "only one of {} may be set, but {} are set",
            self.branches.join(", "),
            self.set.join(" and ")
        )
    }
}

impl std::error::Error for OneofError {}

/// Picks the one set branch of a oneof from its candidates (given in the order of `names`),
/// `None` when no branch is set, or an error naming every branch that is set.
pub(crate) fn one_of<T, const N: usize>(
    candidates: [Option<T>; N],
    names: &'static [&'static str],
) -> Result<Option<T>, OneofError> {
    let mut chosen = None;
    let mut set = Vec::new();
    for (candidate, name) in candidates.into_iter().zip(names.iter()) {
        if let Some(value) = candidate {
            set.push(*name);
            chosen.get_or_insert(value);
        }
    }
    if set.len() > 1 {
        return Err(OneofError {
            set,
            branches: names,
        });
    }
    Ok(chosen)
}

/// A percentage as a double (Istio's `Percent` message): `value: 0.1` means 0.1 %.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percent {
    /// The percentage, normally in `[0.0, 100.0]` (validation checks the range).
    #[serde(default)]
    pub value: f64,
}

/// Selects workloads by their labels (Istio's `WorkloadSelector`, as ServiceEntry and
/// WorkloadEntry use it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSelector {
    /// The labels a workload must carry, all of them.
    #[serde(
        default,
        deserialize_with = "crate::common::null_as_default",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A protobuf `bytes` field whose text is not base64 as the decoder reading it accepts.
///
/// `Display` is Go's `illegal base64 data`; the text is not API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidBytes {
    _private: (),
}

impl fmt::Display for InvalidBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("illegal base64 data")
    }
}

impl std::error::Error for InvalidBytes {}

/// Decodes base64 as Go's `encoding/base64` does with a given alphabet and padding:
/// line breaks (`\r`, `\n`) are skipped anywhere, non-zero trailing bits are accepted, and
/// padding is required exactly where the padded encodings put it, or refused.
fn go_base64(text: &str, url: bool, padded: bool) -> Result<Vec<u8>, InvalidBytes> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(if padded {
            DecodePaddingMode::RequireCanonical
        } else {
            DecodePaddingMode::RequireNone
        });
    let alphabet = if url {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    let engine = GeneralPurpose::new(alphabet, config);
    let decoded = if text.contains(['\r', '\n']) {
        let data: Vec<u8> = text
            .bytes()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect();
        engine.decode(data)
    } else {
        engine.decode(text)
    };
    decoded.map_err(|_| InvalidBytes { _private: () })
}

/// Decodes a protobuf `bytes` field as protobuf JSON (`protojson`, which Istio's decoder uses)
/// reads it: the URL-safe alphabet when the text contains `-` or `_`, the standard one
/// otherwise; padded when the text's length is a multiple of 4, unpadded otherwise.
///
/// ```
/// use portcullis_model::common::decode_proto_bytes;
///
/// assert_eq!(decode_proto_bytes("aGVsbG8=").unwrap(), b"hello");
/// assert_eq!(decode_proto_bytes("aGVsbG8").unwrap(), b"hello");
/// assert_eq!(decode_proto_bytes("-_8=").unwrap(), [0xfb, 0xff]);
/// assert!(decode_proto_bytes("a===").is_err());
/// assert!(decode_proto_bytes("aGVs bG8=").is_err());
/// ```
pub fn decode_proto_bytes(text: &str) -> Result<Vec<u8>, InvalidBytes> {
    go_base64(
        text,
        text.contains(['-', '_']),
        text.len().is_multiple_of(4),
    )
}

/// Decodes a field of OpenAPI `format: byte` as the Kubernetes API server checks it (the CRD
/// schema's layer): standard base64 with padding (Go's `base64.StdEncoding`).
///
/// ```
/// use portcullis_model::common::decode_openapi_bytes;
///
/// assert_eq!(decode_openapi_bytes("aGVsbG8=").unwrap(), b"hello");
/// assert!(decode_openapi_bytes("aGVsbG8").is_err());
/// assert!(decode_openapi_bytes("-_8=").is_err());
/// ```
pub fn decode_openapi_bytes(text: &str) -> Result<Vec<u8>, InvalidBytes> {
    go_base64(text, false, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, dead_code, unreachable_pub)]
mod tests {
    use super::*;

    proto_enum! {
        /// A test enumeration.
        pub enum Colour {
            /// zero
            Unspecified = ("UNSPECIFIED", 0),
            /// one
            Red = ("RED", 1),
        }
    }

    #[test]
    fn enum_reads_names_and_numbers_and_lists_alternatives() {
        assert_eq!(
            serde_json::from_str::<Colour>("\"RED\"").ok(),
            Some(Colour::Red)
        );
        assert_eq!(serde_json::from_str::<Colour>("1").ok(), Some(Colour::Red));
        let err = serde_json::from_str::<Colour>("\"BLUE\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `BLUE`"), "{err}");
        assert!(err.contains("`UNSPECIFIED` or `RED`"), "{err}");
        assert!(serde_json::from_str::<Colour>("7").is_err());
        assert_eq!(Colour::default(), Colour::Unspecified);
        assert_eq!(serde_json::to_string(&Colour::Red).unwrap(), "\"RED\"");
    }

    #[test]
    fn string_match_rejects_two_branches_and_keeps_empty() {
        let err = serde_json::from_str::<StringMatch>(r#"{"exact":"a","regex":"b"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("only one of exact, prefix, regex may be set"),
            "{err}"
        );
        assert_eq!(
            serde_json::from_str::<StringMatch>("{}").ok(),
            Some(StringMatch::Unset)
        );
        assert_eq!(serde_json::to_string(&StringMatch::Unset).unwrap(), "{}");
        assert_eq!(
            serde_json::from_str::<StringMatch>(r#"{"prefix":""}"#).ok(),
            Some(StringMatch::Prefix(String::new()))
        );
    }

    #[test]
    fn bytes_decode_as_go_does() {
        // Line breaks are skipped; the padding decision counts them, as protojson does.
        assert_eq!(decode_proto_bytes("aGVs\r\n\r\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_proto_bytes("aGVs\nbG8\n").unwrap(), b"hello");
        assert!(decode_proto_bytes("aGVs\nbG8=").is_err());
        assert_eq!(decode_proto_bytes("aGVsbA==").unwrap(), b"hell");
        assert_eq!(decode_proto_bytes("").unwrap(), b"");
        // Go accepts non-zero trailing bits (`aGVsbG9=` is not canonical).
        assert_eq!(decode_proto_bytes("aGVsbG9=").unwrap(), b"hello");
        // Padding where the length says unpadded, or the other way round.
        assert!(decode_proto_bytes("aGVsbG8=\n").is_err());
        assert!(decode_proto_bytes("aGVsbG8\n").is_err());
        assert!(decode_proto_bytes("a").is_err());
        assert!(decode_proto_bytes("aGVsbG8==").is_err());
        // One alphabet at a time.
        assert!(decode_proto_bytes("+_8=").is_err());
        assert!(decode_proto_bytes("aGVs=bG8").is_err());
        assert_eq!(decode_openapi_bytes("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(
            decode_proto_bytes("*").unwrap_err().to_string(),
            "illegal base64 data"
        );
    }
}
