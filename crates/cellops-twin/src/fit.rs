//! Fits a batch's kinetic parameters to its observations so far: maximum a posteriori in
//! log-parameter space (Nelder–Mead from `argmin`), with the product preset as the prior
//! centre, and a Gauss–Newton (Laplace) covariance for Monte Carlo prediction.
//!
//! Fitted: `mu_max`, `t_lag`, `k_s`, `kd0`. Residuals: ln of viable cells (total cells when
//! the volume was observed, else density) with sd [`LOG_COUNT_SD`], and viability with sd
//! [`VIABILITY_SD`] when observed.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::TwinError;
use crate::observations::Observations;
use crate::product::TCellProcess;
use crate::tcell::{self, TCellModel, TCellParams};

/// Number of fitted parameters.
pub const FIT_PARAMS: usize = 4;
/// Names of the fitted parameters, in vector order.
pub const FIT_PARAM_NAMES: [&str; FIT_PARAMS] =
    ["mu_max_per_h", "t_lag_h", "k_s_per_h", "kd0_per_h"];
/// Prior sd of each ln-parameter (half the ln-width of the bioprocess.md range; k_s wider
/// because the calibrated value lies outside its table range).
pub const PRIOR_LN_SD: [f64; FIT_PARAMS] = [0.36, 0.55, 1.0, 0.8];
/// Assumed sd of ln(cell count) observations (≈10 % counting error; unconfirmed).
pub const LOG_COUNT_SD: f64 = 0.10;
/// Assumed sd of viability observations, fraction (unconfirmed).
pub const VIABILITY_SD: f64 = 0.03;
/// Nelder–Mead iteration limit.
pub const FIT_ITERATIONS_MAX: u64 = 400;

/// The fitted parameters and their uncertainty.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Best parameters (the preset with the fitted ones replaced).
    pub params: TCellParams,
    /// ln of the fitted parameters, in [`FIT_PARAM_NAMES`] order.
    pub ln_params: [f64; FIT_PARAMS],
    /// Lower-triangular Cholesky factor of the posterior precision (for sampling).
    precision_chol: [[f64; FIT_PARAMS]; FIT_PARAMS],
    /// Residual scale factor (≥ 1): observed misfit beyond the assumed noise.
    pub residual_scale: f64,
    /// Root-mean-square of the ln-count residuals at the best fit.
    pub rms_ln_count: f64,
}

fn with_ln(base: &TCellParams, ln: &[f64]) -> TCellParams {
    TCellParams {
        mu_max_per_h: ln[0].exp(),
        t_lag_h: ln[1].exp(),
        t_lag_restim_h: ln[1].exp() / 2.0,
        k_s_per_h: ln[2].exp(),
        kd0_per_h: ln[3].exp(),
        ..base.clone()
    }
}

fn prior_centre(base: &TCellParams) -> [f64; FIT_PARAMS] {
    [
        base.mu_max_per_h.ln(),
        base.t_lag_h.max(1e-3).ln(),
        base.k_s_per_h.max(1e-6).ln(),
        base.kd0_per_h.max(1e-6).ln(),
    ]
}

/// Residuals of the data (not the prior) for parameters `ln`.
pub fn data_residuals(
    process: &TCellProcess,
    observations: &Observations,
    ln: &[f64],
) -> Result<Vec<f64>, TwinError> {
    let model = TCellModel::new(with_ln(&process.params, ln))?;
    let times: Vec<f64> = observations.rows().iter().map(|r| r.time_h).collect();
    let traj = process.run(&model, &times)?;
    let mut res = Vec::with_capacity(2 * times.len());
    for (obs, sim) in observations.rows().iter().zip(&traj) {
        let (o, s) = match obs.volume_ml {
            Some(v) => (obs.viable_cells_per_ml * v, sim.viable_cells()),
            None => (obs.viable_cells_per_ml, sim.y[tcell::XV]),
        };
        res.push((o.ln() - s.max(1e-300).ln()) / LOG_COUNT_SD);
        if let Some(v) = obs.viability {
            res.push((v - sim.viability()) / VIABILITY_SD);
        }
    }
    if let Some(i) = res.iter().position(|r| !r.is_finite()) {
        return Err(TwinError::NonFinite {
            quantity: "fit residual",
            time_h: times.get(i / 2).copied().unwrap_or(0.0),
        });
    }
    Ok(res)
}

struct Posterior<'a> {
    process: &'a TCellProcess,
    observations: &'a Observations,
    centre: [f64; FIT_PARAMS],
}

impl Posterior<'_> {
    fn cost(&self, ln: &[f64]) -> f64 {
        let prior: f64 = (0..FIT_PARAMS)
            .map(|j| ((ln[j] - self.centre[j]) / PRIOR_LN_SD[j]).powi(2))
            .sum();
        match data_residuals(self.process, self.observations, ln) {
            Ok(r) => r.iter().map(|x| x * x).sum::<f64>() + prior,
            // An impossible region (e.g. a blow-up) is simply worse than any valid point.
            Err(_) => f64::MAX / 4.0,
        }
    }
}

impl CostFunction for Posterior<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<Self::Output, argmin::core::Error> {
        Ok(Posterior::cost(self, p))
    }
}

/// Fits the batch: MAP by Nelder–Mead, then the Laplace covariance.
pub fn fit(process: &TCellProcess, observations: &Observations) -> Result<Fit, TwinError> {
    TCellModel::new(process.params.clone())?;
    let centre = prior_centre(&process.params);
    let problem = Posterior {
        process,
        observations,
        centre,
    };
    let mut simplex = vec![centre.to_vec()];
    for j in 0..FIT_PARAMS {
        let mut v = centre.to_vec();
        v[j] += 0.5 * PRIOR_LN_SD[j];
        simplex.push(v);
    }
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(1e-6)
        .map_err(|e| TwinError::Fit {
            reason: e.to_string(),
        })?;
    let result = Executor::new(problem, solver)
        .configure(|s| s.max_iters(FIT_ITERATIONS_MAX))
        .timer(false)
        .run()
        .map_err(|e| TwinError::Fit {
            reason: e.to_string(),
        })?;
    let best = result
        .state()
        .get_best_param()
        .cloned()
        .ok_or_else(|| TwinError::Fit {
            reason: "no best parameters".to_string(),
        })?;
    let mut ln_params = [0.0; FIT_PARAMS];
    ln_params.copy_from_slice(&best);
    finish_fit(process, observations, ln_params)
}

fn finish_fit(
    process: &TCellProcess,
    observations: &Observations,
    ln_params: [f64; FIT_PARAMS],
) -> Result<Fit, TwinError> {
    let r0 = data_residuals(process, observations, &ln_params)?;
    // Gauss–Newton Hessian of ½·cost: JᵀJ + diag(1/σ²), J by central differences.
    const H: f64 = 1e-4;
    let mut jac = vec![[0.0; FIT_PARAMS]; r0.len()];
    for j in 0..FIT_PARAMS {
        let mut up = ln_params;
        let mut dn = ln_params;
        up[j] += H;
        dn[j] -= H;
        let (ru, rd) = (
            data_residuals(process, observations, &up)?,
            data_residuals(process, observations, &dn)?,
        );
        for i in 0..r0.len() {
            jac[i][j] = (ru[i] - rd[i]) / (2.0 * H);
        }
    }
    let mut precision = [[0.0; FIT_PARAMS]; FIT_PARAMS];
    for a in 0..FIT_PARAMS {
        for b in 0..FIT_PARAMS {
            precision[a][b] = jac.iter().map(|row| row[a] * row[b]).sum();
        }
        precision[a][a] += 1.0 / PRIOR_LN_SD[a].powi(2);
    }
    let ssr: f64 = r0.iter().map(|x| x * x).sum();
    let dof = r0.len().saturating_sub(FIT_PARAMS);
    let residual_scale = if dof > 0 {
        (ssr / dof as f64).sqrt().max(1.0)
    } else {
        1.0
    };
    for row in precision.iter_mut() {
        for v in row.iter_mut() {
            *v /= residual_scale * residual_scale;
        }
    }
    let precision_chol = cholesky(&precision).ok_or_else(|| TwinError::Fit {
        reason: "posterior precision is not positive definite".to_string(),
    })?;
    let counts: Vec<f64> = {
        let mut out = Vec::new();
        let mut i = 0;
        for obs in observations.rows() {
            out.push(r0[i] * LOG_COUNT_SD);
            i += 1 + usize::from(obs.viability.is_some());
        }
        out
    };
    let rms_ln_count = (counts.iter().map(|x| x * x).sum::<f64>() / counts.len() as f64).sqrt();
    Ok(Fit {
        params: with_ln(&process.params, &ln_params),
        ln_params,
        precision_chol,
        residual_scale,
        rms_ln_count,
    })
}

fn cholesky(a: &[[f64; FIT_PARAMS]; FIT_PARAMS]) -> Option<[[f64; FIT_PARAMS]; FIT_PARAMS]> {
    let mut l = [[0.0; FIT_PARAMS]; FIT_PARAMS];
    for i in 0..FIT_PARAMS {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = a[i][i] - s;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (a[i][j] - s) / l[j][j];
            }
        }
    }
    Some(l)
}

impl Fit {
    /// Posterior standard deviation of each ln-parameter.
    pub fn ln_sd(&self) -> [f64; FIT_PARAMS] {
        // Σ = (L Lᵀ)⁻¹; the diagonal via solving L Lᵀ x = e_j.
        let mut out = [0.0; FIT_PARAMS];
        for (j, o) in out.iter_mut().enumerate() {
            let mut e = [0.0; FIT_PARAMS];
            e[j] = 1.0;
            let x = self.solve_lt(&self.solve_l(&e));
            *o = x[j].sqrt();
        }
        out
    }

    fn solve_l(&self, b: &[f64; FIT_PARAMS]) -> [f64; FIT_PARAMS] {
        let l = &self.precision_chol;
        let mut y = [0.0; FIT_PARAMS];
        for i in 0..FIT_PARAMS {
            let s: f64 = (0..i).map(|k| l[i][k] * y[k]).sum();
            y[i] = (b[i] - s) / l[i][i];
        }
        y
    }

    fn solve_lt(&self, b: &[f64; FIT_PARAMS]) -> [f64; FIT_PARAMS] {
        let l = &self.precision_chol;
        let mut x = [0.0; FIT_PARAMS];
        for i in (0..FIT_PARAMS).rev() {
            let s: f64 = (i + 1..FIT_PARAMS).map(|k| l[k][i] * x[k]).sum();
            x[i] = (b[i] - s) / l[i][i];
        }
        x
    }

    /// Draws parameters from the Laplace posterior: ln θ = ln θ̂ + L⁻ᵀ z, z ~ N(0, I).
    pub fn sample(&self, rng: &mut impl Rng) -> TCellParams {
        let mut z = [0.0; FIT_PARAMS];
        for v in z.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        let dx = self.solve_lt(&z);
        let mut ln = self.ln_params;
        for j in 0..FIT_PARAMS {
            ln[j] += dx[j];
        }
        with_ln(&self.params, &ln)
    }
}
