//! CSRF protection for the UI's HTML forms.
//!
//! Every form carries a hidden `csrf` field. Signed in, its value is derived from the
//! session token (`SHA-256("cellops-ui-csrf-v1\n" || token)`): another site can neither
//! read the HttpOnly cookie nor compute the value. Before sign-in (login and language
//! forms) it is derived the same way from a random `cellops_csrf` cookie (double submit).
//! A POST whose `Origin` names another host is refused as well. The session cookie is
//! also `SameSite=Strict`; these checks do not rely on that alone.

use super::i18n::cookie;
use crate::auth::SESSION_COOKIE;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// Cookie holding the random pre-sign-in CSRF secret.
pub const CSRF_COOKIE: &str = "cellops_csrf";

/// The form token for a secret (a session token or the pre-sign-in cookie).
pub fn token_for(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"cellops-ui-csrf-v1\n");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// The secret this request's forms are bound to: the session cookie, else the CSRF cookie.
pub fn secret(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
        .filter(|v| !v.is_empty())
        .or_else(|| cookie(headers, CSRF_COOKIE).filter(|v| !v.is_empty()))
}

/// Why a form submission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRefusal {
    /// The `Origin` header names another site.
    ForeignOrigin,
    /// The request has no session or CSRF cookie to bind the token to.
    NoSecret,
    /// The `csrf` field is missing or does not match.
    BadToken,
}

/// Checks a submitted form token against the request's cookies and origin.
pub fn check(headers: &HeaderMap, submitted: &str) -> Result<(), CsrfRefusal> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(origin);
        if origin_host != host {
            return Err(CsrfRefusal::ForeignOrigin);
        }
    }
    let secret = secret(headers).ok_or(CsrfRefusal::NoSecret)?;
    let expected = token_for(&secret);
    // Compare every byte, so the time taken does not tell how much of a guess was right.
    let same = expected.len() == submitted.len()
        && expected
            .bytes()
            .zip(submitted.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(CsrfRefusal::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, cookie.parse().unwrap());
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_token_of_the_session_passes_and_others_fail() {
        let h = headers("cellops_session=abc", Some("http://127.0.0.1:8080"));
        assert_eq!(check(&h, &token_for("abc")), Ok(()));
        assert_eq!(check(&h, &token_for("abd")), Err(CsrfRefusal::BadToken));
        assert_eq!(check(&h, ""), Err(CsrfRefusal::BadToken));
        let foreign = headers("cellops_session=abc", Some("https://evil.example"));
        assert_eq!(
            check(&foreign, &token_for("abc")),
            Err(CsrfRefusal::ForeignOrigin)
        );
        let none = headers("other=1", None);
        assert_eq!(check(&none, &token_for("")), Err(CsrfRefusal::NoSecret));
        let pre = headers("cellops_csrf=r4nd", None);
        assert_eq!(check(&pre, &token_for("r4nd")), Ok(()));
    }
}
