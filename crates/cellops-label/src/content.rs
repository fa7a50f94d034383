//! What goes on one label, validated once.

use cellops_isbt::{
    ChainOfIdentityId, DataStructure, Din, Divisions, Flags, IsbtDateTime, ProductCode, Scan,
};

use crate::error::LabelError;

/// Longest product description printed, in characters (two lines of the label).
pub const DESCRIPTION_CHARS_MAX: usize = 80;
/// Shortest time zone abbreviation accepted (e.g. `PT`).
pub const TIME_ZONE_CHARS_MIN: usize = 2;
/// Longest time zone abbreviation accepted (e.g. `AKDT`, `CHAST`).
pub const TIME_ZONE_CHARS_MAX: usize = 6;

/// The content of one unit label. Built from validated ISBT 128 values; the description and
/// time zone are checked here so that rendering cannot fail on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelContent {
    din: Din,
    product: ProductCode,
    divisions: Option<Divisions>,
    expiry: Option<IsbtDateTime>,
    time_zone: Option<String>,
    chain_of_identity: Option<ChainOfIdentityId>,
    description: String,
}

impl LabelContent {
    /// A label for `din` with product code `product` and the caller's product description
    /// (from the site's licensed product table; 1–80 printable ASCII characters).
    pub fn new(din: Din, product: ProductCode, description: &str) -> Result<Self, LabelError> {
        check_description(description)?;
        Ok(LabelContent {
            din,
            product,
            divisions: None,
            expiry: None,
            time_zone: None,
            chain_of_identity: None,
            description: description.to_string(),
        })
    }

    /// Adds the expiry (DS 005), printed as local time with the zone abbreviation `time_zone`
    /// when given (ST-001 §7.4.4.2: required when the product crosses time zones).
    pub fn with_expiry(
        mut self,
        expiry: IsbtDateTime,
        time_zone: Option<&str>,
    ) -> Result<Self, LabelError> {
        if let Some(zone) = time_zone {
            let length_ok = (TIME_ZONE_CHARS_MIN..=TIME_ZONE_CHARS_MAX).contains(&zone.len());
            if !length_ok || !zone.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(LabelError::TimeZoneInvalid {
                    found: zone.to_string(),
                    min: TIME_ZONE_CHARS_MIN,
                    max: TIME_ZONE_CHARS_MAX,
                });
            }
        }
        self.expiry = Some(expiry);
        self.time_zone = time_zone.map(str::to_string);
        Ok(self)
    }

    /// Adds product divisions (DS 032), for divisions not carried in the product code.
    pub fn with_divisions(mut self, divisions: Divisions) -> Self {
        self.divisions = Some(divisions);
        self
    }

    /// Adds the chain of identity identifier (DS 040), printed with its check character.
    pub fn with_chain_of_identity(mut self, id: ChainOfIdentityId) -> Self {
        self.chain_of_identity = Some(id);
        self
    }

    /// The DIN.
    pub fn din(&self) -> Din {
        self.din
    }

    /// The product code.
    pub fn product(&self) -> ProductCode {
        self.product
    }

    /// The product divisions, if any.
    pub fn divisions(&self) -> Option<Divisions> {
        self.divisions
    }

    /// The expiry, if any.
    pub fn expiry(&self) -> Option<IsbtDateTime> {
        self.expiry
    }

    /// The time zone abbreviation of the expiry, if any.
    pub fn time_zone(&self) -> Option<&str> {
        self.time_zone.as_deref()
    }

    /// The chain of identity identifier, if any.
    pub fn chain_of_identity(&self) -> Option<ChainOfIdentityId> {
        self.chain_of_identity
    }

    /// The product description text.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The data structures of the label, in print order: DIN (with Type 3 flags carrying its
    /// check value), product code, divisions, expiry, chain of identity.
    pub fn data_structures(&self) -> Vec<DataStructure> {
        let mut structures = vec![
            DataStructure::Din(self.din.with_flags(Flags::CHECK_VALUE)),
            DataStructure::ProductCode(self.product),
        ];
        structures.extend(self.divisions.map(DataStructure::ProductDivisions));
        structures.extend(self.expiry.map(DataStructure::ExpirationDateTime));
        structures.extend(self.chain_of_identity.map(DataStructure::ChainOfIdentity));
        structures
    }

    /// What the DataMatrix holds: one DS 023 compound message (unregistered sequence `000`)
    /// with every data structure of the label, e.g. `=+02000=A99992612345689=<S1234100`.
    pub fn data_matrix_text(&self) -> String {
        // Cannot fail: a label has 2 to 5 structures, within 1..SCAN_STRUCTURES_MAX, and the
        // sequence code 0 is within 0..=999.
        Scan::new(self.data_structures(), Some(0))
            .expect("2 to 5 structures form a valid compound message")
            .to_string()
    }
}

fn check_description(description: &str) -> Result<(), LabelError> {
    if description.trim().is_empty() {
        return Err(LabelError::DescriptionEmpty);
    }
    let found_chars = description.chars().count();
    if found_chars > DESCRIPTION_CHARS_MAX {
        return Err(LabelError::DescriptionTooLong {
            found_chars,
            max_chars: DESCRIPTION_CHARS_MAX,
        });
    }
    check_printable("product description", description)
}

/// Checks that `text` is printable ASCII (what the base-14 PDF fonts print without an
/// embedded font).
pub(crate) fn check_printable(field: &'static str, text: &str) -> Result<(), LabelError> {
    match text
        .chars()
        .enumerate()
        .find(|(_, ch)| !(' '..='~').contains(ch))
    {
        Some((index, found)) => Err(LabelError::CharNotPrintable {
            field,
            position: index + 1,
            found,
        }),
        None => Ok(()),
    }
}
