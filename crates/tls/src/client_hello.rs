//! Reading a TLS ClientHello from the first bytes of a connection, without terminating TLS.
//!
//! This is what a passthrough listener needs: look at the bytes received so far, learn the SNI
//! and ALPN, and then forward every byte (including the ones looked at) to the backend.
//! [`peek_client_hello`] is a pure function over a byte slice. Call it again with more bytes
//! while it answers [`ClientHelloPeek::NeedMore`].
//!
//! Every length is checked before it is used. Any byte sequence is safe input: the worst
//! outcome is [`ClientHelloPeek::NotTls`]. A ClientHello may span several TLS records (large
//! post-quantum key shares do that); it is reassembled up to [`MAX_CLIENT_HELLO_LEN`].

use std::fmt;

/// Largest ClientHello message accepted (handshake body, without record headers). Real ones are
/// well under 4 KiB; the TLS maximum (16 MiB) would let a peer make us buffer that much.
pub const MAX_CLIENT_HELLO_LEN: usize = 64 * 1024;

const RECORD_HEADER_LEN: usize = 5;
const MAX_RECORD_LEN: usize = 16 * 1024;
const HANDSHAKE_HEADER_LEN: usize = 4;

/// The most bytes [`peek_client_hello`] can ask for: a ClientHello of
/// [`MAX_CLIENT_HELLO_LEN`] with its handshake header, in records of the largest size, each
/// with its record header. A reader that peeks into a buffer of this size never has to give
/// up on a ClientHello the parser would accept.
///
/// ```
/// use portcullis_tls::client_hello::{MAX_CLIENT_HELLO_LEN, MAX_CLIENT_HELLO_WIRE_LEN};
///
/// assert_eq!(MAX_CLIENT_HELLO_WIRE_LEN, MAX_CLIENT_HELLO_LEN + 4 + 5 * 5);
/// ```
pub const MAX_CLIENT_HELLO_WIRE_LEN: usize = MAX_CLIENT_HELLO_LEN
    + HANDSHAKE_HEADER_LEN
    + RECORD_HEADER_LEN * (MAX_CLIENT_HELLO_LEN + HANDSHAKE_HEADER_LEN).div_ceil(MAX_RECORD_LEN);
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// What [`peek_client_hello`] learned from the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHelloPeek {
    /// The bytes are a valid prefix of a ClientHello; read more and call again.
    NeedMore {
        /// A lower bound of the total number of bytes (from the start of the connection)
        /// needed before the answer can change.
        needed: usize,
    },
    /// The bytes are not a TLS ClientHello (or a malformed one).
    NotTls(NotTlsReason),
    /// A complete ClientHello.
    ClientHello(ClientHelloInfo),
}

/// Why [`peek_client_hello`] decided the bytes are not a TLS ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotTlsReason {
    /// A record is not a handshake record (the first byte is not 22).
    NotHandshakeRecord,
    /// A record's protocol version is not 3.x.
    UnknownRecordVersion,
    /// A record has length 0 or above 16 KiB.
    BadRecordLength,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// The ClientHello is longer than [`MAX_CLIENT_HELLO_LEN`].
    TooLarge,
    /// The ClientHello is malformed; the text names the part.
    Malformed(&'static str),
}

impl fmt::Display for NotTlsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHandshakeRecord => f.write_str("not a TLS handshake record"),
            Self::UnknownRecordVersion => f.write_str("record version is not 3.x"),
            Self::BadRecordLength => f.write_str("record length is 0 or above 16 KiB"),
            Self::NotClientHello => f.write_str("first handshake message is not a ClientHello"),
            Self::TooLarge => write!(f, "ClientHello longer than {MAX_CLIENT_HELLO_LEN} bytes"),
            Self::Malformed(what) => write!(f, "malformed ClientHello: {what}"),
        }
    }
}

/// What a passthrough listener needs from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    /// The `server_name` extension's host name, ASCII-lowercased. `None` when absent.
    pub server_name: Option<String>,
    /// The ALPN protocols offered, in the client's order. Empty when the extension is absent.
    pub alpn: Vec<Vec<u8>>,
    /// `legacy_version` of the ClientHello (0x0303 for TLS 1.2 and 1.3 clients).
    pub legacy_version: u16,
    /// The `supported_versions` extension (0x0304 is TLS 1.3). Empty when absent.
    pub supported_versions: Vec<u16>,
    /// The end offset (from the start of the input) of the record that completes the
    /// ClientHello. The answer comes as soon as the message is complete, so when that record
    /// carries more bytes than the ClientHello, this lies beyond the bytes read so far.
    pub len: usize,
}

impl ClientHelloInfo {
    /// The highest protocol version the client offers, as a wire value (0x0303 = TLS 1.2).
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            // GREASE values (0x?a?a) are not versions.
            .filter(|v| v & 0x0f0f != 0x0a0a)
            .max()
            .unwrap_or(self.legacy_version)
    }

    /// Whether the client offers the ALPN protocol `proto`.
    pub fn offers_alpn(&self, proto: &[u8]) -> bool {
        self.alpn.iter().any(|p| p == proto)
    }

    /// The record a terminating server answers this ClientHello with when it offers no
    /// version this crate serves (only TLS 1.0 or 1.1: TLS 1.2 is the lowest
    /// [`protocol_versions`](crate::protocol_versions) allows): a fatal `protocol_version`
    /// alert, as Envoy (BoringSSL) sends. `None` when the client offers TLS 1.2 or later.
    ///
    /// rustls refuses such a hello as well, but with `handshake_failure`, because a TLS 1.0
    /// or 1.1 ClientHello has no `signature_algorithms` extension and rustls checks that first;
    /// clients then report a handshake failure instead of the version problem. Write these
    /// bytes instead of handing the connection to rustls, then close. The record version is the
    /// client's `legacy_version` (kept within TLS 1.0 to 1.2).
    pub fn protocol_version_alert(&self) -> Option<[u8; 7]> {
        if self.max_version() >= TLS12 {
            return None;
        }
        let [major, minor] = self.legacy_version.clamp(0x0301, TLS12).to_be_bytes();
        // ContentType alert (21), version, length 2, level fatal (2), protocol_version (70).
        Some([21, major, minor, 0, 2, 2, 70])
    }
}

/// The wire value of TLS 1.2.
const TLS12: u16 = 0x0303;

/// Reads a ClientHello from the first bytes of a connection.
///
/// ```
/// use portcullis_tls::{peek_client_hello, ClientHelloPeek};
/// assert!(matches!(peek_client_hello(b""), ClientHelloPeek::NeedMore { .. }));
/// assert!(matches!(peek_client_hello(b"GET / HTTP/1.1\r\n"), ClientHelloPeek::NotTls(_)));
/// ```
pub fn peek_client_hello(input: &[u8]) -> ClientHelloPeek {
    match reassemble(input) {
        Ok(Reassembled::Complete { message, len }) => match parse_client_hello(&message) {
            Ok(mut info) => {
                info.len = len;
                ClientHelloPeek::ClientHello(info)
            }
            Err(reason) => ClientHelloPeek::NotTls(reason),
        },
        Ok(Reassembled::NeedMore(needed)) => ClientHelloPeek::NeedMore { needed },
        Err(reason) => ClientHelloPeek::NotTls(reason),
    }
}

enum Reassembled {
    NeedMore(usize),
    Complete { message: Vec<u8>, len: usize },
}

/// Walks the records, collecting handshake bytes until the first handshake message is whole.
fn reassemble(input: &[u8]) -> Result<Reassembled, NotTlsReason> {
    let mut offset = 0usize;
    let mut handshake: Vec<u8> = Vec::new();
    loop {
        let rest = input.get(offset..).unwrap_or_default();
        // Check what we have of the header before asking for more, so that plaintext is
        // refused after its first byte.
        if let Some(&ty) = rest.first()
            && ty != CONTENT_TYPE_HANDSHAKE
        {
            return Err(NotTlsReason::NotHandshakeRecord);
        }
        if let Some(&major) = rest.get(1)
            && major != 3
        {
            return Err(NotTlsReason::UnknownRecordVersion);
        }
        let Some(header) = rest.get(..RECORD_HEADER_LEN) else {
            // The answer can change at the next byte checked: the type (first), the version
            // (second), the length (fifth).
            let next_check = match rest.len() {
                0 => 1,
                1 => 2,
                _ => RECORD_HEADER_LEN,
            };
            return Ok(Reassembled::NeedMore(offset + next_check));
        };
        let record_len = usize::from(u16::from_be_bytes([
            header.get(3).copied().unwrap_or(0),
            header.get(4).copied().unwrap_or(0),
        ]));
        if record_len == 0 || record_len > MAX_RECORD_LEN {
            return Err(NotTlsReason::BadRecordLength);
        }
        let body_start = offset + RECORD_HEADER_LEN;
        let body_end = body_start + record_len;
        // The handshake header may already be readable from a partial record.
        let available = input.get(body_start..).unwrap_or_default();
        let fragment = available.get(..record_len).unwrap_or(available);
        let complete_record = fragment.len() == record_len;
        handshake.extend_from_slice(fragment);

        if let Some(&msg_type) = handshake.first()
            && msg_type != HANDSHAKE_CLIENT_HELLO
        {
            return Err(NotTlsReason::NotClientHello);
        }
        if let Some(len_bytes) = handshake.get(1..4) {
            let msg_len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if msg_len > MAX_CLIENT_HELLO_LEN {
                return Err(NotTlsReason::TooLarge);
            }
            let total = 4 + msg_len;
            if handshake.len() >= total {
                handshake.truncate(total);
                // Bytes of the record after the message belong to later messages; a
                // ClientHello is alone in its flight, but we do not need to care.
                return Ok(Reassembled::Complete {
                    message: handshake.split_off(4),
                    len: body_end,
                });
            }
            if !complete_record {
                // The message ends within this record or needs all of it.
                let missing = total - handshake.len();
                return Ok(Reassembled::NeedMore((input.len() + missing).min(body_end)));
            }
        } else if !complete_record {
            // The message type is checked at its first byte, its length once its 4-byte header
            // is in.
            let next_check = if handshake.is_empty() {
                1
            } else {
                4 - handshake.len()
            };
            return Ok(Reassembled::NeedMore(
                (input.len() + next_check).min(body_end),
            ));
        }
        // The record was complete and the message continues in the next record.
        offset = body_end;
    }
}

/// A bounds-checked cursor over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], NotTlsReason> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(NotTlsReason::Malformed(what))?;
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, NotTlsReason> {
        let (&b, tail) = self
            .buf
            .split_first()
            .ok_or(NotTlsReason::Malformed(what))?;
        self.buf = tail;
        Ok(b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, NotTlsReason> {
        let hi = self.u8(what)?;
        let lo = self.u8(what)?;
        Ok(u16::from_be_bytes([hi, lo]))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<Self, NotTlsReason> {
        let n = usize::from(self.u8(what)?);
        Ok(Self::new(self.take(n, what)?))
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<Self, NotTlsReason> {
        let n = usize::from(self.u16(what)?);
        Ok(Self::new(self.take(n, what)?))
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

fn parse_client_hello(body: &[u8]) -> Result<ClientHelloInfo, NotTlsReason> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16("legacy_version")?;
    if legacy_version >> 8 != 3 {
        return Err(NotTlsReason::Malformed("legacy_version is not 3.x"));
    }
    r.take(32, "random")?;
    let session_id = r.vec8("legacy_session_id")?;
    if session_id.rest().len() > 32 {
        return Err(NotTlsReason::Malformed(
            "legacy_session_id longer than 32 bytes",
        ));
    }
    let suites = r.vec16("cipher_suites")?;
    if suites.is_empty() || !suites.rest().len().is_multiple_of(2) {
        return Err(NotTlsReason::Malformed("cipher_suites"));
    }
    let compression = r.vec8("legacy_compression_methods")?;
    if compression.is_empty() {
        return Err(NotTlsReason::Malformed(
            "legacy_compression_methods is empty",
        ));
    }
    let mut info = ClientHelloInfo {
        legacy_version,
        ..ClientHelloInfo::default()
    };
    if r.is_empty() {
        // Extensions are optional (SSL 3.0 / TLS 1.0 era clients).
        return Ok(info);
    }
    let mut exts = r.vec16("extensions")?;
    if !r.is_empty() {
        return Err(NotTlsReason::Malformed("bytes after the extensions"));
    }
    let mut seen: Vec<u16> = Vec::new();
    while !exts.is_empty() {
        let ty = exts.u16("extension type")?;
        let mut data = exts.vec16("extension data")?;
        if seen.contains(&ty) {
            return Err(NotTlsReason::Malformed("duplicate extension"));
        }
        seen.push(ty);
        match ty {
            EXT_SERVER_NAME => info.server_name = parse_server_name(&mut data)?,
            EXT_ALPN => info.alpn = parse_alpn(&mut data)?,
            EXT_SUPPORTED_VERSIONS => info.supported_versions = parse_versions(&mut data)?,
            _ => {}
        }
    }
    Ok(info)
}

fn parse_server_name(data: &mut Reader<'_>) -> Result<Option<String>, NotTlsReason> {
    let mut list = data.vec16("server_name list")?;
    if !data.is_empty() || list.is_empty() {
        return Err(NotTlsReason::Malformed("server_name extension"));
    }
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8("server_name type")?;
        let name = list.vec16("server_name")?.rest();
        if name_type != 0 {
            continue;
        }
        if host.is_some() {
            return Err(NotTlsReason::Malformed(
                "two host_name entries in server_name",
            ));
        }
        if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
            return Err(NotTlsReason::Malformed(
                "server_name is not a printable ASCII name",
            ));
        }
        let text = String::from_utf8_lossy(name).to_ascii_lowercase();
        host = Some(text);
    }
    Ok(host)
}

fn parse_alpn(data: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, NotTlsReason> {
    let mut list = data.vec16("ALPN list")?;
    if !data.is_empty() || list.is_empty() {
        return Err(NotTlsReason::Malformed("ALPN extension"));
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let proto = list.vec8("ALPN protocol")?.rest();
        if proto.is_empty() {
            return Err(NotTlsReason::Malformed("empty ALPN protocol name"));
        }
        out.push(proto.to_vec());
    }
    Ok(out)
}

fn parse_versions(data: &mut Reader<'_>) -> Result<Vec<u16>, NotTlsReason> {
    let mut list = data.vec8("supported_versions list")?;
    if !data.is_empty() || list.is_empty() || !list.rest().len().is_multiple_of(2) {
        return Err(NotTlsReason::Malformed("supported_versions extension"));
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        out.push(list.u16("supported version")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
