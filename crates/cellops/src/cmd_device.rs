//! `cellops device …`: culture devices. `serve-opcua` runs a simulated device (the twin in
//! accelerated time) and exposes it as an OPC UA server (node model: docs/devices.md).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use cellops_device::SimulatedDevice;
use cellops_domain::Clock;
use cellops_opcua::{DeviceServer, ServerOptions};
use cellops_twin::Product;
use time::OffsetDateTime;

use crate::wall_clock::WallClock;

/// Fastest simulated time, simulated seconds per wall second (a 12-day culture in ~10 s).
const SPEED_MAX: f64 = 100_000.0;
/// How often the simulated device is advanced to the accelerated clock.
const TICK: Duration = Duration::from_millis(200);

#[derive(clap::Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(clap::Subcommand)]
enum DeviceCommand {
    /// Run a simulated culture device and serve it over OPC UA (LADS-style node model).
    ServeOpcua(ServeOpcuaArgs),
    /// Inject a twin fault into the simulated device of a batch on a running server
    /// (`POST /api/batches/{id}/faults` with an API token); the fault is recorded in the
    /// batch's ledger stream and the device reacts as the twin says.
    Fault(FaultArgs),
}

/// The faults the simulated device knows (the twin's fault model).
pub const FAULTS: &[&str] = &[
    "contamination",
    "sensor_drift",
    "sensor_stuck",
    "temperature_loss",
    "power_loss",
];

#[derive(clap::Args)]
struct FaultArgs {
    /// The batch whose simulated device gets the fault.
    #[arg(long)]
    batch: String,
    /// contamination, sensor_drift, sensor_stuck, temperature_loss or power_loss.
    #[arg(long)]
    fault: String,
    /// How long the fault lasts, simulated hours (default: until the batch ends).
    #[arg(long)]
    duration_h: Option<f64>,
    /// temperature_loss, power_loss: the ambient temperature the culture drifts to, °C.
    #[arg(long)]
    ambient_c: Option<f64>,
    /// contamination: bacteria per mL introduced.
    #[arg(long)]
    bacteria_per_ml: Option<f64>,
    /// sensor_drift, sensor_stuck: the sensor (e.g. ph, dissolved_oxygen, temperature).
    #[arg(long)]
    sensor: Option<String>,
    /// sensor_drift: drift per hour, in the sensor's unit.
    #[arg(long)]
    per_h: Option<f64>,
    /// The server, host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: String,
    /// An API token of an operator, site admin or trainer at the batch's site
    /// (`POST /api/auth/tokens`); or set CELLOPS_TOKEN.
    /// (A token may begin with "-": it is read as a value, not an option.)
    #[arg(long, allow_hyphen_values = true)]
    token: Option<String>,
}

#[derive(clap::Args)]
struct ServeOpcuaArgs {
    /// Device id (asset number) shown as Identification/AssetId.
    #[arg(long, default_value = "sim-1")]
    device_id: String,
    /// Culture in the device: prime-car-t, allo-car-t or bm-msc.
    #[arg(long, default_value = "prime-car-t")]
    product: String,
    /// Seed for lot variability and sensor noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Host to listen on and advertise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// TCP port (4840 is OPC UA's registered port; 0 picks a free one).
    #[arg(long, default_value_t = 4840)]
    port: u16,
    /// Simulated seconds per wall second (1 = real time).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Seconds of simulated time between samples.
    #[arg(long, default_value_t = 60)]
    sample_period_s: u32,
    /// Put a running program into the safe state after this many wall seconds without
    /// client contact (0: no watchdog).
    #[arg(long, default_value_t = 30)]
    watchdog_seconds: u64,
    /// Directory for the OPC UA stack's PKI files (default: a temporary directory).
    #[arg(long)]
    pki_dir: Option<std::path::PathBuf>,
}

pub fn run(args: DeviceArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        DeviceCommand::ServeOpcua(a) => serve_opcua(a),
        DeviceCommand::Fault(a) => inject_fault(a),
    }
}

/// The request body of `POST /api/batches/{id}/faults`, checked locally first so that a
/// mistyped fault or a missing parameter is reported without a round trip.
fn fault_body(args: &FaultArgs) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(
        FAULTS.contains(&args.fault.as_str()),
        "--fault {:?} is not a fault of the simulated device: use one of {}",
        args.fault,
        FAULTS.join(", ")
    );
    if args.fault.starts_with("sensor_") {
        anyhow::ensure!(
            args.sensor.is_some(),
            "--fault {} needs --sensor (the sensor it affects)",
            args.fault
        );
    }
    if let Some(h) = args.duration_h {
        anyhow::ensure!(
            h.is_finite() && h > 0.0,
            "--duration-h {h}: give a positive number of hours"
        );
    }
    anyhow::ensure!(
        !args.batch.is_empty()
            && args
                .batch
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "--batch {:?}: give the batch id (letters, digits, '-', '_', '.')",
        args.batch
    );
    Ok(serde_json::json!({
        "fault": args.fault,
        "duration_h": args.duration_h,
        "ambient_c": args.ambient_c,
        "bacteria_per_ml": args.bacteria_per_ml,
        "sensor": args.sensor,
        "per_h": args.per_h,
    }))
}

fn inject_fault(args: FaultArgs) -> anyhow::Result<std::process::ExitCode> {
    use std::net::ToSocketAddrs;
    let body = fault_body(&args)?;
    let token = match &args.token {
        Some(t) => t.clone(),
        None => std::env::var("CELLOPS_TOKEN")
            .context("give --token or set CELLOPS_TOKEN to an API token")?,
    };
    let addr = args
        .server
        .to_socket_addrs()
        .with_context(|| format!("--server {}", args.server))?
        .next()
        .with_context(|| format!("--server {} resolves to no address", args.server))?;
    let auth = format!("Bearer {token}");
    let path = format!("/api/batches/{}/faults", args.batch);
    let r = crate::crash_client::http(
        addr,
        "POST",
        &path,
        &[("Authorization", auth.as_str())],
        Some(&body.to_string()),
    )
    .with_context(|| format!("POST {path} at {addr}"))?;
    if r.status != 200 {
        let message = r
            .json()
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| r.text());
        anyhow::bail!("the server refused the fault ({}): {message}", r.status);
    }
    println!("{}", r.text());
    Ok(std::process::ExitCode::SUCCESS)
}

fn wall_now() -> anyhow::Result<OffsetDateTime> {
    let us = WallClock.now().unix_us();
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .context("wall clock out of range")
}

fn serve_opcua(args: ServeOpcuaArgs) -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if !(args.speed >= 1.0 && args.speed <= SPEED_MAX) {
        anyhow::bail!("--speed {} must be within 1..={SPEED_MAX}", args.speed);
    }
    let product = Product::parse(&args.product).map_err(|e| anyhow::anyhow!("--product: {e}"))?;
    let origin = wall_now()?;
    let device = SimulatedDevice::new(
        &args.device_id,
        product,
        args.seed,
        origin,
        args.sample_period_s,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let device = Arc::new(Mutex::new(device));
    let temp_pki;
    let pki_dir = match args.pki_dir {
        Some(dir) => dir,
        None => {
            temp_pki = tempfile::tempdir().context("creating a PKI directory")?;
            temp_pki.path().to_path_buf()
        }
    };
    let options = ServerOptions {
        host: args.host.clone(),
        port: args.port,
        manufacturer: "cellops".into(),
        watchdog: (args.watchdog_seconds > 0).then(|| Duration::from_secs(args.watchdog_seconds)),
        pki_dir,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = DeviceServer::start(device.clone(), &options).await?;
        println!(
            "serving simulated device {} ({}) at {} (namespace {}, {}x time)",
            args.device_id,
            args.product,
            server.endpoint_url(),
            cellops_opcua::model::NAMESPACE_URI,
            args.speed
        );
        let started = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tick.tick() => {
                    let simulated = started.elapsed().as_secs_f64() * args.speed;
                    let now = origin + time::Duration::seconds_f64(simulated);
                    let advanced = device.lock().unwrap_or_else(|p| p.into_inner()).advance_to(now);
                    if let Err(e) = advanced {
                        tracing::error!(error = %e, "the simulated device cannot advance");
                    }
                }
            }
        }
        server.stop().await;
        anyhow::Ok(())
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}
