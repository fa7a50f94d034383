//! `cellops bench twin`: Monte Carlo culture runs of 14 days (PRIME CAR-T process, lot
//! parameters drawn for autologous patients) against the same model in Python with
//! `scipy.integrate.solve_ivp` (bench/twin_baseline.py), same tolerances and output points.
//!
//! Python runs a subset of the same parameter sets (it is slow); its per-run time is scaled.
//! Set-up: `python3 -m pip install -r bench/requirements.txt`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use cellops_twin::ode::StepMemory;
use cellops_twin::product::{self, Donor, TCellProcess};
use cellops_twin::tcell::{self, Controls, TCellAction, TCellModel, TCellParams, TCellState};
use serde_json::json;

use crate::bench::{BenchResult, median_run};

/// Monte Carlo runs measured on the Rust side (full / quick).
const RUNS: usize = 10_000;
const RUNS_QUICK: usize = 200;
/// Of those, runs the Python baseline integrates (full / quick).
const BASELINE_RUNS: usize = 200;
const BASELINE_RUNS_QUICK: usize = 10;
/// Simulated days per run.
const DAYS: usize = 14;
/// Seed of the parameter draws.
const SEED: u64 = 20_240_601;
/// Goals from issue 6.
const SPEEDUP_GOAL: f64 = 50.0;
const AGREEMENT_GOAL: f64 = 0.01;
/// States compared for agreement (time since activation and bacteria are excluded: the
/// first is exact on both sides and the second stays zero).
const COMPARED: [usize; 5] = [tcell::XV, tcell::XD, tcell::GLC, tcell::LAC, tcell::AMM];

fn draw_runs(n: usize) -> Vec<TCellProcess> {
    let base = product::prime_car_t();
    let donor = Donor::Autologous {
        heavily_pretreated: false,
    };
    product::sample_lots(&base.params, donor, n, SEED)
        .into_iter()
        .map(|params| TCellProcess {
            params,
            ..base.clone()
        })
        .collect()
}

fn outputs_h() -> Vec<f64> {
    (0..=DAYS).map(|d| d as f64 * 24.0).collect()
}

fn run_rust(
    runs: &[(TCellModel, &TCellProcess)],
    outputs: &[f64],
) -> anyhow::Result<Vec<Vec<TCellState>>> {
    runs.iter()
        .map(|(m, p)| {
            Ok(tcell::simulate(
                m,
                &p.initial,
                p.controls,
                &p.schedule,
                outputs,
                &mut StepMemory::default(),
            )?)
        })
        .collect()
}

fn params_json(p: &TCellParams) -> serde_json::Value {
    json!({
        "mu_max_per_h": p.mu_max_per_h, "mu_multiplier": p.mu_multiplier, "t_lag_h": p.t_lag_h,
        "t_lag_restim_h": p.t_lag_restim_h, "tau_lag_h": p.tau_lag_h, "k_s_per_h": p.k_s_per_h,
        "s_min": p.s_min, "x_max_cells_per_ml": p.x_max_cells_per_ml, "k_g_mm": p.k_g_mm,
        "k_il_mm": p.k_il_mm, "k_ia_mm": p.k_ia_mm, "q_g_pmol_per_cell_day": p.q_g_pmol_per_cell_day,
        "y_lg_mol_per_mol": p.y_lg_mol_per_mol, "q_a_pmol_per_cell_day": p.q_a_pmol_per_cell_day,
        "k_adeg_per_h": p.k_adeg_per_h, "kd0_per_h": p.kd0_per_h, "kd_g_per_h": p.kd_g_per_h,
        "g_crit_mm": p.g_crit_mm, "kd_l_per_h": p.kd_l_per_h, "l_crit_mm": p.l_crit_mm,
        "k_lys_per_h": p.k_lys_per_h, "k_uptake_mm": p.k_uptake_mm, "r_aicd": p.r_aicd,
    })
}

fn controls_json(c: &Controls) -> serde_json::Value {
    json!({
        "perfusion_per_day": c.perfusion_per_day, "bleed_per_day": c.bleed_per_day,
        "glucose_in_mm": c.glucose_in_mm, "growth_factor": c.growth_factor,
        "death_extra_per_h": c.death_extra_per_h, "restimulated": c.restimulated,
    })
}

fn action_json(a: &TCellAction) -> serde_json::Value {
    match *a {
        TCellAction::Feed {
            volume_ml,
            glucose_mm,
        } => json!({"kind": "feed", "volume_ml": volume_ml, "glucose_mm": glucose_mm}),
        TCellAction::Exchange {
            fraction,
            glucose_mm,
        } => json!({"kind": "exchange", "fraction": fraction, "glucose_mm": glucose_mm}),
        TCellAction::Transduce { moi_nominal } => {
            json!({"kind": "transduce", "moi_nominal": moi_nominal})
        }
        TCellAction::Restimulate => json!({"kind": "restimulate"}),
        TCellAction::SetPerfusion { per_day } => {
            json!({"kind": "set_perfusion", "per_day": per_day})
        }
    }
}

fn baseline_input(runs: &[TCellProcess], outputs: &[f64]) -> serde_json::Value {
    let runs: Vec<_> = runs
        .iter()
        .map(|p| {
            json!({
                "params": params_json(&p.params),
                "controls": controls_json(&p.controls),
                "y0": p.initial.y.to_vec(),
                "volume_ml": p.initial.volume_ml,
                "schedule": p.schedule.iter().map(|a| json!({"at_h": a.at_h, "action": action_json(&a.action)})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "outputs_h": outputs,
        "rtol": tcell::TOLERANCE.rtol,
        "atol": tcell::TOLERANCE.atol.to_vec(),
        "runs": runs,
    })
}

fn script_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/twin_baseline.py"
    ))
}

/// Runs the Python baseline; returns (seconds per run, trajectories [run][output][state]).
fn run_python(runs: &[TCellProcess], outputs: &[f64]) -> anyhow::Result<(f64, Vec<Vec<Vec<f64>>>)> {
    let dir = std::env::temp_dir().join(format!("cellops-bench-twin-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (input, output) = (dir.join("input.json"), dir.join("output.json"));
    std::fs::write(&input, serde_json::to_vec(&baseline_input(runs, outputs))?)?;
    let status = std::process::Command::new("python3")
        .arg(script_path())
        .arg(&input)
        .arg(&output)
        .status()
        .context("running python3 bench/twin_baseline.py (install: python3 -m pip install -r bench/requirements.txt)")?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        anyhow::bail!(
            "bench/twin_baseline.py failed ({status}); install its deps: python3 -m pip install -r bench/requirements.txt"
        );
    }
    let out: serde_json::Value = serde_json::from_slice(&std::fs::read(&output)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    let seconds = out["seconds"]
        .as_f64()
        .context("baseline output lacks seconds")?;
    let traj: Vec<Vec<Vec<f64>>> = serde_json::from_value(out["trajectories"].clone())?;
    anyhow::ensure!(
        traj.len() == runs.len(),
        "baseline returned {} runs, expected {}",
        traj.len(),
        runs.len()
    );
    Ok((seconds / runs.len() as f64, traj))
}

/// Max over runs, outputs and compared states of |rust − python| / max(|python|, floor),
/// with floor = 1e-3 × the largest |value| of that state in that run (so values crossing
/// near zero, e.g. exhausted glucose, do not inflate the figure).
fn max_relative_difference(rust: &[Vec<TCellState>], python: &[Vec<Vec<f64>>]) -> f64 {
    let mut worst: f64 = 0.0;
    for (r_run, p_run) in rust.iter().zip(python) {
        for &k in &COMPARED {
            let scale = p_run.iter().map(|row| row[k].abs()).fold(0.0, f64::max);
            let floor = 1e-3 * scale;
            for (r, p) in r_run.iter().zip(p_run) {
                let d = (r.y[k] - p[k]).abs() / p[k].abs().max(floor).max(f64::MIN_POSITIVE);
                worst = worst.max(d);
            }
        }
    }
    worst
}

pub fn run(quick: bool) -> anyhow::Result<Vec<BenchResult>> {
    let (n, n_base) = if quick {
        (RUNS_QUICK, BASELINE_RUNS_QUICK)
    } else {
        (RUNS, BASELINE_RUNS)
    };
    let processes = draw_runs(n);
    let outputs = outputs_h();
    let models: Vec<(TCellModel, &TCellProcess)> = processes
        .iter()
        .map(|p| Ok((TCellModel::new(p.params.clone())?, p)))
        .collect::<anyhow::Result<_>>()?;
    let mut last: Vec<Vec<TCellState>> = Vec::new();
    let mut failure: Option<anyhow::Error> = None;
    let (reps, min_time) = if quick {
        (1, Duration::ZERO)
    } else {
        (5, Duration::from_secs(3))
    };
    let per_batch = median_run(reps, min_time, || match run_rust(&models, &outputs) {
        Ok(t) => last = t,
        Err(e) => failure = Some(e),
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let rust_runs_per_s = n as f64 / per_batch.as_secs_f64();
    let (py_s_per_run, py_traj) = run_python(&processes[..n_base], &outputs)?;
    let py_runs_per_s = 1.0 / py_s_per_run;
    let agreement = max_relative_difference(&last[..n_base], &py_traj);
    Ok(vec![
        BenchResult::against(
            if quick {
                "mc_culture_runs_14d_quick"
            } else {
                "mc_culture_runs_14d"
            },
            "runs/s",
            rust_runs_per_s,
            &format!(
                "same model, scipy solve_ivp RK45 rtol 1e-6 same atol and outputs, {n_base} of the {n} runs, per-run time scaled"
            ),
            py_runs_per_s,
            true,
            SPEEDUP_GOAL,
        ),
        BenchResult::absolute(
            "trajectory_max_rel_diff",
            "fraction",
            agreement,
            false,
            Some(AGREEMENT_GOAL),
        ),
    ])
}
