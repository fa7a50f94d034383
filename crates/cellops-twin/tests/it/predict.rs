//! Fitting and dose-day prediction.

use cellops_twin::TwinError;
use cellops_twin::observations::{self, Observation, Observations};
use cellops_twin::ode::StepMemory;
use cellops_twin::predict::{DoseOrder, predict_dose_day};
use cellops_twin::product;
use cellops_twin::tcell::{self, TCellModel};
use rand::SeedableRng;

/// Observations every 24 h up to `until_day` from a run with `mu_max` × `mu_factor`.
fn synthetic(mu_factor: f64, until_day: usize) -> (Observations, f64) {
    let mut p = product::prime_car_t();
    p.params.mu_max_per_h *= mu_factor;
    let model = TCellModel::new(p.params.clone()).unwrap();
    let times: Vec<f64> = (0..=until_day).map(|d| d as f64 * 24.0).collect();
    let traj = tcell::simulate(
        &model,
        &p.initial,
        p.controls,
        &p.schedule,
        &times,
        &mut StepMemory::default(),
    )
    .unwrap();
    let rows = times
        .iter()
        .zip(&traj)
        .map(|(t, s)| Observation {
            time_h: *t,
            viable_cells_per_ml: s.y[tcell::XV],
            volume_ml: Some(s.volume_ml),
            viability: Some(s.viability()),
            car_pos_fraction: None,
            glucose_mm: None,
            lactate_mm: None,
        })
        .collect();
    // The true dose day for a 1e9 CAR+ order, by a fine search.
    let fine: Vec<f64> = (0..=14 * 24 * 4).map(|i| i as f64 * 0.25).collect();
    let traj = tcell::simulate(
        &model,
        &p.initial,
        p.controls,
        &p.schedule,
        &fine,
        &mut StepMemory::default(),
    )
    .unwrap();
    let true_day = fine[traj
        .iter()
        .position(|s| s.car_pos_viable_cells() >= 1e9)
        .unwrap()]
        / 24.0;
    (Observations::new(rows).unwrap(), true_day)
}

#[test]
fn fit_recovers_a_slower_batch_and_the_interval_covers_the_truth() {
    let (obs, true_day) = synthetic(0.85, 8);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let pred = predict_dose_day(
        &product::prime_car_t(),
        &obs,
        &DoseOrder::prime_default(),
        200,
        &mut rng,
    )
    .unwrap();
    let fitted_mu = pred.fit.params.mu_max_per_h;
    // The growth it saw is slower than the preset's: the fit moves mu (or lag/decay) down.
    assert!(
        pred.fit.rms_ln_count < 0.05,
        "rms {}",
        pred.fit.rms_ln_count
    );
    let (lo, hi) = pred.interval_80;
    // The upper end may lie beyond days_max (None) when the decay is still poorly known.
    let lo = lo.unwrap();
    assert!(
        lo <= true_day + 0.25,
        "true {true_day} below the interval [{lo}, {hi:?}] (mu {fitted_mu})"
    );
    assert!(
        hi.is_none_or(|hi| true_day - 0.25 <= hi),
        "true {true_day} above the interval [{lo}, {hi:?}]"
    );
    let median = pred.median_day.unwrap();
    assert!(
        (median - true_day).abs() < 1.0,
        "median {median} vs {true_day}"
    );
    assert!(pred.p_meets_specs > 0.5 && pred.p_meets_specs <= pred.p_dose_reached);
    assert!(
        pred.forecast
            .iter()
            .all(|p| p.p10_cells_per_ml <= p.p50_cells_per_ml
                && p.p50_cells_per_ml <= p.p90_cells_per_ml)
    );
}

#[test]
fn more_data_narrows_the_interval() {
    let width = |days: usize| {
        let (obs, _) = synthetic(1.0, days);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let p = predict_dose_day(
            &product::prime_car_t(),
            &obs,
            &DoseOrder::prime_default(),
            200,
            &mut rng,
        )
        .unwrap();
        p.interval_80.1.unwrap_or(99.0) - p.interval_80.0.unwrap_or(0.0)
    };
    assert!(width(9) < width(3), "{} vs {}", width(9), width(3));
}

#[test]
fn an_unreachable_dose_reports_no_day_and_zero_probability() {
    let (obs, _) = synthetic(1.0, 5);
    let order = DoseOrder {
        dose_car_pos_cells: 1e13,
        ..DoseOrder::prime_default()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let p = predict_dose_day(&product::prime_car_t(), &obs, &order, 50, &mut rng).unwrap();
    assert_eq!(p.median_day, None);
    assert_eq!(p.p_meets_specs, 0.0);
    assert!(p.p_meets_specs.is_finite());
}

#[test]
fn bad_orders_and_observations_are_typed_errors() {
    let (obs, _) = synthetic(1.0, 3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let order = DoseOrder {
        viability_min: 1.5,
        ..DoseOrder::prime_default()
    };
    let err = predict_dose_day(&product::prime_car_t(), &obs, &order, 10, &mut rng).unwrap_err();
    assert!(
        matches!(
            err,
            TwinError::InvalidValue {
                field: "viability_min",
                ..
            }
        ),
        "{err}"
    );
    let err = predict_dose_day(
        &product::prime_car_t(),
        &obs,
        &DoseOrder::prime_default(),
        0,
        &mut rng,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TwinError::InvalidValue {
                field: "samples",
                ..
            }
        ),
        "{err}"
    );
    let err = observations::parse_csv(
        "time_h,viable_cells_per_ml,viability_percent\n0,1e6,95\n24,nan,90\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("row 3"), "{err}");
    let err = observations::parse_csv("time_h,viable_cells_per_ml,viability_percent\n0,1e6,950\n")
        .unwrap_err();
    assert!(err.to_string().contains("viability_percent"), "{err}");
}

#[cfg(feature = "plot")]
#[test]
fn plot_is_an_svg_with_labels() {
    let (obs, _) = synthetic(1.0, 6);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let p = predict_dose_day(
        &product::prime_car_t(),
        &obs,
        &DoseOrder::prime_default(),
        50,
        &mut rng,
    )
    .unwrap();
    let svg = cellops_twin::plot::fit_svg("batch 1", &obs, &p).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    assert!(svg.contains("culture day") && svg.contains("best fit"));
}

mod harvest_days {
    use cellops_twin::predict::{HarvestRule, harvest_day_distribution};
    use cellops_twin::product::{Donor, prime_car_t};

    const AUTO: Donor = Donor::Autologous {
        heavily_pretreated: false,
    };

    fn rule(dose: f64) -> HarvestRule {
        HarvestRule {
            dose_car_pos_cells: dose,
            earliest_day: 7,
            latest_day: 12,
        }
    }

    #[test]
    fn prime_lots_spread_over_the_decision_window_and_replay_from_the_seed() {
        let a = harvest_day_distribution(&prime_car_t(), AUTO, &rule(3e8), 200, 7).unwrap();
        let b = harvest_day_distribution(&prime_car_t(), AUTO, &rule(3e8), 200, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.counts.len(), 6);
        assert_eq!(a.counts.iter().sum::<usize>(), 200);
        let p = a.probabilities();
        assert!(p.len() >= 3, "lots differ, so harvest days differ: {p:?}");
        let total: f64 = p.iter().map(|(_, x)| x).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // A bigger dose takes longer: the mean harvest day rises.
        let mean = |h: &cellops_twin::predict::HarvestDays| {
            h.probabilities()
                .iter()
                .map(|(d, x)| f64::from(*d) * x)
                .sum::<f64>()
        };
        let big = harvest_day_distribution(&prime_car_t(), AUTO, &rule(1e9), 200, 7).unwrap();
        assert!(mean(&big) > mean(&a), "{} vs {}", mean(&big), mean(&a));
        assert!(big.not_reached >= a.not_reached);
    }

    #[test]
    fn a_dose_every_lot_has_harvests_on_the_first_day_and_one_none_reaches_on_the_last() {
        let easy = harvest_day_distribution(&prime_car_t(), AUTO, &rule(1.0), 50, 1).unwrap();
        assert_eq!(easy.probabilities(), vec![(7, 1.0)]);
        assert_eq!(easy.not_reached, 0);
        let never = harvest_day_distribution(&prime_car_t(), AUTO, &rule(1e15), 50, 1).unwrap();
        assert_eq!(never.probabilities(), vec![(12, 1.0)]);
        assert_eq!(never.not_reached, 50);
    }

    #[test]
    fn a_rule_out_of_range_is_refused_naming_the_field() {
        let bad = HarvestRule {
            earliest_day: 12,
            latest_day: 7,
            ..rule(3e8)
        };
        let e = harvest_day_distribution(&prime_car_t(), AUTO, &bad, 10, 1).unwrap_err();
        assert!(e.to_string().contains("latest_day"), "{e}");
        let e = harvest_day_distribution(&prime_car_t(), AUTO, &rule(3e8), 0, 1).unwrap_err();
        assert!(e.to_string().contains("samples"), "{e}");
    }
}
