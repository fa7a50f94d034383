//! Calendar dates as day numbers (proleptic Gregorian), without a clock.

/// Days since 1970-01-01 of `YYYY-MM-DD`, or `None` when it is not a valid date.
pub fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let y = num(&text[0..4])?;
    let m = num(&text[5..7])?;
    let d = num(&text[8..10])?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `YYYY-MM-DD` of a day number.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Weekday of a day number, Monday = 0.
pub fn weekday(days: i64) -> usize {
    // 1970-01-01 was a Thursday (Monday-based index 3).
    (days + 3).rem_euclid(7) as usize
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-calendar algorithms (public domain description).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_weekdays() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(weekday(0), 3);
        let d = parse_date("2027-01-04").unwrap();
        assert_eq!(weekday(d), 0, "2027-01-04 is a Monday");
        assert_eq!(format_date(d), "2027-01-04");
        assert_eq!(format_date(parse_date("2028-02-29").unwrap()), "2028-02-29");
        assert_eq!(parse_date("2027-02-29"), None);
        assert_eq!(parse_date("2027-13-01"), None);
        assert_eq!(parse_date("27-1-1"), None);
        for n in -1000..1000 {
            assert_eq!(parse_date(&format_date(n)), Some(n));
        }
    }
}
