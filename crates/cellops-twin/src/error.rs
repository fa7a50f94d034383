//! The one error type of this crate. Every message names the field, the rule it broke and,
//! where one exists, the fix.

/// Everything that can go wrong in a model call. Inputs are checked where they enter
/// (constructors, parsers); a non-finite number produced inside a simulation is reported as
/// [`TwinError::NonFinite`] instead of being passed on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TwinError {
    /// A parameter or input value broke its rule (negative, out of range, not finite).
    #[error("{field} = {value} is invalid (rule: {rule})")]
    InvalidValue {
        /// The field name as written in the API, with its unit suffix.
        field: &'static str,
        /// The offending value.
        value: f64,
        /// The rule the value must satisfy, e.g. "finite and ≥ 0".
        rule: &'static str,
    },
    /// Two parameters are inconsistent with each other.
    #[error("{field} is inconsistent: {rule}")]
    Inconsistent {
        /// The field that must change.
        field: &'static str,
        /// The relation that failed, with the values.
        rule: String,
    },
    /// A simulation produced a NaN or infinity; the run is abandoned rather than reported.
    #[error(
        "simulation produced a non-finite {quantity} at t = {time_h} h (rule: every state stays finite; check the parameters for extreme values)"
    )]
    NonFinite {
        /// The state variable or output that became non-finite.
        quantity: &'static str,
        /// Simulated time in hours when it was found.
        time_h: f64,
    },
    /// The ODE integrator could not meet its tolerance with the smallest allowed step.
    #[error(
        "integrator step size fell below {step_h_min} h at t = {time_h} h (rule: the model must stay smooth; check the parameters)"
    )]
    StepTooSmall {
        /// The smallest step allowed, in hours.
        step_h_min: f64,
        /// Simulated time in hours when it failed.
        time_h: f64,
    },
    /// The integrator needed more steps than its limit.
    #[error(
        "integrator exceeded {steps_max} steps before t = {time_h} h (rule: steps ≤ {steps_max})"
    )]
    TooManySteps {
        /// The step limit.
        steps_max: usize,
        /// Simulated time in hours when the limit was hit.
        time_h: f64,
    },
    /// An observation table is malformed; `row` is 1-based and counts the header as row 1.
    #[error("observations row {row}, column {column:?}: {problem}")]
    Observation {
        /// 1-based line number in the table (header = 1).
        row: usize,
        /// The column name as written in the header (or the expected name when missing).
        column: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// An action is not possible in the current state (e.g. passaging a suspension culture).
    #[error("action {action} is not possible: {reason}")]
    ActionRejected {
        /// The action's name.
        action: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Fitting failed (the optimiser returned no parameters or an error).
    #[error("fitting failed: {reason}")]
    Fit {
        /// The optimiser's message.
        reason: String,
    },
    /// Plot rendering failed.
    #[error("plot failed: {reason}")]
    Plot {
        /// The backend's message.
        reason: String,
    },
}

/// Checks that `value` is finite and ≥ 0, naming `field` in the error.
pub fn check_non_negative(field: &'static str, value: f64) -> Result<f64, TwinError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(TwinError::InvalidValue {
            field,
            value,
            rule: "finite and ≥ 0",
        })
    }
}

/// Checks that `value` is finite and > 0, naming `field` in the error.
pub fn check_positive(field: &'static str, value: f64) -> Result<f64, TwinError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(TwinError::InvalidValue {
            field,
            value,
            rule: "finite and > 0",
        })
    }
}

/// Checks that `value` is a fraction in [0, 1], naming `field` in the error.
pub fn check_fraction(field: &'static str, value: f64) -> Result<f64, TwinError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(TwinError::InvalidValue {
            field,
            value,
            rule: "a fraction in [0, 1]",
        })
    }
}

/// Checks that `value` is finite, naming `field` in the error.
pub fn check_finite(field: &'static str, value: f64) -> Result<f64, TwinError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(TwinError::InvalidValue {
            field,
            value,
            rule: "finite",
        })
    }
}
