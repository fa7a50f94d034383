//! `cellops bench schedule`: the cellops optimiser against Google OR-Tools CP-SAT on the same
//! generated instances, same objective, same run (`tools/schedule_cpsat.py`), plus the
//! latency of a booking check on a busy network: in process (the planner alone) and end to
//! end through `POST /api/bookings` over loopback HTTP on a real server whose bookings fill
//! the network as the run goes (each booked answer is a ledger append).
//!
//! Per instance: both objectives (ratio CP-SAT / cellops, goal ≥ 0.98, i.e. within 2 %), the
//! gap in percent, both times (ratio CP-SAT time / cellops time, goal ≥ 10), the time CP-SAT
//! took to first find a plan as good as cellops's (same goal; when it never did, its whole
//! run, and the ratio is a lower bound), and how far cellops's plan is above the best proven
//! lower bound (cellops's own or CP-SAT's). CP-SAT's plan is re-checked by
//! `cellops_schedule::verify::check`, so both sides are held to the same rules and the same
//! objective. The scheduler is built optimised in dev (`[profile.dev.package.cellops-schedule]`
//! in Cargo.toml), so this measures optimised code without a release build of the binary.
//! Set-up: `python3 -m pip install ortools`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cellops_schedule::booking::{BookingRequest, Planner, Reservation};
use cellops_schedule::generate::{GenParams, generate};
use cellops_schedule::optimise::{Options, optimise};
use cellops_schedule::{Network, Slot};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bench::{BenchResult, median};

/// Booking checks timed for the latency figure.
const BOOKING_CHECKS: usize = 300;

fn script() -> PathBuf {
    let local = Path::new("tools/schedule_cpsat.py");
    if local.exists() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/schedule_cpsat.py")
}

struct CpSat {
    status: String,
    objective: i64,
    bound: f64,
    solve_s: f64,
    version: String,
    plans: Vec<Vec<Slot>>,
    /// (seconds into the solve, true cost) of each improving solution.
    trajectory: Vec<(f64, i64)>,
}

impl CpSat {
    /// Seconds into the solve when CP-SAT first held a plan costing at most `cost`, or
    /// `None` when it never did.
    fn time_to_reach(&self, cost: i64) -> Option<f64> {
        self.trajectory
            .iter()
            .find(|&&(_, c)| c <= cost)
            .map(|&(t, _)| t)
    }
}

fn run_cpsat(path: &Path, net: &Network, limit_s: f64, workers: usize) -> anyhow::Result<CpSat> {
    let out = std::process::Command::new("python3")
        .arg(script())
        .arg(path)
        .args([
            "--time-limit",
            &limit_s.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .output()
        .context(
            "running python3 tools/schedule_cpsat.py (install: python3 -m pip install ortools)",
        )?;
    if !out.status.success() {
        bail!(
            "tools/schedule_cpsat.py failed ({}): {}; install: python3 -m pip install ortools",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("CP-SAT output is not JSON")?;
    let status = v["status"].as_str().unwrap_or("?").to_string();
    let Some(objective) = v["objective"].as_i64() else {
        bail!(
            "CP-SAT found no solution on {} (status {status})",
            path.display()
        );
    };
    let mut plans = Vec::new();
    for (k, o) in v["orders"]
        .as_array()
        .context("CP-SAT output has no orders")?
        .iter()
        .enumerate()
    {
        if o["id"].as_str() != Some(net.orders[k].id.as_str()) {
            bail!("CP-SAT output order {k} is not {}", net.orders[k].id);
        }
        let slots = o["slots"]
            .as_array()
            .context("slots")?
            .iter()
            .map(|s| Slot {
                start: s[0].as_i64().unwrap_or(-1),
                end: s[1].as_i64().unwrap_or(-1),
            })
            .collect();
        plans.push(slots);
    }
    let trajectory = v["trajectory"]
        .as_array()
        .context("CP-SAT output has no trajectory")?
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap_or(f64::NAN),
                p[1].as_i64().unwrap_or(i64::MAX),
            )
        })
        .collect();
    Ok(CpSat {
        status,
        trajectory,
        objective,
        bound: v["bound"].as_f64().unwrap_or(f64::NAN),
        solve_s: v["solve_s"].as_f64().unwrap_or(f64::NAN),
        version: v["version"].as_str().unwrap_or("?").to_string(),
        plans,
    })
}

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let (sizes, limit_s): (&[(usize, u64)], f64) = if quick {
        (&[(50, 1), (100, 2)], 10.0)
    } else {
        (&[(50, 1), (150, 2), (300, 3), (500, 4)], 60.0)
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    let mut busiest: Option<(Network, Vec<Vec<Slot>>)> = None;
    for &(n, seed) in sizes {
        let name = format!("gen-n{n}-s{seed}");
        let inst = generate(
            &GenParams::year(&name, n),
            &mut ChaCha8Rng::seed_from_u64(seed),
        );
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string(&inst)?)?;
        let net = Network::new(inst)?;
        eprintln!("bench schedule: {name}: cellops …");
        let runs = if quick || n >= 300 { 3 } else { 5 };
        let mut times = Vec::new();
        let mut plan = None;
        for _ in 0..runs {
            let t0 = Instant::now();
            let (sched, stats) = optimise(&net, Options::default());
            times.push(t0.elapsed());
            plan = Some((sched.slots, stats.cost, stats.lower_bound));
        }
        let ours_s = median(&mut times).as_secs_f64();
        let (ours_plans, ours, ours_bound) = plan.expect("at least one run");
        let checked =
            cellops_schedule::verify::check(&net, &ours_plans).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            checked == ours,
            "cellops objective {ours} but the plan costs {checked}"
        );
        eprintln!("bench schedule: {name}: CP-SAT ({limit_s} s, {workers} workers) …");
        let cp = run_cpsat(&path, &net, limit_s, workers)?;
        let cp_checked = cellops_schedule::verify::check(&net, &cp.plans)
            .map_err(|e| anyhow::anyhow!("CP-SAT's plan for {name} breaks a rule: {e}"))?;
        // CP-SAT's cost variables are bounded from below only, so a plan that is not proven
        // optimal may report slack; its plan's true cost under the same rules is what counts.
        anyhow::ensure!(
            cp_checked <= cp.objective,
            "CP-SAT reports objective {} but its plan costs {cp_checked} under the cellops rules",
            cp.objective
        );
        let cp = CpSat {
            objective: cp_checked,
            ..cp
        };
        let baseline = format!(
            "OR-Tools CP-SAT {} ({limit_s} s limit, {workers} workers, status {}, bound {:.0}), same instance and objective",
            cp.version, cp.status, cp.bound
        );
        results.push(BenchResult::against(
            &format!("schedule_{name}_objective"),
            "weighted days",
            ours as f64,
            &baseline,
            cp.objective as f64,
            false,
            0.98,
        ));
        results.push(BenchResult::absolute(
            &format!("schedule_{name}_gap"),
            "% above CP-SAT",
            (ours - cp.objective) as f64 / cp.objective as f64 * 100.0,
            false,
            Some(2.0),
        ));
        results.push(BenchResult::against(
            &format!("schedule_{name}_time"),
            "s",
            ours_s,
            &format!("CP-SAT solve time, {}", baseline),
            cp.solve_s,
            false,
            10.0,
        ));
        let (to_match, what) = match cp.time_to_reach(ours) {
            Some(t) => (
                t,
                format!("time CP-SAT took to first find a plan as good as cellops's ({ours})"),
            ),
            None => (
                cp.solve_s,
                format!(
                    "CP-SAT found no plan as good as cellops's ({ours}) in {limit_s} s: its whole run (the ratio is a lower bound)"
                ),
            ),
        };
        results.push(BenchResult::against(
            &format!("schedule_{name}_time_to_match"),
            "s",
            ours_s,
            &format!("{what}, {baseline}"),
            to_match,
            false,
            10.0,
        ));
        // CP-SAT's bound is a float that may be fractional; the objective is whole days.
        let bound = (ours_bound as f64).max(cp.bound.ceil());
        results.push(BenchResult::absolute(
            &format!("schedule_{name}_gap_to_bound"),
            "% above best lower bound",
            (ours as f64 - bound) / bound * 100.0,
            false,
            None,
        ));
        busiest = Some((net, ours_plans));
    }
    let (net, plans) = busiest.expect("at least one instance");
    results.push(booking_latency(&net, &plans)?);
    results.push(booking_http_latency(quick)?);
    Ok(results)
}

/// Requests timed through `POST /api/bookings` (quick: fewer).
const BOOKING_REQUESTS_HTTP: usize = 400;
const BOOKING_REQUESTS_HTTP_QUICK: usize = 60;
const HTTP_SITES: [(&str, &str); 5] = [
    ("cpc-bench", "A9990"),
    ("h01-bench", "A9991"),
    ("h02-bench", "A9992"),
    ("h03-bench", "A9993"),
    ("h04-bench", "A9994"),
];
const HTTP_NURSE: &str = "nurse-bench";
const HTTP_PASSWORD: &str = "bench password 2026";

/// p99 of `POST /api/bookings` answered by the real server over loopback, from an empty
/// network until it is busy: random product, hospital and collection date in the next 300
/// days; a feasible request books (201, one ledger append), an infeasible one answers 409
/// with the binding constraint and alternatives. Goal (issue #12): 100 ms.
fn booking_http_latency(quick: bool) -> anyhow::Result<BenchResult> {
    use crate::crash_client::http;
    use cellops_domain::{Role, SiteId};
    use cellops_ledger::Ledger;
    use cellops_ledger::sqlite::Sqlite;
    use cellops_server::provision::{NewUser, add_user};
    use cellops_server::{AppState, ServerConfig};
    use serde_json::json;
    use std::sync::Arc;

    let requests = if quick {
        BOOKING_REQUESTS_HTTP_QUICK
    } else {
        BOOKING_REQUESTS_HTTP
    };
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bookings.db").display());
    let clock = Arc::new(crate::wall_clock::WallClock);
    let ledger = Ledger::<Sqlite>::open(
        &url,
        clock.clone(),
        crate::database::ledger_config(1000, 60),
    )?;
    let mut facilities = Vec::new();
    for (site, fin) in HTTP_SITES {
        facilities.push((
            SiteId::parse(site).map_err(|e| anyhow::anyhow!("{e}"))?,
            cellops_isbt::Fin::parse(fin).map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
    }
    let hospitals: Vec<SiteId> = facilities.iter().skip(1).map(|f| f.0.clone()).collect();
    let state = AppState::new(
        ledger,
        clock,
        rand::rngs::StdRng::from_entropy(),
        ServerConfig {
            facilities,
            ..ServerConfig::default()
        },
    );
    let roles: Vec<(Role, SiteId)> = hospitals.iter().map(|h| (Role::Nurse, h.clone())).collect();
    state.with_rng(|rng| {
        add_user(
            &state.ledger,
            rng,
            "bench",
            &NewUser {
                user_id: HTTP_NURSE,
                full_name: "Bench Nurse",
                password: HTTP_PASSWORD,
                roles: &roles,
                must_change_password: false,
            },
            false,
        )
    })?;
    state
        .sync_blocking()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = cellops_server::app(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        anyhow::Ok(addr)
    })?;
    let nurse = crate::crash_client::ApiClient::login(addr, HTTP_NURSE, HTTP_PASSWORD)?;
    let cookie = nurse.cookie();
    let products = ["prime-car-t", "allo-car-t", "bm-msc"];
    let now = cellops_domain::Clock::now(&crate::wall_clock::WallClock);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut samples = Vec::with_capacity(requests);
    let (mut booked, mut refused) = (0, 0);
    for _ in 0..requests {
        let day = now.plus_us(rng.gen_range(1..300) * 86_400_000_000).date();
        let body = json!({
            "product": products[rng.gen_range(0..products.len())],
            "hospital": hospitals[rng.gen_range(0..hospitals.len())].as_str(),
            "collection_date": day,
        })
        .to_string();
        let t0 = Instant::now();
        let r = http(
            addr,
            "POST",
            "/api/bookings",
            &[("Cookie", cookie)],
            Some(&body),
        )?;
        samples.push(t0.elapsed());
        match r.status {
            201 => booked += 1,
            409 => refused += 1,
            s => bail!("POST /api/bookings answered {s}: {}", r.text()),
        }
    }
    drop(runtime);
    anyhow::ensure!(
        booked > 0 && refused > 0,
        "the run should both book and refuse ({booked} booked, {refused} refused)"
    );
    eprintln!("bench schedule: POST /api/bookings: {booked} booked, {refused} refused");
    samples.sort();
    let p99 = samples[(samples.len() * 99).div_ceil(100) - 1].as_secs_f64() * 1000.0;
    Ok(BenchResult::absolute(
        "schedule_booking_http_p99",
        "ms",
        p99,
        false,
        Some(100.0),
    ))
}

/// p99 of a booking check (feasible or not, with alternatives) on a network whose every
/// order is booked.
fn booking_latency(net: &Network, plans: &[Vec<Slot>]) -> anyhow::Result<BenchResult> {
    let mut planner = Planner::from_instance(net.instance().clone())?;
    for (o, slots) in plans.iter().enumerate() {
        let x = &net.orders[o];
        planner.reserve(&Reservation {
            id: x.id.clone(),
            product: net.product_id(x.product).to_string(),
            hospital: net.site_id(x.hospital).to_string(),
            weight: x.weight,
            earliest_day: x.earliest,
            due_day: x.due,
            latest_day: x.latest,
            slots: slots.clone(),
        });
    }
    let inst = net.instance();
    let hospitals: Vec<&str> = inst
        .sites
        .iter()
        .filter(|s| s.kind == cellops_schedule::instance::SiteKind::Hospital)
        .map(|s| s.id.as_str())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut samples: Vec<Duration> = Vec::with_capacity(BOOKING_CHECKS);
    let mut feasible = 0;
    for _ in 0..BOOKING_CHECKS {
        let product = &inst.products[rng.gen_range(0..inst.products.len())].id;
        let hospital = hospitals[rng.gen_range(0..hospitals.len())];
        let today = rng.gen_range(0..300);
        let request = BookingRequest {
            product: product.clone(),
            hospital: hospital.to_string(),
            collection_date: net.date_of(today + rng.gen_range(0..30)),
            earliest_date: None,
            latest_infusion: None,
            due_date: None,
            weight: None,
        };
        let t0 = Instant::now();
        let answer = planner.check(&request, today)?;
        samples.push(t0.elapsed());
        feasible += usize::from(matches!(
            answer,
            cellops_schedule::booking::Answer::Feasible(_)
        ));
    }
    samples.sort();
    let p99 = samples[samples.len() * 99 / 100].as_secs_f64() * 1000.0;
    eprintln!("bench schedule: booking checks: {feasible}/{BOOKING_CHECKS} feasible as asked");
    Ok(BenchResult::absolute(
        &format!("schedule_booking_check_p99_{}", inst.name),
        "ms",
        p99,
        false,
        Some(100.0),
    ))
}
