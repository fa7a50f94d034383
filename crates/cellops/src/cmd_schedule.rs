//! `cellops schedule …`: plan an instance file, generate instances, check a booking. The
//! planner lives in `cellops-schedule`; this module only reads and writes files.

use std::path::PathBuf;

use anyhow::Context;
use cellops_schedule::Network;
use cellops_schedule::booking::{BookingRequest, Planner};
use cellops_schedule::generate::{GenParams, generate};
use cellops_schedule::optimise::{Options, optimise};
use cellops_schedule::output::{plan_out, schedule_gantt};
use rand::SeedableRng;

#[derive(clap::Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(clap::Subcommand)]
enum ScheduleCommand {
    /// Plan every order of an instance file and print the plan as JSON.
    Plan(PlanArgs),
    /// Generate an instance: hospitals around one CPC, one year of orders, three products.
    Generate(GenerateArgs),
    /// Answer a booking request against an instance's network (its orders are ignored).
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Instance file (format: docs/scheduling.md).
    instance: PathBuf,
    /// Seed of the local search.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Most local-search iterations.
    #[arg(long, default_value_t = Options::default().iterations_max)]
    iterations: usize,
    /// Also print Gantt data per resource.
    #[arg(long)]
    gantt: bool,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Number of patients (orders).
    #[arg(long, default_value_t = 100)]
    patients: usize,
    /// Seed (same seed, same instance).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instance name (default gen-n<patients>-s<seed>).
    #[arg(long)]
    name: Option<String>,
    /// Capacity as a percentage of mean demand.
    #[arg(long, default_value_t = 125)]
    slack_percent: u32,
    /// Output file (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Instance file whose network to use.
    instance: PathBuf,
    /// Product id.
    #[arg(long)]
    product: String,
    /// Hospital id.
    #[arg(long)]
    hospital: String,
    /// Requested collection date, YYYY-MM-DD.
    #[arg(long)]
    date: String,
    /// Today, YYYY-MM-DD (default: the instance's start date).
    #[arg(long)]
    today: Option<String>,
    /// Last acceptable infusion date.
    #[arg(long)]
    latest_infusion: Option<String>,
}

pub fn run(args: ScheduleArgs) -> anyhow::Result<std::process::ExitCode> {
    match args.command {
        ScheduleCommand::Plan(a) => plan(a),
        ScheduleCommand::Generate(a) => gen_instance(a),
        ScheduleCommand::Check(a) => check(a),
    }
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading instance {}", path.display()))
}

fn plan(a: PlanArgs) -> anyhow::Result<std::process::ExitCode> {
    let net = Network::from_json(&read(&a.instance)?)
        .with_context(|| format!("instance {}", a.instance.display()))?;
    let options = Options {
        seed: a.seed,
        iterations_max: a.iterations,
        ..Options::default()
    };
    let (sched, stats) = optimise(&net, options);
    let mut out = serde_json::to_value(plan_out(&net, &sched))?;
    out["construction_objective"] = stats.construction_cost.into();
    out["iterations"] = stats.iterations.into();
    out["lower_bound"] = stats.lower_bound.into();
    if a.gantt {
        out["gantt"] = serde_json::to_value(schedule_gantt(&net, &sched))?;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(std::process::ExitCode::SUCCESS)
}

fn gen_instance(a: GenerateArgs) -> anyhow::Result<std::process::ExitCode> {
    let name = a
        .name
        .unwrap_or_else(|| format!("gen-n{}-s{}", a.patients, a.seed));
    let params = GenParams {
        slack_percent: a.slack_percent,
        ..GenParams::year(&name, a.patients)
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let inst = generate(&params, &mut rng);
    let text = serde_json::to_string_pretty(&inst)? + "\n";
    match a.out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn check(a: CheckArgs) -> anyhow::Result<std::process::ExitCode> {
    let inst: cellops_schedule::Instance = serde_json::from_str(&read(&a.instance)?)
        .with_context(|| format!("instance {}", a.instance.display()))?;
    let mut planner = Planner::from_instance(inst)?;
    let today = match &a.today {
        Some(t) => planner
            .network()
            .day_of(t)
            .with_context(|| format!("--today {t:?} is not a date (YYYY-MM-DD)"))?,
        None => 0,
    };
    let request = BookingRequest {
        product: a.product,
        hospital: a.hospital,
        collection_date: a.date,
        earliest_date: None,
        latest_infusion: a.latest_infusion,
        due_date: None,
        weight: None,
    };
    let answer = planner.check(&request, today)?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(std::process::ExitCode::SUCCESS)
}
