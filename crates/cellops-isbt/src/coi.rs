//! Chain of Identity Identifier (DS 040, ST-001 §2.4.40): `&/` + `CH` + issuer FIN +
//! 2-digit nominal year + 6 capital letters or digits. One identifier follows a patient's
//! product from collection to administration.

use crate::chars::{self, CharClass};
use crate::din::{self, Fin, NOMINAL_YEAR_MAX};
use crate::error::{Field, IsbtError};
use crate::mod37::{self, CheckCharacter};
use crate::scan::{self, DataStructure, StructureKind};

/// Characters of the DS 040 content (`CH` + FIN 5 + year 2 + sequence 6).
pub const COI_CHARS: usize = 15;
/// Characters of the sequence part.
pub const COI_SEQUENCE_CHARS: usize = 6;
/// Longest typed identifier accepted, in bytes, spaces included.
pub const COI_TYPED_BYTES_MAX: usize = 40;

const COI_LAYOUT: &str = "CH + FIN 5 + year 2 + sequence 6, then the check character";

/// A Chain of Identity identifier. Its keyboard check character is required whenever it is
/// printed or typed (ST-001 Table 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainOfIdentityId([u8; COI_CHARS]);

impl ChainOfIdentityId {
    /// Builds the identifier issued by `fin` in `nominal_year` (0–99) with `sequence`
    /// (6 capital letters or digits; assignment rules are ST-028's and the caller's).
    pub fn new(fin: Fin, nominal_year: u8, sequence: &str) -> Result<ChainOfIdentityId, IsbtError> {
        if nominal_year > NOMINAL_YEAR_MAX {
            return Err(IsbtError::ValueOutOfRange {
                field: Field::NominalYear,
                found: u32::from(nominal_year),
                max: u32::from(NOMINAL_YEAR_MAX),
            });
        }
        if sequence.len() != COI_SEQUENCE_CHARS {
            return Err(IsbtError::WrongLength {
                what: "a chain of identity sequence",
                layout: "6 capital letters or digits",
                expected_chars: COI_SEQUENCE_CHARS,
                found_chars: sequence.chars().count(),
            });
        }
        let mut out = [0u8; COI_CHARS];
        out[..2].copy_from_slice(b"CH");
        out[2..7].copy_from_slice(fin.as_str().as_bytes());
        out[7..9].copy_from_slice(&chars::digits::<2>(u32::from(nominal_year)));
        chars::expect_run(
            sequence,
            0,
            CharClass::UpperAlphanumeric,
            Field::ChainOfIdentitySequence,
            &mut out[9..],
        )?;
        Ok(ChainOfIdentityId(out))
    }

    /// Parses the scanned data structure `&/CHA999926AB12C3` (exactly one, no check
    /// character) or the typed form `CHA999926AB12C3` + check character, which is required
    /// and must match; spaces in the typed form are ignored.
    pub fn parse(text: &str) -> Result<ChainOfIdentityId, IsbtError> {
        let text = text.trim_end_matches(['\r', '\n']);
        if text.starts_with(['=', '&']) {
            return match scan::parse_expected(text, StructureKind::ChainOfIdentity)? {
                DataStructure::ChainOfIdentity(id) => Ok(id),
                other => unreachable!("parse_expected returned {:?}", other.kind()),
            };
        }
        parse_typed(text)
    }

    /// The issuer FIN.
    pub fn fin(&self) -> Fin {
        // Cannot fail: these bytes passed FIN validation when the identifier was built.
        Fin::parse(chars::ascii_str(&self.0[2..7])).expect("stored FIN is valid")
    }

    /// The nominal year, 0–99.
    pub fn nominal_year(&self) -> u8 {
        (self.0[7] - b'0') * 10 + (self.0[8] - b'0')
    }

    /// The 6-character sequence.
    pub fn sequence(&self) -> &str {
        chars::ascii_str(&self.0[9..])
    }

    /// The 15-character content, e.g. `CHA999926AB12C3`.
    pub fn as_str(&self) -> &str {
        chars::ascii_str(&self.0)
    }

    /// The keyboard check character, MOD 37-2 over the 15 content characters (the data
    /// identifier `&/` excluded: an assumption to confirm, see docs/isbt128.md).
    pub fn check_character(&self) -> CheckCharacter {
        mod37::compute_unchecked(&self.0)
    }
}

impl std::fmt::Display for ChainOfIdentityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads the 15 content characters at byte `start` of `text` (caller checked the length).
pub(crate) fn read_coi(text: &str, start: usize) -> Result<ChainOfIdentityId, IsbtError> {
    let mut out = [0u8; COI_CHARS];
    for (offset, literal) in [b'C', b'H'].into_iter().enumerate() {
        let found = text.as_bytes()[start + offset];
        if found != literal {
            return Err(IsbtError::ExpectedLiteral {
                position: chars::position_of(text, start + offset),
                expected: char::from(literal),
                found: chars::char_at(text, start + offset),
                field: Field::ChainOfIdentityLiteral,
            });
        }
        out[offset] = found;
    }
    let fin = din::read_fin(text, start + 2)?;
    out[2..7].copy_from_slice(fin.as_str().as_bytes());
    chars::expect_run(
        text,
        start + 7,
        CharClass::Digit,
        Field::NominalYear,
        &mut out[7..9],
    )?;
    chars::expect_run(
        text,
        start + 9,
        CharClass::UpperAlphanumeric,
        Field::ChainOfIdentitySequence,
        &mut out[9..],
    )?;
    Ok(ChainOfIdentityId(out))
}

fn parse_typed(text: &str) -> Result<ChainOfIdentityId, IsbtError> {
    if text.len() > COI_TYPED_BYTES_MAX {
        return Err(IsbtError::TooLong {
            found_chars: text.chars().count(),
            max_chars: COI_TYPED_BYTES_MAX,
        });
    }
    let mut offsets = [0usize; COI_CHARS + 1];
    let mut count = 0usize;
    for (index, &byte) in text.as_bytes().iter().enumerate() {
        if byte == b' ' {
            continue;
        }
        if !byte.is_ascii() {
            let (class, field) = typed_slot(count);
            return Err(chars::reject(text, index, class, field));
        }
        if count == offsets.len() {
            return Err(typed_length_error(text));
        }
        offsets[count] = index;
        count += 1;
    }
    if count == 0 {
        return Err(IsbtError::Empty);
    }
    if count != COI_CHARS + 1 {
        return Err(typed_length_error(text));
    }
    // Gather the content without spaces so the shared reader can check it; positions in
    // errors are mapped back to the typed text.
    let mut compact = [0u8; COI_CHARS];
    for (slot, &offset) in compact.iter_mut().zip(&offsets) {
        *slot = text.as_bytes()[offset];
    }
    let compact_text = chars::ascii_str(&compact);
    let id = read_coi(compact_text, 0).map_err(|error| error.remap_position(&offsets, text))?;
    mod37::verify_typed(text, offsets[COI_CHARS], id.check_character())?;
    Ok(id)
}

/// Class and field of the `index`-th non-space character of a typed identifier.
fn typed_slot(index: usize) -> (CharClass, Field) {
    match index {
        0..2 => (CharClass::UpperLetter, Field::ChainOfIdentityLiteral),
        2..7 => (CharClass::FinLetterOrDigit, Field::Fin),
        7..9 => (CharClass::Digit, Field::NominalYear),
        9..COI_CHARS => (CharClass::UpperAlphanumeric, Field::ChainOfIdentitySequence),
        _ => (CharClass::CheckCharacter, Field::CheckCharacter),
    }
}

#[cold]
fn typed_length_error(text: &str) -> IsbtError {
    IsbtError::WrongLength {
        what: "a typed chain of identity identifier",
        layout: COI_LAYOUT,
        expected_chars: COI_CHARS + 1,
        found_chars: text.chars().filter(|&ch| ch != ' ').count(),
    }
}
