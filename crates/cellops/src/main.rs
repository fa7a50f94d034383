//! The `cellops` command line: every entry point of the product.
//!
//! Each subcommand lives in its own module (`cmd_*.rs`) and returns `anyhow::Result`;
//! `main` prints an error as one clear line and exits non-zero.

mod bench;
mod bench_coldchain;
mod bench_crash;
mod bench_culture;
mod bench_ledger;
mod bench_network;
mod bench_recall;
mod bench_release;
mod bench_scan;
mod bench_schedule;
mod bench_twin;
mod bench_ui;
mod cmd_bench;
mod cmd_coa;
mod cmd_demo;
mod cmd_device;
mod cmd_isbt;
mod cmd_label;
mod cmd_ledger;
mod cmd_logger;
mod cmd_recipe;
mod cmd_schedule;
mod cmd_serve;
mod cmd_training;
mod cmd_twin;
mod cmd_user;
mod crash_client;
mod database;
mod wall_clock;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cellops",
    version,
    about = "Cell-therapy manufacturing and supply chain, vein to vein"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// ISBT 128 codes: validate data structures and compute check characters.
    Isbt(cmd_isbt::IsbtArgs),
    /// Run the HTTP API (default: embedded SQLite in the data directory, 127.0.0.1:8080).
    Serve(cmd_serve::ServeArgs),
    /// Verify, export and prove the tamper-evident ledger.
    Ledger(cmd_ledger::LedgerArgs),
    /// Manage user accounts.
    User(cmd_user::UserArgs),
    /// Render ISBT 128 unit labels (DataMatrix, Code 128, eye-readable DIN) as PDF or SVG.
    Label(cmd_label::LabelArgs),
    /// Recipes: validate, diff (change control), content hash for QA approval.
    Recipe(cmd_recipe::RecipeArgs),
    /// Measure speed against a baseline run in the same process (see BENCH.md).
    Bench(cmd_bench::BenchArgs),
    /// Process models (digital twin): simulate, predict and plot cultures.
    Twin(cmd_twin::TwinArgs),
    /// Culture devices: serve a simulated device over OPC UA.
    Device(cmd_device::DeviceArgs),
    /// Scheduling and capacity: plan an instance, generate instances, check a booking.
    Schedule(cmd_schedule::ScheduleArgs),
    /// Training and qualification: check or import a curriculum, print the training matrix.
    Training(cmd_training::TrainingArgs),
    /// Certificate of analysis of a batch as PDF, built from the ledger.
    Coa(cmd_coa::CoaArgs),
    /// Temperature loggers: check a logger file, or import it into a shipment on a server.
    Logger(cmd_logger::LoggerArgs),
    /// The demo network's patients of all three products, vein to vein in a simulated clock,
    /// headless; prints a summary per product.
    Demo(cmd_demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd_serve::run(args),
        Command::Ledger(args) => cmd_ledger::run(args),
        Command::User(args) => cmd_user::run(args),
        Command::Label(args) => cmd_label::run(args),
        Command::Recipe(args) => cmd_recipe::run(args),
        Command::Bench(args) => cmd_bench::run(args),
        Command::Isbt(args) => cmd_isbt::run(args),
        Command::Twin(args) => cmd_twin::run(args),
        Command::Device(args) => cmd_device::run(args),
        Command::Schedule(args) => cmd_schedule::run(args),
        Command::Training(args) => cmd_training::run(args),
        Command::Coa(args) => cmd_coa::run(args),
        Command::Logger(args) => cmd_logger::run(args),
        Command::Demo(args) => cmd_demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
