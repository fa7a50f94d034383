//! The `cellops` command line: every entry point of the product.
//!
//! Each subcommand lives in its own module (`cmd_*.rs`) and returns `anyhow::Result`;
//! `main` prints an error as one clear line and exits non-zero.

mod bench;
mod bench_twin;
mod cmd_bench;
mod cmd_isbt;
mod cmd_twin;

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
    /// Measure speed against a baseline run in the same process (see BENCH.md).
    Bench(cmd_bench::BenchArgs),
    /// Process models (digital twin): simulate, predict and plot cultures.
    Twin(cmd_twin::TwinArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => cmd_bench::run(args),
        Command::Isbt(args) => cmd_isbt::run(args),
        Command::Twin(args) => cmd_twin::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
