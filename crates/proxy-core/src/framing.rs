//! How a request's body is framed (RFC 9112 §6), with the strictness of Envoy's HTTP/1 codec:
//! the rules that keep a gateway and its upstream from reading one byte stream as two
//! different sequences of requests (request smuggling, RFC 9112 §11.2).
//!
//! * `content-length` and `transfer-encoding` together: refused (Envoy's default,
//!   `allow_chunked_length: false`), not resolved in favour of the transfer coding.
//! * `transfer-encoding`: exactly one field whose value is `chunked`; anything else —
//!   `chunked, identity`, `gzip, chunked`, `xchunked`, two fields — is 501.
//! * `content-length`: one field of digits. Repeated fields, even with the same value, and
//!   lists (`0, 0`) are refused (RFC 9110 §8.6 lets a recipient either reject them or collapse
//!   identical values; Envoy's parser rejects).
//! * `CONNECT` carries no body.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method};

use crate::rejection::Rejection;

/// A `content-length` value: 1 to 19 digits (so that it fits in a `u64`), nothing else.
///
/// ```
/// use portcullis_proxy_core::framing::parse_content_length;
///
/// assert_eq!(parse_content_length(b"42"), Some(42));
/// assert_eq!(parse_content_length(b"0, 0"), None);
/// assert_eq!(parse_content_length(b"+1"), None);
/// assert_eq!(parse_content_length(b""), None);
/// ```
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// The only field of `values`, `None` when there is none, `Err(())` when there are several.
fn single<'a>(
    mut values: impl Iterator<Item = &'a HeaderValue>,
) -> Result<Option<&'a HeaderValue>, ()> {
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    Ok(first)
}

/// The framing of a request body from its `content-length` and `transfer-encoding` fields,
/// or why the request must be refused. Values are compared after trimming surrounding
/// whitespace (a parser keeps none, but a map built by hand might).
///
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use portcullis_proxy_core::framing::request_body_framing;
/// use portcullis_proxy_core::h1::BodyFraming;
/// use portcullis_proxy_core::hygiene::Rejection;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("content-length", HeaderValue::from_static("5"));
/// assert_eq!(request_body_framing(&Method::POST, &headers), Ok(BodyFraming::Length(5)));
/// headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
/// assert_eq!(request_body_framing(&Method::POST, &headers), Err(Rejection::ContentLengthAndChunked));
/// ```
pub fn request_body_framing(
    method: &Method,
    headers: &HeaderMap,
) -> Result<BodyFraming, Rejection> {
    let te = headers.get_all(TRANSFER_ENCODING).iter();
    let cl = headers.get_all(CONTENT_LENGTH).iter();
    let te = single(te);
    let cl = single(cl).map_err(|()| Rejection::InvalidContentLength);
    match te {
        Ok(None) => {}
        // Envoy's codec checks the pair first (codec_impl.cc, onHeadersCompleteImpl).
        _ if matches!(cl, Ok(Some(_)) | Err(_)) => return Err(Rejection::ContentLengthAndChunked),
        Ok(Some(te))
            if *method != Method::CONNECT
                && te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") =>
        {
            return Ok(BodyFraming::Chunked);
        }
        _ => return Err(Rejection::InvalidTransferEncoding),
    }
    let Some(cl) = cl? else {
        return Ok(BodyFraming::None);
    };
    match parse_content_length(cl.as_bytes().trim_ascii()) {
        None => Err(Rejection::InvalidContentLength),
        Some(0) => Ok(BodyFraming::None),
        Some(_) if *method == Method::CONNECT => Err(Rejection::BodyDisallowed),
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

/// How a body is framed on the wire, for the heads written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No framing header is added: the headers are written as they are (no body, or a
    /// `content-length` already among them, as in answers to `HEAD`).
    None,
    /// `content-length: n`.
    Length(u64),
    /// `transfer-encoding: chunked` (length unknown: a chunked or HTTP/2 body).
    Chunked,
}

impl BodyFraming {
    pub(crate) fn write_header(self, out: &mut Vec<u8>) {
        match self {
            Self::None => {}
            Self::Length(n) => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Self::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
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

    fn framing(method: Method, fields: &[(&str, &str)]) -> Result<BodyFraming, Rejection> {
        let mut headers = HeaderMap::new();
        for (n, v) in fields {
            headers.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        request_body_framing(&method, &headers)
    }

    #[test]
    fn smuggling_classes_are_refused_as_envoy_refuses_them() {
        let post = || Method::POST;
        // CL + TE: codec_impl.cc, onHeadersCompleteImpl, "both 'Content-Length' and
        // 'Transfer-Encoding' are set" (allow_chunked_length defaults to false).
        assert_eq!(
            framing(
                post(),
                &[("content-length", "3"), ("transfer-encoding", "chunked")]
            ),
            Err(Rejection::ContentLengthAndChunked)
        );
        assert_eq!(
            framing(
                post(),
                &[("transfer-encoding", "chunked"), ("content-length", "0")]
            ),
            Err(Rejection::ContentLengthAndChunked)
        );
        // Obfuscated transfer codings: the same function, "unsupported transfer encoding", 501.
        for te in [
            "chunked, identity",
            "gzip, chunked",
            "xchunked",
            "chunked;q=1",
            "identity",
            "",
        ] {
            assert_eq!(
                framing(post(), &[("transfer-encoding", te)]),
                Err(Rejection::InvalidTransferEncoding),
                "{te}"
            );
        }
        assert_eq!(
            framing(
                post(),
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            ),
            Err(Rejection::InvalidTransferEncoding)
        );
        // ` chunked`: parsers drop the whitespace before a value; so does this check.
        assert_eq!(
            framing(post(), &[("transfer-encoding", " Chunked ")]),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(Method::CONNECT, &[("transfer-encoding", "chunked")]),
            Err(Rejection::InvalidTransferEncoding)
        );
        // Repeated and listed content-length: Envoy's Balsa parser is configured with
        // disallow_multiple_content_length, and a list is not a number (balsa_parser.cc).
        for fields in [
            &[("content-length", "0, 0")][..],
            &[("content-length", "5"), ("content-length", "5")],
            &[("content-length", "1"), ("content-length", "2")],
            &[("content-length", "-1")],
            &[("content-length", "0x5")],
            &[("content-length", "99999999999999999999")],
        ] {
            assert_eq!(
                framing(post(), fields),
                Err(Rejection::InvalidContentLength),
                "{fields:?}"
            );
        }
        assert_eq!(
            framing(post(), &[("content-length", "0")]),
            Ok(BodyFraming::None)
        );
        assert_eq!(framing(post(), &[]), Ok(BodyFraming::None));
        assert_eq!(
            framing(Method::CONNECT, &[("content-length", "1")]),
            Err(Rejection::BodyDisallowed)
        );
        assert_eq!(
            framing(Method::CONNECT, &[("content-length", "0")]),
            Ok(BodyFraming::None)
        );
    }

    proptest! {
        /// A content-length is accepted exactly when it is the decimal of a number.
        #[test]
        fn content_length_is_digits_only(value in proptest::collection::vec(any::<u8>(), 0..24)) {
            match parse_content_length(&value) {
                Some(n) => {
                    let text = String::from_utf8(value).unwrap();
                    let digits = text.trim_start_matches('0');
                    let decimal = n.to_string();
                    prop_assert_eq!(decimal.trim_start_matches('0'), digits);
                }
                None => prop_assert!(value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit)),
            }
        }

        #[test]
        fn every_u64_with_up_to_19_digits_parses(n in 0u64..10_000_000_000_000_000_000) {
            prop_assert_eq!(parse_content_length(n.to_string().as_bytes()), Some(n));
        }
    }
}
