//! Reading scanner strings: one data structure, or several concatenated (as a DataMatrix
//! or a concatenated Code 128 read delivers them), optionally behind a DS 023 compound
//! message header `=+aabbb`.
//!
//! The data identifier is checked before anything else (ST-001 §2.2): a field that expects a
//! DIN accepts only DS 001, and an unknown identifier is refused, never guessed.

use crate::chars::{self, CharClass};
use crate::coi::{self, ChainOfIdentityId};
use crate::date::{self, IsbtDate, IsbtDateTime};
use crate::din::{self, DinStructure};
use crate::error::{DataIdentifierText, Field, IsbtError};
use crate::product::{self, Divisions, ProcessingFacilityCode, ProcessorProductId, ProductCode};

/// Most data structures one scan may hold (a compound message counts its header too).
pub const SCAN_STRUCTURES_MAX: usize = 16;
/// Longest scan accepted, in bytes.
pub const SCAN_BYTES_MAX: usize = 512;
/// Characters of a compound message header `=+aabbb`.
pub const COMPOUND_HEADER_CHARS: usize = 7;

/// The kinds of data structure this crate reads, with their ST-001 numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StructureKind {
    /// DS 001 Donation Identification Number, `=` + DIN + flags.
    Din,
    /// DS 003 Product Code, `=<`.
    ProductCode,
    /// DS 004 Expiration Date, `=>`.
    ExpirationDate,
    /// DS 005 Expiration Date and Time, `&>`.
    ExpirationDateTime,
    /// DS 006 Collection Date, `=*`.
    CollectionDate,
    /// DS 007 Collection Date and Time, `&*`.
    CollectionDateTime,
    /// DS 008 Production Date, `=}`.
    ProductionDate,
    /// DS 009 Production Date and Time, `&}`.
    ProductionDateTime,
    /// DS 023 Compound Message header, `=+`.
    CompoundMessage,
    /// DS 032 Product Divisions, `=,`.
    ProductDivisions,
    /// DS 033 Processing Facility Information Code, `&+`.
    ProcessingFacility,
    /// DS 034 Processor Product Identification Code, `=/`.
    ProcessorProduct,
    /// DS 040 Chain of Identity Identifier, `&/`.
    ChainOfIdentity,
}

impl StructureKind {
    /// Every kind, in ST-001 number order.
    pub const ALL: [StructureKind; 13] = [
        StructureKind::Din,
        StructureKind::ProductCode,
        StructureKind::ExpirationDate,
        StructureKind::ExpirationDateTime,
        StructureKind::CollectionDate,
        StructureKind::CollectionDateTime,
        StructureKind::ProductionDate,
        StructureKind::ProductionDateTime,
        StructureKind::CompoundMessage,
        StructureKind::ProductDivisions,
        StructureKind::ProcessingFacility,
        StructureKind::ProcessorProduct,
        StructureKind::ChainOfIdentity,
    ];

    /// The ST-001 data structure number (1 for DS 001).
    pub const fn number(self) -> u16 {
        self.spec().number
    }

    /// A short name for people: "DIN", "product code", "expiry date and time", …
    pub const fn short_name(self) -> &'static str {
        self.spec().short
    }

    /// The data identifier; for DS 001 only its first character `=` (the second is the
    /// first DIN character).
    pub const fn data_identifier(self) -> &'static str {
        self.spec().identifier
    }

    /// Characters of the whole data structure, data identifier included.
    pub const fn total_chars(self) -> usize {
        self.spec().total_chars
    }

    const fn spec(self) -> &'static Spec {
        &SPECS[self as usize]
    }
}

/// "a DIN (data structure 001)", as used in messages.
impl std::fmt::Display for StructureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let spec = self.spec();
        write!(
            f,
            "{} {} (data structure {:03})",
            spec.article, spec.short, spec.number
        )
    }
}

struct Spec {
    number: u16,
    identifier: &'static str,
    article: &'static str,
    short: &'static str,
    total_chars: usize,
}

const fn spec(
    number: u16,
    identifier: &'static str,
    article: &'static str,
    short: &'static str,
    total_chars: usize,
) -> Spec {
    Spec {
        number,
        identifier,
        article,
        short,
        total_chars,
    }
}

/// Indexed by `StructureKind as usize`: keep in the enum's order.
const SPECS: [Spec; 13] = [
    spec(1, "=", "a", "DIN", din::DIN_STRUCTURE_CHARS),
    spec(
        3,
        "=<",
        "a",
        "product code",
        2 + product::PRODUCT_CODE_CHARS,
    ),
    spec(4, "=>", "an", "expiry date", 2 + date::DATE_CHARS),
    spec(
        5,
        "&>",
        "an",
        "expiry date and time",
        2 + date::DATE_TIME_CHARS,
    ),
    spec(6, "=*", "a", "collection date", 2 + date::DATE_CHARS),
    spec(
        7,
        "&*",
        "a",
        "collection date and time",
        2 + date::DATE_TIME_CHARS,
    ),
    spec(8, "=}", "a", "production date", 2 + date::DATE_CHARS),
    spec(
        9,
        "&}",
        "a",
        "production date and time",
        2 + date::DATE_TIME_CHARS,
    ),
    spec(
        23,
        "=+",
        "a",
        "compound message header",
        COMPOUND_HEADER_CHARS,
    ),
    spec(
        32,
        "=,",
        "a",
        "product divisions code",
        2 + product::DIVISIONS_CHARS,
    ),
    spec(33, "&+", "a", "processing facility code", 2 + 5 + 6),
    spec(34, "=/", "a", "processor product code", 2 + 5 + 6 + 5),
    spec(
        40,
        "&/",
        "a",
        "chain of identity identifier",
        2 + coi::COI_CHARS,
    ),
];

const _: () = {
    let mut index = 0;
    while index < StructureKind::ALL.len() {
        assert!(StructureKind::ALL[index] as usize == index);
        index += 1;
    }
};

/// One parsed data structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataStructure {
    /// DS 001.
    Din(DinStructure),
    /// DS 003.
    ProductCode(ProductCode),
    /// DS 004.
    ExpirationDate(IsbtDate),
    /// DS 005.
    ExpirationDateTime(IsbtDateTime),
    /// DS 006.
    CollectionDate(IsbtDate),
    /// DS 007.
    CollectionDateTime(IsbtDateTime),
    /// DS 008.
    ProductionDate(IsbtDate),
    /// DS 009.
    ProductionDateTime(IsbtDateTime),
    /// DS 032.
    ProductDivisions(Divisions),
    /// DS 033.
    ProcessingFacility(ProcessingFacilityCode),
    /// DS 034.
    ProcessorProduct(ProcessorProductId),
    /// DS 040.
    ChainOfIdentity(ChainOfIdentityId),
}

impl DataStructure {
    /// Which kind of data structure this is.
    pub fn kind(&self) -> StructureKind {
        match self {
            DataStructure::Din(_) => StructureKind::Din,
            DataStructure::ProductCode(_) => StructureKind::ProductCode,
            DataStructure::ExpirationDate(_) => StructureKind::ExpirationDate,
            DataStructure::ExpirationDateTime(_) => StructureKind::ExpirationDateTime,
            DataStructure::CollectionDate(_) => StructureKind::CollectionDate,
            DataStructure::CollectionDateTime(_) => StructureKind::CollectionDateTime,
            DataStructure::ProductionDate(_) => StructureKind::ProductionDate,
            DataStructure::ProductionDateTime(_) => StructureKind::ProductionDateTime,
            DataStructure::ProductDivisions(_) => StructureKind::ProductDivisions,
            DataStructure::ProcessingFacility(_) => StructureKind::ProcessingFacility,
            DataStructure::ProcessorProduct(_) => StructureKind::ProcessorProduct,
            DataStructure::ChainOfIdentity(_) => StructureKind::ChainOfIdentity,
        }
    }
}

/// The barcode form: data identifier + content, e.g. `=<S1234100`.
impl std::fmt::Display for DataStructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let identifier = self.kind().data_identifier();
        match self {
            DataStructure::Din(structure) => write!(f, "{structure}"),
            DataStructure::ProductCode(code) => write!(f, "{identifier}{}", code.as_str()),
            DataStructure::ExpirationDate(d)
            | DataStructure::CollectionDate(d)
            | DataStructure::ProductionDate(d) => {
                write!(f, "{identifier}{}", chars::ascii_str(&d.content()))
            }
            DataStructure::ExpirationDateTime(t)
            | DataStructure::CollectionDateTime(t)
            | DataStructure::ProductionDateTime(t) => {
                write!(f, "{identifier}{}", chars::ascii_str(&t.content()))
            }
            DataStructure::ProductDivisions(d) => write!(f, "{identifier}{}", d.as_str()),
            DataStructure::ProcessingFacility(p) => {
                write!(f, "{identifier}{}{}", p.fin(), p.facility_product_code())
            }
            DataStructure::ProcessorProduct(p) => write!(
                f,
                "{identifier}{}{}{}",
                p.facility().fin(),
                p.facility().facility_product_code(),
                p.description_code()
            ),
            DataStructure::ChainOfIdentity(id) => write!(f, "{identifier}{id}"),
        }
    }
}

/// A DS 023 compound message header: how many data structures follow, and the ICCBBA
/// reference number of their sequence (`000` when the sequence is not a registered one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompoundHeader {
    count: u8,
    sequence_code: u16,
}

impl CompoundHeader {
    /// A header announcing `count` structures (1–[`SCAN_STRUCTURES_MAX`] − 1) in the
    /// sequence `sequence_code` (0–999; 0 = unregistered sequence).
    pub fn new(count: usize, sequence_code: u16) -> Result<CompoundHeader, IsbtError> {
        let count_max = SCAN_STRUCTURES_MAX - 1;
        if count == 0 || count > count_max {
            return Err(IsbtError::ValueOutOfRange {
                field: Field::CompoundCount,
                found: u32::try_from(count).unwrap_or(u32::MAX),
                max: count_max as u32,
            });
        }
        if sequence_code > 999 {
            return Err(IsbtError::ValueOutOfRange {
                field: Field::CompoundSequence,
                found: u32::from(sequence_code),
                max: 999,
            });
        }
        // Cannot truncate: count ≤ SCAN_STRUCTURES_MAX − 1 < 256.
        Ok(CompoundHeader {
            count: count as u8,
            sequence_code,
        })
    }

    /// Number of data structures announced.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// The sequence reference number (0 = unregistered).
    pub fn sequence_code(&self) -> u16 {
        self.sequence_code
    }
}

/// `=+aabbb`.
impl std::fmt::Display for CompoundHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "=+{:02}{:03}", self.count, self.sequence_code)
    }
}

/// Everything read from one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    compound: Option<CompoundHeader>,
    structures: Vec<DataStructure>,
}

impl Scan {
    /// Builds a scan of `structures` (1–[`SCAN_STRUCTURES_MAX`] − 1), wrapped in a compound
    /// message when `sequence_code` is given.
    pub fn new(
        structures: Vec<DataStructure>,
        sequence_code: Option<u16>,
    ) -> Result<Scan, IsbtError> {
        let compound = match sequence_code {
            Some(code) => Some(CompoundHeader::new(structures.len(), code)?),
            None => None,
        };
        if structures.is_empty() {
            return Err(IsbtError::Empty);
        }
        if structures.len() >= SCAN_STRUCTURES_MAX {
            return Err(IsbtError::TooManyStructures {
                position: 1,
                max: SCAN_STRUCTURES_MAX,
            });
        }
        Ok(Scan {
            compound,
            structures,
        })
    }

    /// The compound message header, when the scan had one.
    pub fn compound(&self) -> Option<CompoundHeader> {
        self.compound
    }

    /// The data structures, in scan order (header excluded).
    pub fn structures(&self) -> &[DataStructure] {
        &self.structures
    }

    /// The first data structure of `kind`, if any.
    pub fn first(&self, kind: StructureKind) -> Option<&DataStructure> {
        self.structures.iter().find(|s| s.kind() == kind)
    }

    /// The DIN structure, if the scan holds one.
    pub fn din(&self) -> Option<DinStructure> {
        self.structures.iter().find_map(|s| match s {
            DataStructure::Din(structure) => Some(*structure),
            _ => None,
        })
    }
}

/// The concatenated barcode text, header first: what a DataMatrix symbol should hold.
impl std::fmt::Display for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(header) = self.compound {
            write!(f, "{header}")?;
        }
        for structure in &self.structures {
            write!(f, "{structure}")?;
        }
        Ok(())
    }
}

/// Reads every data structure in a scan (trailing CR/LF ignored). A compound message header
/// must come first and its count must match what follows.
pub fn parse_scan(text: &str) -> Result<Scan, IsbtError> {
    let text = checked_input(text)?;
    let mut at = 0;
    let mut compound = None;
    if identify(text, 0)? == StructureKind::CompoundMessage {
        compound = Some(read_compound_header(text, 0)?);
        at = COMPOUND_HEADER_CHARS;
    }
    let mut structures = Vec::new();
    while at < text.len() {
        if structures.len() + usize::from(compound.is_some()) >= SCAN_STRUCTURES_MAX {
            return Err(IsbtError::TooManyStructures {
                position: chars::position_of(text, at),
                max: SCAN_STRUCTURES_MAX,
            });
        }
        if identify(text, at)? == StructureKind::CompoundMessage {
            return Err(IsbtError::NestedCompound {
                position: chars::position_of(text, at),
            });
        }
        let (structure, next) = read_one(text, at)?;
        structures.push(structure);
        at = next;
    }
    if let Some(header) = compound {
        if header.count() != structures.len() {
            return Err(IsbtError::CompoundCountMismatch {
                declared: header.count,
                found: structures.len(),
            });
        }
    }
    Ok(Scan {
        compound,
        structures,
    })
}

/// Reads exactly one data structure of `expected` kind (trailing CR/LF ignored). Any other
/// kind is refused by name before its content is read.
pub fn parse_expected(text: &str, expected: StructureKind) -> Result<DataStructure, IsbtError> {
    let text = checked_input(text)?;
    let found = identify(text, 0)?;
    if found != expected {
        return Err(IsbtError::WrongDataStructure {
            position: 1,
            expected,
            expected_short: expected.short_name(),
            found,
        });
    }
    let (structure, next) = read_one(text, 0)?;
    if next != text.len() {
        return Err(IsbtError::TrailingCharacters {
            position: chars::position_of(text, next),
            structure: found,
        });
    }
    Ok(structure)
}

/// Reads exactly one data structure of any supported kind other than a compound header.
pub fn parse_any(text: &str) -> Result<DataStructure, IsbtError> {
    let text = checked_input(text)?;
    let found = identify(text, 0)?;
    parse_expected(text, found)
}

fn checked_input(text: &str) -> Result<&str, IsbtError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(IsbtError::Empty);
    }
    if text.len() > SCAN_BYTES_MAX {
        return Err(IsbtError::TooLong {
            found_chars: text.chars().count(),
            max_chars: SCAN_BYTES_MAX,
        });
    }
    Ok(text)
}

/// Names the data structure starting at byte `at` from its data identifier.
fn identify(text: &str, at: usize) -> Result<StructureKind, IsbtError> {
    let bytes = text.as_bytes();
    let unknown = || IsbtError::UnknownDataIdentifier {
        position: chars::position_of(text, at),
        found: DataIdentifierText::new(text.get(at..).unwrap_or("")),
    };
    let first = bytes[at];
    let Some(&second) = bytes.get(at + 1) else {
        return Err(unknown());
    };
    let kind = match (first, second) {
        (b'=', b'<') => StructureKind::ProductCode,
        (b'=', b'>') => StructureKind::ExpirationDate,
        (b'&', b'>') => StructureKind::ExpirationDateTime,
        (b'=', b'*') => StructureKind::CollectionDate,
        (b'&', b'*') => StructureKind::CollectionDateTime,
        (b'=', b'}') => StructureKind::ProductionDate,
        (b'&', b'}') => StructureKind::ProductionDateTime,
        (b'=', b'+') => StructureKind::CompoundMessage,
        (b'=', b',') => StructureKind::ProductDivisions,
        (b'&', b'+') => StructureKind::ProcessingFacility,
        (b'=', b'/') => StructureKind::ProcessorProduct,
        (b'&', b'/') => StructureKind::ChainOfIdentity,
        (b'=', byte) if CharClass::FinFirst.allows(byte) => StructureKind::Din,
        (b'=', byte) if CharClass::FinFirst.allows(byte.to_ascii_uppercase()) => {
            // `=g…`: a DIN with a small first letter, most likely typed.
            return Err(chars::reject(text, at + 1, CharClass::FinFirst, Field::Fin));
        }
        _ => return Err(unknown()),
    };
    Ok(kind)
}

/// Reads the data structure at byte `at`; returns it and the byte offset just past it.
fn read_one(text: &str, at: usize) -> Result<(DataStructure, usize), IsbtError> {
    let kind = identify(text, at)?;
    let need = kind.total_chars();
    let left = text.len() - at;
    if left < need {
        return Err(IsbtError::Truncated {
            position: chars::position_of(text, text.len()),
            start: chars::position_of(text, at),
            structure: kind,
            expected_chars: need,
            found_chars: text[at..].chars().count(),
        });
    }
    let content = at + 2;
    let structure = match kind {
        StructureKind::Din => DataStructure::Din(din::read_din_structure(text, at)?),
        StructureKind::ProductCode => {
            DataStructure::ProductCode(product::read_product_code(text, content)?)
        }
        StructureKind::ExpirationDate => {
            DataStructure::ExpirationDate(date::read_date(text, content)?)
        }
        StructureKind::ExpirationDateTime => {
            DataStructure::ExpirationDateTime(date::read_date_time(text, content)?)
        }
        StructureKind::CollectionDate => {
            DataStructure::CollectionDate(date::read_date(text, content)?)
        }
        StructureKind::CollectionDateTime => {
            DataStructure::CollectionDateTime(date::read_date_time(text, content)?)
        }
        StructureKind::ProductionDate => {
            DataStructure::ProductionDate(date::read_date(text, content)?)
        }
        StructureKind::ProductionDateTime => {
            DataStructure::ProductionDateTime(date::read_date_time(text, content)?)
        }
        StructureKind::ProductDivisions => {
            DataStructure::ProductDivisions(product::read_divisions(text, content)?)
        }
        StructureKind::ProcessingFacility => {
            DataStructure::ProcessingFacility(product::read_processing_facility(text, content)?)
        }
        StructureKind::ProcessorProduct => {
            DataStructure::ProcessorProduct(product::read_processor_product(text, content)?)
        }
        StructureKind::ChainOfIdentity => {
            DataStructure::ChainOfIdentity(coi::read_coi(text, content)?)
        }
        StructureKind::CompoundMessage => {
            return Err(IsbtError::NestedCompound {
                position: chars::position_of(text, at),
            });
        }
    };
    Ok((structure, at + need))
}

fn read_compound_header(text: &str, at: usize) -> Result<CompoundHeader, IsbtError> {
    if text.len() - at < COMPOUND_HEADER_CHARS {
        return Err(IsbtError::Truncated {
            position: chars::position_of(text, text.len()),
            start: chars::position_of(text, at),
            structure: StructureKind::CompoundMessage,
            expected_chars: COMPOUND_HEADER_CHARS,
            found_chars: text[at..].chars().count(),
        });
    }
    let count = chars::expect_number::<2>(text, at + 2, Field::CompoundCount)?;
    let sequence_code = chars::expect_number::<3>(text, at + 4, Field::CompoundSequence)?;
    // Cannot truncate: two and three digits.
    CompoundHeader::new(count as usize, sequence_code as u16).map_err(|_| {
        IsbtError::CompoundCountOutOfRange {
            position: chars::position_of(text, at + 2),
            found: count,
            max: SCAN_STRUCTURES_MAX - 1,
        }
    })
}
