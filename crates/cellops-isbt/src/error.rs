//! The one error type of this crate.
//!
//! Every rejection names the 1-based position in the text the caller gave (counting every
//! character, spaces included), the field, the rule, and what to do about it. Messages are
//! written for the person holding the scanner, not for a programmer.

use crate::chars::CharClass;
use crate::scan::StructureKind;

/// A part of an ISBT 128 code, named the way a label reader would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The data identifier that starts every data structure (`=` or `&` and one or two more).
    DataIdentifier,
    /// The 5-character Facility Identification Number.
    Fin,
    /// The 2-digit nominal year inside a DIN or chain of identity identifier.
    NominalYear,
    /// The 6-digit sequence number of a DIN.
    DinSequence,
    /// The two flag characters after a DIN.
    Flags,
    /// The keyboard check character (the boxed character printed after a DIN).
    CheckCharacter,
    /// The 5-character Product Description Code.
    ProductDescriptionCode,
    /// The collection type character of a product code.
    CollectionType,
    /// The division characters of a product code or of DS 032.
    Division,
    /// The century digit of a date.
    Century,
    /// The 2-digit year of a date.
    DateYear,
    /// The month of a typed calendar date.
    Month,
    /// The day of the month of a typed calendar date.
    DayOfMonth,
    /// The 3-digit day of the year (001–366) of a date.
    DayOfYear,
    /// The 2-digit hour of a time.
    Hour,
    /// The 2-digit minute of a time.
    Minute,
    /// The literal `CH` of a chain of identity identifier.
    ChainOfIdentityLiteral,
    /// The 6-character sequence of a chain of identity identifier.
    ChainOfIdentitySequence,
    /// The 6-character facility-defined product code of DS 033 and DS 034.
    FacilityProductCode,
    /// The 2-digit count of structures in a compound message header.
    CompoundCount,
    /// The 3-digit sequence code in a compound message header.
    CompoundSequence,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::DataIdentifier => "the data identifier (the '=' or '&' that starts the code)",
            Field::Fin => "the facility number (FIN)",
            Field::NominalYear => "the 2-digit year",
            Field::DinSequence => "the 6-digit sequence number",
            Field::Flags => "the flag characters",
            Field::CheckCharacter => "the check character (the boxed character)",
            Field::ProductDescriptionCode => "the product description code",
            Field::CollectionType => "the collection type",
            Field::Division => "the division code",
            Field::Century => "the century digit of the date",
            Field::DateYear => "the year of the date",
            Field::Month => "the month",
            Field::DayOfMonth => "the day of the month",
            Field::DayOfYear => "the day of the year",
            Field::Hour => "the hour",
            Field::Minute => "the minute",
            Field::ChainOfIdentityLiteral => "the 'CH' of the chain of identity identifier",
            Field::ChainOfIdentitySequence => "the chain of identity sequence",
            Field::FacilityProductCode => "the facility-defined product code",
            Field::CompoundCount => "the structure count of the compound message",
            Field::CompoundSequence => "the sequence code of the compound message",
        })
    }
}

/// Why an ISBT 128 code was refused. Positions are 1-based character positions in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IsbtError {
    /// Nothing to read (empty input, or only spaces).
    #[error("nothing was read: the code is empty. Scan or type the code again")]
    Empty,
    /// The input is longer than any accepted form; it is refused before being read.
    #[error(
        "the input is {found_chars} characters long; at most {max_chars} are accepted here. \
         Check that only one code was scanned or typed"
    )]
    TooLong {
        /// Length of the input, in characters.
        found_chars: usize,
        /// The limit for this kind of input, in characters.
        max_chars: usize,
    },
    /// A character outside the class the field allows.
    #[error("position {position}: {found:?} is not allowed in {field}; allowed here: {allowed}")]
    CharNotAllowed {
        /// 1-based position in the input.
        position: usize,
        /// The character found.
        found: char,
        /// The field it belongs to.
        field: Field,
        /// What the field allows.
        allowed: CharClass,
    },
    /// A fixed character that is not there.
    #[error("position {position}: expected {expected:?} in {field} but found {found:?}")]
    ExpectedLiteral {
        /// 1-based position in the input.
        position: usize,
        /// The character required.
        expected: char,
        /// The character found.
        found: char,
        /// The field.
        field: Field,
    },
    /// A small letter where ISBT 128 uses only capital letters.
    #[error(
        "position {position}: {found:?} is a small letter; {field} uses capital letters only. \
         Type {upper:?} instead (Caps Lock may be off)"
    )]
    Lowercase {
        /// 1-based position in the input.
        position: usize,
        /// The small letter found.
        found: char,
        /// The capital letter that would be accepted.
        upper: char,
        /// The field it belongs to.
        field: Field,
    },
    /// A code of the wrong length.
    #[error(
        "{what} must be {expected_chars} characters long ({layout}), but {found_chars} were given. \
         A character is missing or extra: check the code against the label"
    )]
    WrongLength {
        /// What was being read, e.g. "a DIN".
        what: &'static str,
        /// How the expected characters are made up, e.g. "FIN 5 + year 2 + sequence 6".
        layout: &'static str,
        /// Expected length in characters (spaces not counted).
        expected_chars: usize,
        /// Length found in characters (spaces not counted).
        found_chars: usize,
    },
    /// The input ended in the middle of a data structure.
    #[error(
        "position {position}: the code ends too early; {structure} needs {expected_chars} \
         characters from position {start} but only {found_chars} are left. The barcode was read \
         only in part: scan it again"
    )]
    Truncated {
        /// 1-based position just past the end of the input.
        position: usize,
        /// 1-based position where the structure starts.
        start: usize,
        /// The structure being read.
        structure: StructureKind,
        /// Characters the structure needs, data identifier included.
        expected_chars: usize,
        /// Characters that were left.
        found_chars: usize,
    },
    /// The typed check character does not match the code: a character was mistyped.
    #[error(
        "position {position}: check character {found:?} does not match the code. One of the \
         characters was mistyped or misread: compare every character with the label and retype \
         it all, or scan the barcode"
    )]
    CheckCharacterMismatch {
        /// 1-based position of the check character.
        position: usize,
        /// The check character computed from the code. Deliberately not shown to the user:
        /// a person told the "right" check character would type it over a mistyped code.
        expected: char,
        /// The check character given.
        found: char,
    },
    /// A DIN flag pair that should carry the DIN's check value does not.
    #[error(
        "position {position}: flag characters {found:02} do not match this DIN (they carry its \
         check value). The barcode is damaged or was misread: scan it again"
    )]
    FlagCheckMismatch {
        /// 1-based position of the first flag character.
        position: usize,
        /// The Type 3 flag value computed from the DIN (60–96); not shown, as for K.
        expected: u8,
        /// The flag value found (60–96).
        found: u8,
    },
    /// A reserved flag value.
    #[error(
        "position {position}: flag characters {found:?} are reserved in ISBT 128 and cannot be \
         interpreted (accepted: 00–13, 15–59, 60–96). Contact the labelling facility"
    )]
    ReservedFlags {
        /// 1-based position of the first flag character.
        position: usize,
        /// The two flag characters found.
        found: [char; 2],
    },
    /// A flag value given to a constructor outside its type's range.
    #[error(
        "flag value {found:02} is not allowed (ICCBBA-defined: 01–13 and 15–19; locally \
         defined: 20–59)"
    )]
    FlagValueNotAllowed {
        /// The value given.
        found: u8,
    },
    /// A data identifier that ISBT 128 does not define or that this software does not read.
    #[error(
        "position {position}: {found} does not start a code this system reads (ISBT 128 barcodes \
         start with '=' or '&'). Supported: DIN, \
         product code, product divisions, expiration/collection/production dates, processing \
         facility codes, chain of identity identifier and compound messages"
    )]
    UnknownDataIdentifier {
        /// 1-based position of the data identifier.
        position: usize,
        /// The first characters found, as shown to the user.
        found: DataIdentifierText,
    },
    /// A valid data structure of the wrong kind for the field being filled.
    #[error(
        "position {position}: this is {found}, but {expected} is needed here. Scan the {expected_short} barcode"
    )]
    WrongDataStructure {
        /// 1-based position of the data identifier.
        position: usize,
        /// What the field accepts.
        expected: StructureKind,
        /// Short name of what the field accepts.
        expected_short: &'static str,
        /// What was scanned.
        found: StructureKind,
    },
    /// Characters left after a complete data structure where none may follow.
    #[error(
        "position {position}: unexpected characters after the end of {structure}. Scan or type \
         only one code"
    )]
    TrailingCharacters {
        /// 1-based position of the first extra character.
        position: usize,
        /// The structure that was complete.
        structure: StructureKind,
    },
    /// A day of the year that does not exist.
    #[error(
        "position {position}: day of the year {found:03} does not exist in {year} \
         (allowed: 001–{days_max:03})"
    )]
    DayOfYearOutOfRange {
        /// 1-based position of the first day digit.
        position: usize,
        /// The day found.
        found: u16,
        /// The year it was read for.
        year: u16,
        /// Days in that year (365 or 366).
        days_max: u16,
    },
    /// An hour above 23.
    #[error("position {position}: hour {found:02} does not exist (allowed: 00–23)")]
    HourOutOfRange {
        /// 1-based position of the first hour digit.
        position: usize,
        /// The hour found.
        found: u8,
    },
    /// A minute above 59.
    #[error("position {position}: minute {found:02} does not exist (allowed: 00–59)")]
    MinuteOutOfRange {
        /// 1-based position of the first minute digit.
        position: usize,
        /// The minute found.
        found: u8,
    },
    /// A product family whose codes are never divided, given a collection type or division.
    #[error(
        "position {position}: products of family {family:?} carry no collection type or \
         division, so the last three characters of the product code must be 000"
    )]
    FamilyNotDivided {
        /// 1-based position of the collection type character.
        position: usize,
        /// The product family letter (M, N, R, T, V or W).
        family: char,
    },
    /// A value given to a constructor is out of range.
    #[error("{field} must be at most {max}, got {found}")]
    ValueOutOfRange {
        /// The field.
        field: Field,
        /// The value given.
        found: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// A calendar date that ISBT 128 dates cannot express or that does not exist.
    #[error(
        "{year:04}-{month:02}-{day:02} is not a date that ISBT 128 can carry \
         (years {year_min}–{year_max}, real calendar days only)"
    )]
    DateNotRepresentable {
        /// Year given.
        year: u16,
        /// Month given (1–12).
        month: u8,
        /// Day of month given.
        day: u8,
        /// Earliest year accepted.
        year_min: u16,
        /// Latest year accepted.
        year_max: u16,
    },
    /// A year outside what ISBT 128 dates can carry.
    #[error("year {year} cannot be written in an ISBT 128 date (years {year_min}–{year_max})")]
    YearNotRepresentable {
        /// Year given.
        year: u16,
        /// Earliest year accepted.
        year_min: u16,
        /// Latest year accepted.
        year_max: u16,
    },
    /// An ordinal day that the year does not have.
    #[error("day of the year {found} does not exist in {year} (allowed: 1–{days_max})")]
    DayNotInYear {
        /// Day given.
        found: u16,
        /// Year given.
        year: u16,
        /// Days in that year.
        days_max: u16,
    },
    /// A time of day that does not exist.
    #[error("{hour:02}:{minute:02} is not a time of day (hours 00–23, minutes 00–59)")]
    TimeNotRepresentable {
        /// Hour given.
        hour: u8,
        /// Minute given.
        minute: u8,
    },
    /// A separator missing in a typed date or time.
    #[error(
        "position {position}: expected {expected:?} here but found {found:?} (write dates as 2026-03-17 or 2026-03-17T23:59)"
    )]
    ExpectedSeparator {
        /// 1-based position.
        position: usize,
        /// The separator expected.
        expected: char,
        /// The character found.
        found: char,
    },
    /// A compound message whose announced count does not match what follows.
    #[error(
        "the compound message announces {declared} data structures but {found} follow. Part of \
         the barcode is missing or damaged: scan it again"
    )]
    CompoundCountMismatch {
        /// Count given in the header.
        declared: u8,
        /// Structures actually read.
        found: usize,
    },
    /// A compound message header announcing zero or too many structures.
    #[error(
        "position {position}: the compound message announces {found} data structures; \
         1 to {max} are accepted"
    )]
    CompoundCountOutOfRange {
        /// 1-based position of the count.
        position: usize,
        /// The count read.
        found: u32,
        /// The largest count accepted.
        max: usize,
    },
    /// A compound message inside a compound message.
    #[error("position {position}: a compound message cannot contain another compound message")]
    NestedCompound {
        /// 1-based position of the inner header.
        position: usize,
    },
    /// More data structures than one scan may hold.
    #[error(
        "position {position}: this scan holds more than {max} data structures, which no label \
         carries. Scan one label at a time"
    )]
    TooManyStructures {
        /// 1-based position where the extra structure starts.
        position: usize,
        /// The limit.
        max: usize,
    },
}

impl IsbtError {
    /// The 1-based position this error names, if it names one.
    pub fn position(&self) -> Option<usize> {
        match *self {
            IsbtError::CharNotAllowed { position, .. }
            | IsbtError::ExpectedLiteral { position, .. }
            | IsbtError::Lowercase { position, .. }
            | IsbtError::Truncated { position, .. }
            | IsbtError::CheckCharacterMismatch { position, .. }
            | IsbtError::FlagCheckMismatch { position, .. }
            | IsbtError::ReservedFlags { position, .. }
            | IsbtError::UnknownDataIdentifier { position, .. }
            | IsbtError::WrongDataStructure { position, .. }
            | IsbtError::TrailingCharacters { position, .. }
            | IsbtError::DayOfYearOutOfRange { position, .. }
            | IsbtError::HourOutOfRange { position, .. }
            | IsbtError::MinuteOutOfRange { position, .. }
            | IsbtError::FamilyNotDivided { position, .. }
            | IsbtError::ExpectedSeparator { position, .. }
            | IsbtError::NestedCompound { position, .. }
            | IsbtError::CompoundCountOutOfRange { position, .. }
            | IsbtError::TooManyStructures { position, .. } => Some(position),
            _ => None,
        }
    }

    /// Maps a position counted in a compacted copy of `text` (spaces removed; `offsets[i]` is
    /// the byte offset in `text` of compact character `i`) back to a position in `text`.
    pub(crate) fn remap_position(mut self, offsets: &[usize], text: &str) -> IsbtError {
        let remap = |position: &mut usize| {
            if let Some(&offset) = position.checked_sub(1).and_then(|i| offsets.get(i)) {
                *position = crate::chars::position_of(text, offset);
            }
        };
        match &mut self {
            IsbtError::CharNotAllowed { position, .. }
            | IsbtError::ExpectedLiteral { position, .. }
            | IsbtError::Lowercase { position, .. } => remap(position),
            _ => {}
        }
        self
    }
}

/// Up to three characters of a data identifier, kept without allocation for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataIdentifierText {
    chars: [char; 3],
    len: u8,
}

impl DataIdentifierText {
    /// Takes up to the first three characters of `text`.
    pub fn new(text: &str) -> Self {
        let mut chars = [' '; 3];
        let mut len = 0u8;
        for (slot, ch) in chars.iter_mut().zip(text.chars()) {
            *slot = ch;
            len += 1;
        }
        DataIdentifierText { chars, len }
    }
}

impl std::fmt::Display for DataIdentifierText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("'")?;
        for ch in &self.chars[..usize::from(self.len)] {
            write!(f, "{}", ch.escape_debug())?;
        }
        f.write_str("'")
    }
}
