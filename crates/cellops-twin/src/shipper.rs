//! Dry-shipper hold time and logger traces (bioprocess.md §4, cold-chain model):
//!
//! ```text
//! hold_remaining(t) = H0 · u_unit · u_age · u_logger − ∫ r(orientation) · a(ambient) dt − lid losses
//! r(upright) = 1, r(side) = 1/(1 − 0.6) = 2.5, r(inverted) = 20 (">> 1")
//! a(ambient) = (T_amb − T_LN2) / (22 − T_LN2)        # heat leak ∝ temperature difference
//! ```
//! Once the LN2 is gone the product warms towards ambient with time constant
//! [`WARMING_TAU_H`]; the logger samples every ≤ 5 min.

use rand::Rng;

use crate::error::{TwinError, check_finite, check_positive};

/// Nominal static hold time, h (≥ 10 d, Cryoport 2018).
pub const HOLD_NOMINAL_H: f64 = 240.0;
/// LN2 vapour temperature inside a charged shipper, °C.
pub const LN2_C: f64 = -190.0;
/// Reference ambient for the nominal hold time, °C.
pub const AMBIENT_REFERENCE_C: f64 = 22.0;
/// Boil-off multiplier lying on its side (60 % of hold lost; O'Donnell 2013).
pub const RATE_SIDE: f64 = 1.0 / (1.0 - 0.6);
/// Boil-off multiplier upside down ("days can shrink to hours"; unconfirmed value).
pub const RATE_INVERTED: f64 = 20.0;
/// Hold lost per minute with the lid open, h (unconfirmed).
pub const LID_OPEN_LOSS_H_PER_MIN: f64 = 0.5;
/// Hold multiplier with a data logger fitted (a logger shortens hold; unconfirmed 5 %).
pub const LOGGER_HOLD_FACTOR: f64 = 0.95;
/// Product warming time constant after the LN2 is gone, h (unconfirmed).
pub const WARMING_TAU_H: f64 = 8.0;
/// Alarm when the product probe is above this, °C (bioprocess.md §4).
pub const ALARM_ABOVE_C: f64 = -150.0;
/// Reject the shipment when the product probe went above this, °C (unconfirmed).
pub const REJECT_ABOVE_C: f64 = -120.0;
/// Longest logger interval allowed, min (bioprocess.md §4: ≤ 5 min).
pub const LOGGER_INTERVAL_MIN_MAX: f64 = 5.0;
/// Most logger samples in one trace.
pub const LOGGER_SAMPLES_MAX: usize = 200_000;

/// How the shipper stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// Upright, as designed.
    Upright,
    /// On its side.
    Side,
    /// Upside down.
    Inverted,
}

impl Orientation {
    fn rate(self) -> f64 {
        match self {
            Orientation::Upright => 1.0,
            Orientation::Side => RATE_SIDE,
            Orientation::Inverted => RATE_INVERTED,
        }
    }

    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self {
            Orientation::Upright => "upright",
            Orientation::Side => "side",
            Orientation::Inverted => "inverted",
        }
    }
}

/// One shipper unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shipper {
    /// Nominal static hold time, h.
    pub hold_nominal_h: f64,
    /// Unit-to-unit factor, 0.6-1.0 (up to 40 % variation; O'Donnell 2013).
    pub unit_factor: f64,
    /// Ageing factor, 0-1 (1 = new).
    pub age_factor: f64,
    /// Whether a data logger is fitted (required for every shipment).
    pub logger_fitted: bool,
}

impl Shipper {
    /// A new shipper with nominal hold and a unit factor drawn from U(0.6, 1.0).
    pub fn sample(rng: &mut impl Rng) -> Shipper {
        Shipper {
            hold_nominal_h: HOLD_NOMINAL_H,
            unit_factor: rng.gen_range(0.6..=1.0),
            age_factor: 1.0,
            logger_fitted: true,
        }
    }

    /// Static hold at the reference ambient, upright, h.
    pub fn static_hold_h(&self) -> f64 {
        let logger = if self.logger_fitted {
            LOGGER_HOLD_FACTOR
        } else {
            1.0
        };
        self.hold_nominal_h * self.unit_factor * self.age_factor * logger
    }
}

/// Something that happens to the shipper in transit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransitEvent {
    /// From `at_h` the shipper stands this way.
    Orientation {
        /// Hours since dispatch.
        at_h: f64,
        /// New orientation.
        orientation: Orientation,
    },
    /// The lid is opened at `at_h` for `minutes`.
    LidOpen {
        /// Hours since dispatch.
        at_h: f64,
        /// Minutes open.
        minutes: f64,
    },
    /// From `at_h` the ambient temperature is `ambient_c`.
    Ambient {
        /// Hours since dispatch.
        at_h: f64,
        /// Ambient, °C.
        ambient_c: f64,
    },
}

impl TransitEvent {
    fn at_h(&self) -> f64 {
        match *self {
            TransitEvent::Orientation { at_h, .. }
            | TransitEvent::LidOpen { at_h, .. }
            | TransitEvent::Ambient { at_h, .. } => at_h,
        }
    }
}

/// One logger sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggerSample {
    /// Hours since dispatch.
    pub time_h: f64,
    /// Product probe temperature, °C.
    pub product_c: f64,
    /// Ambient, °C.
    pub ambient_c: f64,
    /// Orientation at the sample.
    pub orientation: Orientation,
    /// Whether the lid was opened since the previous sample.
    pub lid_opened: bool,
    /// Remaining hold time at the current conditions' reference rate, h (≤ 0 = dry).
    pub hold_remaining_h: f64,
}

/// A shipment's logger trace and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ShipmentTrace {
    /// Samples in time order.
    pub samples: Vec<LoggerSample>,
    /// First time the product was above [`ALARM_ABOVE_C`], h.
    pub alarm_at_h: Option<f64>,
    /// First time the product was above [`REJECT_ABOVE_C`], h.
    pub reject_at_h: Option<f64>,
}

impl ShipmentTrace {
    /// The receiving site accepts only if no excursion above the reject limit occurred.
    pub fn accepted(&self) -> bool {
        self.reject_at_h.is_none()
    }
}

/// Simulates a shipment of `duration_h` with `events` (ascending by time), logging every
/// `interval_min` (≤ 5 min).
pub fn simulate(
    shipper: &Shipper,
    events: &[TransitEvent],
    duration_h: f64,
    interval_min: f64,
) -> Result<ShipmentTrace, TwinError> {
    check_positive("hold_nominal_h", shipper.hold_nominal_h)?;
    check_positive("unit_factor", shipper.unit_factor)?;
    check_positive("age_factor", shipper.age_factor)?;
    check_positive("duration_h", duration_h)?;
    check_positive("interval_min", interval_min)?;
    if interval_min > LOGGER_INTERVAL_MIN_MAX {
        return Err(TwinError::InvalidValue {
            field: "interval_min",
            value: interval_min,
            rule: "≤ 5 min (bioprocess.md §4 logger practice)",
        });
    }
    let samples_n = (duration_h * 60.0 / interval_min).ceil() as usize + 1;
    if samples_n > LOGGER_SAMPLES_MAX {
        return Err(TwinError::InvalidValue {
            field: "duration_h",
            value: duration_h,
            rule: "duration_h × 60 / interval_min ≤ LOGGER_SAMPLES_MAX",
        });
    }
    crate::tcell::check_sorted("events.at_h", events.iter().map(TransitEvent::at_h))?;
    let dt_h = interval_min / 60.0;
    let mut remaining = shipper.static_hold_h();
    let mut orientation = Orientation::Upright;
    let mut ambient_c = AMBIENT_REFERENCE_C;
    let mut product_c = LN2_C;
    let mut next_event = 0;
    let mut trace = ShipmentTrace {
        samples: Vec::with_capacity(samples_n),
        alarm_at_h: None,
        reject_at_h: None,
    };
    for i in 0..samples_n {
        let t = (i as f64 * dt_h).min(duration_h);
        let mut lid_opened = false;
        while let Some(e) = events.get(next_event).filter(|e| e.at_h() <= t) {
            match *e {
                TransitEvent::Orientation { orientation: o, .. } => orientation = o,
                TransitEvent::LidOpen { minutes, .. } => {
                    remaining -= LID_OPEN_LOSS_H_PER_MIN * check_positive("minutes", minutes)?;
                    lid_opened = true;
                }
                TransitEvent::Ambient { ambient_c: a, .. } => {
                    ambient_c = check_finite("ambient_c", a)?;
                }
            }
            next_event += 1;
        }
        trace.samples.push(LoggerSample {
            time_h: t,
            product_c,
            ambient_c,
            orientation,
            lid_opened,
            hold_remaining_h: remaining,
        });
        if product_c > ALARM_ABOVE_C && trace.alarm_at_h.is_none() {
            trace.alarm_at_h = Some(t);
        }
        if product_c > REJECT_ABOVE_C && trace.reject_at_h.is_none() {
            trace.reject_at_h = Some(t);
        }
        // Advance to the next sample.
        let leak = ((ambient_c - LN2_C) / (AMBIENT_REFERENCE_C - LN2_C)).max(0.0);
        remaining -= dt_h * orientation.rate() * leak;
        if remaining <= 0.0 {
            product_c = ambient_c + (product_c - ambient_c) * (-dt_h / WARMING_TAU_H).exp();
        }
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_above_five_minutes_is_rejected() {
        let s = Shipper {
            hold_nominal_h: 240.0,
            unit_factor: 1.0,
            age_factor: 1.0,
            logger_fitted: true,
        };
        let err = simulate(&s, &[], 24.0, 10.0).unwrap_err();
        assert!(err.to_string().contains("interval_min"), "{err}");
    }
}
