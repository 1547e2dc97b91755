//! Header field names and values: which bytes HTTP allows in them, as Envoy checks them.
//!
//! * Names ([`header_name_is_valid`], Envoy's `HeaderUtility::headerNameIsValid`): a token of
//!   RFC 9110 §5.6.2 (`tchar`s, upper case allowed as HTTP/1 allows it), or a pseudo-header
//!   `:` followed by one.
//! * Values ([`header_value_is_valid`], Envoy's `HeaderUtility::headerValueIsValid`, which its
//!   HTTP/1 codec runs on every value received and answers 400 `http1.invalid_characters`
//!   for): horizontal tab, visible ASCII, space and `obs-text` (0x80–0xFF); never NUL, CR, LF,
//!   another control character or DEL.
//!
//! `http::HeaderName` and `http::HeaderValue` enforce the same sets (the tests compare them
//! byte for byte), so a map built from parsed fields has passed these checks; the functions
//! are for bytes that go on the wire without becoming a map first.

use crate::hygiene::Rejection;

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Whether `name` is a valid field name: one or more `tchar`s, after a leading `:` for a
/// pseudo-header.
///
/// ```
/// use portcullis_proxy_core::header::header_name_is_valid;
///
/// assert!(header_name_is_valid(b"X-Request-Id"));
/// assert!(header_name_is_valid(b":authority"));
/// assert!(!header_name_is_valid(b""));
/// assert!(!header_name_is_valid(b":"));
/// assert!(!header_name_is_valid(b"x y"));
/// assert!(!header_name_is_valid(b"x:y"));
/// ```
pub fn header_name_is_valid(name: &[u8]) -> bool {
    let token = name.strip_prefix(b":").unwrap_or(name);
    !token.is_empty() && token.iter().all(|b| is_tchar(*b))
}

/// Whether `b` may appear in a field value.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Whether `value` is a valid field value: tab, space, visible ASCII and `obs-text`.
///
/// ```
/// use portcullis_proxy_core::header::header_value_is_valid;
///
/// assert!(header_value_is_valid(b"text/html; charset=utf-8"));
/// assert!(header_value_is_valid(b""));
/// assert!(!header_value_is_valid(b"a\r\nx-injected: 1"));
/// assert!(!header_value_is_valid(b"a\0b"));
/// ```
pub fn header_value_is_valid(value: &[u8]) -> bool {
    value.iter().all(|b| is_value_byte(*b))
}

/// Checks a field: [`Rejection::InvalidCharacters`] when its name or value is invalid.
///
/// ```
/// use portcullis_proxy_core::header::check_field;
/// use portcullis_proxy_core::hygiene::Rejection;
///
/// assert_eq!(check_field(b"x-a", b"1"), Ok(()));
/// assert_eq!(check_field(b"x-a", b"1\rx"), Err(Rejection::InvalidCharacters));
/// ```
pub fn check_field(name: &[u8], value: &[u8]) -> Result<(), Rejection> {
    if header_name_is_valid(name) && header_value_is_valid(value) {
        Ok(())
    } else {
        Err(Rejection::InvalidCharacters)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_byte_as_envoy_classifies_it() {
        for b in 0..=255u8 {
            // quiche's header_validator (IsValidHeaderValue, obs-text allowed), which Envoy's
            // headerValueIsValid calls.
            let value_ok = b == 9 || (32..127).contains(&b) || b >= 128;
            assert_eq!(header_value_is_valid(&[b]), value_ok, "{b:#x}");
            // The `http` crate agrees, so a parsed map holds no invalid value.
            assert_eq!(
                http::HeaderValue::from_bytes(&[b]).is_ok(),
                value_ok,
                "{b:#x}"
            );
            // Envoy's kGenericHeaderNameCharTable is tchar.
            let name_ok = b"!#$%&'*+-.^_`|~".contains(&b) || b.is_ascii_alphanumeric();
            assert_eq!(header_name_is_valid(&[b]), name_ok, "{b:#x}");
            assert_eq!(
                http::HeaderName::from_bytes(&[b]).is_ok(),
                name_ok,
                "{b:#x}"
            );
        }
    }

    proptest! {
        /// The checks accept exactly what `http`'s types accept (names: `http` lower-cases,
        /// and takes no pseudo-headers).
        #[test]
        fn same_sets_as_the_http_crate(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            prop_assert_eq!(header_value_is_valid(&bytes), http::HeaderValue::from_bytes(&bytes).is_ok());
            if !bytes.starts_with(b":") {
                prop_assert_eq!(header_name_is_valid(&bytes), http::HeaderName::from_bytes(&bytes).is_ok());
            }
        }

        /// A valid value never ends a line: nothing can be injected after it.
        #[test]
        fn valid_values_hold_no_line_break(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if header_value_is_valid(&bytes) {
                prop_assert!(!bytes.contains(&b'\r') && !bytes.contains(&b'\n') && !bytes.contains(&0));
            }
        }
    }
}
