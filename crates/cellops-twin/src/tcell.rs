//! T-cell / CAR-T suspension culture (bioprocess.md §2.1): activation lag, stimulus decay,
//! Monod glucose limitation, lactate and ammonia inhibition, a density cap, death and lysis,
//! fed-batch feeds, medium exchange, perfusion, restimulation and Poisson transduction.
//!
//! Time inside the ODE is in hours; rates given per day in the reference (qG, qA, perfusion)
//! are divided by 24 where they enter.

use crate::error::{TwinError, check_fraction, check_non_negative, check_positive};
use crate::ode::{StepMemory, Tolerance, integrate};

/// Number of ODE state components.
pub const STATE_LEN: usize = 7;
/// Index of viable cells/mL in the state vector.
pub const XV: usize = 0;
/// Index of dead cells/mL.
pub const XD: usize = 1;
/// Index of glucose, mM.
pub const GLC: usize = 2;
/// Index of lactate (plus bacterial acid counted as lactate), mM.
pub const LAC: usize = 3;
/// Index of ammonia, mM.
pub const AMM: usize = 4;
/// Index of hours since the last stimulation.
pub const T_ACT: usize = 5;
/// Index of contaminating bacteria, cells/mL (zero unless a contamination fault is injected).
pub const BAC: usize = 6;
/// Names of the state components, for errors.
pub const STATE_NAMES: [&str; STATE_LEN] = [
    "viable_cells_per_ml",
    "dead_cells_per_ml",
    "glucose_mm",
    "lactate_mm",
    "ammonia_mm",
    "time_since_activation_h",
    "bacteria_per_ml",
];

/// Width in mM over which the glucose-starvation death term switches on. The reference
/// writes a hard indicator `[G < G_crit]`; a logistic step this narrow has the same effect
/// and keeps the right-hand side continuous for adaptive step control.
pub const GLUCOSE_STEP_WIDTH_MM: f64 = 0.05;
/// Bacterial maximum specific growth rate, 1/h (≈1 h doubling; unconfirmed engineering default).
pub const BACTERIA_MU_PER_H: f64 = 0.7;
/// Bacterial density cap, cells/mL (unconfirmed).
pub const BACTERIA_MAX_PER_ML: f64 = 1e9;
/// Bacterial glucose uptake, pmol/cell/h (order of E. coli ≈ 10 mmol/gDW/h × 0.3 pg DW; unconfirmed).
pub const BACTERIA_Q_GLUCOSE_PMOL_PER_CELL_H: f64 = 3e-3;
/// Acid (counted as lactate) released per glucose by bacteria, mol/mol (unconfirmed).
pub const BACTERIA_ACID_PER_GLUCOSE: f64 = 2.0;

/// Kinetic parameters of the T-cell model; defaults are bioprocess.md §2.1's table. Build a
/// [`TCellModel`] from them to use them: that checks every field.
#[derive(Debug, Clone, PartialEq)]
pub struct TCellParams {
    /// Maximum specific growth rate, 1/h.
    pub mu_max_per_h: f64,
    /// Multiplier on `mu_max` (IL-7 secretion for PRIME, patient fitness); 1.0 = none.
    pub mu_multiplier: f64,
    /// Activation lag midpoint after first stimulation, h.
    pub t_lag_h: f64,
    /// Activation lag midpoint after a restimulation, h (shorter; unconfirmed default t_lag/2).
    pub t_lag_restim_h: f64,
    /// Lag steepness (logistic time constant), h.
    pub tau_lag_h: f64,
    /// Stimulus decay rate, 1/h.
    pub k_s_per_h: f64,
    /// Residual growth fraction once the stimulus has decayed (0..1).
    pub s_min: f64,
    /// Density cap, cells/mL.
    pub x_max_cells_per_ml: f64,
    /// Monod constant for glucose, mM.
    pub k_g_mm: f64,
    /// Lactate inhibition constant, mM.
    pub k_il_mm: f64,
    /// Ammonia inhibition constant, mM.
    pub k_ia_mm: f64,
    /// Specific glucose uptake, pmol/cell/day.
    pub q_g_pmol_per_cell_day: f64,
    /// Lactate yield on glucose, mol/mol.
    pub y_lg_mol_per_mol: f64,
    /// Specific ammonia production, pmol/cell/day.
    pub q_a_pmol_per_cell_day: f64,
    /// Ammonia degradation/removal rate, 1/h.
    pub k_adeg_per_h: f64,
    /// Basal death rate, 1/h.
    pub kd0_per_h: f64,
    /// Extra death rate under glucose starvation, 1/h (unconfirmed).
    pub kd_g_per_h: f64,
    /// Glucose below which starvation death applies, mM (unconfirmed).
    pub g_crit_mm: f64,
    /// Extra death rate per unit of lactate excess over `l_crit`, 1/h (unconfirmed).
    pub kd_l_per_h: f64,
    /// Lactate above which lactate death applies, mM (unconfirmed; the 20 mM action threshold).
    pub l_crit_mm: f64,
    /// Lysis rate of dead cells, 1/h (unconfirmed).
    pub k_lys_per_h: f64,
    /// Glucose at which uptake is halved, mM. Not in the reference (its uptake term is
    /// constant and would drive glucose negative); small so uptake is flat above ~1 mM.
    pub k_uptake_mm: f64,
    /// Fraction of cells lost to activation-induced death at restimulation (0..1).
    pub r_aicd: f64,
    /// Functional fraction of vector particles (MOI × eta = functional MOI).
    pub eta_moi: f64,
}

impl Default for TCellParams {
    fn default() -> Self {
        TCellParams {
            mu_max_per_h: 0.025,
            mu_multiplier: 1.0,
            t_lag_h: 36.0,
            t_lag_restim_h: 18.0,
            tau_lag_h: 6.0,
            k_s_per_h: 0.01,
            s_min: 0.2,
            x_max_cells_per_ml: 3e6,
            k_g_mm: 0.5,
            k_il_mm: 40.0,
            k_ia_mm: 3.0,
            q_g_pmol_per_cell_day: 1.0,
            y_lg_mol_per_mol: 1.7,
            q_a_pmol_per_cell_day: 0.1,
            k_adeg_per_h: 0.0,
            kd0_per_h: 0.002,
            kd_g_per_h: 0.02,
            g_crit_mm: 0.5,
            kd_l_per_h: 0.005,
            l_crit_mm: 20.0,
            k_lys_per_h: 0.005,
            k_uptake_mm: 0.05,
            r_aicd: 0.1,
            eta_moi: 0.07,
        }
    }
}

/// Validated T-cell parameters: the only way to run the model. Fields are private so a
/// `TCellModel` always holds parameters that passed [`TCellModel::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct TCellModel {
    p: TCellParams,
}

impl TCellModel {
    /// Checks every parameter (finite, sign, fractions in [0, 1], `y_lg ≤ 2`) and returns
    /// the model, or an error naming the first bad field.
    pub fn new(p: TCellParams) -> Result<TCellModel, TwinError> {
        check_positive("mu_max_per_h", p.mu_max_per_h)?;
        check_non_negative("mu_multiplier", p.mu_multiplier)?;
        check_non_negative("t_lag_h", p.t_lag_h)?;
        check_non_negative("t_lag_restim_h", p.t_lag_restim_h)?;
        check_positive("tau_lag_h", p.tau_lag_h)?;
        check_non_negative("k_s_per_h", p.k_s_per_h)?;
        check_fraction("s_min", p.s_min)?;
        check_positive("x_max_cells_per_ml", p.x_max_cells_per_ml)?;
        check_positive("k_g_mm", p.k_g_mm)?;
        check_positive("k_il_mm", p.k_il_mm)?;
        check_positive("k_ia_mm", p.k_ia_mm)?;
        check_non_negative("q_g_pmol_per_cell_day", p.q_g_pmol_per_cell_day)?;
        check_non_negative("y_lg_mol_per_mol", p.y_lg_mol_per_mol)?;
        if p.y_lg_mol_per_mol > 2.0 {
            return Err(TwinError::InvalidValue {
                field: "y_lg_mol_per_mol",
                value: p.y_lg_mol_per_mol,
                rule: "≤ 2 (glycolysis yields at most 2 lactate per glucose)",
            });
        }
        check_non_negative("q_a_pmol_per_cell_day", p.q_a_pmol_per_cell_day)?;
        check_non_negative("k_adeg_per_h", p.k_adeg_per_h)?;
        check_non_negative("kd0_per_h", p.kd0_per_h)?;
        check_non_negative("kd_g_per_h", p.kd_g_per_h)?;
        check_non_negative("g_crit_mm", p.g_crit_mm)?;
        check_non_negative("kd_l_per_h", p.kd_l_per_h)?;
        check_positive("l_crit_mm", p.l_crit_mm)?;
        check_non_negative("k_lys_per_h", p.k_lys_per_h)?;
        check_positive("k_uptake_mm", p.k_uptake_mm)?;
        check_fraction("r_aicd", p.r_aicd)?;
        check_positive("eta_moi", p.eta_moi)?;
        Ok(TCellModel { p })
    }

    /// The validated parameters.
    pub fn params(&self) -> &TCellParams {
        &self.p
    }
}

/// Inputs held constant between events: perfusion, temperature effects, which lag applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controls {
    /// Medium perfusion (exchange) rate, volumes per day; cells are retained.
    pub perfusion_per_day: f64,
    /// Cell bleed rate, volumes per day (cells and medium leave together).
    pub bleed_per_day: f64,
    /// Glucose in fresh medium, mM.
    pub glucose_in_mm: f64,
    /// Multiplier on growth from temperature (1.0 at 37 °C).
    pub growth_factor: f64,
    /// Extra death rate from the environment (e.g. overheating), 1/h.
    pub death_extra_per_h: f64,
    /// Whether the culture has been restimulated (selects `t_lag_restim_h`).
    pub restimulated: bool,
}

impl Controls {
    /// Batch culture at 37 °C with fresh medium of `glucose_in_mm`.
    pub fn batch(glucose_in_mm: f64) -> Controls {
        Controls {
            perfusion_per_day: 0.0,
            bleed_per_day: 0.0,
            glucose_in_mm,
            growth_factor: 1.0,
            death_extra_per_h: 0.0,
            restimulated: false,
        }
    }
}

/// Specific growth rate (1/h) at state `y`, the equation of bioprocess.md §2.1.
pub fn growth_rate_per_h(p: &TCellParams, c: &Controls, y: &[f64; STATE_LEN]) -> f64 {
    let t_lag = if c.restimulated {
        p.t_lag_restim_h
    } else {
        p.t_lag_h
    };
    let lag = 1.0 / (1.0 + (-(y[T_ACT] - t_lag) / p.tau_lag_h).exp());
    let stim = (-p.k_s_per_h * y[T_ACT]).exp();
    let g = y[GLC].max(0.0);
    let f_g = g / (p.k_g_mm + g);
    let f_l = p.k_il_mm / (p.k_il_mm + y[LAC].max(0.0));
    let f_a = p.k_ia_mm / (p.k_ia_mm + y[AMM].max(0.0));
    let f_x = (1.0 - y[XV] / p.x_max_cells_per_ml).max(0.0);
    p.mu_max_per_h
        * p.mu_multiplier
        * c.growth_factor
        * lag
        * (p.s_min + (1.0 - p.s_min) * stim)
        * f_g
        * f_l
        * f_a
        * f_x
}

/// Death rate (1/h) at state `y`: basal, glucose starvation and lactate excess.
pub fn death_rate_per_h(p: &TCellParams, c: &Controls, y: &[f64; STATE_LEN]) -> f64 {
    let starving = 1.0 / (1.0 + ((y[GLC] - p.g_crit_mm) / GLUCOSE_STEP_WIDTH_MM).exp());
    p.kd0_per_h
        + p.kd_g_per_h * starving
        + p.kd_l_per_h * (y[LAC] - p.l_crit_mm).max(0.0) / p.l_crit_mm
        + c.death_extra_per_h
}

/// The right-hand side dy/dt (per hour) of the T-cell model, including contaminating
/// bacteria (zero when `y[BAC] == 0`).
pub fn rhs(p: &TCellParams, c: &Controls, y: &[f64; STATE_LEN]) -> [f64; STATE_LEN] {
    let mu = growth_rate_per_h(p, c, y);
    let kd = death_rate_per_h(p, c, y);
    let d = c.perfusion_per_day / 24.0;
    let d_bleed = c.bleed_per_day / 24.0;
    let xv = y[XV];
    let g = y[GLC].max(0.0);
    let uptake_limit = g / (p.k_uptake_mm + g);
    // pmol/cell/d × cells/mL × 1e-6 = mM/d; / 24 = mM/h (bioprocess.md §2.1 unit check).
    let uptake = p.q_g_pmol_per_cell_day * xv * 1e-6 / 24.0 * uptake_limit;
    let bac = y[BAC].max(0.0);
    let mu_bac = BACTERIA_MU_PER_H
        * c.growth_factor
        * uptake_limit.max(0.0)
        * (1.0 - bac / BACTERIA_MAX_PER_ML).max(0.0);
    let uptake_bac = BACTERIA_Q_GLUCOSE_PMOL_PER_CELL_H * bac * 1e-6 * uptake_limit;
    [
        (mu - kd) * xv - d_bleed * xv,
        kd * xv - p.k_lys_per_h * y[XD] - d_bleed * y[XD],
        -uptake - uptake_bac + d * (c.glucose_in_mm - y[GLC]),
        p.y_lg_mol_per_mol * uptake + BACTERIA_ACID_PER_GLUCOSE * uptake_bac - d * y[LAC],
        p.q_a_pmol_per_cell_day * xv * 1e-6 / 24.0 - p.k_adeg_per_h * y[AMM] - d * y[AMM],
        1.0,
        mu_bac * bac - (d + d_bleed) * bac,
    ]
}

/// Integration tolerance used by every T-cell simulation (and by the Python baseline):
/// rtol 1e-6; atol 1 cell/mL for cell densities, 1e-6 mM for concentrations, 1e-6 h for time.
pub const TOLERANCE: Tolerance<STATE_LEN> = Tolerance {
    rtol: 1e-6,
    atol: [1.0, 1.0, 1e-6, 1e-6, 1e-6, 1e-6, 1e-3],
};

/// The state of one suspension vessel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TCellState {
    /// ODE state (see the index constants).
    pub y: [f64; STATE_LEN],
    /// Working volume, mL.
    pub volume_ml: f64,
    /// CAR+ fraction of viable cells (transduced and untransduced cells share kinetics).
    pub car_pos_fraction: f64,
    /// Mean vector copies per transduced cell (0 before transduction).
    pub vcn_per_transduced_cell: f64,
}

impl TCellState {
    /// A freshly seeded vessel: `viable_cells` at `viability` in `volume_ml` of medium with
    /// `glucose_mm`, stimulated at t = 0. Errors name the bad argument.
    pub fn seeded(
        viable_cells: f64,
        viability: f64,
        volume_ml: f64,
        glucose_mm: f64,
    ) -> Result<TCellState, TwinError> {
        check_positive("viable_cells", viable_cells)?;
        check_fraction("viability", viability)?;
        check_positive("volume_ml", volume_ml)?;
        check_non_negative("glucose_mm", glucose_mm)?;
        if viability == 0.0 {
            return Err(TwinError::InvalidValue {
                field: "viability",
                value: viability,
                rule: "> 0 (a culture needs viable cells)",
            });
        }
        let xv = viable_cells / volume_ml;
        let xd = xv * (1.0 - viability) / viability;
        Ok(TCellState {
            y: [xv, xd, glucose_mm, 0.0, 0.0, 0.0, 0.0],
            volume_ml,
            car_pos_fraction: 0.0,
            vcn_per_transduced_cell: 0.0,
        })
    }

    /// Total viable cells in the vessel.
    pub fn viable_cells(&self) -> f64 {
        self.y[XV] * self.volume_ml
    }

    /// Total viable CAR+ cells in the vessel.
    pub fn car_pos_viable_cells(&self) -> f64 {
        self.viable_cells() * self.car_pos_fraction
    }

    /// Viability, viable / (viable + dead), 0..1 (0 for an empty vessel).
    pub fn viability(&self) -> f64 {
        let total = self.y[XV] + self.y[XD];
        if total > 0.0 {
            (self.y[XV] / total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// Poisson transduction (bioprocess.md §2.1): returns (CAR+ fraction, mean copies per
/// transduced cell) for a nominal MOI and functional fraction `eta`.
pub fn transduction(moi_nominal: f64, eta: f64) -> Result<(f64, f64), TwinError> {
    check_positive("moi_nominal", moi_nominal)?;
    check_positive("eta_moi", eta)?;
    let m = moi_nominal * eta;
    let f_car = 1.0 - (-m).exp();
    Ok((f_car, m / f_car))
}

/// A discrete process action on a suspension vessel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TCellAction {
    /// Add `volume_ml` of fresh medium with `glucose_mm`; everything is diluted.
    Feed {
        /// Added volume, mL.
        volume_ml: f64,
        /// Glucose in the added medium, mM.
        glucose_mm: f64,
    },
    /// Replace `fraction` of the medium (cells retained, e.g. by settling or a filter).
    Exchange {
        /// Fraction of the medium replaced, 0..1.
        fraction: f64,
        /// Glucose in the fresh medium, mM.
        glucose_mm: f64,
    },
    /// Transduce at nominal MOI (sets CAR+ fraction and VCN by the Poisson model).
    Transduce {
        /// Nominal MOI (particles per cell).
        moi_nominal: f64,
    },
    /// Restimulate: time since activation resets to 0, `r_aicd` of viable cells die.
    Restimulate,
    /// Set the perfusion rate, volumes per day.
    SetPerfusion {
        /// Perfusion rate, volumes per day.
        per_day: f64,
    },
}

impl TCellAction {
    /// Applies the action to `state` and `controls`; errors name the bad field.
    pub fn apply(
        &self,
        model: &TCellModel,
        state: &mut TCellState,
        controls: &mut Controls,
    ) -> Result<(), TwinError> {
        match *self {
            TCellAction::Feed {
                volume_ml,
                glucose_mm,
            } => {
                check_positive("volume_ml", volume_ml)?;
                check_non_negative("glucose_mm", glucose_mm)?;
                let v0 = state.volume_ml;
                let v1 = v0 + volume_ml;
                for i in [XV, XD, LAC, AMM, BAC] {
                    state.y[i] *= v0 / v1;
                }
                state.y[GLC] = (state.y[GLC] * v0 + glucose_mm * volume_ml) / v1;
                state.volume_ml = v1;
            }
            TCellAction::Exchange {
                fraction,
                glucose_mm,
            } => {
                check_fraction("fraction", fraction)?;
                check_non_negative("glucose_mm", glucose_mm)?;
                state.y[GLC] = state.y[GLC] * (1.0 - fraction) + glucose_mm * fraction;
                state.y[LAC] *= 1.0 - fraction;
                state.y[AMM] *= 1.0 - fraction;
                state.y[BAC] *= 1.0 - fraction;
            }
            TCellAction::Transduce { moi_nominal } => {
                let (f_car, vcn) = transduction(moi_nominal, model.p.eta_moi)?;
                state.car_pos_fraction = f_car;
                state.vcn_per_transduced_cell = vcn;
            }
            TCellAction::Restimulate => {
                let killed = state.y[XV] * model.p.r_aicd;
                state.y[XV] -= killed;
                state.y[XD] += killed;
                state.y[T_ACT] = 0.0;
                controls.restimulated = true;
            }
            TCellAction::SetPerfusion { per_day } => {
                controls.perfusion_per_day = check_non_negative("per_day", per_day)?;
            }
        }
        Ok(())
    }
}

/// An action scheduled at a fixed time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduledAction {
    /// When, in hours from seeding.
    pub at_h: f64,
    /// What.
    pub action: TCellAction,
}

/// Runs the model from `initial` with fixed-time `schedule` and returns the state at each of
/// `outputs_h` (ascending, hours). An output at the same time as an action is recorded
/// before the action. `memory` carries the integrator's step between calls.
pub fn simulate(
    model: &TCellModel,
    initial: &TCellState,
    controls: Controls,
    schedule: &[ScheduledAction],
    outputs_h: &[f64],
    memory: &mut StepMemory,
) -> Result<Vec<TCellState>, TwinError> {
    check_sorted("outputs_h", outputs_h.iter().copied())?;
    check_sorted("schedule.at_h", schedule.iter().map(|a| a.at_h))?;
    let mut out = Vec::with_capacity(outputs_h.len());
    let mut state = *initial;
    let mut controls = controls;
    let mut t = 0.0;
    let mut next_action = 0;
    for &t_out in outputs_h {
        while next_action < schedule.len() && schedule[next_action].at_h < t_out {
            let a = schedule[next_action];
            state.y = advance(model, &controls, state.y, t, a.at_h, memory)?;
            t = a.at_h.max(t);
            a.action.apply(model, &mut state, &mut controls)?;
            next_action += 1;
        }
        state.y = advance(model, &controls, state.y, t, t_out, memory)?;
        t = t_out.max(t);
        out.push(state);
    }
    Ok(out)
}

/// Integrates the T-cell ODE from `t0_h` to `t1_h` under constant `controls`.
pub fn advance(
    model: &TCellModel,
    controls: &Controls,
    y: [f64; STATE_LEN],
    t0_h: f64,
    t1_h: f64,
    memory: &mut StepMemory,
) -> Result<[f64; STATE_LEN], TwinError> {
    if t1_h <= t0_h {
        return Ok(y);
    }
    let p = &model.p;
    integrate(
        |_, y| rhs(p, controls, y),
        t0_h,
        y,
        t1_h,
        &TOLERANCE,
        &STATE_NAMES,
        memory,
    )
}

pub(crate) fn check_sorted(
    field: &'static str,
    values: impl Iterator<Item = f64>,
) -> Result<(), TwinError> {
    let mut prev = 0.0f64;
    for v in values {
        check_non_negative(field, v)?;
        if v < prev {
            return Err(TwinError::Inconsistent {
                field,
                rule: format!("times must be ascending, but {v} follows {prev}"),
            });
        }
        prev = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_params_validate() {
        TCellModel::new(TCellParams::default()).unwrap();
    }

    #[test]
    fn negative_parameter_names_its_field() {
        let p = TCellParams {
            q_g_pmol_per_cell_day: -1.0,
            ..TCellParams::default()
        };
        let err = TCellModel::new(p).unwrap_err();
        assert!(err.to_string().contains("q_g_pmol_per_cell_day"), "{err}");
    }

    #[test]
    fn nan_parameter_is_rejected() {
        let p = TCellParams {
            mu_max_per_h: f64::NAN,
            ..TCellParams::default()
        };
        assert!(matches!(
            TCellModel::new(p),
            Err(TwinError::InvalidValue {
                field: "mu_max_per_h",
                ..
            })
        ));
    }

    #[test]
    fn feed_conserves_glucose_mass() {
        let m = TCellModel::new(TCellParams::default()).unwrap();
        let mut s = TCellState::seeded(1e8, 0.9, 100.0, 5.0).unwrap();
        let mut c = Controls::batch(11.0);
        let cells = s.viable_cells();
        TCellAction::Feed {
            volume_ml: 100.0,
            glucose_mm: 11.0,
        }
        .apply(&m, &mut s, &mut c)
        .unwrap();
        assert!((s.y[GLC] - 8.0).abs() < 1e-12);
        assert!((s.viable_cells() - cells).abs() / cells < 1e-12);
    }

    #[test]
    fn glucose_never_goes_negative_in_a_starved_batch() {
        let m = TCellModel::new(TCellParams::default()).unwrap();
        let s = TCellState::seeded(3e8, 0.95, 100.0, 2.0).unwrap();
        let outs: Vec<f64> = (0..=14).map(|d| d as f64 * 24.0).collect();
        let traj = simulate(
            &m,
            &s,
            Controls::batch(11.0),
            &[],
            &outs,
            &mut StepMemory::default(),
        )
        .unwrap();
        for st in &traj {
            assert!(st.y[GLC] > -1e-6, "glucose {}", st.y[GLC]);
        }
        assert!(traj.last().unwrap().viability() < 0.9, "starvation kills");
    }

    #[test]
    fn out_of_order_outputs_are_rejected() {
        let m = TCellModel::new(TCellParams::default()).unwrap();
        let s = TCellState::seeded(1e8, 0.95, 100.0, 11.0).unwrap();
        let err = simulate(
            &m,
            &s,
            Controls::batch(11.0),
            &[],
            &[24.0, 12.0],
            &mut StepMemory::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("outputs_h"), "{err}");
    }
}
