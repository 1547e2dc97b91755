//! Go's `net/netip` address and prefix parsing, as Istio's IP checks (C-7, C-8) use it.

/// Go `netip` dotted-quad parsing: four decimal fields, no leading zeros, each at most 255.
fn parse_ipv4_fields(s: &str) -> Option<[u8; 4]> {
    let mut fields = [0u8; 4];
    let mut count = 0usize;
    for part in s.split('.') {
        let slot = fields.get_mut(count)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *slot = part.parse::<u8>().ok()?;
        count += 1;
    }
    (count == 4).then_some(fields)
}

/// Go `netip` IPv6 parsing (zone allowed, non-empty).
fn parse_ipv6(input: &str) -> Option<()> {
    let s = match input.split_once('%') {
        Some((addr, zone)) => {
            if zone.is_empty() {
                return None;
            }
            addr
        }
        None => input,
    };
    let mut s = s;
    let mut ellipsis: Option<usize> = None;
    if let Some(rest) = s.strip_prefix("::") {
        ellipsis = Some(0);
        s = rest;
        if s.is_empty() {
            return Some(());
        }
    }
    let mut i = 0usize;
    while i < 16 {
        let digits = s.bytes().take_while(u8::is_ascii_hexdigit).count();
        if digits == 0 || digits > 4 {
            return None;
        }
        let rest = s.get(digits..)?;
        if rest.starts_with('.') {
            // Embedded IPv4: must take the last 4 bytes.
            if ellipsis.is_none() && i != 12 {
                return None;
            }
            if i + 4 > 16 {
                return None;
            }
            parse_ipv4_fields(s)?;
            s = "";
            i += 4;
            break;
        }
        i += 2;
        s = rest;
        if s.is_empty() {
            break;
        }
        s = s.strip_prefix(':')?;
        if s.is_empty() {
            return None;
        }
        if let Some(rest) = s.strip_prefix(':') {
            if ellipsis.is_some() {
                return None;
            }
            ellipsis = Some(i);
            s = rest;
            if s.is_empty() {
                break;
            }
        }
    }
    if !s.is_empty() {
        return None;
    }
    match (i < 16, ellipsis.is_some()) {
        (true, false) | (false, true) => None,
        _ => Some(()),
    }
}

/// Which family Go's `netip.ParseAddr` would parse `s` as, if it parses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpKind {
    V4,
    V6,
    V6Zoned,
}

pub(crate) fn parse_addr(s: &str) -> Option<IpKind> {
    for b in s.bytes() {
        match b {
            b'.' => return parse_ipv4_fields(s).map(|_| IpKind::V4),
            b':' => {
                parse_ipv6(s)?;
                return Some(if s.contains('%') {
                    IpKind::V6Zoned
                } else {
                    IpKind::V6
                });
            }
            b'%' => return None,
            _ => {}
        }
    }
    None
}

/// Go's `netip.ParsePrefix`.
pub(crate) fn is_prefix(s: &str) -> bool {
    let Some((addr, bits)) = s.rsplit_once('/') else {
        return false;
    };
    let max = match parse_addr(addr) {
        Some(IpKind::V4) => 32,
        Some(IpKind::V6) => 128,
        Some(IpKind::V6Zoned) | None => return false,
    };
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if bits.len() > 1 && bits.starts_with('0') {
        return false;
    }
    bits.parse::<u32>().is_ok_and(|n| n <= max)
}
