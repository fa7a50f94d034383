//! `cellops bench <area> [--json] [--quick]`: one benchmark per area.

use crate::bench::{BenchReport, BenchResult};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Area to measure: ledger, scan, twin, culture, coldchain, crash, release, recall,
    /// network, schedule, ui.
    pub area: String,
    /// Print one JSON object on stdout instead of human-readable lines.
    #[arg(long)]
    pub json: bool,
    /// A small run that checks the benchmark works (for CI), not the figures.
    #[arg(long)]
    pub quick: bool,
    /// Kill/restart cycles of `bench crash` (default 30, 5 with --quick).
    #[arg(long)]
    pub cycles: Option<u64>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let (backend, results): (Option<String>, Vec<BenchResult>) = match args.area.as_str() {
        "ledger" => crate::bench_ledger::run(args.quick)?,
        "twin" => (None, crate::bench_twin::run(args.quick)?),
        "coldchain" => (None, crate::bench_coldchain::run(args.quick)?),
        "scan" => (
            Some("sqlite".to_string()),
            crate::bench_scan::run(args.quick)?,
        ),
        "culture" => (
            Some("sqlite".to_string()),
            crate::bench_culture::run(args.quick)?,
        ),
        "crash" => crate::bench_crash::run(args.cycles, args.quick, args.json)?,
        "release" => (None, crate::bench_release::run(args.quick)?),
        "recall" => (None, crate::bench_recall::run(args.quick)?),
        "network" => (
            Some("sqlite".to_string()),
            crate::bench_network::run(args.quick)?,
        ),
        "ui" => (
            Some("sqlite".to_string()),
            crate::bench_ui::run(args.quick)?,
        ),
        "schedule" => (None, crate::bench_schedule::run(args.quick)?),
        other => {
            anyhow::bail!(
                "unknown bench area {other:?}: choose one of ledger, scan, twin, culture, coldchain, crash, release, recall, network, schedule, ui"
            )
        }
    };
    let report = BenchReport::new(&args.area, backend, results);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_human();
    }
    Ok(std::process::ExitCode::SUCCESS)
}
