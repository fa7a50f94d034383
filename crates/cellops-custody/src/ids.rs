//! Identifiers of the custody domain, parsed once at the boundary and trusted inside.

use cellops_isbt::{Din, ProductCode};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::CustodyError;

/// Longest free-text identifier (subject id, reagent lot, location, order id, step), in bytes.
pub const TEXT_ID_BYTES_MAX: usize = 64;

fn check_text_id(field: &'static str, value: &str) -> Result<(), CustodyError> {
    let invalid = |rule: &'static str| CustodyError::InvalidId {
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
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
    if !value.chars().all(ok) {
        return Err(invalid(
            "use letters, digits, '-', '_', '.' and '/' only (no spaces)",
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
            /// Parses the identifier: 1–64 characters of letters, digits, `-`, `_`, `.`, `/`.
            /// Trailing CR/LF from a keyboard-wedge scanner are ignored.
            pub fn parse(value: &str) -> Result<$name, CustodyError> {
                let value = value.trim_end_matches(['\r', '\n']);
                check_text_id($field, value)?;
                Ok($name(value.to_string()))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = CustodyError;
            fn try_from(value: String) -> Result<Self, CustodyError> {
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
    /// The pseudonymous subject id printed on a patient's wristband (PRODUCT.md: the hospital
    /// keeps the link to the person; cellops never stores names or MRNs).
    SubjectId,
    "subject_id"
);
text_id!(
    /// A reagent lot number (vector, cytokine, medium, editing reagent…), as the supplier prints it.
    ReagentLot,
    "reagent_lot"
);
text_id!(
    /// A place where a unit can be: `cpc-kyoto/isolator-2`, `hospital-a/ward-7/bed-3`, `courier/van-12`.
    LocationId,
    "location"
);
text_id!(
    /// An infusion order (the order module owns its content; custody only references it).
    OrderId,
    "order_id"
);

/// Separator between DIN and product code in a [`UnitCode`]'s text form (URL-safe).
pub const UNIT_CODE_SEPARATOR: char = '-';

/// The identity of one container (bag, vial, flask, sample): DIN + product code, whose last
/// two characters are the division (ST-001 §7.3.1 minimum traceable content).
///
/// Text form: `G123417654321-S1234100` (13 DIN characters, `-`, 8 product code characters).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitCode {
    din: Din,
    product: ProductCode,
}

impl UnitCode {
    /// The unit with `din` and `product` (division included in the product code).
    pub fn new(din: Din, product: ProductCode) -> UnitCode {
        UnitCode { din, product }
    }

    /// Parses the text form `G123417654321-S1234100`.
    pub fn parse(text: &str) -> Result<UnitCode, CustodyError> {
        let invalid = |rule: String| CustodyError::InvalidUnitCode {
            text: text.chars().take(64).collect(),
            rule,
        };
        let (din, product) = text.split_once(UNIT_CODE_SEPARATOR).ok_or_else(|| {
            invalid("expected DIN (13 characters), '-', product code (8 characters), e.g. G123417654321-S1234100".to_string())
        })?;
        let din = Din::parse_characters(din).map_err(|e| invalid(format!("DIN: {e}")))?;
        let product =
            ProductCode::parse(product).map_err(|e| invalid(format!("product code: {e}")))?;
        if product.as_str().len() != cellops_isbt::PRODUCT_CODE_CHARS {
            return Err(invalid(
                "product code must be the bare 8 characters".to_string(),
            ));
        }
        Ok(UnitCode { din, product })
    }

    /// The Donation Identification Number.
    pub fn din(&self) -> Din {
        self.din
    }

    /// The product code (division included).
    pub fn product(&self) -> ProductCode {
        self.product
    }

    /// The two division characters (`00` when not divided).
    pub fn division(&self) -> &str {
        self.product.division()
    }

    /// How a nurse reads it off the label: `G1234 17 654321 [A], product S1234100`.
    pub fn eye_readable(&self) -> String {
        format!(
            "{} [{}], product {}",
            self.din.eye_readable(),
            self.din.check_character(),
            self.product.as_str()
        )
    }
}

impl fmt::Display for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{UNIT_CODE_SEPARATOR}{}",
            self.din.as_str(),
            self.product.as_str()
        )
    }
}

impl fmt::Debug for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnitCode({self})")
    }
}

impl Serialize for UnitCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UnitCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        UnitCode::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde as the 13 DIN characters.
pub(crate) mod din_text {
    use cellops_isbt::Din;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(din: &Din, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(din)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Din, D::Error> {
        let text = String::deserialize(d)?;
        Din::parse_characters(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde as the 5 FIN characters.
pub(crate) mod fin_text {
    use cellops_isbt::Fin;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(fin: &Fin, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(fin)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fin, D::Error> {
        let text = String::deserialize(d)?;
        Fin::parse(&text).map_err(serde::de::Error::custom)
    }
}
