//! The crate's error type. Every message names the field, what is wrong and the fix.

use std::fmt;

/// One problem in an instance or request: the field (a JSON path such as
/// `products[0].stages[1].hold_max_days`), what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field.
    pub field: String,
    /// What is wrong, with the values.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.field, self.problem, self.fix)
    }
}

/// Everything that can go wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The instance or request is invalid; every problem found is listed.
    #[error("invalid instance: {}", join(.0))]
    Invalid(Vec<FieldError>),
    /// The instance file is not valid JSON of the expected shape.
    #[error("instance is not readable JSON: {0}")]
    Parse(String),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl ScheduleError {
    /// A single-field error.
    pub fn field(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ScheduleError::Invalid(vec![FieldError {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }])
    }

    /// The field errors (empty for a parse error).
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ScheduleError::Invalid(v) => v,
            ScheduleError::Parse(_) => &[],
        }
    }
}
