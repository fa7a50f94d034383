//! `cellops twin …`: run a simulated culture to CSV, predict a batch's dose day from its
//! observations, and plot the fit. The models live in `cellops-twin`; this module only reads
//! and writes files.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use cellops_twin::observations::{self, Observations};
use cellops_twin::predict::{DoseOrder, Prediction, predict_dose_day_seeded};
use cellops_twin::product::{self, Donor, Product, TCellProcess};
use cellops_twin::sensors::{Fault, SensorKind};
use cellops_twin::sim::CultureSim;
use cellops_twin::units::Hours;

/// Longest simulated run, days.
const RUN_DAYS_MAX: f64 = 60.0;

#[derive(clap::Args)]
pub struct TwinArgs {
    #[command(subcommand)]
    command: TwinCommand,
}

#[derive(clap::Subcommand)]
enum TwinCommand {
    /// Simulate one culture and write its true state and sensor readings to CSV.
    Run(RunArgs),
    /// Fit a batch's observations and predict the day its dose is reached.
    Predict(PredictArgs),
    /// Fit a batch's observations and write an SVG plot of the fit and forecast band.
    Plot(PlotArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Product: prime-car-t, allo-car-t or bm-msc.
    #[arg(long)]
    product: String,
    /// Days to simulate.
    #[arg(long, default_value_t = 12.0)]
    days: f64,
    /// Seed for lot variability and sensor noise (same seed, same run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output CSV path.
    #[arg(long)]
    out: PathBuf,
    /// Lot parameters: nominal (preset), autologous, pretreated (heavily pre-treated
    /// patient) or allogeneic (healthy donor).
    #[arg(long, default_value = "nominal")]
    donor: String,
    /// Row interval, hours.
    #[arg(long, default_value_t = 1.0)]
    every_h: f64,
    /// Inject a fault: KIND@HOUR[:DURATION_H], KIND one of contamination, power-loss,
    /// temperature-loss, stuck-SENSOR, drift-SENSOR (SENSOR: viable-density, viability,
    /// glucose, lactate, ph, do, temperature). Repeatable.
    #[arg(long = "fault")]
    faults: Vec<String>,
}

#[derive(clap::Args)]
struct FitArgs {
    /// Observations CSV: header names carry units (time_h, viable_cells_per_ml,
    /// volume_ml, viability_percent, car_pos_percent, glucose_mm, lactate_mm, …).
    #[arg(long)]
    observations: PathBuf,
    /// Process the batch runs: prime-car-t or allo-car-t.
    #[arg(long, default_value = "prime-car-t")]
    product: String,
    /// Ordered dose, viable CAR+ cells.
    #[arg(long, default_value_t = 1e9)]
    dose_car_pos_cells: f64,
    /// Latest acceptable harvest, days.
    #[arg(long, default_value_t = 14.0)]
    days_max: f64,
    /// Release viability minimum, fraction.
    #[arg(long, default_value_t = 0.70)]
    viability_min: f64,
    /// Release CAR+ minimum, fraction.
    #[arg(long, default_value_t = 0.10)]
    car_pos_min: f64,
    /// Monte Carlo samples.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Seed of the Monte Carlo draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct PredictArgs {
    #[command(flatten)]
    fit: FitArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct PlotArgs {
    #[command(flatten)]
    fit: FitArgs,
    /// Output SVG path.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: TwinArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        TwinCommand::Run(a) => run_culture(a),
        TwinCommand::Predict(a) => predict(a),
        TwinCommand::Plot(a) => plot(a),
    }
}

fn parse_donor(name: &str) -> anyhow::Result<Option<Donor>> {
    Ok(match name {
        "nominal" => None,
        "autologous" => Some(Donor::Autologous {
            heavily_pretreated: false,
        }),
        "pretreated" => Some(Donor::Autologous {
            heavily_pretreated: true,
        }),
        "allogeneic" => Some(Donor::Allogeneic),
        other => anyhow::bail!(
            "--donor {other:?} is not one of nominal, autologous, pretreated, allogeneic"
        ),
    })
}

/// Parses KIND@HOUR[:DURATION_H].
fn parse_fault(spec: &str) -> anyhow::Result<(f64, Fault, Option<Hours>)> {
    let bad = || format!("--fault {spec:?}: expected KIND@HOUR[:DURATION_H], e.g. power-loss@96:4");
    let (kind, when) = spec.split_once('@').with_context(bad)?;
    let (at, duration) = match when.split_once(':') {
        Some((a, d)) => (a, Some(d)),
        None => (when, None),
    };
    let at_h: f64 = at.parse().with_context(bad)?;
    let duration = match duration {
        Some(d) => Some(Hours::new(
            "fault duration_h",
            d.parse().with_context(bad)?,
        )?),
        None => None,
    };
    let sensor = |name: &str| {
        SensorKind::parse(name).with_context(|| {
            format!("--fault {spec:?}: unknown sensor {name:?} (viable-density, viability, glucose, lactate, ph, do, temperature)")
        })
    };
    let fault = match kind {
        "contamination" => Fault::Contamination {
            bacteria_per_ml: 10.0,
        },
        "power-loss" => Fault::PowerLoss { ambient_c: 22.0 },
        "temperature-loss" => Fault::TemperatureLoss { ambient_c: 22.0 },
        k if k.starts_with("stuck-") => Fault::SensorStuck {
            sensor: sensor(&k[6..])?,
        },
        // Drift of 1 % of a typical reading per hour, in the sensor's unit.
        k if k.starts_with("drift-") => {
            let s = sensor(&k[6..])?;
            let per_h = match s {
                SensorKind::ViableDensity => 1e4,
                SensorKind::Ph => 0.005,
                SensorKind::Temperature => 0.05,
                _ => 0.05,
            };
            Fault::SensorDrift { sensor: s, per_h }
        }
        other => anyhow::bail!("--fault {spec:?}: unknown kind {other:?}"),
    };
    Ok((at_h, fault, duration))
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x}"))
}

fn run_culture(a: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    let product = Product::parse(&a.product)?;
    if !(a.days > 0.0 && a.days <= RUN_DAYS_MAX) {
        anyhow::bail!("--days {} must be in (0, {RUN_DAYS_MAX}]", a.days);
    }
    if !(a.every_h > 0.0 && a.every_h <= 24.0) {
        anyhow::bail!("--every-h {} must be in (0, 24]", a.every_h);
    }
    let mut faults: Vec<(f64, Fault, Option<Hours>)> = a
        .faults
        .iter()
        .map(|f| parse_fault(f))
        .collect::<anyhow::Result<_>>()?;
    faults.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut sim = CultureSim::new(product, parse_donor(&a.donor)?, a.seed)?;
    let mut csv = String::from(
        "time_h,viable_cells,viability,viable_cells_per_ml,viable_cells_per_cm2,confluence,car_pos_fraction,population_doublings,passage,glucose_mm,lactate_mm,ammonia_mm,volume_ml,bacteria_per_ml,temperature_c,sensor_viable_cells_per_ml,sensor_viable_cells_per_cm2,sensor_viability_percent,sensor_glucose_mm,sensor_lactate_mm,sensor_ph,sensor_do_percent,sensor_temperature_c,actions\n",
    );
    let rows = (a.days * 24.0 / a.every_h).round() as usize;
    let mut next_fault = 0;
    for i in 0..=rows {
        let t = i as f64 * a.every_h;
        let mut events: Vec<String> = Vec::new();
        // Faults due inside the previous interval start now (row resolution).
        while let Some((_, fault, dur)) = faults.get(next_fault).filter(|f| f.0 <= t) {
            sim.inject_fault(*fault, *dur)?;
            events.push(format!("fault:{}", fault.name()));
            next_fault += 1;
        }
        // The row shows the culture before the actions listed on it (taken at this time).
        let s = sim.true_state();
        let r = sim.read_sensors();
        if i < rows {
            for (_, act) in sim.step_with_protocol(Hours::new("every_h", a.every_h)?)? {
                events.push(act.name().to_string());
            }
        }
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            s.time_h,
            s.viable_cells,
            s.viability,
            s.viable_cells_per_ml,
            opt(s.viable_cells_per_cm2),
            opt(s.confluence),
            opt(s.car_pos_fraction),
            opt(s.population_doublings),
            s.passage.map_or(String::new(), |p| p.to_string()),
            s.glucose_mm,
            s.lactate_mm,
            s.ammonia_mm,
            s.volume_ml,
            s.bacteria_per_ml,
            s.temperature_c,
            opt(r.viable_cells_per_ml),
            opt(r.viable_cells_per_cm2),
            opt(r.viability_percent),
            opt(r.glucose_mm),
            opt(r.lactate_mm),
            opt(r.ph),
            opt(r.do_percent),
            opt(r.temperature_c),
            events.join(";"),
        );
    }
    std::fs::write(&a.out, csv).with_context(|| format!("writing {}", a.out.display()))?;
    let s = sim.true_state();
    println!(
        "{} day {:.1}: {:.3e} viable cells, viability {:.1} %, written {} rows to {}",
        product.name(),
        s.time_h / 24.0,
        s.viable_cells,
        s.viability * 100.0,
        rows + 1,
        a.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn fit_and_predict(a: &FitArgs) -> anyhow::Result<(Observations, Prediction, TCellProcess)> {
    let text = std::fs::read_to_string(&a.observations)
        .with_context(|| format!("reading {}", a.observations.display()))?;
    let obs = observations::parse_csv(&text)
        .with_context(|| format!("in {}", a.observations.display()))?;
    let process = match Product::parse(&a.product)? {
        Product::PrimeCarT => product::prime_car_t(),
        Product::AlloCarT => product::allo_car_t(),
        Product::BmMsc => anyhow::bail!(
            "--product bm-msc: dose-day prediction is implemented for CAR-T processes only"
        ),
    };
    let order = DoseOrder {
        dose_car_pos_cells: a.dose_car_pos_cells,
        days_max: a.days_max,
        viability_min: a.viability_min,
        car_pos_min: a.car_pos_min,
    };
    let pred = predict_dose_day_seeded(&process, &obs, &order, a.samples, a.seed)?;
    Ok((obs, pred, process))
}

fn day(d: Option<f64>) -> String {
    d.map_or("not reached".to_string(), |d| format!("{d:.2}"))
}

fn predict(a: PredictArgs) -> anyhow::Result<std::process::ExitCode> {
    let (obs, pred, _) = fit_and_predict(&a.fit)?;
    if a.json {
        let names = cellops_twin::fit::FIT_PARAM_NAMES;
        let fitted: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(pred.fit.ln_params.iter().zip(pred.fit.ln_sd()))
            .map(|(n, (ln, sd))| {
                (
                    n.to_string(),
                    serde_json::json!({"value": ln.exp(), "ln_sd": sd}),
                )
            })
            .collect();
        let out = serde_json::json!({
            "observations": obs.rows().len(),
            "median_day": pred.median_day,
            "interval_80_days": [pred.interval_80.0, pred.interval_80.1],
            "p_meets_specs": pred.p_meets_specs,
            "p_dose_reached": pred.p_dose_reached,
            "samples": pred.samples,
            "fit": fitted,
            "rms_ln_count": pred.fit.rms_ln_count,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "dose of {:.3e} CAR+ cells: median day {}, 80 % interval {} to {}",
            a.fit.dose_car_pos_cells,
            day(pred.median_day),
            day(pred.interval_80.0),
            day(pred.interval_80.1)
        );
        println!(
            "P(dose by day {} and meets specs) = {:.2}; P(dose reached) = {:.2}; {} samples",
            a.fit.days_max, pred.p_meets_specs, pred.p_dose_reached, pred.samples
        );
        let p = &pred.fit.params;
        println!(
            "fit over {} observations: mu_max {:.4}/h, t_lag {:.1} h, k_s {:.5}/h, kd0 {:.4}/h, rms ln-count residual {:.3}",
            obs.rows().len(),
            p.mu_max_per_h,
            p.t_lag_h,
            p.k_s_per_h,
            p.kd0_per_h,
            pred.fit.rms_ln_count
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn plot(a: PlotArgs) -> anyhow::Result<std::process::ExitCode> {
    let (obs, pred, _) = fit_and_predict(&a.fit)?;
    let title = format!(
        "{}: fit and forecast (dose day median {})",
        a.fit.product,
        day(pred.median_day)
    );
    let svg = cellops_twin::plot::fit_svg(&title, &obs, &pred)?;
    std::fs::write(&a.out, svg).with_context(|| format!("writing {}", a.out.display()))?;
    println!("wrote {}", a.out.display());
    Ok(std::process::ExitCode::SUCCESS)
}
