//! `cellops bench scan`: custody scans over loopback HTTP at a fixed offered rate (open loop:
//! each request has a scheduled send time), each one a durable ledger record, reporting the
//! p50/p99 latency and the rate achieved; and ISBT 128 DIN parse+validate throughput on one
//! core.

use crate::bench::BenchResult;
use crate::crash_client::ApiClient;
use crate::database;
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_domain::{Role, SiteId};
use cellops_ledger::Ledger;
use cellops_ledger::sqlite::Sqlite;
use cellops_server::provision::{NewUser, add_user};
use cellops_server::{AppState, ServerConfig};
use rand::SeedableRng;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SITE: &str = "cpc-bench";
const PASSWORD: &str = "bench password 2026";
/// Client threads sending scans (each request on its own loopback connection).
const CLIENTS: usize = 16;
/// Units registered and scanned in turn.
const UNITS: usize = 50;

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let (rate_per_s, seconds) = if quick { (100.0, 2.0) } else { (1000.0, 30.0) };
    let mut results = scan_latency(rate_per_s, seconds)?;
    results.push(din_parse_rate(if quick { 200_000 } else { 5_000_000 }));
    Ok(results)
}

/// Starts the real router on 127.0.0.1:0 in this process, on a fresh SQLite ledger.
fn start_server(dir: &std::path::Path) -> anyhow::Result<std::net::SocketAddr> {
    let url = format!("sqlite://{}", dir.join("scan.db").display());
    let ledger =
        Ledger::<Sqlite>::open(&url, Arc::new(WallClock), database::ledger_config(1000, 60))?;
    let site = SiteId::parse(SITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let fin = cellops_isbt::Fin::parse("A9990").map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = AppState::new(
        ledger,
        Arc::new(WallClock),
        rand::rngs::StdRng::from_entropy(),
        ServerConfig {
            facilities: vec![(site.clone(), fin)],
            ..ServerConfig::default()
        },
    );
    state.with_rng(|rng| {
        add_user(
            &state.ledger,
            rng,
            "bench",
            &NewUser {
                user_id: "op-bench",
                full_name: "Bench Operator",
                password: PASSWORD,
                roles: &[
                    (Role::Operator, site.clone()),
                    (Role::Collector, site.clone()),
                ],
                must_change_password: false,
            },
            false,
        )
    })?;
    // Custody scans need the custody-handling qualification (the basic GMP course).
    let trainee = cellops_training::demo::DemoTrainee {
        user: "op-bench",
        courses: &["basic-gmp-documentation"],
        failed_media_fill: &[],
        days_ago: 10,
    };
    state.with_rng(|rng| {
        cellops_server::routes::training::seed_training(
            &state.ledger,
            rng,
            cellops_domain::Clock::now(&WallClock),
            &[trainee],
        )
    })?;
    state
        .sync_blocking()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build();
        let Ok(runtime) = runtime else { return };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let _ = tx.send(listener.local_addr());
            let _ = axum::serve(listener, cellops_server::app(state)).await;
        });
    });
    Ok(rx
        .recv_timeout(Duration::from_secs(30))
        .context("the bench server did not start")??)
}

fn scan_latency(rate_per_s: f64, seconds: f64) -> anyhow::Result<Vec<BenchResult>> {
    let dir = tempfile::tempdir()?;
    let addr = start_server(dir.path())?;
    let client = ApiClient::login(addr, "op-bench", PASSWORD)?;
    let r = client.post_json("/api/dins", &json!({"site": SITE, "count": UNITS}))?;
    anyhow::ensure!(
        r.status == 200,
        "allocating DINs: {} {}",
        r.status,
        r.text()
    );
    let dins: Vec<String> = r.json()?["dins"]
        .as_array()
        .context("dins")?
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    for din in &dins {
        let r = client.post_json(
            "/api/units",
            &json!({"code": format!("{din}-S1234100"), "patient": null,
                    "expires_at": "2099-12-31T00:00:00.000000Z", "site": SITE, "location": "bench"}),
        )?;
        anyhow::ensure!(
            r.status == 200,
            "registering a unit: {} {}",
            r.status,
            r.text()
        );
    }
    let total = (rate_per_s * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate_per_s);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<Duration>> {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return Ok(mine);
                        }
                        let due = started + interval * i as u32;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let din = &dins[i % dins.len()];
                        let code = format!("{din}-S1234100");
                        let body = json!({"step": "process", "expected_unit": code,
                            "scanned": format!("={din}00=<S1234100"), "site": SITE, "location": "bench"});
                        let r = client.post_json("/api/scans", &body)?;
                        // Latency from the scheduled send time: a slow server cannot hide
                        // its queueing by delaying the next request.
                        mine.push(due.elapsed());
                        anyhow::ensure!(r.status == 200, "scan {i}: {} {}", r.status, r.text());
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    Ok(vec![
        BenchResult::absolute("scan_latency_p50", "ms", pct(0.50), false, None),
        BenchResult::absolute("scan_latency_p99", "ms", pct(0.99), false, Some(10.0)),
        BenchResult::absolute(
            "scan_rate_achieved",
            "scans/s",
            all.len() as f64 / elapsed.as_secs_f64(),
            true,
            Some(rate_per_s * 0.99),
        ),
    ])
}

/// DIN parse+validate on one core over a set of valid `=DIN+flags` strings.
fn din_parse_rate(n: usize) -> BenchResult {
    let texts: Vec<String> = (0..1000u32)
        .map(|i| {
            let fin = cellops_isbt::Fin::parse("A9990").expect("test FIN");
            let din = cellops_isbt::Din::new(fin, 26, 100_000 + i).expect("valid DIN");
            format!("{}", din.with_flags(cellops_isbt::Flags::CHECK_VALUE))
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let mut valid = 0;
    for chunk in 0..n / refs.len() {
        valid += cellops_isbt::count_valid_dins(refs.iter().copied());
        std::hint::black_box(chunk);
    }
    let rate = valid as f64 / started.elapsed().as_secs_f64();
    BenchResult::absolute(
        "din_parse_validate_per_core",
        "DINs/s",
        rate,
        true,
        Some(5_000_000.0),
    )
}
