//! Benchmark report format shared by every `cellops bench <area>` (see
//! `../shared/design/BENCH.md`): one JSON object on stdout with ratios against a baseline
//! measured in the same process.

use serde::Serialize;
use std::time::{Duration, Instant};

/// One measured figure. `ratio ≥ goal` always means the goal is met.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub baseline: Option<String>,
    pub baseline_value: Option<f64>,
    pub ratio: Option<f64>,
    pub higher_is_better: bool,
    pub goal: Option<f64>,
}

impl BenchResult {
    /// A figure compared with a baseline measured in the same run.
    pub fn against(
        name: &str,
        unit: &str,
        value: f64,
        baseline: &str,
        baseline_value: f64,
        higher_is_better: bool,
        goal: f64,
    ) -> BenchResult {
        let ratio = if higher_is_better {
            value / baseline_value
        } else {
            baseline_value / value
        };
        BenchResult {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            baseline: Some(baseline.to_string()),
            baseline_value: Some(baseline_value),
            ratio: Some(ratio),
            higher_is_better,
            goal: Some(goal),
        }
    }

    /// An absolute figure (no baseline); `goal` is in the unit of `value`.
    pub fn absolute(
        name: &str,
        unit: &str,
        value: f64,
        higher_is_better: bool,
        goal: Option<f64>,
    ) -> BenchResult {
        BenchResult {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            baseline: None,
            baseline_value: None,
            ratio: None,
            higher_is_better,
            goal,
        }
    }

    /// Whether the goal is met (`None` when the figure has no goal).
    pub fn goal_met(&self) -> Option<bool> {
        let goal = self.goal?;
        Some(match self.ratio {
            Some(ratio) => ratio >= goal,
            None if self.higher_is_better => self.value >= goal,
            None => self.value <= goal,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Host {
    pub cpus: usize,
    pub os: &'static str,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub bench: String,
    pub version: &'static str,
    pub git: String,
    pub backend: Option<String>,
    pub host: Host,
    pub results: Vec<BenchResult>,
}

impl BenchReport {
    pub fn new(bench: &str, backend: Option<String>, results: Vec<BenchResult>) -> BenchReport {
        BenchReport {
            bench: bench.to_string(),
            version: env!("CARGO_PKG_VERSION"),
            git: git_commit(),
            backend,
            host: Host {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                os: std::env::consts::OS,
            },
            results,
        }
    }

    /// Human-readable lines for a terminal.
    pub fn print_human(&self) {
        println!("cellops bench {} ({})", self.bench, self.git);
        for r in &self.results {
            let verdict = match r.goal_met() {
                Some(true) => "goal met",
                Some(false) => "GOAL MISSED",
                None => "",
            };
            match (r.ratio, &r.baseline, r.baseline_value) {
                (Some(ratio), Some(baseline), Some(bv)) => println!(
                    "  {:<40} {:>14.3} {:<10} vs {:>14.3} ({baseline}) ratio {ratio:.2} goal {} {verdict}",
                    r.name,
                    r.value,
                    r.unit,
                    bv,
                    r.goal.map_or("-".to_string(), |g| format!("{g}")),
                ),
                _ => println!(
                    "  {:<40} {:>14.3} {:<10} goal {} {verdict}",
                    r.name,
                    r.value,
                    r.unit,
                    r.goal.map_or("-".to_string(), |g| format!("{g}")),
                ),
            }
        }
    }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Runs `work` after one warm-up call until at least `runs_min` runs and `duration_min`
/// have passed; returns the median duration of one run.
pub fn median_run(runs_min: usize, duration_min: Duration, mut work: impl FnMut()) -> Duration {
    work();
    let started = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < runs_min || started.elapsed() < duration_min {
        let t0 = Instant::now();
        work();
        samples.push(t0.elapsed());
        if samples.len() >= 10_000 {
            break;
        }
    }
    median(&mut samples)
}

/// The median of `samples` (sorts them in place). Panics on an empty slice.
pub fn median(samples: &mut [Duration]) -> Duration {
    assert!(!samples.is_empty(), "median of no samples");
    samples.sort();
    samples[samples.len() / 2]
}
