//! Units of QC results. A result is accepted only in the unit its specification names:
//! a result in another unit, or without one, is an error that names both, never a silent
//! conversion (bad input in issue #8).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Unit of a numeric QC result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QcUnit {
    /// Percent, 0–100.
    #[serde(rename = "%")]
    Percent,
    /// A count of cells.
    #[serde(rename = "cells")]
    Cells,
    /// Cells per millilitre.
    #[serde(rename = "cells/mL")]
    CellsPerMl,
    /// Endotoxin units per millilitre.
    #[serde(rename = "EU/mL")]
    EuPerMl,
    /// Endotoxin units per kilogram of recipient body weight.
    #[serde(rename = "EU/kg")]
    EuPerKg,
    /// Vector copies per transduced cell.
    #[serde(rename = "copies/cell")]
    CopiesPerCell,
    /// Picograms per millilitre.
    #[serde(rename = "pg/mL")]
    PgPerMl,
    /// Residual beads per 3e6 cells.
    #[serde(rename = "beads/3e6 cells")]
    BeadsPer3e6Cells,
}

/// Every unit with its symbol and the spellings accepted on input.
const UNITS: &[(QcUnit, &str, &[&str])] = &[
    (QcUnit::Percent, "%", &["%", "percent"]),
    (QcUnit::Cells, "cells", &["cells"]),
    (QcUnit::CellsPerMl, "cells/mL", &["cells/ml"]),
    (QcUnit::EuPerMl, "EU/mL", &["eu/ml"]),
    (QcUnit::EuPerKg, "EU/kg", &["eu/kg"]),
    (
        QcUnit::CopiesPerCell,
        "copies/cell",
        &["copies/cell", "vcn", "copies per cell"],
    ),
    (QcUnit::PgPerMl, "pg/mL", &["pg/ml"]),
    (
        QcUnit::BeadsPer3e6Cells,
        "beads/3e6 cells",
        &["beads/3e6 cells", "beads/3e6cells"],
    ),
];

impl QcUnit {
    /// Parses a unit symbol (case-insensitive, surrounding spaces ignored); `None` when unknown.
    pub fn parse(text: &str) -> Option<QcUnit> {
        let wanted = text.trim().to_ascii_lowercase();
        UNITS
            .iter()
            .find(|(_, _, spellings)| spellings.contains(&wanted.as_str()))
            .map(|(unit, _, _)| *unit)
    }

    /// The symbol shown in records and on the certificate.
    pub fn symbol(self) -> &'static str {
        UNITS
            .iter()
            .find(|(u, _, _)| *u == self)
            .map(|(_, s, _)| *s)
            // Cannot fail: UNITS lists every variant (see its test).
            .expect("UNITS lists every QcUnit")
    }

    /// Every symbol, for error messages.
    pub fn known_symbols() -> String {
        UNITS
            .iter()
            .map(|(_, s, _)| *s)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Smallest and largest meaningful value in this unit.
    pub fn physical_range(self) -> (f64, f64) {
        match self {
            QcUnit::Percent => (0.0, 100.0),
            _ => (0.0, f64::MAX),
        }
    }
}

impl fmt::Display for QcUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_listed_and_parses_from_its_symbol() {
        for (unit, symbol, _) in UNITS {
            assert_eq!(QcUnit::parse(symbol), Some(*unit));
            assert_eq!(unit.symbol(), *symbol);
        }
        assert_eq!(UNITS.len(), 8, "a new QcUnit needs a row in UNITS");
        assert_eq!(QcUnit::parse(" Percent "), Some(QcUnit::Percent));
        assert_eq!(QcUnit::parse("mg"), None);
    }
}
