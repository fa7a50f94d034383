//! Adherent MSC culture (bioprocess.md §2.2): lag after seeding, contact inhibition by
//! surface density, senescence with cumulative population doublings, glucose uptake with
//! lactate and ammonia inhibition (Hill n = 4 at Schop et al.'s growth-inhibiting levels),
//! medium exchanges and passaging at a confluence target. P0 starts from colony founders in
//! a bone-marrow aspirate (~30 mL, NCT02327832).

use crate::error::{TwinError, check_fraction, check_non_negative, check_positive};
use crate::ode::{StepMemory, Tolerance, integrate};
use crate::tcell::{
    BACTERIA_ACID_PER_GLUCOSE, BACTERIA_MAX_PER_ML, BACTERIA_MU_PER_H,
    BACTERIA_Q_GLUCOSE_PMOL_PER_CELL_H,
};

/// Number of ODE state components.
pub const STATE_LEN: usize = 7;
/// Index of viable cells/cm2.
pub const N: usize = 0;
/// Index of glucose, mM.
pub const GLC: usize = 1;
/// Index of lactate (plus bacterial acid), mM.
pub const LAC: usize = 2;
/// Index of ammonia, mM.
pub const AMM: usize = 3;
/// Index of cumulative population doublings (net, log2 of cells over cells seeded).
pub const PD: usize = 4;
/// Index of hours since seeding.
pub const T_SEED: usize = 5;
/// Index of contaminating bacteria, cells/mL.
pub const BAC: usize = 6;
/// Names of the state components, for errors.
pub const STATE_NAMES: [&str; STATE_LEN] = [
    "viable_cells_per_cm2",
    "glucose_mm",
    "lactate_mm",
    "ammonia_mm",
    "population_doublings",
    "time_since_seeding_h",
    "bacteria_per_ml",
];
/// Hill exponent of the lactate/ammonia inhibition (bioprocess.md §2.2, unconfirmed).
pub const HILL_N: i32 = 4;
/// Largest culture area one lot may occupy, cm2 (4 ten-layer stacks of 636 cm2 per layer;
/// unconfirmed). Cells beyond it are discarded at passaging.
pub const AREA_CM2_MAX: f64 = 25_440.0;
/// Integration tolerance for MSC runs.
pub const TOLERANCE: Tolerance<STATE_LEN> = Tolerance {
    rtol: 1e-6,
    atol: [1e-3, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-3],
};

/// MSC kinetic and process parameters; defaults are bioprocess.md §2.2's table.
#[derive(Debug, Clone, PartialEq)]
pub struct MscParams {
    /// Maximum specific growth rate, 1/h.
    pub mu_max_per_h: f64,
    /// Lag midpoint after seeding, h.
    pub t_lag_h: f64,
    /// Lag steepness, h (unconfirmed).
    pub tau_lag_h: f64,
    /// Death rate, 1/h (unconfirmed).
    pub kd_per_h: f64,
    /// Seeding density at passage, cells/cm2.
    pub n_seed_cells_per_cm2: f64,
    /// Density at 100 % confluence, cells/cm2.
    pub n_conf_cells_per_cm2: f64,
    /// Passage when confluence ≥ this fraction.
    pub c_pass: f64,
    /// Fraction of cells recovered by trypsinisation.
    pub r_tryp: f64,
    /// Population doublings at which proliferation stops.
    pub pd_limit: f64,
    /// Medium volume per culture area, mL/cm2.
    pub medium_ml_per_cm2: f64,
    /// Specific glucose uptake, pmol/cell/day (human MSC, Schop et al. 2009).
    pub q_g_pmol_per_cell_day: f64,
    /// Lactate yield on glucose, mol/mol (Schop et al. 2009).
    pub y_lg_mol_per_mol: f64,
    /// Specific ammonia production, pmol/cell/day (unconfirmed).
    pub q_a_pmol_per_cell_day: f64,
    /// Growth-inhibiting lactate, mM (Schop et al. 2009).
    pub k_il_mm: f64,
    /// Growth-inhibiting ammonia, mM (Schop et al. 2009).
    pub k_ia_mm: f64,
    /// Monod constant for glucose, mM (unconfirmed; T-cell default).
    pub k_g_mm: f64,
    /// Glucose at which uptake halves, mM (keeps glucose ≥ 0).
    pub k_uptake_mm: f64,
    /// Glucose in fresh medium, mM (low-glucose DMEM, 5.5 mM).
    pub glucose_medium_mm: f64,
}

impl Default for MscParams {
    fn default() -> Self {
        MscParams {
            mu_max_per_h: 0.02,
            t_lag_h: 24.0,
            tau_lag_h: 4.0,
            kd_per_h: 0.001,
            n_seed_cells_per_cm2: 3000.0,
            n_conf_cells_per_cm2: 3e4,
            c_pass: 0.8,
            r_tryp: 0.9,
            pd_limit: 40.0,
            medium_ml_per_cm2: 0.2,
            q_g_pmol_per_cell_day: 9.2,
            y_lg_mol_per_mol: 2.0,
            q_a_pmol_per_cell_day: 0.1,
            k_il_mm: 35.4,
            k_ia_mm: 2.4,
            k_g_mm: 0.5,
            k_uptake_mm: 0.05,
            glucose_medium_mm: 5.5,
        }
    }
}

/// Validated MSC parameters: the only way to run the MSC model.
#[derive(Debug, Clone, PartialEq)]
pub struct MscModel {
    p: MscParams,
}

impl MscModel {
    /// Checks every field and returns the model, or an error naming the first bad field.
    pub fn new(p: MscParams) -> Result<MscModel, TwinError> {
        check_positive("mu_max_per_h", p.mu_max_per_h)?;
        check_non_negative("t_lag_h", p.t_lag_h)?;
        check_positive("tau_lag_h", p.tau_lag_h)?;
        check_non_negative("kd_per_h", p.kd_per_h)?;
        check_positive("n_seed_cells_per_cm2", p.n_seed_cells_per_cm2)?;
        check_positive("n_conf_cells_per_cm2", p.n_conf_cells_per_cm2)?;
        check_fraction("c_pass", p.c_pass)?;
        check_fraction("r_tryp", p.r_tryp)?;
        check_positive("pd_limit", p.pd_limit)?;
        check_positive("medium_ml_per_cm2", p.medium_ml_per_cm2)?;
        check_non_negative("q_g_pmol_per_cell_day", p.q_g_pmol_per_cell_day)?;
        check_non_negative("y_lg_mol_per_mol", p.y_lg_mol_per_mol)?;
        check_non_negative("q_a_pmol_per_cell_day", p.q_a_pmol_per_cell_day)?;
        check_positive("k_il_mm", p.k_il_mm)?;
        check_positive("k_ia_mm", p.k_ia_mm)?;
        check_positive("k_g_mm", p.k_g_mm)?;
        check_positive("k_uptake_mm", p.k_uptake_mm)?;
        check_non_negative("glucose_medium_mm", p.glucose_medium_mm)?;
        if p.n_seed_cells_per_cm2 >= p.c_pass * p.n_conf_cells_per_cm2 {
            return Err(TwinError::Inconsistent {
                field: "n_seed_cells_per_cm2",
                rule: format!(
                    "seeding density {} must be below the passage density c_pass × n_conf = {}",
                    p.n_seed_cells_per_cm2,
                    p.c_pass * p.n_conf_cells_per_cm2
                ),
            });
        }
        Ok(MscModel { p })
    }

    /// The validated parameters.
    pub fn params(&self) -> &MscParams {
        &self.p
    }
}

/// Specific growth rate, 1/h, at state `y` with temperature factor `growth_factor`.
pub fn growth_rate_per_h(p: &MscParams, growth_factor: f64, y: &[f64; STATE_LEN]) -> f64 {
    let lag = 1.0 / (1.0 + (-(y[T_SEED] - p.t_lag_h) / p.tau_lag_h).exp());
    let contact = (1.0 - y[N] / p.n_conf_cells_per_cm2).max(0.0);
    let g = y[GLC].max(0.0);
    let f_g = g / (p.k_g_mm + g);
    let f_l = 1.0 / (1.0 + (y[LAC].max(0.0) / p.k_il_mm).powi(HILL_N));
    let f_a = 1.0 / (1.0 + (y[AMM].max(0.0) / p.k_ia_mm).powi(HILL_N));
    let senesc = (1.0 - y[PD] / p.pd_limit).max(0.0);
    p.mu_max_per_h * growth_factor * lag * contact * f_g * f_l * f_a * senesc
}

/// dy/dt per hour. `medium_ml_per_cm2` converts surface density to cells per mL of medium.
pub fn rhs(
    p: &MscParams,
    growth_factor: f64,
    death_extra_per_h: f64,
    y: &[f64; STATE_LEN],
) -> [f64; STATE_LEN] {
    let mu = growth_rate_per_h(p, growth_factor, y);
    let kd = p.kd_per_h + death_extra_per_h;
    let cells_per_ml = y[N] / p.medium_ml_per_cm2;
    let g = y[GLC].max(0.0);
    let limit = g / (p.k_uptake_mm + g);
    let uptake = p.q_g_pmol_per_cell_day * cells_per_ml * 1e-6 / 24.0 * limit;
    let bac = y[BAC].max(0.0);
    let mu_bac =
        BACTERIA_MU_PER_H * growth_factor * limit * (1.0 - bac / BACTERIA_MAX_PER_ML).max(0.0);
    let uptake_bac = BACTERIA_Q_GLUCOSE_PMOL_PER_CELL_H * bac * 1e-6 * limit;
    [
        (mu - kd) * y[N],
        -uptake - uptake_bac,
        p.y_lg_mol_per_mol * uptake + BACTERIA_ACID_PER_GLUCOSE * uptake_bac,
        p.q_a_pmol_per_cell_day * cells_per_ml * 1e-6 / 24.0,
        (mu - kd) / std::f64::consts::LN_2,
        1.0,
        mu_bac * bac,
    ]
}

/// One adherent lot: the ODE state plus vessel facts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MscState {
    /// ODE state (see the index constants).
    pub y: [f64; STATE_LEN],
    /// Culture area, cm2.
    pub area_cm2: f64,
    /// Passage index (0 = primary culture from marrow).
    pub passage: u32,
    /// Cells discarded because the area limit was reached.
    pub cells_discarded: f64,
}

impl MscState {
    /// P0 from a marrow aspirate: `marrow_ml` × `cfu_per_ml` colony founders plated on
    /// `area_cm2` (non-adherent cells are washed out after ~24 h and not modelled).
    pub fn from_marrow(
        model: &MscModel,
        marrow_ml: f64,
        cfu_per_ml: f64,
        area_cm2: f64,
    ) -> Result<MscState, TwinError> {
        check_positive("marrow_ml", marrow_ml)?;
        check_positive("cfu_per_ml", cfu_per_ml)?;
        check_positive("area_cm2", area_cm2)?;
        if area_cm2 > AREA_CM2_MAX {
            return Err(TwinError::InvalidValue {
                field: "area_cm2",
                value: area_cm2,
                rule: "≤ AREA_CM2_MAX (25 440 cm2)",
            });
        }
        let n0 = marrow_ml * cfu_per_ml / area_cm2;
        Ok(MscState {
            y: [n0, model.p.glucose_medium_mm, 0.0, 0.0, 0.0, 0.0, 0.0],
            area_cm2,
            passage: 0,
            cells_discarded: 0.0,
        })
    }

    /// Viable cells on the whole area.
    pub fn viable_cells(&self) -> f64 {
        self.y[N] * self.area_cm2
    }

    /// Confluence, fraction of `n_conf`.
    pub fn confluence(&self, model: &MscModel) -> f64 {
        self.y[N] / model.p.n_conf_cells_per_cm2
    }

    /// Medium volume, mL.
    pub fn medium_ml(&self, model: &MscModel) -> f64 {
        self.area_cm2 * model.p.medium_ml_per_cm2
    }
}

/// Replaces the medium: glucose back to fresh, lactate and ammonia removed.
pub fn exchange_medium(model: &MscModel, state: &mut MscState) {
    state.y[GLC] = model.p.glucose_medium_mm;
    state.y[LAC] = 0.0;
    state.y[AMM] = 0.0;
    // Most bacteria leave with the medium; those attached to the surface stay (unconfirmed 10 %).
    state.y[BAC] *= 0.1;
}

/// Passages the lot: harvests with recovery `r_tryp` and reseeds at `n_seed` on as much area
/// as the cells cover, up to [`AREA_CM2_MAX`]; returns the cells harvested.
pub fn passage(model: &MscModel, state: &mut MscState) -> f64 {
    let p = &model.p;
    let harvested = state.viable_cells() * p.r_tryp;
    let area = (harvested / p.n_seed_cells_per_cm2).min(AREA_CM2_MAX);
    let seeded = area * p.n_seed_cells_per_cm2;
    state.cells_discarded += harvested - seeded;
    // Trypsin losses are not doublings: PD stays log2 of cells over cells first seeded.
    state.y[PD] += (p.r_tryp).log2();
    state.y[N] = p.n_seed_cells_per_cm2;
    state.y[T_SEED] = 0.0;
    state.area_cm2 = area;
    state.passage += 1;
    exchange_medium(model, state);
    harvested
}

/// Integrates the MSC ODE from `t0_h` to `t1_h` with constant environment factors.
pub fn advance(
    model: &MscModel,
    growth_factor: f64,
    death_extra_per_h: f64,
    y: [f64; STATE_LEN],
    t0_h: f64,
    t1_h: f64,
    memory: &mut StepMemory,
) -> Result<[f64; STATE_LEN], TwinError> {
    let p = &model.p;
    integrate(
        |_, y| rhs(p, growth_factor, death_extra_per_h, y),
        t0_h,
        y,
        t1_h,
        &TOLERANCE,
        &STATE_NAMES,
        memory,
    )
}

/// Standard protocol settings for an autologous BM-MSC lot (bioprocess.md §1c, §2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct MscProtocol {
    /// Marrow aspirate volume, mL (~30 mL, NCT02327832).
    pub marrow_ml: f64,
    /// Colony-forming founders per mL of marrow (10-100; unconfirmed default 50).
    pub cfu_per_ml: f64,
    /// P0 culture area, cm2 (two T175 flasks; unconfirmed).
    pub p0_area_cm2: f64,
    /// Medium exchange interval, h (every 3-4 d; unconfirmed default 3.5 d).
    pub exchange_every_h: f64,
}

impl Default for MscProtocol {
    fn default() -> Self {
        MscProtocol {
            marrow_ml: 30.0,
            cfu_per_ml: 50.0,
            p0_area_cm2: 350.0,
            exchange_every_h: 84.0,
        }
    }
}

/// `mu_max` of the bm-msc preset, 1/h: the top of the 0.012-0.03 range, the closest the
/// table allows to the ~3 weeks of NCT02327832 (P0 alone then takes ~3 weeks; docs/twin.md).
pub const BM_MSC_MU_MAX_PER_H: f64 = 0.03;

/// Parameters of the bm-msc preset.
pub fn bm_msc_params() -> MscParams {
    MscParams {
        mu_max_per_h: BM_MSC_MU_MAX_PER_H,
        ..MscParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_seed_must_be_below_passage_density() {
        MscModel::new(MscParams::default()).unwrap();
        let bad = MscParams {
            n_seed_cells_per_cm2: 3e4,
            ..MscParams::default()
        };
        let err = MscModel::new(bad).unwrap_err();
        assert!(err.to_string().contains("n_seed_cells_per_cm2"), "{err}");
    }

    #[test]
    fn passage_reseeds_at_seed_density_and_respects_area_cap() {
        let m = MscModel::new(MscParams::default()).unwrap();
        let mut s = MscState::from_marrow(&m, 30.0, 50.0, 350.0).unwrap();
        s.y[N] = 24_000.0;
        let harvested = passage(&m, &mut s);
        assert!((harvested - 24_000.0 * 350.0 * 0.9).abs() < 1e-6);
        assert_eq!(s.y[N], 3000.0);
        assert!((s.area_cm2 - harvested / 3000.0).abs() < 1e-9);
        s.y[N] = 24_000.0;
        s.area_cm2 = AREA_CM2_MAX;
        passage(&m, &mut s);
        assert_eq!(s.area_cm2, AREA_CM2_MAX);
        assert!(s.cells_discarded > 0.0);
    }
}
