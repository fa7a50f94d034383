//! ISO/IEC 7064 MOD 37-2 check character (ST-001 §7.5, Appendix A.1 and A.3).

use crate::chars::{self, CharClass};
use crate::error::{Field, IsbtError};

/// The check character alphabet: value `v` is written as `CHECK_ALPHABET[v]` (ST-001 Table 35).
pub const CHECK_ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

/// The modulus of ISO/IEC 7064 MOD 37-2.
const MODULUS: u32 = 37;

/// A MOD 37-2 check value (0–36) with its character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckCharacter(u8);

impl CheckCharacter {
    /// The check value, 0–36.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The check character: `0`–`9`, `A`–`Z` or `*`.
    pub const fn as_char(self) -> char {
        CHECK_ALPHABET[self.0 as usize] as char
    }

    /// The check character as an ASCII byte.
    pub const fn as_byte(self) -> u8 {
        CHECK_ALPHABET[self.0 as usize]
    }
}

impl std::fmt::Display for CheckCharacter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Value of one input character: 0–9 for digits, 10–35 for A–Z.
#[inline]
const fn char_value(byte: u8) -> u32 {
    match byte {
        b'0'..=b'9' => (byte - b'0') as u32,
        // Callers pass only bytes that passed `CharClass::UpperAlphanumeric`.
        _ => (byte - b'A') as u32 + 10,
    }
}

/// Check character of bytes already known to be `0`–`9` / `A`–`Z` (the pure recursive method
/// of ST-001 Appendix A.3).
#[inline]
pub(crate) fn compute_unchecked(content: &[u8]) -> CheckCharacter {
    let mut running = 0u32;
    for &byte in content {
        debug_assert!(CharClass::UpperAlphanumeric.allows(byte));
        running = ((running + char_value(byte)) * 2) % MODULUS;
    }
    let value = (MODULUS + 1 - running) % MODULUS;
    // Cannot truncate: `value` is below 37.
    CheckCharacter(value as u8)
}

/// Check character of any run of capital letters and digits (the alphabet of ST-001 Table 35).
///
/// Rejects small letters, `*` and every other character with its 1-based position.
/// Use [`crate::Din::check_character`] for a DIN: this function does not know DIN layout rules.
pub fn check_character(content: &str) -> Result<CheckCharacter, IsbtError> {
    if content.is_empty() {
        return Err(IsbtError::Empty);
    }
    for index in 0..content.len() {
        chars::expect(
            content,
            index,
            CharClass::UpperAlphanumeric,
            Field::CheckCharacter,
        )?;
    }
    Ok(compute_unchecked(content.as_bytes()))
}

/// Reads a typed check character at `byte_index` of `text` and compares it with `expected`.
pub(crate) fn verify_typed(
    text: &str,
    byte_index: usize,
    expected: CheckCharacter,
) -> Result<(), IsbtError> {
    let found = chars::expect(
        text,
        byte_index,
        CharClass::CheckCharacter,
        Field::CheckCharacter,
    )?;
    if found == expected.as_byte() {
        Ok(())
    } else {
        Err(IsbtError::CheckCharacterMismatch {
            position: chars::position_of(text, byte_index),
            expected: expected.as_char(),
            found: char::from(found),
        })
    }
}
