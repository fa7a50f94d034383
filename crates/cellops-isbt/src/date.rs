//! ISBT 128 dates `cyyjjj` and date-times `cyyjjjhhmm` (DS 004–009, ST-001 §2.4.4–2.4.9).
//!
//! `c` is a century digit, `yy` the year in the century, `jjj` the ordinal day (001–366),
//! `hhmm` a 24-hour local time. These values carry no time zone: the caller decides which
//! zone a label's times are in (ST-001 §7.4.4.2).

use crate::chars;
use crate::error::{Field, IsbtError};

/// Year written as century digit 0 and year 00 (ASSUMPTION, see [`year_from_century`]).
pub const CENTURY_ZERO_YEAR: u16 = 2000;
/// Earliest year an ISBT 128 date can carry under the century assumption.
pub const DATE_YEAR_MIN: u16 = CENTURY_ZERO_YEAR;
/// Latest year an ISBT 128 date can carry under the century assumption (century digit 9).
pub const DATE_YEAR_MAX: u16 = CENTURY_ZERO_YEAR + 999;
/// Characters of a date content `cyyjjj`.
pub const DATE_CHARS: usize = 6;
/// Characters of a date-time content `cyyjjjhhmm`.
pub const DATE_TIME_CHARS: usize = 10;
/// Largest hour of a time.
pub const HOUR_MAX: u8 = 23;
/// Largest minute of a time.
pub const MINUTE_MAX: u8 = 59;

/// The one place that maps the century digit `c` and year `yy` to a calendar year.
///
/// ASSUMPTION (standards.md §1.4 and §8 item 1, unconfirmed): `c` counts centuries from 2000,
/// so `0` means 2000–2099. Chosen because the ST-012 §6.2 worked example, as reported by an
/// independent implementation, shows `&>0183652359` for an expiry of 2018-12-31. Confirm in
/// ST-001 before release; changing [`CENTURY_ZERO_YEAR`] changes every date.
pub const fn year_from_century(century: u8, year_in_century: u8) -> u16 {
    CENTURY_ZERO_YEAR + century as u16 * 100 + year_in_century as u16
}

/// The inverse of [`year_from_century`]: century digit and 2-digit year of `year`.
/// `year` must be within [`DATE_YEAR_MIN`]..=[`DATE_YEAR_MAX`].
const fn century_of(year: u16) -> (u8, u8) {
    let since = year - CENTURY_ZERO_YEAR;
    ((since / 100) as u8, (since % 100) as u8)
}

/// True when `year` has 366 days (Gregorian rule).
pub const fn is_leap_year(year: u16) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `year`: 365 or 366.
pub const fn days_in_year(year: u16) -> u16 {
    if is_leap_year(year) { 366 } else { 365 }
}

const DAYS_BEFORE_MONTH: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// A calendar date that ISBT 128 can carry (year 2000–2999, real day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsbtDate {
    year: u16,
    day_of_year: u16,
}

impl IsbtDate {
    /// The date of ordinal day `day_of_year` (1–365, or 366 in a leap year) of `year`.
    pub fn from_ordinal(year: u16, day_of_year: u16) -> Result<IsbtDate, IsbtError> {
        if !(DATE_YEAR_MIN..=DATE_YEAR_MAX).contains(&year) {
            return Err(IsbtError::YearNotRepresentable {
                year,
                year_min: DATE_YEAR_MIN,
                year_max: DATE_YEAR_MAX,
            });
        }
        let days_max = days_in_year(year);
        if day_of_year == 0 || day_of_year > days_max {
            return Err(IsbtError::DayNotInYear {
                found: day_of_year,
                year,
                days_max,
            });
        }
        Ok(IsbtDate { year, day_of_year })
    }

    /// The date `year`-`month`-`day` (month 1–12), if it exists and ISBT 128 can carry it.
    pub fn from_calendar(year: u16, month: u8, day: u8) -> Result<IsbtDate, IsbtError> {
        let error = IsbtError::DateNotRepresentable {
            year,
            month,
            day,
            year_min: DATE_YEAR_MIN,
            year_max: DATE_YEAR_MAX,
        };
        if !(1..=12).contains(&month) || day == 0 {
            return Err(error);
        }
        let month_index = usize::from(month - 1);
        let leap_day = u16::from(month > 2 && is_leap_year(year));
        let month_len = month_length(year, month_index);
        if u16::from(day) > month_len {
            return Err(error);
        }
        let ordinal = DAYS_BEFORE_MONTH[month_index] + leap_day + u16::from(day);
        IsbtDate::from_ordinal(year, ordinal).map_err(|_| error)
    }

    /// The calendar year, 2000–2999.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The ordinal day of the year, 1–366.
    pub fn day_of_year(&self) -> u16 {
        self.day_of_year
    }

    /// Month (1–12) and day of month (1–31).
    pub fn month_day(&self) -> (u8, u8) {
        month_day(self.year, self.day_of_year)
    }

    /// The 6-character content `cyyjjj`.
    pub fn content(&self) -> [u8; DATE_CHARS] {
        let (century, year_in_century) = century_of(self.year);
        let mut out = [0u8; DATE_CHARS];
        out[0] = b'0' + century;
        out[1..3].copy_from_slice(&chars::digits::<2>(u32::from(year_in_century)));
        out[3..].copy_from_slice(&chars::digits::<3>(u32::from(self.day_of_year)));
        out
    }
}

/// ISO 8601 extended date, e.g. `2026-03-17` (the form ST-001 §7.4.4.2 allows on labels).
impl std::fmt::Display for IsbtDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (month, day) = self.month_day();
        write!(f, "{:04}-{month:02}-{day:02}", self.year)
    }
}

fn month_length(year: u16, month_index: usize) -> u16 {
    const LENGTHS: [u16; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    LENGTHS[month_index] + u16::from(month_index == 1 && is_leap_year(year))
}

fn month_day(year: u16, day_of_year: u16) -> (u8, u8) {
    let mut remaining = day_of_year;
    for month_index in 0..12 {
        let len = month_length(year, month_index);
        if remaining <= len {
            // Cannot truncate: month_index < 12 and remaining ≤ 31.
            return (month_index as u8 + 1, remaining as u8);
        }
        remaining -= len;
    }
    unreachable!("day_of_year {day_of_year} was checked against days_in_year({year})")
}

/// A date and a 24-hour time of day (minute resolution, no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsbtDateTime {
    date: IsbtDate,
    hour: u8,
    minute: u8,
}

impl IsbtDateTime {
    /// `date` at `hour`:`minute` (0–23, 0–59).
    pub fn new(date: IsbtDate, hour: u8, minute: u8) -> Result<IsbtDateTime, IsbtError> {
        if hour > HOUR_MAX || minute > MINUTE_MAX {
            return Err(IsbtError::TimeNotRepresentable { hour, minute });
        }
        Ok(IsbtDateTime { date, hour, minute })
    }

    /// `date` at 23:59, what ST-001 §2.4.5 says to encode when an expiry has no time.
    pub fn end_of_day(date: IsbtDate) -> IsbtDateTime {
        IsbtDateTime {
            date,
            hour: HOUR_MAX,
            minute: MINUTE_MAX,
        }
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDThh:mm` or `YYYY-MM-DD hh:mm` (a date alone means 23:59).
    pub fn parse_iso8601(text: &str) -> Result<IsbtDateTime, IsbtError> {
        crate::date_iso::parse(text)
    }

    /// The date.
    pub fn date(&self) -> IsbtDate {
        self.date
    }

    /// The hour, 0–23.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The minute, 0–59.
    pub fn minute(&self) -> u8 {
        self.minute
    }

    /// The 10-character content `cyyjjjhhmm`.
    pub fn content(&self) -> [u8; DATE_TIME_CHARS] {
        let mut out = [0u8; DATE_TIME_CHARS];
        out[..DATE_CHARS].copy_from_slice(&self.date.content());
        out[6..8].copy_from_slice(&chars::digits::<2>(u32::from(self.hour)));
        out[8..].copy_from_slice(&chars::digits::<2>(u32::from(self.minute)));
        out
    }
}

/// ISO 8601 extended date and 24-hour time, e.g. `2026-03-17 23:59`.
impl std::fmt::Display for IsbtDateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:02}:{:02}", self.date, self.hour, self.minute)
    }
}

/// Reads `cyyjjj` at byte `start` of `text` (caller checked the length).
pub(crate) fn read_date(text: &str, start: usize) -> Result<IsbtDate, IsbtError> {
    let century = chars::expect_number::<1>(text, start, Field::Century)?;
    let year_in_century = chars::expect_number::<2>(text, start + 1, Field::DateYear)?;
    let day_of_year = chars::expect_number::<3>(text, start + 3, Field::DayOfYear)?;
    // Cannot truncate: one and two digits.
    let year = year_from_century(century as u8, year_in_century as u8);
    let days_max = days_in_year(year);
    // Cannot truncate: three digits.
    let day_of_year = day_of_year as u16;
    if day_of_year == 0 || day_of_year > days_max {
        return Err(IsbtError::DayOfYearOutOfRange {
            position: chars::position_of(text, start + 3),
            found: day_of_year,
            year,
            days_max,
        });
    }
    Ok(IsbtDate { year, day_of_year })
}

/// Reads `cyyjjjhhmm` at byte `start` of `text` (caller checked the length).
pub(crate) fn read_date_time(text: &str, start: usize) -> Result<IsbtDateTime, IsbtError> {
    let date = read_date(text, start)?;
    let hour_at = start + DATE_CHARS;
    let hour = chars::expect_number::<2>(text, hour_at, Field::Hour)?;
    let minute = chars::expect_number::<2>(text, hour_at + 2, Field::Minute)?;
    if hour > u32::from(HOUR_MAX) {
        return Err(IsbtError::HourOutOfRange {
            position: chars::position_of(text, hour_at),
            found: hour as u8,
        });
    }
    if minute > u32::from(MINUTE_MAX) {
        return Err(IsbtError::MinuteOutOfRange {
            position: chars::position_of(text, hour_at + 2),
            found: minute as u8,
        });
    }
    // Cannot truncate: checked against 23 and 59 above.
    Ok(IsbtDateTime {
        date,
        hour: hour as u8,
        minute: minute as u8,
    })
}
