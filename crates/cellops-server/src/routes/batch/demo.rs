//! What the demo operator measures on a simulated batch, and the twin's dose prediction.
//!
//! In-process values come from the twin's true state where the twin models them (viability,
//! density, CAR+, metabolites, confluence, doublings); the starting material's CD3+ count is
//! drawn from the twin's apheresis distribution. Parameters the twin does not model (flow
//! markers such as CD73/CD90, residual TCR+, marrow volume) get a nominal in-limit value and
//! are listed as `nominal` in the batch record, so nobody mistakes them for a model output.

use cellops_process::recipe::model::{Limit, Recipe};
use cellops_twin::observations::{Observation, Observations};
use cellops_twin::predict::{DoseOrder, predict_dose_day_seeded};
use cellops_twin::product::{self, TCellProcess};
use cellops_twin::{Product, TrueState};
use rand::SeedableRng;
use serde_json::{Value, json};

/// Monte Carlo draws per prediction (the batch record shows the 80 % interval).
pub const PREDICTION_SAMPLES: usize = 24;

/// The twin product for a recipe's product id.
pub fn twin_product(recipe_product: &str) -> Option<Product> {
    match recipe_product {
        "prime-car-t" => Some(Product::PrimeCarT),
        "allo-car-t-lot" => Some(Product::AlloCarT),
        "bm-msc" => Some(Product::BmMsc),
        _ => None,
    }
}

/// A measured value of `parameter` from the twin, or `None` when the twin does not model it.
pub fn modeled_value(parameter: &str, s: &TrueState, seed: u64) -> Option<f64> {
    let car = s.car_pos_fraction;
    match parameter {
        "viability_percent" => Some(s.viability * 100.0),
        "viable_cells_per_ml" => Some(s.viable_cells_per_ml),
        "car_positive_percent" => car.map(|c| c * 100.0),
        "car_pos_viable_cells" => car.map(|c| c * s.viable_cells),
        "total_viable_cells" => Some(s.viable_cells),
        "glucose_mm" => Some(s.glucose_mm),
        "lactate_mm" => Some(s.lactate_mm),
        "ammonia_mm" => Some(s.ammonia_mm),
        "confluence_percent" => s.confluence.map(|c| c * 100.0),
        "cumulative_doublings" => s.population_doublings,
        "seeded_cells_per_cm2" => s.viable_cells_per_cm2,
        "cd3_total_viable_cells" | "total_nucleated_cells" => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let cd3 = product::sample_apheresis_cd3_cells(&mut rng);
            Some(if parameter == "cd3_total_viable_cells" {
                cd3
            } else {
                cd3 * 4.0
            })
        }
        _ => None,
    }
}

/// An in-limit value for a parameter the twin does not model.
pub fn nominal_value(limit: &Limit) -> f64 {
    match (limit.min, limit.max) {
        (Some(a), Some(b)) => (a + b) / 2.0,
        (Some(a), None) => a * 1.1 + 1.0,
        (None, Some(b)) => b * 0.5,
        (None, None) => 0.0,
    }
}

fn process_of(product: Product) -> Option<TCellProcess> {
    match product {
        Product::PrimeCarT => Some(product::prime_car_t()),
        Product::AlloCarT => Some(product::allo_car_t()),
        Product::BmMsc => None,
    }
}

/// Observations (hours since batch start) from the batch's in-process results.
pub fn observations_of(results: &[(f64, Vec<(String, f64)>)]) -> Vec<Observation> {
    let mut rows: Vec<Observation> = Vec::new();
    for (time_h, values) in results {
        let get = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let Some(density) = get("viable_cells_per_ml") else {
            continue;
        };
        if rows.last().is_some_and(|r| r.time_h >= *time_h) {
            continue;
        }
        rows.push(Observation {
            time_h: *time_h,
            viable_cells_per_ml: density,
            volume_ml: None,
            viability: get("viability_percent").map(|v| v / 100.0),
            car_pos_fraction: get("car_positive_percent").map(|v| v / 100.0),
            glucose_mm: get("glucose_mm"),
            lactate_mm: get("lactate_mm"),
        });
    }
    rows
}

/// The decision value and prediction for `parameter` at `elapsed_h`: for CAR-T dose
/// parameters the twin fits the in-process observations and predicts the dose day; the
/// value is the measured viable CAR+ cells now (what a harvest now would give). MSC
/// decisions use the measured confluence or cell count.
pub fn decision_value(
    recipe: &Recipe,
    parameter: &str,
    target_min: f64,
    s: &TrueState,
    observations: &[Observation],
    elapsed_h: f64,
    seed: u64,
) -> (f64, Value) {
    let product = twin_product(recipe.product());
    let measured = match parameter {
        "predicted_dose_car_pos_cells" | "predicted_lot_car_pos_cells" => {
            s.viable_cells * s.car_pos_fraction.unwrap_or(0.0)
        }
        "predicted_harvest_viable_cells" => s.viable_cells,
        other => modeled_value(other, s, seed).unwrap_or(0.0),
    };
    let mut prediction = json!({
        "parameter": parameter,
        "value": measured,
        "target_min": target_min,
        "elapsed_hours": elapsed_h,
        "method": "measured",
    });
    if let (Some(process), true) = (product.and_then(process_of), observations.len() >= 3) {
        let order = DoseOrder {
            dose_car_pos_cells: target_min,
            days_max: 14.0,
            ..DoseOrder::prime_default()
        };
        match Observations::new(observations.to_vec()).and_then(|obs| {
            predict_dose_day_seeded(&process, &obs, &order, PREDICTION_SAMPLES, seed)
        }) {
            Ok(p) => {
                prediction["method"] = json!("twin_fit");
                prediction["median_day"] = json!(p.median_day);
                prediction["interval_80_days"] = json!([p.interval_80.0, p.interval_80.1]);
                prediction["p_dose_reached"] = json!(p.p_dose_reached);
                prediction["p_meets_specs"] = json!(p.p_meets_specs);
                prediction["forecast"] = json!(
                    p.forecast
                        .iter()
                        .step_by(6)
                        .map(|f| json!([
                            f.time_h,
                            f.p10_cells_per_ml,
                            f.p50_cells_per_ml,
                            f.p90_cells_per_ml
                        ]))
                        .collect::<Vec<_>>()
                );
            }
            Err(e) => prediction["fit_error"] = json!(e.to_string()),
        }
    }
    (measured, prediction)
}
