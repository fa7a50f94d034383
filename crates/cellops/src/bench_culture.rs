//! `cellops bench culture`: 20 simulated culture devices in an accelerated clock, each
//! reporting 20 signals at 1 Hz of simulated time, their telemetry encoded and stored
//! durably in the SQLite ledger database through the telemetry store (the server's path,
//! `routes::batch::store_samples`).
//!
//! Figures: simulated device-days per wall-second, telemetry samples stored durably per
//! second (against raw SQLite inserts of one row per sample, same durability, same
//! transaction size), and stored bytes per sample (goal ≤ 16).
//!
//! The full run simulates 1 day per device, not the 12 days of a batch: 20 devices × 12
//! days at 20 samples/s are 415 million samples (~3 GB even at 7 B/sample), which no CI
//! machine should write; the rates do not depend on the batch length.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use cellops_device::{CultureDevice, Program, ProgramRef, SimulatedDevice};
use cellops_ledger::Ledger;
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::telemetry::with_store;
use cellops_process::recipe::model::DeviceOperation;
use cellops_process::units::SetPoint;
use cellops_server::routes::batch::store_samples;
use cellops_twin::Product;

use crate::bench::BenchResult;
use crate::database;
use crate::wall_clock::WallClock;

/// Devices running at once.
const DEVICES: usize = 20;
/// Simulated time per telemetry flush, seconds (the controller flushes every 10 minutes).
const FLUSH_S: i64 = 600;
/// Worker threads driving the devices.
const WORKERS: usize = 2;

fn device(i: usize, origin: time::OffsetDateTime) -> anyhow::Result<SimulatedDevice> {
    let product = match i % 3 {
        0 => Product::PrimeCarT,
        1 => Product::AlloCarT,
        _ => Product::BmMsc,
    };
    let mut d = SimulatedDevice::new(
        &format!("bench-dev-{i:02}"),
        product,
        i as u64 + 1,
        origin,
        1,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    d.start_program(&Program {
        reference: ProgramRef {
            batch: format!("bench-{i:02}"),
            step: "expansion".into(),
        },
        operation: DeviceOperation::Expansion,
        set_points: BTreeMap::from([
            (SetPoint::TemperatureC, 37.0),
            (SetPoint::Co2Percent, 5.0),
            (SetPoint::DoPercent, 40.0),
            (SetPoint::Ph, 7.2),
            (SetPoint::AgitationRpm, 30.0),
            (SetPoint::PerfusionMlPerDay, 500.0),
            (SetPoint::CultureVolumeMl, 500.0),
        ]),
        duration_hours: 24.0 * 30.0,
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(d)
}

/// Runs `DEVICES` devices for `seconds` of simulated time; returns (wall seconds, samples).
fn run_devices(ledger: &Ledger<Sqlite>, seconds: i64) -> anyhow::Result<(f64, u64)> {
    let origin = time::OffsetDateTime::from_unix_timestamp(1_800_000_000)?;
    let started = Instant::now();
    let samples = std::thread::scope(|scope| -> anyhow::Result<u64> {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let ledger = ledger.clone();
                scope.spawn(move || -> anyhow::Result<u64> {
                    let mut devices: Vec<(usize, SimulatedDevice)> = (0..DEVICES)
                        .filter(|i| i % WORKERS == w)
                        .map(|i| device(i, origin).map(|d| (i, d)))
                        .collect::<Result<_, _>>()?;
                    let mut stored = 0u64;
                    let mut t = 0;
                    while t < seconds {
                        t = (t + FLUSH_S).min(seconds);
                        for (i, d) in devices.iter_mut() {
                            d.advance_to(origin + time::Duration::seconds(t))
                                .map_err(|e| anyhow::anyhow!("{e}"))?;
                            let id = format!("bench-dev-{i:02}");
                            let last = ledger.read(|b| with_store(b, |s| s.last_seq(&id)))?;
                            let samples = d
                                .read_samples(last, usize::MAX)
                                .map_err(|e| anyhow::anyhow!("{e}"))?;
                            stored +=
                                store_samples(&ledger, &id, &format!("bench-{i:02}"), &samples)?;
                        }
                    }
                    Ok(stored)
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h
                .join()
                .map_err(|_| anyhow::anyhow!("a bench worker panicked"))??;
        }
        Ok(total)
    })?;
    Ok((started.elapsed().as_secs_f64(), samples))
}

/// The naive baseline: one row per sample, same durability, one transaction per flush.
fn raw_row_per_sample(path: &std::path::Path, rows: u64) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE s (device TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL,
           signal INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (device, seq)) WITHOUT ROWID;",
    )?;
    let per_tx = (FLUSH_S as u64) * 20;
    let started = Instant::now();
    let mut seq = 0u64;
    while seq < rows {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO s VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for _ in 0..per_tx.min(rows - seq) {
                seq += 1;
                stmt.execute(rusqlite::params![
                    "bench-dev-00",
                    seq as i64,
                    1_800_000_000_000i64 + (seq / 20) as i64 * 1000,
                    (seq % 20) as i64,
                    37.0 + (seq % 7) as f64 * 0.01
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let simulated_s: i64 = if quick { 1_800 } else { 86_400 };
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("culture.db").display());
    let ledger = Ledger::<Sqlite>::open(
        &url,
        Arc::new(WallClock),
        database::ledger_config(1000, 3600),
    )?;
    let (wall_s, samples) = run_devices(&ledger, simulated_s)?;
    let totals = ledger.read(|b| with_store(b, |s| s.totals()))?;
    anyhow::ensure!(
        totals.samples == samples,
        "stored {} samples, counted {samples}",
        totals.samples
    );
    let device_days = DEVICES as f64 * simulated_s as f64 / 86_400.0;
    let rate = samples as f64 / wall_s;
    let baseline_rows = samples.min(if quick { 200_000 } else { 2_000_000 });
    let baseline = raw_row_per_sample(&dir.path().join("raw.db"), baseline_rows)?;
    let bytes_per_sample = totals.bytes as f64 / totals.samples as f64;
    Ok(vec![
        BenchResult::absolute(
            "simulated_device_days_per_wall_second",
            "device-days/s",
            device_days / wall_s,
            true,
            None,
        ),
        BenchResult::against(
            "telemetry_samples_durable",
            "samples/s",
            rate,
            "raw sqlite insert, one row per sample, synchronous=FULL, one transaction per 10 simulated minutes (no simulation)",
            baseline,
            true,
            1.0,
        ),
        BenchResult::absolute(
            "telemetry_bytes_per_sample",
            "B/sample",
            bytes_per_sample,
            false,
            Some(16.0),
        ),
    ])
}
