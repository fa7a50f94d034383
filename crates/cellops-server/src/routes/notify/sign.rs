//! Webhook signatures: `X-Cellops-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<body>"` with the subscription's secret (docs/notifications.md §Verifying).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "x-cellops-signature";

/// How far a receiver should let `t` be from its own clock, in seconds (replay window).
pub const TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value signing `body` at unix time `t`.
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not t=<unix seconds>,v1=<hex>: {0}")]
    Malformed(String),
    #[error(
        "the signature's time {t} is more than {tolerance} s from now ({now}): a replay or a wrong clock"
    )]
    Stale { t: i64, now: i64, tolerance: i64 },
    #[error("no v1 signature matches the body and the secret")]
    Mismatch,
}

/// Verifies a signature header the way a receiver should: parse, check the time window,
/// then compare every `v1` in constant time (several `v1` may be present while a secret is
/// rotated).
pub fn verify(
    header: &str,
    secret: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                t = Some(
                    v.parse::<i64>()
                        .map_err(|_| SignatureError::Malformed(format!("t={v}")))?,
                )
            }
            Some(("v1", v)) => {
                tags.push(hex::decode(v).map_err(|_| SignatureError::Malformed(format!("v1={v}")))?)
            }
            Some(_) => {} // other schemes are ignored, as receivers must
            None => return Err(SignatureError::Malformed(part.to_string())),
        }
    }
    let t = t.ok_or_else(|| SignatureError::Malformed("no t=".into()))?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed("no v1=".into()));
    }
    if (now_unix - t).abs() > tolerance_seconds {
        return Err(SignatureError::Stale {
            t,
            now: now_unix,
            tolerance: tolerance_seconds,
        });
    }
    let expected = mac(secret, t, body);
    if tags
        .iter()
        .any(|tag| expected.clone().verify_slice(tag).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac_vector() {
        // RFC 4231 test case 2's key and message, prefixed with "0." as a signature is.
        let header = signature_header("Jefe", 0, b"what do ya want for nothing?");
        // HMAC-SHA256("Jefe", "0.what do ya want for nothing?") computed with Python's hmac.
        assert_eq!(
            header,
            "t=0,v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
    }

    #[test]
    fn verifies_and_refuses() {
        let body = br#"{"kind":"product.shipped"}"#;
        let h = signature_header("whsec_x", 1_764_000_000, body);
        assert_eq!(verify(&h, "whsec_x", body, 1_764_000_100, 300), Ok(()));
        assert_eq!(
            verify(&h, "whsec_y", body, 1_764_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, "whsec_x", b"{}", 1_764_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(&h, "whsec_x", body, 1_764_000_400, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            verify("v1=00", "whsec_x", body, 0, 300),
            Err(SignatureError::Malformed(_))
        ));
        // A rotated secret: either v1 may match.
        let other = signature_header("whsec_old", 1_764_000_000, body);
        let both = format!("{h},{}", other.split_once(',').unwrap().1);
        assert_eq!(verify(&both, "whsec_old", body, 1_764_000_000, 300), Ok(()));
    }
}
