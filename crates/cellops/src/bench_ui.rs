//! `cellops bench ui`: server render time of the web UI's pages over loopback HTTP, on a
//! ledger with a year of custody data (units registered, scanned twice, every fourth one
//! aliquoted): the unit trace page against the trace JSON API of the same unit (the UI's
//! own cost over the API it renders), the audit view of a unit's stream, and the home page
//! (which looks through every unit for those in the user's custody). Absolute goal: p99
//! below 50 ms per page.
//!
//! The goal pages, the batch view and the order timeline, are measured on the demo
//! network after a year of patients (`cellops_demo::year_plan`, every product, failed
//! batches and excursions included) driven through the API in simulated time: the CPC
//! operator opens random orders and their batches (recipe progress, telemetry, forecast);
//! the order page is also compared with the order JSON API it renders.

use crate::bench::{BenchResult, median};
use crate::crash_client::{Response, http};
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_domain::{Role, SiteId};
use cellops_ledger::Ledger;
use cellops_ledger::sqlite::Sqlite;
use cellops_server::provision::{NewUser, add_user};
use cellops_server::{AppState, ServerConfig};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SITE: &str = "cpc-bench";
const PASSWORD: &str = "bench password 2026";
/// Page render p99 goal, in milliseconds (issue #11).
const PAGE_P99_MS_GOAL: f64 = 50.0;
/// The UI page may take at most this many times the JSON API's median (ratio goal 0.5).
const TRACE_VS_JSON_GOAL: f64 = 0.5;

/// Patients of the demo year behind the batch view and order timeline (quick: a month).
const YEAR_PATIENTS: usize = 150;
const QUICK_PATIENTS: usize = 6;
/// The order page may take at most this many times the order JSON API's median.
const ORDER_VS_JSON_GOAL: f64 = 0.2;

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let mut results = custody_pages(quick)?;
    results.extend(order_and_batch_pages(quick)?);
    Ok(results)
}

/// The batch view and order timeline on a year of the demo network.
fn order_and_batch_pages(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    use cellops_demo::network::{CPC, Network, OPERATOR, demo_epoch};
    let (patients, days, requests) = if quick {
        (QUICK_PATIENTS, 30, 20)
    } else {
        (YEAR_PATIENTS, 365, 300)
    };
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("year.db").display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let addr = runtime.block_on(async {
        let mut net = Network::<Sqlite>::open(&url, demo_epoch(), 5).await?;
        let plan = cellops_demo::year_plan(net.now(), patients, days);
        cellops_demo::run(&mut net, plan).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = cellops_server::app(net.state().clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        anyhow::Ok(addr)
    })?;
    let operator = crate::crash_client::ApiClient::login(
        addr,
        OPERATOR,
        &cellops_server::provision::demo_password(OPERATOR),
    )?;
    let cookie = operator.cookie().to_string();
    let orders = get(addr, &cookie, &format!("/api/orders?site={CPC}"))?.json()?;
    let orders: Vec<(String, Option<String>)> = orders["orders"]
        .as_array()
        .context("orders")?
        .iter()
        .filter_map(|o| o["order"].as_str().map(str::to_string))
        .map(|id| {
            let batch = get(addr, &cookie, &format!("/api/orders/{id}"))
                .and_then(|r| r.json())
                .ok()
                .and_then(|o| o["batch"].as_str().map(str::to_string));
            (id, batch)
        })
        .collect();
    let batches: Vec<String> = orders.iter().filter_map(|o| o.1.clone()).collect();
    anyhow::ensure!(
        !orders.is_empty() && !batches.is_empty(),
        "the demo year made no orders or batches"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut order = || orders[rng.gen_range(0..orders.len())].0.clone();
    let order_html = timed(requests, || {
        get(addr, &cookie, &format!("/ui/orders?order={}", order()))
    })?;
    let order_json = timed(requests, || {
        get(addr, &cookie, &format!("/api/orders/{}", order()))
    })?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let batch_html = timed(requests, || {
        let b = &batches[rng.gen_range(0..batches.len())];
        get(addr, &cookie, &format!("/ui/batch?batch={b}"))
    })?;
    drop(runtime);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let scale = if quick { "" } else { "_year" };
    Ok(vec![
        BenchResult::absolute(
            &format!("ui_order_timeline{scale}_p99"),
            "ms",
            ms(p99(&order_html)),
            false,
            Some(PAGE_P99_MS_GOAL),
        ),
        BenchResult::against(
            &format!("ui_order_timeline{scale}_median_vs_json"),
            "ms",
            ms(median(&mut order_html.clone())),
            "GET /api/orders/{id}, same orders, same loopback",
            ms(median(&mut order_json.clone())),
            false,
            ORDER_VS_JSON_GOAL,
        ),
        BenchResult::absolute(
            &format!("ui_batch_view{scale}_p99"),
            "ms",
            ms(p99(&batch_html)),
            false,
            Some(PAGE_P99_MS_GOAL),
        ),
    ])
}

/// The custody pages on a year of units.
fn custody_pages(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    // A year at a CPC with ~4 products a working day: ~1000 units.
    let (units, requests) = if quick { (20, 20) } else { (1000, 400) };
    let dir = tempfile::tempdir()?;
    let addr = start_server(dir.path())?;
    let cookie = login(addr)?;
    let codes = seed(addr, &cookie, units)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut pick = || codes[rng.gen_range(0..codes.len())].clone();
    let trace_html = timed(requests, || {
        let code = pick();
        get(addr, &cookie, &format!("/ui/trace?code={code}"))
    })?;
    let trace_json = timed(requests, || {
        let code = pick();
        get(addr, &cookie, &format!("/api/units/{code}/trace"))
    })?;
    let audit = timed(requests, || {
        let code = pick().to_ascii_lowercase();
        get(addr, &cookie, &format!("/ui/audit?stream=unit/{code}"))
    })?;
    let home = timed(requests, || get(addr, &cookie, "/ui/home"))?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(vec![
        BenchResult::absolute(
            "ui_trace_page_p99",
            "ms",
            ms(p99(&trace_html)),
            false,
            Some(PAGE_P99_MS_GOAL),
        ),
        BenchResult::against(
            "ui_trace_page_median_vs_json",
            "ms",
            ms(median(&mut trace_html.clone())),
            "GET /api/units/{code}/trace, same units, same loopback",
            ms(median(&mut trace_json.clone())),
            false,
            TRACE_VS_JSON_GOAL,
        ),
        BenchResult::absolute(
            "ui_audit_stream_page_p99",
            "ms",
            ms(p99(&audit)),
            false,
            Some(PAGE_P99_MS_GOAL),
        ),
        BenchResult::absolute(
            "ui_home_page_p99",
            "ms",
            ms(p99(&home)),
            false,
            Some(PAGE_P99_MS_GOAL),
        ),
    ])
}

/// The 99th percentile (nearest rank).
fn p99(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((sorted.len() as f64) * 0.99).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `request` `count` times after a short warm-up; each must answer 200.
fn timed(
    count: usize,
    mut request: impl FnMut() -> anyhow::Result<Response>,
) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..count.min(10) {
        request()?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let r = request()?;
        samples.push(started.elapsed());
        anyhow::ensure!(r.status == 200, "HTTP {}: {}", r.status, r.text());
    }
    Ok(samples)
}

fn get(addr: SocketAddr, cookie: &str, path: &str) -> anyhow::Result<Response> {
    http(addr, "GET", path, &[("Cookie", cookie)], None).with_context(|| format!("GET {path}"))
}

fn post(addr: SocketAddr, cookie: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let r = http(
        addr,
        "POST",
        path,
        &[("Cookie", cookie)],
        Some(&body.to_string()),
    )
    .with_context(|| format!("POST {path}"))?;
    anyhow::ensure!(r.status == 200, "POST {path}: {} {}", r.status, r.text());
    r.json()
}

fn login(addr: SocketAddr) -> anyhow::Result<String> {
    let client = crate::crash_client::ApiClient::login(addr, "op-bench", PASSWORD)?;
    Ok(client.cookie().to_string())
}

/// Registers `units` units held by the bench user, scans each twice and aliquots every
/// fourth into two children; returns every unit code.
fn seed(addr: SocketAddr, cookie: &str, units: usize) -> anyhow::Result<Vec<String>> {
    let mut dins = Vec::new();
    while dins.len() < units {
        let count = (units - dins.len()).min(1000);
        let r = post(
            addr,
            cookie,
            "/api/dins",
            &json!({"site": SITE, "count": count}),
        )?;
        dins.extend(
            r["dins"]
                .as_array()
                .context("dins")?
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string)),
        );
    }
    let mut codes = Vec::new();
    for (i, din) in dins.iter().enumerate() {
        let code = format!("{din}-S1234100");
        post(
            addr,
            cookie,
            "/api/units",
            &json!({"code": code, "patient": format!("subj-{i:04}"),
                    "expires_at": "2099-12-31T00:00:00.000000Z", "site": SITE, "location": "receiving"}),
        )?;
        for (step, location) in [("process", "bsc-1"), ("store", "ln2-tank-1")] {
            post(
                addr,
                cookie,
                "/api/scans",
                &json!({"step": step, "expected_unit": code, "scanned": format!("={din}00=<S1234100"),
                        "site": SITE, "location": location}),
            )?;
        }
        codes.push(code.clone());
        if i % 4 == 0 {
            let children: Vec<String> = ["Aa", "Ab"]
                .iter()
                .map(|d| format!("{din}-S12341{d}"))
                .collect();
            post(
                addr,
                cookie,
                "/api/units/derive",
                &json!({"operation": "aliquot", "parents": [code],
                        "children": children.iter().map(|c| json!({"code": c, "expires_at": "2099-12-30T00:00:00.000000Z"})).collect::<Vec<_>>(),
                        "reagent_lots": ["LOT-1"], "site": SITE, "location": "bsc-1"}),
            )?;
            codes.extend(children);
        }
    }
    Ok(codes)
}

/// The real router on 127.0.0.1:0 in this process, on a fresh SQLite ledger.
fn start_server(dir: &std::path::Path) -> anyhow::Result<SocketAddr> {
    let url = format!("sqlite://{}", dir.join("ui.db").display());
    let ledger = Ledger::<Sqlite>::open(
        &url,
        Arc::new(WallClock),
        crate::database::ledger_config(1000, 60),
    )?;
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
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        else {
            return;
        };
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
