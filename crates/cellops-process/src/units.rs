//! Units known to recipes: the unit of an in-process-control parameter is read from the
//! suffix of its name (`viability_percent`, `glucose_mm`), set points are a closed list with
//! physical ranges, and material quantities use a closed list of unit symbols.
//!
//! Why suffixes: STYLE.md puts units in names, so a recipe author writes the unit once, in
//! the name, and the name is what appears in the batch record and in deviations.

use serde::{Deserialize, Serialize};

/// Unit of an in-process-control or decision parameter, derived from its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Percent, 0–100 (`_percent`).
    Percent,
    /// Millimoles per litre (`_mm`).
    Millimolar,
    /// Cells per millilitre (`_cells_per_ml`).
    CellsPerMl,
    /// Cells per square centimetre (`_cells_per_cm2`).
    CellsPerCm2,
    /// A count of cells (`_cells`).
    Cells,
    /// Degrees Celsius (`_c`).
    Celsius,
    /// pH, 0–14 (the name `ph` or the suffix `_ph`).
    Ph,
    /// Vector copies per transduced cell (`_copies_per_cell`).
    CopiesPerCell,
    /// Millilitres (`_ml`).
    Millilitres,
    /// Endotoxin units per millilitre (`_eu_per_ml`).
    EuPerMl,
    /// Picograms per millilitre (`_pg_per_ml`).
    PgPerMl,
    /// Milliosmoles per kilogram (`_mosm_per_kg`).
    MosmPerKg,
    /// Fold change relative to the start, dimensionless (`_fold`).
    Fold,
    /// Population doublings, dimensionless (`_doublings`).
    Doublings,
}

/// Name suffixes and their units, longest first so `_cells_per_ml` wins over `_cells`.
const UNIT_SUFFIXES: &[(&str, Unit)] = &[
    ("_copies_per_cell", Unit::CopiesPerCell),
    ("_cells_per_cm2", Unit::CellsPerCm2),
    ("_cells_per_ml", Unit::CellsPerMl),
    ("_mosm_per_kg", Unit::MosmPerKg),
    ("_pg_per_ml", Unit::PgPerMl),
    ("_eu_per_ml", Unit::EuPerMl),
    ("_doublings", Unit::Doublings),
    ("_percent", Unit::Percent),
    ("_ml", Unit::Millilitres),
    ("_cells", Unit::Cells),
    ("_fold", Unit::Fold),
    ("_mm", Unit::Millimolar),
    ("_ph", Unit::Ph),
    ("_c", Unit::Celsius),
];

/// Smallest and largest value that is physically meaningful for a unit, with the rule's text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhysicalRange {
    /// Smallest meaningful value, in the unit.
    pub min: f64,
    /// Largest meaningful value, in the unit.
    pub max: f64,
    /// The rule as a reader sees it in an error message.
    pub rule: &'static str,
}

/// Percentages are 0–100.
pub const PERCENT_MAX: f64 = 100.0;
/// pH is 0–14.
pub const PH_MAX: f64 = 14.0;
/// Lowest temperature a recipe may mention: vapour-phase liquid nitrogen, in °C.
pub const TEMPERATURE_C_MIN: f64 = -196.0;
/// Highest temperature a recipe may mention, in °C (no cell process runs above 45 °C).
pub const TEMPERATURE_C_MAX: f64 = 45.0;

impl Unit {
    /// The unit of a parameter name, or `None` when its suffix is not a known unit.
    pub fn of_parameter(name: &str) -> Option<Unit> {
        if name == "ph" {
            return Some(Unit::Ph);
        }
        UNIT_SUFFIXES
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix))
            .map(|(_, unit)| *unit)
    }

    /// The suffixes a parameter name may end with, for error messages.
    pub fn known_suffixes() -> String {
        let mut names: Vec<&str> = UNIT_SUFFIXES.iter().map(|(s, _)| *s).collect();
        names.push("ph");
        names.join(", ")
    }

    /// Symbol shown to readers of batch records.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::Millimolar => "mM",
            Unit::CellsPerMl => "cells/mL",
            Unit::CellsPerCm2 => "cells/cm2",
            Unit::Cells => "cells",
            Unit::Celsius => "°C",
            Unit::Ph => "pH",
            Unit::CopiesPerCell => "copies/cell",
            Unit::Millilitres => "mL",
            Unit::EuPerMl => "EU/mL",
            Unit::PgPerMl => "pg/mL",
            Unit::MosmPerKg => "mOsm/kg",
            Unit::Fold => "fold",
            Unit::Doublings => "doublings",
        }
    }

    /// The physically meaningful range of a value in this unit.
    pub fn physical_range(self) -> PhysicalRange {
        const NON_NEGATIVE: &str = "a concentration, count or ratio is not negative";
        match self {
            Unit::Percent => PhysicalRange {
                min: 0.0,
                max: PERCENT_MAX,
                rule: "a percentage is 0–100",
            },
            Unit::Ph => PhysicalRange {
                min: 0.0,
                max: PH_MAX,
                rule: "pH is 0–14",
            },
            Unit::Celsius => PhysicalRange {
                min: TEMPERATURE_C_MIN,
                max: TEMPERATURE_C_MAX,
                rule: "a process temperature is -196–45 °C",
            },
            Unit::Millimolar
            | Unit::CellsPerMl
            | Unit::CellsPerCm2
            | Unit::Cells
            | Unit::CopiesPerCell
            | Unit::Millilitres
            | Unit::EuPerMl
            | Unit::PgPerMl
            | Unit::MosmPerKg
            | Unit::Fold
            | Unit::Doublings => PhysicalRange {
                min: 0.0,
                max: f64::MAX,
                rule: NON_NEGATIVE,
            },
        }
    }
}

/// A set point a device step may command. The list is closed so that a device adapter can
/// map every one of them; an unknown name in a recipe is an error, not a silent no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetPoint {
    /// Culture temperature, °C.
    TemperatureC,
    /// Incubator CO2, percent of gas phase.
    Co2Percent,
    /// Incubator O2, percent of gas phase (hypoxic MSC culture uses 2–5 %).
    O2Percent,
    /// Dissolved oxygen, percent of air saturation.
    DoPercent,
    /// Medium pH control target.
    Ph,
    /// Agitation or rocking speed, revolutions (or rocks) per minute.
    AgitationRpm,
    /// Perfusion rate, mL of fresh medium per day.
    PerfusionMlPerDay,
    /// Fed-batch feed rate, mL per day.
    FeedMlPerDay,
    /// Culture working volume, mL.
    CultureVolumeMl,
    /// Fraction of medium replaced in one exchange, percent.
    MediumExchangePercent,
    /// Centrifugation force for wash/volume reduction, g.
    CentrifugeG,
    /// Controlled-rate freezer cooling rate, °C per minute (negative: cooling).
    CoolingRateCPerMin,
    /// Controlled-rate freezer end temperature, °C.
    EndTemperatureC,
}

/// Every set point with its name in recipes and its allowed range.
const SET_POINTS: &[(SetPoint, &str, f64, f64)] = &[
    (SetPoint::TemperatureC, "temperature_c", 2.0, 40.0),
    (SetPoint::Co2Percent, "co2_percent", 0.0, 20.0),
    (SetPoint::O2Percent, "o2_percent", 1.0, 21.0),
    (SetPoint::DoPercent, "do_percent", 0.0, 100.0),
    (SetPoint::Ph, "ph", 6.5, 7.8),
    (SetPoint::AgitationRpm, "agitation_rpm", 0.0, 300.0),
    (
        SetPoint::PerfusionMlPerDay,
        "perfusion_ml_per_day",
        0.0,
        20_000.0,
    ),
    (SetPoint::FeedMlPerDay, "feed_ml_per_day", 0.0, 20_000.0),
    (
        SetPoint::CultureVolumeMl,
        "culture_volume_ml",
        1.0,
        25_000.0,
    ),
    (
        SetPoint::MediumExchangePercent,
        "medium_exchange_percent",
        0.0,
        100.0,
    ),
    (SetPoint::CentrifugeG, "centrifuge_g", 50.0, 2_000.0),
    (
        SetPoint::CoolingRateCPerMin,
        "cooling_rate_c_per_min",
        -10.0,
        -0.1,
    ),
    (SetPoint::EndTemperatureC, "end_temperature_c", -120.0, 4.0),
];

impl SetPoint {
    /// The set point named `name` in a recipe, if it is one.
    pub fn parse(name: &str) -> Option<SetPoint> {
        SET_POINTS
            .iter()
            .find(|(_, n, _, _)| *n == name)
            .map(|(sp, _, _, _)| *sp)
    }

    /// The name used in recipe files.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Allowed range `(min, max)` in the set point's unit, both inclusive.
    pub fn range(self) -> (f64, f64) {
        let (_, _, min, max) = self.entry();
        (*min, *max)
    }

    /// All set point names, for error messages.
    pub fn known_names() -> String {
        SET_POINTS
            .iter()
            .map(|(_, n, _, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn entry(self) -> &'static (SetPoint, &'static str, f64, f64) {
        // Cannot fail: SET_POINTS lists every variant (checked by the `every_set_point_listed` test).
        SET_POINTS
            .iter()
            .find(|(sp, _, _, _)| *sp == self)
            .expect("SET_POINTS lists every SetPoint variant")
    }
}

/// Units a material quantity may be given in.
pub const MATERIAL_UNITS: &[&str] = &[
    "mL", "L", "ug", "mg", "g", "IU", "vial", "bag", "kit", "flask", "unit", "cells", "TU",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_resolve_longest_first() {
        assert_eq!(
            Unit::of_parameter("viable_cells_per_ml"),
            Some(Unit::CellsPerMl)
        );
        assert_eq!(Unit::of_parameter("total_viable_cells"), Some(Unit::Cells));
        assert_eq!(Unit::of_parameter("viability_percent"), Some(Unit::Percent));
        assert_eq!(Unit::of_parameter("ph"), Some(Unit::Ph));
        assert_eq!(Unit::of_parameter("glucose_mm"), Some(Unit::Millimolar));
        assert_eq!(
            Unit::of_parameter("marrow_volume_ml"),
            Some(Unit::Millilitres)
        );
        assert_eq!(
            Unit::of_parameter("endotoxin_eu_per_ml"),
            Some(Unit::EuPerMl)
        );
        assert_eq!(Unit::of_parameter("glucose"), None);
        assert_eq!(Unit::of_parameter("_percent"), None);
    }

    #[test]
    fn every_set_point_listed() {
        for (sp, name, min, max) in SET_POINTS {
            assert_eq!(SetPoint::parse(name), Some(*sp));
            assert_eq!(sp.name(), *name);
            assert!(min < max, "{name}");
        }
    }
}
