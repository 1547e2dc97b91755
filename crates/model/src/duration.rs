//! The protobuf `Duration` as Istio documents write it.

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// The range of `google.protobuf.Duration`: ±10 000 years.
const MAX_SECONDS: i128 = 315_576_000_000;

/// A signed duration with nanosecond precision: Istio's `google.protobuf.Duration` fields
/// (`timeout`, `perTryTimeout`, `baseEjectionTime`, …).
///
/// It parses the forms Istio's decoder accepts: the Go `time.ParseDuration` syntax (`5s`,
/// `1.5s`, `100ms`, `1h30m`, `-2m`, `0`, units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`) and the
/// proto3 JSON form (`0.000500s`). It writes the proto3 JSON canonical form, seconds with 0, 3,
/// 6 or 9 fractional digits, which every Istio and Kubernetes decoder reads back.
///
/// Negative and sub-millisecond values are kept as written: whether they are acceptable is a
/// validation question, not a parsing one.
///
/// ```
/// use portcullis_model::Duration;
///
/// let d: Duration = "1h30m".parse()?;
/// assert_eq!(d.as_nanos(), 5_400 * 1_000_000_000);
/// assert_eq!(d.to_string(), "5400s");
/// assert_eq!("100ms".parse::<Duration>()?.to_string(), "0.100s");
/// assert!("5 s".parse::<Duration>().is_err());
/// # Ok::<(), portcullis_model::ParseDurationError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: i128,
}

impl Duration {
    /// The zero duration.
    pub const ZERO: Self = Self { nanos: 0 };

    /// A duration of `nanos` nanoseconds, or `None` outside the protobuf range (±10 000 years).
    pub fn from_nanos(nanos: i128) -> Option<Self> {
        (nanos.abs() <= MAX_SECONDS * NANOS_PER_SECOND).then_some(Self { nanos })
    }

    /// A duration of `millis` milliseconds.
    pub fn from_millis(millis: i64) -> Self {
        Self {
            nanos: i128::from(millis) * 1_000_000,
        }
    }

    /// A duration of `seconds` seconds.
    pub fn from_secs(seconds: i64) -> Self {
        Self {
            nanos: i128::from(seconds) * NANOS_PER_SECOND,
        }
    }

    /// The whole duration in nanoseconds (negative for negative durations).
    pub fn as_nanos(self) -> i128 {
        self.nanos
    }

    /// Whether the duration is below zero.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// The duration as a [`core::time::Duration`], or `None` when it is negative.
    pub fn to_std(self) -> Option<core::time::Duration> {
        let nanos = u128::try_from(self.nanos).ok()?;
        let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
        let subsec = u32::try_from(nanos % 1_000_000_000).ok()?;
        Some(core::time::Duration::new(secs, subsec))
    }

    /// The duration of a [`core::time::Duration`], or `None` beyond the protobuf range.
    pub fn from_std(d: core::time::Duration) -> Option<Self> {
        Self::from_nanos(i128::try_from(d.as_nanos()).ok()?)
    }
}

/// Why a string is not a [`Duration`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

impl ParseDurationError {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            input: input.to_owned(),
            reason,
        }
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseDurationError::new(input, reason);
        let (negative, mut rest) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input.strip_prefix('+').unwrap_or(input)),
        };
        if rest == "0" {
            return Ok(Self::ZERO);
        }
        if rest.is_empty() {
            return Err(err("empty duration"));
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int_digits, after_int) = rest.split_at(int_len);
            let (frac_digits, after_number) = match after_int.strip_prefix('.') {
                Some(after_dot) => {
                    let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                    after_dot.split_at(frac_len)
                }
                None => ("", after_int),
            };
            if int_digits.is_empty() && frac_digits.is_empty() {
                return Err(err("expected a number"));
            }
            let unit_len = after_number
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map_or(after_number.len(), |(i, _)| i);
            let (unit, after_unit) = after_number.split_at(unit_len);
            let unit_nanos: i128 = match unit {
                "ns" => 1,
                "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
                "ms" => 1_000_000,
                "s" => NANOS_PER_SECOND,
                "m" => 60 * NANOS_PER_SECOND,
                "h" => 3_600 * NANOS_PER_SECOND,
                "" => return Err(err("missing unit (one of ns, us, ms, s, m, h)")),
                _ => return Err(err("unknown unit (expected one of ns, us, ms, s, m, h)")),
            };
            let whole = parse_digits(int_digits).ok_or_else(|| err("out of range"))?;
            let mut part = whole
                .checked_mul(unit_nanos)
                .ok_or_else(|| err("out of range"))?;
            // Go keeps fractional digits as far as they can matter; 18 are more than a nanosecond
            // of an hour needs.
            let frac = frac_digits.get(..18).unwrap_or(frac_digits);
            if !frac.is_empty() {
                let numerator = parse_digits(frac).ok_or_else(|| err("out of range"))?;
                let scale = 10_i128.pow(u32::try_from(frac.len()).unwrap_or(18));
                part += numerator * unit_nanos / scale;
            }
            total = total.checked_add(part).ok_or_else(|| err("out of range"))?;
            if total > MAX_SECONDS * NANOS_PER_SECOND {
                return Err(err("out of range (more than 10000 years)"));
            }
            rest = after_unit;
        }
        Ok(Self {
            nanos: if negative { -total } else { total },
        })
    }
}

fn parse_digits(digits: &str) -> Option<i128> {
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 30 {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let secs = abs / 1_000_000_000;
        let nanos = abs % 1_000_000_000;
        if nanos == 0 {
            write!(f, "{sign}{secs}s")
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{sign}{secs}.{:03}s", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            write!(f, "{sign}{secs}.{:06}s", nanos / 1_000)
        } else {
            write!(f, "{sign}{secs}.{nanos:09}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\", \"1.5s\", \"100ms\" or \"1h30m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<i128, ParseDurationError> {
        s.parse::<Duration>().map(Duration::as_nanos)
    }

    #[test]
    fn parses_go_and_proto_forms() {
        const S: i128 = 1_000_000_000;
        assert_eq!(parse("5s"), Ok(5 * S));
        assert_eq!(parse("1.5s"), Ok(3 * S / 2));
        assert_eq!(parse("100ms"), Ok(S / 10));
        assert_eq!(parse("1h30m"), Ok(5400 * S));
        assert_eq!(parse("0.000000999s"), Ok(999));
        assert_eq!(parse("-2m"), Ok(-120 * S));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1us"), Ok(1000));
        assert_eq!(parse("1µs"), Ok(1000));
        assert_eq!(parse(".5s"), Ok(S / 2));
        assert_eq!(parse("1.s"), Ok(S));
        assert_eq!(parse("1m0.5s"), Ok(60 * S + S / 2));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "", "s", "5", "5 s", "1d", "-", ".s", "1..5s", "1s2", "++1s", "1e3s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse("99999999999999999999999999999999h").is_err());
        assert!(parse("3155760000001s").is_err());
    }

    #[test]
    fn writes_proto_canonical_form() {
        let show = |s: &str| s.parse::<Duration>().map(|d| d.to_string());
        assert_eq!(show("1h30m").as_deref(), Ok("5400s"));
        assert_eq!(show("1.5s").as_deref(), Ok("1.500s"));
        assert_eq!(show("1500us").as_deref(), Ok("0.001500s"));
        assert_eq!(show("7ns").as_deref(), Ok("0.000000007s"));
        assert_eq!(show("-100ms").as_deref(), Ok("-0.100s"));
    }

    #[test]
    fn canonical_form_parses_back_to_the_same_value() {
        for s in ["1h30m", "1.5s", "7ns", "-100ms", "0", "123456.789012345s"] {
            let d: Duration = s.parse().unwrap();
            assert_eq!(d.to_string().parse::<Duration>(), Ok(d), "{s}");
        }
    }

    #[test]
    fn converts_to_std_only_when_not_negative() {
        assert_eq!(
            Duration::from_millis(1500).to_std(),
            Some(core::time::Duration::from_millis(1500))
        );
        assert_eq!(Duration::from_millis(-1).to_std(), None);
    }
}
