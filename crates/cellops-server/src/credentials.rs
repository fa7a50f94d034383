//! Passwords (Argon2id, OWASP minimums) and opaque tokens. Hashes live in the backend's
//! secrets table, never in the ledger.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Shortest password accepted, in characters (standards.md §6).
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Longest password accepted, in characters (allow passphrases; bound the hashing work).
pub const PASSWORD_CHARS_MAX: usize = 256;

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet minimum: m = 19 MiB, t = 2, p = 1, 32-byte tag.
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_password_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < PASSWORD_CHARS_MIN {
        return Err(format!(
            "is {n} characters; use at least {PASSWORD_CHARS_MIN} (a passphrase is fine)"
        ));
    }
    if n > PASSWORD_CHARS_MAX {
        return Err(format!("is longer than {PASSWORD_CHARS_MAX} characters"));
    }
    Ok(())
}

/// Hashes `password` into a PHC string with a 16-byte salt drawn from `rng`.
pub fn hash_password(password: &str, rng: &mut impl RngCore) -> String {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt encodes");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashing with valid parameters")
        .to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new opaque token: 256 random bits, URL-safe base64.
/// Password checks that recently succeeded, so that a person who signs step after step does
/// not pay a full Argon2 verification (tens of milliseconds, by design) for each signature.
///
/// Only successes are kept, for [`RECENT_VERIFIED_TTL`] of wall time, keyed by
/// HMAC-SHA256 under a random key held only in this process's memory over the stored hash
/// and the password; a changed password changes the stored hash, so its entries no longer
/// match. Failures always run Argon2 (and count toward lockout). Bounded: at most
/// [`RECENT_VERIFIED_MAX`] entries, cleared when full.
pub struct RecentlyVerified {
    key: [u8; 32],
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
}

/// How long a successful password check is remembered (wall time).
pub const RECENT_VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Most remembered checks.
pub const RECENT_VERIFIED_MAX: usize = 4096;

impl RecentlyVerified {
    pub fn new(rng: &mut impl RngCore) -> RecentlyVerified {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        RecentlyVerified {
            key,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn tag(&self, password: &str, phc: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .expect("HMAC takes any key length");
        mac.update(phc.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// [`verify_password`], answered from memory when the same password matched the same
    /// stored hash within the last [`RECENT_VERIFIED_TTL`].
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let tag = self.tag(password, phc);
        let now = std::time::Instant::now();
        let fresh = |at: &std::time::Instant| now.duration_since(*at) < RECENT_VERIFIED_TTL;
        if self
            .entries
            .lock()
            .expect("verified lock")
            .get(&tag)
            .is_some_and(fresh)
        {
            return true;
        }
        let ok = verify_password(password, phc);
        if ok {
            let mut entries = self.entries.lock().expect("verified lock");
            if entries.len() >= RECENT_VERIFIED_MAX {
                entries.clear();
            }
            entries.insert(tag, now);
        }
        ok
    }
}

pub fn new_token(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the ledger records of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn secret_name_password(user_id: &str) -> String {
    format!("password:{user_id}")
}

pub fn secret_name_session_seen(token_hash: &str) -> String {
    format!("session_seen:{token_hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn passwords_hash_and_verify() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let phc = hash_password("correct horse battery", &mut rng);
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse battery!", &phc));
        assert!(!verify_password("x", "not a hash"));
        let recent = RecentlyVerified::new(&mut rand::rngs::StdRng::seed_from_u64(2));
        assert!(!recent.verify("correct horse battery!", &phc));
        assert!(recent.verify("correct horse battery", &phc));
        assert!(recent.verify("correct horse battery", &phc), "remembered");
        assert!(
            !recent.verify("correct horse battery!", &phc),
            "a wrong one still fails"
        );
        let other = hash_password(
            "correct horse battery",
            &mut rand::rngs::StdRng::seed_from_u64(3),
        );
        assert_ne!(
            recent.tag("correct horse battery", &phc),
            recent.tag("correct horse battery", &other)
        );
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("twelve chars").is_ok());
    }
}
