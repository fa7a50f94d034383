//! Dose-day prediction: fit the batch, then Monte Carlo over the fitted uncertainty to get
//! the day the ordered CAR+ dose is reached (median and 80 % interval) and the probability
//! of meeting the release specifications at that day.

use rand::Rng;

use crate::error::{TwinError, check_fraction, check_positive};
use crate::fit::{self, Fit};
use crate::observations::Observations;
use crate::product::TCellProcess;
use crate::tcell::{self, TCellModel, TCellState};

/// Most Monte Carlo samples per prediction.
pub const SAMPLES_MAX: usize = 100_000;
/// Longest culture a prediction looks at, days.
pub const DAYS_MAX: f64 = 60.0;
/// Time resolution of the dose-day search and the forecast band, h.
pub const FORECAST_STEP_H: f64 = 2.0;

/// What the order needs and what release requires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoseOrder {
    /// Viable CAR+ cells needed at harvest.
    pub dose_car_pos_cells: f64,
    /// Latest acceptable harvest, days from seeding.
    pub days_max: f64,
    /// Release viability minimum, fraction (bioprocess.md §3.1: ≥ 0.70 or ≥ 0.80).
    pub viability_min: f64,
    /// Release CAR+ minimum, fraction (≥ 0.10 or ≥ 0.20).
    pub car_pos_min: f64,
}

impl DoseOrder {
    /// A 1e9 CAR+ dose (TAK-102 top cohort) within 14 days, viability ≥ 70 %, CAR+ ≥ 10 %.
    pub fn prime_default() -> DoseOrder {
        DoseOrder {
            dose_car_pos_cells: 1e9,
            days_max: 14.0,
            viability_min: 0.70,
            car_pos_min: 0.10,
        }
    }

    fn validate(&self) -> Result<(), TwinError> {
        check_positive("dose_car_pos_cells", self.dose_car_pos_cells)?;
        check_positive("days_max", self.days_max)?;
        if self.days_max > DAYS_MAX {
            return Err(TwinError::InvalidValue {
                field: "days_max",
                value: self.days_max,
                rule: "≤ DAYS_MAX (60 d)",
            });
        }
        check_fraction("viability_min", self.viability_min)?;
        check_fraction("car_pos_min", self.car_pos_min)?;
        Ok(())
    }
}

/// Days from seeding; `None` = not reached by the order's `days_max`.
pub type DoseDay = Option<f64>;

/// One point of the forecast band of viable cells per mL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastPoint {
    /// Hours since seeding.
    pub time_h: f64,
    /// 10th percentile, cells/mL.
    pub p10_cells_per_ml: f64,
    /// Median, cells/mL.
    pub p50_cells_per_ml: f64,
    /// 90th percentile, cells/mL.
    pub p90_cells_per_ml: f64,
    /// The best-fit trajectory, cells/mL.
    pub fit_cells_per_ml: f64,
}

/// The prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Median dose day; `None` when fewer than half the samples reach the dose in time.
    pub median_day: DoseDay,
    /// 10th and 90th percentiles of the dose day (unreached samples count as later than
    /// any day, so the upper end is `None` when more than 10 % never reach it).
    pub interval_80: (DoseDay, DoseDay),
    /// Fraction of samples that reach the dose by `days_max` and meet viability and CAR+.
    pub p_meets_specs: f64,
    /// Fraction of samples that reach the dose by `days_max`.
    pub p_dose_reached: f64,
    /// Monte Carlo samples drawn.
    pub samples: usize,
    /// The fit behind the prediction.
    pub fit: Fit,
    /// Forecast band of viable cells/mL every [`FORECAST_STEP_H`].
    pub forecast: Vec<ForecastPoint>,
}

struct SampleOutcome {
    dose_day: DoseDay,
    meets: bool,
    density: Vec<f64>,
}

fn run_sample(
    model: &TCellModel,
    process: &TCellProcess,
    order: &DoseOrder,
    car_observed: Option<f64>,
    times: &[f64],
) -> Result<SampleOutcome, TwinError> {
    let traj = process.run(model, times)?;
    let car = |s: &TCellState| car_observed.unwrap_or(s.car_pos_fraction);
    let reached = traj
        .iter()
        .position(|s| s.viable_cells() * car(s) >= order.dose_car_pos_cells);
    let (dose_day, meets) = match reached {
        Some(i) => {
            let s = &traj[i];
            let day = if i == 0 {
                times[0] / 24.0
            } else {
                // Interpolate the crossing in ln(cells).
                let prev = &traj[i - 1];
                let a = (prev.viable_cells() * car(prev)).max(1.0).ln();
                let b = (s.viable_cells() * car(s)).ln();
                let target = order.dose_car_pos_cells.ln();
                let f = if b > a {
                    ((target - a) / (b - a)).clamp(0.0, 1.0)
                } else {
                    1.0
                };
                (times[i - 1] + f * (times[i] - times[i - 1])) / 24.0
            };
            let meets = s.viability() >= order.viability_min && car(s) >= order.car_pos_min;
            (Some(day), meets)
        }
        None => (None, false),
    };
    Ok(SampleOutcome {
        dose_day,
        meets,
        density: traj.iter().map(|s| s.y[tcell::XV]).collect(),
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Fits `observations` against `process` and predicts when `order`'s dose is reached,
/// with `samples` Monte Carlo draws from `rng`. Never returns NaN: a non-finite value in
/// any sample is an error.
pub fn predict_dose_day(
    process: &TCellProcess,
    observations: &Observations,
    order: &DoseOrder,
    samples: usize,
    rng: &mut impl Rng,
) -> Result<Prediction, TwinError> {
    order.validate()?;
    if samples == 0 || samples > SAMPLES_MAX {
        return Err(TwinError::InvalidValue {
            field: "samples",
            value: samples as f64,
            rule: "1 ≤ samples ≤ SAMPLES_MAX (100 000)",
        });
    }
    let fit = fit::fit(process, observations)?;
    let steps = (order.days_max * 24.0 / FORECAST_STEP_H).ceil() as usize;
    let times: Vec<f64> = (0..=steps).map(|i| i as f64 * FORECAST_STEP_H).collect();
    let car_observed = observations.latest_car_pos_fraction();
    let best = run_sample(
        &TCellModel::new(fit.params.clone())?,
        process,
        order,
        car_observed,
        &times,
    )?;
    let mut days = Vec::with_capacity(samples);
    let mut meets = 0usize;
    let mut columns: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); times.len()];
    for _ in 0..samples {
        let model = TCellModel::new(fit.sample(rng))?;
        let out = run_sample(&model, process, order, car_observed, &times)?;
        days.push(out.dose_day.unwrap_or(f64::INFINITY));
        meets += usize::from(out.meets);
        for (col, v) in columns.iter_mut().zip(out.density) {
            col.push(v);
        }
    }
    days.sort_by(f64::total_cmp);
    let finite = |d: f64| d.is_finite().then_some(d);
    let reached = days.iter().filter(|d| d.is_finite()).count();
    let forecast = times
        .iter()
        .zip(columns.iter_mut())
        .zip(&best.density)
        .map(|((t, col), fit_v)| {
            col.sort_by(f64::total_cmp);
            ForecastPoint {
                time_h: *t,
                p10_cells_per_ml: percentile(col, 0.1),
                p50_cells_per_ml: percentile(col, 0.5),
                p90_cells_per_ml: percentile(col, 0.9),
                fit_cells_per_ml: *fit_v,
            }
        })
        .collect();
    Ok(Prediction {
        median_day: finite(percentile(&days, 0.5)),
        interval_80: (
            finite(percentile(&days, 0.1)),
            finite(percentile(&days, 0.9)),
        ),
        p_meets_specs: meets as f64 / samples as f64,
        p_dose_reached: reached as f64 / samples as f64,
        samples,
        fit,
        forecast,
    })
}

/// [`predict_dose_day`] with its Monte Carlo RNG seeded from `seed` (ChaCha8), for callers
/// that hold a seed rather than an RNG.
pub fn predict_dose_day_seeded(
    process: &TCellProcess,
    observations: &Observations,
    order: &DoseOrder,
    samples: usize,
    seed: u64,
) -> Result<Prediction, TwinError> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    predict_dose_day(process, observations, order, samples, &mut rng)
}

/// A recipe's harvest decision as the planner sees it: checked once a day from
/// `earliest_day`, harvest as soon as the viable CAR+ cells reach `dose_car_pos_cells`, and
/// on `latest_day` whatever the count (a deviation then, but the device is free).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HarvestRule {
    /// Viable CAR+ cells that trigger the harvest.
    pub dose_car_pos_cells: f64,
    /// First day the decision may harvest, days from seeding.
    pub earliest_day: u32,
    /// Last day of the culture, days from seeding.
    pub latest_day: u32,
}

/// How long cultures run under a [`HarvestRule`] over the variability between lots (the
/// prior, before any observation of the batch): `counts[k]` lots harvest on day
/// `earliest_day + k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarvestDays {
    /// The rule's first harvest day.
    pub earliest_day: u32,
    /// Lots harvesting on each day from `earliest_day` to the rule's `latest_day`.
    pub counts: Vec<usize>,
    /// Lots that had not reached the dose by `latest_day` (harvested then, counted in the
    /// last day too).
    pub not_reached: usize,
    /// Lots simulated.
    pub samples: usize,
}

impl HarvestDays {
    /// The probability of each harvest day, as `(day, p)` with `p` > 0.
    pub fn probabilities(&self) -> Vec<(u32, f64)> {
        (self.earliest_day..)
            .zip(&self.counts)
            .filter(|(_, c)| **c > 0)
            .map(|(day, c)| (day, *c as f64 / self.samples as f64))
            .collect()
    }
}

/// The distribution of harvest days of `process` under `rule`, from `samples` lots whose
/// kinetics are drawn for `donor` ([`crate::product::sample_lots`], seeded with `seed`).
/// Each lot runs the process's fixed schedule; its CAR+ fraction is the model's own.
pub fn harvest_day_distribution(
    process: &TCellProcess,
    donor: crate::product::Donor,
    rule: &HarvestRule,
    samples: usize,
    seed: u64,
) -> Result<HarvestDays, TwinError> {
    check_positive("dose_car_pos_cells", rule.dose_car_pos_cells)?;
    if rule.earliest_day > rule.latest_day || f64::from(rule.latest_day) > DAYS_MAX {
        return Err(TwinError::InvalidValue {
            field: "latest_day",
            value: f64::from(rule.latest_day),
            rule: "earliest_day ≤ latest_day ≤ DAYS_MAX (60 d)",
        });
    }
    if samples == 0 || samples > SAMPLES_MAX {
        return Err(TwinError::InvalidValue {
            field: "samples",
            value: samples as f64,
            rule: "1 ≤ samples ≤ SAMPLES_MAX (100 000)",
        });
    }
    let days: Vec<u32> = (rule.earliest_day..=rule.latest_day).collect();
    let times: Vec<f64> = days.iter().map(|d| f64::from(*d) * 24.0).collect();
    let mut counts = vec![0usize; days.len()];
    let mut not_reached = 0;
    for params in crate::product::sample_lots(&process.params, donor, samples, seed) {
        let model = TCellModel::new(params)?;
        let traj = process.run(&model, &times)?;
        let k = match traj
            .iter()
            .position(|s| s.car_pos_viable_cells() >= rule.dose_car_pos_cells)
        {
            Some(k) => k,
            None => {
                not_reached += 1;
                days.len() - 1
            }
        };
        counts[k] += 1;
    }
    Ok(HarvestDays {
        earliest_day: rule.earliest_day,
        counts,
        not_reached,
        samples,
    })
}
