//! The one error type of this crate.

/// Why a label could not be rendered. Messages name the field, the rule and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The product description is empty.
    #[error("the product description is empty; give the text to print under the DIN")]
    DescriptionEmpty,
    /// The product description is too long to print.
    #[error(
        "the product description is {found_chars} characters long; at most {max_chars} fit on \
         the label. Shorten it"
    )]
    DescriptionTooLong {
        /// Characters given.
        found_chars: usize,
        /// The limit.
        max_chars: usize,
    },
    /// A character the label fonts cannot print.
    #[error(
        "{field} position {position}: {found:?} cannot be printed with the label fonts; use \
         letters A–Z, a–z, digits, spaces and ASCII punctuation"
    )]
    CharNotPrintable {
        /// Which text.
        field: &'static str,
        /// 1-based position.
        position: usize,
        /// The character.
        found: char,
    },
    /// A time zone abbreviation that is not 2–6 capital letters.
    #[error(
        "time zone {found:?} must be an abbreviation of {min}–{max} capital letters, e.g. CET, JST, UTC"
    )]
    TimeZoneInvalid {
        /// What was given.
        found: String,
        /// Shortest accepted.
        min: usize,
        /// Longest accepted.
        max: usize,
    },
    /// The DataMatrix encoder refused the data (should not happen for valid ISBT 128 text).
    #[error("the DataMatrix symbol could not be built for {data:?}: {reason}")]
    DataMatrix {
        /// The text to encode.
        data: String,
        /// The encoder's reason.
        reason: String,
    },
    /// The Code 128 encoder refused the data (should not happen for a valid DIN).
    #[error("the Code 128 symbol could not be built for {data:?}: {reason}")]
    Code128 {
        /// The text to encode.
        data: String,
        /// The encoder's reason.
        reason: String,
    },
    /// No label to print.
    #[error("no labels to print: give at least one unit")]
    NoLabels,
    /// Too many labels in one document.
    #[error("{count} labels requested; at most {max} fit in one print document. Split the job")]
    TooManyLabels {
        /// Labels requested.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The sheet layout cannot hold a label.
    #[error("the sheet layout does not fit: {reason}")]
    SheetDoesNotFit {
        /// What does not fit.
        reason: String,
    },
}
