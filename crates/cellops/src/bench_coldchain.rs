//! `cellops bench coldchain`: import a 30-day logger trace at 1-minute intervals (43,200
//! samples, generic CSV) and find its excursions (issue 8 goal: < 50 ms), against a bare
//! parse of the same bytes in the same process that produces the same samples: find the two
//! columns in the header, split lines and fields, RFC 3339 times with the `time` crate,
//! `f64` temperatures, collected into a vector of (µs, °C); no trimming, no validation, no
//! unit handling, no order or duplicate checks, no excursions.
//!
//! Also, without a goal: `logger_upload_records_43200_samples`, what the upload endpoint
//! builds before it appends (import, decision with excursions and deviations, each record's
//! JSON payload), to keep the cost of recording every sample in view.
//!
//! The release-readiness figure of the same issue belongs to QC (`cellops bench release`).

use std::time::{Duration, Instant};

use cellops_cold::{
    ColdState, ExcursionLimits, GenericCsv, LoggerFormat, LoggerId, PackShipment, ShipmentId,
    ShipperId, decide_charge_shipper, decide_dispatch, decide_logger_upload, decide_pack,
    decide_qualify_shipper, decide_register_logger, detect_excursions, import_csv,
};
use cellops_domain::{SiteId, Timestamp, UserId};

use crate::bench::{BenchResult, median, median_run};

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
        (None, None),
        "bench",
        1,
    )
    .len()
}

/// The bare parse: the same samples out of the same bytes with nothing checked.
fn bare_parse(csv: &str) -> Vec<(i64, f64)> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let t_ix = header.iter().position(|h| *h == "timestamp").expect("time");
    let v_ix = header
        .iter()
        .position(|h| *h == "temperature_c")
        .expect("value");
    let mut samples = Vec::new();
    for line in lines {
        let mut fields = line.split(',');
        let (mut t, mut v) = ("", "");
        for i in 0..=t_ix.max(v_ix) {
            let f = fields.next().expect("enough fields");
            if i == t_ix {
                t = f;
            }
            if i == v_ix {
                v = f;
            }
        }
        let at = time::OffsetDateTime::parse(t, rfc3339).expect("RFC 3339");
        let us = (at.unix_timestamp_nanos() / 1_000) as i64;
        samples.push((us, v.parse().expect("a number")));
    }
    samples
}

/// A cold-chain state with one dispatched shipment `bench` whose 1-minute logger covers the
/// trace (what a logger upload is decided on).
fn dispatched_shipment() -> anyhow::Result<ColdState> {
    let mut state = ColdState::default();
    let at = Timestamp::from_unix_us(START_US)?;
    let day = |d: i64| at.plus_us(d * 86_400_000_000);
    let (site, by) = (SiteId::parse("cpc")?, UserId::parse("bench")?);
    let shipper = ShipperId::parse("ds-bench")?;
    let logger = LoggerId::parse("lg-bench")?;
    let mut seq = 0;
    let mut apply = |state: &mut ColdState, e: cellops_cold::ColdEvent| {
        seq += 1;
        state.apply(&e, seq);
    };
    let e = decide_qualify_shipper(
        &shipper,
        "CX100",
        "QR-1",
        day(365),
        744.0,
        &site,
        &by,
        day(-1),
    )?;
    apply(&mut state, e);
    let e = decide_charge_shipper(&state, &shipper, &by, day(-1))?;
    apply(&mut state, e);
    let e = decide_register_logger(&logger, "CAL-1", day(365), 60, &by, day(-1))?;
    apply(&mut state, e);
    let e = decide_pack(
        &state,
        &PackShipment {
            shipment: ShipmentId::parse("bench")?,
            units: vec![cellops_custody::UnitCode::parse("A999926000001-S1234100")?],
            shipper,
            logger,
            from_site: site.clone(),
            to_site: site,
            transit_hours: 24.0 * 28.0,
            margin_hours: 24.0,
            limits: ExcursionLimits::CRYO_DEFAULT,
            by: by.clone(),
            at,
        },
    )?;
    apply(&mut state, e);
    let e = decide_dispatch(&state, &ShipmentId::parse("bench")?, &by, at)?;
    apply(&mut state, e);
    Ok(state)
}

/// What the upload endpoint builds before it appends: the import, the decision (excursions
/// and deviations) and each record's JSON payload.
fn upload_records(state: &ColdState, csv: &str) -> usize {
    let trace = import_csv(csv, &LoggerFormat::Generic(GenericCsv::default()))
        .expect("the generated trace is valid");
    let events = decide_logger_upload(
        state,
        &ShipmentId::parse("bench").expect("valid id"),
        &trace,
        "sha",
        "generic",
        &UserId::parse("bench").expect("valid id"),
        Timestamp::from_unix_us(START_US + 31 * 86_400_000_000).expect("a valid instant"),
    )
    .expect("the upload is accepted");
    events
        .iter()
        .map(|e| e.to_json_value().to_string().len())
        .sum()
}

/// Times the import and the bare parse alternately after one warm-up each, until at least
/// `runs_min` pairs and `duration_min` have passed; the median of each.
fn interleaved_medians(runs_min: usize, duration_min: Duration, csv: &str) -> (Duration, Duration) {
    std::hint::black_box(import_and_evaluate(csv));
    std::hint::black_box(bare_parse(csv));
    let started = Instant::now();
    let (mut import, mut bare) = (Vec::new(), Vec::new());
    while import.len() < runs_min || started.elapsed() < duration_min {
        let t0 = Instant::now();
        std::hint::black_box(import_and_evaluate(std::hint::black_box(csv)));
        import.push(t0.elapsed());
        let t0 = Instant::now();
        std::hint::black_box(bare_parse(std::hint::black_box(csv)));
        bare.push(t0.elapsed());
        if import.len() >= 10_000 {
            break;
        }
    }
    (median(&mut import), median(&mut bare))
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
    // Interleaved (one import, one bare parse, repeated), so that both sides see the same
    // load on a shared machine; medians of each.
    let (import, bare) = interleaved_medians(runs, duration, &csv);
    let state = dispatched_shipment()?;
    let upload = median_run(runs, duration, || {
        std::hint::black_box(upload_records(&state, std::hint::black_box(&csv)));
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
            "header columns, split lines and fields, time::OffsetDateTime RFC 3339 parse, f64 parse, Vec of (us, C); same bytes",
            ms(bare),
            false,
            BARE_PARSE_RATIO_GOAL,
        ),
        BenchResult::absolute(
            &format!("logger_upload_records_{samples}_samples"),
            "ms",
            ms(upload),
            false,
            None,
        ),
    ])
}
