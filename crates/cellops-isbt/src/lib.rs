//! ISBT 128 codec for cell-therapy labels (ST-001; see `docs/isbt128.md`).
//!
//! Pure: no IO, no clock, no randomness, no ICCBBA tables. Everything here turns text into
//! validated values and back:
//!
//! - [`Fin`], [`Din`], [`Flags`], [`DinStructure`]: the Donation Identification Number (DS 001)
//!   and its ISO/IEC 7064 MOD 37-2 keyboard check character ([`CheckCharacter`]);
//! - [`ProductCode`] (DS 003), [`Divisions`] (DS 032), [`ProcessingFacilityCode`] (DS 033),
//!   [`ProcessorProductId`] (DS 034);
//! - [`IsbtDate`], [`IsbtDateTime`]: expiry, collection and production dates (DS 004–009);
//! - [`ChainOfIdentityId`] (DS 040);
//! - [`parse_scan`], [`parse_expected`], [`parse_any`]: scanner strings, one or several
//!   concatenated data structures, with or without a DS 023 compound message header.
//!
//! Architecture invariant: every value type has private fields and can only hold valid
//! content, so `format(parse(s)) == s` and `parse(format(x)) == x` (property-tested).
//! Every rejection is an [`IsbtError`] naming the 1-based position, the field and the rule.

mod chars;
mod coi;
mod date;
mod date_iso;
mod din;
mod error;
mod mod37;
mod product;
mod scan;

pub use chars::CharClass;
pub use coi::{COI_CHARS, COI_SEQUENCE_CHARS, COI_TYPED_BYTES_MAX, ChainOfIdentityId};
pub use date::{
    CENTURY_ZERO_YEAR, DATE_CHARS, DATE_TIME_CHARS, DATE_YEAR_MAX, DATE_YEAR_MIN, HOUR_MAX,
    IsbtDate, IsbtDateTime, MINUTE_MAX, days_in_year, is_leap_year, year_from_century,
};
pub use din::{
    DIN_CHARS, DIN_SEQUENCE_MAX, DIN_STRUCTURE_CHARS, DIN_TYPED_BYTES_MAX, Din, DinStructure,
    EyeReadableDin, FIN_CHARS, FLAG_TYPE1_MAX, FLAG_TYPE1_MIN, FLAG_TYPE1_RESERVED, FLAG_TYPE2_MAX,
    FLAG_TYPE2_MIN, FLAG_TYPE3_OFFSET, Fin, FlagKind, Flags, NOMINAL_YEAR_MAX,
};
pub use error::{DataIdentifierText, Field, IsbtError};
pub use mod37::{CHECK_ALPHABET, CheckCharacter, check_character};
pub use product::{
    CELLULAR_THERAPY_FAMILY, DIVISIONS_CHARS, Divisions, FACILITY_PRODUCT_CODE_CHARS, PDC_CHARS,
    PRODUCT_CODE_CHARS, ProcessingFacilityCode, ProcessorProductId, ProductCode,
    ProductDescriptionCode, UNDIVIDED_FAMILIES,
};
pub use scan::{
    COMPOUND_HEADER_CHARS, CompoundHeader, DataStructure, SCAN_BYTES_MAX, SCAN_STRUCTURES_MAX,
    Scan, StructureKind, parse_any, parse_expected, parse_scan,
};

/// Parses every string in `inputs` as a DIN and counts the valid ones: the workload the
/// `cellops bench scan` DIN-parse figure times. Allocation-free per item.
pub fn count_valid_dins<'a>(inputs: impl IntoIterator<Item = &'a str>) -> usize {
    inputs
        .into_iter()
        .filter(|text| Din::parse(text).is_ok())
        .count()
}
