//! Product identification: Product Code (DS 003), Product Divisions (DS 032), Processing
//! Facility Information Code (DS 033) and Processor Product Identification Code (DS 034).
//!
//! Only the structure is checked here. Whether a Product Description Code exists and what it
//! means comes from the licensed ICCBBA database that each site imports: none is shipped.

use crate::chars::{self, CharClass};
use crate::din::{self, Fin};
use crate::error::{Field, IsbtError};
use crate::scan::{self, DataStructure, StructureKind};

/// Characters of a Product Description Code (`αoooo`).
pub const PDC_CHARS: usize = 5;
/// Characters of the DS 003 content (`αooootds`).
pub const PRODUCT_CODE_CHARS: usize = 8;
/// Characters of the DS 032 content (`dddddd`).
pub const DIVISIONS_CHARS: usize = 6;
/// Characters of a facility-defined product code (DS 033/034).
pub const FACILITY_PRODUCT_CODE_CHARS: usize = 6;
/// Product families whose product codes carry `tds` = `000` (ST-001 §2.4.3).
pub const UNDIVIDED_FAMILIES: [u8; 6] = *b"MNRTVW";
/// The family letter of cellular therapy products.
pub const CELLULAR_THERAPY_FAMILY: char = 'S';

/// A Product Description Code: a capital letter (the product family, `S` for cellular
/// therapy) and four digits; clinical-trial codes `YA`–`YZ` have a second letter then three
/// digits. Whether the code is assigned is for the site's licensed table to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductDescriptionCode([u8; PDC_CHARS]);

impl ProductDescriptionCode {
    /// Parses exactly 5 characters.
    pub fn parse(text: &str) -> Result<ProductDescriptionCode, IsbtError> {
        exact_length(
            text,
            "a product description code",
            "1 letter + 4 digits",
            PDC_CHARS,
        )?;
        read_pdc(text, 0)
    }

    /// The 5 characters.
    pub fn as_str(&self) -> &str {
        chars::ascii_str(&self.0)
    }

    /// The product family letter (`S` cellular therapy, `A`–`D` national or local, …).
    pub fn family(&self) -> char {
        char::from(self.0[0])
    }
}

impl std::fmt::Display for ProductDescriptionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn read_pdc(text: &str, start: usize) -> Result<ProductDescriptionCode, IsbtError> {
    let field = Field::ProductDescriptionCode;
    let mut out = [0u8; PDC_CHARS];
    out[0] = chars::expect(text, start, CharClass::UpperLetter, field)?;
    let mut next = 1;
    if out[0] == b'Y' {
        out[1] = chars::expect(text, start + 1, CharClass::UpperLetter, field)?;
        next = 2;
    }
    chars::expect_run(
        text,
        start + next,
        CharClass::Digit,
        field,
        &mut out[next..],
    )?;
    Ok(ProductDescriptionCode(out))
}

/// A Product Code (DS 003 content `αooootds`): Product Description Code, collection type
/// `t`, division `ds` (`d` capital letter or digit, `s` small letter or digit; `00` when the
/// product is not divided).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductCode([u8; PRODUCT_CODE_CHARS]);

impl ProductCode {
    /// Parses the data structure `=<S1234100` (exactly one) or its bare 8-character content
    /// `S1234100`, as typed.
    pub fn parse(text: &str) -> Result<ProductCode, IsbtError> {
        let text = text.trim_end_matches(['\r', '\n']);
        if text.starts_with(['=', '&']) {
            return match scan::parse_expected(text, StructureKind::ProductCode)? {
                DataStructure::ProductCode(code) => Ok(code),
                other => unreachable!("parse_expected returned {:?}", other.kind()),
            };
        }
        exact_length(
            text,
            "a product code",
            "product description code 5 + collection type 1 + division 2",
            PRODUCT_CODE_CHARS,
        )?;
        read_product_code(text, 0)
    }

    /// The Product Description Code (first five characters).
    pub fn description_code(&self) -> ProductDescriptionCode {
        let mut out = [0u8; PDC_CHARS];
        out.copy_from_slice(&self.0[..PDC_CHARS]);
        ProductDescriptionCode(out)
    }

    /// The collection type character `t` (for S-codes, ST-001 Table 7).
    pub fn collection_type(&self) -> char {
        char::from(self.0[5])
    }

    /// The two division characters `ds` (`00` when not divided).
    pub fn division(&self) -> &str {
        chars::ascii_str(&self.0[6..])
    }

    /// True when the division is not `00`.
    pub fn is_divided(&self) -> bool {
        self.0[6..] != *b"00"
    }

    /// The same product with division `ds` (e.g. `A0`, `Ab`), as for a split into parts.
    pub fn with_division(&self, division: &str) -> Result<ProductCode, IsbtError> {
        exact_length(
            division,
            "a division",
            "1 capital letter or digit + 1 small letter or digit",
            2,
        )?;
        let mut text = [0u8; PRODUCT_CODE_CHARS];
        text[..6].copy_from_slice(&self.0[..6]);
        text[6..].copy_from_slice(division.as_bytes());
        match std::str::from_utf8(&text) {
            Ok(candidate) => read_product_code(candidate, 0),
            Err(_) => Err(chars::reject(
                division,
                0,
                CharClass::UpperAlphanumeric,
                Field::Division,
            )),
        }
    }

    /// The 8-character content `αooootds`.
    pub fn as_str(&self) -> &str {
        chars::ascii_str(&self.0)
    }
}

/// Reads `αooootds` at byte `start` of `text` (caller checked the length).
pub(crate) fn read_product_code(text: &str, start: usize) -> Result<ProductCode, IsbtError> {
    let pdc = read_pdc(text, start)?;
    let mut out = [0u8; PRODUCT_CODE_CHARS];
    out[..PDC_CHARS].copy_from_slice(&pdc.0);
    let t_at = start + PDC_CHARS;
    out[5] = chars::expect(
        text,
        t_at,
        CharClass::UpperAlphanumeric,
        Field::CollectionType,
    )?;
    out[6] = chars::expect(
        text,
        t_at + 1,
        CharClass::UpperAlphanumeric,
        Field::Division,
    )?;
    out[7] = chars::expect(
        text,
        t_at + 2,
        CharClass::LowerAlphanumeric,
        Field::Division,
    )?;
    if UNDIVIDED_FAMILIES.contains(&out[0]) && out[5..] != *b"000" {
        return Err(IsbtError::FamilyNotDivided {
            position: chars::position_of(text, t_at),
            family: char::from(out[0]),
        });
    }
    Ok(ProductCode(out))
}

/// Product Divisions (DS 032 content `dddddd`, capital letters and digits), used when the
/// division is not carried in the product code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Divisions([u8; DIVISIONS_CHARS]);

impl Divisions {
    /// Parses the 6 characters (content only).
    pub fn parse(text: &str) -> Result<Divisions, IsbtError> {
        exact_length(text, "product divisions", "6 capital letters or digits", 6)?;
        read_divisions(text, 0)
    }

    /// The 6 characters.
    pub fn as_str(&self) -> &str {
        chars::ascii_str(&self.0)
    }
}

pub(crate) fn read_divisions(text: &str, start: usize) -> Result<Divisions, IsbtError> {
    let mut out = [0u8; DIVISIONS_CHARS];
    chars::expect_run(
        text,
        start,
        CharClass::UpperAlphanumeric,
        Field::Division,
        &mut out,
    )?;
    Ok(Divisions(out))
}

/// Processing Facility Information Code (DS 033 content): the FIN(P) of the facility that
/// assigned the product code and a 6-character facility-defined product code (`000000` when
/// unused; it must never be what makes a unit unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessingFacilityCode {
    fin: Fin,
    facility_product_code: [u8; FACILITY_PRODUCT_CODE_CHARS],
}

impl ProcessingFacilityCode {
    /// The FIN(P).
    pub fn fin(&self) -> Fin {
        self.fin
    }

    /// The facility-defined product code, 6 capital letters or digits.
    pub fn facility_product_code(&self) -> &str {
        chars::ascii_str(&self.facility_product_code)
    }
}

pub(crate) fn read_processing_facility(
    text: &str,
    start: usize,
) -> Result<ProcessingFacilityCode, IsbtError> {
    let fin = din::read_fin(text, start)?;
    let mut facility_product_code = [0u8; FACILITY_PRODUCT_CODE_CHARS];
    chars::expect_run(
        text,
        start + 5,
        CharClass::UpperAlphanumeric,
        Field::FacilityProductCode,
        &mut facility_product_code,
    )?;
    Ok(ProcessingFacilityCode {
        fin,
        facility_product_code,
    })
}

/// Processor Product Identification Code (DS 034 content): FIN(P), facility-defined product
/// code and Product Description Code (16 characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessorProductId {
    facility: ProcessingFacilityCode,
    description_code: ProductDescriptionCode,
}

impl ProcessorProductId {
    /// The FIN(P) and facility-defined product code.
    pub fn facility(&self) -> ProcessingFacilityCode {
        self.facility
    }

    /// The Product Description Code.
    pub fn description_code(&self) -> ProductDescriptionCode {
        self.description_code
    }
}

pub(crate) fn read_processor_product(
    text: &str,
    start: usize,
) -> Result<ProcessorProductId, IsbtError> {
    let facility = read_processing_facility(text, start)?;
    let description_code = read_pdc(text, start + 11)?;
    Ok(ProcessorProductId {
        facility,
        description_code,
    })
}

fn exact_length(
    text: &str,
    what: &'static str,
    layout: &'static str,
    expected_chars: usize,
) -> Result<(), IsbtError> {
    if text.is_empty() {
        return Err(IsbtError::Empty);
    }
    if text.len() == expected_chars {
        return Ok(());
    }
    Err(IsbtError::WrongLength {
        what,
        layout,
        expected_chars,
        found_chars: text.chars().count(),
    })
}
