//! `cellops bench network`: patients of all three products over a simulated year across the
//! demo network's five sites, vein to vein through the HTTP API (the real router, in
//! process) on a SQLite ledger: wall time, ledger records per second and p99 API latency.
//! Goal (issue): 500 patients over a year in < 5 minutes. Baseline, in the same process: the
//! same number of records appended to a fresh ledger of the same kind one per durable
//! append, the floor any flow that records each step durably must pay.

use crate::bench::BenchResult;
use cellops_demo::network::{Network, demo_epoch};
use cellops_ledger::sqlite::Sqlite;
use cellops_ledger::{Ledger, LedgerConfig};
use std::sync::Arc;
use std::time::Instant;

/// Full run: patients over a year (issue); quick run for CI.
const PATIENTS: usize = 500;
const PATIENTS_QUICK: usize = 9;
const YEAR_WALL_S_GOAL: f64 = 300.0;
/// The flow's records may cost at most this many bare durable appends' time each.
const EVENTS_RATIO_GOAL: f64 = 0.1;

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let patients = if quick { PATIENTS_QUICK } else { PATIENTS };
    let days = if quick { 30 } else { 365 };
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let url = format!("sqlite://{}", dir.path().join("network.db").display());
    let (summary, wall, mut latencies) = runtime.block_on(async {
        let mut net = Network::<Sqlite>::open(&url, demo_epoch(), 11).await?;
        let plan = cellops_demo::year_plan(net.now(), patients, days);
        let started = Instant::now();
        let summary = cellops_demo::run(&mut net, plan).await?;
        let wall = started.elapsed();
        net.verify_ledger().await?;
        anyhow::Ok((summary, wall, std::mem::take(&mut net.client.latencies_us)))
    })?;
    let infused: usize = summary.products.values().map(|p| p.infused).sum();
    anyhow::ensure!(
        infused == patients,
        "only {infused} of {patients} patients were infused: {summary:?}"
    );
    let records = summary.records as f64;
    let events_per_s = records / wall.as_secs_f64();
    let baseline_per_s = bare_appends(dir.path(), summary.records.min(20_000))?;
    latencies.sort_unstable();
    let p99_ms = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0) as f64
        / 1000.0;
    let scale = if quick { "" } else { "_year" };
    Ok(vec![
        BenchResult::absolute(
            &format!("network{scale}_wall"),
            "s",
            wall.as_secs_f64(),
            false,
            (!quick).then_some(YEAR_WALL_S_GOAL),
        ),
        BenchResult::against(
            &format!("network{scale}_records_per_s"),
            "records/s",
            events_per_s,
            "the same ledger kind, one record per durable append",
            baseline_per_s,
            true,
            EVENTS_RATIO_GOAL,
        ),
        BenchResult::absolute(
            &format!("network{scale}_api_p99"),
            "ms",
            p99_ms,
            false,
            None,
        ),
        BenchResult::absolute(
            &format!("network{scale}_api_calls"),
            "calls",
            latencies.len() as f64,
            false,
            None,
        ),
    ])
}

/// Records per second of `count` one-record durable appends to a fresh SQLite ledger.
fn bare_appends(dir: &std::path::Path, count: u64) -> anyhow::Result<f64> {
    let url = format!("sqlite://{}", dir.join("baseline.db").display());
    let clock = Arc::new(cellops_domain::SimClock::new(demo_epoch()));
    let ledger = Ledger::<Sqlite>::open(
        &url,
        clock,
        LedgerConfig::new(cellops_server::event_catalog()),
    )?;
    let started = Instant::now();
    for i in 0..count {
        let record = crate::bench_ledger::note(i as usize);
        ledger.append(cellops_ledger::AppendRequest {
            records: vec![record],
            idempotency_key: None,
        })?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
