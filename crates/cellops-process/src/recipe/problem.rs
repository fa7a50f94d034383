//! Validation problems: every one carries the field path, its line and column, and a message
//! that names the rule and, where it helps, the fix.

use std::fmt;

/// 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

/// What is wrong at a field. Messages state the rule in parentheses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProblemKind {
    /// The file is not valid TOML.
    #[error("TOML syntax error: {message}")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// The file is larger than `RECIPE_BYTES_MAX`.
    #[error("recipe file has {bytes} bytes (rule: at most {max} bytes)")]
    TooLarge {
        /// Size of the file.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A required field is absent.
    #[error("is missing (rule: required; add it as {expected})")]
    Missing {
        /// What kind of value to add.
        expected: &'static str,
    },
    /// A field has the wrong TOML type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// Expected type.
        expected: &'static str,
        /// Found type.
        found: &'static str,
    },
    /// A field is not part of the format (often a typo).
    #[error("unknown field (rule: allowed here: {allowed})")]
    UnknownField {
        /// The fields allowed at this place.
        allowed: String,
    },
    /// A string or list is empty.
    #[error("is empty (rule: must not be empty)")]
    Empty,
    /// A text or list is too long.
    #[error("has {count} {what} (rule: at most {max})")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An id does not follow the id rule.
    #[error(
        "`{value}` is not a valid id (rule: 1–64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit)"
    )]
    BadId {
        /// The offending id.
        value: String,
    },
    /// Two items share an id.
    #[error("id `{id}` is already used at {first} (rule: ids are unique)")]
    DuplicateId {
        /// The repeated id.
        id: String,
        /// Path of the first use.
        first: String,
    },
    /// A reference names nothing declared.
    #[error("`{id}` is not a declared {what} (rule: references resolve; declared: {declared})")]
    Unresolved {
        /// The reference.
        id: String,
        /// What kind of thing it should name.
        what: &'static str,
        /// The declared ids.
        declared: String,
    },
    /// A value is not one of an enumerated set.
    #[error("`{value}` is not allowed (rule: one of {allowed})")]
    NotOneOf {
        /// The offending value.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// A parameter name has no known unit suffix.
    #[error("`{name}` has no known unit (rule: a parameter name ends with its unit: {suffixes})")]
    UnknownUnit {
        /// The parameter name.
        name: String,
        /// The known suffixes.
        suffixes: String,
    },
    /// A value is above what its rule allows.
    #[error("{value} is above {max} (rule: {rule})")]
    Above {
        /// The value.
        value: f64,
        /// The largest allowed.
        max: f64,
        /// The rule.
        rule: String,
    },
    /// A value is below what its rule allows.
    #[error("{value} is below {min} (rule: {rule})")]
    Below {
        /// The value.
        value: f64,
        /// The smallest allowed.
        min: f64,
        /// The rule.
        rule: String,
    },
    /// A value that must be positive is zero or negative.
    #[error("{value} is not above 0 (rule: {rule})")]
    NotPositive {
        /// The value.
        value: f64,
        /// The rule.
        rule: String,
    },
    /// A limit has neither bound.
    #[error("has neither min nor max (rule: a limit sets min, max or both)")]
    NoBound,
    /// `min` is not below `max`.
    #[error("min {min} is not below max {max} (rule: min < max)")]
    LimitsNotOrdered {
        /// The min.
        min: f64,
        /// The max.
        max: f64,
    },
    /// A material use names another unit than the material's.
    #[error(
        "unit `{used}` differs from the material's unit `{declared}` (rule: a material is used in its declared unit)"
    )]
    UnitMismatch {
        /// Unit in the use.
        used: String,
        /// Unit in the declaration.
        declared: String,
    },
    /// `earliest_day` is after `latest_day`.
    #[error(
        "earliest_day {earliest} is after latest_day {latest} (rule: earliest_day ≤ latest_day)"
    )]
    WindowNotOrdered {
        /// Earliest day.
        earliest: u32,
        /// Latest day.
        latest: u32,
    },
    /// The decision's latest day comes before the time its earlier device steps need.
    #[error(
        "latest_day {latest_day} (= {latest_hours} h) is before the {needed_hours} h the device steps before it need (rule: a decision window must be reachable)"
    )]
    WindowUnreachable {
        /// Latest day.
        latest_day: u32,
        /// Latest day in hours.
        latest_hours: f64,
        /// Sum of device step durations before the decision, hours.
        needed_hours: f64,
    },
    /// A decision's window starts before the previous decision's window.
    #[error(
        "earliest_day {earliest} is before earliest_day {previous} of the previous decision `{previous_step}` (rule: decision windows do not go back in time)"
    )]
    WindowGoesBack {
        /// This decision's earliest day.
        earliest: u32,
        /// The previous decision's earliest day.
        previous: u32,
        /// The previous decision's step id.
        previous_step: String,
    },
    /// `loop_back_to` names a step that is not earlier in the same phase.
    #[error(
        "`{target}` is not an earlier step of the same phase (rule: a decision loops back within its phase)"
    )]
    LoopNotBackward {
        /// The target id.
        target: String,
    },
    /// The loop contains no device step with a duration, so it would not advance time.
    #[error(
        "the steps from `{target}` to this decision contain no device step (rule: each loop runs a device step, so time advances)"
    )]
    LoopWithoutDevice {
        /// The target id.
        target: String,
    },
    /// `verifies` names no earlier operator or sampling step.
    #[error(
        "`{target}` is not an earlier operator or sampling step (rule: a verification step verifies an earlier step a person performed; earlier such steps: {earlier})"
    )]
    VerifiesNotEarlierPersonStep {
        /// The target id.
        target: String,
        /// The earlier operator and sampling step ids.
        earlier: String,
    },
    /// A step with `verifies` does not require an e-signature meaning `verified`.
    #[error(
        "a step with `verifies` needs esignature = \"verified\" (rule: the second person signs the verification; add esignature = \"verified\")"
    )]
    VerifiesWithoutSignature,
    /// An element could not be read completely although no other problem names it.
    #[error("could not be read completely (rule: every element has all its required fields)")]
    Incomplete,
    /// The version string is not an integer or `major.minor.patch`.
    #[error(
        "`{value}` is not a version (rule: an integer such as 3, or major.minor.patch such as \"1.2.0\")"
    )]
    BadVersion {
        /// The offending text.
        value: String,
    },
}

/// One problem in a recipe file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Field path, e.g. `phases[2].steps[1].limits.viability_percent.min` (indices 0-based).
    pub path: String,
    /// Where in the file.
    pub location: Location,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Every problem found in one recipe file, sorted by position.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeErrors {
    /// The file name as given to `Recipe::parse`.
    pub file: String,
    /// Problems in file order; never empty.
    pub problems: Vec<Problem>,
}

impl fmt::Display for RecipeErrors {
    /// One line per problem: `file:line:column: path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, p.location.line, p.location.column, p.path, p.kind
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RecipeErrors {}

/// Maps byte offsets to line and column.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, line_starts }
    }

    pub(crate) fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Location {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns() {
        let idx = LineIndex::new("ab\ncdé\nf");
        assert_eq!(idx.locate(0), Location { line: 1, column: 1 });
        assert_eq!(idx.locate(3), Location { line: 2, column: 1 });
        assert_eq!(idx.locate(8), Location { line: 3, column: 1 });
        assert_eq!(idx.locate(4), Location { line: 2, column: 2 });
    }
}
