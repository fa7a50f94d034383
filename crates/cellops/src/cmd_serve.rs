//! `cellops serve`: the HTTP API on the chosen database.

use crate::database;
use crate::wall_clock::WallClock;
use anyhow::Context;
use cellops_ledger::{Backend, Ledger};
use cellops_server::provision::{DEMO_USERS, demo_password, seed_demo};
use cellops_server::{AppState, ServerConfig};
use rand::SeedableRng;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// sqlite://PATH or postgres://USER@HOST:PORT/DB (default: the embedded SQLite file).
    #[arg(long)]
    pub database: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Load the demo network into an empty database: its people (printed passwords) and
    /// their training, and the history of its patients of all three products, vein to vein,
    /// run first in a simulated clock ending now.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: simulated days of patient history, starting this many days ago (0: none).
    #[arg(long, default_value_t = 120)]
    pub demo_history_days: u64,
    /// With --demo: wall-clock seconds per simulated day while the demo patients run live
    /// beside the server (10: one culture day per 10 s; the clock then catches up with now
    /// and runs on as the wall clock). 0: run the whole history before serving.
    #[arg(long, default_value_t = 10.0)]
    pub demo_day_seconds: f64,
    /// Sign a checkpoint after this many records…
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_every_records: u64,
    /// …or this many seconds after the last one.
    #[arg(long, default_value_t = 60)]
    pub checkpoint_every_seconds: u64,
    /// Mark the session cookie Secure (when served behind TLS).
    #[arg(long)]
    pub secure_cookies: bool,
    /// A site's ISBT 128 Facility Identification Number, SITE=FIN (repeatable), e.g.
    /// --facility cpc-kyoto=G1234. With --demo and none given, the demo sites use the
    /// ICCBBA test facilities A9990–A9992.
    #[arg(long = "facility")]
    pub facilities: Vec<String>,
    /// The qualification matrix (TOML): which qualification each GMP action requires, per
    /// site. Default: the shipped demo matrix (crates/cellops-training/config).
    #[arg(long)]
    pub qualification_matrix: Option<std::path::PathBuf>,
    /// Ingest device telemetry from this MQTT broker, HOST:PORT (e.g. 127.0.0.1:1883), into
    /// the telemetry store: one subscription per configured site (docs/devices.md).
    #[arg(long)]
    pub mqtt: Option<String>,
    /// The real culture devices (TOML, docs/devices.md "Device configuration"): one
    /// controller per device (lease, status, telemetry, deviations, device steps).
    #[arg(long)]
    pub devices: Option<std::path::PathBuf>,
}

/// The device configuration from `path` (none: no real devices).
fn device_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<cellops_server::routes::batch::devices::DevicesConfig>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--devices: cannot read {}", path.display()))?;
    cellops_server::routes::batch::devices::DevicesConfig::from_toml(
        &text,
        &path.display().to_string(),
    )
    .map(Some)
    .map_err(|e| anyhow::anyhow!("--devices: the device configuration is invalid:\n{e}"))
}

/// This process in the device leases: host, process id and start time.
fn lease_holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    use cellops_domain::Clock;
    format!(
        "cellops-serve@{host}:{}:{}",
        std::process::id(),
        WallClock.now().unix_us()
    )
}

fn parse_facility(text: &str) -> anyhow::Result<(cellops_domain::SiteId, cellops_isbt::Fin)> {
    let (site, fin) = text.split_once('=').ok_or_else(|| {
        anyhow::anyhow!("--facility {text:?}: write SITE=FIN, e.g. cpc-kyoto=G1234")
    })?;
    let site =
        cellops_domain::SiteId::parse(site).map_err(|e| anyhow::anyhow!("--facility: {e}"))?;
    let fin =
        cellops_isbt::Fin::parse(fin).map_err(|e| anyhow::anyhow!("--facility {text:?}: {e}"))?;
    Ok((site, fin))
}

/// The site qualification matrix from `path`, or the shipped demo matrix.
fn qualification_matrix(
    path: Option<&std::path::Path>,
) -> anyhow::Result<cellops_training::QualificationMatrix> {
    let Some(path) = path else {
        return Ok(cellops_training::QualificationMatrix::demo());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--qualification-matrix: cannot read {}", path.display()))?;
    cellops_training::QualificationMatrix::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("--qualification-matrix {}: {e}", path.display()))
}

pub fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    // Errors are logged with their correlation id (the 5xx body cites it): to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let url = database::url(args.database.clone());
    crate::with_backend!(&url, B => serve::<B>(&url, &args))
}

/// Fewest days of demo history: the demo patients' flows take about 85 simulated days.
const DEMO_HISTORY_DAYS_MIN: u64 = 100;

/// The server's clock: the wall clock, except while `serve --demo` runs the demo network's
/// history: before serving in simulated time, or live beside the server in a paced clock.
/// Either ends before the wall clock's now, so time never runs backwards in the ledger.
#[derive(Default)]
struct ServeClock {
    demo: std::sync::OnceLock<DemoTime>,
}

enum DemoTime {
    /// The history runs before serving; afterwards the wall clock.
    Replay {
        simulated: Arc<cellops_domain::SimClock>,
        replaying: std::sync::atomic::AtomicBool,
    },
    /// The history runs live: simulated days at the chosen pace until it catches up.
    Live(Arc<cellops_domain::PacedClock>),
}

impl cellops_domain::Clock for ServeClock {
    fn now(&self) -> cellops_domain::Timestamp {
        match self.demo.get() {
            Some(DemoTime::Replay {
                simulated,
                replaying,
            }) if replaying.load(std::sync::atomic::Ordering::SeqCst) => simulated.now(),
            Some(DemoTime::Live(paced)) => paced.now(),
            _ => WallClock.now(),
        }
    }

    fn pace(&self) -> f64 {
        match self.demo.get() {
            Some(DemoTime::Live(paced)) => paced.pace(),
            _ => 1.0,
        }
    }
}

fn serve<B: Backend>(url: &str, args: &ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    use cellops_domain::Clock;
    if args.demo_history_days != 0 && args.demo_history_days < DEMO_HISTORY_DAYS_MIN {
        anyhow::bail!(
            "--demo-history-days {}: the demo patients need at least {DEMO_HISTORY_DAYS_MIN} days (or 0 for none)",
            args.demo_history_days
        );
    }
    if !(args.demo_day_seconds.is_finite() && args.demo_day_seconds >= 0.0) {
        anyhow::bail!(
            "--demo-day-seconds {}: give wall-clock seconds per simulated day, e.g. 10 (or 0 to run the history before serving)",
            args.demo_day_seconds
        );
    }
    let devices = device_config(args.devices.as_deref())?;
    let history_us = i64::try_from(args.demo_history_days)? * 86_400_000_000;
    let clock = Arc::new(ServeClock::default());
    let ledger = Ledger::<B>::open(
        url,
        clock.clone(),
        database::ledger_config(args.checkpoint_every_records, args.checkpoint_every_seconds),
    )?;
    let facilities = if args.facilities.is_empty() && args.demo {
        cellops_server::provision::DEMO_FACILITIES
            .iter()
            .map(|(s, f)| parse_facility(&format!("{s}={f}")))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        args.facilities
            .iter()
            .map(|f| parse_facility(f))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let rng = rand::rngs::StdRng::from_entropy();
    // A new demo database replays the network's history first, in simulated time.
    let history = args.demo && args.demo_history_days > 0 && ledger.size() == 0;
    let start = WallClock.now().plus_us(-history_us);
    let (replay, live) = match history {
        false => (None, None),
        true if args.demo_day_seconds == 0.0 => {
            let simulated = Arc::new(cellops_domain::SimClock::new(start));
            let demo = DemoTime::Replay {
                simulated: simulated.clone(),
                replaying: std::sync::atomic::AtomicBool::new(true),
            };
            let _ = clock.demo.set(demo);
            (Some(simulated), None)
        }
        true => {
            let paced = Arc::new(cellops_domain::PacedClock::new(
                Arc::new(WallClock),
                start,
                86_400.0 / args.demo_day_seconds,
            ));
            // Held until the demo driver lets it run: the people and their training are
            // loaded at the history's start.
            paced.hold_at(start);
            let _ = clock.demo.set(DemoTime::Live(paced.clone()));
            (None, Some(paced))
        }
    };
    let state = AppState::new(
        ledger,
        clock.clone(),
        rng,
        ServerConfig {
            secure_cookies: args.secure_cookies,
            facilities,
            qualification_matrix: qualification_matrix(args.qualification_matrix.as_deref())?,
        },
    );
    state
        .sync_blocking()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if args.demo {
        let any_user = state
            .accounts
            .lock()
            .expect("accounts lock")
            .users()
            .next()
            .is_some();
        let created = state
            .with_rng(|rng| seed_demo(&state.ledger, rng, any_user))
            .context("loading the demo data")?;
        let training = state
            .with_rng(|rng| {
                cellops_server::routes::training::seed_demo_training(
                    &state.ledger,
                    rng,
                    state.clock.now(),
                )
            })
            .context("loading the demo training records")?;
        if training > 0 {
            println!(
                "demo training history loaded ({training} records): everyone is qualified for their role except op-suzuki, who failed the aseptic media fill"
            );
        }
        state
            .sync_blocking()
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        if created > 0 {
            println!("demo data loaded: {created} users; sign in with any of:");
            for (id, _, roles) in DEMO_USERS {
                println!(
                    "  {id:<14} password {:<24} {}",
                    demo_password(id),
                    roles.join(", ")
                );
            }
        } else {
            println!("demo: the database already has users; nothing loaded");
        }
    }
    // Running simulated batches get their devices back, rebuilt from the ledger.
    let restored = cellops_server::routes::batch::restore::restore_simulated_devices(&state)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !restored.batches.is_empty() {
        println!(
            "simulated devices rebuilt from the ledger for batch(es) {}",
            restored.batches.join(", ")
        );
    }
    for (batch, why) in &restored.failed {
        eprintln!("the simulated device of batch {batch} cannot be rebuilt: {why}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if let Some(simulated) = replay {
        let started = std::time::Instant::now();
        let history = runtime.block_on(run_demo(
            state.clone(),
            cellops_demo::network::Pace::Simulated(simulated.clone()),
        ));
        anyhow::ensure!(
            simulated.now() <= WallClock.now(),
            "the demo history ran past now: give a larger --demo-history-days"
        );
        if let Some(DemoTime::Replay { replaying, .. }) = clock.demo.get() {
            replaying.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        match history {
            Ok(summary) => {
                println!(
                    "demo history: {} simulated days of patients in {:.0} s:",
                    args.demo_history_days,
                    started.elapsed().as_secs_f64()
                );
                print!("{}", summary.to_text());
            }
            // The server still starts: the people and what was recorded are there.
            Err(e) => eprintln!("demo history stopped: {e:#}"),
        }
    }
    let ledger = state.ledger.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "cellops listening on http://{addr} (database {}, {} records)",
            cellops_ledger::store::redact_url(url),
            state.ledger.size()
        );
        // Device telemetry from an MQTT broker (opt-in), ingested while serving.
        let _mqtt =
            cellops_server::routes::batch::ingest::serve_mqtt(&state, args.mqtt.as_deref())?;
        // Real culture devices (opt-in): one controller loop per configured device.
        let _devices = match &devices {
            None => None,
            Some(config) => {
                use cellops_server::routes::batch::devices::{LeaseBackend, start_controllers};
                let controllers = start_controllers(
                    &state,
                    config,
                    LeaseBackend::for_database(url),
                    &lease_holder(),
                    |entry| {
                        cellops_opcua::OpcUaDevice::connect(
                            entry.endpoint(),
                            cellops_opcua::ClientOptions::default(),
                        )
                    },
                )?;
                for d in &config.devices {
                    println!(
                        "device {} at site {}: controller for {} (lease {} s)",
                        d.id,
                        d.site,
                        d.endpoint(),
                        d.lease_ttl.whole_seconds()
                    );
                }
                Some(controllers)
            }
        };
        // Webhook notifications: deliver the outbox while serving (docs/notifications.md).
        if let Some(paced) = live {
            let catch_up_min = args.demo_history_days as f64 * args.demo_day_seconds / 60.0;
            println!(
                "demo: the network's patients run live, one simulated day per {} s, from {} days ago; the clock catches up with now in {catch_up_min:.0} min",
                args.demo_day_seconds, args.demo_history_days
            );
            let demo_state = state.clone();
            let days = args.demo_history_days;
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                match run_demo(demo_state, cellops_demo::network::Pace::Live(paced)).await {
                    Ok(summary) => {
                        println!(
                            "demo network done: its patients ran in {:.0} s (of {days} simulated days of history):",
                            started.elapsed().as_secs_f64()
                        );
                        print!("{}", summary.to_text());
                    }
                    Err(e) => eprintln!("demo network stopped: {e:#}"),
                }
            });
        }
        cellops_server::routes::notify::spawn_dispatcher(
            state.clone(),
            cellops_server::routes::notify::RetryPolicy::DEFAULT,
            std::time::Duration::from_secs(1),
        )
        .map_err(|e| anyhow::anyhow!("webhook dispatcher: {e}"))?;
        axum::serve(listener, cellops_server::app(state))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving HTTP")?;
        Ok::<_, anyhow::Error>(())
    })?;
    // A clean stop leaves every record covered by a signed checkpoint, including those
    // other processes appended since this one last looked.
    ledger.catch_up()?;
    if let Some(cp) = ledger.checkpoint_now()? {
        println!("signed checkpoint at {} records", cp.size);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs the demo network's patients on the server's state; the clock runs on freely after.
async fn run_demo<B: Backend>(
    state: AppState<B>,
    pace: cellops_demo::network::Pace,
) -> anyhow::Result<cellops_demo::Summary> {
    let mut net = cellops_demo::network::Network::attach(state, pace.clone()).await;
    let summary = match &mut net {
        Ok(net) => {
            let plan = cellops_demo::demo_plan(net.now());
            cellops_demo::run(net, plan).await
        }
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    if let cellops_demo::network::Pace::Live(paced) = pace {
        paced.release();
    }
    summary
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
