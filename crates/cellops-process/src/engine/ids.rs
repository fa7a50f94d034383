//! Validated identifiers used by batch commands and events.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest identifier or lot number, in characters.
pub const IDENT_CHARS_MAX: usize = 64;

/// An identifier was empty, too long, or contained whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what} (rule: 1–64 characters, no spaces or control characters)")]
pub struct IdentError {
    /// What kind of identifier.
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
}

fn check(what: &'static str, value: &str) -> Result<(), IdentError> {
    let length_ok = !value.is_empty() && value.chars().count() <= IDENT_CHARS_MAX;
    let chars_ok = value.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if length_ok && chars_ok {
        Ok(())
    } else {
        Err(IdentError {
            what,
            value: value.to_string(),
        })
    }
}

macro_rules! ident {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the identifier (1–64 characters, no spaces or control characters).
            pub fn parse(value: &str) -> Result<Self, IdentError> {
                check($what, value)?;
                Ok(Self(value.to_string()))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentError;
            fn try_from(value: String) -> Result<Self, IdentError> {
                check($what, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ident!(
    /// A person (operator, QA reviewer): the pseudonymous user id of the accounts module.
    PersonId,
    "person id"
);
ident!(
    /// A batch (manufacturing run), e.g. its DIN-based batch number.
    BatchId,
    "batch id"
);
ident!(
    /// A material lot number as printed on the label.
    LotNumber,
    "lot number"
);
ident!(
    /// A deviation: `<batch>-DEV-<nnn>`, numbered in the order deviations are opened.
    DeviationId,
    "deviation id"
);
ident!(
    /// The id of an electronic-signature record in the ledger (filled in by the caller).
    SignatureId,
    "signature id"
);
