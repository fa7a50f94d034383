//! `cellops demo --until done [--database URL]`: the demo network's patients of all three
//! products, vein to vein through the HTTP API in a simulated clock, headless; prints a
//! summary per product. The same run `cellops serve --demo` shows in the browser.

use cellops_demo::network::Network;
use cellops_ledger::Backend;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How far to run: `done` (every patient infused and followed up).
    #[arg(long, default_value = "done")]
    pub until: String,
    /// Ledger database (sqlite://PATH or postgres://…). Default: a temporary SQLite file,
    /// removed afterwards.
    #[arg(long)]
    pub database: Option<String>,
    /// Instead of the six demo patients, this many patients over a simulated year.
    #[arg(long)]
    pub patients: Option<usize>,
    /// Seed of the run's random choices (ids, simulated cultures).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also print where the API time went, per route (slowest first).
    #[arg(long)]
    pub routes: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.until != "done" {
        anyhow::bail!(
            "--until {:?}: the demo runs until every patient is done: use --until done",
            args.until
        );
    }
    let dir = tempfile::tempdir()?;
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("demo.db").display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    crate::with_backend!(&url, B => runtime.block_on(demo::<B>(&url, &args)))
}

async fn demo<B: Backend>(url: &str, args: &DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    // The simulated clock starts at the wall clock's now.
    let start = cellops_domain::Clock::now(&crate::wall_clock::WallClock);
    let mut net = Network::<B>::open(url, start, args.seed).await?;
    let plan = match args.patients {
        None => cellops_demo::demo_plan(net.now()),
        Some(n) => cellops_demo::year_plan(net.now(), n, 365),
    };
    let wall = std::time::Instant::now();
    let summary = cellops_demo::run(&mut net, plan).await?;
    let checked = net.verify_ledger().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
        println!(
            "ledger verified: {checked} records; {:.1} s of wall time",
            wall.elapsed().as_secs_f64()
        );
        if args.routes {
            let mut routes: Vec<_> = net.client.by_route.iter().collect();
            routes.sort_by_key(|(_, (us, _))| std::cmp::Reverse(*us));
            for (route, (us, calls)) in routes.iter().take(15) {
                println!("{:>9.1} ms {calls:>5} calls  {route}", *us as f64 / 1000.0);
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
