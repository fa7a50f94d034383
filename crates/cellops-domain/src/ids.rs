//! Identifiers: sites, users, ledger streams. Parsed once at the boundary, trusted inside.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{field} {value:?} is invalid: {rule}")]
    Invalid {
        field: &'static str,
        value: String,
        rule: &'static str,
    },
}

/// Longest identifier accepted, in bytes.
pub const ID_LEN_MAX: usize = 128;

fn check_id(field: &'static str, value: &str, allow_slash: bool) -> Result<(), IdError> {
    let invalid = |rule| IdError::Invalid {
        field,
        value: value.to_string(),
        rule,
    };
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.len() > ID_LEN_MAX {
        return Err(invalid("must be at most 128 characters"));
    }
    let ok = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '-' | '_' | '.')
            || (allow_slash && c == '/')
    };
    if !value.chars().all(ok) {
        return Err(invalid(if allow_slash {
            "use lowercase letters, digits, '-', '_', '.' and '/' only"
        } else {
            "use lowercase letters, digits, '-', '_' and '.' only"
        }));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $slash:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<$name, IdError> {
                check_id($field, value, $slash)?;
                Ok($name(value.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                check_id($field, &value, $slash)?;
                Ok($name(value))
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A site of the network (hospital, CPC, QC lab, licensee…), e.g. `cpc-kyoto`.
    SiteId, "site", false
);
id_type!(
    /// A user account id (login name), never reused or reassigned (Part 11 §11.100).
    UserId, "user", false
);
id_type!(
    /// A ledger stream (aggregate id), e.g. `batch/2026-0001` or `user/alice`.
    Stream, "stream", true
);

/// Crockford base-32 alphabet (no I, L, O, U: nothing to misread on a wristband or paper).
pub const CROCKFORD_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The low `5 × chars` bits of `random` in Crockford base 32, most significant first
/// (`chars` ≤ 12). Callers draw `random` (injected randomness) and add their prefix.
pub fn crockford_base32(random: u64, chars: usize) -> String {
    assert!(chars <= 12, "at most 12 characters (60 bits) fit in a u64");
    (0..chars)
        .rev()
        .map(|i| CROCKFORD_ALPHABET[((random >> (5 * i)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn crockford_writes_five_bits_per_character_most_significant_first() {
        assert_eq!(super::crockford_base32(0, 3), "000");
        assert_eq!(super::crockford_base32(31, 2), "0Z");
        assert_eq!(super::crockford_base32((1 << 5) | 10, 2), "1A");
        assert_eq!(super::crockford_base32(u64::MAX, 12), "ZZZZZZZZZZZZ");
    }

    use super::*;

    #[test]
    fn ids_parse_and_name_the_field() {
        assert!(SiteId::parse("cpc-kyoto").is_ok());
        let err = UserId::parse("Alice").unwrap_err();
        assert!(err.to_string().starts_with("user \"Alice\" is invalid"));
        assert!(Stream::parse("batch/2026-0001").is_ok());
        assert!(SiteId::parse("a/b").is_err());
        assert!(Stream::parse("").is_err());
    }
}
