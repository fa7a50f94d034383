//! Freezing, thawing and dry-shipper models.

use cellops_twin::freeze::{self, Bag, FreezeProgram};
use cellops_twin::shipper::{self, Orientation, Shipper, TransitEvent};
use cellops_twin::units::Fraction;
use rand::SeedableRng;

fn frac(v: f64) -> Fraction {
    Fraction::new("pre", v).unwrap()
}

/// Baboo et al., Sci Rep 2019: at -1 °C/min the warming rate (1.6-113 °C/min) has
/// effectively no effect (spread < 1 percentage point).
#[test]
fn baboo_2019_slow_cooling_is_insensitive_to_warming() {
    let v: Vec<f64> = [1.6, 6.2, 45.0, 113.0]
        .iter()
        .map(|w| {
            freeze::post_thaw_viability(frac(0.95), 1.0, *w)
                .unwrap()
                .get()
        })
        .collect();
    let spread =
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 0.01, "{v:?}");
}

/// Baboo et al. 2019: at -10 °C/min, slow warming (≤ 6.2 °C/min) lowers viable cells
/// (ice recrystallisation); fast warming does not. Required: ≥ 5 pp lower at 1.6 and 6.2
/// than at 113 °C/min, and fast warming within 2 pp of the -1 °C/min result.
#[test]
fn baboo_2019_fast_cooling_needs_fast_warming() {
    let v = |c: f64, w: f64| freeze::post_thaw_viability(frac(0.95), c, w).unwrap().get();
    assert!(v(10.0, 113.0) - v(10.0, 1.6) >= 0.05);
    assert!(v(10.0, 113.0) - v(10.0, 6.2) >= 0.05);
    assert!((v(10.0, 113.0) - v(1.0, 113.0)).abs() < 0.02);
    // Post-thaw loss at the reference profile is inside the 5-15 pp band (bioprocess.md §4).
    let loss_pp = (0.95 - v(1.0, 100.0)) * 100.0;
    assert!((5.0..=15.0).contains(&loss_pp), "loss {loss_pp} pp");
}

#[test]
fn freezing_trace_shows_latent_heat_release_and_the_programmed_rate() {
    let trace = freeze::simulate(
        &FreezeProgram::standard(1.0).unwrap(),
        &Bag::default(),
        10.0,
    )
    .unwrap();
    let nuc = trace.nucleation_min.expect("the bag nucleates");
    let peak = trace.release_peak_c.unwrap();
    // The bag warms from -8 °C towards the -3 °C freezing point when ice forms.
    assert!(peak > -6.0 && peak <= -3.0, "release peak {peak}");
    // While latent heat is released, the bag runs well above the chamber.
    let during = trace
        .points
        .iter()
        .find(|p| p.time_min > nuc + 5.0)
        .unwrap();
    assert!(during.sample_c - during.chamber_c > 3.0, "{during:?}");
    // The bag lags the chamber by a few minutes: the chamber passes -8 °C at 22 min
    // (10 min hold, then -1 °C/min from 4 °C); the bag nucleates within 8 min of that.
    assert!((22.0..=30.0).contains(&nuc), "nucleation at {nuc} min");
    // After the plateau it catches up with the chamber, cooling faster than
    // programmed (no latent-heat compensation in the program), but slower than the chamber's
    // -10 °C/min segment.
    let rate = trace.cooling_rate_c_per_min(-20.0, -40.0).unwrap();
    assert!((1.0..=5.0).contains(&rate), "rate {rate}");
    assert!(trace.points.last().unwrap().sample_c < -60.0);
}

/// Benjamin et al. 2022: 10-50 mL bags thaw in ~2-4 min.
#[test]
fn benjamin_2022_thaw_times() {
    assert_eq!(freeze::thaw_time_min(10.0).unwrap(), 2.0);
    assert_eq!(freeze::thaw_time_min(50.0).unwrap(), 4.0);
    assert!(freeze::thaw_time_min(-1.0).is_err());
}

fn new_shipper() -> Shipper {
    Shipper {
        hold_nominal_h: shipper::HOLD_NOMINAL_H,
        unit_factor: 1.0,
        age_factor: 1.0,
        logger_fitted: false,
    }
}

fn dry_at(trace: &shipper::ShipmentTrace) -> f64 {
    trace
        .samples
        .iter()
        .find(|s| s.hold_remaining_h <= 0.0)
        .map(|s| s.time_h)
        .unwrap()
}

/// O'Donnell 2013: on its side a shipper loses up to ~60 % of its hold time; Cryoport 2018:
/// nominal static hold ≥ 10 d. Tolerance: one logger interval.
#[test]
fn odonnell_2013_side_orientation_loses_sixty_percent() {
    let upright = shipper::simulate(&new_shipper(), &[], 300.0, 5.0).unwrap();
    let side = shipper::simulate(
        &new_shipper(),
        &[TransitEvent::Orientation {
            at_h: 0.0,
            orientation: Orientation::Side,
        }],
        300.0,
        5.0,
    )
    .unwrap();
    let (u, s) = (dry_at(&upright), dry_at(&side));
    assert!((u - 240.0).abs() <= 5.0 / 60.0 + 1e-9, "upright dry at {u}");
    assert!((s / u - 0.4).abs() < 0.01, "side keeps {}", s / u);
    // The product alarms soon after the LN2 is gone and the shipment is rejected.
    assert!(side.alarm_at_h.unwrap() > s);
    assert!(!side.accepted());
    assert!(
        shipper::simulate(&new_shipper(), &[], 100.0, 5.0)
            .unwrap()
            .accepted()
    );
}

#[test]
fn inverted_openings_and_heat_shorten_hold() {
    let base = dry_at(&shipper::simulate(&new_shipper(), &[], 300.0, 5.0).unwrap());
    let events = [
        TransitEvent::Ambient {
            at_h: 0.0,
            ambient_c: 40.0,
        },
        TransitEvent::LidOpen {
            at_h: 10.0,
            minutes: 10.0,
        },
        TransitEvent::Orientation {
            at_h: 20.0,
            orientation: Orientation::Inverted,
        },
    ];
    let t = shipper::simulate(&new_shipper(), &events, 300.0, 5.0).unwrap();
    assert!(dry_at(&t) < 0.3 * base, "dry at {}", dry_at(&t));
    assert!(t.samples.iter().any(|s| s.lid_opened));
}

/// Unit-to-unit variation up to 40 % (O'Donnell 2013): sampled units hold 60-100 % of
/// nominal, and a logger shortens hold.
#[test]
fn unit_variation_stays_within_forty_percent() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for _ in 0..200 {
        let s = Shipper::sample(&mut rng);
        let h = s.static_hold_h() / shipper::LOGGER_HOLD_FACTOR;
        assert!((0.6 * 240.0..=240.0).contains(&h), "{h}");
    }
    let mut logged = new_shipper();
    logged.logger_fitted = true;
    assert!(logged.static_hold_h() < new_shipper().static_hold_h());
}
