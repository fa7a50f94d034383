//! Typed quantities for the public API. Each is a newtype with a private field, built by a
//! `new(field, value)` that names the caller's field in the error, so a wrong unit fails to
//! compile and an impossible value fails at the boundary.

use crate::error::{TwinError, check_finite, check_fraction, check_non_negative};

macro_rules! quantity {
    ($(#[$doc:meta])* $name:ident, $unit:literal, $check:path, $rule_doc:literal) => {
        $(#[$doc])*
        #[doc = concat!("Unit: ", $unit, ". Rule: ", $rule_doc, ".")]
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(f64);

        impl $name {
            #[doc = concat!("Builds the quantity in ", $unit, "; `field` names the caller's field in the error.")]
            pub fn new(field: &'static str, value: f64) -> Result<Self, TwinError> {
                $check(field, value).map($name)
            }

            #[doc = concat!("The value in ", $unit, ".")]
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} {}", self.0, $unit)
            }
        }
    };
}

quantity!(
    /// A simulated duration or time since the start of a run.
    Hours,
    "h",
    check_non_negative,
    "finite and ≥ 0"
);
quantity!(
    /// A count of cells.
    Cells,
    "cells",
    check_non_negative,
    "finite and ≥ 0"
);
quantity!(
    /// A cell density in suspension.
    CellsPerMl,
    "cells/mL",
    check_non_negative,
    "finite and ≥ 0"
);
quantity!(
    /// A concentration (glucose, lactate, ammonia).
    Millimolar,
    "mM",
    check_non_negative,
    "finite and ≥ 0"
);
quantity!(
    /// A liquid volume.
    Millilitres,
    "mL",
    check_non_negative,
    "finite and ≥ 0"
);
quantity!(
    /// A fraction such as viability or CAR+ fraction.
    Fraction,
    "fraction (0..1)",
    check_fraction,
    "in [0, 1]"
);
quantity!(
    /// A temperature.
    Celsius,
    "°C",
    check_finite,
    "finite"
);

impl Hours {
    /// A duration of `days` days (24 h each).
    pub fn from_days(field: &'static str, days: f64) -> Result<Hours, TwinError> {
        Hours::new(field, days * 24.0)
    }

    /// The duration in days.
    pub fn days(self) -> f64 {
        self.0 / 24.0
    }
}
