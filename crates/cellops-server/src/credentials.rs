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
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("twelve chars").is_ok());
    }
}
