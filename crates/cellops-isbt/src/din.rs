//! Facility Identification Number and Donation Identification Number (DS 001).
//!
//! ST-001 §2.4.1, Table 3 and Appendix A: the DIN is `αppppyynnnnnn` (13 characters); its
//! barcode form is `=` + DIN + two flag characters. The DIN is the one identity of a unit: it is
//! globally unique for 100 years, so it is a value type with no way to build an invalid one.

use crate::chars::{self, CharClass};
use crate::error::{Field, IsbtError};
use crate::mod37::{self, CheckCharacter};
use crate::scan::{self, StructureKind};

/// Characters in a FIN.
pub const FIN_CHARS: usize = 5;
/// Characters in a DIN (FIN 5 + nominal year 2 + sequence 6), without flags or check character.
pub const DIN_CHARS: usize = 13;
/// Characters of a DS 001 data structure: `=` + DIN + 2 flag characters.
pub const DIN_STRUCTURE_CHARS: usize = 16;
/// Largest DIN sequence number (6 digits).
pub const DIN_SEQUENCE_MAX: u32 = 999_999;
/// Largest nominal year (2 digits).
pub const NOMINAL_YEAR_MAX: u8 = 99;
/// Longest typed DIN accepted, in bytes, spaces included (`G1234 17 654321 A` is 17).
pub const DIN_TYPED_BYTES_MAX: usize = 32;

/// Class and field of each of the 13 DIN characters (ST-001 Table 3).
const DIN_LAYOUT: [(CharClass, Field); DIN_CHARS] = [
    (CharClass::FinFirst, Field::Fin),
    (CharClass::FinLetterOrDigit, Field::Fin),
    (CharClass::FinLetterOrDigit, Field::Fin),
    (CharClass::Digit, Field::Fin),
    (CharClass::Digit, Field::Fin),
    (CharClass::Digit, Field::NominalYear),
    (CharClass::Digit, Field::NominalYear),
    (CharClass::Digit, Field::DinSequence),
    (CharClass::Digit, Field::DinSequence),
    (CharClass::Digit, Field::DinSequence),
    (CharClass::Digit, Field::DinSequence),
    (CharClass::Digit, Field::DinSequence),
    (CharClass::Digit, Field::DinSequence),
];

const DIN_LAYOUT_TEXT: &str = "FIN 5 + year 2 + sequence 6";

/// A Facility Identification Number: 5 characters, `α` A–N/P–Z/1–9, then two A–N/P–Z/0–9,
/// then two digits. FINs A9990–A9999 are reserved for validation and testing (ST-001 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fin([u8; FIN_CHARS]);

impl Fin {
    /// Parses exactly 5 FIN characters (no data identifier, no spaces).
    pub fn parse(text: &str) -> Result<Fin, IsbtError> {
        if text.len() != FIN_CHARS {
            return Err(IsbtError::WrongLength {
                what: "a FIN",
                layout: "1 letter or digit, 2 letters or digits, 2 digits",
                expected_chars: FIN_CHARS,
                found_chars: text.chars().count(),
            });
        }
        read_fin(text, 0)
    }

    /// The 5 characters.
    pub fn as_str(&self) -> &str {
        chars::ascii_str(&self.0)
    }

    /// True for A9990–A9999, the FINs ISBT 128 reserves for validation and test data.
    pub fn is_test_facility(&self) -> bool {
        self.0[..4] == *b"A999"
    }
}

impl std::fmt::Display for Fin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Fin {
    type Err = IsbtError;
    fn from_str(text: &str) -> Result<Fin, IsbtError> {
        Fin::parse(text)
    }
}

/// Reads 5 FIN characters at byte `start` of `text` (caller checked the length).
pub(crate) fn read_fin(text: &str, start: usize) -> Result<Fin, IsbtError> {
    let mut out = [0u8; FIN_CHARS];
    for (offset, slot) in out.iter_mut().enumerate() {
        let (class, field) = DIN_LAYOUT[offset];
        *slot = chars::expect(text, start + offset, class, field)?;
    }
    Ok(Fin(out))
}

/// A Donation Identification Number: FIN + 2-digit nominal year + 6-digit sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Din([u8; DIN_CHARS]);

impl Din {
    /// Builds the DIN of `sequence` (0–999 999) in `nominal_year` (0–99, the last two digits of
    /// the year of assignment) at facility `fin`. Allocation of sequence numbers is the caller's.
    pub fn new(fin: Fin, nominal_year: u8, sequence: u32) -> Result<Din, IsbtError> {
        if nominal_year > NOMINAL_YEAR_MAX {
            return Err(IsbtError::ValueOutOfRange {
                field: Field::NominalYear,
                found: u32::from(nominal_year),
                max: u32::from(NOMINAL_YEAR_MAX),
            });
        }
        if sequence > DIN_SEQUENCE_MAX {
            return Err(IsbtError::ValueOutOfRange {
                field: Field::DinSequence,
                found: sequence,
                max: DIN_SEQUENCE_MAX,
            });
        }
        let mut out = [0u8; DIN_CHARS];
        out[..5].copy_from_slice(&fin.0);
        out[5..7].copy_from_slice(&chars::digits::<2>(u32::from(nominal_year)));
        out[7..].copy_from_slice(&chars::digits::<6>(sequence));
        Ok(Din(out))
    }

    /// Parses a DIN as scanned or typed. Accepted forms:
    /// - the DS 001 barcode content `=G12341765432170` (flags checked, then dropped: use
    ///   [`DinStructure::parse`] to keep them);
    /// - the 13 characters `G123417654321`;
    /// - the 13 characters and the keyboard check character `G123417654321A`, which must match.
    ///
    /// In typed forms spaces are ignored, so `G1234 17 654321 A` is accepted. Trailing CR/LF
    /// from a keyboard-wedge scanner are ignored. Never allocates.
    pub fn parse(text: &str) -> Result<Din, IsbtError> {
        let text = text.trim_end_matches(['\r', '\n']);
        if text.len() > DIN_TYPED_BYTES_MAX {
            return Err(IsbtError::TooLong {
                found_chars: text.chars().count(),
                max_chars: DIN_TYPED_BYTES_MAX,
            });
        }
        match text.as_bytes().iter().find(|&&byte| byte != b' ') {
            None => Err(IsbtError::Empty),
            Some(b'=' | b'&') => DinStructure::parse(text).map(|structure| structure.din),
            Some(_) => parse_typed(text),
        }
    }

    /// The FIN of the facility that assigned this DIN.
    pub fn fin(&self) -> Fin {
        let mut out = [0u8; FIN_CHARS];
        out.copy_from_slice(&self.0[..FIN_CHARS]);
        Fin(out)
    }

    /// The nominal year of assignment, 0–99 (last two digits of the year).
    pub fn nominal_year(&self) -> u8 {
        (self.0[5] - b'0') * 10 + (self.0[6] - b'0')
    }

    /// The sequence number within FIN and nominal year, 0–999 999.
    pub fn sequence(&self) -> u32 {
        self.0[7..]
            .iter()
            .fold(0u32, |acc, &byte| acc * 10 + u32::from(byte - b'0'))
    }

    /// Parses exactly the 13 DIN characters (no data identifier, flags, check character or
    /// spaces), as needed to compute a check character.
    pub fn parse_characters(text: &str) -> Result<Din, IsbtError> {
        if text.len() != DIN_CHARS {
            return Err(IsbtError::WrongLength {
                what: "a DIN",
                layout: DIN_LAYOUT_TEXT,
                expected_chars: DIN_CHARS,
                found_chars: text.chars().count(),
            });
        }
        read_din(text, 0)
    }

    /// The 13 characters, e.g. `G123417654321`.
    pub fn as_str(&self) -> &str {
        chars::ascii_str(&self.0)
    }

    /// The keyboard check character K (ISO/IEC 7064 MOD 37-2 over the 13 characters).
    pub fn check_character(&self) -> CheckCharacter {
        mod37::compute_unchecked(&self.0)
    }

    /// The eye-readable form `G1234 17 654321` (ST-001 §7.4.1), without the boxed K.
    pub fn eye_readable(&self) -> EyeReadableDin {
        EyeReadableDin(*self)
    }

    /// The DS 001 data structure of this DIN with `flags`.
    pub fn with_flags(self, flags: Flags) -> DinStructure {
        DinStructure { din: self, flags }
    }
}

impl std::fmt::Display for Din {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Din {
    type Err = IsbtError;
    fn from_str(text: &str) -> Result<Din, IsbtError> {
        Din::parse(text)
    }
}

/// Parses a typed DIN: 13 characters and an optional check character, spaces ignored.
fn parse_typed(text: &str) -> Result<Din, IsbtError> {
    // Byte offsets in `text` of the non-space characters: positions in errors stay those of
    // the text the person typed.
    let mut offsets = [0usize; DIN_CHARS + 1];
    let mut count = 0usize;
    for (index, &byte) in text.as_bytes().iter().enumerate() {
        if byte == b' ' {
            continue;
        }
        if count == offsets.len() {
            return Err(typed_length_error(text));
        }
        if !byte.is_ascii() {
            // A non-ASCII character is refused where it stands, with the rule of that slot.
            let (class, field) = DIN_LAYOUT
                .get(count)
                .copied()
                .unwrap_or((CharClass::CheckCharacter, Field::CheckCharacter));
            return Err(chars::reject(text, index, class, field));
        }
        offsets[count] = index;
        count += 1;
    }
    if count < DIN_CHARS {
        return Err(typed_length_error(text));
    }
    let mut out = [0u8; DIN_CHARS];
    for (slot, (&offset, &(class, field))) in out.iter_mut().zip(offsets.iter().zip(&DIN_LAYOUT)) {
        *slot = chars::expect(text, offset, class, field)?;
    }
    let din = Din(out);
    if count == DIN_CHARS + 1 {
        mod37::verify_typed(text, offsets[DIN_CHARS], din.check_character())?;
    }
    Ok(din)
}

#[cold]
fn typed_length_error(text: &str) -> IsbtError {
    IsbtError::WrongLength {
        what: "a typed DIN",
        layout: "FIN 5 + year 2 + sequence 6, optionally followed by the check character",
        expected_chars: DIN_CHARS,
        found_chars: text.chars().filter(|&ch| ch != ' ').count(),
    }
}

/// Reads the 13 DIN characters at byte `start` of `text` (caller checked the length).
pub(crate) fn read_din(text: &str, start: usize) -> Result<Din, IsbtError> {
    let mut out = [0u8; DIN_CHARS];
    for (offset, (slot, &(class, field))) in out.iter_mut().zip(&DIN_LAYOUT).enumerate() {
        *slot = chars::expect(text, start + offset, class, field)?;
    }
    Ok(Din(out))
}

/// Eye-readable DIN `G1234 17 654321` (FIN, year, sequence separated by spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EyeReadableDin(Din);

impl std::fmt::Display for EyeReadableDin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.as_str();
        write!(f, "{} {} {}", &text[..5], &text[5..7], &text[7..])
    }
}

/// What the two flag characters after a DIN say (ST-001 Table 3 [RT004]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagKind {
    /// `00`: no flag (need not be printed).
    NotUsed,
    /// `01`–`19` except the reserved `14`: ICCBBA-defined meaning (container of a set, sample…).
    IccbbaDefined(u8),
    /// `20`–`59`: meaning defined by the facility; only it may interpret the value.
    LocallyDefined(u8),
    /// `60`–`96`: 60 + the DIN's MOD 37-2 check value, so a misread DIN is caught.
    CheckValue,
}

/// The flag characters of a DS 001 data structure. Built only through its constructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags(FlagKind);

/// Smallest ICCBBA-defined (Type 1) flag value.
pub const FLAG_TYPE1_MIN: u8 = 1;
/// Largest ICCBBA-defined (Type 1) flag value.
pub const FLAG_TYPE1_MAX: u8 = 19;
/// The Type 1 value ST-001 reserves.
pub const FLAG_TYPE1_RESERVED: u8 = 14;
/// Smallest locally defined (Type 2) flag value.
pub const FLAG_TYPE2_MIN: u8 = 20;
/// Largest locally defined (Type 2) flag value.
pub const FLAG_TYPE2_MAX: u8 = 59;
/// Offset added to the check value in Type 3 flags (60–96).
pub const FLAG_TYPE3_OFFSET: u8 = 60;

impl Flags {
    /// `00`: no flag.
    pub const NOT_USED: Flags = Flags(FlagKind::NotUsed);
    /// Type 3: the flags carry the DIN's check value (the recommended default on labels).
    pub const CHECK_VALUE: Flags = Flags(FlagKind::CheckValue);

    /// An ICCBBA-defined (Type 1) flag, 1–19 except the reserved 14.
    pub fn iccbba_defined(value: u8) -> Result<Flags, IsbtError> {
        if (FLAG_TYPE1_MIN..=FLAG_TYPE1_MAX).contains(&value) && value != FLAG_TYPE1_RESERVED {
            Ok(Flags(FlagKind::IccbbaDefined(value)))
        } else {
            Err(reserved_flags_value(value))
        }
    }

    /// A locally defined (Type 2) flag, 20–59.
    pub fn locally_defined(value: u8) -> Result<Flags, IsbtError> {
        if (FLAG_TYPE2_MIN..=FLAG_TYPE2_MAX).contains(&value) {
            Ok(Flags(FlagKind::LocallyDefined(value)))
        } else {
            Err(reserved_flags_value(value))
        }
    }

    /// What the flags say.
    pub fn kind(&self) -> FlagKind {
        self.0
    }

    /// The two-digit value written after `din` (0–96).
    pub fn value_for(&self, din: &Din) -> u8 {
        match self.0 {
            FlagKind::NotUsed => 0,
            FlagKind::IccbbaDefined(value) | FlagKind::LocallyDefined(value) => value,
            FlagKind::CheckValue => FLAG_TYPE3_OFFSET + din.check_character().value(),
        }
    }
}

fn reserved_flags_value(value: u8) -> IsbtError {
    IsbtError::FlagValueNotAllowed { found: value }
}

/// A DS 001 data structure: `=` + DIN + flags, e.g. `=G12341765432170`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DinStructure {
    din: Din,
    flags: Flags,
}

impl DinStructure {
    /// Parses exactly one DS 001 data structure (16 characters). Any other data structure is
    /// refused by name ("this is a product code, but a DIN is needed here").
    pub fn parse(text: &str) -> Result<DinStructure, IsbtError> {
        match scan::parse_expected(text, StructureKind::Din)? {
            scan::DataStructure::Din(structure) => Ok(structure),
            other => unreachable!("parse_expected returned {:?}", other.kind()),
        }
    }

    /// The DIN.
    pub fn din(&self) -> Din {
        self.din
    }

    /// The flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }
}

impl std::fmt::Display for DinStructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "={}{:02}",
            self.din.as_str(),
            self.flags.value_for(&self.din)
        )
    }
}

/// Reads DS 001 at byte `start` of `text`, whose first byte is `=` and which holds at least
/// [`DIN_STRUCTURE_CHARS`] bytes from `start`.
pub(crate) fn read_din_structure(text: &str, start: usize) -> Result<DinStructure, IsbtError> {
    let din = read_din(text, start + 1)?;
    let flags_at = start + 1 + DIN_CHARS;
    let flags = read_flags(text, flags_at, &din)?;
    Ok(DinStructure { din, flags })
}

fn read_flags(text: &str, at: usize, din: &Din) -> Result<Flags, IsbtError> {
    let bytes = &text.as_bytes()[at..at + 2];
    let both_digits = bytes[0].is_ascii_digit() && bytes[1].is_ascii_digit();
    if !both_digits {
        let reserved_alphanumeric = bytes
            .iter()
            .all(|&byte| CharClass::UpperAlphanumeric.allows(byte));
        if reserved_alphanumeric {
            return Err(IsbtError::ReservedFlags {
                position: chars::position_of(text, at),
                found: [char::from(bytes[0]), char::from(bytes[1])],
            });
        }
        let bad = if bytes[0].is_ascii_digit() {
            at + 1
        } else {
            at
        };
        return Err(chars::reject(text, bad, CharClass::Digit, Field::Flags));
    }
    let value = (bytes[0] - b'0') * 10 + (bytes[1] - b'0');
    let position = chars::position_of(text, at);
    let reserved = || IsbtError::ReservedFlags {
        position,
        found: [char::from(bytes[0]), char::from(bytes[1])],
    };
    match value {
        0 => Ok(Flags::NOT_USED),
        FLAG_TYPE1_MIN..=FLAG_TYPE1_MAX => Flags::iccbba_defined(value).map_err(|_| reserved()),
        FLAG_TYPE2_MIN..=FLAG_TYPE2_MAX => Flags::locally_defined(value).map_err(|_| reserved()),
        60..=96 => {
            let expected = FLAG_TYPE3_OFFSET + din.check_character().value();
            if value == expected {
                Ok(Flags::CHECK_VALUE)
            } else {
                Err(IsbtError::FlagCheckMismatch {
                    position,
                    expected,
                    found: value,
                })
            }
        }
        _ => Err(reserved()),
    }
}
