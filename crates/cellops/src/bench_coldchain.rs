//! `cellops bench coldchain`: import a 30-day logger trace at 1-minute intervals (43,200
//! samples, generic CSV) and find its excursions (issue 8 goal: < 50 ms), against a bare
//! parse of the same bytes in the same process (split lines and fields, RFC 3339 times with
//! the `time` crate, `f64` temperatures; no validation, no unit handling, no excursions).
//!
//! The release-readiness figure of the same issue belongs to QC and is added here by it.

use std::time::Duration;

use cellops_cold::{ExcursionLimits, GenericCsv, LoggerFormat, detect_excursions, import_csv};
use cellops_domain::Timestamp;

use crate::bench::{BenchResult, median_run};

/// Samples in the full trace: 30 days at 1 minute.
const SAMPLES: usize = 30 * 24 * 60;
/// Samples in the quick trace: 1 day.
const SAMPLES_QUICK: usize = 24 * 60;
/// Issue 8: import and evaluation of the 30-day trace under 50 ms.
const IMPORT_GOAL_MS: f64 = 50.0;
/// The import may cost at most 2× the bare parse of the same bytes.
const BARE_PARSE_RATIO_GOAL: f64 = 0.5;
/// Minute of the week at which a warm episode starts (mid-week).
const WEEK_MIDDLE: usize = 7 * 24 * 60 / 2;
/// 2026-03-01T00:00:00Z.
const START_US: i64 = 1_772_323_200_000_000;

/// A deterministic trace: vapour-phase temperatures with a slow wobble and, mid-week, a
/// 20-minute warm episode (so that the excursion search finds something).
fn trace_csv(samples: usize) -> String {
    let start = Timestamp::from_unix_us(START_US).expect("a valid instant");
    let mut csv = String::with_capacity(samples * 40);
    csv.push_str("timestamp,temperature_c\n");
    for i in 0..samples {
        let at = start.plus_us(i as i64 * 60_000_000);
        let wobble = ((i % 97) as f64 - 48.0) / 10.0;
        let week_minute = i % (7 * 24 * 60);
        let warm = if (WEEK_MIDDLE..WEEK_MIDDLE + 20).contains(&week_minute) {
            45.0
        } else {
            0.0
        };
        csv.push_str(&format!("{at},{:.1}\n", -185.0 + wobble + warm));
    }
    csv
}

fn import_and_evaluate(csv: &str) -> usize {
    let trace = import_csv(csv, &LoggerFormat::Generic(GenericCsv::default()))
        .expect("the generated trace is valid");
    detect_excursions(
        &trace.samples,
        &ExcursionLimits::CRYO_DEFAULT,
        60,
        None,
        "bench",
    )
    .len()
}

fn bare_parse(csv: &str) -> usize {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let mut n = 0;
    for line in csv.lines().skip(1) {
        let (t, v) = line.split_once(',').expect("two fields");
        let at = time::OffsetDateTime::parse(t, rfc3339).expect("RFC 3339");
        let c: f64 = v.parse().expect("a number");
        if c > -150.0 || at.unix_timestamp() < 0 {
            n += 1;
        }
    }
    n
}

/// Runs the benchmark.
pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let samples = if quick { SAMPLES_QUICK } else { SAMPLES };
    let csv = trace_csv(samples);
    let excursions = import_and_evaluate(&csv);
    anyhow::ensure!(
        quick || excursions == 4,
        "the 30-day trace should hold 4 weekly excursions, found {excursions}"
    );
    let (runs, duration) = if quick {
        (3, Duration::from_millis(200))
    } else {
        (7, Duration::from_secs(3))
    };
    let import = median_run(runs, duration, || {
        std::hint::black_box(import_and_evaluate(std::hint::black_box(&csv)));
    });
    let bare = median_run(runs, duration, || {
        std::hint::black_box(bare_parse(std::hint::black_box(&csv)));
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(vec![
        BenchResult::absolute(
            &format!("logger_import_{samples}_samples"),
            "ms",
            ms(import),
            false,
            (!quick).then_some(IMPORT_GOAL_MS),
        ),
        BenchResult::against(
            &format!("logger_import_{samples}_samples_vs_bare_parse"),
            "ms",
            ms(import),
            "split lines and fields, time::OffsetDateTime RFC 3339 parse, f64 parse; same bytes",
            ms(bare),
            false,
            BARE_PARSE_RATIO_GOAL,
        ),
    ])
}
