//! DS 004–009 dates and times, and typed ISO 8601 dates.

use crate::check_err;
use cellops_isbt::{DataStructure, IsbtDate, IsbtDateTime, StructureKind, parse_expected};

#[test]
fn century_digit_zero_is_the_2000s() {
    // ST-012 §6.2 example as reported by an independent implementation: 2018-12-31.
    let parsed = parse_expected("&>0183652359", StructureKind::ExpirationDateTime).unwrap();
    let DataStructure::ExpirationDateTime(expiry) = parsed else {
        panic!("wrong kind {parsed:?}");
    };
    assert_eq!(expiry.to_string(), "2018-12-31 23:59");
    assert_eq!(cellops_isbt::year_from_century(1, 5), 2105);
}

#[test]
fn day_of_year_respects_leap_years() {
    assert!(parse_expected("=>024366", StructureKind::ExpirationDate).is_ok());
    check_err(
        parse_expected("=>025366", StructureKind::ExpirationDate),
        &["position 6", "366", "2025", "001–365"],
    );
    check_err(
        parse_expected("=*026000", StructureKind::CollectionDate),
        &["position 6", "000"],
    );
    // 2100 is not a leap year.
    check_err(
        parse_expected("=}100366", StructureKind::ProductionDate),
        &["2100"],
    );
    assert!(parse_expected("=}400366", StructureKind::ProductionDate).is_ok());
}

#[test]
fn hours_and_minutes_are_bounded() {
    check_err(
        parse_expected("&*0260762400", StructureKind::CollectionDateTime),
        &["position 9", "hour 24", "00–23"],
    );
    check_err(
        parse_expected("&}0260761260", StructureKind::ProductionDateTime),
        &["position 11", "minute 60", "00–59"],
    );
    check_err(
        parse_expected("&>02607612a0", StructureKind::ExpirationDateTime),
        &["position 11", "'a'", "minute"],
    );
}

#[test]
fn calendar_conversions_agree() {
    let date = IsbtDate::from_calendar(2024, 12, 31).unwrap();
    assert_eq!(date.day_of_year(), 366);
    assert_eq!(date.to_string(), "2024-12-31");
    let date = IsbtDate::from_calendar(2026, 3, 1).unwrap();
    assert_eq!(date.day_of_year(), 60);
    assert!(IsbtDate::from_calendar(2026, 2, 29).is_err());
    assert!(IsbtDate::from_calendar(2028, 2, 29).is_ok());
    assert!(IsbtDate::from_calendar(1999, 1, 1).is_err());
    assert!(IsbtDate::from_calendar(2026, 13, 1).is_err());
    assert!(IsbtDate::from_ordinal(2026, 366).is_err());
    // Every day of a leap and a common year survives ordinal → calendar → ordinal.
    for year in [2026u16, 2028] {
        for day in 1..=cellops_isbt::days_in_year(year) {
            let date = IsbtDate::from_ordinal(year, day).unwrap();
            let (month, day_of_month) = date.month_day();
            assert_eq!(IsbtDate::from_calendar(year, month, day_of_month), Ok(date));
        }
    }
}

#[test]
fn typed_iso_dates() {
    let expiry = IsbtDateTime::parse_iso8601("2026-03-17").unwrap();
    assert_eq!(expiry.to_string(), "2026-03-17 23:59");
    let expiry = IsbtDateTime::parse_iso8601("2026-03-17T08:05").unwrap();
    assert_eq!((expiry.hour(), expiry.minute()), (8, 5));
    assert_eq!(IsbtDateTime::parse_iso8601("2026-03-17 08:05"), Ok(expiry));
    check_err(
        IsbtDateTime::parse_iso8601("2026/03/17"),
        &["position 5", "'-'"],
    );
    check_err(IsbtDateTime::parse_iso8601("2026-02-30"), &["2026-02-30"]);
    check_err(IsbtDateTime::parse_iso8601("2026-03-17T24:00"), &["24:00"]);
    check_err(
        IsbtDateTime::parse_iso8601("17 MAR 2026"),
        &["a date must be"],
    );
}
