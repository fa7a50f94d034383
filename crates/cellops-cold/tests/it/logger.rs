use crate::common::*;
use cellops_cold::*;

fn generic() -> LoggerFormat {
    LoggerFormat::Generic(GenericCsv::default())
}

#[test]
fn the_generic_format_reads_columns_units_and_offsets() {
    let csv = "timestamp,temperature_c\n2026-03-01T00:00:00Z,-180.0\n2026-03-01T00:05:00Z,-179.5\n";
    let trace = import_csv(csv, &generic()).unwrap();
    assert_eq!(trace.samples.len(), 2);
    assert_eq!(trace.samples[0].at, t(0.0));
    // Other columns, semicolons, Fahrenheit and a local time with a configured offset.
    let f = LoggerFormat::Generic(GenericCsv {
        delimiter: ';',
        timestamp_column: "Time".into(),
        temperature_column: "Temp".into(),
        unit: TemperatureUnit::Fahrenheit,
        utc_offset: Some("+09:00".into()),
    });
    let trace = import_csv("Id;Time;Temp\n1;2026-03-01 09:00:00;-292\n", &f).unwrap();
    assert_eq!(trace.samples[0].at, t(0.0));
    assert!((trace.samples[0].temperature_c - -180.0).abs() < 1e-9);
}

#[test]
fn bad_logger_files_get_errors_that_name_the_line_and_fix() {
    let cases = [
        (
            "timestamp,temperature_c\n2026-03-01 00:00:00,-180\n",
            "no zone",
        ),
        ("time,temp\n2026-03-01T00:00:00Z,-180\n", "no column"),
        (
            "timestamp,temperature_c\n2026-03-01T00:00:00Z,warm\n",
            "not a number",
        ),
        (
            "timestamp,temperature_c\n2026-03-01T00:00:00Z,-400\n",
            "check the unit",
        ),
        (
            "timestamp,temperature_c\n2026-03-01T00:05:00Z,-180\n2026-03-01T00:00:00Z,-180\n",
            "time order",
        ),
        (
            "timestamp,temperature_c\n2026-03-01T00:00:00Z,-180\n2026-03-01T00:00:00Z,-170\n",
            "same time",
        ),
        ("timestamp,temperature_c\n", "no samples"),
    ];
    for (csv, needle) in cases {
        let err = import_csv(csv, &generic()).unwrap_err().to_string();
        assert!(err.contains(needle), "{csv:?}: {err}");
        assert!(err.contains("line"), "{err}");
    }
    // An identical duplicate is dropped with a recorded warning.
    let csv = "timestamp,temperature_c\n2026-03-01T00:00:00Z,-180\n2026-03-01T00:00:00Z,-180\n";
    let trace = import_csv(csv, &generic()).unwrap();
    assert_eq!(trace.samples.len(), 1);
    assert_eq!(trace.warnings.len(), 1);
}

#[test]
fn the_vendor_a_format_needs_its_zone_and_unit() {
    let file = "Device,CryoLog 3\nSerial,LG-0001\nTime zone,UTC+09:00\nUnit,°C\n\nNo.,Time,Temperature\n1,2026-03-01 09:00:00,-185.2\n2,2026-03-01 09:05:00,-185.0\n";
    let trace = import_csv(file, &LoggerFormat::VendorA).unwrap();
    assert_eq!(trace.serial.as_deref(), Some("LG-0001"));
    assert_eq!(trace.samples[0].at, t(0.0));
    let no_zone = file.replace("Time zone,UTC+09:00\n", "");
    let err = import_csv(&no_zone, &LoggerFormat::VendorA)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Time zone"), "{err}");
}

fn samples(values: &[(f64, f64)]) -> Vec<Reading> {
    values
        .iter()
        .map(|(min, c)| Reading {
            at: t(min / 60.0),
            temperature_c: *c,
        })
        .collect()
}

#[test]
fn excursions_and_gaps_are_episodes() {
    let limits = ExcursionLimits::CRYO_DEFAULT;
    let trace = samples(&[
        (0.0, -180.0),
        (5.0, -145.0),
        (10.0, -130.0),
        (15.0, -170.0),
        (60.0, -170.0),
        (65.0, -110.0),
    ]);
    let episodes = detect_excursions(&trace, &limits, 300, (Some(t(0.0)), None), "s1", 1);
    assert_eq!(episodes.len(), 3, "{episodes:?}");
    assert_eq!(episodes[0].kind, ExcursionKind::Temperature);
    assert_eq!(episodes[0].temperature_c_max, Some(-130.0));
    assert!(!episodes[0].reject_limit_exceeded);
    assert_eq!(episodes[0].duration_minutes(), 10.0);
    assert_eq!(episodes[1].kind, ExcursionKind::DataGap);
    assert!(episodes[2].reject_limit_exceeded);
    assert_eq!(episodes[2].excursion.as_str(), "s1.3");
    // A logger that started late leaves the start uncovered.
    let late = detect_excursions(&trace[3..4], &limits, 300, (Some(t(0.0)), None), "s2", 1);
    assert_eq!(late[0].kind, ExcursionKind::DataGap);
}

#[test]
fn the_demo_trace_has_exactly_one_acceptable_excursion() {
    let csv = demo::excursion_logger_csv(t(0.0));
    let trace = import_csv(&csv, &generic()).unwrap();
    let episodes = detect_excursions(
        &trace.samples,
        &ExcursionLimits::CRYO_DEFAULT,
        300,
        (Some(t(0.0)), None),
        "demo",
        1,
    );
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    assert_eq!(episodes[0].kind, ExcursionKind::Temperature);
    assert!(!episodes[0].reject_limit_exceeded, "{episodes:?}");
}
