//! Product presets (process schedules and calibrated defaults) and donor/patient variability.
//!
//! The PRIME CAR-T preset is calibrated to the closed-device anchor of bioprocess.md §2.1
//! (~30-fold in 13 d, Zhu et al. 2018); the allogeneic preset to the large-scale anchor
//! (1.5e10 cells after 12 d, Francis et al. 2023). See docs/twin.md for how.

use rand::Rng;

use crate::error::TwinError;
use crate::tcell::{Controls, ScheduledAction, TCellAction, TCellModel, TCellParams, TCellState};

/// Glucose in fresh medium, mM (RPMI-1640 formulation, 11.1 mM).
pub const MEDIUM_GLUCOSE_MM: f64 = 11.1;
/// Nominal MOI used by the presets (middle of Zhu et al. 2018's 5-10).
pub const PRESET_MOI: f64 = 7.5;
/// Largest number of cells a closed device seeds at day 0 (unconfirmed engineering default).
pub const DEVICE_SEED_CELLS_MAX: f64 = 1e8;
/// Median CD3+ cells collected by leukapheresis (UK paediatric cohort, Blood Cancer J 2024).
pub const APHERESIS_CD3_CELLS_MEDIAN: f64 = 2.6e9;
/// Interquartile range of CD3+ collected: 1.2e9 to 4.1e9 (same source).
pub const APHERESIS_CD3_CELLS_IQR: (f64, f64) = (1.2e9, 4.1e9);

/// The three product families of bioprocess.md §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Autologous PRIME (IL-7 × CCL19) CAR-T on a closed all-in-one device, 13 d.
    PrimeCarT,
    /// Allogeneic genome-edited CAR-T, large-scale perfused lot, 12 d.
    AlloCarT,
    /// Autologous bone-marrow MSC from ~30 mL aspirate, ~3 weeks with passaging.
    BmMsc,
}

impl Product {
    /// Parses the CLI name (`prime-car-t`, `allo-car-t`, `bm-msc`).
    pub fn parse(name: &str) -> Result<Product, TwinError> {
        match name {
            "prime-car-t" => Ok(Product::PrimeCarT),
            "allo-car-t" => Ok(Product::AlloCarT),
            "bm-msc" => Ok(Product::BmMsc),
            _ => Err(TwinError::Inconsistent {
                field: "product",
                rule: format!("{name:?} is not one of prime-car-t, allo-car-t, bm-msc"),
            }),
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Product::PrimeCarT => "prime-car-t",
            Product::AlloCarT => "allo-car-t",
            Product::BmMsc => "bm-msc",
        }
    }
}

/// A suspension (CAR-T) process: parameters, seeded vessel, controls and fixed schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct TCellProcess {
    /// Kinetic parameters (unvalidated; build a model with [`TCellModel::new`]).
    pub params: TCellParams,
    /// The vessel at seeding (t = 0).
    pub initial: TCellState,
    /// Controls at t = 0.
    pub controls: Controls,
    /// Fixed-time actions, ascending.
    pub schedule: Vec<ScheduledAction>,
    /// Planned culture length, h.
    pub duration_h: f64,
}

/// `mu_max` of the PRIME preset, 1/h: the top of the 0.017-0.035 range (19.8 h doubling).
/// With the other §2.1 defaults, only the top of the range can reach ~30-fold in 13 d.
pub const PRIME_MU_MAX_PER_H: f64 = 0.035;
/// Stimulus decay of the PRIME preset, 1/h, fitted (bisection, see the validation tests) so
/// the nominal run gives 30-fold at day 13 with `mu_max` = 0.035. It lies BELOW the table's
/// 0.005-0.02 range: with the table's decay the model cannot reach Zhu et al.'s 30-fold
/// (docs/twin.md, "Findings").
pub const PRIME_K_S_PER_H: f64 = 0.00099;

/// The PRIME CAR-T closed-device process (bioprocess.md §1a rows 3-6; Prodigy-like TCT):
/// 1e8 enriched T cells in 70 mL, transduction at MOI 7.5 on day 1, feeds on days 3 and 5 up
/// to 250 mL, medium perfusion 0.5, 1.0 and 1.5 volumes/day from days 6, 8 and 10, 13 days.
pub fn prime_car_t() -> TCellProcess {
    let params = TCellParams {
        mu_max_per_h: PRIME_MU_MAX_PER_H,
        k_s_per_h: PRIME_K_S_PER_H,
        // Closed device with feeds and exchanges: inside the perfused range (unconfirmed).
        x_max_cells_per_ml: 2e7,
        ..TCellParams::default()
    };
    let initial = TCellState::seeded(DEVICE_SEED_CELLS_MAX, 0.95, 70.0, MEDIUM_GLUCOSE_MM)
        .expect("preset seeding constants are valid");
    TCellProcess {
        params,
        initial,
        controls: Controls::batch(MEDIUM_GLUCOSE_MM),
        schedule: vec![
            at_day(1.0, transduce()),
            at_day(3.0, feed(30.0)),
            at_day(5.0, feed(150.0)),
            at_day(6.0, TCellAction::SetPerfusion { per_day: 0.5 }),
            at_day(8.0, TCellAction::SetPerfusion { per_day: 1.0 }),
            at_day(10.0, TCellAction::SetPerfusion { per_day: 1.5 }),
        ],
        duration_h: 13.0 * 24.0,
    }
}

/// Seeded viable cells of the allogeneic preset: chosen so the nominal run reproduces
/// 1.5e10 cells at day 12 (Francis et al. 2023); that study's seed count is not in
/// bioprocess.md, so this is a calibration, not a sourced value.
pub const ALLO_SEED_CELLS: f64 = 5.44e8;

/// The allogeneic large-scale process: 5e8 donor T cells in 500 mL, transduction day 1,
/// feed to 1 L on day 3, perfusion 1 volume/day from day 5 and 2 volumes/day from day 8
/// (the lactate-removal policy of Nankervis et al. 2018), 12 days.
pub fn allo_car_t() -> TCellProcess {
    let params = TCellParams {
        mu_max_per_h: PRIME_MU_MAX_PER_H,
        k_s_per_h: PRIME_K_S_PER_H,
        x_max_cells_per_ml: 2e7,
        ..TCellParams::default()
    };
    let initial = TCellState::seeded(ALLO_SEED_CELLS, 0.95, 500.0, MEDIUM_GLUCOSE_MM)
        .expect("preset seeding constants are valid");
    TCellProcess {
        params,
        initial,
        controls: Controls::batch(MEDIUM_GLUCOSE_MM),
        schedule: vec![
            at_day(1.0, transduce()),
            at_day(3.0, feed(500.0)),
            at_day(5.0, TCellAction::SetPerfusion { per_day: 1.0 }),
            at_day(8.0, TCellAction::SetPerfusion { per_day: 2.0 }),
        ],
        duration_h: 12.0 * 24.0,
    }
}

impl TCellProcess {
    /// Runs the process (its seeding, controls and fixed schedule) with `model`'s kinetics
    /// and returns the state at each of `outputs_h` (ascending, hours).
    pub fn run(&self, model: &TCellModel, outputs_h: &[f64]) -> Result<Vec<TCellState>, TwinError> {
        crate::tcell::simulate(
            model,
            &self.initial,
            self.controls,
            &self.schedule,
            outputs_h,
            &mut crate::ode::StepMemory::default(),
        )
    }
}

fn at_day(day: f64, action: TCellAction) -> ScheduledAction {
    ScheduledAction {
        at_h: day * 24.0,
        action,
    }
}

fn transduce() -> TCellAction {
    TCellAction::Transduce {
        moi_nominal: PRESET_MOI,
    }
}

fn feed(volume_ml: f64) -> TCellAction {
    TCellAction::Feed {
        volume_ml,
        glucose_mm: MEDIUM_GLUCOSE_MM,
    }
}

/// Who the cells come from, which sets how widely kinetics vary between lots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Donor {
    /// A patient's own cells: the full ranges of bioprocess.md §2.1.
    Autologous {
        /// Heavily pre-treated patients (e.g. bendamustine within 6 months, Dulobdas 2025)
        /// grow slower: `mu_multiplier` drawn in 0.6-0.85 (unconfirmed).
        heavily_pretreated: bool,
    },
    /// A screened healthy donor for a banked lot: the middle half of each range (unconfirmed).
    Allogeneic,
}

/// Draws one lot's kinetic parameters around `base` from the ranges of bioprocess.md §2.1
/// (uniform, or log-uniform for rates spanning a factor > 2); the calibrated `mu_max` and
/// `k_s` of `base` are scaled by the same relative spread as the table's range.
pub fn sample_params(base: &TCellParams, donor: Donor, rng: &mut impl Rng) -> TCellParams {
    let width = match donor {
        Donor::Autologous { .. } => 1.0,
        Donor::Allogeneic => 0.5,
    };
    let mut draw = |lo: f64, hi: f64, default: f64, log: bool| -> f64 {
        // Shrink the range around the default by `width`, then draw.
        let (lo, hi) = if log {
            let (l, h, d) = (lo.ln(), hi.ln(), default.ln());
            ((d + (l - d) * width).exp(), (d + (h - d) * width).exp())
        } else {
            (
                default + (lo - default) * width,
                default + (hi - default) * width,
            )
        };
        let u: f64 = rng.gen_range(0.0..1.0);
        if log {
            (lo.ln() + u * (hi.ln() - lo.ln())).exp()
        } else {
            lo + u * (hi - lo)
        }
    };
    // Relative spreads of the table ranges around their defaults.
    let mu = draw(
        base.mu_max_per_h * 0.017 / 0.025,
        base.mu_max_per_h * 0.035 / 0.025,
        base.mu_max_per_h,
        false,
    );
    let k_s = draw(
        base.k_s_per_h * 0.5,
        base.k_s_per_h * 2.0,
        base.k_s_per_h,
        true,
    );
    let t_lag = draw(24.0, 72.0, base.t_lag_h, false);
    let mut p = TCellParams {
        mu_max_per_h: mu,
        k_s_per_h: k_s,
        t_lag_h: t_lag,
        t_lag_restim_h: t_lag / 2.0,
        tau_lag_h: draw(3.0, 12.0, base.tau_lag_h, true),
        s_min: draw(0.0, 0.4, base.s_min, false),
        k_g_mm: draw(0.1, 1.0, base.k_g_mm, true),
        k_il_mm: draw(25.0, 60.0, base.k_il_mm, false),
        k_ia_mm: draw(2.0, 5.0, base.k_ia_mm, false),
        q_g_pmol_per_cell_day: draw(0.3, 3.0, base.q_g_pmol_per_cell_day, true),
        y_lg_mol_per_mol: draw(1.4, 2.0, base.y_lg_mol_per_mol, false),
        q_a_pmol_per_cell_day: draw(0.05, 0.3, base.q_a_pmol_per_cell_day, true),
        kd0_per_h: draw(0.001, 0.005, base.kd0_per_h, true),
        eta_moi: draw(0.03, 0.15, base.eta_moi, true),
        ..base.clone()
    };
    if let Donor::Autologous {
        heavily_pretreated: true,
    } = donor
    {
        p.mu_multiplier *= rng.gen_range(0.6..0.85);
    }
    p
}

/// `n` lots drawn with [`sample_params`] from a ChaCha8 RNG seeded with `seed` (for callers
/// that hold a seed rather than an RNG, e.g. benchmarks).
pub fn sample_lots(base: &TCellParams, donor: Donor, n: usize, seed: u64) -> Vec<TCellParams> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| sample_params(base, donor, &mut rng))
        .collect()
}

/// Draws the CD3+ cells collected by one leukapheresis: log-normal with the median and IQR
/// of the UK paediatric cohort (Blood Cancer J 2024).
pub fn sample_apheresis_cd3_cells(rng: &mut impl Rng) -> f64 {
    use rand_distr::{Distribution, LogNormal};
    let (q1, q3) = APHERESIS_CD3_CELLS_IQR;
    // For a log-normal, ln(q3/q1) = 2 × 0.6745 σ.
    let sigma = (q3 / q1).ln() / (2.0 * 0.674_49);
    let dist = LogNormal::new(APHERESIS_CD3_CELLS_MEDIAN.ln(), sigma)
        .expect("sigma is a positive constant");
    dist.sample(rng)
}

/// Validates the preset's parameters (they are constants; this cannot fail for the shipped
/// presets, and a test proves it).
pub fn model_of(process: &TCellProcess) -> Result<TCellModel, TwinError> {
    TCellModel::new(process.params.clone())
}
