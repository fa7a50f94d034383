//! Identifiers of storage equipment, positions, shippers, loggers, shipments and excursions.
//! Parsed at the boundary; inside the crate they are trusted.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ColdError;

/// Longest text identifier, in bytes.
pub const TEXT_ID_BYTES_MAX: usize = 64;

fn check_text_id(field: &'static str, value: &str) -> Result<(), ColdError> {
    let invalid = |rule: &'static str| ColdError::InvalidId {
        field,
        value: value.chars().take(TEXT_ID_BYTES_MAX * 2).collect(),
        rule,
    };
    if value.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if value.len() > TEXT_ID_BYTES_MAX {
        return Err(invalid("must be at most 64 characters"));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !value.chars().all(ok) {
        return Err(invalid(
            "use letters, digits, '-', '_' and '.' only (no spaces or '/')",
        ));
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the text form; the error names the field and the rule.
            pub fn parse(value: &str) -> Result<$name, ColdError> {
                check_text_id($field, value)?;
                Ok($name(value.to_string()))
            }
            /// The text form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ColdError;
            fn try_from(value: String) -> Result<Self, ColdError> {
                check_text_id($field, &value)?;
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

text_id!(
    /// A freezer or dewar (storage equipment), e.g. `dewar-01`.
    StorageId,
    "storage"
);
text_id!(
    /// A dry shipper (qualified asset), e.g. `ds-0042`.
    ShipperId,
    "shipper"
);
text_id!(
    /// A temperature data logger, by its serial number.
    LoggerId,
    "logger"
);
text_id!(
    /// A shipment.
    ShipmentId,
    "shipment"
);
text_id!(
    /// An excursion episode (`<shipment or storage>.<n>`).
    ExcursionId,
    "excursion"
);

/// Largest rack, box or slot number.
pub const POSITION_INDEX_MAX: u16 = 999;

/// A storage position: equipment, rack, box and slot, all 1-based. Text and barcode form
/// `dewar-01/R2/B3/P14`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Position {
    storage: StorageId,
    rack: u16,
    r#box: u16,
    slot: u16,
}

impl Position {
    /// A position from its parts (each 1..=[`POSITION_INDEX_MAX`]).
    pub fn new(
        storage: StorageId,
        rack: u16,
        r#box: u16,
        slot: u16,
    ) -> Result<Position, ColdError> {
        for (field, v) in [("rack", rack), ("box", r#box), ("slot", slot)] {
            if v == 0 || v > POSITION_INDEX_MAX {
                return Err(ColdError::InvalidPosition {
                    text: format!("{storage}/R{rack}/B{}/P{slot}", r#box),
                    rule: format!("{field} must be 1–{POSITION_INDEX_MAX}"),
                });
            }
        }
        Ok(Position {
            storage,
            rack,
            r#box,
            slot,
        })
    }

    /// Parses `storage/R<rack>/B<box>/P<slot>` (a scanned position label).
    pub fn parse(text: &str) -> Result<Position, ColdError> {
        let text = text.trim_end_matches(['\r', '\n']);
        let invalid = |rule: &str| ColdError::InvalidPosition {
            text: text.chars().take(128).collect(),
            rule: rule.to_string(),
        };
        let parts: Vec<&str> = text.split('/').collect();
        let [storage, rack, bx, slot] = parts[..] else {
            return Err(invalid(
                "expected storage/R<rack>/B<box>/P<slot>, e.g. dewar-01/R2/B3/P14",
            ));
        };
        let storage = StorageId::parse(storage)?;
        let number = |part: &str, prefix: char, name: &str| -> Result<u16, ColdError> {
            part.strip_prefix(prefix)
                .and_then(|n| n.parse::<u16>().ok())
                .ok_or_else(|| {
                    invalid(&format!(
                        "{name} must be '{prefix}' and a number, e.g. {prefix}2"
                    ))
                })
        };
        Position::new(
            storage,
            number(rack, 'R', "rack")?,
            number(bx, 'B', "box")?,
            number(slot, 'P', "slot")?,
        )
    }

    /// The equipment.
    pub fn storage(&self) -> &StorageId {
        &self.storage
    }
    /// Rack number (1-based).
    pub fn rack(&self) -> u16 {
        self.rack
    }
    /// Box number within the rack (1-based).
    pub fn r#box(&self) -> u16 {
        self.r#box
    }
    /// Slot number within the box (1-based).
    pub fn slot(&self) -> u16 {
        self.slot
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/R{}/B{}/P{}",
            self.storage, self.rack, self.r#box, self.slot
        )
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({self})")
    }
}

impl TryFrom<String> for Position {
    type Error = ColdError;
    fn try_from(value: String) -> Result<Position, ColdError> {
        Position::parse(&value)
    }
}

impl From<Position> for String {
    fn from(p: Position) -> String {
        p.to_string()
    }
}
