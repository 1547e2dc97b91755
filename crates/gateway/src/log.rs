//! The access log, in Envoy's default format:
//!
//! ```text
//! [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
//! %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
//! "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%"
//! "%UPSTREAM_HOST%"
//! ```
//!
//! (one line; `-` for a missing value).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Version};

use super::worker::Worker;

/// What the access log line of one request says, gathered while the request runs; written
/// when the response body ends (or is dropped).
#[derive(Debug)]
pub(crate) struct PendingLog {
    /// The worker whose buffer takes the line.
    pub(crate) worker: Arc<Worker>,
    /// When the request started (for its duration), and the wall-clock time then.
    pub(crate) start: (Instant, SystemTime),
    pub(crate) method: Method,
    /// `x-envoy-original-path` if the route rewrote the path, else `:path`.
    pub(crate) path: Option<HeaderValue>,
    pub(crate) version: Version,
    pub(crate) status: u16,
    pub(crate) flags: &'static str,
    /// Request body bytes, counted by the upstream body wrapper.
    pub(crate) bytes_received: Option<Arc<AtomicU64>>,
    pub(crate) upstream_service_time: Option<u64>,
    pub(crate) xff: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) authority: Option<HeaderValue>,
    pub(crate) upstream_host: Option<SocketAddr>,
}

impl PendingLog {
    /// Writes the line with the response body's size.
    pub(crate) fn finish(&self, bytes_sent: u64) {
        let duration = self.start.0.elapsed().as_millis();
        self.worker.log_line(|out| {
            out.push(b'[');
            write_time(out, self.start.1);
            out.extend_from_slice(b"] \"");
            out.extend_from_slice(self.method.as_str().as_bytes());
            out.push(b' ');
            value(out, self.path.as_ref());
            out.push(b' ');
            out.extend_from_slice(protocol(self.version).as_bytes());
            let received = self
                .bytes_received
                .as_ref()
                .map_or(0, |c| c.load(Ordering::Relaxed));
            let _ = write!(
                out,
                "\" {} {} {received} {bytes_sent} {duration} ",
                self.status, self.flags
            );
            match self.upstream_service_time {
                Some(t) => {
                    let _ = write!(out, "{t}");
                }
                None => out.push(b'-'),
            }
            out.extend_from_slice(b" \"");
            value(out, self.xff.as_ref());
            out.extend_from_slice(b"\" \"");
            value(out, self.user_agent.as_ref());
            out.extend_from_slice(b"\" \"");
            value(out, self.request_id.as_ref());
            out.extend_from_slice(b"\" \"");
            value(out, self.authority.as_ref());
            out.extend_from_slice(b"\" \"");
            match self.upstream_host {
                Some(h) => {
                    let _ = write!(out, "{h}");
                }
                None => out.push(b'-'),
            }
            out.extend_from_slice(b"\"\n");
        });
    }
}

/// Envoy's `%PROTOCOL%`.
pub(crate) fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn value(out: &mut Vec<u8>, v: Option<&HeaderValue>) {
    match v {
        Some(v) if !v.is_empty() => out.extend_from_slice(v.as_bytes()),
        _ => out.push(b'-'),
    }
}

/// `2016-04-15T20:17:00.310Z` (UTC, milliseconds), Envoy's `%START_TIME%`.
pub(crate) fn write_time(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_iso8601_utc_with_millis() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_460_751_420_310);
        let mut out = Vec::new();
        write_time(&mut out, t);
        assert_eq!(String::from_utf8_lossy(&out), "2016-04-15T20:17:00.310Z");
        let mut out = Vec::new();
        write_time(
            &mut out,
            UNIX_EPOCH + std::time::Duration::from_secs(951_782_400),
        );
        assert_eq!(String::from_utf8_lossy(&out), "2000-02-29T00:00:00.000Z");
    }
}
