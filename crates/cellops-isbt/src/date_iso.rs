//! Typed dates for people: `2026-03-17`, `2026-03-17T23:59`, `2026-03-17 23:59`.

use crate::chars;
use crate::date::{IsbtDate, IsbtDateTime};
use crate::error::{Field, IsbtError};

const DATE_TEXT_CHARS: usize = 10;
const DATE_TIME_TEXT_CHARS: usize = 16;

/// Parses an ISO 8601 extended date with optional time (a date alone means 23:59).
pub(crate) fn parse(text: &str) -> Result<IsbtDateTime, IsbtError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.is_empty() {
        return Err(IsbtError::Empty);
    }
    if text.len() != DATE_TEXT_CHARS && text.len() != DATE_TIME_TEXT_CHARS {
        return Err(IsbtError::WrongLength {
            what: "a date",
            layout: "YYYY-MM-DD, or YYYY-MM-DDThh:mm with a 24-hour time",
            expected_chars: DATE_TEXT_CHARS,
            found_chars: text.chars().count(),
        });
    }
    let year = chars::expect_number::<4>(text, 0, Field::DateYear)?;
    separator(text, 4, &['-'])?;
    let month = chars::expect_number::<2>(text, 5, Field::Month)?;
    separator(text, 7, &['-'])?;
    let day = chars::expect_number::<2>(text, 8, Field::DayOfMonth)?;
    // Cannot truncate: four and two digits.
    let date = IsbtDate::from_calendar(year as u16, month as u8, day as u8)?;
    if text.len() == DATE_TEXT_CHARS {
        return Ok(IsbtDateTime::end_of_day(date));
    }
    separator(text, 10, &['T', ' '])?;
    let hour = chars::expect_number::<2>(text, 11, Field::Hour)?;
    separator(text, 13, &[':'])?;
    let minute = chars::expect_number::<2>(text, 14, Field::Minute)?;
    IsbtDateTime::new(date, hour as u8, minute as u8)
}

fn separator(text: &str, byte_index: usize, allowed: &[char]) -> Result<(), IsbtError> {
    let found = chars::char_at(text, byte_index);
    if allowed.contains(&found) {
        Ok(())
    } else {
        Err(IsbtError::ExpectedSeparator {
            position: chars::position_of(text, byte_index),
            expected: allowed[0],
            found,
        })
    }
}
