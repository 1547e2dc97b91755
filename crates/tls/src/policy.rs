//! Protocol version bounds and cipher suite names.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{CipherSuite, SupportedCipherSuite, SupportedProtocolVersion};

use crate::{Error, TlsVersion};

static TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
static TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The protocol versions enabled by `minProtocolVersion` / `maxProtocolVersion`.
///
/// `Auto` is TLS 1.2 as a minimum and TLS 1.3 as a maximum. TLS 1.0 and 1.1 are refused
/// (rustls does not implement them) rather than raised to 1.2 behind the user's back.
pub fn protocol_versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<&'static [&'static SupportedProtocolVersion], Error> {
    for (setting, v) in [("minProtocolVersion", min), ("maxProtocolVersion", max)] {
        if matches!(v, TlsVersion::V1_0 | TlsVersion::V1_1) {
            return Err(Error::UnsupportedProtocolVersion {
                setting,
                version: v,
            });
        }
    }
    let lo = if min == TlsVersion::Auto {
        TlsVersion::V1_2
    } else {
        min
    };
    let hi = if max == TlsVersion::Auto {
        TlsVersion::V1_3
    } else {
        max
    };
    match (lo, hi) {
        (TlsVersion::V1_2, TlsVersion::V1_3) => Ok(TLS12_AND_13),
        (TlsVersion::V1_2, TlsVersion::V1_2) => Ok(TLS12_ONLY),
        (TlsVersion::V1_3, TlsVersion::V1_3) => Ok(TLS13_ONLY),
        _ => Err(Error::InvalidVersionRange { min, max }),
    }
}

fn versions_label(versions: &[&SupportedProtocolVersion]) -> &'static str {
    let has12 = versions
        .iter()
        .any(|v| v.version == rustls::ProtocolVersion::TLSv1_2);
    let has13 = versions
        .iter()
        .any(|v| v.version == rustls::ProtocolVersion::TLSv1_3);
    match (has12, has13) {
        (true, true) => "TLS 1.2 and TLS 1.3",
        (true, false) => "TLS 1.2",
        _ => "TLS 1.3",
    }
}

/// Cipher suite names Istio and Envoy accept, mapped to IANA suites.
/// `None` marks a suite that exists but that rustls does not implement, with the reason.
fn lookup_suite(name: &str) -> Option<Result<CipherSuite, &'static str>> {
    use CipherSuite as C;
    const NO_CBC: &str = "CBC-mode suites are not implemented by rustls";
    const NO_RSA_KX: &str =
        "static RSA key exchange (no forward secrecy) is not implemented by rustls";
    Some(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" | "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            Ok(C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
        }
        "ECDHE-RSA-AES128-GCM-SHA256" | "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            Ok(C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
        }
        "ECDHE-ECDSA-AES256-GCM-SHA384" | "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            Ok(C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
        }
        "ECDHE-RSA-AES256-GCM-SHA384" | "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            Ok(C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
        }
        "ECDHE-ECDSA-CHACHA20-POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            Ok(C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "ECDHE-RSA-CHACHA20-POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            Ok(C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
        }
        "TLS_AES_128_GCM_SHA256" => Ok(C::TLS13_AES_128_GCM_SHA256),
        "TLS_AES_256_GCM_SHA384" => Ok(C::TLS13_AES_256_GCM_SHA384),
        "TLS_CHACHA20_POLY1305_SHA256" => Ok(C::TLS13_CHACHA20_POLY1305_SHA256),
        "ECDHE-ECDSA-AES128-SHA"
        | "ECDHE-RSA-AES128-SHA"
        | "ECDHE-ECDSA-AES256-SHA"
        | "ECDHE-RSA-AES256-SHA"
        | "AES128-SHA"
        | "AES256-SHA"
        | "DES-CBC3-SHA" => Err(NO_CBC),
        "AES128-GCM-SHA256" | "AES256-GCM-SHA384" => Err(NO_RSA_KX),
        _ => return None,
    })
}

/// A copy of `provider` restricted to `cipher_suites` (Istio's `cipherSuites`).
///
/// Envoy applies `cipherSuites` to TLS 1.2 only, so TLS 1.3 suites stay enabled unless a
/// TLS 1.3 name is listed too. An empty list keeps the provider's suites. Empty entries are
/// skipped; OpenSSL operator syntax (`!X`, `[A|B]`, `ALL`) and unknown names are errors.
pub fn restrict_cipher_suites(
    provider: &Arc<CryptoProvider>,
    cipher_suites: &[String],
    versions: &[&SupportedProtocolVersion],
) -> Result<Arc<CryptoProvider>, Error> {
    let mut wanted: Vec<CipherSuite> = Vec::new();
    for name in cipher_suites {
        let name_trimmed = name.trim();
        if name_trimmed.is_empty() {
            continue;
        }
        match lookup_suite(name_trimmed) {
            Some(Ok(suite)) => {
                if !wanted.contains(&suite) {
                    wanted.push(suite);
                }
            }
            Some(Err(reason)) => {
                return Err(Error::UnsupportedCipherSuite {
                    name: name.clone(),
                    reason,
                });
            }
            None => return Err(Error::UnknownCipherSuite { name: name.clone() }),
        }
    }
    if wanted.is_empty() {
        return Ok(Arc::clone(provider));
    }
    let restrict13 = wanted.iter().any(|s| {
        provider
            .cipher_suites
            .iter()
            .any(|p| p.suite() == *s && matches!(p, SupportedCipherSuite::Tls13(_)))
    });
    // Keep the order of `cipherSuites` for the listed ones (server preference order).
    let mut suites: Vec<SupportedCipherSuite> = wanted
        .iter()
        .filter_map(|s| {
            provider
                .cipher_suites
                .iter()
                .find(|p| p.suite() == *s)
                .copied()
        })
        .collect();
    if !restrict13 {
        suites.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|p| matches!(p, SupportedCipherSuite::Tls13(_)))
                .copied(),
        );
    }
    let usable = suites.iter().any(|s| {
        let wanted = match s {
            SupportedCipherSuite::Tls12(_) => rustls::ProtocolVersion::TLSv1_2,
            SupportedCipherSuite::Tls13(_) => rustls::ProtocolVersion::TLSv1_3,
        };
        versions.iter().any(|v| v.version == wanted)
    });
    if !usable {
        return Err(Error::NoUsableCipherSuites {
            versions: versions_label(versions),
        });
    }
    let mut restricted = CryptoProvider::clone(provider);
    restricted.cipher_suites = suites;
    Ok(Arc::new(restricted))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn versions() {
        use TlsVersion::*;
        assert_eq!(protocol_versions(Auto, Auto).unwrap().len(), 2);
        assert_eq!(protocol_versions(V1_2, V1_2).unwrap().len(), 1);
        assert_eq!(protocol_versions(V1_3, Auto).unwrap().len(), 1);
        assert!(matches!(
            protocol_versions(V1_1, Auto),
            Err(Error::UnsupportedProtocolVersion {
                setting: "minProtocolVersion",
                version: V1_1
            })
        ));
        assert!(matches!(
            protocol_versions(Auto, V1_0),
            Err(Error::UnsupportedProtocolVersion {
                setting: "maxProtocolVersion",
                ..
            })
        ));
        assert!(matches!(
            protocol_versions(V1_3, V1_2),
            Err(Error::InvalidVersionRange { .. })
        ));
        let msg = protocol_versions(V1_0, V1_3).unwrap_err().to_string();
        assert!(
            msg.contains("minProtocolVersion") && msg.contains("TLSV1_0"),
            "{msg}"
        );
    }

    #[test]
    fn cipher_names() {
        let p = Arc::new(rustls::crypto::ring::default_provider());
        let v = protocol_versions(TlsVersion::Auto, TlsVersion::Auto).unwrap();
        let r = restrict_cipher_suites(&p, &["ECDHE-ECDSA-AES128-GCM-SHA256".into()], v).unwrap();
        assert_eq!(r.cipher_suites.len(), 4); // the one listed + 3 TLS 1.3 suites
        assert_eq!(
            r.cipher_suites[0].suite(),
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        );
        let r = restrict_cipher_suites(&p, &["TLS_AES_256_GCM_SHA384".into()], v).unwrap();
        assert_eq!(r.cipher_suites.len(), 1);
        let e = restrict_cipher_suites(&p, &["ECDHE-RSA-AES128-SHA".into()], v).unwrap_err();
        assert!(e.to_string().contains("ECDHE-RSA-AES128-SHA"), "{e}");
        let e = restrict_cipher_suites(&p, &["BOGUS".into()], v).unwrap_err();
        assert!(matches!(&e, Error::UnknownCipherSuite { name } if name == "BOGUS"));
        let e = restrict_cipher_suites(&p, &["!aNULL".into()], v).unwrap_err();
        assert!(e.to_string().contains("!aNULL"));
        let tls12 = protocol_versions(TlsVersion::V1_2, TlsVersion::V1_2).unwrap();
        let e = restrict_cipher_suites(&p, &["TLS_AES_256_GCM_SHA384".into()], tls12).unwrap_err();
        assert!(matches!(e, Error::NoUsableCipherSuites { .. }));
        assert_eq!(
            restrict_cipher_suites(&p, &[], v)
                .unwrap()
                .cipher_suites
                .len(),
            9
        );
    }
}
