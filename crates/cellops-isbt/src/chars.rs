//! Character classes of ISBT 128 fields and the checks that read them.
//!
//! All checks work on bytes and never allocate: `Din::parse` sits on the scanning hot path.

use crate::error::{Field, IsbtError};

/// The set of characters a field accepts (ST-001 Table 3 and §2.4.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    /// First FIN character: A–N, P–Z, 1–9 (no letter O, no digit 0).
    FinFirst,
    /// Second and third FIN characters: A–N, P–Z, 0–9 (no letter O).
    FinLetterOrDigit,
    /// A digit 0–9.
    Digit,
    /// A capital letter A–Z.
    UpperLetter,
    /// A capital letter A–Z or a digit 0–9.
    UpperAlphanumeric,
    /// A small letter a–z or a digit 0–9 (second division character).
    LowerAlphanumeric,
    /// A check character: 0–9, A–Z or `*`.
    CheckCharacter,
}

impl CharClass {
    /// True when `byte` belongs to the class.
    #[inline]
    pub const fn allows(self, byte: u8) -> bool {
        match self {
            CharClass::FinFirst => matches!(byte, b'A'..=b'N' | b'P'..=b'Z' | b'1'..=b'9'),
            CharClass::FinLetterOrDigit => matches!(byte, b'A'..=b'N' | b'P'..=b'Z' | b'0'..=b'9'),
            CharClass::Digit => byte.is_ascii_digit(),
            CharClass::UpperLetter => byte.is_ascii_uppercase(),
            CharClass::UpperAlphanumeric => matches!(byte, b'A'..=b'Z' | b'0'..=b'9'),
            CharClass::LowerAlphanumeric => matches!(byte, b'a'..=b'z' | b'0'..=b'9'),
            CharClass::CheckCharacter => matches!(byte, b'A'..=b'Z' | b'0'..=b'9' | b'*'),
        }
    }
}

impl std::fmt::Display for CharClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CharClass::FinFirst => {
                "capital letters A–N, P–Z or digits 1–9 (letter O and digit 0 are never used here)"
            }
            CharClass::FinLetterOrDigit => {
                "capital letters A–N, P–Z or digits 0–9 (letter O is never used, to avoid confusion with zero)"
            }
            CharClass::Digit => "digits 0–9 only",
            CharClass::UpperLetter => "capital letters A–Z only",
            CharClass::UpperAlphanumeric => "capital letters A–Z or digits 0–9",
            CharClass::LowerAlphanumeric => "small letters a–z or digits 0–9",
            CharClass::CheckCharacter => "digits 0–9, capital letters A–Z or '*'",
        })
    }
}

/// 1-based character position of byte offset `byte_index` in `text`.
///
/// Only called on the error path, so counting characters here costs nothing on valid input.
pub(crate) fn position_of(text: &str, byte_index: usize) -> usize {
    let end = byte_index.min(text.len());
    // Cannot land inside a character: callers pass the start of a character or `text.len()`;
    // if they did not, count the bytes as characters rather than panic.
    match text.get(..end) {
        Some(prefix) => prefix.chars().count() + 1,
        None => end + 1,
    }
}

/// The character starting at byte offset `byte_index` (U+FFFD if none).
pub(crate) fn char_at(text: &str, byte_index: usize) -> char {
    text.get(byte_index..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The error for a byte at `byte_index` that `class` does not allow.
#[cold]
pub(crate) fn reject(text: &str, byte_index: usize, class: CharClass, field: Field) -> IsbtError {
    let position = position_of(text, byte_index);
    let found = char_at(text, byte_index);
    if found.is_ascii_lowercase() && class.allows(found.to_ascii_uppercase() as u8) {
        return IsbtError::Lowercase {
            position,
            found,
            upper: found.to_ascii_uppercase(),
            field,
        };
    }
    IsbtError::CharNotAllowed {
        position,
        found,
        field,
        allowed: class,
    }
}

/// Checks that the byte at `byte_index` of `text` belongs to `class`.
#[inline]
pub(crate) fn expect(
    text: &str,
    byte_index: usize,
    class: CharClass,
    field: Field,
) -> Result<u8, IsbtError> {
    let byte = text.as_bytes()[byte_index];
    if class.allows(byte) {
        Ok(byte)
    } else {
        Err(reject(text, byte_index, class, field))
    }
}

/// Checks `count` bytes from `start` against `class` and copies them into `out`.
#[inline]
pub(crate) fn expect_run(
    text: &str,
    start: usize,
    class: CharClass,
    field: Field,
    out: &mut [u8],
) -> Result<(), IsbtError> {
    for (offset, slot) in out.iter_mut().enumerate() {
        *slot = expect(text, start + offset, class, field)?;
    }
    Ok(())
}

/// Reads `N` digits from `start` as a number.
#[inline]
pub(crate) fn expect_number<const N: usize>(
    text: &str,
    start: usize,
    field: Field,
) -> Result<u32, IsbtError> {
    let mut value = 0u32;
    for offset in 0..N {
        let digit = expect(text, start + offset, CharClass::Digit, field)?;
        value = value * 10 + u32::from(digit - b'0');
    }
    Ok(value)
}

/// Writes `value` as exactly `N` zero-padded ASCII digits.
pub(crate) fn digits<const N: usize>(mut value: u32) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    debug_assert!(value == 0, "value does not fit in {N} digits");
    out
}

/// Views bytes that were validated as ASCII as a `&str`.
pub(crate) fn ascii_str(bytes: &[u8]) -> &str {
    // Cannot fail: every constructor in this crate stores only bytes that passed a
    // `CharClass` check, and every class is a subset of ASCII.
    std::str::from_utf8(bytes).expect("validated ISBT 128 characters are ASCII")
}
