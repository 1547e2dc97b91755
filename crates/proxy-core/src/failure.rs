//! Which side of the proxy a failed request is the fault of.
//!
//! A forwarded request can fail because of the upstream (it refused the connection, reset it,
//! answered garbage, took too long) or because of the client (its body's framing is invalid,
//! it closed or reset the connection mid-upload, it stopped sending). Only the first kind says
//! anything about the upstream's health. Counting the second kind as upstream failures would
//! let any client eject healthy endpoints (three malformed uploads trip a
//! `consecutive5xxErrors: 3` detector), burn the retry budget and trip circuit breakers.
//!
//! Envoy keeps them apart: a downstream codec error ends the stream with a local `400` and
//! the response flag `DPE`, a downstream disconnect with `DC`, and neither reaches the
//! router's retry state or outlier detection. This module is that classification:
//! [`ErrorKind::origin`](crate::retry::ErrorKind::origin) tells the two apart, and
//! [`DownstreamFailure`] says what the client did, classified from the I/O error or HTTP/2
//! reset that a runtime sees.
//!
//! ```
//! use std::io;
//! use portcullis_proxy_core::{failure::{DownstreamFailure, FailureOrigin}, retry::ErrorKind};
//!
//! // hyper reports a malformed chunk-size line as `InvalidInput`, a body cut short as
//! // `UnexpectedEof`.
//! let bad_chunk = DownstreamFailure::from_io_error_kind(io::ErrorKind::InvalidInput);
//! assert_eq!(bad_chunk, DownstreamFailure::ProtocolError);
//! assert_eq!(bad_chunk.response_flag(), "DPE");
//! assert_eq!(bad_chunk.local_reply().status, 400);
//!
//! let cut = DownstreamFailure::from_io_error_kind(io::ErrorKind::UnexpectedEof);
//! assert_eq!(cut.response_flag(), "DC");
//!
//! assert_eq!(ErrorKind::Downstream(cut).origin(), FailureOrigin::Downstream);
//! assert_eq!(ErrorKind::Reset.origin(), FailureOrigin::Upstream);
//! ```

use std::io;

use http::StatusCode;

use crate::pool::LocalReply;

/// Whose fault a failed attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureOrigin {
    /// The upstream's (or the network towards it): reported to outlier detection, subject
    /// to the route's retry policy.
    Upstream,
    /// The client's: answered (if the client is still there) without touching the upstream's
    /// health, the retry state or the retry budget.
    Downstream,
}

/// What the client did to fail its own request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DownstreamFailure {
    /// The request was malformed on the wire (invalid chunked framing, a body longer or
    /// shorter than its `content-length` says, an HTTP/2 protocol error on the stream):
    /// Envoy's `DPE`, answered `400`.
    ProtocolError,
    /// The client closed or reset the connection (or cancelled the stream) before the
    /// request was complete: Envoy's `DC`. Nobody is left to answer.
    Disconnect,
    /// The client stopped sending the request for longer than the runtime allows: Envoy's
    /// stream idle timeout, `SI`, answered `408`.
    Timeout,
}

impl DownstreamFailure {
    /// Classifies the I/O error a runtime got reading the client's request: framing errors
    /// (`InvalidInput`, `InvalidData`, as hyper reports an invalid chunk) are protocol
    /// errors, `TimedOut` is a timeout, and everything else — an end of stream in the
    /// middle of a body (`UnexpectedEof`), a reset, a broken pipe — a disconnect.
    pub fn from_io_error_kind(kind: io::ErrorKind) -> Self {
        match kind {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => Self::ProtocolError,
            io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Disconnect,
        }
    }

    /// Classifies the HTTP/2 error code (RFC 9113 §7) that ended the client's stream or
    /// connection: `PROTOCOL_ERROR` (1), `FLOW_CONTROL_ERROR` (3), `FRAME_SIZE_ERROR` (6),
    /// `COMPRESSION_ERROR` (9) are protocol errors; `NO_ERROR`, `CANCEL` and the rest mean
    /// the client went away.
    pub fn from_h2_error_code(code: u32) -> Self {
        match code {
            0x1 | 0x3 | 0x6 | 0x9 => Self::ProtocolError,
            _ => Self::Disconnect,
        }
    }

    /// Envoy's response flag for the access log.
    pub const fn response_flag(self) -> &'static str {
        match self {
            Self::ProtocolError => "DPE",
            Self::Disconnect => "DC",
            Self::Timeout => "SI",
        }
    }

    /// The status to answer with (`400`, or `408` for a timeout). A disconnected client
    /// never reads it; it is `400` there too, for a runtime that writes one anyway.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::ProtocolError | Self::Disconnect => StatusCode::BAD_REQUEST,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The local reply, in Envoy's wording.
    pub fn local_reply(self) -> LocalReply {
        let body = match self {
            Self::ProtocolError => "bad request",
            Self::Disconnect => "downstream disconnected",
            Self::Timeout => "stream timeout",
        };
        LocalReply::new(self.status(), body)
    }
}
