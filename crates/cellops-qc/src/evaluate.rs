//! Result evaluation: a measured value (with its unit) or an outcome, checked against the
//! test's criterion. Pure; the caller records the verdict with the result.

use crate::error::QcError;
use crate::spec::{Criterion, TestSpec, number};
use crate::units::QcUnit;
use serde::{Deserialize, Serialize};

/// What an analyst entered for a test, before it is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum EnteredValue {
    /// A number with the unit as typed (`None` when the analyst gave no unit).
    Number { value: f64, unit: Option<String> },
    /// A qualitative outcome, e.g. `no_growth`.
    Outcome(String),
}

/// A result that passed input checks: a number in the specification's unit, or an allowed
/// outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MeasuredValue {
    Number { value: f64, unit: QcUnit },
    Outcome { outcome: String },
}

impl MeasuredValue {
    /// The value as printed, e.g. `82.5 %` or `no_growth`.
    pub fn text(&self) -> String {
        match self {
            MeasuredValue::Number { value, unit } => format!("{} {unit}", number(*value)),
            MeasuredValue::Outcome { outcome } => outcome.clone(),
        }
    }
}

/// Pass or fail against the specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Out of specification; `reason` says which limit, e.g. `62 % is below >= 70 %`.
    Fail {
        reason: String,
    },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// Checks `entered` against `test`: the unit must be the specification's (or an error names
/// both), the value finite and physically meaningful, an outcome one of the allowed ones.
pub fn evaluate(
    test: &TestSpec,
    entered: &EnteredValue,
) -> Result<(MeasuredValue, Verdict), QcError> {
    match (&test.criterion, entered) {
        (
            Criterion::Numeric {
                unit,
                at_least,
                above,
                at_most,
                below,
            },
            EnteredValue::Number { value, unit: given },
        ) => {
            check_unit(test, *unit, given.as_deref())?;
            check_value(test, *value, *unit)?;
            let v = *value;
            let bounds = [
                (at_least, v >= at_least.unwrap_or(f64::NEG_INFINITY), ">="),
                (above, v > above.unwrap_or(f64::NEG_INFINITY), ">"),
                (at_most, v <= at_most.unwrap_or(f64::INFINITY), "<="),
                (below, v < below.unwrap_or(f64::INFINITY), "<"),
            ];
            let failed = bounds
                .iter()
                .find(|(limit, ok, _)| limit.is_some() && !ok)
                .map(|(limit, _, op)| {
                    format!(
                        "{} {unit} is outside the limit {op} {} {unit}",
                        number(v),
                        number(limit.unwrap_or_default())
                    )
                });
            let measured = MeasuredValue::Number {
                value: v,
                unit: *unit,
            };
            Ok((measured, verdict(failed)))
        }
        (Criterion::Qualitative { allowed, accepted }, EnteredValue::Outcome(outcome)) => {
            let outcome = outcome.trim().to_ascii_lowercase();
            if !allowed.contains(&outcome) {
                return Err(QcError::UnknownOutcome {
                    test: test.id.clone(),
                    given: outcome,
                    allowed: allowed.join(", "),
                });
            }
            let failed = (!accepted.contains(&outcome)).then(|| {
                format!(
                    "{outcome} is not an accepted outcome ({})",
                    accepted.join(" or ")
                )
            });
            Ok((MeasuredValue::Outcome { outcome }, verdict(failed)))
        }
        (Criterion::Numeric { unit, .. }, EnteredValue::Outcome(_)) => Err(QcError::WrongKind {
            test: test.id.clone(),
            expected: format!("a number in {unit} (`value` and `unit`), not an outcome"),
        }),
        (Criterion::Qualitative { allowed, .. }, EnteredValue::Number { .. }) => {
            Err(QcError::WrongKind {
                test: test.id.clone(),
                expected: format!("an `outcome`, one of {}, not a number", allowed.join(", ")),
            })
        }
    }
}

fn verdict(failed: Option<String>) -> Verdict {
    match failed {
        None => Verdict::Pass,
        Some(reason) => Verdict::Fail { reason },
    }
}

fn check_unit(test: &TestSpec, expected: QcUnit, given: Option<&str>) -> Result<(), QcError> {
    let given = match given.map(str::trim) {
        None | Some("") => {
            return Err(QcError::UnitMissing {
                test: test.id.clone(),
                expected: expected.to_string(),
            });
        }
        Some(g) => g,
    };
    let parsed = QcUnit::parse(given).ok_or_else(|| QcError::UnitUnknown {
        test: test.id.clone(),
        given: given.to_string(),
        expected: expected.to_string(),
        known: QcUnit::known_symbols(),
    })?;
    if parsed != expected {
        return Err(QcError::UnitMismatch {
            test: test.id.clone(),
            given: parsed.to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

fn check_value(test: &TestSpec, value: f64, unit: QcUnit) -> Result<(), QcError> {
    if !value.is_finite() {
        return Err(QcError::NotFinite {
            test: test.id.clone(),
        });
    }
    let (min, max) = unit.physical_range();
    if value < min || value > max {
        return Err(QcError::OutsidePhysicalRange {
            test: test.id.clone(),
            value,
            unit: unit.to_string(),
            min,
            max,
        });
    }
    Ok(())
}
