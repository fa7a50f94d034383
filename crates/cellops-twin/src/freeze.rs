//! Controlled-rate freezing with latent-heat release, post-thaw viability against cooling
//! and warming rate (Baboo et al., Sci Rep 2019), and thaw time (Benjamin et al. 2022).
//!
//! Thermal model: a lumped bag with enthalpy `H = m·c·T − L·m·φ(T)`. Before nucleation the
//! bag supercools; at the nucleation temperature part of the water freezes at once and the
//! bag warms to the equilibrium of `c·(T' − T_nuc) = L·φ(T')`; after that the ice fraction
//! follows the freezing-point-depression curve `φ(T) = 1 − T_f/T`, which makes the
//! effective heat capacity `c + L·|T_f|/T²` and gives the latent-heat plateau.

use crate::error::{TwinError, check_fraction, check_non_negative, check_positive};
use crate::units::Fraction;

/// Latent heat of fusion of water, J/g.
pub const LATENT_HEAT_J_PER_G: f64 = 334.0;
/// Specific heat of the cell suspension, J/g/K (water-like; unconfirmed).
pub const SPECIFIC_HEAT_J_PER_G_K: f64 = 4.0;
/// Integration step of the thermal model, s.
pub const THERMAL_STEP_S: f64 = 1.0;
/// Longest freezing program, min (a day).
pub const PROGRAM_MIN_MAX: f64 = 24.0 * 60.0;
/// Post-thaw loss at the reference -1 °C/min with fast warming (5-15 pp; unconfirmed midpoint).
pub const BASE_LOSS_FRACTION: f64 = 0.10;
/// Largest extra loss from ice recrystallisation after fast cooling and slow warming (unconfirmed).
pub const RECRYSTALLISATION_LOSS_MAX: f64 = 0.30;
/// Warming rate at which recrystallisation loss halves, °C/min (Baboo 2019: ≤ 6.2 °C/min harmed).
pub const RECRYSTALLISATION_WARMING_HALF_C_PER_MIN: f64 = 6.2;
/// Cooling rate with no recrystallisation risk, °C/min (Baboo 2019: -1 °C/min was safe).
pub const SAFE_COOLING_C_PER_MIN: f64 = 1.0;
/// Cooling rate at which the recrystallisation risk is full, °C/min (Baboo 2019: -10 °C/min).
pub const FAST_COOLING_C_PER_MIN: f64 = 10.0;
/// Below this cooling rate solution effects add loss, °C/min (unconfirmed).
pub const SLOW_COOLING_C_PER_MIN: f64 = 0.3;
/// Extra loss per natural-log unit of cooling slower than that, fraction (unconfirmed).
pub const SLOW_COOLING_LOSS_PER_LN: f64 = 0.05;

/// One linear segment of the chamber program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Rate of change, °C/min (negative cools); 0 holds.
    pub rate_c_per_min: f64,
    /// Segment end: target temperature for ramps, ignored for holds.
    pub end_c: f64,
    /// Duration of a hold, min (ignored for ramps).
    pub hold_min: f64,
}

/// A chamber temperature program.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeProgram {
    /// Chamber temperature at t = 0, °C.
    pub start_c: f64,
    /// Segments in order.
    pub segments: Vec<Ramp>,
}

impl FreezeProgram {
    /// The usual profile: 10 min hold at 4 °C, cool at `cooling_c_per_min` to -40 °C, then
    /// -10 °C/min to -90 °C and a 15 min hold before transfer to vapour-phase LN2.
    pub fn standard(cooling_c_per_min: f64) -> Result<FreezeProgram, TwinError> {
        check_positive("cooling_c_per_min", cooling_c_per_min)?;
        Ok(FreezeProgram {
            start_c: 4.0,
            segments: vec![
                Ramp {
                    rate_c_per_min: 0.0,
                    end_c: 4.0,
                    hold_min: 10.0,
                },
                Ramp {
                    rate_c_per_min: -cooling_c_per_min,
                    end_c: -40.0,
                    hold_min: 0.0,
                },
                Ramp {
                    rate_c_per_min: -10.0,
                    end_c: -90.0,
                    hold_min: 0.0,
                },
                Ramp {
                    rate_c_per_min: 0.0,
                    end_c: -90.0,
                    hold_min: 15.0,
                },
            ],
        })
    }

    /// Chamber temperature and segment boundaries, as (duration min, start °C, rate).
    fn pieces(&self) -> Result<Vec<(f64, f64, f64)>, TwinError> {
        let mut out = Vec::new();
        let mut t_c = self.start_c;
        for s in &self.segments {
            if s.rate_c_per_min == 0.0 {
                out.push((check_non_negative("hold_min", s.hold_min)?, t_c, 0.0));
            } else {
                let d = (s.end_c - t_c) / s.rate_c_per_min;
                if !(d.is_finite() && d >= 0.0) {
                    return Err(TwinError::Inconsistent {
                        field: "segments.rate_c_per_min",
                        rule: format!(
                            "a ramp at {} °C/min cannot go from {t_c} °C to {} °C",
                            s.rate_c_per_min, s.end_c
                        ),
                    });
                }
                out.push((d, t_c, s.rate_c_per_min));
                t_c = s.end_c;
            }
        }
        let total: f64 = out.iter().map(|p| p.0).sum();
        if total > PROGRAM_MIN_MAX {
            return Err(TwinError::InvalidValue {
                field: "segments",
                value: total,
                rule: "total program ≤ PROGRAM_MIN_MAX (1440 min)",
            });
        }
        Ok(out)
    }
}

/// The bag being frozen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bag {
    /// Fill, mL (taken as grams).
    pub fill_ml: f64,
    /// Heat transfer coefficient × area to the chamber, W/K (unconfirmed: 0.8 W/K gives a
    /// ~4 min lag for a 50 mL bag).
    pub ua_w_per_k: f64,
    /// Equilibrium freezing point of the cryomedium, °C (10 % DMSO ≈ -3; unconfirmed).
    pub freezing_point_c: f64,
    /// Temperature at which ice nucleates, °C (unconfirmed).
    pub nucleation_c: f64,
}

impl Default for Bag {
    fn default() -> Self {
        Bag {
            fill_ml: 50.0,
            ua_w_per_k: 0.8,
            freezing_point_c: -3.0,
            nucleation_c: -8.0,
        }
    }
}

/// One point of a freezing trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreezePoint {
    /// Minutes since the program started.
    pub time_min: f64,
    /// Chamber temperature, °C.
    pub chamber_c: f64,
    /// Bag (product probe) temperature, °C.
    pub sample_c: f64,
    /// Ice fraction of the water, 0..1.
    pub ice_fraction: f64,
}

/// A freezing run, one point per `record_every_s` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeTrace {
    /// The points, in time order.
    pub points: Vec<FreezePoint>,
    /// Minutes since start when ice nucleated, if it did.
    pub nucleation_min: Option<f64>,
    /// Highest bag temperature after nucleation (the latent-heat release peak), °C.
    pub release_peak_c: Option<f64>,
}

fn ice_fraction(t_c: f64, t_f: f64) -> f64 {
    if t_c < t_f { 1.0 - t_f / t_c } else { 0.0 }
}

/// Simulates `program` on `bag`, recording a point every `record_every_s` seconds.
pub fn simulate(
    program: &FreezeProgram,
    bag: &Bag,
    record_every_s: f64,
) -> Result<FreezeTrace, TwinError> {
    check_positive("fill_ml", bag.fill_ml)?;
    check_positive("ua_w_per_k", bag.ua_w_per_k)?;
    check_positive("record_every_s", record_every_s)?;
    if !(bag.freezing_point_c < 0.0 && bag.nucleation_c < bag.freezing_point_c) {
        return Err(TwinError::Inconsistent {
            field: "nucleation_c",
            rule: format!(
                "need nucleation_c {} < freezing_point_c {} < 0",
                bag.nucleation_c, bag.freezing_point_c
            ),
        });
    }
    let pieces = program.pieces()?;
    let mass_g = bag.fill_ml;
    let t_f = bag.freezing_point_c;
    let mut sample_c = program.start_c;
    let mut nucleated = false;
    let mut trace = FreezeTrace {
        points: Vec::new(),
        nucleation_min: None,
        release_peak_c: None,
    };
    let mut t_s = 0.0;
    let mut next_record_s = 0.0;
    for (duration_min, start_c, rate) in pieces {
        let piece_start_s = t_s;
        while t_s < piece_start_s + duration_min * 60.0 {
            let chamber_c = start_c + rate * (t_s - piece_start_s) / 60.0;
            if t_s >= next_record_s {
                trace.points.push(FreezePoint {
                    time_min: t_s / 60.0,
                    chamber_c,
                    sample_c,
                    ice_fraction: if nucleated {
                        ice_fraction(sample_c, t_f)
                    } else {
                        0.0
                    },
                });
                next_record_s += record_every_s;
            }
            let heat_w = bag.ua_w_per_k * (chamber_c - sample_c);
            let c_eff = if nucleated && sample_c < t_f {
                SPECIFIC_HEAT_J_PER_G_K + LATENT_HEAT_J_PER_G * (-t_f) / (sample_c * sample_c)
            } else {
                SPECIFIC_HEAT_J_PER_G_K
            };
            sample_c += heat_w * THERMAL_STEP_S / (mass_g * c_eff);
            t_s += THERMAL_STEP_S;
            if !nucleated && sample_c <= bag.nucleation_c {
                nucleated = true;
                sample_c = nucleation_jump(sample_c, t_f);
                trace.nucleation_min = Some(t_s / 60.0);
            }
            if nucleated {
                let peak = trace.release_peak_c.get_or_insert(sample_c);
                *peak = peak.max(sample_c);
            }
            if !sample_c.is_finite() {
                return Err(TwinError::NonFinite {
                    quantity: "sample_c",
                    time_h: t_s / 3600.0,
                });
            }
        }
    }
    Ok(trace)
}

/// Adiabatic partial freezing at nucleation: the T' in [T_nuc, T_f] with
/// `c·(T' − T_nuc) = L·φ(T')`, by bisection.
fn nucleation_jump(t_nuc: f64, t_f: f64) -> f64 {
    let g =
        |t: f64| SPECIFIC_HEAT_J_PER_G_K * (t - t_nuc) - LATENT_HEAT_J_PER_G * ice_fraction(t, t_f);
    let (mut lo, mut hi) = (t_nuc, t_f);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if g(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

impl FreezeTrace {
    /// Mean bag cooling rate, °C/min (positive), between its first passes below `from_c`
    /// and `to_c` after nucleation; `None` if the trace does not reach both.
    pub fn cooling_rate_c_per_min(&self, from_c: f64, to_c: f64) -> Option<f64> {
        let after = self.nucleation_min?;
        let first_below = |limit: f64| {
            self.points
                .iter()
                .find(|p| p.time_min >= after && p.sample_c <= limit)
                .map(|p| p.time_min)
        };
        let (t1, t2) = (first_below(from_c)?, first_below(to_c)?);
        (t2 > t1).then(|| (from_c - to_c) / (t2 - t1))
    }
}

/// Post-thaw viability from pre-freeze viability, cooling rate through the freezing zone
/// and warming rate (both °C/min, positive). Shape from Baboo et al. 2019: at ≤ 1 °C/min
/// warming rate has no effect; at 10 °C/min, slow warming (≤ 6.2 °C/min) loses cells to ice
/// recrystallisation. Magnitudes are unconfirmed defaults (see the constants).
pub fn post_thaw_viability(
    pre: Fraction,
    cooling_c_per_min: f64,
    warming_c_per_min: f64,
) -> Result<Fraction, TwinError> {
    check_positive("cooling_c_per_min", cooling_c_per_min)?;
    check_positive("warming_c_per_min", warming_c_per_min)?;
    let risk = ((cooling_c_per_min / SAFE_COOLING_C_PER_MIN).ln()
        / (FAST_COOLING_C_PER_MIN / SAFE_COOLING_C_PER_MIN).ln())
    .clamp(0.0, 1.0);
    let slow_warming =
        1.0 / (1.0 + (warming_c_per_min / RECRYSTALLISATION_WARMING_HALF_C_PER_MIN).powi(2));
    let recrystallisation = RECRYSTALLISATION_LOSS_MAX * risk * slow_warming;
    let solution_effects =
        SLOW_COOLING_LOSS_PER_LN * (SLOW_COOLING_C_PER_MIN / cooling_c_per_min).ln().max(0.0);
    let loss = (BASE_LOSS_FRACTION + recrystallisation + solution_effects).min(1.0);
    Fraction::new(
        "post_thaw_viability",
        check_fraction("pre", pre.get())? * (1.0 - loss),
    )
}

/// Time to thaw a bag fully in a 37 °C bath or dry thawer, min: 10-50 mL bags took ~2-4 min
/// (Benjamin et al., Eur J Hosp Pharm 2022); linear in fill in that range, clamped outside.
pub fn thaw_time_min(fill_ml: f64) -> Result<f64, TwinError> {
    check_positive("fill_ml", fill_ml)?;
    Ok(2.0 + (fill_ml.clamp(10.0, 50.0) - 10.0) / 40.0 * 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_program_names_the_field() {
        let p = FreezeProgram {
            start_c: 4.0,
            segments: vec![Ramp {
                rate_c_per_min: 1.0,
                end_c: -40.0,
                hold_min: 0.0,
            }],
        };
        let err = simulate(&p, &Bag::default(), 10.0).unwrap_err();
        assert!(err.to_string().contains("rate_c_per_min"), "{err}");
    }
}
